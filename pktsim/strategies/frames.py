"""Strategies for addresses and frames: valid ones built with scapy, and malformed ones
that every device must drop with a reason.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import dns.message
import dns.rdatatype
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Packet, Raw

PROTOCOLS = ("arp", "icmp", "udp", "tcp", "dns")


def mac_addresses(*, unicast: bool = True) -> st.SearchStrategy[str]:
    """MAC addresses as ``aa:bb:cc:dd:ee:ff``; ``unicast`` keeps the group bit clear."""
    if not isinstance(unicast, bool):
        raise InvalidArgument(f"unicast={unicast!r} must be a bool")

    def fmt(raw: bytes) -> str:
        first = raw[0] & 0xFE if unicast else raw[0]
        return ":".join(f"{b:02x}" for b in bytes([first]) + raw[1:])

    return st.binary(min_size=6, max_size=6).map(fmt)


def ipv4_addresses(*, network: str | IPv4Network = "0.0.0.0/0",
                   hosts_only: bool = False) -> st.SearchStrategy[str]:
    """Dotted-quad addresses within ``network`` (``hosts_only`` skips network/broadcast)."""
    try:
        net = IPv4Network(network)
    except ValueError as exc:
        raise InvalidArgument(f"network={network!r} is not an IPv4 network: {exc}") from None
    lo, hi = int(net.network_address), int(net.broadcast_address)
    if hosts_only and net.prefixlen < 31:
        lo, hi = lo + 1, hi - 1
    return st.integers(lo, hi).map(lambda i: str(IPv4Address(i)))


def _l4(protocol: str) -> st.SearchStrategy[Packet]:
    ports = st.integers(1, 65535)
    payload = st.binary(max_size=64).map(Raw)
    if protocol == "tcp":
        return st.builds(lambda s, d, seq, fl, p: TCP(sport=s, dport=d, seq=seq, flags=fl) / p,
                         ports, ports, st.integers(0, 2**32 - 1), st.sampled_from(
                             ["S", "SA", "A", "PA", "FA", "R", "RA"]), payload)
    if protocol == "udp":
        return st.builds(lambda s, d, p: UDP(sport=s, dport=d) / p,
                         ports.filter(lambda p: p not in (53, 8472)),
                         ports.filter(lambda p: p not in (53, 8472)), payload)
    if protocol == "dns":
        return st.builds(_dns_query, st.integers(0, 65535), st.sampled_from(
            ["web.default.svc.cluster.local.", "kubernetes.default.svc.cluster.local.",
             "example.com."]), st.sampled_from(["A", "AAAA", "SRV", "PTR", "TXT"]), ports)
    return st.builds(lambda i, s, p: ICMP(type=8, id=i, seq=s) / p,
                     st.integers(0, 65535), st.integers(0, 65535), payload)


def _dns_query(qid: int, name: str, qtype: str, sport: int) -> Packet:
    query = dns.message.make_query(name, dns.rdatatype.from_text(qtype))
    query.id = qid
    return UDP(sport=sport, dport=53) / Raw(query.to_wire())


def frames(*, protocols: tuple[str, ...] = PROTOCOLS,
           sources: st.SearchStrategy[str] | None = None,
           destinations: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[bytes]:
    """Valid Ethernet frames: ARP, or IPv4 carrying ICMP echo, UDP, TCP or a DNS query."""
    return packets(protocols=protocols, sources=sources, destinations=destinations).map(bytes)


def packets(*, protocols: tuple[str, ...] = PROTOCOLS,
            sources: st.SearchStrategy[str] | None = None,
            destinations: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[Packet]:
    """The scapy packets ``frames()`` serialises, for ``show()`` and field access."""
    unknown = set(protocols) - set(PROTOCOLS)
    if not protocols or unknown:
        raise InvalidArgument(f"protocols={protocols!r}: choose from {PROTOCOLS}")
    src_ips = sources if sources is not None else ipv4_addresses(network="10.244.0.0/16")
    dst_ips = destinations if destinations is not None else ipv4_addresses(
        network="10.244.0.0/16")
    for name, strategy in (("sources", src_ips), ("destinations", dst_ips)):
        if not isinstance(strategy, st.SearchStrategy):
            raise InvalidArgument(f"{name}={strategy!r} must be a strategy")

    def build(proto: str) -> st.SearchStrategy[Packet]:
        macs = mac_addresses()
        if proto == "arp":
            return st.builds(lambda sm, dm, si, di, op: Ether(src=sm, dst=dm if op == 2 else
                                                               "ff:ff:ff:ff:ff:ff")
                             / ARP(op=op, hwsrc=sm, psrc=si, hwdst=dm if op == 2 else
                                   "00:00:00:00:00:00", pdst=di),
                             macs, macs, src_ips, dst_ips, st.sampled_from([1, 2]))
        return st.builds(lambda sm, dm, si, di, ttl, l4: Ether(src=sm, dst=dm)
                         / IP(src=si, dst=di, ttl=ttl) / l4,
                         macs, macs, src_ips, dst_ips, st.integers(1, 255), _l4(proto))

    return st.sampled_from(protocols).flatmap(build)


def malformed_frames() -> st.SearchStrategy[bytes]:
    """Frames a device must drop with a reason, never crash on: random bytes, truncations,
    bad lengths and checksums, bogus header lengths, DNS compression loops, fragments,
    unknown ethertypes."""
    valid: st.SearchStrategy[bytes] = frames()
    return st.one_of(
        st.binary(max_size=128),
        st.tuples(valid, st.integers(0, 80)).map(lambda t: t[0][:t[1]]),
        st.tuples(valid, st.integers(14, 60), st.integers(0, 255)).map(_flip),
        st.tuples(valid, st.integers(0, 15)).map(lambda t: _ihl(t[0], t[1])),
        st.tuples(valid, st.integers(0, 65535)).map(lambda t: _total_len(t[0], t[1])),
        st.tuples(valid, st.integers(0, 0xFFFF)).map(lambda t: t[0][:12]
                                                     + t[1].to_bytes(2, "big") + t[0][14:]),
        valid.map(_fragment),
        st.just(_compression_loop()),
    )


def _flip(t: tuple[bytes, int, int]) -> bytes:
    data, at, value = t
    if at >= len(data):
        return data
    return data[:at] + bytes([data[at] ^ (value or 1)]) + data[at + 1:]


def _ihl(data: bytes, ihl: int) -> bytes:
    if len(data) < 15 or data[12:14] != b"\x08\x00":
        return data
    return data[:14] + bytes([0x40 | ihl]) + data[15:]


def _total_len(data: bytes, length: int) -> bytes:
    if len(data) < 18 or data[12:14] != b"\x08\x00":
        return data
    return data[:16] + length.to_bytes(2, "big") + data[18:]


def _fragment(data: bytes) -> bytes:
    if len(data) < 22 or data[12:14] != b"\x08\x00":
        return data
    return data[:20] + b"\x20\x00" + data[22:]  # MF set, offset 0 (checksum now wrong)


def _compression_loop() -> bytes:
    """A DNS query whose question name points at itself (a compression loop)."""
    dns_payload = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01"
    pkt = (Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
           / IP(src="10.244.0.2", dst="10.96.0.10") / UDP(sport=40000, dport=53)
           / Raw(dns_payload))
    return bytes(pkt)


# -- clusters -------------------------------------------------------------------------------

