"""pktsim.strategies: everything generated loads and runs, shrinks small, and bad arguments
are refused with InvalidArgument."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

import pktsim
from pktsim import FlowStatus, invariants
from pktsim.scenario import load_scenario
from pktsim.strategies import (
    FLOW_KINDS,
    SERVICE_TYPES,
    clusters,
    flow_lists,
    flows,
    manifests,
    scenarios,
)

pytestmark = pytest.mark.slow  # seconds in all: `make test-fast` leaves the module out

RUNS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                      HealthCheck.data_too_large])
FIND = settings(database=None, max_examples=2000, deadline=None, derandomize=True,
                suppress_health_check=list(HealthCheck))
EXISTS = settings(FIND, phases=[Phase.generate])  # find one, do not shrink it


def user_pods(cluster: pktsim.Cluster) -> list[Any]:
    return [p for p in cluster.model.pods.values() if p.pod.namespace != "kube-system"]


def dump(docs: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(docs)


# -- valid: everything loads, runs, and what flows() promises is answered -------------------

@RUNS
@given(manifests())
def test_manifests_load(docs: list[dict[str, Any]]) -> None:
    scenario = load_scenario([("m.yaml", dump(docs))], addons=False)
    kinds = {d["kind"] for d in docs}
    assert "Node" in kinds and len(scenario.nodes) == sum(d["kind"] == "Node" for d in docs)
    assert 1 <= len(scenario.pods) <= 6
    assert not scenario.warnings


@RUNS
@given(manifests(min_nodes=2, max_nodes=2, min_pods=3, max_pods=3, max_services=0))
def test_manifests_bounds_are_kept(docs: list[dict[str, Any]]) -> None:
    scenario = load_scenario([("m.yaml", dump(docs))], addons=False)
    assert len(scenario.nodes) == 2 and len(scenario.pods) == 3 and not scenario.services


@RUNS
@given(clusters())
def test_clusters_build_and_run(cluster: pktsim.Cluster) -> None:
    assert 1 <= len(cluster.model.nodes) <= 3 and 1 <= len(user_pods(cluster)) <= 6
    assert repr(cluster).startswith("pktsim.load(")
    assert pktsim.load(cluster.yaml).model.pods.keys() == cluster.model.pods.keys()  # type: ignore[attr-defined]
    result = cluster.run()
    assert result.flows == [] and result.topology.driver.idle


@RUNS
@given(st.data())
def test_generated_flows_are_answered_and_keep_every_invariant(data: st.DataObject) -> None:
    cluster = data.draw(clusters(), label="cluster")
    chosen = data.draw(flow_lists(cluster, max_size=3), label="flows")
    assert len({f.name for f in chosen}) == len(chosen)
    invariants.check_all(cluster.run(flows=chosen))


@RUNS
@given(st.data())
def test_each_flow_kind_is_answered(data: st.DataObject) -> None:
    cluster = data.draw(clusters(max_services=4), label="cluster")
    kind = data.draw(st.sampled_from(FLOW_KINDS), label="kind")
    try:
        strategy = flows(cluster, kinds=(kind,))
    except InvalidArgument:
        return  # this cluster has no such flow (say, no NodePort Service)
    flow = data.draw(strategy, label="flow")
    assert flow.name == kind
    invariants.check_all(cluster.run(flows=[flow]))


@RUNS
@given(scenarios(max_flows=3))
def test_scenarios_load_and_run(text: str) -> None:
    cluster = pktsim.load(text)
    assert cluster.flows
    invariants.check_all(cluster.run())


@RUNS
@given(st.data())
def test_lookups_of_missing_names_are_nxdomain(data: st.DataObject) -> None:
    cluster = data.draw(clusters(max_services=1), label="cluster")
    flow = data.draw(flows(cluster, kinds=("lookup",), missing_names=True), label="flow")
    result = cluster.run(flows=[flow])
    invariants.check_all(result, delivered=False)
    missing = "no-such" in flow.lookup
    assert (result.flows[0].status == "ok") != missing, result.flows[0].line()
    if missing:
        assert result.flows[0].status is FlowStatus.DNS_ERROR
        assert result.flows[0].reason == "DNS error (HOST_NOT_FOUND)"


# -- shrinking ------------------------------------------------------------------------------

def test_clusters_shrink_to_one_node_and_one_pod() -> None:
    smallest = find(clusters(), lambda c: True, settings=FIND)
    assert len(smallest.model.nodes) == 1
    pods = user_pods(smallest)
    assert len(pods) == 1 and pods[0].pod.owner == ""  # one bare Pod
    assert smallest.model.config.network == "routes" and smallest.model.config.seed == 0
    assert [s for s in smallest.model.services if not s.startswith(("default/kubernetes",
                                                                    "kube-system/"))] == []


def test_a_load_balancer_shrinks_to_one_node_one_pod_one_service() -> None:
    def has_lb(docs: list[dict[str, Any]]) -> bool:
        return any(d["kind"] == "Service" and d["spec"].get("type") == "LoadBalancer"
                   for d in docs)

    smallest = find(manifests(max_services=1), has_lb, settings=FIND)
    assert [d["kind"] for d in smallest] == ["Node", "Pod", "Service"]
    cluster = pktsim.load(dump(smallest))
    assert cluster.model.services["default/web-svc-0"].load_balancer_ip is not None


def test_manifests_shrink_to_the_smallest_deployment_that_has_two_replicas() -> None:
    def two_replicas(docs: list[dict[str, Any]]) -> bool:
        return any(d["kind"] == "Deployment" and d["spec"]["replicas"] >= 2 for d in docs)

    smallest = find(manifests(), two_replicas, settings=FIND)
    assert [d["kind"] for d in smallest] == ["Node", "Deployment"]
    assert smallest[1]["spec"]["replicas"] == 2


def test_scenarios_shrink_to_one_flow_on_one_pod() -> None:
    smallest = find(scenarios(max_nodes=2, max_pods=2, max_services=1), lambda text: True,
                    settings=FIND)
    cluster = pktsim.load(smallest)
    assert len(cluster.model.nodes) == 1 and len(user_pods(cluster)) == 1
    assert len(cluster.flows) == 1


def test_every_service_type_is_generated() -> None:
    for kind in SERVICE_TYPES:
        def has(docs: list[dict[str, Any]], kind: str = kind) -> bool:
            return any(d["kind"] == "Service" and (
                d["spec"].get("type", "ClusterIP") == kind
                or (kind == "Headless" and d["spec"].get("clusterIP") == "None"))
                for d in docs)

        found = find(manifests(), has, settings=EXISTS)
        load_scenario([("m.yaml", dump(found))], addons=False)


def test_not_ready_pods_are_generated_and_not_endpoints() -> None:
    def not_ready_endpoint(c: pktsim.Cluster) -> bool:
        return any(not ep.ready for s in c.model.services.values() for p in s.ports
                   for ep in p.endpoints)

    found = find(clusters(), not_ready_endpoint, settings=EXISTS)
    result = found.run()
    invariants.backends_are_ready_endpoints(result)


# -- arguments ------------------------------------------------------------------------------

@pytest.mark.parametrize("call", [
    lambda: manifests(min_nodes=0),
    lambda: manifests(min_nodes=3, max_nodes=2),
    lambda: manifests(max_nodes=1000),
    lambda: manifests(min_pods=-1),
    lambda: manifests(max_pods=2.5),
    lambda: manifests(max_services=-1),
    lambda: manifests(namespaces="default"),
    lambda: manifests(ready=True),
    lambda: clusters(network="vxlan"),
    lambda: clusters(seeds=3),
    lambda: clusters(manifests=[]),
    lambda: scenarios(min_flows=2, max_flows=1),
    lambda: scenarios(kinds=("pod-to-moon",)),
])
def test_bad_arguments_raise_invalid_argument(call: Any) -> None:
    with pytest.raises(InvalidArgument):
        call()


@pytest.mark.parametrize("drawn", [
    lambda: manifests(namespaces=st.just("Not_A_Label")),
    lambda: manifests(kinds=st.just("CronJob")),
    lambda: manifests(service_types=st.just("Ingress"), max_services=1),
    lambda: manifests(ready=st.just("yes")),
    lambda: clusters(network=st.just("geneve")),
])
def test_bad_draws_raise_invalid_argument(drawn: Any) -> None:
    with pytest.raises(InvalidArgument):
        find(drawn(), lambda value: False, settings=EXISTS)


def test_flows_check_their_arguments() -> None:
    cluster = pktsim.demo_cluster()
    with pytest.raises(InvalidArgument):
        flows("demo")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        flows(cluster, kinds=("pod-to-moon",))
    with pytest.raises(InvalidArgument):
        flows(cluster, kinds="lookup")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        flows(cluster, missing_names=1)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        flow_lists(cluster, min_size=3, max_size=1)
    one_node = pktsim.load("apiVersion: pktsim/v1alpha1\nkind: Cluster\nspec: {nodes: 1}\n")
    with pytest.raises(InvalidArgument, match="no flow of kinds"):
        flows(one_node, kinds=("external-to-loadbalancer",))


def test_flows_work_on_any_cluster_the_demo_too() -> None:
    cluster = pktsim.demo_cluster("vxlan")
    flow = find(flows(cluster, kinds=("pod-to-service-name",)),
                lambda f: f.target.startswith("http://web"), settings=FIND)
    assert flow.target == "http://web.shop/"  # the simplest way to name it from default/
    invariants.check_all(cluster.run(flows=[flow]))
