"""The transport layer of a namespace: ICMP echo, UDP sockets, TCP sockets, and errors.

Theory of operation
-------------------
``Transport.deliver`` is ``ip_local_deliver``'s protocol switch.  ICMP echo requests are
answered by the kernel itself (no DF, an IP id from the per-destination generator, TTL 64);
echo replies and ICMP errors go to the socket they concern.  UDP goes to the bound socket or
earns an ICMP port unreachable; TCP goes to the connection (by 4-tuple), then the listener
(a SYN), else earns a RST (``tcp_v4_send_reset``: ``seq = ack`` when the segment had an ACK,
otherwise ``RST|ACK`` acknowledging it).

Applications are sans-IO handlers: they are called with ``(now, transport, reaction)`` and
answer by calling ``udp_send``/``tcp_connect``/``TcpSocket.send`` on the transport, which
appends frames to the reaction.  An application hears of a segment or a datagram
``APP_WAKEUP_NS`` after the kernel took it in — the time to wake the process up — so
everything the kernel does at once (an ACK, a hairpinned copy crossing the bridge and back)
is on the wire before the application's answer, as on Linux, where the softirq finishes
before the woken process runs (checked against the kernel, docs/kernel-observations.md §9).

Sockets sending with DF (TCP, UDP, ping) number their IP ids from a per-socket counter
(``inet_id``); a SYN/ACK carries id 0 (``ip_build_and_send_pkt``).

IPv6 (16-byte addresses) takes the same paths: ICMPv6 echo is answered by the kernel
(``icmpv6_echo_reply``), ICMPv6 errors reach the socket they quote, the MSS is the MTU less
60 (``tcp_v6_connect``), and every packet carries a flow label (``auto_flowlabels`` 1): a
TCP socket's comes from its random ``sk_txhash`` (``tcp_v6_connect``; the SYN/ACK's and
the accepted socket's from the request's), the rest from a hash of the flow
(``ip6_make_flowlabel``).

The transport sees its namespace only as an ``IpStack``: the few things a socket layer asks
of IP (a source address and path MTU, IP output, ids, ICMP errors, the tunnel sockets).  It
does not import ``netns`` and cannot reach the namespace's tables, so the two layers can be
tested and changed apart; ``Netns`` implements the protocol.
"""

from __future__ import annotations

import heapq
import random
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from pktsim.core.events import Event
from pktsim.core.frame import DropReason, Frame, Reaction
from pktsim.devices import icmp
from pktsim.devices.outcome import SocketError
from pktsim.devices.tcp import Segment, SocketEvent, TcpConn, parse_options
from pktsim.wire import build, ip6
from pktsim.wire.build import IP_DF, PROTO_ICMP, PROTO_ICMPV6, PROTO_IPIP, PROTO_TCP, PROTO_UDP
from pktsim.wire.checksum import l4_checksum
from pktsim.wire.parse import TCP_ACK, TCP_RST, TCP_SYN, ip_str, sock_str

__all__ = ["APP_WAKEUP_NS", "EPHEMERAL", "App", "IpStack", "SocketEvent", "TcpHandler",
           "TcpSocket", "Transport", "UdpHandler"]

_TCPH = struct.Struct("!HHIIBBHHH")
EPHEMERAL = (32768, 60999)  # net.ipv4.ip_local_port_range
APP_WAKEUP_NS = 10_000  # from the kernel queueing data to the process handling it


class IpStack(Protocol):
    """What the transport needs from the IP layer of its namespace, and nothing more."""

    @property
    def rng(self) -> random.Random:
        """The namespace's random stream: ports, ISNs, timestamps and ids draw from it."""
        ...

    def new_pid(self) -> int:
        """A packet id for a frame the transport makes (the trace follows it by this)."""
        ...

    def ip_id(self, dst: bytes) -> int:
        """``ip_select_ident``: the IP id of a packet sent without a socket counter."""
        ...

    def source_for(self, dst: bytes) -> tuple[bytes | None, int | None]:
        """The source address a new packet to ``dst`` leaves with (``None``: no route, or a
        route but no address) and the MTU of its device (``None`` when unknown)."""
        ...

    def ip_output(self, now: int, pkt: bytes, frame: Frame, r: Reaction) -> None:
        """Send a locally made IPv4 (header complete, checksum set) or IPv6 packet."""
        ...

    def flow_label(self, src: bytes, dst: bytes, proto: int, ports: bytes) -> int:
        """The automatic IPv6 flow label of a packet of this flow (no socket's own)."""
        ...

    def confirm_neighbour(self, now: int, dst: bytes) -> None:
        """A local socket heard from ``dst``: its next hop's neighbour entry is confirmed
        (``dst_confirm_neigh``)."""
        ...

    def icmp_error(self, now: int, icmp_type: int, code: int, offending: bytes, tags: Frame,
                   r: Reaction) -> None:
        """``icmp_send`` about ``offending`` (a protocol or port nobody handles)."""
        ...

    def tunnel_socket(self, key: str) -> str | None:
        """The port of the tunnel device whose socket ``key`` (``ipip``, ``udp/8472``) is,
        or ``None`` when no tunnel listens there."""
        ...


class UdpHandler(Protocol):
    def on_udp(self, now: int, t: Transport, r: Reaction, src: bytes, sport: int, dport: int,
               payload: bytes, frame: Frame) -> None: ...


class TcpHandler(Protocol):
    def on_tcp(self, now: int, t: Transport, r: Reaction, sock: TcpSocket, event: SocketEvent,
               data: bytes) -> None: ...


class App(Protocol):
    """Something that runs in a namespace: started once, woken by its own deadlines."""

    def start(self, now: int, t: Transport, r: Reaction) -> None: ...

    def next_deadline(self) -> int | None: ...

    def on_deadline(self, now: int, t: Transport, r: Reaction) -> None: ...


@dataclass(slots=True, eq=False)
class TcpSocket:
    local: bytes
    lport: int
    remote: bytes
    rport: int
    conn: TcpConn
    handler: TcpHandler
    flow: str
    ttl: int = 64
    ip_id: int = 0
    sk_err: SocketError | None = None  # the last error an ICMP message or the stack reported
    flow_label: int = 0  # IPv6: from the socket's sk_txhash (0 for IPv4)

    @property
    def key(self) -> tuple[bytes, int, bytes, int]:
        return (self.local, self.lport, self.remote, self.rport)

    def send(self, now: int, t: Transport, r: Reaction, data: bytes) -> None:
        self.conn.send(now, data)
        t.flush(now, self, r)

    def close(self, now: int, t: Transport, r: Reaction) -> None:
        self.conn.close(now)
        t.flush(now, self, r)


@dataclass(slots=True)
class Transport:
    """The namespace's sockets; ``stack`` is its IP layer, the only way out."""

    stack: IpStack
    udp: dict[int, UdpHandler] = field(default_factory=dict)
    listeners: dict[int, TcpHandler] = field(default_factory=dict)
    conns: dict[tuple[bytes, int, bytes, int], TcpSocket] = field(default_factory=dict)
    echo: dict[int, App] = field(default_factory=dict)  # ICMP echo id -> ping app
    apps: list[App] = field(default_factory=list)
    errors: dict[tuple[int, int], App] = field(default_factory=dict)  # (proto, port) -> app
    # connection timers: a heap of (deadline, seq, socket), stale entries skipped lazily
    _timers: list[tuple[int, int, TcpSocket]] = field(default_factory=list)
    _seq: int = 0
    _ports: dict[int, int] = field(default_factory=dict)  # local port -> sockets using it
    # application wake-ups: (due, seq, callback(now, reaction))
    _wakeups: list[tuple[int, int, Callable[[int, Reaction], None]]] = field(
        default_factory=list)

    def wake(self, now: int, callback: Callable[[int, Reaction], None]) -> None:
        """Run ``callback`` when the application gets the CPU (``APP_WAKEUP_NS`` later)."""
        self._seq += 1
        heapq.heappush(self._wakeups, (now + APP_WAKEUP_NS, self._seq, callback))

    # -- timers ---------------------------------------------------------------------------
    def _touch(self, sock: TcpSocket) -> None:
        deadline = sock.conn.next_deadline()
        if deadline is not None:
            self._seq += 1
            heapq.heappush(self._timers, (deadline, self._seq, sock))

    def _conn_deadline(self) -> int | None:
        timers = self._timers
        while timers:
            deadline, _, sock = timers[0]
            if sock.conn.next_deadline() == deadline and self.conns.get(sock.key) is sock:
                return deadline
            heapq.heappop(timers)
        return None

    def next_deadline(self) -> int | None:
        times = [a.next_deadline() for a in self.apps]
        times.append(self._conn_deadline())
        if self._wakeups:
            times.append(self._wakeups[0][0])
        real = [t for t in times if t is not None]
        return min(real) if real else None

    def on_deadline(self, now: int, r: Reaction) -> None:
        while self._wakeups and self._wakeups[0][0] <= now:
            _, _, callback = heapq.heappop(self._wakeups)
            callback(now, r)
        while True:
            deadline = self._conn_deadline()
            if deadline is None or deadline > now:
                break
            _, _, sock = heapq.heappop(self._timers)
            sock.conn.on_deadline(now)
            self.flush(now, sock, r)
        for app in list(self.apps):
            deadline = app.next_deadline()
            if deadline is not None and deadline <= now:
                app.on_deadline(now, self, r)

    def start(self, now: int, app: App) -> Reaction:
        r = Reaction()
        self.apps.append(app)
        app.start(now, self, r)
        return r

    def ephemeral_port(self) -> int:
        lo, hi = EPHEMERAL
        while True:
            port = self.stack.rng.randint(lo, hi)
            if port not in self._ports and port not in self.udp:
                return port

    def _add(self, sock: TcpSocket) -> None:
        self.conns[sock.key] = sock
        self._ports[sock.lport] = self._ports.get(sock.lport, 0) + 1

    def _remove(self, sock: TcpSocket) -> None:
        if self.conns.pop(sock.key, None) is not None:
            left = self._ports[sock.lport] - 1
            if left:
                self._ports[sock.lport] = left
            else:
                del self._ports[sock.lport]

    # -- sending --------------------------------------------------------------------------
    def udp_send(self, now: int, r: Reaction, sport: int, dst: bytes, dport: int,
                 payload: bytes, flow: str, *, ttl: int = 64, ip_id: int | None = None) -> None:
        src, _mtu = self.stack.source_for(dst)
        if src is None:
            r.drop_as(f"sendto {ip_str(dst)}: network unreachable",
                      DropReason.NO_ROUTE, "", None)
            return
        segment = build.udp(src, dst, sport, dport, payload)
        if len(src) == 4:
            ident = self.stack.rng.getrandbits(16) if ip_id is None else ip_id
            pkt = build.ipv4(src, dst, PROTO_UDP, segment, ttl=ttl, ident=ident, flags=IP_DF)
        else:
            pkt = build.ipv6(src, dst, PROTO_UDP, segment, hlim=ttl,
                             flow=self.stack.flow_label(src, dst, PROTO_UDP, segment[:4]))
        frame = Frame(pkt, self.stack.new_pid(), flow)
        r.step(Event.SEND, f"UDP {sock_str(src, sport)} -> {sock_str(dst, dport)}, "
               f"{len(payload)} bytes", "", frame)
        self.stack.ip_output(now, pkt, frame, r)

    def ping(self, now: int, r: Reaction, dst: bytes, ident: int, seq: int, payload: bytes,
             flow: str, *, ttl: int = 64, ip_id: int = 0) -> None:
        src, _mtu = self.stack.source_for(dst)
        if src is None:
            r.drop_as(f"ping {ip_str(dst)}: network unreachable",
                      DropReason.NO_ROUTE, "", None)
            return
        if len(src) == 4:
            body = build.icmp_echo(8, ident, seq, payload)
            pkt = build.ipv4(src, dst, PROTO_ICMP, body, ttl=ttl, ident=ip_id, flags=IP_DF)
        else:
            body = ip6.echo(src, dst, ip6.ICMP6_ECHO_REQUEST, ident, seq, payload)
            pkt = build.ipv6(src, dst, PROTO_ICMPV6, body, hlim=ttl,
                             flow=self.stack.flow_label(src, dst, PROTO_ICMPV6, body[4:6]))
        frame = Frame(pkt, self.stack.new_pid(), flow)
        r.step(Event.SEND, f"ping {ip_str(dst)} id {ident} seq {seq}", "", frame)
        self.stack.ip_output(now, pkt, frame, r)

    def tcp_connect(self, now: int, r: Reaction, dst: bytes, dport: int, handler: TcpHandler,
                    flow: str, *, ttl: int = 64) -> TcpSocket | None:
        src, mtu = self.stack.source_for(dst)
        if src is None:
            r.drop_as(f"connect {ip_str(dst)}:{dport}: network unreachable",
                      DropReason.NO_ROUTE, "", None)
            return None
        rng = self.stack.rng
        conn = TcpConn(mss=min(65536 if mtu is None else mtu, 65535) - _HEADERS[len(src)],
                       isn=rng.getrandbits(32), ts_offset=rng.getrandbits(32))
        sock = TcpSocket(src, self.ephemeral_port(), dst, dport, conn, handler, flow, ttl,
                         rng.getrandbits(16))
        if len(src) == 16:
            sock.flow_label = rng.getrandbits(20)
        self._add(sock)
        conn.connect(now)
        self.flush(now, sock, r)
        return sock

    def flush(self, now: int, sock: TcpSocket, r: Reaction) -> None:
        """Put the connection's queued segments on the wire, then run its app events."""
        conn = sock.conn
        while conn.outbox or conn.events:
            segments, conn.outbox = conn.outbox, []
            for seg in segments:
                self._tcp_out(now, sock, seg, r)
            events, conn.events = conn.events, []
            for event, data in events:
                self.wake(now, _tcp_event(self, sock, event, data))
        if conn.state.value == "CLOSED":
            self._remove(sock)
        else:
            self._touch(sock)

    def _tcp_out(self, now: int, sock: TcpSocket, seg: Segment, r: Reaction) -> None:
        synack = seg.flags & (TCP_SYN | TCP_ACK) == (TCP_SYN | TCP_ACK)
        body = build.tcp(sock.local, sock.remote, sock.lport, sock.rport, seg.seq, seg.ack,
                         seg.flags, seg.window, seg.payload, seg.options)
        if len(sock.local) == 4:
            ident = 0 if synack else sock.ip_id
            if not synack:
                sock.ip_id = (sock.ip_id + 1) & 0xFFFF
            pkt = build.ipv4(sock.local, sock.remote, PROTO_TCP, body, ttl=sock.ttl,
                             ident=ident, flags=IP_DF)
        else:
            pkt = build.ipv6(sock.local, sock.remote, PROTO_TCP, body, hlim=sock.ttl,
                             flow=sock.flow_label)
        frame = Frame(pkt, self.stack.new_pid(), sock.flow)
        self.stack.ip_output(now, pkt, frame, r)

    # -- receiving ------------------------------------------------------------------------
    def deliver(self, now: int, port: str, pkt: bytes, frame: Frame, r: Reaction) -> None:
        """``ip_local_deliver`` / ``ip6_input``'s protocol switch: ICMP is IPv4's, ICMPv6
        IPv6's; a protocol the family has no handler for is unsupported."""
        v6 = pkt[0] >> 4 == 6
        if v6:
            proto, body = pkt[6], pkt[40:]
        else:
            proto = pkt[9]
            body = pkt[(pkt[0] & 0x0F) * 4:]
        if proto == PROTO_ICMP and not v6:
            icmp.icmp_in(self, now, port, pkt, body, frame, r)
        elif proto == PROTO_ICMPV6 and v6:
            icmp.icmp6_in(self, now, port, pkt, body, frame, r)
        elif proto == PROTO_UDP:
            self._udp_in(now, port, pkt, body, frame, r)
        elif proto == PROTO_TCP:
            self._tcp_in(now, port, pkt, body, frame, r)
        elif proto == PROTO_IPIP and not v6 and \
                (tunnel := self.stack.tunnel_socket("ipip")) is not None:
            r.step(Event.DELIVER, f"IP-in-IP to {tunnel.removesuffix('.stack')}", port, frame)
            r.send(tunnel, frame.with_data(body))
        else:
            r.drop(DropReason.UNSUPPORTED, port, frame, f"IP protocol {proto}")
            self.stack.icmp_error(now, 3, 2, pkt, frame, r)

    def path_mtu(self, now: int, offending: bytes, mtu: int, r: Reaction) -> bool:
        """A Packet Too Big about a TCP segment of ours: the connection shrinks its segments
        to the new path MTU (``tcp_v6_err``: not an error); True when a socket took it.
        The route's PMTU cache (what a later connection would start from) is not kept."""
        if offending[6] != PROTO_TCP or len(offending) < 44 or mtu < ip6.MIN_MTU:
            return False
        sport, dport = struct.unpack_from("!HH", offending, 40)
        sock = self.conns.get((offending[8:24], sport, offending[24:40], dport))
        if sock is None:
            return False
        sock.conn.mtu_reduced(now, mtu - _HEADERS[16])
        self.flush(now, sock, r)
        return True

    def local_error(self, now: int, offending: bytes, what: SocketError, r: Reaction,
                    frame: Frame) -> None:
        """Tell the socket that sent ``offending`` about an error (``ip_icmp_error``)."""
        if offending[0] >> 4 == 6:
            ihl, proto, src, dst = 40, offending[6], offending[8:24], offending[24:40]
        else:
            ihl, proto = (offending[0] & 0x0F) * 4, offending[9]
            src, dst = offending[12:16], offending[16:20]
        if len(offending) < ihl + 8:
            return
        sport, dport = struct.unpack_from("!HH", offending, ihl)
        if proto == PROTO_TCP:
            sock = self.conns.get((src, sport, dst, dport))
            if sock is not None:
                sock.sk_err = what
                sock.handler.on_tcp(now, self, r, sock, SocketEvent.ERROR, what.text.encode())
            return
        if proto in (PROTO_ICMP, PROTO_ICMPV6):  # the echo id stands where a port would
            proto = PROTO_ICMP
            sport = (offending[ihl + 4] << 8) | offending[ihl + 5]
        app = self.errors.get((proto, sport))
        if app is not None and hasattr(app, "on_error"):
            app.on_error(now, self, r, what, frame)

    def _udp_in(self, now: int, port: str, pkt: bytes, body: bytes, frame: Frame,
                r: Reaction) -> None:
        if len(body) < 8:
            r.drop(DropReason.MALFORMED, port, frame, "UDP header")
            return
        sport, dport, length, csum = struct.unpack_from("!HHHH", body)
        if length < 8 or length > len(body):
            r.drop(DropReason.MALFORMED, port, frame, f"UDP length {length}")
            return
        body = body[:length]
        src, dst = (pkt[12:16], pkt[16:20]) if pkt[0] >> 4 == 4 else (pkt[8:24], pkt[24:40])
        if (csum or len(src) == 16) and l4_checksum(src, dst, PROTO_UDP, body) != 0:
            r.drop(DropReason.BAD_CHECKSUM, port, frame, "UDP")
            return
        # the VXLAN socket of the packet's family (flannel.1's IPv4, flannel-v6.1's IPv6)
        tunnel = self.stack.tunnel_socket(f"udp/{dport}" if len(src) == 4 else f"udp6/{dport}")
        if tunnel is not None:  # the VXLAN socket: hand the payload to the device
            r.step(Event.DELIVER, f"UDP {dport}: VXLAN socket", port, frame)
            r.send(tunnel, frame.with_data(body[8:]))
            return
        handler = self.udp.get(dport)
        if handler is None:
            r.drop(DropReason.NO_LISTENER, port, frame, f"UDP port {dport}")
            self.stack.icmp_error(now, 3, 3, pkt, frame, r)
            return
        r.step(Event.DELIVER, f"UDP to port {dport} ({type(handler).__name__})", port, frame)
        payload = body[8:]
        self.wake(now, lambda at, rr: handler.on_udp(at, self, rr, src, sport, dport, payload,
                                                      frame))

    def _tcp_in(self, now: int, port: str, pkt: bytes, body: bytes, frame: Frame,
                r: Reaction) -> None:
        if len(body) < 20 or (body[12] >> 4) * 4 < 20 or (body[12] >> 4) * 4 > len(body):
            r.drop(DropReason.MALFORMED, port, frame, "TCP header")
            return
        src, dst = (pkt[12:16], pkt[16:20]) if pkt[0] >> 4 == 4 else (pkt[8:24], pkt[24:40])
        if l4_checksum(src, dst, PROTO_TCP, body) != 0:
            r.drop(DropReason.BAD_CHECKSUM, port, frame, "TCP")
            return
        sport, dport, seq, ack, off, flags, window, _c, _u = _TCPH.unpack_from(body)
        hlen = (off >> 4) * 4
        seg = Segment(flags, seq, ack, window, body[20:hlen], body[hlen:])
        ts = parse_options(seg.options).get("ts") if hlen > 20 else None
        tsval = ts[0] if isinstance(ts, tuple) else None
        sock = self.conns.get((dst, dport, src, sport))
        if sock is not None:
            r.step(Event.DELIVER, f"TCP to {sock_str(dst, dport)} ({sock.conn.state.value})",
                   port, frame)
            conn = sock.conn
            conn.segment_in(now, seg, tsval)
            if conn.progressed:
                conn.progressed = False
                self.stack.confirm_neighbour(now, src)
            self.flush(now, sock, r)
            return
        listener = self.listeners.get(dport)
        if listener is not None and flags & (TCP_SYN | TCP_ACK | TCP_RST) == TCP_SYN:
            self._accept(now, src, dst, seg, sport, dport, listener, frame, r, port)
            return
        if flags & TCP_RST:
            r.step(Event.DELIVER, "RST for no connection: ignored", port, frame)
            return
        r.drop(DropReason.NO_LISTENER, port, frame, f"TCP port {dport}: send RST")
        self._send_rst(now, src, dst, seg, sport, dport, frame, r)

    def _accept(self, now: int, src: bytes, dst: bytes, seg: Segment, sport: int, dport: int,
                listener: TcpHandler, frame: Frame, r: Reaction, port: str) -> None:
        _, mtu = self.stack.source_for(src)
        rng = self.stack.rng
        conn = TcpConn(mss=min(1500 if mtu is None else mtu, 65535) - _HEADERS[len(src)],
                       isn=rng.getrandbits(32), ts_offset=rng.getrandbits(32))
        sock = TcpSocket(dst, dport, src, sport, conn, listener, frame.flow, 64,
                         rng.getrandbits(16))
        if len(src) == 16:  # the request's txhash (tcp_conn_request), kept by the child
            sock.flow_label = rng.getrandbits(20)
        self._add(sock)
        r.step(Event.DELIVER, f"TCP SYN to listening port {dport}: SYN/ACK", port, frame)
        conn.accept(now, seg)
        self.flush(now, sock, r)

    def _send_rst(self, now: int, src: bytes, dst: bytes, seg: Segment, sport: int,
                  dport: int, frame: Frame, r: Reaction) -> None:
        if seg.flags & TCP_ACK:
            flags, seq, ack = TCP_RST, seg.ack, 0
        else:
            extra = 1 if seg.flags & TCP_SYN else 0
            flags, seq, ack = TCP_RST | TCP_ACK, 0, seg.seq + len(seg.payload) + extra
        body = build.tcp(dst, src, dport, sport, seq, ack, flags, 0)
        if len(src) == 4:
            out = build.ipv4(dst, src, PROTO_TCP, body, ttl=64, ident=0, flags=IP_DF)
        else:  # tcp_v6_send_response: no socket, the flow's hash labels it
            out = build.ipv6(dst, src, PROTO_TCP, body, hlim=64,
                             flow=self.stack.flow_label(dst, src, PROTO_TCP, body[:4]))
        self.stack.ip_output(now, out, Frame(out, self.stack.new_pid(), frame.flow), r)


_HEADERS = {4: 40, 16: 60}  # IP + TCP header bytes: MSS = MTU - this (tcp_mtu_to_mss)


def _tcp_event(t: Transport, sock: TcpSocket, event: SocketEvent,
               data: bytes) -> Callable[[int, Reaction], None]:
    return lambda now, r: sock.handler.on_tcp(now, t, r, sock, event, data)
