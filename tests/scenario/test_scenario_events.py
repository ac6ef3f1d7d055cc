"""``spec.events`` of a Traffic document, a flow's ``interval``, the Cluster's control-loop
knobs and a pod's termination grace: what a user writes, what pktsim reads, and the one-line
exit-2 message for each kind of mistake."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

import pktsim
from pktsim import cli
from pktsim.model.objects import Pod, Service
from pktsim.model.timeline import SECOND, Change, ControlConfig
from pktsim.scenario import load_scenario
from pktsim.scenario.workloads import Workload

STREAM = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, ports: [{containerPort: 80}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: solo}
spec:
  terminationGracePeriodSeconds: 5
  containers: [{name: c, ports: [{containerPort: 80}]}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {selector: {app: web}, ports: [{port: 80}]}
"""
POD = ("{apiVersion: v1, kind: Pod, metadata: {name: extra, labels: {app: web}}, "
       "spec: {containers: [{name: c, ports: [{containerPort: 80}]}]}}")


def traffic(events: str, flows: str = "") -> str:
    """A Traffic document (document 4 of the file) holding ``events``."""
    body = "apiVersion: pktsim/v1alpha1\nkind: Traffic\nspec:\n"
    if flows:
        body += "  flows:\n" + textwrap.indent(textwrap.dedent(flows), "  ")
    return STREAM + "---\n" + body + "  events:\n" + textwrap.indent(textwrap.dedent(events),
                                                                      "  ")


def changes(events: str) -> list[Change]:
    return load_scenario([("t.yaml", traffic(events))], addons=False).changes


def check(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str) -> list[str]:
    """``pktsim check`` of ``text``: exit 2 and the lines it printed."""
    path = tmp_path / "t.yaml"
    path.write_text(text)
    assert cli.main(["check", str(path)]) == 2
    return [line.removeprefix(f"pktsim: {path}: ")
            for line in capsys.readouterr().err.splitlines() if line]


# -- every action read into its Change ---------------------------------------------------------


def test_every_action_is_read_and_sorted_by_time_stably() -> None:
    found = changes(f"""\
        - {{at: 3s, scale: default/web, replicas: 3}}
        - {{at: 1s, apply: {POD}}}
        - {{at: 2s, delete: default/extra}}
        - {{at: 4s, fail: "node:node-1"}}
        - {{at: 4s, delete: {{kind: Service, name: web}}}}
        - {{at: 5000, recover: "node:node-1"}}
        - {{at: 6s, scale: {{kind: Deployment, namespace: default, name: web}}, replicas: 0}}
        - {{at: 7s, delete: {{kind: Deployment, name: web}}}}
        """)
    assert [(c.at_ns, c.label()) for c in found] == [
        (1 * SECOND, "apply Pod default/extra"),
        (2 * SECOND, "delete Pod default/extra"),
        (3 * SECOND, "scale Deployment default/web to 3"),
        (4 * SECOND, "fail node node-1"),
        (4 * SECOND, "delete Service default/web"),  # file order breaks the tie
        (5 * SECOND, "recover node node-1"),
        (6 * SECOND, "scale Deployment default/web to 0"),
        (7 * SECOND, "delete Deployment default/web"),
    ]
    applied = found[0].obj
    assert isinstance(applied, Pod) and applied.labels == {"app": "web"}
    assert found[0].path == "spec.events[1]" and found[0].source is not None
    assert found[0].source.kind == "Traffic"
    assert found[2].replicas == 3 and found[6].replicas == 0
    assert (found[3].kind, found[3].namespace, found[3].name) == ("Node", "", "node-1")


def test_an_applied_workload_stays_a_workload() -> None:
    deployment = ("{apiVersion: apps/v1, kind: Deployment, metadata: {name: api, namespace: "
                  "shop}, spec: {replicas: 4, selector: {matchLabels: {app: api}}, template: "
                  "{metadata: {labels: {app: api}}, spec: {containers: [{name: c}]}}}}")
    scenario = load_scenario([("t.yaml", traffic(f"- {{at: 1s, apply: {deployment}}}\n"
                                                 "- {at: 2s, scale: shop/api, replicas: 1}\n"))],
                             addons=False)
    work = scenario.changes[0].obj
    assert isinstance(work, Workload) and work.replicas == 4
    assert not any(p.namespace == "shop" for p in scenario.pods)  # the control plane's job
    assert "shop" in scenario.namespaces
    assert scenario.changes[1].label() == "scale Deployment shop/api to 1"


def test_applying_an_object_of_the_stream_is_an_update() -> None:
    svc = ("{apiVersion: v1, kind: Service, metadata: {name: web}, spec: {selector: "
           "{app: other}, ports: [{port: 8080}]}}")
    found = changes(f"- {{at: 1s, apply: {svc}}}\n")
    assert isinstance(found[0].obj, Service) and found[0].obj.selector == {"app": "other"}


def test_pods_of_the_streams_workloads_can_be_deleted_by_name() -> None:
    pods = load_scenario([("t.yaml", STREAM)], addons=False).pods
    name = next(p.name for p in pods if p.owner == "Deployment/web")
    assert changes(f"- {{at: 1s, delete: default/{name}}}\n")[0].name == name


def test_check_lists_the_events_in_time_order(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(traffic("- {at: 2500ms, recover: 'node:node-1'}\n"
                            "- {at: 1s, fail: 'node:node-1'}\n"))
    assert cli.main(["check", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.endswith("events:\n  at 1s: fail node node-1\n  at 2.5s: recover node node-1\n")


def test_the_cluster_with_its_add_ons_keeps_the_changes() -> None:
    loaded = pktsim.load(traffic("- {at: 1s, delete: default/solo}\n")).scenario
    assert any(p.namespace == "kube-system" for p in loaded.pods)  # CoreDNS added ...
    assert [c.label() for c in loaded.changes] == ["delete Pod default/solo"]  # ... kept


def test_events_alone_need_no_flows() -> None:
    assert len(changes("- {at: 0s, fail: 'node:node-1'}\n")) == 1


# -- bad events: exit 2, one line naming file, document, field and value -------------------------

TRAFFIC_DOC = "document 4 (Traffic)"


@pytest.mark.parametrize(("events", "line"), [
    ("- {at: 1s}", "spec.events[0]: has no action; valid: exactly one of apply, delete, "
     "scale, fail, recover"),
    ("- {at: 1s, fail: 'node:node-1', recover: 'node:node-1'}",
     "spec.events[0]: has 2 actions (fail, recover); valid: exactly one of apply, delete, "
     "scale, fail, recover"),
    ("- {delete: default/solo}", "spec.events[0].at: is required; valid: a duration like "
     "0ms, 250us, 1.5s, 2m (units ns us ms s m h) or an integer of ms"),
    ("- {at: -5, delete: default/solo}", "spec.events[0].at: -5 is out of range; valid: 0 "
     "or more milliseconds"),
    ("- {at: soon, delete: default/solo}", "spec.events[0].at: 'soon' is not a valid "
     "duration; valid: a duration like 0ms, 250us, 1.5s, 2m (units ns us ms s m h) or an "
     "integer of ms"),
    ("- {at: 1000000h, delete: default/solo}", "spec.events[0].at: 3600000000000 is after "
     "the last time a capture can stamp"),
    ("- {at: 1s, delete: default/solo, when: now}", "spec.events[0].when: is not a known "
     "field; valid: at, apply, delete, scale, fail, recover, replicas"),
    ("- {at: 1s, delete: default/nope}", "spec.events[0].delete: 'default/nope' names no "
     "Pod that exists at 1000ms; valid: a Pod of the stream or applied by an earlier event: "),
    ("- {at: 1s, delete: {kind: ConfigMap, name: x}}", "spec.events[0].delete.kind: "
     "'ConfigMap' is not supported; valid: Pod | Deployment | ReplicaSet | StatefulSet | "
     "DaemonSet | Service | EndpointSlice | NetworkPolicy | Node"),
    ("- {at: 1s, scale: default/web}", "spec.events[0].replicas: is required; valid: an "
     "integer 0-150000"),
    ("- {at: 1s, scale: default/web, replicas: -1}", "spec.events[0].replicas: -1 is out of "
     "range; valid: 0-150000"),
    ("- {at: 1s, scale: {kind: DaemonSet, name: web}, replicas: 1}",
     "spec.events[0].scale.kind: 'DaemonSet' is not supported; valid: Deployment | "
     "ReplicaSet | StatefulSet"),
    ("- {at: 1s, scale: default/api, replicas: 1}", "spec.events[0].scale: 'default/api' "
     "names no Deployment that exists at 1000ms; valid: a Deployment of the stream or "
     "applied by an earlier event: default/web"),
    ("- {at: 1s, delete: default/solo, replicas: 1}", "spec.events[0].replicas: 1 is only "
     "for scale; valid: replicas with scale: NAMESPACE/NAME"),
    ("- {at: 1s, fail: node-1}", "spec.events[0].fail: 'node-1' is not a node; valid: "
     "node:NAME"),
    ("- {at: 1s, fail: 'node:node-9'}", "spec.events[0].fail: 'node:node-9' names no Node "
     "that exists at 1000ms; valid: a Node of the stream or applied by an earlier event: "
     "node-1, node-2"),
    ("- {at: 1s, fail: 'node:node-1'}\n- {at: 2s, fail: 'node:node-1'}",
     "spec.events[1].fail: 'node:node-1' fails node node-1, which has already failed; "
     "valid: a node that is up"),
    ("- {at: 1s, recover: 'node:node-2'}", "spec.events[0].recover: 'node:node-2' recovers "
     "node node-2, which has not failed; valid: a node failed by an earlier event: (none)"),
    ("- {at: 1s, apply: {apiVersion: v1, kind: Node, metadata: {name: node-3}}}",
     "spec.events[0].apply: 'Node node-3' adds a node during the run, which is not "
     "modelled; valid: a Node of the cluster at the start: node-1, node-2"),
    ("- {at: 1s, apply: " + POD.replace("spec: {", "spec: {nodeName: node-7, ") + "}",
     "spec.events[0].apply.spec.nodeName: 'node-7' names no node that exists at 1000ms; "
     "valid: node-1, node-2"),
    ("- {at: 1s, delete: {kind: Node, name: node-1}}", "spec.events[0].delete: 'node-1' "
     "deletes a node during the run, which is not modelled; valid: fail: node:node-1"),
    ("- {at: 1s, apply: {apiVersion: v1, kind: Pod, metadata: {name: solo}, spec: "
     "{terminationGracePeriodSeconds: 5, containers: [{name: c, ports: [{containerPort: "
     "81}]}]}}}", "spec.events[0].apply.spec.containers: 'Pod default/solo' changes a running "
     "pod's spec, which the API server refuses"),
    ("- {at: 1s, apply: {apiVersion: v1, kind: Pod, metadata: {name: solo}, spec: "
     "{nodeName: node-2, terminationGracePeriodSeconds: 5, containers: [{name: c, ports: "
     "[{containerPort: 80}]}]}}}", "spec.events[0].apply.spec.nodeName: 'Pod default/solo' "
     "changes a running pod's spec"),
    ("- {at: 1s, apply: {apiVersion: v1, kind: ConfigMap, metadata: {name: x}}}",
     "spec.events[0].apply.kind: 'ConfigMap' cannot be applied by an event; valid: Pod | "
     "Deployment | ReplicaSet | StatefulSet | DaemonSet | Service | EndpointSlice | "
     "NetworkPolicy | Node"),
    ("- {at: 1s, apply: {apiVersion: pktsim/v1alpha1, kind: Cluster}}",
     "spec.events[0].apply.kind: 'Cluster' cannot be applied by an event; valid: Pod | "
     "Deployment | ReplicaSet | StatefulSet | DaemonSet | Service | EndpointSlice | "
     "NetworkPolicy | Node"),
    ("- {at: 1s, apply: {apiVersion: apps/v1, kind: Pod, metadata: {name: x}}}",
     "spec.events[0].apply.apiVersion: 'apps/v1' is not an API version of Pod; valid: v1"),
    ("- {at: 1s, apply: " + POD.replace("80}", "99999}") + "}",
     "spec.events[0].apply.spec.containers[0].ports[0].containerPort: 99999 is out of range; "
     "valid: 1-65535"),
])
def test_bad_event_exits_2_naming_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            events: str, line: str) -> None:
    lines = check(tmp_path, capsys, traffic(events + "\n"))
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{TRAFFIC_DOC}: {line}"), lines[0]


def test_a_running_pod_may_be_applied_again_with_new_labels() -> None:
    """ValidatePodUpdate lets labels change (a pod leaving a Service's selector)."""
    solo = ("{apiVersion: v1, kind: Pod, metadata: {name: solo, labels: {app: other}}, spec: "
            "{terminationGracePeriodSeconds: 5, containers: [{name: c, ports: [{containerPort: "
            "80}]}]}}")
    assert [c.label() for c in changes(f"- {{at: 1s, apply: {solo}}}\n")] == [
        "apply Pod default/solo"]


def test_an_event_may_name_what_an_earlier_event_applied_not_a_later_one(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert changes(f"- {{at: 2s, delete: default/extra}}\n- {{at: 1s, apply: {POD}}}\n")
    lines = check(tmp_path, capsys, traffic(f"- {{at: 1s, delete: default/extra}}\n"
                                            f"- {{at: 2s, apply: {POD}}}\n"))
    assert lines[0].startswith(f"{TRAFFIC_DOC}: spec.events[0].delete: 'default/extra' "
                               "names no Pod that exists at 1000ms"), lines


def test_a_deleted_object_is_gone_for_later_events(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    lines = check(tmp_path, capsys, traffic("- {at: 1s, delete: default/solo}\n"
                                            "- {at: 2s, delete: default/solo}\n"))
    assert lines[0].startswith(f"{TRAFFIC_DOC}: spec.events[1].delete: 'default/solo' names "
                               "no Pod that exists at 2000ms"), lines


def test_unknown_fields_of_an_applied_object_warn_with_the_full_path(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(traffic("- {at: 1s, apply: " + POD.replace("{name: c,", "{nme: x, name: c,")
                            + "}\n"))
    assert cli.main(["check", str(path)]) == 0
    err = capsys.readouterr().err
    assert 'unknown field "spec.events[0].apply.spec.containers[0].nme"' in err
    assert cli.main(["check", "--strict", str(path)]) == 2


# -- interval ------------------------------------------------------------------------------------

PAIR = """\
apiVersion: v1
kind: Pod
metadata: {name: a}
spec: {containers: [{name: c}]}
---
apiVersion: v1
kind: Pod
metadata: {name: b}
spec: {containers: [{name: c, ports: [{containerPort: 80}, {containerPort: 53, protocol: UDP}]}]}
---
apiVersion: pktsim/v1alpha1
kind: Traffic
spec:
  flows:
"""
FLOWS = {"udp": "{name: f, from: default/a, to: 'default/b:53', protocol: udp, count: 2%s}",
         "tcp": "{name: f, from: default/a, to: 'default/b:80', count: 2%s}",
         "icmp": "{name: f, from: default/a, to: default/b, protocol: icmp, count: 2%s}"}
FIRST_PACKET = {"udp": "53: ", "tcp": "Flags [S]", "icmp": "echo request"}


def second_send(protocol: str, interval: str = "") -> int:
    """When the flow's second connection, datagram or echo request left pod a."""
    flow = FLOWS[protocol] % (f", interval: {interval}" if interval else "")
    result = pktsim.load(PAIR + f"  - {flow}\n").run(None, keep=True)
    sent = [e.t for e in result.events if e.flow == "f" and e.host == "default/a"
            and str(e.event) == "tx" and FIRST_PACKET[protocol] in e.summary]
    assert len(sent) == 2
    return sent[1]


@pytest.mark.parametrize(("protocol", "default_ns"), [
    ("udp", SECOND), ("icmp", SECOND), ("tcp", 1_000_000)])
def test_interval_sets_the_gap_before_the_second_send(protocol: str, default_ns: int) -> None:
    default = second_send(protocol)
    assert second_send(protocol, "250ms") - default == 250_000_000 - default_ns
    assert second_send(protocol, "2s") - default == 2 * SECOND - default_ns


def test_interval_is_read_as_a_duration_and_refused_where_it_means_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = load_scenario([("t.yaml", PAIR + "  - " + FLOWS["udp"] % ", interval: 1500"
                               + "\n  - {name: g, from: default/a, to: 'default/b:53', "
                               "protocol: udp}\n")], addons=False)
    assert [f.interval_ns for f in scenario.flows] == [1500 * 10**6, None]
    looked = load_scenario([("t.yaml", PAIR + "  - {from: default/a, lookup: x.y, "
                                         "interval: 1}\n")], addons=False)
    assert looked.flows[0].interval_ns == 10**6  # lookups repeat (count) that far apart
    path = tmp_path / "t.yaml"
    path.write_text(PAIR + "  - " + FLOWS["tcp"] % "" + "\n")
    args = ["trace", str(path), "--from", "default/a", "--to", "default/b:80", "--count", "2"]
    assert cli.main([*args, "--interval", "often"]) == 2
    assert "--interval: 'often' is not a valid duration" in capsys.readouterr().err
    assert cli.main([*args, "--interval", "20ms", "--format", "json"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    syns = [e["t"] for e in events if "Flags [S]," in e["summary"]
            and e["host"] == "default/a" and e["event"] == "tx"]
    assert len(syns) == 2 and syns[1] - syns[0] > 20_000_000


# -- Cluster knobs --------------------------------------------------------------------------------

CLUSTER = "apiVersion: pktsim/v1alpha1\nkind: Cluster\nspec:\n"


def cluster(body: str) -> ControlConfig:
    return load_scenario([("c.yaml", CLUSTER + textwrap.indent(body, "  "))],
                         addons=False).config.control


def test_control_knobs_default_to_the_components_defaults() -> None:
    cfg = cluster("nodes: 2\n")
    assert (cfg.min_sync_period_ns, cfg.sync_period_ns) == (SECOND, 30 * SECOND)
    assert cfg.conntrack_cleanup
    assert cfg.endpoint_updates_batch_period_ns == 0
    assert cfg.node_monitor_grace_period_ns == 50 * SECOND
    assert cfg.unreachable_toleration_ns == 300 * SECOND
    assert cfg.pod_startup_ns == SECOND


def test_control_knobs_are_read() -> None:
    cfg = cluster("kubeProxy: {minSyncPeriod: 0s, syncPeriod: 1m30s, conntrackCleanup: false}\n"
                  "controllers: {endpointUpdatesBatchPeriod: 500ms, nodeMonitorGracePeriod: "
                  "40s, unreachableTolerationSeconds: 10}\nkubelet: {podStartup: 250ms}\n")
    assert cfg == ControlConfig(0, 90 * SECOND, False, 500_000_000, 40 * SECOND,
                                10 * SECOND, 250_000_000)


@pytest.mark.parametrize(("body", "line"), [
    ("kubeProxy: {syncPeriod: 0s}", "spec.kubeProxy.syncPeriod: '0s' must be greater than 0"),
    ("kubeProxy: {minSyncPeriod: 10s, syncPeriod: 5s}", "spec.kubeProxy.syncPeriod: '5s' "
     "leaves minSyncPeriod (10s) above syncPeriod (5s); valid: minSyncPeriod <= syncPeriod"),
    ("kubeProxy: {minSyncPeriod: 1m}", "spec.kubeProxy.minSyncPeriod: '1m' leaves "
     "minSyncPeriod (1m) above syncPeriod (30s)"),
    ("kubeProxy: {minSyncPeriod: -1s}", "spec.kubeProxy.minSyncPeriod: '-1s' is negative"),
    ("kubeProxy: {syncPeriod: 30}", "spec.kubeProxy.syncPeriod: 30 is an integer; valid: a "
     "Go duration like 0s, 250ms, 1s, 1m30s"),
    ("kubeProxy: {conntrackCleanup: yes please}", "spec.kubeProxy.conntrackCleanup: 'yes "
     "please' is a string; valid: true or false"),
    ("kubeProxy: {minSync: 1s}", "spec.kubeProxy.minSync: is not a known field; valid: "
     "minSyncPeriod, syncPeriod, conntrackCleanup"),
    ("controllers: {unreachableTolerationSeconds: -1}",
     "spec.controllers.unreachableTolerationSeconds: -1 is out of range"),
    ("controllers: {nodeMonitorGracePeriod: 40}", "spec.controllers.nodeMonitorGracePeriod: "
     "40 is an integer"),
    ("kubelet: {podStartup: fast}", "spec.kubelet.podStartup: 'fast' is not a valid duration"),
])
def test_bad_control_knob_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                  body: str, line: str) -> None:
    lines = check(tmp_path, capsys, CLUSTER + "  " + body + "\n")
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"document 1 (Cluster): {line}"), lines[0]


# -- terminationGracePeriodSeconds ---------------------------------------------------------------


def test_termination_grace_is_read_for_pods_and_templates_default_30s() -> None:
    text = STREAM.replace("spec: {containers: [{name: c, ports: [{containerPort: 80}]}]}",
                          "spec: {terminationGracePeriodSeconds: 0, containers: [{name: c}]}")
    pods = {p.owner or p.name: p for p in load_scenario([("t.yaml", text)],
                                                        addons=False).pods}
    assert pods["solo"].termination_grace_ns == 5 * SECOND
    assert pods["Deployment/web"].termination_grace_ns == 0
    default = load_scenario([("t.yaml", STREAM)], addons=False).pods
    assert next(p for p in default if p.owner).termination_grace_ns == 30 * SECOND


def test_negative_termination_grace_exits_2(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    lines = check(tmp_path, capsys, STREAM.replace("terminationGracePeriodSeconds: 5",
                                                   "terminationGracePeriodSeconds: -1"))
    assert lines == ["document 2 (Pod default/solo): spec.terminationGracePeriodSeconds: -1 "
                     "is out of range; valid: 0-9223372036854775807"]
