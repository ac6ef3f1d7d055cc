"""Malformed frames are dropped with a reason on the capture path too, never a crash, and
every frame gets a trace step (issue 16).  Frames go in with ``pktsim.inject``, the public
way to put raw bytes on an interface."""

from __future__ import annotations

import struct
from functools import cache

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pktsim
from pktsim.core.capture import LinkType
from pktsim.strategies import malformed_frames
from pktsim.wire.checksum import checksum
from pktsim.wire.parse import summary

NETWORKS = ("routes", "vxlan", "ipip")
POD_MAC = "020000000009"


@cache
def cluster(network: str) -> pktsim.Cluster:
    demo = pktsim.demo_cluster(network)
    return pktsim.Cluster(demo.scenario)


@cache
def interfaces(network: str) -> list[str]:
    return sorted(i.if_name for i in cluster(network).build().driver.interfaces)


@cache
def raw_ip(network: str) -> frozenset[str]:
    """The interfaces that carry bare IPv4 (tunl0): frames there start at the IP header."""
    return frozenset(i.if_name for i in cluster(network).build().driver.interfaces
                     if i.linktype == LinkType.RAW)


def ipv4(proto: int, body: bytes, *, ihl: int = 5, src: str = "10.244.0.3",
         dst: str = "10.244.0.2") -> bytes:
    head = bytearray(struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, 20 + len(body), 0, 0x4000,
                                 64, proto, 0, bytes(map(int, src.split("."))),
                                 bytes(map(int, dst.split(".")))))
    struct.pack_into("!H", head, 10, checksum(bytes(head)))
    return bytes(head) + body


def ether(payload: bytes, ethertype: int = 0x0800, dst: str = "ffffffffffff") -> bytes:
    return bytes.fromhex(dst + POD_MAC) + struct.pack("!H", ethertype) + payload


def fate(network: str, interface: str, data: bytes) -> tuple[pktsim.FlowResult, list[str]]:
    result = cluster(network).run(flows=[pktsim.inject(interface, data, name="x")])
    steps = [e.summary for e in result.events if e.flow == "x"]
    return result.flows[0], steps


def test_ihl_below_5_with_ipip_inside_is_summarised_and_dropped_everywhere():
    inner = ipv4(1, bytes(8))
    frame = ether(ipv4(4, inner, ihl=0))
    for network in NETWORKS:
        for interface in interfaces(network):
            data = frame[14:] if interface in raw_ip(network) else frame
            outcome, steps = fate(network, interface, data)
            assert steps[0].endswith("bad-hlen 0"), (interface, steps)
            assert outcome.reason.startswith("drop: "), (interface, outcome.line())


def test_ipip_nested_three_thousand_deep_is_one_bounded_line():
    packet = ipv4(1, bytes(8))
    for _ in range(3000):
        packet = ipv4(4, packet)[:65535]
    line = summary(packet, raw_ip=True)
    assert line.endswith("| ...") and len(line) < 1000


def test_a_truncated_tcp_segment_into_a_bridge_port_is_invalid_for_conntrack():
    for network in NETWORKS:
        ports = [i for i in interfaces(network) if i.startswith("node-1:veth")]
        for n in range(0, 20):
            outcome, steps = fate(network, ports[0], ether(ipv4(6, bytes(n))))
            assert outcome.status == "ok" and steps, (n, steps)


def test_arp_opcode_3_is_dropped_as_arp_process_does():
    arp = bytes.fromhex("0001080006040003" + POD_MAC + "0af40003" + "000000000000" + "0af40002")
    outcome, steps = fate("routes", "default/client:eth0", ether(arp, 0x0806))
    assert steps[0].startswith("ARP, Reverse Request who-is")
    assert outcome.reason == ("drop: unsupported protocol (ARP opcode 3 is neither request "
                              "nor reply (arp_process drops it))")


def test_an_unsolicited_arp_reply_leaves_a_step_and_no_entry():
    arp = bytes.fromhex("0001080006040002" + POD_MAC + "0af40063" + "000000000000" + "0af40002")
    outcome, _steps = fate("routes", "default/client:eth0", ether(arp, 0x0806))
    assert "unsolicited" in outcome.reason and "arp_accept=0" in outcome.reason
    result = cluster("routes").run(flows=[pktsim.inject("default/client:eth0",
                                                        ether(arp, 0x0806))])
    assert "10.244.0.99" not in str(result.tables("default/client").neighbours)


def test_an_interface_the_cluster_lacks_is_named_with_the_field():
    text = ("apiVersion: pktsim/v1alpha1\nkind: Traffic\nspec:\n  flows:\n"
            "  - {name: a, frame: '00', interface: 'node-9:eth0'}\n")
    scenario = pktsim.load(pktsim.api.demo_text(), text)
    try:
        scenario.run()
    except pktsim.ScenarioError as exc:
        assert exc.field == "spec.flows[0].interface" and exc.file == "<string>"
    else:
        raise AssertionError("no error")


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(NETWORKS), st.integers(0, 200), malformed_frames().filter(bool))
def test_malformed_frames_injected_anywhere_get_a_fate(network, index, data):
    names = interfaces(network)
    outcome, steps = fate(network, names[index % len(names)], data)
    assert steps and outcome.reason
