"""pktsim against the Linux kernel across nodes: two nodes, one pod on each, the same
traffic, the same frames on every interface of the path — in ``network: routes``,
``network: vxlan`` (flannel) and ``network: ipip`` (flannel's IPIP backend; needs CONFIG_NET_IPIP).

The kernel side is built by ``twin.KernelCluster`` out of network namespaces this test
creates and deletes: a switch namespace (the node network), two node namespaces (eth0,
cbr0, the host veths, the overlay device) and the pod namespaces, with every name and MAC
pktsim chose.  Both sides' per-interface frame sequences go through the same ``normalize``
(see twin/normalize.py; VXLAN outer UDP source ports and IP ids renamed, inner frames compared
field by field as ``inner.*``) and must be equal, direction included.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

import pktsim
from pktsim.api import Result

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import comparable as _comparable
from compare import diff as _diff
from compare import harness_keys, kernel_nodes, pktk_namespaces, request_and_body
from compare import kernel_comparable as _kernel_comparable
from compare import pktsim_frames as _frames
from twin import KernelCluster, KernelFeatureMissing, kernel_available

pytestmark = pytest.mark.kernel

SCENARIO = """
apiVersion: pktsim/v1alpha1
kind: Cluster
spec: {{nodes: 2, network: {network}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: a}}
spec: {{nodeName: node-1, containers: [{{name: app, ports: [{{containerPort: 8080}}]}}]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: b}}
spec: {{nodeName: node-2, containers: [{{name: app, ports: [{{containerPort: 8080}}]}}]}}
---
apiVersion: pktsim/v1alpha1
kind: Traffic
spec:
  flows:
  - {{name: ping, from: default/a, to: default/b, protocol: icmp, count: 2}}
  - {{name: http, from: default/a, to: 'http://10.244.1.2:8080/'}}
"""

MODES = ["routes", "vxlan", "ipip"]
FLOWS = ["ping", "http"]
TUNNEL = {"vxlan": "flannel.1", "ipip": "flannel.ipip"}
B_IP = "10.244.1.2"


def run_pktsim(network: str, flow: str) -> Result:
    cluster = pktsim.load(SCENARIO.format(network=network))
    return cluster.run(flows=[f for f in cluster.flows if f.name == flow])


def pktsim_frames(result: Result, network: str) -> dict[str, list[tuple[bytes, str]]]:
    return _frames(result, key_map(result, network))


def comparable(key: str, frames: list[tuple[bytes, str]],
               names: dict[str, str]) -> list[dict[str, Any]]:
    return _comparable(frames, names, raw_ip=key.endswith(":flannel.ipip"))


def kernel_comparable(cap: Any, key: str, names: dict[str, str]) -> list[dict[str, Any]]:
    return _kernel_comparable(cap, key, names, raw_ip=key.endswith(":flannel.ipip"))


def key_map(result: Result, network: str) -> dict[str, str]:
    """pktsim ``iface.if_name`` -> harness key."""
    return harness_keys(result, ("cbr0", "eth0", TUNNEL.get(network)))


class _Kernel:
    """One KernelCluster per mode, with its captures cached per flow."""

    def __init__(self, mode: str, kc: KernelCluster) -> None:
        self.mode = mode
        self.kc = kc
        self.captures: dict[str, Any] = {}

    def capture(self, flow: str, result: Result) -> Any:
        if flow not in self.captures:
            kc = self.kc
            if flow == "ping":
                cap = kc.scenario(lambda: kc.ping("a", B_IP, count=2))
            else:
                request, body = request_and_body(result, "default/a:eth0")
                cap = kc.scenario(lambda: kc.tcp_exchange("a", "b", B_IP, 8080, body=body,
                                                          request=request))
            self.captures[flow] = cap
        return self.captures[flow]


@pytest.fixture(scope="module", params=MODES)
def kernel(request: pytest.FixtureRequest) -> Any:
    reason = kernel_available()
    if reason:
        pytest.skip(reason)
    mode = request.param
    kc = KernelCluster(kernel_nodes(run_pktsim(mode, "ping")), mode=mode)
    try:
        with kc:
            yield _Kernel(mode, kc)
    except KernelFeatureMissing as e:
        pytest.skip(str(e))
    finally:
        assert pktk_namespaces(kc.tag) == [], "pktk namespaces left behind"


@pytest.mark.parametrize("flow", FLOWS)
def test_frames_match_the_kernel(kernel: _Kernel, flow: str) -> None:
    result = run_pktsim(kernel.mode, flow)
    assert result.flows[0].status == "ok"
    names = kernel.kc.mac_names()
    ours = pktsim_frames(result, kernel.mode)
    assert set(ours) <= set(kernel.kc.interfaces())
    cap = kernel.capture(flow, result)
    problems = []
    for key in sorted(ours):
        theirs = kernel_comparable(cap, key, names)
        mine = comparable(key, ours[key], names)
        if mine != theirs:
            problems.append(_diff(key, mine, theirs))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("flow", FLOWS)
def test_node_arp_on_the_node_network(kernel: _Kernel, flow: str) -> None:
    """node-1 resolves node-2's eth0 (the next hop, or the VXLAN/IPIP remote) with one
    broadcast request and a unicast reply; node-2 learns node-1 from the request and
    sends no request of its own.  Both on pktsim's side and the kernel's."""
    result = run_pktsim(kernel.mode, flow)
    names = kernel.kc.mac_names()
    cap = kernel.capture(flow, result)
    ours = pktsim_frames(result, kernel.mode)
    for side, rows in (("kernel", kernel_comparable(cap, "node-1:eth0", names)),
                       ("pktsim", comparable("node-1:eth0", ours["node-1:eth0"], names))):
        arps = [r for r in rows if r["ethertype"] == "0x0806"]
        assert [(r["dir"], r["arp_op"]) for r in arps] == [("out", "request"),
                                                          ("in", "reply")], side
        req, rep = arps
        assert (req["eth_src"], req["eth_dst"], req["arp_sha"], req["arp_spa"],
                req["arp_tha"], req["arp_tpa"], req["len"]) == (
            "node-1.eth0", "broadcast", "node-1.eth0", "172.18.0.2", "zero", "172.18.0.3",
            42), side
        assert (rep["eth_src"], rep["eth_dst"], rep["arp_sha"], rep["arp_spa"],
                rep["arp_tha"], rep["arp_tpa"], rep["len"]) == (
            "node-2.eth0", "node-1.eth0", "node-2.eth0", "172.18.0.3", "node-1.eth0",
            "172.18.0.2", 42), side
        assert rows.index(req) == 0, side  # nothing leaves eth0 before the next hop is known


@pytest.mark.parametrize("kernel", ["vxlan"], indirect=True)
def test_no_arp_crosses_the_vxlan_device(kernel: _Kernel) -> None:
    """flannel's permanent neighbour + FDB entries: flannel.1 never carries ARP, and the
    inner frames are VTEP MAC to VTEP MAC."""
    for flow in FLOWS:
        result = run_pktsim("vxlan", flow)
        cap = kernel.capture(flow, result)
        names = kernel.kc.mac_names()
        ours = pktsim_frames(result, "vxlan")
        for node in ("node-1", "node-2"):
            key = f"{node}:flannel.1"
            for side, rows in (("kernel", kernel_comparable(cap, key, names)),
                               ("pktsim", comparable(key, ours[key], names))):
                assert rows, (side, key)
                assert all(r["ethertype"] == "0x0800" for r in rows), (side, key)
                assert {(r["eth_src"], r["eth_dst"]) for r in rows} <= {
                    ("node-1.flannel.1", "node-2.flannel.1"),
                    ("node-2.flannel.1", "node-1.flannel.1")}, (side, key)


