"""The Calico IP pool (``Cluster.spec.calico``, ``kind: IPPool``): read, defaulted and
checked as the IPPool CRD's validation rules check it, errors naming file, document, field
and value."""

from __future__ import annotations

from ipaddress import IPv4Network

import pytest

from pktsim.errors import ScenarioError
from pktsim.scenario import load_scenario
from tests.scenario.test_scenario_errors import problem

CLUSTER = """
    apiVersion: pktsim/v1alpha1
    kind: Cluster
    spec: {network: calico, calico: %s}
"""


def test_defaults_are_the_manifest_install() -> None:
    cfg = load_scenario([("c.yaml", CLUSTER % "{}")], addons=False).config
    pool = cfg.calico
    assert (pool.cidr, pool.block_size, pool.ipip_mode, pool.vxlan_mode, pool.nat_outgoing) \
        == (None, 26, "Always", "Never", True)
    assert pool.encap == "ipip" and not pool.cross_subnet


@pytest.mark.parametrize(("spec", "field", "value", "words"), [
    ("{ipipMode: Always, vxlanMode: Always}", "spec.calico.vxlanMode", "'Always'",
     "cannot both be enabled"),
    ("{ipipMode: CrossSubnet, vxlanMode: CrossSubnet}", "spec.calico.vxlanMode",
     "'CrossSubnet'", "cannot both be enabled"),
    ("{blockSize: 19}", "spec.calico.blockSize", "19", "out of range"),
    ("{blockSize: 33}", "spec.calico.blockSize", "33", "out of range"),
    ("{ipipMode: always}", "spec.calico.ipipMode", "'always'", "not supported"),
    ("{cidr: 10.244.0.0/27}", "spec.calico.cidr", "'10.244.0.0/27'", "too small"),
    ("{cidr: 10.245.0.0/16}", "spec.calico.cidr", "'10.245.0.0/16'", "outside the cluster"),
    ("{cidr: 10.244.0.1/16}", "spec.calico.cidr", "'10.244.0.1/16'", ""),
    ("{ipipMod: Always}", "spec.calico.ipipMod", None, ""),
])
def test_bad_pool_names_file_document_field_value(spec: str, field: str, value: str | None,
                                                 words: str) -> None:
    err = problem(CLUSTER % spec, file="pool.yaml")
    assert (err.file, err.document, err.field) == ("pool.yaml", "document 1 (Cluster)", field)
    if value is not None:
        assert repr(err.value) == value or str(err.value) == value.strip("'")
    assert words in err.message


IPPOOL = """
    apiVersion: %s
    kind: IPPool
    metadata: {name: pool-a}
    spec: {cidr: 10.244.128.0/17, blockSize: 28, ipipMode: Never, vxlanMode: CrossSubnet,
           natOutgoing: false, nodeSelector: all()}
"""


@pytest.mark.parametrize("api", ["projectcalico.org/v3", "crd.projectcalico.org/v1"])
def test_ippool_document_sets_the_pool_and_warns_of_the_rest(api: str) -> None:
    text = "\n---\n".join([CLUSTER.replace("    ", "") % "{}", (IPPOOL % api).replace(
        "    ", "")])
    scenario = load_scenario([("p.yaml", text)], addons=False)
    pool = scenario.config.calico
    assert (pool.cidr, pool.block_size, pool.vxlan_mode, pool.nat_outgoing, pool.name) == \
        (IPv4Network("10.244.128.0/17"), 28, "CrossSubnet", False, "pool-a")
    assert pool.encap == "vxlan" and pool.cross_subnet
    assert any("nodeSelector not modelled" in w for w in scenario.warnings)


def test_ippool_errors_and_a_second_pool() -> None:
    bad = IPPOOL.replace("vxlanMode: CrossSubnet", "ipipMode: Always, vxlanMode: Always") \
        % "projectcalico.org/v3"
    with pytest.raises(ScenarioError) as info:
        load_scenario([("p.yaml", bad.replace("ipipMode: Never, ", ""))], addons=False)
    assert "IPPool pool-a" in str(info.value) and "cannot both be enabled" in str(info.value)
    two = (IPPOOL % "projectcalico.org/v3") + "\n---\n" + (IPPOOL % "projectcalico.org/v3") \
        .replace("pool-a", "pool-b")
    err = problem(two)
    assert (err.field, err.value) == ("metadata.name", "pool-b") and "second" in err.message


def test_pod_ip_in_another_nodes_block_is_borrowing() -> None:
    import pktsim

    text = CLUSTER.replace("    ", "") % "{}" + """---
apiVersion: v1
kind: Pod
metadata: {name: a}
spec: {nodeName: node-1, containers: [{name: c}]}
status: {podIP: 10.244.7.5}
---
apiVersion: v1
kind: Pod
metadata: {name: b}
spec: {nodeName: node-2, containers: [{name: c}]}
status: {podIP: 10.244.7.6}
"""
    with pytest.raises(ScenarioError) as info:
        pktsim.load(text)
    assert info.value.field == "status.podIP" and "borrowing" in info.value.message
    ok = pktsim.load(text.replace("10.244.7.6", "10.244.9.6")).model
    assert str(ok.nodes["node-1"].blocks[0]) == "10.244.7.0/26"
    assert str(ok.nodes["node-1"].tunnel_ip) == "10.244.7.0"  # first free after the pod's
