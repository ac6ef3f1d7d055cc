"""The hook pipeline is one table (``netfilter/pipeline.py``), and the docs say what it is.

The table in ``hooks.py``'s docstring must be the data the runner walks; the priorities are
the kernel's (``include/uapi/linux/netfilter_ipv4.h``); each hook runs its stages in
ascending priority; every stage has a runner.
"""

from __future__ import annotations

from pktsim.netfilter import hooks, pipeline
from pktsim.netfilter.pipeline import PIPELINE, Priority


def test_the_docstring_table_is_the_pipeline() -> None:
    assert hooks.__doc__ is not None
    assert pipeline.render() in hooks.__doc__


def test_priorities_are_the_kernels() -> None:
    assert {p.name: int(p) for p in Priority} == {
        "RAW": -300, "CONNTRACK": -200, "MANGLE": -150, "NAT_DST": -100, "FILTER": 0,
        "NAT_SRC": 100, "CONNTRACK_CONFIRM": 2**31 - 1}


def test_each_hook_runs_its_stages_in_priority_order() -> None:
    assert list(PIPELINE) == ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"]
    for hook in PIPELINE.values():
        priorities = [s.priority for s in hook.stages]
        assert priorities == sorted(priorities), hook.name
        assert len(set(priorities)) == len(priorities), hook.name


def test_every_stage_has_a_runner_and_the_runner_has_every_hook() -> None:
    names = {s.name for h in PIPELINE.values() for s in h.stages}
    assert names == set(hooks._RUN)
    assert set(hooks._RUNNERS) == set(PIPELINE)
    for name, (plan, tracks, stages) in hooks._RUNNERS.items():
        assert plan is PIPELINE[name] and tracks == plan.tracks
        assert [hooks._RUN[s.name] for s in plan.stages] == [(run, arg)
                                                           for _, run, arg in stages]


def test_only_hooks_that_track_start_contexts_and_run_raw() -> None:
    for hook in PIPELINE.values():
        raw = pipeline.RAW in hook.stages
        assert raw == hook.tracks, hook.name  # raw runs only where a packet's path starts
        assert all(s.new_only == (s in (pipeline.RAW, pipeline.TRACK)) for s in hook.stages)
