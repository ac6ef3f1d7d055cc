"""The matcher's dispatch index, kube-proxy's fast table reader and shared (overlay) tables:
each must give exactly what the plain way gives."""

from __future__ import annotations

import random
from ipaddress import IPv4Network

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pktsim
from pktsim.kubeproxy import node_rules
from pktsim.kubeproxy.tables import restore_tables
from pktsim.netfilter import (
    ACCEPT,
    DROP,
    RETURN,
    Comment,
    Destination,
    Env,
    Jump,
    Mark,
    PacketView,
    Ports,
    Protocol,
    Rule,
    SetMark,
    Source,
    Table,
    evaluate,
    parse,
    render,
)
from pktsim.netfilter.engine import INDEX_MIN, chain_index, rule_key
from pktsim.netfilter.save import _scan, tokenize
from pktsim.wire.parse import ip_bytes

VIPS = ["10.96.0.1", "10.96.0.2", "10.96.0.3", "10.96.7.7"]
PORTS = [53, 80, 443]


def keyed(vip: str, port: int, proto: int = 6, target: object = None) -> Rule:
    """A kube-proxy ``KUBE-SERVICES`` rule: ``-d VIP/32 -p P -m P --dport N``."""
    return Rule((Destination(IPv4Network(vip)), Protocol(proto), Ports(proto, dport=(port, port))),
                target or Jump("SUB"), comment=f"{vip}:{port}")  # type: ignore[arg-type]


# a rule the index must not skip over: it matches on something else too
OTHERS = [
    Rule((Protocol(6), Ports(6, sport=(40000, 40000), dport=(80, 80))), Jump("SUB")),
    Rule((Destination(IPv4Network("10.96.0.0/16")),), SetMark.or_mark(0x10)),
    Rule((Mark(0x10, 0x10),), Jump("SUB")),
    Rule((Destination(IPv4Network("10.96.0.2"), negate=True), Protocol(6)), RETURN),
    Rule((Source(IPv4Network("10.244.0.0/16")),), None),
    Rule((Destination(IPv4Network("10.96.0.3")), Protocol(17)), DROP),
]

rule_strategy = st.one_of(
    st.builds(keyed, st.sampled_from(VIPS), st.sampled_from(PORTS), st.sampled_from([6, 17]),
              st.sampled_from([Jump("SUB"), ACCEPT, DROP, RETURN, SetMark.or_mark(1)])),
    st.sampled_from(OTHERS))


def table_of(rules: list[Rule]) -> Table:
    t = Table("filter")
    sub = t.new_chain("SUB")
    sub.append(Rule((Mark(1, 1),), ACCEPT))
    sub.append(Rule((), SetMark.or_mark(2)))
    t.new_chain("BIG").rules.extend(rules)
    t["FORWARD"].append(Rule((), Jump("BIG")))
    t["FORWARD"].append(Rule((), DROP))
    return t


def both(t: Table, p: PacketView) -> tuple[object, object]:
    results = []
    for indexed in (True, False):
        q = PacketView(p.src, p.dst, p.proto, p.sport, p.dport, mark=p.mark)
        out = evaluate(t, "FORWARD", q, Env(rng=random.Random(0)), indexed=indexed)
        results.append((out.verdict, out.target, out.hits, out.path, out.mark, q.mark))
    return results[0], results[1]


@settings(max_examples=150, deadline=None)
@given(st.lists(rule_strategy, min_size=INDEX_MIN, max_size=60),
       st.sampled_from([*VIPS, "10.96.9.9"]), st.sampled_from([6, 17, 1]),
       st.sampled_from([None, *PORTS, 8080]), st.sampled_from([0, 1, 0x10]))
def test_indexed_walk_is_the_linear_walk(rules: list[Rule], dst: str, proto: int,
                                          dport: int | None, mark: int) -> None:
    t = table_of(rules)
    sport = None if dport is None or proto == 1 else 40000
    p = PacketView(ip_bytes("10.244.1.5"), ip_bytes(dst), proto, sport,
                   dport if sport else None, mark=mark)
    indexed, linear = both(t, p)
    assert indexed == linear


def test_a_rule_between_keyed_runs_is_still_tried() -> None:
    rules = [keyed(f"10.96.1.{i}", 80) for i in range(20)]
    rules.insert(10, Rule((Destination(IPv4Network("10.96.1.15")),), ACCEPT, comment="middle"))
    rules.append(keyed("10.96.1.15", 80, target=DROP))
    t = table_of(rules)
    index = chain_index(t["BIG"])
    assert index is not None and index[10] is None and index[0] is not None
    p = PacketView(ip_bytes("10.244.1.5"), ip_bytes("10.96.1.15"), 6, 40000, 80)
    indexed, linear = both(t, p)
    assert indexed == linear
    assert indexed[1] == ACCEPT and [h.index for h in indexed[2]] == [1, 11]  # type: ignore[index]


def test_the_index_follows_changes_to_the_chain() -> None:
    t = table_of([keyed(f"10.96.1.{i}", 80) for i in range(20)])
    p = PacketView(ip_bytes("10.244.1.5"), ip_bytes("10.96.1.3"), 6, 40000, 80)
    assert both(t, p)[0][1] == DROP  # through SUB and back, to FORWARD's last rule
    t["BIG"].rules.insert(0, keyed("10.96.1.3", 80, target=ACCEPT))
    indexed, linear = both(t, p)
    assert indexed == linear and indexed[1] == ACCEPT
    t["BIG"].rules = [keyed("10.96.1.3", 80, target=SetMark.or_mark(1))] * INDEX_MIN
    indexed, linear = both(t, p)
    assert indexed == linear and indexed[1] == DROP and len(indexed[2]) == INDEX_MIN + 2  # type: ignore[arg-type]


def test_only_exact_dst_proto_dport_rules_are_keyed() -> None:
    assert rule_key(keyed("10.96.0.1", 80)) == (0x0A600001, 6, 80)
    assert all(rule_key(r) is None for r in OTHERS)
    assert rule_key(Rule((Destination(IPv4Network("10.96.0.0/24")), Protocol(6),
                          Ports(6, dport=(80, 80))), ACCEPT)) is None
    assert rule_key(Rule((Destination(IPv4Network("10.96.0.1")), Protocol(6),
                          Ports(6, dport=(80, 81))), ACCEPT)) is None
    assert rule_key(Rule((Destination(IPv4Network("10.96.0.1")), Protocol(6), Comment("x"),
                          Ports(6, dport=(80, 80), dport_negate=True)), ACCEPT)) is None


# -- kube-proxy's text, read fast ---------------------------------------------------------------

SCENARIO = """\
apiVersion: pktsim/v1alpha1
kind: Cluster
spec: {nodes: 3}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 4
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, ports: [{containerPort: 8080, name: http}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  type: NodePort
  selector: {app: web}
  sessionAffinity: ClientIP
  ports:
  - {port: 80, targetPort: http, name: http}
  - {port: 81, targetPort: 8080, protocol: UDP, name: dns}
---
apiVersion: v1
kind: Service
metadata: {name: lb, namespace: shop}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  loadBalancerSourceRanges: [203.0.113.0/24]
  externalIPs: [192.0.2.10]
  selector: {app: web}
  ports: [{port: 443, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: empty, namespace: shop}
spec: {selector: {app: none}, ports: [{port: 80}]}
"""


def test_restore_tables_is_parse() -> None:
    model = pktsim.load(SCENARIO).model
    for node in model.nodes:
        text = node_rules(model, node)
        fast, slow = restore_tables(text), parse(text)
        assert fast.keys() == slow.keys()
        for name in fast:
            assert render([fast[name]]) == render([slow[name]])
            assert dict(fast[name].chains) == dict(slow[name].chains)


@pytest.mark.parametrize("line", [
    '-A X -m comment --comment "a b" -j Y', "-A X  -j   Y", '-A X -m comment --comment "" -j Y',
    '-A X -m comment --comment a"b c"d -j Y', '-A X -m comment --comment "a\\"b" -j Y',
    '-A X "a""b"', '-A X "a" "b"', "-A\tX -j Y"])
def test_split_words_is_tokenize(line: str) -> None:
    """``tokenize``'s ``str.split`` path gives what its character-by-character scan gives."""
    assert tokenize(line) == _scan(line)


def test_bad_text_gives_parses_error() -> None:
    text = "*nat\n:KUBE-X - [0:0]\n-A KUBE-X -m tcp -p tcp --dport 80 -j\nCOMMIT\n"
    with pytest.raises(ValueError) as fast:
        restore_tables(text)
    with pytest.raises(ValueError) as slow:
        parse(text)
    assert str(fast.value) == str(slow.value)


# -- shared tables ------------------------------------------------------------------------------

def test_overlays_copy_on_write_and_validate_what_they_add() -> None:
    base = table_of([keyed(f"10.96.1.{i}", 80) for i in range(20)]).freeze()
    a, b = base.overlay(), base.overlay()
    a["BIG"].append(Rule((), DROP))
    a.new_chain("MINE").append(Rule((), ACCEPT))
    assert len(b.chain("BIG").rules) == 20 and len(base.chain("BIG").rules) == 20  # type: ignore[union-attr]
    assert "MINE" in a and "MINE" not in b and "MINE" not in base
    assert render([b]) == render([base])
    a.validate()
    b["FORWARD"].append(Rule((), Jump("NOWHERE")))
    with pytest.raises(ValueError, match="no user chain NOWHERE"):
        b.validate()
    with pytest.raises(ValueError, match="frozen"):
        base.new_chain("X")


def test_cluster_nodes_share_kube_proxy_rules() -> None:
    text = SCENARIO.replace("externalTrafficPolicy: Local", "externalTrafficPolicy: Cluster")
    text = text.replace("  loadBalancerSourceRanges: [203.0.113.0/24]\n", "")
    cluster = pktsim.load(text)
    topo = cluster.build()
    assert len(topo.kube_proxy_tables) == 1
    for node, nf in topo.netfilters.items():
        fresh = parse(node_rules(cluster.model, node))
        for name in ("filter", "nat"):
            mine = nf.tables[name]
            theirs = render([fresh[name]]).splitlines()
            # the node's tables also have flannel's chains and the canaries
            assert [ln for ln in render([mine]).splitlines()
                    if "FLANNEL" not in ln and "-CANARY" not in ln] == theirs
    specific = pktsim.load(SCENARIO).build()
    assert len(specific.kube_proxy_tables) == 3  # Local policy: per-node rules
