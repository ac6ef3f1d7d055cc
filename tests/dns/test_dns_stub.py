"""glibc's stub resolver (resolv.conf(5), glibc ``resolv/``) against CoreDNS and the upstream,
in memory."""

from __future__ import annotations

import random
from collections.abc import Callable
from ipaddress import IPv4Address

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest

import pktsim
from pktsim.dns import (
    ClusterZone,
    CoreDns,
    ResolvConf,
    SendTcp,
    SendUdp,
    StubOptions,
    StubResolver,
    UpstreamResolver,
    candidates,
    node_resolv_conf,
    resolv_conf,
)
from pktsim.dns.stub import SECOND, CloseUdp, Done
from pktsim.dns.wire import reply_to, rr
from pktsim.model.objects import Pod
from tests.helpers.dnslab import DnsLab, Packet

CLUSTER = """
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {clusterIP: 10.96.46.1, selector: {app: web}, ports: [{name: http, port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {clusterIP: 10.96.45.12, selector: {app: web}, ports: [{name: http, port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: big}
spec: {clusterIP: None, selector: {app: big}, ports: [{name: http, port: 80}]}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: big}
spec:
  serviceName: big
  replicas: 40
  selector: {matchLabels: {app: big}}
  template:
    metadata: {labels: {app: big}}
    spec: {containers: [{name: c, ports: [{containerPort: 80, name: http}]}]}
"""
DNS_IP, UPSTREAM_IP = "10.96.0.10", "203.0.113.53"
SEARCH = ["default.svc.cluster.local", "svc.cluster.local", "cluster.local"]


@pytest.fixture(scope="module")
def zone() -> ClusterZone:
    return ClusterZone(pktsim.load(CLUSTER).model, rng=random.Random(0))


def pod_conf(**dns_config: object) -> ResolvConf:
    pod = Pod("default", "client", [], dns_config=dict(dns_config))
    return resolv_conf(pod, node_resolv_conf(UPSTREAM_IP), DNS_IP, "cluster.local")


def lab(zone: ClusterZone, **kw: object) -> DnsLab:
    upstream = UpstreamResolver({"www.example.com": IPv4Address("93.184.216.34")})
    core = CoreDns(zone, [UPSTREAM_IP], random.Random(7))
    return DnsLab(core, upstream, **kw)  # type: ignore[arg-type]


def sent(log: list[Packet], src: str = "stub/") -> list[tuple[int, str, str, str]]:
    """(time, socket, qname, qtype) of every query the stub sent."""
    out = []
    for packet in log:
        message = packet.message
        if packet.src.startswith(src) and message is not None:
            question = message.question[0]
            out.append((packet.time, packet.src, question.name.to_text(),
                        dns.rdatatype.to_text(question.rdtype)))
    return out


# -- the names tried: ndots and the search list (resolv.conf(5), glibc res_query.c) -------
def test_candidates_with_ndots_5() -> None:
    opts = StubOptions(ndots=5)
    assert candidates("web", SEARCH, opts) == [
        "web.default.svc.cluster.local.", "web.svc.cluster.local.", "web.cluster.local.", "web."]
    assert candidates("web.shop", SEARCH, opts)[:2] == [
        "web.shop.default.svc.cluster.local.", "web.shop.svc.cluster.local."]
    assert candidates("www.example.com", SEARCH, opts) == [
        "www.example.com.default.svc.cluster.local.", "www.example.com.svc.cluster.local.",
        "www.example.com.cluster.local.", "www.example.com."]
    assert candidates("www.example.com.", SEARCH, opts) == ["www.example.com."]
    assert candidates("a.b.c.d.e.f", SEARCH, opts) == [
        "a.b.c.d.e.f.", "a.b.c.d.e.f.default.svc.cluster.local.",
        "a.b.c.d.e.f.svc.cluster.local.", "a.b.c.d.e.f.cluster.local."]


def test_candidates_glibc_defaults_and_options() -> None:
    assert candidates("www.example.com", SEARCH, StubOptions()) == [
        "www.example.com.", "www.example.com.default.svc.cluster.local.",
        "www.example.com.svc.cluster.local.", "www.example.com.cluster.local."]
    assert candidates("web", [".", "corp"], StubOptions()) == ["web.", "web.corp."]
    assert candidates("web", SEARCH[:1], StubOptions(no_tld_query=True)) == [
        "web.default.svc.cluster.local."]
    assert candidates("web", [], StubOptions()) == ["web."]


def test_options_from_resolv_conf() -> None:
    conf = ResolvConf(options=["ndots:20", "timeout:1", "attempts:9", "rotate", "edns0",
                               "single-request-reopen", "timeout:3x"])
    opts = StubOptions.from_conf(conf)
    assert (opts.ndots, opts.timeout, opts.attempts) == (15, 3, 5)
    assert opts.rotate and opts.edns0 and opts.single_request_reopen
    assert StubOptions.from_conf(pod_conf()) == StubOptions(ndots=5)


# -- lookups through CoreDNS --------------------------------------------------------------
def test_short_name_first_query_and_answer(zone: ClusterZone) -> None:
    # "kubernetes" -> kubernetes.default.svc.cluster.local. (the first search domain), A 10.96.0.1
    # with kubeadm's TTL 30 (cmd/kubeadm/app/phases/addons/dns/manifests.go)
    net = lab(zone)
    result = net.resolve(StubResolver(pod_conf(), "kubernetes", rng=random.Random(1)))
    assert result.ok and result.addresses == ["10.96.0.1"]
    assert result.fqdn == "kubernetes.default.svc.cluster.local."
    assert sent(net.log)[0][2:] == ("kubernetes.default.svc.cluster.local.", "A")
    a_answer = next(m for m in result.answers if m.question[0].rdtype == dns.rdatatype.A)
    assert a_answer.answer[0].ttl == 30
    replies = [p for p in net.log if p.src == DNS_IP]
    assert {p.dst for p in replies} == {"stub/1"}  # the reply comes from the VIP


def test_a_and_aaaa_leave_one_socket_back_to_back(zone: ClusterZone) -> None:
    net = lab(zone)
    result = net.resolve(StubResolver(pod_conf(), "web.shop", rng=random.Random(2)))
    assert result.ok and result.addresses == ["10.96.46.1"]
    assert [q[1:] for q in sent(net.log)] == [
        ("stub/1", "web.shop.default.svc.cluster.local.", "A"),
        ("stub/1", "web.shop.default.svc.cluster.local.", "AAAA"),
        ("stub/2", "web.shop.svc.cluster.local.", "A"),
        ("stub/2", "web.shop.svc.cluster.local.", "AAAA")]
    times = [q[0] for q in sent(net.log)]
    assert times[0] == times[1] and times[2] == times[3] > times[1]
    ids = [r.qid for r in result.queries]
    assert len(set(ids)) == 4


def test_external_name_goes_through_every_search_domain(zone: ClusterZone) -> None:
    # ndots:5 (resolv.conf(5)): 4 A queries (3 search + 1 absolute), each with its AAAA
    net = lab(zone)
    result = net.resolve(StubResolver(pod_conf(), "www.example.com", rng=random.Random(3)))
    assert result.ok and result.addresses == ["93.184.216.34"]
    queries = sent(net.log)
    assert [q[2] for q in queries if q[3] == "A"] == [
        "www.example.com.default.svc.cluster.local.", "www.example.com.svc.cluster.local.",
        "www.example.com.cluster.local.", "www.example.com."]
    assert len([q for q in queries if q[3] == "AAAA"]) == 4
    forwarded = sent(net.log, "coredns/")
    assert [q[2:] for q in forwarded] == [("www.example.com.", "A"),
                                         ("www.example.com.", "AAAA")]
    a_answer = next(m for m in result.answers if m.question[0].rdtype == dns.rdatatype.A)
    assert a_answer.answer[0].ttl == 30  # the cache plugin caps the upstream's 300
    assert a_answer.flags & dns.flags.RA and not a_answer.flags & dns.flags.AA


def test_trailing_dot_is_one_query_pair(zone: ClusterZone) -> None:
    net = lab(zone)
    result = net.resolve(StubResolver(pod_conf(), "www.example.com.", rng=random.Random(4)))
    assert result.ok
    assert [q[2:] for q in sent(net.log)] == [("www.example.com.", "A"),
                                              ("www.example.com.", "AAAA")]


def test_nonexistent_name_fails_with_host_not_found(zone: ClusterZone) -> None:
    net = lab(zone)
    result = net.resolve(StubResolver(pod_conf(), "nosuch", rng=random.Random(5)))
    assert result.status == "HOST_NOT_FOUND" and result.addresses == []
    assert len(sent(net.log)) == 8


def test_lookup_flow_sends_only_its_type(zone: ClusterZone) -> None:
    net = lab(zone)
    result = net.resolve(StubResolver(pod_conf(), "_http._tcp.web.shop.svc.cluster.local.",
                                      ("SRV",), rng=random.Random(6)))
    assert result.ok
    assert [q[2:] for q in sent(net.log)] == [("_http._tcp.web.shop.svc.cluster.local.", "SRV")]
    assert [rrset.to_text() for rrset in result.answers[0].answer] == [
        "_http._tcp.web.shop.svc.cluster.local. 30 IN SRV 0 100 80 web.shop.svc.cluster.local."]
    net = lab(zone)
    result = net.resolve(StubResolver(pod_conf(), "web", ("TXT",), rng=random.Random(6)))
    # NODATA keeps the search going; glibc reports NO_DATA in the end
    assert result.status == "NO_DATA"
    assert [q[2] for q in sent(net.log)] == [
        "web.default.svc.cluster.local.", "web.svc.cluster.local.", "web.cluster.local.", "web."]


# -- timeouts and attempts on the virtual clock -------------------------------------------
def test_timeout_and_attempts_single_server(zone: ClusterZone) -> None:
    net = lab(zone, drop=lambda packet: True)
    result = net.resolve(StubResolver(pod_conf(), "web", rng=random.Random(7)))
    assert result.status == "TRY_AGAIN"
    queries = sent(net.log)
    # the first search domain: 0 s and 5 s on the same socket (the retry reuses the port),
    # then a timeout ends the search loop and the name is tried as is: 10 s and 15 s
    assert [(t // SECOND, sock, name) for t, sock, name, qtype in queries if qtype == "A"] == [
        (0, "stub/1", "web.default.svc.cluster.local."),
        (5, "stub/1", "web.default.svc.cluster.local."),
        (10, "stub/2", "web."), (15, "stub/2", "web.")]
    assert result.elapsed == 20 * SECOND
    first, retry = result.queries[0], result.queries[2]
    assert first.qid == retry.qid  # the same query bytes are resent


def test_timeouts_with_three_servers(zone: ClusterZone) -> None:
    conf = ResolvConf(["192.0.2.1", "192.0.2.2", "192.0.2.3"], [], ["timeout:5", "attempts:2"])
    net = lab(zone, drop=lambda packet: True)
    result = net.resolve(StubResolver(conf, "www.example.com.", ("A",), rng=random.Random(8)))
    # send_dg: timeout << ns, divided by the server count for ns > 0: 5, 3, 6 seconds
    assert [(r.time // SECOND, r.server) for r in result.queries] == [
        (0, "192.0.2.1"), (5, "192.0.2.2"), (8, "192.0.2.3"),
        (14, "192.0.2.1"), (19, "192.0.2.2"), (22, "192.0.2.3")]
    assert result.elapsed == 28 * SECOND and result.status == "TRY_AGAIN"


def test_rotate_starts_each_name_at_the_next_server(zone: ClusterZone) -> None:
    conf = ResolvConf(["192.0.2.1", "192.0.2.2"], ["a.example", "b.example"],
                      ["rotate", "attempts:1", "timeout:1"])
    net = lab(zone, drop=lambda packet: True)
    result = net.resolve(StubResolver(conf, "web", ("A",), rng=random.Random(9)))
    # a timeout ends the search loop: web.a.example., then web. (each to both servers)
    assert [r.qname for r in result.queries] == ["web.a.example."] * 2 + ["web."] * 2
    assert result.queries[0].server != result.queries[2].server


# -- the 5-second delay of kubernetes/kubernetes#56903 ------------------------------------
def conntrack_race(log: list[Packet]) -> Callable[[Packet], bool]:
    """Drop a datagram sent at the same instant from the same socket (insert_failed)."""
    def drop(packet: Packet) -> bool:
        return packet.src.startswith("stub/") and any(
            p is not packet and p.src == packet.src and p.time == packet.time
            and p.dst == packet.dst for p in log[:-1])
    return drop


def test_lost_aaaa_costs_five_seconds_then_single_request(zone: ClusterZone) -> None:
    net = lab(zone)
    net.drop = conntrack_race(net.log)
    stub = StubResolver(pod_conf(), "web", rng=random.Random(10))
    result = net.resolve(stub)
    assert result.ok and result.addresses == ["10.96.45.12"]
    assert 5 * SECOND <= result.elapsed < 5 * SECOND + SECOND // 100
    # after the timeout glibc resends A, waits for it, then sends AAAA, on the same socket
    assert [(t // SECOND, sock, qtype) for t, sock, _, qtype in sent(net.log)] == [
        (0, "stub/1", "A"), (0, "stub/1", "AAAA"), (5, "stub/1", "A"), (5, "stub/1", "AAAA")]
    assert stub.single_request  # sticky, as glibc ORs RES_SNGLKUP into _res.options


@pytest.mark.parametrize("option", ["single-request", "single-request-reopen"])
def test_single_request_options_avoid_the_race(zone: ClusterZone, option: str) -> None:
    net = lab(zone)
    net.drop = conntrack_race(net.log)
    conf = pod_conf(options=[{"name": option}])
    result = net.resolve(StubResolver(conf, "web", rng=random.Random(11)))
    assert result.ok and result.elapsed < SECOND // 100
    socks = [sock for _, sock, _, _ in sent(net.log)]
    assert socks == (["stub/1", "stub/1"] if option == "single-request"
                     else ["stub/1", "stub/2"])


# -- TC=1 -> TCP --------------------------------------------------------------------------
def test_truncated_answer_is_retried_over_tcp(zone: ClusterZone) -> None:
    net = lab(zone)
    result = net.resolve(StubResolver(pod_conf(), "big", rng=random.Random(12)))
    assert result.ok and len(result.addresses) == 40
    udp_reply = next(p for p in net.log if p.src == DNS_IP and p.transport == "udp"
                     and p.message is not None
                     and p.message.question[0].rdtype == dns.rdatatype.A)
    assert len(udp_reply.wire) <= 512 and udp_reply.message.flags & dns.flags.TC
    transports = [(r.transport, r.qtype) for r in result.queries]
    assert transports == [("udp", "A"), ("udp", "AAAA"), ("tcp", "A"), ("tcp", "AAAA")]
    assert result.queries[0].qid == result.queries[2].qid  # same query, now over TCP
    assert result.queries[2].handle == result.queries[3].handle  # one connection


def test_tcp_write_holds_both_queries(zone: ClusterZone) -> None:
    stub = StubResolver(pod_conf(), "big.default.svc.cluster.local.", rng=random.Random(13))
    first = stub.start(0)
    assert [type(a).__name__ for a in first] == ["SendUdp", "SendUdp"]
    a, aaaa = first
    assert isinstance(a, SendUdp) and isinstance(aaaa, SendUdp)
    truncated = reply_to(dns.message.from_wire(a.wire), aa=True)
    truncated.flags |= dns.flags.TC
    actions = stub.on_udp(1000, a.sock, DNS_IP, truncated.to_wire())
    assert isinstance(actions[0], CloseUdp)
    tcp = actions[-1]
    assert isinstance(tcp, SendTcp)
    assert tcp.data == len(a.wire).to_bytes(2, "big") + a.wire + \
        len(aaaa.wire).to_bytes(2, "big") + aaaa.wire


def test_edns0_option_avoids_truncation(zone: ClusterZone) -> None:
    net = lab(zone)
    conf = pod_conf(options=[{"name": "edns0"}])
    result = net.resolve(StubResolver(conf, "big", rng=random.Random(14)))
    assert result.ok and len(result.addresses) == 40
    assert {r.transport for r in result.queries} == {"udp"}
    assert dns.message.from_wire(net.log[0].wire).payload == 1200


# -- answers glibc does not accept ---------------------------------------------------------
def answer(query_wire: bytes, rcode: dns.rcode.Rcode, *records: str) -> bytes:
    query = dns.message.from_wire(query_wire)
    response = reply_to(query, rcode=rcode, aa=True)
    response.answer = [rr(query.question[0].name, 30, "A", r) for r in records]
    return response.to_wire()


def test_servfail_moves_to_the_next_server_and_the_next_domain() -> None:
    conf = ResolvConf(["192.0.2.1", "192.0.2.2"], ["a.example", "b.example"],
                      ["attempts:1"])
    stub = StubResolver(conf, "web", ("A",), rng=random.Random(15))
    actions = stub.start(0)
    log = []
    while actions and not isinstance(actions[-1], Done):
        send = next(a for a in actions if isinstance(a, SendUdp))
        name = dns.message.from_wire(send.wire).question[0].name.to_text()
        log.append((send.server, name))
        ok = name == "web.b.example." and send.server == "192.0.2.2"
        wire = answer(send.wire, dns.rcode.NOERROR if ok else dns.rcode.SERVFAIL,
                      *(["192.0.2.80"] if ok else []))
        actions = stub.on_udp(1, send.sock, send.server, wire)
    assert log == [("192.0.2.1", "web.a.example."), ("192.0.2.2", "web.a.example."),
                   ("192.0.2.1", "web.b.example."), ("192.0.2.2", "web.b.example.")]
    assert stub.result.ok and stub.result.addresses == ["192.0.2.80"]


def test_port_unreachable_everywhere_ends_the_lookup() -> None:
    conf = ResolvConf(["192.0.2.1"], ["a.example", "b.example"], [])
    stub = StubResolver(conf, "web", rng=random.Random(16))
    actions = stub.start(0)
    send = actions[0]
    assert isinstance(send, SendUdp)
    actions = stub.on_error(1000, send.sock)  # attempt 1
    send = next(a for a in actions if isinstance(a, SendUdp))
    actions = stub.on_error(2000, send.sock)  # attempt 2
    assert isinstance(actions[-1], Done)
    assert stub.result.status == "TRY_AGAIN" and len(stub.result.queries) == 4


def test_spurious_and_late_answers_are_ignored() -> None:
    conf = ResolvConf(["192.0.2.1"], [], [])
    stub = StubResolver(conf, "web.example.", ("A",), rng=random.Random(17))
    (send,) = stub.start(0)
    assert isinstance(send, SendUdp)
    wrong_id = bytearray(answer(send.wire, dns.rcode.NOERROR, "192.0.2.9"))
    wrong_id[0] ^= 0xFF
    assert stub.on_udp(1, send.sock, "192.0.2.1", bytes(wrong_id)) == []
    assert stub.on_udp(1, send.sock, "192.0.2.66", answer(send.wire, 0, "192.0.2.9")) == []
    actions = stub.on_udp(2, send.sock, "192.0.2.1",
                          answer(send.wire, dns.rcode.NOERROR, "192.0.2.9"))
    assert isinstance(actions[-1], Done) and stub.result.addresses == ["192.0.2.9"]
    assert stub.on_udp(3, send.sock, "192.0.2.1", answer(send.wire, 0, "192.0.2.9")) == []


def test_late_answer_waits_in_its_socket_for_the_next_try() -> None:
    conf = ResolvConf(["192.0.2.1", "192.0.2.2"], [], [])
    stub = StubResolver(conf, "web.example.", ("A",), rng=random.Random(18))
    (first,) = stub.start(0)
    assert isinstance(first, SendUdp) and first.server == "192.0.2.1"
    (second,) = stub.on_deadline(5 * SECOND)
    assert isinstance(second, SendUdp) and second.server == "192.0.2.2"
    late = answer(first.wire, dns.rcode.NOERROR, "192.0.2.9")
    assert stub.on_udp(6 * SECOND, first.sock, "192.0.2.1", late) == []  # not read yet
    actions = stub.on_deadline(10 * SECOND)  # try 2, server 1: resend, then read at once
    resend = actions[0]
    assert isinstance(resend, SendUdp) and resend.sock == first.sock
    assert resend.wire == first.wire
    assert isinstance(actions[-1], Done) and stub.result.addresses == ["192.0.2.9"]
    assert stub.result.elapsed == 10 * SECOND


def test_exchange_holds_no_reference_back_to_the_resolver() -> None:
    """The exchange shares a Session, not its resolver: with the cycle collector off, the
    resolver is freed by reference counting as soon as its last reference goes."""
    import gc
    import weakref

    gc.disable()
    try:
        stub = StubResolver(ResolvConf(nameservers=["10.96.0.10"]), "web", rng=random.Random(3))
        stub.start(0)
        assert stub.exchange is not None and stub.exchange.session is stub.session
        gone = weakref.ref(stub)
        del stub
        assert gone() is None
    finally:
        gc.enable()


def test_the_lab_is_not_shipped() -> None:
    """DnsLab keeps its own clock; the package holds only sans-IO pieces."""
    import importlib.util

    import pktsim.dns

    assert importlib.util.find_spec("pktsim.dns.lab") is None
    assert not hasattr(pktsim.dns, "DnsLab")
