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
from tests.hardening.test_frames_ipv6 import _frames as malformed_frames6

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
    if network.endswith("+ipv6"):  # dual-stack: every IPv6 device too (flannel-v6.1)
        text = SCENARIO.replace("spec: {network: %s}", "spec: {network: %s, ipFamilies: "
                                "[IPv4, IPv6]}") % network.removesuffix("+ipv6")
        return pktsim.load(text).build()
    return pktsim.load(SCENARIO % network).build()


def devices(topo: Topology) -> list[tuple[object, list[str]]]:
    out: list[tuple[object, list[str]]] = []
    for ns in [*topo.node_ns.values(), *topo.pod_ns.values(), *topo.clients.values()]:
        out.append((ns, list(ns.ifaces)))
    for br in topo.bridges.values():
        out.append((br, [*br.hairpin, br.local_port]))
    for dev in [*topo.tunnels.values(), *topo.tunnels6.values()]:
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


@settings(max_examples=300)
@given(st.sampled_from(("routes+ipv6", "vxlan+ipv6")), st.integers(0, 50), st.integers(0, 10),
       st.one_of(malformed_frames(), malformed_frames6()), st.integers(0, 10**12))
def test_malformed_frames_never_raise_in_a_dual_stack_cluster(network: str, index: int,
                                                              port: int, data: bytes,
                                                              now: int) -> None:
    """IPv6 frames and their mutations too, into every device and port of a dual-stack
    cluster (IPv6 packets into tunnel sockets, truncated ones into a ``stack`` port)."""
    feed(network, index, port, data, now)
