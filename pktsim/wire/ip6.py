"""IPv6's own bytes: ICMPv6 (RFC 4443), Neighbor Discovery (RFC 4861) and the addresses it
derives -- solicited-node multicast groups, their Ethernet MACs, EUI-64 link-local addresses.

Builders return the ICMPv6 message (checksum set over the IPv6 pseudo-header, so they need
the addresses); ``pktsim.wire.build.ipv6`` puts the header in front.  ND messages go out with
hop limit 255 (RFC 4861 §7.1: a receiver drops any other) and flow label 0 (``ip6_nd_hdr``
writes ``ip6_flow_hdr(hdr, 0, 0)``, net/ipv6/ndisc.c).
"""

from __future__ import annotations

import struct
from ipaddress import IPv6Address

from pktsim.wire.build import PROTO_ICMPV6
from pktsim.wire.checksum import l4_checksum

ICMP6_DST_UNREACH = 1
ICMP6_PACKET_TOO_BIG = 2
ICMP6_TIME_EXCEEDED = 3
ICMP6_PARAM_PROB = 4
ICMP6_ECHO_REQUEST = 128
ICMP6_ECHO_REPLY = 129
ND_ROUTER_SOLICIT = 133
ND_ROUTER_ADVERT = 134
ND_NEIGHBOR_SOLICIT = 135
ND_NEIGHBOR_ADVERT = 136
ND_REDIRECT = 137
ND_TYPES = frozenset(range(133, 138))
ICMP6_ERRORS = frozenset((1, 2, 3, 4))  # RFC 4443 §2.1: types 0-127 are errors

ND_OPT_SOURCE_LL = 1
ND_OPT_TARGET_LL = 2
NA_ROUTER, NA_SOLICITED, NA_OVERRIDE = 0x80, 0x40, 0x20
ND_HOP_LIMIT = 255

UNSPECIFIED = b"\x00" * 16
LOOPBACK = b"\x00" * 15 + b"\x01"
ALL_NODES = bytes.fromhex("ff020000000000000000000000000001")
MIN_MTU = 1280  # RFC 8200 §5: every link carries 1280; an ICMPv6 error fits in it

_ICMP = struct.Struct("!BBH")


def addr6_str(addr: bytes) -> str:
    """An IPv6 address as ``ip`` and tcpdump print it (RFC 5952: ``fd00:10:244::2``)."""
    return str(IPv6Address(addr))


def icmpv6(src: bytes, dst: bytes, icmp_type: int, code: int, rest: bytes,
           payload: bytes = b"") -> bytes:
    """An ICMPv6 message: type, code, checksum (pseudo-header included, RFC 4443 §2.3),
    the 4 ``rest`` bytes, then ``payload``."""
    body = _ICMP.pack(icmp_type, code, 0) + rest + payload
    csum = l4_checksum(src, dst, PROTO_ICMPV6, body)
    return body[:2] + csum.to_bytes(2, "big") + body[4:]


def echo(src: bytes, dst: bytes, icmp_type: int, ident: int, seq: int,
         payload: bytes) -> bytes:
    return icmpv6(src, dst, icmp_type, 0, struct.pack("!HH", ident, seq), payload)


def solicited_node(addr: bytes) -> bytes:
    """``ff02::1:ffXX:XXXX``: the group an address's solicitations go to (RFC 4291 §2.7.1)."""
    return bytes.fromhex("ff0200000000000000000001ff") + addr[13:16]


def multicast_mac(group: bytes) -> bytes:
    """``ipv6_eth_mc_map``: 33:33 and the group's last 32 bits (RFC 2464 §7)."""
    return b"\x33\x33" + group[12:16]


def is_multicast(addr: bytes) -> bool:
    return addr[0] == 0xFF


def is_link_local(addr: bytes) -> bool:
    return addr[0] == 0xFE and addr[1] & 0xC0 == 0x80


def scope(addr: bytes) -> int:
    """An address's scope as the kernel numbers it: host 1, link 2, global 14."""
    return 1 if addr == LOOPBACK else 2 if is_link_local(addr) else 14


def link_local(mac: bytes) -> bytes:
    """The EUI-64 link-local address of a MAC (``addrconf_ifid_eui48``, the default
    ``addr_gen_mode`` 0): fe80::, then the MAC with ff:fe in the middle and the
    universal/local bit flipped."""
    return b"\xfe\x80" + b"\x00" * 6 + bytes([mac[0] ^ 0x02]) + mac[1:3] + b"\xff\xfe" + mac[3:6]


def _ll_option(kind: int, mac: bytes) -> bytes:
    return bytes((kind, 1)) + mac  # length in units of 8 bytes: 2 + 6 = 8


def neighbor_solicit(src: bytes, dst: bytes, target: bytes, sll: bytes | None) -> bytes:
    """An NS for ``target``, with the source link-layer option unless ``src`` is ``::``
    (DAD, RFC 4861 §4.3)."""
    opts = _ll_option(ND_OPT_SOURCE_LL, sll) if sll is not None else b""
    return icmpv6(src, dst, ND_NEIGHBOR_SOLICIT, 0, b"\x00" * 4, target + opts)


def neighbor_advert(src: bytes, dst: bytes, target: bytes, flags: int,
                    tll: bytes | None) -> bytes:
    """An NA for ``target`` with ``flags`` (R, S, O) and the target link-layer option when
    ``tll`` is given."""
    opts = _ll_option(ND_OPT_TARGET_LL, tll) if tll is not None else b""
    return icmpv6(src, dst, ND_NEIGHBOR_ADVERT, 0, bytes((flags, 0, 0, 0)), target + opts)


def nd_options(body: bytes, start: int) -> dict[int, bytes] | None:
    """The link-layer options of an ND message from ``start`` (``ndisc_parse_options``):
    ``{type: 6-byte MAC}``; ``None`` when the message is invalid: an option of length 0,
    one cut short, a link-layer option of another size than an Ethernet address's."""
    found: dict[int, bytes] = {}
    at = start
    while at < len(body):
        if at + 2 > len(body):  # a fragment of an option header
            return None
        length = body[at + 1] * 8
        if length == 0 or at + length > len(body):
            return None
        if body[at] in (ND_OPT_SOURCE_LL, ND_OPT_TARGET_LL):
            if length != 8:  # ndisc_opt_addr_data: not an Ethernet address's size
                return None
            found.setdefault(body[at], body[at + 2:at + 8])
        at += length
    return found
