"""Which pods a ReplicaSet deletes when it has too many: upstream's ranking, sans-IO.

pkg/controller/replicaset/replica_set.go ``getPodsToDelete`` ranks the ReplicaSet's active
pods by how many active pods of the same owner (the Deployment's ReplicaSets: "related
pods") share their node, then sorts them with pkg/controller/controller_utils.go
``ActivePodsWithRanks.Less`` and deletes the first ``diff``.  ``Less`` puts first:

1. unassigned before assigned; 2. Pending < Unknown < Running; 3. not ready before ready;
4. lower ``controller.kubernetes.io/pod-deletion-cost`` first (feature PodDeletionCost, on
   by default); 5. higher rank (more pods on the same node) first; 6. both ready: the more
   recently ready first, compared in log2 buckets of the time since (LogarithmicScaleDown,
   on by default), a tie in the same bucket broken by UID; 7. more container restarts first;
   8. the newer first (log2 buckets of age as well).

Upstream sorts with Go's unstable ``sort.Sort`` and breaks bucket ties by random UIDs;
pktsim has no UIDs and must be deterministic, so the name stands in for the UID and Python's
stable sort keeps the input order for pods ``Less`` calls equal.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
_PHASE_ORDER = {"Pending": 0, "Unknown": 1, "Running": 2}


@dataclass(frozen=True, slots=True)
class PodState:
    """A pod as the controllers see it (times are the engine's virtual seconds)."""

    name: str
    created_at: float
    node: str = ""  # spec.nodeName; "" while unscheduled
    phase: str = "Pending"  # status.phase
    ready: bool = False  # the Ready condition
    ready_since: float | None = None  # the Ready condition's lastTransitionTime
    terminating: bool = False  # metadata.deletionTimestamp set
    restarts: int = 0  # the highest restartCount of its containers
    deletion_cost: int = 0  # annotation controller.kubernetes.io/pod-deletion-cost


def _log_rank(t: float, now: float) -> int:
    """controller_utils.go ``logarithmicRankDiff``'s rank: floor(log2(nanoseconds since))."""
    d = (now - t) * 1e9
    return int(math.log2(d)) if d > 0 else -1


def _by_time(ti: float, tj: float, now: float, ni: str, nj: str) -> int:
    """Newer first (``afterOrZero``), in log2 buckets; a bucket tie -> the name (UID)."""
    diff = _log_rank(ti, now) - _log_rank(tj, now)
    if diff == 0:
        return -1 if ni < nj else (1 if ni > nj else 0)
    return -1 if diff < 0 else 1


def _less(a: tuple[PodState, int], b: tuple[PodState, int], now: float) -> int:
    """controller_utils.go ``ActivePodsWithRanks.Less`` as a cmp function."""
    (pi, ri), (pj, rj) = a, b
    if pi.node != pj.node and (not pi.node or not pj.node):
        return -1 if not pi.node else 1
    oi, oj = _PHASE_ORDER.get(pi.phase, 0), _PHASE_ORDER.get(pj.phase, 0)
    if oi != oj:
        return -1 if oi < oj else 1
    if pi.ready != pj.ready:
        return -1 if not pi.ready else 1
    if pi.deletion_cost != pj.deletion_cost:
        return -1 if pi.deletion_cost < pj.deletion_cost else 1
    if ri != rj:
        return -1 if ri > rj else 1
    if pi.ready and pj.ready and pi.ready_since != pj.ready_since:
        if pi.ready_since is None or pj.ready_since is None:  # afterOrZero: zero first
            return -1 if pi.ready_since is None else 1
        return _by_time(pi.ready_since, pj.ready_since, now, pi.name, pj.name)
    if pi.restarts != pj.restarts:
        return -1 if pi.restarts > pj.restarts else 1
    if pi.created_at != pj.created_at:
        return _by_time(pi.created_at, pj.created_at, now, pi.name, pj.name)
    return 0


def ranked(pods: Sequence[PodState], related: Sequence[PodState],
           now: float) -> list[PodState]:
    """``pods`` in deletion order (``getPodsRankedByRelatedPodsOnSameNode`` + sort)."""
    on_node = Counter(p.node for p in related
                      if not p.terminating and p.phase not in ("Succeeded", "Failed"))
    pairs = [(p, on_node[p.node]) for p in pods]
    pairs.sort(key=functools.cmp_to_key(functools.partial(_less, now=now)))
    return [p for p, _ in pairs]


def pods_to_delete(pods: Sequence[PodState], related: Sequence[PodState], diff: int,
                   now: float) -> list[PodState]:
    """replica_set.go ``getPodsToDelete``: the first ``diff`` (unsorted when all go)."""
    if diff < len(pods):
        return ranked(pods, related, now)[:diff]
    return list(pods)[:diff]
