"""One trace event as one line: the ``trace.txt`` form and the ``trace.jsonl`` form.

Each form is made here once.  The sinks stream them (``pktsim.sinks.trace``), ``Result``
returns them (``trace_lines``) and ``pktsim trace --format json`` prints the JSONL form of an
in-memory run with the very same writer, so a file and a command never disagree.

``trace.txt`` is stable enough to serve as a golden file::

    t=0.000004000  ping  default/a:eth0  tx  #7  IP 10.244.0.2 > 10.244.0.3: ICMP echo ...
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from pktsim.core.events import SHARED_DETAILS, Detail, TraceEvent

_enc = json.encoder.encode_basestring_ascii  # the C string encoder json.dumps uses
# json.dumps(separators=(",", ":")) without its per-call wrapper: the detail of an event is
# plain data made by pktsim (no cycles), so the circular check is skipped too.
_dumps = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode


def trace_line(e: TraceEvent) -> str:
    """The ``trace.txt`` line of one event (without its newline)."""
    frame = f"#{e.frame}" if e.frame is not None else "-"
    where = f"{e.host}:{e.iface}" if e.iface else e.host
    t = e.t
    return (f"t={t // 1_000_000_000}.{t % 1_000_000_000:09d}  {e.flow or '-'}  {where}  "
            f"{e.event}  {frame}  {e.summary}")


def trace_lines(events: Iterable[TraceEvent]) -> str:
    """``trace.txt``: one line per event."""
    return "".join(trace_line(e) + "\n" for e in events)


class JsonLines:
    """The ``trace.jsonl`` writer: ``line(event)`` is ``json.dumps(event.to_json_dict())``
    with compact separators, byte for byte, made faster by caching what repeats (the names
    of a place, the JSON of a detail shared by many events) — a run writes millions."""

    def __init__(self) -> None:
        # (flow, host, iface, event) -> their JSON text: a run has few distinct ones
        self._names: dict[tuple[str, str, str, str], tuple[str, str]] = {}
        self._details: dict[int, tuple[Detail, str]] = {}  # id -> (shared detail, JSON)

    def _detail(self, detail: Detail) -> str:
        if type(detail) not in SHARED_DETAILS:
            return "," + _dumps(detail.as_json())[1:-1]
        seen = self._details.get(id(detail))  # made once, for many events: encode once
        if seen is not None and seen[0] is detail:
            return seen[1]
        extra = "," + _dumps(detail.as_json())[1:-1]
        if len(self._details) >= 4096:
            self._details.clear()
        self._details[id(detail)] = (detail, extra)  # kept alive: its id stays valid
        return extra

    def line(self, event: TraceEvent) -> str:
        """The ``trace.jsonl`` line of one event, newline included."""
        e = event
        packet = "null" if e.packet is None else str(e.packet)
        frame = "" if e.frame is None else f',"frame":{e.frame}'
        key = (e.flow, e.host, e.iface, e.event)
        names = self._names.get(key)
        if names is None:
            if len(self._names) >= 65536:
                self._names.clear()
            names = self._names[key] = (
                f'"flow":{_enc(e.flow)},"packet":',
                f',"host":{_enc(e.host)},"iface":{_enc(e.iface)},"event":{_enc(e.event)}')
        detail = "" if e.detail is None else self._detail(e.detail)  # most events have none
        return (f'{{"t":{e.t},{names[0]}{packet}{names[1]},"summary":{_enc(e.summary)}'
                f"{frame}{detail}}}\n")


def jsonl(events: Iterable[TraceEvent]) -> str:
    """``trace.jsonl``: one JSON object per event (``pktsim trace --format json``)."""
    writer = JsonLines()
    return "".join(writer.line(e) for e in events)
