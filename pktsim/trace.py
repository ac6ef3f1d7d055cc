"""The trace of a run as one model: ``Trace`` -> ``Packet`` -> ``Hop`` -> steps.

Why one model
-------------
The driver writes a flat stream of ``TraceEvent``\\ s.  The story, the hop tables, the
topology drawing and the path invariants all want the same regrouping of it — by packet
(the id that survives forwarding, NAT and encapsulation), then by the host the packet was
on — and the addresses of every captured frame.  Each used to regroup the stream itself and
some read addresses back out of the summary text; this module does it once, and reads
addresses only from the captured frame bytes (``pktsim.wire.parse.endpoints``: the
innermost IPv4 header, so a VXLAN or IP-in-IP frame shows the pod addresses).

Like pybatfish's Trace/Hop/Step: a ``Trace`` (a run's or one flow's events) has ``packets``
in order of first appearance; a ``Packet`` has ``hops``, one per run of consecutive steps
on one host; the steps are the ``TraceEvent``\\ s themselves, unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import groupby
from typing import TYPE_CHECKING

from pktsim.core.capture import LinkType
from pktsim.core.events import FRAME_EVENTS, Event, TraceEvent
from pktsim.wire.parse import endpoints

if TYPE_CHECKING:
    from pktsim.sinks.trace import CapturedFrame

QUIET = frozenset((Event.LEARN,))  # steps the stories leave out: every bridge learns


@dataclass(slots=True)
class Hop:
    """One host's consecutive steps of a packet: the frames it took in and sent out, and
    what it decided in between."""

    host: str
    steps: list[TraceEvent]

    @property
    def rx(self) -> list[TraceEvent]:
        """The frames captured coming in."""
        return [e for e in self.steps if e.event is Event.RX]

    @property
    def tx(self) -> list[TraceEvent]:
        """The frames captured going out."""
        return [e for e in self.steps if e.event is Event.TX]

    @property
    def decisions(self) -> list[TraceEvent]:
        """Every step that is not a captured frame (route, nat, drop, ...)."""
        return [e for e in self.steps if e.event not in FRAME_EVENTS]


@dataclass(slots=True)
class Packet:
    """One packet id's steps; ``sender``/``receiver`` are its first frame's addresses."""

    pid: int
    flow: str
    steps: list[TraceEvent]
    trace: Trace = field(repr=False)

    @property
    def hops(self) -> list[Hop]:
        """The hosts the packet was on, in time order (a host twice if it came back)."""
        return [Hop(host, list(group)) for host, group in groupby(self.steps,
                                                                   key=lambda e: e.host)]

    @property
    def frames(self) -> list[TraceEvent]:
        """The packet's captured frames (rx and tx steps), in time order."""
        return [e for e in self.steps if e.event in FRAME_EVENTS]

    @property
    def first(self) -> TraceEvent | None:
        """The first captured frame, None when the packet was never captured."""
        return next((e for e in self.steps if e.event in FRAME_EVENTS), None)

    @property
    def ends(self) -> tuple[str, str] | None:
        """``(sender, receiver)`` of the first frame (``IP:PORT`` for TCP and UDP)."""
        first = self.first
        return self.trace.addresses(first) if first is not None else None

    @property
    def sender(self) -> str:
        ends = self.ends
        return ends[0] if ends is not None else ""

    @property
    def receiver(self) -> str:
        ends = self.ends
        return ends[1] if ends is not None else ""

    @property
    def is_ip(self) -> bool:
        """Is the first frame an IP packet (not ARP or Neighbor Discovery, not another
        ethertype)?"""
        first = self.first
        return first is not None and self.trace.is_ip(first)


class Trace:
    """A run's (or one flow's) steps, grouped by packet; ``frames`` (number -> captured
    frame) gives the addresses.  Without frames every address is unknown ("")."""

    def __init__(self, events: Iterable[TraceEvent],
                 frames: Mapping[int, CapturedFrame] | None = None) -> None:
        self.events = list(events)
        self.frames: Mapping[int, CapturedFrame] = frames if frames is not None else {}
        self._addresses: dict[int, tuple[str, str] | None] = {}
        by_pid: dict[int, list[TraceEvent]] = {}
        for e in self.events:
            if e.packet is not None:
                by_pid.setdefault(e.packet, []).append(e)
        self._packets = {pid: Packet(pid, steps[0].flow, steps, self)
                         for pid, steps in by_pid.items()}

    @classmethod
    def of(cls, result: object, flow: str | None = None) -> Trace:
        """The trace of a ``pktsim.Result`` kept in memory (``flow``: that flow only)."""
        memory = getattr(result, "memory", None)
        frames = {f.number: f for f in memory.frames} if memory is not None else {}
        events = memory.events if memory is not None else []
        return cls((e for e in events if flow is None or e.flow == flow), frames)

    @property
    def packets(self) -> list[Packet]:
        """Every packet, in order of first appearance."""
        return list(self._packets.values())

    def packet(self, pid: int) -> Packet:
        return self._packets[pid]

    def __iter__(self) -> Iterator[Packet]:
        return iter(self._packets.values())

    def __len__(self) -> int:
        return len(self._packets)

    def flow(self, name: str) -> Trace:
        """The steps of flow ``name`` only, over the same frames."""
        return Trace((e for e in self.events if e.flow == name), self.frames)

    def frame_pids(self) -> dict[int, int]:
        """Frame number -> the packet id it carried."""
        return {e.frame: e.packet for e in self.events
                if e.frame is not None and e.packet is not None}

    def captured(self, step: TraceEvent) -> CapturedFrame | None:
        """The captured frame of a rx/tx step, None for a decision or a missing frame."""
        return self.frames.get(step.frame) if step.frame is not None else None

    def addresses(self, step: TraceEvent) -> tuple[str, str] | None:
        """``(src, dst)`` of a step's frame (innermost IP header, ports for TCP and UDP);
        None when the step has no frame or the frame is not IP."""
        number = step.frame
        if number is None:
            return None
        if number not in self._addresses:
            f = self.frames.get(number)
            self._addresses[number] = None if f is None else \
                endpoints(f.data, f.iface.linktype == LinkType.RAW)
        return self._addresses[number]

    def is_ip(self, step: TraceEvent) -> bool:
        """Is the step's frame an IP packet (as the frame bytes say)?  IPv4, or IPv6 but
        Neighbor Discovery (which, as ARP, is the link's business, not the flow's)."""
        f = self.captured(step)
        if f is None:
            return False
        if f.iface.linktype == LinkType.RAW:
            return len(f.data) >= 20
        data = f.data
        if data[12:14] == b"\x86\xdd":
            return len(data) >= 54 and not (data[20] == 58 and len(data) > 54 and
                                            133 <= data[54] <= 137)
        return len(data) >= 34 and data[12:14] == b"\x08\x00"
