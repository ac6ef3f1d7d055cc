"""pktsim's IPv6 builders write exactly the bytes scapy writes for the same fields: IPv6,
TCP/UDP over IPv6 (the pseudo-header of RFC 8200 §8.1), ICMPv6 echo and Neighbor Discovery,
and the addresses ND derives (RFC 4291 solicited-node groups, RFC 2464 MACs, EUI-64)."""

from __future__ import annotations

from ipaddress import IPv6Address

from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet import TCP, UDP
from scapy.layers.inet6 import (
    ICMPv6EchoRequest,
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6NDOptDstLLAddr,
    ICMPv6NDOptSrcLLAddr,
    IPv6,
    in6_getnsma,
    in6_getnsmac,
)
from scapy.packet import Raw
from scapy.utils6 import in6_mactoifaceid

from pktsim.wire import build, ip6
from pktsim.wire.parse import endpoints, ip_str, summary

ips = st.binary(min_size=16, max_size=16)
macs = st.binary(min_size=6, max_size=6).map(lambda b: bytes([b[0] & 0xFE]) + b[1:])
ports = st.integers(1, 65535)
payloads = st.binary(max_size=300)


@given(ips, ips, ports, ports, st.integers(0, 2**32 - 1), st.integers(0, 0x3F), payloads,
       st.integers(1, 255), st.integers(0, 0xFFFFF), st.integers(0, 255))
def test_tcp_ipv6_matches_scapy(src: bytes, dst: bytes, sport: int, dport: int, seq: int,
                                flags: int, payload: bytes, hlim: int, flow: int,
                                tclass: int) -> None:
    ours = build.ipv6(src, dst, 6, build.tcp(src, dst, sport, dport, seq, 0, flags, 64800,
                                             payload), hlim=hlim, flow=flow, tclass=tclass)
    theirs = bytes(IPv6(src=ip_str(src), dst=ip_str(dst), hlim=hlim, fl=flow, tc=tclass)
                   / TCP(sport=sport, dport=dport, seq=seq, ack=0, flags=flags, window=64800)
                   / Raw(payload))
    assert ours == theirs


@given(ips, ips, ports, ports, payloads)
def test_udp_ipv6_matches_scapy(src: bytes, dst: bytes, sport: int, dport: int,
                                payload: bytes) -> None:
    ours = build.ipv6(src, dst, 17, build.udp(src, dst, sport, dport, payload))
    theirs = bytes(IPv6(src=ip_str(src), dst=ip_str(dst)) / UDP(sport=sport, dport=dport)
                   / Raw(payload))
    assert ours == theirs


@given(ips, ips, st.integers(0, 65535), st.integers(0, 65535), payloads)
def test_icmpv6_echo_matches_scapy(src: bytes, dst: bytes, ident: int, seq: int,
                                   payload: bytes) -> None:
    ours = build.ipv6(src, dst, 58, ip6.echo(src, dst, 128, ident, seq, payload))
    theirs = bytes(IPv6(src=ip_str(src), dst=ip_str(dst))
                   / ICMPv6EchoRequest(id=ident, seq=seq, data=payload))
    assert ours == theirs


@given(ips, ips, macs)
def test_neighbor_solicitation_matches_scapy(src: bytes, target: bytes, mac: bytes) -> None:
    group = ip6.solicited_node(target)
    ours = build.ipv6(src, group, 58, ip6.neighbor_solicit(src, group, target, mac), hlim=255)
    theirs = bytes(IPv6(src=ip_str(src), dst=ip_str(group), hlim=255)
                   / ICMPv6ND_NS(tgt=ip_str(target))
                   / ICMPv6NDOptSrcLLAddr(lladdr=mac.hex(":")))
    assert ours == theirs
    assert group == IPv6Address(in6_getnsma(target)).packed
    assert ip6.multicast_mac(group).hex(":") == in6_getnsmac(in6_getnsma(target))


@given(ips, ips, macs, st.booleans(), st.booleans(), st.booleans(), st.booleans())
def test_neighbor_advert_matches_scapy(target: bytes, dst: bytes, mac: bytes, r: bool,
                                       s: bool, o: bool, opt: bool) -> None:
    flags = (0x80 if r else 0) | (0x40 if s else 0) | (0x20 if o else 0)
    body = ip6.neighbor_advert(target, dst, target, flags, mac if opt else None)
    ours = build.ipv6(target, dst, 58, body, hlim=255)
    na = ICMPv6ND_NA(tgt=ip_str(target), R=int(r), S=int(s), O=int(o))
    theirs = IPv6(src=ip_str(target), dst=ip_str(dst), hlim=255) / na
    if opt:
        theirs = theirs / ICMPv6NDOptDstLLAddr(lladdr=mac.hex(":"))
    assert ours == bytes(theirs)


@given(macs)
def test_link_local_is_eui64(mac: bytes) -> None:
    iid = in6_mactoifaceid(mac.hex(":"))
    assert ip6.link_local(mac) == IPv6Address(f"fe80::{iid}").packed


def test_ipv6_summaries_read_like_tcpdump() -> None:
    a, b = IPv6Address("fd00:10:244::2").packed, IPv6Address("fd00:10:244:1::3").packed
    mac = bytes(6)
    echo = build.ether(mac, mac, 0x86DD, build.ipv6(a, b, 58, ip6.echo(a, b, 128, 7, 1,
                                                                          b"x" * 56)))
    assert summary(echo) == ("IP6 fd00:10:244::2 > fd00:10:244:1::3: ICMP6, echo request, "
                             "id 7, seq 1, length 64, hlim 64")
    seg = build.tcp(a, b, 40000, 8080, 1, 0, 0x02, 64800)
    syn = build.ether(mac, mac, 0x86DD, build.ipv6(a, b, 6, seg))
    assert summary(syn) == ("IP6 fd00:10:244::2.40000 > fd00:10:244:1::3.8080: Flags [S], "
                            "seq 1, win 64800, length 0, hlim 64")
    assert endpoints(syn) == ("[fd00:10:244::2]:40000", "[fd00:10:244:1::3]:8080")
    group = ip6.solicited_node(b)
    ns = build.ether(mac, mac, 0x86DD, build.ipv6(a, group, 58, ip6.neighbor_solicit(
        a, group, b, mac), hlim=255))
    assert summary(ns) == ("IP6 fd00:10:244::2 > ff02::1:ff00:3: ICMP6, neighbor "
                           "solicitation, who has fd00:10:244:1::3, length 32, hlim 255")
