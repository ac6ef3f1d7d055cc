"""NAT through the hooks of a real ``Netns``: DNAT and its undoing, masquerade, RELATED ICMP
errors, SNAT port choice, REJECT, INVALID and table-full drops, flannel's masquerade.

Every rewritten packet is checked byte for byte against the same packet built from scratch
(so every checksum is the one a full recomputation gives), and scapy must agree.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror, TCPerror, UDPerror

from pktsim.core.events import Drop, DropReason, Event, NatRewrite
from pktsim.core.frame import Frame, Reaction
from pktsim.devices.netns import Netns
from pktsim.netfilter import (
    ConntrackConfig,
    Netfilter,
    Tuple,
    flannel_masquerade,
    kube_proxy_masquerade,
)
from pktsim.netfilter.mangle import DST, SRC, icmp_translate, rewrite
from pktsim.wire import build
from pktsim.wire.checksum import checksum, l4_checksum
from pktsim.wire.parse import TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, ip_bytes, ip_str

S = 1_000_000_000
C, C2, VIP = "10.244.1.5", "10.244.1.6", "10.96.45.12"
PEER_MAC = bytes.fromhex("0a0000000099")


# -- packets -------------------------------------------------------------------------------
def tcp(src: str, sport: int, dst: str, dport: int, flags: int = TCP_SYN, ttl: int = 64,
        payload: bytes = b"") -> bytes:
    seg = build.tcp(ip_bytes(src), ip_bytes(dst), sport, dport, 1000, 2000, flags, 64240,
                    payload)
    return build.ipv4(ip_bytes(src), ip_bytes(dst), 6, seg, ttl=ttl, ident=77, flags=0x4000)


def udp(src: str, sport: int, dst: str, dport: int, ttl: int = 64) -> bytes:
    seg = build.udp(ip_bytes(src), ip_bytes(dst), sport, dport, b"\x12\x34 dns query")
    return build.ipv4(ip_bytes(src), ip_bytes(dst), 17, seg, ttl=ttl, ident=78)


def echo(src: str, dst: str, ident: int, kind: int = 8, ttl: int = 64) -> bytes:
    body = build.icmp_echo(kind, ident, 3, b"ping payload")
    return build.ipv4(ip_bytes(src), ip_bytes(dst), 1, body, ttl=ttl, ident=79)


def unreachable(src: str, dst: str, about: bytes, ttl: int = 64) -> bytes:
    return build.ipv4(ip_bytes(src), ip_bytes(dst), 1, build.icmp(3, 3, b"\0" * 4, about),
                      ttl=ttl, ident=80, tos=0xC0)


def assert_valid(pkt: bytes) -> None:
    """Every checksum verifies (ours), the quoted packet's too, and scapy rebuilds the same
    bytes after forgetting every checksum."""
    ihl = (pkt[0] & 0x0F) * 4
    assert checksum(pkt[:ihl]) == 0
    body = pkt[ihl:]
    if pkt[9] in (6, 17) and not (pkt[9] == 17 and body[6:8] == b"\0\0"):
        assert l4_checksum(pkt[12:16], pkt[16:20], pkt[9], body) == 0
    if pkt[9] == 1:
        assert checksum(body) == 0
        if body[0] == 3:
            assert_valid(body[8:])
    p = IP(pkt)
    for layer in (IP, TCP, UDP, ICMP, IPerror, TCPerror, UDPerror):
        if layer in p:
            del p[layer].chksum
    assert bytes(p) == pkt


# -- a node --------------------------------------------------------------------------------
def kube_rules(endpoints: list[str], *, port: int = 80, target: int = 8080,
               proto: str = "tcp", vip: str = VIP) -> str:
    lines = ["*nat", ":KUBE-SERVICES - [0:0]", ":KUBE-SVC-X - [0:0]", ":KUBE-MARK-MASQ - [0:0]",
             ":KUBE-POSTROUTING - [0:0]",
             '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
             '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
             '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" '
             "-j KUBE-POSTROUTING",
             "-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000",
             "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
             "-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000",
             '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring '
             'SNAT" -j MASQUERADE --random-fully',
             f"-A KUBE-SERVICES -m {proto} -p {proto} -d {vip} --dport {port} -j KUBE-SVC-X",
             f"-A KUBE-SVC-X -m {proto} -p {proto} -d {vip} --dport {port} ! -s 10.244.0.0/16 "
             "-j KUBE-MARK-MASQ"]
    for i, ep in enumerate(endpoints):
        sep = f"KUBE-SEP-{'AB'[i]}"
        lines.insert(1, f":{sep} - [0:0]")
        stat = (f"-m statistic --mode random --probability {1 / (len(endpoints) - i):0.10f} "
                if i < len(endpoints) - 1 else "")
        lines += [f"-A KUBE-SVC-X {stat}-j {sep}", f"-A {sep} -s {ep} -j KUBE-MARK-MASQ",
                  f"-A {sep} -m {proto} -p {proto} -j DNAT --to-destination {ep}:{target}"]
    return "\n".join([*lines, "COMMIT", ""])


class Node:
    """A node's root namespace: cbr0 10.244.1.1/24 (pods), eth0 172.18.0.2/16 (underlay)."""

    def __init__(self, rules: str = "", seed: int = 1,
                 config: ConntrackConfig | None = None) -> None:
        ns = Netns("node1", forwarding=True)
        ns.add_iface("lo", b"\0" * 6, kind="loopback")
        ns.add_iface("cbr0", bytes.fromhex("0a580af40101"), kind="bridge")
        ns.add_iface("eth0", bytes.fromhex("020000000002"))
        from ipaddress import IPv4Interface
        ns.add_addr("cbr0", IPv4Interface("10.244.1.1/24"))
        ns.add_addr("eth0", IPv4Interface("172.18.0.2/16"))
        ns.add_route("10.244.2.0/24", "eth0", via="172.18.0.3")
        ns.add_route("0.0.0.0/0", "eth0", via="172.18.0.1")
        for ip, dev in ((C, "cbr0"), (C2, "cbr0"), ("172.18.0.3", "eth0"),
                        ("172.18.0.1", "eth0")):
            ns.neigh.set(dev, ip_bytes(ip), PEER_MAC, "REACHABLE")
        self.ns = ns
        self.nf = Netfilter(ns, random.Random(seed),
                            config=config or ConntrackConfig.kube_proxy())
        ns.hooks = self.nf
        if rules:
            self.nf.load(rules)
        self.pid = 100

    def send(self, now: int, dev: str, pkt: bytes) -> Reaction:
        self.pid += 1
        mac = self.ns.ifaces[dev].mac
        return self.ns.receive(now, dev, Frame(build.ether(mac, PEER_MAC, 0x0800, pkt),
                                               self.pid))

    @staticmethod
    def out(r: Reaction) -> list[tuple[str, bytes]]:
        return [(e.port, e.frame.data[14:]) for e in r.emits]

    @staticmethod
    def said(r: Reaction) -> list[str]:
        return [s.summary for s in r.steps]


# -- DNAT and back ---------------------------------------------------------------------------
def test_dnat_then_reply_undnat_byte_for_byte() -> None:
    node = Node(kube_rules(["10.244.2.7"]))
    r = node.send(0, "cbr0", tcp(C, 40000, VIP, 80))
    assert node.out(r) == [("eth0", tcp(C, 40000, "10.244.2.7", 8080, ttl=63))]
    assert node.said(r)[:2] == [
        f"conntrack: new tcp {C}:40000 -> {VIP}:80",
        f"kube-proxy DNAT {VIP}:80 -> 10.244.2.7:8080 (KUBE-SERVICES -> KUBE-SVC-X -> "
        "KUBE-SEP-A)"]
    nat_step = r.steps[1].detail
    assert isinstance(nat_step, NatRewrite) and nat_step.rule is not None
    assert (nat_step.field, nat_step.old, nat_step.new) == ("dst", f"{VIP}:80", "10.244.2.7:8080")
    assert nat_step.rule.chain == "KUBE-SEP-A"
    assert nat_step.rule.rule == ("-A KUBE-SEP-A -p tcp -m tcp -j DNAT --to-destination "
                                  "10.244.2.7:8080")
    r = node.send(S, "eth0", tcp("10.244.2.7", 8080, C, 40000, TCP_SYN | TCP_ACK))
    assert node.out(r) == [("cbr0", tcp(VIP, 80, C, 40000, TCP_SYN | TCP_ACK, ttl=63))]
    assert f"conntrack un-DNAT 10.244.2.7:8080 -> {VIP}:80" in node.said(r)
    r = node.send(S, "cbr0", tcp(C, 40000, VIP, 80, TCP_ACK))
    assert node.out(r) == [("eth0", tcp(C, 40000, "10.244.2.7", 8080, TCP_ACK, ttl=63))]
    assert f"conntrack DNAT {VIP}:80 -> 10.244.2.7:8080" in node.said(r)
    assert node.nf.conntrack.dump(S) == (
        f"tcp      6 86399 ESTABLISHED src={C} dst={VIP} sport=40000 dport=80 "
        f"src=10.244.2.7 dst={C} sport=8080 dport=40000 [ASSURED] mark=0 use=1\n")
    for _, pkt in node.out(r):
        assert_valid(pkt)


def test_later_packets_never_rerun_the_statistic() -> None:
    node = Node(kube_rules(["10.244.2.7", "10.244.2.8"]))
    chosen: dict[int, bytes] = {}
    for sport in range(41000, 41400):
        (_, pkt), = node.out(node.send(0, "cbr0", tcp(C, sport, VIP, 80)))
        chosen[sport] = pkt[16:20]
    share = sum(ip == ip_bytes("10.244.2.7") for ip in chosen.values()) / len(chosen)
    assert 0.4 < share < 0.6
    state = node.nf._stat_rng.getstate()
    for sport, backend in chosen.items():
        (_, pkt), = node.out(node.send(S, "cbr0", tcp(C, sport, VIP, 80)))  # retransmit
        assert pkt[16:20] == backend
        node.send(S, "eth0", tcp(ip_str(backend), 8080, C, sport, TCP_SYN | TCP_ACK))
        for flags in (TCP_ACK, TCP_ACK | TCP_FIN):
            (_dev, pkt), = node.out(node.send(S, "cbr0", tcp(C, sport, VIP, 80, flags)))
            assert pkt[16:20] == backend
    assert node.nf._stat_rng.getstate() == state  # no walk, no draw


def test_outside_client_is_masqueraded_and_the_mark_cleared() -> None:
    """kube-proxy's KUBE-MARK-MASQ: traffic from outside the cluster CIDR to a VIP leaves with the
    node IP."""
    node = Node(kube_rules(["10.244.2.7"]))
    r = node.send(0, "eth0", tcp("192.0.2.50", 50000, VIP, 80))
    (dev, pkt), = node.out(r)
    port = int.from_bytes(pkt[20:22], "big")
    assert dev == "eth0" and pkt == tcp("172.18.0.2", port, "10.244.2.7", 8080, ttl=63)
    masq = next(s for s in r.steps if "MASQUERADE" in s.summary)
    assert masq.summary == (f"kube-proxy MASQUERADE 192.0.2.50:50000 -> 172.18.0.2:{port} "
                            "(KUBE-POSTROUTING), mark 0x4000 -> 0x0")
    r = node.send(S, "eth0", tcp("10.244.2.7", 8080, "172.18.0.2", port, TCP_SYN | TCP_ACK))
    assert node.out(r) == [("eth0", tcp(VIP, 80, "192.0.2.50", 50000, TCP_SYN | TCP_ACK,
                                        ttl=63))]
    said = node.said(r)  # un-SNAT at PREROUTING, routing, un-DNAT at POSTROUTING
    assert said.index(f"conntrack un-MASQUERADE 172.18.0.2:{port} -> 192.0.2.50:50000") < \
        said.index(f"conntrack un-DNAT 10.244.2.7:8080 -> {VIP}:80")


def test_hairpin_to_itself_is_masqueraded_to_the_bridge_address() -> None:
    """KUBE-SEP's ``-s <endpoint> -j KUBE-MARK-MASQ``: a pod reaching itself through its service
    sees the bridge IP as source."""
    node = Node(kube_rules([C]))
    (dev, pkt), = node.out(node.send(0, "cbr0", tcp(C, 40000, VIP, 80)))
    port = int.from_bytes(pkt[20:22], "big")
    assert (dev, pkt) == ("cbr0", tcp("10.244.1.1", port, C, 8080, ttl=63))
    r = node.send(S, "cbr0", tcp(C, 8080, "10.244.1.1", port, TCP_SYN | TCP_ACK))
    assert node.out(r) == [("cbr0", tcp(VIP, 80, C, 40000, TCP_SYN | TCP_ACK, ttl=63))]


def test_local_process_to_a_vip_goes_through_output() -> None:
    node = Node(kube_rules(["10.244.2.7"]))
    r = Reaction()
    node.ns.ip_output(0, tcp("172.18.0.2", 45000, VIP, 80), Frame(b"", 5), r)
    (dev, pkt), = node.out(r)
    assert dev == "eth0" and pkt[16:20] == ip_bytes("10.244.2.7") and pkt[12:16] == \
        ip_bytes("172.18.0.2")
    sport = int.from_bytes(pkt[20:22], "big")
    r = node.send(S, "eth0", tcp("10.244.2.7", 8080, "172.18.0.2", sport, TCP_RST | TCP_ACK))
    assert f"conntrack un-DNAT 10.244.2.7:8080 -> {VIP}:80" in node.said(r)


# -- RELATED ICMP errors ----------------------------------------------------------------------
@pytest.mark.parametrize("proto", ["udp", "tcp"])
def test_icmp_error_is_unnated_inside_and_out(proto: str) -> None:
    node = Node(kube_rules(["10.244.2.10"], port=53, target=53, proto=proto, vip="10.96.0.10"))
    make = udp if proto == "udp" else tcp
    (dev, sent), = node.out(node.send(0, "cbr0", make(C, 5353, "10.96.0.10", 53)))
    assert dev == "eth0"
    err = unreachable("10.244.2.10", C, sent)
    r = node.send(S, "eth0", err)
    (dev, got), = node.out(r)
    expected = unreachable("10.96.0.10", C, make(C, 5353, "10.96.0.10", 53, ttl=63), ttl=63)
    assert (dev, got) == ("cbr0", expected)
    assert_valid(got)
    assert ("conntrack un-NAT ICMP error 10.244.2.10 -> 10.96.0.10, quoted dst "
            "10.244.2.10:53 -> 10.96.0.10:53") in node.said(r)
    assert any(s.summary.startswith("conntrack: ICMP error related to") for s in r.steps)


def test_icmp_error_about_a_masqueraded_flow_reaches_the_real_client() -> None:
    node = Node(kube_rules(["10.244.2.10"], port=53, target=53, proto="udp", vip="10.96.0.10"))
    (dev, sent), = node.out(node.send(0, "eth0", udp("192.0.2.50", 7000, "10.96.0.10", 53)))
    port = int.from_bytes(sent[20:22], "big")
    (dev, got), = node.out(node.send(S, "eth0", unreachable("10.244.2.10", "172.18.0.2", sent)))
    expected = unreachable("10.96.0.10", "192.0.2.50",
                           udp("192.0.2.50", 7000, "10.96.0.10", 53, ttl=63), ttl=63)
    assert port and (dev, got) == ("eth0", expected)
    assert_valid(got)


# -- SNAT port choice -------------------------------------------------------------------------
MASQ = "*nat\n-A POSTROUTING -o eth0 -j MASQUERADE{}\nCOMMIT\n"


def test_snat_keeps_the_port_when_free_and_moves_it_on_a_clash() -> None:
    node = Node(MASQ.format(""))
    (dev, a), = node.out(node.send(0, "cbr0", udp(C, 40000, "8.8.8.8", 53)))
    (dev, b), = node.out(node.send(0, "cbr0", udp(C2, 40000, "8.8.8.8", 53)))
    port_b = int.from_bytes(b[20:22], "big")
    assert a == udp("172.18.0.2", 40000, "8.8.8.8", 53, ttl=63)
    assert b == udp("172.18.0.2", port_b, "8.8.8.8", 53, ttl=63)
    assert port_b != 40000 and 1024 <= port_b <= 65535
    again = Node(MASQ.format(""))
    again.send(0, "cbr0", udp(C, 40000, "8.8.8.8", 53))
    (dev, b2), = again.out(again.send(0, "cbr0", udp(C2, 40000, "8.8.8.8", 53)))
    assert b2 == b  # the fallback is deterministic for a seed
    for port, client in ((40000, C), (port_b, C2)):
        (dev, back), = node.out(node.send(S, "eth0", udp("8.8.8.8", 53, "172.18.0.2", port)))
        assert (dev, back) == ("cbr0", udp("8.8.8.8", 53, client, 40000, ttl=63))


def test_a_low_port_clash_stays_low() -> None:
    node = Node(MASQ.format(""))
    node.send(0, "cbr0", udp(C, 500, "8.8.8.8", 53))
    (_dev, b), = node.out(node.send(0, "cbr0", udp(C2, 500, "8.8.8.8", 53)))
    assert 1 <= int.from_bytes(b[20:22], "big") <= 511


def test_random_fully_picks_a_seeded_port() -> None:
    ports = []
    for seed in (1, 1, 2):
        node = Node(MASQ.format(" --random-fully"), seed=seed)
        (_dev, pkt), = node.out(node.send(0, "cbr0", tcp(C, 40000, "1.1.1.1", 443)))
        ports.append(int.from_bytes(pkt[20:22], "big"))
        assert_valid(pkt)
    assert ports[0] == ports[1] != 40000 and ports[2] != ports[0]


def test_icmp_echo_identifier_is_remapped_on_a_clash() -> None:
    node = Node(MASQ.format(""))
    (dev, a), = node.out(node.send(0, "cbr0", echo(C, "8.8.8.8", 7)))
    (dev, b), = node.out(node.send(0, "cbr0", echo(C2, "8.8.8.8", 7)))
    new_id = int.from_bytes(b[24:26], "big")
    assert a == echo("172.18.0.2", "8.8.8.8", 7, ttl=63)
    assert new_id != 7 and b == echo("172.18.0.2", "8.8.8.8", new_id, ttl=63)
    (dev, back), = node.out(node.send(S, "eth0", echo("8.8.8.8", "172.18.0.2", new_id, kind=0)))
    assert (dev, back) == ("cbr0", echo("8.8.8.8", C2, 7, kind=0, ttl=63))


# -- filter verdicts ----------------------------------------------------------------------------
REJECT = """*filter
:KUBE-SERVICES - [0:0]
-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A KUBE-SERVICES -m comment --comment "ns6/svc6:p80 has no endpoints" -m tcp -p tcp -d 10.96.0.50 --dport 80 -j REJECT
-A KUBE-SERVICES -m tcp -p tcp -d 10.96.0.51 --dport 80 -j REJECT --reject-with tcp-reset
COMMIT
"""  # noqa: E501


def test_reject_answers_icmp_port_unreachable() -> None:
    """kube-proxy's "has no endpoints" rule: a service with no endpoints is REJECTed; nothing is
    tracked."""
    node = Node(REJECT)
    syn = tcp(C, 40000, "10.96.0.50", 80)
    r = node.send(0, "cbr0", syn)
    (dev, err), = node.out(r)
    assert dev == "cbr0" and err[9] == 1 and err[20:22] == b"\x03\x03"
    assert err[12:16] == ip_bytes("10.244.1.1") and err[28:] == tcp(C, 40000, "10.96.0.50", 80,
                                                                       ttl=63)
    assert_valid(err)
    reject = next(s for s in r.steps if s.summary.startswith("REJECT"))
    assert reject.summary == "REJECT icmp-port-unreachable (KUBE-SERVICES)"
    assert isinstance(reject.detail, Drop) and reject.detail.reason is DropReason.RULE
    assert reject.detail.rule is not None and reject.detail.rule.chain == "KUBE-SERVICES"
    assert len(node.nf.conntrack) == 0


def test_reject_with_tcp_reset() -> None:
    node = Node(REJECT)
    (dev, rst), = node.out(node.send(0, "cbr0", tcp(C, 40000, "10.96.0.51", 80)))
    assert dev == "cbr0"
    assert rst[12:16] == ip_bytes("10.96.0.51") and rst[16:20] == ip_bytes(C)
    assert rst[20 + 13] == TCP_RST | TCP_ACK and int.from_bytes(rst[28:32], "big") == 1001
    assert_valid(rst)


def test_invalid_segment_is_dropped_by_kube_forward() -> None:
    node = Node("*filter\n:KUBE-FORWARD - [0:0]\n-A FORWARD -j KUBE-FORWARD\n"
                "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP\nCOMMIT\n")
    r = node.send(0, "cbr0", tcp(C, 40000, "10.244.2.7", 8080, TCP_FIN))
    assert node.out(r) == []
    drop = r.steps[-1]
    assert drop.event is Event.DROP and isinstance(drop.detail, Drop)
    assert drop.detail.reason is DropReason.RULE and drop.detail.rule is not None
    assert drop.summary == "drop: dropped by a rule (filter FORWARD: DROP (KUBE-FORWARD))"
    assert drop.detail.rule.rule == "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP"


def test_full_table_drops_with_the_kernel_message() -> None:
    node = Node(config=ConntrackConfig(max_entries=1, early_drop=False))
    node.send(0, "cbr0", tcp(C, 40000, "10.244.2.7", 8080))
    r = node.send(0, "cbr0", tcp(C, 40001, "10.244.2.7", 8080))
    assert node.out(r) == []
    assert r.steps[-1].summary == "drop: nf_conntrack: table full, dropping packet"
    assert r.steps[-1].detail == Drop(DropReason.CONNTRACK_FULL)


def test_loopback_packets_are_tracked_once() -> None:
    node = Node("*filter\n-A INPUT -p tcp -m conntrack --ctstate NEW -m tcp --dport 9999 "
                "-j ACCEPT\nCOMMIT\n")
    r = Reaction()
    node.ns.ip_output(0, tcp("172.18.0.2", 45000, "172.18.0.2", 9999), Frame(b"", 5), r)
    (emit,) = r.emits
    assert emit.port == "lo"
    back = node.ns.receive(0, "lo", emit.frame)
    said = node.said(r) + node.said(back)
    assert sum(s.startswith("conntrack: new") for s in said) == 1
    assert "filter INPUT: ACCEPT (INPUT)" in said  # still NEW after the loop through lo
    # nobody listens on 9999: the RST answering the SYN deletes the entry, as in Linux
    assert any(s.endswith("RST before any reply: entry deleted") for s in said)
    assert len(node.nf.conntrack) == 0


# -- flannel ---------------------------------------------------------------------------------------
def test_flannel_masquerades_pod_to_outside_but_not_pod_to_pod() -> None:
    node = Node()
    kube_proxy_masquerade(node.nf.table("nat"))
    flannel_masquerade(node.nf.table("nat"), "10.244.1.0/24", "10.244.0.0/16")
    node.nf.validate()
    r = node.send(0, "cbr0", tcp(C, 40000, "1.1.1.1", 443))
    (_, out), = node.out(r)
    port = int.from_bytes(out[20:22], "big")
    assert out == tcp("172.18.0.2", port, "1.1.1.1", 443, ttl=63)
    assert f"flannel MASQUERADE {C}:40000 -> 172.18.0.2:{port} (FLANNEL-POSTRTG)" in \
        node.said(r)
    (_dev, out), = node.out(node.send(0, "cbr0", tcp(C, 40000, "10.244.2.7", 8080)))
    assert out == tcp(C, 40000, "10.244.2.7", 8080, ttl=63)


# -- the rewrite itself, against a rebuild --------------------------------------------------
_ip = st.ip_addresses(v=4).map(str)
_port = st.integers(1, 65535)


@given(st.sampled_from(["tcp", "udp", "udp0", "icmp"]), _ip, _ip, _port, _port,
       st.binary(max_size=64), st.sampled_from([SRC, DST]), _ip, _port)
def test_rewrite_equals_rebuilding(kind: str, src: str, dst: str, sport: int, dport: int,
                                   payload: bytes, mt: int, new_ip: str, new_port: int) -> None:
    def make(s: str, sp: int, d: str, dp: int) -> bytes:
        a, b = ip_bytes(s), ip_bytes(d)
        if kind == "tcp":
            body = build.tcp(a, b, sp, dp, 5, 6, TCP_ACK, 1000, payload)
        elif kind == "icmp":
            body = build.icmp_echo(8, sp, 9, payload)
        else:
            body = build.udp(a, b, sp, dp, payload, with_checksum=kind == "udp")
        proto = {"tcp": 6, "icmp": 1}.get(kind, 17)
        return build.ipv4(a, b, proto, body, ttl=9, ident=3)

    pkt = make(src, sport, dst, dport)
    proto = pkt[9]
    t = Tuple(proto, ip_bytes(new_ip), ip_bytes(new_ip), new_port, new_port)
    if mt == SRC:
        expected = make(new_ip, new_port, dst, dport)
    elif kind == "icmp":  # a destination rewrite of an echo sets the identifier too
        expected = make(src, new_port, new_ip, dport)
    else:
        expected = make(src, sport, new_ip, new_port)
    assert rewrite(pkt, t, mt) == expected


@given(st.sampled_from(["tcp", "udp"]), _ip, _ip, _port, _port, _ip, _port, _ip)
def test_icmp_translation_equals_rebuilding(kind: str, client: str, server: str, cport: int,
                                            sport: int, vip: str, vport: int,
                                            router: str) -> None:
    make = tcp if kind == "tcp" else udp
    quoted = make(client, cport, server, sport)
    err = unreachable(router, client, quoted)
    inner = Tuple(quoted[9], ip_bytes(client), ip_bytes(vip), cport, vport)
    outer = Tuple(1, ip_bytes(vip), ip_bytes(client), 0, 0)
    got = icmp_translate(err, inner, DST, outer, SRC)
    assert got == unreachable(vip, client, make(client, cport, vip, vport))
    assert ip_str(got[12:16]) == vip
