"""Connection tuples: what conntrack reads out of a packet, and how a tuple is inverted.

Theory of operation
-------------------
Linux names a connection by two tuples (``struct nf_conntrack_tuple``): the *original* one,
as the first packet looked when conntrack saw it, and the *reply* one, as an answer is
expected to look.  A tuple is (protocol, source, destination, source "port", destination
"port").  For TCP and UDP the ports are the ports.  ICMP has none: the kernel keeps the echo
identifier in the source half (``src.u.icmp.id``) and the type and code in the destination
half (``dst.u.icmp.type/code``); here ``sport`` is the identifier and ``dport`` is
``type << 8 | code``.  Inverting an ICMP tuple swaps the addresses, keeps the identifier and
turns a request type into its reply type (``nf_ct_invert_tuple`` with ``invmap``); a type
with no inverse (an echo reply, an error) cannot start a connection.  Every other protocol
is tracked by addresses alone ("generic", ports 0) — IP-in-IP packets included.

``packet_tuple`` reads a tuple at any offset, so the same code reads the header quoted
inside an ICMP error.  Only the first 8 bytes of the L4 header are needed: that is what
an ICMP error is guaranteed to quote.

IPv6 tuples are the same tuples with 16-byte addresses (``packet_tuple6``: the next header
is the protocol, no extension headers).  ICMPv6 keeps its identifier and type the same way
(``nf_conntrack_proto_icmpv6.c`` ``icmpv6_pkt_to_tuple``); its ``invmap`` pairs echo
request and reply (128, 129) and node information query and reply (139, 140), and only a
request may start a connection (``valid_new``).
"""

from __future__ import annotations

from typing import NamedTuple

from pktsim.wire.build import PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP
from pktsim.wire.parse import ip_str

# nf_conntrack_proto_icmp.c: invmap (request <-> reply) and valid_new (may start a connection)
ICMP_INVERSE = {8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 16: 15, 17: 18, 18: 17}
ICMP_NEW_OK = frozenset({8, 13, 15, 17})
ICMP_ERRORS = frozenset({3, 4, 5, 11, 12})  # unreachable, quench, redirect, time exceeded, param
ICMP_ID_TYPES = frozenset(ICMP_INVERSE)  # the types whose bytes 4-5 are an identifier
# nf_conntrack_proto_icmpv6.c: invmap and valid_new (ICMPV6_ECHO_*, ICMPV6_NI_*)
ICMP6_INVERSE = {128: 129, 129: 128, 139: 140, 140: 139}
ICMP6_NEW_OK = frozenset({128, 139})
ICMP6_ID_TYPES = frozenset(ICMP6_INVERSE)
# nf_conntrack_icmpv6_error's noct_valid_new: MLD and Neighbor Discovery are UNTRACKED
ICMP6_UNTRACKED = frozenset({130, 131, 132, 133, 134, 135, 136, 143})

PROTO_NAMES = {PROTO_TCP: "tcp", PROTO_UDP: "udp", PROTO_ICMP: "icmp", PROTO_ICMPV6: "icmpv6"}


class Tuple(NamedTuple):
    """``struct nf_conntrack_tuple`` for IPv4 (see the module docstring for ICMP)."""

    proto: int
    src: bytes
    dst: bytes
    sport: int
    dport: int

    @property
    def icmp_type(self) -> int:
        return self.dport >> 8

    def src_text(self) -> str:
        return endpoint(self.proto, self.src, self.sport)

    def dst_text(self) -> str:
        if self.proto in (PROTO_ICMP, PROTO_ICMPV6):
            return ip_str(self.dst)
        return endpoint(self.proto, self.dst, self.dport)

    def __str__(self) -> str:
        name = PROTO_NAMES.get(self.proto, f"proto {self.proto}")
        return f"{name} {self.src_text()} -> {self.dst_text()}"


def endpoint(proto: int, ip: bytes, port: int) -> str:
    """``10.0.0.1:80`` (``[fd00::1]:80``) for TCP/UDP, ``10.0.0.1 id 7`` for ICMP and
    ICMPv6, the address otherwise."""
    if proto in (PROTO_TCP, PROTO_UDP):
        return f"{ip_str(ip)}:{port}" if len(ip) == 4 else f"[{ip_str(ip)}]:{port}"
    if proto in (PROTO_ICMP, PROTO_ICMPV6):
        return f"{ip_str(ip)} id {port}"
    return ip_str(ip)


def invert(t: Tuple) -> Tuple | None:
    """``nf_ct_invert_tuple``: the tuple of the answer, or None (ICMP type with no answer)."""
    if t.proto == PROTO_ICMP:
        inverse = ICMP_INVERSE.get(t.dport >> 8)
        if inverse is None:
            return None
        return Tuple(PROTO_ICMP, t.dst, t.src, t.sport, (inverse << 8) | (t.dport & 0xFF))
    if t.proto == PROTO_ICMPV6:  # icmpv6_invert_tuple
        inverse = ICMP6_INVERSE.get(t.dport >> 8)
        if inverse is None:
            return None
        return Tuple(PROTO_ICMPV6, t.dst, t.src, t.sport, (inverse << 8) | (t.dport & 0xFF))
    return Tuple(t.proto, t.dst, t.src, t.dport, t.sport)


def is_fragment(pkt: bytes | bytearray, off: int = 0) -> bool:
    """A non-first fragment carries no L4 header."""
    return bool(((pkt[off + 6] & 0x1F) << 8) | pkt[off + 7])


def packet_tuple(pkt: bytes, off: int = 0) -> Tuple | None:
    """The tuple of the IPv4 packet at ``off``, or None when its L4 header is cut short."""
    if len(pkt) < off + 20:
        return None
    ihl = (pkt[off] & 0x0F) * 4
    proto = pkt[off + 9]
    src, dst = bytes(pkt[off + 12:off + 16]), bytes(pkt[off + 16:off + 20])
    l4 = off + ihl
    if proto in (PROTO_TCP, PROTO_UDP, PROTO_ICMP):
        if is_fragment(pkt, off) or len(pkt) < l4 + 8:
            return None
        if proto == PROTO_ICMP:
            ident = (pkt[l4 + 4] << 8) | pkt[l4 + 5] if pkt[l4] in ICMP_ID_TYPES else 0
            return Tuple(proto, src, dst, ident, (pkt[l4] << 8) | pkt[l4 + 1])
        return Tuple(proto, src, dst, (pkt[l4] << 8) | pkt[l4 + 1],
                     (pkt[l4 + 2] << 8) | pkt[l4 + 3])
    return Tuple(proto, src, dst, 0, 0)


def packet_tuple6(pkt: bytes, off: int = 0) -> Tuple | None:
    """The tuple of the IPv6 packet at ``off`` (``ipv6_pkt_to_tuple``, then the L4
    protocol's), or None when its L4 header is cut short."""
    if len(pkt) < off + 40:
        return None
    proto = pkt[off + 6]
    src, dst = bytes(pkt[off + 8:off + 24]), bytes(pkt[off + 24:off + 40])
    l4 = off + 40
    if proto in (PROTO_TCP, PROTO_UDP, PROTO_ICMPV6):
        if len(pkt) < l4 + 8:
            return None
        if proto == PROTO_ICMPV6:
            ident = (pkt[l4 + 4] << 8) | pkt[l4 + 5] if pkt[l4] in ICMP6_ID_TYPES else 0
            return Tuple(proto, src, dst, ident, (pkt[l4] << 8) | pkt[l4 + 1])
        return Tuple(proto, src, dst, (pkt[l4] << 8) | pkt[l4 + 1],
                     (pkt[l4 + 2] << 8) | pkt[l4 + 3])
    return Tuple(proto, src, dst, 0, 0)
