"""The oracle against kubernetes' own NetworkPolicy e2e truth tables, cell by cell.

Each case's scenario (``scenario_yaml``) is loaded by pktsim, which validates and defaults
the policies; the oracle (``tests/helpers/netpol_oracle.py``) then judges every ordered pair
of the case's pods on each probed port and protocol, and must say what upstream's
reachability matrix says.  Pairs of a pod with itself are left out, as upstream does
(``ignoreLoopback`` in ``network_policy.go``: loopback is not defined by the API).
"""

from __future__ import annotations

import pytest

import pktsim
from pktsim.model.cluster import ClusterModel
from tests.helpers.netpol_oracle import Endpoint, allowed
from tests.netpol.shapes import ALL_PODS, Case
from tests.netpol.upstream_cases import cases, expectations, pod_ip, scenario_yaml

CASES = cases()


def endpoint(model: ClusterModel, pod: str) -> Endpoint:
    info = model.pods[pod]
    ports = [(p.name, p.port, p.protocol) for c in info.pod.containers for p in c.ports]
    return Endpoint(info.ip, info.pod.namespace, dict(info.pod.labels), ports)


def test_at_least_thirty_distinct_upstream_tests() -> None:
    assert len({(c.context, c.name) for c in CASES}) >= 30
    assert len({(c.context, c.id) for c in CASES}) == len(CASES)  # each state once


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.context[-3:]}:{c.id}")
def test_oracle_matches_upstream(case: Case) -> None:
    model = pktsim.load(scenario_yaml(case, network="routes")).model
    policies = model.network_policies
    assert len(policies) == len(case.policies)
    for probe, expected in expectations(case):
        assert len(expected) == len(case.pods) * (len(case.pods) - 1)
        wrong = [f"{frm} -> {to}: upstream {want}" for (frm, to), want in expected.items()
                 if allowed(policies, model.namespace_labels, endpoint(model, frm),
                            endpoint(model, to), probe.port, probe.protocol) != want]
        assert not wrong, f"{probe.protocol}/{probe.port}: {wrong}"


def test_scenario_pins_pods_and_labels_namespaces() -> None:
    case = next(c for c in CASES if c.namespace_labels)
    model = pktsim.load(scenario_yaml(case, network="vxlan")).model
    assert model.config.network == "vxlan"
    assert {k for k in model.pods if k.split("/")[0] in "xyz"} == set(ALL_PODS)
    assert all(model.pods[p].ip == pod_ip(p)[1] for p in ALL_PODS)
    assert model.namespace_labels["y"] == {"ns": "y", "ns2": "updated",
                                           "kubernetes.io/metadata.name": "y"}
    ports = {(p.name, p.port, p.protocol) for c in model.pods["z/c"].pod.containers
             for p in c.ports}
    assert ports == {("serve-80-tcp", 80, "TCP"), ("serve-80-udp", 80, "UDP"),
                     ("serve-81-tcp", 81, "TCP"), ("serve-81-udp", 81, "UDP")}


def test_ip_placeholders_are_filled_with_pod_addresses() -> None:
    case = next(c for c in CASES if "except" in str(c.policies))
    model = pktsim.load(scenario_yaml(case, network="routes")).model
    block = model.network_policies[0].egress[0].peers[0].ip_block
    assert block is not None
    assert str(block.cidr) == "0.0.0.0/4"  # makeLargeCIDRForIP(10.244.1.11)
    assert [str(n) for n in block.except_] == [f"{pod_ip('x/b')[1]}/32"]
