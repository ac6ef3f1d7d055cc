"""Packet Tracer's simulation mode: run a cluster one event at a time and look around.

    sim = cluster.simulate(flows=["pod-to-service"])
    step = sim.step()            # what happened in the next event that did anything
    sim.tables("node-1").fdb     # the bridge's FDB right now
    sim.packet                   # the last frame captured, dissected by scapy
    result = sim.finish()        # run the rest; the same Result as cluster.run()

``step()`` pops events off the driver's queue until one of them produced a trace event (app
starts and timer re-arms produce none), and returns a ``SimStep``: the virtual time, the
trace events and the frames captured in that event.  ``step_until(...)`` steps until an
event of a given kind (``"nat"``, ``"drop"``, ``"deliver"``...), flow, host or any predicate.
Between steps everything can be inspected — and changed: ``sim.topology`` is the live
network (break a route before the first step and watch what happens).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from pktsim.core.events import TraceEvent
from pktsim.display.packets import FrameView
from pktsim.display.tables import NodeTables
from pktsim.display.trace import TraceView
from pktsim.sinks.trace import CapturedFrame, MemorySink
from pktsim.trace import Trace

if TYPE_CHECKING:
    from pktsim.api import Result
    from pktsim.build.topology import Topology
    from pktsim.devices.outcome import FlowResult
    from pktsim.display.draw import TopologyView


class SimStep:
    """What one driver event did: its time, trace events and captured frames."""

    def __init__(self, index: int, t: int, events: list[TraceEvent],
                 frames: list[CapturedFrame]) -> None:
        self.index = index
        self.t = t
        self.events = events
        self.frames = frames

    @property
    def packet(self) -> FrameView | None:
        """The last frame captured in this step (None: the step captured none)."""
        return FrameView(self.frames[-1]) if self.frames else None

    @property
    def trace(self) -> TraceView:
        return TraceView(self.events, {f.number: f for f in self.frames},
                         flow=None, max_rows=50)

    def kinds(self) -> list[str]:
        return [e.event for e in self.events]

    def __str__(self) -> str:
        lines = [f"step {self.index} at {self.t / 1e6:.6f} ms"]
        for e in self.events:
            where = f"{e.host}:{e.iface}" if e.iface else e.host
            frame = f"#{e.frame}" if e.frame is not None else ""
            lines.append(f"  {frame:>6} {where:<30} {e.event:<9} {e.summary}")
        return "\n".join(lines) + "\n"

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        head = f"<b>step {self.index} at {self.t / 1e6:.6f} ms</b>"
        return head + self.trace.table.html()


class Simulation:
    """A run that advances on request; see the module docstring."""

    def __init__(self, topology: Topology, flows: list[FlowResult], memory: MemorySink,
                 finish: Callable[[Result], Result] | None = None) -> None:
        self.topology = topology
        self.flows = flows
        self.memory = memory
        self.steps = 0
        self._finish = finish

    @property
    def now(self) -> int:
        """Virtual time in ns."""
        return self.topology.driver.now

    @property
    def done(self) -> bool:
        return self.topology.driver.idle

    def step(self) -> SimStep | None:
        """Run driver events until one produces a trace event; None when nothing is left."""
        driver = self.topology.driver
        events, frames = len(self.memory.events), len(self.memory.frames)
        while driver.step():
            if len(self.memory.events) > events:
                self.steps += 1
                return SimStep(self.steps, driver.now, self.memory.events[events:],
                               self.memory.frames[frames:])
        return None

    def step_until(self, event: str | None = None, *, flow: str | None = None,
                   host: str | None = None, t_ns: int | None = None,
                   where: Callable[[TraceEvent], bool] | None = None) -> SimStep | None:
        """Step until a step holds an event matching every criterion given (its ``event``
        kind, ``flow``, ``host``; ``where`` any predicate) or time reaches ``t_ns``.
        Returns that step, or None when the run ended first."""

        def hit(e: TraceEvent) -> bool:
            return ((event is None or e.event == event) and (flow is None or e.flow == flow)
                    and (host is None or e.host == host) and (where is None or where(e)))

        criteria = any(x is not None for x in (event, flow, host, where))
        while True:
            st = self.step()
            if st is None:
                return None
            if criteria and any(hit(e) for e in st.events):
                return st
            if t_ns is not None and st.t >= t_ns:
                return st

    def __iter__(self) -> Iterator[SimStep]:
        while (st := self.step()) is not None:
            yield st

    # -- looking around -------------------------------------------------------------------
    def tables(self, host: str) -> NodeTables:
        """A snapshot of ``host``'s FDB, routes, neighbours, iptables, conntrack, now."""
        return NodeTables(self.topology, host, self.now)

    @property
    def packet(self) -> FrameView | None:
        """The last frame captured so far."""
        return FrameView(self.memory.frames[-1]) if self.memory.frames else None

    @property
    def result(self) -> Result:
        """The run so far as a ``Result`` (shares the live state)."""
        from pktsim.api import Result

        return Result(self.topology, self.flows, self.memory)

    def trace(self, flow: str | None = None) -> TraceView:
        return self.result.trace(flow)

    def diagram(self) -> TopologyView:
        """The topology with the path of the last packet seen so far."""
        from pktsim.display.draw import TopologyView

        events = self.memory.events
        last = next((e.packet for e in reversed(events) if e.frame is not None), None)
        hops = [e for e in events if last is not None and e.packet == last]
        title = f"packet {last} at {self.now / 1e6:.3f} ms" if last is not None else ""
        frames = {f.number: f for f in self.memory.frames}
        return TopologyView(self.topology, Trace(hops, frames), title=title)

    def finish(self, until_ns: int | None = None) -> Result:
        """Run to the end (or to ``until_ns``) and return the ``Result``."""
        self.topology.driver.run(until=until_ns)
        result = self.result
        return self._finish(result) if self._finish is not None else result

    def __repr__(self) -> str:
        state = "done" if self.done else "running"
        return (f"<Simulation {state} at {self.now / 1e6:.3f} ms: {self.steps} steps, "
                f"{len(self.memory.frames)} frames, {len(self.memory.events)} events>")
