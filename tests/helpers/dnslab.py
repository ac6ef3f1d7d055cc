"""An in-memory DNS network: a stub resolver, a CoreDNS pod and the upstream resolver.

Theory of operation
-------------------
``DnsLab`` wires the sans-IO pieces together the way the emulator does on the wire, without
frames: every datagram or TCP write takes ``latency`` nanoseconds, a ``drop`` predicate can
lose any packet (e.g. the second datagram of a pair, as the conntrack race of
kubernetes/kubernetes#56903 does), and a reply to a closed client socket is lost (the kernel
would answer ICMP port unreachable).  It is the reference for the wiring (see the package
docstring) and drives the unit tests; ``log`` records every message with its time, transport
and endpoints.

It lives with the tests, not in the package: it keeps its own clock and event queue, which
the package's devices must never do (they are sans-IO, and only the driver keeps time).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import dns.message

from pktsim.dns.exchange import CloseTcp, CloseUdp, Done, SendTcp, SendUdp
from pktsim.dns.server import CloseConn, CoreDns, Forward, Reply, ServerAction
from pktsim.dns.stub import Resolution, StubResolver
from pktsim.dns.upstream import UpstreamResolver
from pktsim.dns.wire import parse, split_tcp


@dataclass(frozen=True, slots=True)
class Packet:
    time: int
    transport: str  # udp | tcp
    src: str  # "stub/<sock>", "coredns", "coredns/<conn>", "upstream"
    dst: str
    wire: bytes

    @property
    def message(self) -> dns.message.Message | None:
        return parse(self.wire)


@dataclass
class DnsLab:
    coredns: CoreDns | None
    upstream: UpstreamResolver
    dns_ip: str = "10.96.0.10"
    upstream_ip: str = "203.0.113.53"
    latency: int = 100_000  # 0.1 ms each way
    drop: Callable[[Packet], bool] = lambda packet: False
    log: list[Packet] = field(default_factory=list)
    _events: list[tuple[int, int, Callable[[int], None]]] = field(default_factory=list)
    _seq: int = 0
    _closed: set[int] = field(default_factory=set)

    def _at(self, time: int, call: Callable[[int], None]) -> None:
        self._seq += 1
        heapq.heappush(self._events, (time, self._seq, call))

    def _send(self, now: int, packet: Packet, deliver: Callable[[int], None]) -> None:
        self.log.append(packet)
        if not self.drop(packet):
            self._at(now + self.latency, deliver)

    def resolve(self, stub: StubResolver, now: int = 0, until: int = 10**12) -> Resolution:
        """Run ``stub`` to completion (or ``until``) and return its result."""
        self._stub_actions(now, stub, stub.start(now))
        while not stub.done:
            times = [t for t in (stub.next_deadline(),
                                 self.coredns.next_deadline() if self.coredns else None)
                     if t is not None]
            if self._events:
                times.append(self._events[0][0])
            if not times or min(times) > until:
                break
            now = min(times)
            if self._events and self._events[0][0] == now:
                _, _, call = heapq.heappop(self._events)
                call(now)
                continue
            if stub.next_deadline() == now:
                self._stub_actions(now, stub, stub.on_deadline(now))
            elif self.coredns is not None:
                self._server_actions(now, stub, self.coredns.on_deadline(now))
        return stub.result

    # -- the client side ------------------------------------------------------------------
    def _stub_actions(self, now: int, stub: StubResolver, actions: Sequence[object]) -> None:
        for action in actions:
            if isinstance(action, SendUdp):
                packet = Packet(now, "udp", f"stub/{action.sock}", action.server, action.wire)
                self._send(now, packet, self._to_server(stub, action.sock, action.server,
                                                        action.wire, tcp=False))
            elif isinstance(action, SendTcp):
                for wire in split_tcp(action.data):
                    packet = Packet(now, "tcp", f"stub/{action.conn}", action.server, wire)
                    self._send(now, packet, self._to_server(stub, action.conn, action.server,
                                                            wire, tcp=True))
            elif isinstance(action, (CloseUdp, CloseTcp)):
                self._closed.add(action.sock if isinstance(action, CloseUdp) else action.conn)
            elif isinstance(action, Done):
                continue

    def _to_server(self, stub: StubResolver, handle: int, server: str, wire: bytes,
                   tcp: bool) -> Callable[[int], None]:
        def deliver(now: int) -> None:
            if server == self.dns_ip and self.coredns is not None:
                self._server_actions(now, stub, self.coredns.on_query(now, (handle, server),
                                                                      wire, tcp))
            elif server == self.upstream_ip:
                query = parse(wire)
                if query is not None:
                    reply = self.upstream.answer(query)
                    self._reply(now, stub, handle, server,
                                self.upstream.encode(reply, query, tcp=tcp), tcp)
        return deliver

    def _reply(self, now: int, stub: StubResolver, handle: int, server: str, wire: bytes,
               tcp: bool) -> None:
        packet = Packet(now, "tcp" if tcp else "udp", server, f"stub/{handle}", wire)

        def deliver(at: int) -> None:
            if handle in self._closed:
                return  # the socket is gone: ICMP port unreachable on a real network
            if tcp:
                data = len(wire).to_bytes(2, "big") + wire
                self._stub_actions(at, stub, stub.on_tcp(at, handle, data))
            else:
                self._stub_actions(at, stub, stub.on_udp(at, handle, server, wire))
        self._send(now, packet, deliver)

    # -- CoreDNS and the upstream ---------------------------------------------------------
    def _server_actions(self, now: int, stub: StubResolver,
                        actions: list[ServerAction]) -> None:
        for action in actions:
            if isinstance(action, Reply):
                client = action.client
                assert isinstance(client, tuple)
                self._reply(now, stub, int(client[0]), str(client[1]), action.wire, action.tcp)
            elif isinstance(action, Forward):
                transport = "tcp" if action.tcp else "udp"
                packet = Packet(now, transport, f"coredns/{action.conn}", "upstream",
                                action.wire)
                self._send(now, packet, self._to_upstream(stub, action))
            elif isinstance(action, CloseConn):
                continue

    def _to_upstream(self, stub: StubResolver, action: Forward) -> Callable[[int], None]:
        def deliver(now: int) -> None:
            query = parse(action.wire)
            if query is None:
                return
            wire = self.upstream.encode(self.upstream.answer(query), query, tcp=action.tcp)
            packet = Packet(now, "tcp" if action.tcp else "udp", "upstream",
                            f"coredns/{action.conn}", wire)
            assert self.coredns is not None
            coredns = self.coredns

            def back(at: int) -> None:
                self._server_actions(at, stub, coredns.on_upstream(at, action.conn, wire))
            self._send(now, packet, back)
        return deliver
