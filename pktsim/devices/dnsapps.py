"""DNS on the wire: CoreDNS pods, the upstream resolver, and pods resolving like glibc.

The logic lives in ``pktsim.dns`` (sans-IO: events in, actions out); these applications turn
its actions into real UDP datagrams and TCP segments through a namespace's ``Transport``, and
the datagrams and segments that arrive back into its events:

* ``CoreDnsApp`` listens on UDP and TCP 53 in a CoreDNS pod; a query reaches it after
  kube-proxy's DNAT of ``10.96.0.10:53`` and its reply is un-NATed on the way back.  Names it
  forwards go to the upstream from a fresh ephemeral port per upstream connection.
* ``UpstreamDnsApp`` is the recursive resolver on the external network.
* ``ResolveApp`` runs one ``StubResolver`` in a pod: a socket per resolver handle (one
  socket for A and AAAA, so one 5-tuple, as glibc), then hands the addresses to the flow
  that wanted them (``then``), or, for a ``lookup`` flow, reports the answer: its
  ``count`` lookups, ``interval`` apart, each with a resolver of its own.  Each lookup opens
  its socket on a new ephemeral port, as glibc does (``send_dg`` in resolv/res_send.c opens
  a socket per exchange, and ``__res_iclose`` closes it after, without ``RES_STAYOPEN``);
  with ``sourcePort`` they all go from one socket bound to that port, kept open between
  lookups, as a long-lived stub keeps its socket.  That one 5-tuple is what keeps one
  conntrack entry alive across lookups (docs/model.md, "Changes during a run").
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any

from pktsim.core.frame import Frame, Reaction
from pktsim.devices.l4 import App, SocketEvent, TcpSocket, Transport
from pktsim.devices.outcome import FlowResult, FlowStatus, SocketError
from pktsim.dns import (
    CloseConn,
    CloseTcp,
    CloseUdp,
    CoreDns,
    Done,
    Forward,
    Reply,
    Resolution,
    SendTcp,
    SendUdp,
    StubResolver,
    UpstreamResolver,
)
from pktsim.dns.exchange import SECOND
from pktsim.dns.gai import gai_order
from pktsim.dns.wire import split_tcp
from pktsim.wire.parse import ip_bytes, ip_str

if TYPE_CHECKING:  # the modules; at run time each loads on first use
    import dns.message
else:
    from pktsim.dns.dnspython import dns

DNS_PORT = 53


def _framed(wire: bytes) -> bytes:
    return len(wire).to_bytes(2, "big") + wire


class _Idle:
    def next_deadline(self) -> int | None:
        return None

    def on_deadline(self, now: int, t: Transport, r: Reaction) -> None:
        return None


class UpstreamDnsApp(_Idle):
    """The external network's resolver: answers from ``Cluster.spec.upstream``."""

    def __init__(self, resolver: UpstreamResolver) -> None:
        self.resolver = resolver
        self.buffers: dict[int, bytes] = {}

    def start(self, now: int, t: Transport, r: Reaction) -> None:
        t.udp[DNS_PORT] = self
        t.listeners[DNS_PORT] = self

    def _reply(self, wire: bytes, tcp: bool) -> bytes | None:
        try:
            query = dns.message.from_wire(wire)
        except Exception:  # a malformed query: a real resolver drops it too
            return None
        return self.resolver.encode(self.resolver.answer(query), query, tcp=tcp)

    def on_udp(self, now: int, t: Transport, r: Reaction, src: bytes, sport: int, dport: int,
               payload: bytes, frame: Frame) -> None:
        out = self._reply(payload, False)
        if out is not None:
            t.udp_send(now, r, DNS_PORT, src, sport, out, frame.flow)

    def on_tcp(self, now: int, t: Transport, r: Reaction, sock: TcpSocket, event: SocketEvent,
               data: bytes) -> None:
        if event is SocketEvent.DATA:
            buf = self.buffers.get(id(sock), b"") + data
            for wire in split_tcp(buf):
                out = self._reply(wire, True)
                if out is not None:
                    sock.send(now, t, r, _framed(out))
            self.buffers[id(sock)] = b""
        elif event is SocketEvent.EOF:
            sock.close(now, t, r)


class CoreDnsApp:
    """One CoreDNS pod: the kubernetes plugin, forward, cache and loadbalance on port 53."""

    def __init__(self, core: CoreDns) -> None:
        self.core = core
        self.clients: dict[Hashable, tuple[bytes, int] | TcpSocket] = {}
        self.conn_port: dict[int, int] = {}  # upstream conn -> our UDP port
        self.port_conn: dict[int, int] = {}
        self.tcp_conn: dict[int, TcpSocket] = {}
        self.pending_tcp: dict[int, bytes] = {}
        self.flow = ""

    def start(self, now: int, t: Transport, r: Reaction) -> None:
        t.udp[DNS_PORT] = self
        t.listeners[DNS_PORT] = self

    def next_deadline(self) -> int | None:
        return self.core.next_deadline()

    def on_deadline(self, now: int, t: Transport, r: Reaction) -> None:
        self._act(now, t, r, self.core.on_deadline(now))

    def on_udp(self, now: int, t: Transport, r: Reaction, src: bytes, sport: int, dport: int,
               payload: bytes, frame: Frame) -> None:
        self.flow = frame.flow
        if dport == DNS_PORT:
            client = ("udp", src, sport)
            self.clients[client] = (src, sport)
            self._act(now, t, r, self.core.on_query(now, client, payload, False))
        elif dport in self.port_conn:
            self._act(now, t, r, self.core.on_upstream(now, self.port_conn[dport], payload))

    def on_tcp(self, now: int, t: Transport, r: Reaction, sock: TcpSocket, event: SocketEvent,
               data: bytes) -> None:
        conn = next((c for c, s in self.tcp_conn.items() if s is sock), None)
        if conn is not None:
            self._upstream_tcp(now, t, r, conn, sock, event, data)
            return
        if event is SocketEvent.DATA:
            client = ("tcp", id(sock))
            self.clients[client] = sock
            for wire in split_tcp(data):
                self._act(now, t, r, self.core.on_query(now, client, wire, True))
        elif event is SocketEvent.EOF:
            sock.close(now, t, r)

    def _upstream_tcp(self, now: int, t: Transport, r: Reaction, conn: int, sock: TcpSocket,
                      event: SocketEvent, data: bytes) -> None:
        if event is SocketEvent.CONNECTED and conn in self.pending_tcp:
            sock.send(now, t, r, self.pending_tcp.pop(conn))
        elif event is SocketEvent.DATA:
            for wire in split_tcp(data):
                self._act(now, t, r, self.core.on_upstream(now, conn, wire))

    def _act(self, now: int, t: Transport, r: Reaction, actions: list[Any]) -> None:
        for action in actions:
            if isinstance(action, Reply):
                self._reply(now, t, r, action)
            elif isinstance(action, Forward):
                self._forward(now, t, r, action)
            elif isinstance(action, CloseConn):
                port = self.conn_port.pop(action.conn, None)
                if port is not None:
                    self.port_conn.pop(port, None)
                    t.udp.pop(port, None)
                sock = self.tcp_conn.pop(action.conn, None)
                if sock is not None:
                    sock.close(now, t, r)

    def _reply(self, now: int, t: Transport, r: Reaction, action: Reply) -> None:
        client = self.clients.get(action.client)
        if isinstance(client, TcpSocket):
            client.send(now, t, r, _framed(action.wire))
        elif client is not None:
            t.udp_send(now, r, DNS_PORT, client[0], client[1], action.wire, self.flow)

    def _forward(self, now: int, t: Transport, r: Reaction, action: Forward) -> None:
        server = ip_bytes(action.upstream)
        if action.tcp:
            sock = self.tcp_conn.get(action.conn)
            if sock is None:
                self.pending_tcp[action.conn] = _framed(action.wire)
                made = t.tcp_connect(now, r, server, DNS_PORT, self, self.flow)
                if made is not None:
                    self.tcp_conn[action.conn] = made
            else:
                sock.send(now, t, r, _framed(action.wire))
            return
        port = self.conn_port.get(action.conn)
        if port is None:
            port = t.ephemeral_port()
            self.conn_port[action.conn], self.port_conn[port] = port, action.conn
            t.udp[port] = self
        t.udp_send(now, r, port, server, DNS_PORT, action.wire, self.flow)


class ResolveApp:
    """getaddrinfo() (or dig) in a pod: one stub resolver, then whatever wanted the answer.

    A lookup flow (no ``then``) with ``again`` runs ``count`` lookups, each ``gap`` after
    the one before it ended (a program calling the resolver in a loop with a sleep), each
    with a resolver ``again`` makes; ``port`` binds every socket to that port."""

    def __init__(self, stub: StubResolver, result: FlowResult, flow: str,
                 then: Callable[[list[str]], App | None] | None = None, *,
                 port: int | None = None, again: Callable[[], StubResolver] | None = None,
                 count: int = 1, gap: int = SECOND) -> None:
        self.stub, self.result, self.flow, self.then = stub, result, flow, then
        self.port = port  # every socket bound to this port, kept open (None: ephemeral)
        self.again, self.count, self.gap = again, count, gap
        self.due: int | None = None  # when the next lookup starts
        self.socks: dict[int, int] = {}  # resolver sock -> our port
        self.ports: dict[int, int] = {}
        self.conns: dict[int, TcpSocket] = {}
        self.pending: dict[int, bytes] = {}
        self.ip_ids: dict[int, int] = {}

    def start(self, now: int, t: Transport, r: Reaction) -> None:
        """With ``port``, bind() first: a port another socket of the namespace holds (a
        server, another flow's resolver) fails with EADDRINUSE and no lookup is made."""
        if self.port is not None and t.udp.get(self.port) not in (None, self):
            self.result.end(FlowStatus.ADDRESS_IN_USE,
                            f"bind to UDP port {self.port}: address already in use")
            return
        if self.port is not None:
            t.udp[self.port] = self
            t.errors[(17, self.port)] = self
        self._act(now, t, r, self.stub.start(now))

    def next_deadline(self) -> int | None:
        return self.due if self.due is not None else self.stub.next_deadline()

    def on_deadline(self, now: int, t: Transport, r: Reaction) -> None:
        if self.due is None:
            self._act(now, t, r, self.stub.on_deadline(now))
        elif now >= self.due and self.again is not None:
            self.due = None
            self.stub = self.again()
            self._act(now, t, r, self.stub.start(now))

    def on_udp(self, now: int, t: Transport, r: Reaction, src: bytes, sport: int, dport: int,
               payload: bytes, frame: Frame) -> None:
        sock = self.ports.get(dport)
        if sock is not None:
            self._act(now, t, r, self.stub.on_udp(now, sock, ip_str(src), payload))

    def on_error(self, now: int, t: Transport, r: Reaction, what: SocketError,
                 frame: Frame) -> None:
        for sock in list(self.socks):
            self._act(now, t, r, self.stub.on_error(now, sock))

    def on_tcp(self, now: int, t: Transport, r: Reaction, sock: TcpSocket, event: SocketEvent,
               data: bytes) -> None:
        conn = next((c for c, s in self.conns.items() if s is sock), None)
        if conn is None:
            return
        if event is SocketEvent.CONNECTED and conn in self.pending:
            sock.send(now, t, r, self.pending.pop(conn))
        elif event is SocketEvent.DATA:
            self._act(now, t, r, self.stub.on_tcp(now, conn, data))
        elif event in (SocketEvent.RESET, SocketEvent.ERROR):
            self._act(now, t, r, self.stub.on_error(now, conn, tcp=True))

    def _act(self, now: int, t: Transport, r: Reaction, actions: list[Any]) -> None:
        for action in actions:
            if isinstance(action, SendUdp):
                self._send_udp(now, t, r, action)
            elif isinstance(action, CloseUdp):
                port = self.socks.pop(action.sock, None)
                if port is not None and self.port is None:
                    self.ports.pop(port, None)
                    t.udp.pop(port, None)
                    t.errors.pop((17, port), None)
            elif isinstance(action, SendTcp):
                self.pending[action.conn] = action.data
                made = t.tcp_connect(now, r, ip_bytes(action.server), DNS_PORT, self, self.flow)
                if made is not None:
                    self.conns[action.conn] = made
            elif isinstance(action, CloseTcp):
                sock = self.conns.pop(action.conn, None)
                if sock is not None:
                    sock.close(now, t, r)
            elif isinstance(action, Done):
                self._done(now, t, r, action.result)  # type: ignore[arg-type]

    def _send_udp(self, now: int, t: Transport, r: Reaction, action: SendUdp) -> None:
        port = self.socks.get(action.sock)
        if port is None:
            port = t.ephemeral_port() if self.port is None else self.port
            self.socks[action.sock], self.ports[port] = port, action.sock
            t.udp[port] = self
            t.errors[(17, port)] = self
            if self.port is None or port not in self.ip_ids:
                self.ip_ids[port] = t.stack.rng.getrandbits(16)
        ident = self.ip_ids[port]
        self.ip_ids[port] = (ident + 1) & 0xFFFF  # a connected socket's inet_id
        t.udp_send(now, r, port, ip_bytes(action.server), DNS_PORT, action.wire, self.flow,
                   ip_id=ident)

    def _done(self, now: int, t: Transport, r: Reaction, res: Resolution) -> None:
        self.result.notes.append(describe(res))
        if self.then is None:  # a lookup flow: the answer is the outcome
            self._answered(res)
            if self.again is not None and self.result.sent < self.count:
                self.due = now + self.gap
            elif self.port is not None:  # the last lookup: the kept socket is closed now
                t.udp.pop(self.port, None)
                t.errors.pop((17, self.port), None)
            return
        # what getaddrinfo returns, in its order: the addresses the client can reach
        # (a family it has a source address for), the first one tried
        usable = [a for a in res.addresses if t.stack.source_for(ip_bytes(a))[0] is not None]
        addresses = gai_order(usable, t.stack.source_for)
        if not addresses:
            self.result.end(FlowStatus.UNRESOLVED, unresolved_reason(res))
            return
        app = self.then(addresses)
        if app is not None:
            t.apps.append(app)
            app.start(now, t, r)

    def _answered(self, res: Resolution) -> None:
        """One lookup's outcome: counted; the flow is ``ok`` once any lookup was, and an
        error is kept (``errors``) so a change's impact can say what it did."""
        was_ok = self.result.ok
        self.result.sent += 1
        self.result.answered += 1 if res.answers else 0
        if res.ok:
            self.result.end(FlowStatus.OK)
            return
        self.result.errors.append(lookup_reason(res))
        if not was_ok:
            self.result.end(FlowStatus.DNS_ERROR, lookup_reason(res))


def describe(res: Resolution) -> str:
    """One line: the name that answered and its records, as ``host`` would print them (a
    record in the answers to both A and AAAA, a CNAME, is said once)."""
    if not res.answers:
        return f"{res.name}: {res.status}"
    records = dict.fromkeys(f"{rr.name} {rr.ttl} {dns.rdatatype.to_text(rr.rdtype)} {item}"
                            for message in res.answers for rr in message.answer for item in rr)
    return f"{res.fqdn}: {res.status}; " + ("; ".join(records) or "no records")


def _cname_target(res: Resolution) -> str:
    """The last name of the answers' CNAME chain ('' when there is none)."""
    targets = [str(item.target) for message in res.answers for rr in message.answer
               if rr.rdtype == dns.rdatatype.CNAME for item in rr]
    return targets[-1] if targets else ""


def unresolved_reason(res: Resolution) -> str:
    """Why a name gave no address the client can connect to.  An answer can be NOERROR and still
    hold none: an ExternalName Service is a CNAME, and when nothing answers for its target
    the answer is the CNAME alone (glibc's getaddrinfo then fails with EAI_NODATA, "No
    address associated with hostname"); or the name has only AAAA records."""
    if not res.ok:
        return f"could not resolve ({res.status})"
    target = _cname_target(res)
    if target:
        return f"could not resolve (NO_DATA: {res.fqdn} is a CNAME for {target}, no address)"
    if res.addresses:  # only a family the client has no address of (IPv6 in IPv4 pods)
        return "could not resolve (NO_DATA: IPv6 addresses only)"
    return "could not resolve (NO_DATA: no address)"


def lookup_reason(res: Resolution) -> str:
    """A lookup flow's error in the words of its status: ``DNS error (HOST_NOT_FOUND)``;
    NO_DATA (the name exists, without a record of the type asked) says which type."""
    if res.status == "NO_DATA":
        return f"DNS error (NO_DATA: no {'/'.join(res.qtypes)} record)"
    return f"DNS error ({res.status})"
