"""Fixed-offset reads of the headers pktsim's devices look at, and a tcpdump-style summary.

Nothing here allocates a scapy object: a hop reads a few fields with ``struct.unpack_from``
and slices.  ``summary()`` writes the one-line description that trace events and capture
comments carry, in tcpdump's manner.
"""

from __future__ import annotations

import struct
from functools import lru_cache
from ipaddress import IPv4Address, IPv6Address, ip_address

from pktsim.wire.build import (
    ETH_P_ARP,
    ETH_P_IP,
    ETH_P_IPV6,
    PROTO_ICMP,
    PROTO_ICMPV6,
    PROTO_IPIP,
    PROTO_TCP,
    PROTO_UDP,
)

_IPH = struct.Struct("!BBHHHBBH4s4s")
_PORTS = struct.Struct("!HH")
_TCPH = struct.Struct("!HHIIBBHHH")

TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK, TCP_URG = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20

_FLAG_LETTERS = ((TCP_SYN, "S"), (TCP_FIN, "F"), (TCP_RST, "R"), (TCP_PSH, "P"),
                 (TCP_URG, "U"))


def mac_str(mac: bytes) -> str:
    return mac.hex(":")


def ip_str(addr: bytes) -> str:
    """An address as ``ip`` prints it: dotted IPv4, or RFC 5952 IPv6 for 16 bytes."""
    if len(addr) == 4:
        return f"{addr[0]}.{addr[1]}.{addr[2]}.{addr[3]}"
    return str(IPv6Address(addr))


def ip_bytes(addr: str | IPv4Address | IPv6Address) -> bytes:
    return addr.packed if not isinstance(addr, str) else ip_address(addr).packed


def sock_str(addr: bytes, port: int) -> str:
    """``10.0.0.1:80``, or ``[fd00::1]:80`` for IPv6 (as Kubernetes writes endpoints)."""
    return f"{ip_str(addr)}:{port}" if len(addr) == 4 else f"[{ip_str(addr)}]:{port}"


def mac_bytes(mac: str) -> bytes:
    return bytes(int(part, 16) for part in mac.split(":"))


def _flag_str(flags: int) -> str:
    text = "".join(letter for bit, letter in _FLAG_LETTERS if flags & bit)
    if flags & TCP_ACK:
        text += "."
    return f"[{text or 'none'}]"


_FLAG_TEXT = tuple(_flag_str(f) for f in range(256))


def tcp_flag_str(flags: int) -> str:
    """tcpdump's flag letters: ``[S]``, ``[S.]``, ``[P.]``, ``[F.]``, ``[R]``."""
    return _FLAG_TEXT[flags & 0xFF]


def ipv4_summary(pkt: bytes) -> str:
    """One line for an IPv4 packet (without link header), as tcpdump -n prints it.

    IP-in-IP is followed layer by layer in a loop (a 64 KiB packet nests 3,000 deep, past
    Python's recursion limit), and a header length under 20 bytes is tcpdump's
    ``bad-hlen`` (``print-ip.c``), never a layer that contains itself."""
    parts: list[str] = []
    while True:
        line, inner = _ipv4_layer(pkt)
        parts.append(line)
        if inner is None or len(parts) > _MAX_SHOWN_LAYERS:
            break
        pkt = inner
    if inner is not None:
        parts.append("...")
    return " | ".join(parts)


_MAX_SHOWN_LAYERS = 8


def _ipv4_layer(pkt: bytes) -> tuple[str, bytes | None]:
    """One header's line, and the IP-in-IP payload when there is one to show next."""
    if len(pkt) < 20:
        return "IPv4 truncated", None
    _vihl, _tos, total, _ident, frag, ttl, proto, _c, src, dst = _IPH.unpack_from(pkt)
    ihl = (_vihl & 0x0F) * 4
    s, d = ip_str(src), ip_str(dst)
    if ihl < 20:
        return f"IP {s} > {d}: bad-hlen {ihl}", None
    body = pkt[ihl:total]
    if frag & 0x1FFF:
        return f"IP {s} > {d}: fragment offset {(frag & 0x1FFF) * 8}, ttl {ttl}", None
    if proto == PROTO_IPIP:
        return f"IP {s} > {d}: IPIP, ttl {ttl}", body
    return _l4_line(s, d, proto, body, ttl), None


def ipv6_summary(pkt: bytes) -> str:
    """One line for an IPv6 packet, as tcpdump -n prints it, with the hop limit."""
    if len(pkt) < 40:
        return "IPv6 truncated"
    length, nh, hlim = (pkt[4] << 8) | pkt[5], pkt[6], pkt[7]
    s, d = ip_str(pkt[8:24]), ip_str(pkt[24:40])
    body = pkt[40:40 + length]
    if nh == PROTO_ICMPV6 and len(body) >= 4:
        return f"IP6 {s} > {d}: {_icmp6_summary(body)}, hlim {hlim}"
    return _l4_line(s, d, nh, body, hlim, "IP6", "hlim")


def _l4_line(s: str, d: str, proto: int, body: bytes, ttl: int, ip: str = "IP",
             ttl_name: str = "ttl") -> str:
    end = f", {ttl_name} {ttl}"
    if proto == PROTO_TCP and len(body) >= 20:
        sp, dp, seq, ack, off, flags, win, _cs, _u = _TCPH.unpack_from(body)
        length = len(body) - (off >> 4) * 4
        acks = f", ack {ack}" if flags & TCP_ACK else ""
        return (f"{ip} {s}.{sp} > {d}.{dp}: Flags {_FLAG_TEXT[flags]}, seq {seq}{acks}, "
                f"win {win}, length {length}{end}")
    if proto == PROTO_UDP and len(body) >= 8:
        sp, dp = _PORTS.unpack_from(body)
        if 53 in (sp, dp):
            return f"{ip} {s}.{sp} > {d}.{dp}: {dns_summary(body[8:])}{end}"
        return f"{ip} {s}.{sp} > {d}.{dp}: UDP, length {len(body) - 8}{end}"
    if proto == PROTO_ICMP and len(body) >= 8:
        return f"{ip} {s} > {d}: {_icmp_summary(body)}{end}"
    return f"{ip} {s} > {d}: proto {proto}, length {len(body)}{end}"


_ICMP6_NAMES = {1: "destination unreachable", 2: "packet too big", 3: "time exceeded",
                4: "parameter problem", 128: "echo request", 129: "echo reply",
                133: "router solicitation", 134: "router advertisement",
                135: "neighbor solicitation", 136: "neighbor advertisement", 137: "redirect",
                143: "multicast listener report v2"}
# tcpdump's print-icmp6.c words for the destination unreachable codes
_UNREACH6 = {0: "unreachable route", 1: "unreachable prohibited",
             2: "beyond scope of source address", 3: "unreachable address",
             4: "unreachable port", 5: "source address failed policy",
             6: "reject route to destination"}


def _icmp6_summary(body: bytes) -> str:
    """tcpdump's ICMP6 words: ``ICMP6, echo request, id 7, seq 1, length 64``,
    ``ICMP6, neighbor solicitation, who has fd00:10:244::3, length 32``."""
    kind, code = body[0], body[1]
    text = f"ICMP6, {_ICMP6_NAMES.get(kind, f'type {kind}')}"
    if kind in (128, 129) and len(body) >= 8:
        ident, seq = _PORTS.unpack_from(body, 4)
        text += f", id {ident}, seq {seq}"
    elif kind == 135 and len(body) >= 24:
        text += f", who has {ip_str(body[8:24])}"
    elif kind == 136 and len(body) >= 24:
        text += f", tgt is {ip_str(body[8:24])}"
    elif kind == 1:
        text += f", {_UNREACH6.get(code, f'code {code}')}"
    elif kind == 2 and len(body) >= 8:
        text += f", mtu {struct.unpack_from('!I', body, 4)[0]}"
    elif kind == 3:
        text += " in-transit" if code == 0 else " reassembly"
    if kind in (1, 2, 3, 4) and len(body) >= 48:
        text += f" (about {ip_str(body[16:32])} > {ip_str(body[32:48])})"
    return f"{text}, length {len(body)}"


@lru_cache(maxsize=1024)  # a DNS message crosses many links unchanged: parse it once
def dns_summary(wire: bytes) -> str:
    """tcpdump's DNS line: ``1234+ A? web.default.svc.cluster.local. (52)`` for a query,
    ``1234*- 1/0/0 A 10.96.45.12 (68)`` or ``1234 NXDomain*- 0/1/0 (145)`` for an answer."""
    import dns.exception
    import dns.message
    import dns.rcode
    import dns.rdatatype

    try:
        msg = dns.message.from_wire(wire)
    except dns.exception.DNSException:
        return f"DNS (malformed), length {len(wire)}"
    q = msg.question[0] if msg.question else None
    qtext = f"{dns.rdatatype.to_text(q.rdtype)}? {q.name}" if q is not None else "no question"
    if not msg.flags & 0x8000:  # a query
        rd = "+" if msg.flags & 0x0100 else ""
        return f"DNS {msg.id}{rd} {qtext} ({len(wire)})"
    rcode = msg.rcode()
    name = dns.rcode.to_text(rcode).title().replace("xdomain", "XDomain")
    code = "" if rcode == 0 else f" {name}"
    flags = ("*" if msg.flags & 0x0400 else "") + "-" + ("|" if msg.flags & 0x0200 else "")
    counts = f"{sum(len(r) for r in msg.answer)}/{len(msg.authority)}/{len(msg.additional)}"
    first = ""
    for rrset in msg.answer[:1]:
        items = list(rrset)[:2]
        first = " " + " ".join(f"{dns.rdatatype.to_text(rrset.rdtype)} {i}" for i in items)
    return f"DNS {msg.id}{code}{flags} {counts}{first} ({len(wire)})"


def _icmp_summary(body: bytes) -> str:
    icmp_type, code = body[0], body[1]
    if icmp_type in (0, 8):
        ident, seq = _PORTS.unpack_from(body, 4)
        kind = "echo request" if icmp_type == 8 else "echo reply"
        return f"ICMP {kind}, id {ident}, seq {seq}, length {len(body)}"
    names = {(3, 0): "net unreachable", (3, 1): "host unreachable",
             (3, 3): "port unreachable", (3, 4): "need to frag",
             (11, 0): "time exceeded in-transit"}
    inner = body[8:]
    about = ""
    if len(inner) >= 20:
        about = f" (about {ip_str(inner[12:16])} > {ip_str(inner[16:20])})"
    return f"ICMP {names.get((icmp_type, code), f'type {icmp_type} code {code}')}{about}"


def arp_summary(pkt: bytes) -> str:
    if len(pkt) < 28:
        return "ARP truncated"
    op = (pkt[6] << 8) | pkt[7]
    spa, tpa = ip_str(pkt[14:18]), ip_str(pkt[24:28])
    if op == 1:
        return f"ARP, Request who-has {tpa} tell {spa}"
    if op == 2:
        return f"ARP, Reply {spa} is-at {mac_str(pkt[8:14])}"
    if op == 3:  # RARP, as tcpdump's print-arp.c names it
        return f"ARP, Reverse Request who-is {mac_str(pkt[18:24])} tell {mac_str(pkt[8:14])}"
    if op == 4:
        return f"ARP, Reverse Reply {mac_str(pkt[18:24])} at {tpa}"
    return f"ARP, op {op}"


def summary(frame: bytes, raw_ip: bool = False) -> str:
    """One line for an Ethernet frame (or a bare IP packet when ``raw_ip``)."""
    if raw_ip:
        return ipv6_summary(frame) if frame[:1] and frame[0] >> 4 == 6 else ipv4_summary(frame)
    if len(frame) < 14:
        return f"truncated frame ({len(frame)} bytes)"
    ethertype = (frame[12] << 8) | frame[13]
    if ethertype == ETH_P_IP:
        return ipv4_summary(frame[14:])
    if ethertype == ETH_P_IPV6:
        return ipv6_summary(frame[14:])
    if ethertype == ETH_P_ARP:
        return arp_summary(frame[14:])
    return f"ethertype 0x{ethertype:04x}, length {len(frame)}"


# -- the addresses a trace shows: the innermost IPv4 header, read from the frame bytes ---

VXLAN_PORT = 8472  # flannel's (Linux's default)
VXLAN_PORTS = frozenset((VXLAN_PORT, 4789))  # and IANA's, Calico's vxlan.calico


def inner_ipv4(data: bytes, raw: bool = False) -> bytes | None:
    """The innermost IPv4 packet of a frame: through IP-in-IP and VXLAN (flannel's and
    Calico's ports)."""
    ip = data if raw else (data[14:] if len(data) >= 34 and data[12:14] == b"\x08\x00"
                           else b"")
    while len(ip) >= 20 and ip[0] >> 4 == 4:
        ihl = (ip[0] & 0x0F) * 4
        if ihl < 20:  # bad-hlen: not a header to look inside (IHL 0 would loop for ever)
            return ip
        if ip[9] == 4 and len(ip) >= ihl + 20:
            ip = ip[ihl:]
        elif ip[9] == 17 and len(ip) >= ihl + 16 + 34 and \
                struct.unpack_from("!H", ip, ihl + 2)[0] in VXLAN_PORTS and \
                ip[ihl + 16 + 12:ihl + 16 + 14] == b"\x08\x00":
            ip = ip[ihl + 16 + 14:]
        else:
            return ip
    return None


def inner_ipv6(data: bytes, raw: bool = False) -> bytes | None:
    """The IPv6 packet of a frame: its own, or the one a VXLAN frame carries."""
    if raw:
        return data if len(data) >= 40 and data[0] >> 4 == 6 else None
    if len(data) >= 54 and data[12:14] == b"\x86\xdd":
        return data[14:]
    outer = inner_ipv4(data)
    if outer is not None and outer[9] == 17:
        ihl = (outer[0] & 0x0F) * 4
        inner = outer[ihl + 16:]
        if len(inner) >= 54 and inner[12:14] == b"\x86\xdd" and \
                struct.unpack_from("!H", outer, ihl + 2)[0] in VXLAN_PORTS:
            return inner[14:]
    return None


def endpoints(data: bytes, raw: bool = False) -> tuple[str, str] | None:
    """``(src, dst)`` of the innermost IP header, with ports for TCP and UDP (IPv6 ones
    bracketed: ``[fd00::2]:80``)."""
    ip = inner_ipv4(data, raw)
    if ip is None or (ip[9] == 17 and inner_ipv6(data, raw) is not None):
        ip6 = inner_ipv6(data, raw)
        if ip6 is None:
            return None
        return _endpoints6(ip6)
    src, dst = ip_str(ip[12:16]), ip_str(ip[16:20])
    ihl = (ip[0] & 0x0F) * 4
    if ip[9] in (6, 17) and len(ip) >= ihl + 4 and not struct.unpack_from("!H", ip, 6)[0] \
            & 0x1FFF:
        sport, dport = struct.unpack_from("!HH", ip, ihl)
        return f"{src}:{sport}", f"{dst}:{dport}"
    return src, dst


def _endpoints6(ip6: bytes) -> tuple[str, str]:
    src, dst = ip6[8:24], ip6[24:40]
    if ip6[6] in (6, 17) and len(ip6) >= 44:
        sport, dport = struct.unpack_from("!HH", ip6, 40)
        return sock_str(src, sport), sock_str(dst, dport)
    return ip_str(src), ip_str(dst)
