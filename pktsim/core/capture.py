"""Capture points and the sinks that see them: the driver's contract with its outputs.

A capture point is where ``tcpdump -i`` would listen (``node-1:cbr0``, ``default/web:eth0``);
a ``Sink`` sees every captured frame and every trace event, in time order.  The capture
files, the trace writers and the in-memory result are all sinks: capture is not a special
case of the driver.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pktsim.core.events import TraceEvent


# The last instant classic pcap can stamp: ts_sec is an unsigned 32-bit count of seconds
# since 1970, so 2106-02-07T06:28:15Z.  Every frame of a run must fall in [0, this].
PCAP_END_NS = (2**32 - 1) * 10**9

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


class Sink(Protocol):
    """Sees every captured frame and every trace event, in time order.

    ``interface`` is called once per capture point before any frame on it.  ``frame`` returns
    nothing; the driver numbers frames itself (1-based, in the order frames are offered).
    A sink that needs no frames (or no events) says so with a class attribute
    ``takes_frames = False`` (``takes_events = False``): the driver then skips it.
    """

    def interface(self, iface: Interface) -> None: ...

    def frame(self, t_abs_ns: int, iface: Interface, direction: Direction, data: bytes,
              comment: str) -> None: ...

    def event(self, event: TraceEvent) -> None: ...

    def close(self) -> None: ...
