"""Pod to Service and outside to Service: kube-proxy's rules, conntrack and NAT at work."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, TCP
from scapy.layers.l2 import Ether

import pktsim
from pktsim.api import Result
from pktsim.core.events import NatRewrite
from tests.helpers.sim import frames_on, run_yaml

BASE = """
apiVersion: v1
kind: Pod
metadata: {{name: client}}
spec: {{nodeName: node-1, containers: [{{name: c, ports: [{{containerPort: 8443, name: https}}]}}]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: web-1, labels: {{app: web}}}}
spec: {{nodeName: node-2, containers: [{{name: c, ports: [{{containerPort: 8443, name: https}}]}}]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: web-2, labels: {{app: web}}}}
spec: {{nodeName: node-2, containers: [{{name: c, ports: [{{containerPort: 8443, name: https}}]}}]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: web-3, labels: {{app: web}}}}
spec: {{nodeName: node-1, containers: [{{name: c, ports: [{{containerPort: 8443, name: https}}]}}]}}
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  clusterIP: 10.96.45.12
  selector: {{app: web}}
  ports: [{{name: https, port: 443, targetPort: https}}]
{extra}
---
apiVersion: pktsim/v1alpha1
kind: Traffic
spec:
  flows:
{flows}
"""


def scenario(flows: str, extra: str = "") -> str:
    return BASE.format(flows=flows, extra=extra)


def backend_counts(result: Result, flow: str) -> Counter[str]:
    """Which pod answered each connection (the SYN/ACKs' senders on the wire)."""
    assert result.memory is not None
    pods = {str(p.ip): p.key for p in result.topology.model.pods.values()}
    mine = {e.frame for e in result.events if e.flow == flow and e.frame is not None}
    seen: Counter[str] = Counter()
    for f in result.memory.frames:
        if f.number not in mine or not f.iface.if_name.endswith(":eth0") or \
                "/" not in f.iface.host:
            continue
        p = Ether(f.data)
        if TCP in p and p[TCP].flags == "SA" and f.direction.name == "OUTBOUND":
            seen[pods[p[IP].src]] += 1
    return seen


def test_pod_to_cluster_ip_across_nodes(tmp_path: Path) -> None:
    flows = "  - {name: svc, from: default/client, to: 'http://10.96.45.12:443/'}"
    extra = ""
    text = scenario(flows, extra).replace("selector: {app: web}", "selector: {app: web, "
                                          "only: one}").replace(
        "name: web-1, labels: {app: web}", "name: web-1, labels: {app: web, only: one}")
    result = run_yaml(text, tmp_path / "out")
    assert result.flows[0].status == "ok"
    client = [Ether(f.data) for f in frames_on(result, "default/client:eth0") if
              IP in Ether(f.data)]
    backend = [Ether(f.data) for f in frames_on(result, "default/web-1:eth0") if
               IP in Ether(f.data)]
    for p in client:  # the client only ever sees the VIP
        assert "10.96.45.12" in (p[IP].src, p[IP].dst)
        assert 443 in (p[TCP].sport, p[TCP].dport)
    for p in backend:  # the backend sees the client's own pod address, and its targetPort
        assert {p[IP].src, p[IP].dst} == {"10.244.0.2", "10.244.1.2"}
        assert 8443 in (p[TCP].sport, p[TCP].dport)
    dnat = [e for e in result.events if e.event == "nat" and "DNAT" in e.summary]
    assert dnat[0].summary.startswith("kube-proxy DNAT 10.96.45.12:443 -> 10.244.1.2:8443 "
                                      "(KUBE-SERVICES -> KUBE-SVC-")
    conntrack = (tmp_path / "out" / "nodes" / "node-1" / "conntrack.txt").read_text()
    assert "src=10.244.0.2 dst=10.96.45.12" in conntrack and "src=10.244.1.2" in conntrack


def dnat_steps(result: Result, flow: str) -> list[NatRewrite]:
    """The kube-proxy DNAT decisions of a flow: one per new connection, with the hits."""
    return [e.nat for e in result.events if e.flow == flow and e.nat is not None
            and e.summary.startswith("kube-proxy DNAT")]


def rule_hits(d: NatRewrite) -> tuple[str, ...]:
    return d.rule.hits if d.rule is not None else ()


@pytest.mark.slow
def test_balance_over_three_endpoints_and_stickiness() -> None:
    flows = "  - {name: many, from: default/client, to: 'http://10.96.45.12:443/', count: 3000}"
    result = pktsim.load(scenario(flows)).run()
    assert result.flows[0].answered == 3000
    chosen = Counter(d.new for d in dnat_steps(result, "many"))
    assert sum(chosen.values()) == 3000 and len(chosen) == 3
    for target, n in chosen.items():
        assert abs(n / 3000 - 1 / 3) <= 0.04, (target, n)
    # the backends agree: each answered as often as it was chosen
    answered = result.flows[0]
    assert answered.answered == sum(chosen.values())
    # every packet after a connection's first goes to the same backend (conntrack, not rules)
    per_packet: dict[int, set[str]] = {}
    for e in result.events:
        if e.event == "nat" and "DNAT" in e.summary and e.packet is not None:
            per_packet.setdefault(e.packet, set()).add(e.summary.split(" -> ")[1].split()[0])
    later = [e for e in result.events if e.event == "nat" and e.summary.startswith(
        "conntrack DNAT")]
    assert later and all(len(t) == 1 for t in per_packet.values())


def test_client_ip_affinity_until_the_timeout() -> None:
    extra = "  sessionAffinity: ClientIP\n  sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}"
    flows = ("  - {name: sticky, from: default/client, to: 'http://10.96.45.12:443/', count: 20}\n"
             "  - {name: later, from: default/client, to: 'http://10.96.45.12:443/', count: 20,"
             " start: 200s}")
    text = scenario(flows).replace("  ports: [{name: https, port: 443, targetPort: https}]",
                                   "  ports: [{name: https, port: 443, targetPort: https}]\n"
                                   + extra)
    result = pktsim.load(text).run()
    assert [f.answered for f in result.flows] == [20, 20]
    for flow in ("sticky", "later"):
        steps = dnat_steps(result, flow)
        assert len({d.new for d in steps}) == 1
        # the round's first connection is balanced (statistic or the last jump) ...
        assert not any("--rcheck" in h for h in rule_hits(steps[0]))
        # ... and every later one is sent by the recent match, within its 60 s
        for d in steps[1:]:
            assert any("--rcheck --seconds 60" in h for h in rule_hits(d))
    without = pktsim.load(scenario(flows)).run()
    assert len({d.new for d in dnat_steps(without, "sticky")}) == 3


@pytest.mark.parametrize("node", ["node-1", "node-2"])
def test_node_port_from_outside_is_masqueraded_cluster_policy(tmp_path: Path, node: str) -> None:
    extra = ""
    ip = {"node-1": "172.18.0.2", "node-2": "172.18.0.3"}[node]
    text = scenario(f"  - {{name: np, from: external, to: 'http://{ip}:30443/'}}")
    text = text.replace("  clusterIP: 10.96.45.12\n", "  clusterIP: 10.96.45.12\n  type: NodePort\n"
                        ).replace("targetPort: https}]", "targetPort: https, nodePort: 30443}]")
    result = run_yaml(text + extra, tmp_path / "out")
    assert result.flows[0].status == "ok"
    model = result.topology.model
    node_ips = {str(n.ip) for n in model.nodes.values()} | {
        str(n.gateway.ip) for n in model.nodes.values()}
    sources = set()
    for pod in ("web-1", "web-2", "web-3"):
        for f in frames_on(result, f"default/{pod}:eth0", "np"):
            p = Ether(f.data)
            if TCP in p and p[TCP].flags == "S":
                sources.add(p[IP].src)
    assert sources and sources <= node_ips  # Cluster policy: SNAT to the node
    client = [Ether(f.data) for f in frames_on(result, "external/client:eth0", "np")]
    assert all(p[IP].src == str(model.nodes[node].ip) for p in client
               if IP in p and p[IP].dst == "203.0.113.10")


def test_node_port_local_policy_keeps_the_client_address(tmp_path: Path) -> None:
    flows = ("  - {name: has, from: external, to: 'http://172.18.0.3:30443/'}\n"
             "  - {name: none, from: external, to: 'http://172.18.0.2:30443/'}")
    text = scenario(flows).replace("  clusterIP: 10.96.45.12\n", "  clusterIP: 10.96.45.12\n"
                                   "  type: NodePort\n  externalTrafficPolicy: Local\n").replace(
        "targetPort: https}]", "targetPort: https, nodePort: 30443}]").replace(
        "name: web-3, labels: {app: web}", "name: web-3, labels: {app: other}")
    result = run_yaml(text, tmp_path / "out")
    has, none = result.flows
    assert has.status == "ok"
    seen = {Ether(f.data)[IP].src for pod in ("web-1", "web-2")
            for f in frames_on(result, f"default/{pod}:eth0", "has")
            if f.direction.name == "INBOUND" and IP in Ether(f.data)}
    assert seen == {"203.0.113.10"}  # the client's own source is preserved
    assert none.status != "ok" and none.answered == 0
    drops = [e for e in result.events if e.flow == "none" and e.event == "drop"]
    assert drops and all(e.host == "node-1" for e in drops)
    icmp = [f for f in frames_on(result, "external/client:eth0", "none")
            if ICMP in Ether(f.data)]
    assert not icmp  # silently dropped, no ICMP


def test_load_balancer_from_the_external_network(tmp_path: Path) -> None:
    text = scenario("  - {name: lb, from: external, to: 'http://198.51.100.1:443/'}").replace(
        "  clusterIP: 10.96.45.12\n", "  clusterIP: 10.96.45.12\n  type: LoadBalancer\n")
    result = run_yaml(text, tmp_path / "out")
    assert result.flows[0].status == "ok"
    assert result.topology.model.services["default/web"].load_balancer_ip is not None


def test_no_endpoints_is_rejected_with_port_unreachable(tmp_path: Path) -> None:
    text = scenario("  - {name: rej, from: default/client, to: 'http://10.96.45.12:443/'}"
                    ).replace("selector: {app: web}", "selector: {app: nobody}")
    result = run_yaml(text, tmp_path / "out")
    assert result.flows[0].status == "connection refused"
    back = [Ether(f.data) for f in frames_on(result, "default/client:eth0", "rej")
            if f.direction.name == "INBOUND" and ICMP in Ether(f.data)]
    assert [(p[ICMP].type, p[ICMP].code) for p in back] == [(3, 3)]
    rules = (tmp_path / "out" / "nodes" / "node-1" / "iptables-save.txt").read_text()
    assert '"default/web:https has no endpoints"' in rules and "-j REJECT" in rules


def test_hairpin_pod_reaches_itself_through_its_service(tmp_path: Path) -> None:
    text = scenario("  - {name: self, from: default/web-3, to: 'http://10.96.45.12:443/'}"
                    ).replace("selector: {app: web}", "selector: {app: web, me: yes}").replace(
        "name: web-3, labels: {app: web}", "name: web-3, labels: {app: web, me: 'yes'}")
    text = text.replace("selector: {app: web, me: yes}", "selector: {app: web, me: 'yes'}")
    result = run_yaml(text, tmp_path / "out")
    assert result.flows[0].status == "ok"
    syn = [Ether(f.data) for f in frames_on(result, "default/web-3:eth0", "self")
           if f.direction.name == "INBOUND" and TCP in Ether(f.data)
           and Ether(f.data)[TCP].flags == "S"]
    assert [p[IP].src for p in syn] == ["10.244.0.1"]  # masqueraded to the bridge address
    off = pktsim.load(text.replace("kind: Traffic", "kind: Traffic", 1) +
                      "\n---\napiVersion: pktsim/v1alpha1\nkind: Cluster\n"
                      "spec: {hairpinMode: false}\n").run()
    assert off.flows[0].status != "ok"  # without hairpin the reply cannot go back out


def test_internal_traffic_policy_local_drops_without_a_local_endpoint(tmp_path: Path) -> None:
    flows = ("  - {name: here, from: default/client, to: 'http://10.96.45.12:443/'}")
    text = scenario(flows).replace("  clusterIP: 10.96.45.12\n", "  clusterIP: 10.96.45.12\n"
                                   "  internalTrafficPolicy: Local\n")
    result = run_yaml(text, tmp_path / "with")
    assert result.flows[0].status == "ok"  # web-3 is on node-1 with the client
    assert {d.new for d in dnat_steps(result, "here")} == {
        "10.244.0.3:8443"}
    none = text.replace("name: web-3, labels: {app: web}", "name: web-3, labels: {app: x}")
    quiet = run_yaml(none, tmp_path / "without")
    assert quiet.flows[0].answered == 0
    drops = [e for e in quiet.events if e.flow == "here" and e.event == "drop"]
    assert drops and "DROP" in drops[0].summary
    assert not [f for f in frames_on(quiet, "default/client:eth0", "here")
                if ICMP in Ether(f.data)]  # DROP, not REJECT: no ICMP


def test_external_ips_and_udp_ports(tmp_path: Path) -> None:
    extra = """
---
apiVersion: v1
kind: Pod
metadata: {name: echo, labels: {app: echo}}
spec: {nodeName: node-2, containers: [{name: c, ports: [{containerPort: 7001, protocol: UDP}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: echo}
spec:
  selector: {app: echo}
  externalIPs: [198.51.100.77]
  ports: [{name: udp, port: 7000, targetPort: 7001, protocol: UDP}]
"""
    flows = ("  - {name: ext, from: external, to: '198.51.100.77:7000', protocol: udp,"
             " payload: hello}\n"
             "  - {name: tcp53, from: default/client, to: '10.96.45.12:443', protocol: udp}")
    text = scenario(flows, "").replace("\n---\napiVersion: pktsim/v1alpha1\nkind: Traffic",
                                       extra + "\n---\napiVersion: pktsim/v1alpha1\nkind: Traffic")
    result = run_yaml(text, tmp_path / "out")
    ext, wrong = result.flows
    assert ext.status == "ok" and ext.answered == 1
    dnat = [e.summary for e in result.events if e.flow == "ext" and e.event == "nat"]
    assert any("198.51.100.77:7000 -> 10.244.1." in s and ":7001" in s for s in dnat)
    # UDP to a port the ClusterIP serves only over TCP is not NATed (proxier_test.go
    # TestClusterIPGeneral: "TCP-only port does not match UDP traffic")
    assert not [e for e in result.events if e.flow == "tcp53" and e.event == "nat"
                and "DNAT" in e.summary]
    assert wrong.answered == 0
