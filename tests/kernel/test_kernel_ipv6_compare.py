"""pktsim's IPv6 against the Linux kernel's: a dual-stack cluster (``ipFamilies: [IPv4,
IPv6]``, ``network: routes`` and ``vxlan``), the same traffic over IPv6, the same frames on every
interface -- Neighbor Discovery (solicitations, adverts with their flags and options, the
probes of unconfirmed entries), ICMPv6 echo and errors, TCP over IPv6, hop limits.

The kernel side is the dual-stack twin (``twin.KernelNode(gateway_ip6=...)``,
``twin.KernelCluster`` with IPv6 node addresses), set up as the bridge CNI plugin sets a
pod up (docs/kernel-observations.md, "IPv6") with pktsim's names, MACs and addresses.  The
kernel's Router Solicitations are left out: a pod sends them for ever at random times and
pktsim sends none (the run starts after the setup).  Flow labels are compared as
``normalize`` names them (one per flow and direction, zero or not), since the kernel's are
a hash keyed by a secret of the boot.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

import pktsim
from pktsim.api import Result
from pktsim.build.dualstack import VXLAN6_DEV, vtep_mac6
from pktsim.wire.parse import mac_str

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import (
    comparable,
    harness_keys,
    kernel_comparable,
    pktk_namespaces,
    pktsim_frames,
    request_and_body,
)
from compare import diff as _diff
from twin import KernelCluster, KernelNode, NodeSpec, PodSpec, kernel_available

pytestmark = pytest.mark.kernel

SCENARIO = """
apiVersion: pktsim/v1alpha1
kind: Cluster
spec: {{nodes: {nodes}, network: {network}, ipFamilies: [IPv4, IPv6], dns: none}}
---
apiVersion: v1
kind: Pod
metadata: {{name: a}}
spec: {{nodeName: node-1, containers: [{{name: app, ports: [{{containerPort: 8080}}]}}]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: b}}
spec: {{nodeName: node-{b_node}, containers: [{{name: app, ports: [{{containerPort: 8080}}]}}]}}
---
apiVersion: pktsim/v1alpha1
kind: Traffic
spec:
  flows:
  - {{name: ping, from: default/a, to: default/b, family: IPv6, protocol: icmp, count: 2,
      interval: 200ms}}
  - {{name: http, from: default/a, to: 'http://[{b6}]:8080/'}}
  - {{name: refused, from: default/a, to: '[{b6}]:9999'}}
  - {{name: unreachable, from: default/a, to: '{nobody}', protocol: icmp, count: 1}}
"""
SAME, CROSS, VXLAN = "same-node", "cross-node", "cross-node-vxlan"
B6 = {SAME: "fd00:10:244::3", CROSS: "fd00:10:244:1::2", VXLAN: "fd00:10:244:1::2"}
NOBODY = {SAME: "fd00:10:244::9", CROSS: "fd00:10:244:1::9", VXLAN: "fd00:10:244:1::9"}
FLOWS = ["ping", "http", "refused", "unreachable"]
# the kernel twin stops capturing a second or two after the traffic's last packet: the
# reachability probes of the entries the traffic left unconfirmed (5 s after their use)
# fall after it, so pktsim's frames are compared up to 1.5 s after its last IP packet
TAIL_NS = 1_500_000_000


def run_pktsim(layout: str, flow: str) -> Result:
    text = SCENARIO.format(nodes=1 if layout == SAME else 2, b_node=1 if layout == SAME else 2,
                           b6=B6[layout], nobody=NOBODY[layout],
                           network="vxlan" if layout == VXLAN else "routes")
    cluster = pktsim.load(text)
    return cluster.run(flows=[f for f in cluster.flows if f.name == flow])


def pod_spec(result: Result, name: str) -> PodSpec:
    info = result.topology.model.pods[f"default/{name}"]
    return PodSpec(name, str(info.ip), mac_str(info.mac), info.veth, mac_str(info.veth_mac),
                   str(info.ip6))


def node_specs(result: Result) -> list[NodeSpec]:
    model = result.topology.model
    out = []
    for name in ("node-1", "node-2"):
        n = model.nodes[name]
        pods = tuple(pod_spec(result, p.pod.name) for p in sorted(
            model.pods_on(name), key=lambda p: p.key) if p.pod.namespace == "default")
        v6 = result.topology.tunnels6.get(name)
        out.append(NodeSpec(name, str(n.ip), mac_str(n.eth0_mac), str(n.pod_cidr),
                            mac_str(n.bridge_mac), pods, mac_str(n.vtep_mac),
                            ip6=str(n.ip6), pod_cidr6=str(n.pod_cidr6),
                            vtep_mac6=mac_str(vtep_mac6(result.topology, n)) if v6 else None))
    return out


def keys(result: Result, layout: str) -> dict[str, str]:
    """pktsim if_name -> the twin's key (same-node: the node is ``node``)."""
    found = harness_keys(result, ("cbr0", "eth0", "flannel.1", VXLAN6_DEV)
                         if layout == VXLAN else ("cbr0", "eth0"))
    if layout == SAME:
        found = {k: v.replace("node-1:", "node:") for k, v in found.items()
                 if not v.startswith(("node-1:eth0", "node-2:"))}
    return found


class _Kernel:
    def __init__(self, layout: str, twin: Any) -> None:
        self.layout, self.twin = layout, twin
        self.captures: dict[str, Any] = {}

    def capture(self, flow: str, result: Result) -> Any:
        if flow not in self.captures:
            t, b6 = self.twin, B6[self.layout]
            if flow == "ping":
                cap = t.scenario(lambda: t.ping("a", b6, count=2))
            elif flow == "http":
                request, body = request_and_body(result, "default/a:eth0")
                cap = t.scenario(lambda: t.tcp_exchange("a", "b", b6, 8080, body=body,
                                                        request=request))
            elif flow == "refused":
                cap = t.scenario(lambda: t.tcp_refused("a", b6, 9999))
            else:
                cap = t.scenario(lambda: t.exec("a", ["ping", "-6", "-n", "-c", "1", "-W", "5",
                                                      NOBODY[self.layout]], check=False))
            self.captures[flow] = cap.without_router_solicitations()
        return self.captures[flow]


@pytest.fixture(scope="module", params=[SAME, CROSS, VXLAN])
def kernel(request: pytest.FixtureRequest) -> Any:
    reason = kernel_available()
    if reason:
        pytest.skip(reason)
    layout = request.param
    reference = run_pktsim(layout, "ping")
    if layout == SAME:
        node = reference.topology.model.nodes["node-1"]
        twin: Any = KernelNode([pod_spec(reference, "a"), pod_spec(reference, "b")],
                               gateway_ip=str(node.gateway.ip),
                               bridge_mac=mac_str(node.bridge_mac),
                               gateway_ip6=str(node.gateway6.ip) if node.gateway6 else None,
                               capture_lo=False)
    else:
        twin = KernelCluster(node_specs(reference), mode="vxlan" if layout == VXLAN else "routes")
    try:
        with twin:
            yield _Kernel(layout, twin)
    finally:
        assert pktk_namespaces(twin.tag) == [], "pktk namespaces left behind"


@pytest.mark.parametrize("flow", FLOWS)
def test_ipv6_frames_match_the_kernel(kernel: _Kernel, flow: str) -> None:
    result = run_pktsim(kernel.layout, flow)
    names = kernel.twin.mac_names()
    ours = pktsim_frames(result, keys(result, kernel.layout), TAIL_NS)
    cap = kernel.capture(flow, result)
    problems = []
    for key in sorted(ours):
        theirs = kernel_comparable(cap, key, names) if key in cap.frames else []
        mine = comparable(ours[key], names)
        if mine != theirs:
            problems.append(_diff(key, mine, theirs))
    assert not problems, "\n".join(problems)


def _inet6(text: str) -> dict[str, list[str]]:
    """``ip addr``'s inet6 lines per interface (pktsim prints no ``@ifN`` peers)."""
    out: dict[str, list[str]] = {}
    dev = ""
    for line in text.splitlines():
        if line[:1].isdigit():
            dev = line.split(": ")[1].split("@")[0]
        elif line.strip().startswith("inet6 "):
            out.setdefault(dev, []).append(line.rstrip())
    return out


@pytest.mark.parametrize("kernel", [CROSS], indirect=True)
def test_ipv6_dumps_match_the_kernel(kernel: _Kernel) -> None:
    """``ip -6 route`` byte for byte and every interface's ``inet6`` lines, on a pod and a
    node (the kernel node given pktsim's default route via the docker network's ``::1``)."""
    from pktsim.render.dumps import bridge_ports, ip6_route, ip_addr

    result = run_pktsim(CROSS, "ping")
    topo = result.topology
    twin = kernel.twin
    ns1 = twin.node_nss["node-1"]
    routes = twin.ip(ns1, "-6", "route", "show")
    if "default" not in routes:
        twin.ip(ns1, "-6", "route", "add", "default", "via", "fc00:f853:ccd:e793::1",
                "dev", "eth0")
    for who, ns, ports in (("a", topo.pod_ns["default/a"], None),
                           ("node-1", topo.node_ns["node-1"], bridge_ports(topo, "node-1"))):
        where = twin.ns_of(who) if who == "a" else ns1
        assert ip6_route(ns, ports) == twin.ip(where, "-6", "route", "show"), who
        theirs = _inet6(twin.ip(where, "addr", "show"))
        mine = _inet6(ip_addr(ns, ports))
        assert {dev: lines for dev, lines in mine.items() if dev in theirs} == theirs, who
