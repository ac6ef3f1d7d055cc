"""Kubernetes' NetworkPolicy e2e truth tables, run as traffic on ``network: calico``.

Every cell of every upstream probe (``tests/netpol/upstream_cases.py``, transcribed from
kubernetes ``test/e2e/network/netpol/network_policy.go``) is a real connection through
felix's rules: an allowed cell gets its answer, a denied one is dropped by a policy chain
(``DropReason.POLICY``) and by nothing else.  On the networks that do not enforce
NetworkPolicy every cell is allowed, as on a real kubenet or flannel cluster.
"""

from __future__ import annotations

import pytest
import yaml

import pktsim
from pktsim.core.events import DropReason, Event, PolicyVerdict
from tests.netpol.shapes import Case
from tests.netpol.upstream_cases import cases, scenario_yaml
from tests.netpol.wire import probe_flows, wire_matrices

CASES = cases()


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.context[-3:]}:{c.id}")
def test_calico_on_the_wire_matches_upstream(case: Case) -> None:
    for probe, cells in wire_matrices(case, "calico"):
        wrong = [f"{frm} -> {to}: upstream {want}, wire {got}"
                 for (frm, to), (want, got, _) in cells.items() if want != got]
        assert not wrong, f"{case.name} {probe}: {wrong}"
        for (frm, to), (want, _, reasons) in cells.items():
            assert reasons == (set() if want else {DropReason.POLICY}), (frm, to, reasons)


@pytest.mark.parametrize("network", ["routes", "vxlan"])
def test_networks_without_policy_allow_every_cell(network: str) -> None:
    case = next(c for c in CASES if "default-deny-all" in c.name)
    for _, cells in wire_matrices(case, network):
        assert all(got for _, got, _ in cells.values())
        assert not any(reasons for _, _, reasons in cells.values())


def test_the_trace_names_the_isolating_policy_and_the_allowing_rule() -> None:
    case = next(c for c in CASES if "within server namespace based on PodSelector" in c.name)
    text = scenario_yaml(case) + "---\n" + yaml.safe_dump(
        probe_flows([("x/b", "x/a"), ("x/c", "x/a")], 80, "TCP"))
    result = pktsim.load(text).run()
    verdicts = {}
    for ev in result.events:
        if ev.event is Event.POLICY:
            assert isinstance(ev.detail, PolicyVerdict)
            verdicts.setdefault((ev.flow, ev.detail.direction), ev.detail)
    allowed, denied = verdicts[("x/b>x/a", "Ingress")], verdicts[("x/c>x/a", "Ingress")]
    assert (allowed.allowed, allowed.policy, allowed.rule) == (True, "x/x-a-allows-x-b", 1)
    assert allowed.chain == "cali-pi-knp/x/x-a-allows-x-b"
    assert (denied.allowed, denied.selecting) == (False, ("x/x-a-allows-x-b",))
    assert "denied (isolated by x/x-a-allows-x-b" in denied.text()
    assert verdicts[("x/c>x/a", "Egress")].selecting == ()  # x/c is not isolated
