"""A ``Reachability`` as text (cyclonus' matrices), CSV, JSON lines and a heatmap.

The text form follows cyclonus (github.com/mattfenwick/cyclonus,
``pkg/connectivity/probe/truthtable.go`` ``TruthTable.Table``: a tablewriter table whose
header is the port and the destinations, one row per source; ``connectivity.go``
``ShortString``: ``.`` allowed, ``X`` blocked, ``!`` check failed), one matrix per
protocol/port, with ``R`` for a refused connection and ``-`` for a pod to itself (not
probed, as upstream's ``ignoreLoopback``).  Under the matrices a legend says, compactly, what
decided every cell that is not a plain allow: the cells sharing a verdict and deciding
policies on one line, grouped by destination.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from pktsim.reach.cells import Reachability, ReachCell

COLUMNS = ("source", "destination", "port", "protocol", "verdict", "direction", "policy",
           "reason")  # a record of ``ReachCell.record``, a row of the CSV and the DataFrame
SELF = "-"
KEY = ". allowed, X denied by policy, R refused (allowed, nothing listens), ! failed, " \
      "- a pod to itself (not probed); in the legend, * is every other pod"
COLOURS = {"allowed": "#4caf50", "denied": "#e53935", "refused": "#ffb300",
           "failed": "#9e9e9e", "self": "#ffffff"}


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A tablewriter-style box: ``+---+`` rules around the header and at the end."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def line(cells: Sequence[str]) -> str:
        first = f" {cells[0]:<{widths[0]}} "
        rest = [f" {c:^{w}} " for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "|" + "|".join([first, *rest]) + "|"

    return [rule, line(header), rule, *(line(r) for r in rows), rule]


def matrix_lines(reach: Reachability, protocol: str, port: int) -> list[str]:
    """One port's matrix: sources as rows, destinations as columns."""
    cells = reach.matrix(protocol, port)
    rows = [[src, *(SELF if src == dst else cells[(src, dst)].symbol if (src, dst) in cells
                    else "?" for dst in reach.pods)] for src in reach.pods]
    return _table([f"{protocol}/{port}", *reach.pods], rows)


def _label(cell: ReachCell) -> str | None:
    """What the legend says of a cell; None for an allow no policy took part in."""
    verdict = cell.verdict.value
    if verdict == "allowed":
        return f". allowed by {cell.reason}" if cell.decided_by else None
    if verdict == "denied":
        direction = "/".join(dict.fromkeys(d for d, _ in cell.decided_by)).lower()
        policies = ", ".join(p for _, p in cell.decided_by) or "no policy"
        return f"X denied by {direction or 'policy'} isolation ({policies})"
    if verdict == "refused":
        return "R refused: the network let it through, nothing listens"
    return f"! failed: {cell.reason}"


def _sources(reach: Reachability, sources: list[str], destination: str) -> str:
    """``*`` for every other probed pod, else the sources by name."""
    if len(sources) == len(reach.pods) - 1 and destination not in sources:
        return "*"
    return ", ".join(sources)


def legend_lines(reach: Reachability, protocol: str, port: int) -> list[str]:
    """The deciding policies of one port's cells, a line per verdict and policies."""
    groups: dict[str, dict[str, list[str]]] = {}
    for cell in reach.cells:
        if (cell.protocol, cell.port) != (protocol, port):
            continue
        label = _label(cell)
        if label is not None:
            groups.setdefault(label, {}).setdefault(cell.destination, []).append(cell.source)
    out = []
    for label, by_dst in groups.items():
        cells = "; ".join(f"{_sources(reach, by_dst[dst], dst)} -> {dst}"
                          for dst in reach.pods if dst in by_dst)
        out.append(f"  {label}: {cells}")
    return out


def reach_text(reach: Reachability) -> str:
    """Every matrix, each with its legend, then the key and the warnings."""
    state = "enforced" if reach.enforced else "not enforced"
    out = [f"reachability: {len(reach.pods)} pods, network {reach.network} "
           f"(NetworkPolicy {state})"]
    for protocol, port in reach.ports:
        out += ["", *matrix_lines(reach, protocol, port)]
        out += legend_lines(reach, protocol, port)
    out += ["", f"key: {KEY}"]
    out += [f"warning: {w}" for w in reach.warnings]
    return "\n".join(out) + "\n"


def reach_json(reach: Reachability) -> str:
    """One JSON object a line per cell (``ReachCell.record``)."""
    return "".join(json.dumps(c.record(), sort_keys=False) + "\n" for c in reach.cells)


def reach_csv(reach: Reachability) -> str:
    """A header and one row per cell; several directions or policies ``;``-separated."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for c in reach.cells:
        writer.writerow([c.source, c.destination, c.port, c.protocol, c.verdict.value,
                         c.direction, c.policy, c.reason])
    return buf.getvalue()


def _codes(reach: Reachability, protocol: str, port: int) -> list[list[int]]:
    """The matrix as indices into ``COLOURS`` (for the heatmap's colour map)."""
    names = list(COLOURS)
    cells = reach.matrix(protocol, port)
    return [[names.index("self") if src == dst else
             names.index(cells[(src, dst)].value) if (src, dst) in cells else
             names.index("failed") for dst in reach.pods] for src in reach.pods]


def heatmap(reach: Reachability) -> Figure:
    """One panel per port: allowed/denied/refused/failed colours, ``ns/pod`` axis labels."""
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    n = len(reach.pods)
    size = max(3.0, 0.45 * n + 1.5)
    fig = Figure(figsize=(size * len(reach.ports), size + 0.6), layout="constrained")
    cmap = ListedColormap(list(COLOURS.values()))
    axes = fig.subplots(1, len(reach.ports), squeeze=False)[0]
    for ax, (protocol, port) in zip(axes, reach.ports, strict=True):
        ax.imshow(_codes(reach, protocol, port), cmap=cmap, vmin=0, vmax=len(COLOURS) - 1)
        ax.set_title(f"{protocol}/{port}")
        ax.set_xticks(range(n), reach.pods, rotation=90)
        ax.set_yticks(range(n), reach.pods)
        ax.set_xlabel("destination")
        ax.set_ylabel("source")
    fig.legend(handles=[Patch(color=c, label=k) for k, c in COLOURS.items() if k != "self"],
               loc="outside lower center", ncols=4)
    return fig
