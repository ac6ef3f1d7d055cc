"""Service discovery on the wire: pods resolve through 10.96.0.10 like glibc, CoreDNS answers."""

from __future__ import annotations

from pathlib import Path

import dns.message
import dns.rcode
import dns.rdatatype
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

from pktsim.api import Result
from tests.helpers.sim import frames_on, run_yaml

BASE = """
apiVersion: pktsim/v1alpha1
kind: Cluster
spec: {{upstream: {{www.example.com: 203.0.113.10}}}}
---
apiVersion: v1
kind: Namespace
metadata: {{name: shop}}
---
apiVersion: v1
kind: Pod
metadata: {{name: client}}
spec: {{nodeName: node-1, containers: [{{name: c}}]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: web, labels: {{app: web}}}}
spec: {{nodeName: node-2, containers: [{{name: c, ports: [{{containerPort: 8080, name: http}}]}}]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: web, namespace: shop, labels: {{app: web}}}}
spec: {{nodeName: node-2, containers: [{{name: c, ports: [{{containerPort: 8080, name: http}}]}}]}}
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec: {{clusterIP: 10.96.45.12, selector: {{app: web}},
        ports: [{{name: http, port: 80, targetPort: http}}]}}
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: shop}}
spec: {{clusterIP: 10.96.45.13, selector: {{app: web}},
        ports: [{{name: http, port: 80, targetPort: http}}]}}
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


def client_dns(result: Result, flow: str) -> list[tuple[str, dns.message.Message, IP]]:
    """(direction, message, IP header) of every DNS packet on the client's eth0."""
    out = []
    for f in frames_on(result, "default/client:eth0", flow):
        p = Ether(f.data)
        if UDP in p and 53 in (p[UDP].sport, p[UDP].dport):
            out.append((f.direction.name, dns.message.from_wire(bytes(p[UDP].payload)), p[IP]))
    return out


def questions(result: Result, flow: str) -> list[tuple[str, str]]:
    return [(m.question[0].name.to_text(), dns.rdatatype.to_text(m.question[0].rdtype))
            for d, m, _ in client_dns(result, flow) if d == "OUTBOUND"]


def test_fetching_http_web_from_default(tmp_path: Path) -> None:
    result = run_yaml(scenario("  - {name: web, from: default/client, to: 'http://web/'}"),
                      tmp_path / "out")
    assert result.flows[0].status == "ok"
    assert questions(result, "web")[:2] == [("web.default.svc.cluster.local.", "A"),
                                            ("web.default.svc.cluster.local.", "AAAA")]
    sent = [ip for d, _, ip in client_dns(result, "web") if d == "OUTBOUND"]
    assert {(ip.dst, ip[UDP].dport) for ip in sent} == {("10.96.0.10", 53)}
    assert len({ip[UDP].sport for ip in sent[:2]}) == 1  # one socket for A and AAAA
    answers = [(m, ip) for d, m, ip in client_dns(result, "web") if d == "INBOUND"]
    assert {(ip.src, ip[UDP].sport) for _, ip in answers} == {("10.96.0.10", 53)}
    a = next(m for m, _ in answers if m.question[0].rdtype == dns.rdatatype.A)
    assert [str(r) for r in a.answer[0]] == ["10.96.45.12"] and a.answer[0].ttl == 30
    assert a.flags & dns.flags.AA
    # at a CoreDNS pod the query arrives DNATed to the pod's own address
    coredns = [k for k in result.topology.model.pods if k.startswith("kube-system/coredns")]
    at_pods = [Ether(f.data)[IP] for k in coredns for f in frames_on(result, f"{k}:eth0", "web")
               if f.direction.name == "INBOUND" and UDP in Ether(f.data)]
    pod_ips = {str(result.topology.model.pods[k].ip) for k in coredns}
    assert at_pods and {ip.dst for ip in at_pods} <= pod_ips
    syn = [Ether(f.data) for f in frames_on(result, "default/client:eth0", "web")
           if TCP in Ether(f.data) and Ether(f.data)[TCP].flags == "S"]
    assert [p[IP].dst for p in syn] == ["10.96.45.12"]  # then TCP to the ClusterIP


def test_search_list_walk_and_absolute_names(tmp_path: Path) -> None:
    flows = ("  - {name: shop, from: default/client, to: 'http://web.shop/'}\n"
             "  - {name: ext, from: default/client, to: 'http://www.example.com/', start: 1s}\n"
             "  - {name: dot, from: default/client, to: 'http://www.example.com./', start: 2s}")
    result = run_yaml(scenario(flows), tmp_path / "out")
    assert [f.status for f in result.flows] == ["ok", "ok", "ok"]
    names = [n for n, t in questions(result, "shop") if t == "A"]
    assert names == ["web.shop.default.svc.cluster.local.", "web.shop.svc.cluster.local."]
    first = next(m for d, m, _ in client_dns(result, "shop") if d == "INBOUND")
    assert first.rcode() == dns.rcode.NXDOMAIN
    assert first.authority[0].to_text().startswith("cluster.local. 30 IN SOA ns.dns.cluster"
                                                    ".local. hostmaster.cluster.local.")
    ext = [n for n, t in questions(result, "ext") if t == "A"]
    assert ext == ["www.example.com.default.svc.cluster.local.",
                   "www.example.com.svc.cluster.local.", "www.example.com.cluster.local.",
                   "www.example.com."]
    assert [n for n, t in questions(result, "dot") if t == "A"] == ["www.example.com."]
    # CoreDNS forwarded the absolute name to the upstream, through the node's masquerade
    upstream = [Ether(f.data)[IP] for f in frames_on(result, "external/resolver:eth0", "ext")
                if f.direction.name == "INBOUND" and UDP in Ether(f.data)]
    assert upstream and all(ip.src.startswith("172.18.0.") for ip in upstream)


HEADLESS = """
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: db}}
spec:
  serviceName: db
  replicas: {replicas}
  selector: {{matchLabels: {{app: db}}}}
  template:
    metadata: {{labels: {{app: db}}}}
    spec: {{containers: [{{name: c, ports: [{{containerPort: 5432, name: pg}}]}}]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: db-slow, labels: {{app: db}}}}
spec: {{containers: [{{name: c, ports: [{{containerPort: 5432, name: pg}}]}}]}}
status: {{conditions: [{{type: Ready, status: "False"}}]}}
---
apiVersion: v1
kind: Service
metadata: {{name: db}}
spec: {{clusterIP: None, publishNotReadyAddresses: {publish}, selector: {{app: db}},
        ports: [{{name: pg, port: 5432}}]}}
"""


def lookup_answer(result: Result, flow: str) -> dns.message.Message:
    return [m for d, m, _ in client_dns(result, flow) if d == "INBOUND"][-1]


def test_headless_ready_endpoints_and_publish_not_ready(tmp_path: Path) -> None:
    flows = "  - {name: a, from: default/client, lookup: db.default.svc.cluster.local., type: A}"
    for publish, expected in (("false", 3), ("true", 4)):
        text = scenario(flows, HEADLESS.format(replicas=3, publish=publish))
        result = run_yaml(text, tmp_path / publish)
        answer = lookup_answer(result, "a")
        assert len(answer.answer[0]) == expected, publish
    srv = scenario("  - {name: s, from: default/client, lookup: _pg._tcp.db.default.svc."
                   "cluster.local., type: SRV}", HEADLESS.format(replicas=3, publish="false"))
    answer = lookup_answer(run_yaml(srv, tmp_path / "srv"), "s")
    targets = sorted(r.target.to_text() for r in answer.answer[0])
    assert targets == [f"db-{i}.db.default.svc.cluster.local." for i in range(3)]
    assert {(r.priority, r.weight, r.port) for r in answer.answer[0]} == {(0, 33, 5432)}
    assert {rr.name.to_text() for rr in answer.additional} == set(targets)


def test_truncated_udp_answer_is_retried_over_tcp(tmp_path: Path) -> None:
    flows = "  - {name: big, from: default/client, to: 'http://db:5432/'}"
    text = scenario(flows, HEADLESS.format(replicas=40, publish="false")).replace(
        "containerPort: 5432, name: pg", "containerPort: 5432, name: pg}, {containerPort: 80")
    result = run_yaml(text, tmp_path / "out")
    udp = [m for d, m, _ in client_dns(result, "big") if d == "INBOUND"]
    truncated = [m for m in udp if m.flags & dns.flags.TC]
    assert truncated and all(len(m.to_wire()) <= 512 for m in truncated)
    segments = [Ether(f.data) for f in frames_on(result, "default/client:eth0", "big")
                if TCP in Ether(f.data) and 53 in (Ether(f.data)[TCP].sport,
                                                   Ether(f.data)[TCP].dport)]
    assert segments and segments[0][IP].dst == "10.96.0.10" and segments[0][TCP].dport == 53
    payload = b"".join(bytes(p[TCP].payload) for p in segments if p[TCP].sport == 53)
    full = dns.message.from_wire(payload[2:2 + int.from_bytes(payload[:2], "big")])
    assert len(full.answer[0]) == 40
    assert result.flows[0].status == "ok"
