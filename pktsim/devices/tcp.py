"""A small real TCP (RFC 9293) with Linux's choices on the wire.

Theory of operation
-------------------
A ``TcpConn`` is sans-IO: ``segment_in(now, seg)``, ``send(data)``, ``close()`` and
``on_deadline(now)`` push ``Segment``s into ``outbox`` and events for the application into
``events``; the namespace drains both.  The state machine is the table ``TRANSITIONS``
(state, event) -> next state, in h11's manner; anything absent from the table is answered
as RFC 9293 §3.10.7 says (RST for segments to a closed port, challenge-free ACK otherwise).

What Linux puts on the wire, and pktsim copies (docs/kernel-observations.md):
* SYN options ``mss,sackOK,TS val ecr 0,nop,wscale 10``; SYN/ACK the same with ``ecr``; every
  later segment ``nop,nop,TS``.  MSS = MTU - 40.  The SYN window is the largest multiple of
  the MSS under 65535 (64240 for 1460), the SYN/ACK's the same for MSS - 12 (65160).
* The first 16 data segments are acknowledged at once (quick-ack mode); a FIN received in
  ESTABLISHED switches to delayed-ACK mode, so an application that closes at once answers
  with a single FIN/ACK (``tcp_fin`` enters ping-pong mode).
* Retransmission timer 1 s doubling (``TCP_TIMEOUT_INIT``), 6 SYN retries, 15 data retries;
  TIME_WAIT lasts 60 s.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field

from pktsim.wire.parse import TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN
from pktsim.wire.tcp_options import WSCALE, parse_options, syn_options, ts_options

NS_PER_MS = 1_000_000
RTO_INIT_NS = 1_000 * NS_PER_MS
DELACK_NS = 40 * NS_PER_MS
TIME_WAIT_NS = 60_000 * NS_PER_MS
SYN_RETRIES = 6  # net.ipv4.tcp_syn_retries
# net.ipv4.tcp_syn_linear_timeouts (Linux >= 6.5, default 4): a SYN_SENT socket's first
# retransmissions keep the initial RTO, and that many retransmissions come on top of
# tcp_syn_retries (net/ipv4/tcp_timer.c tcp_write_timeout, tcp_retransmit_timer)
SYN_LINEAR_TIMEOUTS = 4
DATA_RETRIES = 15
QUICKACKS = 16
INIT_CWND = 10
MAX_CWND = 64  # segments in flight: a bound on slow start (no loss-driven congestion control)


def _model_timeout(boundary: int) -> int:
    """``tcp_model_timeout`` (net/ipv4/tcp_timer.c) for a SYN: how long ``boundary``
    exponential retransmissions from the initial RTO take, RTOs capped at TCP_RTO_MAX."""
    rto_max = 120_000 * NS_PER_MS
    thresh = (rto_max // RTO_INIT_NS).bit_length() - 1  # ilog2
    if boundary <= thresh:
        return ((2 << boundary) - 1) * RTO_INIT_NS
    return ((2 << thresh) - 1) * RTO_INIT_NS + (boundary - thresh) * rto_max


class SocketEvent(enum.Enum):
    """What a connection tells its application (``TcpHandler.on_tcp``).

    An enum rather than strings so that a misspelt event is an ``AttributeError`` where it is
    written, not a branch that silently never runs."""

    CONNECTED = "connected"  # the handshake completed
    DATA = "data"  # in-order payload arrived
    EOF = "eof"  # the peer sent FIN
    CLOSED = "closed"  # the connection is gone after an orderly close
    RESET = "reset"  # aborted; the data says why ("reset", "icmp", a timeout)
    ERROR = "error"  # an ICMP error about the connection (``tcp_v4_err``); soft once open


class State(enum.Enum):
    CLOSED = "CLOSED"
    LISTEN = "LISTEN"
    SYN_SENT = "SYN_SENT"
    SYN_RECV = "SYN_RECV"
    ESTABLISHED = "ESTABLISHED"
    FIN_WAIT_1 = "FIN_WAIT_1"
    FIN_WAIT_2 = "FIN_WAIT_2"
    CLOSE_WAIT = "CLOSE_WAIT"
    CLOSING = "CLOSING"
    LAST_ACK = "LAST_ACK"
    TIME_WAIT = "TIME_WAIT"


S = State
# (state, event) -> next state.  Events: "close" (application), "fin" (peer FIN arrived),
# "ack_of_fin" (our FIN acknowledged), "synack" (handshake completed), "rst".
TRANSITIONS: dict[tuple[State, str], State] = {
    (S.SYN_SENT, "synack"): S.ESTABLISHED,
    (S.SYN_RECV, "synack"): S.ESTABLISHED,
    (S.ESTABLISHED, "close"): S.FIN_WAIT_1,
    (S.ESTABLISHED, "fin"): S.CLOSE_WAIT,
    (S.FIN_WAIT_1, "ack_of_fin"): S.FIN_WAIT_2,
    (S.FIN_WAIT_1, "fin"): S.CLOSING,
    (S.FIN_WAIT_2, "fin"): S.TIME_WAIT,
    (S.CLOSING, "ack_of_fin"): S.TIME_WAIT,
    (S.CLOSE_WAIT, "close"): S.LAST_ACK,
    (S.LAST_ACK, "ack_of_fin"): S.CLOSED,
    (S.SYN_SENT, "close"): S.CLOSED,
    (S.SYN_RECV, "close"): S.FIN_WAIT_1,
}


@dataclass(slots=True)
class Segment:
    """A TCP segment's fields; the namespace adds the ports, addresses and checksum."""

    flags: int
    seq: int
    ack: int
    window: int
    options: bytes = b""
    payload: bytes = b""


@dataclass(slots=True)
class _Unacked:
    seq: int
    flags: int
    payload: bytes


@dataclass(slots=True)
class TcpConn:
    """One connection.  ``events`` collects ``(SocketEvent, data)`` for the application."""

    mss: int  # our MSS (from the route MTU)
    isn: int
    ts_offset: int
    state: State = State.CLOSED
    snd_una: int = 0
    snd_nxt: int = 0
    rcv_nxt: int = 0
    peer_mss: int = 536
    peer_wscale: int = 0
    peer_window: int = 65535
    peer_ts: int = 0
    ts_ok: bool = False
    cwnd: int = INIT_CWND
    quick: int = 0
    pingpong: bool = False
    got_data: bool = False
    rcv_wnd: int = 65535
    rcv_unacked: int = 0
    ack_pending: bool = False
    delack_at: int | None = None
    rto_at: int | None = None
    rto: int = RTO_INIT_NS
    retries: int = 0
    syn_at: int = 0  # when the first SYN left (retrans_stamp: tcp_write_timeout's clock)
    timewait_at: int | None = None
    fin_queued: bool = False
    fin_sent: bool = False
    # an ACK moved snd_una forward: the peer is there (``sk_dst_confirm`` in tcp_ack);
    # the transport confirms its neighbour entry and clears this
    progressed: bool = False
    sendq: bytearray = field(default_factory=bytearray)
    unacked: deque[_Unacked] = field(default_factory=deque)
    outbox: list[Segment] = field(default_factory=list)
    events: list[tuple[SocketEvent, bytes]] = field(default_factory=list)

    # -- application side -----------------------------------------------------------------
    def connect(self, now: int) -> None:
        self.state = State.SYN_SENT
        self.snd_una = self.isn
        self.snd_nxt = self.isn
        self._send_syn(now, TCP_SYN, 0)

    def accept(self, now: int, seg: Segment) -> None:
        """A listening socket got ``seg`` (a SYN): become SYN_RECV and answer SYN/ACK."""
        self._take_syn_options(seg)
        self.rcv_nxt = (seg.seq + 1) & 0xFFFFFFFF
        self.state = State.SYN_RECV
        self.snd_una = self.snd_nxt = self.isn
        self._send_syn(now, TCP_SYN | TCP_ACK, self.rcv_nxt)

    def send(self, now: int, data: bytes) -> None:
        self.sendq += data
        self._push(now)

    def close(self, now: int) -> None:
        nxt = TRANSITIONS.get((self.state, "close"))
        if nxt is None:
            return
        if self.state == State.SYN_SENT:
            self.state = nxt
            return
        self.state = nxt
        self.fin_queued = True
        self._push(now)

    # -- segments in ----------------------------------------------------------------------
    def segment_in(self, now: int, seg: Segment, tsval: int | None) -> None:
        if seg.flags & TCP_RST:
            self._reset("reset")
            return
        if tsval is not None:
            self.peer_ts = tsval
        if self.state == State.SYN_SENT:
            self._synsent_in(now, seg)
            return
        if seg.flags & TCP_SYN:  # a retransmitted SYN or SYN/ACK: re-acknowledge
            self._ack_now(now)
            return
        if seg.flags & TCP_ACK:
            self._ack_in(now, seg)
        if self.state == State.CLOSED:
            return
        self._data_in(now, seg)

    def _synsent_in(self, now: int, seg: Segment) -> None:
        if not (seg.flags & TCP_SYN and seg.flags & TCP_ACK) or seg.ack != self.snd_nxt:
            return
        self._take_syn_options(seg)
        self.rcv_nxt = (seg.seq + 1) & 0xFFFFFFFF
        self.snd_una = seg.ack
        self.progressed = True
        self.unacked.clear()
        self._stop_rto()
        self.state = TRANSITIONS[(self.state, "synack")]
        self.peer_window = seg.window
        self.events.append((SocketEvent.CONNECTED, b""))
        self._ack_now(now)
        self._push(now)

    def _ack_in(self, now: int, seg: Segment) -> None:
        self.peer_window = seg.window << self.peer_wscale
        if self.state == State.SYN_RECV and seg.ack == self.snd_nxt:
            self.state = TRANSITIONS[(self.state, "synack")]
            self.snd_una = seg.ack
            self.progressed = True
            self.unacked.clear()
            self._stop_rto()
            self.events.append((SocketEvent.CONNECTED, b""))
            return
        if _after(seg.ack, self.snd_una) and not _after(seg.ack, self.snd_nxt):
            self.snd_una = seg.ack
            self.progressed = True
            unacked = self.unacked
            while unacked and not _after(_end(unacked[0]), seg.ack):
                unacked.popleft()
            self.cwnd = min(self.cwnd + 1, MAX_CWND)
            self.retries = 0
            self.rto = RTO_INIT_NS
            if self.unacked:
                self.rto_at = now + self.rto
            else:
                self._stop_rto()
            if self.fin_sent and self.snd_una == self.snd_nxt:
                self._our_fin_acked(now)
        self._push(now)

    def _our_fin_acked(self, now: int) -> None:
        nxt = TRANSITIONS.get((self.state, "ack_of_fin"))
        if nxt is None:
            return
        self.state = nxt
        if nxt == State.TIME_WAIT:
            self.timewait_at = now + TIME_WAIT_NS
        elif nxt == State.CLOSED:
            self.events.append((SocketEvent.CLOSED, b""))

    def _data_in(self, now: int, seg: Segment) -> None:
        fin = bool(seg.flags & TCP_FIN)
        if not seg.payload and not fin:
            return
        if seg.seq != self.rcv_nxt:  # out of order or duplicate: a duplicate ACK at once
            self._ack_now(now)
            return
        if seg.payload:
            self.rcv_nxt = (self.rcv_nxt + len(seg.payload)) & 0xFFFFFFFF
            if not self.got_data:  # tcp_event_data_recv(): first data -> quick-ack mode
                self.got_data = True
                self.quick = QUICKACKS
            self.rcv_unacked += len(seg.payload)
            self.events.append((SocketEvent.DATA, seg.payload))
        if fin:
            self._fin_in(now)
            return
        self._schedule_ack(now, len(seg.payload))

    def _fin_in(self, now: int) -> None:
        self.rcv_nxt = (self.rcv_nxt + 1) & 0xFFFFFFFF
        nxt = TRANSITIONS.get((self.state, "fin"))
        if nxt is None:
            return
        was = self.state
        self.state = nxt
        self.events.append((SocketEvent.EOF, b""))
        if was == State.ESTABLISHED:
            # tcp_fin(): CLOSE_WAIT enters ping-pong mode, so the ACK waits for our FIN.
            self.pingpong = True
            self.ack_pending = True
            self.delack_at = now + DELACK_NS
            return
        if nxt == State.TIME_WAIT:
            self.timewait_at = now + TIME_WAIT_NS
        self._ack_now(now)

    def _schedule_ack(self, now: int, size: int) -> None:
        """``__tcp_ack_snd_check``: at once in quick-ack mode or past two full segments."""
        if (self.quick > 0 and not self.pingpong) or self.rcv_unacked >= 2 * (self.mss - 12):
            self._ack_now(now)
            if self.quick > 0:
                self.quick -= 1
            return
        self.ack_pending = True
        if self.delack_at is None:
            self.delack_at = now + DELACK_NS

    # -- timers ---------------------------------------------------------------------------
    def next_deadline(self) -> int | None:
        times = [t for t in (self.delack_at, self.rto_at, self.timewait_at) if t is not None]
        return min(times) if times else None

    def on_deadline(self, now: int) -> None:
        if self.delack_at is not None and now >= self.delack_at:
            self.delack_at = None
            if self.ack_pending:
                self._ack_now(now)
        if self.rto_at is not None and now >= self.rto_at:
            self._retransmit(now)
        if self.timewait_at is not None and now >= self.timewait_at:
            self.timewait_at = None
            self.state = State.CLOSED
            self.events.append((SocketEvent.CLOSED, b""))

    def _retransmit(self, now: int) -> None:
        """The retransmission timer, as Linux >= 6.5's ``tcp_retransmit_timer``: a SYN is
        retransmitted ``SYN_RETRIES + SYN_LINEAR_TIMEOUTS`` times, the first
        ``SYN_LINEAR_TIMEOUTS + 1`` gaps at the initial RTO (1, 1, 1, 1, 1, 2, 4, 8 … s: the
        linear backoff stops once ``icsk_retransmits`` exceeds the sysctl); everything else
        doubles its RTO each time."""
        syn_sent = self.state == State.SYN_SENT
        limit = SYN_RETRIES + SYN_LINEAR_TIMEOUTS if syn_sent else \
            SYN_RETRIES if self.state == State.SYN_RECV else DATA_RETRIES
        # and, whatever the count, once the time exponential backoff would take has passed
        # (retransmits_timed_out, tcp_model_timeout: (2 << syn_retries) - 1 initial RTOs)
        expired = syn_sent and now - self.syn_at >= _model_timeout(SYN_RETRIES)
        if not self.unacked or self.retries >= limit or expired:
            self.rto_at = None
            if self.unacked:
                self._reset("timeout")
            return
        self.retries += 1
        if not syn_sent or self.retries > SYN_LINEAR_TIMEOUTS:
            self.rto *= 2
        self.rto_at = now + self.rto
        first = self.unacked[0]
        if first.flags & TCP_SYN:
            self.outbox.append(self._syn_segment(now, first.flags, self.rcv_nxt))
        else:
            self._emit(now, first.flags, first.seq, first.payload)

    def mtu_reduced(self, now: int, mss: int) -> None:
        """The path MTU fell (an ICMPv6 Packet Too Big, ``tcp_v6_mtu_reduced``): the MSS
        follows it (``tcp_sync_mss``) and what is in flight and too big is cut to fit and
        sent again at once (``tcp_simple_retransmit``: no backoff, the window kept)."""
        if mss >= self.mss:
            return
        self.mss = mss
        size = min(mss, self.peer_mss) - (12 if self.ts_ok else 0)
        again: deque[_Unacked] = deque()
        resend: list[_Unacked] = []
        for u in self.unacked:
            if len(u.payload) <= size:
                again.append(u)
                continue
            for at in range(0, len(u.payload), size):
                piece = u.payload[at:at + size]
                last = at + size >= len(u.payload)
                flags = u.flags if last else u.flags & ~(TCP_PSH | TCP_FIN)
                part = _Unacked((u.seq + at) & 0xFFFFFFFF, flags, piece)
                again.append(part)
                resend.append(part)
        self.unacked = again
        for u in resend:
            self._emit(now, u.flags, u.seq, u.payload)

    def _stop_rto(self) -> None:
        self.rto_at = None

    # -- segments out ---------------------------------------------------------------------
    def _send_syn(self, now: int, flags: int, ack: int) -> None:
        self.syn_at = now
        self.outbox.append(self._syn_segment(now, flags, ack))
        self.unacked.append(_Unacked(self.snd_nxt, flags, b""))
        self.snd_nxt = (self.snd_nxt + 1) & 0xFFFFFFFF
        self.rto_at = now + self.rto

    def _syn_segment(self, now: int, flags: int, ack: int) -> Segment:
        eff = self.mss - 12 if flags & TCP_ACK else self.mss
        window = (65535 // eff) * eff
        self.rcv_wnd = window
        ecr = self.peer_ts if flags & TCP_ACK else 0
        return Segment(flags, self.isn, ack, window,
                       syn_options(self.mss, self._tsval(now), ecr))

    def _take_syn_options(self, seg: Segment) -> None:
        opts = parse_options(seg.options)
        self.peer_mss = int(opts.get("mss", 536))  # type: ignore[arg-type]
        self.peer_wscale = int(opts.get("wscale", 0))  # type: ignore[arg-type]
        ts = opts.get("ts")
        self.ts_ok = isinstance(ts, tuple)
        if isinstance(ts, tuple):
            self.peer_ts = ts[0]

    def _tsval(self, now: int) -> int:
        return (now // NS_PER_MS + self.ts_offset) & 0xFFFFFFFF

    def _window(self) -> int:
        """``tcp_select_window``: the initial window, scaled, rounded up to the scale unit."""
        return -(-self.rcv_wnd // (1 << WSCALE))

    def _emit(self, now: int, flags: int, seq: int, payload: bytes) -> None:
        opts = ts_options(self._tsval(now), self.peer_ts) if self.ts_ok else b""
        self.outbox.append(Segment(flags, seq, self.rcv_nxt, self._window(), opts, payload))
        self.rcv_unacked = 0
        self.ack_pending = False
        self.delack_at = None

    def _ack_now(self, now: int) -> None:
        self._emit(now, TCP_ACK, self.snd_nxt, b"")

    def _push(self, now: int) -> None:
        """Send what the peer's window and our congestion window allow, then a FIN."""
        if self.state not in (State.ESTABLISHED, State.CLOSE_WAIT, State.FIN_WAIT_1,
                              State.LAST_ACK):
            return
        size = min(self.mss, self.peer_mss) - (12 if self.ts_ok else 0)
        while self.sendq and len(self.unacked) < self.cwnd:
            in_flight = (self.snd_nxt - self.snd_una) & 0xFFFFFFFF
            room = self.peer_window - in_flight
            if room <= 0:
                break
            chunk = bytes(self.sendq[:min(size, room)])
            del self.sendq[:len(chunk)]
            last = not self.sendq
            flags = TCP_ACK | (TCP_PSH if last else 0)
            self._emit(now, flags, self.snd_nxt, chunk)
            self.unacked.append(_Unacked(self.snd_nxt, flags, chunk))
            self.snd_nxt = (self.snd_nxt + len(chunk)) & 0xFFFFFFFF
            if self.rto_at is None:
                self.rto_at = now + self.rto
        if self.fin_queued and not self.fin_sent and not self.sendq:
            self.fin_sent = True
            self._emit(now, TCP_FIN | TCP_ACK, self.snd_nxt, b"")
            self.unacked.append(_Unacked(self.snd_nxt, TCP_FIN | TCP_ACK, b""))
            self.snd_nxt = (self.snd_nxt + 1) & 0xFFFFFFFF
            if self.rto_at is None:
                self.rto_at = now + self.rto

    def _reset(self, why: str) -> None:
        self.state = State.CLOSED
        self.unacked.clear()
        self.rto_at = self.delack_at = self.timewait_at = None
        self.events.append((SocketEvent.RESET, why.encode()))


def _after(a: int, b: int) -> bool:
    """``a`` is after ``b`` in 32-bit sequence space."""
    return 0 < ((a - b) & 0xFFFFFFFF) < 0x80000000


def _end(u: _Unacked) -> int:
    extra = 1 if u.flags & (TCP_SYN | TCP_FIN) else 0
    return (u.seq + len(u.payload) + extra) & 0xFFFFFFFF
