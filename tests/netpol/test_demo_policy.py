"""The demo's NetworkPolicy story on ``network: calico``: a namespace that accepts nothing by
default, one client let in through the Service, another denied, the drop named."""

from __future__ import annotations

import pktsim
from pktsim.core.events import DropReason, Event
from pktsim.devices.outcome import FlowStatus
from pktsim.render.explain import story


def test_calico_demo_allows_the_client_and_names_the_denial() -> None:
    result = pktsim.demo_cluster("calico").run()
    status = {f.flow: f.status for f in result.flows}
    assert status["policy-allowed"] is FlowStatus.OK
    assert status["policy-denied"] is FlowStatus.TIMED_OUT
    drops = [e for e in result.events if e.flow == "policy-denied" and e.event is Event.DROP]
    assert drops and {e.drop_reason for e in drops} == {DropReason.POLICY}
    assert {e.host for e in drops} == {"node-2"}  # reached db's node, dropped before its veth
    text = story(result, "policy-denied")
    assert "ingress of vault/db: denied (isolated by vault/db-from-client, " \
           "vault/default-deny-ingress; no rule allows it)" in text
    assert "allowed by vault/db-from-client ingress rule 1" in story(result, "policy-allowed")


def test_the_other_networks_demo_has_no_policy_story() -> None:
    cluster = pktsim.demo_cluster("routes")
    assert not cluster.model.network_policies
    assert not any(f.name.startswith("policy-") for f in cluster.flows)


def test_a_policy_step_in_trace_jsonl_has_its_keys() -> None:
    result = pktsim.demo_cluster("calico").run()
    step = next(e for e in result.events
                if e.event is Event.POLICY and e.flow == "policy-denied"
                and "of vault/db" in e.summary)
    line = step.to_json_dict()
    assert line["event"] == "policy"
    assert {k: line[k] for k in ("pod", "direction", "allowed", "selecting", "policy", "rule")} \
        == {"pod": "vault/db", "direction": "Ingress", "allowed": False,
            "selecting": ["vault/db-from-client", "vault/default-deny-ingress"],
            "policy": "", "rule": 0}
    assert line["chain"].startswith("cali-tw-cali")
