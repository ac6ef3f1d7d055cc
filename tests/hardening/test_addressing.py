"""Addresses Kubernetes would never produce are exit 2 with both sides of the conflict
named, and every allocation error names file and document (issue 16)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pktsim.cli import main

CLUSTER = "apiVersion: pktsim/v1alpha1\nkind: Cluster\nspec: {%s}\n---\n"
POD = ("apiVersion: v1\nkind: Pod\nmetadata: {name: %s}\nspec: {nodeName: node-1, "
       "containers: [{name: c}]}\nstatus: {podIP: %s}\n---\n")
NODE = ("apiVersion: v1\nkind: Node\nmetadata: {name: %s}\n"
        "status: {addresses: [{type: InternalIP, address: %s}]}\n---\n")
SERVICE = ("apiVersion: v1\nkind: Service\nmetadata: {name: s}\n"
           "spec: {clusterIP: %s, ports: [{port: 80}]}\n")


def problems(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str) -> list[str]:
    (tmp_path / "in.yaml").write_text(text)
    assert main(["check", str(tmp_path / "in.yaml")]) == 2
    return [line.removeprefix(f"pktsim: {tmp_path / 'in.yaml'}: ")
            for line in capsys.readouterr().err.splitlines()]


def test_two_pods_with_one_pod_ip_name_each_other(tmp_path, capsys):
    found = problems(tmp_path, capsys, POD % ("a", "10.244.0.5") + POD % ("b", "10.244.0.5"))
    assert found == ["document 2 (Pod default/b): status.podIP: '10.244.0.5' is also the "
                     f"address of pod default/a ({tmp_path / 'in.yaml'}: document 1 (Pod "
                     "default/a)); valid: a distinct podIP per pod"]


@pytest.mark.parametrize("ip, what", [
    ("10.244.0.1", "the gateway (the bridge's address)"),
    ("10.244.0.0", "the network address"),
    ("10.244.0.255", "the broadcast address"),
])
def test_a_pod_ip_host_local_never_gives(tmp_path, capsys, ip, what):
    found = problems(tmp_path, capsys, POD % ("a", ip))
    assert found == [f"document 1 (Pod default/a): status.podIP: '{ip}' is {what} of node "
                     "node-1's podCIDR 10.244.0.0/24; valid: an address from 10.244.0.2 to "
                     "10.244.0.254"]


def test_more_nodes_than_the_node_cidr_holds(tmp_path, capsys):
    found = problems(tmp_path, capsys, CLUSTER % "nodes: 6, nodeCIDR: 172.18.0.0/29")
    assert found == ["document 1 (Cluster): spec.nodeCIDR: '172.18.0.0/29' holds 5 node "
                     "addresses, not the 6 nodes of the scenario; valid: a larger nodeCIDR "
                     "or fewer nodes"]


def test_a_pod_cidr_too_small_is_one_line_at_the_cluster(tmp_path, capsys):
    found = problems(tmp_path, capsys, CLUSTER % "nodes: 3, podCIDR: 10.244.0.0/23")
    assert found == ["document 1 (Cluster): spec.podCIDR: '10.244.0.0/23' has 2 /24s for "
                     "nodes, not the 3 nodes of the scenario; valid: a larger podCIDR (a /16 "
                     "holds 256 nodes) or fewer nodes"]


@pytest.mark.parametrize("ip, says", [
    ("10.96.0.10", "is kube-dns's ClusterIP (the 10th address of spec.serviceCIDR "
                   "10.96.0.0/12, pktsim's defaults)"),
    ("10.100.0.7", "lies inside spec.serviceCIDR 10.96.0.0/12 (pktsim's defaults)"),
])
def test_a_node_address_in_the_service_range(tmp_path, capsys, ip, says):
    found = problems(tmp_path, capsys, NODE % ("n1", ip))
    assert len(found) == 1 and found[0].startswith(
        f"document 1 (Node n1): status.addresses[InternalIP]: '{ip}' {says}")


def test_a_load_balancer_pool_inside_the_pod_cidr(tmp_path, capsys):
    found = problems(tmp_path, capsys, CLUSTER % "loadBalancerCIDR: 10.244.7.0/24")
    assert found == ["document 1 (Cluster): spec.loadBalancerCIDR: '10.244.7.0/24' overlaps "
                     "spec.podCIDR 10.244.0.0/16; valid: a range apart from 10.244.0.0/16"]


def test_a_cluster_ip_clash_with_kube_dns_blames_the_users_service(tmp_path, capsys):
    found = problems(tmp_path, capsys, SERVICE % "10.96.0.10")
    assert found == ["document 1 (Service default/s): spec.clusterIP: '10.96.0.10' is "
                     "already allocated to kube-system/kube-dns (kubeadm gives it the service "
                     "CIDR's 10th address); valid: a free address, or none to allocate one"]


def test_a_cluster_past_what_this_machine_builds_is_refused(tmp_path, capsys):
    """10,000 nodes on every network (vxlan's per-peer entries are shared now)."""
    found = problems(tmp_path, capsys, CLUSTER % "nodes: 10001, network: vxlan")
    assert found == ["document 1 (Cluster): spec.nodes: 10001 is out of range; valid: "
                     "1-10000"]
