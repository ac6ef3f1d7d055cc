"""Loops are bounded: a bridging loop ends with a diagnosis in the trace, not a hang.

The driver counts every transmission of a packet (by its id, which every flooded copy
shares); past ``hop_limit`` (512, or the number of link ends when that is larger: a flood
that loops nowhere crosses each link at most once each way) the packet is dropped with
``DropReason.STORM``.
"""

from __future__ import annotations

import re
import time

import pytest
from scapy.layers.l2 import ARP, Ether

import pktsim
from pktsim.build.flows import start_flows
from pktsim.core.capture import Interface
from pktsim.core.frame import DropReason, Frame
from pktsim.devices.bridge import Bridge
from pktsim.driver.driver import Driver
from pktsim.render.lines import trace_line as format_event
from pktsim.sinks.trace import MemorySink

BROADCAST = bytes(Ether(src="02:00:00:00:00:0a", dst="ff:ff:ff:ff:ff:ff")
                  / ARP(op=1, hwsrc="02:00:00:00:00:0a", psrc="10.0.0.10", pdst="10.0.0.99"))


STORM = re.compile(r"drop: storm limit reached: frame loops in the topology \((\d+) hops\)")


def storm_drops(memory: MemorySink) -> list[str]:
    return [format_event(e) for e in memory.events
            if e.drop_reason is DropReason.STORM]


@pytest.mark.parametrize("links", [2, 3])
def test_two_bridges_wired_together_twice_end_with_a_storm_diagnosis(links: int) -> None:
    memory = MemorySink()
    driver = Driver([memory])
    a = Bridge("sw-a", "br-a", b"\x02\x00\x00\x00\x00\x01", local=False)
    b = Bridge("sw-b", "br-b", b"\x02\x00\x00\x00\x00\x02", local=False)
    a.add_port("host")
    for i in range(links):  # the loop: every link between a and b is a second path
        a.add_port(f"link{i}")
        b.add_port(f"link{i}")
        driver.connect(a, f"link{i}", driver.add_interface(Interface("sw-a", f"link{i}")),
                       b, f"link{i}", driver.add_interface(Interface("sw-b", f"link{i}")))
    driver.call(0, a, lambda now: a.receive(now, "host", Frame(BROADCAST, driver.new_pid(),
                                                                 "loop")))
    started = time.monotonic()
    driver.run()
    assert time.monotonic() - started < 10 and driver.idle
    drops = storm_drops(memory)
    assert drops and all(STORM.search(d) and int(STORM.search(d)[1]) > 512  # type: ignore
                         for d in drops), drops[:3]
    assert driver.stats.storm_drops == len(drops)
    assert driver.stats.hops <= driver.hop_limit + len(drops)  # bounded by the hop limit
    # the capture shows the loop: the same ARP request over and over on the links
    assert sum(f.data == BROADCAST for f in memory.frames) > 100


SCENARIO = """
apiVersion: pktsim/v1alpha1
kind: Cluster
spec: {nodes: 2, dns: none}
---
apiVersion: v1
kind: Pod
metadata: {name: a}
spec: {nodeName: node-1, containers: [{name: c}]}
---
apiVersion: v1
kind: Pod
metadata: {name: b}
spec: {nodeName: node-2, containers: [{name: c}]}
---
apiVersion: pktsim/v1alpha1
kind: Traffic
spec:
  flows:
  - {name: to-nobody, from: default/a, to: 10.244.0.99, protocol: icmp}
"""


def test_a_cluster_whose_node_bridges_are_wired_twice_terminates_with_a_diagnosis() -> None:
    cluster = pktsim.load(SCENARIO)
    memory = MemorySink()
    topo = cluster.build([memory])
    one, two = topo.bridges["node-1"], topo.bridges["node-2"]
    for i in range(2):  # cbr0 of node-1 and cbr0 of node-2, joined by two cables
        one.add_port(f"loop{i}")
        two.add_port(f"loop{i}")
        topo.driver.connect(
            one, f"loop{i}", topo.driver.add_interface(Interface("node-1", f"loop{i}")),
            two, f"loop{i}", topo.driver.add_interface(Interface("node-2", f"loop{i}")))
    results = start_flows(topo, cluster.flows)
    started = time.monotonic()
    topo.driver.run()
    assert time.monotonic() - started < 30 and topo.driver.idle
    drops = storm_drops(memory)
    # pod a's ARP request for 10.244.0.99 (three tries) loops between the two bridges
    assert len(drops) >= 3, drops
    assert all("storm limit reached: frame loops in the topology" in d for d in drops)
    assert any(":loop" in d for d in drops) or any("node-" in d for d in drops)
    assert results[0].status != "ok"
    text = "".join(format_event(e) + "\n" for e in memory.events)
    assert "ARP, Request who-has 10.244.0.99" in text


@pytest.mark.slow
def test_hop_counts_stay_bounded_in_a_long_run_and_a_loop_is_still_caught(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The driver forgets the packets idle longest (memory stays flat over a long run);
    a looping packet is never idle, so the storm limit still catches it."""
    import pktsim.driver.driver as drv

    monkeypatch.setattr(drv, "HOP_COUNTS", 64)
    memory = MemorySink()
    driver = Driver([memory])
    a = Bridge("sw-a", "br-a", b"\x02\x00\x00\x00\x00\x01", local=False)
    b = Bridge("sw-b", "br-b", b"\x02\x00\x00\x00\x00\x02", local=False)
    a.add_port("host")
    for i in range(2):
        a.add_port(f"link{i}")
        b.add_port(f"link{i}")
        driver.connect(a, f"link{i}", None, b, f"link{i}", None)
    for k in range(300):  # many other packets, one after another, while the loop runs
        driver.call(k * 10_000, a, lambda now: a.receive(
            now, "host", Frame(BROADCAST, driver.new_pid(), "other")))
    driver.run()
    assert len(driver._hops) <= 64
    assert storm_drops(memory)  # each looping packet still reached the limit
