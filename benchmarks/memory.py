"""The memory benchmark (benchmarks/README.md §3): peak RSS of 100,000 vs 10,000 packets.

A run streamed to disk (``Cluster.run(out=DIR)``, ``keep=False``: ``capture.pcapng``, one
pcap per interface, ``trace.jsonl``, ``trace.txt`` are written as the run goes) should hold
about the same memory whatever its length: the ratio of the peak RSS of a run 10× longer to
the shorter one's is the figure (target ≤ 1.5×).  Each run is a fresh interpreter (a child
process: ``python -m benchmarks.memory --child ...``) whose peak RSS is read right after
``run()`` returns, so neither the parent's memory nor an earlier run's counts: ``VmHWM``
(``ru_maxrss`` inherits the parent's high-water mark across ``execve`` on Linux; see
``peak_rss_kb``).

**Packets** are the IPv4 packets the two endpoints' stacks sent end to end: the outbound
IPv4 frames on the endpoints' ``eth0`` in ``capture.pcapng`` (ICMP echo requests and
replies, or TCP segments both ways; ARP excluded).  Each packet makes several captured frames
on its way (about 10 on the cross-node path), also reported.

Workloads (``WORKLOADS``), sized to a packet count:

* ``cross-node-ping`` (default): ``default/a`` on node-1 pings ``default/b`` on node-2 over
  ``vxlan``, one echo a (virtual) second, ``packets / 2`` echoes.  The applications' own
  state is constant, so any growth is the simulator's.
* ``cross-node-tcp``: one TCP transfer a -> b:8080 over ``vxlan``, echoed back.  The flow's
  payload is held as bytes by the scenario, the client and the sockets, so this workload
  grows with its length by design: a contrast, not the figure.

When the ratio is over the target (or with ``diagnose``), both runs are repeated under
``tracemalloc`` (a snapshot when the flows have finished, before the sinks close) and the
allocation sites that grew most from the short run to the long one are listed by file:line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from benchmarks.common import Outcome, peak_rss_kb, read_pcapng, two_pods

NAME = "memory"
TARGET_RATIO = 1.5
MSS_PAYLOAD = 1448
ROOT = Path(__file__).resolve().parent.parent



@dataclass(frozen=True)
class MemoryWorkload:
    """A workload sized by packets: its YAML text for a packet count, and its endpoints."""

    name: str
    description: str
    yaml: Callable[[int], str]  # packets wanted -> the scenario's YAML text
    endpoints: tuple[str, ...] = ("default/a:eth0", "default/b:eth0")


def _ping(packets: int) -> str:
    count = max(packets // 2, 1)  # an echo request and its reply
    return two_pods("bench-memory", "{name: ping, from: default/a, to: default/b, "
                    f"protocol: icmp, count: {count}}}", nodes=2, network="vxlan",
                    b_node="node-2")


def _tcp(packets: int) -> str:
    # each MSS-sized segment each way, plus about one ACK per two segments in each direction:
    # ~3 packets per segment of payload, measured on this path
    segments = max(packets // 3, 1)
    return two_pods("bench-memory", "{name: bulk, from: default/a, to: 'default/b:8080', "
                    f"payload: {segments * MSS_PAYLOAD}}}", nodes=2, network="vxlan",
                    b_node="node-2")


WORKLOADS: dict[str, MemoryWorkload] = {w.name: w for w in (
    MemoryWorkload("cross-node-ping", "pod a (node-1) pings pod b (node-2) over vxlan, one "
                   "echo a second; packets/2 echoes", _ping),
    MemoryWorkload("cross-node-tcp", "one TCP transfer pod a (node-1) -> b:8080 (node-2) over "
                   "vxlan, echoed; payload grows with the packets by design", _tcp),
)}
DEFAULT_WORKLOAD = "cross-node-ping"


@dataclass(frozen=True)
class MemoryConfig:
    workload: str = DEFAULT_WORKLOAD
    small: int = 10_000  # packets of the short run
    large: int = 100_000  # packets of the long run
    diagnose: bool = False  # tracemalloc comparison even when the ratio is within target
    top: int = 15  # allocation sites listed by the diagnosis
    workdir: Path | None = None

    @classmethod
    def quick(cls) -> MemoryConfig:
        return cls(small=1_000, large=10_000)


# -- the child: one run in a fresh interpreter ------------------------------------------------

def count_packets(out: Path, endpoints: Sequence[str]) -> tuple[int, int, dict[str, int]]:
    """(packets the endpoints sent, frames captured, packets by IP protocol) from the
    capture, read as a stream (after the peak was taken, so it cannot count)."""
    names = {1: "icmp", 6: "tcp", 17: "udp"}
    wanted = set(endpoints)
    frames, by_proto = 0, Counter[str]()
    for f in read_pcapng(out / "capture.pcapng"):
        frames += 1
        d = f.data
        if f.direction == 2 and f.if_name in wanted and len(d) >= 34 and d[12:14] == b"\x08\x00":
            by_proto[names.get(d[23], f"proto-{d[23]}")] += 1
    return sum(by_proto.values()), frames, dict(by_proto)


def _snapshot_at_end_of_run(path: Path) -> None:
    """Take the tracemalloc snapshot when the flows are done and the sinks still open:
    ``Cluster.run`` calls ``pktsim.api.write_dumps`` right there."""
    import pktsim.api as api

    original = api.write_dumps

    def hook(folder: Path, topo: Any, *rest: Any) -> None:
        tracemalloc.take_snapshot().filter_traces((
            tracemalloc.Filter(False, tracemalloc.__file__),
            tracemalloc.Filter(False, "<frozen importlib._bootstrap*>"),
            tracemalloc.Filter(False, "<unknown>"),
        )).dump(str(path))
        original(folder, topo, *rest)

    api.write_dumps = hook


def child(workload: str, packets: int, out: Path, snapshot: Path | None) -> dict[str, Any]:
    """One run of ``workload`` sized to ``packets``, streamed to ``out``: its figures."""
    import pktsim

    w = WORKLOADS[workload]
    cluster = pktsim.load(w.yaml(packets))
    base_kb = peak_rss_kb()[0]
    if snapshot is not None:
        _snapshot_at_end_of_run(snapshot)
        tracemalloc.start(1)
    start = time.perf_counter()
    result = cluster.run(out=out)
    seconds = time.perf_counter() - start
    peak_kb, maxrss_kb = peak_rss_kb()
    traced = tracemalloc.get_traced_memory()[1] if snapshot is not None else 0
    tracemalloc.stop()
    stats = result.topology.driver.stats
    sent, frames, by_proto = count_packets(out, w.endpoints)
    return {"workload": workload, "asked": packets, "packets": sent, "by_proto": by_proto,
            "frames": frames, "hops": stats.hops, "driver_frames": stats.frames,
            "events": stats.events, "seconds": round(seconds, 3), "base_kb": base_kb,
            "peak_kb": peak_kb, "ru_maxrss_kb": maxrss_kb, "traced_peak_kb": traced // 1024,
            "output_bytes": sum(p.stat().st_size for p in out.rglob("*") if p.is_file()),
            "flows": [f.line() for f in result.flows],
            "ok": bool(result.flows) and all(f.status == "ok" for f in result.flows)}


def spawn(workload: str, packets: int, workdir: Path, snapshot: Path | None = None) \
        -> dict[str, Any]:
    """``child`` in a fresh interpreter; its JSON line back."""
    out = workdir / f"out-{packets}"
    cmd = [sys.executable, "-m", "benchmarks.memory", "--child", workload, str(packets),
           str(out)]
    if snapshot is not None:
        cmd += ["--snapshot", str(snapshot)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"memory child ({workload}, {packets} packets) failed "
                           f"({done.returncode}):\n{done.stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if not figures["ok"]:
        raise RuntimeError(f"the benchmark's flow failed: {figures['flows']}")
    return figures


# -- what grows: two tracemalloc snapshots compared -------------------------------------------

def _short(filename: str) -> str:
    for base in (str(ROOT) + os.sep, sys.prefix + os.sep, sys.base_prefix + os.sep):
        if filename.startswith(base):
            return filename[len(base):]
    return filename


def growth(small: Path, large: Path, top: int) -> list[dict[str, Any]]:
    """The ``top`` allocation sites (file:line) whose live memory grew most, short -> long."""
    before = tracemalloc.Snapshot.load(str(small))
    after = tracemalloc.Snapshot.load(str(large))
    rows = []
    for stat in after.compare_to(before, "lineno")[:top]:
        frame = stat.traceback[0]
        rows.append({"where": f"{_short(frame.filename)}:{frame.lineno}",
                     "grew_kib": round(stat.size_diff / 1024, 1),
                     "small_kib": round((stat.size - stat.size_diff) / 1024, 1),
                     "large_kib": round(stat.size / 1024, 1),
                     "blocks_small": stat.count - stat.count_diff, "blocks_large": stat.count})
    return rows


def diagnose(cfg: MemoryConfig, workdir: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Both runs again under tracemalloc; the allocation sites that grew, as rows and text."""
    snaps = {n: workdir / f"snapshot-{n}.tracemalloc" for n in (cfg.small, cfg.large)}
    for n, snap in snaps.items():
        _say(f"  tracemalloc run of {n:,} packets ...")
        spawn(cfg.workload, n, workdir, snap)
    rows = growth(snaps[cfg.small], snaps[cfg.large], cfg.top)
    text = [f"  {r['grew_kib']:>+10,.1f} KiB  {r['where']}  ({r['small_kib']:,.1f} -> "
            f"{r['large_kib']:,.1f} KiB, {r['blocks_small']:,} -> {r['blocks_large']:,} blocks)"
            for r in rows]
    return rows, text


# -- the benchmark ----------------------------------------------------------------------------

def _say(text: str) -> None:
    print(text, flush=True)


def _line(label: str, r: dict[str, Any]) -> str:
    return (f"  {label}: {r['packets']:,} packets ({r['frames']:,} frames captured, "
            f"{r['hops']:,} hops) in {r['seconds']:.1f} s: peak RSS {r['peak_kb'] / 1024:,.1f} "
            f"MiB (after loading: {r['base_kb'] / 1024:,.1f} MiB)")


def run(config: MemoryConfig | None = None) -> Outcome:
    cfg = config or MemoryConfig()
    if not 0 < cfg.small < cfg.large:
        raise ValueError(f"the long run ({cfg.large:,} packets) must be longer than the short "
                         f"one ({cfg.small:,})")
    w = WORKLOADS[cfg.workload]
    _say(f"memory: workload {w.name} ({w.description}); {cfg.small:,} vs {cfg.large:,} "
         f"packets, each in a fresh process, streamed to disk")
    with tempfile.TemporaryDirectory(prefix="pktsim-bench-mem-", dir=cfg.workdir) as tmp:
        workdir = Path(tmp)
        small = spawn(cfg.workload, cfg.small, workdir)
        _say(_line("short", small))
        large = spawn(cfg.workload, cfg.large, workdir)
        _say(_line("long ", large))
        ratio = large["peak_kb"] / small["peak_kb"]
        rows: list[dict[str, Any]] = []
        if ratio > TARGET_RATIO or cfg.diagnose:
            rows, text = diagnose(cfg, workdir)
            _say(f"memory: what grew from {cfg.small:,} to {cfg.large:,} packets "
                 "(tracemalloc, live at the end of the run, by file:line):")
            for t in text:
                _say(t)
    return outcome(cfg, small, large, ratio, rows)


def outcome(cfg: MemoryConfig, small: dict[str, Any], large: dict[str, Any], ratio: float,
            rows: list[dict[str, Any]]) -> Outcome:
    extra = large["packets"] - small["packets"]
    per_packet = (large["peak_kb"] - small["peak_kb"]) * 1024 / extra if extra > 0 else 0.0
    figures: dict[str, Any] = {
        "workload": cfg.workload,
        "packets_definition": "IPv4 packets the two endpoints sent (outbound on their eth0)",
        "small": small,
        "large": large,
        "peak_rss_small_mib": round(small["peak_kb"] / 1024, 1),
        "peak_rss_large_mib": round(large["peak_kb"] / 1024, 1),
        "growth_bytes_per_packet": round(per_packet, 1),
        "ratio": round(ratio, 3),
        "target_ratio": TARGET_RATIO,
        "growth_sites": rows,
    }
    lines = [
        f"memory: {cfg.workload}: {small['packets']:,} packets -> peak RSS "
        f"{small['peak_kb'] / 1024:,.1f} MiB; {large['packets']:,} packets -> "
        f"{large['peak_kb'] / 1024:,.1f} MiB ({per_packet:,.0f} bytes per extra packet)",
        f"memory: ratio {ratio:.2f}x vs target <= {TARGET_RATIO}x "
        f"({'met' if ratio <= TARGET_RATIO else 'not met'})",
    ]
    return Outcome(NAME, figures, lines)


def configure(quick: bool, **overrides: Any) -> MemoryConfig:
    """The quick or full configuration with ``overrides`` (``None`` values ignored)."""
    base = MemoryConfig.quick() if quick else MemoryConfig()
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})


def main(argv: Sequence[str] | None = None) -> int:
    """The child's entry point (``--child WORKLOAD PACKETS OUT [--snapshot FILE]``)."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.memory")
    p.add_argument("--child", nargs=3, metavar=("WORKLOAD", "PACKETS", "OUT"), required=True)
    p.add_argument("--snapshot", type=Path)
    args = p.parse_args(argv)
    workload, packets, out = args.child
    print(json.dumps(child(workload, int(packets), Path(out), args.snapshot)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
