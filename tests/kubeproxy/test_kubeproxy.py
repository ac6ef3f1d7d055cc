"""kube-proxy's iptables rules: chain-name hashes, probabilities and every documented rule.

Rules, names and numbers from kubernetes/kubernetes ``pkg/proxy/iptables/proxier.go``
(``syncProxyRules``, ``writeServiceToEndpointRules``, ``iptablesJumpChains``,
``portProtoHash``, ``computeProbability``), its expected output in ``proxier_test.go``, and the
defaults of ``pkg/proxy/apis/config/v1alpha1/defaults.go``.  The golden comparison with
upstream's own expected output is in ``test_kubeproxy_golden.py``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from ipaddress import IPv4Network

import pytest

import pktsim
from pktsim.kubeproxy import (
    ProxyConfig,
    endpoint_chain_name,
    jump_rules,
    node_rules,
    probability,
    restore_data,
    service_chain_name,
    service_chain_suffix,
    service_port_name,
)
from pktsim.kubeproxy.hashes import EXT, FW, SVL
from pktsim.kubeproxy.normalize import parse_tables
from pktsim.model.cluster import ClusterModel

# -- names and probabilities (portProtoHash, computeProbability) ----------------------------


@pytest.mark.parametrize(("name", "protocol", "chain"), [
    ("ns1/svc1:p80", "tcp", "KUBE-SVC-XPGD46QRK7WJZT7O"),
    ("ns2/svc2:p8080", "tcp", "KUBE-SVC-2VJB64SDSIJUP5T6"),
    ("default/kubernetes:https", "tcp", "KUBE-SVC-NPX46M4PTMTKRN6Y"),
    ("kube-system/kube-dns:dns", "udp", "KUBE-SVC-TCOU7JCQXEZGVUNU"),
    ("kube-system/kube-dns:dns-tcp", "tcp", "KUBE-SVC-ERIFXISQEP7F7OF4"),
    ("default/web:http", "tcp", "KUBE-SVC-CDGGSHYLG3RE2FKL"),
    ("default/web", "tcp", "KUBE-SVC-LOLE4ISW44XBNF3G"),
])
def test_service_chain_hash(name: str, protocol: str, chain: str) -> None:
    assert service_chain_name(name, protocol) == chain
    assert service_chain_name(name, protocol.upper()) == chain  # protocol is lower-cased
    assert service_chain_suffix(name, protocol) == chain.removeprefix("KUBE-SVC-")


@pytest.mark.parametrize(("name", "protocol", "endpoint", "chain"), [
    ("ns1/svc1:p80", "tcp", "10.180.0.1:80", "KUBE-SEP-SXIVWICOYRO3J4NJ"),
    ("ns1/svc1:p80", "tcp", "10.0.1.1:80", "KUBE-SEP-SNQ3ZNILQDEJNDQO"),
    ("ns4/svc4:p80", "tcp", "10.180.0.4:80", "KUBE-SEP-UKSFD7AGPMPPLUHC"),
    ("default/web:http", "tcp", "10.244.1.5:8080", "KUBE-SEP-AFGSLHOD2HFNCBX4"),
    # from a real kube-proxy's "Restoring iptables rules" log (kind cluster)
    ("default/kubernetes:https", "tcp", "172.18.0.2:6443", "KUBE-SEP-V2PECCYPB6X2GSCW"),
    ("kube-system/kube-dns:dns", "udp", "10.244.0.10:53", "KUBE-SEP-R7EMXN5TTQQVP4UW"),
])
def test_endpoint_chain_hash(name: str, protocol: str, endpoint: str, chain: str) -> None:
    assert endpoint_chain_name(name, protocol, endpoint) == chain


def test_service_port_name_has_no_colon_when_unnamed() -> None:
    assert service_port_name("default", "web", "http") == "default/web:http"
    assert service_port_name("default", "web") == "default/web"


def test_service_level_chains_share_one_hash() -> None:
    chains = {prefix: service_chain_name("ns2/svc2:p80", "tcp", prefix) for prefix in
              ("KUBE-SVC-", SVL, EXT, FW)}
    assert {c.rsplit("-", 1)[1] for c in chains.values()} == {"GNZBNJ2PO5MGZ6GT"}
    assert chains[EXT] == "KUBE-EXT-GNZBNJ2PO5MGZ6GT"


def test_probabilities_have_ten_decimals() -> None:
    assert [probability(n) for n in (3, 2)] == ["0.3333333333", "0.5000000000"]
    assert [probability(n) for n in (4, 3, 2)] == ["0.2500000000", "0.3333333333",
                                                   "0.5000000000"]
    assert probability(5) == "0.2000000000"


def test_masquerade_mark_is_formatted_as_kube_proxy_does() -> None:
    assert ProxyConfig().mark == "0x00004000"  # fmt.Sprintf("%#08x", 1<<14)
    assert ProxyConfig(masquerade_bit=10).mark == "0x00000400"
    assert ProxyConfig(masquerade_mark="0x4000").mark == "0x4000"


# -- a two-node scenario with one service per behaviour --------------------------------------

def _pod(name: str, app: str, node: str, ip: str, ready: bool = True) -> str:
    conditions = "" if ready else ', conditions: [{type: Ready, status: "False"}]'
    return f"""
apiVersion: v1
kind: Pod
metadata: {{name: {name}, labels: {{app: {app}}}}}
spec: {{nodeName: {node}, containers: [{{name: c, ports: [{{containerPort: 8080}}]}}]}}
status: {{podIP: {ip}{conditions}}}
---"""


def _svc(name: str, spec: str, status: str = "") -> str:
    return f"""
apiVersion: v1
kind: Service
metadata: {{name: {name}}}
spec: {{{spec}}}
{status}
---"""


HTTP = "ports: [{name: http, port: 80, targetPort: 8080"
SCENARIO = "".join([
    _pod("web-a", "web", "node-1", "10.244.0.10"),
    _pod("web-b", "web", "node-2", "10.244.1.10"),
    _pod("web-c", "web", "node-2", "10.244.1.11"),
    _pod("solo", "solo", "node-2", "10.244.1.20"),
    _pod("slow", "slow", "node-1", "10.244.0.20", ready=False),
    _svc("web", f"clusterIP: 10.96.1.1, selector: {{app: web}}, {HTTP}}}]"),
    _svc("plain", "clusterIP: 10.96.1.2, selector: {app: solo}, "
         "ports: [{port: 80, targetPort: 8080}]"),
    _svc("np", f"type: NodePort, clusterIP: 10.96.1.3, selector: {{app: web}}, "
         f"{HTTP}, nodePort: 30080}}]"),
    _svc("lb-local", f"type: LoadBalancer, clusterIP: 10.96.1.4, selector: {{app: solo}}, "
         f"externalTrafficPolicy: Local, healthCheckNodePort: 30999, {HTTP}, nodePort: 30081}}]",
         "status: {loadBalancer: {ingress: [{ip: 198.51.100.40}]}}"),
    _svc("lb-fw", f"type: LoadBalancer, clusterIP: 10.96.1.5, selector: {{app: web}}, "
         f"loadBalancerSourceRanges: [203.0.113.0/25, 172.18.0.0/16], {HTTP}, "
         "nodePort: 30082}]", "status: {loadBalancer: {ingress: [{ip: 198.51.100.50}]}}"),
    _svc("ext", f"clusterIP: 10.96.1.6, selector: {{app: web}}, externalIPs: [192.0.2.10], "
         f"{HTTP}}}]"),
    _svc("itp", f"clusterIP: 10.96.1.7, selector: {{app: solo}}, internalTrafficPolicy: Local, "
         f"{HTTP}}}]"),
    _svc("sticky", f"clusterIP: 10.96.1.8, selector: {{app: web}}, sessionAffinity: ClientIP, "
         f"sessionAffinityConfig: {{clientIP: {{timeoutSeconds: 600}}}}, {HTTP}}}]"),
    _svc("empty", f"type: LoadBalancer, clusterIP: 10.96.1.9, selector: {{app: nothing}}, "
         f"externalIPs: [192.0.2.11], {HTTP}, nodePort: 30090}}]",
         "status: {loadBalancer: {ingress: [{ip: 198.51.100.60}]}}"),
    _svc("slow", f"clusterIP: 10.96.1.10, selector: {{app: slow}}, {HTTP}}}]"),
    _svc("slow-pub", f"clusterIP: 10.96.1.11, selector: {{app: slow}}, "
         f"publishNotReadyAddresses: true, {HTTP}}}]"),
    _svc("dns", "clusterIP: 10.96.1.12, selector: {app: web}, "
         "ports: [{name: dns, port: 53, protocol: UDP, targetPort: 5353}]"),
    _svc("headless", "clusterIP: None, selector: {app: web}, ports: [{name: http, port: 80}]"),
    _svc("extname", "type: ExternalName, externalName: example.com"),
])


@pytest.fixture(scope="module")
def model() -> ClusterModel:
    return pktsim.load(SCENARIO).model


@pytest.fixture(scope="module")
def node1(model: ClusterModel) -> str:
    return node_rules(model, "node-1")


@pytest.fixture(scope="module")
def node2(model: ClusterModel) -> str:
    return node_rules(model, "node-2")


def chain(text: str, table: str, name: str) -> list[str]:
    """The rules of one chain, in order."""
    found = [t for t in parse_tables(text) if t.name == table]
    assert len(found) == 1, f"one *{table} section expected"
    return found[0].rules.get(name, [])


def declared(text: str, table: str) -> list[str]:
    return next(t.chains for t in parse_tables(text) if t.name == table)


def svc(name: str, protocol: str = "tcp", prefix: str = "KUBE-SVC-") -> str:
    return service_chain_name(f"default/{name}", protocol, prefix)


def sep(name: str, endpoint: str, protocol: str = "tcp") -> str:
    return endpoint_chain_name(f"default/{name}", protocol, endpoint)


LAST = ('-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must '
        'be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS')


# -- the fixed chains and rules (iptablesJumpChains, syncProxyRules) ------------------------

def test_built_in_chains_jump_to_kube_proxy_chains(node1: str) -> None:
    new = "-m conntrack --ctstate NEW -m comment --comment"
    assert chain(node1, "nat", "PREROUTING") == [
        '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES']
    assert chain(node1, "nat", "OUTPUT") == [
        '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES']
    assert chain(node1, "nat", "POSTROUTING") == [
        '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING']
    assert chain(node1, "filter", "INPUT") == [
        f'-A INPUT {new} "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
        '-A INPUT -m comment --comment "kubernetes health check service ports" '
        "-j KUBE-NODEPORTS",
        f'-A INPUT {new} "kubernetes externally-visible service portals" '
        "-j KUBE-EXTERNAL-SERVICES",
        "-A INPUT -j KUBE-FIREWALL"]
    assert chain(node1, "filter", "FORWARD") == [
        f'-A FORWARD {new} "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
        '-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD',
        f'-A FORWARD {new} "kubernetes service portals" -j KUBE-SERVICES',
        f'-A FORWARD {new} "kubernetes externally-visible service portals" '
        "-j KUBE-EXTERNAL-SERVICES"]
    assert chain(node1, "filter", "OUTPUT") == [
        f'-A OUTPUT {new} "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
        f'-A OUTPUT {new} "kubernetes service portals" -j KUBE-SERVICES',
        "-A OUTPUT -j KUBE-FIREWALL"]
    assert jump_rules()["nat"] == chain(node1, "nat", "PREROUTING") + chain(
        node1, "nat", "OUTPUT") + chain(node1, "nat", "POSTROUTING")


def test_chain_declarations(node1: str) -> None:
    assert declared(node1, "filter")[:9] == [
        "INPUT", "FORWARD", "OUTPUT", "KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES",
        "KUBE-FORWARD", "KUBE-NODEPORTS", "KUBE-PROXY-FIREWALL", "KUBE-FIREWALL"]
    assert declared(node1, "nat")[:8] == ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING",
                                          "KUBE-SERVICES", "KUBE-NODEPORTS",
                                          "KUBE-POSTROUTING", "KUBE-MARK-MASQ"]
    lines = node1.splitlines()
    assert ":KUBE-SERVICES - [0:0]" in lines and ":PREROUTING ACCEPT [0:0]" in lines


def test_masquerade_chains(node1: str) -> None:
    assert chain(node1, "nat", "KUBE-MARK-MASQ") == [
        "-A KUBE-MARK-MASQ -j MARK --or-mark 0x00004000"]
    assert chain(node1, "nat", "KUBE-POSTROUTING") == [
        "-A KUBE-POSTROUTING -m mark ! --mark 0x00004000/0x00004000 -j RETURN",
        "-A KUBE-POSTROUTING -j MARK --xor-mark 0x00004000",
        '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" '
        "-j MASQUERADE --random-fully"]


def test_forward_and_firewall_chains(node1: str) -> None:
    assert chain(node1, "filter", "KUBE-FORWARD") == [
        "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP",
        '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" '
        "-m mark --mark 0x00004000/0x00004000 -j ACCEPT",
        '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" '
        "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"]
    assert chain(node1, "filter", "KUBE-FIREWALL") == [
        '-A KUBE-FIREWALL -m comment --comment "block incoming localnet connections" '
        "-d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT "
        "-j DROP"]


def test_node_ports_rule_is_last_in_kube_services(node1: str, node2: str) -> None:
    for text in (node1, node2):
        assert chain(text, "nat", "KUBE-SERVICES")[-1] == LAST
        assert text.count(LAST) == 1


# -- ClusterIP (writeServiceToEndpointRules; TestClusterIPGeneral) ---------------------------

def test_cluster_ip_service(node1: str) -> None:
    web = svc("web:http")
    assert web == "KUBE-SVC-CDGGSHYLG3RE2FKL"
    assert ('-A KUBE-SERVICES -m comment --comment "default/web:http cluster IP" -m tcp -p tcp '
            f"-d 10.96.1.1 --dport 80 -j {web}") in chain(node1, "nat", "KUBE-SERVICES")
    a, b, c = (sep("web:http", f"{ip}:8080") for ip in ("10.244.0.10", "10.244.1.10",
                                                         "10.244.1.11"))
    assert chain(node1, "nat", web) == [
        f'-A {web} -m comment --comment "default/web:http cluster IP" -m tcp -p tcp '
        "-d 10.96.1.1 --dport 80 ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ",
        f'-A {web} -m comment --comment "default/web:http -> 10.244.0.10:8080" '
        f"-m statistic --mode random --probability 0.3333333333 -j {a}",
        f'-A {web} -m comment --comment "default/web:http -> 10.244.1.10:8080" '
        f"-m statistic --mode random --probability 0.5000000000 -j {b}",
        f'-A {web} -m comment --comment "default/web:http -> 10.244.1.11:8080" -j {c}']
    assert chain(node1, "nat", a) == [
        f"-A {a} -m comment --comment default/web:http -s 10.244.0.10 -j KUBE-MARK-MASQ",
        f"-A {a} -m comment --comment default/web:http -m tcp -p tcp -j DNAT "
        "--to-destination 10.244.0.10:8080"]


def test_cluster_ip_rules_are_the_same_on_every_node(node1: str, node2: str) -> None:
    web = svc("web:http")
    assert chain(node1, "nat", web) == chain(node2, "nat", web)


def test_udp_and_unnamed_ports(node1: str) -> None:
    dns = svc("dns:dns", "udp")
    rules = chain(node1, "nat", dns)
    assert rules[0] == (f'-A {dns} -m comment --comment "default/dns:dns cluster IP" -m udp '
                        "-p udp -d 10.96.1.12 --dport 53 ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ")
    one = sep("dns:dns", "10.244.0.10:5353", "udp")
    assert chain(node1, "nat", one)[1] == (
        f"-A {one} -m comment --comment default/dns:dns -m udp -p udp -j DNAT "
        "--to-destination 10.244.0.10:5353")
    plain = service_chain_name("default/plain", "tcp")
    assert ('-A KUBE-SERVICES -m comment --comment "default/plain cluster IP" -m tcp -p tcp '
            f"-d 10.96.1.2 --dport 80 -j {plain}") in chain(node1, "nat", "KUBE-SERVICES")


def test_four_endpoints_spread_evenly() -> None:
    pods = "".join(_pod(f"p{i}", "four", "node-1", f"10.244.0.{30 + i}") for i in range(4))
    text = node_rules(pktsim.load(pods + _svc("four", "clusterIP: 10.96.2.1, selector: "
                                              f"{{app: four}}, {HTTP}}}]")).model, "node-1")
    got = [r.split("--probability ")[1].split()[0] if "--probability" in r else "-"
           for r in chain(text, "nat", svc("four:http"))[1:]]
    assert got == ["0.2500000000", "0.3333333333", "0.5000000000", "-"]


# -- readiness ----------------------------------------------------------------------------

def test_only_ready_endpoints_unless_publish_not_ready(node1: str) -> None:
    assert ('-A KUBE-SERVICES -m comment --comment "default/slow:http has no endpoints" '
            "-m tcp -p tcp -d 10.96.1.10 --dport 80 -j REJECT") in chain(
                node1, "filter", "KUBE-SERVICES")
    assert svc("slow:http") not in declared(node1, "nat")
    pub = svc("slow-pub:http")
    assert chain(node1, "nat", pub)[-1] == (
        f'-A {pub} -m comment --comment "default/slow-pub:http -> 10.244.0.20:8080" '
        f"-j {sep('slow-pub:http', '10.244.0.20:8080')}")


# -- no endpoints: REJECT (TestNoEndpointsReject) -------------------------------------------

def test_no_endpoints_reject(node1: str) -> None:
    comment = '-m comment --comment "default/empty:http has no endpoints"'
    assert (f"-A KUBE-SERVICES {comment} -m tcp -p tcp -d 10.96.1.9 --dport 80 -j REJECT"
            in chain(node1, "filter", "KUBE-SERVICES"))
    assert [r for r in chain(node1, "filter", "KUBE-EXTERNAL-SERVICES") if "empty" in r] == [
        f"-A KUBE-EXTERNAL-SERVICES {comment} -m tcp -p tcp -d 192.0.2.11 --dport 80 -j REJECT",
        f"-A KUBE-EXTERNAL-SERVICES {comment} -m tcp -p tcp -d 198.51.100.60 --dport 80 "
        "-j REJECT",
        f"-A KUBE-EXTERNAL-SERVICES {comment} -m addrtype --dst-type LOCAL -m tcp -p tcp "
        "--dport 30090 -j REJECT"]
    suffix = service_chain_suffix("default/empty:http", "tcp")
    assert not [c for c in declared(node1, "nat") if suffix in c]
    assert "default/empty" not in "\n".join(chain(node1, "nat", "KUBE-SERVICES"))


# -- NodePort, Cluster policy (KUBE-NODEPORTS -> KUBE-EXT) ----------------------------------

def test_node_port_cluster_policy(node1: str) -> None:
    ext, main = svc("np:http", prefix=EXT), svc("np:http")
    assert (f"-A KUBE-NODEPORTS -m comment --comment default/np:http -m tcp -p tcp "
            f"--dport 30080 -j {ext}") in chain(node1, "nat", "KUBE-NODEPORTS")
    assert chain(node1, "nat", ext) == [
        f'-A {ext} -m comment --comment "masquerade traffic for default/np:http external '
        'destinations" -j KUBE-MARK-MASQ',
        f"-A {ext} -j {main}"]
    assert ext.removeprefix("KUBE-EXT-") == main.removeprefix("KUBE-SVC-")


# -- externalTrafficPolicy Local, healthCheckNodePort (KUBE-SVL) -----------------------------

def test_external_traffic_policy_local_with_a_local_endpoint(node2: str) -> None:
    ext, main, local = (svc("lb-local:http", prefix=p) for p in (EXT, "KUBE-SVC-", SVL))
    name = "default/lb-local:http"
    assert chain(node2, "nat", ext) == [
        f'-A {ext} -m comment --comment "pod traffic for {name} external destinations" '
        f"-s 10.244.0.0/16 -j {main}",
        f'-A {ext} -m comment --comment "masquerade LOCAL traffic for {name} external '
        'destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ',
        f'-A {ext} -m comment --comment "route LOCAL traffic for {name} external destinations" '
        f"-m addrtype --src-type LOCAL -j {main}",
        f"-A {ext} -j {local}"]
    one = sep("lb-local:http", "10.244.1.20:8080")
    assert chain(node2, "nat", local) == [
        f'-A {local} -m comment --comment "{name} -> 10.244.1.20:8080" -j {one}']
    assert not [r for r in chain(node2, "filter", "KUBE-EXTERNAL-SERVICES") if name in r]
    assert (f'-A KUBE-SERVICES -m comment --comment "{name} loadbalancer IP" -m tcp -p tcp '
            f"-d 198.51.100.40 --dport 80 -j {ext}") in chain(node2, "nat", "KUBE-SERVICES")


def test_external_traffic_policy_local_without_one(node1: str) -> None:
    ext, local = svc("lb-local:http", prefix=EXT), svc("lb-local:http", prefix=SVL)
    name = "default/lb-local:http"
    assert f"-A {ext} -j {local}" not in chain(node1, "nat", ext)
    assert len(chain(node1, "nat", ext)) == 3 and local not in declared(node1, "nat")
    drop = f'-m comment --comment "{name} has no local endpoints"'
    assert [r for r in chain(node1, "filter", "KUBE-EXTERNAL-SERVICES") if name in r] == [
        f"-A KUBE-EXTERNAL-SERVICES {drop} -m tcp -p tcp -d 198.51.100.40 --dport 80 -j DROP",
        f"-A KUBE-EXTERNAL-SERVICES {drop} -m addrtype --dst-type LOCAL -m tcp -p tcp "
        "--dport 30081 -j DROP"]


def test_health_check_node_port_on_every_node(node1: str, node2: str) -> None:
    accept = ('-A KUBE-NODEPORTS -m comment --comment "default/lb-local:http health check node '
              'port" -m tcp -p tcp --dport 30999 -j ACCEPT')
    for text in (node1, node2):
        assert chain(text, "filter", "KUBE-NODEPORTS") == [accept]


# -- loadBalancerSourceRanges (KUBE-FW) ------------------------------------------------------

def test_load_balancer_source_ranges(node1: str) -> None:
    fw, ext = svc("lb-fw:http", prefix=FW), svc("lb-fw:http", prefix=EXT)
    name = "default/lb-fw:http"
    assert (f'-A KUBE-SERVICES -m comment --comment "{name} loadbalancer IP" -m tcp -p tcp '
            f"-d 198.51.100.50 --dport 80 -j {fw}") in chain(node1, "nat", "KUBE-SERVICES")
    lb = f'-A {fw} -m comment --comment "{name} loadbalancer IP"'
    assert chain(node1, "nat", fw) == [
        f"{lb} -s 203.0.113.0/25 -j {ext}",
        f"{lb} -s 172.18.0.0/16 -j {ext}",
        f"{lb} -s 198.51.100.50 -j {ext}",  # the node IP is in a range: allow LB-IP sources
        f'-A {fw} -m comment --comment "other traffic to {name} will be dropped by '
        'KUBE-PROXY-FIREWALL"']
    assert chain(node1, "filter", "KUBE-PROXY-FIREWALL") == [
        f'-A KUBE-PROXY-FIREWALL -m comment --comment "{name} traffic not accepted by {fw}" '
        "-m tcp -p tcp -d 198.51.100.50 --dport 80 -j DROP"]
    # node ports are not subject to the source ranges
    assert (f"-A KUBE-NODEPORTS -m comment --comment {name} -m tcp -p tcp --dport 30082 "
            f"-j {ext}") in chain(node1, "nat", "KUBE-NODEPORTS")


# -- externalIPs ------------------------------------------------------------------------------

def test_external_ips(node1: str) -> None:
    ext = svc("ext:http", prefix=EXT)
    assert ('-A KUBE-SERVICES -m comment --comment "default/ext:http external IP" -m tcp '
            f"-p tcp -d 192.0.2.10 --dport 80 -j {ext}") in chain(node1, "nat", "KUBE-SERVICES")
    assert chain(node1, "nat", ext)[-1] == f"-A {ext} -j {svc('ext:http')}"


# -- internalTrafficPolicy Local (KUBE-SVL, DROP) -------------------------------------------

def test_internal_traffic_policy_local(node1: str, node2: str) -> None:
    local, name = svc("itp:http", prefix=SVL), "default/itp:http"
    assert (f'-A KUBE-SERVICES -m comment --comment "{name} has no local endpoints" -m tcp '
            "-p tcp -d 10.96.1.7 --dport 80 -j DROP") in chain(node1, "filter", "KUBE-SERVICES")
    assert local not in declared(node1, "nat")
    assert (f'-A KUBE-SERVICES -m comment --comment "{name} cluster IP" -m tcp -p tcp '
            f"-d 10.96.1.7 --dport 80 -j {local}") in chain(node2, "nat", "KUBE-SERVICES")
    assert chain(node2, "nat", local) == [
        f'-A {local} -m comment --comment "{name} cluster IP" -m tcp -p tcp -d 10.96.1.7 '
        "--dport 80 ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ",
        f'-A {local} -m comment --comment "{name} -> 10.244.1.20:8080" '
        f"-j {sep('itp:http', '10.244.1.20:8080')}"]
    assert svc("itp:http") not in declared(node2, "nat")
    assert name not in "\n".join(chain(node2, "filter", "KUBE-SERVICES"))


# -- sessionAffinity ClientIP (-m recent) ----------------------------------------------------

def test_session_affinity(node1: str) -> None:
    main, name = svc("sticky:http"), "default/sticky:http"
    ips = ("10.244.0.10", "10.244.1.10", "10.244.1.11")
    seps = [sep("sticky:http", f"{ip}:8080") for ip in ips]
    rules = chain(node1, "nat", main)
    assert rules[1:4] == [
        f'-A {main} -m comment --comment "{name} -> {ip}:8080" -m recent --name {s} --rcheck '
        f"--seconds 600 --reap -j {s}" for ip, s in zip(ips, seps, strict=True)]
    assert "--probability 0.3333333333" in rules[4] and rules[6].endswith(f"-j {seps[2]}")
    assert chain(node1, "nat", seps[0])[1] == (
        f"-A {seps[0]} -m comment --comment {name} -m recent --name {seps[0]} --set "
        "-m tcp -p tcp -j DNAT --to-destination 10.244.0.10:8080")


# -- headless and ExternalName: no rules ----------------------------------------------------

def test_headless_and_external_name_are_skipped(node1: str) -> None:
    assert "default/headless" not in node1 and "default/extname" not in node1


# -- the two outputs and the options ---------------------------------------------------------

def test_restore_data_is_node_rules_without_built_in_chains(model: ClusterModel,
                                                            node1: str) -> None:
    data = restore_data(model, "node-1")
    builtin = {"INPUT", "FORWARD", "OUTPUT", "PREROUTING", "POSTROUTING"}
    kept = [line for line in node1.splitlines()
            if not (line.startswith(":") and line.split()[1] == "ACCEPT")
            and not (line.startswith("-A ") and line.split()[1] in builtin)]
    assert data.splitlines() == kept
    assert "--noflush" not in data and not data.startswith("#")


def test_options(model: ClusterModel) -> None:
    cfg = ProxyConfig(masquerade_all=True, localhost_node_ports=False, random_fully=False,
                      conntrack_tcp_liberal=True, masquerade_bit=10)
    text = restore_data(model, "node-1", cfg)
    web = svc("web:http")
    assert chain(text, "nat", web)[0].endswith("--dport 80 -j KUBE-MARK-MASQ")
    assert chain(text, "nat", "KUBE-SERVICES")[-1] == LAST.replace(
        "LOCAL -j", "LOCAL ! -d 127.0.0.0/8 -j")
    assert "KUBE-FIREWALL" not in text and "INVALID" not in text
    assert chain(text, "nat", "KUBE-POSTROUTING")[2].endswith("-j MASQUERADE")
    assert chain(text, "nat", "KUBE-MARK-MASQ") == [
        "-A KUBE-MARK-MASQ -j MARK --or-mark 0x00000400"]
    none = restore_data(model, "node-1", ProxyConfig(detect_local=False))
    assert len(chain(none, "nat", web)) == 3  # no off-cluster masquerade rule
    assert "pod traffic for" not in none
    other = restore_data(model, "node-1", ProxyConfig(cluster_cidr=IPv4Network("10.0.0.0/8")))
    default = restore_data(model, "node-1")
    assert other.count("! -s 10.0.0.0/8") == default.count("! -s 10.244.0.0/16") > 0


def test_unknown_node_is_an_error(model: ClusterModel) -> None:
    with pytest.raises(KeyError, match="no node"):
        node_rules(model, "node-9")


# -- the output loads: pktsim's own parser, and the real iptables-restore --------------------

def test_pktsim_netfilter_parses_and_validates_it(node1: str, node2: str) -> None:
    netfilter_save = pytest.importorskip("pktsim.netfilter.save")
    for text in (node1, node2):
        tables = netfilter_save.parse(text)
        assert set(tables) == {"filter", "nat"}
        for ours in parse_tables(text):
            table = tables[ours.name]
            table.validate()
            assert len(list(table.rules())) == sum(len(r) for r in ours.rules.values())


def _kernel_ready() -> str:
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    for tool in ("ip", "iptables-restore", "iptables-save"):
        if shutil.which(tool) is None:
            return f"needs {tool}"
    return ""


@pytest.fixture(scope="module")
def netns() -> Iterator[str]:
    why = _kernel_ready()
    if why:
        pytest.skip(why)
    name = f"pktkp-{os.getpid()}-{secrets.token_hex(3)}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if made.returncode:
        pytest.skip(f"cannot create a network namespace: {made.stderr.strip()}")
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], capture_output=True)


def _run(ns: str, *args: str, text_in: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", ns, *args], input=text_in,
                          capture_output=True, text=True)


@pytest.mark.kernel
def test_iptables_restore_accepts_it(netns: str, model: ClusterModel, node1: str) -> None:
    tested = _run(netns, "iptables-restore", "--test", text_in=node1)
    assert tested.returncode == 0, tested.stderr
    loaded = _run(netns, "iptables-restore", text_in=node1)
    assert loaded.returncode == 0, loaded.stderr
    saved = _run(netns, "iptables-save").stdout
    # the kernel keeps 2^31ths (iptables libxt_statistic.c print_match); the marks as --set-xmark
    assert "--probability 0.33333333349" in saved and "--probability 0.50000000000" in saved
    assert "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000" in saved
    assert "-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0" in saved
    # kube-proxy's own way: the jump rules already there, its text with --noflush
    again = _run(netns, "iptables-restore", "--noflush", "--counters",
                 text_in=restore_data(model, "node-2"))
    assert again.returncode == 0, again.stderr
    saved = _run(netns, "iptables-save").stdout
    assert saved.count("kubernetes service portals") == 4  # the jump rules were kept
    assert f":{svc('itp:http', prefix=SVL)} - [0:0]" in saved  # node-2's local endpoint
