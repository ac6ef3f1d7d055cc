"""Frame builders: Ethernet, ARP, IPv4, IPv6, ICMP, UDP, TCP — the bytes scapy would write.

Addresses are raw ``bytes`` (6 for a MAC, 4 for an IPv4 address, 16 for an IPv6 one) so that
the per-hop code never converts; ``ip`` picks the family by the address length.  ICMPv6 and
Neighbor Discovery are in ``pktsim.wire.ip6``.  ``tests/wire/test_wire.py`` checks each
builder against scapy, field for field.
"""

from __future__ import annotations

import struct

from pktsim.wire.checksum import checksum, l4_checksum

ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD
PROTO_ICMP = 1
PROTO_IPIP = 4
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_ICMPV6 = 58

BROADCAST = b"\xff" * 6
ZERO_MAC = b"\x00" * 6

_ETH = struct.Struct("!6s6sH")
_IP = struct.Struct("!BBHHHBBH4s4s")
_IP6 = struct.Struct("!IHBB16s16s")
_ARP = struct.Struct("!HHBBH6s4s6s4s")
_UDP = struct.Struct("!HHHH")
_TCP = struct.Struct("!HHIIBBHHH")
_ICMP = struct.Struct("!BBH")

# IP flags field values (flags << 13 | fragment offset)
IP_DF = 0x4000
IP_MF = 0x2000


def ether(dst: bytes, src: bytes, ethertype: int, payload: bytes) -> bytes:
    return _ETH.pack(dst, src, ethertype) + payload


def arp(op: int, sha: bytes, spa: bytes, tha: bytes, tpa: bytes) -> bytes:
    """An ARP packet for IPv4 over Ethernet (op 1 request, 2 reply)."""
    return _ARP.pack(1, ETH_P_IP, 6, 4, op, sha, spa, tha, tpa)


def ipv4(src: bytes, dst: bytes, proto: int, payload: bytes, *, ttl: int = 64, ident: int = 0,
         flags: int = 0, tos: int = 0) -> bytes:
    """An IPv4 header (no options) with its checksum, followed by ``payload``."""
    total = 20 + len(payload)
    header = _IP.pack(0x45, tos, total, ident & 0xFFFF, flags, ttl, proto, 0, src, dst)
    csum = checksum(header)
    return header[:10] + csum.to_bytes(2, "big") + header[12:] + payload


def ipv6(src: bytes, dst: bytes, nh: int, payload: bytes, *, hlim: int = 64, tclass: int = 0,
         flow: int = 0) -> bytes:
    """An IPv6 header (no extension headers: ``nh`` is the payload's protocol), then
    ``payload``; IPv6 has no header checksum (RFC 8200 §3)."""
    first = (6 << 28) | ((tclass & 0xFF) << 20) | (flow & 0xFFFFF)
    return _IP6.pack(first, len(payload), nh, hlim, src, dst) + payload


def ip(src: bytes, dst: bytes, proto: int, payload: bytes, *, ttl: int = 64, ident: int = 0,
       flags: int = 0, tos: int = 0, flow: int = 0) -> bytes:
    """``ipv4`` or, for 16-byte addresses, ``ipv6`` (``ttl`` the hop limit, ``tos`` the
    traffic class; IPv6 has no id and no DF: it never fragments on the way)."""
    if len(src) == 4:
        return ipv4(src, dst, proto, payload, ttl=ttl, ident=ident, flags=flags, tos=tos)
    return ipv6(src, dst, proto, payload, hlim=ttl, tclass=tos, flow=flow)


def udp(src: bytes, dst: bytes, sport: int, dport: int, payload: bytes, *,
        with_checksum: bool = True) -> bytes:
    """A UDP datagram with its checksum (0 is sent as 0xffff, RFC 768), or with none."""
    length = 8 + len(payload)
    segment = _UDP.pack(sport, dport, length, 0) + payload
    if not with_checksum:
        return segment
    csum = l4_checksum(src, dst, PROTO_UDP, segment) or 0xFFFF
    return segment[:6] + csum.to_bytes(2, "big") + segment[8:]


def tcp(src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int, flags: int,
        window: int, payload: bytes = b"", options: bytes = b"", urgent: int = 0) -> bytes:
    """A TCP segment with its checksum; ``options`` must already be padded to 4 bytes."""
    offset = (20 + len(options)) // 4
    header = _TCP.pack(sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, offset << 4, flags,
                       window, 0, urgent) + options
    segment = header + payload
    csum = l4_checksum(src, dst, PROTO_TCP, segment)
    return segment[:16] + csum.to_bytes(2, "big") + segment[18:]


def icmp(icmp_type: int, code: int, rest: bytes, payload: bytes = b"") -> bytes:
    """An ICMP message: type, code, checksum, the 4 ``rest`` bytes, then ``payload``."""
    body = _ICMP.pack(icmp_type, code, 0) + rest + payload
    csum = checksum(body)
    return body[:2] + csum.to_bytes(2, "big") + body[4:]


def icmp_echo(icmp_type: int, ident: int, seq: int, payload: bytes) -> bytes:
    return icmp(icmp_type, 0, struct.pack("!HH", ident, seq), payload)
