"""How Linux does IPv6 on a Kubernetes node with the bridge CNI plugin, pinned in the
kernel twin (docs/kernel-observations.md, "IPv6"): dual-stack pods on ``cbr0`` as the
plugin configures them (DAD off in the pod, accept_ra 0 on the host side, the gateway
``::1`` on the bridge, forwarding on) and ``network: routes`` across two nodes.

These tests prove the dual-stack harness and say what pktsim's IPv6 stack must produce:
the frame kinds per interface in order, Neighbor Discovery's sources, flags and options,
hop limits, which fields the kernel draws at random, the ICMPv6 errors and the
``ip -6`` dumps.  The pktsim-vs-kernel comparisons use the same twins (see
test_kernel_compare.py / test_kernel_cross_node.py for the pattern).
"""

from __future__ import annotations

import itertools
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import pktk_namespaces
from twin import (
    GATEWAY_IP6,
    Capture,
    KernelCluster,
    KernelNode,
    NodeSpec,
    PodSpec,
    kernel_available,
    normalize,
)

pytestmark = pytest.mark.kernel

A6, B6, GW6 = "fd00:10:244::2", "fd00:10:244::3", GATEWAY_IP6
REMOTE_B6 = "fd00:10:244:1::2"
NODE1_6, NODE2_6 = "fc00:f853:ccd:e793::2", "fc00:f853:ccd:e793::3"
# EUI-64 link-locals (addrconf_addr_gen, IN6_ADDR_GEN_MODE_EUI64): the MAC with the U/L
# bit flipped and ff:fe in the middle
A_LL, B_LL, CBR0_LL = "fe80::858:aff:fef4:2", "fe80::858:aff:fef4:3", "fe80::858:aff:fef4:1"
NODE1_LL, NODE2_LL = "fe80::42:acff:fe12:2", "fe80::42:acff:fe12:3"
NODE2_CBR0_LL = "fe80::858:aff:fef4:101"

SAME_NODE_PODS = [
    PodSpec("a", "10.244.0.2", "0a:58:0a:f4:00:02", "veth0000000a", "0a:00:00:00:01:02", A6),
    PodSpec("b", "10.244.0.3", "0a:58:0a:f4:00:03", "veth0000000b", "0a:00:00:00:01:03", B6),
]
CROSS_NODES = [
    NodeSpec("node-1", "172.18.0.2", "02:42:ac:12:00:02", "10.244.0.0/24", "0a:58:0a:f4:00:01",
             (PodSpec("a", "10.244.0.2", "0a:58:0a:f4:00:02", "veth0000000a", None, A6),),
             ip6=NODE1_6, pod_cidr6="fd00:10:244::/64"),
    NodeSpec("node-2", "172.18.0.3", "02:42:ac:12:00:03", "10.244.1.0/24", "0a:58:0a:f4:01:01",
             (PodSpec("b", "10.244.1.2", "0a:58:0a:f4:01:02", "veth0000000b", None, REMOTE_B6),),
             ip6=NODE2_6, pod_cidr6="fd00:10:244:1::/64"),
]


# --------------------------------------------------------------------------- helpers

def rows(twin: Any, cap: Capture, key: str) -> list[dict[str, Any]]:
    """The interface's frames normalised, Router Solicitations left out (background)."""
    quiet = cap.without_router_solicitations()
    return normalize(quiet.frames[key], twin.mac_names(), pkttypes=quiet.pkttypes[key])


def kind(r: dict[str, Any]) -> str:
    """A frame's kind in one word: ``ns``, ``na:RSO``, ``echo-request``, ``tcp:SA``."""
    t = r.get("icmp6_type")
    if t == "na":
        return f"na:{r['nd_flags']}"
    if t is not None:
        return f"{t}/{r['icmp6_code']}" if t in ("unreachable", "time-exceeded") else str(t)
    if "tcp_flags" in r:
        return f"tcp:{r['tcp_flags']}"
    if "udp_sport" in r:
        return "udp"
    return str(r.get("ethertype"))


def kinds(rs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(r["dir"], kind(r)) for r in rs]


def raw_flowlabels(cap: Capture, key: str, icmp6_type: int) -> list[int]:
    """The flow labels as sent, of the ICMPv6 messages of one type on ``key``."""
    return [int.from_bytes(f[14:18], "big") & 0xFFFFF for f in cap.frames[key]
            if f[12:14] == b"\x86\xdd" and f[20] == 58 and f[54] == icmp6_type]


def addresses(twin: Any, who: str, dev: str) -> list[tuple[str, int, str]]:
    """(address, prefix length, scope) of ``dev``'s IPv6 addresses, in the kernel's order."""
    links = json.loads(twin.ip(twin.ns_of(who), "-6", "-j", "addr", "show", "dev", dev))
    return [(a["local"], a["prefixlen"], a["scope"]) for ln in links for a in ln["addr_info"]]


def neigh(twin: Any, who: str) -> dict[str, tuple[str, list[str]]]:
    """IPv6 neighbours of ``who``: address -> (lladdr, states)."""
    out = {}
    for e in twin.neighbours(who):
        if ":" in e["dst"]:
            out[e["dst"]] = (e.get("lladdr", ""), e.get("state", []))
    return out


@pytest.fixture(scope="module")
def same_node() -> Iterator[KernelNode]:
    reason = kernel_available()
    if reason:
        pytest.skip(reason)
    kn = KernelNode(SAME_NODE_PODS, capture_lo=False, gateway_ip6=GW6)
    try:
        with kn:
            yield kn
    finally:
        assert pktk_namespaces(kn.tag) == [], "pktk6 namespaces left behind"


@pytest.fixture(scope="module")
def cross_node() -> Iterator[KernelCluster]:
    reason = kernel_available()
    if reason:
        pytest.skip(reason)
    kc = KernelCluster(CROSS_NODES, mode="routes")
    try:
        with kc:
            yield kc
    finally:
        assert pktk_namespaces(kc.tag) == [], "pktk6 namespaces left behind"


# --------------------------------------------------------------------------- set-up

def test_the_plugin_setup_leaves_global_and_eui64_link_local_addresses(
        same_node: KernelNode) -> None:
    """The pod's /64 was added before eth0 came up, the link-local at link-up (EUI-64 of
    the MAC); no address is tentative (DAD off in the pod, done on the node); the host
    veths carry only a link-local, cbr0 the gateway and its link-local.  Global before
    link-local: ipv6_link_dev_addr keeps the list sorted by scope."""
    assert addresses(same_node, "a", "eth0") == [(A6, 64, "global"), (A_LL, 64, "link")]
    assert addresses(same_node, "node", "cbr0") == [(GW6, 64, "global"), (CBR0_LL, 64, "link")]
    assert addresses(same_node, "node", "veth0000000a") == [("fe80::800:ff:fe00:102", 64, "link")]
    for ns in (same_node.node_ns, *same_node.pod_ns.values()):
        assert same_node.tentative_addresses(ns) == []
    sysctl = same_node.exec("a", ["sysctl", "-n", "net.ipv6.conf.eth0.accept_dad",
                                  "net.ipv6.conf.eth0.forwarding", "net.ipv6.conf.eth0.accept_ra"])
    assert sysctl.split() == ["0", "0", "1"]
    host = same_node.exec("node", ["sysctl", "-n", "net.ipv6.conf.veth0000000a.accept_ra",
                                   "net.ipv6.conf.cbr0.accept_ra", "net.ipv6.conf.all.forwarding"])
    assert host.split() == ["0", "0", "1"]


def test_after_settling_only_router_solicitations_remain(same_node: KernelNode) -> None:
    """Once DAD and the MLD reports are over the node is silent but for the pods' Router
    Solicitations, which go on for ever at randomised intervals (addrconf_rs_timer):
    an idle capture holds nothing else."""
    cap = same_node.scenario(lambda: time.sleep(1.0))
    for key, frames in cap.without_router_solicitations().frames.items():
        assert frames == [], key


# --------------------------------------------------------------------------- same node

def test_same_node_ping(same_node: KernelNode) -> None:
    """a resolves b with a multicast NS from its global address (the queued packet's
    source, ndisc_solicit) carrying SLLA; hairpin sends the NS back to a; b answers a
    unicast NA, Solicited+Override, no Router, with TLLA; the echoes carry hop limit 64
    and a flow label per direction; cbr0 (no MLD querier: flooded to the host) sees
    only the NS."""
    cap = same_node.scenario(lambda: same_node.ping("a", B6, count=2))
    a = rows(same_node, cap, "a:eth0")
    assert kinds(a) == [("out", "ns"), ("in", "ns"), ("in", "na:SO"),
                        ("out", "echo-request"), ("in", "echo-reply"),
                        ("out", "echo-request"), ("in", "echo-reply")]
    ns, na, req, rep = a[0], a[2], a[3], a[4]
    assert (ns["eth_dst"], ns["ip6_src"], ns["ip6_dst"], ns["ip6_hlim"], ns["ip6_flow"],
            ns["nd_target"], ns["nd_opts"], ns["nd_slla"], ns["len"]) == (
        "33:33:ff:00:00:03", A6, "ff02::1:ff00:3", 255, 0, B6, ["slla"], "a.eth0", 86)
    assert (na["eth_src"], na["eth_dst"], na["ip6_src"], na["ip6_dst"], na["ip6_hlim"],
            na["nd_target"], na["nd_opts"], na["nd_tlla"]) == (
        "b.eth0", "a.eth0", B6, A6, 255, B6, ["tlla"], "b.eth0")
    assert (req["ip6_hlim"], req["ip6_tc"], req["ip6_plen"], req["len"]) == (64, 0, 64, 118)
    assert len(req["icmp6_payload"]) == 2 * 56  # iputils' default 56 data bytes
    assert req["icmp6_payload"][32:] == bytes(range(0x10, 0x38)).hex()  # after the timeval
    assert (rep["ip6_hlim"], rep["icmp6_id"], rep["icmp6_seq"]) == (64, req["icmp6_id"], 1)
    assert req["ip6_flow"] == a[5]["ip6_flow"] != rep["ip6_flow"] == a[6]["ip6_flow"] != 0
    b = rows(same_node, cap, "b:eth0")
    assert kinds(b) == [("in", "ns"), ("out", "na:SO"), ("in", "echo-request"),
                        ("out", "echo-reply"), ("in", "echo-request"), ("out", "echo-reply")]
    assert kinds(rows(same_node, cap, "node:cbr0")) == [("in", "ns")]
    assert kinds(rows(same_node, cap, "node:veth0000000a"))[:3] == [
        ("in", "ns"), ("out", "ns"), ("out", "na:SO")]
    assert neigh(same_node, "a")[B6] == ("0a:58:0a:f4:00:03", ["REACHABLE"])
    assert neigh(same_node, "b")[A6] == ("0a:58:0a:f4:00:02", ["DELAY"])


def test_ping_flow_label_is_a_per_boot_hash(same_node: KernelNode) -> None:
    """Same flow, same label in two runs (a flow-dissector hash of the flow keyed with a
    random boot-time seed, ip6_make_flowlabel): stable structure, unknowable values."""
    first = same_node.scenario(lambda: same_node.ping("a", B6, count=1))
    second = same_node.scenario(lambda: same_node.ping("a", B6, count=1))
    labels = [raw_flowlabels(c, "a:eth0", 128) + raw_flowlabels(c, "a:eth0", 129)
              for c in (first, second)]
    assert labels[0] == labels[1] and len(set(labels[0])) == 2 and 0 not in labels[0]


def test_same_node_http(same_node: KernelNode) -> None:
    """TCP over IPv6: SYN options MSS 1440 (1500 - 40 - 20), SAckOK, TS, NOP, WScale 10;
    window 64800 = 45 x 1440 (the SYN-ACK's 64260 = 45 x 1428, MSS less the timestamp
    option); one random flow label per direction (sk_txhash), kept for the connection."""
    cap = same_node.scenario(lambda: same_node.tcp_exchange("a", "b", B6, 8080))
    a = rows(same_node, cap, "a:eth0")
    assert kinds(a) == [("out", "ns"), ("in", "ns"), ("in", "na:SO"),
                        ("out", "tcp:S"), ("in", "tcp:SA"), ("out", "tcp:A"), ("out", "tcp:PA"),
                        ("in", "tcp:A"), ("in", "tcp:PA"), ("out", "tcp:A"), ("out", "tcp:FA"),
                        ("in", "tcp:FA"), ("out", "tcp:A")]
    syn, synack = a[3], a[4]
    opts = [("MSS", 1440), ("SAckOK", None), ("Timestamp", None), ("NOP", None), ("WScale", 10)]
    assert (syn["tcp_options"], syn["tcp_window"], syn["len"]) == (opts, 64800, 94)
    assert (synack["tcp_options"], synack["tcp_window"]) == (opts, 64260)
    tcp = [r for r in a if "tcp_flags" in r]
    out = {r["ip6_flow"] for r in tcp if r["dir"] == "out"}
    back = {r["ip6_flow"] for r in tcp if r["dir"] == "in"}
    assert len(out) == len(back) == 1 and out != back and 0 not in out | back


def test_an_unconfirmed_neighbour_is_probed_by_unicast_ns_5_s_later(
        same_node: KernelNode) -> None:
    """b's entry for a (STALE from a's NS, DELAY once the echo reply used it) is probed
    after delay_first_probe_time (5 s): a unicast NS from b's link-local (no queued
    packet to take a source from: ndisc_send_ns picks the link-local) with SLLA; a
    answers Solicited only, no Override and no TLLA (a unicast NS: ndisc_recv_ns)."""
    def ping_and_wait() -> None:
        same_node.ping("a", B6, count=2)
        time.sleep(6.5)

    cap = same_node.scenario(ping_and_wait)
    b = rows(same_node, cap, "b:eth0")
    assert kinds(b)[6:] == [("out", "ns"), ("in", "na:S")]
    probe, answer = b[6], b[7]
    assert (probe["eth_dst"], probe["ip6_src"], probe["ip6_dst"], probe["nd_target"],
            probe["nd_opts"], probe["nd_slla"]) == ("a.eth0", B_LL, A6, A6, ["slla"], "b.eth0")
    assert (answer["ip6_src"], answer["ip6_dst"], answer["nd_opts"], answer["len"]) == (
        A6, B_LL, [], 78)
    assert neigh(same_node, "b")[A6][1] == ["REACHABLE"]


def test_udp_to_a_closed_port_gets_port_unreachable(same_node: KernelNode) -> None:
    """ICMPv6 type 1 code 4 from the destination's address, hop limit 64, quoting the
    whole datagram (well under the 1280-byte limit, icmp6_send)."""
    send = ("import socket,time;s=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM);"
            f"s.sendto(b'x'*10,('{B6}',9999));time.sleep(0.3)")
    cap = same_node.scenario(lambda: same_node.exec("a", [sys.executable, "-c", send]))
    a = rows(same_node, cap, "a:eth0")
    assert kinds(a)[3:] == [("out", "udp"), ("in", "unreachable/4")]
    err = a[4]
    assert (err["ip6_src"], err["ip6_dst"], err["ip6_hlim"], err["icmp6_rest"],
            err["quoted.len"], err["quoted.udp_dport"], err["len"]) == (
        B6, A6, 64, "00000000", 58, 9999, 120)
    assert err["ip6_flow"] != 0


def test_an_address_nobody_has_fails_after_3_ns_1_s_apart(same_node: KernelNode) -> None:
    """mcast_solicit 3 multicast NS, retrans_time 1 s apart; then the entry is FAILED
    and the error is a's own (no frame: ping reads "Address unreachable" from
    fd00:10:244::2, delivered locally)."""
    out: list[str] = []
    cap = same_node.scenario(lambda: out.append(same_node.exec(
        "a", ["ping", "-6", "-n", "-c", "1", "-W", "5", "fd00:10:244::9"], check=False)))
    assert "Address unreachable" in out[0]
    quiet = cap.without_router_solicitations()
    sent = [(ts, r) for (ts, _), r in zip(quiet.records["a:eth0"], rows(same_node, cap, "a:eth0"),
                                          strict=True) if r["dir"] == "out"]
    assert [kind(r) for _, r in sent] == ["ns", "ns", "ns"]
    gaps = [(later[0] - earlier[0]) / 1e9 for earlier, later in itertools.pairwise(sent)]
    assert all(0.9 < g < 1.5 for g in gaps), gaps  # retrans_time 1 s (timer slack under load)
    assert neigh(same_node, "a")["fd00:10:244::9"][1] == ["FAILED"]


def test_no_route_gets_unreachable_code_0_from_the_gateway(same_node: KernelNode) -> None:
    """The node has no route to fd00:99::/64: code 0 from cbr0's address (the source
    chosen towards the pod, icmp6_send), the whole request quoted; the gateway's NA has
    the Router flag (forwarding on)."""
    cap = same_node.scenario(lambda: same_node.exec(
        "b", ["ping", "-6", "-n", "-c", "1", "-W", "2", "fd00:99::1"], check=False))
    b = rows(same_node, cap, "b:eth0")
    assert kinds(b) == [("out", "ns"), ("in", "ns"), ("in", "na:RSO"),
                        ("out", "echo-request"), ("in", "unreachable/0")]
    assert (b[2]["ip6_src"], b[2]["nd_tlla"]) == (GW6, "cbr0")
    err = b[4]
    assert (err["ip6_src"], err["ip6_hlim"], err["quoted.len"], err["len"]) == (GW6, 64, 104, 166)
    assert neigh(same_node, "b")[GW6] == ("0a:58:0a:f4:00:01", ["REACHABLE"])


# --------------------------------------------------------------------------- across nodes

def test_cross_node_ping_over_routes(cross_node: KernelCluster) -> None:
    """Hop limit 64 -> 63 -> 62; node-1 resolves node-2's global with an NS from its
    eth0 link-local (the forwarded packet's source is not local); node-2 learns only that
    link-local from it, so it resolves node-1's global itself; node-2's cbr0 asks for b
    from its link-local, and b, knowing only that link-local, resolves its gateway
    fd00:10:244:1::1 before replying.  Routers answer with R set."""
    cap = cross_node.scenario(lambda: cross_node.ping("a", REMOTE_B6, count=2))
    assert kinds(rows(cross_node, cap, "a:eth0")) == [
        ("out", "ns"), ("in", "ns"), ("in", "na:RSO"), ("out", "echo-request"),
        ("in", "echo-reply"), ("out", "echo-request"), ("in", "echo-reply")]
    eth0 = rows(cross_node, cap, "node-1:eth0")
    assert kinds(eth0) == [("out", "ns"), ("in", "na:RSO"), ("out", "echo-request"),
                           ("in", "ns"), ("out", "na:RSO"), ("in", "echo-reply"),
                           ("out", "echo-request"), ("in", "echo-reply")]
    assert (eth0[0]["ip6_src"], eth0[0]["nd_target"], eth0[0]["eth_dst"]) == (
        NODE1_LL, NODE2_6, "33:33:ff:00:00:03")
    assert (eth0[1]["ip6_src"], eth0[1]["ip6_dst"], eth0[1]["nd_tlla"]) == (
        NODE2_6, NODE1_LL, "node-2.eth0")
    assert (eth0[3]["ip6_src"], eth0[3]["nd_target"]) == (NODE2_LL, NODE1_6)
    assert [r["ip6_hlim"] for r in eth0 if "icmp6_seq" in r] == [63, 63, 63, 63]
    b = rows(cross_node, cap, "b:eth0")
    assert kinds(b) == [("in", "ns"), ("out", "na:SO"), ("in", "echo-request"),
                        ("out", "ns"), ("in", "ns"), ("in", "na:RSO"), ("out", "echo-reply"),
                        ("in", "echo-request"), ("out", "echo-reply")]
    assert (b[0]["ip6_src"], b[0]["nd_slla"], b[1]["ip6_dst"]) == (
        NODE2_CBR0_LL, "node-2.cbr0", NODE2_CBR0_LL)
    assert (b[2]["ip6_hlim"], b[3]["ip6_src"], b[3]["nd_target"]) == (
        62, REMOTE_B6, "fd00:10:244:1::1")
    assert neigh(cross_node, "node-1")[NODE2_6] == ("02:42:ac:12:00:03", ["REACHABLE"])


def test_cross_node_http_over_routes(cross_node: KernelCluster) -> None:
    """The same TCP as on one node, hop limit 63 on the node network."""
    cap = cross_node.scenario(lambda: cross_node.tcp_exchange("a", "b", REMOTE_B6, 8080))
    eth0 = [r for r in rows(cross_node, cap, "node-1:eth0") if "tcp_flags" in r]
    assert [r["tcp_flags"] for r in eth0] == ["S", "SA", "A", "PA", "A", "PA", "A", "FA", "FA",
                                              "A"]
    assert {r["ip6_hlim"] for r in eth0} == {63}
    assert eth0[0]["tcp_options"][0] == ("MSS", 1440)


def test_hop_limit_exceeded_comes_from_the_node_that_drops(cross_node: KernelCluster) -> None:
    """Hop limit 2: node-2 drops it (ip6_forward) and sends time exceeded code 0 from
    its eth0 address, quoting the request with the hop limit it arrived with (1)."""
    cap = cross_node.scenario(lambda: cross_node.exec(
        "a", ["ping", "-6", "-n", "-c", "1", "-t", "2", "-W", "2", REMOTE_B6], check=False))
    a = rows(cross_node, cap, "a:eth0")
    assert kinds(a)[3:] == [("out", "echo-request"), ("in", "time-exceeded/0")]
    err = a[4]
    assert (err["ip6_src"], err["ip6_hlim"], err["quoted.ip6_hlim"], err["quoted.len"]) == (
        NODE2_6, 63, 1, 104)
    assert rows(cross_node, cap, "b:eth0") == []


def test_packet_too_big_quotes_up_to_1280_bytes(cross_node: KernelCluster) -> None:
    """node-2's pod side at MTU 1400: a 1448-byte packet gets Packet Too Big (mtu 1400,
    never rate limited: ratemask 0-1,3-127) from node-2's eth0, the whole reply 1280
    bytes (IPV6_MIN_MTU), so 1232 bytes quoted; a caches the path MTU."""
    ns2 = cross_node.node_nss["node-2"]
    try:
        for dev in ("cbr0", "veth0000000b"):
            cross_node.ip(ns2, "link", "set", dev, "mtu", "1400")
        cap = cross_node.scenario(lambda: cross_node.exec(
            "a", ["ping", "-6", "-n", "-c", "1", "-s", "1400", "-M", "do", "-W", "2",
                  REMOTE_B6], check=False))
        a = rows(cross_node, cap, "a:eth0")
        assert kinds(a)[3:] == [("out", "echo-request"), ("in", "too-big")]
        err = a[4]
        assert (err["ip6_src"], err["icmp6_rest"], err["ip6_plen"], err["quoted.len"],
                err["len"]) == (NODE2_6, f"{1400:08x}", 1240, 1232, 1294)
        assert "mtu 1400" in cross_node.ip(cross_node.ns_of("a"), "-6", "route", "get",
                                           REMOTE_B6)
    finally:
        for dev in ("veth0000000b", "cbr0"):
            cross_node.ip(ns2, "link", "set", dev, "mtu", "1500")


def test_address_unreachable_after_the_remote_node_s_3_ns(cross_node: KernelCluster) -> None:
    """No fd00:10:244:1::9 on node-2's bridge: 3 NS from cbr0's link-local, then
    unreachable code 3 (ndisc_error_report -> icmpv6_send) from node-2's eth0 address."""
    cap = cross_node.scenario(lambda: cross_node.exec(
        "a", ["ping", "-6", "-n", "-c", "1", "-W", "5", "fd00:10:244:1::9"], check=False))
    cbr0 = rows(cross_node, cap, "node-2:cbr0")
    assert kinds(cbr0) == [("out", "ns")] * 3
    assert {r["ip6_src"] for r in cbr0} == {NODE2_CBR0_LL}
    a = rows(cross_node, cap, "a:eth0")
    assert kinds(a)[3:] == [("out", "echo-request"), ("in", "unreachable/3")]
    assert a[4]["ip6_src"] == NODE2_6
    # the error leaves when the entry fails: 3 x retrans_time after the first NS
    quiet = cap.without_router_solicitations()
    first_ns = quiet.records["node-2:cbr0"][0][0]
    error = [ts for (ts, f) in quiet.records["node-2:eth0"] if len(f) == 166][-1]
    assert 2.9 < (error - first_ns) / 1e9 < 3.6


def test_ip6_route_dumps(cross_node: KernelCluster) -> None:
    """``ip -6 route`` as pktsim's dumps must print it, byte for byte."""
    pod = cross_node.ip(cross_node.ns_of("a"), "-6", "route", "show")
    assert pod.splitlines() == [
        "fd00:10:244::/64 dev eth0 proto kernel metric 256 pref medium",
        "fe80::/64 dev eth0 proto kernel metric 256 pref medium",
        "default via fd00:10:244::1 dev eth0 metric 1024 pref medium"]
    node = cross_node.ip(cross_node.node_nss["node-1"], "-6", "route", "show")
    assert node.splitlines() == [
        "fc00:f853:ccd:e793::/64 dev eth0 proto kernel metric 256 pref medium",
        "fd00:10:244::/64 dev cbr0 proto kernel metric 256 pref medium",
        "fd00:10:244:1::/64 via fc00:f853:ccd:e793::3 dev eth0 metric 1024 pref medium",
        "fe80::/64 dev eth0 proto kernel metric 256 pref medium",
        "fe80::/64 dev veth0000000a proto kernel metric 256 pref medium",
        "fe80::/64 dev cbr0 proto kernel metric 256 pref medium"]
    local = cross_node.ip(cross_node.node_nss["node-1"], "-6", "route", "show", "table", "local")
    assert "anycast fd00:10:244:: dev cbr0 proto kernel metric 0 pref medium" in local.splitlines()
    assert "local fd00:10:244::1 dev cbr0 proto kernel metric 0 pref medium" in local.splitlines()
