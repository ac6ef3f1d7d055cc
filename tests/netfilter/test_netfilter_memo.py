"""The walk memo (``netfilter/memo.py``) decides what a fresh walk would, and never more.

A memoised walk must give the same verdict and trace as walking the rules again; a rule
that reads more than the packet's facts (``-m statistic``, ``-m recent``, ``-m addrtype``)
turns the memo off for its table; a change to a chain drops what was remembered for its
table, and only for its table (each table counts its own generation).
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pktsim.netfilter.save import parse_rule, tokenize
from pktsim.wire.parse import TCP_ACK, TCP_SYN
from tests.netfilter.test_netfilter_nat import Node, tcp

FORWARD = ("*filter\n:KUBE-FORWARD - [0:0]\n-A FORWARD -j KUBE-FORWARD\n"
           "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP\n"
           "-A KUBE-FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n{extra}"
           "COMMIT\n")


def forward(node: Node, now: int, sport: int, flags: int = TCP_SYN) -> list[str]:
    """What the node says about one packet it forwards from cbr0 to a pod on another node."""
    return node.said(node.send(now, "cbr0", tcp("10.244.1.5", sport, "10.244.2.7", 8080, flags)))


def test_repeated_packets_get_the_same_decision_and_trace_as_the_first() -> None:
    node = Node(FORWARD.format(extra="-A KUBE-FORWARD -p tcp -m tcp --dport 8080 -j ACCEPT\n"))
    first = forward(node, 0, 40000)
    assert any("filter FORWARD: ACCEPT (KUBE-FORWARD)" in s for s in first), first
    for k in range(1, 6):  # other connections with the same facts hit the memo
        assert forward(node, k, 40000 + k) == [s.replace("40000", str(40000 + k))
                                               for s in first]
    assert len(node.nf._memo) >= 1


def test_a_rule_added_later_is_seen_at_once() -> None:
    node = Node(FORWARD.format(extra=""))
    forward(node, 0, 40000)
    drop = parse_rule(tokenize("-p tcp -m tcp --dport 8080 -j DROP"))
    node.nf.table("filter")["KUBE-FORWARD"].insert(1, drop)
    said = forward(node, 1, 40000)  # the same facts as the first packet: a memo hit before
    assert said[-1].startswith("drop: dropped by a rule (filter FORWARD: DROP"), said


def test_a_policy_changed_later_is_seen_at_once() -> None:
    node = Node(FORWARD.format(extra=""))
    assert not any(s.startswith("drop") for s in forward(node, 0, 40000))
    node.nf.table("filter")["FORWARD"].policy = "DROP"
    said = forward(node, 1, 40000)
    assert said[-1].startswith("drop: dropped by a rule (filter FORWARD: policy DROP"), said


def test_rules_that_read_more_than_the_packet_are_never_memoised() -> None:
    node = Node(FORWARD.format(
        extra="-A KUBE-FORWARD -m statistic --mode random --probability 0.5 -j DROP\n"))
    outcomes = {any(s.startswith("drop") for s in forward(node, k, 40000 + k))
                for k in range(40)}
    assert outcomes == {True, False}  # each packet drew its own number
    assert not len(node.nf._memo)


@settings(max_examples=40)
@given(st.lists(st.sampled_from([TCP_SYN, TCP_ACK, TCP_SYN | TCP_ACK]), min_size=1,
                max_size=12),
       st.lists(st.integers(40000, 40003), min_size=1, max_size=12))
def test_memo_agrees_with_walking_again(flags: list[int], ports: list[int]) -> None:
    """The same packets through two nodes, one with its memo emptied before every packet."""
    rules = FORWARD.format(extra="-A FORWARD -p tcp -m tcp --dport 8080 -m mark --mark 0x1/0x1 "
                                 "-j ACCEPT\n-A FORWARD -p tcp -j MARK --set-xmark 0x2/0x2\n")
    memo, fresh = Node(rules), Node(rules)
    for k, (f, port) in enumerate(zip(flags, ports, strict=False)):
        fresh.nf._memo.clear()
        assert forward(memo, k, port, f) == forward(fresh, k, port, f)


def test_a_change_to_one_nodes_table_leaves_another_nodes_memo() -> None:
    a, b = Node(FORWARD.format(extra="")), Node(FORWARD.format(extra=""))
    first_b = forward(b, 0, 40000)
    forward(a, 0, 40000)
    remembered = len(b.nf._memo)
    assert remembered >= 1
    drop = parse_rule(tokenize("-p tcp -m tcp --dport 8080 -j DROP"))
    a.nf.table("filter")["KUBE-FORWARD"].insert(1, drop)
    assert forward(a, 1, 40000)[-1].startswith("drop: dropped by a rule")  # seen at once
    b_filter = b.nf.table("filter")
    memo = b.nf._memo.of(b_filter)
    assert memo is not None and memo.generation == b_filter.generation
    assert len(memo.entries) == remembered  # b's memo was not flushed by a's change
    assert forward(b, 1, 40001) == [s.replace("40000", "40001") for s in first_b]


def test_each_table_counts_its_own_changes() -> None:
    node, other = Node(FORWARD.format(extra="")), Node(FORWARD.format(extra=""))
    filt, mangle = node.nf.table("filter"), node.nf.table("mangle")
    before = (filt.generation, mangle.generation, other.nf.table("filter").generation)
    filt["FORWARD"].policy = "DROP"
    assert filt.generation != before[0]
    assert (mangle.generation, other.nf.table("filter").generation) == before[1:]
    g = filt.generation
    filt.new_chain("EXTRA")
    assert filt.generation != g
    g = filt.generation
    filt["EXTRA"].rules = []
    assert filt.generation != g
    g = filt.generation
    filt["EXTRA"].rules.append(parse_rule(tokenize("-j ACCEPT")))
    assert filt.generation != g


def test_an_overlay_sees_a_change_to_its_base_and_its_own() -> None:
    from pktsim.netfilter.save import parse

    base = parse(FORWARD.format(extra=""))["filter"].freeze()
    one, two = base.overlay(), base.overlay()
    g1, g2 = one.generation, two.generation
    one["KUBE-FORWARD"].append(parse_rule(tokenize("-j ACCEPT")))  # copy on write, then add
    assert one.generation != g1 and two.generation == g2
    base.own["FORWARD"].rules.append(parse_rule(tokenize("-j ACCEPT")))  # behind its back
    assert two.generation != g2
