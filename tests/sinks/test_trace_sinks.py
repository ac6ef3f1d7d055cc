"""trace.jsonl lines are exactly what json.dumps writes for each event."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from pktsim.core.events import (
    ChainNote,
    ConntrackState,
    Drop,
    DropReason,
    Encap,
    Event,
    FdbLearn,
    FdbLookup,
    NatRewrite,
    Route,
    RuleHit,
    TraceEvent,
)
from pktsim.sinks.trace import JsonlSink

texts = st.text(max_size=30)
short = st.text(max_size=10)
rule_hits = st.builds(RuleHit, short, short, short, texts, st.lists(short).map(tuple))
details = st.none() | st.one_of(
    rule_hits,
    st.builds(ChainNote, short, short),
    st.builds(NatRewrite, short, short, short, st.none() | rule_hits),
    st.builds(Drop, st.sampled_from(DropReason), st.none() | rule_hits),
    st.builds(ConntrackState, short),
    st.builds(Route, texts),
    st.builds(FdbLookup, short, st.none() | short | st.lists(short).map(tuple)),
    st.builds(FdbLearn, short, short),
    st.builds(Encap, short, st.none() | st.integers(0, 2**24 - 1)),
)
events = st.builds(TraceEvent, st.integers(0, 2**62), texts, st.none() | st.integers(0, 10**9),
                   texts, texts, st.sampled_from(Event), texts,
                   st.none() | st.integers(1, 10**9), details)


# a detail object carried by several events (a route's, a memoised walk's) is written the same
# each time: the writer's cache by identity must not change the text
@given(st.lists(events, max_size=10).flatmap(
    lambda batch: st.lists(st.sampled_from(batch), max_size=20) if batch else st.just(batch)))
def test_jsonl_matches_json_dumps(tmp_path_factory: object, batch: list[TraceEvent]) -> None:
    path = Path(tmp_path_factory.mktemp("t")) / "trace.jsonl"  # type: ignore[attr-defined]
    sink = JsonlSink(path)
    for e in batch:
        sink.event(e)
    sink.close()
    expected = "".join(json.dumps(e.to_json_dict(), separators=(",", ":")) + "\n"
                       for e in batch)
    assert path.read_text() == expected
    for line, e in zip(path.read_text().splitlines(), batch, strict=True):
        assert json.loads(line)["summary"] == e.summary
