"""A dual-stack cluster end to end (``ipFamilies: [IPv4, IPv6]``, ``network: routes``): pods
reach each other over IPv6 on one node and across nodes, with Neighbor Discovery instead of
ARP, hop limits instead of TTLs, and the node dumps as ``ip`` prints them.  Every capture is
checked by tshark (checksums on: ICMPv6's is always verified)."""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.layers.inet import TCP
from scapy.layers.inet6 import ICMPv6EchoReply, ICMPv6EchoRequest, ICMPv6ND_NA, ICMPv6ND_NS, IPv6

from pktsim import FlowStatus
from tests.helpers.sim import dissect, frames_on, run_yaml

SCENARIO = """
apiVersion: pktsim/v1alpha1
kind: Cluster
spec: {{nodes: 2, network: {network}, ipFamilies: [IPv4, IPv6]}}
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

B6 = "fd00:10:244:1::2"


def run(tmp_path: Path, flows: str, network: str = "routes"):  # type: ignore[no-untyped-def]
    return run_yaml(SCENARIO.format(flows=flows, network=network), tmp_path / "out")


def test_cross_node_ping_over_ipv6_resolves_by_nd_and_counts_hops(tmp_path: Path) -> None:
    result = run(tmp_path, "  - {name: ping, from: default/a, to: default/b, family: IPv6,"
                           " protocol: icmp, count: 2}")
    [flow] = result.flows
    assert flow.status == FlowStatus.OK and flow.answered == 2 and flow.answered_by == B6
    a_eth0 = dissect(frames_on(result, "default/a:eth0", "ping"))
    solicit = a_eth0[0]
    assert solicit.haslayer(ICMPv6ND_NS) and solicit[ICMPv6ND_NS].tgt == "fd00:10:244::1"
    assert solicit[IPv6].dst == "ff02::1:ff00:1" and solicit[IPv6].hlim == 255
    advert = next(p for p in a_eth0 if p.haslayer(ICMPv6ND_NA))
    assert (advert[ICMPv6ND_NA].R, advert[ICMPv6ND_NA].S, advert[ICMPv6ND_NA].O) == (1, 1, 1)
    requests = [p for p in a_eth0 if p.haslayer(ICMPv6EchoRequest)]
    replies = [p for p in a_eth0 if p.haslayer(ICMPv6EchoReply)]
    assert [p[IPv6].hlim for p in requests] == [64, 64]
    assert [p[IPv6].hlim for p in replies] == [62, 62]  # two routers on the way back
    assert len({p[IPv6].fl for p in requests}) == 1 and requests[0][IPv6].fl != 0


def test_same_node_tcp_over_ipv6_uses_the_bracketed_target(tmp_path: Path) -> None:
    result = run(tmp_path, "  - {name: http, from: default/a, to: 'http://[fd00:10:244::3]:8080/'}")
    [flow] = result.flows
    assert flow.status == FlowStatus.OK, flow.line()
    sent = dissect(frames_on(result, "default/a:eth0", "http"))
    syn = next(p for p in sent if p.haslayer(TCP) and p[TCP].flags == "S")
    assert syn[IPv6].dst == "fd00:10:244::3" and dict(syn[TCP].options)["MSS"] == 1440
    request = next(bytes(p[TCP].payload) for p in sent
                   if p.haslayer(TCP) and bytes(p[TCP].payload).startswith(b"GET"))
    assert b"Host: [fd00:10:244::3]:8080\r\n" in request


def test_the_node_dumps_show_both_families(tmp_path: Path) -> None:
    run(tmp_path, "  - {name: ping, from: default/a, to: default/b, family: IPv6,"
                  " protocol: icmp, count: 2}")
    node = tmp_path / "out" / "nodes" / "node-1"
    routes = (node / "ip-6-route.txt").read_text().splitlines()
    assert routes[:3] == [
        "fc00:f853:ccd:e793::/64 dev eth0 proto kernel metric 256 pref medium",
        "fd00:10:244::/64 dev cbr0 proto kernel metric 256 pref medium",
        "fd00:10:244:1::/64 via fc00:f853:ccd:e793::3 dev eth0 metric 1024 pref medium"]
    assert routes[-1] == "default via fc00:f853:ccd:e793::1 dev eth0 metric 1024 pref medium"
    assert "10.244.1.0/24 via 172.18.0.3 dev eth0" in (node / "ip-route.txt").read_text()
    addr = (node / "ip-addr.txt").read_text()
    assert "    inet6 fd00:10:244::1/64 scope global \n" in addr
    assert "    inet6 ::1/128 scope host \n" in addr
    neigh = (node / "ip-neigh.txt").read_text()
    assert "fc00:f853:ccd:e793::3 dev eth0 lladdr 02:42:ac:12:00:03 router REACHABLE" in neigh


def test_an_ipv6_flow_in_an_ipv4_cluster_is_refused(tmp_path: Path) -> None:
    import pktsim
    from pktsim.errors import ScenarioError

    text = SCENARIO.replace(", ipFamilies: [IPv4, IPv6]", "").format(
        flows="  - {name: x, from: default/a, to: '[fd00:10:244::3]:8080'}", network="routes")
    with pytest.raises(ScenarioError) as caught:
        pktsim.load(text)
    assert "spec.flows[0].to: '[fd00:10:244::3]:8080' is an IPv6 target" in str(caught.value)


def test_flannel_vxlan_carries_ipv6_pods_over_ipv6(tmp_path: Path) -> None:
    """``network: vxlan``, dual-stack: flannel's second device ``flannel-v6.1`` wraps the
    pods' IPv6 frames in UDP 8472 over the nodes' IPv6 addresses (hop limit 64, flow label
    0); the inner packet keeps its hop limit 63 across the tunnel."""
    from scapy.layers.inet import UDP
    from scapy.layers.vxlan import VXLAN

    result = run(tmp_path, "  - {name: http, from: default/a, to: 'http://[fd00:10:244:1::2]:8080/'"
                           "}\n  - {name: ping, from: default/a, to: default/b, family: IPv6,"
                           " protocol: icmp, count: 1}", network="vxlan")
    assert all(f.status == FlowStatus.OK for f in result.flows), [f.line() for f in result.flows]
    outer = [p for p in dissect(frames_on(result, "node-1:eth0", "ping"))
             if p.haslayer(VXLAN)]
    assert outer, "no VXLAN frame on node-1's eth0"
    first = outer[0]
    assert (first[IPv6].src, first[IPv6].dst, first[IPv6].hlim, first[IPv6].fl) == (
        "fc00:f853:ccd:e793::2", "fc00:f853:ccd:e793::3", 64, 0)
    assert first[UDP].dport == 8472 and first[VXLAN].vni == 1
    inner = first[VXLAN].payload
    assert inner[IPv6].dst == "fd00:10:244:1::2" and inner[IPv6].hlim == 63
    node = tmp_path / "out" / "nodes" / "node-1"
    assert ("fd00:10:244:1::/64 via fd00:10:244:1:: dev flannel-v6.1 metric 1024 onlink pref "
            "medium") in (node / "ip-6-route.txt").read_text()
    assert "dev flannel-v6.1 dst fc00:f853:ccd:e793::3 self permanent" in \
        (node / "bridge-fdb.txt").read_text()


def test_packet_too_big_shrinks_a_tcp_connection_to_the_path(tmp_path: Path) -> None:
    """On vxlan the pods' MTU (1450) is above flannel-v6.1's (1430): a full-size IPv6
    segment earns Packet Too Big (mtu 1430) from node-1, and the sender cuts what is in
    flight to the new MSS and sends it again (tcp_v6_mtu_reduced), so the exchange ends."""
    from scapy.layers.inet6 import ICMPv6PacketTooBig

    payload = "x" * 3000
    result = run(tmp_path, f"  - {{name: big, from: default/a, to: '[fd00:10:244:1::2]:8080', "
                           f"payload: '{payload}'}}", network="vxlan")
    [flow] = result.flows
    assert flow.status == FlowStatus.OK, flow.line()
    frames = frames_on(result, "default/a:eth0", "big")
    seen = list(zip(frames, dissect(frames), strict=True))
    too_big = [(f, p) for f, p in seen if p.haslayer(ICMPv6PacketTooBig)]
    assert too_big and too_big[0][1][ICMPv6PacketTooBig].mtu == 1430
    when = too_big[0][0].t_abs_ns
    sent = [(f.t_abs_ns, len(p[TCP].payload)) for f, p in seen if p.haslayer(TCP) and
            p[IPv6].src == "fd00:10:244::2" and len(p[TCP].payload)]
    before = [size for t, size in sent if t < when]
    after = [size for t, size in sent if t >= when]
    assert max(before) == 1450 - 40 - 20 - 12  # the first flight at the pods' MTU
    assert after and max(after) == 1430 - 40 - 20 - 12  # again, cut to the path's
