"""Rewriting packets for NAT, with every checksum kept right, as ``nf_nat_proto.c`` does.

Theory of operation
-------------------
A NAT rewrite (``nf_nat_ipv4_manip_pkt``) writes one side of a target tuple into a packet:
for a *source* manipulation the source address and source port (or ICMP identifier), for a
*destination* manipulation the destination address and port.  No checksum is recomputed
from scratch; each is patched for exactly the 16-bit words that changed (RFC 1624, the
kernel's ``csum_replace4``/``inet_proto_csum_replace2``):

* the IPv4 header checksum for the address;
* the TCP or UDP checksum for the address (it is in the pseudo-header) and the port —
  but only when the L4 header is all there: a TCP header quoted in an ICMP error may be cut
  to its first 8 bytes, and then only the port is written (``tcp_manip_pkt``).  A UDP
  checksum of 0 means "none" and stays 0; a patched one that comes out 0 is sent as 0xffff;
* the ICMP checksum for the identifier of an echo-like message (no pseudo-header).

``icmp_translate`` is ``nf_nat_icmp_reply_translation``: an ICMP error about a NATed
connection has its *quoted* header rewritten one way and its *outer* header the other, and
then the ICMP checksum, which covers the quoted bytes, is recomputed over the message.
"""

from __future__ import annotations

from pktsim.netfilter.tuples import ICMP_ID_TYPES, Tuple, is_fragment
from pktsim.wire import build
from pktsim.wire.build import IP_DF, PROTO_ICMP, PROTO_TCP, PROTO_UDP
from pktsim.wire.checksum import checksum, update16
from pktsim.wire.parse import TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN

SRC, DST = 0, 1  # enum nf_nat_manip_type


def _get16(buf: bytearray, i: int) -> int:
    return (buf[i] << 8) | buf[i + 1]


def _put16(buf: bytearray, i: int, value: int) -> None:
    buf[i] = value >> 8
    buf[i + 1] = value & 0xFF


def _replace(csum: int, old: bytes, new: bytes) -> int:
    """Patch a checksum for a run of 16-bit words that changed from ``old`` to ``new``."""
    for i in range(0, len(old), 2):
        o, n = (old[i] << 8) | old[i + 1], (new[i] << 8) | new[i + 1]
        if o != n:
            csum = update16(csum, o, n)
    return csum


def manip(buf: bytearray, off: int, t: Tuple, mt: int) -> None:
    """Write ``t``'s source (``SRC``) or destination (``DST``) into the packet at ``off``."""
    addr_at = off + (12 if mt == SRC else 16)
    old_ip = bytes(buf[addr_at:addr_at + 4])
    new_ip = t.src if mt == SRC else t.dst
    if not is_fragment(buf, off):
        l4 = off + (buf[off] & 0x0F) * 4
        _l4_manip(buf, l4, buf[off + 9], old_ip, new_ip, t, mt)
    _put16(buf, off + 10, _replace(_get16(buf, off + 10), old_ip, new_ip))
    buf[addr_at:addr_at + 4] = new_ip


def _l4_manip(buf: bytearray, l4: int, proto: int, old_ip: bytes, new_ip: bytes, t: Tuple,
              mt: int) -> None:
    avail = len(buf) - l4
    if avail < 8:
        return
    if proto in (PROTO_TCP, PROTO_UDP):
        port_at = l4 + (0 if mt == SRC else 2)
        old_port, new_port = _get16(buf, port_at), (t.sport if mt == SRC else t.dport)
        csum_at = l4 + (16 if proto == PROTO_TCP else 6)
        has_csum = avail >= 20 if proto == PROTO_TCP else _get16(buf, csum_at) != 0
        if has_csum:
            csum = _replace(_get16(buf, csum_at), old_ip, new_ip)
            if old_port != new_port:
                csum = update16(csum, old_port, new_port)
            if proto == PROTO_UDP and csum == 0:
                csum = 0xFFFF  # CSUM_MANGLED_0
            _put16(buf, csum_at, csum)
        _put16(buf, port_at, new_port)
    elif proto == PROTO_ICMP and buf[l4] in ICMP_ID_TYPES:
        old_id = _get16(buf, l4 + 4)
        if old_id != t.sport:
            _put16(buf, l4 + 2, update16(_get16(buf, l4 + 2), old_id, t.sport))
            _put16(buf, l4 + 4, t.sport)


def rewrite(pkt: bytes, t: Tuple, mt: int) -> bytes:
    """The packet with ``t``'s source or destination written in (``nf_nat_packet``)."""
    buf = bytearray(pkt)
    manip(buf, 0, t, mt)
    return bytes(buf)


def icmp_translate(pkt: bytes, inner: Tuple, inner_mt: int, outer: Tuple, outer_mt: int) -> bytes:
    """Rewrite an ICMP error's quoted header, fix the ICMP checksum, then the outer header."""
    buf = bytearray(pkt)
    ihl = (buf[0] & 0x0F) * 4
    manip(buf, ihl + 8, inner, inner_mt)
    buf[ihl + 2:ihl + 4] = b"\x00\x00"
    _put16(buf, ihl + 2, checksum(bytes(buf[ihl:])))
    manip(buf, 0, outer, outer_mt)
    return bytes(buf)


def tcp_reset(pkt: bytes) -> bytes | None:
    """``nf_send_reset``: the RST answering a TCP segment, or None (a RST, a fragment)."""
    ihl = (pkt[0] & 0x0F) * 4
    if is_fragment(pkt) or len(pkt) < ihl + 20:
        return None
    tcp = pkt[ihl:]
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
    src, dst = pkt[12:16], pkt[16:20]
    segment = build.tcp(dst, src, dport, sport, rst_seq, rst_ack, rst_flags, 0)
    return build.ipv4(dst, src, PROTO_TCP, segment, ttl=64, ident=0, flags=IP_DF)
