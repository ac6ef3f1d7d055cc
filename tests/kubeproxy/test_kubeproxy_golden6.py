"""kube-proxy's IPv6 proxier against upstream's own expected output (golden data).

The expected text is pasted from kubernetes/kubernetes ``pkg/proxy/iptables/
proxier_test.go`` (the v1.27/v1.28-era copy the IPv4 ``TestDisableLocalhostNodePortsIPv4``
golden test comes from): ``TestEnableLocalhostNodePortsIPv6`` and
``TestDisableLocalhostNodePortsIPv6`` build ``NewFakeProxier(iptablestest.NewIPv6Fake())``
with the no-op local detector, and expect the same text whether ``localhostNodePorts`` is
on or off — localhost node ports never exist over IPv6.  Compared after
``sortIPTablesRules`` (``pktsim.kubeproxy.normalize.sort_rules``), as upstream does and as
``test_kubeproxy_golden`` does for IPv4.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, IPv6Network

import pytest

from pktsim.kubeproxy import ProxyConfig, node_rules, node_rules6, restore_data
from pktsim.kubeproxy.normalize import sort_rules
from pktsim.model.cluster import ClusterModel
from pktsim.model.objects import Service, ServicePort
from pktsim.model.services import EndpointAddr, PortInfo, ServiceInfo
from tests.kubeproxy.test_kubeproxy_golden import fake_cluster

# TestEnableLocalhostNodePortsIPv6 and TestDisableLocalhostNodePortsIPv6: `expected`, verbatim
LOCALHOST_NODEPORTS_IPV6 = """\
*filter
:KUBE-NODEPORTS - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-FORWARD - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
COMMIT
*nat
:KUBE-NODEPORTS - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-EXT-XPGD46QRK7WJZT7O - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-SEP-LIGRYQQLSZN4UWQ5 - [0:0]
:KUBE-SEP-XJJ5QXWGJG344QDZ - [0:0]
:KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]
:KUBE-SVL-XPGD46QRK7WJZT7O - [0:0]
-A KUBE-NODEPORTS -m comment --comment ns1/svc1:p80 -m tcp -p tcp --dport 30001 -j KUBE-EXT-XPGD46QRK7WJZT7O
-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d fd00:ab34::20 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL ! -d ::1/128 -j KUBE-NODEPORTS
-A KUBE-EXT-XPGD46QRK7WJZT7O -m comment --comment "masquerade LOCAL traffic for ns1/svc1:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ
-A KUBE-EXT-XPGD46QRK7WJZT7O -m comment --comment "route LOCAL traffic for ns1/svc1:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-SVC-XPGD46QRK7WJZT7O
-A KUBE-EXT-XPGD46QRK7WJZT7O -j KUBE-SVL-XPGD46QRK7WJZT7O
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE
-A KUBE-SEP-LIGRYQQLSZN4UWQ5 -m comment --comment ns1/svc1:p80 -s ff06::c1 -j KUBE-MARK-MASQ
-A KUBE-SEP-LIGRYQQLSZN4UWQ5 -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination [ff06::c1]:80
-A KUBE-SEP-XJJ5QXWGJG344QDZ -m comment --comment ns1/svc1:p80 -s ff06::c2 -j KUBE-MARK-MASQ
-A KUBE-SEP-XJJ5QXWGJG344QDZ -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination [ff06::c2]:80
-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> [ff06::c1]:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-LIGRYQQLSZN4UWQ5
-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> [ff06::c2]:80" -j KUBE-SEP-XJJ5QXWGJG344QDZ
-A KUBE-SVL-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> [ff06::c2]:80" -j KUBE-SEP-XJJ5QXWGJG344QDZ
COMMIT
"""  # noqa: E501


def ep6(ip: str, node: str = "") -> EndpointAddr[IPv6Address]:
    return EndpointAddr(IPv6Address(ip), 80, node=node)


def ipv6_cluster() -> ClusterModel:
    """The Service and IPv6 EndpointSlice of the two upstream tests: NodePort 30001 with
    ``externalTrafficPolicy: Local``, one endpoint without a node, one on test-node."""
    model = fake_cluster()
    model.config.ip_families = ("IPv6",)
    model.nodes["test-node"].ip6 = IPv6Address("2001:db8::1")
    svc = Service("ns1", "svc1", type="NodePort", cluster_ip6="fd00:ab34::20",
                  ports=[ServicePort(80, "TCP", "p80", None, 30001)],
                  external_traffic_policy="Local", ip_families=("IPv6",))
    port = PortInfo(svc.ports[0], 30001, [], [ep6("ff06::c1"), ep6("ff06::c2", "test-node")])
    model.services[svc.key] = ServiceInfo(svc, None, [port], families=("IPv6",),
                                          cluster_ip6=IPv6Address("fd00:ab34::20"))
    return model


@pytest.mark.parametrize("localhost_node_ports", [True, False],
                         ids=["TestEnableLocalhostNodePortsIPv6",
                              "TestDisableLocalhostNodePortsIPv6"])
def test_localhost_node_ports_ipv6_match_upstream(localhost_node_ports: bool) -> None:
    cfg = ProxyConfig(masquerade_mark="0x4000", random_fully=False, detect_local=False,
                      localhost_node_ports=localhost_node_ports)
    ours = restore_data(ipv6_cluster(), "test-node", cfg, family="IPv6")
    assert sort_rules(ours) == LOCALHOST_NODEPORTS_IPV6


def test_sorting_the_expected_ipv6_text_changes_nothing() -> None:
    assert sort_rules(LOCALHOST_NODEPORTS_IPV6) == LOCALHOST_NODEPORTS_IPV6


def test_ipv4_proxier_skips_an_ipv6_only_service() -> None:
    """The IPv4 proxier writes only its base rules for a cluster of IPv6 Services."""
    model = ipv6_cluster()
    assert "svc1" not in restore_data(model, "test-node")
    empty = fake_cluster()
    assert restore_data(model, "test-node") == restore_data(empty, "test-node")


def test_ipv6_document_has_no_kubelet_firewall_and_the_ipv6_detector() -> None:
    """node_rules6: the IPv6 pod CIDR in the masquerade rule, no KUBE-FIREWALL (kubelet
    writes it for IPv4 only), no localhost node ports; the IPv4 document keeps them."""
    model = ipv6_cluster()
    model.config.pod_cidr6 = IPv6Network("fd00:10:244::/56")
    text = node_rules6(model, "test-node")
    assert "KUBE-FIREWALL" not in text and "127.0.0.0/8" not in text
    assert ('-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" '
            "-m tcp -p tcp -d fd00:ab34::20 --dport 80 ! -s fd00:10:244::/56 -j KUBE-MARK-MASQ"
            in text.splitlines())
    assert ('-A KUBE-EXT-XPGD46QRK7WJZT7O -m comment --comment "pod traffic for '
            'ns1/svc1:p80 external destinations" -s fd00:10:244::/56 '
            "-j KUBE-SVC-XPGD46QRK7WJZT7O" in text.splitlines())
    assert "-A INPUT -j KUBE-FIREWALL" in node_rules(model, "test-node")


def test_ipv6_document_without_services_is_the_base_chains() -> None:
    """No IPv6 Service: kube-proxy's base chains and rules, as the IPv6 proxier writes
    them (its KUBE-NODEPORTS jump leaves out ::1)."""
    model = fake_cluster()
    model.nodes["test-node"].ip6 = IPv6Address("2001:db8::1")
    text = node_rules6(model, "test-node")
    assert "KUBE-SVC-" not in text and "KUBE-SEP-" not in text
    assert text.splitlines()[:4] == ["*filter", ":INPUT ACCEPT [0:0]",
                                     ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"]
    assert ('-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: '
            'this must be the last rule in this chain" -m addrtype --dst-type LOCAL '
            "! -d ::1/128 -j KUBE-NODEPORTS") in text.splitlines()
    assert text.endswith("COMMIT\n") and text.count("COMMIT") == 2


def test_dual_stack_service_has_both_proxiers_with_shared_hashes() -> None:
    """A dual-stack Service: the same KUBE-SVC chain name in both families (the hash is
    of the service port name and protocol), per-family KUBE-SEP names (of ``[ip]:port``)."""
    model = fake_cluster()
    model.config.ip_families = ("IPv4", "IPv6")
    model.nodes["test-node"].ip6 = IPv6Address("2001:db8::1")
    svc = Service("ns1", "svc1", cluster_ip="172.30.0.41", cluster_ip6="fd00:ab34::20",
                  ports=[ServicePort(80, "TCP", "p80")], ip_families=("IPv4", "IPv6"))
    port = PortInfo(svc.ports[0], None, [EndpointAddr(IPv4Address("10.180.0.1"), 80)],
                    [ep6("ff06::c1")])
    model.services[svc.key] = ServiceInfo(svc, IPv4Address("172.30.0.41"), [port],
                                          families=("IPv4", "IPv6"),
                                          cluster_ip6=IPv6Address("fd00:ab34::20"))
    v4, v6 = restore_data(model, "test-node"), restore_data(model, "test-node", family="IPv6")
    assert "KUBE-SVC-XPGD46QRK7WJZT7O" in v4 and "KUBE-SVC-XPGD46QRK7WJZT7O" in v6
    assert "KUBE-SEP-SXIVWICOYRO3J4NJ" in v4 and "KUBE-SEP-LIGRYQQLSZN4UWQ5" in v6
    assert "ff06" not in v4 and "10.180" not in v6
