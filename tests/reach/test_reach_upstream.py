"""Upstream's NetworkPolicy e2e truth tables, probed on the wire with Calico: every cell of
``pktsim reach`` must say what kubernetes' ``reachability.go`` expects, and every deciding
policy must be one that applies (``test/e2e/network/netpol/network_policy.go``, transcribed
in ``tests/netpol/upstream_cases.py``): the acceptance test of felix's chains as the
matrix reads their verdicts from the trace."""

from __future__ import annotations

import pytest

import pktsim
from pktsim import Reachability, Verdict
from pktsim.model.policy import policies_selecting
from tests.netpol.shapes import Case
from tests.netpol.upstream_cases import cases, expectations, scenario_yaml

CASES = cases()
pytestmark = pytest.mark.slow


def calico(case: Case) -> pktsim.Cluster:
    return pktsim.load(scenario_yaml(case, network="calico"))


def isolating(cluster: pktsim.Cluster, pod: str, direction: str) -> set[str]:
    info = cluster.model.pods[pod]
    return {p.key for p in policies_selecting(cluster.model.network_policies,
                                              info.pod.namespace, info.pod.labels, direction)}


def check_policies(cluster: pktsim.Cluster, reach: Reachability) -> list[str]:
    """An allowed cell names, per isolated side, one of that side's policies; a denied
    cell names the isolating policies of its direction, and nothing else."""
    wrong = []
    for c in reach.cells:
        sides = {"Egress": isolating(cluster, c.source, "Egress"),
                 "Ingress": isolating(cluster, c.destination, "Ingress")}
        named = {d: {p for dd, p in c.decided_by if dd == d} for d in sides}
        if c.verdict is Verdict.ALLOWED:
            bad = [d for d in sides if bool(sides[d]) != bool(named[d])
                   or not named[d] <= sides[d]]
        else:
            bad = [d for d in sides if named[d] and named[d] != sides[d]]
        if bad:
            wrong.append(f"{c.source} -> {c.destination} {c.protocol}/{c.port}: {bad} "
                         f"{c.decided_by} (isolating {sides})")
    return wrong


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.context[-3:]}:{c.id}")
def test_matrix_matches_upstream_on_calico(case: Case) -> None:
    cluster = calico(case)
    for probe, expected in expectations(case):
        reach = cluster.reachability(ports=[probe.port], protocol=probe.protocol.lower(),
                                     namespaces=["x", "y", "z"])
        got = reach.matrix(probe.protocol.lower(), probe.port)
        wrong = [f"{frm} -> {to}: upstream {want}, pktsim {got[(frm, to)].value}"
                 for (frm, to), want in expected.items()
                 if (got[(frm, to)] is Verdict.ALLOWED) != want]
        assert not wrong, f"{probe.protocol}/{probe.port}: {wrong}"
        assert not [c for c in reach.cells if c.verdict in (Verdict.REFUSED, Verdict.FAILED)]
        assert not check_policies(cluster, reach)
