"""IPv6 and dual-stack in the scenario layer: ipFamilies, per-family CIDRs, inference from the
manifests, what is refused for now, Services' ipFamilies and ipFamilyPolicy, IPv6 flow
targets and ``family``.

Never an address of a family the cluster lacks handed out in silence: an IPv6 address in an
IPv4 cluster, or an IPv6 Service there, is an error naming the field.
"""

from __future__ import annotations

import subprocess
import sys
from ipaddress import IPv6Network
from pathlib import Path

import pytest

from pktsim.errors import ScenarioError, ScenarioErrors
from pktsim.model.objects import Scenario
from pktsim.scenario import load_scenario
from pktsim.scenario.families import IPV6_LIMITS

CLUSTER = "apiVersion: pktsim/v1alpha1\nkind: Cluster\nspec: {%s}\n---\n"
DUAL = CLUSTER % "ipFamilies: [IPv4, IPv6]"
POD = ("apiVersion: v1\nkind: Pod\nmetadata: {name: %s}\nspec: {nodeName: node-1, "
       "containers: [{name: c}]}\nstatus: {podIPs: [%s]}\n---\n")
SVC = ("apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {selector: {a: b}, "
       "ports: [{port: 80}], %s}\n---\n")
FLOWS = "apiVersion: pktsim/v1alpha1\nkind: Traffic\nspec: {flows: [%s]}\n"
DUAL_POD = POD % ("p", "{ip: 10.244.0.7}, {ip: 'fd00:10:244::7'}")


def _load(text: str) -> Scenario:
    """The scenario, its warnings without the one every dual-stack run gets (checked in
    ``test_a_dual_stack_run_says_once_what_ipv6_leaves_out``)."""
    scenario = load_scenario([("v6.yaml", text)], addons=False)
    scenario.warnings = [w for w in scenario.warnings if IPV6_LIMITS not in w]
    return scenario


def test_a_dual_stack_run_says_once_what_ipv6_leaves_out() -> None:
    text = "apiVersion: pktsim/v1alpha1\nkind: Cluster\nspec: {ipFamilies: [IPv4, IPv6]}\n"
    warnings = load_scenario([("v6.yaml", text)], addons=False).warnings
    assert warnings == [f"v6.yaml: document 1 (Cluster): {IPV6_LIMITS}"]
    four = text.replace("[IPv4, IPv6]", "[IPv4]")
    assert load_scenario([("v6.yaml", four)], addons=False).warnings == []


def _errors(text: str) -> list[str]:
    with pytest.raises((ScenarioError, ScenarioErrors)) as raised:
        _load(text)
    found = raised.value
    return [e.line() for e in (found.errors if isinstance(found, ScenarioErrors) else [found])]


def test_ipv4_is_the_default() -> None:
    cfg = _load("").config
    assert cfg.ip_families == ("IPv4",) and not cfg.has_ipv6 and cfg.primary_family == "IPv4"


def test_dual_stack_takes_kinds_ipv6_defaults() -> None:
    cfg = _load(DUAL).config
    assert cfg.ip_families == ("IPv4", "IPv6") and cfg.has_ipv6
    assert (str(cfg.pod_cidr6), str(cfg.service_cidr6), str(cfg.node_cidr6)) == (
        "fd00:10:244::/56", "fd00:10:96::/112", "fc00:f853:ccd:e793::/64")
    assert str(cfg.pod_cidr) == "10.244.0.0/16"


@pytest.mark.parametrize("cidrs", [
    "podCIDR: '10.32.0.0/16,fd00:32::/56'",  # kubeadm's and kind's comma-separated string
    "podCIDR: [10.32.0.0/16, 'fd00:32::/56']",
    "ipFamilies: [IPv4, IPv6], podCIDR: [10.32.0.0/16, 'fd00:32::/56']",
])
def test_one_cidr_per_family_and_the_families_from_them(cidrs: str) -> None:
    cfg = _load(CLUSTER % cidrs).config
    assert cfg.ip_families == ("IPv4", "IPv6")
    assert str(cfg.pod_cidr) == "10.32.0.0/16" and cfg.pod_cidr6 == IPv6Network("fd00:32::/56")


def test_every_cidr_field_takes_its_ipv6_range() -> None:
    cfg = _load(CLUSTER % "serviceCIDR: [10.96.0.0/12, 'fd00:96::/108'], nodeCIDR: "
                "[172.18.0.0/16, 'fc00:1::/64']").config
    assert (str(cfg.service_cidr6), str(cfg.node_cidr6)) == ("fd00:96::/108", "fc00:1::/64")


CLUSTER_ERRORS = [
    ("ipFamilies: [IPv4, IPv4]", "spec.ipFamilies[1]: 'IPv4' is given twice; valid: each "
     "family once: [IPv4], [IPv4, IPv6], [IPv6, IPv4] or [IPv6]"),
    ("ipFamilies: [IPv4, IPv5]", "spec.ipFamilies[1]: 'IPv5' is not an IP family; valid: "
     "IPv4 | IPv6"),
    ("ipFamilies: []", "spec.ipFamilies: [] is empty; valid: [IPv4], [IPv4, IPv6], "
     "[IPv6, IPv4] or [IPv6]"),
    ("ipFamilies: [IPv4], podCIDR: '10.244.0.0/16,fd00:10:244::/56'",
     "spec.podCIDR: '10.244.0.0/16,fd00:10:244::/56' has an IPv6 CIDR, and ipFamilies is "
     "[IPv4]; valid: one CIDR per family of ipFamilies"),
    ("ipFamilies: [IPv4, IPv6], podCIDR: ['fd00:10:244::/56', 10.244.0.0/16]",
     "spec.podCIDR: ['fd00:10:244::/56', '10.244.0.0/16'] lists IPv6 first, and ipFamilies "
     "puts IPv4 first; valid: the CIDRs in the order of ipFamilies"),
    ("podCIDR: [10.244.0.0/16, 10.245.0.0/16]", "spec.podCIDR[1]: '10.245.0.0/16' is a "
     "second IPv4 CIDR; valid: one CIDR per IP family"),
    ("ipFamilies: [IPv4, IPv6], podCIDR: [10.244.0.0/16, 'fd00:10:244::/65']",
     "spec.podCIDR: 'fd00:10:244::/65' is too small; valid: a prefix of /64 or shorter "
     "(a /64 per node)"),
    ("ipFamilies: [IPv4, IPv6], serviceCIDR: [10.96.0.0/12, 'fd00:10:96::/125']",
     "spec.serviceCIDR: 'fd00:10:96::/125' is too small; valid: a prefix of /124 or shorter "
     "(kube-dns at the 10th address)"),
    ("ipFamilies: [IPv4, IPv6], serviceCIDR: [10.96.0.0/12, 'fd00:10:244::/112']",
     "spec.serviceCIDR: 'fd00:10:244::/112' overlaps podCIDR fd00:10:244::/56; valid: "
     "disjoint pod, service, node and external CIDRs"),
    ("ipFamilies: [IPv4, IPv6], podCIDR: [10.244.0.0/16, 'fd00::1/56']",
     "spec.podCIDR[1]: 'fd00::1/56' has host bits set; valid: fd00::/56"),
]


@pytest.mark.parametrize(("spec", "line"), CLUSTER_ERRORS)
def test_cluster_family_errors(spec: str, line: str) -> None:
    assert _errors(CLUSTER % spec) == [f"v6.yaml: document 1 (Cluster): {line}"]


REFUSED = "IPv6-primary clusters are not modelled yet: pktsim models dual-stack with IPv4 " \
    "first ([IPv4, IPv6]); valid: [IPv4, IPv6] or [IPv4]"


@pytest.mark.parametrize(("spec", "line"), [
    ("ipFamilies: [IPv6, IPv4]", f"spec.ipFamilies: '[IPv6, IPv4]' {REFUSED}"),
    ("ipFamilies: [IPv6]", f"spec.ipFamilies: '[IPv6]' {REFUSED}"),
    ("podCIDR: 'fd00:10:244::/56,10.244.0.0/16'", f"spec.podCIDR: '[IPv6, IPv4]' {REFUSED}"),
    *[(f"ipFamilies: [IPv4, IPv6], network: {net}", f"spec.ipFamilies: '[IPv4, IPv6]' IPv6 "
       f"with network: {net} is not modelled yet; valid: network: routes or vxlan, or "
       "ipFamilies [IPv4]") for net in ("calico", "ipip")],
])
def test_what_the_build_cannot_run_yet_is_refused_in_one_line(spec: str, line: str) -> None:
    assert _errors(CLUSTER % spec) == [f"v6.yaml: document 1 (Cluster): {line}"]


def test_the_refusal_exits_2_from_the_cli(tmp_path: Path) -> None:
    path = tmp_path / "v6.yaml"
    path.write_text(CLUSTER % "ipFamilies: [IPv6, IPv4]")
    done = subprocess.run([sys.executable, "-m", "pktsim", "check", str(path)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"pktsim: {path}: document 1 (Cluster): spec.ipFamilies: '[IPv6, IPv4]' {REFUSED}"]


def test_a_dual_stack_snapshot_makes_a_dual_stack_cluster() -> None:
    scenario = _load(DUAL_POD)
    assert scenario.config.ip_families == ("IPv4", "IPv6") and scenario.warnings == []
    pod = scenario.pods[0]
    assert (str(pod.pod_ip), str(pod.pod_ip6), pod.families) == (
        "10.244.0.7", "fd00:10:244::7", ("IPv4", "IPv6"))


def test_a_cluster_document_after_the_objects_still_decides() -> None:
    assert _errors(DUAL_POD + CLUSTER % "ipFamilies: [IPv4]") == [
        "v6.yaml: document 1 (Pod default/p): status.podIPs: 'fd00:10:244::7' is an IPv6 "
        "address, and the cluster's ipFamilies are [IPv4] (v6.yaml: document 2 (Cluster)); "
        "valid: Cluster.spec.ipFamilies with IPv6, or no IPv6 address"]


def test_lists_that_disagree_make_the_inference_ambiguous() -> None:
    scenario = _load(DUAL_POD + POD % ("q", "{ip: 'fd00:10:244::8'}, {ip: 10.244.0.8}"))
    assert scenario.config.ip_families == ("IPv4", "IPv6")
    assert scenario.warnings == [
        "v6.yaml: document 1 (Pod default/p): ipFamilies inferred as [IPv4, IPv6] from "
        "v6.yaml: document 1 (Pod default/p) status.podIPs, but v6.yaml: document 2 (Pod "
        "default/q) status.podIPs lists [IPv6, IPv4]; give Cluster.spec.ipFamilies to say"]


@pytest.mark.parametrize(("ips", "families"), [
    ("{ip: 'fd00:10:244::8'}, {ip: 10.244.0.8}", "[IPv6, IPv4]"),
    ("{ip: 'fd00:10:244::8'}", "[IPv6]"),
])
def test_an_ipv6_primary_snapshot_is_refused_at_the_list(ips: str, families: str) -> None:
    assert _errors(POD % ("q", ips)) == [
        f"v6.yaml: document 1 (Pod default/q): status.podIPs: '{families}' {REFUSED}"]


def test_a_dual_stack_node_snapshot_infers_the_families() -> None:
    scenario = _load("apiVersion: v1\nkind: Node\nmetadata: {name: n}\nspec: {podCIDRs: "
                     "[10.244.3.0/24, 'fd00:10:244:3::/64']}\n")
    node = scenario.nodes[0]
    assert scenario.config.ip_families == ("IPv4", "IPv6") and node.families == ("IPv4", "IPv6")
    assert str(node.pod_cidr6) == "fd00:10:244:3::/64"


@pytest.mark.parametrize(("text", "line"), [
    (DUAL + POD % ("q", "{ip: 'fd00:10:244::8'}"), "document 2 (Pod default/q): status.podIPs: "
     "'fd00:10:244::8' gives no IPv4 address, the cluster's primary family; valid: "
     "status.podIPs with an IPv4 address"),
    (POD % ("q", "{ip: 10.244.0.8}, {ip: 10.244.0.9}"), "document 1 (Pod default/q): "
     "status.podIPs[1].ip: '10.244.0.9' is a second IPv4 address; valid: at most one address "
     "per IP family"),
    (CLUSTER % "ipFamilies: [IPv4]" + "apiVersion: v1\nkind: Node\nmetadata: {name: n}\n"
     "spec: {podCIDRs: [10.244.3.0/24, 'fd00:10:244:3::/64']}\n", "document 2 (Node n): "
     "spec.podCIDRs: 'fd00:10:244:3::/64' is an IPv6 CIDR, and the cluster's ipFamilies are "
     "[IPv4] (v6.yaml: document 1 (Cluster)); valid: Cluster.spec.ipFamilies with IPv6, or "
     "no IPv6 CIDR"),
])
def test_pod_and_node_family_errors(text: str, line: str) -> None:
    assert _errors(text) == [f"v6.yaml: {line}"]


def test_a_pod_keeps_the_families_its_status_gives() -> None:
    pod = _load(DUAL + POD % ("q", "{ip: 10.244.0.8}")).pods[0]
    assert pod.families == ("IPv4",) and pod.pod_ip6 is None


@pytest.mark.parametrize(("extra", "v4", "v6"), [
    ("ipFamilyPolicy: PreferDualStack", None, None),
    ("ipFamilyPolicy: RequireDualStack, ipFamilies: [IPv4, IPv6]", None, None),
    ("ipFamilies: [IPv4, IPv6], clusterIPs: [10.96.0.50, 'fd00:10:96::50']", "10.96.0.50",
     "fd00:10:96::50"),
    ("ipFamilyPolicy: PreferDualStack, ipFamilies: [IPv6, IPv4]", None, None),
    ("ipFamilies: [IPv6]", None, None),
    ("clusterIP: 'fd00:10:96::10'", None, "fd00:10:96::10"),
])
def test_dual_stack_and_ipv6_services_load_without_a_word(extra: str, v4: str | None,
                                                          v6: str | None) -> None:
    """Services' families are modelled in a dual-stack cluster: no warning, no refusal;
    the clusterIPs given are kept per family (the model allocates the rest)."""
    scenario = _load(DUAL + SVC % extra)
    assert scenario.warnings == []
    svc = scenario.services[0]
    assert (svc.cluster_ip, svc.cluster_ip6) == (v4, v6)


def test_services_alone_make_a_dual_stack_cluster_with_a_warning() -> None:
    scenario = _load(SVC % "ipFamilyPolicy: PreferDualStack, ipFamilies: [IPv4, IPv6]")
    assert scenario.config.ip_families == ("IPv4", "IPv6")
    assert "Services do not show which family is the cluster's primary: IPv4 first is " \
        "assumed" in scenario.warnings[0]


@pytest.mark.parametrize(("text", "line"), [
    (SVC % "ipFamilyPolicy: RequireDualStack", "document 1 (Service default/s): "
     "spec.ipFamilyPolicy: 'RequireDualStack' asks for both families: this cluster is not "
     "configured for dual-stack services (ipFamilies [IPv4]); valid: SingleStack or "
     "PreferDualStack"),
    (CLUSTER % "ipFamilies: [IPv4]" + SVC % "ipFamilies: [IPv4, IPv6], ipFamilyPolicy: "
     "PreferDualStack", "document 2 (Service default/s): spec.ipFamilies: 'IPv4, IPv6' asks "
     "for IPv6, which is not configured on this cluster (ipFamilies [IPv4]); valid: families "
     "of [IPv4]"),
    (DUAL + SVC % "ipFamilies: [IPv4, IPv6], ipFamilyPolicy: SingleStack", "document 2 "
     "(Service default/s): spec.ipFamilyPolicy: 'SingleStack' is single-stack, and "
     "ipFamilies gives two families (IPv4, IPv6); valid: PreferDualStack or RequireDualStack"),
    (SVC % "ipFamilies: [IPv4, IPv4]", "document 1 (Service default/s): spec.ipFamilies[1]: "
     "'IPv4' is given twice; valid: each family once"),
])
def test_service_family_errors(text: str, line: str) -> None:
    assert _errors(text) == [f"v6.yaml: {line}"]


def test_prefer_dual_stack_in_a_single_stack_cluster_is_single_stack_silently() -> None:
    """initIPFamilyFields: PreferDualStack on a single-stack cluster is simply single-stack."""
    scenario = _load(SVC % "ipFamilyPolicy: PreferDualStack")
    assert scenario.warnings == [] and scenario.config.ip_families == ("IPv4",)


def test_single_stack_ipv4_says_nothing() -> None:
    text = SVC % "ipFamilies: [IPv4], ipFamilyPolicy: SingleStack"
    assert _load(text).warnings == []


LB6 = (SVC % "type: LoadBalancer, %s" + "status: {loadBalancer: {ingress: [%s]}}\n").replace(
    "---\nstatus", "status")


def test_an_ipv6_only_load_balancer_address_is_refused_without_ipv6() -> None:
    assert _errors(LB6 % ("ipFamilyPolicy: SingleStack", "{ip: 'fd00::9'}")) == [
        "v6.yaml: document 1 (Service default/s): status.loadBalancer.ingress: 'fd00::9' is "
        "an IPv6 address and no IPv4 one is given: the cluster's ipFamilies are [IPv4]; "
        "valid: an IPv4 address (or a dual-stack list with one)"]


def test_load_balancer_ingress_gives_one_address_per_family() -> None:
    svc = _load(DUAL + LB6 % ("ipFamilyPolicy: PreferDualStack",
                              "{ip: 'fd00::9'}, {ip: 192.0.2.9}, {ip: 'fd00::10'}")).services[0]
    assert (str(svc.load_balancer_ip), str(svc.load_balancer_ip6)) == ("192.0.2.9", "fd00::9")
    four = _load(LB6 % ("ipFamilyPolicy: SingleStack", "{ip: 192.0.2.9}, {ip: 'fd00::9'}"))
    assert str(four.services[0].load_balancer_ip) == "192.0.2.9"


@pytest.mark.parametrize("target", ["[fd00:10:244:1::2]:8080", "http://[fd00:10:244:1::2]:8080/",
                                    "fd00:10:244:1::2"])
def test_ipv6_targets_pass_and_keep_their_text(target: str) -> None:
    protocol = ", protocol: icmp" if "]" not in target else ""
    flow = _load(DUAL + FLOWS % f"{{from: default/a, to: '{target}'{protocol}}}").flows[0]
    assert flow.target == target and flow.family == ""


def test_an_ipv6_target_needs_the_ipv6_family() -> None:
    assert _errors(FLOWS % "{from: default/a, to: '[fd00:10:244:1::2]:8080'}") == [
        "v6.yaml: document 1 (Traffic): spec.flows[0].to: '[fd00:10:244:1::2]:8080' is an "
        "IPv6 target, and the cluster's ipFamilies are [IPv4] (pktsim's defaults); valid: "
        "Cluster.spec.ipFamilies with IPv6, or no IPv6 target"]


def test_a_url_needs_brackets_around_an_ipv6_address() -> None:
    assert _errors(DUAL + FLOWS % "{from: default/a, to: 'http://fd00::1/'}") == [
        "v6.yaml: document 2 (Traffic): spec.flows[0].to: 'http://fd00::1/' has an IPv6 "
        "address without brackets; valid: http://[IPv6]:PORT/PATH"]


def test_family_aims_at_a_pods_or_nodes_ipv6_address() -> None:
    flows = _load(DUAL + FLOWS % "{from: default/a, to: 'default/b:80', family: IPv6}, "
                  "{from: default/a, to: 'node:node-2', protocol: icmp, family: IPv4}").flows
    assert [f.family for f in flows] == ["IPv6", "IPv4"]


@pytest.mark.parametrize(("text", "line"), [
    (FLOWS % "{from: default/a, to: 'default/b:80', family: IPv5}", "document 1 (Traffic): "
     "spec.flows[0].family: 'IPv5' is not supported; valid: IPv4 | IPv6"),
    (DUAL + FLOWS % "{from: default/a, to: 'web:80', family: IPv6}", "document 2 (Traffic): "
     "spec.flows[0].family: 'IPv6' is only for a NAMESPACE/POD or node:NAME target; valid: no "
     "family (a DNS name's address is getaddrinfo's choice)"),
    (DUAL + FLOWS % "{from: default/a, to: '10.0.0.1:80', family: IPv6}", "document 2 "
     "(Traffic): spec.flows[0].family: 'IPv6' does not match the target 10.0.0.1:80, an IPv4 "
     "address; valid: IPv4, or no family"),
    (FLOWS % "{from: default/a, to: 'default/b:80', family: IPv6}", "document 1 (Traffic): "
     "spec.flows[0].family: 'IPv6' is not a family of the cluster: its ipFamilies are [IPv4] "
     "(pktsim's defaults); valid: IPv4"),
    (DUAL + POD % ("q", "{ip: 10.244.0.8}") + FLOWS % "{from: default/q, to: 'default/q:80', "
     "family: IPv6}", "document 3 (Traffic): spec.flows[0].family: 'IPv6' is not a family of "
     "pod default/q: its status.podIPs are [IPv4] (v6.yaml: document 2 (Pod default/q)); "
     "valid: [IPv4]"),
])
def test_family_errors(text: str, line: str) -> None:
    assert _errors(text) == [f"v6.yaml: {line}"]
