"""Rewriting IPv6 packets for NAT, and the RST ip6t_REJECT sends (``nf_nat_proto.c``).

Theory of operation
-------------------
``nf_nat_ipv6_manip_pkt`` writes one side of a target tuple into an IPv6 packet as
``mangle.manip`` does for IPv4, with IPv6's differences:

* the addresses are 16 bytes at offsets 8 and 24, and there is no header checksum to patch;
* the TCP and UDP checksums are patched for the eight 16-bit words of the address (the
  pseudo-header, ``inet_proto_csum_replace16``) and the port, by the same RFC 1624 update;
* ICMPv6's checksum covers a pseudo-header too (RFC 4443 §2.3), so unlike ICMPv4 it is
  patched for the address (``icmpv6_manip_pkt`` calls ``nf_csum_update``), and for the
  identifier of an echo request or reply.

``icmp6_translate`` is ``nf_nat_icmpv6_reply_translation``: the quoted packet is rewritten
one way and the outer header the other, and the ICMPv6 checksum is computed afresh over the
message (the kernel recomputes it before the outer rewrite and then patches it for the
outer addresses: the same sum).

``tcp_reset6`` is ``nf_send_reset6`` (``nf_reject_ipv6.c``): the RST answering a segment,
from its destination, traffic class and flow label 0 (``nf_reject_ip6hdr_put``), hop limit
64 (``ip6_dst_hoplimit``: ``net.ipv6.conf.all.hop_limit``).
"""

from __future__ import annotations

from pktsim.netfilter.mangle import DST, SRC, _get16, _l4_manip, _put16, _replace
from pktsim.netfilter.tuples import Tuple
from pktsim.wire import build
from pktsim.wire.build import PROTO_ICMPV6, PROTO_TCP
from pktsim.wire.checksum import l4_checksum, update16
from pktsim.wire.parse import TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN

ECHO_TYPES = (128, 129)  # ICMPV6_ECHO_REQUEST, ICMPV6_ECHO_REPLY: the identifier is NATed


def manip6(buf: bytearray, off: int, t: Tuple, mt: int) -> None:
    """Write ``t``'s source (``SRC``) or destination (``DST``) into the packet at ``off``."""
    addr_at = off + (8 if mt == SRC else 24)
    old_ip = bytes(buf[addr_at:addr_at + 16])
    new_ip = t.src if mt == SRC else t.dst
    l4 = off + 40
    proto = buf[off + 6]
    if proto == PROTO_ICMPV6:
        _icmp6_manip(buf, l4, old_ip, new_ip, t)
    else:
        _l4_manip(buf, l4, proto, old_ip, new_ip, t, mt)
    buf[addr_at:addr_at + 16] = new_ip


def _icmp6_manip(buf: bytearray, l4: int, old_ip: bytes, new_ip: bytes, t: Tuple) -> None:
    """``icmpv6_manip_pkt``: the checksum for the address, then an echo's identifier."""
    if len(buf) - l4 < 8:
        return
    csum = _replace(_get16(buf, l4 + 2), old_ip, new_ip)
    if buf[l4] in ECHO_TYPES:
        old_id = _get16(buf, l4 + 4)
        if old_id != t.sport:
            csum = update16(csum, old_id, t.sport)
            _put16(buf, l4 + 4, t.sport)
    _put16(buf, l4 + 2, csum)


def rewrite6(pkt: bytes, t: Tuple, mt: int) -> bytes:
    """The packet with ``t``'s source or destination written in (``nf_nat_packet``)."""
    buf = bytearray(pkt)
    manip6(buf, 0, t, mt)
    return bytes(buf)


def icmp6_translate(pkt: bytes, inner: Tuple, inner_mt: int, outer: Tuple,
                    outer_mt: int) -> bytes:
    """Rewrite an ICMPv6 error's quoted packet and its outer header; checksum afresh."""
    buf = bytearray(pkt)
    manip6(buf, 48, inner, inner_mt)
    outer_at = 8 if outer_mt == SRC else 24
    buf[outer_at:outer_at + 16] = outer.src if outer_mt == SRC else outer.dst
    buf[42:44] = b"\x00\x00"
    _put16(buf, 42, l4_checksum(bytes(buf[8:24]), bytes(buf[24:40]), PROTO_ICMPV6,
                                bytes(buf[40:])))
    return bytes(buf)


def tcp_reset6(pkt: bytes) -> bytes | None:
    """``nf_send_reset6``: the RST answering a TCP segment, or None (a RST, truncated)."""
    if len(pkt) < 60 or pkt[6] != PROTO_TCP:
        return None
    tcp = pkt[40:]
    flags = tcp[13]
    if flags & TCP_RST:
        return None
    sport, dport = (tcp[0] << 8) | tcp[1], (tcp[2] << 8) | tcp[3]
    seq = int.from_bytes(tcp[4:8], "big")
    if flags & TCP_ACK:
        rst_seq, rst_ack, rst_flags = int.from_bytes(tcp[8:12], "big"), 0, TCP_RST
    else:
        length = len(tcp) - (tcp[12] >> 4) * 4
        length += bool(flags & TCP_SYN) + bool(flags & TCP_FIN)
        rst_seq, rst_ack, rst_flags = 0, seq + length, TCP_RST | TCP_ACK
    src, dst = pkt[8:24], pkt[24:40]
    segment = build.tcp(dst, src, dport, sport, rst_seq, rst_ack, rst_flags, 0)
    return build.ipv6(dst, src, PROTO_TCP, segment, hlim=64)


__all__ = ["DST", "SRC", "icmp6_translate", "manip6", "rewrite6", "tcp_reset6"]
