"""pktsim's Python surface: load a scenario, run it, look at the result.

    >>> import pktsim
    >>> cluster = pktsim.demo_cluster()
    >>> result = cluster.run()
    >>> print(result.flows[0].line())

``Cluster.run(out=DIR)`` streams the output folder of docs/scenario.md §7 to disk (moved into
place only when the run succeeds); without ``out`` everything is kept in memory and
``Result.write(DIR)`` writes the same files later.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pktsim.build.budget import DEFAULT_BUDGET, Budget, diagnose
from pktsim.build.flows import start_flows
from pktsim.build.topology import Topology, build
from pktsim.core.capture import PCAP_END_NS, Sink
from pktsim.core.events import TraceEvent
from pktsim.devices.outcome import FlowResult
from pktsim.errors import ScenarioError
from pktsim.model.cluster import ClusterModel, allocate
from pktsim.model.objects import Flow, Scenario
from pktsim.model.timeline import Change
from pktsim.sinks.output import atomic_dir, file_sinks, write_dumps

if TYPE_CHECKING:  # and, at run time, imported where a run needs them (``pktsim check`` not)
    import pandas

    from pktsim.control.plane import ControlPlane
    from pktsim.display import FrameView, NodeTables, Simulation, TopologyView, TraceView
    from pktsim.dns import ResolvConf
    from pktsim.reach.cells import Reachability
    from pktsim.sinks.snapshots import Snapshots
    from pktsim.sinks.trace import MemorySink

# Who is told about every finished run, in this context (the pytest plugin keeps the last
# run of a test): set only by ``observing``, so no module-level list outlives its user.
_observers: contextvars.ContextVar[tuple[Callable[[Result], None], ...]] = \
    contextvars.ContextVar("pktsim_run_observers", default=())


@contextlib.contextmanager
def observing(observer: Callable[[Result], None]) -> Iterator[None]:
    """Within the block, ``observer`` is called with every ``Result`` a run produces
    (``Cluster.run`` and a ``Simulation``'s finish); nested blocks add to the outer ones."""
    token = _observers.set((*_observers.get(), observer))
    try:
        yield
    finally:
        _observers.reset(token)


def flow(source: str, to: str = "", *, name: str = "flow", lookup: str = "",
         protocol: str | None = None, count: int | None = None,
         payload: int | str | None = None, start: int | str | None = None,
         type: str | None = None, ttl: int | None = None, interval: int | str | None = None,
         source_port: int | None = None) -> Flow:
    """A flow for ``Cluster.run(flows=...)`` / ``simulate``, checked exactly as an entry of
    ``kind: Traffic`` is (docs/scenario.md): ``flow("default/client", "web.shop:80")``.
    ``source`` is the Traffic entry's ``from``, ``source_port`` its ``sourcePort``; raises
    ``ScenarioError`` naming the field."""
    from pktsim.scenario.traffic import make_flow

    given: dict[str, object] = {
        "name": name, "from": source, "to": to, "lookup": lookup, "protocol": protocol,
        "count": count, "payload": payload, "start": start, "type": type, "ttl": ttl,
        "interval": interval, "sourcePort": source_port}
    # None and "" are absent, as in a Traffic entry; errors name the keyword
    return make_flow(given, fields={"sourcePort": "source_port"})


def inject(interface: str, frame: bytes | str, *, at: int | str = 0,
           name: str = "inject") -> Flow:
    """A flow that makes ``frame`` (bytes, or hex text) arrive on ``interface``
    (``HOST:IFNAME`` as ``capture.pcapng`` names it: ``node-1:eth0``) at ``at`` (a
    duration, or milliseconds), for ``Cluster.run(flows=[...])``: the frame is captured
    there and handed to the device, and its result's ``reason`` is its fate (the trace
    has every step).  Checked as a Traffic entry with ``frame`` and ``interface`` is::

        from pktsim.strategies import malformed_frames

        @given(malformed_frames())
        def test_junk_is_dropped_with_a_reason(data):
            cluster.run(flows=[pktsim.inject("node-1:cbr0", data)])
    """
    from pktsim.scenario.traffic import make_flow

    return make_flow({"name": name, "interface": interface, "frame": frame, "start": at})


def _read_inputs(sources: tuple[str | os.PathLike[str], ...],
                 errors: list[ScenarioError]) -> list[tuple[str, str]]:
    """``(name, text)`` of each source: a path (read by the loader's ``read_text``, which
    names the file of a read or encoding problem in ``errors``), ``-`` or YAML text."""
    from pktsim.scenario import read_text

    inputs = []
    for src in sources:
        if isinstance(src, os.PathLike) or (isinstance(src, str) and "\n" not in src
                                           and _is_file(src)):
            text = read_text(str(src), errors)
            if text is not None:
                inputs.append((str(Path(src)), text))
        elif src == "-":
            text = read_text("-", errors)
            if text is not None:
                inputs.append(("<stdin>", text))
        else:
            inputs.append(("<string>", str(src)))
    return inputs


def _is_file(text: str) -> bool:
    """Whether one-line ``text`` names a file (else it is YAML): a line too long to be a
    path, or with a NUL, is YAML too, not an OSError."""
    try:
        return Path(text).is_file()
    except (OSError, ValueError):
        return False


def load(*sources: str | os.PathLike[str], seed: int | None = None) -> Cluster:
    """Load scenario files (paths, ``-`` for stdin) or YAML text into a ``Cluster``.

    Raises ``pktsim.ScenarioError`` naming file, document, field and value on bad input.
    """
    from pktsim.scenario.loader import load as load_inputs

    errors: list[ScenarioError] = []
    scenario = load_inputs(_read_inputs(sources, errors), seed, errors)
    return Cluster(scenario)


def demo_text(network: str = "routes", ip_families: tuple[str, ...] = ("IPv4",)) -> str:
    """The demo's manifests; on ``calico``, with its NetworkPolicy story (the one network
    that enforces NetworkPolicy: ``data/demo-policy.yaml``); with the IPv6 family, a
    dual-stack Cluster and the IPv6 paths (``data/demo-ipv6.yaml``)."""
    from importlib import resources  # here: only the demo reads the package's data

    data = resources.files("pktsim").joinpath("data")
    text = data.joinpath("demo.yaml").read_text(encoding="utf-8")
    if network == "calico":
        text += data.joinpath("demo-policy.yaml").read_text(encoding="utf-8")
    if ip_families != ("IPv4",):
        families = ", ".join(ip_families)
        text = text.replace("  seed: 0\n", f"  seed: 0\n  ipFamilies: [{families}]\n", 1)
        if "IPv6" in ip_families:
            text += "---\n" + data.joinpath("demo-ipv6.yaml").read_text(encoding="utf-8")
    return text


def demo_cluster(network: str = "routes", ip_families: tuple[str, ...] = ("IPv4",)) -> Cluster:
    """The built-in two-node cluster of ``pktsim demo`` (dual-stack with ``ip_families``
    ``("IPv4", "IPv6")``: ``network: routes`` only, as docs/scenario.md says)."""
    from pktsim.scenario import load_scenario

    scenario = load_scenario([("<demo>", demo_text(network, ip_families))])
    scenario.config.network = network
    if network == "calico":
        _follow_pods(scenario, load_scenario([("<demo>", demo_text(network, ip_families))]))
    return Cluster(scenario)


DEMO_CHANGE_AT = 1500 * 10**6  # when the demo's change story deletes a CoreDNS pod


def demo_changes(network: str = "routes", *, cleanup: bool = True) -> tuple[Cluster, Change]:
    """``pktsim demo``'s change story (``data/demo-changes.yaml``) on the demo cluster:
    its two resolvers' flows, and the deletion of the CoreDNS pod the stub resolver's one
    conntrack entry is DNATed to (found by a run without it: which pod that is depends on
    the network's random draws), with kube-proxy's conntrack cleanup or without it."""
    from importlib import resources

    from pktsim.scenario import load_scenario

    text = demo_text(network) + "---\n" + resources.files("pktsim").joinpath(
        "data", "demo-changes.yaml").read_text(encoding="utf-8")
    scenario = load_scenario([("<demo>", text)])
    scenario.config.network = network
    scenario.flows = [f for f in scenario.flows if f.source is not None
                      and f.source.name == "changes"]
    calm = Cluster(scenario).run()
    nat = next(e.nat for e in calm.events if e.flow == "stub-resolver" and e.nat is not None
               and e.nat.field == "dst")
    ip = nat.new.split(":")[0]
    victim = next(k for k, p in calm.topology.model.pods.items() if str(p.ip) == ip)
    namespace, name = victim.split("/")
    change = Change(DEMO_CHANGE_AT, "delete", "Pod", namespace, name)
    scenario.changes = [change]
    scenario.config.control.conntrack_cleanup = cleanup
    return Cluster(scenario), change


def _follow_pods(scenario: Scenario, planned: Scenario) -> None:
    """The demo's flows name pods by the addresses host-local gives them; Calico IPAM gives
    others, so each such address becomes the same pod's Calico address."""
    before = {str(p.ip): key for key, p in allocate(planned).pods.items()
              if not p.pod.host_network}
    after = allocate(scenario).pods
    for flow in scenario.flows:
        for ip, key in before.items():
            if f"//{ip}:" in flow.target or f"//{ip}/" in flow.target:
                flow.target = flow.target.replace(f"//{ip}", f"//{after[key].ip}")


@dataclass
class Result:
    """What a run produced: each flow's outcome, the trace, and (in memory) the frames."""

    topology: Topology
    flows: list[FlowResult]
    memory: MemorySink | None = None
    out: Path | None = None
    stopped: str = ""  # why the run stopped before its end (its budget), or ""
    # per flow, what the cluster's changes did to it (``N × REASON after CHANGE at T s``)
    impact: dict[str, list[str]] = field(default_factory=dict)

    @property
    def events(self) -> list[TraceEvent]:
        return self.memory.events if self.memory is not None else []

    def summary(self) -> str:
        """``pktsim run``'s lines: one per flow, then what the cluster's changes did to it."""
        out = []
        for f in self.flows:
            out.append(f.line() + "\n")
            out += [f"  {line}\n" for line in self.impact.get(f.flow, ())]
        return "".join(out)

    def trace_lines(self, flow: str | None = None) -> str:
        """``trace.txt``: one line per trace event, in time order (of ``flow`` only)."""
        from pktsim.render.lines import trace_lines

        return trace_lines(e for e in self.events if flow is None or e.flow == flow)

    def trace_text(self, flow: str | None = None) -> str:
        """The same as ``trace_lines`` (the name earlier releases gave it): ``trace.txt``'s
        form, not ``pktsim trace``'s — that one is ``explain()``."""
        return self.trace_lines(flow)

    def explain(self) -> str:
        """What ``pktsim trace`` prints: every packet of every flow, device by device
        (``pktsim.render.explain``)."""
        from pktsim.render.explain import explain

        return explain(self)

    # -- exploring (pktsim.display; pandas and matplotlib from the ``notebook`` extra) ------
    def trace(self, flow: str | None = None) -> TraceView:
        """The hops of ``flow`` (default: every flow) as a table: text, HTML, DataFrame."""
        from pktsim.display import TraceView

        frames = {f.number: f for f in self.memory.frames} if self.memory else {}
        outcome = next((f for f in self.flows if f.flow == flow), None)
        return TraceView(self.events, frames, flow=flow, outcome=outcome)

    def to_dataframe(self) -> pandas.DataFrame:
        """Every trace event, one row each; columns ``pktsim.display.TraceView.COLUMNS``."""
        return self.trace().to_dataframe()

    def frame(self, number: int) -> FrameView:
        """Frame ``number`` of ``capture.pcapng`` (1-based), dissected by scapy."""
        from pktsim.display import FrameView

        if self.memory is None or not 1 <= number <= len(self.memory.frames):
            raise IndexError(f"no frame #{number} in memory")
        return FrameView(self.memory.frames[number - 1])

    def tables(self, host: str) -> NodeTables:
        """``host``'s bridge FDB, routes, neighbours, iptables and conntrack at the end."""
        from pktsim.display import NodeTables

        return NodeTables(self.topology, host, self.topology.driver.now)

    def diagram(self, flow: str | None = None) -> TopologyView:
        """The topology as a picture, with the path of ``flow``'s packets drawn on it."""
        from pktsim.display import TopologyView

        if flow is None:
            return TopologyView(self.topology)
        outcome = next((f for f in self.flows if f.flow == flow), None)
        from pktsim.trace import Trace

        return TopologyView(self.topology, Trace.of(self, flow),
                            title=outcome.line() if outcome is not None else flow)

    def __repr__(self) -> str:
        ok = sum(f.status == "ok" for f in self.flows)
        frames = len(self.memory.frames) if self.memory is not None else 0
        return (f"<pktsim.Result: {len(self.flows)} flows ({ok} ok), {frames} frames, "
                f"{len(self.events)} events>\n{self.summary()}")

    def _repr_html_(self) -> str:
        from pktsim.display.trace import result_html

        frames = {f.number: f for f in self.memory.frames} if self.memory else {}
        return result_html(self.flows, self.events, frames)

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
    for observer in _observers.get():
        observer(result)
    return result


@dataclass
class Cluster:
    """A loaded scenario; ``model`` has every address decided.

    The scenario is only read: its add-ons (CoreDNS) were added when it was loaded
    (``pktsim.scenario.addons``), so one Scenario can back any number of Clusters."""

    scenario: Scenario
    model: ClusterModel = field(init=False)

    def __post_init__(self) -> None:
        self.model = allocate(self.scenario)

    @property
    def flows(self) -> list[Flow]:
        return self.scenario.flows

    def build(self, sinks: list[Sink] | None = None) -> Topology:
        """The network of the model; of a copy when the scenario has ``spec.events``, whose
        control plane changes the model it runs on (a Cluster runs any number of times)."""
        if self.scenario.changes:
            import copy

            return build(copy.deepcopy(self.model), sinks)
        return build(self.model, sinks)

    def simulate(self, flows: Sequence[str | Flow] | None = None) -> Simulation:
        """A run that advances one event at a time (``sim.step()``), for notebooks.

        ``flows`` are flow names or ``Flow``s (default: every flow).  The network is built
        from a fresh allocation, so a simulation replays what a first ``run()`` does."""
        from pktsim.display import Simulation
        from pktsim.sinks.trace import MemorySink

        by_name = {f.name: f for f in self.scenario.flows}
        unknown = [f for f in flows or () if isinstance(f, str) and f not in by_name]
        if unknown:
            raise KeyError(f"no flow named {unknown[0]!r} (flows: {', '.join(by_name)})")
        chosen = [by_name[f] if isinstance(f, str) else f for f in flows] \
            if flows is not None else self.scenario.flows
        memory = MemorySink()
        topo = Cluster(self.scenario).build([memory])
        results = start_flows(topo, chosen)
        _control(topo, self.scenario, results, None)  # spec.events, step by step too
        return Simulation(topo, results, memory, _observed)

    def diagram(self) -> TopologyView:
        """The topology as a picture (``_repr_png_``) and as text (``str``)."""
        from pktsim.display import TopologyView

        return TopologyView(Cluster(self.scenario).build())

    def _repr_png_(self) -> bytes:
        return self.diagram().png()

    def resolv_conf(self, pod: str) -> ResolvConf:
        """The ``/etc/resolv.conf`` kubelet writes for ``pod`` (``NAMESPACE/NAME``), from its
        ``dnsPolicy`` and ``dnsConfig`` (``.render()`` gives the file's text)."""
        from pktsim.build.topology import pod_resolv_conf

        info = self.model.pods.get(pod)
        if info is None:
            raise KeyError(f"no pod {pod!r} (pods: {', '.join(sorted(self.model.pods))})")
        return pod_resolv_conf(self.model, info)

    def reachability(self, ports: Sequence[int] | None = None, *, protocol: str = "tcp",
                     namespaces: Sequence[str] = ()) -> Reachability:
        """Probe every pod from every other pod on each of ``ports`` (default: the ports of
        ``protocol`` the pods declare, else 80), as upstream's NetworkPolicy e2e does, all in
        one fresh network; the matrix ``pktsim reach`` prints (``.cells``, ``.text()``,
        ``.frame()``, ``.heatmap()``), each cell decided on the wire and its deciding policy
        read from the trace (``pktsim.reach``).  The scenario's own flows do not run."""
        from pktsim.reach.probe import reachability

        return reachability(self.scenario, ports=ports, protocol=protocol,
                            namespaces=namespaces)

    def __repr__(self) -> str:
        cfg = self.model.config
        return (f"<pktsim.Cluster: {len(self.model.nodes)} nodes, {len(self.model.pods)} pods, "
                f"{len(self.model.services)} services, network {cfg.network}, "
                f"{len(self.flows)} flows>")

    def run(self, out: str | os.PathLike[str] | None = None, *, flows: list[Flow] | None = None,
            until_ns: int | None = None, force: bool = True, keep: bool = False,
            progress: Callable[[TraceEvent], None] | None = None,
            budget: Budget = DEFAULT_BUDGET,
            snapshot_at: Mapping[str, int] | None = None) -> Result:
        """Run every flow (or ``flows``); with ``out``, stream the output folder there.

        ``keep`` also keeps frames and events in memory when streaming to ``out``;
        ``progress`` is called with every trace event (the CLI's progress line);
        ``snapshot_at`` (label -> virtual ns) also writes the node tables at those moments,
        into ``nodes/NODE/at-LABEL/`` (``nodes/NODE/`` holds them when the last flow ended).
        A run that reaches its ``budget`` (``pktsim.build.budget``) stops there: the
        result's ``stopped`` says why and names the flows still running.
        """
        from pktsim.sinks.snapshots import Snapshots
        from pktsim.sinks.trace import MemorySink

        chosen = self.scenario.flows if flows is None else flows
        if out is None:
            in_memory = MemorySink()
            topo = self.build([in_memory])
            results = start_flows(topo, chosen)
            plane = _control(topo, self.scenario, results, None)
            stopped = _drive(topo, chosen, results, until_ns, budget)
            return _observed(Result(topo, results, in_memory, stopped=stopped,
                                    impact=_impact(plane, results)))
        dest = Path(out)
        memory = MemorySink() if keep else None
        with atomic_dir(dest, force=force) as tmp:
            sinks = file_sinks(tmp) + ([memory] if memory is not None else [])
            try:
                topo = self.build(sinks)
                if progress is not None:
                    topo.driver.listeners.append(progress)
                results = start_flows(topo, chosen)
                snapshots = Snapshots(topo, results, snapshot_at)
                plane = _control(topo, self.scenario, results, snapshots)
                stopped = _drive(topo, chosen, results, until_ns, budget)
                write_dumps(tmp, topo, snapshots)
            finally:
                for sink in sinks:
                    sink.close()
        return _observed(Result(topo, results, memory, dest, stopped=stopped,
                                impact=_impact(plane, results)))


def _control(topo: Topology, scenario: Scenario, results: list[FlowResult],
             snapshots: Snapshots | None) -> ControlPlane | None:
    """The control plane of a scenario with ``spec.events`` (``pktsim.control``)."""
    if not scenario.changes:
        return None
    from pktsim.control.plane import ControlPlane

    return ControlPlane(topo, scenario.changes, results,
                        snapshots.take_at if snapshots is not None else None)


def _impact(plane: ControlPlane | None, results: list[FlowResult]) -> dict[str, list[str]]:
    if plane is None:
        return {}
    return {r.flow: lines for r in results if (lines := plane.summary(r.flow))}


def _drive(topo: Topology, flows: list[Flow], results: list[FlowResult],
           until_ns: int | None, budget: Budget) -> str:
    """Run the driver within ``budget``; the diagnosis when the budget stopped it.  No
    budget runs past the last second a pcap file can stamp (``PCAP_END_NS``)."""
    end = PCAP_END_NS - topo.driver.start_time_ns
    if budget.horizon_ns is None or budget.horizon_ns > end:
        budget = Budget(end, budget.max_events)
    reason = topo.driver.run(until=until_ns, max_events=budget.max_events,
                             horizon=budget.horizon_ns)
    return diagnose(flows, results, reason, budget) if reason else ""
