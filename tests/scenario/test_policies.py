"""NetworkPolicy documents: validated as kubernetes ``ValidateNetworkPolicySpec`` does (exit 2
naming file, document, field and value), defaulted as ``SetDefaults_NetworkPolicy``, and the
warnings a user should see."""

from __future__ import annotations

import textwrap
from ipaddress import IPv4Network
from pathlib import Path

import pytest

from pktsim import cli
from pktsim.errors import ScenarioError, ScenarioErrors
from pktsim.model.objects import Scenario
from pktsim.model.policy import LabelSelector, Peer, PolicyPort, Requirement
from pktsim.scenario import load_scenario
from pktsim.scenario.policies import policy_warnings


def policy_doc(spec: str, name: str = "np") -> str:
    body = textwrap.indent(textwrap.dedent(spec).strip(), "  ")
    return (f"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
            f"metadata: {{name: {name}, namespace: x}}\nspec:\n{body}\n")


def load(spec: str, *, network: str = "routes") -> Scenario:
    cluster = f"apiVersion: pktsim/v1alpha1\nkind: Cluster\nspec: {{network: {network}}}\n"
    return load_scenario([("np.yaml", cluster + "---\n" + policy_doc(spec))], addons=False)


def problems(spec: str) -> list[ScenarioError]:
    with pytest.raises(ScenarioError) as info:
        load(spec)
    err = info.value
    return err.errors if isinstance(err, ScenarioErrors) else [err]


def problem(spec: str) -> ScenarioError:
    found = problems(spec)
    assert len(found) == 1, [e.line() for e in found]
    err = found[0]
    assert (err.file, err.document) == ("np.yaml", "document 2 (NetworkPolicy x/np)")
    return err


PEER = "podSelector: {{}}\ningress:\n- from:\n  - {peer}\n"
PORT = "podSelector: {{}}\ningress:\n- ports:\n  - {port}\n"


@pytest.mark.parametrize(("peer", "field", "value", "message"), [
    ("ipBlock: {cidr: 10.0.0.0/33}", "ipBlock.cidr", "10.0.0.0/33", "is not a valid CIDR"),
    ("ipBlock: {cidr: 10.0.0.0}", "ipBlock.cidr", "10.0.0.0", "is not a valid CIDR"),
    ("ipBlock: {cidr: banana/8}", "ipBlock.cidr", "banana/8", "is not a valid CIDR"),
    ("ipBlock: {cidr: 10.0.0.0/8, except: [10.0.0.0/8]}", "ipBlock.except[0]", "10.0.0.0/8",
     "must be a strict subset of `cidr`"),
    ("ipBlock: {cidr: 10.0.0.0/16, except: [10.1.0.0/24]}", "ipBlock.except[0]",
     "10.1.0.0/24", "must be a strict subset of `cidr`"),
    ("ipBlock: {cidr: 10.0.0.0/16, except: ['fd00::/64']}", "ipBlock.except[0]", "fd00::/64",
     "must be a strict subset of `cidr`"),
    ("ipBlock: {except: [10.0.0.0/24]}", "ipBlock.cidr", None, "is required"),
    ("{ipBlock: {cidr: 10.0.0.0/8}, podSelector: {}}", "", ["ipBlock", "podSelector"],
     "may not specify both ipBlock and another peer"),
    ("{}", "", {}, "must specify a peer"),
    ("podSelector: {matchLabels: {'bad key!': a}}", "podSelector.matchLabels[bad key!]",
     "bad key!", "is not a valid label key"),
    ("podSelector: {matchLabels: {app: 'not valid!'}}", "podSelector.matchLabels[app]",
     "not valid!", "is not a valid label value"),
    ("namespaceSelector: {matchExpressions: [{key: ns, operator: In}]}",
     "namespaceSelector.matchExpressions[0].values", None, "must be specified when"),
    ("namespaceSelector: {matchExpressions: [{key: ns, operator: NotIn, values: []}]}",
     "namespaceSelector.matchExpressions[0].values", None, "must be specified when"),
    ("namespaceSelector: {matchExpressions: [{key: ns, operator: Exists, values: [x]}]}",
     "namespaceSelector.matchExpressions[0].values", ["x"], "may not be specified when"),
    ("podSelector: {matchExpressions: [{key: ns, operator: Equals, values: [x]}]}",
     "podSelector.matchExpressions[0].operator", "Equals", "is not a valid selector operator"),
    ("podSelector: {matchExpressions: [{key: '-x', operator: Exists}]}",
     "podSelector.matchExpressions[0].key", "-x", "is not a valid label key"),
])
def test_invalid_peer(peer: str, field: str, value: object, message: str) -> None:
    err = problem(PEER.format(peer=peer))
    base = "spec.ingress[0].from[0]"
    assert err.field == (f"{base}.{field}" if field else base)
    assert err.value == value or repr(err.value) == repr(value)
    assert err.message.startswith(message)
    assert err.valid


@pytest.mark.parametrize(("port", "field", "value", "message"), [
    ("port: 0", "port", 0, "is out of range"),
    ("port: 99999", "port", 99999, "is out of range"),
    ("port: Web_Port", "port", "Web_Port", "is not a valid port name"),
    ("port: '80'", "port", "80", "is not a valid port name"),
    ("port: 80.5", "port", 80.5, "is a number"),
    ("endPort: 90", "endPort", 90, "may not be specified when `port` is not specified"),
    ("{port: http, endPort: 90}", "endPort", 90, "may not be specified when `port` is "
     "non-numeric"),
    ("{port: 90, endPort: 80}", "endPort", 80, "must be greater than or equal to `port`"),
    ("{port: 90, endPort: 70000}", "endPort", 70000, "is out of range"),
    ("protocol: ICMP", "protocol", "ICMP", "is not supported"),
    ("protocol: tcp", "protocol", "tcp", "is not supported"),
])
def test_invalid_port(port: str, field: str, value: object, message: str) -> None:
    err = problem(PORT.format(port=port))
    assert (err.field, err.value) == (f"spec.ingress[0].ports[0].{field}", value)
    assert err.message.startswith(message)


@pytest.mark.parametrize(("types", "field", "value", "message"), [
    ("[Ingress, Sideways]", "spec.policyTypes[1]", "Sideways", "is not supported"),
    ("[ingress]", "spec.policyTypes[0]", "ingress", "is not supported"),
    ("[Ingress, Egress, Ingress]", "spec.policyTypes", ["Ingress", "Egress", "Ingress"],
     "may not specify more than two policyTypes"),
])
def test_invalid_policy_types(types: str, field: str, value: object, message: str) -> None:
    err = problem(f"podSelector: {{}}\npolicyTypes: {types}\n")
    assert (err.field, repr(err.value), err.message) == (field, repr(value), message)


def test_invalid_pod_selector_is_named_at_spec() -> None:
    err = problem("podSelector: {matchExpressions: [{key: app, operator: In}]}")
    assert err.field == "spec.podSelector.matchExpressions[0].values"


def test_cli_prints_one_line_per_problem_and_exits_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "np.yaml"
    path.write_text(policy_doc(PEER.format(peer="ipBlock: {cidr: 10.0.0.0/33}") +
                               "- ports: [{port: 0}]\n"))
    assert cli.main(["check", str(path)]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line]
    assert lines == [
        f"pktsim: {path}: document 1 (NetworkPolicy x/np): spec.ingress[0].from[0].ipBlock."
        "cidr: '10.0.0.0/33' is not a valid CIDR; valid: a CIDR like 10.9.8.0/24 or "
        "2001:db8::/64",
        f"pktsim: {path}: document 1 (NetworkPolicy x/np): spec.ingress[1].ports[0].port: 0 "
        "is out of range; valid: 1-65535"]


def test_defaults_policy_types_and_protocol() -> None:
    only_ingress = load("podSelector: {}\ningress: [{}]\n").network_policies[0]
    assert only_ingress.policy_types == ("Ingress",)
    both = load("podSelector: {}\negress: [{ports: [{port: 53}]}]\n").network_policies[0]
    assert both.policy_types == ("Ingress", "Egress")
    assert both.egress[0].ports == (PolicyPort("TCP", 53),)
    empty_egress = load("podSelector: {}\negress: []\n").network_policies[0]
    assert empty_egress.policy_types == ("Ingress",)
    given = load("podSelector: {}\npolicyTypes: [Egress, Ingress]\n").network_policies[0]
    assert given.policy_types == ("Ingress", "Egress")
    egress_only = load("podSelector: {}\npolicyTypes: [Egress]\n").network_policies[0]
    assert (egress_only.policy_types, egress_only.ingress) == (("Egress",), ())


def test_reads_peers_and_ports() -> None:
    policy = load("""
        podSelector: {matchLabels: {pod: a, app: web}}
        ingress:
        - from:
          - namespaceSelector: {matchLabels: {ns: y}}
            podSelector: {matchExpressions: [{key: pod, operator: In, values: [b, c]}]}
          - ipBlock: {cidr: 192.168.0.0/16, except: [192.168.1.0/24]}
          ports: [{port: serve-80-tcp}, {protocol: UDP, port: 1000, endPort: 2000}, {}]
    """).network_policies[0]
    assert policy.pod_selector.match_labels == (("app", "web"), ("pod", "a"))
    rule = policy.ingress[0]
    assert rule.peers[0] == Peer(
        pod_selector=LabelSelector((), (Requirement("pod", "In", ("b", "c")),)),
        namespace_selector=LabelSelector((("ns", "y"),)))
    block = rule.peers[1].ip_block
    assert block is not None and block.cidr == IPv4Network("192.168.0.0/16")
    assert block.except_ == (IPv4Network("192.168.1.0/24"),)
    assert rule.ports == (PolicyPort("TCP", "serve-80-tcp"), PolicyPort("UDP", 1000, 2000),
                          PolicyPort("TCP"))


def test_host_bits_are_accepted_with_the_api_servers_warning() -> None:
    scenario = load("podSelector: {}\negress: [{to: [{ipBlock: {cidr: 10.0.0.1/24}}]}]\n",
                    network="vxlan")
    block = scenario.network_policies[0].egress[0].peers[0].ip_block
    assert block is not None and block.cidr == IPv4Network("10.0.0.0/24")
    assert ("np.yaml: document 2 (NetworkPolicy x/np): spec.egress[0].to[0].ipBlock.cidr: CIDR "
            "value '10.0.0.1/24' is ambiguous in this context (should be '10.0.0.0/24' or "
            "'10.0.0.1/32'?)") in scenario.warnings


def test_leading_zeros_are_accepted_with_a_warning() -> None:
    scenario = load("podSelector: {}\negress: [{to: [{ipBlock: {cidr: 010.0.0.0/08}}]}]\n")
    block = scenario.network_policies[0].egress[0].peers[0].ip_block
    assert block is not None and block.cidr == IPv4Network("10.0.0.0/8")
    assert any("non-standard CIDR value '010.0.0.0/08'" in w and "use '10.0.0.0/8'" in w
               for w in scenario.warnings)


def test_ipv6_blocks_are_kept_with_one_warning() -> None:
    scenario = load("""
        podSelector: {}
        ingress: [{from: [{ipBlock: {cidr: 'fd00::/64', except: ['fd00::/96']}}]}]
        egress: [{to: [{ipBlock: {cidr: '2001:db8::/32'}}]}]
    """)
    block = scenario.network_policies[0].ingress[0].peers[0].ip_block
    assert block is not None and block.cidr.version == 6 and len(block.except_) == 1
    ipv6 = [w for w in scenario.warnings if "IPv6" in w]
    assert ipv6 == ["NetworkPolicy x/np: IPv6 ipBlocks are kept but have no effect (pktsim "
                    "models IPv4 packets only)"]


def test_an_enforcing_network_gets_no_enforcement_warning() -> None:
    policies = load("podSelector: {}").network_policies
    assert policy_warnings(policies, "calico") == []
    assert len(policy_warnings(policies, "routes")) == 1


@pytest.mark.parametrize(("network", "cni"), [
    ("routes", "kubenet"), ("vxlan", "flannel"), ("ipip", "flannel IPIP")])
def test_one_warning_on_a_network_that_does_not_enforce(network: str, cni: str) -> None:
    docs = "---\n".join(policy_doc("podSelector: {}", f"p{i}") for i in range(7))
    cluster = f"apiVersion: pktsim/v1alpha1\nkind: Cluster\nspec: {{network: {network}}}\n"
    scenario = load_scenario([("np.yaml", cluster + "---\n" + docs)], addons=False)
    assert scenario.warnings == [
        f"NetworkPolicy x/p0, x/p1, x/p2, x/p3, x/p4 and 2 more has no effect: network "
        f"{network} ({cni}) does not enforce NetworkPolicy, as on a real cluster with that "
        "CNI; Cluster.spec.network: calico does"]


def test_no_policy_no_warning() -> None:
    cluster = "apiVersion: pktsim/v1alpha1\nkind: Cluster\nspec: {network: routes}\n"
    assert load_scenario([("c.yaml", cluster)], addons=False).warnings == []


def test_unknown_fields_do_not_crash() -> None:
    policy = load("""
        podSelector: {matchLabels: {a: b}, extra: 1}
        ingress: [{from: [{podSelector: {}, surprise: [1]}], colour: blue}]
        status: {whatever: true}
    """).network_policies[0]
    assert policy.ingress[0].peers == (Peer(pod_selector=LabelSelector()),)


def test_policy_defined_twice() -> None:
    text = policy_doc("podSelector: {}") + "---\n" + policy_doc("podSelector: {}")
    with pytest.raises(ScenarioError) as info:
        load_scenario([("np.yaml", text)], addons=False)
    assert info.value.field == "metadata.name" and "defined twice" in info.value.message


def test_check_lists_each_policy_and_the_pods_it_isolates(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pods = "---\n".join(
        f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: {ns}, labels: "
        f"{{pod: {name}}}}}\nspec: {{containers: [{{name: c}}]}}\n"
        for ns, name in (("x", "a"), ("x", "b"), ("y", "a")))
    policies = (policy_doc("podSelector: {matchLabels: {pod: a}}\ningress: [{}]", "only-a")
                + "---\n" + policy_doc("podSelector: {}\npolicyTypes: [Egress]", "all-egress")
                + "---\n" + policy_doc("podSelector: {matchLabels: {pod: c}}", "nobody"))
    path = tmp_path / "np.yaml"
    path.write_text(pods + "---\n" + policies)
    assert cli.main(["check", str(path)]) == 0
    out, err = capsys.readouterr()
    section = out[out.index("network policies"):].split("\n\n")[0].splitlines()
    assert [" ".join(line.split()) for line in section] == [
        "network policies (not enforced by network routes):",
        "x/all-egress Egress podSelector {}",
        "isolates for Egress: x/a, x/b",
        "x/nobody Ingress podSelector pod=c",
        "isolates for Ingress: no pods",
        "x/only-a Ingress podSelector pod=a",
        "isolates for Ingress: x/a"]
    assert err.count("does not enforce NetworkPolicy") == 1
