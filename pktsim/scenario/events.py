"""``spec.events`` of ``kind: Traffic``: what a user does to the cluster while packets flow.

Each entry is ``at:`` (a duration, read as a flow's ``start``) and exactly one action:

- ``apply: {OBJECT}``: a Pod, Deployment, ReplicaSet, StatefulSet, DaemonSet, Service,
  EndpointSlice, NetworkPolicy or Node, read by the loader's own readers (the same checks,
  warnings and errors as a document of the stream, the field path running on from
  ``spec.events[N].apply``).  A workload stays a ``Workload``: ``pktsim.control`` makes its
  pods during the run.
- ``delete: NAMESPACE/POD`` or ``delete: {kind, namespace, name}``.
- ``scale: NAMESPACE/NAME`` (a Deployment) or ``scale: {kind, namespace, name}`` (Deployment,
  ReplicaSet, StatefulSet), with ``replicas:``.
- ``fail: node:NAME`` and ``recover: node:NAME``.

What can be checked before the run is checked here (the shape of each entry) and in
:func:`check_changes` (run by the loader once the stream's workloads are expanded into
pods): that an action names an object that exists at that moment, and that a node is not
failed twice or recovered when it was not failed.  pktsim refuses what it would only
half-model: applying a Node the cluster did not have at the start (a node that joins).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pktsim.errors import ScenarioError
from pktsim.model.objects import Pod, Source
from pktsim.model.timeline import ACTIONS, Change
from pktsim.scenario.fields import Obj, wrong_type
from pktsim.scenario.syntax import DURATION_VALID, dns_label, dns_subdomain
from pktsim.scenario.traffic import read_duration
from pktsim.scenario.workloads import MAX_REPLICAS, WORKLOAD_KINDS

APPLIED = ("Pod", *WORKLOAD_KINDS, "Service", "EndpointSlice", "NetworkPolicy", "Node")
SCALED = ("Deployment", "ReplicaSet", "StatefulSet")
EVENT_FIELDS = ("at", *ACTIONS, "replicas")
REF_FIELDS = ("kind", "namespace", "name")
ACTION_VALID = "exactly one of " + ", ".join(ACTIONS)
NODE_VALID = "node:NAME"
SHOWN_NAMES = 6

# reads one object of an ``apply`` as the stream's documents are read:
# (kind, namespace, name, the object read), or None when it could not be read (reported)
Applier = Callable[[Obj], tuple[str, str, str, Any] | None]


def read_events(doc: Obj, source: Source, apply: Applier) -> list[Change]:
    """The changes of one Traffic document, in file order (the loader sorts them by time)."""
    spec = doc.raw("spec")
    if not isinstance(spec, dict):  # reported by read_traffic
        return []
    out: list[Change] = []
    for path, item in Obj(doc.ctx, "spec", spec).sequence("events"):
        if not isinstance(item, dict):
            wrong_type(doc.ctx, path, item, "a mapping (one event: at and an action)")
            continue
        change = read_event(Obj(doc.ctx, path, item), source, apply)
        if change is not None:
            out.append(change)
    return out


def read_event(obj: Obj, source: Source, apply: Applier) -> Change | None:
    """One entry; None when it cannot be read (every problem recorded)."""
    obj.unknown_keys(EVENT_FIELDS)
    if not obj.has("at"):
        obj.missing("at", DURATION_VALID)
    at = read_duration(obj, "at")
    given = [a for a in ACTIONS if obj.raw(a) is not None]
    if len(given) != 1:
        what = "has no action" if not given else f"has {len(given)} actions ({', '.join(given)})"
        obj.ctx.error(obj.path, None, what, ACTION_VALID)
        return None
    action = given[0]
    if obj.raw("replicas") is not None and action != "scale":
        obj.ctx.error(obj.at("replicas"), obj.raw("replicas"), "is only for scale",
                      "replicas with scale: NAMESPACE/NAME")
    named = _READERS[action](obj, apply)
    if named is None:
        return None
    kind, namespace, name, thing = named
    change = Change(at, action, kind, namespace, name, source=source, path=obj.path)
    if action == "apply":
        change.obj = thing
    elif action == "scale":
        change.replicas = obj.optional_int("replicas", 0, MAX_REPLICAS, required=True)
        if change.replicas is None:
            return None
    return change


_Named = tuple[str, str, str, Any] | None


def _apply(obj: Obj, apply: Applier) -> _Named:
    value = obj.raw("apply")
    if not isinstance(value, dict):
        wrong_type(obj.ctx, obj.at("apply"), value, "a mapping (a Kubernetes object)")
        return None
    return apply(Obj(obj.ctx, obj.at("apply"), value))


def _delete(obj: Obj, apply: Applier) -> _Named:
    return _reference(obj, "delete", APPLIED, "Pod")


def _scale(obj: Obj, apply: Applier) -> _Named:
    return _reference(obj, "scale", SCALED, "Deployment")


def _node(obj: Obj, action: str) -> _Named:
    value = obj.raw(action)
    path = obj.at(action)
    if not isinstance(value, str):
        wrong_type(obj.ctx, path, value, NODE_VALID)
        return None
    head, colon, name = value.partition(":")
    if head != "node" or not colon or dns_subdomain(name) is not None:
        obj.ctx.error(path, value, "is not a node", NODE_VALID)
        return None
    return "Node", "", name, None


def _reference(obj: Obj, action: str, kinds: tuple[str, ...], default: str) -> _Named:
    """``NAMESPACE/NAME`` (a ``default``) or ``{kind, namespace, name}`` of one of ``kinds``."""
    value = obj.raw(action)
    path = obj.at(action)
    text_valid = f"NAMESPACE/NAME (a {default}) or {{kind, namespace, name}}"
    if isinstance(value, str):
        namespace, slash, name = value.partition("/")
        if not slash or dns_label(namespace) is not None or dns_subdomain(name) is not None:
            obj.ctx.error(path, value, f"is not a {default} reference", text_valid)
            return None
        return default, namespace, name, None
    if not isinstance(value, dict):
        wrong_type(obj.ctx, path, value, text_valid)
        return None
    ref = Obj(obj.ctx, path, value)
    ref.unknown_keys(REF_FIELDS)
    kind = ref.choice("kind", kinds, "") if ref.has("kind") else ""
    if not ref.has("kind"):
        ref.missing("kind", " | ".join(kinds))
    name = ref.string("name", required=True, check=dns_subdomain)
    if kind == "Node":
        if ref.has("namespace"):
            obj.ctx.error(ref.at("namespace"), ref.raw("namespace"), "is given for a Node",
                          "no namespace: nodes are cluster-scoped")
        namespace = ""
    else:
        namespace = ref.string("namespace", "default", check=dns_label)
    if not kind or not name:
        return None
    return kind, namespace, name, None


_READERS: dict[str, Callable[[Obj, Applier], _Named]] = {
    "apply": _apply, "delete": _delete, "scale": _scale,
    "fail": lambda obj, apply: _node(obj, "fail"),
    "recover": lambda obj, apply: _node(obj, "recover"),
}


@dataclass(slots=True)
class World:
    """What exists at a moment of the run, as far as load time can tell: keys by kind
    (``ns/name``; a node's name) and the nodes failed."""

    objects: dict[str, set[str]] = field(default_factory=dict)
    failed: set[str] = field(default_factory=set)
    pods: dict[str, Pod] = field(default_factory=dict)  # the pods as they were created

    def has(self, kind: str, key: str) -> bool:
        return key in self.objects.get(kind, set())


def check_changes(changes: list[Change], world: World, errors: list[ScenarioError]) -> None:
    """Walk ``changes`` in time order against ``world`` (which they change as they go)."""
    for change in changes:
        problem = _problem(change, world)
        if problem is not None:
            src = change.source or Source()
            where, value, message, valid = problem
            errors.append(ScenarioError(
                message, file=src.file, document=src.document(),
                field=f"{change.path}.{change.action}{where}", value=value, valid=valid))
            continue
        _apply_to(change, world)


# (what follows ``spec.events[N].ACTION`` in the field's path, the value shown, message, valid)
_Problem = tuple[str, object, str, str]


def _problem(change: Change, world: World) -> _Problem | None:
    kind, key, shown = change.kind, change.key, _shown(change)
    if change.action == "apply":
        return _apply_problem(change, world)
    if change.action == "delete" and kind == "Node":
        return ("", shown, "deletes a node during the run, which is not modelled",
                f"fail: node:{key} (the node stops; recover: brings it back)")
    if not world.has(kind, key):
        return ("", shown, f"names no {kind} that exists at {_moment(change)}",
                f"a {kind} of the stream or applied by an earlier event: {_names(world, kind)}")
    if change.action == "fail" and key in world.failed:
        return "", shown, f"fails node {key}, which has already failed", "a node that is up"
    if change.action == "recover" and key not in world.failed:
        return ("", shown, f"recovers node {key}, which has not failed",
                "a node failed by an earlier event: " + (", ".join(sorted(world.failed))
                                                         or "(none)"))
    return None


def _apply_problem(change: Change, world: World) -> _Problem | None:
    """A Node that joins, or a pod (a workload's pods) pinned to a node that is not there."""
    nodes = world.objects.get("Node", set())
    if change.kind == "Node" and change.key not in nodes:
        return ("", _shown(change), "adds a node during the run, which is not modelled",
                "a Node of the cluster at the start: " + _names(world, "Node"))
    old = world.pods.get(change.key) if change.kind == "Pod" else None
    if old is not None and isinstance(change.obj, Pod):
        changed = _pod_spec_change(old, change.obj)
        if changed:
            return (f".spec.{changed}", _shown(change), "changes a running pod's spec, which "
                    "the API server refuses (pod updates may change labels, annotations and "
                    "images only: ValidatePodUpdate)", "the pod's own spec, or delete it and "
                    "apply a new one")
    spec = getattr(change.obj, "spec", None)  # a Workload's pod template
    pinned = getattr(change.obj, "node_name", None) or getattr(spec, "node_name", None)
    if pinned and pinned not in nodes:
        where = ".spec.nodeName" if change.kind == "Pod" else ".spec.template.spec.nodeName"
        return (where, pinned, f"names no node that exists at {_moment(change)}",
                _names(world, "Node"))
    return None


# Pod fields of the spec and the spec field each one is (pkg/apis/core/validation
# ValidatePodUpdate: what a pod update may not change, among those pktsim reads)
_POD_SPEC = (("containers", "containers"), ("host_network", "hostNetwork"),
             ("hostname", "hostname"), ("subdomain", "subdomain"),
             ("dns_policy", "dnsPolicy"), ("dns_config", "dnsConfig"),
             ("termination_grace_ns", "terminationGracePeriodSeconds"))


def _pod_spec_change(old: Pod, new: Pod) -> str:
    """The first spec field ``new`` changes (a nodeName it leaves out keeps the bound
    node, as kubectl apply's merge does), or ""."""
    if new.node_name is not None and new.node_name != old.node_name:
        return "nodeName"
    return next((name for attr, name in _POD_SPEC
                 if getattr(old, attr) != getattr(new, attr)), "")


def _apply_to(change: Change, world: World) -> None:
    names = world.objects.setdefault(change.kind, set())
    if change.action == "apply":
        names.add(change.key)
        if isinstance(change.obj, Pod) and change.key not in world.pods:
            world.pods[change.key] = change.obj
    elif change.action == "delete":
        names.discard(change.key)
        world.pods.pop(change.key, None)
        world.failed.discard(change.key if change.kind == "Node" else "")
    elif change.action == "fail":
        world.failed.add(change.key)
    elif change.action == "recover":
        world.failed.discard(change.key)


def _moment(change: Change) -> str:
    ms, rest = divmod(change.at_ns, 10**6)
    return f"{ms}ms" if not rest else f"{change.at_ns}ns"


def _names(world: World, kind: str) -> str:
    names = sorted(world.objects.get(kind, set()))
    if not names:
        return "(none)"
    more = ", ..." if len(names) > SHOWN_NAMES else ""
    return ", ".join(names[:SHOWN_NAMES]) + more


def _shown(change: Change) -> str:
    if change.action in ("fail", "recover"):
        return f"node:{change.name}"
    return change.key if change.action != "apply" else f"{change.kind} {change.key}"
