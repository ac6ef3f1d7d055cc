"""pktsim against the Linux kernel: the same node, the same traffic, the same frames.

The kernel side is built by ``twin.KernelNode`` out of network namespaces this test
creates and deletes (a bridge ``cbr0``, veth pairs, pods with the MACs and veth names pktsim
chose).  Both sides' per-interface frame sequences go through the same ``normalize`` (MACs
named, IP ids and TCP sequence numbers relative, ephemeral ports and checksums abstracted,
iputils' timestamp zeroed) and must be equal — including ARP, TTL, DF, TCP options and
windows, payloads, and the direction of every frame.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

import pktsim
from pktsim.api import Result
from pktsim.core.capture import Direction
from pktsim.wire.parse import mac_str

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import captured, comparable, kernel_comparable
from compare import diff as _diff
from twin import KernelNode, PodSpec, kernel_available

pytestmark = pytest.mark.kernel

SCENARIO = """
apiVersion: pktsim/v1alpha1
kind: Cluster
spec: {nodes: 1}
---
apiVersion: v1
kind: Pod
metadata: {name: a}
spec: {containers: [{name: app, ports: [{containerPort: 8080}]}, {name: sidecar}]}
---
apiVersion: v1
kind: Pod
metadata: {name: b}
spec: {containers: [{name: app, ports: [{containerPort: 8080}]}]}
---
apiVersion: pktsim/v1alpha1
kind: Traffic
spec:
  flows:
  - {name: ping, from: default/a, to: default/b, protocol: icmp, count: 2}
  - {name: http, from: default/a, to: 'http://10.244.0.3:8080/'}
  - {name: lo-http, from: default/a/sidecar, to: 'http://127.0.0.1:8080/'}
  - {name: lo-ping, from: default/a, to: 127.0.0.1, protocol: icmp, count: 2}
"""


def run_pktsim(flow: str) -> Result:
    cluster = pktsim.load(SCENARIO)
    chosen = [f for f in cluster.flows if f.name == flow]
    return cluster.run(flows=chosen)


def pktsim_frames(result: Result, *, window: bool = True) -> dict[str, list[tuple[bytes, str]]]:
    """pktsim's frames per interface, keyed as the harness keys them (``window``: only
    those the kernel's capture covers, ``compare.captured``)."""
    model = result.topology.model
    keys = {"node-1:cbr0": "node:cbr0"}
    for name in "ab":
        info = model.pods[f"default/{name}"]
        keys[f"default/{name}:eth0"] = f"{name}:eth0"
        keys[f"default/{name}:lo"] = f"{name}:lo"
        keys[f"node-1:{info.veth}"] = f"node:{info.veth}"
    out: dict[str, list[tuple[bytes, str]]] = {k: [] for k in keys.values()}
    assert result.memory is not None
    for f in captured(result) if window else result.memory.frames:
        key = keys.get(f.iface.if_name)
        if key is not None:
            out[key].append((f.data, "out" if f.direction == Direction.OUTBOUND else "in"))
    return out


def kernel_pods(result: Result) -> list[PodSpec]:
    model = result.topology.model
    return [PodSpec(name, str(model.pods[f"default/{name}"].ip),
                    mac_str(model.pods[f"default/{name}"].mac),
                    model.pods[f"default/{name}"].veth,
                    mac_str(model.pods[f"default/{name}"].veth_mac)) for name in "ab"]


@pytest.fixture(scope="module")
def reference() -> Result:
    return run_pktsim("ping")


@pytest.fixture(scope="module")
def kernel_node(reference: Result) -> Any:
    reason = kernel_available()
    if reason:
        pytest.skip(reason)
    model = reference.topology.model
    node = model.nodes["node-1"]
    with KernelNode(kernel_pods(reference), bridge="cbr0", gateway_ip=str(node.gateway.ip),
                    bridge_mac=mac_str(node.bridge_mac), mtu=1500, hairpin=True) as kn:
        yield kn


def traffic(kn: Any, flow: str, result: Result) -> Any:
    if flow == "ping":
        return lambda: kn.ping("a", "10.244.0.3", count=2)
    if flow == "lo-ping":
        return lambda: kn.ping("a", "127.0.0.1", count=2)
    sent = result.flows[0]
    request = _request_of(result)
    body = sent.first_answer.partition(b"\r\n\r\n")[2].decode()
    if flow == "http":
        return lambda: kn.tcp_exchange("a", "b", "10.244.0.3", 8080, body=body, request=request)
    return lambda: kn.tcp_exchange("a", "a", "127.0.0.1", 8080, body=body, request=request)


def _request_of(result: Result) -> str:
    from scapy.layers.inet import TCP
    from scapy.layers.l2 import Ether

    assert result.memory is not None
    for f in result.memory.frames:
        pkt = Ether(f.data)
        if TCP in pkt and bytes(pkt[TCP].payload).startswith(b"GET "):
            return bytes(pkt[TCP].payload).decode()
    raise AssertionError("no request in the pktsim capture")


@pytest.mark.parametrize("flow", ["ping", "http", "lo-http", "lo-ping"])
def test_frames_match_the_kernel(kernel_node: Any, flow: str) -> None:
    result = run_pktsim(flow)
    assert result.flows[0].status == "ok"
    names = kernel_node.mac_names()
    ours = pktsim_frames(result)
    cap = kernel_node.scenario(traffic(kernel_node, flow, result))
    for key in sorted(ours):
        theirs = kernel_comparable(cap, key, names) if key in cap.frames else []
        mine = comparable(ours[key], names)
        assert mine == theirs, _diff(key, mine, theirs)




def test_an_unconfirmed_neighbour_is_probed_by_unicast_5_s_later(kernel_node: Any) -> None:
    """b learned a from a's ARP request (STALE), its echo reply used the entry (DELAY);
    nothing confirms it (ICMP is not TCP), so 5 s later (delay_first_probe_time) b asks
    a by unicast ARP (PROBE, arp_solicit) and a answers: the kernel's capture kept open
    6.5 s shows what pktsim's whole run does."""
    import time

    result = run_pktsim("ping")
    names = kernel_node.mac_names()
    ours = pktsim_frames(result, window=False)
    probes = [f for f in ours["b:eth0"] if f[0][12:14] == b"\x08\x06" and f[0][0] != 0xFF]
    assert probes, "pktsim's b probes a"

    def ping_and_wait() -> None:
        kernel_node.ping("a", "10.244.0.3", count=2)
        time.sleep(6.5)

    cap = kernel_node.scenario(ping_and_wait)
    for key in sorted(ours):
        theirs = kernel_comparable(cap, key, names) if key in cap.frames else []
        mine = comparable(ours[key], names)
        assert mine == theirs, _diff(key, mine, theirs)
