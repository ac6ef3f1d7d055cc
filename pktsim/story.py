"""Traces told as stories (``pktsim demo``) and in detail (``pktsim trace``).

``trace_text`` follows ``ovn-trace --detailed`` and Antrea Traceflow: packet by packet, device
by device, what came in (interface, frame number in ``capture.pcapng``), what was decided and
by what (FDB hit or flood, route, iptables chain and rule, conntrack state, NAT as
``field: old -> new``, DNS question and answer, the drop reason), and what went out.

``story`` is the short form the demo prints: one header line per path, then the path of its
first packet and of the first reply, one line per device.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from itertools import groupby
from pathlib import Path

from pktsim.api import Result
from pktsim.core.events import TraceEvent

QUIET = ("learn",)


def decision(e: TraceEvent) -> str:
    """One decision, as ``trace`` prints it (NAT as ``field: old -> new``)."""
    nat = e.nat
    if nat is not None:
        why = e.summary[e.summary.find("("):] if "(" in e.summary else ""
        who = e.summary.split(" ")[0]
        return f"nat {nat.field}: {nat.old} -> {nat.new}  [{who}] {why}".rstrip()
    text = e.summary
    if text.startswith(f"{e.event}: "):
        text = text[len(e.event) + 2:]
    return f"{e.event} {text}"


def _line(e: TraceEvent, shown: set[str]) -> str:
    if e.event in ("rx", "tx"):
        arrow = "in " if e.event == "rx" else "out"
        what = "" if e.summary in shown else f"  {e.summary}"
        shown.add(e.summary)
        return f"    {arrow} {e.iface:<16} #{e.frame}{what}"
    return f"        {decision(e)}"


def packet_text(pid: int, events: list[TraceEvent]) -> str:
    """One packet through every device it crossed."""
    first = next((e for e in events if e.event in ("tx", "rx")), events[0])
    lines = [f"packet {pid}: {first.summary}"]
    shown = {first.summary}
    for host, group in groupby(events, key=lambda e: e.host):
        lines.append(f"  {host}")
        lines += [_line(e, shown) for e in group if e.event not in QUIET]
    return "\n".join(lines)


def by_packet(events: Iterable[TraceEvent]) -> dict[int, list[TraceEvent]]:
    out: dict[int, list[TraceEvent]] = {}
    for e in events:
        if e.packet is not None:
            out.setdefault(e.packet, []).append(e)
    return out


def trace_text(result: Result) -> str:
    """Every packet of every flow, device by device (``pktsim trace``)."""
    parts = []
    for outcome in result.flows:
        packets = by_packet(e for e in result.events if e.flow == outcome.flow)
        parts.append(f"== {outcome.line()}\n")
        parts += [packet_text(pid, evs) + "\n" for pid, evs in packets.items()]
    return "\n".join(parts)


def _endpoint(summary: str) -> str:
    """``IP 10.244.0.3.52217 > ...`` -> ``10.244.0.3.52217`` (the sender, with its port)."""
    return summary[3:summary.find(" > ")] if summary.startswith("IP ") else ""


def _interesting(result: Result, flow: str) -> list[int]:
    """The flow's first IP packet, and the first packet that comes back to its sender."""
    packets = by_packet(e for e in result.events if e.flow == flow)
    chosen: list[int] = []
    sender = ""
    for pid, evs in packets.items():
        frames = [e for e in evs if e.event in ("tx", "rx")]
        if not frames or not frames[0].summary.startswith("IP "):
            continue
        if not chosen:
            chosen.append(pid)
            sender = _endpoint(frames[0].summary)
        elif sender and any(f"> {sender}:" in e.summary for e in frames[-1:]):
            chosen.append(pid)
            break
    return chosen


def hop_chain(events: list[TraceEvent]) -> list[str]:
    """One line per device: where the packet came in and went out, and what happened."""
    lines = []
    for host, group in groupby(events, key=lambda e: e.host):
        evs = [e for e in group if e.event not in QUIET]
        ins = [e for e in evs if e.event == "rx"]
        outs = [e for e in evs if e.event == "tx"]
        acts = [decision(e) for e in evs if e.event in ("nat", "route", "drop", "deliver",
                                                          "encap", "decap", "brnf", "icmp")]
        if not ins and not outs and not acts:
            continue  # the node network's switch: no capture point, nothing decided
        frames = ",".join(f"#{e.frame}" for e in (ins + outs)[:2])
        path = " -> ".join(dict.fromkeys(e.iface for e in ins + outs))
        text = f"    {host:<34} {path:<30} {frames}"
        if acts:
            text += "  " + "; ".join(acts)
        lines.append(text.rstrip())
    return lines


def story(result: Result, flow: str, *, limit: int = 12) -> str:
    outcome = next((f for f in result.flows if f.flow == flow), None)
    lines = [f"== {outcome.line() if outcome is not None else flow}"]
    packets = by_packet(e for e in result.events if e.flow == flow)
    for pid in _interesting(result, flow):
        evs = packets[pid]
        first = next(e for e in evs if e.event in ("tx", "rx"))
        lines.append(f"  {first.summary}")
        chain = hop_chain(evs)
        lines += chain[:limit]
        if len(chain) > limit:
            lines.append(f"    … {len(chain) - limit} more devices in trace.txt")
    return "\n".join(lines) + "\n"


def print_stories(result: Result, out: Path) -> None:
    for f in result.flows:
        print(story(result, f.flow))
    print(f"capture: {out / 'capture.pcapng'}  trace: {out / 'trace.txt'}")


def trace_json(result: Result) -> str:
    return "".join(json.dumps(e.to_json_dict(), separators=(",", ":")) + "\n"
                   for e in result.events)
