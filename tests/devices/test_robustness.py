"""Malformed frames are dropped with a reason by every device, never raised on."""

from __future__ import annotations

from functools import cache

from hypothesis import given, settings
from hypothesis import strategies as st

import pktsim
from pktsim.build.topology import Topology
from pktsim.core.events import Drop
from pktsim.core.frame import DropReason, Frame
from pktsim.strategies import NETWORKS, frames, malformed_frames

SCENARIO = """
apiVersion: pktsim/v1alpha1
kind: Cluster
spec: {network: %s}
---
apiVersion: v1
kind: Pod
metadata: {name: a}
spec: {nodeName: node-1, containers: [{name: c, ports: [{containerPort: 80},
        {containerPort: 53, protocol: UDP}]}]}
"""


@cache
def topology(network: str) -> Topology:
    return pktsim.load(SCENARIO % network).build()


def devices(topo: Topology) -> list[tuple[object, list[str]]]:
    out: list[tuple[object, list[str]]] = []
    for ns in [*topo.node_ns.values(), *topo.pod_ns.values(), *topo.clients.values()]:
        out.append((ns, list(ns.ifaces)))
    for br in topo.bridges.values():
        out.append((br, [*br.hairpin, br.local_port]))
    for dev in topo.tunnels.values():
        out.append((dev, ["dev", "stack"]))
    return out


def feed(network: str, index: int, port_index: int, data: bytes, now: int) -> None:
    topo = topology(network)
    found = devices(topo)
    device, ports = found[index % len(found)]
    port = ports[port_index % len(ports)]
    reaction = device.receive(now, port, Frame(data, 1, "fuzz"))  # type: ignore[attr-defined]
    reasons = {member.name for member in DropReason}
    for step in reaction.steps:
        if step.event == "drop":
            assert isinstance(step.detail, Drop) and step.detail.reason.name in reasons
            assert step.summary.startswith("drop: ")
    for emit in reaction.emits:
        assert isinstance(emit.frame.data, bytes)


@settings(max_examples=300)
@given(st.sampled_from(NETWORKS), st.integers(0, 50), st.integers(0, 10),
       malformed_frames(), st.integers(0, 10**12))
def test_malformed_frames_never_raise(network: str, index: int, port: int, data: bytes,
                                      now: int) -> None:
    feed(network, index, port, data, now)


@settings(max_examples=200)
@given(st.sampled_from(NETWORKS), st.integers(0, 50), st.integers(0, 10),
       frames(), st.integers(0, 10**12))
def test_valid_frames_anywhere_never_raise(network: str, index: int, port: int, data: bytes,
                                           now: int) -> None:
    feed(network, index, port, data, now)
