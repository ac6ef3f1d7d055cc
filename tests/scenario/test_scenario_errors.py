"""Bad input: every problem is a ScenarioError naming file, document, field, value and remedy."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pktsim.errors import ScenarioError, ScenarioErrors
from pktsim.scenario import load_paths, load_scenario


def problems(*docs: str, file: str = "bad.yaml") -> list[ScenarioError]:
    text = "\n---\n".join(textwrap.dedent(d) for d in docs)
    with pytest.raises(ScenarioError) as info:
        load_scenario([(file, text)], addons=False)
    err = info.value
    return err.errors if isinstance(err, ScenarioErrors) else [err]


def problem(*docs: str, file: str = "bad.yaml") -> ScenarioError:
    found = problems(*docs, file=file)
    assert len(found) == 1, [e.line() for e in found]
    return found[0]


POD = """
    apiVersion: v1
    kind: Pod
    metadata: {name: web}
    spec:
      containers:
      - name: a
        ports: [{containerPort: 8080}]
"""


def test_yaml_syntax_error_names_file_and_line() -> None:
    err = problem("kind: Pod\nmetadata: {name: [x\n", file="broken.yaml")
    assert err.file == "broken.yaml"
    assert err.document.startswith("line ")
    assert err.line().startswith("broken.yaml: line ") and "YAML syntax error" in err.line()


def test_yaml_error_after_good_documents_still_reports_their_problems() -> None:
    found = problems("kind: Pod\napiVersion: v1\nmetadata: {name: p}\n", "a: [")
    assert [e.field for e in found] == ["spec.containers", ""]
    assert found[1].document.startswith("line ")


def test_control_characters_are_a_yaml_error() -> None:
    err = problem("kind: Pod\x01")
    assert "YAML syntax error" in err.message and err.document.startswith("character")


@pytest.mark.parametrize(("text", "shown"), [
    ("42", "42 is an integer"),
    ("- kind: Pod", "[{'kind': 'Pod'}] is a list"),
    ("just text", "'just text' is a string"),
])
def test_non_mapping_document(text: str, shown: str) -> None:
    err = problem("kind: Namespace\napiVersion: v1\nmetadata: {name: a}", text)
    assert err.document == "document 2"
    assert shown in err.line() and "valid: a mapping with apiVersion and kind" in err.line()


def test_missing_kind_and_name() -> None:
    kind, name = problems("metadata: {name: x}", "kind: Pod\nspec: {containers: [{name: c}]}")
    assert (kind.document, kind.field, kind.message) == ("document 1", "kind", "is required")
    assert (name.document, name.field, name.message) == ("document 2 (Pod)", "metadata.name",
                                                         "is required")


def test_wrong_types_never_escape_as_python_errors() -> None:
    found = problems("""
        apiVersion: v1
        kind: Pod
        metadata: {name: web, labels: [a]}
        spec:
          containers: {name: a}
          hostNetwork: "yes"
    """)
    lines = [e.line() for e in found]
    assert ("bad.yaml: document 1 (Pod default/web): metadata.labels: ['a'] is a list; "
            "valid: a mapping") in lines
    assert ("bad.yaml: document 1 (Pod default/web): spec.containers: {'name': 'a'} is a "
            "mapping; valid: a list") in lines
    assert ("bad.yaml: document 1 (Pod default/web): spec.hostNetwork: 'yes' is a string; "
            "valid: true or false") in lines


def test_string_where_an_integer_belongs() -> None:
    err = problem(POD.replace("containerPort: 8080", "containerPort: '8080'"))
    assert (err.file, err.document, err.field, err.value) == (
        "bad.yaml", "document 1 (Pod default/web)", "spec.containers[0].ports[0].containerPort",
        "8080")
    assert err.message == "is a string" and err.valid == "an integer 1-65535"


def test_container_port_out_of_range() -> None:
    err = problem(POD.replace("containerPort: 8080", "containerPort: 70000"))
    assert err.line() == ("bad.yaml: document 1 (Pod default/web): "
                          "spec.containers[0].ports[0].containerPort: 70000 is out of range; "
                          "valid: 1-65535")


def test_two_containers_declaring_one_port() -> None:
    err = problem(POD.replace("ports: [{containerPort: 8080}]", """ports: [{containerPort: 8080}]
      - name: b
        ports: [{containerPort: 9000}, {containerPort: 8080, protocol: TCP}]"""))
    assert err.field == "spec.containers[1].ports[1].containerPort" and err.value == 8080
    assert "containers share the pod's network namespace" in err.message
    assert "spec.containers[0].ports[0]" in err.message


def test_same_port_twice_in_one_container_and_other_protocol_is_fine() -> None:
    err = problem(POD.replace("[{containerPort: 8080}]",
                              "[{containerPort: 8080}, {containerPort: 8080, protocol: UDP}, "
                              "{containerPort: 8080}]"))
    assert err.field == "spec.containers[0].ports[2].containerPort"


def test_duplicate_pods_and_workload_clashes() -> None:
    err = problem(POD, POD)
    assert err.document == "document 2 (Pod default/web)" and err.field == "metadata.name"
    assert "is defined twice: first at bad.yaml: document 1 (Pod default/web)" in err.message
    clash = problem(POD.replace("name: web}", "name: db-0}"), """
        apiVersion: apps/v1
        kind: StatefulSet
        metadata: {name: db}
        spec: {template: {spec: {containers: [{name: c}]}}}
    """)
    assert clash.document == "document 2 (StatefulSet default/db)"
    assert "would create pod default/db-0, which is already defined at bad.yaml: document 1" \
        in clash.message


def test_generated_names_avoid_stream_pods() -> None:
    deployment = """
        apiVersion: apps/v1
        kind: ReplicaSet
        metadata: {name: rs}
        spec: {replicas: 1, template: {spec: {containers: [{name: c}]}}}
    """
    name = load_scenario([("a.yaml", textwrap.dedent(deployment))], addons=False).pods[0].name
    taken = POD.replace("name: web}", f"name: {name}}}")
    s = load_scenario([("a.yaml", textwrap.dedent(taken) + "---\n" + textwrap.dedent(deployment))],
                      addons=False)
    assert len({p.name for p in s.pods}) == 2


SERVICE = """
    apiVersion: v1
    kind: Service
    metadata: {name: web}
    spec:
      type: NodePort
      ports: [{port: 80, nodePort: 30080}]
"""


@pytest.mark.parametrize(("old", "new", "field", "value", "valid"), [
    ("nodePort: 30080", "nodePort: 29999", "spec.ports[0].nodePort", 29999, "30000-32767"),
    ("nodePort: 30080", "nodePort: 32768", "spec.ports[0].nodePort", 32768, "30000-32767"),
    ("type: NodePort", "type: Ingress", "spec.type", "Ingress",
     "ClusterIP | NodePort | LoadBalancer | ExternalName"),
    ("port: 80,", "port: 0,", "spec.ports[0].port", 0, "1-65535"),
    ("port: 80,", "port: 80, protocol: ICMP,", "spec.ports[0].protocol", "ICMP",
     "TCP | UDP | SCTP"),
    ("type: NodePort", "type: NodePort\n      clusterIP: 10.96.0.300", "spec.clusterIP",
     "10.96.0.300", "an IPv4 or IPv6 address like 10.0.0.1"),
    ("port: 80,", "port: 80, targetPort: '8080',", "spec.ports[0].targetPort", "8080",
     "an IANA service name"),
    ("type: NodePort", "type: ClusterIP", "spec.ports[0].nodePort", 30080,
     "type NodePort or LoadBalancer"),
    ("type: NodePort", "type: NodePort\n      sessionAffinity: ClientIP\n      "
     "sessionAffinityConfig: {clientIP: {timeoutSeconds: 86401}}",
     "spec.sessionAffinityConfig.clientIP.timeoutSeconds", 86401, "1-86400"),
    ("type: NodePort", "type: NodePort\n      clusterIP: None", "spec.clusterIP", "None",
     "type ClusterIP"),
])
def test_service_validation(old: str, new: str, field: str, value: object, valid: str) -> None:
    err = problem(SERVICE.replace(old, new))
    assert (err.file, err.document, err.field, err.value) == (
        "bad.yaml", "document 1 (Service default/web)", field, value)
    assert err.valid.startswith(valid)


def test_service_ports_need_names_when_several_and_unique_node_ports() -> None:
    err = problem(SERVICE.replace("ports: [{port: 80, nodePort: 30080}]",
                                  "ports: [{port: 80}, {port: 81, name: b}]"))
    assert err.field == "spec.ports[0].name" and err.message == "is required"
    other = SERVICE.replace("name: web", "name: api")
    clash = problem(SERVICE, other)
    assert clash.document == "document 2 (Service default/api)"
    assert clash.field == "spec.ports[0].nodePort" and clash.value == 30080
    assert "already allocated to Service default/web" in clash.message


CLUSTER = """
    apiVersion: pktsim/v1alpha1
    kind: Cluster
    spec: {%s}
"""


@pytest.mark.parametrize(("spec", "field", "value", "piece"), [
    ("podCIDR: 10.244.0.0", "spec.podCIDR", "10.244.0.0", "is not in CIDR notation"),
    ("podCIDR: 10.244.0.1/16", "spec.podCIDR", "10.244.0.1/16", "has host bits set"),
    ("podCIDR: 10.244.0.0/25", "spec.podCIDR", "10.244.0.0/25", "is too small"),
    # an IPv6 serviceCIDR alone makes the cluster IPv6-only, which is refused for now
    ("serviceCIDR: 'fd00::/108'", "spec.serviceCIDR", "[IPv6]",
     "IPv6-primary clusters are not modelled yet"),
    ("externalCIDR: 'fd00::/108'", "spec.externalCIDR", "fd00::/108", "is an IPv6 network"),
    ("nodeCIDR: 10.244.0.0/24", "spec.nodeCIDR", "10.244.0.0/24", "overlaps podCIDR"),
    ("network: flannel", "spec.network", "flannel", "is not supported"),
    ("proxyMode: ipvs", "spec.proxyMode", "ipvs", "is not supported"),
    ("dns: kube-dns", "spec.dns", "kube-dns", "is not supported"),
    ("nodes: 0", "spec.nodes", 0, "is out of range"),
    ("nodes: 10001", "spec.nodes", 10001, "is out of range"),
    ("seed: -1", "spec.seed", -1, "is out of range"),
    ("seed: 1.5", "spec.seed", 1.5, "is a number"),
    ("hairpinMode: 1", "spec.hairpinMode", 1, "is an integer"),
    ("startTime: '2026-01-01 00:00:00'", "spec.startTime", "2026-01-01 00:00:00",
     "is not an RFC 3339 time"),
    ("startTime: '2026-02-30T00:00:00Z'", "spec.startTime", "2026-02-30T00:00:00Z",
     "is not an RFC 3339 time"),
    ("upstream: {example.com: 1.2.3}", "spec.upstream[example.com]", "1.2.3",
     "is not an IP address"),
    ("upstream: [a]", "spec.upstream", ["a"], "is a list"),
    ("bridge: 'way-too-long-bridge'", "spec.bridge", "way-too-long-bridge",
     "is not a valid interface name"),
    ("podCidr: 10.0.0.0/16", "spec.podCidr", None, "is not a known field"),
])
def test_cluster_validation(spec: str, field: str, value: object, piece: str) -> None:
    err = problem(CLUSTER % spec)
    assert (err.file, err.document, err.field) == ("bad.yaml", "document 1 (Cluster)", field)
    assert err.value == value or repr(err.value) == repr(value)
    assert piece in err.message


def test_second_cluster_is_an_error() -> None:
    err = problem(CLUSTER % "", CLUSTER % "seed: 1")
    assert err.document == "document 2 (Cluster)" and "first at bad.yaml: document 1" in \
        err.message


def test_unsupported_pktsim_api_version() -> None:
    err = problem("apiVersion: pktsim/v2\nkind: Traffic\nspec: {flows: []}")
    assert (err.field, err.value, err.valid) == ("apiVersion", "pktsim/v2", "pktsim/v1alpha1")


def flows(*items: str) -> str:
    body = "\n".join(f"  - {i}" for i in items)
    return f"apiVersion: pktsim/v1alpha1\nkind: Traffic\nspec:\n  flows:\n{body}\n"


@pytest.mark.parametrize(("flow", "field", "piece"), [
    ("{from: web, to: b}", "spec.flows[0].from", "is not a valid flow source"),
    ("{from: 'default/a/b/c', to: b}", "spec.flows[0].from", "is not a valid flow source"),
    ("{from: 'node:', to: b}", "spec.flows[0].from", "is not a valid flow source"),
    ("{from: default/a}", "spec.flows[0].to", "is required"),
    ("{from: default/a, to: ''}", "spec.flows[0].to", "is required"),
    ("{from: default/a, to: b, lookup: c}", "spec.flows[0].to", "is given with lookup"),
    ("{from: default/a, to: 'ftp://x'}", "spec.flows[0].to", "uses the scheme 'ftp'"),
    ("{from: default/a, to: 'b:70000'}", "spec.flows[0].to", "has a port out of range"),
    ("{from: default/a, to: 'http://b/', protocol: udp}", "spec.flows[0].protocol",
     "does not carry a URL"),
    ("{from: default/a, to: 'b:80', protocol: icmp}", "spec.flows[0].to", "ICMP does not use"),
    ("{from: default/a, to: b, protocol: sctp}", "spec.flows[0].protocol", "is not modelled"),
    ("{from: default/a, to: b, count: 0}", "spec.flows[0].count", "is out of range"),
    ("{from: default/a, to: b, payload: -1}", "spec.flows[0].payload", "is out of range"),
    ("{from: default/a, to: b, protocol: udp, payload: 65508}", "spec.flows[0].payload",
     "is out of range"),
    ("{from: default/a, to: b, payload: true}", "spec.flows[0].payload", "is a boolean"),
    ("{from: default/a, to: b, start: 1.5}", "spec.flows[0].start", "is a number"),
    ("{from: default/a, to: b, start: soon}", "spec.flows[0].start", "is not a valid duration"),
    ("{from: default/a, to: b, start: 1.5ns}", "spec.flows[0].start", "is not a valid duration"),
    ("{from: default/a, to: b, start: -5}", "spec.flows[0].start", "is out of range"),
    ("{from: default/a, to: b, ttl: 0}", "spec.flows[0].ttl", "is out of range"),
    ("{from: default/a, to: b, ttl: 256}", "spec.flows[0].ttl", "is out of range"),
    ("{from: default/a, to: b, type: A}", "spec.flows[0].type", "is only for lookups"),
    ("{from: default/a, lookup: b, type: MX}", "spec.flows[0].type", "is not supported"),
    ("{from: default/a, lookup: 'bad name'}", "spec.flows[0].lookup", "is not a valid DNS name"),
    ("{from: default/a, lookup: b, payload: 3}", "spec.flows[0].payload", "not used by lookups"),
    ("{from: default/a, to: b, port: 80}", "spec.flows[0].port", "is not a known field"),
    ("42", "spec.flows[0]", "is an integer"),
])
def test_flow_validation(flow: str, field: str, piece: str) -> None:
    err = problem(flows(flow))
    assert (err.file, err.document, err.field) == ("bad.yaml", "document 1 (Traffic)", field)
    assert piece in err.message


def test_duplicate_flow_names() -> None:
    err = problem(flows("{from: default/a, to: b}", "{name: flow-1, from: default/a, to: c}"))
    assert err.field == "spec.flows[1].name" and err.value == "flow-1"
    assert "spec.flows[0]" in err.message


def test_invalid_names_and_labels() -> None:
    found = problems("""
        apiVersion: v1
        kind: Pod
        metadata: {name: Web_1, namespace: -x, labels: {app: 'a b', '/x': y, tier: 1}}
        spec: {containers: [{name: c}]}
    """)
    fields = [e.field for e in found]
    assert fields == ["metadata.name", "metadata.namespace", "metadata.labels[app]",
                      "metadata.labels[/x]", "metadata.labels[tier]"]
    assert found[0].document == "document 1 (Pod -x/Web_1)"
    assert found[4].message == "is an integer" and "quote numbers" in found[4].valid


def test_missing_parts_are_reported_once() -> None:
    err = problem("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {}")
    assert (err.field, err.message) == ("spec.template", "is required")
    err = problem("apiVersion: pktsim/v1alpha1\nkind: Traffic")
    assert (err.field, err.message) == ("spec.flows", "is required")


def test_selector_must_match_template() -> None:
    err = problem("""
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: web}
        spec:
          selector: {matchLabels: {app: web}}
          template: {metadata: {labels: {app: api}}, spec: {containers: [{name: c}]}}
    """)
    assert err.field == "spec.selector.matchLabels[app]" and err.value == "web"
    assert "does not match the pod template's labels" in err.message


def test_dns_policy_none_needs_nameservers() -> None:
    err = problem(POD.replace("containers:", "dnsPolicy: None\n      containers:"))
    assert err.field == "spec.dnsConfig.nameservers" and "dnsPolicy is None" in err.message


def test_list_item_errors_name_the_item() -> None:
    err = problem("""
        apiVersion: v1
        kind: List
        items:
        - {apiVersion: v1, kind: Namespace, metadata: {name: a}}
        - {apiVersion: v1, kind: Pod, metadata: {name: p}, spec: {containers: [{name: 1}]}}
    """)
    assert err.document == "document 1 items[1] (Pod default/p)"
    assert err.field == "spec.containers[0].name"


def test_many_problems_are_collected_in_one_pass() -> None:
    with pytest.raises(ScenarioErrors) as info:
        load_scenario([("a.yaml", "kind: Pod\napiVersion: v1\nmetadata: {name: p}\n"),
                       ("b.yaml", textwrap.dedent(SERVICE.replace("30080", "1")))], addons=False)
    lines = info.value.lines()
    assert len(lines) == 2
    assert lines[0].startswith("a.yaml: document 1 (Pod default/p): spec.containers:")
    assert lines[1].startswith("b.yaml: document 1 (Service default/web): spec.ports[0].nodePort")


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as info:
        load_paths([str(tmp_path / "missing.yaml")], addons=False)
    assert info.value.file.endswith("missing.yaml") and "cannot read" in info.value.message
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00kind")
    with pytest.raises(ScenarioError) as info:
        load_paths([str(binary)], addons=False)
    assert info.value.file == str(binary)


def test_long_values_are_shortened_in_messages() -> None:
    err = problem(POD.replace("containerPort: 8080", "containerPort: " + "x" * 500))
    assert len(err.line()) < 250 and "..." in err.line()
