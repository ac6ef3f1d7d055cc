"""The hop-rate benchmark (benchmarks/README.md §1): pktsim against a scapy-per-hop reference.

The workload is one TCP transfer through a scenario built here as YAML text, run with
``Cluster.run(out=DIR)`` so every interface goes to the real sinks (``capture.pcapng``, one
pcap per interface, ``trace.jsonl``, ``trace.txt``).  The wall time of ``run()`` (build, the
run, closing the sinks) is the median of ``repeats`` runs.  Figures:

* hop-events/s: ``driver.stats.hops`` (each frame a device puts on a link) per second;
* frames/s: ``driver.stats.frames`` (each frame written to the capture) per second;
* end-to-end packets/s: the TCP segments the two endpoints' stacks sent (counted from the
  capture: outbound frames on the endpoints' ``eth0``) per second.  The server echoes the
  payload, so segments flow both ways; both directions count.

The *scapy-per-hop reference* runs in the same process, interleaved with pktsim's runs, on an
evenly spaced sample of the frames pktsim captured: for each, what a design that handles
every hop with scapy objects does — dissect ``Ether(raw)``, rewrite the headers as the hop's
kind asks (nothing for a bridge or a sending stack; TTL and checksum for a routed hop; ...),
and write it with scapy's ``PcapNgWriter`` (``write_packet(pkt)`` serialises it once, as
``bytes(pkt)``).  The kinds are mixed in the proportion pktsim's trace shows.  The reference
writes one capture record per hop and no trace, where pktsim writes two of each per veth hop:
it is a lower bound of what a scapy design costs, so the ratio is conservative.

Scenarios are swappable (``SCENARIOS``): the cross-node pod → ClusterIP → pod path over
``vxlan`` that the targets of benchmarks/README.md §1 are set on (the default), and the
same-node pod → pod path.
"""

from __future__ import annotations

import cProfile
import enum
import io
import pstats
import re
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN
from scapy.utils import PcapNgWriter

import pktsim
from benchmarks.common import Outcome, PcapngFrame, median, read_pcapng, two_pods

NAME = "hop_rate"
MSS_PAYLOAD = 1448  # MSS 1460 less the 12 bytes of TCP timestamps every segment carries

TARGETS: dict[str, float] = {
    "hop_events_per_s": 100_000,
    "ratio": 40,
    "packets_per_s": 10_000,  # on the cross-node overlay path
}


class HopKind(enum.Enum):
    """What a hop does to a frame's headers, and so what the scapy reference redoes."""

    L2 = "l2"  # a bridge forwarding, or a stack sending: headers unchanged
    ROUTE = "route"  # ip_forward: TTL - 1, IPv4 checksum recomputed
    NAT = "nat"  # DNAT / SNAT: an address changes, IPv4 and L4 checksums recomputed
    ENCAP = "encap"  # vxlan: a new outer Ethernet/IPv4/UDP/VXLAN around the frame


@dataclass(frozen=True)
class HopScenario:
    """A hop-rate workload: the scenario text for a payload, and how to read its output."""

    name: str
    description: str
    yaml: Callable[[int], str]  # payload bytes -> the scenario's YAML text
    endpoints: tuple[str, ...]  # capture points (``HOST:IFNAME``) whose tx TCP frames count
    hop_kinds: Mapping[str, HopKind] = field(default_factory=dict)
    """Trace event -> the kind of the hop it leads to; hops no event claims are ``L2``."""


SAME_NODE = HopScenario(
    name="same-node",
    description="one node, pod a -> pod b:8080 over the bridge, payload echoed back",
    yaml=lambda payload: two_pods(
        "bench-same-node", "{name: bulk, from: default/a, to: 'default/b:8080', "
        f"payload: {payload}}}", nodes=1),
    endpoints=("default/a:eth0", "default/b:eth0"),
    hop_kinds={"route": HopKind.ROUTE},
)

VXLAN_SERVICE = """\
apiVersion: v1
kind: Service
metadata: {name: b, namespace: default}
spec:
  clusterIP: 10.96.0.80
  selector: {app: b}
  ports: [{name: http, port: 80, targetPort: http}]
---
"""

CROSS_NODE_VXLAN_SERVICE = HopScenario(
    name="vxlan-service",
    description="two nodes over vxlan, pod a on node-1 -> ClusterIP 10.96.0.80:80 -> pod b:8080"
                " on node-2, payload echoed back",
    yaml=lambda payload: two_pods(
        "bench-vxlan-service", "{name: bulk, from: default/a, to: '10.96.0.80:80', "
        f"payload: {payload}}}", nodes=2, network="vxlan", b_node="node-2",
        extra=VXLAN_SERVICE),
    endpoints=("default/a:eth0", "default/b:eth0"),
    hop_kinds={"route": HopKind.ROUTE, "nat": HopKind.NAT, "encap": HopKind.ENCAP},
)

SCENARIOS: dict[str, HopScenario] = {
    s.name: s for s in (CROSS_NODE_VXLAN_SERVICE, SAME_NODE)}
DEFAULT_SCENARIO = CROSS_NODE_VXLAN_SERVICE.name


@dataclass(frozen=True)
class HopRateConfig:
    scenario: str = DEFAULT_SCENARIO
    segments: int = 20_000  # payload = segments * 1448 bytes, each way
    repeats: int = 3
    sample: int = 2_000  # frames the scapy reference handles per repeat
    profile: bool = False  # one extra run under cProfile, its top entries printed
    workdir: Path | None = None  # where the temporary output folders go

    @classmethod
    def quick(cls) -> HopRateConfig:
        return cls(segments=2_000, repeats=1, sample=500)


# -- pktsim ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PktsimRun:
    seconds: float
    hops: int
    frames: int
    events: int
    status: str


def time_pktsim(text: str, out: Path) -> PktsimRun:
    """One timed ``Cluster.run(out=...)``; the scenario is loaded outside the timing."""
    if out.exists():
        shutil.rmtree(out)  # so the run's atomic replace does not time our clean-up
    cluster = pktsim.load(text)
    start = time.perf_counter()
    result = cluster.run(out=out)
    seconds = time.perf_counter() - start
    stats = result.topology.driver.stats
    status = "; ".join(f.line() for f in result.flows)
    if not result.flows or any(f.status != "ok" for f in result.flows):
        raise RuntimeError(f"the benchmark's flow failed: {status}")
    return PktsimRun(seconds, stats.hops, stats.frames, stats.events, status)


def profile_pktsim(text: str, out: Path, top: int = 15) -> str:
    """One more run under cProfile: the ``top`` entries by own time."""
    if out.exists():
        shutil.rmtree(out)
    cluster = pktsim.load(text)
    prof = cProfile.Profile()
    prof.enable()
    cluster.run(out=out)
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(top)
    return buf.getvalue()


# -- what the output says ----------------------------------------------------------------------

@dataclass
class Analysis:
    """Read from one run's output folder (every run of a scenario gives the same files)."""

    frames: int = 0
    tcp_segments: int = 0  # TCP frames the endpoints sent
    data_segments: int = 0  # ... of which carried payload
    events: Counter[str] = field(default_factory=Counter)
    sample: list[PcapngFrame] = field(default_factory=list)


_EVENT = re.compile(r'"event":"([^"]*)"')


def analyse(out: Path, scenario: HopScenario, total_frames: int, sample: int) -> Analysis:
    """Count the endpoints' TCP segments and the trace events; keep a spread of frames."""
    a = Analysis()
    n = min(sample, total_frames)
    wanted = {i * total_frames // n for i in range(n)} if n else set()
    endpoints = set(scenario.endpoints)
    for f in read_pcapng(out / "capture.pcapng"):
        a.frames += 1
        if f.index in wanted:
            a.sample.append(f)
        if f.direction == 2 and f.if_name in endpoints:
            d = f.data
            if len(d) >= 34 and d[12:14] == b"\x08\x00" and d[23] == 6:
                a.tcp_segments += 1
                ihl = (d[14] & 0x0F) * 4
                total = (d[16] << 8) | d[17]
                doff = (d[14 + ihl + 12] >> 4) * 4 if len(d) > 14 + ihl + 12 else 0
                if total - ihl - doff > 0:
                    a.data_segments += 1
    with open(out / "trace.jsonl", encoding="utf-8") as trace:
        for line in trace:
            m = _EVENT.search(line)
            if m is not None:
                a.events[m.group(1)] += 1
    return a


def hop_mix(hops: int, events: Mapping[str, int], kinds: Mapping[str, HopKind]) -> dict[
        HopKind, int]:
    """How many of pktsim's hops were of each kind (the rest of the hops are ``L2``)."""
    mix: Counter[HopKind] = Counter()
    for event, kind in kinds.items():
        mix[kind] += events.get(event, 0)
    mix[HopKind.L2] = max(hops - sum(mix.values()), 0)
    return {k: mix[k] for k in HopKind if mix[k]}


def spread(mix: Mapping[HopKind, int], n: int) -> list[HopKind]:
    """``n`` kinds in the proportions of ``mix``, evenly interleaved (deterministic)."""
    total = sum(mix.values())
    if n <= 0 or total <= 0:
        return [HopKind.L2] * max(n, 0)
    exact = {k: n * c / total for k, c in mix.items()}
    quota = {k: int(v) for k, v in exact.items()}
    for k in sorted(exact, key=lambda k: quota[k] - exact[k])[: n - sum(quota.values())]:
        quota[k] += 1
    slots = sorted(((j + 0.5) / q, k.value, k) for k, q in quota.items() for j in range(q))
    return [k for _, _, k in slots]


# -- the scapy-per-hop reference ---------------------------------------------------------------

def rewrite(pkt: Ether, kind: HopKind) -> Ether:
    """The header work of one hop, done on scapy objects (non-IPv4 frames pass unchanged)."""
    if kind is HopKind.L2 or IP not in pkt:
        return pkt
    ip = pkt[IP]
    if kind is HopKind.ROUTE:
        ip.ttl = max(ip.ttl - 1, 1)
        del ip.chksum
    elif kind is HopKind.NAT:
        ip.dst = "10.244.1.9"
        del ip.chksum
        if TCP in ip:
            del ip[TCP].chksum
        elif UDP in ip:
            del ip[UDP].chksum
    elif kind is HopKind.ENCAP:
        outer = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
        return (outer / IP(src="192.168.0.2", dst="192.168.0.3", ttl=64)
                / UDP(sport=49152, dport=8472) / VXLAN(vni=1, flags=0x08) / pkt)
    return pkt


def scapy_hops(frames: Sequence[PcapngFrame], kinds: Sequence[HopKind], path: Path) -> float:
    """Do each frame's hop with scapy objects, written to a pcapng; the seconds it took.

    ``write_packet(pkt)`` is scapy's cheapest way to a pcapng record that keeps the interface
    and direction: one ``bytes(pkt)``, no copy (``write(pkt)`` would clone the packet first).
    """
    start = time.perf_counter()
    writer = PcapNgWriter(str(path))
    writer.linktype = 1  # DLT_EN10MB: every frame the sample holds is Ethernet
    writer.write_header(None)  # the SHB; each interface's IDB comes with its first packet
    for f, kind in zip(frames, kinds, strict=True):
        pkt = rewrite(Ether(f.data), kind)
        pkt.sniffed_on = f.if_name
        pkt.direction = f.direction
        pkt.time = f.t_ns / 1e9
        writer.write_packet(pkt)  # serialises it (bytes(pkt)) and writes one EPB
    writer.close()
    return time.perf_counter() - start


def reference(frames: Sequence[PcapngFrame], kinds: Sequence[HopKind], path: Path) -> float:
    """``scapy_hops`` after an untimed warm-up (scapy builds some tables on first use)."""
    warm = min(len(frames), 50)
    scapy_hops(frames[:warm], kinds[:warm], path)
    return scapy_hops(frames, kinds, path)


# -- the benchmark -----------------------------------------------------------------------------

def _say(text: str) -> None:
    print(text, flush=True)


def run(config: HopRateConfig | None = None) -> Outcome:
    cfg = config or HopRateConfig()
    scenario = SCENARIOS[cfg.scenario]
    payload = cfg.segments * MSS_PAYLOAD
    text = scenario.yaml(payload)
    runs: list[PktsimRun] = []
    refs: list[float] = []
    analysis: Analysis | None = None
    kinds: list[HopKind] = []
    mix: dict[HopKind, int] = {}
    profile = ""
    _say(f"hop_rate: scenario {scenario.name} ({scenario.description}), "
         f"{cfg.segments} segments ({payload} bytes) each way, {cfg.repeats} run(s), "
         f"reference sample {cfg.sample}")
    with tempfile.TemporaryDirectory(prefix="pktsim-bench-", dir=cfg.workdir) as tmp_name:
        tmp = Path(tmp_name)
        out = tmp / "out"
        for i in range(cfg.repeats):
            r = time_pktsim(text, out)
            runs.append(r)
            if analysis is None:
                analysis = analyse(out, scenario, r.frames, cfg.sample)
                mix = hop_mix(r.hops, analysis.events, scenario.hop_kinds)
                kinds = spread(mix, len(analysis.sample))
            shutil.rmtree(out)
            ref = reference(analysis.sample, kinds, tmp / "reference.pcapng")
            refs.append(ref)
            n = max(len(analysis.sample), 1)
            _say(f"  run {i + 1}: pktsim {r.seconds:.2f} s, {r.hops / r.seconds:,.0f} hop-events/s"
                 f"; reference {n / ref:,.0f} hops/s ({ref / n * 1e6:.0f} µs/hop)")
        if cfg.profile:
            profile = profile_pktsim(text, out)
    assert analysis is not None and runs
    if len({(r.hops, r.frames) for r in runs}) != 1:
        raise RuntimeError("runs of the same scenario disagree: "
                           + ", ".join(f"{r.hops} hops/{r.frames} frames" for r in runs))
    if analysis.frames != runs[0].frames:
        raise RuntimeError(f"capture.pcapng holds {analysis.frames} frames, the driver counted "
                           f"{runs[0].frames}")
    if profile:
        _say(f"hop_rate: cProfile of one run, top entries by own time\n{profile}")
    return _outcome(cfg, scenario, payload, runs, refs, analysis, mix)


def _outcome(cfg: HopRateConfig, scenario: HopScenario, payload: int, runs: list[PktsimRun],
             refs: list[float], analysis: Analysis, mix: dict[HopKind, int]) -> Outcome:
    first = runs[0]
    seconds = median([r.seconds for r in runs])
    sample = len(analysis.sample)
    ref_rate = median([sample / s for s in refs]) if sample else 0.0
    hop_rate = first.hops / seconds
    frames_rate = first.frames / seconds
    packets_rate = analysis.tcp_segments / seconds
    ratio = hop_rate / ref_rate if ref_rate else 0.0
    figures: dict[str, Any] = {
        "scenario": scenario.name,
        "scenario_description": scenario.description,
        "segments": cfg.segments,
        "payload_bytes": payload,
        "repeats": cfg.repeats,
        "seconds": round(seconds, 4),
        "seconds_runs": [round(r.seconds, 4) for r in runs],
        "hops": first.hops,
        "frames": first.frames,
        "driver_events": first.events,
        "tcp_segments": analysis.tcp_segments,
        "data_segments": analysis.data_segments,
        "hop_events_per_s": round(hop_rate, 1),
        "frames_per_s": round(frames_rate, 1),
        "packets_per_s": round(packets_rate, 1),
        "us_per_hop": round(1e6 / hop_rate, 2),
        "hop_mix": {k.value: c for k, c in mix.items()},
        "reference_sample": sample,
        "reference_hops_per_s": round(ref_rate, 1),
        "reference_runs_hops_per_s": [round(sample / s, 1) for s in refs],
        "reference_us_per_hop": round(1e6 / ref_rate, 2) if ref_rate else None,
        "ratio": round(ratio, 3),
        "targets": TARGETS,
        "flow": first.status,
    }
    lines = [
        f"hop_rate: scenario {scenario.name}, {first.hops} hops, {first.frames} frames, "
        f"{analysis.tcp_segments} TCP segments, median {seconds:.2f} s of {len(runs)} run(s)",
        f"hop_rate: {hop_rate:,.0f} hop-events/s, {frames_rate:,.0f} frames/s captured, "
        f"{packets_rate:,.0f} packets/s end to end, reference {ref_rate:,.0f} hops/s, "
        f"ratio {ratio:.2f}x (targets: >= {TARGETS['hop_events_per_s']:,.0f} hop-events/s, "
        f">= {TARGETS['ratio']:.0f}x)",
    ]
    return Outcome(NAME, figures, lines)


def configure(quick: bool, **overrides: Any) -> HopRateConfig:
    """The quick or full configuration with ``overrides`` (``None`` values ignored)."""
    base = HopRateConfig.quick() if quick else HopRateConfig()
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})
