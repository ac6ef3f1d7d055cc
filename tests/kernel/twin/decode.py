"""Frames to header fields: the first half of ``normalize``.

:func:`decode` turns one frame (Ethernet, or a bare IPv4 packet with ``raw_ip``) into the
flat, ordered list of its header fields, nested packets included (a VXLAN or IP-in-IP
inner packet as ``inner.<key>``, the packet an ICMP error quotes as ``quoted.<key>``).
A field that varies from run to run, or needs naming, carries a ``tag`` saying which
entries of :data:`normalize.TABLE` apply to it, and the context they need (the address a
port belongs to, the TCP connection a sequence number counts in); every other field is
already in its final, comparable form.  Decoding keeps no state and knows no options
except where VXLAN is (``vxlan_ports``): all renaming is the table's.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from typing import Any

__all__ = ["ICMP_ERRORS", "Field", "TcpConn", "decode", "tcp_options"]

TCP_FLAGS = "FSRPAUEC"
ICMP_ERRORS = (3, 4, 5, 11, 12)  # unreachable, source quench, redirect, time exceeded, param
ARP_OPS = {1: "request", 2: "reply"}


@dataclass(frozen=True)
class Field:
    """One header field of a frame as decoded.

    ``prefix`` + ``key`` is the row key (``prefix``: "", "inner.", "quoted.", ...);
    ``tag`` names the table entries that normalise it (None: reported as decoded);
    ``ctx`` is what those entries need besides ``value``."""

    prefix: str
    key: str
    value: Any
    tag: str | None = None
    ctx: Any = None


@dataclass(frozen=True)
class TcpConn:
    """A TCP segment's direction ``me`` = (src, sport, dst, dport) and its flags: what its
    sequence and acknowledgment numbers are taken relative to."""

    me: tuple[str, int, str, int]
    flags: int


def mac_text(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)


def _ipv4_text(b: bytes) -> str:
    return str(ipaddress.IPv4Address(b))


def tcp_options(raw: bytes) -> list[tuple[int, bytes | None]]:
    """TCP options as (kind, data); data None for EOL and NOP.  Stops at EOL or at an
    option whose length byte is missing."""
    out: list[tuple[int, bytes | None]] = []
    i = 0
    while i < len(raw):
        kind = raw[i]
        if kind in (0, 1):
            out.append((kind, None))
            if kind == 0:
                break
            i += 1
            continue
        if i + 1 >= len(raw):
            break
        ln = raw[i + 1]
        out.append((kind, raw[i + 2 : i + ln]))
        i += max(ln, 2)
    return out


class _Decoder:
    """Collects the fields of one frame, nested packets under their prefixes."""

    def __init__(self, vxlan_ports: frozenset[int]) -> None:
        self.vxlan_ports = vxlan_ports
        self.fields: list[Field] = []
        self.prefix = ""

    def add(self, key: str, value: Any, tag: str | None = None, ctx: Any = None) -> None:
        self.fields.append(Field(self.prefix, key, value, tag, ctx))

    def nested(self, prefix: str, data: bytes, *, raw: bool) -> None:
        outer = self.prefix
        self.prefix = outer + prefix
        try:
            self.frame(data, raw=raw)
        finally:
            self.prefix = outer

    def frame(self, fr: bytes, *, raw: bool) -> None:
        self.add("len", len(fr))
        if raw:
            if len(fr) >= 20 and fr[0] >> 4 == 4:
                self.ipv4(fr)
            else:
                self.add("raw", fr.hex())
            return
        if len(fr) < 14:
            self.add("raw", fr.hex())
            return
        self.add("eth_dst", mac_text(fr[0:6]), "mac")
        self.add("eth_src", mac_text(fr[6:12]), "mac")
        et = struct.unpack("!H", fr[12:14])[0]
        self.add("ethertype", f"0x{et:04x}")
        p = fr[14:]
        if et == 0x0806 and len(p) >= 28:
            self.arp(p)
        elif et == 0x0800 and len(p) >= 20:
            self.ipv4(p)
        else:
            self.add("payload", p.hex())

    def arp(self, p: bytes) -> None:
        htype, ptype, hlen, plen, op = struct.unpack("!HHBBH", p[:8])
        self.add("arp_op", ARP_OPS.get(op, op))
        self.add("arp_htype", htype)
        self.add("arp_ptype", f"0x{ptype:04x}")
        self.add("arp_hlen", hlen)
        self.add("arp_plen", plen)
        self.add("arp_sha", mac_text(p[8:14]), "mac")
        self.add("arp_spa", _ipv4_text(p[14:18]))
        self.add("arp_tha", mac_text(p[18:24]), "mac")
        self.add("arp_tpa", _ipv4_text(p[24:28]))
        self.add("trailer", p[28:].hex())

    def ipv4(self, p: bytes) -> None:
        ihl = (p[0] & 0x0F) * 4
        tos, tot_len, ipid, frag, ttl, proto, csum = struct.unpack("!BHHHBBH", p[1:12])
        src, dst = _ipv4_text(p[12:16]), _ipv4_text(p[16:20])
        for key, value in (("ip_src", src), ("ip_dst", dst), ("ip_ttl", ttl),
                           ("ip_proto", proto), ("ip_len", tot_len), ("ip_tos", tos),
                           ("ip_ihl", ihl), ("ip_df", bool(frag & 0x4000)),
                           ("ip_mf", bool(frag & 0x2000)), ("ip_frag", frag & 0x1FFF),
                           ("ip_options", p[20:ihl].hex())):
            self.add(key, value)
        self.add("ip_id", ipid, "ip_id", src)
        self.add("ip_csum", csum, "checksum")
        l4 = p[ihl:tot_len]
        if proto == 1 and len(l4) >= 8:
            self.icmp(l4)
        elif proto == 6 and len(l4) >= 20:
            self.tcp(l4, src, dst)
        elif proto == 17 and len(l4) >= 8:
            self.udp(l4, src, dst)
        elif proto == 4 and len(l4) >= 20:
            self.nested("inner.", l4, raw=True)
        self.add("eth_trailer", p[tot_len:].hex())

    def icmp(self, l4: bytes) -> None:
        typ, code, csum = struct.unpack("!BBH", l4[:4])
        self.add("icmp_type", typ)
        self.add("icmp_code", code)
        self.add("icmp_csum", csum, "checksum")
        if typ in (0, 8):
            iid, seq = struct.unpack("!HH", l4[4:8])
            self.add("icmp_id", iid, "icmp_id")
            self.add("icmp_seq", seq)
            self.add("icmp_payload", l4[8:], "echo_payload")
        elif typ in ICMP_ERRORS and len(l4) >= 28 and l4[8] >> 4 == 4:
            # an error quoting the packet it is about: the 4 bytes after the checksum
            # (unused / next-hop MTU / gateway), then the quoted IPv4 packet
            self.add("icmp_rest", l4[4:8].hex())
            self.nested("quoted.", l4[8:], raw=True)
        else:
            self.add("icmp_rest", l4[4:].hex())

    def tcp(self, l4: bytes, src: str, dst: str) -> None:
        sport, dport, seq, ack, off_flags, win, csum, urg = struct.unpack(
            "!HHIIHHHH", l4[:20])
        doff = (off_flags >> 12) * 4
        flags = off_flags & 0xFF
        conn = TcpConn((src, sport, dst, dport), flags)
        self.add("tcp_sport", sport, "port", src)
        self.add("tcp_dport", dport, "port", dst)
        self.add("tcp_flags", "".join(c for i, c in enumerate(TCP_FLAGS) if flags & (1 << i)))
        self.add("tcp_seq", seq, "tcp_seq", conn)
        self.add("tcp_ack", ack, "tcp_ack", conn)
        self.add("tcp_doff", doff)
        self.add("tcp_urg", urg)
        self.add("tcp_options", tcp_options(l4[20:doff]), "tcp_options")
        self.add("tcp_payload_len", len(l4) - doff)
        self.add("tcp_payload", l4[doff:].hex())
        self.add("tcp_window", win, "tcp_window")
        self.add("tcp_csum", csum, "checksum")

    def udp(self, l4: bytes, src: str, dst: str) -> None:
        sport, dport, ulen, csum = struct.unpack("!HHHH", l4[:8])
        if dport in self.vxlan_ports and len(l4) >= 16:
            self.add("udp_sport", sport, "vxlan_sport")
            self.add("udp_dport", dport)
            self.add("udp_len", ulen)
            self.add("udp_csum", csum, "vxlan_csum")
            self.add("vxlan_flags", f"0x{l4[8]:02x}")
            self.add("vxlan_reserved", (l4[9:12] + l4[15:16]).hex())
            self.add("vxlan_vni", int.from_bytes(l4[12:15], "big"))
            self.nested("inner.", l4[16:], raw=False)
            return
        self.add("udp_sport", sport, "port", src)
        self.add("udp_dport", dport, "port", dst)
        self.add("udp_len", ulen)
        self.add("udp_csum", csum, "checksum")
        self.add("udp_payload", l4[8:].hex())


def decode(frame: bytes, *, raw_ip: bool = False,
           vxlan_ports: frozenset[int] = frozenset((8472, 4789))) -> list[Field]:
    """The header fields of ``frame`` in row order (an Ethernet frame, or with ``raw_ip``
    a bare IPv4 packet as LINKTYPE_RAW devices such as ``tunl0`` capture them); UDP to
    one of ``vxlan_ports`` is VXLAN, its inner Ethernet frame decoded as ``inner.*``."""
    d = _Decoder(vxlan_ports)
    d.frame(frame, raw=raw_ip)
    return d.fields
