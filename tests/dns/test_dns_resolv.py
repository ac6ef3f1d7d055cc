"""A pod's /etc/resolv.conf as kubelet composes it (kubernetes ``pkg/kubelet/network/dns/dns.go``)
and containerd writes it."""

from __future__ import annotations

import pytest

import pktsim
from pktsim.dns import node_resolv_conf, resolv_conf
from pktsim.dns.resolv import merge_options, parse_resolv_conf
from pktsim.model.objects import Pod

NODE = node_resolv_conf("203.0.113.53")


def pod(**kw: object) -> Pod:
    return Pod(str(kw.pop("namespace", "default")), "p", [], **kw)  # type: ignore[arg-type]


def test_node_resolv_conf() -> None:
    assert NODE == "nameserver 203.0.113.53\n"


def test_cluster_first() -> None:
    # generateSearchesForDNSClusterFirst and defaultDNSOptions: a pod in ns shop, kubeadm defaults
    conf = resolv_conf(pod(namespace="shop"), NODE, "10.96.0.10", "cluster.local")
    assert conf.render() == ("search shop.svc.cluster.local svc.cluster.local cluster.local\n"
                             "nameserver 10.96.0.10\n"
                             "options ndots:5\n")
    assert conf.warnings == []


def test_cluster_first_appends_host_searches_and_drops_host_options() -> None:
    node = ("# generated\nnameserver 192.0.2.1\nnameserver 192.0.2.2\n"
            "search corp.example. cluster.local lab.example\noptions timeout:2 rotate\n")
    conf = resolv_conf(pod(), node, "10.96.0.10", "cluster.local")
    assert conf.render() == ("search default.svc.cluster.local svc.cluster.local "
                             "cluster.local corp.example lab.example\n"
                             "nameserver 10.96.0.10\n"
                             "options ndots:5\n")


def test_host_network_falls_back_to_default() -> None:
    # getPodDNSType: hostNetwork + ClusterFirst falls back to Default, the node's nameservers
    conf = resolv_conf(pod(host_network=True), NODE, "10.96.0.10", "cluster.local")
    assert conf.render() == "nameserver 203.0.113.53\n"
    conf = resolv_conf(pod(host_network=True, dns_policy="ClusterFirstWithHostNet"), NODE,
                       "10.96.0.10", "cluster.local")
    assert conf.nameservers == ["10.96.0.10"]
    assert conf.searches[0] == "default.svc.cluster.local"


def test_default_policy_copies_the_node_file() -> None:
    node = "nameserver 192.0.2.1\nsearch a.example\nsearch b.example.\noptions ndots:2\n"
    conf = resolv_conf(pod(dns_policy="Default"), node, "10.96.0.10", "cluster.local")
    # the last search/options lines win; containerd rewrites the file in its order
    assert conf.render() == "search b.example\nnameserver 192.0.2.1\noptions ndots:2\n"


def test_missing_cluster_dns_falls_back_to_default() -> None:
    conf = resolv_conf(pod(), NODE, None, "cluster.local")
    assert conf.render() == "nameserver 203.0.113.53\n"
    assert conf.warnings and conf.warnings[0].startswith("MissingClusterDNS")


def test_policy_none_uses_only_dns_config() -> None:
    # the example of the Kubernetes docs ("Pod's DNS Config")
    config = {"nameservers": ["192.0.2.1"],
              "searches": ["ns1.svc.cluster-domain.example", "my.dns.search.suffix"],
              "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}
    conf = resolv_conf(pod(dns_policy="None", dns_config=config), NODE, "10.96.0.10",
                       "cluster.local")
    assert conf.render() == ("search ns1.svc.cluster-domain.example my.dns.search.suffix\n"
                             "nameserver 192.0.2.1\n"
                             "options ndots:2 edns0\n")


def test_dns_config_merges() -> None:
    # appendDNSConfig, mergeDNSOptions: options ndots:2 on ClusterFirst -> the only ndots entry
    config = {"nameservers": ["10.96.0.10", "192.0.2.1", "192.0.2.2", "192.0.2.3"],
              "searches": ["svc.cluster.local", "extra.example"],
              "options": [{"name": "ndots", "value": "2"}, {"name": "single-request-reopen"}]}
    conf = resolv_conf(pod(dns_config=config), NODE, "10.96.0.10", "cluster.local")
    assert conf.nameservers == ["10.96.0.10", "192.0.2.1", "192.0.2.2"]  # dedup, then max 3
    assert conf.searches == ["default.svc.cluster.local", "svc.cluster.local", "cluster.local",
                             "extra.example"]
    assert conf.options == ["ndots:2", "single-request-reopen"]
    assert conf.render().endswith("options ndots:2 single-request-reopen\n")
    assert any(w.startswith("DNSConfigForming: Nameserver limits") for w in conf.warnings)


def test_merge_options_pod_wins() -> None:
    assert merge_options(["ndots:5", "rotate", "timeout:2"],
                         [{"name": "timeout", "value": "1"}, {"name": "rotate"}]) == \
        ["ndots:5", "rotate", "timeout:1"]


def test_search_limits() -> None:
    long = "x" * 251 + ".io"  # 254 characters: over DNS1123SubdomainMaxLength, dropped
    many = [f"d{i}.example" for i in range(40)]
    conf = resolv_conf(pod(dns_config={"searches": [long, *many]}), NODE, "10.96.0.10",
                       "cluster.local")
    assert long not in conf.searches
    assert len(conf.searches) == 31  # the first 32 kept, then the long one dropped
    assert conf.searches[3] == "d0.example"
    assert any(w.startswith("DNSConfigForming: Search Line") for w in conf.warnings)


def test_search_line_character_limit() -> None:
    domains = [f"{'a' * 60}.{i:02d}.example" for i in range(29)]  # 29 x 72 chars
    conf = resolv_conf(pod(dns_config={"searches": domains}), NODE, "10.96.0.10",
                       "cluster.local")
    assert len(" ".join(conf.searches)) <= 2048
    assert len(" ".join([*conf.searches, domains[len(conf.searches) - 3]])) > 2048
    assert conf.searches[:3] == ["default.svc.cluster.local", "svc.cluster.local",
                                 "cluster.local"]


def test_parse_resolv_conf() -> None:
    conf = parse_resolv_conf("nameserver 1.1.1.1\n  # x\nnameserver\nsearch a. b\n")
    assert (conf.nameservers, conf.searches) == (["1.1.1.1"], ["a", "b"])


@pytest.mark.parametrize(("policy", "host_network", "server"), [
    ("ClusterFirst", False, "10.96.0.10"),
    ("ClusterFirst", True, "203.0.113.53"),
    ("ClusterFirstWithHostNet", True, "10.96.0.10"),
    ("Default", False, "203.0.113.53"),
])
def test_policies_from_a_scenario(policy: str, host_network: bool, server: str) -> None:
    text = f"""
apiVersion: v1
kind: Pod
metadata: {{name: p}}
spec: {{dnsPolicy: {policy}, hostNetwork: {str(host_network).lower()}, containers: [{{name: c}}]}}
"""
    info = pktsim.load(text).model.pods["default/p"]
    conf = resolv_conf(info.pod, NODE, "10.96.0.10", "cluster.local")
    assert f"nameserver {server}\n" in conf.render()
    assert conf.render().startswith("search ") == (server == "10.96.0.10")
