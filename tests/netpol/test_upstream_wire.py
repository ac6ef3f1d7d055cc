"""Kubernetes' NetworkPolicy e2e truth tables, run as traffic on ``network: calico``.

Every cell of every upstream probe (``tests/netpol/upstream_cases.py``, transcribed from
kubernetes ``test/e2e/network/netpol/network_policy.go``) is a real connection through
felix's rules: an allowed cell gets its answer, a denied one is dropped by a policy chain
(``DropReason.POLICY``) and by nothing else.  On the networks that do not enforce
NetworkPolicy every cell is allowed, as on a real kubenet or flannel cluster.
"""

from __future__ import annotations

import pytest

from pktsim.core.events import DropReason
from tests.netpol.shapes import Case
from tests.netpol.upstream_cases import cases
from tests.netpol.wire import wire_matrices

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
