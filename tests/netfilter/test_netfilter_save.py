"""iptables-save text: the canonical forms, parse/render round trips, and a real iptables.

The kernel tests load pktsim's text into ``iptables-restore`` inside a network namespace
created for the test (never the root namespace's tables) and compare what ``iptables-save``
prints there with what pktsim prints, byte for byte.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pktsim.netfilter import (
    ACCEPT,
    DROP,
    RETURN,
    AddrType,
    Comment,
    CtState,
    Destination,
    Dnat,
    IcmpType,
    InIface,
    Jump,
    Mark,
    Masquerade,
    Match,
    OutIface,
    Ports,
    Protocol,
    Recent,
    Reject,
    Rule,
    SetMark,
    Snat,
    Source,
    Statistic,
    Table,
    Target,
    flannel_forward,
    flannel_masquerade,
    kube_proxy_masquerade,
    parse,
    parse_rule,
    render,
)
from pktsim.netfilter.save import tokenize


def rule_text(chain: str, rule: Rule) -> str:
    return f"-A {chain} {rule.text}"


# -- canonical text ------------------------------------------------------------------------
@pytest.mark.parametrize(("written", "printed"), [
    ("0.3333333333", "0.33333333349"), ("0.5000000000", "0.50000000000"),
    ("0.2500000000", "0.25000000000"), ("0.2000000000", "0.20000000019"),
    ("0.33333", "0.33332999982"),
])
def test_probabilities_print_as_iptables_save_does(written: str, printed: str) -> None:
    """iptables' ``print_match`` (``extensions/libxt_statistic.c``): ``%.11f`` of 2^31ths."""
    assert Statistic(written).save() == f"-m statistic --mode random --probability {printed}"


def test_kube_proxy_rules_in_canonical_form() -> None:
    svc = Rule((Statistic("0.3333333333"),), Jump("KUBE-SEP-Y"), "ns/svc:p -> 10.0.0.1:80")
    assert rule_text("KUBE-SVC-X", svc) == (
        '-A KUBE-SVC-X -m comment --comment "ns/svc:p -> 10.0.0.1:80" -m statistic --mode '
        'random --probability 0.33333333349 -j KUBE-SEP-Y')
    assert rule_text("KUBE-MARK-MASQ", Rule((), SetMark.or_mark(0x4000))) == \
        "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000"
    assert rule_text("KUBE-POSTROUTING", Rule((), SetMark.xor_mark(0x4000))) == \
        "-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0"
    reject = Rule((Destination(IPv4Network("10.96.0.50/32")), Protocol(6),
                   Ports(6, dport=(80, 80))), Reject(), "ns6/svc6:p80 has no endpoints")
    assert rule_text("KUBE-SERVICES", reject) == (
        '-A KUBE-SERVICES -d 10.96.0.50/32 -p tcp -m comment --comment "ns6/svc6:p80 has no '
        'endpoints" -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable')


def test_kube_proxy_input_form_is_normalised() -> None:
    """What kube-proxy writes (its KUBE-SVC masquerade and ``recent`` rules) reads into the
    canonical form."""
    written = ('-m comment --comment "default/web:http cluster IP" -m tcp -p tcp '
               '-d 10.96.45.12 --dport 80 ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ')
    assert parse_rule(tokenize(written)).text == (
        '! -s 10.244.0.0/16 -d 10.96.45.12/32 -p tcp -m comment --comment '
        '"default/web:http cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ')
    affinity = ('-m comment --comment ns1/svc1:p80 -m recent --name KUBE-SEP-SXIVWICOYRO3J4NJ '
                '--rcheck --seconds 10800 --reap -j KUBE-SEP-SXIVWICOYRO3J4NJ')
    assert parse_rule(tokenize(affinity)).text == (
        '-m comment --comment "ns1/svc1:p80" -m recent --rcheck --seconds 10800 --reap --name '
        'KUBE-SEP-SXIVWICOYRO3J4NJ --mask 255.255.255.255 --rsource -j KUBE-SEP-SXIVWICOYRO3J4NJ')
    assert parse_rule(tokenize("-p udp --dport 53 -j ACCEPT")).text == \
        "-p udp -m udp --dport 53 -j ACCEPT"


def test_comment_quoting() -> None:
    assert Comment("ns1svc").save() == "-m comment --comment ns1svc"
    assert Comment("a b").save() == '-m comment --comment "a b"'
    assert Comment('x"y').save() == '-m comment --comment "x\\"y"'
    assert tokenize('-m comment --comment "x\\"y \\\'z" -j RETURN') == \
        ["-m", "comment", "--comment", "x\"y 'z", "-j", "RETURN"]


def test_flannel_preset_is_fact_70() -> None:
    nat = Table("nat")
    kube_proxy_masquerade(nat)
    flannel_masquerade(nat, "10.244.1.0/24", "10.244.0.0/16")
    lines = [line for line in render([nat]).splitlines() if "FLANNEL" in line]
    note = '-m comment --comment "flanneld masq"'
    assert lines == [
        ":FLANNEL-POSTRTG - [0:0]",
        f"-A POSTROUTING {note} -j FLANNEL-POSTRTG",
        f"-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 {note} -j RETURN",
        f"-A FLANNEL-POSTRTG -s 10.244.1.0/24 -d 10.244.0.0/16 {note} -j RETURN",
        f"-A FLANNEL-POSTRTG -s 10.244.0.0/16 -d 10.244.1.0/24 {note} -j RETURN",
        f"-A FLANNEL-POSTRTG ! -s 10.244.0.0/16 -d 10.244.1.0/24 {note} -j RETURN",
        f"-A FLANNEL-POSTRTG -s 10.244.0.0/16 ! -d 224.0.0.0/4 {note} -j MASQUERADE "
        "--random-fully",
        f"-A FLANNEL-POSTRTG ! -s 10.244.0.0/16 -d 10.244.0.0/16 {note} -j MASQUERADE "
        "--random-fully",
    ]


def test_what_iptables_drops_or_refuses() -> None:
    """Checked against iptables 1.8.9 (nf_tables): a condition matching everything is not
    printed, its negation is refused, as are -i after and -o before routing."""
    assert parse_rule(tokenize("-s 0.0.0.0/0 -d 1.2.3.4/0 -j ACCEPT")).text == "-j ACCEPT"
    assert parse_rule(tokenize("-p tcp -m tcp --dport 0:65535 -j ACCEPT")).text == \
        "-p tcp -m tcp -j ACCEPT"
    for bad in ("! -d 0.0.0.0/0 -j ACCEPT", "-p tcp -m tcp ! --sport 0:65535 -j ACCEPT"):
        with pytest.raises(ValueError, match="matches nothing"):
            parse_rule(tokenize(bad))
    with pytest.raises(ValueError, match="can't use -i with POSTROUTING"):
        parse("*nat\n-A POSTROUTING -i eth0 -j ACCEPT\nCOMMIT\n")
    with pytest.raises(ValueError, match="can't use -o with PREROUTING"):
        parse("*nat\n-A PREROUTING ! -o eth0 -j ACCEPT\nCOMMIT\n")


def test_parse_errors_name_the_line() -> None:
    with pytest.raises(ValueError, match="line 3: unsupported match module -m physdev"):
        parse("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m physdev --physdev-in x -j DROP\n")
    with pytest.raises(ValueError, match="no COMMIT"):
        parse("*nat\n")


# -- a rule set using every form pktsim knows -------------------------------------------------
def everything() -> list[Table]:
    """Every match and target form, in every table, as a kube-proxy + flannel node has."""
    nat, filt, mangle, raw = Table("nat"), Table("filter"), Table("mangle"), Table("raw")
    kube_proxy_masquerade(nat)
    flannel_masquerade(nat, "10.244.1.0/24", "10.244.0.0/16")
    flannel_forward(filt, "10.244.0.0/16")
    for name in ("KUBE-SERVICES", "KUBE-SVC-XPGD46QRK7WJZT7O", "KUBE-SEP-A", "KUBE-SEP-B",
                 "KUBE-NODEPORTS", "KUBE-EXT-XPGD46QRK7WJZT7O"):
        nat.new_chain(name)
    vip, tcp80 = Destination(IPv4Network("172.30.0.41/32")), (Protocol(6), Ports(6, None, (80, 80)))
    nat["PREROUTING"].append(Rule((), Jump("KUBE-SERVICES"), "kubernetes service portals"))
    nat["OUTPUT"].append(Rule((), Jump("KUBE-SERVICES"), "kubernetes service portals"))
    nat["KUBE-SERVICES"].append(Rule((vip, *tcp80), Jump("KUBE-SVC-XPGD46QRK7WJZT7O"),
                                     "ns1/svc1:p80 cluster IP"))
    nat["KUBE-SERVICES"].append(Rule((AddrType(dst_types=("LOCAL",)),), Jump("KUBE-NODEPORTS"),
                                     "kubernetes service nodeports; NOTE: this must be the last "
                                     "rule in this chain"))
    nat["KUBE-NODEPORTS"].append(Rule((Protocol(6), Ports(6, None, (30080, 30080))),
                                      Jump("KUBE-EXT-XPGD46QRK7WJZT7O"), "ns1/svc1:p80"))
    nat["KUBE-EXT-XPGD46QRK7WJZT7O"].append(Rule((), Jump("KUBE-MARK-MASQ"),
                                                 "masquerade traffic for ns1/svc1:p80 external "
                                                 "destinations"))
    nat["KUBE-EXT-XPGD46QRK7WJZT7O"].append(Rule((), Jump("KUBE-SVC-XPGD46QRK7WJZT7O")))
    svc = nat["KUBE-SVC-XPGD46QRK7WJZT7O"]
    svc.append(Rule((Source(IPv4Network("10.244.0.0/16"), True), vip, *tcp80),
                    Jump("KUBE-MARK-MASQ"), "ns1/svc1:p80 cluster IP"))
    svc.append(Rule((Recent("KUBE-SEP-A", "rcheck", 10800, True),), Jump("KUBE-SEP-A"),
                    "ns1/svc1:p80"))
    svc.append(Rule((Statistic("0.5000000000"),), Jump("KUBE-SEP-A"),
                    "ns1/svc1:p80 -> 10.244.2.7:8080"))
    svc.append(Rule((), Jump("KUBE-SEP-B"), "ns1/svc1:p80 -> 10.244.3.9:8080"))
    for chain, ip in (("KUBE-SEP-A", "10.244.2.7"), ("KUBE-SEP-B", "10.244.3.9")):
        nat[chain].append(Rule((Source(IPv4Network(f"{ip}/32")),), Jump("KUBE-MARK-MASQ"),
                               "ns1/svc1:p80"))
        nat[chain].append(Rule((Protocol(6), Recent(chain, "set"), Ports(6)),
                               Dnat(IPv4Address(ip), (8080, 8080)), "ns1/svc1:p80"))
    nat["POSTROUTING"].append(Rule((OutIface("eth+"), Protocol(17), Ports(17, (1000, 2000))),
                                   Snat(IPv4Address("172.18.0.2"), (1024, 65535),
                                        random_fully=True)))
    nat["POSTROUTING"].append(Rule((Protocol(6), OutIface("eth0", True)),
                                   Masquerade((3000, 4000), random=True)))
    nat["POSTROUTING"].append(Rule((Source(IPv4Network("192.168.0.0/16")),),
                                   Snat(IPv4Address("172.18.0.9"))))
    nat["OUTPUT"].append(Rule((Protocol(17), Ports(17, None, (53, 53))),
                              Dnat(IPv4Address("10.244.2.10"))))
    filt["FORWARD"].policy = "DROP"
    filt.new_chain("KUBE-FORWARD")
    filt["FORWARD"].append(Rule((), Jump("KUBE-FORWARD"), "kubernetes forwarding rules"))
    fwd = filt["KUBE-FORWARD"]
    fwd.append(Rule((CtState(frozenset({"INVALID"})),), DROP))
    fwd.append(Rule((Mark(0x4000, 0x4000),), ACCEPT, "kubernetes forwarding rules"))
    fwd.append(Rule((CtState(frozenset({"RELATED", "ESTABLISHED"})),), ACCEPT,
                    "kubernetes forwarding conntrack rule"))
    fwd.append(Rule((CtState(frozenset({"NEW"}), True, "state"),), RETURN))
    fwd.append(Rule((InIface("cni0"), Protocol(6), Ports(6, (1, 1023), (22, 22), True, True)),
                    Reject("tcp-reset")))
    fwd.append(Rule((Protocol(1), IcmpType(8)), Reject("icmp-host-prohibited")))
    fwd.append(Rule((Protocol(1, True),), ACCEPT))
    filt["INPUT"].append(Rule((AddrType(("LOCAL",), ("LOCAL",), True, True),), DROP))
    filt["OUTPUT"].append(Rule((Protocol(1), IcmpType(3, 3, negate=True)), ACCEPT))
    mangle.new_chain("KUBE-PROXY-CANARY")
    mangle["PREROUTING"].append(Rule((Mark(0x1),), SetMark.set_mark(0x10)))
    mangle["POSTROUTING"].append(Rule((), SetMark.and_mark(0x10)))
    raw["PREROUTING"].append(Rule((Destination(IPv4Network("10.96.0.10/32")),), ACCEPT))
    for t in (nat, filt, mangle, raw):
        t.validate()
    return [nat, filt, mangle, raw]


def _rules(tables: dict[str, Table]) -> dict[str, list[tuple[str, Rule]]]:
    return {name: [(c.name, r) for c, _, r in t.rules()] for name, t in tables.items()}


def test_render_parse_round_trip() -> None:
    tables = everything()
    text = render(tables)
    again = parse(text)
    assert render(again.values()) == text
    assert _rules(again) == _rules({t.name: t for t in tables})
    assert text.startswith("*mangle\n") and text.index("*filter") < text.index("*nat")


# -- rules from strategies -------------------------------------------------------------------
_cidrs = st.builds(lambda a, n: IPv4Network(f"{a}/{n}", strict=False), st.ip_addresses(v=4),
                   st.integers(1, 32))
_ports = st.one_of(st.none(), st.tuples(st.integers(1, 65535), st.integers(0, 100)).map(
    lambda t: (t[0], min(65535, t[0] + t[1]))))
_comment = st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=30)
_ifname = st.from_regex(r"[a-z][a-z0-9]{0,8}\+?", fullmatch=True)


@st.composite
def rules(draw: st.DrawFn, table: str) -> Rule:
    ms: list[Match] = []
    proto = draw(st.sampled_from([0, 6, 17, 1]))
    if draw(st.booleans()):
        ms.append(Source(draw(_cidrs), draw(st.booleans())))
    if draw(st.booleans()):
        ms.append(Destination(draw(_cidrs), draw(st.booleans())))
    if draw(st.booleans()):  # -i only after routing in, -o only before routing out
        iface = InIface if table == "filter" else OutIface
        ms.append(iface(draw(_ifname), draw(st.booleans())))
    if proto:
        ms.append(Protocol(proto))
    if proto in (6, 17) and draw(st.booleans()):
        ms.append(Ports(proto, draw(_ports), draw(_ports), draw(st.booleans()),
                        draw(st.booleans())))
    extra = draw(st.lists(st.sampled_from(["comment", "mark", "ct", "stat", "addr", "recent"]),
                          unique=True, max_size=3))
    for kind in extra:
        ms.append(_module(draw, kind))
    return Rule(tuple(ms), _target(draw, table, proto))


def _module(draw: st.DrawFn, kind: str) -> Match:
    if kind == "comment":
        return Comment(draw(_comment))
    if kind == "mark":
        return Mark(draw(st.integers(0, 0xFFFF)), draw(st.sampled_from([0xFFFFFFFF, 0xFFFF])),
                    draw(st.booleans()))
    if kind == "ct":
        states = draw(st.sets(st.sampled_from(["NEW", "ESTABLISHED", "RELATED", "INVALID"]),
                              min_size=1))
        return CtState(frozenset(states), draw(st.booleans()))
    if kind == "stat":
        return Statistic(f"{draw(st.integers(1, 99)) / 100:0.10f}")
    if kind == "addr":
        return AddrType(dst_types=(draw(st.sampled_from(["LOCAL", "UNICAST", "BROADCAST"])),),
                        dst_negate=draw(st.booleans()))
    return Recent(draw(st.from_regex(r"[A-Z][A-Z0-9-]{0,10}", fullmatch=True)), "rcheck",
                  draw(st.integers(1, 86400)), True)


def _target(draw: st.DrawFn, table: str, proto: int) -> Target:
    if table == "nat":
        return draw(st.sampled_from([ACCEPT, RETURN, SetMark.or_mark(0x4000),
                                     Masquerade(random_fully=True), Masquerade()]))
    options: list[Target] = [ACCEPT, DROP, RETURN, Reject(), SetMark.xor_mark(0x4000)]
    if proto == 6:
        options.append(Reject("tcp-reset"))
    return draw(st.sampled_from(options))


@given(st.lists(rules("filter"), max_size=6), st.lists(rules("nat"), max_size=6))
def test_generated_rules_round_trip(filter_rules: list[Rule], nat_rules: list[Rule]) -> None:
    filt, nat = Table("filter"), Table("nat")
    for r in filter_rules:
        filt["FORWARD"].append(r)
    for r in nat_rules:
        nat["POSTROUTING"].append(r)
    text = render([filt, nat])
    again = parse(text)
    assert _rules(again) == _rules({"filter": filt, "nat": nat})
    assert render(again.values()) == text


# -- the real thing ------------------------------------------------------------------------------
def _kernel_ready() -> str:
    if os.geteuid() != 0:
        return "needs root to create a network namespace"
    for tool, package in (("ip", "iproute2"), ("iptables-restore", "iptables"),
                          ("iptables-save", "iptables")):
        if shutil.which(tool) is None:
            return f"needs {tool} (Debian package {package})"
    return ""


@pytest.fixture
def netns() -> Iterator[str]:
    why = _kernel_ready()
    if why:
        pytest.skip(why)
    name = f"pktnf-{os.getpid()}-{secrets.token_hex(3)}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if made.returncode:
        pytest.skip(f"cannot create a network namespace: {made.stderr.strip()}")
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], capture_output=True)


def real_save(ns: str, text: str) -> str:
    """``iptables-restore`` the text inside ``ns`` (replacing the tables it names), then its
    ``iptables-save`` without the comment lines."""
    loaded = subprocess.run(["ip", "netns", "exec", ns, "iptables-restore"], input=text,
                            capture_output=True, text=True)
    assert loaded.returncode == 0, loaded.stderr
    saved = subprocess.run(["ip", "netns", "exec", ns, "iptables-save"], capture_output=True,
                           text=True, check=True).stdout
    return "".join(line + "\n" for line in saved.splitlines() if not line.startswith("#"))


def _blocks(text: str) -> dict[str, str]:
    return {block.split("\n", 1)[0]: block for block in text.split("*")[1:]}


def _assert_same(real: str, ours: str) -> None:
    assert _blocks(real) == _blocks(ours)
    assert real == ours  # nf_tables backend: also the same table order


@pytest.mark.kernel
def test_real_iptables_prints_what_pktsim_prints(netns: str) -> None:
    text = render(everything())
    _assert_same(real_save(netns, text), text)


@pytest.mark.kernel
def test_real_iptables_reads_kube_proxy_input_as_pktsim_does(netns: str) -> None:
    written = "\n".join([
        "*nat", ":KUBE-SERVICES - [0:0]", ":KUBE-SVC-X - [0:0]", ":KUBE-SEP-A - [0:0]",
        ":KUBE-MARK-MASQ - [0:0]", ":KUBE-POSTROUTING - [0:0]",
        '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        "-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000",
        "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
        "-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000",
        '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" '
        "-j MASQUERADE --random-fully",
        '-A KUBE-SERVICES -m comment --comment "default/web:http cluster IP" -m tcp -p tcp '
        "-d 10.96.45.12 --dport 80 -j KUBE-SVC-X",
        '-A KUBE-SVC-X -m comment --comment "default/web:http cluster IP" -m tcp -p tcp '
        "-d 10.96.45.12 --dport 80 ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ",
        "-A KUBE-SVC-X -m comment --comment default/web:http -m recent --name KUBE-SEP-A "
        "--rcheck --seconds 10800 --reap -j KUBE-SEP-A",
        '-A KUBE-SVC-X -m comment --comment "default/web:http -> 10.244.1.5:8080" -m statistic '
        "--mode random --probability 0.3333333333 -j KUBE-SEP-A",
        "-A KUBE-SEP-A -m comment --comment default/web:http -s 10.244.1.5 -j KUBE-MARK-MASQ",
        "-A KUBE-SEP-A -m comment --comment default/web:http -m recent --name KUBE-SEP-A --set "
        "-m tcp -p tcp -j DNAT --to-destination 10.244.1.5:8080",
        "-A KUBE-SEP-A -p udp --dport 53 -m comment --comment dns -j DNAT --to-destination "
        "10.244.1.6",
        "COMMIT", "*filter", ":KUBE-FORWARD - [0:0]", "-A FORWARD -j KUBE-FORWARD",
        "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP",
        "-A KUBE-FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
        "-A KUBE-FORWARD -m icmp -p icmp --icmp-type echo-request -j ACCEPT",
        "-A KUBE-FORWARD -j MARK --set-mark 0x10/0xf0",
        "COMMIT", ""])
    ours = render(parse(written).values())
    _assert_same(real_save(netns, written), ours)


@pytest.mark.kernel
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(st.lists(rules("filter"), min_size=1, max_size=8),
       st.lists(rules("nat"), min_size=1, max_size=8))
def test_real_iptables_agrees_on_generated_rules(netns: str, filter_rules: list[Rule],
                                                 nat_rules: list[Rule]) -> None:
    filt, nat = Table("filter"), Table("nat")
    for r in filter_rules:
        filt["FORWARD"].append(r)
    for r in nat_rules:
        nat["POSTROUTING"].append(r)
    text = render([filt, nat])
    _assert_same(real_save(netns, text), text)
