"""``Cluster.reachability`` on upstream's 9-pod model (x/y/z × a/b/c serving 80 and 81 over
TCP and UDP): the matrix's shape, its determinism, that a probe's cell does not depend on
the probes run beside it, and the time a 9-pod × 2-port matrix takes."""

from __future__ import annotations

import time

import pytest

import pktsim
from pktsim import Reachability, Verdict
from tests.netpol.shapes import ALL_PODS
from tests.netpol.upstream_cases import cases, scenario_yaml

NAMESPACES = ["x", "y", "z"]


@pytest.fixture(scope="module")
def cluster() -> pktsim.Cluster:
    case = next(c for c in cases() if c.policies)
    return pktsim.load(scenario_yaml(case, network="routes"))


@pytest.fixture(scope="module")
def matrix(cluster: pktsim.Cluster) -> Reachability:
    return cluster.reachability(namespaces=NAMESPACES)


def test_nine_pods_two_ports_in_well_under_ten_seconds(cluster: pktsim.Cluster) -> None:
    started = time.perf_counter()
    reach = cluster.reachability(ports=[80, 81], namespaces=NAMESPACES)
    elapsed = time.perf_counter() - started
    assert len(reach.cells) == 9 * 8 * 2
    assert elapsed < 5.0, f"{elapsed:.2f} s"


def test_dimensions_and_default_ports(matrix: Reachability) -> None:
    assert matrix.pods == ALL_PODS
    assert matrix.ports == (("tcp", 80), ("tcp", 81))  # what the pods declare
    for protocol, port in matrix.ports:
        cells = matrix.matrix(protocol, port)
        assert len(cells) == 72 and all(src != dst for src, dst in cells)
    assert {c.flow for c in matrix.cells} == {f"reach-{n}" for n in range(1, 145)}


def test_on_routes_everything_is_allowed_and_says_why(matrix: Reachability) -> None:
    assert not matrix.enforced
    assert {c.verdict for c in matrix.cells} == {Verdict.ALLOWED}
    assert {c.reason for c in matrix.cells} == {"network does not enforce NetworkPolicy"}
    assert all(c.decided_by == () for c in matrix.cells)
    assert len(matrix.warnings) == 1 and "does not enforce NetworkPolicy" in matrix.warnings[0]


def test_repr_counts_the_verdicts(matrix: Reachability) -> None:
    assert repr(matrix) == ("<pktsim.Reachability: 9 pods, tcp/80, tcp/81, network routes: "
                            "144 cells (144 allowed)>")


def test_same_input_same_matrix(cluster: pktsim.Cluster, matrix: Reachability) -> None:
    again = cluster.reachability(namespaces=NAMESPACES)
    assert again.cells == matrix.cells
    assert again.text() == matrix.text()


def test_a_cell_does_not_depend_on_the_probes_beside_it(cluster: pktsim.Cluster,
                                                        matrix: Reachability) -> None:
    """x alone (6 probes a port) and the full matrix (72) agree on x's cells."""
    alone = cluster.reachability(namespaces=["x"])
    for cell in alone.cells:
        full = matrix.cell(cell.source, cell.destination, cell.port, cell.protocol)
        assert (full.verdict, full.decided_by, full.reason) == \
            (cell.verdict, cell.decided_by, cell.reason)


def test_udp_is_a_datagram_and_its_echo(cluster: pktsim.Cluster) -> None:
    reach = cluster.reachability(ports=[80], protocol="udp", namespaces=["x", "y"])
    assert reach.ports == (("udp", 80),)
    assert {c.verdict for c in reach.cells} == {Verdict.ALLOWED}


@pytest.mark.parametrize("protocol", ["tcp", "udp"])
def test_a_port_nobody_listens_on_is_refused_not_denied(cluster: pktsim.Cluster,
                                                        protocol: str) -> None:
    reach = cluster.reachability(ports=[82], protocol=protocol, namespaces=["x"])
    assert {c.verdict for c in reach.cells} == {Verdict.REFUSED}
    assert "R" in reach.text()


def test_bad_arguments_name_the_argument(cluster: pktsim.Cluster) -> None:
    with pytest.raises(pktsim.ScenarioError, match="namespaces: 'nope'"):
        cluster.reachability(namespaces=["nope"])
    with pytest.raises(pktsim.ScenarioError, match="protocol: 'sctp'"):
        cluster.reachability(protocol="sctp")
    with pytest.raises(pktsim.ScenarioError, match="ports: 0"):
        cluster.reachability(ports=[0])


def test_frame_and_heatmap(matrix: Reachability) -> None:
    frame = matrix.frame()
    assert list(frame.columns) == ["source", "destination", "port", "protocol", "verdict",
                                   "direction", "policy", "reason"]
    assert len(frame) == 144 and set(frame["verdict"]) == {"allowed"}
    fig = matrix.heatmap()
    axes = fig.get_axes()
    assert [ax.get_title() for ax in axes] == ["tcp/80", "tcp/81"]
    assert [t.get_text() for t in axes[0].get_yticklabels()] == list(ALL_PODS)
    assert [t.get_text() for t in axes[0].get_xticklabels()] == list(ALL_PODS)


@pytest.mark.slow
def test_over_a_hundred_probes_from_one_pod_do_not_overflow_a_neighbour_queue(
        cluster: pktsim.Cluster) -> None:
    """15 ports x 10 destinations: 150 probes a source, most through the node's gateway.
    Sent at one instant they would overflow its neighbour queue (unres_qlen 101: "neighbour
    queue full", ~700 cells failed when this was tried); 1 ms apart, none fails."""
    reach = cluster.reachability(ports=list(range(80, 95)))
    assert len(reach.pods) == 11  # x/y/z and CoreDNS's two pods
    assert {c.verdict for c in reach.cells} == {Verdict.ALLOWED, Verdict.REFUSED}
