"""Malformed IPv6 frames -- truncated, flipped, with lying payload lengths, ND messages
with broken options, ICMPv6 errors quoting nothing -- injected anywhere in a dual-stack
cluster are dropped with a reason or handled, never a crash, and each gets a fate."""

from __future__ import annotations

from functools import cache

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import TCP, UDP
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoRequest,
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6ND_RS,
    ICMPv6NDOptDstLLAddr,
    ICMPv6NDOptSrcLLAddr,
    ICMPv6PacketTooBig,
    IPv6,
)
from scapy.layers.l2 import Ether

import pktsim

POD_MAC = "02:00:00:00:00:09"
ADDRS = ("fd00:10:244::2", "fd00:10:244::3", "fd00:10:244:1::2", "fd00:10:244::1",
         "fe80::1", "ff02::1", "ff02::1:ff00:2", "::", "::1", "fc00:f853:ccd:e793::2")


@cache
def cluster(network: str) -> pktsim.Cluster:
    return pktsim.demo_cluster(network, ("IPv4", "IPv6"))


@cache
def interfaces(network: str) -> list[str]:
    return sorted(i.if_name for i in cluster(network).build().driver.interfaces
                  if i.linktype.name == "ETHERNET")


def _bodies() -> st.SearchStrategy[object]:
    macs = st.sampled_from(["02:00:00:00:00:01", POD_MAC, "33:33:00:00:00:01"])
    targets = st.sampled_from(ADDRS)
    return st.one_of(
        st.builds(lambda t, m: ICMPv6ND_NS(tgt=t) / ICMPv6NDOptSrcLLAddr(lladdr=m), targets,
                  macs),
        st.builds(lambda t, m, f: ICMPv6ND_NA(tgt=t, R=f & 1, S=f >> 1 & 1, O=f >> 2 & 1)
                  / ICMPv6NDOptDstLLAddr(lladdr=m), targets, macs, st.integers(0, 7)),
        st.just(ICMPv6ND_RS()),
        st.builds(lambda i: ICMPv6EchoRequest(id=i), st.integers(0, 65535)),
        st.builds(lambda d: ICMPv6DestUnreach(code=4) / IPv6(dst=d) / UDP(), targets),
        st.builds(lambda m: ICMPv6PacketTooBig(mtu=m) / IPv6() / TCP(), st.integers(0, 9000)),
        st.builds(lambda p: TCP(dport=p, flags="S"), st.integers(0, 65535)),
        st.builds(lambda p: UDP(dport=p) / b"x", st.integers(0, 65535)),
    )


def _frames() -> st.SearchStrategy[bytes]:
    valid = st.builds(lambda s, d, h, b: bytes(Ether(src=POD_MAC, dst="33:33:ff:00:00:02")
                                               / IPv6(src=s, dst=d, hlim=h) / b),
                      st.sampled_from(ADDRS), st.sampled_from(ADDRS),
                      st.sampled_from([0, 1, 2, 64, 255]), _bodies())

    def mutate(t: tuple[bytes, int, int, int]) -> bytes:
        data, kind, at, value = t
        at = 14 + at % max(1, len(data) - 14)
        if kind == 0:
            return data
        if kind == 1:
            return data[:at]
        if kind == 2:
            return data[:at] + bytes([data[at] ^ (value & 0xFF or 1)]) + data[at + 1:]
        return data[:18] + value.to_bytes(2, "big") + data[20:]  # the payload length lies

    return st.tuples(valid, st.integers(0, 3), st.integers(0, 200),
                     st.integers(0, 65535)).map(mutate)


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(("routes", "vxlan")), st.integers(0, 400), _frames())
def test_malformed_ipv6_frames_injected_anywhere_get_a_fate(network: str, index: int,
                                                            data: bytes) -> None:
    names = interfaces(network)
    result = cluster(network).run(flows=[pktsim.inject(names[index % len(names)], data,
                                                       name="x")])
    steps = [e.summary for e in result.events if e.flow == "x"]
    assert steps and result.flows[0].reason
