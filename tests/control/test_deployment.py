"""pktsim.control.deployment against upstream's table tests (kubernetes/kubernetes, cited per
test) and a rollout driven step by step, with upstream's availability/surge invariant."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pktsim
from pktsim.control import deployment as dep
from pktsim.control.deployment import (
    CreatePods,
    CreateReplicaSet,
    DeletePods,
    DeploymentState,
    PodState,
    ReplicaSetState,
    ScaleReplicaSet,
    apply,
    new_rs_new_replicas,
    reconcile,
    resolve_fenceposts,
    revision_hash,
)
from pktsim.scenario.workloads import Strategy, template_hash


def _pods(prefix: str, count: int, ready: int, t: float = 0.0) -> tuple[PodState, ...]:
    return tuple(PodState(f"{prefix}-{i}", t, "n1", "Running" if i < ready else "Pending",
                          i < ready, t if i < ready else None) for i in range(count))


def _rs(h: str, replicas: int, ready: int, t: float, template: int,
        desired: int | None = None, most: int | None = None) -> ReplicaSetState:
    return ReplicaSetState(h, template, template, replicas, t, _pods(h, replicas, ready, t),
                           desired, most)


def _d(replicas: int, surge: int | str = 0, unavailable: int | str = 0, template: int = 2,
       kind: str = "RollingUpdate") -> DeploymentState:
    return DeploymentState("ns", "web", 1, replicas, template, Strategy(kind, surge,
                                                                        unavailable))


# deployment_util_test.go TestResolveFenceposts (nil is 0; the "oops"/"urg" rows are
# validation's, tests/scenario reads strategy)
@pytest.mark.parametrize(("surge", "unavailable", "desired", "expected"), [
    ("0%", "0%", 0, (0, 1)), ("39%", "39%", 10, (4, 3)), (0, "39%", 10, (0, 3)),
    ("39%", 0, 10, (4, 0)), (0, 0, 10, (0, 1))])
def test_resolve_fenceposts(surge: str | int, unavailable: str | int, desired: int,
                            expected: tuple[int, int]) -> None:
    assert resolve_fenceposts(surge, unavailable, desired) == expected


# deployment_util_test.go TestNewRSNewReplicas (allRSs = one RS of 5, maxUnavailable 1)
@pytest.mark.parametrize(("kind", "replicas", "new", "surge", "expected"), [
    ("RollingUpdate", 1, 5, 1, 5), ("RollingUpdate", 6, 2, 10, 6), ("Recreate", 3, 1, 1, 3)])
def test_new_rs_new_replicas(kind: str, replicas: int, new: int, surge: int,
                             expected: int) -> None:
    d = _d(replicas, surge, 1, kind=kind)
    assert new_rs_new_replicas(d, [_rs("rs5", 5, 5, 0, 1)], new) == expected


def _pass(d: DeploymentState, old: ReplicaSetState, new: ReplicaSetState) -> dep._Pass:
    return dep._Pass(d, [old, new], 10.0)


def _size(p: dep._Pass, h: str) -> int:
    return next(r.replicas for r in p.rss if r.hash == h)


# rolling_test.go TestDeploymentController_reconcileNewReplicaSet (maxUnavailable 0)
@pytest.mark.parametrize(("replicas", "surge", "old", "new", "scaled", "expected"), [
    (10, 0, 10, 0, False, 0), (10, 2, 10, 0, True, 2), (10, 2, 5, 0, True, 7),
    (10, 2, 10, 2, False, 2), (2, 2, 2, 4, True, 2)])
def test_reconcile_new_replica_set(replicas: int, surge: int, old: int, new: int,
                                   scaled: bool, expected: int) -> None:
    p = _pass(_d(replicas, surge, 0), _rs("old", old, old, 0, 1), _rs("new", new, new, 1, 2))
    assert dep._reconcile_new(p) is scaled
    assert _size(p, "new") == expected


# rolling_test.go TestDeploymentController_reconcileOldReplicaSets (maxSurge 0)
@pytest.mark.parametrize(("replicas", "unavailable", "old", "new", "old_ready", "new_ready",
                          "scaled", "expected"), [
    (10, 0, 10, 0, 10, 0, True, 9), (10, 2, 10, 0, 10, 0, True, 8),
    (10, 2, 10, 0, 8, 0, True, 8), (10, 2, 10, 0, 9, 0, True, 8),
    (10, 2, 8, 2, 8, 0, False, 8)])
def test_reconcile_old_replica_sets(replicas: int, unavailable: int, old: int, new: int,
                                    old_ready: int, new_ready: int, scaled: bool,
                                    expected: int) -> None:
    p = _pass(_d(replicas, 0, unavailable), _rs("old", old, old_ready, 0, 1),
              _rs("new", new, new_ready, 1, 2))
    assert dep._reconcile_old(p) is scaled
    assert _size(p, "old") == expected


# rolling_test.go TestDeploymentController_cleanupUnhealthyReplicas (10 old, 8 ready)
@pytest.mark.parametrize(("ready", "most", "expected"), [(8, 1, 1), (8, 3, 2), (8, 0, 0),
                                                         (10, 3, 0)])
def test_cleanup_unhealthy_replicas(ready: int, most: int, expected: int) -> None:
    p = _pass(_d(10, 0, 2), _rs("old", 10, ready, 0, 1), _rs("new", 0, 0, 1, 2))
    assert dep._cleanup_unhealthy(p, most) == expected
    assert _size(p, "old") == 10 - expected


# sync_test.go TestScale, the "proportional scaling" rows (annotations from the old
# Deployment, maxSurge 0); sizes listed new RS first, then the old ones newest first
@pytest.mark.parametrize(("before", "after", "sizes", "expected"), [
    (5, 10, [2, 3], [4, 6]), (5, 3, [2, 3], [1, 2]), (9, 4, [8, 1], [4, 0]),
    (7, 10, [2, 3, 2], [3, 4, 3]), (13, 8, [2, 8, 3], [1, 5, 2])])
def test_proportional_scaling(before: int, after: int, sizes: list[int],
                              expected: list[int]) -> None:
    n = len(sizes)
    rss = [_rs(f"v{n - i}", size, size, float(n - i), n - i, before, before)
           for i, size in enumerate(sizes)]
    d = _d(after, 0, 0, template=n)
    got = {a.hash: a.replicas for a in reconcile(d, rss, 10.0)
           if isinstance(a, ScaleReplicaSet)}
    assert [got.get(r.hash, r.replicas) for r in rss] == expected


def _pod(name: str, node: str, phase: str, ready: bool, restarts: int,
         ready_since: float | None, created: float, cost: int = 0) -> PodState:
    return PodState(name, created, node, phase, ready, ready_since, False, restarts, cost)


NOW, MONTH, H = 40 * 86400.0, 30 * 86400.0, 3600.0
unscheduled = _pod("unscheduled", "", "Pending", False, 0, None, 0)
pending = _pod("pending", "node", "Pending", False, 0, None, 0)
unknown = _pod("unknown-phase", "node", "Unknown", False, 0, None, 0)
not_ready = _pod("not-ready", "node", "Running", False, 0, None, 0)
ready_zero = _pod("ready-no-last-transition-time", "node", "Running", True, 0, None, 0)
ready_now = _pod("ready-now", "node", "Running", True, 0, NOW, NOW)
ready_then = _pod("ready-then", "node", "Running", True, 0, NOW - MONTH, NOW - MONTH)
restarts = _pod("ready-high-restarts", "node", "Running", True, 10, NOW, NOW)
created_then = _pod("ready-now-created-then", "node", "Running", True, 0, NOW, NOW - MONTH)
low_cost = _pod("low-deletion-cost", "node", "Running", True, 0, NOW, NOW - MONTH, 10)
high_cost = _pod("high-deletion-cost", "node", "Running", True, 0, NOW, NOW - MONTH, 100)
ready_2h = _pod("ready-2-hours", "", "Running", True, 0, NOW - 2 * H, NOW - MONTH)
ready_5h = _pod("ready-5-hours", "", "Running", True, 0, NOW - 5 * H, NOW - MONTH)


# controller_utils_test.go TestSortingActivePodsWithRanks, the inequality rows
@pytest.mark.parametrize(("lesser", "greater"), [
    ((unscheduled, 1), (pending, 2)), ((unscheduled, 2), (pending, 1)),
    ((pending, 1), (unknown, 2)), ((unknown, 1), (not_ready, 2)),
    ((not_ready, 1), (ready_zero, 1)), ((ready_zero, 1), (ready_now, 1)),
    ((ready_now, 2), (ready_zero, 1)), ((ready_now, 1), (ready_then, 1)),
    ((ready_now, 2), (ready_then, 1)), ((restarts, 1), (ready_now, 1)),
    ((ready_now, 2), (restarts, 1)), ((ready_now, 1), (created_then, 1)),
    ((created_then, 2), (ready_now, 1)), ((low_cost, 2), (high_cost, 1)),
    ((ready_2h, 1), (ready_5h, 1))])
def test_sorting_active_pods_with_ranks(lesser: tuple[PodState, int],
                                        greater: tuple[PodState, int]) -> None:
    from pktsim.control.podrank import _less

    assert _less(lesser, greater, NOW) < 0
    assert _less(greater, lesser, NOW) > 0


def test_revision_one_keeps_todays_hash() -> None:
    assert revision_hash(7, "ns", "web", 1) == template_hash(7, "ns", "web")
    assert revision_hash(7, "ns", "web", 2) != revision_hash(7, "ns", "web", 1)


def test_scale_up_and_down_of_a_stable_deployment() -> None:
    rs = _rs(revision_hash(1, "ns", "web", 1), 3, 3, 0, 1, 3, 3)
    up = reconcile(_d(5, template=1), [rs], 1.0, set())
    assert up[0] == ScaleReplicaSet(rs.hash, 5, 5, 5)
    assert isinstance(up[1], CreatePods) and len(up[1].names) == 2
    assert all(n.startswith(f"web-{rs.hash}-") for n in up[1].names)
    down = reconcile(_d(1, template=1), [rs], 1.0)
    assert down[0] == ScaleReplicaSet(rs.hash, 1, 1, 1)
    assert isinstance(down[1], DeletePods) and len(down[1].names) == 2


def test_recreate_waits_for_old_pods_to_be_gone() -> None:
    old = _rs("old", 3, 3, 0, 1, 3, 3)
    d = _d(3, kind="Recreate")
    acts = reconcile(d, [old], 1.0)
    assert acts[0] == ScaleReplicaSet("old", 0, 3, 3) and isinstance(acts[1], DeletePods)
    old = apply([old], acts)[0]
    terminating = tuple(PodState(p.name, 0, "n1", "Running", True, 0, True) for p in old.pods)
    assert reconcile(d, [replace(old, pods=terminating)], 2.0) == []
    acts = reconcile(d, [replace(old, pods=())], 3.0)
    assert isinstance(acts[0], CreateReplicaSet) and acts[0].rs.replicas == 3
    assert isinstance(acts[1], CreatePods) and len(acts[1].names) == 3


class _Engine:
    """The engine's side, minimal: pods appear unready, go at once, Ready when told."""

    def __init__(self, d: DeploymentState, rss: Sequence[ReplicaSetState]) -> None:
        self.d, self.rss, self.now, self.taken = d, list(rss), 0.0, set[str]()

    def step(self) -> list[dep.Action]:
        acts = reconcile(self.d, self.rss, self.now, self.taken)
        rss = apply(self.rss, acts)
        for act in acts:
            if not isinstance(act, CreatePods | DeletePods):
                continue
            i = next(k for k, r in enumerate(rss) if r.hash == act.hash)
            if isinstance(act, CreatePods):
                new = tuple(PodState(n, self.now, "n1", "Running") for n in act.names)
                rss[i] = replace(rss[i], pods=rss[i].pods + new)
            else:
                kept = tuple(p for p in rss[i].pods if p.name not in act.names)
                rss[i] = replace(rss[i], pods=kept)
        self.rss = rss
        return acts

    def make_ready(self, index: int) -> bool:
        waiting = [(i, p) for i, r in enumerate(self.rss) for p in r.pods if not p.ready]
        if not waiting:
            return False
        i, pod = waiting[index % len(waiting)]
        pods = tuple(PodState(p.name, p.created_at, p.node, "Running", True, self.now)
                     if p.name == pod.name else p for p in self.rss[i].pods)
        self.rss[i] = replace(self.rss[i], pods=pods)
        return True

    def counts(self) -> tuple[int, int]:
        pods = [p for r in self.rss for p in r.pods]
        ok = sum(dep.available(p, self.d.min_ready_seconds, self.now) for p in pods)
        return ok, len(pods)


@settings(max_examples=60, deadline=None)
@given(replicas=st.integers(1, 12), surge=st.one_of(st.integers(0, 4), st.sampled_from(
    ["0%", "25%", "50%", "100%"])), unavailable=st.one_of(st.integers(0, 4), st.sampled_from(
    ["0%", "25%", "50%", "100%"])), order=st.lists(st.integers(0, 50), max_size=400))
def test_rolling_update_keeps_availability_and_surge(replicas: int, surge: int | str,
                                                     unavailable: int | str,
                                                     order: list[int]) -> None:
    if surge in (0, "0%") and unavailable in (0, "0%"):
        unavailable = 1  # validation refuses both 0
    d = _d(replicas, surge, unavailable, template=2)
    most_surge, most_unavailable = dep.max_surge(d), dep.max_unavailable(d)
    old = _rs(revision_hash(1, "ns", "web", 1), replicas, replicas, 0, 1, replicas,
              replicas + most_surge)
    eng = _Engine(d, [old])
    for k in range(1000):
        eng.now = float(k)
        acts = eng.step()
        ok, total = eng.counts()
        assert ok >= replicas - most_unavailable
        assert total <= replicas + most_surge
        assert sum(r.replicas for r in eng.rss) <= replicas + most_surge
        if not acts and not eng.make_ready(order[k] if k < len(order) else 0):
            break
    new = next(r for r in eng.rss if r.template == 2)
    assert new.replicas == replicas and len(new.pods) == replicas
    assert all(r.replicas == 0 and not r.pods for r in eng.rss if r.template != 2)
    names = [p.name for r in eng.rss for p in r.pods]
    assert len(names) == len(set(names))


def test_min_ready_seconds_holds_back_the_old_pods() -> None:
    d = DeploymentState("ns", "web", 1, 2, 2, Strategy("RollingUpdate", 1, 0), 10)
    eng = _Engine(d, [_rs("old", 2, 2, -100, 1, 2, 3)])
    eng.step()  # new RS at 1, one pod
    eng.now = 5.0
    assert eng.make_ready(0)
    assert eng.step() == []  # Ready, not yet available
    assert dep.next_wakeup(d, eng.rss, eng.now) == 15.0
    eng.now = 15.0
    acts = eng.step()
    assert ScaleReplicaSet("old", 1, 2, 3) in acts


def test_a_wake_up_rounded_onto_its_own_instant_does_not_spin() -> None:
    """minReadySeconds: the engine wakes when a pod becomes available; float seconds can put
    that wake-up on a nanosecond where the pod is not yet available (a scale at 999,978 µs
    gives one).  The run must still end, the pod available a nanosecond later at most."""
    from pktsim.build.budget import Budget

    text = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  minReadySeconds: 5
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: http, ports: [{containerPort: 80}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec: {containers: [{name: c}]}
---
apiVersion: pktsim/v1alpha1
kind: Traffic
spec:
  flows: [{name: f, from: default/client, to: 10.96.0.1, protocol: icmp, start: 9s}]
  events:
  - {at: 999978us, scale: default/web, replicas: 2}
"""
    result = pktsim.load(text).run(budget=Budget(horizon_ns=60 * 10**9, max_events=20_000))
    assert not result.stopped, result.stopped
    web = [k for k in result.topology.model.pods if k.startswith("default/web-")]
    assert len(web) == 2
