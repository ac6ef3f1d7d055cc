"""The transport runs on any ``IpStack``: l4 needs no namespace, only the protocol."""

from __future__ import annotations

import random

from pktsim.core.frame import Frame, Reaction
from pktsim.devices.l4 import IpStack, SocketEvent, TcpSocket, Transport
from pktsim.devices.netns import Netns
from pktsim.devices.outcome import FlowStatus, SocketError
from pktsim.wire.build import PROTO_TCP, PROTO_UDP

SRC, DST = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])


class FakeStack:
    """An IP layer that only records what the transport sends."""

    def __init__(self) -> None:
        self.rng = random.Random(1)
        self.sent: list[bytes] = []
        self.errors: list[tuple[int, int]] = []
        self._pid = 0

    def new_pid(self) -> int:
        self._pid += 1
        return self._pid

    def ip_id(self, dst: bytes) -> int:
        return 7

    def source_for(self, dst: bytes) -> tuple[bytes | None, int | None]:
        return (SRC, 1500) if dst == DST else (None, None)

    def ip_output(self, now: int, pkt: bytes, frame: Frame, r: Reaction) -> None:
        self.sent.append(pkt)

    def icmp_error(self, now: int, icmp_type: int, code: int, offending: bytes, tags: Frame,
                   r: Reaction) -> None:
        self.errors.append((icmp_type, code))

    def tunnel_socket(self, key: str) -> str | None:
        return None


class Recorder:
    def __init__(self) -> None:
        self.events: list[SocketEvent] = []

    def on_tcp(self, now: int, t: Transport, r: Reaction, sock: TcpSocket, event: SocketEvent,
               data: bytes) -> None:
        self.events.append(event)


def test_udp_and_tcp_leave_through_the_stack() -> None:
    stack = FakeStack()
    t = Transport(stack)
    r = Reaction()
    t.udp_send(0, r, 5000, DST, 53, b"q", "f")
    sock = t.tcp_connect(0, r, DST, 80, Recorder(), "f")
    assert sock is not None and sock.conn.mss == 1460
    assert [p[9] for p in stack.sent] == [PROTO_UDP, PROTO_TCP]
    assert all(p[12:16] == SRC for p in stack.sent)


def test_no_source_is_network_unreachable() -> None:
    stack = FakeStack()
    t = Transport(stack)
    r = Reaction()
    assert t.tcp_connect(0, r, SRC, 80, Recorder(), "f") is None
    assert not stack.sent


def test_an_icmp_error_reaches_the_socket_as_an_enum() -> None:
    stack = FakeStack()
    t = Transport(stack)
    handler = Recorder()
    sock = t.tcp_connect(0, Reaction(), DST, 80, handler, "f")
    assert sock is not None
    err = SocketError(FlowStatus.NO_ROUTE, "host unreachable")
    t.local_error(0, stack.sent[0], err, Reaction(), Frame(b"", 0))
    assert handler.events == [SocketEvent.ERROR]
    assert sock.sk_err is err  # the socket keeps the error, as sk->sk_err


def test_netns_is_an_ip_stack() -> None:
    ns = Netns("pod")
    stack: IpStack = ns  # checked by mypy: Netns implements the protocol
    ns.add_iface("eth0", b"\x02" * 6, mtu=1450)
    ns.add_route("0.0.0.0/0", "eth0")
    assert stack.source_for(DST) == (None, 1450)  # a route, but no address yet
    assert ns.l4.stack is ns
