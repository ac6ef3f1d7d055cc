"""The driver's vocabulary shared with sinks: interfaces (capture points) and trace events."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Protocol


class LinkType(enum.IntEnum):
    """pcap LINKTYPE_* values, as Linux gives them to each kind of interface."""

    ETHERNET = 1  # eth0, veths, bridges, flannel.1, and lo (with zero MACs)
    RAW = 101  # LINKTYPE_RAW: tunl0 (IP-in-IP) carries bare IPv4


class Direction(enum.IntEnum):
    """pcapng ``epb_flags`` direction bits (0 = not available, 1 = inbound, 2 = outbound)."""

    UNKNOWN = 0
    INBOUND = 1
    OUTBOUND = 2


@dataclass(frozen=True, slots=True)
class Interface:
    """A capture point: ``if_name`` is ``HOST:IFNAME`` (``node-1:cbr0``, ``default/web:eth0``)."""

    host: str
    name: str
    linktype: LinkType = LinkType.ETHERNET
    description: str = ""
    mtu: int = 1500

    @property
    def if_name(self) -> str:
        return f"{self.host}:{self.name}"

    @property
    def file_stem(self) -> str:
        """The per-interface pcap file stem: ``/`` and ``:`` become ``_``."""
        return self.if_name.replace("/", "_").replace(":", "_")


class SharedDetail(dict[str, Any]):
    """A trace event's detail made once and carried by many events (a route's, a memoised
    rule walk's).  Nobody changes an event's detail, so a writer may encode a shared one once
    and reuse the text."""

    __slots__ = ()


@dataclass(slots=True)
class TraceEvent:
    """One line of ``trace.jsonl``: a hop event, as docs/scenario.md §7 lays out."""

    t: int  # ns since the start of the run
    flow: str
    packet: int | None
    host: str
    iface: str
    event: str
    summary: str
    frame: int | None = None  # 1-based frame number in capture.pcapng (Wireshark's numbering)
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "t": self.t, "flow": self.flow, "packet": self.packet, "host": self.host,
            "iface": self.iface, "event": self.event, "summary": self.summary,
        }
        if self.frame is not None:
            out["frame"] = self.frame
        out.update(self.detail)
        return out


class Sink(Protocol):
    """Sees every captured frame and every trace event, in time order.

    ``interface`` is called once per capture point before any frame on it.  ``frame`` returns
    nothing; the driver numbers frames itself (1-based, in the order frames are offered).
    """

    def interface(self, iface: Interface) -> None: ...

    def frame(self, t_abs_ns: int, iface: Interface, direction: Direction, data: bytes,
              comment: str) -> None: ...

    def event(self, event: TraceEvent) -> None: ...

    def close(self) -> None: ...
