"""The workload controllers: how many pods a Deployment, ReplicaSet, StatefulSet or
DaemonSet has, and which ones are made or deleted when that changes.

Theory of operation
-------------------
Each controller compares what its workload asks for with the pods it has and acts on the
difference (``reconcile``), whenever one of its pods or the workload changes:

* ReplicaSet (and a Deployment's current ReplicaSet): pods that are not terminating count
  (``controller.FilterActivePods``); too few, new pods are made at once; too many, the
  surplus is deleted in ``ActivePodsWithRanks`` order (pkg/controller/controller_utils.go
  ``Less``, ``pktsim.control.podrank``): unscheduled, then pending before running, not
  ready before ready, more pods of the set on the same node first, then by log2-bucketed
  ready and creation times, the newest first;
* StatefulSet (``podManagementPolicy: OrderedReady``, pkg/controller/statefulset
  stateful_set_control.go): one pod at a time, the lowest missing ordinal first when
  scaling up and only once every other pod is Ready, the highest first when scaling down
  and only once the previous one is gone; a deleted pod comes back under its own name;
* DaemonSet: one pod per node its selector picks, made again when the node's pod is gone.

A Deployment is its own controller's and its ReplicaSets' (``pktsim.control.rollout``, with
the decisions of ``pktsim.control.deployment``): scaling, rolling updates, ``Recreate``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pktsim.control.podrank import PodState, ranked
from pktsim.model.objects import Pod
from pktsim.model.timeline import SECOND, Change
from pktsim.scenario.workloads import expand, name_suffix, workload_pod

if TYPE_CHECKING:
    from pktsim.control.plane import ControlPlane

Key = tuple[str, str, str]  # (namespace, kind, name)


def _owner_key(pod: Pod) -> Key | None:
    kind, _, name = pod.owner.partition("/")
    return (pod.namespace, kind, name) if name else None


def _pods_of(plane: ControlPlane, key: Key) -> list[tuple[Pod, str, bool]]:
    """(pod, node, started) of every pod the workload owns, terminating or not."""
    owner = f"{key[1]}/{key[2]}"
    out = [(p.pod, p.node, True) for p in plane.model.pods.values()
           if p.pod.namespace == key[0] and p.pod.owner == owner]
    out += [(p.pod, p.node, False) for p in plane.pending.values()
            if p.pod.namespace == key[0] and p.pod.owner == owner]
    return out


def reconcile_owner(plane: ControlPlane, pod: Pod) -> None:
    """The pod's controller looks again, after what is being done now is done (its
    informer's event): one pass per moment however many of its pods changed."""
    key = _owner_key(pod)
    if key is not None and key[1] == "ReplicaSet" and key not in plane.workloads:
        parent = (key[0], "Deployment", key[2].rsplit("-", 1)[0])  # a snapshot's pods
        key = parent if parent in plane.workloads else key
    if key is not None and key in plane.workloads:
        plane.reconcile_later(key)


def reconcile(plane: ControlPlane, key: Key) -> None:
    work = plane.workloads.get(key)
    if work is None:
        return
    if work.kind == "Deployment":
        from pktsim.control.rollout import reconcile_deployment

        reconcile_deployment(plane, work)
    elif work.kind == "StatefulSet":
        _stateful_step(plane, work)
    elif work.kind == "DaemonSet":
        _daemons(plane, work)
    else:
        _replica_set(plane, work)


def _taken(plane: ControlPlane) -> set[str]:
    return {*plane.model.pods, *plane.pending}


def _replica_set(plane: ControlPlane, work: Any) -> None:
    key = work.key
    active = [(p, n, s) for p, n, s in _pods_of(plane, key) if not p.terminating]
    component = "replicaset-controller"
    if len(active) < work.replicas:
        made = plane.made.get(key, work.replicas)
        for pod in _new_pods(plane, work, made, work.replicas - len(active)):
            plane.create_pod(pod, component)
        plane.made[key] = made + work.replicas - len(active)
    elif len(active) > work.replicas:
        for pod, _, _ in _ranked(plane, active)[:len(active) - work.replicas]:
            plane.delete_pod(pod.key, component)


def _new_pods(plane: ControlPlane, work: Any, start: int, count: int) -> list[Pod]:
    """``count`` pods of the workload's template, named as ``generateName`` does."""
    seed = plane.model.config.seed
    prefix = f"{work.meta.name}-"
    taken = _taken(plane)
    out = []
    w = work
    for index in range(start, start + count):
        name = _name(seed, w, prefix, index, taken)
        taken.add(f"{work.meta.namespace}/{name}")
        out.append(_one(w, name, None))
    return out


def _name(seed: int, w: Any, prefix: str, key: object, taken: set[str]) -> str:
    attempt = 0
    while f"{w.meta.namespace}/{prefix}{name_suffix(seed, w, key, attempt)}" in taken:
        attempt += 1
    return prefix + name_suffix(seed, w, key, attempt)


def _one(w: Any, name: str, node: str | None) -> Pod:
    pod = workload_pod(w, name)
    if node is not None:
        pod.node_name = node
    return pod


def _ranked(plane: ControlPlane, pods: list[tuple[Pod, str, bool]]) -> list[
        tuple[Pod, str, bool]]:
    """The order pods are deleted in when a ReplicaSet shrinks: replica_set.go
    ``getPodsToDelete`` over its own pods (a ReplicaSet without a Deployment has no
    indirectly related pods), ranked as ``ActivePodsWithRanks`` (``podrank.ranked``)."""
    now = plane.driver.now / SECOND
    states = [PodState(pod.name, plane.created.get(pod.key, 0) / SECOND, node,
                       "Running" if started else "Pending", pod.ready and started,
                       plane.started.get(pod.key, 0) / SECOND if pod.ready and started else None,
                       pod.terminating)
              for pod, node, started in pods]
    by_name = {pod.name: (pod, node, started) for pod, node, started in pods}
    return [by_name[state.name] for state in ranked(states, states, now)]


def _stateful_step(plane: ControlPlane, work: Any) -> None:
    """OrderedReady: nothing while any pod is starting, not Ready or terminating."""
    pods = _pods_of(plane, work.key)
    if any(not started or not p.ready or p.terminating for p, _, started in pods):
        return
    have = {p.name: p for p, _, _ in pods}
    wanted = [f"{work.meta.name}-{i}"
              for i in range(work.ordinal_start, work.ordinal_start + work.replicas)]
    missing = [n for n in wanted if n not in have]
    if missing:
        pod = next(p for p in expand(work, plane.model.config.seed, [], set())
                   if p.name == missing[0])
        plane.create_pod(pod, "statefulset-controller")
        return
    extra = sorted((n for n in have if n not in wanted),
                   key=lambda n: int(n.rsplit("-", 1)[1]), reverse=True)
    if extra:
        plane.delete_pod(have[extra[0]].key, "statefulset-controller")


def _daemons(plane: ControlPlane, work: Any) -> None:
    """One pod per node the nodeSelector picks (the Node's labels, ``kubernetes.io/hostname``
    always among them: kubelet sets it); a pod on a node that no longer matches goes
    (daemon_controller.go ``podsShouldBeOnNode``)."""
    pods = _pods_of(plane, work.key)
    # a terminating pod still counts until it is gone (``getNodesToDaemonPods`` drops only
    # terminal ones): no second pod on a node while the first ends
    covered = {node for _, node, _ in pods}
    seed = plane.model.config.seed
    selector = work.spec.node_selector.items()
    for info in plane.model.node_list():
        labels = {**info.labels, "kubernetes.io/hostname": info.name}
        wanted = all(labels.get(k) == v for k, v in selector)
        if not wanted:
            for pod, node, _ in pods:
                if node == info.name and not pod.terminating:
                    plane.delete_pod(pod.key, "daemonset-controller")
            continue
        if info.name in covered or info.name in plane.failed:
            continue
        name = _name(seed, work, f"{work.meta.name}-", info.name, _taken(plane))
        plane.create_pod(_one(work, name, info.name), "daemonset-controller")


def node_labels_changed(plane: ControlPlane) -> None:
    """A Node's labels changed: every DaemonSet's controller looks again (``updateNode``)."""
    for key, work in sorted(plane.workloads.items()):
        if work.kind == "DaemonSet":
            plane.reconcile_later(key)


def apply_workload(plane: ControlPlane, change: Change) -> None:
    """A new workload makes its pods; a changed one is scaled or rolled out."""
    work = change.obj
    old = plane.workloads.get(work.key)
    if old is not None and old.kind == "Deployment":
        from pktsim.control.rollout import know_replica_sets

        know_replica_sets(plane, old)  # its ReplicaSet is the old template's
    plane.workloads[work.key] = work
    if old is None:
        plane.note("kubectl", f"apply {work.kind} {change.key}: created", (change.key,))
        plane.made[work.key] = 0
        reconcile(plane, work.key)
        return
    if old.spec != work.spec or old.template.labels != work.template.labels:
        plane.note("kubectl", f"apply {work.kind} {change.key}: new pod template",
                   (change.key,))
        if work.kind != "Deployment":  # their own update strategies are not modelled
            plane.note("kubectl", f"{work.kind} {change.key}: its pods keep the old "
                       "template until they are made again", (change.key,))
        reconcile(plane, work.key)
        return
    plane.note("kubectl", f"apply {work.kind} {change.key}: replicas {work.replicas}",
               (change.key,))
    reconcile(plane, work.key)


def scale(plane: ControlPlane, change: Change) -> None:
    key = (change.namespace, change.kind, change.name)
    work = plane.workloads.get(key)
    if work is None:
        plane.note("kubectl", f"scale {change.kind} {change.key}: not found", (change.key,))
        return
    plane.workloads[key] = replace(work, replicas=change.replicas)
    plane.note("kubectl", f"scale {change.kind} {change.key} to {change.replicas} replicas",
               (change.key,))
    reconcile(plane, key)


def delete_workload(plane: ControlPlane, change: Change) -> None:
    """The workload goes; the garbage collector deletes its pods (background cascading)."""
    key = (change.namespace, change.kind, change.name)
    plane.workloads.pop(key, None)
    plane.note("kubectl", f"delete {change.kind} {change.key}", (change.key,))
    for pod, _, _ in _pods_of(plane, key):
        plane.delete_pod(pod.key, "garbage-collector")
