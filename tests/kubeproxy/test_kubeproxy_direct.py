"""kube-proxy's per-endpoint rules made directly are the rules read from their text.

``node_tables`` skips writing and reading the ``KUBE-SVC``/``KUBE-SEP`` rules that make up
most of a big cluster's iptables; each must be the very rule ``restore_tables`` reads from
the ``node_rules`` line it stands for, in the same place, so that every node's tables (and
their ``iptables-save`` text) are the same either way.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import pktsim
from benchmarks.scale import write_cluster
from pktsim.kubeproxy import node_rules
from pktsim.kubeproxy.ports import ProxyConfig
from pktsim.kubeproxy.rules import _build, _items, node_tables
from pktsim.kubeproxy.tables import RuleMaker, restore_tables
from pktsim.model.cluster import ClusterModel
from pktsim.netfilter.document import RuleLine
from pktsim.netfilter.rules import Table
from pktsim.netfilter.save import render
from tests.kubeproxy.test_kubeproxy import SCENARIO


def _same(direct: dict[str, Table], read: dict[str, Table]) -> None:
    assert list(direct) == list(read)
    for name, table in read.items():
        mine = direct[name]
        assert list(mine.chains) == list(table.chains)
        for chain in table.chains.values():
            other = mine.chains[chain.name]
            assert other.policy == chain.policy
            assert list(other.rules) == list(chain.rules), f"{name} {chain.name}"
            assert [r.text for r in other.rules] == [r.text for r in chain.rules]
    assert render(direct.values()) == render(read.values())


def _models(tmp: Path) -> list[ClusterModel]:
    write_cluster(tmp / "scale.json", 4, services=7, pods=50)
    affinity = SCENARIO.replace("selector: {app: web}, ", "selector: {app: web}, "
                                "sessionAffinity: ClientIP, ", 1)
    return [pktsim.load(SCENARIO).model, pktsim.load(affinity).model,
            pktsim.demo_cluster().model, pktsim.load(tmp / "scale.json").model]


def test_direct_rules_are_the_rules_of_the_text(tmp_path: Path) -> None:
    for model in _models(tmp_path):
        for node in model.nodes:
            _same(node_tables(model, node), restore_tables(node_rules(model, node)))


def test_most_rules_of_a_generated_cluster_are_made_directly(tmp_path: Path) -> None:
    write_cluster(tmp_path / "c.json", 2, services=3, pods=12)
    model = pktsim.load(tmp_path / "c.json").model
    items = _items(_build(model, "node-1", ProxyConfig(), RuleMaker()))
    made = [i for i in items if isinstance(i, RuleLine) and not i.source]  # not read: made
    # a jump, a hairpin mark and a DNAT per endpoint: 12 pods, the API server, and the two
    # CoreDNS pods behind kube-dns's three ports
    assert len(made) == 3 * (12 + 1 + 2 * 3)


def test_an_unknown_node_is_the_same_error() -> None:
    model = pktsim.demo_cluster().model
    with pytest.raises(KeyError, match="no node 'node-9'"):
        node_tables(model, "node-9")
