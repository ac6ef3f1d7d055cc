"""The control plane during a run: ``spec.events`` and the control loops that follow them.

Theory of operation
-------------------
``ControlPlane`` is installed on a built topology before it runs.  Each ``Change`` is a
driver action at its ``at``; what it sets off is more driver actions, each at the moment the
real component would act (``ControlConfig`` holds the delays):

========================  ==========================================================
a change                  what follows, in order
========================  ==========================================================
``apply`` a Pod           placed and started ``podStartup`` later (sandbox, servers,
                          Ready); the EndpointSlice controller publishes it; kube-proxy
                          syncs (``sync.SyncRunner``); felix writes its endpoint
``delete`` a Pod          Terminating now (EndpointSlice: ready false, serving true,
                          terminating true); SIGTERM; the containers exit at
                          ``terminationGracePeriodSeconds`` (CoreDNS after its
                          ``lameduck 5s``); then CNI DEL; the endpoint goes; a
                          Deployment's ReplicaSet makes a replacement at once
``scale``                 the ReplicaSet controller creates or deletes pods
``apply``/``delete``      Services, EndpointSlices: the controller and kube-proxy;
                          NetworkPolicies: felix rewrites every node's rules
``fail`` a node           it stops forwarding and answering now; after
                          ``nodeMonitorGracePeriod`` the node lifecycle controller marks
                          it and its pods not ready; after the not-ready toleration
                          (300 s) its pods are evicted (deleted, and replaced)
``recover``               it forwards again; kubelet reports its pods Ready (or ends
                          those deleted meanwhile); its kube-proxy syncs
========================  ==========================================================

Every step is a ``change`` event of the trace (host ``control-plane`` or the node), and the
node tables are written at each moment something changed (``nodes/NODE/at-T/``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from pktsim.build.topology import Topology
from pktsim.control import endpoints, kubelet
from pktsim.control.conntrack import cleanup_for, udp_view
from pktsim.control.sync import SyncRunner, resync, sync_event
from pktsim.core.events import ClusterChange, Event, PublishedPort, TraceEvent
from pktsim.devices.dnsapps import CoreDnsApp
from pktsim.devices.outcome import FlowResult
from pktsim.kubeproxy.ports import service_ports
from pktsim.model.cluster import PodInfo, host_ports
from pktsim.model.objects import Pod
from pktsim.model.timeline import SECOND, Change
from pktsim.netfilter.conntrack import Conn
from pktsim.netfilter.hooks import Netfilter

CONTROL_HOST = "control-plane"
COREDNS_LAMEDUCK_NS = 5 * SECOND  # kubeadm's Corefile: ``health { lameduck 5s }``


@dataclass(slots=True)
class Pending:
    """A pod the API has and its node has not started yet."""

    pod: Pod
    node: str
    due: int


class ControlPlane:
    """The API's state and the controllers acting on it; see the module docstring."""

    def __init__(self, topo: Topology, changes: Sequence[Change],
                 results: Sequence[FlowResult] = (),
                 snapshot: Callable[[int], None] | None = None) -> None:
        self.topo, self.model, self.driver = topo, topo.model, topo.driver
        self.config = topo.model.config.control
        self.generation = dict.fromkeys(topo.model.nodes, 0)
        self.runners = {n: SyncRunner(topo, n, self.config.min_sync_period_ns, self._sync)
                        for n in topo.model.nodes}
        self.failed: set[str] = set()
        self.failed_at: dict[str, int] = {}  # node -> when it failed (its timers check it)
        self.pending: dict[str, Pending] = {}
        self.deleting: dict[str, int] = {}  # pod key -> when its deletion was asked
        self.history: list[tuple[int, str]] = []  # (t, label) of every change applied
        self.snapshot = snapshot
        self.made: dict[tuple[str, str, str], int] = {}  # workload -> pods it named so far
        self.created: dict[str, int] = {}  # pod key -> when the API got it (0: at start)
        self.started: dict[str, int] = {}  # pod key -> when it became Ready (0: at start)
        # per Deployment: its ReplicaSets as its controller knows them, and the workload
        # (template) each ReplicaSet was made from
        self.replica_sets: dict[tuple[str, str, str], list[Any]] = {}
        self.rs_templates: dict[tuple[tuple[str, str, str], str], Any] = {}
        self._reconciling: set[tuple[str, str, str]] = set()
        self.workloads: dict[tuple[str, str, str], Any] = {
            w.key: w for w in topo.model.scenario.workloads}
        self._endpoints_due: int | None = None
        for key in topo.model.pods:  # the sandboxes made at build are each pod's first
            topo.model.incarnations.setdefault(key, 1)
        # each node's UDP services as its kube-proxy last cleaned for them (from the start)
        self.udp_views = {n: udp_view(service_ports(topo.model, n)) for n in topo.model.nodes}
        self._results = {r.flow: r for r in results}
        # per flow, at each change: (t, label, sent, answered, errors so far)
        self._marks: dict[str, list[tuple[int, str, int, int, int]]] = {}
        for change in sorted(changes, key=lambda c: c.at_ns):
            self.schedule(change)

    def schedule(self, change: Change) -> None:
        """``change`` happens at its ``at_ns`` (a moment already past: now): the
        constructor's timeline, or one change more for a run already under way (a state
        machine that decides the next change as it goes)."""
        self.driver.at(change.at_ns, partial(self._do, change))

    # -- the trace --------------------------------------------------------------------------
    def note(self, component: str, summary: str, objects: tuple[str, ...] = (),
             host: str = CONTROL_HOST, published: tuple[PublishedPort, ...] = ()) -> None:
        """One ``change`` line of the trace, and the node tables of this moment."""
        self.driver.record(TraceEvent(self.driver.now, "", None, host, "", Event.CHANGE,
                                      f"{component}: {summary}", None,
                                      ClusterChange(component, objects, published)))
        self._snapshot()

    def _snapshot(self) -> None:
        if self.snapshot is not None:
            self.driver.at(self.driver.now, partial(self.snapshot, self.driver.now))

    def summary(self, flow: str) -> list[str]:
        """What each change did to ``flow``: the errors its client saw and the requests
        left unanswered between that change and the next (``N × REASON after CHANGE at
        T s``, ``K of S unanswered after CHANGE at T s``)."""
        result = self._results.get(flow)
        if result is None:
            return []
        marks = self._marks.get(flow, [])
        ends = [(m[2], m[3], m[4]) for m in marks[1:]]
        ends.append((result.sent, result.answered, len(result.errors)))
        out = []
        for (t, label, sent, answered, errs), (sent2, answered2, errs2) in zip(
                marks, ends, strict=True):
            counts: dict[str, int] = {}
            for error in result.errors[errs:errs2]:
                counts[error] = counts.get(error, 0) + 1
            when = f"after {label} at {t / SECOND:g} s"
            out += [f"{n} × {error} {when}" for error, n in counts.items()]
            lost = (sent2 - sent) - (answered2 - answered)
            if lost > 0 and not counts:
                out.append(f"{lost} of {sent2 - sent} unanswered {when}")
        return out

    # -- changes ----------------------------------------------------------------------------
    def _do(self, change: Change) -> None:
        from pktsim.control.actions import ACTIONS  # actions -> replicas -> this module

        now, label = self.driver.now, change.label()
        self.history.append((now, label))
        for flow, r in self._results.items():
            self._marks.setdefault(flow, []).append(
                (now, label, r.sent, r.answered, len(r.errors)))
        ACTIONS[change.action](self, change)

    # -- pods -------------------------------------------------------------------------------
    def create_pod(self, pod: Pod, why: str) -> None:
        """The API has a new pod: scheduled now, started ``podStartup`` later."""
        usable = {n for n in self.model.nodes if n not in self.failed}
        node = kubelet.place(self.model, pod, usable)
        if node is None:
            self.note("kube-scheduler", f"pod {pod.key} stays Pending: no node to run it",
                      (pod.key,))
            return
        due = self.driver.now + self.config.pod_startup_ns
        self.pending[pod.key] = Pending(pod, node, due)
        self.created[pod.key] = self.driver.now
        self.note(why, f"pod {pod.key} created; kube-scheduler bound it to {node}",
                  (pod.key,))
        self.driver.at(due, partial(self.start_pending, pod.key))

    def start_pending(self, key: str) -> None:
        """kubelet starts a bound pod: sandbox, address, servers, Ready."""
        pending = self.pending.pop(key, None)
        if pending is None:
            return
        if pending.node in self.failed:  # kubelet is down: it starts when the node is back
            self.pending[key] = pending
            return
        info = kubelet.allocate(self.model, pending.pod, pending.node)
        if info is None:
            self.note("kubelet", f"pod {key}: no address left on {pending.node} (CNI ADD "
                      "failed)", (key,), host=pending.node)
            return
        self.model.pods[key] = info
        self.started[key] = self.driver.now
        kubelet.add_sandbox(self.topo, info)
        self.note("kubelet", f"pod {key} running on {info.node} at {info.ip} ({info.veth}),"
                  " Ready", (key,), host=info.node)
        self._portmap(info, add=True)
        self.pods_changed(info.node)
        self.reconcile_owner(info.pod)

    def delete_pod(self, key: str, why: str, *, grace_ns: int | None = None) -> None:
        """Graceful deletion: Terminating now, gone when its containers have exited."""
        if key in self.pending:
            del self.pending[key]
            self.note(why, f"pod {key} deleted before it started", (key,))
            return
        info = self.model.pods.get(key)
        if info is None or key in self.deleting:
            return
        self.deleting[key] = self.driver.now
        kubelet.with_status(info, terminating=True)
        grace = info.pod.termination_grace_ns if grace_ns is None else grace_ns
        self.note(why, f"pod {key} Terminating (grace period {grace / SECOND:g} s)", (key,))
        self.publish_endpoints()
        self.reconcile_owner(info.pod)
        if info.node in self.failed:
            return  # kubelet is down: the pod stays Terminating until the node is back
        self._sigterm(info, grace)

    def _sigterm(self, info: PodInfo, grace: int) -> None:
        """kubelet kills the containers: SIGTERM now, SIGKILL when the grace is over.
        CoreDNS exits by itself after its lameduck; other servers run until killed."""
        ns = self.topo.pod_ns.get(info.key)
        exits = grace
        if ns is not None and any(isinstance(a, CoreDnsApp) for a in ns.l4.apps):
            exits = min(grace, COREDNS_LAMEDUCK_NS)
        self.driver.at(self.driver.now + exits, partial(self.end_pod_now, info.key))

    def end_pod_now(self, key: str) -> None:
        """The containers have exited (or were killed): CNI DEL, the pod object goes."""
        info = self.model.pods.get(key)
        if info is None or info.node in self.failed:
            return
        kubelet.remove_sandbox(self.topo, info)
        del self.model.pods[key]
        self.deleting.pop(key, None)
        self.note("kubelet", f"pod {key}'s containers exited; sandbox removed (CNI DEL: "
                  f"{info.veth} gone, {info.ip} released)", (key,), host=info.node)
        self._portmap(info, add=False)
        self.pods_changed(info.node)
        self.reconcile_owner(info.pod)

    def reconcile_owner(self, pod: Pod) -> None:
        """The pod's workload controller looks again (a ReplicaSet replaces a pod being
        deleted at once: terminating pods are not its replicas, ``FilterActivePods``)."""
        from pktsim.control.replicas import reconcile_owner

        reconcile_owner(self, pod)

    def _portmap(self, info: PodInfo, add: bool) -> None:
        """The portmap plugin's ADD or DEL writes the node's hostPort chains at once; an
        ADD then deletes the UDP conntrack entries to its UDP hostPorts, whatever their
        address (plugins/meta/portmap main.go ``cmdAdd``: ``deletePortmapStaleConnections``
        -> ``DeleteConntrackEntriesForDstPort``), so a flow bound to a pod's old address
        follows the new pod."""
        mapped = host_ports(info.pod)
        if not mapped or info.pod.host_network:
            return
        udp = {port for port, proto, _ in mapped if proto == "UDP"}
        cleanup = None
        if add and udp:
            def cleanup(nf: Netfilter, now: int) -> list[Conn]:
                return nf.conntrack.delete_where(
                    now, lambda c: c.proto == 17 and c.orig.dport in udp)
        self._sync(info.node, "portmap", cleanup)

    def reconcile_later(self, key: tuple[str, str, str]) -> None:
        """The workload's controllers act once more, after the current action."""
        if key not in self._reconciling:
            self._reconciling.add(key)
            self.driver.at(self.driver.now, partial(self.reconcile_workload, key))

    def reconcile_workload(self, key: tuple[str, str, str]) -> None:
        from pktsim.control.replicas import reconcile

        self._reconciling.discard(key)
        reconcile(self, key)

    def set_ready(self, info: PodInfo, ready: bool, component: str) -> None:
        if info.pod.ready == ready:
            return
        kubelet.with_status(info, ready=ready)
        if ready:
            self.started[info.key] = self.driver.now
        state = "Ready" if ready else "not Ready"
        self.note(component, f"pod {info.key} {state}", (info.key,))

    # -- the controllers and agents ---------------------------------------------------------
    def pods_changed(self, node: str) -> None:
        """A pod came, went or changed: endpoints, felix on its node (Calico), CoreDNS."""
        self.publish_endpoints()
        if self.model.config.network == "calico":
            self.felix_sync([node])

    def publish_endpoints(self, at_once: bool = False) -> None:
        """The EndpointSlice controller's next update: after the batch period for a pod's
        change (``addPod``/``updatePod``/``deletePod`` queue with ``AddAfter``), at once for
        a Service's (``onServiceUpdate``: ``queue.Add``, pkg/controller/endpointslice
        endpointslice_controller.go) and for a slice a user wrote (no controller between:
        kube-proxy's informer sees it).  pktsim recomputes every slice at each update, so an
        update at once carries the pod changes still waiting too."""
        if at_once:
            self._publish()
            return
        if self._endpoints_due is not None:
            return
        self._endpoints_due = self.driver.now + self.config.endpoint_updates_batch_period_ns
        self.driver.at(self._endpoints_due, self._batch_done)

    def _batch_done(self) -> None:
        self._endpoints_due = None
        self._publish()

    def _publish(self) -> None:
        self.invalidate()
        changed = endpoints.refresh(self.model)
        endpoints.refresh_zones(self.topo.zones, self.model)
        if not changed:
            return
        self.note("endpointslice-controller", "endpoints of " + ", ".join(changed) +
                  " updated", tuple(changed), published=endpoints.published(self.model, changed))
        self.proxy_sync()

    def proxy_sync(self) -> None:
        """Every running node's kube-proxy is told; each syncs when its runner lets it."""
        for node, runner in self.runners.items():
            if node not in self.failed:
                runner.request(self.driver.now)

    def felix_sync(self, nodes: Sequence[str] | None = None) -> None:
        """felix on ``nodes`` (default: all running) rewrites its rules now."""
        self.invalidate()
        for node in nodes if nodes is not None else list(self.model.nodes):
            if node not in self.failed:
                self._sync(node, "felix")

    def _sync(self, node: str, agent: str,
              cleanup: Callable[[Netfilter, int], list[Conn]] | None = None) -> None:
        if node in self.failed:
            return
        self.invalidate()
        self.generation[node] += 1
        if agent == "kube-proxy" and self.config.conntrack_cleanup:
            cleanup = cleanup_for(self.topo, node, self.udp_views)
        sync = resync(self.topo, node, agent, self.generation[node], cleanup)
        self.driver.record(sync_event(self.topo, node, sync))
        self._snapshot()

    def invalidate(self) -> None:
        """What builds share between nodes was made from the old model: made again."""
        shared = self.topo.shared
        for key in ("felix", "felix world", "felix hosts", "kube-proxy node-specific",
                    "calico pods", "portmap pods", "health services"):
            shared.pop(key, None)
        self.topo.kube_proxy_tables.clear()


