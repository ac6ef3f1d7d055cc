"""A strategy for timelines: the ``spec.events`` of a run, valid for one given cluster.

A timeline is drawn as a list of *plans* (a moment, an action, a choice among the objects
that action may name) and resolved in time order against what exists at each moment, as
the loader's ``check_changes`` will judge it (docs/scenario.md, "Events"): a pod is deleted
only while it exists and once, a node recovers only after it failed and fails only while it
is up, a workload is scaled only if the stream has it.  A plan with nothing to act on at its
moment is left out rather than rejected, so every draw is a timeline and hypothesis never
filters.  Each event is written as a ``spec.events`` entry and read back by the loader's own
readers (``pktsim.scenario.events.read_event``), so a generated ``Change`` is exactly what a
user's file would give.

Shrinking: the plans are a list (hypothesis deletes entries: fewer events), each moment is a
tick counted from ``start_ns`` (it shrinks to 0: earlier events) and each choice an index
into the sorted candidates (it shrinks to the first pod, workload or node).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from pktsim.api import Cluster
from pktsim.model.objects import Source
from pktsim.model.timeline import SECOND, Change
from pktsim.scenario.events import SCALED, read_event
from pktsim.scenario.fields import Ctx, Obj
from pktsim.scenario.loader import State, read_applied
from pktsim.strategies.clusters import _check_range, _check_strategy

MS = 10**6
TIMELINE_ACTIONS = ("delete-pod", "scale", "fail-node", "recover-node", "apply-policy",
                    "apply-service")
# the add-on's namespace: CoreDNS is left alone, so flows by name keep resolving
SPARED_NAMESPACES = ("kube-system",)
Entry = dict[str, Any]


class Timeline(list[Change]):
    """A list of ``Change`` in time order, and the same as ``spec.events`` entries
    (``events``): what to paste under a ``kind: Traffic`` document's ``spec.events``."""

    events: list[Entry]

    def __init__(self, changes: list[Change], events: list[Entry]) -> None:
        super().__init__(changes)
        self.events = events

    def __repr__(self) -> str:
        """The entries, which is what hypothesis prints for a falsifying example: short,
        and what to paste under ``spec.events`` to replay it."""
        return f"Timeline(events={self.events!r})"


@dataclass
class _World:
    """What exists at the moment being resolved (the strategy's own ``check_changes``)."""

    pods: list[str]
    workloads: list[tuple[str, str, str]]  # (kind, namespace, name)
    nodes: list[str]
    up: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    policies: int = 0

    @classmethod
    def of(cls, cluster: Cluster) -> _World:
        pods = sorted(k for k, p in cluster.model.pods.items()
                      if p.pod.namespace not in SPARED_NAMESPACES and not p.pod.host_network)
        works = sorted((w.kind, w.meta.namespace, w.meta.name)
                       for w in cluster.scenario.workloads if w.kind in SCALED
                       and w.meta.namespace not in SPARED_NAMESPACES)
        nodes = sorted(cluster.model.nodes)
        return cls(pods, works, nodes, list(nodes))


def _entry(world: _World, action: str, choice: int, replicas: int,
           cluster: Cluster) -> Entry | None:
    """The ``spec.events`` entry (without ``at``) of one plan, or None when nothing at this
    moment can be the object of ``action``."""
    if action == "delete-pod" and world.pods:
        key = world.pods.pop(choice % len(world.pods))
        return {"delete": key}
    if action == "scale" and world.workloads:
        kind, ns, name = world.workloads[choice % len(world.workloads)]
        return {"scale": {"kind": kind, "namespace": ns, "name": name}, "replicas": replicas}
    if action == "fail-node" and world.up:
        node = world.up.pop(choice % len(world.up))
        world.failed = sorted([*world.failed, node])
        return {"fail": f"node:{node}"}
    if action == "recover-node" and world.failed:
        node = world.failed.pop(choice % len(world.failed))
        world.up = sorted([*world.up, node])
        return {"recover": f"node:{node}"}
    if action == "apply-policy" and cluster.model.pods:
        return {"apply": _policy(cluster, choice, world)}
    services = _reapplied(cluster)
    if action == "apply-service" and services:
        return {"apply": _service(cluster, services[choice % len(services)])}
    return None


def _reapplied(cluster: Cluster) -> list[str]:
    """The Services an ``apply-service`` may change: ClusterIP and NodePort Services with a
    selector, outside kube-system (the API server's ``default/kubernetes`` neither)."""
    return sorted(k for k, info in cluster.model.services.items()
                  if info.service.type in ("ClusterIP", "NodePort") and info.cluster_ip
                  and info.service.selector and not info.service.external_ips
                  and info.service.namespace not in SPARED_NAMESPACES)


def _service(cluster: Cluster, key: str) -> Entry:
    """The Service as it is, applied again with ``sessionAffinity`` switched (ClientIP <->
    None): its rules change (kube-proxy's affinity ``recent`` matches), its endpoints do
    not.  Its cluster IP and node ports are written as allocated (``kubectl apply`` of
    what ``kubectl get`` shows)."""
    info = cluster.model.services[key]
    svc = info.service
    ports = []
    for port in info.ports:
        entry: Entry = {"name": port.spec.name, "port": port.spec.port,
                        "protocol": port.spec.protocol}
        if port.spec.name == "":
            del entry["name"]
        if port.spec.target_port is not None:
            entry["targetPort"] = port.spec.target_port
        if svc.type == "NodePort" and port.node_port:
            entry["nodePort"] = port.node_port
        ports.append(entry)
    spec: Entry = {"type": svc.type, "clusterIP": str(info.cluster_ip),
                   "selector": dict(sorted((svc.selector or {}).items())), "ports": ports,
                   "sessionAffinity": "None" if svc.session_affinity == "ClientIP"
                   else "ClientIP",
                   "publishNotReadyAddresses": svc.publish_not_ready_addresses,
                   "internalTrafficPolicy": svc.internal_traffic_policy}
    if svc.type == "NodePort":
        spec["externalTrafficPolicy"] = svc.external_traffic_policy
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": svc.name, "namespace": svc.namespace}, "spec": spec}


def _policy(cluster: Cluster, choice: int, world: _World) -> Entry:
    """A NetworkPolicy isolating one pod's ingress to its own namespace (only ``calico``
    enforces it; elsewhere it is applied and has no effect, as with a real CNI that does
    not enforce policy)."""
    pods = sorted(cluster.model.pods)
    pod = cluster.model.pods[pods[choice % len(pods)]].pod
    world.policies += 1
    selector = {"matchLabels": dict(sorted(pod.labels.items()))} if pod.labels else {}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": f"timeline-{world.policies}", "namespace": pod.namespace},
            "spec": {"podSelector": selector, "policyTypes": ["Ingress"],
                     "ingress": [{"from": [{"podSelector": {}}]}]}}


def _duration(ns: int) -> str:
    """``at`` as the loader reads it back exactly (``1500ms``, ``250us``, ``7ns``)."""
    for unit, size in (("s", SECOND), ("ms", MS), ("us", 1000)):
        if ns % size == 0:
            return f"{ns // size}{unit}"
    return f"{ns}ns"


def _read_entry(entry: Entry, index: int) -> Change:
    """One ``spec.events`` entry as the loader reads it (its readers and checks)."""
    state = State()
    source = Source("<timeline>", 1, "Traffic")
    ctx = Ctx("<timeline>", source, state.errors, state.warnings)
    change = read_event(Obj(ctx, f"spec.events[{index}]", entry), source,
                        lambda body: read_applied(state, body))
    if state.errors or change is None:  # a bug of this strategy, not of the caller
        raise AssertionError(f"timelines() made an entry the loader refuses: {entry!r}: "
                             + "; ".join(str(e) for e in state.errors))
    return change


Plan = tuple[int, str, int, int]  # (tick, action, choice, replicas)


def timelines(cluster: Cluster, *, min_size: int = 0, max_size: int = 4, start_ns: int = 0,
              end_ns: int = 10 * SECOND, tick_ns: int = 100 * MS, max_replicas: int = 3,
              actions: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[Timeline]:
    """Timelines for ``cluster``: up to ``max_size`` changes at multiples of ``tick_ns`` in
    ``[start_ns, end_ns]``, each one of ``actions`` (default: ``TIMELINE_ACTIONS``, sampled):
    delete a pod that exists (outside kube-system), scale a Deployment, ReplicaSet or
    StatefulSet to ``0..max_replicas``, fail a node that is up, recover one that failed,
    apply a NetworkPolicy, apply a Service again with its session affinity switched.
    Plans with nothing to act on at their moment (a recover with no node failed) are
    dropped, so a timeline may be shorter than drawn, ``min_size`` included."""
    _check_range("min_size", min_size, "max_size", max_size, least=0, most=64)
    _check_range("start_ns", start_ns, "end_ns", end_ns, least=0, most=24 * 3600 * SECOND)
    _check_range("tick_ns", tick_ns, "tick_ns", tick_ns, least=1, most=24 * 3600 * SECOND)
    _check_range("max_replicas", max_replicas, "max_replicas", max_replicas, least=0, most=20)
    chosen = st.sampled_from(TIMELINE_ACTIONS) if actions is None else actions
    _check_strategy("actions", chosen)
    ticks = (end_ns - start_ns) // tick_ns
    plans = st.lists(st.tuples(st.integers(0, ticks), chosen, st.integers(0, 255),
                               st.integers(0, max_replicas)),
                     min_size=min_size, max_size=max_size)
    return plans.map(lambda drawn: _resolve(cluster, drawn, start_ns, tick_ns))


def _resolve(cluster: Cluster, plans: list[Plan], start_ns: int, tick_ns: int) -> Timeline:
    world = _World.of(cluster)
    changes: list[Change] = []
    events: list[Entry] = []
    for tick, action, choice, replicas in sorted(plans, key=lambda p: p[0]):  # stable
        if action not in TIMELINE_ACTIONS:
            raise InvalidArgument(f"actions drew {action!r}: choose from {TIMELINE_ACTIONS}")
        body = _entry(world, action, choice, replicas, cluster)
        if body is None:
            continue
        entry = {"at": _duration(start_ns + tick * tick_ns), **body}
        changes.append(_read_entry(entry, len(events)))
        events.append(entry)
    return Timeline(changes, events)
