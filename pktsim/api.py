"""pktsim's Python surface: load a scenario, run it, look at the result.

    >>> import pktsim
    >>> cluster = pktsim.demo_cluster()
    >>> result = cluster.run()
    >>> print(result.flows[0].line())

``Cluster.run(out=DIR)`` streams the output folder of SCENARIO.md §3 to disk (moved into
place only when the run succeeds); without ``out`` everything is kept in memory and
``Result.write(DIR)`` writes the same files later.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from pktsim.build.flows import start_flows
from pktsim.build.topology import Topology, build
from pktsim.devices.apps import FlowResult
from pktsim.driver.types import Sink, TraceEvent
from pktsim.model.cluster import ClusterModel, allocate
from pktsim.model.objects import Flow, Scenario
from pktsim.output import atomic_dir, file_sinks
from pktsim.sinks.trace import MemorySink, format_event

# Callables told about every finished run (the pytest plugin keeps the last one of a test).
RUN_OBSERVERS: list[Callable[[Result], None]] = []


def _read_inputs(sources: tuple[str | os.PathLike[str], ...]) -> list[tuple[str, str]]:
    inputs = []
    for src in sources:
        if isinstance(src, os.PathLike) or (isinstance(src, str) and "\n" not in src
                                           and Path(src).is_file()):
            path = Path(src)
            inputs.append((str(path), path.read_text(encoding="utf-8")))
        elif src == "-":
            import sys

            inputs.append(("<stdin>", sys.stdin.read()))
        else:
            inputs.append(("<string>", str(src)))
    return inputs


def load(*sources: str | os.PathLike[str], seed: int | None = None) -> Cluster:
    """Load scenario files (paths, ``-`` for stdin) or YAML text into a ``Cluster``.

    Raises ``pktsim.ScenarioError`` naming file, document, field and value on bad input.
    """
    from pktsim.scenario import load_scenario

    scenario = load_scenario(_read_inputs(sources), seed=seed)
    return Cluster(scenario)


def demo_text() -> str:
    return resources.files("pktsim").joinpath("data/demo.yaml").read_text(encoding="utf-8")


def demo_cluster(network: str = "routes") -> Cluster:
    """The built-in two-node cluster of ``pktsim demo``."""
    from pktsim.scenario import load_scenario

    scenario = load_scenario([("<demo>", demo_text())])
    scenario.config.network = network
    return Cluster(scenario)


@dataclass
class Result:
    """What a run produced: each flow's outcome, the trace, and (in memory) the frames."""

    topology: Topology
    flows: list[FlowResult]
    memory: MemorySink | None = None
    out: Path | None = None

    @property
    def events(self) -> list[TraceEvent]:
        return self.memory.events if self.memory is not None else []

    def summary(self) -> str:
        return "".join(f.line() + "\n" for f in self.flows)

    def trace_text(self, flow: str | None = None) -> str:
        return "".join(format_event(e) + "\n" for e in self.events
                       if flow is None or e.flow == flow)

    def write(self, folder: str | os.PathLike[str], *, force: bool = True) -> Path:
        """Write the output folder from memory (needs a run without ``out``)."""
        if self.memory is None:
            raise ValueError("this run streamed to disk; its files are in " + str(self.out))
        dest = Path(folder)
        with atomic_dir(dest, force=force) as tmp:
            sinks = file_sinks(tmp)
            for iface in self.memory.interfaces:
                for sink in sinks:
                    sink.interface(iface)
            events = iter(self.memory.events)
            for f in self.memory.frames:
                for sink in sinks:
                    sink.frame(f.t_abs_ns, f.iface, f.direction, f.data, f.comment)
            for e in events:
                for sink in sinks:
                    sink.event(e)
            for sink in sinks:
                sink.close()
            write_dumps(tmp, self.topology)
        return dest


def _observed(result: Result) -> Result:
    for observer in RUN_OBSERVERS:
        observer(result)
    return result


def write_dumps(folder: Path, topo: Topology) -> None:
    """The node tables at the end of the run, as Linux tools print them."""
    from pktsim.report import node_dumps

    for rel, text in node_dumps(topo, topo.driver.now).items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


@dataclass
class Cluster:
    """A loaded scenario; ``model`` has every address decided."""

    scenario: Scenario
    model: ClusterModel = field(init=False)

    def __post_init__(self) -> None:
        from pktsim.model.addons import add_coredns

        add_coredns(self.scenario)
        self.model = allocate(self.scenario)

    @property
    def flows(self) -> list[Flow]:
        return self.scenario.flows

    def build(self, sinks: list[Sink] | None = None) -> Topology:
        return build(self.model, sinks)

    def run(self, out: str | os.PathLike[str] | None = None, *, flows: list[Flow] | None = None,
            until_ns: int | None = None, force: bool = True, keep: bool = False,
            progress: Callable[[TraceEvent], None] | None = None) -> Result:
        """Run every flow (or ``flows``); with ``out``, stream the output folder there.

        ``keep`` also keeps frames and events in memory when streaming to ``out``;
        ``progress`` is called with every trace event (the CLI's progress line).
        """
        chosen = self.scenario.flows if flows is None else flows
        if out is None:
            in_memory = MemorySink()
            topo = self.build([in_memory])
            results = start_flows(topo, chosen)
            topo.driver.run(until=until_ns)
            return _observed(Result(topo, results, in_memory))
        dest = Path(out)
        memory = MemorySink() if keep else None
        with atomic_dir(dest, force=force) as tmp:
            sinks = file_sinks(tmp) + ([memory] if memory is not None else [])
            try:
                topo = self.build(sinks)
                if progress is not None:
                    topo.driver.listeners.append(progress)
                results = start_flows(topo, chosen)
                topo.driver.run(until=until_ns)
                write_dumps(tmp, topo)
            finally:
                for sink in sinks:
                    sink.close()
        return _observed(Result(topo, results, memory, dest))
