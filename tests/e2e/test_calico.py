"""``network: calico``: Calico's routed dataplane — cali veths answered by proxy ARP, /32
routes, IPAM blocks with their blackholes, and the IPIP, VXLAN and unencapsulated paths."""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.layers.vxlan import VXLAN

import pktsim
from pktsim import FlowStatus
from pktsim.core.events import DropReason, Event
from pktsim.devices.arp import proxy_route
from pktsim.model.calico_ipam import fnv1_32, veth_name, vtep_mac
from pktsim.render.dumps import ip_addr, ip_route
from tests.helpers.sim import frames_on, run_yaml

SCENARIO = """
apiVersion: pktsim/v1alpha1
kind: Cluster
spec: {{network: calico, calico: {pool}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: a}}
spec: {{nodeName: node-1, containers: [{{name: c, ports: [{{containerPort: 8080}}]}}]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: c}}
spec: {{nodeName: node-1, containers: [{{name: c, ports: [{{containerPort: 8080}}]}}]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: b}}
spec: {{nodeName: node-2, containers: [{{name: c, ports: [{{containerPort: 8080}}]}}]}}
---
apiVersion: pktsim/v1alpha1
kind: Traffic
spec:
  flows:
{flows}
"""
IPIP = "{ipipMode: Always}"
VXLAN_POOL = "{ipipMode: Never, vxlanMode: Always}"
NO_ENCAP = "{ipipMode: Never, vxlanMode: Never}"
# node-1's block is 10.244.41.192/26 (tunl0 .192, a .193, c .194); node-2's 10.244.41.0/26
A, C = "10.244.41.193", "10.244.41.194"
FLOWS = ("  - {name: same, from: default/a, to: default/c, protocol: icmp}\n"
         "  - {name: across, from: default/a, to: 'default/b:8080', start: 1s}")


def run(tmp_path: Path, pool: str = IPIP, flows: str = FLOWS):  # type: ignore[no-untyped-def]
    return run_yaml(SCENARIO.format(pool=pool, flows=flows), tmp_path / "out")


def test_calico_names_and_ipam_follow_calico() -> None:
    assert fnv1_32(b"") == 0x811C9DC5 and fnv1_32(b"a") == 0x050C5D7E  # FNV-1 vectors
    assert veth_name("default", "a") == "cali" + __import__("hashlib").sha1(
        b"default.a").hexdigest()[:11]
    assert len(veth_name("kube-system", "coredns-x")) == 15  # IFNAMSIZ - 1
    assert vtep_mac("node-1")[0] == ord("f")  # 0x66: locally administered unicast
    model = pktsim.load(SCENARIO.format(pool=IPIP, flows="    []")).model
    n1, n2 = model.nodes["node-1"], model.nodes["node-2"]
    assert [str(b) for b in n1.blocks] == ["10.244.41.192/26"]
    assert [str(b) for b in n2.blocks] == ["10.244.41.0/26"]
    assert (str(n1.tunnel_ip), str(n2.tunnel_ip)) == ("10.244.41.192", "10.244.41.0")
    assert str(model.pods["default/a"].ip) == A and str(model.pods["default/c"].ip) == C
    assert model.pods["default/b"].ip in n2.blocks[0]
    assert model.pods["default/a"].veth_mac == b"\xee" * 6
    none = pktsim.load(SCENARIO.format(pool=NO_ENCAP, flows="    []")).model
    assert none.nodes["node-1"].tunnel_ip is None
    assert str(none.pods["default/a"].ip) == "10.244.41.192"  # no tunnel: pods from .0


def test_node_and_pod_tables_as_ip_prints_them() -> None:
    topo = pktsim.load(SCENARIO.format(pool=IPIP, flows="    []")).build()
    va = veth_name("default", "a")
    local = sorted((p.ip, p.veth) for p in topo.model.pods_on("node-1"))  # a, c, a CoreDNS
    assert ip_route(topo.node_ns["node-1"]) == (
        "default via 172.18.0.1 dev eth0\n"
        "10.244.41.0/26 via 172.18.0.3 dev tunl0 proto bird onlink\n"
        "blackhole 10.244.41.192/26 proto bird\n"
        + "".join(f"{ip} dev {veth} scope link\n" for ip, veth in local)
        + "172.18.0.0/16 dev eth0 proto kernel scope link src 172.18.0.2\n")
    assert [str(ip) for ip, _ in local][:2] == [A, C]
    addr = ip_addr(topo.node_ns["node-1"])
    assert ("3: tunl0: <NOARP,UP,LOWER_UP> mtu 1480 qdisc noqueue state UNKNOWN group default "
            "qlen 1000\n    link/ipip 0.0.0.0 brd 0.0.0.0\n    inet 10.244.41.192/32 scope "
            "global tunl0\n") in addr
    assert (f": {va}: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1480 qdisc noqueue state UP group "
            "default qlen 1000\n    link/ether ee:ee:ee:ee:ee:ee brd ff:ff:ff:ff:ff:ff\n") in addr
    assert "cbr0" not in addr and not topo.bridges
    pod = topo.pod_ns["default/a"]
    assert ip_route(pod) == "default via 169.254.1.1 dev eth0\n169.254.1.1 dev eth0 scope link\n"
    assert f"inet {A}/32 scope global eth0" in ip_addr(pod)
    assert pod.ifaces["eth0"].mtu == 1480 and topo.node_ns["node-1"].ifaces[va].proxy_arp


def test_pod_arps_for_169_254_1_1_and_the_node_answers_by_proxy(tmp_path: Path) -> None:
    result = run(tmp_path)
    arps = [Ether(f.data) for f in frames_on(result, "default/a:eth0", "same")
            if ARP in Ether(f.data)]
    ask = next(p for p in arps if p[ARP].op == 1 and p[ARP].psrc == A)
    assert ask[ARP].pdst == "169.254.1.1" and ask[Ether].dst == "ff:ff:ff:ff:ff:ff"
    answer = next(p for p in arps if p[ARP].op == 2 and p[ARP].psrc == "169.254.1.1")
    assert answer[ARP].hwsrc == "ee:ee:ee:ee:ee:ee" and answer[ARP].pdst == A
    assert any("proxy ARP" in e.summary for e in result.events if e.event is Event.ARP)


def test_proxy_arp_only_for_a_route_out_of_another_device() -> None:
    topo = pktsim.load(SCENARIO.format(pool=IPIP, flows="    []")).build()
    ns = topo.node_ns["node-1"]
    va = veth_name("default", "a")
    cfg = ns.ifaces[va]
    assert proxy_route(ns, va, cfg, bytes([169, 254, 1, 1])) is not None  # via eth0
    assert proxy_route(ns, va, cfg, bytes([10, 244, 41, 193])) is None  # a's own veth
    assert proxy_route(ns, va, cfg, bytes([10, 244, 41, 250])) is None  # the blackhole
    assert proxy_route(ns, va, cfg, bytes([172, 18, 0, 2])) is None  # local: not proxied
    cfg.proxy_arp = False
    assert proxy_route(ns, va, cfg, bytes([169, 254, 1, 1])) is None


def test_same_node_pods_are_routed_not_bridged(tmp_path: Path) -> None:
    result = run(tmp_path)
    assert result.flows[0].status == FlowStatus.OK
    at_c = [Ether(f.data) for f in frames_on(result, "default/c:eth0", "same")
            if ICMP in Ether(f.data) and Ether(f.data)[ICMP].type == 8]
    assert at_c and all(p[IP].ttl == 63 and p[IP].src == A for p in at_c)
    assert all(p[Ether].src == "ee:ee:ee:ee:ee:ee" for p in at_c)


@pytest.mark.parametrize("pool", [IPIP, VXLAN_POOL, NO_ENCAP])
def test_cross_node_frames_per_mode(tmp_path: Path, pool: str) -> None:
    result = run(tmp_path, pool)
    assert [f.status for f in result.flows] == ["ok", "ok"]
    pods = result.topology.model.pods
    a, b = str(pods["default/a"].ip), str(pods["default/b"].ip)
    wire = [Ether(f.data) for f in frames_on(result, "node-1:eth0", "across")
            if f.direction.name == "OUTBOUND" and IP in Ether(f.data)]
    assert wire
    for p in wire:
        assert (p[Ether].dst, p[IP].dst) == ("02:42:ac:12:00:03", "172.18.0.3") \
            if pool != NO_ENCAP else (p[Ether].dst, p[IP].dst) == ("02:42:ac:12:00:03", b)
        if pool == IPIP:
            assert (p[IP].src, p[IP].proto) == ("172.18.0.2", 4)
            assert (p[IP].payload.src, p[IP].payload.ttl) == (a, 63)
        elif pool == VXLAN_POOL:
            assert p[UDP].dport == 4789 and p[VXLAN].vni == 4096
            inner = p[VXLAN].payload
            assert inner[Ether].dst == ":".join(f"{b:02x}" for b in vtep_mac("node-2"))
            assert inner[Ether].src == ":".join(f"{b:02x}" for b in vtep_mac("node-1"))
            assert (inner[IP].src, inner[IP].dst, inner[IP].ttl) == (a, b, 63)
        else:
            assert (p[IP].src, p[IP].ttl) == (a, 63)  # BGP-learned route: no encapsulation
    at_b = [Ether(f.data) for f in frames_on(result, "default/b:eth0", "across")
            if IP in Ether(f.data) and Ether(f.data)[IP].dst == b]
    assert at_b and all(p[IP].ttl == 62 and p[IP].src == a for p in at_b)


def test_vxlan_node_has_felix_routes_neighbours_and_fdb() -> None:
    topo = pktsim.load(SCENARIO.format(pool=VXLAN_POOL, flows="    []")).build()
    ns = topo.node_ns["node-1"]
    assert "10.244.41.0/26 via 10.244.41.0 dev vxlan.calico proto 80 onlink\n" in ip_route(ns)
    assert "blackhole 10.244.41.192/26 proto 80\n" in ip_route(ns)
    entry = ns.neigh.get("vxlan.calico", bytes([10, 244, 41, 0]))
    assert entry is not None and entry.state == "PERMANENT" and entry.mac == vtep_mac("node-2")
    assert topo.tunnels["node-1"].fdb_entries() == [(vtep_mac("node-2"), bytes([172, 18, 0, 3]))]
    assert ns.ifaces["vxlan.calico"].mtu == 1450 and ns.ifaces["vxlan.calico"].mac == \
        vtep_mac("node-1")


def test_unallocated_address_of_the_local_block_is_blackholed(tmp_path: Path) -> None:
    flows = "  - {name: hole, from: default/a, to: 10.244.41.250, protocol: icmp}"
    result = run(tmp_path, flows=flows)
    assert result.flows[0].status == FlowStatus.NO_REPLY
    drops = [e for e in result.events if e.event is Event.DROP and e.flow == "hole"]
    assert [(d.host, d.detail.reason) for d in drops] == [("node-1", DropReason.BLACKHOLE)]
    assert not [e for e in result.events if e.event is Event.ICMP and e.flow == "hole"]
    assert not frames_on(result, "node-1:tunl0", "hole")


def test_a_node_sending_into_its_blackhole_gets_einval(tmp_path: Path) -> None:
    flows = "  - {name: hole, from: 'node:node-1', to: 10.244.41.250, protocol: icmp}"
    result = run(tmp_path, flows=flows)
    assert result.flows[0].status == FlowStatus.INVALID
    assert not frames_on(result, "node-1:eth0", "hole")


def test_pod_to_outside_leaves_as_the_node(tmp_path: Path) -> None:
    flows = "  - {name: out, from: default/b, to: 'http://203.0.113.10/'}"
    result = run(tmp_path, flows=flows)
    assert result.flows[0].status == FlowStatus.OK
    out = [Ether(f.data) for f in frames_on(result, "external/client:eth0", "out")
           if IP in Ether(f.data)]
    assert out and all("172.18.0.3" in (p[IP].src, p[IP].dst) for p in out)


def test_cross_subnet_encapsulates_only_towards_another_subnet() -> None:
    text = """
apiVersion: pktsim/v1alpha1
kind: Cluster
spec: {network: calico, nodeCIDR: 172.18.0.0/16, calico: {ipipMode: CrossSubnet}}
---
apiVersion: v1
kind: Node
metadata: {name: n1}
status: {addresses: [{type: InternalIP, address: 172.18.0.2}]}
---
apiVersion: v1
kind: Node
metadata: {name: n2}
status: {addresses: [{type: InternalIP, address: 172.18.0.3}]}
---
apiVersion: v1
kind: Node
metadata: {name: n3}
status: {addresses: [{type: InternalIP, address: 172.19.0.3}]}
"""
    topo = pktsim.load(text).build()
    routes = {r.via and str(r.via): r for r in topo.node_ns["n1"].routes.routes
              if r.proto == "bird"}
    assert routes["172.18.0.3"].dev == "eth0" and not routes["172.18.0.3"].onlink
    assert routes["172.19.0.3"].dev == "tunl0" and routes["172.19.0.3"].onlink


def test_a_pod_reaches_itself_through_its_service(tmp_path: Path) -> None:
    """The hairpin leaves and re-enters the same cali device, masqueraded to the node's
    eth0 address (the cali device has none; checked against the kernel)."""
    text = SCENARIO.format(pool=IPIP, flows="  - {name: self, from: default/a, "
                           "to: 'http://10.96.100.40/'}").replace(
        "metadata: {name: a}", "metadata: {name: a, labels: {app: a}}") + """---
apiVersion: v1
kind: Service
metadata: {name: a}
spec: {clusterIP: 10.96.100.40, selector: {app: a}, ports: [{port: 80, targetPort: 8080}]}
"""
    result = run_yaml(text, tmp_path / "out")
    assert result.flows[0].status == FlowStatus.OK
    syn = [Ether(f.data) for f in frames_on(result, "default/a:eth0", "self")
           if f.direction.name == "INBOUND" and IP in Ether(f.data)
           and Ether(f.data)[IP].dst == A]
    assert syn and syn[0][IP].src == "172.18.0.2"
