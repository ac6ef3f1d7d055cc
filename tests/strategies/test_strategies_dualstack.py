"""Dual-stack clusters from ``pktsim.strategies``: they load, their pods have IPv6
addresses, the flows reach them over IPv6 too, and every invariant holds on the runs."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pktsim import invariants
from pktsim.strategies import IP_FAMILIES, GeneratedCluster, clusters, flow_lists


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_dual_stack_clusters_run_and_keep_every_invariant(data: st.DataObject) -> None:
    cluster: GeneratedCluster = data.draw(clusters(max_nodes=2, max_pods=3,
                                                   ip_families=st.just(IP_FAMILIES[1])))
    model = cluster.model
    assert model.config.ip_families == ("IPv4", "IPv6")
    assert model.config.network in ("routes", "vxlan")
    assert all(p.ip6 is not None for p in model.pods.values() if not p.pod.host_network)
    chosen = data.draw(flow_lists(cluster, max_size=3, kinds=("pod-to-pod",)))
    result = cluster.run(flows=chosen)
    invariants.check_all(result)


@settings(max_examples=5, deadline=None)
@given(clusters(max_nodes=2, max_pods=2, ip_families=st.just(IP_FAMILIES[1])))
def test_dual_stack_pods_are_reached_over_ipv6(cluster: GeneratedCluster) -> None:
    """Among the pod-to-pod flows a dual-stack cluster offers, some aim at IPv6."""
    from pktsim.strategies.flows import _flow_candidates

    targets = _flow_candidates(cluster, False)["pod-to-pod"]
    assert any(f.get("family") == "IPv6" for f in targets)
    assert all(f.get("family") != "IPv6" or f["protocol"] == "icmp" for f in targets)
