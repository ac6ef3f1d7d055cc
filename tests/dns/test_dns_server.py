"""One CoreDNS pod (kubernetes + forward + cache + loadbalance) and the upstream resolver."""

from __future__ import annotations

import random
from ipaddress import IPv4Address

import dns.flags
import dns.message
import dns.rcode
from hypothesis import given, settings
from hypothesis import strategies as st

import pktsim
from pktsim.dns import (
    ClusterZone,
    CoreDns,
    Forward,
    Reply,
    StubOptions,
    UpstreamResolver,
    candidates,
    encode,
)
from pktsim.dns.server import SECOND, CloseConn
from pktsim.dns.wire import render, reply_to, rr

CLUSTER = """
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {clusterIP: 10.96.45.12, selector: {app: web}, ports: [{name: http, port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: foo}
spec: {type: ExternalName, externalName: www.example.com}
"""
UPSTREAM = "203.0.113.53"


def coredns() -> CoreDns:
    zone = ClusterZone(pktsim.load(CLUSTER).model, rng=random.Random(0))
    return CoreDns(zone, [UPSTREAM], random.Random(1))


def upstream() -> UpstreamResolver:
    return UpstreamResolver({"www.example.com": IPv4Address("93.184.216.34")})


def wire(name: str, qtype: str = "A", qid: int = 77) -> bytes:
    return dns.message.make_query(name, qtype, use_edns=False, id=qid).to_wire()


def serve(forward: Forward) -> bytes:
    query = dns.message.from_wire(forward.wire)
    resolver = upstream()
    return resolver.encode(resolver.answer(query), query, tcp=forward.tcp)


def test_upstream_answers() -> None:
    resolver = upstream()
    for name, qtype, rcode, answer in (
            ("WWW.example.com.", "A", "NOERROR", ["WWW.example.com. 300 IN A 93.184.216.34"]),
            ("www.example.com.", "AAAA", "NOERROR", []),
            ("nosuch.example.", "A", "NXDOMAIN", [])):
        query = dns.message.from_wire(wire(name, qtype))
        reply = dns.message.from_wire(resolver.encode(resolver.answer(query), query, tcp=False))
        assert dns.rcode.to_text(reply.rcode()) == rcode
        assert [r.to_text() for r in reply.answer] == answer
        assert reply.flags & dns.flags.RA and reply.flags & dns.flags.RD
        assert not reply.flags & dns.flags.AA
    query = dns.message.from_wire(wire("nosuch.example."))
    reply = resolver.answer(query)
    assert reply.authority[0].to_text() == (". 86400 IN SOA a.root-servers.net. "
                                            "nstld.verisign-grs.com. 2026010100 1800 900 "
                                            "604800 86400")
    query = dns.message.from_wire(wire("www.example.com.", "AAAA"))
    assert resolver.answer(query).authority[0].to_text().startswith("example.com. 300 IN SOA")


def test_forward_new_id_same_question_then_client_id_back() -> None:
    core = coredns()
    (forward,) = core.on_query(0, "c", wire("www.example.com.", qid=77), False)
    assert isinstance(forward, Forward) and forward.upstream == UPSTREAM and not forward.tcp
    sent = dns.message.from_wire(forward.wire)
    assert sent.id != 77 and sent.question[0].name.to_text() == "www.example.com."
    assert sent.flags & dns.flags.RD
    (reply,) = core.on_upstream(1000, forward.conn, serve(forward))
    assert isinstance(reply, Reply) and reply.client == "c"
    message = dns.message.from_wire(reply.wire)
    assert message.id == 77
    assert [r.to_text() for r in message.answer] == ["www.example.com. 30 IN A 93.184.216.34"]


def test_cache_hit_has_aa_and_the_remaining_ttl() -> None:
    core = coredns()
    (forward,) = core.on_query(0, "c", wire("www.example.com."), False)
    core.on_upstream(0, forward.conn, serve(forward))
    (hit,) = core.on_query(12 * SECOND, "d", wire("WWW.Example.com.", qid=9), False)
    assert isinstance(hit, Reply)
    message = dns.message.from_wire(hit.wire)
    assert message.id == 9 and message.flags & dns.flags.AA and message.flags & dns.flags.RA
    assert message.answer[0].ttl == 18
    close, again = core.on_query(31 * SECOND, "e", wire("www.example.com."), False)
    assert isinstance(again, Forward)  # the entry expired: asked upstream again
    assert close == CloseConn(forward.conn) and again.conn != forward.conn  # idle > 10 s


def test_cluster_answers_are_not_cached() -> None:
    core = coredns()
    core.on_query(0, "c", wire("web.default.svc.cluster.local."), False)
    assert core.cache == {}


def test_external_name_chase_goes_upstream() -> None:
    core = coredns()
    (forward,) = core.on_query(0, "c", wire("foo.default.svc.cluster.local."), False)
    assert isinstance(forward, Forward)
    assert dns.message.from_wire(forward.wire).question[0].name.to_text() == "www.example.com."
    (reply,) = core.on_upstream(1000, forward.conn, serve(forward))
    assert isinstance(reply, Reply)
    message = dns.message.from_wire(reply.wire)
    assert [r.to_text() for r in message.answer] == [
        "foo.default.svc.cluster.local. 30 IN CNAME www.example.com.",
        "www.example.com. 30 IN A 93.184.216.34"]
    assert message.flags & dns.flags.AA


def test_forward_timeouts_end_in_servfail_after_6_seconds() -> None:
    core = coredns()
    (first,) = core.on_query(0, "c", wire("www.example.com."), False)
    assert core.next_deadline() == 2 * SECOND
    actions = core.on_deadline(2 * SECOND)
    assert isinstance(actions[0], CloseConn) and isinstance(actions[1], Forward)
    assert actions[1].conn != first.conn  # type: ignore[union-attr]
    core.on_deadline(4 * SECOND)
    actions = core.on_deadline(6 * SECOND)
    reply = actions[-1]
    assert isinstance(reply, Reply)
    message = dns.message.from_wire(reply.wire)
    assert dns.rcode.to_text(message.rcode()) == "SERVFAIL" and message.id == 77


def test_idle_upstream_sockets_are_reused() -> None:
    core = coredns()
    (one,) = core.on_query(0, "c", wire("www.example.com."), False)
    core.on_upstream(1000, one.conn, serve(one))  # type: ignore[union-attr]
    (two,) = core.on_query(2 * SECOND, "c", wire("nosuch.example."), False)
    assert isinstance(two, Forward) and two.conn == one.conn  # type: ignore[union-attr]
    core.on_upstream(2 * SECOND, two.conn, serve(two))
    close, three = core.on_query(20 * SECOND, "c", wire("other.example."), False)
    assert close == CloseConn(one.conn)  # type: ignore[union-attr]
    assert isinstance(three, Forward) and three.conn != one.conn  # expired after 10 s


def test_tcp_query_is_forwarded_over_tcp_and_answered_whole() -> None:
    core = coredns()
    (forward,) = core.on_query(0, "c", wire("www.example.com."), True)
    assert isinstance(forward, Forward) and forward.tcp


def test_encode_leaves_the_response_alone() -> None:
    query = dns.message.make_query("big.example.", "A", use_edns=False)
    response = reply_to(query, aa=True)
    response.answer = [rr("big.example.", 30, "A", f"10.0.{i // 250}.{i % 250}")
                       for i in range(60)]
    udp = encode(response, query, tcp=False)
    assert dns.message.from_wire(udp).flags & dns.flags.TC
    assert not response.flags & dns.flags.TC and response.edns == -1
    assert not dns.message.from_wire(encode(response, query, tcp=True)).flags & dns.flags.TC


@settings(max_examples=40)
@given(st.integers(min_value=0, max_value=80), st.booleans())
def test_udp_answers_fit_512_bytes(count: int, edns: bool) -> None:
    query = dns.message.make_query("svc.example.", "A", use_edns=0 if edns else False,
                                   payload=512)
    response = reply_to(query, aa=True)
    response.answer = [rr("svc.example.", 30, "A", f"10.1.0.{i}") for i in range(count)]
    data = encode(response, query, tcp=False)
    message = dns.message.from_wire(data)
    assert len(data) <= 512
    truncated = bool(message.flags & dns.flags.TC)
    assert truncated == (len(render(response, compress=True)) + (11 if edns else 0) > 512)
    assert sum(len(r) for r in message.answer) == count or truncated


names = st.lists(st.sampled_from(["web", "shop", "a-b", "x1"]), min_size=1, max_size=7)


@given(names, st.integers(min_value=1, max_value=15), st.booleans())
def test_candidate_properties(labels: list[str], ndots: int, trailing: bool) -> None:
    name = ".".join(labels) + ("." if trailing else "")
    search = ["default.svc.cluster.local", "svc.cluster.local", "cluster.local"]
    tried = candidates(name, search, StubOptions(ndots=ndots))
    absolute = name if trailing else name + "."
    if trailing:
        assert tried == [absolute]
        return
    assert tried.count(absolute) == 1 and len(tried) == 4
    assert (tried[0] == absolute) == (name.count(".") >= ndots)
    assert all(t.endswith(".") for t in tried)
