"""A Deployment during the run: its controllers' decisions (``pktsim.control.deployment``)
carried out on the cluster's pods.

Each time the Deployment or one of its pods changes (and when a pod becomes available after
``minReadySeconds``), ``reconcile_deployment`` hands the controllers what their informers
would show -- the ReplicaSets with their pods' phase, readiness, node and age -- and does
what they answer: a new ReplicaSet for a new pod template (a rollout: surge and scale down
as ``maxSurge``/``maxUnavailable`` allow, waiting for new pods to be Ready), pods created
(each Ready ``podStartup`` later) or deleted gracefully, ``Recreate``'s all-old-first.
"""

from __future__ import annotations

import math
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

from pktsim.control.deployment import (
    CreatePods,
    CreateReplicaSet,
    DeletePods,
    DeploymentState,
    PodState,
    ReplicaSetState,
    ScaleReplicaSet,
    apply,
    next_wakeup,
    reconcile,
    revision_hash,
)
from pktsim.model.objects import Pod
from pktsim.model.timeline import SECOND

if TYPE_CHECKING:
    from pktsim.control.plane import ControlPlane

CONTROLLER = "deployment-controller"


def template_of(work: Any) -> str:
    """What tells two pod templates apart (upstream: ``EqualIgnoreHash``)."""
    return repr((work.spec, sorted(work.template.labels.items())))


def _first_rs(plane: ControlPlane, work: Any) -> ReplicaSetState:
    ns, _, name = work.key
    digest = revision_hash(plane.model.config.seed, ns, name, 1)
    plane.rs_templates[(work.key, digest)] = work
    return ReplicaSetState(digest, 1, template_of(work), work.replicas, 0.0,
                           created=work.replicas)


def know_replica_sets(plane: ControlPlane, work: Any) -> None:
    """The Deployment's ReplicaSets as they are before a change of its template."""
    if work.key not in plane.replica_sets:
        plane.replica_sets[work.key] = [_first_rs(plane, work)]


def _owned(pod: Pod, name: str) -> bool:
    return pod.owner == f"Deployment/{name}" or pod.owner.startswith(f"ReplicaSet/{name}-")


def _pod_states(plane: ControlPlane, ns: str, name: str) -> dict[str, list[PodState]]:
    """The Deployment's pods per pod-template-hash, as the ReplicaSet informer shows them."""
    out: dict[str, list[PodState]] = {}
    for info in plane.model.pods.values():
        pod = info.pod
        if pod.namespace == ns and _owned(pod, name):
            started = plane.started.get(info.key, 0) / SECOND
            out.setdefault(pod.labels.get("pod-template-hash", ""), []).append(PodState(
                pod.name, plane.created.get(info.key, 0) / SECOND, info.node, "Running",
                pod.ready, started if pod.ready else None, pod.terminating))
    for key, pending in plane.pending.items():
        pod = pending.pod
        if pod.namespace == ns and _owned(pod, name):
            out.setdefault(pod.labels.get("pod-template-hash", ""), []).append(PodState(
                pod.name, plane.created.get(key, 0) / SECOND, pending.node))
    return out


def reconcile_deployment(plane: ControlPlane, work: Any) -> None:
    """One pass of the Deployment and ReplicaSet controllers, carried out now."""
    key = work.key
    ns, _, name = key
    rss = plane.replica_sets.get(key) or [_first_rs(plane, work)]
    pods = _pod_states(plane, ns, name)
    rss = [replace(rs, pods=tuple(pods.get(rs.hash, ()))) for rs in rss]
    d = DeploymentState(ns, name, plane.model.config.seed, work.replicas, template_of(work),
                        work.strategy, work.min_ready_seconds, workload=work)
    now = plane.driver.now / SECOND
    actions = reconcile(d, rss, now, {*plane.model.pods, *plane.pending})
    plane.replica_sets[key] = apply(rss, actions)
    for act in actions:
        _carry_out(plane, work, act)
    wake = next_wakeup(d, plane.replica_sets[key], now)
    if wake is not None:  # float seconds may round a wake-up onto this very instant,
        # where the pod is still not available: the next nanosecond at the earliest
        at = max(math.ceil(wake * SECOND), plane.driver.now + 1)
        plane.driver.at(at, partial(plane.reconcile_workload, key))


def _carry_out(plane: ControlPlane, work: Any, act: object) -> None:
    ns, _, name = work.key
    if isinstance(act, CreateReplicaSet):
        plane.rs_templates[(work.key, act.rs.hash)] = work
        plane.note(CONTROLLER, f"ReplicaSet {ns}/{name}-{act.rs.hash} created (revision "
                   f"{act.rs.revision}) with {act.rs.replicas} replicas", (f"{ns}/{name}",))
    elif isinstance(act, ScaleReplicaSet):
        plane.note(CONTROLLER, f"ReplicaSet {ns}/{name}-{act.hash} scaled to {act.replicas}",
                   (f"{ns}/{name}",))
    elif isinstance(act, CreatePods):
        source = plane.rs_templates.get((work.key, act.hash), work)
        for pod_name in act.names:
            plane.create_pod(_pod(source, pod_name, act.hash), "replicaset-controller")
    elif isinstance(act, DeletePods):
        for pod_name in act.names:
            plane.delete_pod(f"{ns}/{pod_name}", "replicaset-controller")


def _pod(work: Any, pod_name: str, digest: str) -> Pod:
    from pktsim.scenario.workloads import workload_pod

    labels = {**work.template.labels, "pod-template-hash": digest}
    return workload_pod(replace(work, template=replace(work.template, labels=labels)),
                        pod_name)
