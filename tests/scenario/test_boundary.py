"""The model's boundary: every API field of the kinds pktsim reads is modelled or named.

* the field-coverage walk: from each kind (Pod, the workloads, Service, EndpointSlice,
  NetworkPolicy, Namespace, Node) down every modelled field of the OpenAPI schema
  (``pktsim/data/api-fields.json``, Kubernetes release 1.37), each field has a class in
  ``pktsim.scenario.boundary`` (modelled, inert, warned, placement), and no class names a
  field the API does not have;
* unknown fields are warned about in kubectl's words, ``--strict`` makes them errors;
* a set field that changes packets but is not modelled is warned about, naming the field;
* a key given twice in one mapping is an error (YAML and JSON);
* docs/model.md prints the boundary table as the code has it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pktsim import cli
from pktsim.errors import ScenarioError, ScenarioErrors
from pktsim.scenario import load_scenario
from pktsim.scenario.apifields import boundary_table, classified_types, schema
from pktsim.scenario.boundary import FIELDS, entry

ROOT = Path(__file__).resolve().parents[2]
COVERED = ("Pod", "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Service",
           "EndpointSlice", "NetworkPolicy", "Namespace", "Node")


def test_every_kind_read_has_a_schema() -> None:
    assert set(schema()["kinds"]) == set(COVERED)


def test_every_field_reached_is_classified() -> None:
    types = schema()["types"]
    missing = [f"{path}.{name} ({type_name})"
               for type_name, path in classified_types().items()
               for name in types[type_name] if entry(type_name, name) is None]
    assert not missing, "fields neither modelled nor warned about nor inert:\n" + \
        "\n".join(missing)


def test_no_class_names_a_field_the_api_lacks() -> None:
    types = schema()["types"]
    stale = [f"{t}.{f}" for t, fields in FIELDS.items() for f in fields
             if t not in types or (f != "*" and f not in types[t])]
    assert not stale


def test_pod_service_slice_policy_roots_reach_their_fields() -> None:
    reached = classified_types()
    for name in ("V1PodSpec", "V1Container", "V1ContainerPort", "V1ServiceSpec",
                 "V1ServicePort", "V1Endpoint", "V1EndpointConditions",
                 "V1NetworkPolicySpec", "V1NetworkPolicyPeer", "V1IPBlock"):
        assert name in reached


SERVICE = """\
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, protocl: TCP}]
"""


def _warnings(text: str) -> list[str]:
    return load_scenario([("s.yaml", text)], addons=False).warnings


def test_unknown_field_in_kubectls_words() -> None:
    found = _warnings(SERVICE)
    assert found == ['s.yaml: document 1 (Service default/web): unknown field '
                     '"spec.ports[0].protocl"']


def test_unknown_fields_at_every_depth_and_kind() -> None:
    text = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labls: {a: b}}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: c
        ports: [{containerPort: 80, protcol: TCP}]
        resources: {limits: {cpu: "1"}, limitz: {}}
---
apiVersion: v1
kind: Node
metadata: {name: node-1}
spec: {podCIDRR: 10.244.0.0/24}
"""
    found = [w.rpartition(": ")[2] for w in _warnings(text)]
    assert found == ['unknown field "metadata.labls"',
                     'unknown field "spec.template.spec.containers[0].ports[0].protcol"',
                     'unknown field "spec.template.spec.containers[0].resources.limitz"',
                     'unknown field "spec.podCIDRR"']


def test_known_networking_fields_not_modelled_are_named() -> None:
    text = """\
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers: [{name: c, ports: [{containerPort: 80, hostPort: 8080}]}]
  affinity: {nodeAffinity: {}}
---
apiVersion: v1
kind: Service
metadata: {name: s}
spec:
  selector: {app: web}
  ports: [{port: 80}]
  trafficDistribution: PreferClose
status: {loadBalancer: {ingress: [{hostname: lb.example}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: s-1, labels: {kubernetes.io/service-name: s}}
addressType: IPv4
endpoints:
- addresses: [10.244.0.9]
  hints: {forZones: [{name: a}]}
"""
    found = _warnings(text)
    assert not any("hostPort" in w for w in found)  # modelled: the portmap plugin's chains
    assert any('field "spec.affinity" is not applied: pktsim places' in w for w in found)
    assert any('field "status.loadBalancer.ingress[0].hostname" is not modelled' in w
               for w in found)
    # topology-aware routing is modelled (pktsim.kubeproxy.topology): neither is named
    assert not any("trafficDistribution" in w or "hints" in w for w in found)


def test_placement_is_not_warned_about_for_a_pinned_pod() -> None:
    text = """\
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  nodeName: node-1
  containers: [{name: c}]
  tolerations: [{operator: Exists}]
  schedulerName: default-scheduler
"""
    assert _warnings(text) == []


@pytest.mark.parametrize("text", [
    "apiVersion: v1\nkind: Pod\nkind: Service\nmetadata: {name: x}\nspec: {ports: [{port: 1}]}\n",
    '{"apiVersion": "v1", "kind": "Pod", "kind": "Service", "metadata": {"name": "x"}, '
    '"spec": {"ports": [{"port": 1}]}}',
])
def test_a_key_given_twice_is_an_error(text: str) -> None:
    with pytest.raises((ScenarioError, ScenarioErrors)) as raised:
        load_scenario([("d.yaml", text)], addons=False)
    assert "kind: is given" in str(raised.value)
    assert "YAML requires unique keys" in str(raised.value)


def test_a_merge_key_may_override() -> None:
    text = """\
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers: [{name: &n c}, {<<: {name: x, image: y}, name: d}]
"""
    scenario = load_scenario([("m.yaml", text)], addons=False)
    assert [c.name for c in scenario.pods[0].containers] == ["c", "d"]


def test_strict_makes_every_warning_an_error(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SERVICE)
    assert cli.main(["check", str(path)]) == 0
    assert 'warning: ' in capsys.readouterr().err
    for command in (["check"], ["run", "--out", str(tmp_path / "out")],
                    ["trace", "--from", "external", "--to", "10.96.0.1:443"]):
        assert cli.main([command[0], str(path), "--strict", *command[1:]]) == 2
        err = capsys.readouterr().err
        assert 'unknown field "spec.ports[0].protocl"' in err and "warning:" not in err


def test_docs_model_prints_the_boundary_table() -> None:
    text = (ROOT / "docs" / "model.md").read_text(encoding="utf-8")
    assert boundary_table() in text, "docs/model.md: paste boundary_table() (see the test)"
