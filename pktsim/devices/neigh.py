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
* Reachability (``neigh_timer_handler``): a REACHABLE entry stays so for ``reachable_time``
  after its last confirmation -- an ARP reply, or a local TCP socket's ACK that moves
  forward (``sk_dst_confirm``); forwarded traffic and UDP confirm nothing.  Then it is
  STALE, or DELAY at once when it was used in the last ``delay_first_probe_time`` (5 s) --
  which never happens here: a REACHABLE entry sends through its cached header
  (``neigh_output`` -> ``neigh_hh_output``), which leaves ``used`` alone; only the slow
  path (``neigh_resolve_output`` -> ``neigh_event_send``) stamps it (checked with the
  kernel: UDP sent every 0.5 s through a REACHABLE entry, the entry still turns STALE).
  A STALE entry still sends, and its first use makes it DELAY; 5 s later, unless confirmed
  meanwhile, it is PROBE: ``ucast_solicit`` (3) ARP requests unicast to the cached MAC,
  ``retrans_time`` apart (``arp_solicit``); no answer, FAILED.  A FAILED entry's next use
  starts over with ``mcast_solicit`` broadcasts, and then the sender is told.  This is how
  a node learns that a pod it still sends to is gone.
* ``reachable_time`` is ``base_reachable_time`` (30 s) drawn in [1/2, 3/2) of it
  (``neigh_rand_reach_time``) per device, drawn again every 300 s
  (``neigh_periodic_work``); pktsim's draw is seeded by the namespace and device.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from pktsim.core.frame import Frame
from pktsim.wire.parse import ip_str, mac_str

RETRANS_NS = 1_000_000_000
MCAST_SOLICIT = 3
UCAST_SOLICIT = 3  # ip-sysctl.rst neigh/default/ucast_solicit
DELAY_PROBE_NS = 5_000_000_000  # delay_first_probe_time
BASE_REACHABLE_NS = 30_000_000_000  # base_reachable_time_ms
REDRAW_NS = 300_000_000_000  # neigh_periodic_work redraws reachable_time every 300 s
UNRES_QLEN = 101  # Documentation/networking/ip-sysctl.rst: unres_qlen, default 101


@dataclass(slots=True)
class Neighbour:
    ip: bytes
    dev: str
    mac: bytes | None = None
    state: str = "INCOMPLETE"  # INCOMPLETE | REACHABLE | STALE | FAILED | PERMANENT
    probes: int = 0
    next_probe: int | None = None  # the entry's timer: a probe (INCOMPLETE, PROBE) or a check
    confirmed: int = 0  # when its reachability was last confirmed
    used: int = 0  # when a packet last went out through it
    updated: int = 0  # when it entered its state
    flow: str = ""  # the flow whose packet used it last (its probes are that flow's)
    router: bool = False  # IPv6: the last NA had the Router flag (``ip -6 neigh``: router)
    # packets waiting for resolution: (IPv4 packet bytes, frame tags)
    queue: list[tuple[bytes, Frame]] = field(default_factory=list)


class NeighTable:
    def __init__(self, host: str = "") -> None:
        self.host = host  # seeds the reachable_time draws
        self._reachable: dict[tuple[str, int], int] = {}  # (dev, 300 s window) -> its draw
        self.entries: dict[tuple[str, bytes], Neighbour] = {}
        # the entries that may have a probe due: those made INCOMPLETE and not since
        # resolved (a node of a big vxlan cluster has thousands of PERMANENT entries, and the
        # driver asks for the next deadline after every packet)
        self._unresolved: dict[tuple[str, bytes], Neighbour] = {}
        # an overlay's PERMANENT entries, one per other node, shared by every node's table
        # (5,000 nodes would otherwise hold 25 million): device -> (ip -> entry, own ip left
        # out); a dual-stack vxlan node has two such devices (flannel.1, flannel-v6.1)
        self._peers: dict[str, tuple[dict[bytes, Neighbour], bytes]] = {}

    def share_peers(self, dev: str, peers: dict[bytes, Neighbour], own: bytes) -> None:
        """Take ``peers`` (never changed: PERMANENT entries are not updated by traffic) as
        ``dev``'s entries, but the one for ``own``; an entry set later shadows its peer."""
        self._peers[dev] = (peers, own)

    def _find(self, dev: str, ip: bytes) -> Neighbour | None:
        entry = self.entries.get((dev, ip))
        if entry is None and self._peers:
            shared = self._peers.get(dev)
            if shared is not None and ip != shared[1]:
                return shared[0].get(ip)
        return entry

    def all_entries(self) -> list[tuple[tuple[str, bytes], Neighbour]]:
        """Every entry, the shared peers' included, as ``((dev, ip), entry)``."""
        out = list(self.entries.items())
        for pdev, (peers, own) in self._peers.items():
            out += [((pdev, ip), e) for ip, e in peers.items()
                    if ip != own and (pdev, ip) not in self.entries]
        return out

    def get(self, dev: str, ip: bytes) -> Neighbour | None:
        return self._find(dev, ip)

    def resolved(self, dev: str, ip: bytes) -> bytes | None:
        entry = self._find(dev, ip)
        if entry is not None and entry.mac is not None and entry.state != "FAILED":
            return entry.mac
        return None

    def set(self, dev: str, ip: bytes, mac: bytes, state: str, now: int = 0) -> Neighbour:
        entry = self._find(dev, ip)
        if entry is not None and (dev, ip) not in self.entries:  # a shared peer's
            if state != "PERMANENT":
                return entry
            entry = None
        if entry is None:
            entry = Neighbour(ip, dev)
            self.entries[(dev, ip)] = entry
        if entry.state == "PERMANENT" and state != "PERMANENT":
            return entry
        entry.mac = mac
        entry.state = state
        entry.next_probe = None
        entry.probes = 0
        entry.updated = now
        if state == "REACHABLE":
            entry.confirmed = now
        self._unresolved.pop((dev, ip), None)
        return entry

    def reachable_time(self, dev: str, now: int) -> int:
        """``neigh_rand_reach_time``: uniform in [base/2, 3*base/2), per device and 300 s."""
        key = (dev, now // REDRAW_NS)
        found = self._reachable.get(key)
        if found is None:
            draw = random.Random(f"{self.host}/{dev}/{key[1]}")
            found = self._reachable[key] = BASE_REACHABLE_NS // 2 + \
                draw.randrange(BASE_REACHABLE_NS)
        return found

    def state_at(self, entry: Neighbour, now: int) -> str:
        """The state ``ip neigh`` shows: a REACHABLE entry past its time is STALE."""
        if entry.state == "REACHABLE" and \
                now > entry.confirmed + self.reachable_time(entry.dev, entry.confirmed):
            return "STALE"
        return entry.state

    def use(self, dev: str, ip: bytes, now: int, flow: str = "") -> bytes | None:
        """The MAC a packet to ``ip`` leaves with now (None: resolve first), moving the entry
        through REACHABLE -> STALE -> DELAY as ``neigh_event_send`` and the timer do."""
        entry = self._find(dev, ip)
        if entry is None or entry.mac is None or entry.state in ("FAILED", "INCOMPLETE"):
            return None
        if entry.state == "PERMANENT":  # never probed: nothing to stamp
            return entry.mac
        if entry.state == "REACHABLE":
            expiry = entry.confirmed + self.reachable_time(dev, entry.confirmed)
            if now <= expiry:  # the cached header (neigh_hh_output): ``used`` not touched
                entry.flow = flow
                return entry.mac
            # its timer ran and found it unused since the last slow-path send: STALE then
            entry.state, entry.updated = "STALE", expiry
        if entry.state == "STALE":
            entry.state, entry.updated = "DELAY", now
            self._arm(entry, now + DELAY_PROBE_NS)
        entry.used = now
        entry.flow = flow
        return entry.mac

    def confirm(self, dev: str, ip: bytes, now: int) -> None:
        """``neigh_confirm``: the peer answered a local socket (its next timer sees it)."""
        entry = self._find(dev, ip)
        if entry is not None and entry.mac is not None and entry.state != "PERMANENT":
            entry.confirmed = now

    def _arm(self, entry: Neighbour, at: int) -> None:
        entry.next_probe = at
        self._unresolved[(entry.dev, entry.ip)] = entry

    def check(self, entry: Neighbour, now: int) -> str:
        """A DELAY entry's timer (``neigh_timer_handler``; the only timer of a reachable
        entry here, since REACHABLE turns STALE lazily in ``use``): confirmed since it
        began, REACHABLE again; else ``"PROBE"``: send the first unicast probe now."""
        if entry.confirmed >= entry.updated:
            entry.state, entry.updated, entry.next_probe = "REACHABLE", now, None
            self._unresolved.pop((entry.dev, entry.ip), None)
            return "REACHABLE"
        entry.state, entry.updated, entry.probes = "PROBE", now, 0
        return "PROBE"

    def incomplete(self, dev: str, ip: bytes) -> Neighbour:
        entry = self._find(dev, ip)
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
        self._peers.pop(dev, None)

    def next_deadline(self) -> int | None:
        times = [e.next_probe for e in self._unresolved.values() if e.next_probe is not None]
        return min(times) if times else None

    def due(self, now: int) -> list[Neighbour]:
        return [e for e in self._unresolved.values()
                if e.next_probe is not None and e.next_probe <= now]

    def dump(self, now: int = 0) -> str:
        """``ip neigh show`` lines."""
        lines = []
        for (dev, ip), e in sorted(self.all_entries(), key=lambda kv: (kv[0][1], kv[0][0])):
            mac = f" lladdr {mac_str(e.mac)}" if e.mac is not None else ""
            lines.append(f"{ip_str(ip)} dev {dev}{mac} {self.state_at(e, now)}\n")
        return "".join(lines)
