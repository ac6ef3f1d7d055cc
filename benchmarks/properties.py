"""The properties benchmark (benchmarks/README.md §2): 100 random 3-node clusters × 5 flows.

What a user's property test costs: a real ``@given`` test, called directly, the way pytest
calls it, under ``settings(max_examples=100, derandomize=True, database=None,
deadline=None)``.  Each example draws a cluster from ``pktsim.strategies.clusters`` (exactly
3 nodes; pods, Services, network and seed as the strategy draws them), draws 5 flows from
``flow_lists(cluster)``, runs them in memory (``cluster.run(flows=...)``) and checks every
invariant (``invariants.check_all``).  Shrinking is off (``phases`` without ``shrink``): a
failing property is reported as it is found, not minimised for minutes.

The figure is the wall time of the whole hypothesis run (median of ``repeats`` runs; the
examples are the same every run, derandomized).  To show where it goes, the run is split:

* load: pktsim's loader and allocator inside the strategies (``clusters()`` loads each
  generated YAML into a ``Cluster``; ``flow_lists()`` parses its flows with the loader);
* build: ``Cluster.build`` (namespaces, devices, rules) inside ``run()``;
* run: the rest of ``run()``: the flows through the driver into the in-memory sink;
* invariants: ``check_all`` over the result;
* generation: everything else: hypothesis drawing, the strategies' own work (manifests,
  YAML dumping, flow candidates), hypothesis' bookkeeping between examples.
"""

from __future__ import annotations

import contextlib
import cProfile
import importlib
import io
import pstats
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from benchmarks.common import Outcome, median
from pktsim import invariants
from pktsim.api import Cluster
from pktsim.sinks.trace import MemorySink
from pktsim.strategies.clusters import GeneratedCluster

# the modules, not the functions of the same names that ``pktsim.strategies`` re-exports
cluster_strategies = importlib.import_module("pktsim.strategies.clusters")
flow_strategies = importlib.import_module("pktsim.strategies.flows")

NAME = "properties"
TARGET_SECONDS = 10.0
PARTS = ("generation", "load", "build", "run", "invariants")


@dataclass(frozen=True)
class PropertiesConfig:
    examples: int = 100
    nodes: int = 3
    flows: int = 5
    repeats: int = 3
    profile: bool = False  # one extra run under cProfile: top functions and time per area

    @classmethod
    def quick(cls) -> PropertiesConfig:
        return cls(examples=10, repeats=1)


@dataclass
class Split:
    """Seconds spent in each part of one hypothesis run, and what the examples held."""

    seconds: float = 0.0
    load: float = 0.0
    build: float = 0.0
    run: float = 0.0
    invariants: float = 0.0
    examples: int = 0  # examples that ran to the end (every invariant checked)
    calls: int = 0  # times hypothesis called the test function
    pods: int = 0
    services: int = 0
    flows: int = 0
    hops: int = 0
    frames: int = 0
    events: int = 0
    networks: Counter[str] = field(default_factory=Counter)
    flow_kinds: Counter[str] = field(default_factory=Counter)

    @property
    def generation(self) -> float:
        return max(self.seconds - self.load - self.build - self.run - self.invariants, 0.0)

    def part(self, name: str) -> float:
        return float(getattr(self, name))


# -- timing the parts: wrappers installed for the length of one hypothesis run ----------------

def _timed(fn: Callable[..., Any], split: Split, part: str) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            setattr(split, part, split.part(part) + time.perf_counter() - start)

    return wrapper


@contextlib.contextmanager
def timers(split: Split) -> Iterator[None]:
    """Time the loader calls the strategies make, and ``Cluster.build``, into ``split``.

    The strategies call ``_load`` and ``_parse_flows`` by their module-global names, and
    ``Cluster.run`` calls ``self.build``, so swapping those three attributes is enough; they
    are put back however the run ends."""
    swaps = [(cluster_strategies, "_load", "load"), (flow_strategies, "_parse_flows", "load"),
             (GeneratedCluster, "build", "build")]
    saved = [(owner, attr, owner.__dict__.get(attr)) for owner, attr, _ in swaps]
    try:
        for owner, attr, part in swaps:
            setattr(owner, attr, _timed(getattr(owner, attr), split, part))
        yield
    finally:
        for owner, attr, old in saved:
            if old is None:
                delattr(owner, attr)
            else:
                setattr(owner, attr, old)


# -- the property -----------------------------------------------------------------------------

def property_test(cfg: PropertiesConfig, split: Split) -> Callable[[], None]:
    """The ``@given`` test a user would write, recording its figures into ``split``."""

    @settings(max_examples=cfg.examples, derandomize=True, database=None, deadline=None,
              phases=(Phase.explicit, Phase.generate), print_blob=False,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.filter_too_much, HealthCheck.large_base_example])
    @given(st.data())
    def test_generated_clusters_keep_every_invariant(data: st.DataObject) -> None:
        split.calls += 1
        cluster = data.draw(clusters_of(cfg), label="cluster")
        chosen = data.draw(flow_strategies.flow_lists(cluster, min_size=cfg.flows,
                                                      max_size=cfg.flows), label="flows")
        start = time.perf_counter()
        result = cluster.run(flows=chosen)
        ran = time.perf_counter()
        invariants.check_all(result)
        split.invariants += time.perf_counter() - ran
        split.run += ran - start  # build is inside: taken out in finish()
        _count(split, cluster, result)

    return test_generated_clusters_keep_every_invariant


def clusters_of(cfg: PropertiesConfig) -> Any:
    return cluster_strategies.clusters(min_nodes=cfg.nodes, max_nodes=cfg.nodes)


def _count(split: Split, cluster: Cluster, result: Any) -> None:
    model = cluster.model
    stats = result.topology.driver.stats
    memory: MemorySink = result.memory
    split.examples += 1
    split.pods += len(model.pods)
    split.services += len(model.services)
    split.flows += len(result.flows)
    split.hops += stats.hops
    split.frames += len(memory.frames)
    split.events += len(memory.events)
    split.networks[model.config.network] += 1
    for f in result.flows:
        split.flow_kinds[f.flow.split("-", 1)[1] if "-" in f.flow else f.flow] += 1


def run_once(cfg: PropertiesConfig) -> Split:
    """One whole hypothesis run of the property, timed and split into parts."""
    split = Split()
    test = property_test(cfg, split)
    with timers(split):
        start = time.perf_counter()
        test()
        split.seconds = time.perf_counter() - start
    split.run = max(split.run - split.build, 0.0)  # run() includes its build()
    return split


# -- profiling --------------------------------------------------------------------------------

AREAS = ("pktsim/strategies", "pktsim/invariants", "pktsim/scenario", "pktsim/model",
         "pktsim/build", "pktsim/kubeproxy", "pktsim/netfilter", "pktsim/driver",
         "pktsim/devices", "pktsim/sinks", "pktsim/wire", "pktsim/dns", "pktsim/",
         "hypothesis/", "yaml/", "dns/", "scapy/")


def area_of(filename: str) -> str:
    """The package a function's file belongs to (its own time is charged there)."""
    path = filename.replace("\\", "/")
    for area in AREAS:
        if f"/{area}" in path or path.startswith(area):
            return area.rstrip("/")
    if path.startswith("~") or path.startswith("<"):
        return "builtins"
    return "other"


def profile_once(cfg: PropertiesConfig, top: int = 25) -> tuple[str, dict[str, float]]:
    """One run under cProfile: the ``top`` functions by own time, and own time per area."""
    prof = cProfile.Profile()
    prof.enable()
    run_once(cfg)
    prof.disable()
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf)
    stats.sort_stats("tottime").print_stats(top)
    areas: Counter[str] = Counter()
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (filename, _line, _name), (_cc, _nc, tottime, _ct, _callers) in raw.items():
        areas[area_of(filename)] += tottime
    return buf.getvalue(), {k: round(v, 3) for k, v in areas.most_common()}


# -- the benchmark ----------------------------------------------------------------------------

def _say(text: str) -> None:
    print(text, flush=True)


def run(config: PropertiesConfig | None = None) -> Outcome:
    cfg = config or PropertiesConfig()
    _say(f"properties: {cfg.examples} random {cfg.nodes}-node clusters x {cfg.flows} flows "
         f"under hypothesis (derandomized), every invariant, {cfg.repeats} run(s)")
    splits: list[Split] = []
    for i in range(cfg.repeats):
        s = run_once(cfg)
        splits.append(s)
        _say(f"  run {i + 1}: {s.seconds:.2f} s, {s.examples} examples "
             f"({s.calls} calls); " + ", ".join(f"{p} {s.part(p):.2f} s" for p in PARTS))
    profile, areas = "", dict[str, float]()
    if cfg.profile:
        profile, areas = profile_once(cfg)
        _say("properties: cProfile of one run, top functions by own time\n" + profile)
        _say("properties: own time per area (s): "
             + ", ".join(f"{k} {v:.2f}" for k, v in areas.items()))
    return outcome(cfg, splits, areas)


def outcome(cfg: PropertiesConfig, splits: list[Split], areas: dict[str, float]) -> Outcome:
    first = splits[0]
    seconds = median([s.seconds for s in splits])
    parts = {p: round(median([s.part(p) for s in splits]), 3) for p in PARTS}
    rate = first.examples / seconds if seconds else 0.0
    ratio = seconds / TARGET_SECONDS
    figures: dict[str, Any] = {
        "examples": first.examples,
        "calls": first.calls,
        "nodes": cfg.nodes,
        "flows_per_example": cfg.flows,
        "repeats": cfg.repeats,
        "seconds": round(seconds, 3),
        "seconds_runs": [round(s.seconds, 3) for s in splits],
        "examples_per_s": round(rate, 2),
        "split_seconds": parts,
        "split_share": {p: round(v / seconds, 3) if seconds else 0.0 for p, v in parts.items()},
        "pods": first.pods,
        "services": first.services,
        "flows": first.flows,
        "hops": first.hops,
        "frames": first.frames,
        "trace_events": first.events,
        "networks": dict(first.networks),
        "flow_kinds": dict(first.flow_kinds),
        "profile_areas_seconds": areas,
        "target_seconds": TARGET_SECONDS,
        "ratio": round(ratio, 3),
    }
    share = ", ".join(f"{p} {v:.2f} s ({v / seconds:.0%})" for p, v in parts.items()) \
        if seconds else ""
    lines = [
        f"properties: {first.examples} examples ({cfg.nodes} nodes, {cfg.flows} flows each: "
        f"{first.pods} pods, {first.services} services, {first.hops} hops in all), median "
        f"{seconds:.2f} s of {len(splits)} run(s), {rate:.1f} examples/s",
        f"properties: split: {share}",
        f"properties: {seconds:.2f} s vs target <= {TARGET_SECONDS:.0f} s: ratio {ratio:.2f}x "
        f"({'met' if ratio <= 1 else 'not met'})",
    ]
    return Outcome(NAME, figures, lines)


def configure(quick: bool, **overrides: Any) -> PropertiesConfig:
    """The quick or full configuration with ``overrides`` (``None`` values ignored)."""
    base = PropertiesConfig.quick() if quick else PropertiesConfig()
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})
