"""The deciding-policy decoder on hand-made trace events, written before felix exists: the
events carry what the netfilter engine records for felix's chains (``RuleHit.hits`` as
``CHAIN #N: -A CHAIN …``), so the decoder is pinned to the trace's shape, not to a run."""

from __future__ import annotations

import dataclasses

import pytest

import pktsim
from pktsim.core.events import Drop, DropReason, Event, RuleHit, TraceEvent
from pktsim.devices.outcome import FlowResult, FlowStatus
from pktsim.felix.names import policy_chain
from pktsim.model.cluster import ClusterModel
from pktsim.reach.cells import Verdict
from pktsim.reach.decode import Decision, Denial, decide, policy_chains
from pktsim.reach.probe import Probe, judge

SCENARIO = """
apiVersion: pktsim/v1alpha1
kind: Cluster
spec: {network: routes, nodes: 1}
---
{apiVersion: v1, kind: Namespace, metadata: {name: x}}
---
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: x, labels: {pod: a}}
spec: {containers: [{name: c, image: i, ports: [{containerPort: 80}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: b, namespace: x, labels: {pod: b}}
spec: {containers: [{name: c, image: i, ports: [{containerPort: 80}]}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-a, namespace: x}
spec:
  podSelector: {matchLabels: {pod: b}}
  ingress: [{from: [{podSelector: {matchLabels: {pod: a}}}]}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-egress, namespace: x}
spec: {podSelector: {matchLabels: {pod: a}}, policyTypes: [Egress]}
"""
ALLOW = "-m comment --comment \"cali:Kz9fGVxWhNnS0mDn\" -j MARK --set-xmark 0x10000/0x10000"
RETURN = "-m comment --comment \"cali:3b9nKx0vxS2Xy6fF\" -m mark --mark 0x10000/0x10000 -j RETURN"
END_OF_TIER = ("-m comment --comment \"cali:aJx7dIV4G1X6vw3b\" -m comment --comment "
               "\"End of tier default. DROP if no policies passed packet\" -m mark --mark "
               "0x0/0x20000 -j DROP")


@pytest.fixture(scope="module")
def model() -> ClusterModel:
    return pktsim.load(SCENARIO).model


def hits(*rules: tuple[str, int, str]) -> tuple[str, ...]:
    return tuple(f"{chain} #{n}: -A {chain} {rule}" for chain, n, rule in rules)


def netfilter(host: str, chain: str, *fired: tuple[str, int, str]) -> TraceEvent:
    rule = RuleHit("filter", "FORWARD", chain, "-A FORWARD -j ACCEPT", hits(*fired))
    return TraceEvent(10, "reach-1", 1, host, "", Event.NETFILTER, "accept", detail=rule)


def drop(host: str, chain: str, reason: DropReason = DropReason.POLICY) -> TraceEvent:
    rule = RuleHit("filter", "FORWARD", chain, f"-A {chain} {END_OF_TIER}",
                   hits((chain, 3, END_OF_TIER)))
    return TraceEvent(20, "reach-1", 1, host, "", Event.DROP, "drop", detail=Drop(reason, rule))


def test_policy_chains_map_both_directions_of_every_policy(model: ClusterModel) -> None:
    chains = policy_chains(model.network_policies)
    assert chains[policy_chain("Ingress", "x", "allow-a")] == ("Ingress", "x/allow-a")
    assert chains[policy_chain("Egress", "x", "deny-egress")] == ("Egress", "x/deny-egress")
    assert all(c.startswith(("cali-pi-", "cali-po-")) and len(c) <= 28 for c in chains)


def test_allowed_by_an_ingress_policy(model: ClusterModel) -> None:
    chains = policy_chains(model.network_policies)
    pi = policy_chain("Ingress", "x", "allow-a")
    events = [netfilter("node-1", "FORWARD", ("cali-tw-cali1234", 2, f"-j {pi}"),
                        (pi, 1, ALLOW), (pi, 2, RETURN))]
    assert decide(events, chains) == Decision((("Ingress", "x/allow-a"),))


def test_allowed_by_an_egress_policy_and_an_ingress_one(model: ClusterModel) -> None:
    chains = policy_chains(model.network_policies)
    po = policy_chain("Egress", "x", "deny-egress")
    pi = policy_chain("Ingress", "x", "allow-a")
    events = [netfilter("node-1", "FORWARD", (po, 1, ALLOW)),
              netfilter("node-2", "FORWARD", (pi, 1, ALLOW)),
              netfilter("node-2", "FORWARD", (pi, 1, ALLOW))]  # a retransmission: once
    assert decide(events, chains).allowed_by == (("Egress", "x/deny-egress"),
                                                 ("Ingress", "x/allow-a"))


def test_a_policy_chain_rule_without_the_accept_mark_allows_nothing(model: ClusterModel) -> None:
    chains = policy_chains(model.network_policies)
    pi = policy_chain("Ingress", "x", "allow-a")
    events = [netfilter("node-1", "FORWARD", (pi, 2, RETURN)),
              netfilter("node-1", "FORWARD", ("cali-pi-_notamodelpolicy0000", 1, ALLOW))]
    assert decide(events, chains) == Decision()


@pytest.mark.parametrize(("chain", "direction"), [("cali-tw-cali1234", "Ingress"),
                                                   ("cali-fw-cali5678", "Egress")])
def test_denied_by_isolation(model: ClusterModel, chain: str, direction: str) -> None:
    chains = policy_chains(model.network_policies)
    assert decide([drop("node-1", chain)], chains) == \
        Decision((), Denial(direction, chain, "node-1"))


def test_a_rule_drop_outside_felix_is_no_policy_denial(model: ClusterModel) -> None:
    chains = policy_chains(model.network_policies)
    assert decide([drop("node-1", "KUBE-FIREWALL", DropReason.RULE)], chains).denial is None
    assert decide([drop("node-1", "cali-tw-cali1", DropReason.RULE)], chains).denial == \
        Denial("Ingress", "cali-tw-cali1", "node-1")


def probe(src: str, dst: str) -> Probe:
    return Probe(src, dst, 80, "tcp", pktsim.flow(src, f"{dst}:80", name="reach-1"))


def result(status: FlowStatus) -> FlowResult:
    out = FlowResult("reach-1", "tcp", "")
    out.end(status)
    return out


def test_judge_names_the_isolating_policies_of_the_dropping_direction(model: ClusterModel) -> None:
    cell = judge(model, probe("x/a", "x/b"), result(FlowStatus.PENDING),
                 [drop("node-1", "cali-fw-cali5678")])
    assert cell.verdict is Verdict.DENIED
    assert cell.decided_by == (("Egress", "x/deny-egress"),)
    assert cell.direction == "Egress" and cell.policy == "x/deny-egress"
    assert "egress isolation of x/a" in cell.reason
    cell = judge(model, probe("x/a", "x/b"), result(FlowStatus.PENDING),
                 [drop("node-1", "cali-tw-cali1234")])
    assert cell.decided_by == (("Ingress", "x/allow-a"),)


def test_judge_an_allow_with_no_policy_on_a_network_without_policy(model: ClusterModel) -> None:
    cell = judge(model, probe("x/b", "x/a"), result(FlowStatus.OK), [])
    assert cell.verdict is Verdict.ALLOWED and cell.decided_by == ()
    assert cell.reason == "network does not enforce NetworkPolicy"


def test_judge_refused_and_failed(model: ClusterModel) -> None:
    refused = judge(model, probe("x/b", "x/a"), result(FlowStatus.REFUSED), [])
    assert refused.verdict is Verdict.REFUSED and refused.verdict.symbol == "R"
    silent = judge(model, probe("x/b", "x/a"), result(FlowStatus.PENDING), [])
    assert silent.verdict is Verdict.FAILED and silent.reason == "no answer"
    timed_out = FlowResult("reach-1", "tcp", "")
    timed_out.fail(FlowStatus.NO_REPLY, "no answer within 1 s")
    lost = judge(model, probe("x/b", "x/a"), timed_out,
                 [drop("node-1", "KUBE-FIREWALL", DropReason.RULE)])
    assert lost.verdict is Verdict.FAILED
    assert lost.reason == "no answer within 1 s (dropped: dropped by a rule)"


def test_judge_an_allow_by_policy_where_policy_is_enforced(model: ClusterModel) -> None:
    enforcing = dataclasses.replace(model, config=dataclasses.replace(model.config,
                                                                      network="calico"))
    pi = policy_chain("Ingress", "x", "allow-a")
    cell = judge(enforcing, probe("x/a", "x/b"), result(FlowStatus.OK),
                 [netfilter("node-1", "FORWARD", (pi, 1, ALLOW))])
    assert cell.verdict is Verdict.ALLOWED
    assert cell.decided_by == (("Ingress", "x/allow-a"),)
    assert cell.reason == "egress: not isolated; ingress: x/allow-a"
    bare = judge(enforcing, probe("x/b", "x/a"), result(FlowStatus.OK), [])
    assert bare.reason == "egress: not isolated; ingress: not isolated"


def test_a_denial_says_which_side_had_passed_it(model: ClusterModel) -> None:
    po = policy_chain("Egress", "x", "deny-egress")
    cell = judge(model, probe("x/a", "x/b"), result(FlowStatus.PENDING),
                 [netfilter("node-1", "FORWARD", (po, 1, ALLOW)),
                  drop("node-1", "cali-tw-cali1234")])
    assert cell.verdict is Verdict.DENIED and cell.decided_by == (("Ingress", "x/allow-a"),)
    assert cell.reason.endswith("(after egress x/deny-egress passed it)")
