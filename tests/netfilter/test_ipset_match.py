"""ipset, ``-m set``, ``-m multiport``, ``-g`` and ``--ctstate DNAT``: as the kernel reads and
iptables-save prints them (the expected text is what iptables v1.8.9 / ipset v7.17 printed
for the same input in a network namespace)."""

from __future__ import annotations

import socket

import pytest

from pktsim.netfilter.engine import evaluate
from pktsim.netfilter.ipset import IpSets
from pktsim.netfilter.save import parse, render
from pktsim.netfilter.view import Env, PacketView

RULES = """*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:T - [0:0]
:W - [0:0]
-A FORWARD -j T
-A FORWARD -j MARK --set-xmark 0x1/0xffffffff
-A T -p tcp -m set --match-set cali40s:abc src -m multiport --destination-ports 80,81:90 -j MARK --set-xmark 0x10000/0x10000
-A T -m mark --mark 0x10000/0x10000 -j ACCEPT
-A T -p tcp -m set --match-set cali40n:x dst,dst -g W
-A T -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
-A T -m comment --comment "x"
-A W -m set ! --match-set cali40s:abc dst -j DROP
COMMIT
"""  # noqa: E501

SETS = """create cali40s:abc hash:ip family inet hashsize 1024 maxelem 1048576
add cali40s:abc 10.0.0.2
add cali40s:abc 10.0.0.1
create cali40all-ipam-pools hash:net family inet hashsize 1024 maxelem 1048576
add cali40all-ipam-pools 10.244.0.0/16
create cali40n:x hash:ip,port family inet hashsize 1024 maxelem 65536
add cali40n:x 10.0.0.1,tcp:80
"""


def _sets() -> IpSets:
    sets = IpSets()
    sets.restore(SETS)
    return sets


def test_rules_print_as_iptables_save_prints_them() -> None:
    text = render(parse(RULES).values())
    assert ("-A T -p tcp -m set --match-set cali40s:abc src -m multiport --dports 80,81:90 "
            "-j MARK --set-xmark 0x10000/0x10000") in text
    assert "-A T -p tcp -m set --match-set cali40n:x dst,dst -g W" in text
    assert "-A T -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP" in text
    assert "-A T -m comment --comment x" in text
    assert "-A W -m set ! --match-set cali40s:abc dst -j DROP" in text
    again = render(parse(text).values())
    assert again == text


def test_ipset_save_prints_members_in_order_with_v7_header() -> None:
    lines = _sets().save().splitlines()
    assert lines[0].startswith("create cali40s:abc hash:ip family inet hashsize 1024 "
                               "maxelem 1048576 bucketsize 12 initval 0x")
    assert lines[1:3] == ["add cali40s:abc 10.0.0.2", "add cali40s:abc 10.0.0.1"]
    assert "add cali40all-ipam-pools 10.244.0.0/16" in lines
    assert any(line.startswith("create cali40n:x hash:ip,port family inet hashsize 1024 "
                               "maxelem 65536") for line in lines)
    assert "add cali40n:x 10.0.0.1,tcp:80" in lines


def _view(src: str, dst: str, dport: int, *, ctstate: str = "NEW",
          nat: frozenset[str] = frozenset()) -> PacketView:
    return PacketView(socket.inet_aton(src), socket.inet_aton(dst), 6, 40000, dport,
                      "cali1", "cali2", 0, ctstate, None, nat)


@pytest.mark.parametrize(("src", "dport", "verdict"), [
    ("10.0.0.2", 85, "ACCEPT"),   # in the set, port in the range: marked, accepted by T
    ("10.0.0.3", 85, "DROP"),     # not in the set, NEW and not DNATed: dropped
])
def test_match_set_and_multiport(src: str, dport: int, verdict: str) -> None:
    table = parse(RULES)["filter"]
    out = evaluate(table, "FORWARD", _view(src, "10.9.9.9", dport), Env(ipsets=_sets()))
    assert out.verdict == verdict


def test_goto_returns_to_the_caller_of_the_chain_that_went() -> None:
    table = parse(RULES)["filter"]
    # to 10.0.0.1:80 (in cali40n:x): -g W; W's rule does not match (dst is in cali40s:abc),
    # so the end of W returns to FORWARD (not to T), whose next rule sets mark 0x1
    out = evaluate(table, "FORWARD", _view("10.0.0.9", "10.0.0.1", 80), Env(ipsets=_sets()))
    assert out.verdict == "ACCEPT" and out.mark == 0x1
    assert [h.chain for h in out.hits] == ["FORWARD", "T", "FORWARD"]


def test_ctstate_dnat_matches_a_dnatted_connection() -> None:
    table = parse(RULES)["filter"]
    env = Env(ipsets=_sets())
    out = evaluate(table, "FORWARD", _view("10.0.0.9", "10.9.9.9", 22,
                                           nat=frozenset({"DNAT"})), env)
    assert out.verdict == "ACCEPT" and out.mark == 0x1  # fell through T: not dropped


def test_a_set_nobody_created_is_an_error_not_a_silent_miss() -> None:
    table = parse(RULES)["filter"]
    with pytest.raises(KeyError, match="cali40s:abc"):
        evaluate(table, "FORWARD", _view("10.0.0.2", "10.9.9.9", 85), Env(ipsets=IpSets()))


def test_multiport_needs_a_protocol_as_iptables_says() -> None:
    with pytest.raises(ValueError, match="multiport needs"):
        parse("*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD -m multiport --dports 80 -j DROP\n"
              "COMMIT\n")
