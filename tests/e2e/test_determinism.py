"""The same input and seed give the same run: twice in one process, too."""

from __future__ import annotations

import pktsim


def test_running_a_cluster_twice_replays_the_same_frames_and_trace() -> None:
    cluster = pktsim.demo_cluster(network="vxlan")
    first, second = cluster.run(), cluster.run()
    assert first.memory is not None and second.memory is not None
    assert [f.data for f in first.memory.frames] == [f.data for f in second.memory.frames]
    assert first.trace_text() == second.trace_text()
    assert pktsim.demo_cluster(network="vxlan").run().trace_text() == first.trace_text()
