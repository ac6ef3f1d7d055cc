"""The failing-property benchmark (benchmarks/README.md §6): how long a user waits for a
broken property to be reported, with the saved capture of its minimal example.

A user's property test — clusters from ``pktsim.strategies.clusters``, flows from
``flow_lists``, every invariant checked — with one invariant broken on purpose ("no flow
crosses the node network", false as soon as a pod talks to another node) runs under
``pytest --hypothesis-profile pktsim`` in a fresh process in a temporary folder, once with
the profile as the plugin registers it (no explain phase) and once with the explain phase
added back, side by side.  The figure is each run's wall time until pytest exits; the run
must fail, and the plugin must have saved the minimal example's ``capture.pcapng``.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import Outcome

NAME = "failing"
TARGET_S = 30.0
TEST = '''\
from hypothesis import given, strategies as st
from pktsim import invariants
from pktsim.strategies import clusters, flow_lists


@given(st.data())
def test_no_flow_leaves_its_node(data):
    cluster = data.draw(clusters(max_nodes=3))
    result = cluster.run(flows=data.draw(flow_lists(cluster)))
    invariants.check_all(result)
    nodes = {e.host for e in result.events if e.host.startswith("node-")}
    assert len(nodes) <= 1, f"crossed {sorted(nodes)}"  # broken on purpose
'''
WITH_EXPLAIN = '''\
from hypothesis import Phase, settings
settings.register_profile("pktsim", derandomize=True, max_examples=50, deadline=None,
                          phases=list(Phase))
'''


@dataclass(frozen=True)
class FailingConfig:
    explain_too: bool = True  # also time the run with hypothesis' explain phase

    @classmethod
    def quick(cls) -> FailingConfig:
        return cls(explain_too=False)


def configure(quick: bool) -> FailingConfig:
    return FailingConfig.quick() if quick else FailingConfig()


def report_time(explain: bool) -> dict[str, Any]:
    """Run the broken property in a fresh pytest process; its wall time and artefacts."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "test_broken.py").write_text(TEST, encoding="utf-8")
        if explain:  # the plugin's profile, overridden with every phase
            (folder / "conftest.py").write_text(WITH_EXPLAIN, encoding="utf-8")
        t = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               "--hypothesis-profile", "pktsim", "test_broken.py"],
                              cwd=folder, capture_output=True, text=True, timeout=1800)
        seconds = time.perf_counter() - t
        captures = [p.stat().st_size for p in
                    (folder / ".pktsim-failures").glob("*/capture.pcapng")]
    if done.returncode != 1 or not captures:
        raise RuntimeError(f"the broken property did not fail with a saved capture "
                           f"(exit {done.returncode}):\n{done.stdout[-2000:]}")
    return {"seconds": seconds, "capture_bytes": captures[0]}


def run(cfg: FailingConfig) -> Outcome:
    fast = report_time(explain=False)
    figures: dict[str, Any] = {"profile": fast, "target_s": TARGET_S}
    lines = [f"  profile pktsim (no explain phase): reported in {fast['seconds']:.1f} s, "
             f"capture {fast['capture_bytes']} bytes"]
    if cfg.explain_too:
        slow = report_time(explain=True)
        figures["with_explain"] = slow
        figures["ratio"] = slow["seconds"] / fast["seconds"]
        lines.append(f"  with the explain phase: {slow['seconds']:.1f} s "
                     f"({figures['ratio']:.1f}x)")
    met = "met" if fast["seconds"] <= TARGET_S else "NOT met"
    lines.append(f"failing: a broken property reported in {fast['seconds']:.1f} s "
                 f"(target <= {TARGET_S:.0f} s) {met}")
    return Outcome(NAME, figures, lines)
