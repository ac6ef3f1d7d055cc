"""The IPv6 half of the address plan (pktsim.model.ipv6): nodes' /64s and InternalIPs, pods'
host-local addresses, what manifests give and the conflicts they can make, pods made during
a run, and an IPv6-primary cluster allocated with the scenario's refusal bypassed."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import pytest

from pktsim.errors import ScenarioError, ScenarioErrors
from pktsim.model.cluster import ClusterModel, allocate
from pktsim.model.ipv6 import next_host_local6
from pktsim.model.objects import ClusterConfig, Container, Pod, Scenario
from pktsim.scenario import load_scenario

DUAL = "apiVersion: pktsim/v1alpha1\nkind: Cluster\nspec: {ipFamilies: [IPv4, IPv6]}\n---\n"
POD = "apiVersion: v1\nkind: Pod\nmetadata: {name: %s}\nspec: {nodeName: %s, containers: " \
    "[{name: c}]%s}\n%s---\n"


def _model(text: str) -> ClusterModel:
    return allocate(load_scenario([("v6.yaml", text)], addons=False))


def _problems(text: str) -> list[str]:
    with pytest.raises((ScenarioError, ScenarioErrors)) as raised:
        _model(text)
    found = raised.value
    return [e.line() for e in (found.errors if isinstance(found, ScenarioErrors) else [found])]


def _pods(*specs: tuple[str, str]) -> str:
    return "".join(POD % (name, node, "", "") for name, node in specs)


def test_nodes_get_a_64_each_and_kind_network_addresses() -> None:
    model = _model(DUAL)
    nodes = model.node_list()
    assert [(str(n.pod_cidr6), str(n.ip6), str(n.gateway6)) for n in nodes] == [
        ("fd00:10:244::/64", "fc00:f853:ccd:e793::2", "fd00:10:244::1/64"),
        ("fd00:10:244:1::/64", "fc00:f853:ccd:e793::3", "fd00:10:244:1::1/64")]
    assert [str(n.ip) for n in nodes] == ["172.18.0.2", "172.18.0.3"]  # IPv4 as before


def test_pods_get_the_next_ipv6_address_as_host_local_does() -> None:
    model = _model(DUAL + _pods(("a", "node-1"), ("b", "node-1"), ("c", "node-2")))
    assert {k: (str(p.ip), str(p.ip6)) for k, p in model.pods.items()} == {
        "default/a": ("10.244.0.2", "fd00:10:244::2"),
        "default/b": ("10.244.0.3", "fd00:10:244::3"),
        "default/c": ("10.244.1.2", "fd00:10:244:1::2")}


def test_an_ipv4_cluster_has_no_ipv6_anywhere() -> None:
    model = _model(_pods(("a", "node-1")))
    assert model.pods["default/a"].ip6 is None
    assert all(n.ip6 is None and n.pod_cidr6 is None and n.gateway6 is None
               for n in model.node_list())


def test_manifest_addresses_win_and_are_reserved_first() -> None:
    node = "apiVersion: v1\nkind: Node\nmetadata: {name: w}\nspec: {podCIDRs: [10.244.9.0/24, " \
        "'fd00:10:244:9::/64']}\nstatus: {addresses: [{type: InternalIP, address: " \
        "172.18.0.9}, {type: InternalIP, address: 'fc00:f853:ccd:e793::9'}]}\n---\n"
    given = POD % ("a", "w", "", "status: {podIPs: [{ip: 10.244.9.2}, {ip: "
                   "'fd00:10:244:9::2'}]}\n")
    model = _model(DUAL + node + POD % ("z", "w", "", "") + given)
    info = model.nodes["w"]
    assert (str(info.pod_cidr6), str(info.ip6)) == ("fd00:10:244:9::/64",
                                                    "fc00:f853:ccd:e793::9")
    assert str(model.pods["default/a"].ip6) == "fd00:10:244:9::2"
    assert str(model.pods["default/z"].ip6) == "fd00:10:244:9::3"  # ::2 was reserved


def test_a_pod_whose_status_has_no_ipv6_stays_single_stack() -> None:
    model = _model(DUAL + POD % ("a", "node-1", "", "status: {podIPs: [{ip: 10.244.0.9}]}\n"))
    assert model.pods["default/a"].ip6 is None


def test_a_host_network_pod_has_its_nodes_ipv6_address() -> None:
    model = _model(DUAL + POD % ("h", "node-2", ", hostNetwork: true", ""))
    assert model.pods["default/h"].ip6 == model.nodes["node-2"].ip6


@pytest.mark.parametrize(("status", "line"), [
    ("status: {podIPs: [{ip: 10.244.0.9}, {ip: 'fd00:10:244:5::2'}]}\n", "status.podIPs: "
     "'fd00:10:244:5::2' is outside node node-1's IPv6 pod CIDR fd00:10:244::/64; valid: an "
     "address from fd00:10:244::2 to fd00:10:244:0:ffff:ffff:ffff:ffff"),
    ("status: {podIPs: [{ip: 10.244.0.9}, {ip: 'fd00:10:244::1'}]}\n", "status.podIPs: "
     "'fd00:10:244::1' is the gateway (the bridge's address) of node node-1's pod CIDR "
     "fd00:10:244::/64; valid: an address from fd00:10:244::2 to "
     "fd00:10:244:0:ffff:ffff:ffff:ffff"),
])
def test_pod_ipv6_conflicts(status: str, line: str) -> None:
    assert _problems(DUAL + POD % ("a", "node-1", "", status)) == [
        f"v6.yaml: document 2 (Pod default/a): {line}"]


def test_two_pods_with_one_ipv6_address_are_refused() -> None:
    status = "status: {podIPs: [{ip: 10.244.0.%d}, {ip: 'fd00:10:244::9'}]}\n"
    text = DUAL + POD % ("a", "node-1", "", status % 5) + POD % ("b", "node-1", "", status % 6)
    assert _problems(text) == [
        "v6.yaml: document 3 (Pod default/b): status.podIPs: 'fd00:10:244::9' is also the "
        "address of pod default/a (v6.yaml: document 2 (Pod default/a)); valid: a distinct "
        "podIP per pod"]


NODE = "apiVersion: v1\nkind: Node\nmetadata: {name: %s}\nspec: {podCIDRs: [10.244.%d.0/24, " \
    "'%s']}\n---\n"


@pytest.mark.parametrize(("text", "line"), [
    (NODE % ("w", 1, "fd00:99::/64"), "document 2 (Node w): spec.podCIDRs: 'fd00:99::/64' lies "
     "outside the cluster's IPv6 podCIDR fd00:10:244::/56; valid: a subnet of "
     "fd00:10:244::/56"),
    (NODE % ("w", 1, "fd00:10:244:4::/64") + NODE % ("x", 2, "fd00:10:244:4::/80"),
     "document 3 (Node x): spec.podCIDRs: 'fd00:10:244:4::/80' overlaps node w's "
     "fd00:10:244:4::/64; valid: non-overlapping pod CIDRs"),
])
def test_node_ipv6_conflicts(text: str, line: str) -> None:
    assert _problems(DUAL + text) == [f"v6.yaml: {line}"]


def test_generated_cidrs_keep_clear_of_given_ones() -> None:
    model = _model(DUAL + NODE % ("a", 1, "fd00:10:244::/64") + "apiVersion: v1\nkind: Node\n"
                   "metadata: {name: b}\n---\n")
    assert str(model.nodes["b"].pod_cidr6) == "fd00:10:244:1::/64"


def test_more_nodes_than_64s_is_one_error_at_the_cluster() -> None:
    text = "apiVersion: pktsim/v1alpha1\nkind: Cluster\nspec: {nodes: 3, podCIDR: " \
        "[10.244.0.0/16, 'fd00:10:244::/63']}\n"
    assert _problems(text) == [
        "v6.yaml: document 1 (Cluster): spec.podCIDR: 'fd00:10:244::/63' has 2 /64s for "
        "nodes, not the 3 nodes of the scenario; valid: a larger IPv6 podCIDR (a /56 holds "
        "256 nodes) or fewer nodes"]


def test_a_pod_made_during_the_run_takes_the_next_ipv6_address() -> None:
    from pktsim.control.kubelet import allocate as kubelet_allocate

    model = _model(DUAL + _pods(("a", "node-1"), ("b", "node-1")))
    new = Pod("default", "late", [Container("c")], node_name="node-1")
    info = kubelet_allocate(model, new, "node-1")
    assert info is not None and (str(info.ip), str(info.ip6)) == ("10.244.0.4",
                                                                  "fd00:10:244::4")
    model.pods[info.key] = info
    del model.pods["default/a"]  # ::2 freed: host-local goes on after the last reserved
    assert next_host_local6(model, "node-1") == IPv6Address("fd00:10:244::5")


def test_an_ipv6_primary_cluster_allocates_the_same_plan() -> None:
    """The scenario refuses [IPv6, IPv4] for now; the allocator needs no change to run it."""
    cfg = ClusterConfig(ip_families=("IPv6", "IPv4"))
    pods = [Pod("default", name, [Container("c")], node_name="node-1") for name in "ab"]
    model = allocate(Scenario(config=cfg, pods=pods))
    assert [str(p.ip6) for p in model.pods.values()] == ["fd00:10:244::2", "fd00:10:244::3"]
    assert [p.ip for p in model.pods.values()] == [IPv4Address("10.244.0.2"),
                                                  IPv4Address("10.244.0.3")]
    assert str(model.nodes["node-2"].ip6) == "fc00:f853:ccd:e793::3"
