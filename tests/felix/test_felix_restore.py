"""felix's rules as the build makes them (once per build, shared, hashes from cached tails)
against iptables-restore reading the lines felix writes, rule by rule; and the Calico
routes to other nodes' blocks, shared and merged, against adding them all in one go."""

from __future__ import annotations

import json
from typing import Any

import pytest

import pktsim
from benchmarks.scale import cluster_objects
from pktsim import felix
from pktsim.build import calico
from pktsim.build.topology import Topology
from pktsim.devices.routes import Route, RoutingTable
from pktsim.felix.names import rule_hashes, rule_hashes_of_tails
from pktsim.felix.rules import FChain
from pktsim.felix.static import Config, filter_chains, nat_chains
from pktsim.netfilter.rules import Rule
from pktsim.netfilter.save import parse_rule, tokenize
from pktsim.sinks.trace import MemorySink

POLICIES: list[dict[str, Any]] = [
    {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
     "metadata": {"name": "deny", "namespace": "team-0"},
     "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}},
    {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
     "metadata": {"name": "allow", "namespace": "team-0"},
     "spec": {"podSelector": {"matchLabels": {"app": "svc-1"}},
              "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "svc-2"}}}],
                           "ports": [{"port": 8080}]}]}},
    {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
     "metadata": {"name": "allow2", "namespace": "team-0"},
     "spec": {"podSelector": {"matchLabels": {"app": "svc-1"}},
              "ingress": [{"from": [{"namespaceSelector": {}}]}]}},
]


def _topology(pool: dict[str, Any], tmp_path: Any) -> Topology:
    doc = cluster_objects(4, services=6)
    doc["items"][0]["spec"].update(network="calico", calico=pool)
    doc["items"] += POLICIES
    path = tmp_path / "calico.json"
    path.write_text(json.dumps(doc))
    return pktsim.load(path).build([MemorySink()])


def _restored(line: str) -> Rule:
    """What iptables-restore makes of one of felix's ``-A CHAIN ...`` lines."""
    return parse_rule(tokenize(line)[2:])


POOLS = [{"blockSize": 28}, {"ipipMode": "Never", "vxlanMode": "Always"},
         {"ipipMode": "CrossSubnet", "natOutgoing": False}]


@pytest.mark.parametrize("pool", POOLS)
def test_felix_rules_are_what_iptables_restore_reads_of_its_lines(
        pool: dict[str, Any], tmp_path: Any) -> None:
    topo = _topology(pool, tmp_path)
    for node in topo.model.node_list():
        program = felix.node_felix(calico.felix_inputs(topo, node))  # without the cache
        nf = topo.netfilters[node.name]
        for table, chains in program.chains.items():
            for c in chains:
                got = nf.table(table).chain(c.name)
                assert got is not None
                want = [_restored(line) for line in c.lines()]
                assert list(got.rules) == want, (node.name, c.name)
                assert [r.text for r in got.rules] == [r.text for r in want]
                assert [r.comment for r in got.rules] == [r.comment for r in want]
        for table, hooks in program.inserts.items():
            for hook, frules in hooks.items():
                lines = FChain(hook, tuple(frules)).lines()
                top = nf.table(table).chain(hook)
                assert top is not None
                assert list(top.rules[:len(lines)]) == [_restored(ln) for ln in lines]
        forward = nf.table("filter").chain("FORWARD")
        assert forward is not None
        lines = FChain("FORWARD", tuple(program.appends["filter"]["FORWARD"])).lines(
            "FORWARD*appends*")
        assert list(forward.rules[-len(lines):]) == [_restored(ln) for ln in lines]


def test_chains_alike_on_every_node_share_their_rules(tmp_path: Any) -> None:
    topo = _topology({}, tmp_path)
    a, b = (topo.netfilters[n.name].table("filter") for n in topo.model.node_list()[:2])
    for name in ("cali-FORWARD", "cali-INPUT", "cali-pri-kns.team-0"):
        mine, theirs = a.chain(name), b.chain(name)
        assert mine is not None and theirs is not None and mine is not theirs
        assert all(x is y for x, y in zip(mine.rules, theirs.rules, strict=True))
    a["cali-FORWARD"].rules.pop()  # one node's change is its own
    assert len(a["cali-FORWARD"].rules) == len(b["cali-FORWARD"].rules) - 1


def test_hashes_from_tails_are_felix_rule_hashes() -> None:
    cfg = Config(ipip=True, vxlan=True, ipip_tunnel=True, vxlan_tunnel=True,
                 nat_outgoing=True)
    for chain in [*filter_chains(cfg), *nat_chains(cfg)]:
        for name in (chain.name, f"{chain.name}*appends*"):
            rendered = [r.render(name, "HASH") for r in chain.rules]
            tails = [r.hash_tail().encode() for r in chain.rules]
            assert rule_hashes_of_tails(name, tails) == rule_hashes(name, rendered)


@pytest.mark.parametrize("pool", POOLS)
def test_routes_to_other_blocks_as_adding_them_all_at_once(
        pool: dict[str, Any], tmp_path: Any) -> None:
    topo = _topology(pool, tmp_path)
    for node in topo.model.node_list():
        table = topo.node_ns[node.name].routes
        proto = calico.FELIX_PROTO if topo.model.config.calico.encap == "vxlan" else "bird"
        added = [Route(b, "", proto=proto, type="blackhole") for b in node.blocks]
        added += [r for r in table.routes if r.scope == "link" and r.dev.startswith("cali")]
        for other in topo.model.node_list():
            if other.name != node.name:
                added += calico._routes_to(topo, node, other)
        ids = {id(r) for r in added}
        before = [r for r in table.routes if id(r) not in ids and r not in added]
        once = RoutingTable()
        once.routes = before
        once.add_many(added)
        assert table.routes == once.routes
