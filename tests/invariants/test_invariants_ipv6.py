"""The path invariants hold for IPv6 as for IPv4 -- and catch an IPv6 model broken on
purpose: a router that forgets the hop limit, NAT between pods' IPv6 addresses, a bad
ICMPv6 checksum."""

from __future__ import annotations

import pytest

import pktsim
from pktsim import invariants
from pktsim.core.frame import Frame, Reaction
from pktsim.devices import ipv6 as ipv6_mod
from pktsim.devices.netns import Netns
from pktsim.devices.routes import Route
from pktsim.wire import ip6

SCENARIO = """
apiVersion: pktsim/v1alpha1
kind: Cluster
spec: {hairpinMode: false, ipFamilies: [IPv4, IPv6]}
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
spec: {flows: [{from: default/a, to: 'http://[fd00:10:244:1::2]/'},
               {from: default/a, to: 'http://[fd00:10:244::3]/'},
               {from: default/a, to: default/b, family: IPv6, protocol: icmp, count: 2},
               {from: default/a, to: 'http://10.244.1.2/'}]}
"""


def run() -> pktsim.Result:
    return pktsim.load(SCENARIO).run()


def test_an_honest_dual_stack_run_passes_every_invariant() -> None:
    result = run()
    invariants.check_all(result)
    six = [h for h in invariants.hops(result) if ":" in h.src]
    assert six and {h.ttl for h in six} >= {64, 63, 62}  # IPv6 packets are walked too


def test_a_router_that_forgets_the_hop_limit_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    original = ipv6_mod.ip6_forward

    def no_decrement(ns: Netns, now: int, port: str, pkt: bytes, frame: Frame,
                     r: Reaction) -> None:
        original(ns, now, port, pkt[:7] + bytes([pkt[7] + 1]) + pkt[8:], frame, r)

    monkeypatch.setattr(ipv6_mod, "ip6_forward", no_decrement)
    with pytest.raises(AssertionError,
                       match=r"TTL fell by 0 from .* to frame #\d+ .* routed 1 times"):
        invariants.ttl_decreases_per_routed_hop(run())


def test_nat_between_pods_ipv6_addresses_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    original = ipv6_mod._out
    node = bytes.fromhex("fc00f8530ccde7930000000000000002")

    def snat(ns: Netns, now: int, route: Route, pkt: bytes, frame: Frame, r: Reaction) -> None:
        if ns.forwarding and pkt[6] == 6 and pkt[8:24] == ip6_a():
            pkt = pkt[:8] + node + pkt[24:]
        original(ns, now, route, pkt, frame, r)

    monkeypatch.setattr(ipv6_mod, "_out", snat)
    with pytest.raises(AssertionError, match=r"pod-to-pod fd00:10:244::2 -> fd00:10:244:1::2 "
                                              r"became fc00:f853:ccd:e793::2 -> "):
        invariants.pod_to_pod_not_natted(run())


def ip6_a() -> bytes:
    return bytes.fromhex("fd000010024400000000000000000002")


def test_a_bad_icmpv6_checksum_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    original = ip6.echo

    def corrupt(*args: object, **kwargs: object) -> bytes:
        body = original(*args, **kwargs)  # type: ignore[arg-type]
        return body[:2] + bytes([body[2] ^ 0xFF]) + body[3:]

    monkeypatch.setattr(ip6, "echo", corrupt)
    result = run()
    with pytest.raises(AssertionError, match="bad ICMPv6 checksum"):
        invariants.checksums_valid(result)
