"""The guide's third path: pod to pod across nodes in routes, vxlan and ipip (flannel's
backends; Calico's dataplane has its own tests in tests/e2e/test_calico.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.layers.vxlan import VXLAN

from pktsim import FlowStatus
from pktsim.core.events import DropReason
from tests.helpers.sim import frames_on, run_yaml

SCENARIO = """
apiVersion: pktsim/v1alpha1
kind: Cluster
spec: {{network: {network}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: a}}
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

FLOWS = ("  - {name: ping, from: default/a, to: default/b, protocol: icmp, count: 2}\n"
         "  - {name: http, from: default/a, to: 'http://10.244.1.2:8080/', start: 3s}")
MODES = ["routes", "vxlan", "ipip"]


def run(tmp_path: Path, network: str, flows: str = FLOWS):  # type: ignore[no-untyped-def]
    return run_yaml(SCENARIO.format(network=network, flows=flows), tmp_path / network)


@pytest.mark.parametrize("network", MODES)
def test_pod_to_pod_across_nodes_keeps_pod_addresses_and_ttl_62(tmp_path: Path,
                                                                 network: str) -> None:
    result = run(tmp_path, network)
    assert [f.status for f in result.flows] == ["ok", "ok"]
    assert result.flows[1].first_answer.startswith(b"HTTP/1.1 200 OK")
    at_b = [Ether(f.data) for f in frames_on(result, "default/b:eth0") if
            IP in Ether(f.data)]
    assert at_b
    for p in at_b:
        if p[IP].dst == "10.244.1.2":
            assert p[IP].src == "10.244.0.2"  # no NAT pod to pod
            assert p[IP].ttl == 62  # two routed hops: node-1 and node-2
    mss = [opt for p in at_b if TCP in p and p[TCP].flags == "S"
           for opt in p[TCP].options if opt[0] == "MSS"]
    assert mss == [("MSS", {"routes": 1460, "vxlan": 1410, "ipip": 1440}[network])]


def test_routes_mode_puts_the_unmodified_pod_packet_on_the_wire(tmp_path: Path) -> None:
    result = run(tmp_path, "routes")
    model = result.topology.model
    wire = [Ether(f.data) for f in frames_on(result, "node-1:eth0")
            if f.direction.name == "OUTBOUND" and IP in Ether(f.data)]
    assert wire
    for p in wire:
        assert p.dst == "02:42:ac:12:00:03"  # node-2's eth0
        assert p.src == "02:42:ac:12:00:02"
        assert (p[IP].src, p[IP].dst, p[IP].ttl) == ("10.244.0.2", "10.244.1.2", 63)
    assert model.nodes["node-2"].eth0_mac == bytes.fromhex("0242ac120003")


def test_vxlan_outer_headers_as_flannel_sends_them(tmp_path: Path) -> None:
    result = run(tmp_path, "vxlan")
    model = result.topology.model
    n1, n2 = model.nodes["node-1"], model.nodes["node-2"]
    outer = [f for f in frames_on(result, "node-1:eth0") if f.direction.name == "OUTBOUND"
             and UDP in Ether(f.data)]
    inner_sent = [f for f in frames_on(result, "node-1:flannel.1")
                  if f.direction.name == "OUTBOUND"]
    assert outer and len(outer) == len(inner_sent)
    for f, inner_f in zip(outer, inner_sent, strict=True):
        p = Ether(f.data)
        assert (p[IP].src, p[IP].dst) == ("172.18.0.2", "172.18.0.3")
        assert p[UDP].dport == 8472 and 32768 <= p[UDP].sport <= 60999
        assert p[IP].ttl == 64 and not p[IP].flags.DF and p[UDP].chksum != 0
        vx = VXLAN(bytes(p[UDP].payload))
        assert vx.flags == 0x08 and vx.vni == 1
        inner = Ether(bytes(vx.payload))
        assert inner.src == ":".join(f"{b:02x}" for b in n1.vtep_mac)
        assert inner.dst == ":".join(f"{b:02x}" for b in n2.vtep_mac)
        assert bytes(vx.payload) == inner_f.data  # flannel.1 shows the inner frame
        assert p[IP].len == Ether(inner_f.data)[IP].len + 50
    # permanent neighbour and FDB entries: no ARP ever crosses the overlay
    for node in ("node-1", "node-2"):
        assert not [f for f in frames_on(result, f"{node}:flannel.1") if ARP in Ether(f.data)]


def test_ipip_outer_header_and_raw_inner_packet(tmp_path: Path) -> None:
    result = run(tmp_path, "ipip")
    outer = [Ether(f.data) for f in frames_on(result, "node-1:eth0")
             if f.direction.name == "OUTBOUND" and IP in Ether(f.data)]
    tunl = [f for f in frames_on(result, "node-1:flannel.ipip")
            if f.direction.name == "OUTBOUND"]
    assert outer and len(outer) == len(tunl)
    for p, raw in zip(outer, tunl, strict=True):
        assert (p[IP].src, p[IP].dst, p[IP].proto) == ("172.18.0.2", "172.18.0.3", 4)
        inner = IP(raw.data)  # LINKTYPE_RAW: no Ethernet header on flannel.ipip
        assert bytes(p[IP].payload) == raw.data
        assert p[IP].len == inner.len + 20
        assert p[IP].ttl == inner.ttl  # ttl inherit
        assert p[IP].flags.DF == inner.flags.DF  # DF copied from the inner header
    assert result.topology.driver.interfaces[0].linktype == 1
    assert [i.linktype for i in result.topology.driver.interfaces
            if i.name == "flannel.ipip"] == [101, 101]


@pytest.mark.parametrize(("ttl", "router", "source"), [(1, "node-1", "10.244.0.1"),
                                                       (2, "node-2", "172.18.0.3")])
def test_ttl_expiry_gets_time_exceeded_from_the_right_router(tmp_path: Path, ttl: int,
                                                             router: str, source: str) -> None:
    flows = f"  - {{name: ttl, from: default/a, to: default/b, protocol: icmp, ttl: {ttl}}}"
    result = run(tmp_path, "routes", flows)
    back = [Ether(f.data) for f in frames_on(result, "default/a:eth0")
            if f.direction.name == "INBOUND" and ICMP in Ether(f.data)]
    assert [(p[ICMP].type, p[ICMP].code, p[IP].src) for p in back] == [(11, 0, source)]
    drops = [e for e in result.events if e.event == "drop" and e.flow == "ttl"]
    assert [(e.host, e.drop_reason) for e in drops] == [(router, DropReason.TTL_EXCEEDED)]
    assert result.flows[0].status is FlowStatus.ICMP_ERROR
    assert "time exceeded" in result.flows[0].reason


def test_trace_shows_where_the_ttl_ran_out(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "s.yaml"
    flows = "  - {from: default/a, to: default/b, protocol: icmp}"
    path.write_text(SCENARIO.format(network="routes", flows=flows))
    proc = subprocess.run([sys.executable, "-m", "pktsim", "trace", str(path), "--from",
                           "default/a", "--to", "default/b", "--protocol", "icmp", "--ttl", "2"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    drops = [i for i, line in enumerate(lines) if "drop TTL exceeded in transit" in line]
    assert len(drops) == 1
    device = next(line.strip() for line in reversed(lines[:drops[0]])
                  if line.startswith("  ") and not line.startswith("   "))
    assert device == "node-2"  # the device block the drop is in
    assert "in  eth0" in lines[drops[0] - 2]
    assert "ICMP time exceeded in-transit" in proc.stdout
