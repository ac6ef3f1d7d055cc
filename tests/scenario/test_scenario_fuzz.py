"""Whatever the input, the loader gives a Scenario or a ScenarioError, never another exception."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pktsim.errors import ScenarioError, ScenarioErrors
from pktsim.scenario import load_scenario

pytestmark = pytest.mark.slow  # seconds in all: `make test-fast` leaves the module out

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

KEYS = ["apiVersion", "kind", "metadata", "name", "namespace", "labels", "spec", "status",
        "containers", "ports", "containerPort", "protocol", "port", "targetPort", "nodePort",
        "replicas", "template", "selector", "matchLabels", "items", "flows", "from", "to",
        "lookup", "type", "payload", "start", "count", "ttl", "clusterIP", "podIP", "hostIP",
        "conditions", "readinessGates", "endpoints", "addresses", "dnsConfig", "nameservers",
        "options", "podCIDR", "nodes", "seed", "upstream", "startTime", "serviceName",
        "ownerReferences", "controller", "initContainers", "restartPolicy", "nodeSelector"]
KINDS = ["Pod", "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Service", "Node",
         "Namespace", "EndpointSlice", "NetworkPolicy", "Cluster", "Traffic", "List",
         "PodList", "ConfigMap"]
APIS = ["v1", "apps/v1", "discovery.k8s.io/v1", "networking.k8s.io/v1", "pktsim/v1alpha1",
        "pktsim/v9", "", "x/y/z"]
ODD = ["", "None", "0", "TCP", "UDP", "icmp", "10.0.0.1", "10.0.0.0/8", "::1", "fd00::/64",
       "1s", "-1s", "http://x", "https://x", "default/a", "node:n", "external", "a/b/c/d",
       "True", "Always", "Ready", "ClientIP", "2026-01-01T00:00:00Z", "Web", "a" * 300]
INTS = [-1, 0, 1, 2, 3, 53, 80, 8080, 65535, 65536, 29999, 30000, 32767, 32768, 86401,
        2**31, 2**64, 10**30]

scalars = st.one_of(
    st.none(), st.booleans(), st.sampled_from(INTS), st.integers(-3, 100),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12), st.sampled_from(ODD),
    st.sampled_from(KINDS), st.sampled_from(APIS))
keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=6))
trees = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=5)), max_leaves=25)
documents = st.fixed_dictionaries(
    {"kind": st.sampled_from(KINDS), "apiVersion": st.sampled_from(APIS)},
    optional={"metadata": trees, "spec": trees, "status": trees, "items": trees}
).flatmap(lambda doc: st.dictionaries(keys, trees, max_size=3).map(lambda extra: {**extra,
                                                                                   **doc}))


def attempt(text: str) -> None:
    try:
        scenario = load_scenario([("fuzz.yaml", text)], addons=False)
    except ScenarioErrors as err:
        assert err.lines() and all(isinstance(line, str) for line in err.lines())
    except ScenarioError as err:
        assert isinstance(err.line(), str) and err.line()
    else:
        assert "default" in scenario.namespaces


def dump(docs: list[Any]) -> str:
    return yaml.safe_dump_all(docs, allow_unicode=True)


@FUZZ
@given(st.text(max_size=200))
def test_random_text(text: str) -> None:
    attempt(text)


@FUZZ
@given(st.lists(documents, min_size=1, max_size=4))
def test_random_yaml_documents(docs: list[dict[str, Any]]) -> None:
    attempt(dump(docs))


BASE: list[dict[str, Any]] = [
    {"apiVersion": "pktsim/v1alpha1", "kind": "Cluster",
     "spec": {"seed": 1, "nodes": 3, "podCIDR": "10.244.0.0/16", "upstream": {"a.b": "1.2.3.4"},
              "startTime": "2026-01-01T00:00:00Z", "network": "vxlan"}},
    {"apiVersion": "v1", "kind": "Node",
     "metadata": {"name": "n1", "labels": {"role": "edge"}},
     "spec": {"podCIDR": "10.244.9.0/24"},
     "status": {"addresses": [{"type": "InternalIP", "address": "172.18.0.2"}]}},
    {"apiVersion": "v1", "kind": "Pod",
     "metadata": {"name": "p", "namespace": "shop", "labels": {"app": "p"},
                  "ownerReferences": [{"kind": "ReplicaSet", "name": "web-abc",
                                       "controller": True}]},
     "spec": {"nodeName": "n1", "dnsPolicy": "None",
              "dnsConfig": {"nameservers": ["1.1.1.1"], "options": [{"name": "ndots"}]},
              "readinessGates": [{"conditionType": "x"}],
              "initContainers": [{"name": "s", "restartPolicy": "Always",
                                  "ports": [{"containerPort": 1}]}],
              "containers": [{"name": "c", "ports": [{"containerPort": 80, "name": "http"}]}]},
     "status": {"podIP": "10.244.9.2", "podIPs": [{"ip": "10.244.9.2"}],
                "conditions": [{"type": "Ready", "status": "True"}]}},
    {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
     "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
              "template": {"metadata": {"labels": {"app": "web"}},
                           "spec": {"containers": [{"name": "c",
                                                    "ports": [{"containerPort": 80}]}]}}}},
    {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
     "spec": {"replicas": 2, "serviceName": "db", "ordinals": {"start": 1},
              "template": {"spec": {"containers": [{"name": "c"}]}}}},
    {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "ds"},
     "spec": {"template": {"spec": {"nodeSelector": {"role": "edge"},
                                    "containers": [{"name": "c"}]}}}},
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
     "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.5", "selector": {"app": "web"},
              "ports": [{"name": "h", "port": 80, "targetPort": "http", "nodePort": 30001},
                        {"name": "u", "port": 53, "protocol": "UDP", "targetPort": 53}],
              "sessionAffinity": "ClientIP",
              "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 5}},
              "externalIPs": ["192.0.2.1"], "loadBalancerSourceRanges": ["10.0.0.0/8"]},
     "status": {"loadBalancer": {"ingress": [{"ip": "198.51.100.1"}]}}},
    {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
     "metadata": {"name": "web-1", "labels": {"kubernetes.io/service-name": "web"}},
     "addressType": "IPv4",
     "endpoints": [{"addresses": ["10.244.9.2"], "conditions": {"ready": None},
                    "targetRef": {"kind": "Pod", "name": "p"}}],
     "ports": [{"name": "h", "port": 80}]},
    {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "np"},
     "spec": {"podSelector": {}}},
    {"apiVersion": "pktsim/v1alpha1", "kind": "Traffic", "metadata": {"name": "t"},
     "spec": {"flows": [{"from": "shop/p", "to": "http://web/", "start": "1.5s", "payload": 3},
                        {"from": "external", "lookup": "web", "type": "SRV", "ttl": 3},
                        {"from": "node:n1", "to": "web:53", "protocol": "udp",
                         "payload": "hi", "count": 2}]}},
]


def paths(tree: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into the tree (mapping keys and list indices)."""
    out = [prefix]
    if isinstance(tree, dict):
        for key, value in tree.items():
            out += paths(value, (*prefix, key))
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            out += paths(value, (*prefix, i))
    return out


def mutate(doc: Any, path: tuple[Any, ...], junk: Any, delete: bool) -> Any:
    if not path:
        return junk
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = junk
    return doc


@FUZZ
@given(st.data())
def test_mutated_valid_manifests(data: st.DataObject) -> None:
    docs = copy.deepcopy(BASE)
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        i = data.draw(st.integers(0, len(docs) - 1), label="document")
        path = data.draw(st.sampled_from(paths(docs[i])), label="path")
        junk = data.draw(trees, label="junk")
        docs[i] = mutate(docs[i], path, junk, data.draw(st.booleans(), label="delete"))
    if data.draw(st.booleans(), label="as List"):
        docs = [{"apiVersion": "v1", "kind": "List", "items": docs}]
    attempt(dump(docs))


def test_base_manifests_are_valid() -> None:
    scenario = load_scenario([("base.yaml", dump(BASE))], addons=False)
    assert len(scenario.flows) == 3 and len(scenario.services) == 1


@FUZZ
@given(st.data())
def test_mangled_yaml_text(data: st.DataObject) -> None:
    text = dump(BASE)
    for _ in range(data.draw(st.integers(1, 5))):
        at = data.draw(st.integers(0, len(text)))
        cut = data.draw(st.integers(0, 8))
        insert = data.draw(st.sampled_from(["", ":", "- ", "{", "]", "\n", "  ", "&a ", "*a",
                                            "!!binary ", "'", '"', "---\n", "? ", "<<: "]))
        text = text[:at] + insert + text[at + cut:]
    attempt(text)


def test_pathological_yaml() -> None:
    for text in ["[" * 5000 + "]" * 5000, "a: &a [*a]\nkind: Pod", "kind: List\nitems: &i\n"
                 "- {kind: List, items: *i}", "kind: Pod\nmetadata: !!binary aGVsbG8=",
                 "kind: Pod\nmetadata: !!set {a, b}", "kind: Pod\n? [a]\n: b",
                 "bomb: &b [&c [1, 1, 1], *c, *c]\nkind: Pod\nspec: {containers: *b}"]:
        attempt(text)
