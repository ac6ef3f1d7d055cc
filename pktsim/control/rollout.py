"""A Deployment's new pod template: a new ReplicaSet takes over from the old one.

Interim: the old pods are deleted and the new ReplicaSet's made at once (``Recreate``
without waiting for the old pods to end).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pktsim.scenario.workloads import _digest, encode

if TYPE_CHECKING:
    from pktsim.control.plane import ControlPlane


def revision_hash(seed: int, namespace: str, name: str, revision: int) -> str:
    """The pod-template-hash of a Deployment's ``revision`` (1: the one it was built with)."""
    from pktsim.scenario.workloads import template_hash

    if revision <= 1:
        return template_hash(seed, namespace, name)
    return encode(_digest("pod-template-hash", seed, namespace, name, revision), 10)


def roll_out(plane: ControlPlane, old: Any, new: Any) -> None:
    key = new.key
    revision = plane.revisions.get(key, 1) + 1
    plane.revisions[key] = revision
    ns, _, name = key
    plane.revision_hash[key] = revision_hash(plane.model.config.seed, ns, name, revision)
    from pktsim.control.replicas import _pods_of, reconcile

    for pod, _, _ in _pods_of(plane, key):
        if not pod.terminating:
            plane.delete_pod(pod.key, "deployment-controller")
    reconcile(plane, key)
