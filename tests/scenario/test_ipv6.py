"""IPv6 until it is modelled: refused when an object would be IPv6 only, warned when dual.

Never an IPv4 address handed out in silence: an IPv6-only Service used to get an IPv4
ClusterIP, an IPv6-only pod an IPv4 address.
"""

from __future__ import annotations

import pytest

from pktsim.errors import ScenarioError, ScenarioErrors
from pktsim.scenario import load_scenario

SVC = "apiVersion: v1\nkind: Service\nmetadata: {{name: s}}\nspec: {{selector: {{a: b}}, " \
      "ports: [{{port: 80}}], {extra}}}\n"


def _errors(text: str) -> str:
    with pytest.raises((ScenarioError, ScenarioErrors)) as raised:
        load_scenario([("v6.yaml", text)], addons=False)
    found = raised.value
    errors = found.errors if isinstance(found, ScenarioErrors) else [found]
    return "\n".join(e.line() for e in errors)  # every problem, uncut


@pytest.mark.parametrize(("extra", "field"), [
    ("ipFamilies: [IPv6]", "spec.ipFamilies[0]"),
    ("ipFamilies: [IPv6], ipFamilyPolicy: SingleStack", "spec.ipFamilies[0]"),
    ("clusterIP: 'fd00::10'", "spec.clusterIP"),
    ("clusterIPs: ['fd00::10']", "spec.clusterIPs[0]"),
])
def test_an_ipv6_only_service_is_refused(extra: str, field: str) -> None:
    message = _errors(SVC.format(extra=extra))
    assert field in message and "IPv6 is not modelled" in message


@pytest.mark.parametrize("extra", [
    "ipFamilyPolicy: PreferDualStack",
    "ipFamilyPolicy: RequireDualStack, ipFamilies: [IPv4, IPv6]",
    "ipFamilyPolicy: PreferDualStack, ipFamilies: [IPv6, IPv4]",
    "ipFamilies: [IPv4, IPv6], clusterIPs: [10.96.0.50, 'fd00::1']",
])
def test_a_dual_stack_service_is_warned_about_and_keeps_ipv4(extra: str) -> None:
    scenario = load_scenario([("v6.yaml", SVC.format(extra=extra))], addons=False)
    assert any("dual-stack Service" in w and "only its IPv4 family is modelled" in w
               for w in scenario.warnings)
    assert scenario.services[0].cluster_ip in (None, "10.96.0.50")


def test_single_stack_ipv4_says_nothing() -> None:
    text = SVC.format(extra="ipFamilies: [IPv4], ipFamilyPolicy: SingleStack")
    assert load_scenario([("v6.yaml", text)], addons=False).warnings == []


def test_an_ipv6_only_pod_node_or_load_balancer_is_refused() -> None:
    text = """\
apiVersion: v1
kind: Pod
metadata: {name: p}
spec: {containers: [{name: c}]}
status: {podIPs: [{ip: 'fd00::5'}]}
---
apiVersion: v1
kind: Node
metadata: {name: n}
spec: {podCIDRs: ['fd00:1::/64']}
status: {addresses: [{type: InternalIP, address: 'fd00::2'}]}
---
apiVersion: v1
kind: Service
metadata: {name: lb}
spec: {type: LoadBalancer, selector: {a: b}, ports: [{port: 80}]}
status: {loadBalancer: {ingress: [{ip: 'fd00::9'}]}}
"""
    message = _errors(text)
    for field in ("status.podIPs[0].ip", "spec.podCIDRs[0]", "status.addresses[0].address",
                  "status.loadBalancer.ingress[0].ip"):
        assert field in message


def test_dual_stack_lists_use_their_ipv4_entry() -> None:
    text = """\
apiVersion: v1
kind: Pod
metadata: {name: p}
spec: {nodeName: node-1, containers: [{name: c}]}
status: {podIPs: [{ip: 'fd00::5'}, {ip: 10.244.0.7}]}
"""
    scenario = load_scenario([("v6.yaml", text)], addons=False)
    assert str(scenario.pods[0].pod_ip) == "10.244.0.7"
