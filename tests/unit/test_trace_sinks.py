"""trace.jsonl lines are exactly what json.dumps writes for each event."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from pktsim.driver.types import TraceEvent
from pktsim.sinks.trace import JsonlSink

texts = st.text(max_size=30)
events = st.builds(TraceEvent, st.integers(0, 2**62), texts, st.none() | st.integers(0, 10**9),
                   texts, texts, texts, texts, st.none() | st.integers(1, 10**9),
                   st.dictionaries(st.sampled_from(["reason", "rule", "nat", "out"]),
                                   st.text(max_size=10) | st.lists(st.text(max_size=5))))


@given(st.lists(events, max_size=10))
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
