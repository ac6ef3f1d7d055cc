"""The guide's first two paths: container <-> container over lo, pod <-> pod on one node."""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, TCP
from scapy.layers.l2 import ARP, Ether

from pktsim import FlowStatus
from tests.helpers.sim import dissect, frames_on, interfaces_with_frames, run_yaml

NODE = """
apiVersion: pktsim/v1alpha1
kind: Cluster
spec: {{nodes: 1, hairpinMode: {hairpin}, dns: none}}
---
apiVersion: v1
kind: Pod
metadata: {{name: a, namespace: default}}
spec:
  containers:
  - {{name: app, ports: [{{containerPort: 8080}}]}}
  - {{name: sidecar}}
---
apiVersion: v1
kind: Pod
metadata: {{name: b, namespace: default}}
spec:
  containers: [{{name: app, ports: [{{containerPort: 8080}}]}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: c, namespace: default}}
spec:
  containers: [{{name: app}}]
---
apiVersion: pktsim/v1alpha1
kind: Traffic
spec:
  flows:
{flows}
"""


def scenario(flows: str, hairpin: str = "true") -> str:
    return NODE.format(hairpin=hairpin, flows=flows)


def test_container_to_container_stays_on_lo(tmp_path: Path) -> None:
    flows = "  - {name: local, from: default/a/sidecar, to: 'http://localhost:8080/'}"
    result = run_yaml(scenario(flows), tmp_path / "out")
    assert result.flows[0].status == "ok"
    assert result.flows[0].first_answer.startswith(b"HTTP/1.1 200 OK")
    assert interfaces_with_frames(result, "local") == {"default/a:lo"}
    packets = dissect(frames_on(result, "default/a:lo", "local"))
    assert [p[TCP].flags for p in packets][:3] == ["S", "SA", "A"]
    for p in packets:
        assert p[Ether].src == p[Ether].dst == "00:00:00:00:00:00"
        assert p[IP].src == p[IP].dst == "127.0.0.1"
    assert not frames_on(result, "default/a:eth0", "local")


@pytest.mark.parametrize("hairpin", ["false", "true"])
def test_arp_flooded_then_reply_unicast(tmp_path: Path, hairpin: str) -> None:
    flows = "  - {name: ping, from: default/a, to: default/b, protocol: icmp, count: 2}"
    result = run_yaml(scenario(flows, hairpin), tmp_path / "out")
    model = result.topology.model
    a, b, c = (model.pods[f"default/{n}"] for n in "abc")
    request = [f for f in result.memory.frames  # type: ignore[union-attr]
               if ARP in Ether(f.data) and Ether(f.data)[ARP].op == 1
               and Ether(f.data).dst == "ff:ff:ff:ff:ff:ff"]  # not b's later unicast probe
    outbound = {f.iface.if_name for f in request if f.direction.name == "OUTBOUND"}
    # the bridge floods a broadcast to every port but the sender's, and back to the
    # sender only when that port is in hairpin mode (should_deliver(), net/bridge/br_forward.c)
    expected = {f"node-1:{b.veth}", f"node-1:{c.veth}", "default/a:eth0"}
    if hairpin == "true":
        expected.add(f"node-1:{a.veth}")
    assert outbound == expected
    assert any(f.iface.if_name == "node-1:cbr0" for f in request)  # passed up to the host
    replies = [f for f in result.memory.frames  # type: ignore[union-attr]
               if ARP in Ether(f.data) and Ether(f.data)[ARP].op == 2
               and Ether(f.data)[ARP].psrc == str(b.ip)]
    assert {f.iface.if_name for f in replies} == {"default/b:eth0", f"node-1:{b.veth}",
                                                   f"node-1:{a.veth}", "default/a:eth0"}
    reply = Ether(replies[0].data)
    assert reply.dst == Ether(request[0].data).src and reply[ARP].hwsrc == reply.src
    assert result.flows[0].answered == 2


def test_icmp_and_http_between_pods_ttl_64_and_unicast_after_learning(tmp_path: Path) -> None:
    flows = ("  - {name: ping, from: default/a, to: default/b, protocol: icmp, count: 2}\n"
             "  - {name: web, from: default/a, to: 'http://10.244.0.3:8080/', start: 2500ms}")
    result = run_yaml(scenario(flows), tmp_path / "out")
    assert [f.status for f in result.flows] == ["ok", "ok"]
    model = result.topology.model
    c = model.pods["default/c"]
    for name in ("default/a:eth0", "default/b:eth0"):
        for p in dissect(frames_on(result, name)):
            if IP in p:
                assert p[IP].ttl == 64  # one L2 hop, nothing routed
    web = dissect(frames_on(result, "default/b:eth0", "web"))
    flags = [str(p[TCP].flags) for p in web if TCP in p]
    assert flags == ["S", "SA", "A", "PA", "A", "PA", "A", "FA", "FA", "A"]
    payloads = [bytes(p[TCP].payload) for p in web if TCP in p and len(p[TCP].payload)]
    assert payloads[0].startswith(b"GET / HTTP/1.1\r\n")
    assert payloads[1].startswith(b"HTTP/1.1 200 OK\r\n")
    # after learning, unicast leaves the bridge only by the destination's port
    assert not frames_on(result, f"node-1:{c.veth}", "web")
    assert not [f for f in frames_on(result, "node-1:cbr0", "web")]


def test_both_ends_of_each_veth_carry_the_same_frames(tmp_path: Path) -> None:
    flows = "  - {name: web, from: default/a, to: 'http://10.244.0.3:8080/'}"
    result = run_yaml(scenario(flows), tmp_path / "out")
    model = result.topology.model
    for name in "ab":
        pod = model.pods[f"default/{name}"]
        pod_side = [f.data for f in frames_on(result, f"default/{name}:eth0")]
        host_side = [f.data for f in frames_on(result, f"node-1:{pod.veth}")]
        assert pod_side == host_side and pod_side


def test_closed_port_gets_rst_and_echo_without_listener(tmp_path: Path) -> None:
    flows = "  - {name: closed, from: default/a, to: 'default/c:9999', protocol: tcp}"
    result = run_yaml(scenario(flows), tmp_path / "out")
    assert result.flows[0].status == "connection refused"
    seen = dissect(frames_on(result, "default/a:eth0", "closed"))
    tcp = [p[TCP] for p in seen if TCP in p]
    assert [str(t.flags) for t in tcp] == ["S", "RA"]
    assert tcp[1].ack == tcp[0].seq + 1


def test_udp_to_closed_port_gets_icmp_port_unreachable(tmp_path: Path) -> None:
    flows = "  - {name: udp, from: default/a, to: 'default/c:9999', protocol: udp}"
    result = run_yaml(scenario(flows), tmp_path / "out")
    seen = dissect(frames_on(result, "default/a:eth0", "udp"))
    errors = [p for p in seen if ICMP in p and p[ICMP].type == 3]
    assert len(errors) == 1 and errors[0][ICMP].code == 3
    assert errors[0][IP].tos == 0xC0
    assert result.flows[0].status is FlowStatus.REFUSED  # ICMP port unreachable
    assert "destination unreachable (code 3)" in result.flows[0].reason
