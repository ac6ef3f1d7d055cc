"""Applications that run inside a namespace: servers for declared ports, and flow clients.

Servers: every ``containerPort`` listens.  TCP answers an HTTP request with
``HTTP/1.1 200 OK`` and echoes anything else; UDP echoes (docs/scenario.md §2, Pods).
Clients: ``PingApp`` behaves as iputils ``ping`` (56 data bytes: a 16-byte timeval, then bytes
0x10-0x37; one request a second), ``TcpClientApp`` opens ``count`` connections one after
another (an HTTP GET as curl sends it when the flow is a URL), ``UdpClientApp`` sends
``count`` datagrams a second apart.  Each client keeps a ``FlowResult`` for the run summary.
"""

from __future__ import annotations

import struct

from pktsim.core.frame import Frame, Reaction
from pktsim.devices.l4 import SocketEvent, TcpSocket, Transport
from pktsim.devices.outcome import ERRNO_STATUSES, FlowResult, FlowStatus, SocketError
from pktsim.wire.parse import ip_str

ICMP_TIME_EXCEEDED = 11

SECOND = 1_000_000_000
# the gaps a flow without ``interval`` keeps: ping's and a datagram client's 1 s (iputils
# ping's default -i 1), and 1 ms from one curl-like connection's close to the next open
PING_INTERVAL = SECOND
UDP_INTERVAL = SECOND
TCP_INTERVAL = 1_000_000


def iputils_payload(size: int, now: int) -> bytes:
    """``ping -s size``: a struct timeval (virtual time) then 0x10, 0x11, ... bytes."""
    if size < 16:
        return bytes((i + 8) & 0xFF for i in range(size))
    stamp = struct.pack("<qq", now // SECOND, (now % SECOND) // 1000)
    return stamp + bytes(i & 0xFF for i in range(16, size))


class ListeningApp:
    """A listening TCP port that answers what each connection has sent so far (``answer``
    sees the connection's unanswered bytes and clears what it answered); it closes its side
    when the peer does.  The servers pods, nodes and kube-proxy's health checks run."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.buffers: dict[int, bytearray] = {}

    def start(self, now: int, t: Transport, r: Reaction) -> None:
        t.listeners[self.port] = self

    def next_deadline(self) -> int | None:
        return None

    def on_deadline(self, now: int, t: Transport, r: Reaction) -> None:
        return None

    def on_tcp(self, now: int, t: Transport, r: Reaction, sock: TcpSocket, event: SocketEvent,
               data: bytes) -> None:
        buf = self.buffers.setdefault(id(sock), bytearray())
        if event is SocketEvent.DATA:
            buf += data
            self.answer(now, t, r, sock, buf)
        elif event is SocketEvent.EOF:
            sock.close(now, t, r)
        elif event in (SocketEvent.CLOSED, SocketEvent.RESET):
            self.buffers.pop(id(sock), None)

    def answer(self, now: int, t: Transport, r: Reaction, sock: TcpSocket,
               buf: bytearray) -> None:
        raise NotImplementedError


class TcpServerApp(ListeningApp):
    """A listening port: HTTP GET -> 200 OK with a body naming the pod, else echo."""

    def __init__(self, port: int, who: str) -> None:
        super().__init__(port)
        self.who = who

    def answer(self, now: int, t: Transport, r: Reaction, sock: TcpSocket,
               buf: bytearray) -> None:
        if buf[:4] in (b"GET ", b"HEAD", b"POST", b"PUT "):
            if b"\r\n\r\n" in buf:
                body = f"Hello from {self.who}\n".encode()
                head = (f"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                        f"Content-Length: {len(body)}\r\n\r\n").encode()
                buf.clear()
                sock.send(now, t, r, head + body)
        else:
            out = bytes(buf)
            buf.clear()
            sock.send(now, t, r, out)


class UdpEchoApp:
    def __init__(self, port: int) -> None:
        self.port = port

    def start(self, now: int, t: Transport, r: Reaction) -> None:
        t.udp[self.port] = self

    def next_deadline(self) -> int | None:
        return None

    def on_deadline(self, now: int, t: Transport, r: Reaction) -> None:
        return None

    def on_udp(self, now: int, t: Transport, r: Reaction, src: bytes, sport: int, dport: int,
               payload: bytes, frame: Frame) -> None:
        t.udp_send(now, r, dport, src, sport, payload, frame.flow)


class PingApp:
    def __init__(self, flow: str, dst: bytes, count: int, size: int, ttl: int, ident: int,
                 ip_id: int, target: str, interval: int = PING_INTERVAL) -> None:
        self.flow, self.dst, self.count, self.size, self.ttl = flow, dst, count, size, ttl
        self.interval = interval
        self.ident, self.ip_id = ident, ip_id
        self.seq = 0
        self.due: int | None = None
        self.result = FlowResult(flow, "icmp", target)

    def start(self, now: int, t: Transport, r: Reaction) -> None:
        t.echo[self.ident] = self
        t.errors[(1, self.ident)] = self
        self._send(now, t, r)

    def _send(self, now: int, t: Transport, r: Reaction) -> None:
        self.seq += 1
        self.result.sent += 1
        # iputils ping4_send_probe(): icmp_seq = htons(ntransmitted + 1), a 16-bit field:
        # the 65,536th echo request carries sequence 0, and on it goes
        t.ping(now, r, self.dst, self.ident, self.seq & 0xFFFF,
               iputils_payload(self.size, now),
               self.flow, ttl=self.ttl, ip_id=self.ip_id)
        self.ip_id = (self.ip_id + 1) & 0xFFFF
        self.due = now + self.interval if self.seq < self.count else None
        if self.due is None and not self.result.notes:  # an error sendmsg() met stays
            self.result.end(FlowStatus.OK if self.result.answered else FlowStatus.NO_REPLY)

    def next_deadline(self) -> int | None:
        return self.due

    def on_deadline(self, now: int, t: Transport, r: Reaction) -> None:
        self.due = None
        self._send(now, t, r)

    def on_echo_reply(self, now: int, t: Transport, r: Reaction, pkt: bytes,
                      frame: Frame) -> None:
        self.result.answer()
        self.result.answered_by = ip_str(pkt[8:24] if pkt[0] >> 4 == 6 else pkt[12:16])

    def on_error(self, now: int, t: Transport, r: Reaction, what: SocketError,
                 frame: Frame) -> None:
        self.result.fail(what.status, what.text)


class TcpClientApp:
    """``count`` connections one after another; each sends ``request`` and reads the answer."""

    def __init__(self, flow: str, dst: bytes, dport: int, count: int, request: bytes,
                 http: bool, ttl: int, target: str, interval: int = TCP_INTERVAL) -> None:
        self.flow, self.dst, self.dport, self.count = flow, dst, dport, count
        self.interval = interval
        self.request, self.http, self.ttl = request, http, ttl
        self.opened = 0
        self.inbox: dict[int, bytearray] = {}
        self.expect: dict[int, int] = {}  # socket -> bytes that make the answer complete
        self.result = FlowResult(flow, "http" if http else "tcp", target)
        self.due: int | None = None
        self.backends: dict[str, int] = {}

    def start(self, now: int, t: Transport, r: Reaction) -> None:
        self._open(now, t, r)

    def _open(self, now: int, t: Transport, r: Reaction) -> None:
        self.opened += 1
        self.result.sent += 1
        sock = t.tcp_connect(now, r, self.dst, self.dport, self, self.flow, ttl=self.ttl)
        if sock is None:
            self.result.end(FlowStatus.NET_UNREACHABLE)
            self._next(now)

    def _next(self, now: int) -> None:
        self.due = now + self.interval if self.opened < self.count else None

    def next_deadline(self) -> int | None:
        return self.due

    def on_deadline(self, now: int, t: Transport, r: Reaction) -> None:
        self.due = None
        self._open(now, t, r)

    def on_tcp(self, now: int, t: Transport, r: Reaction, sock: TcpSocket, event: SocketEvent,
               data: bytes) -> None:
        """curl's part: send, read the answer, close — then the next connection.  The kernel
        keeps the socket in TIME_WAIT for 60 s; the application is done at close()."""
        buf = self.inbox.setdefault(id(sock), bytearray())
        if event is SocketEvent.CONNECTED:
            sock.send(now, t, r, self.request)
        elif event is SocketEvent.DATA:
            buf += data
            if self._complete(id(sock), buf):
                self._answered(bytes(buf))
                self._finish(now, t, r, sock)
        elif event is SocketEvent.EOF:
            self._finish(now, t, r, sock)
        elif event is SocketEvent.RESET:
            if data != b"icmp":  # an ICMP error already said why
                if data == b"reset":
                    self.result.fail(FlowStatus.REFUSED)
                else:
                    self.result.fail(FlowStatus.TIMED_OUT, data.decode())
            self._finish(now, t, r, sock, close=False)
        elif event is SocketEvent.ERROR and sock.conn.state.value in ("SYN_SENT", "SYN_RECV"):
            # a hard error while connecting (tcp_v4_err); later ones are soft
            err = sock.sk_err
            assert err is not None  # Transport.local_error sets it before telling us
            status = err.connect_status()  # EHOSTUNREACH for time exceeded, as connect() says
            # ... but the words name the router whose time exceeded stopped the SYN (--ttl)
            words = status not in ERRNO_STATUSES or err.icmp_type == ICMP_TIME_EXCEEDED
            self.result.fail(status, err.text if words else "")
            self._finish(now, t, r, sock, close=False)
            sock.conn._reset("icmp")
            t.flush(now, sock, r)

    def _finish(self, now: int, t: Transport, r: Reaction, sock: TcpSocket, *,
                close: bool = True) -> None:
        key = id(sock)
        if key not in self.inbox:
            return
        del self.inbox[key]
        self.expect.pop(key, None)
        if close:
            sock.close(now, t, r)
        self._next(now)

    def _complete(self, key: int, buf: bytearray) -> bool:
        """Whole answer in? The header is parsed once; after that only lengths compare."""
        if not self.http:
            return len(buf) >= len(self.request)
        need = self.expect.get(key)
        if need is None:
            end = buf.find(b"\r\n\r\n", 0, 65536)
            if end < 0:
                return False
            need = end + 4
            for line in bytes(buf[:end]).split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    need += int(value.strip() or 0)
            self.expect[key] = need
        return len(buf) >= need

    def _answered(self, buf: bytes) -> None:
        self.result.answer()
        if not self.result.first_answer:
            self.result.first_answer = buf
        who = buf.rsplit(b"Hello from ", 1)[-1].strip().decode(errors="replace") \
            if b"Hello from " in buf else "echo"
        self.backends[who] = self.backends.get(who, 0) + 1


class UdpClientApp:
    def __init__(self, flow: str, dst: bytes, dport: int, count: int, payload: bytes,
                 ttl: int, sport: int, target: str, interval: int = UDP_INTERVAL) -> None:
        self.flow, self.dst, self.dport, self.count = flow, dst, dport, count
        self.interval = interval
        self.payload, self.ttl, self.sport = payload, ttl, sport
        self.result = FlowResult(flow, "udp", target)
        self.due: int | None = None

    def start(self, now: int, t: Transport, r: Reaction) -> None:
        t.udp[self.sport] = self
        t.errors[(17, self.sport)] = self
        self._send(now, t, r)

    def _send(self, now: int, t: Transport, r: Reaction) -> None:
        self.result.sent += 1
        t.udp_send(now, r, self.sport, self.dst, self.dport, self.payload, self.flow,
                   ttl=self.ttl)
        self.due = now + self.interval if self.result.sent < self.count else None

    def next_deadline(self) -> int | None:
        return self.due

    def on_deadline(self, now: int, t: Transport, r: Reaction) -> None:
        self.due = None
        self._send(now, t, r)

    def on_udp(self, now: int, t: Transport, r: Reaction, src: bytes, sport: int, dport: int,
               payload: bytes, frame: Frame) -> None:
        self.result.answer()
        self.result.answered_by = f"{ip_str(src)}:{sport}"

    def on_error(self, now: int, t: Transport, r: Reaction, what: SocketError,
                 frame: Frame) -> None:
        self.result.fail(what.status, what.text)
