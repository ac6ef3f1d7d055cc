"""The control plane during a run (issue 17): each change and each control loop's delay,
checked on the wire and in the trace, against the source each one comes from."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

import pktsim
from pktsim.core.events import DropReason, Event
from pktsim.model.timeline import SECOND, Change
from tests.helpers.echo import CLIENT_POD
from tests.helpers.tshark import validate_capture

MS = 10**6

ECHO = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo, namespace: default}
spec:
  replicas: REPLICAS
  selector: {matchLabels: {app: echo}}
  template:
    metadata: {labels: {app: echo}}
    spec:
      containers:
      - name: echo
        ports: [{containerPort: 9000, protocol: UDP}, {containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: default}
spec:
  selector: {app: echo}
  ports:
  - {name: udp, port: 9000, protocol: UDP}
  - {name: http, port: 80, targetPort: 8080}
---
""" + CLIENT_POD + """---
apiVersion: pktsim/v1alpha1
kind: Cluster
spec: {network: NETWORK, nodes: 3}
---
apiVersion: pktsim/v1alpha1
kind: Traffic
spec:
  flows:
  - {name: udp, from: default/client, to: "echo:9000", protocol: udp, count: COUNT}
"""


def cluster(tmp_path: Path, *, replicas: int = 2, count: int = 12,
            network: str = "routes", grace_s: float | None = None) -> pktsim.Cluster:
    text = ECHO.replace("REPLICAS", str(replicas)).replace("COUNT", str(count)) \
        .replace("NETWORK", network)
    path = tmp_path / "echo.yaml"
    path.write_text(text)
    c = pktsim.load(path)
    if grace_s is not None:
        for info in c.model.pods.values():
            info.pod = dataclasses.replace(info.pod, termination_grace_ns=int(grace_s * SECOND))
    return c


def first_backend(c: pktsim.Cluster) -> str:
    """The pod the UDP flow is DNATed to when nothing changes."""
    result = c.run()
    nat = next(e.nat for e in result.events
               if e.nat and e.nat.field == "dst" and e.nat.new.endswith(":9000"))
    ip = nat.new.split(":")[0]
    return next(k for k, p in c.model.pods.items() if str(p.ip) == ip)


def of(result: pktsim.Result, event: Event) -> list[pktsim.TraceEvent]:
    return [e for e in result.events if e.event is event]


def syncs(result: pktsim.Result, node: str = "node-1") -> list[int]:
    return [e.t for e in of(result, Event.SYNC) if e.host == node and
            e.detail.component == "kube-proxy"]  # type: ignore[union-attr]


def test_kube_proxy_syncs_at_once_but_not_within_min_sync_period(tmp_path: Path) -> None:
    """pkg/proxy/runner/bounded_frequency_runner.go ``Run``: a change is written at once
    unless the last sync was less than minSyncPeriod (1 s, SetDefaults_KubeProxyConfiguration)
    ago; then at last + 1 s, with every change that came meanwhile.  Each deletion also
    brings a replacement pod, Ready ``podStartup`` (1 s) later: deletions at 0.5, 3.0 and
    3.2 s and replacements at 1.5, 4.0 and 4.2 s give syncs at 1 (0.5 waits for the
    start-up sync's second), 2, 3, 4 (3.2 waits) and 5 s (4.0 and 4.2 wait together)."""
    c = cluster(tmp_path, replicas=3, count=1)
    pods = sorted(k for k in c.model.pods if k.startswith("default/echo"))
    c.scenario.changes = [Change(500 * MS, "delete", "Pod", *pods[0].split("/")),
                          Change(3 * SECOND, "delete", "Pod", *pods[1].split("/")),
                          Change(3200 * MS, "delete", "Pod", *pods[2].split("/"))]
    result = c.run()
    times = syncs(result)
    assert times[:5] == [t * SECOND for t in (1, 2, 3, 4, 5)]
    assert result.topology.netfilters["node-1"].generation == len(
        [e for e in of(result, Event.SYNC) if e.host == "node-1"])


def test_a_terminating_pod_leaves_the_rules_but_keeps_serving_its_udp_flow(
        tmp_path: Path) -> None:
    """Graceful deletion: the endpoint turns ready=false serving=true terminating=true
    (podToEndpoint): kube-proxy drops it from KUBE-SVC while another endpoint is ready, but
    the established UDP flow stays with it (its conntrack entry), answered until the grace
    period ends; the cleanup spares it while it is serving (cleanup.go)."""
    c = cluster(tmp_path, grace_s=30)
    victim = first_backend(c)
    c.scenario.changes = [Change(2500 * MS, "delete", "Pod", *victim.split("/"))]
    result = c.run()
    assert result.flows[0].answered == 12
    sync = next(e for e in of(result, Event.SYNC) if e.host == "node-1")
    assert any(victim.split("/")[1] in line or "KUBE-SEP" in line
               for line in sync.detail.removed)  # type: ignore[union-attr]
    assert not sync.detail.deleted  # type: ignore[union-attr]


@pytest.mark.parametrize("cleanup", [True, False])
def test_stale_udp_entries_go_to_a_deleted_pod_unless_kube_proxy_deletes_them(
        tmp_path: Path, cleanup: bool) -> None:
    """The classic failure and its fix (pkg/proxy/conntrack CleanStaleEntries): the pod the
    flow is bound to is deleted (1 s grace); with the cleanup, the next datagram makes a new
    entry to the other endpoint; without it, every datagram follows the old entry to an
    address no pod has, flooded on cbr0 and never answered."""
    c = cluster(tmp_path, grace_s=1)
    c.model.config.control.conntrack_cleanup = cleanup
    victim = first_backend(c)
    victim_ip = str(c.model.pods[victim].ip)
    c.scenario.changes = [Change(2500 * MS, "delete", "Pod", *victim.split("/"))]
    out = tmp_path / "out"
    result = c.run(out, keep=True)
    validate_capture(out / "capture.pcapng")
    flow = result.flows[0]
    gone = [e for e in of(result, Event.SYNC) if e.host == "node-1" and e.t == 3500 * MS]
    assert gone, "kube-proxy syncs when the pod is gone"
    deleted = gone[0].detail.deleted  # type: ignore[union-attr]
    if cleanup:
        assert flow.answered == 12
        assert len(deleted) == 1 and f"src={victim_ip}" in deleted[0]
        assert not result.impact
    else:
        assert flow.answered == 4  # t = 0, 1, 2, 3 s: the pod answered until it was killed
        assert not deleted
        assert result.impact["udp"] == [f"8 of 9 unanswered after delete Pod {victim} at 2.5 s"]
        floods = [e for e in result.events if e.event is Event.FLOOD and e.t > 3500 * MS]
        assert floods, "the bridge floods frames for the MAC whose port is gone"


def test_the_trace_and_frames_name_the_rule_generation(tmp_path: Path) -> None:
    c = cluster(tmp_path, grace_s=1)
    victim = first_backend(c)
    c.scenario.changes = [Change(2500 * MS, "delete", "Pod", *victim.split("/"))]
    out = tmp_path / "out"
    c.run(out)
    lines = [json.loads(x) for x in (out / "trace.jsonl").read_text().splitlines()]
    sync = [x for x in lines if x["event"] == "sync" and x["host"] == "node-1"]
    assert [x["generation"] for x in sync] == [1, 2]
    late = [x for x in lines if x["event"] == "netfilter" and x["host"] == "node-1"
            and x["t"] > 3500 * MS]
    assert late and all("[rules gen 2]" in x["summary"] for x in late)
    early = [x for x in lines if x["event"] == "netfilter" and x["t"] < 2500 * MS]
    assert early and not any("[rules gen" in x["summary"] for x in early)


def test_node_tables_are_written_at_each_change(tmp_path: Path) -> None:
    c = cluster(tmp_path, grace_s=1)
    victim = first_backend(c)
    c.scenario.changes = [Change(2500 * MS, "delete", "Pod", *victim.split("/"))]
    out = tmp_path / "out"
    c.run(out)
    node = out / "nodes" / "node-1"
    assert (node / "at-2.5s" / "iptables-save.txt").is_file()
    before = (node / "at-2.5s" / "iptables-save.txt").read_text()
    after = (node / "at-3.5s" / "iptables-save.txt").read_text()
    ip = str(c.model.pods[victim].ip)
    assert f"{ip}/32" not in after and f"{ip}:9000" not in after
    assert "KUBE-SVC" in before


def test_scale_up_makes_pods_with_new_addresses_after_pod_startup(tmp_path: Path) -> None:
    """A ReplicaSet scaled up creates pods at once; each is Ready ``podStartup`` later with
    the address host-local gives after its last one; the EndpointSlice controller and
    kube-proxy follow."""
    c = cluster(tmp_path, replicas=1, count=1)
    before = {k: p.ip for k, p in c.model.pods.items()}
    c.scenario.changes = [Change(1 * SECOND, "scale", "Deployment", "default", "echo",
                                 replicas=3)]
    result = c.run()
    model = result.topology.model
    new = [k for k in model.pods if k not in before]
    assert len(new) == 2 and all(k.startswith("default/echo-") for k in new)
    for key in new:
        node = model.pods[key].node
        taken = [ip for k, ip in before.items() if model.pods.get(k) and
                 model.pods[k].node == node]
        assert all(model.pods[key].ip > ip for ip in taken)
    assert syncs(result)[0] == 2 * SECOND
    svc = model.services["default/echo"]
    assert len(svc.ports[0].endpoints) == 3


def test_a_failed_node_drops_what_reaches_it_and_is_marked_not_ready_after_the_grace(
        tmp_path: Path) -> None:
    """--node-monitor-grace-period later the node lifecycle controller marks its pods not
    Ready (MarkPodsNotReady): their endpoints go, other nodes' kube-proxy syncs."""
    c = cluster(tmp_path, replicas=3, count=1)
    grace = 50 * SECOND
    c.scenario.changes = [Change(1 * SECOND, "fail", "Node", "", "node-2")]
    result = c.run(until_ns=60 * SECOND)
    model = result.topology.model
    on_2 = [p for p in model.pods.values() if p.node == "node-2"]
    assert on_2 and all(not p.pod.ready for p in on_2)
    marked = [e for e in of(result, Event.CHANGE) if "Ready=Unknown" in e.summary]
    assert [e.t for e in marked] == [1 * SECOND + grace]
    assert 1 * SECOND + grace in syncs(result, "node-1")
    assert all(e.t < 1 * SECOND for e in of(result, Event.SYNC) if e.host == "node-2")


def test_frames_sent_to_a_failed_node_are_dropped_as_node_down(tmp_path: Path) -> None:
    c = cluster(tmp_path, replicas=3, count=4)
    on_2 = [k for k, p in c.model.pods.items() if p.node == "node-2" and "echo" in k]
    assert on_2
    c.scenario.changes = [Change(500 * MS, "fail", "Node", "", "node-2")]
    result = c.run(until_ns=10 * SECOND)
    downs = [e for e in result.events if e.drop_reason is DropReason.NODE_DOWN]
    assert all(e.host in {"node-2", *on_2} for e in downs)


def test_same_input_gives_the_same_bytes(tmp_path: Path) -> None:
    def once(name: str) -> tuple[bytes, bytes]:
        c = cluster(tmp_path, replicas=2, grace_s=1)
        pods = sorted(k for k in c.model.pods if k.startswith("default/echo"))
        c.scenario.changes = [Change(1500 * MS, "delete", "Pod", *pods[0].split("/")),
                              Change(2 * SECOND, "scale", "Deployment", "default", "echo",
                                     replicas=3),
                              Change(4 * SECOND, "fail", "Node", "", "node-3")]
        out = tmp_path / name
        c.run(out)
        return (out / "capture.pcapng").read_bytes(), (out / "trace.jsonl").read_bytes()

    assert once("a") == once("b")


def test_coredns_exits_after_its_lameduck_not_the_grace_period(tmp_path: Path) -> None:
    """kubeadm's Corefile has ``health { lameduck 5s }``: CoreDNS stops 5 s after SIGTERM,
    and the pod goes then, not at its 30 s grace period."""
    c = cluster(tmp_path, count=1)
    dns = sorted(k for k in c.model.pods if k.startswith("kube-system/coredns"))[0]
    c.scenario.changes = [Change(1 * SECOND, "delete", "Pod", *dns.split("/"))]
    result = c.run()
    gone = [e for e in of(result, Event.CHANGE) if "sandbox removed" in e.summary
            and dns in e.summary]
    assert [e.t for e in gone] == [6 * SECOND]


def test_calico_a_deleted_pods_address_meets_the_blocks_blackhole(tmp_path: Path) -> None:
    """Calico's CNI DEL removes the pod's /32 route; the node's ``blackhole <block>`` route
    (BIRD's) then takes its traffic: dropped, no ICMP (RTN_BLACKHOLE)."""
    c = cluster(tmp_path, network="calico", grace_s=1)
    c.model.config.control.conntrack_cleanup = False
    victim = first_backend(c)
    node = c.model.pods[victim].node
    c.scenario.changes = [Change(2500 * MS, "delete", "Pod", *victim.split("/"))]
    result = c.run()
    holes = [e for e in result.events if e.drop_reason is DropReason.BLACKHOLE]
    assert holes and all(e.host == node and e.t > 3500 * MS for e in holes)
    assert result.flows[0].answered == 4



POLICY_EVENTS = """
  - {name: late, from: default/client, to: "echo:9000", protocol: udp, count: 2, start: 4s}
  events:
  - at: 2500ms
    apply:
      apiVersion: networking.k8s.io/v1
      kind: NetworkPolicy
      metadata: {name: deny, namespace: default}
      spec: {podSelector: {matchLabels: {app: echo}}, policyTypes: [Ingress]}
"""


def test_calico_a_policy_applied_mid_run_spares_established_flows(tmp_path: Path) -> None:
    """felix's endpoint chains accept ESTABLISHED first (cali-tw-...: ``-m conntrack
    --ctstate RELATED,ESTABLISHED -j ACCEPT``, felix rules/endpoints.go): a deny-all
    applied at 2.5 s stops the flow that starts after it, not the one already flowing."""
    text = ECHO.replace("REPLICAS", "2").replace("COUNT", "8").replace("NETWORK", "calico")
    path = tmp_path / "policy.yaml"
    path.write_text(text + POLICY_EVENTS)
    out = tmp_path / "out"
    result = pktsim.load(path).run(out, keep=True)
    validate_capture(out / "capture.pcapng")
    udp, late = result.flows
    assert udp.answered == 8
    assert late.answered == 0
    denied = [e for e in result.events if e.flow == "late" and e.event is Event.POLICY
              and not e.detail.allowed]  # type: ignore[union-attr]
    assert denied
    assert "default/deny" in denied[0].summary
    felix = [e for e in of(result, Event.SYNC) if e.detail.component == "felix"]  # type: ignore[union-attr]
    assert {e.host for e in felix} == {"node-1", "node-2", "node-3"}
    assert all(e.t == 2500 * MS for e in felix)


def test_stale_udp_from_the_command_line(tmp_path: Path) -> None:
    """The same story as a user writes it: events in the Traffic document, the cleanup
    switched off in the Cluster document; ``pktsim run`` says what the deletion did."""
    from pktsim.cli import main

    c = cluster(tmp_path)
    victim = first_backend(c)
    text = ECHO.replace("REPLICAS", "2").replace("COUNT", "12").replace("NETWORK", "routes")
    text = text.replace("spec: {network: routes, nodes: 3}",
                        "spec: {network: routes, nodes: 3, kubeProxy: {conntrackCleanup: false}}")
    text = text.replace("      containers:\n      - name: echo",
                        "      terminationGracePeriodSeconds: 1\n      containers:\n"
                        "      - name: echo")
    text += f"  events:\n  - {{at: 2500ms, delete: {victim}}}\n"
    path = tmp_path / "cli.yaml"
    path.write_text(text)
    out = tmp_path / "cli-out"
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["run", str(path), "--out", str(out)])
    assert code == 0
    printed = buf.getvalue()
    assert "udp: udp to echo:9000: ok (4/12 answered)" in printed
    assert f"  8 of 9 unanswered after delete Pod {victim} at 2.5 s" in printed
    validate_capture(out / "capture.pcapng")


ROLLOUT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 4
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 2
      containers: [{name: web, ports: [{containerPort: 8080}]}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: default}
spec: {containers: [{name: c}]}
---
apiVersion: pktsim/v1alpha1
kind: Traffic
spec:
  flows:
  - {name: poll, from: default/client, to: "http://web/", count: 80, interval: 100ms}
  events:
  - at: 1s
    apply:
      apiVersion: apps/v1
      kind: Deployment
      metadata: {name: web, namespace: default}
      spec:
        replicas: 4
        selector: {matchLabels: {app: web}}
        template:
          metadata: {labels: {app: web, version: v2}}
          spec:
            terminationGracePeriodSeconds: 2
            containers: [{name: web, ports: [{containerPort: 8080}]}]
"""


def test_a_rolling_update_keeps_serving_within_max_surge_and_max_unavailable(
        tmp_path: Path) -> None:
    """RollingUpdate with the defaults (25 %/25 % of 4: surge 1, unavailable 1,
    ResolveFenceposts): a new ReplicaSet, new pods with new addresses and the v2 label,
    the old ones gone; never fewer than 3 Ready nor more than 5 pods; the client's
    connections all answered (terminating endpoints leave the rules at once)."""
    path = tmp_path / "rollout.yaml"
    path.write_text(ROLLOUT)
    out = tmp_path / "out"
    result = pktsim.load(path).run(out, keep=True)
    validate_capture(out / "capture.pcapng")
    model = result.topology.model
    web = [p for k, p in model.pods.items() if k.startswith("default/web-")]
    assert len(web) == 4 and all(p.pod.labels.get("version") == "v2" for p in web)
    first = pktsim.load(path).model
    assert not {p.ip for p in web} & {p.ip for k, p in first.pods.items() if "web" in k}
    assert result.flows[0].answered == 80 and result.flows[0].status == "ok"
    changes = of(result, Event.CHANGE)
    assert any("ReplicaSet default/web-" in e.summary and "created (revision 2)" in e.summary
               for e in changes)
    # replay the pods' states from the trace; judge each moment once all of it is done
    state = {k: "ready" for k in first.pods if k.startswith("default/web-")}
    moments: dict[int, tuple[int, int]] = {}
    for e in changes:
        pod = next(iter(e.detail.objects), "")  # type: ignore[union-attr]
        if not pod.startswith("default/web-"):
            continue
        if "created; kube-scheduler" in e.summary:
            state[pod] = "pending"
        elif "running on" in e.summary:
            state[pod] = "ready"
        elif "Terminating" in e.summary:
            state[pod] = "terminating"
        elif "sandbox removed" in e.summary:
            del state[pod]
        alive = [v for v in state.values() if v != "terminating"]
        moments[e.t] = (alive.count("ready"), len(alive))
    assert min(ready for ready, _ in moments.values()) >= 3
    assert max(total for _, total in moments.values()) <= 5


def _with_knobs(tmp_path: Path, knobs: str, events: str, count: int = 1) -> pktsim.Cluster:
    text = ECHO.replace("REPLICAS", "3").replace("COUNT", str(count)).replace(
        "NETWORK", "routes").replace("spec: {network: routes, nodes: 3}",
                                     f"spec: {{network: routes, nodes: 3, {knobs}}}")
    path = tmp_path / "knobs.yaml"
    path.write_text(text + "  events:\n" + events)
    return pktsim.load(path)


def test_pods_of_a_silent_node_are_evicted_after_the_toleration_and_replaced(
        tmp_path: Path) -> None:
    """The not-ready toleration (``--default-unreachable-toleration-seconds``) after the node
    went not ready: its pods are deleted; their ReplicaSet makes new ones on nodes that
    are up; the old ones stay Terminating while their kubelet is down."""
    c = _with_knobs(tmp_path, "controllers: {nodeMonitorGracePeriod: 5s, "
                    "unreachableTolerationSeconds: 10}", "  - {at: 1s, fail: 'node:node-2'}\n")
    on_2 = sorted(k for k, p in c.model.pods.items() if p.node == "node-2" and "echo" in k)
    assert on_2
    result = c.run(until_ns=30 * SECOND)
    model = result.topology.model
    for key in on_2:
        assert model.pods[key].pod.terminating
    evicted = [e for e in of(result, Event.CHANGE) if e.summary.startswith(
        "taint-eviction-controller") and "default/echo" in e.summary]
    assert evicted and all(e.t == 16 * SECOND for e in evicted)
    echo = [p for k, p in model.pods.items() if "echo" in k and not p.pod.terminating]
    assert len(echo) == 3 and all(p.node != "node-2" for p in echo)


def test_eviction_spares_daemonset_pods_and_takes_bare_ones(tmp_path: Path) -> None:
    """A DaemonSet's pods tolerate node.kubernetes.io/unreachable for ever
    (pkg/controller/daemon/util ``AddOrUpdateDaemonPodTolerations``); every other pod, a
    bare one too, gets the 300 s default and is evicted (pkg/controller/tainteviction
    ``processPodOnNode`` looks at tolerations, not owners)."""
    text = """\
apiVersion: pktsim/v1alpha1
kind: Cluster
spec:
  controllers: {nodeMonitorGracePeriod: 1s, unreachableTolerationSeconds: 0}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers: [{name: a, ports: [{containerPort: 80}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: bare}
spec: {nodeName: node-1, containers: [{name: a, ports: [{containerPort: 80}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec: {nodeName: node-2, containers: [{name: curl}]}
---
apiVersion: pktsim/v1alpha1
kind: Traffic
spec:
  flows:
  - {name: p, from: default/client, to: "10.96.0.1:443", count: 4, interval: 1s}
  events:
  - {at: 500ms, fail: "node:node-1"}
"""
    result = pktsim.load(text).run()
    evicted = {e.summary.split()[2] for e in of(result, Event.CHANGE)
               if e.summary.startswith("taint-eviction-controller")}
    assert "default/bare" in evicted
    assert not any(k.startswith("default/agent") for k in evicted)
    pods = result.topology.model.pods
    agent_1 = [p for k, p in pods.items() if k.startswith("default/agent") and p.node == "node-1"]
    assert len(agent_1) == 1 and not agent_1[0].pod.terminating


def test_daemonsets_follow_node_labels(tmp_path: Path) -> None:
    """A DaemonSet applied during the run selects nodes by their labels (kubelet's
    ``kubernetes.io/os``); a node labelled later gets its pod, one that loses the label
    loses it (pkg/controller/daemon ``updateNode``, ``podsShouldBeOnNode``)."""
    daemon = ("{apiVersion: apps/v1, kind: DaemonSet, metadata: {name: agent}, spec: "
              "{selector: {matchLabels: {app: agent}}, template: {metadata: {labels: "
              "{app: agent}}, spec: {nodeSelector: {SELECTOR}, containers: [{name: a}]}}}}")
    text = """\
apiVersion: pktsim/v1alpha1
kind: Cluster
spec: {nodes: 3}
---
apiVersion: pktsim/v1alpha1
kind: Traffic
spec:
  events:
"""
    linux = daemon.replace("SELECTOR", "kubernetes.io/os: linux")
    edge = daemon.replace("agent", "edge").replace("SELECTOR", "role: edge")
    node = ("{{apiVersion: v1, kind: Node, metadata: {{name: node-2, labels: "
            "{{kubernetes.io/os: linux{extra}}}}}}}")
    events = (f"  - {{at: 1s, apply: {linux}}}\n  - {{at: 1s, apply: {edge}}}\n"
              f"  - {{at: 3s, apply: {node.format(extra=', role: edge')}}}\n"
              f"  - {{at: 6s, apply: {node.format(extra='')}}}\n"
              f"  - {{at: 7s, apply: {node.format(extra=', role: edge')}}}\n")
    result = pktsim.load(text + events).run(until_ns=40 * SECOND)
    made = [e for e in of(result, Event.CHANGE) if "running on" in e.summary]
    agents = sorted(e.summary.split()[5] for e in made if "/agent-" in e.summary)
    assert agents == ["node-1", "node-2", "node-3"]
    edges = [(e.t, e.summary.split()[5]) for e in made if "/edge-" in e.summary]
    # labelled at 3 s, Ready 1 s later; labelled again at 7 s, while the first pod is
    # Terminating (grace 30 s): the next one only once it is gone (getNodesToDaemonPods)
    assert edges == [(4 * SECOND, "node-2"), (37 * SECOND, "node-2")]
    gone = [e for e in of(result, Event.CHANGE) if "/edge-" in e.summary
            and "Terminating" in e.summary]
    assert [e.t for e in gone] == [6 * SECOND]


def test_the_endpointslice_batch_period_delays_the_rules(tmp_path: Path) -> None:
    """``--endpointslice-updates-batch-period`` 2s: the endpoint of a pod deleted at 1 s is
    written at 3 s, and kube-proxy syncs then."""
    c = _with_knobs(tmp_path, "controllers: {endpointUpdatesBatchPeriod: 2s}", "")
    victim = sorted(k for k in c.model.pods if k.startswith("default/echo"))[0]
    c = _with_knobs(tmp_path, "controllers: {endpointUpdatesBatchPeriod: 2s}",
                    f"  - {{at: 1s, delete: {victim}}}\n")
    result = c.run()
    published = [e.t for e in of(result, Event.CHANGE)
                 if e.summary.startswith("endpointslice-controller")]
    assert published[0] == 3 * SECOND
    assert syncs(result)[0] == 3 * SECOND


def test_a_service_change_is_not_held_by_the_batch_period(tmp_path: Path) -> None:
    """The batch period is for pod changes (``AddAfter``); a Service's change is queued at
    once (``onServiceUpdate``, pkg/controller/endpointslice endpointslice_controller.go):
    a headless Service made at 1 s has its endpoints, and CoreDNS its records, at once."""
    svc = ("{apiVersion: v1, kind: Service, metadata: {name: echo-hl}, spec: {clusterIP: "
           "None, selector: {app: echo}, ports: [{name: udp, port: 9000, protocol: UDP}]}}")
    text = ECHO.replace("REPLICAS", "2").replace("COUNT", "1").replace("NETWORK", "routes")
    text = text.replace("spec: {network: routes, nodes: 3}", "spec: {network: routes, "
                        "nodes: 3, controllers: {endpointUpdatesBatchPeriod: 2s}}")
    text = text.replace("count: 1}", "count: 1}\n  - {name: hl, from: default/client, "
                        "lookup: echo-hl.default, start: 1500ms}")
    result = pktsim.load(text + f"  events:\n  - {{at: 1s, apply: {svc}}}\n").run()
    hl = next(f for f in result.flows if f.flow == "hl")
    assert hl.status == "ok", hl.line()
    for key, info in result.topology.model.pods.items():
        if key.startswith("default/echo"):
            assert f" A {info.ip}" in hl.line(), hl.line()


def test_an_established_connection_keeps_its_nat_binding_when_the_service_goes(
        tmp_path: Path) -> None:
    """nf_nat binds a connection on its first packet: a 1 MB transfer through the Service
    carries on after kube-proxy removed the Service's rules mid-transfer (minSyncPeriod 0:
    at once), while a connection opened afterwards finds no rule to DNAT it."""
    text = ROLLOUT[:ROLLOUT.index("  events:")].replace(
        'to: "http://web/", count: 80, interval: 100ms', 'to: "web:80", payload: 1000000')
    text = text.replace("kind: Traffic", "kind: Cluster\nspec: {kubeProxy: {minSyncPeriod: 0s}}"
                        "\n---\napiVersion: pktsim/v1alpha1\nkind: Traffic")
    path = tmp_path / "long.yaml"
    path.write_text(text)
    ip = pktsim.load(path).model.services["default/web"].cluster_ip
    text += (f"  - {{name: late, from: default/client, to: '{ip}:80', start: 10ms}}\n"
             "  events:\n  - {at: 1ms, delete: {kind: Service, name: web}}\n")
    path.write_text(text)
    result = pktsim.load(path).run()
    long, late = result.flows
    assert long.ok and long.answered == 1
    sync = [e for e in of(result, Event.SYNC) if e.t == 1 * MS]
    assert sync and any("KUBE-SVC" in line for line in
                        sync[0].detail.removed)  # type: ignore[union-attr]
    carried = [e for e in result.events if e.flow == "poll" and e.event is Event.NAT
               and e.t > 1 * MS and e.summary.startswith("conntrack DNAT")]
    assert carried, "the transfer's later segments are DNATed by their conntrack entry"
    assert not late.ok
    assert not [e for e in result.events if e.flow == "late" and e.event is Event.NAT
                and "DNAT" in e.summary]
