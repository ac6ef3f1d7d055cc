"""The neighbour (ARP) table of one namespace, as ``ip neigh`` shows it.

Theory of operation (Linux ``net/core/neighbour.c``, ``net/ipv4/arp.c``)
-----------------------------------------------------------------------
* A packet to an unresolved next hop creates an INCOMPLETE entry, is queued on it
  (``unres_qlen``: 101 packets, the default since Linux 3.3 -- ``unres_qlen_bytes`` =
  SK_WMEM_MAX over the truesize of a full frame; the oldest is dropped first), and an ARP
  request is broadcast.
  Requests are retried every ``retrans_time`` (1 s) up to ``mcast_solicit`` (3) times; then
  the entry is FAILED, the queue dropped, and the sender told "host unreachable".
* A reply makes the entry REACHABLE and flushes the queue.  A request *for us* also creates a
  STALE entry for the asker (``arp_process``), which is why the answering side never asks.
* Entries installed by an agent (flannel's VTEP neighbours) are PERMANENT.
* Reachability probes of STALE entries (after ``delay_first_probe_time``) are not modelled:
  pktsim's exchanges confirm neighbours by traffic long before those 5 s matter.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pktsim.core.frame import Frame
from pktsim.wire.parse import ip_str, mac_str

RETRANS_NS = 1_000_000_000
MCAST_SOLICIT = 3
UNRES_QLEN = 101  # Documentation/networking/ip-sysctl.rst: unres_qlen, default 101


@dataclass(slots=True)
class Neighbour:
    ip: bytes
    dev: str
    mac: bytes | None = None
    state: str = "INCOMPLETE"  # INCOMPLETE | REACHABLE | STALE | FAILED | PERMANENT
    probes: int = 0
    next_probe: int | None = None
    # packets waiting for resolution: (IPv4 packet bytes, frame tags)
    queue: list[tuple[bytes, Frame]] = field(default_factory=list)


class NeighTable:
    def __init__(self) -> None:
        self.entries: dict[tuple[str, bytes], Neighbour] = {}
        # the entries that may have a probe due: those made INCOMPLETE and not since
        # resolved (a node of a big vxlan cluster has thousands of PERMANENT entries, and the
        # driver asks for the next deadline after every packet)
        self._unresolved: dict[tuple[str, bytes], Neighbour] = {}

    def get(self, dev: str, ip: bytes) -> Neighbour | None:
        return self.entries.get((dev, ip))

    def resolved(self, dev: str, ip: bytes) -> bytes | None:
        entry = self.entries.get((dev, ip))
        if entry is not None and entry.mac is not None and entry.state != "FAILED":
            return entry.mac
        return None

    def set(self, dev: str, ip: bytes, mac: bytes, state: str) -> Neighbour:
        entry = self.entries.get((dev, ip))
        if entry is None:
            entry = Neighbour(ip, dev)
            self.entries[(dev, ip)] = entry
        if entry.state == "PERMANENT" and state != "PERMANENT":
            return entry
        entry.mac = mac
        entry.state = state
        entry.next_probe = None
        entry.probes = 0
        self._unresolved.pop((dev, ip), None)
        return entry

    def incomplete(self, dev: str, ip: bytes) -> Neighbour:
        entry = self.entries.get((dev, ip))
        if entry is None or entry.state == "FAILED":
            entry = Neighbour(ip, dev)
            self.entries[(dev, ip)] = entry
            self._unresolved[(dev, ip)] = entry
        return entry

    def fail(self, entry: Neighbour) -> None:
        """No answer after ``mcast_solicit`` requests: FAILED, never probed again."""
        entry.state, entry.next_probe = "FAILED", None
        if self._unresolved.get((entry.dev, entry.ip)) is entry:
            del self._unresolved[(entry.dev, entry.ip)]

    def forget_dev(self, dev: str) -> None:
        """The device is gone: its entries go with it (``neigh_ifdown``)."""
        for key in [k for k in self.entries if k[0] == dev]:
            del self.entries[key]
            self._unresolved.pop(key, None)

    def next_deadline(self) -> int | None:
        times = [e.next_probe for e in self._unresolved.values() if e.next_probe is not None]
        return min(times) if times else None

    def due(self, now: int) -> list[Neighbour]:
        return [e for e in self._unresolved.values()
                if e.next_probe is not None and e.next_probe <= now]

    def dump(self) -> str:
        """``ip neigh show`` lines."""
        lines = []
        for (dev, ip), e in sorted(self.entries.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            mac = f" lladdr {mac_str(e.mac)}" if e.mac is not None else ""
            lines.append(f"{ip_str(ip)} dev {dev}{mac} {e.state}\n")
        return "".join(lines)
