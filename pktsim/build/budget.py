"""The budget of a run: a virtual-time horizon and an event count.

A flow of 1,000,000 pings is 11.6 days of virtual time and tens of millions of events; a
flow to an address that never answers retries for as long as its count lasts.  Every run
therefore has a budget whose defaults no ordinary scenario reaches (the demo is ~1,500
events and 0.01 s of virtual time): past it the run stops, the output holds everything up
to there, and the diagnosis names each flow still running, with how far it got.  The CLI's
``--horizon`` and ``--max-events`` raise it (``0`` for no limit).
"""

from __future__ import annotations

from dataclasses import dataclass

from pktsim.devices.outcome import FlowResult, FlowStatus
from pktsim.model.objects import Flow

DEFAULT_HORIZON_NS = 24 * 3600 * 10**9  # one day of virtual time
DEFAULT_MAX_EVENTS = 20_000_000  # about 15 minutes of this machine's time


@dataclass(frozen=True, slots=True)
class Budget:
    """How far a run may go; None is no limit."""

    horizon_ns: int | None = DEFAULT_HORIZON_NS
    max_events: int | None = DEFAULT_MAX_EVENTS

    def describe(self, reason: str) -> str:
        if reason == "horizon":
            return f"virtual time {fmt_ns(self.horizon_ns or 0)} (--horizon)"
        return f"{self.max_events:,} events (--max-events)"


DEFAULT_BUDGET = Budget()
UNLIMITED = Budget(None, None)


def fmt_ns(ns: int) -> str:
    """A duration as the scenario format writes one: ``24h``, ``1m30s``, ``250ms``."""
    parts = []
    for unit, size in (("h", 3600 * 10**9), ("m", 60 * 10**9), ("s", 10**9)):
        if ns >= size:
            parts.append(f"{ns // size}{unit}")
            ns %= size
    if ns or not parts:
        parts.append(f"{ns // 10**6}ms" if ns % 10**6 == 0 else f"{ns}ns")
    return "".join(parts)


def diagnose(flows: list[Flow], results: list[FlowResult], reason: str,
             budget: Budget) -> str:
    """Note on each flow still running (pending, or short of its count) that the budget
    stopped it; the one-line diagnosis, naming them."""
    limit = budget.describe(reason)
    running = [r for f, r in zip(flows, results, strict=True)
               if r.status is FlowStatus.PENDING or (f.frame is None and r.sent < f.count)]
    for r in running:
        r.notes.append(f"stopped by the run budget: {limit}")
    named = ", ".join(f"{r.flow} ({r.sent} sent, {r.answered} answered)"
                      for r in running[:5])
    more = f" and {len(running) - 5} more" if len(running) > 5 else ""
    which = f"; still running: {named}{more}" if running else ""
    return f"run stopped at its budget, {limit}{which}; raise it to run further"
