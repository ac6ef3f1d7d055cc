"""The Deployment and ReplicaSet controllers' decisions, as pure (sans-IO) logic.

Theory of operation
-------------------
The engine (``pktsim.control``) owns time, pods and IPs; this module owns only the
controllers' *choices*.  At a virtual time ``now`` the engine hands over what the
controllers would see in their informers -- the Deployment (:class:`DeploymentState`) and
its ReplicaSets (:class:`ReplicaSetState`, each with its pods, :class:`PodState`) -- and
:func:`reconcile` answers with typed actions, in the order the controllers would issue them:

1. the Deployment controller (pkg/controller/deployment/deployment_controller.go
   ``syncDeployment``): a scaling event (``sync.go`` ``isScalingEvent``) is handled by
   ``sync.go`` ``scale`` (proportional scaling of every active ReplicaSet); otherwise the
   strategy runs, ``rolling.go`` ``rolloutRolling`` or ``recreate.go`` ``rolloutRecreate``.
   Its outputs are :class:`CreateReplicaSet` and :class:`ScaleReplicaSet` (a new
   ``spec.replicas`` plus the ``desired-replicas``/``max-replicas`` annotations that
   ``scaleReplicaSet`` writes, which later proportional scaling reads);
2. the ReplicaSet controller (pkg/controller/replicaset/replica_set.go
   ``manageReplicas``) of every ReplicaSet, on the spec the first step produced: too few
   active pods -> :class:`CreatePods` (with the names, as ``workloads.expand`` makes them);
   too many -> :class:`DeletePods`, chosen by ``getPodsToDelete`` (:mod:`.podrank`).

Each call is one pass of both controllers.  Upstream, a pass that scales up returns before
scaling down (``rolloutRolling``); the engine calls again whenever something changes (a pod
becomes Ready, a pod is gone) and at :func:`next_wakeup` (a pod becoming *available* after
``minReadySeconds``), which is how upstream's informer events and ``AddAfter`` requeues
drive it.  Nothing here reads a clock; the same inputs give the same actions.

Names: upstream's pod-template-hash is ``ComputeHash(template, collisionCount)`` (FNV-32a of
the Go struct's printed form).  pktsim cannot print a Go struct identically, so
:func:`revision_hash` derives it from (seed, namespace, name, revision): *not* upstream's
value, but revision 1 equals ``workloads.template_hash`` so captures of a Deployment that
never rolls keep their names.

Upstream sources: kubernetes/kubernetes pkg/controller/deployment/{rolling,recreate,sync}.go,
pkg/controller/deployment/util/deployment_util.go, pkg/controller/replicaset/replica_set.go,
pkg/controller/controller_utils.go.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field, replace

from pktsim.control.podrank import PodState, pods_to_delete
from pktsim.scenario.workloads import (
    Strategy,
    Workload,
    _digest,
    encode,
    name_suffix,
    template_hash,
)

__all__ = ["Action", "CreatePods", "CreateReplicaSet", "DeletePods", "DeploymentState",
           "PodState", "ReplicaSetState", "ScaleReplicaSet", "apply", "available",
           "max_surge", "max_unavailable", "new_rs_new_replicas", "next_wakeup",
           "reconcile", "resolve_fenceposts", "revision_hash", "scaled_value"]


# -- state ------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ReplicaSetState:
    """One ReplicaSet of the Deployment, as its informer shows it.

    ``template`` is whatever identifies the pod template (equal templates -> the same
    ReplicaSet, as upstream ``EqualIgnoreHash``); ``created`` counts the pods named so far,
    so a new pod never takes the name of a deleted one.
    """

    hash: str  # pod-template-hash; the ReplicaSet is <deployment>-<hash>
    revision: int
    template: Hashable
    replicas: int  # spec.replicas
    created_at: float
    pods: tuple[PodState, ...] = ()
    desired: int | None = None  # annotation deployment.kubernetes.io/desired-replicas
    max_replicas: int | None = None  # annotation deployment.kubernetes.io/max-replicas
    created: int = 0


@dataclass(frozen=True, slots=True)
class DeploymentState:
    """The Deployment's spec (the part the controller reads) and naming inputs."""

    namespace: str
    name: str
    seed: int
    replicas: int
    template: Hashable
    strategy: Strategy = field(default_factory=Strategy)
    min_ready_seconds: int = 0
    workload: Workload | None = None  # for pod names (workloads.name_suffix); None: plain


# -- actions ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class CreateReplicaSet:
    rs: ReplicaSetState  # its replicas are the initial spec.replicas


@dataclass(frozen=True, slots=True)
class ScaleReplicaSet:
    hash: str
    replicas: int
    desired: int
    max_replicas: int


@dataclass(frozen=True, slots=True)
class CreatePods:
    hash: str
    names: tuple[str, ...]  # pod names, without namespace


@dataclass(frozen=True, slots=True)
class DeletePods:
    hash: str
    names: tuple[str, ...]  # in getPodsToDelete order


Action = CreateReplicaSet | ScaleReplicaSet | CreatePods | DeletePods


# -- deployment_util.go -----------------------------------------------------------------------

def scaled_value(value: int | str, total: int, round_up: bool) -> int:
    """apimachinery intstr ``GetScaledValueFromIntOrPercent``: a percent of ``total``."""
    if isinstance(value, int):
        return value
    percent = int(value.rstrip("%"))
    return -(-percent * total // 100) if round_up else percent * total // 100


def resolve_fenceposts(surge: int | str, unavailable: int | str,
                       desired: int) -> tuple[int, int]:
    """deployment_util.go ``ResolveFenceposts``: surge rounds up, unavailable down; both
    resolving to 0 makes unavailable 1 ("surge might not work due to quota")."""
    s = scaled_value(surge, desired, True)
    u = scaled_value(unavailable, desired, False)
    return (s, 1) if s == 0 and u == 0 else (s, u)


def max_unavailable(d: DeploymentState) -> int:
    """deployment_util.go ``MaxUnavailable``: never more than the replicas; 0 for Recreate."""
    if d.strategy.type != "RollingUpdate" or d.replicas == 0:
        return 0
    _, u = resolve_fenceposts(d.strategy.max_surge, d.strategy.max_unavailable, d.replicas)
    return min(u, d.replicas)


def max_surge(d: DeploymentState) -> int:
    """deployment_util.go ``MaxSurge``: 0 unless RollingUpdate."""
    if d.strategy.type != "RollingUpdate":
        return 0
    return resolve_fenceposts(d.strategy.max_surge, d.strategy.max_unavailable, d.replicas)[0]


def new_rs_new_replicas(d: DeploymentState, all_rs: Sequence[ReplicaSetState],
                        new_replicas: int) -> int:
    """deployment_util.go ``NewRSNewReplicas``: grow the new RS up to replicas + maxSurge
    pods in all (spec.replicas, not pods), never past the Deployment's replicas."""
    if d.strategy.type == "Recreate":
        return d.replicas
    total = sum(rs.replicas for rs in all_rs)
    most = d.replicas + max_surge(d)
    if total >= most:
        return new_replicas
    return new_replicas + min(most - total, d.replicas - new_replicas)


def revision_hash(seed: int, namespace: str, name: str, revision: int) -> str:
    """The pod-template-hash of ``revision`` (not upstream's ``ComputeHash``: see top)."""
    if revision <= 1:
        return template_hash(seed, namespace, name)
    return encode(_digest("pod-template-hash", seed, namespace, name, revision), 10)


def available(pod: PodState, min_ready_seconds: int, now: float) -> bool:
    """pkg/api/v1/pod ``IsPodAvailable``: ready for at least minReadySeconds.  Upstream
    compares with ``Before`` on a nanosecond clock; on a virtual clock the instant itself
    counts, so the engine's wake-up at :func:`next_wakeup` sees the pod available."""
    if pod.terminating or not pod.ready:
        return False
    if min_ready_seconds == 0:
        return True
    return pod.ready_since is not None and pod.ready_since + min_ready_seconds <= now


def _active(rs: ReplicaSetState) -> list[PodState]:
    """controller_utils.go ``FilterActivePods``: not terminating, not Succeeded/Failed."""
    return [p for p in rs.pods if not p.terminating and p.phase not in ("Succeeded", "Failed")]


def _available_count(rs: ReplicaSetState, d: DeploymentState, now: float) -> int:
    """ReplicaSet status.availableReplicas (replica_set_utils.go ``calculateStatus``)."""
    return sum(available(p, d.min_ready_seconds, now) for p in _active(rs))


# -- the Deployment controller ----------------------------------------------------------------

class _Pass:
    """One syncDeployment: the ReplicaSets as the controller's writes leave them."""

    def __init__(self, d: DeploymentState, rss: Sequence[ReplicaSetState], now: float) -> None:
        self.d, self.now = d, now
        self.rss = sorted(rss, key=lambda r: (r.created_at, r.hash))  # ByCreationTimestamp
        self.actions: list[Action] = []

    @property
    def new(self) -> ReplicaSetState | None:
        return next((r for r in self.rss if r.template == self.d.template), None)

    @property
    def old(self) -> list[ReplicaSetState]:
        return [r for r in self.rss if r.template != self.d.template]

    def scale(self, rs: ReplicaSetState, replicas: int, *, event: bool = True) -> bool:
        """sync.go ``scaleReplicaSetAndRecordEvent`` (nothing when the size is already
        right) or, ``event=False``, ``scaleReplicaSet`` (which also rewrites the two
        annotations when they differ); returns whether the size changed."""
        desired, most = self.d.replicas, self.d.replicas + max_surge(self.d)
        if event and rs.replicas == replicas:
            return False
        if rs.replicas == replicas and rs.desired == desired and rs.max_replicas == most:
            return False
        self.actions.append(ScaleReplicaSet(rs.hash, replicas, desired, most))
        updated = replace(rs, replicas=replicas, desired=desired, max_replicas=most)
        self.rss = [updated if r.hash == rs.hash else r for r in self.rss]
        return rs.replicas != replicas

    def available(self, rss: Sequence[ReplicaSetState]) -> int:
        return sum(_available_count(r, self.d, self.now) for r in rss)

    def create_new(self) -> ReplicaSetState:
        """sync.go ``getNewReplicaSet`` with createIfNotExisted: revision = max + 1, the
        initial size from ``NewRSNewReplicas`` over the old ReplicaSets."""
        revision = max((r.revision for r in self.rss), default=0) + 1
        d = self.d
        replicas = new_rs_new_replicas(d, self.old, 0)
        created = max((r.created_at for r in self.rss), default=self.now)
        rs = ReplicaSetState(revision_hash(d.seed, d.namespace, d.name, revision), revision,
                             d.template, replicas, max(created, self.now), (), d.replicas,
                             d.replicas + max_surge(d))
        self.actions.append(CreateReplicaSet(rs))
        self.rss.append(rs)
        return rs


def _is_scaling_event(p: _Pass) -> bool:
    """sync.go ``isScalingEvent``: an active RS annotated for another replica count."""
    return any(r.desired is not None and r.desired != p.d.replicas
               for r in p.rss if r.replicas > 0)


def _proportion(rs: ReplicaSetState, p: _Pass, to_add: int, added: int) -> int:
    """deployment_util.go ``GetProportion`` and ``getReplicaSetFraction``."""
    if rs.replicas == 0 or to_add == 0 or to_add == added:
        return 0
    if p.d.replicas == 0:
        fraction = -rs.replicas
    else:
        before = rs.max_replicas or sum(len(_active(r)) for r in p.rss)  # d.Status.Replicas
        size = rs.replicas * (p.d.replicas + max_surge(p.d)) / before if before else 0.0
        fraction = math.floor(size + 0.5) - rs.replicas  # integer.RoundToInt32
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def _scale(p: _Pass) -> None:
    """sync.go ``scale``: one active RS takes the whole count; a saturated new RS leaves
    nothing to the old; otherwise (RollingUpdate) the difference to replicas + maxSurge is
    shared in proportion, the leftover to the first (largest) RS."""
    new, active = p.new, [r for r in p.rss if r.replicas > 0]
    if len(active) <= 1:
        target = active[0] if active else (new or (p.rss[-1] if p.rss else None))
        if target is not None and target.replicas != p.d.replicas:
            p.scale(target, p.d.replicas)
        return
    if new is not None and new.replicas == p.d.replicas == new.desired \
            and _available_count(new, p.d, p.now) == p.d.replicas:  # IsSaturated
        for rs in [r for r in p.old if r.replicas > 0]:
            p.scale(rs, 0)
        return
    if p.d.strategy.type != "RollingUpdate":
        return
    allowed = p.d.replicas + max_surge(p.d) if p.d.replicas > 0 else 0
    to_add = allowed - sum(r.replicas for r in active)
    newer_first = to_add > 0  # ReplicaSetsBySizeNewer / ReplicaSetsBySizeOlder
    active.sort(key=lambda r: (-r.replicas, -r.created_at if newer_first else r.created_at,
                               r.hash))
    sizes: list[int] = []
    added = 0
    for rs in active:
        share = _proportion(rs, p, to_add, added)
        sizes.append(rs.replicas + share)
        added += share
    if to_add != 0:
        sizes[0] = max(0, sizes[0] + to_add - added)
    for rs, size in zip(active, sizes, strict=True):
        p.scale(rs, size, event=False)


def _rolling(p: _Pass) -> None:
    """rolling.go ``rolloutRolling``: scale the new RS up if it may; if it did not, scale
    the old ones down (unhealthy first), within maxUnavailable."""
    if p.new is None:
        p.create_new()
    if not _reconcile_new(p):
        _reconcile_old(p)


def _reconcile_new(p: _Pass) -> bool:
    """rolling.go ``reconcileNewReplicaSet``: whether the new RS's size changed."""
    new = p.new
    assert new is not None
    if new.replicas > p.d.replicas:
        return p.scale(new, p.d.replicas)
    return p.scale(new, new_rs_new_replicas(p.d, p.rss, new.replicas))


def _reconcile_old(p: _Pass) -> bool:
    """rolling.go ``reconcileOldReplicaSets``: only as far as the new RS's unavailable pods
    and minAvailable leave room; whether anything was scaled down."""
    new = p.new
    assert new is not None
    if sum(r.replicas for r in p.old) == 0:
        return False
    min_available = p.d.replicas - max_unavailable(p.d)
    new_unavailable = new.replicas - _available_count(new, p.d, p.now)
    most = sum(r.replicas for r in p.rss) - min_available - new_unavailable
    if most <= 0:
        return False
    return _cleanup_unhealthy(p, most) + _scale_down_old(p) > 0


def _cleanup_unhealthy(p: _Pass, most: int) -> int:
    """rolling.go ``cleanupUnhealthyReplicas``: old RSs (oldest first) lose their
    unavailable replicas first, at most ``most`` in all; returns how many."""
    cleaned = 0
    for rs in [r for r in p.old if r.replicas > 0]:
        if cleaned >= most:
            break
        unhealthy = rs.replicas - _available_count(rs, p.d, p.now)
        if unhealthy <= 0:
            continue
        count = min(most - cleaned, unhealthy)
        p.scale(rs, rs.replicas - count)
        cleaned += count
    return cleaned


def _scale_down_old(p: _Pass) -> int:
    """rolling.go ``scaleDownOldReplicaSetsForRollingUpdate``: down by what is available
    above minAvailable, oldest RS first; returns how many."""
    can = p.available(p.rss) - (p.d.replicas - max_unavailable(p.d))
    done = 0
    for rs in list(p.old):
        if done >= can:
            break
        if rs.replicas == 0:
            continue
        count = min(rs.replicas, can - done)
        p.scale(rs, rs.replicas - count)
        done += count
    return done


def _recreate(p: _Pass) -> None:
    """recreate.go ``rolloutRecreate``: old RSs to 0; nothing more while any old pod is
    still there (``oldPodsRunning``, terminating ones too); then the new RS at full size."""
    scaled = False
    for rs in [r for r in p.old if r.replicas > 0]:  # scaleDownOldReplicaSetsForRecreate
        scaled = p.scale(rs, 0) or scaled
    if scaled:
        return
    if any(pod.phase not in ("Succeeded", "Failed") for r in p.old for pod in r.pods):
        return
    new = p.new or p.create_new()
    if new.replicas != p.d.replicas:  # scaleUpNewReplicaSetForRecreate
        p.scale(new, p.d.replicas)


# -- the ReplicaSet controller and the entry points -------------------------------------------

def _pod_names(d: DeploymentState, rs: ReplicaSetState, count: int,
               taken: set[str]) -> tuple[tuple[str, ...], int]:
    """Names as ``workloads.expand`` makes them (revision 1: the same names), a fresh
    index per pod; a name in ``taken`` (``namespace/name``) is drawn again."""
    prefix = f"{d.name}-{rs.hash}-"
    names: list[str] = []
    index = rs.created
    for _ in range(count):
        key: object = index if rs.revision <= 1 else f"{rs.revision}/{index}"
        attempt = 0
        while True:
            suffix = (name_suffix(d.seed, d.workload, key, attempt) if d.workload else
                      encode(_digest("pod-name", d.seed, d.namespace, "Deployment", d.name,
                                     key, attempt), 5))
            if f"{d.namespace}/{prefix}{suffix}" not in taken:
                break
            attempt += 1
        taken.add(f"{d.namespace}/{prefix}{suffix}")
        names.append(prefix + suffix)
        index += 1
    return tuple(names), index


def _manage_replicas(d: DeploymentState, rss: Sequence[ReplicaSetState], now: float,
                     taken: set[str]) -> list[Action]:
    """replica_set.go ``manageReplicas`` for each RS, oldest first: create the missing
    pods, or delete the surplus in ``getPodsToDelete`` order (related pods: the
    Deployment's, of every ReplicaSet)."""
    related = [pod for r in rss for pod in r.pods]
    out: list[Action] = []
    for rs in rss:
        diff = len(_active(rs)) - rs.replicas
        if diff < 0:
            names, _ = _pod_names(d, rs, -diff, taken)
            out.append(CreatePods(rs.hash, names))
        elif diff > 0:
            chosen = pods_to_delete(_active(rs), related, diff, now)
            out.append(DeletePods(rs.hash, tuple(p.name for p in chosen)))
    return out


def reconcile(d: DeploymentState, rss: Sequence[ReplicaSetState], now: float,
              taken: set[str] | None = None) -> list[Action]:
    """One pass of the Deployment controller then the ReplicaSet controllers at ``now``.

    ``taken`` holds ``namespace/name`` of every pod in the cluster (names are drawn again
    on a collision) and grows with the names of :class:`CreatePods`.  Apply the actions
    with :func:`apply` (the ReplicaSets' specs) and by making/deleting the pods.
    """
    p = _Pass(d, rss, now)
    if _is_scaling_event(p):  # sync.go sync: no new RS is made for a scaling event
        _scale(p)
    elif d.strategy.type == "Recreate":
        _recreate(p)
    else:
        _rolling(p)
    return p.actions + _manage_replicas(d, apply(p.rss, []), now,
                                        set() if taken is None else taken)


def apply(rss: Sequence[ReplicaSetState], actions: Sequence[Action]) -> list[ReplicaSetState]:
    """The ReplicaSets after the Deployment controller's writes (``CreateReplicaSet``,
    ``ScaleReplicaSet``) and the pod counters of ``CreatePods``; pods themselves change
    only when the engine says so (it passes new :class:`PodState` in the next call)."""
    out = {r.hash: r for r in rss}
    for act in actions:
        if isinstance(act, CreateReplicaSet):
            out[act.rs.hash] = act.rs
        elif isinstance(act, ScaleReplicaSet):
            out[act.hash] = replace(out[act.hash], replicas=act.replicas, desired=act.desired,
                                    max_replicas=act.max_replicas)
        elif isinstance(act, CreatePods):
            out[act.hash] = replace(out[act.hash], created=out[act.hash].created
                                    + len(act.names))
    return sorted(out.values(), key=lambda r: (r.created_at, r.hash))


def next_wakeup(d: DeploymentState, rss: Sequence[ReplicaSetState],
                now: float) -> float | None:
    """When a Ready pod becomes available (minReadySeconds), the controllers act again
    (replica_set.go ``syncReplicaSet`` ``AddAfter``); None: no such pod."""
    if d.min_ready_seconds == 0:
        return None
    times = [p.ready_since + d.min_ready_seconds for r in rss for p in _active(r)
             if p.ready and p.ready_since is not None
             and p.ready_since + d.min_ready_seconds > now]
    return min(times, default=None)
