"""Each invariant holds on honest runs and catches a deliberately broken model."""

from __future__ import annotations

import pytest

import pktsim
from pktsim import invariants
from pktsim.core.frame import Reaction
from pktsim.devices import bridge as bridge_mod
from pktsim.devices import netns as netns_mod
from pktsim.wire import build

SCENARIO = """
apiVersion: pktsim/v1alpha1
kind: Cluster
spec: {hairpinMode: false}
---
apiVersion: v1
kind: Pod
metadata: {name: a}
spec: {nodeName: node-1, containers: [{name: c, ports: [{containerPort: 80}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: b}
spec: {nodeName: node-2, containers: [{name: c, ports: [{containerPort: 80}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: c}
spec: {nodeName: node-1, containers: [{name: c, ports: [{containerPort: 80}]}]}
---
apiVersion: pktsim/v1alpha1
kind: Traffic
spec: {flows: [{from: default/a, to: 'http://10.244.1.2/'},
               {from: default/a, to: 'http://10.244.0.3/'}]}
"""


def run() -> pktsim.Result:
    return pktsim.load(SCENARIO).run()


def test_honest_run_passes_every_invariant() -> None:
    invariants.check_all(run())


def test_reflecting_bridge_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    original = bridge_mod.Bridge.receive

    def reflect(self: bridge_mod.Bridge, now: int, port: str, frame: object) -> Reaction:
        r = original(self, now, port, frame)  # type: ignore[arg-type]
        if port in self.hairpin and r.emits:
            r.send(port, r.emits[0].frame)  # send a copy back out of the ingress port
        return r

    monkeypatch.setattr(bridge_mod.Bridge, "receive", reflect)
    with pytest.raises(AssertionError, match=r"back out of node-1:veth.*ingress port"):
        invariants.no_reflection_without_hairpin(run())


def test_router_that_forgets_ttl_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netns_mod, "update16", lambda csum, old, new: csum)
    original = netns_mod.Netns._forward

    def no_decrement(self: netns_mod.Netns, now: int, port: str, pkt: bytes, frame: object,
                     r: Reaction) -> None:
        patched = pkt[:8] + bytes([pkt[8] + 1]) + pkt[9:]  # undo the decrement to come
        original(self, now, port, patched, frame, r)  # type: ignore[arg-type]

    monkeypatch.setattr(netns_mod.Netns, "_forward", no_decrement)
    with pytest.raises(AssertionError,
                       match=r"TTL fell by 0 from .* to frame #\d+ .* routed 1 times"):
        invariants.ttl_decreases_per_routed_hop(run())


def test_nat_between_pods_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    original = netns_mod.Netns._post_routing

    def snat(self: netns_mod.Netns, now: int, route: object, pkt: bytes, frame: object,
             r: Reaction, *, in_dev: str) -> None:
        if self.forwarding and pkt[9] == 6 and pkt[12:16] == bytes([10, 244, 0, 2]):
            pkt = build.ipv4(bytes([172, 18, 0, 2]), pkt[16:20], 6, pkt[20:], ttl=pkt[8])
        original(self, now, route, pkt, frame, r, in_dev=in_dev)  # type: ignore[arg-type]

    monkeypatch.setattr(netns_mod.Netns, "_post_routing", snat)
    with pytest.raises(AssertionError, match=r"pod-to-pod 10\.244\.0\.2 -> 10\.244\.1\.2 became "
                                              r"172\.18\.0\.2 -> 10\.244\.1\.2"):
        invariants.pod_to_pod_not_natted(run())


def test_bad_checksum_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    original = build.tcp

    def corrupt(*args: object, **kwargs: object) -> bytes:
        seg = original(*args, **kwargs)  # type: ignore[arg-type]
        return seg[:16] + bytes([seg[16] ^ 0xFF]) + seg[17:]

    monkeypatch.setattr(build, "tcp", corrupt)
    result = run()
    with pytest.raises(AssertionError, match="bad TCP checksum"):
        invariants.checksums_valid(result)
    with pytest.raises(AssertionError, match="flows not delivered"):
        invariants.flows_delivered(result)  # the receivers dropped every segment
