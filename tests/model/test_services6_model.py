"""Services over IPv6 in the model: families resolved as the API server does, IPv6
ClusterIPs from serviceCIDR6, the IPv6 EndpointSlice's endpoints, conflicts; and the IPv6
proxier's rules for them (pktsim.kubeproxy.node_rules6) — the IPv4 half unchanged."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import pytest

from pktsim.errors import ScenarioError, ScenarioErrors
from pktsim.kubeproxy import node_rules, node_rules6
from pktsim.model.cluster import ClusterModel, allocate
from pktsim.model.families import service_families
from pktsim.model.objects import ClusterConfig, Service
from pktsim.scenario import load_scenario

DUAL = "apiVersion: pktsim/v1alpha1\nkind: Cluster\nspec: {ipFamilies: [IPv4, IPv6]}\n---\n"
PODS = "".join(
    f"apiVersion: v1\nkind: Pod\nmetadata: {{name: web-{i}, labels: {{app: web}}}}\n"
    f"spec: {{nodeName: node-{i}, containers: [{{name: c, ports: [{{containerPort: 8080}}]}}]}}"
    "\n---\n" for i in (1, 2))
SVC = ("apiVersion: v1\nkind: Service\nmetadata: {name: %s}\nspec: {selector: {app: web}, "
       "ports: [{port: 80, targetPort: 8080}], %s}\n---\n")


def _model(text: str) -> ClusterModel:
    return allocate(load_scenario([("v6.yaml", text)], addons=False))


def _problems(text: str) -> list[str]:
    with pytest.raises((ScenarioError, ScenarioErrors)) as raised:
        _model(text)
    found = raised.value
    return [e.line() for e in (found.errors if isinstance(found, ScenarioErrors) else [found])]


@pytest.mark.parametrize(("spec", "cluster", "families"), [
    ({}, ("IPv4", "IPv6"), ("IPv4",)),
    ({}, ("IPv6", "IPv4"), ("IPv6",)),
    ({"ip_family_policy": "PreferDualStack"}, ("IPv4", "IPv6"), ("IPv4", "IPv6")),
    ({"ip_family_policy": "PreferDualStack"}, ("IPv4",), ("IPv4",)),
    ({"ip_family_policy": "RequireDualStack"}, ("IPv6", "IPv4"), ("IPv6", "IPv4")),
    ({"ip_family_policy": "PreferDualStack", "ip_families": ("IPv6",)}, ("IPv4", "IPv6"),
     ("IPv6", "IPv4")),
    ({"ip_families": ("IPv6",)}, ("IPv4", "IPv6"), ("IPv6",)),
    ({"ip_families": ("IPv4", "IPv6")}, ("IPv4", "IPv6"), ("IPv4", "IPv6")),
    ({"cluster_ip": "None", "selector": None}, ("IPv4", "IPv6"), ("IPv4", "IPv6")),
    ({"cluster_ip": "None", "selector": None}, ("IPv4",), ("IPv4",)),
    ({"cluster_ip": "None", "selector": {"a": "b"}}, ("IPv4", "IPv6"), ("IPv4",)),
    ({"type": "ExternalName"}, ("IPv4", "IPv6"), ()),
])
def test_families_resolved_as_init_ip_family_fields(spec: dict[str, object],
                                                   cluster: tuple[str, ...],
                                                   families: tuple[str, ...]) -> None:
    svc = Service("default", "s", **({"selector": {"a": "b"}} | spec))  # type: ignore[arg-type]
    assert service_families(svc, ClusterConfig(ip_families=cluster)) == families


def test_dual_stack_service_gets_both_clusterips_and_ipv6_endpoints() -> None:
    model = _model(DUAL + PODS + SVC % ("web", "ipFamilyPolicy: PreferDualStack"))
    info = model.services["default/web"]
    assert info.families == ("IPv4", "IPv6")
    assert isinstance(info.cluster_ip, IPv4Address) and info.cluster_ip in \
        model.config.service_cidr
    assert info.cluster_ip6 is not None and info.cluster_ip6 in model.config.service_cidr6
    # the upper band, as for IPv4 (KEP-3070: the lower 256 addresses of a /112 are static)
    assert int(info.cluster_ip6) - int(model.config.service_cidr6.network_address) >= 256
    pods = [model.pods[f"default/web-{i}"] for i in (1, 2)]
    assert [(e.ip, e.port, e.node) for e in info.ports[0].endpoints6] == [
        (p.ip6, 8080, p.node) for p in pods]
    assert [e.ip for e in info.ports[0].endpoints] == [p.ip for p in pods]


def test_default_services_stay_single_stack_in_the_primary_family() -> None:
    model = _model(DUAL + PODS + SVC % ("web", "type: ClusterIP"))
    info, api = model.services["default/web"], model.services["default/kubernetes"]
    assert info.families == api.families == ("IPv4",)
    assert info.cluster_ip6 is None and info.ports[0].endpoints6 == []
    assert str(api.cluster_ip) == "10.96.0.1" and api.cluster_ip6 is None


def test_ipv6_only_service_has_no_ipv4_clusterip() -> None:
    model = _model(DUAL + PODS + SVC % ("web", "clusterIP: 'fd00:10:96::20'"))
    info = model.services["default/web"]
    assert info.families == ("IPv6",) and info.cluster_ip is None
    assert info.cluster_ip6 == IPv6Address("fd00:10:96::20")
    assert len(info.ports[0].endpoints6) == 2
    assert info.ports[0].endpoints == []  # no IPv4 slice for an IPv6-only Service


def test_ipv6_allocation_is_deterministic_and_leaves_ipv4_as_it_was() -> None:
    text = DUAL + PODS + SVC % ("web", "ipFamilyPolicy: PreferDualStack") + \
        SVC % ("api", "ipFamilyPolicy: RequireDualStack")
    one, two = _model(text), _model(text)
    assert [i.cluster_ip6 for i in one.services.values()] == \
        [i.cluster_ip6 for i in two.services.values()]
    single = _model(DUAL + PODS + SVC % ("web", "type: ClusterIP") + SVC % ("api", "type: "
                                                                            "ClusterIP"))
    assert [i.cluster_ip for i in one.services.values()] == \
        [i.cluster_ip for i in single.services.values()]


def test_ipv6_clusterip_conflicts_are_errors() -> None:
    both = SVC % ("a", "clusterIP: 'fd00:10:96::20'") + SVC % ("b", "clusterIPs: "
                                                               "['fd00:10:96::20']")
    assert _problems(DUAL + both) == [
        "v6.yaml: document 3 (Service default/b): spec.clusterIPs: 'fd00:10:96::20' is "
        "already allocated to default/a; valid: a free address, or none to allocate one"]
    outside = SVC % ("a", "clusterIP: 'fd00:99::1'")
    assert _problems(DUAL + outside) == [
        "v6.yaml: document 2 (Service default/a): spec.clusterIPs: 'fd00:99::1' is outside "
        "the service CIDR fd00:10:96::/112; valid: an address in fd00:10:96::/112"]


def test_a_hand_written_ipv6_slice_is_read() -> None:
    text = DUAL + SVC.replace("selector: {app: web}, ", "") % (
        "ext", "ipFamilyPolicy: RequireDualStack") + (
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: ext-v6, "
        "labels: {kubernetes.io/service-name: ext}}\naddressType: IPv6\nendpoints: "
        "[{addresses: ['fd00:10:244::99']}]\nports: [{port: 8080}]\n")
    info = _model(text).services["default/ext"]
    assert [(str(e.ip), e.port) for e in info.ports[0].endpoints6] == [("fd00:10:244::99",
                                                                        8080)]
    assert info.ports[0].endpoints == []


def test_an_ipv6_slice_with_an_ipv4_address_is_an_error() -> None:
    text = DUAL + ("apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: x, "
                   "labels: {kubernetes.io/service-name: ext}}\naddressType: IPv6\nendpoints: "
                   "[{addresses: ['10.0.0.1']}]\n")
    assert any("is an IPv4 address" in p for p in _problems(text))


def test_ipv6_proxier_rules_for_a_dual_stack_nodeport() -> None:
    """node_rules6 on a scenario's model: the IPv6 ClusterIP, the pods' IPv6 addresses
    as DNAT targets, the IPv6 pod CIDR in the masquerade rule, the shared NodePort; the
    IPv4 document is what it is without the IPv6 family."""
    extra = "type: NodePort, ipFamilyPolicy: PreferDualStack, ports: [{port: 80, " \
        "targetPort: 8080, nodePort: 30080}]"
    model = _model(DUAL + PODS + SVC.replace("ports: [{port: 80, targetPort: 8080}], ", "")
                   % ("web", extra))
    info = model.services["default/web"]
    text = node_rules6(model, "node-1").splitlines()
    chain = next(line.split()[-1] for line in text if '"default/web cluster IP"' in line
                 and line.startswith("-A KUBE-SERVICES"))
    assert f'-A {chain} -m comment --comment "default/web cluster IP" -m tcp -p tcp -d ' \
        f"{info.cluster_ip6} --dport 80 ! -s fd00:10:244::/56 -j KUBE-MARK-MASQ" in text
    ip6 = model.pods["default/web-1"].ip6
    assert any(line.endswith(f"-j DNAT --to-destination [{ip6}]:8080") for line in text)
    assert any("--dport 30080 -j KUBE-EXT-" in line for line in text)
    four = node_rules(model, "node-1")
    assert "fd00" not in four and "--dport 30080" in four


def test_a_dual_stack_load_balancer_keeps_its_ipv6_ingress_for_the_ipv6_proxier() -> None:
    text = DUAL + PODS + (SVC % ("lb", "type: LoadBalancer, ipFamilyPolicy: PreferDualStack")
                          ).replace("---\n", "status: {loadBalancer: {ingress: [{ip: "
                                    "192.0.2.9}, {ip: 'fd00:c0::9'}]}}\n---\n")
    model = _model(text)
    info = model.services["default/lb"]
    assert info.load_balancer_ip6 == IPv6Address("fd00:c0::9")
    six, four = node_rules6(model, "node-1"), node_rules(model, "node-1")
    assert '"default/lb loadbalancer IP" -m tcp -p tcp -d fd00:c0::9 --dport 80' in six
    assert '"default/lb loadbalancer IP" -m tcp -p tcp -d 192.0.2.9 --dport 80' in four
    assert "fd00:c0::9" not in four and "192.0.2.9" not in six


def test_the_controller_recomputes_the_ipv6_slice_when_a_pod_goes() -> None:
    """``pktsim.control.endpoints.refresh``: a pod gone leaves both families' slices."""
    from pktsim.control.endpoints import refresh
    model = _model(DUAL + PODS + SVC % ("web", "ipFamilyPolicy: PreferDualStack"))
    del model.pods["default/web-2"]
    assert "default/web" in refresh(model)
    port = model.services["default/web"].ports[0]
    assert [e.pod for e in port.endpoints] == [e.pod for e in port.endpoints6] == [
        "default/web-1"]
