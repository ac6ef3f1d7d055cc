"""conntrack: the TCP state table, UDP/ICMP tracking, timeouts on the virtual clock, limits."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pktsim.netfilter import Conntrack, ConntrackConfig, TcpTimeouts, Track
from pktsim.netfilter.tcpstate import (
    ACK_SET,
    CLOSE_WAIT,
    ESTABLISHED,
    FIN_SET,
    IGNORE,
    INVALID,
    NAMES,
    NONE,
    RST_SET,
    SYN_RECV,
    SYN_SENT,
    SYN_SET,
    SYNACK_SET,
    TABLE,
    TIME_WAIT,
)
from pktsim.wire import build
from pktsim.wire.parse import TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, ip_bytes

S = 1_000_000_000
C, B = "10.244.1.5", "10.244.2.7"


def tcp(src: str, sport: int, dst: str, dport: int, flags: int, payload: bytes = b"") -> bytes:
    seg = build.tcp(ip_bytes(src), ip_bytes(dst), sport, dport, 1000, 2000, flags, 64240,
                    payload)
    return build.ipv4(ip_bytes(src), ip_bytes(dst), 6, seg, ttl=64, flags=0x4000)


def udp(src: str, sport: int, dst: str, dport: int) -> bytes:
    seg = build.udp(ip_bytes(src), ip_bytes(dst), sport, dport, b"query")
    return build.ipv4(ip_bytes(src), ip_bytes(dst), 17, seg)


def echo(src: str, dst: str, ident: int, kind: int = 8) -> bytes:
    return build.ipv4(ip_bytes(src), ip_bytes(dst), 1, build.icmp_echo(kind, ident, 1, b"ping"))


def icmp_error(src: str, dst: str, about: bytes, code: int = 3) -> bytes:
    return build.ipv4(ip_bytes(src), ip_bytes(dst), 1, build.icmp(3, code, b"\0" * 4, about))


def seen(ct: Conntrack, now: int, pkt: bytes) -> Track:
    """Track a packet that survives to the last hook (so a new entry is confirmed)."""
    tr = ct.track(now, pkt)
    if tr.conn is not None and tr.new:
        assert ct.confirm(tr.conn)
    return tr


def client(flags: int) -> bytes:
    return tcp(C, 40000, B, 8080, flags)


def server(flags: int) -> bytes:
    return tcp(B, 8080, C, 40000, flags)


def remaining(tr: Track, now: int) -> int:
    assert tr.conn is not None
    return (tr.conn.expires - now) // S


@pytest.mark.parametrize(("config", "established", "close_wait"), [
    (ConntrackConfig(), 432000, 60),
    (ConntrackConfig.kube_proxy(), 86400, 3600),
])
def test_handshake_and_close_walk_the_state_table(config: ConntrackConfig, established: int,
                                                  close_wait: int) -> None:
    ct = Conntrack(config)
    steps = [  # packet, ctstate, state, timeout (s), assured
        (client(TCP_SYN), "NEW", "SYN_SENT", 120, False),
        (client(TCP_SYN), "NEW", "SYN_SENT", 120, False),  # retransmitted SYN
        (server(TCP_SYN | TCP_ACK), "ESTABLISHED", "SYN_RECV", 60, False),
        (client(TCP_ACK), "ESTABLISHED", "ESTABLISHED", established, True),
        (client(TCP_ACK | TCP_PSH), "ESTABLISHED", "ESTABLISHED", established, True),
        (client(TCP_FIN | TCP_ACK), "ESTABLISHED", "FIN_WAIT", 120, True),
        (server(TCP_ACK), "ESTABLISHED", "CLOSE_WAIT", close_wait, True),
        (server(TCP_FIN | TCP_ACK), "ESTABLISHED", "LAST_ACK", 30, True),
        (client(TCP_ACK), "ESTABLISHED", "TIME_WAIT", 120, True),
    ]
    for i, (pkt, ctstate, state, timeout, assured) in enumerate(steps):
        now = i * S
        tr = seen(ct, now, pkt)
        assert tr.conn is not None
        assert (tr.ctstate, tr.conn.state, remaining(tr, now), tr.conn.assured) == \
            (ctstate, state, timeout, assured), i
    assert len(ct) == 1


def test_dump_is_conntrack_l() -> None:
    ct = Conntrack(ConntrackConfig.kube_proxy())
    seen(ct, 0, client(TCP_SYN))
    assert ct.dump(S // 2) == (
        "tcp      6 119 SYN_SENT src=10.244.1.5 dst=10.244.2.7 sport=40000 dport=8080 "
        "[UNREPLIED] src=10.244.2.7 dst=10.244.1.5 sport=8080 dport=40000 mark=0 use=1\n")
    seen(ct, S, server(TCP_SYN | TCP_ACK))
    seen(ct, S, client(TCP_ACK))
    assert ct.dump(S) == (
        "tcp      6 86399 ESTABLISHED src=10.244.1.5 dst=10.244.2.7 sport=40000 dport=8080 "
        "src=10.244.2.7 dst=10.244.1.5 sport=8080 dport=40000 [ASSURED] mark=0 use=1\n")


def test_expiry_is_checked_on_lookup() -> None:
    ct = Conntrack()
    first = seen(ct, 5 * S, client(TCP_SYN)).conn
    assert first is not None
    assert ct.lookup(5 * S + 120 * S - 1, first.orig) is not None
    assert ct.lookup(5 * S + 120 * S, first.orig) is None
    again = seen(ct, 5 * S + 120 * S, client(TCP_SYN))
    assert again.new and again.conn is not first and len(ct) == 1
    assert ct.dump(10**6 * S) == ""


def test_rst_answering_a_syn_deletes_the_entry() -> None:
    ct = Conntrack()
    seen(ct, 0, client(TCP_SYN))
    tr = seen(ct, S, server(TCP_RST | TCP_ACK))
    assert tr.conn is not None and tr.ctstate == "ESTABLISHED"  # still un-NATed
    assert "deleted" in tr.note and len(ct) == 0


def test_syn_after_close_reopens_with_a_new_entry() -> None:
    ct = Conntrack()
    for i, pkt in enumerate([client(TCP_SYN), server(TCP_SYN | TCP_ACK), client(TCP_ACK),
                             client(TCP_FIN | TCP_ACK), server(TCP_FIN | TCP_ACK),
                             client(TCP_ACK)]):
        old = seen(ct, i * S, pkt).conn
    assert old is not None and old.state == "TIME_WAIT"
    tr = seen(ct, 10 * S, client(TCP_SYN))
    assert tr.new and tr.conn is not old and tr.note == "reopen after TIME_WAIT"
    assert tr.conn is not None and tr.conn.state == "SYN_SENT" and len(ct) == 1


@pytest.mark.parametrize(("pkt", "why"), [
    (client(TCP_FIN), "TCP flags [F]"),  # FIN without ACK: tcp_valid_flags
    (client(TCP_SYN | TCP_FIN), "TCP flags [SF]"),
    (client(0), "TCP flags [none]"),
    (server(TCP_SYN | TCP_ACK), "starts no connection"),
    (client(TCP_RST), "starts no connection"),
    (echo(B, C, 7, kind=0), "ICMP type 0 starts no connection"),
])
def test_what_cannot_be_tracked_is_invalid(pkt: bytes, why: str) -> None:
    tr = Conntrack().track(0, pkt)
    assert tr.conn is None and tr.ctstate == "INVALID" and why in tr.note


def test_invalid_transition_leaves_the_state_alone() -> None:
    ct = Conntrack()
    seen(ct, 0, client(TCP_SYN))
    tr = seen(ct, S, client(TCP_ACK))  # ACK before any SYN/ACK: sSS -> sIV
    assert tr.conn is None and tr.note == "invalid: TCP [.] in SYN_SENT"
    assert ct.entries(S)[0].state == "SYN_SENT"


def test_mid_stream_pickup_is_loose_by_default() -> None:
    tr = seen(ct := Conntrack(), 0, client(TCP_ACK | TCP_PSH))
    assert tr.conn is not None and tr.ctstate == "NEW" and tr.conn.state == "ESTABLISHED"
    assert remaining(tr, 0) == 300  # unacknowledged, not the ESTABLISHED timeout
    tr = seen(ct, S, server(TCP_ACK))  # the first answer is seen before SEEN_REPLY is set
    assert tr.conn is not None and not tr.conn.assured and remaining(tr, S) == 300
    tr = seen(ct, 2 * S, client(TCP_ACK))
    assert tr.conn is not None and tr.conn.assured and remaining(tr, 2 * S) == 432000
    strict = Conntrack(ConntrackConfig(tcp_loose=False))
    assert strict.track(0, client(TCP_ACK)).conn is None


def test_table_rows_are_the_kernels() -> None:
    """Spot checks against nf_conntrack_proto_tcp.c tcp_conntracks[][][]."""
    assert TABLE[0][SYN_SET][NONE] == SYN_SENT
    assert TABLE[0][SYN_SET][TIME_WAIT] == SYN_SENT  # reopen
    assert TABLE[0][SYN_SET][ESTABLISHED] == IGNORE
    assert TABLE[1][SYNACK_SET][SYN_SENT] == SYN_RECV
    assert TABLE[1][ACK_SET][SYN_SENT] == IGNORE
    assert TABLE[0][ACK_SET][SYN_RECV] == ESTABLISHED
    assert TABLE[0][FIN_SET][SYN_SENT] == INVALID
    assert TABLE[1][FIN_SET][CLOSE_WAIT] == 6  # LAST_ACK
    assert all(TABLE[d][RST_SET][s] == 8 for d in (0, 1) for s in range(1, 10))  # CLOSE
    assert TcpTimeouts().of(SYN_RECV) == 60 and TcpTimeouts.kube_proxy().established == 86400


def test_udp_unreplied_then_stream() -> None:
    """``nf_conntrack_udp_timeout`` 30 s, or ``nf_conntrack_udp_timeout_stream`` 120 s (ASSURED)
    once replies keep coming after 2 s: Linux ``nf_conntrack-sysctl.rst``."""
    ct = Conntrack()
    ask, answer = udp(C, 5353, "10.244.2.10", 53), udp("10.244.2.10", 53, C, 5353)
    tr = seen(ct, 0, ask)
    assert (tr.ctstate, remaining(tr, 0)) == ("NEW", 30)
    tr = seen(ct, S // 2, answer)
    assert (tr.ctstate, remaining(tr, S // 2), tr.conn and tr.conn.assured) == \
        ("ESTABLISHED", 30, False)
    tr = seen(ct, 3 * S // 2, ask)
    assert (remaining(tr, 3 * S // 2), tr.conn and tr.conn.assured) == (30, False)
    tr = seen(ct, 5 * S // 2, ask)
    assert (remaining(tr, 5 * S // 2), tr.conn and tr.conn.assured) == (120, True)
    assert ct.dump(5 * S // 2) == (
        "udp      17 119 src=10.244.1.5 dst=10.244.2.10 sport=5353 dport=53 src=10.244.2.10 "
        "dst=10.244.1.5 sport=53 dport=5353 [ASSURED] mark=0 use=1\n")


def test_single_dns_exchange_expires_30s_after_last_use() -> None:
    ct = Conntrack()
    seen(ct, 0, udp(C, 5353, "10.244.2.10", 53))
    seen(ct, S // 100, udp("10.244.2.10", 53, C, 5353))
    assert ct.entries(S // 100 + 30 * S - 1)
    assert not ct.entries(S // 100 + 30 * S)


def test_icmp_echo_pairs_request_and_reply() -> None:
    ct = Conntrack()
    assert seen(ct, 0, echo(C, B, 7)).ctstate == "NEW"
    assert ct.dump(0) == ("icmp     1 29 src=10.244.1.5 dst=10.244.2.7 type=8 code=0 id=7 "
                          "[UNREPLIED] src=10.244.2.7 dst=10.244.1.5 type=0 code=0 id=7 "
                          "mark=0 use=1\n")
    tr = seen(ct, S, echo(B, C, 7, kind=0))
    assert tr.ctstate == "ESTABLISHED" and remaining(tr, S) == 30
    assert seen(ct, S, echo(B, C, 8, kind=0)).ctstate == "INVALID"  # another id


def test_icmp_error_is_related_to_what_it_quotes() -> None:
    ct = Conntrack()
    ask = udp(C, 5353, B, 53)
    conn = seen(ct, 0, ask).conn
    tr = ct.track(S, icmp_error(B, C, ask))
    assert (tr.conn, tr.dir, tr.ctstate) == (conn, 1, "RELATED")
    unknown = ct.track(S, icmp_error(B, C, udp(C, 5354, B, 53)))
    assert unknown.conn is None and unknown.ctstate == "INVALID"


def test_generic_protocols_are_tracked_by_address() -> None:
    ct = Conntrack()
    ipip = build.ipv4(ip_bytes("172.18.0.2"), ip_bytes("172.18.0.3"), 4, udp(C, 1, B, 2))
    assert seen(ct, 0, ipip).ctstate == "NEW"
    assert ct.dump(0) == ("unknown  4 599 src=172.18.0.2 dst=172.18.0.3 [UNREPLIED] "
                          "src=172.18.0.3 dst=172.18.0.2 mark=0 use=1\n")


def _assured(ct: Conntrack, sport: int) -> None:
    for pkt in (tcp(C, sport, B, 80, TCP_SYN), tcp(B, 80, C, sport, TCP_SYN | TCP_ACK),
                tcp(C, sport, B, 80, TCP_ACK)):
        seen(ct, 0, pkt)


def test_full_table_drops_new_connections() -> None:
    ct = Conntrack(ConntrackConfig(max_entries=2))
    _assured(ct, 1001)
    _assured(ct, 1002)
    tr = ct.track(0, tcp(C, 1003, B, 80, TCP_SYN))
    assert tr.full and tr.conn is None and len(ct) == 2
    assert ct.track(0, tcp(C, 1001, B, 80, TCP_ACK)).conn is not None  # known ones pass


def test_full_table_evicts_an_unassured_entry_first() -> None:
    ct = Conntrack(ConntrackConfig(max_entries=2))
    _assured(ct, 1001)
    oldest = seen(ct, 0, tcp(C, 1002, B, 80, TCP_SYN)).conn
    tr = seen(ct, 0, tcp(C, 1003, B, 80, TCP_SYN))
    assert not tr.full and tr.conn is not None and oldest is not None and oldest.dying
    assert [c.orig.sport for c in ct.entries(0)] == [1001, 1003]
    assert ConntrackConfig.kube_proxy().max_entries == 131072 == ConntrackConfig().max_entries


_FLAGS = st.sampled_from([TCP_SYN, TCP_SYN | TCP_ACK, TCP_ACK, TCP_FIN | TCP_ACK, TCP_RST,
                          TCP_RST | TCP_ACK, TCP_ACK | TCP_PSH, TCP_FIN, 0])


@given(st.lists(st.tuples(st.booleans(), _FLAGS, st.integers(0, 200 * S)), max_size=30))
def test_any_segment_sequence_keeps_the_table_consistent(
        segments: list[tuple[bool, int, int]]) -> None:
    ct = Conntrack()
    now = 0
    for from_client, flags, dt in segments:
        now += dt
        before = [(c.id, c.state, c.expires) for c in ct.entries(now)]
        tr = seen(ct, now, client(flags) if from_client else server(flags))
        live = ct.entries(now)
        assert len(live) <= 1
        if tr.conn is None:  # invalid: nothing changed
            assert [(c.id, c.state, c.expires) for c in live] == before
        else:
            assert tr.conn.state in NAMES
            assert tr.ctstate in ("NEW", "ESTABLISHED")
            assert tr.conn.dying or tr.conn.expires > now or "ignored" in tr.note
