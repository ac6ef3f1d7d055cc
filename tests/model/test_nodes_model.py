"""Node addresses and pod CIDRs: what the manifests say wins; conflicts are scenario errors."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

import pktsim

NODES = """
apiVersion: v1
kind: Node
metadata: {{name: b-node}}
spec: {{podCIDR: {cidr_b}}}
status: {{addresses: [{{type: InternalIP, address: {ip_b}}}, {{type: Hostname, address: b}}]}}
---
apiVersion: v1
kind: Node
metadata: {{name: a-node}}
spec: {{podCIDR: {cidr_a}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: p}}
spec: {{nodeName: b-node, containers: [{{name: c}}]}}
"""


def nodes(cidr_a: str = "10.244.7.0/24", cidr_b: str = "10.244.3.0/24",
          ip_b: str = "172.18.0.50") -> str:
    return NODES.format(cidr_a=cidr_a, cidr_b=cidr_b, ip_b=ip_b)


def test_manifest_values_win_and_defaults_fill_the_rest() -> None:
    model = pktsim.load(nodes()).model
    a, b = model.nodes["a-node"], model.nodes["b-node"]
    assert (a.ip, a.pod_cidr) == (IPv4Address("172.18.0.2"), IPv4Network("10.244.7.0/24"))
    assert (b.ip, b.pod_cidr) == (IPv4Address("172.18.0.50"), IPv4Network("10.244.3.0/24"))
    assert model.pods["default/p"].ip == IPv4Address("10.244.3.2")
    routes = pktsim.load(nodes()).build().node_ns["a-node"].routes.dump()
    assert "10.244.3.0/24 via 172.18.0.50 dev eth0" in routes


@pytest.mark.parametrize(("kwargs", "field", "message"), [
    ({"cidr_a": "10.244.3.0/25"}, "spec.podCIDR", "overlaps node a-node's 10.244.3.0/25"),
    ({"cidr_a": "10.245.0.0/24"}, "spec.podCIDR", "outside the cluster podCIDR"),
    ({"cidr_a": "10.244.0.4/31"}, "spec.podCIDR", "too small"),
    ({"ip_b": "172.18.0.2"}, "InternalIP", "is also node"),
])
def test_conflicts_are_scenario_errors(kwargs: dict[str, str], field: str,
                                       message: str) -> None:
    with pytest.raises(pktsim.ScenarioError) as info:
        pktsim.load(nodes(**kwargs))
    line = str(info.value)
    assert field in line and message in line
    assert "document" in line and "Node" in line
