"""kubeadm's add-ons are part of the loaded scenario; a Cluster only reads its Scenario."""

from __future__ import annotations

import copy

import pktsim
from pktsim.api import demo_text
from pktsim.scenario import load_scenario
from pktsim.scenario.addons import with_addons

NO_DNS = """
apiVersion: pktsim/v1alpha1
kind: Cluster
metadata: {name: quiet}
spec: {nodes: 1, dns: none}
"""


def _keys(items: list[object]) -> list[str]:
    return [str(getattr(i, "key", "")) for i in items]


def test_the_loaded_scenario_holds_coredns() -> None:
    s = load_scenario([("<demo>", demo_text())])
    assert "kube-system/kube-dns" in _keys(list(s.services))
    assert any(p.name.startswith("coredns-") for p in s.pods)


def test_cluster_does_not_change_the_scenario() -> None:
    s = load_scenario([("<demo>", demo_text())])
    before = copy.deepcopy(s)
    first, second = pktsim.Cluster(s), pktsim.Cluster(s)
    assert s == before
    assert first.model.pods.keys() == second.model.pods.keys()


def test_addons_leave_their_argument_alone() -> None:
    bare = load_scenario([("<demo>", demo_text())], seed=None)
    user = copy.deepcopy(bare)
    user.pods = [p for p in user.pods if p.namespace != "kube-system"]
    user.services = [v for v in user.services if v.key != "kube-system/kube-dns"]
    kept = copy.deepcopy(user)
    added = with_addons(user)
    assert user == kept and added is not user
    assert _keys(list(added.services)) == _keys(list(bare.services))


def test_dns_none_adds_nothing() -> None:
    s = load_scenario([("<no dns>", NO_DNS)])
    assert "kube-system/kube-dns" not in _keys(list(s.services))
    assert with_addons(s) is s
