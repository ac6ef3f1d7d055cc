"""Traces told as stories: one header per flow, then its hops (``pktsim demo``/``trace``)."""

from __future__ import annotations

import json
from pathlib import Path

from pktsim.api import Result
from pktsim.driver.types import TraceEvent

MAX_HOPS_SHOWN = 40


def hop_line(e: TraceEvent) -> str:
    frame = f"#{e.frame:<5}" if e.frame is not None else "      "
    where = f"{e.host}:{e.iface}" if e.iface else e.host
    arrow = {"tx": "->", "rx": "<-"}.get(e.event, "  ")
    plain = e.event in ("tx", "rx") or e.summary.startswith(f"{e.event}:")
    detail = e.summary if plain else f"{e.event}: {e.summary}"
    return f"  {frame} {e.t / 1e6:10.3f} ms  {where:<32} {arrow} {detail}"


def story(result: Result, flow: str, *, limit: int = MAX_HOPS_SHOWN) -> str:
    outcome = next((f for f in result.flows if f.flow == flow), None)
    head = outcome.line() if outcome is not None else flow
    events = [e for e in result.events if e.flow == flow and e.event not in ("learn",)]
    lines = [f"== {head}"]
    for e in events[:limit]:
        lines.append(hop_line(e))
    if len(events) > limit:
        lines.append(f"  … {len(events) - limit} more events in trace.txt")
    return "\n".join(lines) + "\n"


def print_stories(result: Result, out: Path) -> None:
    for f in result.flows:
        print(story(result, f.flow))
    print(f"capture: {out / 'capture.pcapng'}  trace: {out / 'trace.txt'}")


def trace_text(result: Result) -> str:
    return "".join(story(result, f.flow, limit=10**9) for f in result.flows)


def trace_json(result: Result) -> str:
    return "".join(json.dumps(e.to_json_dict(), separators=(",", ":")) + "\n"
                   for e in result.events)
