"""Upstream's reachability probes as pktsim traffic: one connection per cell, on the wire.

Upstream's ``probe.go`` runs ``agnhost connect`` from each pod to each other pod's address on
the probed port (TCP: a connection; UDP: a datagram and its answer).  Here every cell of a
probe is one flow; all flows of a probe run together in one run (each from its own
source port, so conntrack keeps them apart) and a cell is allowed exactly when its flow
got its answer.
"""

from __future__ import annotations

from typing import Any

import yaml

import pktsim
from pktsim.core.events import DropReason, Event
from pktsim.devices.outcome import FlowStatus
from tests.netpol.shapes import Case
from tests.netpol.upstream_cases import expectations, pod_ip, scenario_yaml


def probe_flows(pairs: list[tuple[str, str]], port: int, protocol: str) -> dict[str, Any]:
    """A ``kind: Traffic`` document with one flow per (from, to) pair."""
    flows = [{"name": f"{frm}>{to}", "from": frm, "to": f"{pod_ip(to)[1]}:{port}",
              "protocol": protocol.lower()} for frm, to in pairs]
    return {"apiVersion": "pktsim/v1alpha1", "kind": "Traffic",
            "metadata": {"name": "probes"}, "spec": {"flows": flows}}


Cell = tuple[bool, bool, frozenset[DropReason]]  # upstream's, the wire's, the drops' reasons


def wire_matrices(case: Case, network: str = "calico") -> list[tuple[str, dict[
        tuple[str, str], Cell]]]:
    """Per probe: each cell's upstream expectation, whether the wire allowed it, and the
    reasons of the drops its flow met."""
    out = []
    for probe, expected in expectations(case):
        pairs = sorted(expected)
        text = scenario_yaml(case, network) + "---\n" + yaml.safe_dump(
            probe_flows(pairs, probe.port, probe.protocol), sort_keys=False)
        result = pktsim.load(text).run()
        got = {tuple(r.flow.split(">")): r.status is FlowStatus.OK
               for r in result.flows}
        drops: dict[tuple[str, ...], set[DropReason]] = {}
        for ev in result.events:
            if ev.event is Event.DROP and ev.drop_reason is not None:
                drops.setdefault(tuple(ev.flow.split(">")), set()).add(ev.drop_reason)
        out.append((f"{probe.protocol}/{probe.port}",
                    {pair: (expected[pair], got[pair], frozenset(drops.get(pair, ())))
                     for pair in pairs}))
    return out
