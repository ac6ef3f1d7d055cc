"""The IPv6 stack of a namespace, frame in, frames out (sans-IO): Neighbor Discovery as
``net/ipv6/ndisc.c`` answers, ICMPv6 echo and errors as ``icmp6_send`` makes them, TCP's
MSS and flow labels.  Every frame pktsim emits is re-read by scapy, its checksums recomputed."""

from __future__ import annotations

import random
from ipaddress import IPv4Interface, IPv6Address, IPv6Interface, IPv6Network

import pytest
from scapy.layers.inet import TCP, UDP
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoReply,
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6NDOptDstLLAddr,
    ICMPv6NDOptSrcLLAddr,
    ICMPv6PacketTooBig,
    ICMPv6TimeExceeded,
    IPv6,
    in6_chksum,
)
from scapy.layers.l2 import Ether

from pktsim.core.events import DropReason, Event
from pktsim.core.frame import Frame, Reaction
from pktsim.devices.l4 import TcpSocket, Transport
from pktsim.devices.netns import Netns
from pktsim.wire import build, ip6
from pktsim.wire.parse import summary

MAC_A, MAC_B = bytes.fromhex("0a580af40002"), bytes.fromhex("0a580af40003")
A, B = IPv6Address("fd00:10:244::2").packed, IPv6Address("fd00:10:244::3").packed
GW = IPv6Address("fd00:10:244::1").packed
FAR = IPv6Address("fd00:10:244:1::2").packed


def host(mac: bytes, addr: bytes, *, forwarding: bool = False) -> Netns:
    ns = Netns("h", forwarding=forwarding, rng=random.Random(1))
    ns.add_iface("lo", b"\0" * 6, mtu=65536, kind="loopback")
    ns.add_iface("eth0", mac)
    ns.add_addr("eth0", IPv4Interface("10.244.0.9/24"))
    ns.enable_ipv6()
    ns.add_addr6("eth0", IPv6Interface((addr, 64)))
    return ns


def same_bytes(frame: bytes) -> Ether:
    """scapy reads the frame and, with its checksum recomputed, writes the same bytes; an
    ICMPv6 error (whose quote scapy would rebuild) has its checksum checked by scapy's
    ``in6_chksum`` over the bytes as they are."""
    pkt = Ether(frame)
    if frame[14 + 6] == 58 and frame[14 + 40] < 128:
        body = bytearray(frame[54:])
        body[2:4] = b"\0\0"
        assert in6_chksum(58, pkt[IPv6], bytes(body)) == int.from_bytes(frame[56:58], "big")
        return pkt
    fresh = pkt.copy()
    layer = fresh[IPv6].payload
    for name in ("cksum", "chksum"):
        if hasattr(layer, name):
            setattr(layer, name, None)
    assert bytes(fresh) == frame
    return pkt


def ns_frame(src: bytes, target: bytes, mac: bytes, *, unicast: bytes | None = None) -> Frame:
    dst = target if unicast is not None else ip6.solicited_node(target)
    body = ip6.neighbor_solicit(src, dst, target, mac)
    pkt = build.ipv6(src, dst, build.PROTO_ICMPV6, body, hlim=255)
    eth_dst = unicast if unicast is not None else ip6.multicast_mac(dst)
    return Frame(build.ether(eth_dst, mac, build.ETH_P_IPV6, pkt), 1)


def test_a_multicast_solicitation_earns_a_solicited_override_advert_with_our_mac() -> None:
    b = host(MAC_B, B)
    r = b.receive(0, "eth0", ns_frame(A, B, MAC_A))
    [emit] = r.emits
    na = same_bytes(emit.frame.data)
    assert na.dst == "0a:58:0a:f4:00:02" and na[IPv6].src == "fd00:10:244::3"
    assert na[IPv6].dst == "fd00:10:244::2" and na[IPv6].hlim == 255 and na[IPv6].fl == 0
    adv = na[ICMPv6ND_NA]
    assert (adv.R, adv.S, adv.O) == (0, 1, 1) and adv.tgt == "fd00:10:244::3"
    assert na[ICMPv6NDOptDstLLAddr].lladdr == "0a:58:0a:f4:00:03"
    entry = b.neigh.get("eth0", A)  # learned from the NS, then used by the NA: DELAY
    assert entry is not None and entry.mac == MAC_A and entry.state == "DELAY"


def test_a_unicast_probe_earns_a_solicited_advert_without_override_or_option() -> None:
    b = host(MAC_B, B)
    r = b.receive(0, "eth0", ns_frame(A, B, MAC_A, unicast=MAC_B))
    [emit] = r.emits
    adv = same_bytes(emit.frame.data)[ICMPv6ND_NA]
    assert (adv.R, adv.S, adv.O) == (0, 1, 0)
    assert not adv.haslayer(ICMPv6NDOptDstLLAddr)


def test_a_forwarding_node_sets_the_router_flag_and_the_asker_records_it() -> None:
    node = host(MAC_B, GW, forwarding=True)
    a = host(MAC_A, A)
    a.add_route6(IPv6Network("::/0"), "eth0", GW)
    r = Reaction()
    a.l4.ping(0, r, FAR, 7, 1, b"x" * 56, "ping")
    [solicit] = r.emits
    sol = same_bytes(solicit.frame.data)
    assert sol.dst == "33:33:ff:00:00:01" and sol[IPv6].dst == "ff02::1:ff00:1"
    assert sol[IPv6].src == "fd00:10:244::2" and sol[ICMPv6ND_NS].tgt == "fd00:10:244::1"
    assert sol[ICMPv6NDOptSrcLLAddr].lladdr == "0a:58:0a:f4:00:02"
    [advert] = node.receive(10, "eth0", solicit.frame).emits
    assert same_bytes(advert.frame.data)[ICMPv6ND_NA].R == 1
    out = a.receive(20, "eth0", advert.frame)
    [echo] = out.emits  # the queued echo request leaves at once, to the router's MAC
    assert same_bytes(echo.frame.data)[Ether].dst == "0a:58:0a:f4:00:03"
    entry = a.neigh.get("eth0", GW)
    assert entry is not None and entry.router and entry.state == "REACHABLE"


def test_an_unanswered_solicitation_fails_and_tells_the_sender() -> None:
    a = host(MAC_A, A)
    r = Reaction()
    a.l4.udp_send(0, r, 40000, B, 9, b"hi", "udp")
    sent = [e for e in r.emits]
    s = 10**9
    for t in (s, 2 * s, 3 * s):
        sent += a.on_deadline(t).emits
    assert len(sent) == 3  # mcast_solicit: three NS, a second apart
    entry = a.neigh.get("eth0", B)
    assert entry is not None and entry.state == "FAILED"


def test_echo_request_is_answered_by_the_kernel() -> None:
    b = host(MAC_B, B)
    b.neigh.set("eth0", A, MAC_A, "REACHABLE")
    body = ip6.echo(A, B, ip6.ICMP6_ECHO_REQUEST, 7, 1, b"y" * 56)
    req = build.ether(MAC_B, MAC_A, build.ETH_P_IPV6, build.ipv6(A, B, 58, body, flow=5))
    [emit] = b.receive(0, "eth0", Frame(req, 1)).emits
    reply = same_bytes(emit.frame.data)
    assert reply[ICMPv6EchoReply].id == 7 and reply[ICMPv6EchoReply].data == b"y" * 56
    assert reply[IPv6].hlim == 64 and reply[IPv6].src == "fd00:10:244::3"
    assert "ICMP6, echo reply, id 7, seq 1, length 64, hlim 64" in summary(emit.frame.data)


def test_udp_to_a_closed_port_earns_port_unreachable_quoting_it() -> None:
    b = host(MAC_B, B)
    b.neigh.set("eth0", A, MAC_A, "REACHABLE")
    seg = build.udp(A, B, 40000, 9999, b"hi")
    pkt = build.ipv6(A, B, build.PROTO_UDP, seg)
    [emit] = b.receive(0, "eth0", Frame(build.ether(MAC_B, MAC_A, 0x86DD, pkt), 1)).emits
    err = same_bytes(emit.frame.data)
    assert err[ICMPv6DestUnreach].code == 4 and err[IPv6].src == "fd00:10:244::3"
    assert bytes(err[ICMPv6DestUnreach].payload) == pkt


def router() -> Netns:
    node = host(MAC_B, GW, forwarding=True)
    node.neigh.set("eth0", A, MAC_A, "REACHABLE")
    node.add_iface("eth1", bytes.fromhex("024200000002"), mtu=1400)
    node.add_addr6("eth1", IPv6Interface("fc00::2/64"))
    node.add_route6(IPv6Network("fd00:10:244:1::/64"), "eth1",
                    IPv6Address("fc00::3").packed)
    node.neigh.set("eth1", IPv6Address("fc00::3").packed, bytes(6), "REACHABLE")
    return node


@pytest.mark.parametrize(("dst", "hlim", "size", "kind", "code"), [
    (FAR, 1, 10, ICMPv6TimeExceeded, 0),
    (IPv6Address("2001:db8::1").packed, 64, 10, ICMPv6DestUnreach, 0),
    (FAR, 64, 1400, ICMPv6PacketTooBig, 0),
])
def test_a_router_answers_what_it_cannot_forward(dst: bytes, hlim: int, size: int,
                                                 kind: type, code: int) -> None:
    node = router()
    pkt = build.ipv6(A, dst, build.PROTO_UDP, build.udp(A, dst, 1, 2, b"z" * size), hlim=hlim)
    r = node.receive(0, "eth0", Frame(build.ether(MAC_B, MAC_A, 0x86DD, pkt), 1))
    [emit] = r.emits
    err = same_bytes(emit.frame.data)
    assert err.haslayer(kind) and err[kind].code == code
    assert err[IPv6].src == "fd00:10:244::1" and err[IPv6].dst == "fd00:10:244::2"
    if kind is ICMPv6PacketTooBig:
        assert err[kind].mtu == 1400
    assert len(emit.frame.data) - 14 <= ip6.MIN_MTU


def test_a_router_decrements_the_hop_limit() -> None:
    node = router()
    pkt = build.ipv6(A, FAR, build.PROTO_UDP, build.udp(A, FAR, 1, 2, b"z"), hlim=64)
    [emit] = node.receive(0, "eth0", Frame(build.ether(MAC_B, MAC_A, 0x86DD, pkt), 1)).emits
    assert emit.port == "eth1" and same_bytes(emit.frame.data)[IPv6].hlim == 63


def test_multicast_for_a_group_not_joined_is_dropped() -> None:
    b = host(MAC_B, B)
    r = b.receive(0, "eth0", ns_frame(A, IPv6Address("fd00:10:244::7").packed, MAC_A))
    assert not r.emits
    assert [s.detail.reason for s in r.steps if s.event == Event.DROP] == \
        [DropReason.NOT_A_MEMBER]  # type: ignore[union-attr]


def test_tcp_over_ipv6_advertises_mtu_less_60_and_keeps_one_flow_label() -> None:
    a = host(MAC_A, A)
    a.neigh.set("eth0", B, MAC_B, "REACHABLE")

    class Quiet:
        def on_tcp(self, *args: object) -> None: ...

    r = Reaction()
    sock = a.l4.tcp_connect(0, r, B, 8080, Quiet(), "tcp")  # type: ignore[arg-type]
    assert isinstance(sock, TcpSocket) and isinstance(a.l4, Transport)
    [syn] = r.emits
    pkt = same_bytes(syn.frame.data)
    assert dict(pkt[TCP].options)["MSS"] == 1440
    assert pkt[IPv6].fl == sock.flow_label != 0
    r2 = Reaction()
    sock.send(1, a.l4, r2, b"late")  # still SYN_SENT: queued; the label is the socket's
    assert all(same_bytes(e.frame.data)[IPv6].fl == sock.flow_label for e in r2.emits)


def test_udp_over_ipv6_always_carries_a_checksum() -> None:
    seg = build.udp(A, B, 1, 2, b"q")
    pkt = same_bytes(build.ether(MAC_B, MAC_A, 0x86DD, build.ipv6(A, B, 17, seg)))
    assert pkt[UDP].chksum != 0
