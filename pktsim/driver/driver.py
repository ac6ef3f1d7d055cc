"""The one driver: owns virtual time, moves frames along links, hands every step to the sinks.

Theory of operation
-------------------
Time is integer nanoseconds since the start of the run.  The event queue is a heap of
``(time, sequence, action)``; the sequence number breaks ties in the order events were
scheduled, so a run is a pure function of its input (ns-3's scheduler does the same).

A *link end* is a (device, port) pair, optionally with an ``Interface`` — the capture point a
``tcpdump -i`` there would see.  When a device emits on a port, the driver captures the frame
outbound on that end's interface, then delivers it to the peer end after the link latency,
where it is captured inbound and handed to the peer device's ``receive``.  A veth pair is one
link whose two ends are both captured; the bridge's local port (``cbr0``) is a link captured
only on the node side, since both sides are the same interface; ``lo`` is a link from a
namespace to itself, captured once, as Linux shows it.

Every frame's hop count is tracked by packet id; a packet past ``hop_limit`` hops (a bridging
loop, a routing loop with TTL reset) is dropped with ``DropReason.STORM``, so no topology can
hang the run.  A flood that loops nowhere crosses each link at most once each way, so the
limit is never below the number of link ends: an ARP request to 5,000 nodes is 5,000 hops of
one packet, not a storm.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice

from pktsim.core.capture import Direction, Interface, Sink
from pktsim.core.events import Drop, Event, TraceEvent
from pktsim.core.frame import Device, DropReason, Emit, Frame, Reaction
from pktsim.wire.parse import summary

DEFAULT_LATENCY_NS = 1_000
HOP_COUNTS = 65536  # packets whose hop counts are kept (a looping one is never idle)
SUMMARY_CACHE = 512  # summaries remembered by frame bytes (cleared when full)
_UNNOTED = (Event.LEARN, Event.DROP)  # steps not quoted in a frame's capture comment


@dataclass(slots=True, eq=False)
class LinkEnd:
    device: Device
    port: str
    iface: Interface | None
    peer: LinkEnd | None = None
    latency: int = DEFAULT_LATENCY_NS
    raw_ip: bool = False  # tunl0: frames are bare IPv4


@dataclass(slots=True)
class RunStats:
    events: int = 0
    frames: int = 0
    hops: int = 0
    drops: int = 0
    storm_drops: int = 0


class Driver:
    """Runs devices wired by links; sinks see frames and trace events in time order."""

    def __init__(self, sinks: list[Sink] | None = None, *, start_time_ns: int = 0,
                 hop_limit: int = 512) -> None:
        self.now = 0
        self.start_time_ns = start_time_ns
        self.sinks: tuple[Sink, ...] = tuple(sinks or ())  # fixed for the driver's life
        self.hop_limit = hop_limit
        self.stats = RunStats()
        self._queue: list[tuple[int, int, Callable[[], None]]] = []  # (t, seq, action)
        self._seq = 0
        self._ends: dict[tuple[int, str], LinkEnd] = {}
        self._wakeups: dict[int, int] = {}  # id(device) -> deadline scheduled
        self._hops: dict[int, int] = {}
        self._next_pid = 1
        # packet id -> the number the trace shows: packets are numbered in the order they
        # first appear in the trace, not the order they were made (a SYN waiting for ARP is
        # made before the ARP request that goes out first); bounded as ``_hops``
        self._shown: dict[int, int] = {}
        self._next_shown = 1
        self.interfaces: list[Interface] = []
        self.listeners: list[Callable[[TraceEvent], None]] = []
        self._summaries: dict[bytes, str] = {}  # frame bytes -> summary, bounded
        self._raw_summaries: dict[bytes, str] = {}  # the same for bare IPv4 (tunl0)
        # Bound methods of the sinks that want frames / events (a sink opts out with a
        # class attribute ``takes_frames = False`` or ``takes_events = False``): the hot
        # path calls only these instead of every sink's no-op.
        self.down: set[int] = set()  # ids of the devices of failed nodes (``set_down``)
        self._frame_fns = [s.frame for s in self.sinks if getattr(s, "takes_frames", True)]
        self._event_fns = [s.event for s in self.sinks if getattr(s, "takes_events", True)]

    # -- wiring ---------------------------------------------------------------------------
    def new_pid(self) -> int:
        pid = self._next_pid
        self._next_pid += 1
        return pid

    def _number(self, pid: int | None) -> int | None:
        """The trace's number of packet ``pid``: the next one at its first event."""
        if pid is None:
            return None
        shown = self._shown.get(pid)
        if shown is None:
            shown = self._shown[pid] = self._next_shown
            self._next_shown += 1
            if len(self._shown) > HOP_COUNTS:  # forget the oldest: memory stays flat
                for old in list(islice(self._shown, HOP_COUNTS // 8)):
                    del self._shown[old]
        return shown

    def add_interface(self, iface: Interface) -> Interface:
        self.interfaces.append(iface)
        for sink in self.sinks:
            sink.interface(iface)
        return iface

    def connect(self, a: Device, a_port: str, a_iface: Interface | None, b: Device, b_port: str,
                b_iface: Interface | None, *, latency: int = DEFAULT_LATENCY_NS,
                raw_ip: bool = False) -> None:
        """Join (a, a_port) and (b, b_port) by a link; each side optionally captured."""
        end_a = LinkEnd(a, a_port, a_iface, latency=latency, raw_ip=raw_ip)
        end_b = LinkEnd(b, b_port, b_iface, latency=latency, raw_ip=raw_ip)
        end_a.peer, end_b.peer = end_b, end_a
        self._ends[(id(a), a_port)] = end_a
        self._ends[(id(b), b_port)] = end_b

    def loopback(self, dev: Device, port: str, iface: Interface) -> None:
        """``lo``: what the namespace sends on ``port`` it receives on ``port``, seen once."""
        end = LinkEnd(dev, port, iface, latency=DEFAULT_LATENCY_NS)
        end.peer = end
        self._ends[(id(dev), port)] = end

    def disconnect(self, dev: Device, port: str) -> None:
        end = self._ends.pop((id(dev), port), None)
        if end is not None and end.peer is not None and end.peer is not end:
            self._ends.pop((id(end.peer.device), end.peer.port), None)

    def receiving_end(self, if_name: str) -> LinkEnd | None:
        """The captured link end named ``HOST:IFNAME``, where injected frames arrive."""
        for end in self._ends.values():
            if end.iface is not None and end.iface.if_name == if_name:
                return end
        return None

    def inject(self, t: int, end: LinkEnd, frame: Frame) -> None:
        """At ``t``, ``frame`` arrives on ``end`` as if its peer had sent it: captured
        (summarised from its bytes, however malformed) and handed to the device."""
        self.at(t, lambda: self._deliver(end, frame))

    # -- scheduling -----------------------------------------------------------------------
    def at(self, t: int, action: Callable[[], None]) -> None:
        """Schedule ``action`` at ``t``; a time already past runs now (time never goes back)."""
        t = max(t, self.now)
        self._seq += 1
        heapq.heappush(self._queue, (t, self._seq, action))

    def call(self, t: int, device: Device, fn: Callable[[int], Reaction]) -> None:
        """At time ``t`` run ``fn(now)`` (e.g. an app start) and apply its reaction."""
        self.at(t, lambda: self.apply(device, fn(self.now)))

    def run(self, until: int | None = None, max_events: int | None = None,
            horizon: int | None = None) -> str | None:
        """Process events in order until the queue is empty or time ``until`` is reached.

        ``max_events`` and ``horizon`` are a budget, not an end: the run stops before the
        first event past ``horizon`` (the clock stays at the last event) or after
        ``max_events`` events, and says which (``"horizon"``, ``"events"``; None when the
        queue drained or ``until`` came)."""
        queue = self._queue
        budget = max_events
        while queue:
            if until is not None and queue[0][0] > until:
                self.now = until
                return None
            if horizon is not None and queue[0][0] > horizon:
                return "horizon"
            t, _, action = heapq.heappop(queue)
            self.now = t
            self.stats.events += 1
            action()
            if budget is not None:
                budget -= 1
                if budget <= 0:
                    return "events" if queue else None
        if until is not None and self.now < until:
            self.now = until  # an idle network still lets the clock reach ``until``
        return None

    def step(self) -> bool:
        """Process one event; False when nothing is left (for notebooks' stepping)."""
        if not self._queue:
            return False
        self.run(max_events=1)
        return True

    def set_down(self, devices: list[Device], down: bool) -> None:
        """A failed node's devices (``down``) neither receive, send nor wake: frames that
        reach them are lost (traced as ``NODE_DOWN`` drops, never captured: no tcpdump runs
        on a dead machine) and their timers wait.  Back up, each device's timer is re-armed
        and a deadline that passed meanwhile fires at once."""
        for device in devices:
            if down:
                self.down.add(id(device))
            elif id(device) in self.down:
                self.down.discard(id(device))
                self._arm(device)

    @property
    def idle(self) -> bool:
        return not self._queue

    # -- the work -------------------------------------------------------------------------
    def apply(self, device: Device, reaction: Reaction) -> None:
        """Record a device's steps, transmit its frames, and re-arm its timer."""
        steps = reaction.steps
        notes: dict[int, str] = {}
        if steps:
            now, host, event, number = self.now, device.host, self._event, self._number
            for st in steps:
                if st.event is Event.DROP:
                    self.stats.drops += 1
                event(TraceEvent(now, st.flow, number(st.pid), host, st.iface, st.event,
                                 st.summary, None, st.detail))
            if reaction.emits:
                for st in steps:
                    if st.pid is not None and st.event not in _UNNOTED:
                        prev = notes.get(st.pid)
                        notes[st.pid] = f"{prev}; {st.summary}" if prev else st.summary
        for emit in reaction.emits:
            note = notes.get(emit.frame.pid, "") if notes else ""
            if emit.delay:
                self.at(self.now + emit.delay, _later(self._transmit, device, emit, note))
            else:
                self._transmit(device, emit, note)
        self._arm(device)

    def _arm(self, device: Device) -> None:
        deadline = device.next_deadline()
        if deadline is None:
            return
        key = id(device)
        scheduled = self._wakeups.get(key)
        if scheduled is not None and scheduled <= deadline:
            return
        self._wakeups[key] = deadline
        self.at(max(deadline, self.now), lambda: self._wake(device, deadline))

    def _wake(self, device: Device, deadline: int) -> None:
        key = id(device)
        if self._wakeups.get(key) != deadline:
            return
        del self._wakeups[key]
        if key in self.down:
            return  # frozen with its node: ``set_down`` re-arms it
        current = device.next_deadline()
        if current is None or current > self.now:
            self._arm(device)
            return
        self.apply(device, device.on_deadline(self.now))

    def _transmit(self, device: Device, emit: Emit, note: str = "") -> None:
        if self.down and id(device) in self.down:
            return  # a delayed emit of a device whose node failed meanwhile
        end = self._ends.get((id(device), emit.port))
        frame = emit.frame
        if end is None:
            self._event(TraceEvent(self.now, frame.flow, self._number(frame.pid), device.host,
                                   emit.port,
                                   Event.DROP, f"drop: {DropReason.PORT_DOWN.value}", None,
                                   Drop(DropReason.PORT_DOWN)))
            return
        if end.iface is not None and end.peer is not end:
            self._capture(end, frame, Direction.OUTBOUND, Event.TX, note)
        counts = self._hops  # in order of last hop: pop + insert moves a packet to the end
        hops = counts.pop(frame.pid, 0) + 1
        counts[frame.pid] = hops
        if len(counts) > HOP_COUNTS:  # forget the packets idle longest: memory stays flat
            for pid in list(islice(counts, HOP_COUNTS // 8)):
                del counts[pid]
        self.stats.hops += 1
        if hops > self.hop_limit and hops > len(self._ends):
            self.stats.storm_drops += 1
            self._event(TraceEvent(self.now, frame.flow, self._number(frame.pid), device.host,
                                   emit.port,
                                   Event.DROP, f"drop: {DropReason.STORM.value} ({hops} hops)",
                                   None, Drop(DropReason.STORM)))
            return
        peer = end.peer
        assert peer is not None
        self.at(self.now + end.latency, lambda: self._deliver(peer, frame))

    def _deliver(self, end: LinkEnd, frame: Frame) -> None:
        if self.down and id(end.device) in self.down:
            self._event(TraceEvent(self.now, frame.flow, self._number(frame.pid),
                                   end.device.host, end.iface.name if end.iface else end.port,
                                   Event.DROP, f"drop: {DropReason.NODE_DOWN.value}", None,
                                   Drop(DropReason.NODE_DOWN)))
            return
        reaction = end.device.receive(self.now, end.port, frame)
        if end.iface is not None:
            pid = frame.pid
            note = "; ".join([s.summary for s in reaction.steps if s.pid == pid])
            self._capture(end, frame, Direction.INBOUND, Event.RX, note)
        self.apply(end.device, reaction)

    def _capture(self, end: LinkEnd, frame: Frame, direction: Direction, event: Event,
                 note: str) -> None:
        iface = end.iface
        assert iface is not None
        stats = self.stats
        stats.frames += 1
        number = stats.frames
        data = frame.data
        # a frame's bytes often pass unchanged over several links: summarise them once
        cache = self._raw_summaries if end.raw_ip else self._summaries
        text = cache.get(data)
        if text is None:
            text = summary(data, end.raw_ip)
            if len(cache) >= SUMMARY_CACHE:
                cache.clear()
            cache[data] = text
        if self._frame_fns:
            comment = f"{text} | {note}" if note else text
            t_abs = self.start_time_ns + self.now
            for fn in self._frame_fns:
                fn(t_abs, iface, direction, data, comment)
        self._event(TraceEvent(self.now, frame.flow, self._number(frame.pid), iface.host,
                               iface.name, event, text, number))

    def record(self, event: TraceEvent) -> None:
        """A trace event made outside the devices (the control plane's): to every sink."""
        self._event(event)

    def _event(self, event: TraceEvent) -> None:
        for fn in self._event_fns:
            fn(event)
        for listener in self.listeners:
            listener(event)


def _later(fn: Callable[[Device, Emit, str], None], device: Device, emit: Emit,
           note: str) -> Callable[[], None]:
    return lambda: fn(device, emit, note)
