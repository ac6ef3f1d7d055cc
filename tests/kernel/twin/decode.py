"""Frames to header fields: the first half of ``normalize``.

:func:`decode` turns one frame (Ethernet, or a bare IP packet with ``raw_ip``) into the
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

__all__ = ["ICMP6_ERRORS", "ICMP6_TYPES", "ICMP_ERRORS", "Field", "TcpConn", "decode",
           "tcp_options"]

TCP_FLAGS = "FSRPAUEC"
ICMP_ERRORS = (3, 4, 5, 11, 12)  # unreachable, source quench, redirect, time exceeded, param
ARP_OPS = {1: "request", 2: "reply"}
# ICMPv6 errors (RFC 4443 2.1: types 0-127) that quote the packet they are about
ICMP6_ERRORS = (1, 2, 3, 4)  # dst unreachable, packet too big, time exceeded, param problem
ICMP6_TYPES = {1: "unreachable", 2: "too-big", 3: "time-exceeded", 4: "param-problem",
               128: "echo-request", 129: "echo-reply", 130: "mld-query", 131: "mldv1-report",
               132: "mldv1-done", 133: "rs", 134: "ra", 135: "ns", 136: "na", 137: "redirect",
               143: "mldv2-report"}
# IPv6 extension headers walked to the upper-layer header (RFC 8200 4): hop-by-hop,
# routing, destination options (all "next header, length in 8-octet units - 1")
IPV6_EXT = (0, 43, 60)
ND_OPTS = {1: "slla", 2: "tlla", 3: "prefix", 4: "redirected", 5: "mtu", 14: "nonce",
           24: "route_info", 25: "rdnss"}


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


def _ipv6_text(b: bytes) -> str:
    return ipaddress.IPv6Address(b).compressed


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
            elif len(fr) >= 40 and fr[0] >> 4 == 6:
                self.ipv6(fr)
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
        elif et == 0x86DD and len(p) >= 40:
            self.ipv6(p)
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

    def ipv6(self, p: bytes) -> None:
        """The fixed header (RFC 8200 3), the extension headers up to the upper layer,
        then ICMPv6/TCP/UDP.  The flow label is tagged: the kernel may draw it."""
        vtf, plen, nh, hlim = struct.unpack("!IHBB", p[:8])
        src, dst = _ipv6_text(p[8:24]), _ipv6_text(p[24:40])
        for key, value in (("ip6_src", src), ("ip6_dst", dst), ("ip6_hlim", hlim),
                           ("ip6_tc", (vtf >> 20) & 0xFF), ("ip6_plen", plen),
                           ("ip6_nh", nh)):
            self.add(key, value)
        self.add("ip6_flow", vtf & 0xFFFFF, "flowlabel", (src, dst))
        end = 40 + plen
        off, proto, ext = 40, nh, []
        while proto in IPV6_EXT and off + 8 <= end:
            hlen = (p[off + 1] + 1) * 8
            ext.append((proto, p[off + 2 : off + hlen].hex()))
            proto, off = p[off], off + hlen
        self.add("ip6_ext", ext)
        self.add("ip6_proto", proto)
        l4 = p[off:end]
        if proto == 58 and len(l4) >= 4:
            self.icmp6(l4)
        elif proto == 6 and len(l4) >= 20:
            self.tcp(l4, src, dst)
        elif proto == 17 and len(l4) >= 8:
            self.udp(l4, src, dst)
        else:
            self.add("ip6_payload", l4.hex())
        self.add("eth_trailer", p[end:].hex())

    def icmp6(self, l4: bytes) -> None:
        """ICMPv6 (RFC 4443): echo, the errors with the packet they quote, Neighbor
        Discovery (RFC 4861) and MLDv2 reports (RFC 3810 5.2)."""
        typ, code, csum = struct.unpack("!BBH", l4[:4])
        self.add("icmp6_type", ICMP6_TYPES.get(typ, typ))
        self.add("icmp6_code", code)
        self.add("icmp6_csum", csum, "checksum")
        if typ in (128, 129) and len(l4) >= 8:
            iid, seq = struct.unpack("!HH", l4[4:8])
            self.add("icmp6_id", iid, "icmp_id")
            self.add("icmp6_seq", seq)
            self.add("icmp6_payload", l4[8:], "echo_payload")
        elif typ in ICMP6_ERRORS and len(l4) >= 48 and l4[8] >> 4 == 6:
            # unused / MTU (too-big) / pointer (param problem), then the quoted packet
            self.add("icmp6_rest", l4[4:8].hex())
            self.nested("quoted.", l4[8:], raw=True)
        elif typ in (133, 135, 136) and len(l4) >= 8:
            self.nd(typ, l4)
        elif typ == 143 and len(l4) >= 8:
            self.mldv2_report(l4)
        else:
            self.add("icmp6_rest", l4[4:].hex())

    def nd(self, typ: int, l4: bytes) -> None:
        """RS (reserved, options), NS (reserved, target, options), NA (R/S/O flags,
        target, options)."""
        if typ == 136:
            flags = l4[4]
            self.add("nd_flags", "".join(c for bit, c in ((0x80, "R"), (0x40, "S"),
                                                            (0x20, "O")) if flags & bit))
            self.add("nd_reserved", (bytes([flags & 0x1F]) + l4[5:8]).hex())
        else:
            self.add("nd_reserved", l4[4:8].hex())
        opts = l4[8:]
        if typ in (135, 136) and len(l4) >= 24:
            self.add("nd_target", _ipv6_text(l4[8:24]))
            opts = l4[24:]
        self.nd_options(opts)

    def nd_options(self, raw: bytes) -> None:
        """ND options in order (``nd_opts``) and each one's value: the link-layer
        addresses as MACs (named by the table), the DAD nonce tagged (random)."""
        names, i = [], 0
        while i + 2 <= len(raw) and raw[i + 1]:
            kind, ln = raw[i], raw[i + 1] * 8
            name = ND_OPTS.get(kind, f"opt{kind}")
            data = raw[i + 2 : i + ln]
            names.append(name)
            if kind in (1, 2) and len(data) >= 6:
                self.add(f"nd_{name}", mac_text(data[:6]), "mac")
            elif kind == 14:
                self.add(f"nd_{name}", data.hex(), "nd_nonce")
            else:
                self.add(f"nd_{name}", data.hex())
            i += ln
        self.add("nd_opts", names)
        self.add("nd_opts_rest", raw[i:].hex())

    def mldv2_report(self, l4: bytes) -> None:
        """MLDv2 report: (record type, multicast address, source count) per record."""
        (n,) = struct.unpack("!H", l4[6:8])
        recs, off = [], 8
        for _ in range(n):
            rtype, aux, nsrc = struct.unpack("!BBH", l4[off : off + 4])
            recs.append((rtype, _ipv6_text(l4[off + 4 : off + 20]), nsrc))
            off += 20 + 16 * nsrc + 4 * aux
        self.add("mld_reserved", l4[4:6].hex())
        self.add("mld_records", recs)

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
    a bare IPv4 or IPv6 packet as LINKTYPE_RAW devices such as ``tunl0`` capture them;
    ethertype 0x86dd as IPv6 with ICMPv6, ND and MLDv2 decoded); UDP to
    one of ``vxlan_ports`` is VXLAN, its inner Ethernet frame decoded as ``inner.*``."""
    d = _Decoder(vxlan_ports)
    d.frame(frame, raw=raw_ip)
    return d.fields
