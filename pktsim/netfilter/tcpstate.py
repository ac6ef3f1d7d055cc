"""TCP connection tracking: the kernel's state transition table, and what each packet does.

Theory of operation
-------------------
Conntrack watches a TCP connection from the middle.  It never sees the endpoints' sockets,
only segments, and guesses the state of the *sender* of each: ``TABLE[dir][flags][state]``
below is ``tcp_conntracks`` from ``net/netfilter/nf_conntrack_proto_tcp.c`` (modern kernels),
with the same columns and the same abbreviations, so it can be read against the source:

    sNO none   sSS SYN_SENT   sSR SYN_RECV   sES ESTABLISHED   sFW FIN_WAIT
    sCW CLOSE_WAIT   sLA LAST_ACK   sTW TIME_WAIT   sCL CLOSE   sS2 SYN_SENT2
    sIV invalid: the packet gets no conntrack entry (``ctstate INVALID``), is not NATed
    sIG ignored: the packet passes, the state does not change, the timer is not refreshed

``dir`` is 0 for the original direction (the side that sent the first packet) and 1 for
the reply.  The flag class of a segment is RST, else SYN/ACK or SYN, else FIN, else ACK,
else none (``get_conntrack_index``).  Around the table ``tcp_packet`` keeps the kernel's
special cases that matter to a cluster:

* a SYN on a connection in TIME_WAIT or CLOSE that was closed by a FIN or aborted by a RST
  *reopens* it: the old entry is deleted and the SYN starts a new one (new NAT decision);
* a SYN/ACK answering a SYN that was ignored (port reuse on a stale entry) resynchronises
  the entry to SYN_RECV;
* a RST before any reply was seen (a closed port answering a SYN) deletes the entry at once;
* ASSURED is set when an ESTABLISHED state is confirmed after SYN_RECV (or after a picked-up
  mid-stream connection gets its answer); a picked-up connection without a reply yet gets
  the short ``unacknowledged`` timeout instead of the ESTABLISHED one.

A new connection may start with a SYN, or — with ``nf_conntrack_tcp_loose=1``, the default —
with any segment the table maps from sNO to a real state (an ACK: "mid-stream pickup").
Segments with an impossible flag combination (``tcp_valid_flags``: SYN+FIN, FIN without ACK,
no flag at all...) are INVALID before any of this.  Sequence-window tracking
(``tcp_in_window``) is not modelled: every in-order segment counts as in window.

Timeouts are the ``nf_conntrack_tcp_timeout_*`` sysctls (seconds); ``TcpTimeouts.kube_proxy``
holds what kube-proxy sets (ESTABLISHED 86400, CLOSE_WAIT 3600: ``tcpEstablishedTimeout`` and
``tcpCloseWaitTimeout`` in kubernetes ``pkg/proxy/apis/config/v1alpha1/defaults.go``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from pktsim.wire.parse import TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN

NONE, SYN_SENT, SYN_RECV, ESTABLISHED, FIN_WAIT, CLOSE_WAIT, LAST_ACK, TIME_WAIT, CLOSE, \
    SYN_SENT2 = range(10)
INVALID, IGNORE = 10, 11  # sIV (TCP_CONNTRACK_MAX) and sIG
NAMES = ("NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK",
         "TIME_WAIT", "CLOSE", "SYN_SENT2")
SYN_SET, SYNACK_SET, FIN_SET, ACK_SET, RST_SET, NONE_SET = range(6)

_ABBREV = {"sNO": NONE, "sSS": SYN_SENT, "sSR": SYN_RECV, "sES": ESTABLISHED, "sFW": FIN_WAIT,
           "sCW": CLOSE_WAIT, "sLA": LAST_ACK, "sTW": TIME_WAIT, "sCL": CLOSE, "sS2": SYN_SENT2,
           "sIV": INVALID, "sIG": IGNORE}

#         sNO  sSS  sSR  sES  sFW  sCW  sLA  sTW  sCL  sS2
_ORIGINAL = """
syn       sSS  sSS  sIG  sIG  sIG  sIG  sIG  sSS  sSS  sS2
synack    sIV  sIV  sSR  sIV  sIV  sIV  sIV  sIV  sIV  sSR
fin       sIV  sIV  sFW  sFW  sLA  sLA  sLA  sTW  sCL  sIV
ack       sES  sIV  sES  sES  sCW  sCW  sTW  sTW  sCL  sIV
rst       sIV  sCL  sCL  sCL  sCL  sCL  sCL  sCL  sCL  sCL
none      sIV  sIV  sIV  sIV  sIV  sIV  sIV  sIV  sIV  sIV
"""
_REPLY = """
syn       sIV  sS2  sIV  sIV  sIV  sIV  sIV  sSS  sIV  sS2
synack    sIV  sSR  sIG  sIG  sIG  sIG  sIG  sIG  sIG  sSR
fin       sIV  sIV  sFW  sFW  sLA  sLA  sLA  sTW  sCL  sIV
ack       sIV  sIG  sSR  sES  sCW  sCW  sTW  sTW  sCL  sIG
rst       sIV  sCL  sCL  sCL  sCL  sCL  sCL  sCL  sCL  sCL
none      sIV  sIV  sIV  sIV  sIV  sIV  sIV  sIV  sIV  sIV
"""


def _parse(text: str) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(_ABBREV[cell] for cell in line.split()[1:])
                 for line in text.strip().splitlines())


TABLE = (_parse(_ORIGINAL), _parse(_REPLY))

# tcp_valid_flags: the FIN/SYN/RST/ACK/URG combinations a segment may carry (PSH, ECE, CWR
# are ignored)
_URG = 0x20
VALID_FLAGS = frozenset({TCP_SYN, TCP_SYN | _URG, TCP_SYN | TCP_ACK, TCP_RST, TCP_RST | TCP_ACK,
                         TCP_FIN | TCP_ACK, TCP_FIN | TCP_ACK | _URG, TCP_ACK, TCP_ACK | _URG})


@dataclass(frozen=True)
class TcpTimeouts:
    """``nf_conntrack_tcp_timeout_*`` in seconds (Linux defaults)."""

    syn_sent: int = 120
    syn_recv: int = 60
    established: int = 432000
    fin_wait: int = 120
    close_wait: int = 60
    last_ack: int = 30
    time_wait: int = 120
    close: int = 10
    syn_sent2: int = 120
    max_retrans: int = 300
    unacknowledged: int = 300

    @classmethod
    def kube_proxy(cls) -> TcpTimeouts:
        """What kube-proxy writes: ESTABLISHED 24 h, CLOSE_WAIT 1 h."""
        return replace(cls(), established=86400, close_wait=3600)

    def of(self, state: int) -> int:
        return (0, self.syn_sent, self.syn_recv, self.established, self.fin_wait,
                self.close_wait, self.last_ack, self.time_wait, self.close,
                self.syn_sent2)[state]


@dataclass(slots=True)
class TcpTrack:
    """The per-connection part of ``struct ip_ct_tcp`` that the table needs."""

    state: int = NONE
    last_index: int = NONE_SET
    last_dir: int = 0
    close_init: bool = False  # IP_CT_TCP_FLAG_CLOSE_INIT seen in either direction
    simultaneous: bool = False  # IP_CT_TCP_SIMULTANEOUS_OPEN


@dataclass(frozen=True, slots=True)
class TcpStep:
    """What one segment did: ``action`` is ok | ignore | invalid | reopen | kill."""

    action: str
    old: int = NONE
    new: int = NONE
    timeout: int = 0
    assured: bool = False


def flag_index(flags: int) -> int:
    """``get_conntrack_index``."""
    if flags & TCP_RST:
        return RST_SET
    if flags & TCP_SYN:
        return SYNACK_SET if flags & TCP_ACK else SYN_SET
    if flags & TCP_FIN:
        return FIN_SET
    return ACK_SET if flags & TCP_ACK else NONE_SET


def valid_flags(flags: int) -> bool:
    return (flags & (TCP_FIN | TCP_SYN | TCP_RST | TCP_ACK | _URG)) in VALID_FLAGS


def may_start(flags: int, loose: bool = True) -> bool:
    """``tcp_new``: can this segment create an entry?"""
    new = TABLE[0][flag_index(flags)][NONE]
    return new == SYN_SENT or (new < INVALID and loose)


def tcp_packet(tr: TcpTrack, d: int, flags: int, seen_reply: bool, assured: bool,
               t: TcpTimeouts) -> TcpStep:
    """``nf_conntrack_tcp_packet`` without window tracking; mutates ``tr``."""
    idx = flag_index(flags)
    old = tr.state
    new = TABLE[d][idx][old]
    if new == SYN_SENT and old >= TIME_WAIT:
        if tr.close_init or (tr.last_dir == d and tr.last_index == RST_SET):
            return TcpStep("reopen", old, NONE)
        new = IGNORE
    if new == IGNORE:
        if idx == SYNACK_SET and tr.last_index == SYN_SET and tr.last_dir != d:
            old, new = SYN_SENT, SYN_RECV  # answers a SYN we ignored: resynchronise
        else:
            tr.last_index, tr.last_dir = idx, d
            return TcpStep("ignore", old, old)
    if new == INVALID:
        return TcpStep("invalid", old, old)
    if new == SYN_SENT2:
        tr.simultaneous = True
    if new == SYN_RECV and d == 1 and idx == ACK_SET and tr.simultaneous:
        new = ESTABLISHED
    tr.last_index, tr.last_dir, tr.state = idx, d, new
    if old != new and new == FIN_WAIT:
        tr.close_init = True
    timeout = t.close if idx == RST_SET else t.of(new)
    if not seen_reply:
        if flags & TCP_RST:
            return TcpStep("kill", old, new, timeout)
        if new == ESTABLISHED:
            timeout = min(timeout, t.unacknowledged)
        return TcpStep("ok", old, new, timeout)
    now_assured = not assured and old in (SYN_RECV, ESTABLISHED) and new == ESTABLISHED
    return TcpStep("ok", old, new, timeout, now_assured)
