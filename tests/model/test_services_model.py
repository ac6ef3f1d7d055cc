"""Services as the API server and the EndpointSlice controller would leave them."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

import pktsim

BASE = """
apiVersion: v1
kind: Pod
metadata: {name: web-1, labels: {app: web}}
spec: {containers: [{name: c, ports: [{containerPort: 8443, name: https}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web-2, labels: {app: web}}
spec: {containers: [{name: c, ports: [{containerPort: 9443, name: https}]}]}
status: {conditions: [{type: Ready, status: "False"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: other, labels: {app: other}}
spec: {containers: [{name: c}]}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: https, port: 443, targetPort: https}, {name: raw, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: np}
spec: {type: NodePort, selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: lb}
spec: {type: LoadBalancer, selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: dns, namespace: kube-system}
spec: {ports: [{port: 53, protocol: UDP}]}
---
apiVersion: v1
kind: Service
metadata: {name: kube-dns, namespace: kube-system}
spec: {ports: [{port: 53, protocol: UDP}]}
"""


def test_cluster_ips_first_tenth_and_upper_band() -> None:
    model = pktsim.load(BASE).model
    ips = {k: s.cluster_ip for k, s in model.services.items()}
    assert ips["default/kubernetes"] == IPv4Address("10.96.0.1")
    assert ips["kube-system/kube-dns"] == IPv4Address("10.96.0.10")
    net = IPv4Network("10.96.0.0/12")
    for key in ("default/web", "default/np", "default/lb", "kube-system/dns"):
        ip = ips[key]
        assert ip is not None and ip in net
        assert int(ip) - int(net.network_address) >= 256  # the static band is left alone
    assert len(set(ips.values())) == len(ips)
    assert pktsim.load(BASE).model.services["default/web"].cluster_ip == ips["default/web"]
    other_seed = pktsim.load(BASE, seed=3).model.services["default/web"].cluster_ip
    assert other_seed != ips["default/web"]


def test_node_ports_and_load_balancer_addresses() -> None:
    model = pktsim.load(BASE).model
    np_port = model.services["default/np"].ports[0].node_port
    lb = model.services["default/lb"]
    assert np_port is not None and 30000 <= np_port <= 32767
    assert lb.ports[0].node_port is not None and lb.ports[0].node_port != np_port
    assert lb.load_balancer_ip == IPv4Address("198.51.100.1")
    assert model.services["default/web"].ports[0].node_port is None


def test_endpoints_follow_selector_readiness_and_named_target_ports() -> None:
    model = pktsim.load(BASE).model
    web = model.services["default/web"]
    https = {(str(e.ip), e.port, e.ready) for e in web.ports[0].endpoints}
    ip1, ip2 = (str(model.pods[f"default/web-{i}"].ip) for i in (1, 2))
    assert https == {(ip1, 8443, True), (ip2, 9443, False)}  # named port per pod
    assert {e.port for e in web.ports[1].endpoints} == {8080}
    assert not model.services["kube-system/dns"].ports[0].endpoints  # no selector


@pytest.mark.parametrize("ip", ["10.97.0.1", "192.168.0.1"])
def test_given_cluster_ip_wins_or_is_rejected(ip: str) -> None:
    text = BASE.replace("spec:\n  selector: {app: web}", f"spec:\n  clusterIP: {ip}\n"
                        "  selector: {app: web}")
    if ip.startswith("10."):
        assert pktsim.load(text).model.services["default/web"].cluster_ip == IPv4Address(ip)
    else:
        with pytest.raises(pktsim.ScenarioError, match="outside the service CIDR"):
            pktsim.load(text)


def test_endpoint_slices_from_the_stream_win() -> None:
    text = BASE + """
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-abc, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints: [{addresses: [10.244.9.9], conditions: {ready: true}, nodeName: node-2}]
ports: [{name: https, port: 7443, protocol: TCP}]
"""
    web = pktsim.load(text).model.services["default/web"]
    assert [(str(e.ip), e.port, e.node) for e in web.ports[0].endpoints] == [
        ("10.244.9.9", 7443, "node-2")]
    assert web.ports[1].endpoints == []
