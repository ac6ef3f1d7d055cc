"""What a rule's matches read: one packet's view, and the environment of the walk.

Theory of operation
-------------------
Matching never parses a packet twice: ``PacketView.of`` reads the addresses, protocol,
ports (TCP/UDP, first fragment only) and ICMP type/code once per table walk, and carries
the facts that are not in the bytes — the input and output interface names (empty when
the hook has none: no ``-i`` on a locally generated packet), ``skb->mark`` (which MARK
rules rewrite during the walk) and the conntrack state (``ctstate``).  ``PacketView.of6``
reads an IPv6 packet the same way (``ip6_packet_match``): 16-byte addresses, the next
header as the protocol (no extension headers are modelled), ICMPv6 type and code in
``icmp``; a family's netfilter picks its reader once, so no match asks the version.

``Env`` is the rest of the world a match may need: ``now`` on the virtual clock (for
``-m recent``), the random stream ``-m statistic`` draws from (seeded by the owner, so a
run is reproducible), the ``recent`` lists (per namespace, shared by every rule naming the
same list, as ``xt_recent`` keeps them per network namespace) and ``addr_type`` (what the
local routing table says an address is, for ``-m addrtype``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pktsim.wire.build import PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP

PROTO_SCTP = 132  # its common header starts with the ports, as TCP's and UDP's (RFC 9260 §3.1)

if TYPE_CHECKING:
    from pktsim.netfilter.ipset import IpSets

NS = 1_000_000_000


def _unicast(ip: bytes) -> str:
    return "UNICAST"


@dataclass(slots=True)
class PacketView:
    """What the matches read: header fields, interfaces, ``skb->mark`` and the ct state."""

    src: bytes
    dst: bytes
    proto: int
    sport: int | None = None  # TCP/UDP/SCTP only
    dport: int | None = None
    in_dev: str = ""
    out_dev: str = ""
    mark: int = 0
    ctstate: str = "INVALID"
    icmp: tuple[int, int] | None = None  # ICMP type and code
    ct_nat: frozenset[str] = frozenset()  # {"SNAT", "DNAT"}: the entry's IPS_*_NAT status

    @classmethod
    def of(cls, pkt: bytes, in_dev: str = "", out_dev: str = "", mark: int = 0,
           ctstate: str = "INVALID", ct_nat: frozenset[str] = frozenset()) -> PacketView:
        proto = pkt[9]
        ihl = (pkt[0] & 0x0F) * 4
        sport = dport = None
        icmp = None
        first = not (((pkt[6] & 0x1F) << 8) | pkt[7])
        if proto in (PROTO_TCP, PROTO_UDP, PROTO_SCTP) and first and len(pkt) >= ihl + 4:
            sport = (pkt[ihl] << 8) | pkt[ihl + 1]
            dport = (pkt[ihl + 2] << 8) | pkt[ihl + 3]
        elif proto == PROTO_ICMP and first and len(pkt) >= ihl + 2:
            icmp = (pkt[ihl], pkt[ihl + 1])
        return cls(bytes(pkt[12:16]), bytes(pkt[16:20]), proto, sport, dport, in_dev, out_dev,
                   mark, ctstate, icmp, ct_nat)

    @classmethod
    def of6(cls, pkt: bytes, in_dev: str = "", out_dev: str = "", mark: int = 0,
            ctstate: str = "INVALID", ct_nat: frozenset[str] = frozenset()) -> PacketView:
        """``of`` for an IPv6 packet (its L4 header right after the fixed 40 bytes)."""
        proto = pkt[6]
        sport = dport = None
        icmp = None
        if proto in (PROTO_TCP, PROTO_UDP, PROTO_SCTP) and len(pkt) >= 44:
            sport = (pkt[40] << 8) | pkt[41]
            dport = (pkt[42] << 8) | pkt[43]
        elif proto == PROTO_ICMPV6 and len(pkt) >= 42:
            icmp = (pkt[40], pkt[41])
        return cls(bytes(pkt[8:24]), bytes(pkt[24:40]), proto, sport, dport, in_dev, out_dev,
                   mark, ctstate, icmp, ct_nat)


class RecentTables:
    """``xt_recent``: per list name, each source address and when it was last seen (ns)."""

    def __init__(self) -> None:
        self.lists: dict[str, dict[bytes, int]] = {}

    def seen(self, name: str, addr: bytes) -> int | None:
        return self.lists.get(name, {}).get(addr)

    def set(self, name: str, addr: bytes, now: int) -> None:
        self.lists.setdefault(name, {})[addr] = now

    def remove(self, name: str, addr: bytes) -> None:
        self.lists.get(name, {}).pop(addr, None)


@dataclass(slots=True)
class Env:
    """What matching needs besides the packet."""

    now: int = 0
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    recent: RecentTables = field(default_factory=RecentTables)
    addr_type: Callable[[bytes], str] = _unicast
    # ``--limit-iface-out``/``--limit-iface-in``: the type of an address on one device only
    addr_type_on: Callable[[bytes, str], str] = lambda ip, dev: "UNICAST"
    ipsets: IpSets | None = None  # the namespace's IP sets (``ipset.py``)
