"""The trace vocabulary: steps take an ``Event``, details give the JSONL keys."""

from __future__ import annotations

import json

import pytest

from pktsim.core.events import (
    Drop,
    DropReason,
    Event,
    FdbLookup,
    NatRewrite,
    RuleHit,
    TraceEvent,
)
from pktsim.core.frame import Frame, Reaction


def test_a_step_is_an_event_not_a_string() -> None:
    r = Reaction()
    with pytest.raises(TypeError):
        r.step("nat", "x")  # type: ignore[arg-type]
    r.step(Event.ROUTE, "forward", "eth0", Frame(b"", 7, "f"))
    assert (r.steps[0].event, r.steps[0].pid, r.steps[0].flow) == (Event.ROUTE, 7, "f")


def test_a_drop_names_its_reason_and_the_rule() -> None:
    r = Reaction()
    rule = RuleHit("filter", "FORWARD", "KUBE-FORWARD", "-A KUBE-FORWARD -j DROP", ("x",))
    r.drop(DropReason.RULE, "cbr0", None, "filter FORWARD: DROP", rule)
    step = r.steps[0]
    assert step.summary == "drop: dropped by a rule (filter FORWARD: DROP)"
    assert step.detail == Drop(DropReason.RULE, rule)
    assert step.detail.as_json() == {"reason": "RULE", "table": "filter", "hook": "FORWARD",
                                     "chain": "KUBE-FORWARD",
                                     "rule": "-A KUBE-FORWARD -j DROP", "hits": ["x"]}


def test_the_json_line_keeps_the_value_of_the_event_and_the_detail_keys() -> None:
    e = TraceEvent(5, "f", 1, "node-1", "cbr0", Event.NAT, "DNAT", 3,
                   NatRewrite("dst", "10.96.0.1:80", "10.244.1.2:8080"))
    line = json.loads(json.dumps(e.to_json_dict()))
    assert line["event"] == "nat" and line["nat"] == {"field": "dst", "old": "10.96.0.1:80",
                                                      "new": "10.244.1.2:8080"}
    assert e.nat is e.detail and e.drop_reason is None and e.rule is None
    flood = TraceEvent(0, "", None, "n", "p", Event.FLOOD, "", None,
                       FdbLookup("miss", ("veth1", "veth2")))
    assert flood.to_json_dict()["out"] == ["veth1", "veth2"]
