"""The deciding-policy decoder on hand-made trace events: the ``policy`` steps
(``PolicyVerdict``) felix's explainer leaves, so the decoder is pinned to the trace's shape,
not to a run."""

from __future__ import annotations

import dataclasses

import pytest

import pktsim
from pktsim.core.events import Drop, DropReason, Event, PolicyVerdict, RuleHit, TraceEvent
from pktsim.devices.outcome import FlowResult, FlowStatus
from pktsim.model.cluster import ClusterModel
from pktsim.reach.cells import Verdict
from pktsim.reach.decode import Decision, Denial, decide
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
@pytest.fixture(scope="module")
def model() -> ClusterModel:
    return pktsim.load(SCENARIO).model


def verdict(host: str, direction: str, *, policy: str = "", chain: str = "",
            allowed: bool = True, selecting: tuple[str, ...] = ()) -> TraceEvent:
    """A ``policy`` step as felix's explainer leaves it (``PolicyVerdict``)."""
    detail = PolicyVerdict("x/b" if direction == "Ingress" else "x/a", direction, allowed,
                           selecting or ((policy,) if policy else ()), policy,
                           1 if policy else 0, chain)
    return TraceEvent(10, "reach-1", 1, host, "", Event.POLICY, detail.text(), detail=detail)


def drop(host: str, chain: str, reason: DropReason = DropReason.POLICY) -> TraceEvent:
    rule = RuleHit("filter", "FORWARD", chain, f"-A {chain} -j DROP", ())
    return TraceEvent(20, "reach-1", 1, host, "", Event.DROP, "drop", detail=Drop(reason, rule))


def denied(host: str, chain: str, direction: str, isolating: str) -> list[TraceEvent]:
    """What a denial leaves: the verdict naming the isolating policy, then the drop."""
    return [verdict(host, direction, chain=chain, allowed=False, selecting=(isolating,)),
            drop(host, chain)]


def test_allowed_by_an_ingress_policy() -> None:
    events = [verdict("node-1", "Ingress", policy="x/allow-a", chain="cali-pi-knp/x/allow-a")]
    assert decide(events) == Decision((("Ingress", "x/allow-a"),))


def test_allowed_by_an_egress_policy_and_an_ingress_one() -> None:
    events = [verdict("node-1", "Egress", policy="x/deny-egress"),
              verdict("node-2", "Ingress", policy="x/allow-a"),
              verdict("node-2", "Ingress", policy="x/allow-a")]  # a retransmission: once
    assert decide(events).allowed_by == (("Egress", "x/deny-egress"), ("Ingress", "x/allow-a"))


def test_a_pod_no_policy_selects_allows_without_naming_a_policy() -> None:
    assert decide([verdict("node-1", "Egress"), verdict("node-1", "Ingress")]) == Decision()


@pytest.mark.parametrize(("chain", "direction"), [("cali-tw-cali1234", "Ingress"),
                                                   ("cali-fw-cali5678", "Egress")])
def test_denied_by_isolation(chain: str, direction: str) -> None:
    assert decide(denied("node-1", chain, direction, "x/p")) == \
        Decision((), Denial(direction, chain, "node-1"))


def test_a_drop_without_a_policy_verdict_is_no_policy_denial() -> None:
    assert decide([drop("node-1", "KUBE-FIREWALL", DropReason.RULE)]).denial is None


def probe(src: str, dst: str) -> Probe:
    return Probe(src, dst, 80, "tcp", pktsim.flow(src, f"{dst}:80", name="reach-1"))


def result(status: FlowStatus) -> FlowResult:
    out = FlowResult("reach-1", "tcp", "")
    out.end(status)
    return out


def test_judge_names_the_isolating_policies_of_the_dropping_direction(model: ClusterModel) -> None:
    cell = judge(model, probe("x/a", "x/b"), result(FlowStatus.PENDING),
                 denied("node-1", "cali-fw-cali5678", "Egress", "x/deny-egress"))
    assert cell.verdict is Verdict.DENIED
    assert cell.decided_by == (("Egress", "x/deny-egress"),)
    assert cell.direction == "Egress" and cell.policy == "x/deny-egress"
    assert "egress isolation of x/a" in cell.reason
    cell = judge(model, probe("x/a", "x/b"), result(FlowStatus.PENDING),
                 denied("node-1", "cali-tw-cali1234", "Ingress", "x/allow-a"))
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
    cell = judge(enforcing, probe("x/a", "x/b"), result(FlowStatus.OK),
                 [verdict("node-1", "Ingress", policy="x/allow-a")])
    assert cell.verdict is Verdict.ALLOWED
    assert cell.decided_by == (("Ingress", "x/allow-a"),)
    assert cell.reason == "egress: not isolated; ingress: x/allow-a"
    bare = judge(enforcing, probe("x/b", "x/a"), result(FlowStatus.OK), [])
    assert bare.reason == "egress: not isolated; ingress: not isolated"


def test_a_denial_says_which_side_had_passed_it(model: ClusterModel) -> None:
    cell = judge(model, probe("x/a", "x/b"), result(FlowStatus.PENDING),
                 [verdict("node-1", "Egress", policy="x/deny-egress"),
                  *denied("node-1", "cali-tw-cali1234", "Ingress", "x/allow-a")])
    assert cell.verdict is Verdict.DENIED and cell.decided_by == (("Ingress", "x/allow-a"),)
    assert cell.reason.endswith("(after egress x/deny-egress passed it)")
