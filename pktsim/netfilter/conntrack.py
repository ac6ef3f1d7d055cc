"""The connection tracking table of one namespace (``nf_conntrack``), on the virtual clock.

Theory of operation
-------------------
Every packet that reaches the first hook (PREROUTING, or OUTPUT for a local one) is
*classified* by ``track``:

* its tuple (``tuples.py``) is looked up among the entries; an entry found by its original
  tuple makes the packet direction 0, by its reply tuple direction 1.  Its ``ctstate`` is
  ESTABLISHED in the reply direction or once a reply has been seen, NEW before that;
* nothing found: a new entry is created, *unconfirmed* — it goes into the table only when
  the packet survives to the last hook (``confirm`` at POSTROUTING or INPUT), so a packet
  dropped on the way leaves nothing behind;
* an ICMP error (unreachable, time exceeded, ...) is looked up by the *inverted tuple of the
  packet it quotes*: found, it is RELATED to that entry and is un-NATed with it;
* anything the protocol tracker refuses (a TCP segment the state table calls invalid, an
  echo reply with no request, a truncated header) is INVALID: it has no entry and no NAT.

Each protocol refreshes the entry's timer: TCP by its state (``tcpstate.py``); UDP 30 s, or
120 s once replies have been seen and the flow is older than 2 s (the "stream" promotion,
which also sets ASSURED); ICMP 30 s; other protocols 600 s.  Expiry is checked whenever an
entry is looked up: an expired entry is deleted then and counts as absent.

The table holds at most ``max_entries`` (``nf_conntrack_max``; kube-proxy sets
max(32768 x CPUs, 131072)).  When it is full a new connection first evicts one entry that
is not ASSURED (``early_drop``; here the oldest such), and if there is none the packet is
dropped: "nf_conntrack: table full, dropping packet".

The NAT part of an entry — which manipulations are set up, and the reply tuple they
produce — is filled in by ``nat.py``; ``dump`` prints the table as ``conntrack -L`` does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from pktsim.netfilter.tcpstate import (
    NAMES,
    TcpTimeouts,
    TcpTrack,
    may_start,
    tcp_packet,
    valid_flags,
)
from pktsim.netfilter.tuples import (
    ICMP6_NEW_OK,
    ICMP_ERRORS,
    ICMP_NEW_OK,
    PROTO_NAMES,
    Tuple,
    invert,
    packet_tuple,
)
from pktsim.wire.build import PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP
from pktsim.wire.parse import ip_str, tcp_flag_str

NS = 1_000_000_000
UDP_STREAM_AFTER = 2 * NS


@dataclass(frozen=True)
class ConntrackConfig:
    """The ``net.netfilter.nf_conntrack_*`` sysctls pktsim models (Linux defaults)."""

    max_entries: int = 131072
    tcp: TcpTimeouts = field(default_factory=TcpTimeouts)
    udp: int = 30
    udp_stream: int = 120
    icmp: int = 30
    generic: int = 600
    tcp_loose: bool = True
    early_drop: bool = True
    # Linux >= 5.6 resolves UDP insert clashes (nf_ct_resolve_clash): the second of two
    # datagrams racing to create one entry passes.  False gives the old insert_failed drop
    # behind the "5 s DNS delay" of kubernetes/kubernetes#56903.
    resolve_udp_clash: bool = True

    @classmethod
    def kube_proxy(cls, cpus: int = 2) -> ConntrackConfig:
        """A node where kube-proxy has set its conntrack sysctls (``conntrack.maxPerCore``
        32768, ``conntrack.min`` 131072 and the TCP timeouts of kubernetes
        ``pkg/proxy/apis/config/v1alpha1/defaults.go``)."""
        return cls(max_entries=max(32768 * cpus, 131072), tcp=TcpTimeouts.kube_proxy())


@dataclass(eq=False)
class Conn:
    """One conntrack entry."""

    id: int
    orig: Tuple
    reply: Tuple
    created: int
    expires: int = 0
    tcp: TcpTrack | None = None
    stream_ts: int = 0
    seen_reply: bool = False
    assured: bool = False
    confirmed: bool = False
    dying: bool = False
    src_nat: bool = False
    dst_nat: bool = False
    nat_init: set[int] = field(default_factory=set)
    nat_kind: dict[int, str] = field(default_factory=dict)
    mark: int = 0

    @property
    def proto(self) -> int:
        return self.orig.proto

    def tuple(self, d: int) -> Tuple:
        return self.orig if d == 0 else self.reply

    @property
    def state(self) -> str:
        return NAMES[self.tcp.state] if self.tcp is not None else ""

    def render(self, now: int) -> str:
        """One line of ``conntrack -L``."""
        name = PROTO_NAMES.get(self.proto, "unknown")
        secs = max(0, (self.expires - now - 1) // NS)
        parts = [f"{name:<8} {self.proto} {secs}"]
        if self.tcp is not None:
            parts.append(self.state)
        parts.append(_tuple_text(self.orig))
        if not self.seen_reply:
            parts.append("[UNREPLIED]")
        parts.append(_tuple_text(self.reply))
        if self.assured:
            parts.append("[ASSURED]")
        parts += [f"mark={self.mark}", "use=1"]
        return " ".join(parts)


def _tuple_text(t: Tuple) -> str:
    text = f"src={ip_str(t.src)} dst={ip_str(t.dst)}"
    if t.proto in (PROTO_TCP, PROTO_UDP):
        return f"{text} sport={t.sport} dport={t.dport}"
    if t.proto in (PROTO_ICMP, PROTO_ICMPV6):
        return f"{text} type={t.dport >> 8} code={t.dport & 0xFF} id={t.sport}"
    return text


@dataclass(slots=True)
class Track:
    """How ``track`` classified a packet."""

    conn: Conn | None
    dir: int = 0
    ctstate: str = "INVALID"  # NEW | ESTABLISHED | RELATED | INVALID
    new: bool = False  # this packet created the entry
    note: str = ""  # what happened, for the trace ("SYN_SENT -> SYN_RECV", "invalid: ...")
    full: bool = False  # the table is full: drop the packet


class Conntrack:
    """The table; ``track`` at the first hook, ``confirm`` at the last."""

    def __init__(self, config: ConntrackConfig | None = None) -> None:
        self.config = config or ConntrackConfig()
        self._hash: dict[Tuple, tuple[Conn, int]] = {}
        self._conns: dict[int, Conn] = {}  # confirmed entries, oldest first
        self._next_id = 1

    # -- the table ------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._conns)

    def entries(self, now: int) -> list[Conn]:
        """The live entries, oldest first (expired ones are removed on the way)."""
        for conn in [c for c in self._conns.values() if c.expires <= now]:
            self.delete(conn)
        return list(self._conns.values())

    def lookup(self, now: int, t: Tuple) -> tuple[Conn, int] | None:
        """The entry holding tuple ``t`` and the direction it holds it in (expiry checked)."""
        found = self._hash.get(t)
        if found is not None and found[0].expires <= now:
            self.delete(found[0])
            return None
        return found

    def taken(self, now: int, t: Tuple, by: Conn | None = None) -> bool:
        """``nf_nat_used_tuple``: would a connection whose packets look like ``t`` clash
        with another entry (its reply tuple already held)?"""
        reply = invert(t)
        found = self.lookup(now, reply) if reply is not None else None
        return found is not None and found[0] is not by

    def delete(self, conn: Conn) -> None:
        for t in (conn.orig, conn.reply):
            if self._hash.get(t, (None, 0))[0] is conn:
                del self._hash[t]
        self._conns.pop(conn.id, None)
        conn.dying = True

    def delete_where(self, now: int, pred: Callable[[Conn], bool]) -> list[Conn]:
        """Delete the live entries ``pred`` selects (``conntrack -D``); returns them."""
        doomed = [c for c in self.entries(now) if pred(c)]
        for conn in doomed:
            self.delete(conn)
        return doomed

    def confirm(self, conn: Conn) -> bool:
        """``__nf_conntrack_confirm``: insert a new entry; False on a tuple clash.

        A clash whose entry already holds the same mapping is merged (the packet rides on
        it); a UDP clash with another mapping is inserted by its reply tuple alone, so both
        datagrams pass and both answers are un-NATed (``nf_ct_resolve_clash_harder``).
        """
        if conn.confirmed or conn.dying:
            return True
        clash = conn.orig in self._hash or conn.reply in self._hash
        if clash and self.config.resolve_udp_clash and conn.orig.proto == 17:
            existing = self._hash.get(conn.orig, (None, 0))[0]
            if existing is not None and existing.reply == conn.reply:
                return True
            if conn.reply not in self._hash:
                self._hash[conn.reply] = (conn, 1)
                self._conns[conn.id] = conn
                conn.confirmed = True
                return True
        if clash:
            return False
        self._hash[conn.orig] = (conn, 0)
        self._hash[conn.reply] = (conn, 1)
        self._conns[conn.id] = conn
        conn.confirmed = True
        return True

    def dump(self, now: int) -> str:
        """The table as ``conntrack -L`` prints it (oldest entry first)."""
        return "".join(conn.render(now) + "\n" for conn in self.entries(now))

    def __iter__(self) -> Iterator[Conn]:
        return iter(list(self._conns.values()))

    # -- classification -------------------------------------------------------------------
    def track(self, now: int, pkt: bytes) -> Track:
        """``nf_conntrack_in`` for an IPv4 packet (header already validated)."""
        t = packet_tuple(pkt)
        if t is None:
            return Track(None, note="invalid: no transport header (fragment or truncated)")
        ihl = (pkt[0] & 0x0F) * 4
        if t.proto == PROTO_ICMP and t.icmp_type in ICMP_ERRORS:
            return self._related(now, pkt, ihl)
        return self.track_l4(now, t, pkt, ihl)

    def track_l4(self, now: int, t: Tuple, pkt: bytes, ihl: int) -> Track:
        """What both families share once the tuple is read and errors are set aside:
        TCP's checks (``tcp_error``), then the entry found, or a new one."""
        if t.proto == PROTO_TCP and _tcp_truncated(pkt, ihl):
            # nf_conntrack_proto_tcp.c, tcp_error(): "truncated packet" -> INVALID
            return Track(None, note="invalid: truncated TCP packet")
        if t.proto == PROTO_TCP and not valid_flags(pkt[ihl + 13]):
            return Track(None, note=f"invalid: TCP flags {tcp_flag_str(pkt[ihl + 13])}")
        found = self.lookup(now, t)
        if found is None:
            return self._new(now, t, pkt, ihl)
        conn, d = found
        return self._update(now, conn, d, pkt, ihl)

    def _new(self, now: int, t: Tuple, pkt: bytes, ihl: int, note: str = "new") -> Track:
        if t.proto == PROTO_ICMP and t.icmp_type not in ICMP_NEW_OK:
            return Track(None, note=f"invalid: ICMP type {t.icmp_type} starts no connection")
        if t.proto == PROTO_ICMPV6 and t.icmp_type not in ICMP6_NEW_OK:
            # nf_conntrack_icmpv6_packet: "invalid icmpv6 type" for an unconfirmed entry
            return Track(None, note=f"invalid: ICMPv6 type {t.icmp_type} starts no "
                                    "connection")
        if t.proto == PROTO_TCP and not may_start(pkt[ihl + 13], self.config.tcp_loose):
            return Track(None, note=f"invalid: TCP {tcp_flag_str(pkt[ihl + 13])} "
                                    "starts no connection")
        reply = invert(t)
        assert reply is not None
        if not self._room():
            return Track(None, note="table full", full=True)
        conn = Conn(self._next_id, t, reply, now,
                    tcp=TcpTrack() if t.proto == PROTO_TCP else None)
        self._next_id += 1
        tr = self._update(now, conn, 0, pkt, ihl)
        tr.new, tr.note = True, note if tr.conn is not None else tr.note
        return tr

    def _room(self) -> bool:
        limit = self.config.max_entries
        if len(self._conns) < limit:
            return True
        if not self.config.early_drop:
            return False
        victim = next((c for c in self._conns.values() if not c.assured), None)
        if victim is None:
            return False
        self.delete(victim)  # early_drop: an unassured entry makes room
        return True

    def _update(self, now: int, conn: Conn, d: int, pkt: bytes, ihl: int) -> Track:
        ctstate = "ESTABLISHED" if d == 1 or conn.seen_reply else "NEW"
        note = ""
        if conn.tcp is not None:
            step = tcp_packet(conn.tcp, d, pkt[ihl + 13], conn.seen_reply, conn.assured,
                              self.config.tcp)
            if step.action == "reopen":
                self.delete(conn)
                return self._new(now, conn.orig if d == 0 else conn.reply, pkt, ihl,
                                 f"reopen after {NAMES[step.old]}")
            if step.action == "invalid":
                return Track(None, note=f"invalid: TCP {tcp_flag_str(pkt[ihl + 13])} in "
                                        f"{NAMES[step.old]}")
            if step.action == "ignore":
                return Track(conn, d, ctstate,
                             note=f"TCP {tcp_flag_str(pkt[ihl + 13])} ignored in {conn.state}")
            conn.expires = now + step.timeout * NS
            conn.assured = conn.assured or step.assured
            if step.old != step.new:
                note = f"{NAMES[step.old]} -> {NAMES[step.new]}"
            if step.action == "kill":
                self.delete(conn)
                note = "RST before any reply: entry deleted"
        else:
            note = self._refresh(now, conn, d)
        if d == 1 and not conn.seen_reply:
            conn.seen_reply = True
        return Track(conn, d, ctstate, note=note)

    def _refresh(self, now: int, conn: Conn, d: int) -> str:
        cfg = self.config
        if conn.proto == PROTO_UDP:
            if not conn.confirmed:
                conn.stream_ts = now + UDP_STREAM_AFTER
            if conn.seen_reply and now > conn.stream_ts:
                conn.expires = now + cfg.udp_stream * NS
                if not conn.assured:
                    conn.assured = True
                    return "UDP stream: ASSURED"
                return ""
            conn.expires = now + cfg.udp * NS
        elif conn.proto in (PROTO_ICMP, PROTO_ICMPV6):  # nf_conntrack_icmpv6_timeout 30 s
            conn.expires = now + cfg.icmp * NS
        else:
            conn.expires = now + cfg.generic * NS
        return ""

    def _related(self, now: int, pkt: bytes, ihl: int) -> Track:
        inner = packet_tuple(pkt, ihl + 8)
        about = invert(inner) if inner is not None else None
        if about is None:
            return Track(None, note="invalid: ICMP error quotes no trackable packet")
        found = self.lookup(now, about)
        if found is None:
            return Track(None, note=f"invalid: ICMP error about unknown {inner}")
        conn, d = found
        return Track(conn, d, "RELATED", note=f"ICMP error related to {conn.orig}")


def _tcp_truncated(pkt: bytes, ihl: int) -> bool:
    """Linux's ``tcp_error()`` test: the 20-byte header cut short, or a data offset under
    20 bytes or past the segment's end (``th->doff*4 < sizeof(struct tcphdr) || tcplen <
    th->doff*4``)."""
    tcplen = len(pkt) - ihl
    if tcplen < 20:
        return True
    doff = (pkt[ihl + 12] >> 4) * 4
    return doff < 20 or tcplen < doff
