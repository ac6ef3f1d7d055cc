"""The TCP probe client: ``agnhost connect``, which only connects.

agnhost's ``connect`` subcommand (kubernetes ``test/images/agnhost/connect/connect.go``)
dials ``HOST:PORT`` with a timeout and closes: success is the handshake, nothing is sent.
So is this client: a SYN-ACK answers it (``FlowStatus.OK``), a RST refuses it, an ICMP
error while connecting fails it as ``connect()`` would (``tcp_v4_err``); silence is left
``PENDING`` for the caller's timeout to judge.  pktsim's own ``TcpClientApp`` sends a
request and waits for the echo, which a server that does not echo (CoreDNS on TCP 53)
would never give: a probe must not depend on what the server says.
"""

from __future__ import annotations

from pktsim.core.frame import Reaction
from pktsim.devices.l4 import SocketEvent, TcpSocket, Transport
from pktsim.devices.outcome import ERRNO_STATUSES, FlowResult, FlowStatus


class ConnectApp:
    """One TCP connect to ``dst:dport``, closed as soon as it is established."""

    def __init__(self, flow: str, dst: bytes, dport: int, target: str) -> None:
        self.flow, self.dst, self.dport = flow, dst, dport
        self.result = FlowResult(flow, "tcp", target)

    def start(self, now: int, t: Transport, r: Reaction) -> None:
        self.result.sent += 1
        if t.tcp_connect(now, r, self.dst, self.dport, self, self.flow) is None:
            self.result.end(FlowStatus.NET_UNREACHABLE)

    def next_deadline(self) -> int | None:
        return None

    def on_deadline(self, now: int, t: Transport, r: Reaction) -> None:
        pass

    def on_tcp(self, now: int, t: Transport, r: Reaction, sock: TcpSocket, event: SocketEvent,
               data: bytes) -> None:
        """Connected: answered, and closed.  Reset: refused (or timed out, as TCP says)."""
        if event is SocketEvent.CONNECTED:
            self.result.answer()
            sock.close(now, t, r)
        elif event is SocketEvent.RESET and data != b"icmp":
            status = FlowStatus.REFUSED if data == b"reset" else FlowStatus.TIMED_OUT
            self.result.fail(status, "" if status is FlowStatus.REFUSED else data.decode())
        elif event is SocketEvent.ERROR and sock.conn.state.value in ("SYN_SENT", "SYN_RECV"):
            err = sock.sk_err
            assert err is not None  # Transport.local_error sets it before telling us
            status = err.connect_status()
            self.result.fail(status, "" if status in ERRNO_STATUSES else err.text)
            sock.conn._reset("icmp")
            t.flush(now, sock, r)
