"""The topology picture (networkx + matplotlib) and its text form.

``TopologyView(topology, events=None, title=...)`` draws ``cluster_graph(topology)``: one
box per namespace, bridge, veth, tunnel and Service, coloured by kind, links as lines,
Service backends as dashed lines in the Service's colour, the overlay between tunnel devices
as dashed arcs.  With ``events`` (a flow's trace) the path those packets took is drawn thick
in orange and the boxes they crossed are outlined — the Services whose address was DNATed
included.  The layout is fixed (``graph.py``), one slot of ``SLOT_IN`` inches per pod, so the
labels keep their size however large the cluster is: a bigger cluster gives a wider picture.

matplotlib is imported on first drawing (it is in the ``notebook`` extra); ``str()`` works
without it.
"""

from __future__ import annotations

import io
import textwrap
from typing import TYPE_CHECKING, Any

import networkx as nx

from pktsim.display.graph import KINDS, cluster_graph, path
from pktsim.trace import Trace

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from pktsim.build.topology import Topology

SLOT_IN = 1.6  # inches per pod slot
Y_IN = 0.95  # inches per layer unit
FONT = 8
COLOURS = {"service": "#d7c4f0", "pod": "#cfe8fc", "veth": "#eeeeee", "bridge": "#c8ecd4",
           "node": "#fde2b8", "tunnel": "#f9c8d8", "switch": "#cfd8dc", "router": "#e6c9a8",
           "external": "#fff3b0"}
SERVICE_EDGES = ("#7b52ab", "#2f7ebc", "#2e8b57", "#c0392b", "#8e6c00", "#5d6d7e")
HIGHLIGHT = "#ff6f00"


class TopologyView:
    """A picture of the cluster; ``_repr_png_`` for notebooks, ``str()`` as text."""

    def __init__(self, topology: Topology,
                 events: Trace | None = None, *, title: str = "") -> None:
        self.topology = topology
        self.graph = cluster_graph(topology)
        trace = events if events is not None else Trace(())
        self.events = trace.events
        self.path_nodes, self.path_edges = path(self.graph, topology.model, trace) \
            if self.events else ([], set())
        cfg = topology.model.config
        self.title = title or (f"cluster: {len(topology.model.nodes)} nodes, network "
                               f"{cfg.network}, pods {cfg.pod_cidr}, services "
                               f"{cfg.service_cidr}")

    # -- picture --------------------------------------------------------------------------
    def figure(self) -> Figure:
        """A new matplotlib ``Figure`` (not managed by pyplot)."""
        from matplotlib.figure import Figure

        g = self.graph
        pos: dict[str, tuple[float, float]] = nx.get_node_attributes(g, "pos")
        xs = [p[0] for p in pos.values()]
        ys = [p[1] for p in pos.values()]
        x_lo, x_hi = min(xs) - 0.75, max(xs) + 0.75
        title = textwrap.wrap(self.title, width=int((x_hi - x_lo) * SLOT_IN * 10)) or [""]
        y_lo, y_hi = min(ys) - 0.55, max(ys) + 0.55 + 0.25 * len(title)
        fig = Figure(figsize=((x_hi - x_lo) * SLOT_IN, (y_hi - y_lo) * Y_IN), dpi=100)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_xlim(x_lo, x_hi)
        ax.set_ylim(y_lo, y_hi)
        ax.axis("off")
        self._edges(ax, pos)
        self._boxes(ax, pos)
        ax.text(x_lo + 0.08, y_hi - 0.1, "\n".join(title), fontsize=FONT + 3,
                fontweight="bold", va="top", ha="left")
        self._legend(ax)
        return fig

    def _edges(self, ax: Any, pos: dict[str, tuple[float, float]]) -> None:
        g = self.graph
        by_kind: dict[str, list[tuple[str, str]]] = {"link": [], "overlay": []}
        services = sorted(n for n, k in g.nodes(data="kind") if k == "service")
        colour = {s: SERVICE_EDGES[i % len(SERVICE_EDGES)] for i, s in enumerate(services)}
        for a, b, kind in g.edges(data="kind"):
            if kind == "endpoint":
                svc, pod = (a, b) if a.startswith("svc:") else (b, a)
                hot = frozenset((a, b)) in self.path_edges
                nx.draw_networkx_edges(g, pos, edgelist=[(svc, pod)], ax=ax,
                                       edge_color=HIGHLIGHT if hot else colour[svc],
                                       style="dashed", width=3.0 if hot else 1.1,
                                       alpha=1.0 if hot else 0.75)
            else:
                by_kind[kind].append((a, b))
        hot_edges = [tuple(e) for e in self.path_edges if g.get_edge_data(*tuple(e), {})
                     .get("kind") == "link"]
        if hot_edges:
            nx.draw_networkx_edges(g, pos, edgelist=hot_edges, ax=ax, edge_color=HIGHLIGHT,
                                   width=6.0, alpha=0.85)
        nx.draw_networkx_edges(g, pos, edgelist=by_kind["link"], ax=ax, edge_color="#555555",
                               width=1.3)
        for a, b in by_kind["overlay"]:
            hot = frozenset((a, b)) in self.path_edges
            nx.draw_networkx_edges(g, pos, edgelist=[(a, b)], ax=ax, arrows=True,
                                   arrowstyle="-", style="dashed",
                                   connectionstyle="arc3,rad=0.15",
                                   edge_color=HIGHLIGHT if hot else "#c2185b",
                                   width=3.0 if hot else 1.4, node_size=0)

    def _boxes(self, ax: Any, pos: dict[str, tuple[float, float]]) -> None:
        g = self.graph
        on_path = set(self.path_nodes)
        for kind in KINDS:
            for hot in (False, True):
                nodes = [n for n, k in g.nodes(data="kind") if k == kind
                         and (n in on_path) == hot]
                if not nodes:
                    continue
                bbox = {"boxstyle": "round,pad=0.35", "fc": COLOURS[kind],
                        "ec": HIGHLIGHT if hot else "#777777", "lw": 2.6 if hot else 0.8}
                nx.draw_networkx_labels(g, pos, labels={n: g.nodes[n]["label"] for n in nodes},
                                        ax=ax, font_size=FONT - (1 if kind == "veth" else 0),
                                        font_family="DejaVu Sans", bbox=bbox)

    def _legend(self, ax: Any) -> None:
        from matplotlib.patches import Patch

        shown = {k for _, k in self.graph.nodes(data="kind")}
        handles = [Patch(facecolor=COLOURS[k], edgecolor="#777777", label=k) for k in KINDS
                   if k in shown]
        if self.path_nodes:
            handles.append(Patch(facecolor="white", edgecolor=HIGHLIGHT, linewidth=2.5,
                                 label="path of the flow"))
        ax.legend(handles=handles, loc="lower left", fontsize=FONT, ncol=(len(handles) + 1) // 2,
                  frameon=False, borderaxespad=0.4)

    def png(self, dpi: int = 100) -> bytes:
        """The picture as PNG bytes."""
        buf = io.BytesIO()
        self.figure().savefig(buf, format="png", dpi=dpi, facecolor="white")
        return buf.getvalue()

    def save(self, path: str, dpi: int = 100) -> None:
        """Write the picture (format from the file name: ``.png``, ``.svg``, ``.pdf``)."""
        self.figure().savefig(path, dpi=dpi, facecolor="white")

    def _repr_png_(self) -> bytes:
        return self.png()

    # -- text -----------------------------------------------------------------------------
    def __str__(self) -> str:
        return self.text()

    def __repr__(self) -> str:
        return self.text()

    def text(self) -> str:
        """The same picture as an indented list (``*`` marks the path of the flow)."""
        g = self.graph
        hot = set(self.path_nodes)

        def line(node: str, indent: int) -> str:
            mark = "*" if node in hot else " "
            return f"{mark} {'  ' * indent}{g.nodes[node]['label'].replace(chr(10), '  ')}"

        out = [self.title]
        for n in sorted(x for x, k in g.nodes(data="kind") if k == "node"):
            out.append(line(n, 0))
            host = n[5:]
            for extra in (f"tun:{host}", f"br:{host}"):
                if extra in g:
                    out.append(line(extra, 1))
            hub = f"br:{host}" if f"br:{host}" in g else n  # Calico: veths hang off the node
            for veth in sorted(x for x in g.neighbors(hub) if x.startswith("veth:")):
                out.append(line(veth, 2))
                out += [line(p, 3) for p in g.neighbors(veth) if p.startswith("pod:")]
        for n in ("switch", "router", "internet"):
            if n in g:
                out.append(line(n, 0))
        out += [line(n, 1) for n in sorted(g) if n.startswith("ext:")]
        for n in sorted(x for x, k in g.nodes(data="kind") if k == "service"):
            backends = sorted(g.nodes[p]["label"].split("\n")[-1] for p in g.neighbors(n))
            out.append(line(n, 0) + (f"  => {', '.join(backends)}" if backends else ""))
        return "\n".join(out) + "\n"
