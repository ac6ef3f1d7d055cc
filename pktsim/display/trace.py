"""A trace as a table of hops: one row per trace event, NAT and drops marked.

Columns (``TraceView.COLUMNS``, also the DataFrame's): ``t_ms`` (virtual time),
``flow``, ``packet`` (the id that survives forwarding, NAT and encapsulation), ``frame``
(the number in ``capture.pcapng``), ``host`` and ``iface`` (where), ``event`` (``tx``,
``rx``, ``forward``, ``route``, ``nat``, ``conntrack``, ``drop``, ...), ``src`` and ``dst``
(of the innermost IPv4 header of a captured frame; old and new address of a NAT), ``nat``
(the rewrite, ``dst 10.96.45.12:80 -> 10.244.1.2:8080``), ``drop`` (the reason) and
``summary``.  A NAT row is marked ``nat``; a drop ``drop``; a frame whose ``src`` or ``dst``
differs from the same packet's previous frame has that cell marked ``changed`` — which is
how a DNAT, an un-DNAT or a masquerade shows up on the wire.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pktsim.core.events import Event, TraceEvent
from pktsim.display.tabular import Table, esc
from pktsim.trace import Trace

if TYPE_CHECKING:
    import pandas

    from pktsim.devices.outcome import FlowResult
    from pktsim.sinks.trace import CapturedFrame

COLUMNS = ("t_ms", "flow", "packet", "frame", "host", "iface", "event", "src", "dst", "nat",
           "drop", "summary")


def nat_text(e: TraceEvent) -> str:
    nat = e.nat
    if nat is None:
        return ""
    return f"{nat.field} {nat.old} -> {nat.new}"


def hop_table(trace: Trace, title: str = "") -> Table:
    """The hop table of a trace.

    Addresses come from the trace model (the frame bytes, innermost IPv4 header); a
    frame whose address differs from the same packet's previous frame is marked."""
    table = Table(title, COLUMNS)
    last: dict[int, tuple[str, str]] = {}
    for e in trace.events:
        i = len(table.rows)
        src = dst = ""
        ends = trace.addresses(e)
        if ends is not None:
            src, dst = ends
            before = last.get(e.packet) if e.packet is not None else None
            if before is not None:
                for col, old, new in (("src", before[0], src), ("dst", before[1], dst)):
                    if old != new:
                        table.cells[(i, col)] = "changed"
            if e.packet is not None:
                last[e.packet] = (src, dst)
        nat = nat_text(e)
        if nat:
            table.marks[i] = "nat"
        drop = ""
        if e.event is Event.DELIVER:
            table.marks[i] = "deliver"
        if e.event is Event.DROP:
            table.marks[i] = "drop"
            reason = e.drop_reason
            drop = reason.name if reason is not None else e.summary
        table.rows.append((round(e.t / 1e6, 6), e.flow, e.packet, e.frame, e.host, e.iface,
                           e.event, src, dst, nat, drop, e.summary))
    return table


class TraceView:
    """The hops of one flow (or all of them): ``str()``, HTML table, ``to_dataframe()``.

    ``table`` is the underlying ``Table``; ``frame(n)`` dissects frame ``n`` with scapy.
    """

    COLUMNS = COLUMNS

    def __init__(self, events: list[TraceEvent], frames: Mapping[int, CapturedFrame],
                 *, flow: str | None = None, outcome: FlowResult | None = None,
                 max_rows: int = 400) -> None:
        self.model = Trace((e for e in events if flow is None or e.flow == flow), frames)
        self.events = self.model.events
        self.flow = flow
        self.outcome = outcome
        self.max_rows = max_rows
        self._frames = frames
        title = outcome.line() if outcome is not None else (flow or "trace")
        self.table = hop_table(self.model, title=title)

    def __len__(self) -> int:
        return len(self.events)

    def frame(self, number: int) -> Any:
        from pktsim.display.packets import FrameView

        return FrameView(self._frames[number])

    def only(self, *events: str, host: str | None = None, iface: str | None = None) -> Table:
        """The rows of some event kinds (all kinds if none given), optionally at one
        ``host`` and ``iface`` only: ``only("tx", "rx", host="default/client")``."""
        keep = [i for i, e in enumerate(self.events)
                if (not events or e.event in events) and (host is None or e.host == host)
                and (iface is None or e.iface == iface)]
        what = ", ".join(events) or "all"
        where = f" at {host or '*'}:{iface or '*'}" if host or iface else ""
        return self.table._subset(keep, f"{self.table.title} | {what}{where}")

    def packets(self) -> list[int]:
        """The packet ids of the trace, in order of first appearance."""
        return [p.pid for p in self.model]

    def follow(self, packet: int | None = None) -> Table:
        """Every event of one packet, hop by hop; by default the first IPv4 packet (the
        first one whose frame has addresses: the SYN, the echo request, the query)."""
        if packet is None:
            packet = next((e.packet for e in self.events if self.model.addresses(e)), None)
        keep = [i for i, e in enumerate(self.events) if e.packet == packet]
        return self.table._subset(keep, f"{self.table.title} | packet {packet}")

    def nat(self) -> Table:
        return self.only(Event.NAT)

    def drops(self) -> Table:
        return self.only(Event.DROP)

    def to_dataframe(self) -> pandas.DataFrame:
        """One row per event; the columns are ``TraceView.COLUMNS``."""
        return self.table.to_dataframe()

    def __str__(self) -> str:
        return self.table.text()

    def __repr__(self) -> str:
        return self.table.text(max_rows=self.max_rows)

    def _repr_html_(self) -> str:
        return self.table.html(max_rows=self.max_rows)


def flows_table(flows: list[FlowResult]) -> Table:
    table = Table("flows", ("flow", "kind", "target", "status", "sent", "answered", "note"))
    for i, f in enumerate(flows):
        if f.status != "ok":
            table.marks[i] = "drop"
        table.rows.append((f.flow, f.kind, f.target, f.status, f.sent, f.answered,
                           f.notes[-1] if f.notes else ""))
    return table


def result_html(flows: list[FlowResult], events: list[TraceEvent],
                frames: Mapping[int, CapturedFrame], *, max_rows: int = 200) -> str:
    """A result: the flows' outcomes, then each flow's hops in a collapsed section."""
    parts = [flows_table(flows).html()]
    for f in flows:
        view = TraceView(events, frames, flow=f.flow, outcome=f)
        colour = "#1b5e20" if f.status == "ok" else "#b00020"
        parts.append(f'<details><summary style="color:{colour}">{esc(f.line())} '
                     f"— {len(view)} events</summary>{view.table.html(max_rows=max_rows)}"
                     "</details>")
    return "".join(parts)
