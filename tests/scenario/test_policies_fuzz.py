"""Whatever a NetworkPolicy says, the loader gives policies or ScenarioErrors, never another
exception -- and what it accepts holds the invariants the model promises."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pktsim.errors import SHOWN_ERRORS, ScenarioError, ScenarioErrors
from pktsim.model.policy import OPERATORS, POLICY_PROTOCOLS, POLICY_TYPES, NetworkPolicy
from pktsim.scenario import load_scenario

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ODD = ["", "TCP", "UDP", "SCTP", "tcp", "ICMP", "Ingress", "Egress", "ingress", "In", "NotIn",
       "Exists", "DoesNotExist", "Equals", "http", "serve-80-tcp", "80", "a--b", "-x", "x" * 70,
       "10.0.0.0/8", "10.0.0.1/24", "10.0.0.0/33", "010.0.0.0/08", "fd00::/64", "::/0",
       "0.0.0.0/0", "1.2.3.4", "1.2.3.4/32", "256.1.1.1/8", "a/b", "app", "k8s.io/x", "/"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-2, 70000), st.sampled_from(ODD),
                    st.text(max_size=8), st.floats(allow_nan=True))
KEYS = ["podSelector", "namespaceSelector", "ipBlock", "cidr", "except", "matchLabels",
        "matchExpressions", "key", "operator", "values", "ingress", "egress", "from", "to",
        "ports", "port", "endPort", "protocol", "policyTypes"]
trees = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=4)), inner,
                    max_size=4)), max_leaves=30)


def _port() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional={
        "port": st.one_of(st.integers(-1, 70000), st.sampled_from(ODD)),
        "endPort": st.integers(-1, 70000), "protocol": st.sampled_from(ODD)})


def _selector() -> st.SearchStrategy[dict[str, Any]]:
    requirement = st.fixed_dictionaries({}, optional={
        "key": st.sampled_from(ODD), "operator": st.sampled_from([*OPERATORS, "Equals", 3]),
        "values": st.lists(st.sampled_from(ODD), max_size=2)})
    return st.fixed_dictionaries({}, optional={
        "matchLabels": st.dictionaries(st.sampled_from(ODD), st.sampled_from(ODD), max_size=2),
        "matchExpressions": st.lists(requirement, max_size=2)})


def _peer() -> st.SearchStrategy[dict[str, Any]]:
    block = st.fixed_dictionaries({}, optional={
        "cidr": st.sampled_from(ODD), "except": st.lists(st.sampled_from(ODD), max_size=2)})
    return st.fixed_dictionaries({}, optional={
        "podSelector": _selector(), "namespaceSelector": _selector(), "ipBlock": block,
        "oops": trees})


def _rule(key: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional={
        key: st.lists(st.one_of(_peer(), trees), max_size=2),
        "ports": st.lists(st.one_of(_port(), trees), max_size=2)})


specs = st.fixed_dictionaries({}, optional={
    "podSelector": st.one_of(_selector(), trees),
    "policyTypes": st.lists(st.sampled_from([*POLICY_TYPES, *ODD[:8]]), max_size=3),
    "ingress": st.lists(st.one_of(_rule("from"), trees), max_size=2),
    "egress": st.lists(st.one_of(_rule("to"), trees), max_size=2)})


def check_invariants(policy: NetworkPolicy) -> None:
    assert policy.policy_types and set(policy.policy_types) <= set(POLICY_TYPES)
    assert list(policy.policy_types) == [t for t in POLICY_TYPES if t in policy.policy_types]
    for rule in (*policy.ingress, *policy.egress):
        for port in rule.ports:
            assert port.protocol in POLICY_PROTOCOLS
            if port.end_port is not None:
                assert isinstance(port.port, int) and port.port <= port.end_port
        for peer in rule.peers:
            block = peer.ip_block
            assert (block is None) != (peer.pod_selector is None and
                                       peer.namespace_selector is None)
            if block is not None:
                assert all(e.subnet_of(block.cidr) and e != block.cidr  # type: ignore[arg-type]
                           for e in block.except_)


@FUZZ
@given(spec=st.one_of(specs, trees))
def test_policies_load_or_fail_with_scenario_errors(spec: Any) -> None:
    doc = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
           "metadata": {"name": "np", "namespace": "x"}, "spec": spec}
    try:
        scenario = load_scenario([("fuzz.yaml", yaml.safe_dump(doc))], addons=False)
    except ScenarioErrors as err:
        lines = err.lines()
        if len(err.errors) > SHOWN_ERRORS:  # more than are shown: their count comes last
            assert lines.pop().startswith("... and ")
        assert all(line.startswith("fuzz.yaml: document 1 (NetworkPolicy x/np): ")
                   for line in lines)
    except ScenarioError as err:
        assert err.line().startswith("fuzz.yaml: document 1 (NetworkPolicy x/np): ")
    else:
        assert len(scenario.network_policies) == 1
        check_invariants(scenario.network_policies[0])
