"""For random pods, labels, namespaces and policies, the verdict on the wire of
``network: calico`` equals the reference evaluator's (``tests/helpers/netpol_oracle.py``,
written from the NetworkPolicy API documentation, independent of felix's rendering).

A mutation check breaks one piece of felix's rendering on purpose and requires the same
property to find a counterexample, so the property is shown able to fail.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import pktsim
from pktsim.devices.outcome import FlowStatus
from pktsim.felix import policy as felix_policy
from tests.helpers.netpol_oracle import Endpoint, allowed

NAMESPACES = ("n1", "n2", "n3")
KEYS, VALUES = ("app", "tier"), ("a", "b")
PORTS = ((80, "TCP", "web"), (81, "TCP", "alt"), (80, "UDP", "dns"))

labels = st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), max_size=2)


@st.composite
def selectors(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if draw(st.booleans()):
        out["matchLabels"] = draw(labels)
    if draw(st.booleans()):
        op = draw(st.sampled_from(["In", "NotIn", "Exists", "DoesNotExist"]))
        expr: dict[str, Any] = {"key": draw(st.sampled_from(KEYS)), "operator": op}
        if op in ("In", "NotIn"):
            expr["values"] = draw(st.lists(st.sampled_from(VALUES), min_size=1, max_size=2,
                                           unique=True))
        out["matchExpressions"] = [expr]
    return out


@st.composite
def peers(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["pod", "ns", "both", "ip"]))
    if kind == "ip":
        third = draw(st.integers(0, 255))
        block: dict[str, Any] = {"cidr": f"10.244.{third}.0/24" if draw(st.booleans())
                                 else "10.244.0.0/16"}
        if draw(st.booleans()):
            block["except"] = [f"10.244.{third}.{draw(st.sampled_from([0, 64, 128]))}/26"]
            block["cidr"] = f"10.244.{third}.0/24"
        return {"ipBlock": block}
    out: dict[str, Any] = {}
    if kind in ("pod", "both"):
        out["podSelector"] = draw(selectors())
    if kind in ("ns", "both"):
        out["namespaceSelector"] = draw(selectors())
    return out


@st.composite
def policy_ports(draw: st.DrawFn) -> dict[str, Any]:
    number, protocol, name = draw(st.sampled_from(PORTS))
    port: dict[str, Any] = {"protocol": protocol}
    choice = draw(st.sampled_from(["number", "name", "range", "none"]))
    if choice == "number":
        port["port"] = number
    elif choice == "name":
        port["port"] = name
    elif choice == "range":
        port["port"], port["endPort"] = 80, 81
    return port


@st.composite
def rules(draw: st.DrawFn, side: str) -> dict[str, Any]:
    rule: dict[str, Any] = {}
    if draw(st.booleans()):
        rule[side] = draw(st.lists(peers(), min_size=1, max_size=2))
    if draw(st.integers(0, 3)):  # ports in three rules of four: they decide most cells
        rule["ports"] = draw(st.lists(policy_ports(), min_size=1, max_size=2))
    return rule


@st.composite
def policies(draw: st.DrawFn, index: int) -> dict[str, Any]:
    spec: dict[str, Any] = {"podSelector": draw(selectors())}
    types = draw(st.sampled_from([["Ingress"], ["Egress"], ["Ingress", "Egress"], None]))
    if types is not None:
        spec["policyTypes"] = types
    if draw(st.booleans()):
        spec["ingress"] = draw(st.lists(rules("from"), min_size=1, max_size=2))
    if draw(st.booleans()):
        spec["egress"] = draw(st.lists(rules("to"), min_size=1, max_size=2))
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": f"p{index}", "namespace": draw(st.sampled_from(NAMESPACES))},
            "spec": spec}


@st.composite
def clusters(draw: st.DrawFn) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = [
        {"apiVersion": "pktsim/v1alpha1", "kind": "Cluster", "metadata": {"name": "p"},
         "spec": {"network": "calico", "nodes": 2}}]
    docs += [{"apiVersion": "v1", "kind": "Namespace",
              "metadata": {"name": ns, "labels": draw(labels)}} for ns in NAMESPACES]
    count = draw(st.integers(2, 5))
    for i in range(count):
        containers = [{"name": f"c{number}{proto.lower()}", "image": "agnhost",
                       "ports": [{"containerPort": number, "protocol": proto, "name": name}]}
                      for number, proto, name in PORTS]
        docs.append({"apiVersion": "v1", "kind": "Pod",
                     "metadata": {"name": f"pod{i}", "namespace": draw(st.sampled_from(
                         NAMESPACES)), "labels": draw(labels)},
                     "spec": {"nodeName": f"node-{draw(st.integers(1, 2))}",
                              "containers": containers}})
    docs += [draw(policies(i)) for i in range(draw(st.integers(1, 3)))]
    return docs


def _pods(docs: list[dict[str, Any]]) -> list[str]:
    return [f"{d['metadata']['namespace']}/{d['metadata']['name']}" for d in docs
            if d["kind"] == "Pod"]


def _disagreements(docs: list[dict[str, Any]]) -> list[str]:
    pods = _pods(docs)
    probes = [(a, b, port, proto) for a in pods for b in pods if a != b
              for port, proto, _ in PORTS]
    model = pktsim.load(yaml.safe_dump_all(docs)).model
    flows = [{"name": f"{a}>{b}>{port}>{proto}", "from": a,
              "to": f"{model.pods[b].ip}:{port}", "protocol": proto.lower()}
             for a, b, port, proto in probes]
    traffic = {"apiVersion": "pktsim/v1alpha1", "kind": "Traffic",
               "metadata": {"name": "probes"}, "spec": {"flows": flows}}
    result = pktsim.load(yaml.safe_dump_all([*docs, traffic])).run()
    wire = {r.flow: r.status is FlowStatus.OK for r in result.flows}
    out = []
    for a, b, port, proto in probes:
        want = allowed(model.network_policies, model.namespace_labels,
                       _endpoint(model, a), _endpoint(model, b), port, proto)
        if wire[f"{a}>{b}>{port}>{proto}"] != want:
            out.append(f"{a} -> {b} {proto}/{port}: oracle {want}")
    return out


def _endpoint(model: Any, key: str) -> Endpoint:
    info = model.pods[key]
    ports = [(p.name, p.port, p.protocol) for c in info.pod.containers for p in c.ports]
    return Endpoint(info.ip, info.pod.namespace, dict(info.pod.labels), ports)


SETTINGS = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@SETTINGS
@given(clusters())
def test_the_wire_agrees_with_the_reference_evaluator(docs: list[dict[str, Any]]) -> None:
    wrong = _disagreements(docs)
    assert not wrong, wrong


@contextmanager
def _broken_ports() -> Iterator[None]:
    """felix with destination ports ignored: every rule allows every port."""
    real = felix_policy.convert

    def no_ports(rule: Any) -> list[felix_policy.CalicoRule]:
        return [felix_policy.CalicoRule(r.protocol, r.peer, (), ()) for r in real(rule)]

    felix_policy.convert = no_ports  # type: ignore[assignment]
    try:
        yield
    finally:
        felix_policy.convert = real  # type: ignore[assignment]


@pytest.mark.slow
def test_the_property_catches_a_broken_rendering() -> None:
    """The same clusters, with felix's port matches removed: some cell must disagree."""
    found: list[list[str]] = []

    @settings(max_examples=60, deadline=None, derandomize=True, database=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(clusters())
    def property_(docs: list[dict[str, Any]]) -> None:
        wrong = _disagreements(docs)
        if wrong:
            found.append(wrong)

    with _broken_ports():
        property_()
    assert found, "a rendering that ignores ports went unnoticed"


def test_a_named_port_in_both_directions_of_one_policy() -> None:
    """Found by a long run: the ingress and the egress rule of one policy name the same
    port with no peers, which felix matches with one set of every endpoint with that port
    (``all()``); the egress rule must let n1/pod0 reach n2/pod1's ``alt``."""
    containers = [{"name": f"c{n}{p.lower()}", "image": "agnhost",
                   "ports": [{"containerPort": n, "protocol": p, "name": name}]}
                  for n, p, name in PORTS]
    alt = [{"ports": [{"protocol": "TCP", "port": "alt"}]}]
    docs: list[dict[str, Any]] = [
        {"apiVersion": "pktsim/v1alpha1", "kind": "Cluster", "metadata": {"name": "p"},
         "spec": {"network": "calico", "nodes": 2}},
        *({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
          for ns in ("n1", "n2")),
        *({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": f"pod{i}", "namespace": ns},
           "spec": {"nodeName": "node-1", "containers": containers}}
          for i, ns in enumerate(("n1", "n2"))),
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
         "metadata": {"name": "p0", "namespace": "n1"},
         "spec": {"podSelector": {}, "policyTypes": ["Egress"], "ingress": alt,
                  "egress": alt}}]
    assert _disagreements(docs) == []
