"""The copy of upstream's Reachability builder: steps overwrite cells in call order."""

from __future__ import annotations

import pytest

from tests.netpol.reachability import (
    Expect,
    ExpectAllEgress,
    ExpectAllIngress,
    ExpectPeer,
    PeerMatch,
    Reachability,
)

PODS = ("x/a", "x/b", "y/a")


def denied(table: Reachability) -> set[tuple[str, str]]:
    return {pair for pair, ok in table.expected.items() if not ok}


def test_steps_apply_in_order() -> None:
    table = Reachability.built(PODS, [ExpectAllIngress("x/a", False), Expect("x/b", "x/a", True)])
    assert denied(table) == {("x/a", "x/a"), ("y/a", "x/a")}


def test_peer_matches_namespace_and_pod() -> None:
    table = Reachability.built(PODS, [ExpectPeer(PeerMatch("x"), PeerMatch(pod="a"), False)])
    assert denied(table) == {("x/a", "x/a"), ("x/a", "y/a"), ("x/b", "x/a"), ("x/b", "y/a")}
    egress = Reachability.built(PODS, [ExpectAllEgress("y/a", False)])
    assert denied(egress) == {("y/a", p) for p in PODS}


def test_unknown_pod_fails_as_upstream() -> None:
    with pytest.raises(KeyError):
        Reachability.built(PODS, [Expect("z/a", "x/a", True)])
