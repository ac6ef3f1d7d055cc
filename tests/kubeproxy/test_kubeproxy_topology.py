"""Topology-aware routing: kube-proxy's ``CategorizeEndpoints`` with hints, the controller's.

kube-proxy side (``pktsim.kubeproxy.topology``, from kubernetes ``pkg/proxy/topology.go``):
the cases of upstream's ``TestCategorizeEndpoints`` (``pkg/proxy/topology_test.go``), with
their names, endpoints and expected sets (cluster, local, all reachable;
``hasAnyEndpoints``): those with zone hints, then those of traffic policies and readiness;
then cases for ``hints.forNodes`` written from ``topologyModeFromHints`` (the upstream
table read predates node hints).

Controller side (``pktsim.model.topology.hints``, from ``trafficdist.go``): the endpoints of
upstream's ``TestReconcileHints`` (``staging/src/k8s.io/endpointslice/trafficdist/
trafficdist_test.go``) as the hints each gets.
"""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from pktsim.kubeproxy.ports import Endpoint, ServicePortInfo
from pktsim.kubeproxy.topology import categorize, topology_mode
from pktsim.model.topology import hints, hints_enabled

A, B, C, D = "zone-a", "zone-b", "zone-c", "zone-d"


def _ep(addr: str, zones: tuple[str, ...] = (), *, ready: bool = True, local: bool = False,
        nodes: tuple[str, ...] = (), terminating: bool = False) -> Endpoint:
    """An endpoint as upstream's ``BaseEndpointInfo``: ``serving`` unset (false) unless
    ready or terminating (then serving and not ready)."""
    ip, _, port = addr.partition(":")
    return Endpoint(IPv4Address(ip), int(port), local, ready and not terminating,
                    f"KUBE-SEP-{addr}", serving=ready or terminating, terminating=terminating,
                    zone_hints=frozenset(zones), node_hints=frozenset(nodes))


def _sp(*eps: Endpoint, internal_local: bool = False, external_local: bool = False,
        node_port: int = 0) -> ServicePortInfo:
    return ServicePortInfo("ns/svc:p", "tcp", IPv4Address("10.96.0.9"), 80, node_port,
                           internal_local=internal_local, external_local=external_local,
                           endpoints=list(eps))


def _four(*zones: tuple[str, ...], ready: tuple[bool, ...] = (True,) * 4) -> list[Endpoint]:
    return [_ep(f"10.1.2.{3 + i}:80", z, ready=r) for i, (z, r) in
            enumerate(zip(zones, ready, strict=True))]


ALL4 = {"10.1.2.3:80", "10.1.2.4:80", "10.1.2.5:80", "10.1.2.6:80"}
LOCAL_MIX = [_ep("10.1.2.3:80", (A,), local=True), _ep("10.1.2.4:80", (B,), local=True),
             _ep("10.1.2.5:80", (C,)), _ep("10.1.2.6:80", (A,))]
# name, zone of the node, service port, (cluster, local, all reachable); has-any = all != {}
UPSTREAM = [
    ("should use topology since all endpoints have hints, node has a zone label and and "
     "there are endpoints for the node's zone", A, _sp(*_four((A,), (B,), (C,), (A,))),
     ({"10.1.2.3:80", "10.1.2.6:80"}, set(), {"10.1.2.3:80", "10.1.2.6:80"})),
    ("externalTrafficPolicy: Local, topology ignored for Local endpoints", A,
     _sp(*LOCAL_MIX, external_local=True, node_port=8080),
     ({"10.1.2.3:80", "10.1.2.6:80"}, {"10.1.2.3:80", "10.1.2.4:80"},
      {"10.1.2.3:80", "10.1.2.4:80", "10.1.2.6:80"})),
    ("internalTrafficPolicy: Local, topology ignored for Local endpoints", A,
     _sp(*LOCAL_MIX, internal_local=True, node_port=8080),
     ({"10.1.2.3:80", "10.1.2.6:80"}, {"10.1.2.3:80", "10.1.2.4:80"},
      {"10.1.2.3:80", "10.1.2.4:80", "10.1.2.6:80"})),
    ("empty node labels", "", _sp(_ep("10.1.2.3:80", (A,))),
     ({"10.1.2.3:80"}, set(), {"10.1.2.3:80"})),
    ("node in different zone, no endpoint filtering", B, _sp(_ep("10.1.2.3:80", (A,))),
     ({"10.1.2.3:80"}, set(), {"10.1.2.3:80"})),
    ("unready endpoint", A,
     _sp(*_four((A,), (B,), (C,), (A,), ready=(True, True, True, False))),
     ({"10.1.2.3:80"}, set(), {"10.1.2.3:80"})),
    ("only unready endpoints in same zone (should not filter)", A,
     _sp(*_four((A,), (B,), (C,), (A,), ready=(False, True, True, False))),
     ({"10.1.2.4:80", "10.1.2.5:80"}, set(), {"10.1.2.4:80", "10.1.2.5:80"})),
    ("missing hints, no filtering applied", A, _sp(*_four((A,), (B,), (), (A,))),
     (ALL4, set(), ALL4)),
    ("multiple hints per endpoint, filtering includes any endpoint with zone included", C,
     _sp(*_four((A, B, C), (B, C), (B, D), (C,))),
     ({"10.1.2.3:80", "10.1.2.4:80", "10.1.2.6:80"}, set(),
      {"10.1.2.3:80", "10.1.2.4:80", "10.1.2.6:80"})),
    ("conflicting topology and localness require merging allEndpoints", A,
     _sp(_ep("10.0.0.0:80", (A,), local=True), _ep("10.0.0.1:80", (B,), local=True),
         _ep("10.0.0.2:80", (A,)), _ep("10.0.0.3:80", (B,)), external_local=True,
         node_port=8080),
     ({"10.0.0.0:80", "10.0.0.2:80"}, {"10.0.0.0:80", "10.0.0.1:80"},
      {"10.0.0.0:80", "10.0.0.1:80", "10.0.0.2:80"})),
]


def _addrs(eps: list[Endpoint]) -> set[str]:
    return {ep.addr for ep in eps}


@pytest.mark.parametrize(("zone", "sp", "want"), [c[1:] for c in UPSTREAM],
                         ids=[c[0] for c in UPSTREAM])
def test_categorize_endpoints_upstream(zone: str, sp: ServicePortInfo,
                                       want: tuple[set[str], set[str], set[str]]) -> None:
    cluster, local, reachable, has = categorize(sp, "node-1", zone)
    assert (_addrs(cluster), _addrs(local), _addrs(reachable), has) == (*want, bool(want[2]))


E0, E1, E2, E3 = "10.0.0.0:80", "10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"
ONE_LOCAL = (_ep(E0, local=True), _ep(E1))
# upstream's cases without hints (traffic policies, readiness): name, service port,
# (cluster, local, all reachable, hasAnyEndpoints); upstream's nil and empty sets are both
# empty here
POLICIES = [
    ("internalTrafficPolicy: Local, with empty endpoints", _sp(internal_local=True),
     (set(), set(), set(), False)),
    ("internalTrafficPolicy: Local, but all endpoints are remote",
     _sp(_ep(E0), _ep(E1), internal_local=True), (set(), set(), set(), True)),
    ("internalTrafficPolicy: Local, all endpoints are local",
     _sp(_ep(E0, local=True), _ep(E1, local=True), internal_local=True),
     (set(), {E0, E1}, {E0, E1}, True)),
    ("internalTrafficPolicy: Local, some endpoints are local",
     _sp(*ONE_LOCAL, internal_local=True), (set(), {E0}, {E0}, True)),
    ("Cluster traffic policy, endpoints not Ready",
     _sp(_ep(E0, ready=False), _ep(E1, ready=False)), (set(), set(), set(), False)),
    ("Cluster traffic policy, some endpoints are Ready",
     _sp(_ep(E0, ready=False), _ep(E1)), ({E1}, set(), {E1}, True)),
    ("Cluster traffic policy, all endpoints are terminating",
     _sp(_ep(E0, terminating=True, local=True), _ep(E1, terminating=True)),
     ({E0, E1}, set(), {E0, E1}, True)),
    ("iTP: Local, eTP: Cluster, some endpoints local",
     _sp(*ONE_LOCAL, internal_local=True, node_port=8080),
     ({E0, E1}, {E0}, {E0, E1}, True)),
    ("iTP: Cluster, eTP: Local, some endpoints local",
     _sp(*ONE_LOCAL, external_local=True, node_port=8080),
     ({E0, E1}, {E0}, {E0, E1}, True)),
    ("iTP: Local, eTP: Local, some endpoints local",
     _sp(*ONE_LOCAL, internal_local=True, external_local=True, node_port=8080),
     ({E0, E1}, {E0}, {E0, E1}, True)),
    ("iTP: Local, eTP: Local, all endpoints remote",
     _sp(_ep(E0), _ep(E1), internal_local=True, external_local=True, node_port=8080),
     ({E0, E1}, set(), {E0, E1}, True)),
    ("iTP: Local, eTP: Local, all endpoints remote and terminating",
     _sp(_ep(E0, terminating=True), _ep(E1, terminating=True), internal_local=True,
         external_local=True, node_port=8080),
     ({E0, E1}, set(), {E0, E1}, True)),
    ("iTP: Cluster, eTP: Local, with terminating endpoints",
     _sp(_ep(E0), _ep(E1, ready=False, local=True), _ep(E2, terminating=True, local=True),
         _ep(E3, terminating=True), external_local=True, node_port=8080),
     ({E0}, {E2}, {E0, E2}, True)),
    ("externalTrafficPolicy ignored if not externally accessible",
     _sp(_ep(E0), _ep(E1, local=True), external_local=True), ({E0, E1}, set(), {E0, E1}, True)),
    ("no cluster endpoints for iTP:Local internal-only service",
     _sp(_ep(E0), _ep(E1, local=True), internal_local=True), (set(), {E1}, {E1}, True)),
]


@pytest.mark.parametrize(("sp", "want"), [c[1:] for c in POLICIES],
                         ids=[c[0] for c in POLICIES])
def test_categorize_endpoints_upstream_policies(
        sp: ServicePortInfo, want: tuple[set[str], set[str], set[str], bool]) -> None:
    cluster, local, reachable, has = categorize(sp, "node-1", "")
    assert (_addrs(cluster), _addrs(local), _addrs(reachable), has) == want


def test_the_merged_endpoints_come_out_sorted() -> None:
    """Go merges through a map (undefined order); pktsim sorts by ``ip:port``."""
    sp = UPSTREAM[-1][2]
    assert [ep.addr for ep in categorize(sp, "node-1", A)[2]] == [
        "10.0.0.0:80", "10.0.0.1:80", "10.0.0.2:80"]


N1, N2 = ("node-1",), ("node-2",)
NODE_CASES = [
    # name, endpoints, mode, cluster endpoints on node-1 in zone-a
    ("every ready endpoint has a node hint and one is for this node: PreferSameNode",
     [_ep("10.0.0.1:80", (A,), nodes=N1), _ep("10.0.0.2:80", (A,), nodes=N2)],
     "PreferSameNode", {"10.0.0.1:80"}),
    ("node hints but none for this node: the zone hints decide",
     [_ep("10.0.0.2:80", (A,), nodes=N2), _ep("10.0.0.3:80", (B,), nodes=("node-3",))],
     "PreferSameZone", {"10.0.0.2:80"}),
    ("one ready endpoint without a node hint: the zone hints decide",
     [_ep("10.0.0.1:80", (A,), nodes=N1), _ep("10.0.0.2:80", (A,)), _ep("10.0.0.3:80", (B,))],
     "PreferSameZone", {"10.0.0.1:80", "10.0.0.2:80"}),
    ("a not-ready endpoint without hints does not count",
     [_ep("10.0.0.1:80", (A,), nodes=N1), _ep("10.0.0.2:80", (A,), nodes=N2),
      _ep("10.0.0.3:80", ready=False)],
     "PreferSameNode", {"10.0.0.1:80"}),
    ("node hints without zone hints, none for this node: every endpoint",
     [_ep("10.0.0.2:80", nodes=N2), _ep("10.0.0.3:80", nodes=N2)],
     "", {"10.0.0.2:80", "10.0.0.3:80"}),
    ("no ready endpoint: no mode, the terminating fallback ignores hints",
     [Endpoint(IPv4Address("10.0.0.2"), 80, False, False, "KUBE-SEP-2", True, True,
               frozenset((B,)), frozenset(N2))],
     "", {"10.0.0.2:80"}),
]


@pytest.mark.parametrize(("eps", "mode", "want"), [c[1:] for c in NODE_CASES],
                         ids=[c[0] for c in NODE_CASES])
def test_node_hints(eps: list[Endpoint], mode: str, want: set[str]) -> None:
    assert topology_mode(eps, "node-1", A) == mode
    assert _addrs(categorize(_sp(*eps), "node-1", A)[0]) == want


@pytest.mark.parametrize(("distribution", "auto", "ready", "zone", "node", "want"), [
    # "should set zone hints with PreferClose": the endpoint's own zone, no node hint
    ("PreferClose", False, True, A, "node-1", ((A,), ())),
    ("PreferSameZone", False, True, B, "node-2", ((B,), ())),
    # PreferSameNode: a node hint too (generateNodeHints)
    ("PreferSameNode", False, True, A, "node-1", ((A,), ("node-1",))),
    ("PreferSameNode", False, True, "", "node-1", ((), ("node-1",))),
    # no zone (the node has no label): no zone hint, and so no hints at all
    ("PreferClose", False, True, "", "node-1", ((), ())),
    # "unready endpoints should not trigger updates": a not-ready endpoint gets none
    ("PreferClose", False, False, B, "node-2", ((), ())),
    # "should remove hints when trafficDistribution is unrecognized" / "is unset"
    ("Unknown", False, True, A, "node-1", ((), ())),
    ("", False, True, A, "node-1", ((), ())),
    # Auto topology mode: canUseTrafficDistribution is false (the topology cache decides)
    ("PreferClose", True, True, A, "node-1", ((), ())),
])
def test_controller_hints(distribution: str, auto: bool, ready: bool, zone: str, node: str,
                          want: tuple[tuple[str, ...], tuple[str, ...]]) -> None:
    assert hints(distribution, auto, ready, zone, node) == want


@pytest.mark.parametrize(("annotations", "want"), [
    ({"service.kubernetes.io/topology-mode": "Auto"}, True),
    ({"service.kubernetes.io/topology-mode": "auto"}, True),
    ({"service.kubernetes.io/topology-mode": "aUto"}, False),  # as upstream: exact spellings
    ({"service.kubernetes.io/topology-mode": "Disabled"}, False),
    ({"service.kubernetes.io/topology-aware-hints": "Auto"}, True),
    # the deprecated annotation wins when both are set
    ({"service.kubernetes.io/topology-aware-hints": "disabled",
      "service.kubernetes.io/topology-mode": "Auto"}, False),
    ({}, False),
])
def test_hints_enabled(annotations: dict[str, str], want: bool) -> None:
    assert hints_enabled(annotations) is want
