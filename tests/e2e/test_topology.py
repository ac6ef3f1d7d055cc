"""Topology-aware routing end to end: zones on nodes, hints on endpoints, kube-proxy's choice.

Three nodes, ``Cluster.spec.zones: [zone-a, zone-b]`` (node-1 and node-3 in zone-a, node-2 in
zone-b), one web pod on each.  With ``trafficDistribution: PreferClose`` the EndpointSlice
controller hints each endpoint for its own zone, and kube-proxy on a zone-a node lists only
the two zone-a endpoints in the Service's KUBE-SVC chain: a client there is DNATed to them
only (the trace's ``kube-proxy DNAT`` events say where each connection went).  Hand-written
slices whose hints are incomplete (one endpoint without) make every node use every endpoint,
as ``CategorizeEndpoints`` does.  Bad values exit 2 naming file, document, field and value.
"""

from __future__ import annotations

import textwrap
from collections import Counter
from pathlib import Path

import pytest

import pktsim
from pktsim import invariants
from pktsim.cli import main
from pktsim.errors import ScenarioError, ScenarioErrors
from pktsim.kubeproxy import endpoint_chain_name, node_rules, service_chain_name
from pktsim.render.check import cluster_report
from pktsim.scenario import load_scenario

WEB = {"web-1": ("node-1", "10.244.0.2"), "web-2": ("node-2", "10.244.1.2"),
       "web-3": ("node-3", "10.244.2.2")}
ZONE_A = {"10.244.0.2:8080", "10.244.2.2:8080"}

BASE = """\
apiVersion: pktsim/v1alpha1
kind: Cluster
spec: {{nodes: 3, zones: [zone-a, zone-b], dns: none}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: 3
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec: {{containers: [{{name: c, ports: [{{containerPort: 8080}}]}}]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: client-a}}
spec: {{nodeName: node-1, containers: [{{name: c}}]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: client-b}}
spec: {{nodeName: node-2, containers: [{{name: c}}]}}
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  clusterIP: 10.96.7.7
  {selector}
  ports: [{{port: 80, targetPort: 8080}}]
  {extra}
{slices}
---
apiVersion: pktsim/v1alpha1
kind: Traffic
spec:
  flows:
  - {{name: from-a, from: default/client-a, to: 'http://10.96.7.7/', count: 12}}
  - {{name: from-b, from: default/client-b, to: 'http://10.96.7.7/', count: 6}}
"""

SLICE = """\
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: web-1, labels: {{kubernetes.io/service-name: web}}}}
addressType: IPv4
ports: [{{port: 8080, protocol: TCP}}]
endpoints:
{endpoints}"""


def _slice(hinted: tuple[str, ...]) -> str:
    """web's endpoints written by hand, hinted for their zone when named in ``hinted``."""
    lines = []
    for pod, (node, ip) in WEB.items():
        zone = "zone-b" if node == "node-2" else "zone-a"
        hint = f"\n  hints: {{forZones: [{{name: {zone}}}]}}" if pod in hinted else ""
        lines.append(f"- addresses: [{ip}]\n  nodeName: {node}\n  zone: {zone}{hint}")
    return SLICE.format(endpoints="\n".join(lines))


def scenario(extra: str = "trafficDistribution: PreferClose", slices: str = "") -> str:
    selector = "" if slices else "selector: {app: web}"
    return BASE.format(selector=selector, extra=extra, slices=slices)


def dnat_targets(result: pktsim.api.Result, flow: str) -> Counter[str]:
    return Counter(e.nat.new for e in result.events if e.flow == flow and e.nat is not None
                   and e.summary.startswith("kube-proxy DNAT"))


def svc_jumps(model: pktsim.model.cluster.ClusterModel, node: str) -> list[str]:
    """The ``-A KUBE-SVC-…`` rules of default/web on ``node``: one per endpoint it uses."""
    chain = service_chain_name("default/web", "tcp", "KUBE-SVC-")
    return [line for line in node_rules(model, node).splitlines()
            if line.startswith(f"-A {chain} ") and "-> " in line]


def test_the_controller_gives_endpoints_their_zone_and_hints() -> None:
    model = pktsim.load(scenario()).model
    assert [model.nodes[n].zone for n in ("node-1", "node-2", "node-3")] == [
        "zone-a", "zone-b", "zone-a"]
    eps = {f"{e.ip}:{e.port}": e for e in model.services["default/web"].ports[0].endpoints}
    assert {a: (e.node, e.zone, e.for_zones, e.for_nodes) for a, e in eps.items()} == {
        "10.244.0.2:8080": ("node-1", "zone-a", ("zone-a",), ()),
        "10.244.1.2:8080": ("node-2", "zone-b", ("zone-b",), ()),
        "10.244.2.2:8080": ("node-3", "zone-a", ("zone-a",), ())}
    same_node = pktsim.load(scenario("trafficDistribution: PreferSameNode")).model
    web_1 = same_node.services["default/web"].ports[0].endpoints[0]
    assert (web_1.for_zones, web_1.for_nodes) == (("zone-a",), ("node-1",))
    plain = pktsim.load(scenario("")).model
    assert all(e.for_zones == () and e.zone for e in plain.services["default/web"]
               .ports[0].endpoints)


def test_kube_proxy_in_zone_a_lists_only_zone_a_endpoints() -> None:
    """The KUBE-SVC chain as kube-proxy writes it (``writeServiceToEndpointRules``), with
    the two zone-a endpoints only, and no KUBE-SEP chain for zone-b's."""
    model = pktsim.load(scenario()).model
    svc = service_chain_name("default/web", "tcp", "KUBE-SVC-")

    def sep(addr: str) -> str:
        return endpoint_chain_name("default/web", "tcp", addr)

    for node in ("node-1", "node-3"):
        assert svc_jumps(model, node) == [
            f'-A {svc} -m comment --comment "default/web -> 10.244.0.2:8080" -m statistic '
            f"--mode random --probability 0.5000000000 -j {sep('10.244.0.2:8080')}",
            f'-A {svc} -m comment --comment "default/web -> 10.244.2.2:8080" -j '
            f"{sep('10.244.2.2:8080')}"]
        assert sep("10.244.1.2:8080") not in node_rules(model, node)
    assert svc_jumps(model, "node-2") == [
        f'-A {svc} -m comment --comment "default/web -> 10.244.1.2:8080" -j '
        f"{sep('10.244.1.2:8080')}"]
    same_node = pktsim.load(scenario("trafficDistribution: PreferSameNode")).model
    assert [j.split('"')[1] for j in svc_jumps(same_node, "node-3")] == [
        "default/web -> 10.244.2.2:8080"]


def test_a_client_in_zone_a_reaches_only_zone_a_endpoints() -> None:
    result = pktsim.load(scenario()).run()
    assert [f.status for f in result.flows] == ["ok", "ok"]
    from_a, from_b = dnat_targets(result, "from-a"), dnat_targets(result, "from-b")
    assert sum(from_a.values()) == 12 and set(from_a) == ZONE_A  # both, and only them
    assert from_b == Counter({"10.244.1.2:8080": 6})


def test_without_trafficdistribution_every_endpoint_is_used() -> None:
    result = pktsim.load(scenario("")).run()
    assert len(dnat_targets(result, "from-a")) == 3


def test_hand_written_hints_are_read_and_incomplete_ones_fall_back_to_all() -> None:
    hinted = pktsim.load(scenario("", _slice(tuple(WEB)))).run()
    assert set(dnat_targets(hinted, "from-a")) == ZONE_A
    assert set(dnat_targets(hinted, "from-b")) == {"10.244.1.2:8080"}
    partial = pktsim.load(scenario("", _slice(("web-1", "web-2")))).run()
    assert len(svc_jumps(partial.topology.model, "node-1")) == 3
    assert set(dnat_targets(partial, "from-a")) == {f"{ip}:8080" for _, ip in WEB.values()}


def _errors(text: str) -> list[ScenarioError]:
    with pytest.raises(ScenarioError) as info:
        load_scenario([("bad.yaml", text)], addons=False)
    err = info.value
    return err.errors if isinstance(err, ScenarioErrors) else [err]


SERVICE = """\
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  ports: [{port: 80}]
  trafficDistribution: %s
"""
ENDPOINTS = """\
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints:
- addresses: [10.244.0.9]
  %s
"""


@pytest.mark.parametrize(("text", "where", "field", "value", "valid"), [
    (SERVICE % "PreferNearby", "document 1 (Service default/web)", "spec.trafficDistribution",
     "PreferNearby", "PreferClose | PreferSameZone | PreferSameNode"),
    (SERVICE % "preferclose", "document 1 (Service default/web)", "spec.trafficDistribution",
     "preferclose", "PreferClose | PreferSameZone | PreferSameNode"),
    (ENDPOINTS % "zone: Zone A", "document 1 (EndpointSlice default/web-1)",
     "endpoints[0].zone", "Zone A", "empty or at most 63"),
    (ENDPOINTS % "hints: {forZones: [{name: a}, {name: a}]}",
     "document 1 (EndpointSlice default/web-1)", "endpoints[0].hints.forZones[1].name", "a",
     "distinct names"),
    (ENDPOINTS % "hints: {forZones: [%s]}" % ", ".join(f"{{name: z{i}}}" for i in range(9)),
     "document 1 (EndpointSlice default/web-1)", "endpoints[0].hints.forZones", 9,
     "at most 8"),
    (ENDPOINTS % "hints: {forNodes: [{name: Node_1}]}",
     "document 1 (EndpointSlice default/web-1)", "endpoints[0].hints.forNodes[0].name",
     "Node_1", "at most 253"),
    (ENDPOINTS % "hints: {forNodes: [{}]}", "document 1 (EndpointSlice default/web-1)",
     "endpoints[0].hints.forNodes[0].name", None, ""),
    (ENDPOINTS % "hints: {forZones: [{name: ''}, {}]}",
     "document 1 (EndpointSlice default/web-1)", "endpoints[0].hints.forZones[1].name", "",
     "distinct names"),
    ("apiVersion: pktsim/v1alpha1\nkind: Cluster\nspec: {zones: [a, '']}\n",
     "document 1 (Cluster)", "spec.zones[1]", "", "a non-empty label value"),
])
def test_bad_topology_values(text: str, where: str, field: str, value: object,
                             valid: str) -> None:
    [err] = _errors(text)
    assert (err.file, err.document, err.field, err.value) == ("bad.yaml", where, field, value)
    assert err.valid.startswith(valid)


def test_an_invalid_traffic_distribution_exits_2(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(scenario("trafficDistribution: Closest"))
    assert main(["check", str(path)]) == 2
    line = capsys.readouterr().err.strip()
    assert line == (f"pktsim: {path}: document 5 (Service default/web): "
                    "spec.trafficDistribution: 'Closest' is not supported; valid: "
                    "PreferClose | PreferSameZone | PreferSameNode")


def test_auto_topology_mode_is_warned_about_and_gives_no_hints() -> None:
    text = scenario().replace("metadata: {name: web}\nspec:\n  clusterIP",
                              "metadata:\n  name: web\n  annotations: "
                              "{service.kubernetes.io/topology-mode: Auto}\nspec:\n  clusterIP")
    cluster = pktsim.load(text)
    assert any("topology mode Auto (annotation service.kubernetes.io/topology-mode) is not "
               "modelled" in w and "trafficDistribution PreferClose is ignored" in w
               for w in cluster.scenario.warnings)
    assert all(e.for_zones == () for e in cluster.model.services["default/web"]
               .ports[0].endpoints)


def test_zones_for_generated_nodes_only() -> None:
    text = textwrap.dedent("""\
        apiVersion: pktsim/v1alpha1
        kind: Cluster
        spec: {zones: [zone-a]}
        ---
        apiVersion: v1
        kind: Node
        metadata: {name: n1, labels: {topology.kubernetes.io/zone: east}}
        """)
    cluster = pktsim.load(text)
    assert cluster.model.nodes["n1"].zone == "east"
    assert any("zones has no effect: the stream has Node objects" in w
               for w in cluster.scenario.warnings)


LATER = """\
  - {{name: later-a, from: default/client-a, to: 'http://10.96.7.7/', count: 8, start: 5s}}
  - {{name: later-b, from: default/client-b, to: 'http://10.96.7.7/', count: 8, start: 5s}}
  events:
  - at: 3s
    apply:
{apply}"""
APPLY_SERVICE = """\
      apiVersion: v1
      kind: Service
      metadata: {name: web}
      spec:
        clusterIP: 10.96.7.7
        selector: {app: web}
        ports: [{port: 80, targetPort: 8080}]
        trafficDistribution: PreferClose
"""
APPLY_NODE = """\
      apiVersion: v1
      kind: Node
      metadata: {name: node-3, labels: {topology.kubernetes.io/zone: zone-b}}
"""


def test_trafficdistribution_applied_during_a_run() -> None:
    text = scenario("") + LATER.format(apply=APPLY_SERVICE)
    result = pktsim.load(text).run()
    assert len(dnat_targets(result, "from-a")) == 3  # before: every endpoint
    assert set(dnat_targets(result, "later-a")) == ZONE_A
    assert set(dnat_targets(result, "later-b")) == {"10.244.1.2:8080"}
    invariants.check_all(result)  # the DNATs of before the change are not judged by the end


def test_a_node_moved_to_another_zone_during_a_run() -> None:
    """node-3 joins zone-b: its kube-proxy syncs at once (NodeTopologyConfig) and uses
    zone-b's endpoints; the EndpointSlice controller does not rewrite the slices for a
    node's label (``updateNode`` queues only Auto-mode Services), so node-3's endpoint
    keeps its zone-a hint and zone-a's clients keep reaching it."""
    result = pktsim.load(scenario() + LATER.format(apply=APPLY_NODE)).run()
    assert set(dnat_targets(result, "from-a")) == ZONE_A
    assert set(dnat_targets(result, "later-a")) == ZONE_A
    assert set(dnat_targets(result, "later-b")) == {"10.244.1.2:8080"}
    model = result.topology.model
    assert model.nodes["node-3"].zone == "zone-b"
    assert [j.split('"')[1] for j in svc_jumps(model, "node-3")] == [
        "default/web -> 10.244.1.2:8080"]
    invariants.check_all(result)  # the DNATs of before the change are not judged by the end


def test_check_prints_zones_and_hints() -> None:
    report = cluster_report(pktsim.load(scenario("trafficDistribution: PreferSameNode")))
    assert "podCIDR 10.244.1.0/24" in report and "  zone zone-b\n" in report
    assert ("- 80/TCP -> 10.244.0.2:8080 (for zone-a, node-1), 10.244.1.2:8080 (for zone-b, "
            "node-2), 10.244.2.2:8080 (for zone-a, node-3)") in report


def test_an_empty_zone_hint_is_valid_and_kept() -> None:
    """IsValidLabelValue accepts "": kube-proxy on a node without a zone matches it."""
    [eps] = load_scenario([("s.yaml", ENDPOINTS % "hints: {forZones: [{name: ''}]}")],
                          addons=False).endpoint_slices
    assert eps.endpoints[0].for_zones == ("",)


def test_a_v1beta1_topology_gives_node_and_zone() -> None:
    text = (ENDPOINTS % "topology: {kubernetes.io/hostname: node-1, "
            "topology.kubernetes.io/zone: zone-a}")
    [eps] = load_scenario([("s.yaml", text)], addons=False).endpoint_slices
    assert (eps.endpoints[0].node_name, eps.endpoints[0].zone) == ("node-1", "zone-a")


def test_the_invariants_hold_and_catch_a_node_with_another_zones_rules(
        monkeypatch: pytest.MonkeyPatch) -> None:
    result = pktsim.load(scenario()).run()
    invariants.check_all(result)
    # every node loaded with the same tables, as before zone hints made them differ
    monkeypatch.setattr("pktsim.build.topology.sharing_key", lambda model, node, specific: None)
    wrong = pktsim.load(scenario()).run()
    with pytest.raises(AssertionError, match=(
            r"kube-proxy DNAT 10\.96\.7\.7:80 -> 10\.244\.[02]\.2:8080, but kube-proxy on "
            r"node-2 \(zone zone-b\) uses only 10\.244\.1\.2:8080 of Service default/web "
            r"\(CategorizeEndpoints\)")):
        invariants.backends_are_ready_endpoints(wrong)


def test_a_daemonset_can_select_the_generated_nodes_zone() -> None:
    text = textwrap.dedent("""\
        apiVersion: pktsim/v1alpha1
        kind: Cluster
        spec: {nodes: 3, zones: [zone-a, zone-b], dns: none}
        ---
        apiVersion: apps/v1
        kind: DaemonSet
        metadata: {name: agent}
        spec:
          selector: {matchLabels: {app: agent}}
          template:
            metadata: {labels: {app: agent}}
            spec:
              nodeSelector: {topology.kubernetes.io/zone: zone-a}
              containers: [{name: c}]
        """)
    model = pktsim.load(text).model
    assert sorted(p.node for p in model.pods.values()) == ["node-1", "node-3"]
