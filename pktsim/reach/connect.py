"""The probe clients: ``agnhost connect`` for TCP and UDP, each with its 1 s timeout.

agnhost's ``connect`` subcommand (kubernetes ``test/images/agnhost/connect/connect.go``)
dials ``HOST:PORT`` with a timeout and closes: for TCP, success is the handshake and nothing
is sent.  So is ``ConnectApp``: a SYN-ACK answers it (``FlowStatus.OK``), a RST refuses it,
an ICMP error while connecting fails it as ``connect()`` would (``tcp_v4_err``), and at the
timeout an unanswered connect is closed in SYN_SENT (``tcp_close``: no packet) and left as
``NO_REPLY``.  pktsim's own ``TcpClientApp`` sends a request and waits for the echo, which a
server that does not echo (CoreDNS on TCP 53) would never give: a probe must not depend on
what the server says.  ``EchoApp`` sends one datagram and waits for any answer (pktsim's UDP
servers echo), an ICMP error being the kernel's (port unreachable: refused).

Each probe's timeout runs from its own start, so a probe started later (``probe.py``
staggers them) is judged exactly as one started first; the deadline is one nanosecond
before the kernel's first SYN retransmission (initial RTO 1 s), so none is ever sent.
"""

from __future__ import annotations

from pktsim.core.frame import Frame, Reaction
from pktsim.devices.l4 import SocketEvent, TcpSocket, Transport
from pktsim.devices.outcome import ERRNO_STATUSES, FlowResult, FlowStatus, SocketError

TIMEOUT_NS = 1_000_000_000  # agnhost connect --timeout=1s (e2e getProbeTimeoutSeconds)
PAYLOAD = b"probe"


class _Probe:
    """What both clients share: one result, one deadline, nothing after it."""

    kind = "udp"

    def __init__(self, flow: str, dst: bytes, dport: int, target: str) -> None:
        self.flow, self.dst, self.dport = flow, dst, dport
        self.result = FlowResult(flow, self.kind, target)
        self.due: int | None = None
        self.done = False

    def _arm(self, now: int) -> None:
        self.result.sent += 1
        self.due = now + TIMEOUT_NS - 1

    def _answered(self) -> None:
        if not self.done:
            self.done = True
            self.due = None
            self.result.answer()

    def _failed(self, status: FlowStatus, reason: str = "") -> None:
        if not self.done:
            self.done = True
            self.due = None
            self.result.fail(status, reason)

    def next_deadline(self) -> int | None:
        return self.due


class ConnectApp(_Probe):
    """One TCP connect to ``dst:dport``, closed as soon as it is established."""

    kind = "tcp"

    def __init__(self, flow: str, dst: bytes, dport: int, target: str) -> None:
        super().__init__(flow, dst, dport, target)
        self.sock: TcpSocket | None = None

    def start(self, now: int, t: Transport, r: Reaction) -> None:
        self._arm(now)
        self.sock = t.tcp_connect(now, r, self.dst, self.dport, self, self.flow)
        if self.sock is None:
            self._failed(FlowStatus.NET_UNREACHABLE)

    def on_deadline(self, now: int, t: Transport, r: Reaction) -> None:
        """The timeout: give up the connect, as Go's dialer closing the socket does."""
        self._failed(FlowStatus.NO_REPLY, f"no answer within {TIMEOUT_NS // 10**9} s")
        if self.sock is not None and self.sock.conn.state.value == "SYN_SENT":
            self.sock.close(now, t, r)

    def on_tcp(self, now: int, t: Transport, r: Reaction, sock: TcpSocket, event: SocketEvent,
               data: bytes) -> None:
        """Connected: answered, and closed.  Reset: refused.  ICMP error: connect()'s."""
        if event is SocketEvent.CONNECTED:
            self._answered()
            sock.close(now, t, r)
        elif event is SocketEvent.RESET and data == b"reset":
            self._failed(FlowStatus.REFUSED)
        elif event is SocketEvent.ERROR and sock.conn.state.value in ("SYN_SENT", "SYN_RECV"):
            err = sock.sk_err
            assert err is not None  # Transport.local_error sets it before telling us
            status = err.connect_status()
            self._failed(status, "" if status in ERRNO_STATUSES else err.text)
            sock.conn._reset("icmp")
            t.flush(now, sock, r)


class EchoApp(_Probe):
    """One UDP datagram to ``dst:dport`` from a port of its own; any answer is the echo."""

    def start(self, now: int, t: Transport, r: Reaction) -> None:
        sport = t.ephemeral_port()  # after every earlier probe bound its own: unique
        t.udp[sport] = self
        t.errors[(17, sport)] = self
        self._arm(now)
        t.udp_send(now, r, sport, self.dst, self.dport, PAYLOAD, self.flow)

    def on_deadline(self, now: int, t: Transport, r: Reaction) -> None:
        self._failed(FlowStatus.NO_REPLY, f"no answer within {TIMEOUT_NS // 10**9} s")

    def on_udp(self, now: int, t: Transport, r: Reaction, src: bytes, sport: int, dport: int,
               payload: bytes, frame: Frame) -> None:
        self._answered()

    def on_error(self, now: int, t: Transport, r: Reaction, what: SocketError,
                 frame: Frame) -> None:
        self._failed(what.status, what.text)
