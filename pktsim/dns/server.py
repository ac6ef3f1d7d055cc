"""One CoreDNS pod with kubeadm's Corefile, as a sans-IO state machine.

Theory of operation
-------------------
A query goes through the plugins in CoreDNS's compiled order (``plugin.cfg``):
``loadbalance`` -> ``cache`` -> ``kubernetes`` -> ``forward``, and the server's
``ScrubWriter`` packs the reply (``wire.encode``).

* ``kubernetes`` (``ClusterZone``) answers ``cluster.local``, ``in-addr.arpa`` and
  ``ip6.arpa``; anything else, and reverse names it does not know, go to ``forward``.
* ``forward . /etc/resolv.conf``: the client's query, re-sent with a new random id over the
  client's transport to an upstream (``policy random``); the reply gets the client's id back
  (coredns ``plugin/pkg/proxy/connect.go``).  A read times out after 2 s; the plugin keeps
  trying, for 5 s in all, then answers SERVFAIL.  Idle upstream sockets are reused for 10 s
  (``expire``), oldest first.
* an ExternalName whose target is outside the zone: CoreDNS looks the target up through its
  own chain (``upstream.Lookup``) -- the cache, then ``forward`` -- and appends the answer.
* ``cache 30 { disable success cluster.local; disable denial cluster.local }``: forwarded
  answers (and reverse ones) are kept ``clamp(min TTL, 5, 30)`` seconds; every reply, cached
  or not, has all its TTLs set to that value (``cache.go`` "Apply capped TTL to this reply"),
  so an upstream TTL of 300 reaches pods as 30, and so does the 28800 of ``dns-version``.  A
  hit is answered with AA set and the remaining TTL.
* ``loadbalance`` shuffles the final answer once.

Actions: ``Reply(client, wire, tcp)``, ``Forward(conn, upstream, wire, tcp)`` (a new ``conn``
is a new socket/connection), ``CloseConn(conn)``.  Events: ``on_query``, ``on_upstream``,
``on_deadline``.  Not modelled: ``loop`` (a HINFO probe at start-up), forward health checks,
cache prefetch and serve-stale.
"""

from __future__ import annotations

import random
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pktsim.dns.wire import encode, flatten, load_balance, parse, reply_to
from pktsim.dns.zone import ClusterZone

if TYPE_CHECKING:  # the modules; at run time each loads on first use
    import dns.flags
    import dns.message
    import dns.name
    import dns.rcode
    import dns.rdatatype
    import dns.rrset
else:
    from pktsim.dns.dnspython import dns

SECOND = 1_000_000_000
READ_TIMEOUT = 2 * SECOND
FORWARD_TIMEOUT = 5 * SECOND
CONN_EXPIRE = 10 * SECOND
MIN_TTL = 5


@dataclass(frozen=True, slots=True)
class Reply:
    client: Hashable
    wire: bytes
    tcp: bool


@dataclass(frozen=True, slots=True)
class Forward:
    conn: int
    upstream: str
    wire: bytes
    tcp: bool


@dataclass(frozen=True, slots=True)
class CloseConn:
    conn: int


ServerAction = Reply | Forward | CloseConn


@dataclass(slots=True)
class _Pending:
    client: Hashable
    query: dns.message.Message  # the client's
    tcp: bool
    ask: dns.message.Message  # what goes upstream (the query, or the CNAME target's)
    chase: dns.message.Message | None = None  # the kubernetes answer waiting on ``ask``
    started: int = 0
    fid: int = 0
    conn: int = 0
    upstream: int = 0
    deadline: int = 0


@dataclass(slots=True)
class _Cached:
    stored: int
    ttl: int
    message: dns.message.Message


@dataclass(slots=True)
class CoreDns:
    zone: ClusterZone
    upstreams: Sequence[str]
    rng: random.Random
    max_ttl: int = 30
    except_zones: tuple[str, ...] = ("cluster.local.",)
    pending: list[_Pending] = field(default_factory=list)
    cache: dict[tuple[str, int, bool], _Cached] = field(default_factory=dict)
    idle: dict[tuple[str, bool], list[tuple[int, int]]] = field(default_factory=dict)
    next_conn: int = 1

    # -- events ---------------------------------------------------------------------------
    def on_query(self, now: int, client: Hashable, wire: bytes, tcp: bool) -> list[ServerAction]:
        query = parse(wire)
        if query is None or query.flags & dns.flags.QR or not query.question:
            return []
        hit = self._cache_get(now, query)
        if hit is not None:
            return [self._write(client, query, tcp, hit)]
        answer = self.zone.answer(query, shuffle=False)
        if answer is None:
            return self._forward(now, _Pending(client, query, tcp, query, started=now))
        target = self.zone.external_target(answer)
        if target is None:
            self._cache_put(now, query, answer)  # reverse answers are cached, cluster.local not
            return [self._finish(now, client, query, tcp, answer)]
        ask = dns.message.from_wire(query.to_wire())
        ask.question = [dns.rrset.RRset(target, query.question[0].rdclass,
                                        query.question[0].rdtype)]
        inner = self._cache_get(now, ask)
        if inner is not None:
            full = self.zone.complete_chase(answer, inner, shuffle=False)
            return [self._finish(now, client, query, tcp, full)]
        return self._forward(now, _Pending(client, query, tcp, ask, answer, started=now))

    def on_upstream(self, now: int, conn: int, wire: bytes) -> list[ServerAction]:
        reply = parse(wire)
        pend = next((p for p in self.pending if p.conn == conn), None)
        if reply is None or pend is None or reply.id != pend.fid:
            return []  # "drop out-of-order responses"
        self.pending.remove(pend)
        self._yield_conn(now, pend, conn)
        reply.id = pend.ask.id
        if not _matches(pend.ask, reply):
            formerr = reply_to(pend.query, rcode=dns.rcode.FORMERR)
            return [Reply(pend.client, encode(formerr, pend.query, tcp=pend.tcp), pend.tcp)]
        self._cache_put(now, pend.ask, reply)
        if pend.chase is None:
            return [self._finish(now, pend.client, pend.query, pend.tcp, reply)]
        full = self.zone.complete_chase(pend.chase, reply, shuffle=False)
        return [self._finish(now, pend.client, pend.query, pend.tcp, full)]

    def next_deadline(self) -> int | None:
        return min((p.deadline for p in self.pending), default=None)

    def on_deadline(self, now: int) -> list[ServerAction]:
        actions: list[ServerAction] = []
        for pend in [p for p in self.pending if p.deadline <= now]:
            self.pending.remove(pend)
            actions.append(CloseConn(pend.conn))  # a timed-out connection is not given back
            if now - pend.started < FORWARD_TIMEOUT:
                pend.upstream += 1
                actions += self._forward(now, pend)
                continue
            failed = reply_to(pend.query, rcode=dns.rcode.SERVFAIL)
            actions.append(Reply(pend.client, encode(failed, pend.query, tcp=pend.tcp),
                                 pend.tcp))
        return actions

    # -- forward --------------------------------------------------------------------------
    def _forward(self, now: int, pend: _Pending) -> list[ServerAction]:
        if not self.upstreams:
            failed = reply_to(pend.query, rcode=dns.rcode.SERVFAIL)
            return [Reply(pend.client, encode(failed, pend.query, tcp=pend.tcp), pend.tcp)]
        if pend.upstream == 0:
            pend.upstream = self.rng.randrange(len(self.upstreams)) + 1  # policy random
        upstream = self.upstreams[(pend.upstream - 1) % len(self.upstreams)]
        pend.fid = self.rng.getrandbits(16)
        actions: list[ServerAction] = []
        pend.conn = self._dial(now, upstream, pend.tcp, actions)
        pend.deadline = now + READ_TIMEOUT
        self.pending.append(pend)
        wire = pend.fid.to_bytes(2, "big") + pend.ask.to_wire()[2:]
        return [*actions, Forward(pend.conn, upstream, wire, pend.tcp)]

    def _dial(self, now: int, upstream: str, tcp: bool, actions: list[ServerAction]) -> int:
        """``Transport.Dial``: the oldest idle connection, closing the expired ones."""
        idle = self.idle.setdefault((upstream, tcp), [])
        while idle:
            conn, used = idle.pop(0)
            if now - used <= CONN_EXPIRE:
                return conn
            actions.append(CloseConn(conn))
        conn, self.next_conn = self.next_conn, self.next_conn + 1
        return conn

    def _yield_conn(self, now: int, pend: _Pending, conn: int) -> None:
        upstream = self.upstreams[(pend.upstream - 1) % len(self.upstreams)]
        self.idle.setdefault((upstream, pend.tcp), []).append((conn, now))

    # -- cache ----------------------------------------------------------------------------
    def _excepted(self, name: dns.name.Name) -> bool:
        return any(name.is_subdomain(dns.name.from_text(z)) for z in self.except_zones)

    def _duration(self, message: dns.message.Message) -> tuple[str, int]:
        kind = _typify(message)
        rrs = [r for section in (message.answer, message.authority, message.additional)
               for r in section]
        if kind in ("other", "servfail") or not rrs:
            return kind, MIN_TTL
        qtype = message.question[0].rdtype if message.question else 0
        if qtype in (dns.rdatatype.A, dns.rdatatype.AAAA) and not message.authority and \
                not any(r.rdtype == qtype for r in message.answer):
            return kind, MIN_TTL  # "answer type doesnt match question and no SOA"
        return kind, min(max(min(r.ttl for r in rrs), MIN_TTL), self.max_ttl)

    def _cache_put(self, now: int, ask: dns.message.Message,
                   reply: dns.message.Message) -> None:
        kind, ttl = self._duration(reply)
        if reply.flags & dns.flags.TC or kind == "other" or self._excepted(ask.question[0].name):
            return
        key = _key(ask)
        self.cache[key] = _Cached(now, ttl, reply)

    def _cache_get(self, now: int, query: dns.message.Message) -> dns.message.Message | None:
        item = self.cache.get(_key(query))
        if item is None:
            return None
        left = item.ttl - (now - item.stored) // SECOND
        if left <= 0:
            del self.cache[_key(query)]
            return None
        hit = reply_to(query, aa=True, ra=bool(item.message.flags & dns.flags.RA))
        hit.set_rcode(item.message.rcode())
        hit.answer = _with_ttl(item.message.answer, left)
        hit.authority = _with_ttl(item.message.authority, left)
        hit.additional = _with_ttl(item.message.additional, left)
        return hit

    # -- the reply ------------------------------------------------------------------------
    def _finish(self, now: int, client: Hashable, query: dns.message.Message, tcp: bool,
                response: dns.message.Message) -> Reply:
        _, ttl = self._duration(response)  # the cache plugin caps every TTL
        response.answer = _with_ttl(response.answer, ttl)
        response.authority = _with_ttl(response.authority, ttl)
        response.additional = _with_ttl(response.additional, ttl)
        return self._write(client, query, tcp, response)

    def _write(self, client: Hashable, query: dns.message.Message, tcp: bool,
               response: dns.message.Message) -> Reply:
        if not query.ednsflags & dns.flags.DO and not query.flags & dns.flags.AD:
            response.flags &= ~dns.flags.AD
        load_balance(response, self.rng)
        return Reply(client, encode(response, query, tcp=tcp), tcp)


def _key(query: dns.message.Message) -> tuple[str, int, bool]:
    question = query.question[0]
    return question.name.to_text().lower(), int(question.rdtype), \
        bool(query.ednsflags & dns.flags.DO)


def _matches(ask: dns.message.Message, reply: dns.message.Message) -> bool:
    """``state.Match``: a response to the same name and type."""
    return bool(reply.flags & dns.flags.QR) and len(reply.question) == 1 and \
        reply.question[0].name == ask.question[0].name and \
        reply.question[0].rdtype == ask.question[0].rdtype


def _typify(message: dns.message.Message) -> str:
    """coredns ``response.Typify`` (the parts that matter without DNSSEC)."""
    rcode = message.rcode()
    if message.answer and rcode == dns.rcode.NOERROR:
        return "noerror"
    soa = any(r.rdtype == dns.rdatatype.SOA for r in message.authority)
    if soa and rcode in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
        return "nodata" if rcode == dns.rcode.NOERROR else "nxdomain"
    if rcode in (dns.rcode.SERVFAIL, dns.rcode.NOTIMP):
        return "servfail"
    return "noerror" if rcode == dns.rcode.NOERROR else "other"


def _with_ttl(rrsets: list[dns.rrset.RRset], ttl: int) -> list[dns.rrset.RRset]:
    """One-RR copies (the unit ``loadbalance`` shuffles) with the TTL set."""
    out = flatten(rrsets)
    for single in out:
        single.ttl = ttl
    return out
