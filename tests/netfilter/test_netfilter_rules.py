"""The matcher: jumps, RETURN, policies, negations, every match module, and validation."""

from __future__ import annotations

import random
from collections import Counter
from ipaddress import IPv4Address, IPv4Network

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pktsim.netfilter import (
    ACCEPT,
    DROP,
    RETURN,
    AddrType,
    CtState,
    Destination,
    Dnat,
    Env,
    IcmpType,
    InIface,
    Jump,
    Mark,
    Masquerade,
    OutIface,
    PacketView,
    Ports,
    Protocol,
    Recent,
    RecentTables,
    Reject,
    Rule,
    SetMark,
    Source,
    Statistic,
    Table,
    evaluate,
)
from pktsim.wire.parse import ip_bytes

NS = 1_000_000_000


def view(src: str = "10.244.1.5", dst: str = "10.96.0.10", proto: int = 6,
         sport: int | None = 40000, dport: int | None = 80, **kw: object) -> PacketView:
    return PacketView(ip_bytes(src), ip_bytes(dst), proto, sport, dport, **kw)  # type: ignore[arg-type]


def net(text: str) -> IPv4Network:
    return IPv4Network(text)


def tcp_dport(port: int) -> tuple[Protocol, Ports]:
    return Protocol(6), Ports(6, dport=(port, port))


@pytest.fixture
def jumps() -> Table:
    t = Table("filter")
    t.new_chain("A")
    t.new_chain("B")
    t["FORWARD"].append(Rule((), Jump("A")))
    t["FORWARD"].append(Rule((Source(net("10.0.0.0/8")),), DROP))
    t["A"].append(Rule((Protocol(17),), RETURN))
    t["A"].append(Rule((), Jump("B")))
    t["A"].append(Rule((), ACCEPT, "after B"))
    t["B"].append(Rule((Destination(net("10.96.0.10/32")),), ACCEPT))
    return t


def test_jump_into_user_chain_and_accept_there(jumps: Table) -> None:
    out = evaluate(jumps, "FORWARD", view(), Env())
    assert (out.verdict, out.target, out.path) == ("ACCEPT", ACCEPT, ["FORWARD", "A", "B"])
    assert [(h.chain, h.index) for h in out.hits] == [("FORWARD", 1), ("A", 2), ("B", 1)]
    assert out.hits[-1].text == "-A B -d 10.96.0.10/32 -j ACCEPT"
    assert out.path_text() == "A -> B"


def test_end_of_user_chain_returns_to_the_caller(jumps: Table) -> None:
    out = evaluate(jumps, "FORWARD", view(dst="10.96.0.11"), Env())
    assert out.verdict == "ACCEPT" and out.path == ["FORWARD", "A"]
    assert out.decider is not None and out.decider.text == \
        '-A A -m comment --comment "after B" -j ACCEPT'


def test_return_pops_back_and_later_rules_decide(jumps: Table) -> None:
    out = evaluate(jumps, "FORWARD", view(proto=17), Env())
    assert (out.verdict, out.path, out.hits[-1].index) == ("DROP", ["FORWARD"], 2)


def test_policy_decides_when_the_builtin_chain_runs_out() -> None:
    t = Table("filter")
    t["FORWARD"].policy = "DROP"
    t["FORWARD"].append(Rule((Protocol(17),), RETURN))
    out = evaluate(t, "FORWARD", view(), Env())
    assert (out.verdict, out.target, out.hits) == ("DROP", None, [])
    out = evaluate(t, "FORWARD", view(proto=17), Env())
    assert (out.verdict, out.target, len(out.hits)) == ("DROP", None, 1)  # RETURN in builtin


def test_mark_is_not_terminal_and_later_rules_see_it() -> None:
    t = Table("nat")
    t.new_chain("KUBE-MARK-MASQ")
    t["KUBE-MARK-MASQ"].append(Rule((), SetMark.or_mark(0x4000)))
    t["POSTROUTING"].append(Rule((), Jump("KUBE-MARK-MASQ")))
    t["POSTROUTING"].append(Rule((Mark(0x4000, 0x4000),), Masquerade()))
    p = view()
    out = evaluate(t, "POSTROUTING", p, Env())
    assert out.target == Masquerade() and out.mark == 0x4000 == p.mark


@pytest.mark.parametrize(("match", "hit", "miss"), [
    (Source(net("10.244.0.0/16"), negate=True), {"src": "192.0.2.1"}, {}),
    (Destination(net("10.96.0.0/12"), negate=True), {"dst": "8.8.8.8"}, {}),
    (Protocol(6, negate=True), {"proto": 17}, {}),
    (InIface("cni0", negate=True), {"in_dev": "eth0"}, {"in_dev": "cni0"}),
    (OutIface("eth0", negate=True), {"out_dev": "flannel.1"}, {"out_dev": "eth0"}),
    (Mark(0x4000, 0x4000, negate=True), {}, {"mark": 0x4000}),
    (CtState(frozenset({"NEW"}), negate=True), {"ctstate": "ESTABLISHED"},
     {"ctstate": "NEW"}),
    (Ports(6, dport=(80, 80), dport_negate=True), {"dport": 443}, {}),
    (Ports(6, sport=(1024, 65535)), {}, {"sport": 53}),
])
def test_negations_and_ranges(match: object, hit: dict[str, object],
                              miss: dict[str, object]) -> None:
    base = {"in_dev": "cni0", "out_dev": "eth0", "ctstate": "NEW"}
    assert match.matches(view(**{**base, **hit}), Env())  # type: ignore[attr-defined,arg-type]
    assert not match.matches(view(**{**base, **miss}), Env())  # type: ignore[attr-defined,arg-type]


def test_interface_wildcard() -> None:
    m = InIface("veth+")
    assert m.matches(view(in_dev="veth1a2b3c4d"), Env())
    assert not m.matches(view(in_dev="eth0"), Env())
    assert not InIface("eth0").matches(view(in_dev=""), Env())  # locally generated


def test_addrtype_asks_the_environment() -> None:
    env = Env(addr_type=lambda ip: "LOCAL" if ip == ip_bytes("172.18.0.2") else "UNICAST")
    assert AddrType(dst_types=("LOCAL",)).matches(view(dst="172.18.0.2"), env)
    assert not AddrType(dst_types=("LOCAL",)).matches(view(dst="10.96.0.10"), env)
    both = AddrType(("LOCAL",), ("LOCAL",), src_negate=True, dst_negate=True)
    assert both.matches(view(), env) and not both.matches(view(src="172.18.0.2"), env)


def test_icmp_type_match() -> None:
    icmp = {"proto": 1, "sport": None, "dport": None}
    assert IcmpType(8).matches(view(**icmp, icmp=(8, 0)), Env())  # type: ignore[arg-type]
    assert not IcmpType(3, 3).matches(view(**icmp, icmp=(3, 1)), Env())  # type: ignore[arg-type]
    assert not IcmpType(8).matches(view(), Env())


@given(st.integers(0, 0xFFFFFFFF), st.integers(0, 0xFFFFFFFF))
def test_mark_target_forms(mark: int, bits: int) -> None:
    assert SetMark.or_mark(bits).apply(mark) == mark | bits
    assert SetMark.xor_mark(bits).apply(mark) == mark ^ bits
    assert SetMark.and_mark(bits).apply(mark) == mark & bits
    assert SetMark.set_mark(bits).apply(mark) == bits


@given(st.ip_addresses(v=4), st.integers(0, 32), st.ip_addresses(v=4))
def test_source_match_is_cidr_membership(base: IPv4Address, plen: int,
                                         addr: IPv4Address) -> None:
    cidr = IPv4Network(f"{base}/{plen}", strict=False)
    p = view(src=str(addr))
    assert Source(cidr).matches(p, Env()) == (addr in cidr)
    assert Source(cidr, negate=True).matches(p, Env()) == (addr not in cidr)


def test_statistic_stores_the_kernel_fraction() -> None:
    assert Statistic("0.3333333333").u32 == 715827883
    assert Statistic("0.3333333333") == Statistic("0.33333333349")  # same stored value
    assert Statistic("0.5000000000").u32 == 1 << 30


def _service_table(n: int) -> Table:
    """A KUBE-SVC chain as kube-proxy writes it for ``n`` endpoints (``computeProbability``)."""
    t = Table("nat")
    svc = t.new_chain("KUBE-SVC-TEST")
    t["PREROUTING"].append(Rule((), Jump("KUBE-SVC-TEST")))
    for i in range(n):
        sep = t.new_chain(f"KUBE-SEP-{i}")
        sep.append(Rule((Protocol(6),), Dnat(IPv4Address(f"10.244.0.{i + 10}"), (80, 80))))
        last = i == n - 1
        matches = () if last else (Statistic(f"{1.0 / (n - i):0.10f}"),)
        svc.append(Rule(matches, Jump(f"KUBE-SEP-{i}")))
    t.validate()
    return t


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_statistic_chain_gives_each_endpoint_one_nth(n: int) -> None:
    t = _service_table(n)
    env = Env(rng=random.Random(f"svc{n}"))
    draws = 30000
    counts = Counter(evaluate(t, "PREROUTING", view(), env).path[-1] for _ in range(draws))
    assert set(counts) == {f"KUBE-SEP-{i}" for i in range(n)}
    for chain, count in counts.items():
        assert abs(count / draws - 1 / n) < 0.02, (chain, count)


def test_statistic_is_deterministic_for_a_seed() -> None:
    t = _service_table(3)
    picks = [[evaluate(t, "PREROUTING", view(), Env(rng=rng)).path[-1] for _ in range(50)]
             for rng in (random.Random(7), random.Random(7))]
    assert picks[0] == picks[1]


def test_recent_session_affinity_on_the_virtual_clock() -> None:
    recent = RecentTables()
    set_it = Recent("KUBE-SEP-A", "set")
    check = Recent("KUBE-SEP-A", "rcheck", seconds=10800, reap=True)
    assert not check.matches(view(), Env(now=0, recent=recent))
    assert set_it.matches(view(), Env(now=5 * NS, recent=recent))
    assert check.matches(view(), Env(now=5 * NS + 10800 * NS, recent=recent))
    assert not check.matches(view(src="10.244.1.6"), Env(now=6 * NS, recent=recent))
    assert not check.matches(view(), Env(now=5 * NS + 10800 * NS + 1, recent=recent))
    assert recent.seen("KUBE-SEP-A", ip_bytes("10.244.1.5")) is None  # reaped


def test_rule_is_normalised_to_kernel_order() -> None:
    rule = Rule((Ports(6, dport=(80, 80)), Protocol(6), Destination(net("10.96.0.1/32")),
                 Source(net("10.0.0.0/8"), negate=True)), Jump("KUBE-MARK-MASQ"), "svc")
    assert rule.text == ('! -s 10.0.0.0/8 -d 10.96.0.1/32 -p tcp -m comment --comment svc '
                         '-m tcp --dport 80 -j KUBE-MARK-MASQ')


@pytest.mark.parametrize("build", [
    lambda: Rule((Ports(6, dport=(80, 80)),), ACCEPT),  # -m tcp without -p tcp
    lambda: Rule((Source(net("10.0.0.0/8")), Source(net("10.1.0.0/16"))), ACCEPT),
    lambda: Table("nat")["POSTROUTING"].append(Rule((), DROP)),
    lambda: Table("nat")["POSTROUTING"].append(Rule(tcp_dport(80), Dnat(IPv4Address("1.2.3.4")))),
    lambda: Table("nat")["PREROUTING"].append(Rule((), Reject())),
    lambda: Table("filter")["FORWARD"].append(Rule((), Reject("tcp-reset"))),
    lambda: Table("filter").new_chain("INPUT"),
    lambda: Table("bogus"),
])
def test_what_iptables_refuses_is_refused(build: object) -> None:
    with pytest.raises(ValueError):
        build()  # type: ignore[operator]


def test_validate_checks_jumps_loops_and_hooks() -> None:
    t = Table("nat")
    t.new_chain("A")
    t["PREROUTING"].append(Rule((), Jump("NOPE")))
    with pytest.raises(ValueError, match="no user chain NOPE"):
        t.validate()
    t["PREROUTING"].rules.clear()
    t.new_chain("B")
    t["PREROUTING"].append(Rule((), Jump("A")))
    t["A"].append(Rule((), Jump("B")))
    t["B"].append(Rule((), Jump("A")))
    with pytest.raises(ValueError, match="loop"):
        t.validate()
    t["B"].rules.clear()
    t["B"].append(Rule((), Masquerade()))  # reachable from PREROUTING: refused
    with pytest.raises(ValueError, match="reachable from PREROUTING"):
        t.validate()
