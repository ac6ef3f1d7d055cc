"""Traces told as stories (``pktsim demo``) and in detail (``pktsim trace``), from the trace
model (``pktsim.trace``).

Not to be confused with ``trace.txt`` (``pktsim.render.lines.trace_lines``, one line per
event, in time order): ``explain`` regroups by packet and by device.

``explain`` follows ``ovn-trace --detailed`` and Antrea Traceflow: packet by packet, device
by device, what came in (interface, frame number in ``capture.pcapng``), what was decided and
by what (FDB hit or flood, route, iptables chain and rule, conntrack state, NAT as
``field: old -> new``, DNS question and answer, the drop reason), and what went out.

``story`` is the short form the demo prints: one header line per path, then the path of its
first packet and of the first reply, one line per device.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pktsim.core.events import FRAME_EVENTS, Event, PolicyVerdict, RuleSync, TraceEvent
from pktsim.trace import QUIET, Packet, Trace

if TYPE_CHECKING:
    from pktsim.api import Result
    from pktsim.model.timeline import Change


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
    if e.event in FRAME_EVENTS:
        arrow = "in " if e.event is Event.RX else "out"
        what = "" if e.summary in shown else f"  {e.summary}"
        shown.add(e.summary)
        return f"    {arrow} {e.iface:<16} #{e.frame}{what}"
    return f"        {decision(e)}"


def packet_text(packet: Packet) -> str:
    """One packet through every device it crossed."""
    first = packet.first or packet.steps[0]
    lines = [f"packet {packet.pid}: {first.summary}"]
    shown = {first.summary}
    for hop in packet.hops:
        lines.append(f"  {hop.host}")
        lines += [_line(e, shown) for e in hop.steps if e.event not in QUIET]
    return "\n".join(lines)


def explain(result: Result) -> str:
    """Every packet of every flow, device by device (``pktsim trace``, ``Result.explain``)."""
    trace = Trace.of(result)
    parts = []
    for outcome in result.flows:
        parts.append(f"== {outcome.line()}\n")
        parts += [packet_text(p) + "\n" for p in trace.flow(outcome.flow)]
    return "\n".join(parts)


def _interesting(trace: Trace) -> list[Packet]:
    """The flow's first IP packet, and the first packet that comes back to its sender
    (its last frame addressed to the first packet's sender, port included)."""
    chosen: list[Packet] = []
    sender = ""
    for packet in trace:
        if not packet.is_ip:
            continue
        if not chosen:
            chosen.append(packet)
            sender = packet.sender
            continue
        frames = packet.frames
        ends = trace.addresses(frames[-1]) if frames else None
        if sender and ends is not None and ends[1] == sender:
            chosen.append(packet)
            break
    decided = next((p for p in trace if any(_isolated(e) for h in p.hops for e in h.steps)),
                   None)
    if decided is not None and decided not in chosen:  # what NetworkPolicy judged
        chosen.append(decided)
    return chosen


def _isolated(e: TraceEvent) -> bool:
    """A policy verdict on a pod some NetworkPolicy selects (the others say only that no
    policy applies, which a story need not repeat at every hop)."""
    return e.event is Event.POLICY and isinstance(e.detail, PolicyVerdict) and \
        bool(e.detail.selecting)


SHOWN = frozenset((Event.NAT, Event.ROUTE, Event.DROP, Event.DELIVER, Event.ENCAP,
                   Event.DECAP, Event.BRNF, Event.ICMP))  # the decisions a story names


def hop_chain(packet: Packet) -> list[str]:
    """One line per device: where the packet came in and went out, and what happened."""
    lines = []
    for hop in packet.hops:
        ins, outs = hop.rx, hop.tx
        acts = [decision(e) for e in hop.steps if e.event in SHOWN or _isolated(e)]
        if not ins and not outs and not acts:
            continue  # the node network's switch: no capture point, nothing decided
        frames = ",".join(f"#{e.frame}" for e in (ins + outs)[:2])
        path = " -> ".join(dict.fromkeys(e.iface for e in ins + outs))
        text = f"    {hop.host:<34} {path:<30} {frames}"
        if acts:
            text += "  " + "; ".join(acts)
        lines.append(text.rstrip())
    return lines


def story(result: Result, flow: str, *, limit: int = 12) -> str:
    """A flow's header line, then the path of its first packet and of the first reply."""
    outcome = next((f for f in result.flows if f.flow == flow), None)
    lines = [f"== {outcome.line() if outcome is not None else flow}"]
    for packet in _interesting(Trace.of(result, flow)):
        first = packet.first
        assert first is not None  # an IP packet has a captured frame
        lines.append(f"  {first.summary}")
        chain = hop_chain(packet)
        lines += chain[:limit]
        if len(chain) > limit:
            lines.append(f"    … {len(chain) - limit} more devices in trace.txt")
    return "\n".join(lines) + "\n"


def print_stories(result: Result, out: Path) -> None:
    for f in result.flows:
        print(story(result, f.flow))
    print(f"capture: {out / 'capture.pcapng'}  trace: {out / 'trace.txt'}")


def change_story(result: Result, change: Change, cleanup: bool, out: Path) -> str:
    """The demo's change story: the change, each flow's line and what the change did to
    it, and the conntrack entries kube-proxy deleted (``kubeProxy.conntrackCleanup``)."""
    lines = [f"== change: {change.label()} (stub-resolver's CoreDNS) at "
             f"{change.at_ns / 1e9:g} s; kubeProxy.conntrackCleanup: "
             f"{'true' if cleanup else 'false'}"]
    for f in result.flows:
        lines.append(f.line())
        lines += [f"  {line}" for line in result.impact.get(f.flow, ())]
    for e in result.events:
        if e.event is Event.SYNC and isinstance(e.detail, RuleSync) and e.detail.deleted:
            lines += [f"  {e.host} kube-proxy at {e.t / 1e9:g} s deleted: {entry}"
                      for entry in e.detail.deleted]
    lines.append(f"capture: {out / 'capture.pcapng'}  trace: {out / 'trace.txt'}")
    return "\n".join(lines) + "\n"
