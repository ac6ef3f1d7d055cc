"""One name's query/answer exchange: glibc's ``__res_context_send`` (``resolv/res_send.c``).

Theory of operation
-------------------
``Exchange`` sends the one or two queries for one candidate name and ends with an
``outcome`` (``search.OK``, ``HOST_NOT_FOUND``, ``NO_DATA``, ``SERVFAIL``, ``TIMEOUT``,
``NO_RECOVERY``, ``ECONNREFUSED``) and the answers glibc would hand to its caller.  It follows
``send_dg``/``send_vc`` step by step -- see ``pktsim.dns.stub`` for the behaviour and the
comments below for the lines of glibc each step mirrors.  Answers are stored in arrival order
(the first to arrive fills glibc's first buffer), as glibc does.

What outlives one exchange (glibc's ``_res``: the servers, the options, the sticky
single-request flags, the socket numbers, the log of queries) is a ``Session`` the resolver
hands in; the exchange holds no reference to the resolver, so the two form no cycle.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pktsim.dns.search import (
    ECONNREFUSED,
    NOERROR,
    NOTIMP,
    REFUSED,
    SERVFAIL,
    SERVFAIL_RCODE,
    TIMEOUT,
    Header,
    StubOptions,
    classify,
)
from pktsim.dns.wire import query_message

if TYPE_CHECKING:  # the modules; at run time each loads on first use
    import dns.rdatatype
else:
    from pktsim.dns.dnspython import dns

SECOND = 1_000_000_000
EDNS_BUFFER = 1200  # glibc RESOLV_EDNS_BUFFER_SIZE
PACKETSZ = 512


@dataclass(frozen=True, slots=True)
class SendUdp:
    sock: int  # the same number: the same socket, hence the same source port
    server: str
    wire: bytes
    qid: int


@dataclass(frozen=True, slots=True)
class CloseUdp:
    sock: int


@dataclass(frozen=True, slots=True)
class SendTcp:
    conn: int  # a new number: connect first
    server: str
    data: bytes  # length-prefixed messages, written at once


@dataclass(frozen=True, slots=True)
class CloseTcp:
    conn: int


@dataclass(frozen=True, slots=True)
class Done:
    result: object  # stub.Resolution


Action = SendUdp | CloseUdp | SendTcp | CloseTcp | Done


@dataclass(frozen=True, slots=True)
class QueryRecord:
    time: int
    qname: str
    qtype: str
    qid: int
    server: str
    transport: str  # udp | tcp
    handle: int  # sock or conn


@dataclass(slots=True)
class Session:
    """The resolver state every exchange of one lookup shares (glibc's ``_res``)."""

    options: StubOptions
    servers: list[str]
    # sticky across names, as glibc ORs them into _res.options
    single_request: bool = False
    single_request_reopen: bool = False
    queries: list[QueryRecord] = field(default_factory=list)  # every query sent, in order
    next_sock: int = 1

    def new_sock(self) -> int:
        """A fresh socket (or connection) number: a new number is a new source port."""
        sock, self.next_sock = self.next_sock, self.next_sock + 1
        return sock


class Exchange:
    def __init__(self, session: Session, fqdn: str, qtypes: Sequence[str], offset: int,
                 rng: random.Random) -> None:
        opts = session.options
        self.session, self.fqdn, self.offset = session, fqdn, offset
        self.queries: list[tuple[int, str, bytes]] = []
        for qtype in qtypes:
            qid = rng.getrandbits(16)
            message = query_message(fqdn, dns.rdatatype.from_text(qtype), qid,
                                    edns_payload=EDNS_BUFFER if opts.edns0 else None,
                                    ad=opts.trust_ad)
            self.queries.append((qid, qtype, message.to_wire()))
        self.two = len(self.queries) == 2
        self.nscount = len(session.servers)
        self.tries = 0
        self.shift = 0
        self.v_circuit = opts.use_vc or any(len(w) > PACKETSZ for _, _, w in self.queries)
        self.gotsomewhere = False
        self.save_gotsomewhere = False
        self.socks: dict[int, int] = {}  # server index -> UDP socket (EXT(statp).nssocks)
        self.queued: dict[int, list[tuple[str, bytes]]] = {}  # datagrams nobody read yet
        self.conn: int | None = None
        self.tcp_buf = bytearray()
        self.outcome: str | None = None
        self.answers: list[bytes] = []
        self.deadline: int | None = None
        self.slot0_rcode = -1  # rcode of the answer in glibc's first buffer
        self.ns = 0
        self.seconds = 1
        self.nwritten = 0
        self.recv = [False, not self.two]
        self.slots: list[bytes] = [b"", b""]
        self.resplen = 0
        self.tcp_errno = TIMEOUT

    # -- res_send's loop over tries and servers -------------------------------------------
    def start(self, now: int) -> list[Action]:
        return self._same_ns(now)

    def _same_ns(self, now: int) -> list[Action]:
        self.ns = (self.shift + self.offset) % self.nscount
        if self.v_circuit:
            self.tries = self.session.options.attempts  # "Use VC; at most one attempt per server"
            return self._send_vc(now)
        return self._send_dg(now)

    def _next_ns(self, now: int) -> list[Action]:
        self.shift += 1
        if self.shift >= self.nscount:
            self.shift = 0
            self.tries += 1
            if self.tries >= self.session.options.attempts:
                return self._fail(now)
        return self._same_ns(now)

    def _fail(self, now: int) -> list[Action]:
        actions = self._close_all()
        self.deadline = None
        if self.v_circuit:
            self.outcome = self.tcp_errno  # errno = terrno
        elif not self.gotsomewhere:
            self.outcome = ECONNREFUSED
        else:
            self.outcome = SERVFAIL if self.slot0_rcode == SERVFAIL_RCODE else TIMEOUT
        return actions

    def _succeed(self, first: bytes, second: bytes) -> list[Action]:
        self.answers = [first, second]
        headers = [Header.of(w) if len(w) >= 12 else None for w in (first, second)]
        self.outcome = classify(headers[0], headers[1])
        self.deadline = None
        return self._close_all()

    def _close_all(self) -> list[Action]:
        """``__res_iclose``: every UDP socket and the TCP connection."""
        actions: list[Action] = [CloseUdp(s) for s in self.socks.values()]
        self.socks.clear()
        self.queued.clear()
        if self.conn is not None:
            actions.append(CloseTcp(self.conn))
            self.conn = None
        return actions

    def _log(self, now: int, index: int, transport: str, handle: int) -> None:
        qid, qtype, _ = self.queries[index]
        self.session.queries.append(QueryRecord(now, self.fqdn, qtype, qid,
                                                     self.session.servers[self.ns], transport,
                                                     handle))

    # -- send_dg --------------------------------------------------------------------------
    def _send_dg(self, now: int) -> list[Action]:
        seconds = self.session.options.timeout << self.ns
        if self.ns > 0:
            seconds //= self.nscount  # sic: "retrans << ns", not "<< try"
        self.seconds = max(seconds, 1)
        self.save_gotsomewhere = self.gotsomewhere
        return self._retry(now)

    def _sock(self) -> int:
        if self.ns not in self.socks:  # reopen()
            self.socks[self.ns] = self.session.new_sock()
        return self.socks[self.ns]

    def _retry(self, now: int) -> list[Action]:
        self.deadline = now + self.seconds * SECOND
        self.nwritten = 0
        self.recv = [False, not self.two]
        self.slots = [b"", b""]
        self.resplen = 0
        actions = self._write(now)
        sock = self.socks[self.ns]
        for server, wire in self.queued.pop(sock, []):  # read as soon as poll() is called
            if self.outcome is not None or self.deadline is None:
                break
            actions += self.on_udp(now, sock, server, wire)
        return actions

    def _write(self, now: int) -> list[Action]:
        sock = self._sock()
        server = self.session.servers[self.ns]
        if self.nwritten == 0 and self.two and not self.session.single_request:
            indexes = [0, 1]  # sendmmsg: both datagrams, one socket
        else:
            indexes = [0] if self.nwritten == 0 else [1]
        actions: list[Action] = []
        for index in indexes:
            qid, _, wire = self.queries[index]
            self._log(now, index, "udp", sock)
            actions.append(SendUdp(sock, server, wire, qid))
        self.nwritten += len(indexes)
        return actions

    def _matching(self, wire: bytes, tcp: bool) -> int:
        """Which query ``wire`` answers: id, and (UDP) the question (res_queriesmatch)."""
        match = 0
        for index, (qid, _, query_wire) in enumerate(self.queries):
            if self.recv[index] or int.from_bytes(wire[:2], "big") != qid:
                continue
            if tcp or _same_question(query_wire, wire):
                match = index + 1
        return match

    def on_udp(self, now: int, sock: int, server: str, wire: bytes) -> list[Action]:
        if self.v_circuit or sock not in self.socks.values():
            return []  # a closed socket: the kernel drops it (and sends port unreachable)
        if self.deadline is None or self.socks.get(self.ns) != sock:
            self.queued.setdefault(sock, []).append((server, wire))  # waits in the socket
            return []
        if server != self.session.servers[self.ns]:
            return []  # res_ourserver_p
        self.gotsomewhere = True
        if len(wire) < 12:  # undersized: close_and_return_error
            self.deadline = None
            return self._close_all() + self._next_ns(now)
        match = self._matching(wire, tcp=False)
        if match == 0:
            return []  # "Spurious UDP packet.  Drop it and continue waiting."
        header = Header.of(wire)
        first = not (self.recv[0] or self.recv[1]) or not self.two
        if first:
            self.slot0_rcode = header.rcode
        lame = header.rcode == NOERROR and not header.ancount and not header.aa and \
            not header.ra and not header.arcount
        if header.rcode in (SERVFAIL_RCODE, NOTIMP, REFUSED) or lame:
            return self._dg_next_ns(now, match)
        if header.tc:  # "use TCP with same server"
            self.v_circuit = True
            self.deadline = None
            return self._close_all() + self._same_ns(now)
        self.recv[match - 1] = True
        if first:
            self.slots[0], self.resplen = wire, len(wire)
        else:
            self.slots[1] = wire
        if all(self.recv):
            return self._succeed(self.slots[0], self.slots[1])
        if not self.session.single_request:
            return []
        actions: list[Action] = []
        if self.session.single_request_reopen:  # close and reopen before the second query
            actions = self._close_all()
        return actions + self._write(now)

    def _dg_next_ns(self, now: int, match: int) -> list[Action]:
        if self.recv[0] or (self.two and self.recv[1]):
            if self.resplen:  # "*resplen2 = 0; return resplen": the first answer stands
                return self._succeed(self.slots[0], b"")
            return self._next_ns(now)
        if self.two:  # no data from this reply; wait for the other one
            self.resplen = 0
            self.recv[match - 1] = True
            return []
        return self._close_all() + self._next_ns(now)

    def on_timeout(self, now: int) -> list[Action]:
        if self.v_circuit:
            return []
        if self.resplen > 1 and (self.recv[0] or (self.two and self.recv[1])):
            if not self.session.single_request:  # one answer came: resend one at a time
                self.session.single_request = True
                self.gotsomewhere = self.save_gotsomewhere
                return self._retry(now)
            if not self.session.single_request_reopen:
                self.session.single_request_reopen = True
                self.gotsomewhere = self.save_gotsomewhere
                return self._close_all() + self._retry(now)
            return self._succeed(self.slots[0], b"")  # "*resplen2 = 1; return resplen"
        self.gotsomewhere = True
        self.deadline = None
        return self._next_ns(now)  # the socket stays open for the next try

    def on_error(self, now: int, handle: int, tcp: bool) -> list[Action]:
        if tcp and handle == self.conn:  # refused or reset: close_and_return_error
            self.tcp_errno = ECONNREFUSED
            return self._close_all() + self._next_ns(now)
        if not tcp and not self.v_circuit and handle == self.socks.get(self.ns):
            self.deadline = None
            return self._close_all() + self._next_ns(now)  # POLLERR: ECONNREFUSED
        return []

    # -- send_vc --------------------------------------------------------------------------
    def _send_vc(self, now: int) -> list[Action]:
        self.deadline = None  # glibc's TCP path has no timer of its own
        actions: list[Action] = []
        if self.conn is not None:
            actions.append(CloseTcp(self.conn))
        self.conn = self.session.new_sock()
        self.tcp_buf.clear()
        self.recv = [False, not self.two]
        self.slots = [b"", b""]
        data = b""
        for index, (_, _, wire) in enumerate(self.queries):
            data += len(wire).to_bytes(2, "big") + wire
            self._log(now, index, "tcp", self.conn)
        return [*actions, SendTcp(self.conn, self.session.servers[self.ns], data)]

    def on_tcp(self, now: int, conn: int, data: bytes) -> list[Action]:
        if conn != self.conn:
            return []
        self.tcp_buf += data
        while len(self.tcp_buf) >= 2:
            length = int.from_bytes(self.tcp_buf[:2], "big")
            if len(self.tcp_buf) < 2 + length:
                break
            wire = bytes(self.tcp_buf[2:2 + length])
            del self.tcp_buf[:2 + length]
            if length < 12:  # undersized
                return self._close_all() + self._next_ns(now)
            match = self._matching(wire, tcp=True)
            if match == 0:
                continue  # "drop the packet and wait for the correct one"
            first = not (self.recv[0] or self.recv[1])
            self.recv[match - 1] = True
            self.slots[0 if first else 1] = wire
            if all(self.recv):
                return self._succeed(self.slots[0], self.slots[1])
        return []


def _same_question(query: bytes, reply: bytes) -> bool:
    """``res_queriesmatch``: the same single question (name case-insensitively)."""
    from pktsim.dns.wire import parse

    asked, answered = parse(query), parse(reply)
    if asked is None or answered is None or len(answered.question) != 1:
        return False
    a, b = asked.question[0], answered.question[0]
    return a.name == b.name and a.rdtype == b.rdtype and a.rdclass == b.rdclass


__all__ = ["ECONNREFUSED", "SECOND", "SERVFAIL", "TIMEOUT", "Action", "CloseTcp", "CloseUdp",
           "Done", "Exchange", "QueryRecord", "SendTcp", "SendUdp", "Session"]
