"""glibc's stub resolver as a sans-IO state machine (resolv.conf(5), glibc ``resolv/``).

Theory of operation
-------------------
``StubResolver`` runs one lookup: ``getaddrinfo`` (qtypes A and AAAA, glibc's
``T_QUERY_A_AND_AAAA``) or a single-type lookup (``res_search``, what ``host`` does: the
``lookup`` flows of docs/scenario.md §4).  ``search.search_plan`` picks the names; for each one
``exchange.Exchange`` is ``__res_context_send`` with ``send_dg``/``send_vc`` (glibc
``resolv/res_send.c``):

* every query has a random 16-bit id, RD set, no EDNS unless ``options edns0`` (then an OPT
  with a 1200-byte buffer): an answer over 512 bytes comes back truncated;
* both queries leave **one UDP socket back to back** (``sendmmsg``), so they share the
  5-tuple (the conntrack race of kubernetes/kubernetes#56903); ``single-request`` sends the
  AAAA only once the A is answered, ``single-request-reopen`` from a new socket;
* a server gets ``timeout << ns`` seconds (divided by the server count for ns > 0): the
  socket is *kept* for the next attempt, so a retry reuses the source port; servers are tried
  in order (``rotate``: from a rotating offset), ``attempts`` times;
* if one answer came and the other did not before the deadline, glibc switches to
  single-request mode for good and resends at once on the same socket; if that happens again,
  to single-request-reopen (new socket);
* SERVFAIL/NOTIMP/REFUSED, and a NOERROR with no records and neither AA nor RA, move on to the
  next server (once the other answer of the pair is in);
* TC=1 on either answer: both queries again, over TCP to the same server, in one write (two
  length-prefixed messages), same ids; one TCP attempt per remaining server;
* sockets are closed when the exchange ends (no ``RES_STAYOPEN``): the next name uses a new
  socket, hence a new source port.

The machine talks through actions: ``SendUdp(sock, server, wire)`` (the same ``sock`` means
the same socket and source port), ``CloseUdp(sock)``, ``SendTcp(conn, server, data)`` (connect
if ``conn`` is new, then write), ``CloseTcp(conn)``, and finally ``Done(result)``.  Events come
back as ``on_udp``, ``on_tcp`` (stream bytes), ``on_error`` (ICMP unreachable or a failed TCP
connection) and ``on_deadline``; time is in nanoseconds.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pktsim.dns.exchange import (
    SECOND,
    Action,
    CloseTcp,
    CloseUdp,
    Done,
    Exchange,
    QueryRecord,
    SendTcp,
    SendUdp,
    Session,
)
from pktsim.dns.resolv import ResolvConf
from pktsim.dns.search import OK, StubOptions, search_plan
from pktsim.dns.wire import parse

if TYPE_CHECKING:  # the modules; at run time each loads on first use
    import dns.message
    import dns.rdatatype
else:
    from pktsim.dns.dnspython import dns

__all__ = ["SECOND", "Action", "CloseTcp", "CloseUdp", "Done", "QueryRecord", "Resolution",
           "SendTcp", "SendUdp", "StubResolver"]


@dataclass(slots=True)
class Resolution:
    """What the lookup ended with."""

    name: str
    qtypes: tuple[str, ...]
    status: str = "pending"  # OK or the h_errno: HOST_NOT_FOUND, NO_DATA, TRY_AGAIN, ...
    fqdn: str = ""  # the name that answered (or was tried last)
    answers: list[dns.message.Message] = field(default_factory=list)
    queries: list[QueryRecord] = field(default_factory=list)
    started: int = 0
    finished: int = 0

    @property
    def ok(self) -> bool:
        return self.status == OK

    @property
    def addresses(self) -> list[str]:
        """A then AAAA addresses of the answers (what getaddrinfo returns, unsorted)."""
        found: dict[str, None] = {}
        for kind in (dns.rdatatype.A, dns.rdatatype.AAAA):
            for message in self.answers:
                for rrset in message.answer:
                    if rrset.rdtype == kind:
                        found.update((r.address, None) for r in rrset)
        return list(found)

    @property
    def elapsed(self) -> int:
        return self.finished - self.started


class StubResolver:
    def __init__(self, conf: ResolvConf, name: str, qtypes: Sequence[str] = ("A", "AAAA"), *,
                 rng: random.Random) -> None:
        self.conf = conf
        self.options = options = StubOptions.from_conf(conf)
        # MAXNS; no nameserver line: the local host (res_init's INADDR_LOOPBACK default)
        self.servers = list(conf.nameservers[:3]) or ["127.0.0.1"]
        self.rng = rng
        self.qtypes = tuple(qtypes)
        self.result = Resolution(name, self.qtypes)
        self.plan = search_plan(name, conf.searches, options)
        # what the exchanges share; they get this, not the resolver, so no cycle forms
        self.session = Session(options, self.servers,
                               options.single_request or options.single_request_reopen,
                               options.single_request_reopen, self.result.queries)
        self.offset = rng.randrange(len(self.servers)) if options.rotate and \
            len(self.servers) > 1 else 0
        self.exchange: Exchange | None = None

    @property
    def done(self) -> bool:
        return self.exchange is None and self.result.status != "pending"

    @property
    def single_request(self) -> bool:
        """Whether the queries now go one at a time (sticky once a timeout forced it)."""
        return self.session.single_request

    @property
    def single_request_reopen(self) -> bool:
        return self.session.single_request_reopen

    # -- driving --------------------------------------------------------------------------
    def start(self, now: int) -> list[Action]:
        self.result.started = now
        return self._next_name(now, next(self.plan))

    def next_deadline(self) -> int | None:
        return self.exchange.deadline if self.exchange is not None else None

    def on_deadline(self, now: int) -> list[Action]:
        if self.exchange is None or self.exchange.deadline is None or \
                now < self.exchange.deadline:
            return []
        return self._after(now, self.exchange.on_timeout(now))

    def on_udp(self, now: int, sock: int, server: str, wire: bytes) -> list[Action]:
        if self.exchange is None:
            return []
        return self._after(now, self.exchange.on_udp(now, sock, server, wire))

    def on_tcp(self, now: int, conn: int, data: bytes) -> list[Action]:
        if self.exchange is None:
            return []
        return self._after(now, self.exchange.on_tcp(now, conn, data))

    def on_error(self, now: int, handle: int, tcp: bool = False) -> list[Action]:
        """ICMP unreachable on UDP socket ``handle``, or TCP connection ``handle`` failed."""
        if self.exchange is None:
            return []
        return self._after(now, self.exchange.on_error(now, handle, tcp))

    # -- between names --------------------------------------------------------------------
    def _next_name(self, now: int, fqdn: str) -> list[Action]:
        self.result.fqdn = fqdn
        offset = self.offset
        if self.options.rotate and len(self.servers) > 1:
            self.offset = (self.offset + 1) % len(self.servers)
        self.exchange = Exchange(self.session, fqdn, self.qtypes, offset, self.rng)
        return self.exchange.start(now)

    def _after(self, now: int, actions: list[Action]) -> list[Action]:
        exchange = self.exchange
        if exchange is None or exchange.outcome is None:
            return actions
        self.exchange = None
        if exchange.outcome == OK:
            self.result.answers = [m for m in (parse(w) for w in exchange.answers if w)
                                   if m is not None]
        try:
            fqdn = self.plan.send(exchange.outcome)
        except StopIteration as stop:
            return actions + self._finish(now, str(stop.value))
        return actions + self._next_name(now, fqdn)

    def _finish(self, now: int, status: str) -> list[Action]:
        self.result.status = status
        self.result.finished = now
        return [Done(self.result)]
