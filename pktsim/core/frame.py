"""What every device shares: the frame it receives, the reaction it returns, the steps it explains.

Theory of operation
-------------------
A device is *sans-IO*: the driver calls ``receive(now, port, frame)`` and gets back a
``Reaction`` — the frames to send (on which port, after how many nanoseconds) and the
``Step``s that explain why.  A device never reads a clock, never schedules, never writes a
file.  Timers are pulled, not pushed: ``next_deadline()`` says when the device next wants to
be woken and ``on_deadline(now)`` is that wake-up (aioquic's ``get_timer`` pattern).

Between devices a frame is ``bytes`` plus two simulation-only tags that travel *beside* the
bytes, never in them: ``pid``, an id that stays with a packet through forwarding and NAT,
and ``flow``, the name of the scenario flow that caused it (for the trace).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from pktsim.core.events import Detail, Drop, DropReason, Event, RuleHit

__all__ = ["Device", "DropReason", "Emit", "Frame", "Reaction", "Step"]


class Frame:
    """A frame on a wire: the bytes, and the tags that travel beside them."""

    __slots__ = ("brnf", "data", "flow", "nexthop", "pid", "prerouted")

    def __init__(self, data: bytes, pid: int, flow: str = "",
                 nexthop: bytes | None = None, prerouted: bool = False,
                 brnf: tuple[bytes, str] | None = None) -> None:
        self.data = data
        self.pid = pid
        self.flow = flow
        self.nexthop = nexthop  # the route's gateway, as skb_dst() carries it to a tunnel
        self.prerouted = prerouted  # br_netfilter ran PREROUTING already (ip_sabotage_in)
        # a bridged DNAT on its way through the node's neighbour output: (the sender's
        # MAC, the bridge port it came in on), as nf_bridge_info keeps them
        self.brnf = brnf

    def with_data(self, data: bytes, nexthop: bytes | None = None) -> Frame:
        """The same packet (same id and flow) with new bytes, e.g. after a rewrite."""
        return Frame(data, self.pid, self.flow, nexthop)

    def __repr__(self) -> str:
        return f"Frame(pid={self.pid}, flow={self.flow!r}, {len(self.data)} bytes)"


@dataclass(slots=True)
class Step:
    """One explained happening inside a device: what, on which interface, about which packet.

    ``event`` says what kind of happening it is; ``summary`` is the one line a person reads;
    ``detail`` the typed facts of the decision (the rule that matched, the NAT rewrite, the
    drop reason: ``pktsim.core.events``).
    """

    event: Event
    summary: str
    iface: str = ""
    pid: int | None = None
    flow: str = ""
    detail: Detail | None = None


@dataclass(slots=True)
class Emit:
    """A frame to transmit on ``port`` after ``delay`` nanoseconds of processing."""

    port: str
    frame: Frame
    delay: int = 0


@dataclass(slots=True)
class Reaction:
    """What a device did about one input: frames to send and the steps that explain them."""

    emits: list[Emit] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)

    def send(self, port: str, frame: Frame, delay: int = 0) -> None:
        self.emits.append(Emit(port, frame, delay))

    def step(self, event: Event, summary: str, iface: str = "", frame: Frame | None = None,
             detail: Detail | None = None) -> None:
        if not isinstance(event, Event):
            raise TypeError(f"a step's event is an Event, not {event!r}")
        self.steps.append(Step(event, summary, iface,
                               frame.pid if frame is not None else None,
                               frame.flow if frame is not None else "", detail))

    def drop(self, reason: DropReason, iface: str, frame: Frame | None, why: str = "",
             rule: RuleHit | None = None) -> None:
        self.drop_as(f"drop: {reason.value}" + (f" ({why})" if why else ""), reason, iface,
                     frame, rule)

    def drop_as(self, text: str, reason: DropReason, iface: str, frame: Frame | None,
                rule: RuleHit | None = None) -> None:
        """A drop whose summary is ``text`` itself (``REJECT ...``, a socket's error)."""
        self.step(Event.DROP, text, iface, frame, Drop(reason, rule))

    def extend(self, other: Reaction) -> None:
        self.emits.extend(other.emits)
        self.steps.extend(other.steps)


class Device(Protocol):
    """The interface the driver drives.  ``host`` names the node, pod or ``external``."""

    name: str
    host: str

    def receive(self, now: int, port: str, frame: Frame) -> Reaction: ...

    def next_deadline(self) -> int | None: ...

    def on_deadline(self, now: int) -> Reaction: ...
