"""Presentation: every text pktsim prints or writes, each form made once.

==============================  ==========================================================
``lines.trace_line``            one ``trace.txt`` line (``Result.trace_lines``, TextSink)
``lines.JsonLines`` / ``jsonl``  one ``trace.jsonl`` line (JsonlSink, ``pktsim trace
                                --format json``)
``explain.explain``             ``pktsim trace``: ovn-trace style, packet by packet, device
                                by device (``Result.explain``)
``explain.story``               the short form ``pktsim demo`` prints
``dumps``                       ``ip addr/route/neigh``, ``bridge fdb``, ``conntrack -L``,
                                ``iptables-save`` of a node, from rows ``pktsim.display``'s
                                tables share
``check.cluster_report``        ``pktsim check``
==============================  ==========================================================

Everything here reads the trace model (``pktsim.trace``) or the devices' tables; nothing
writes files (that is ``pktsim.sinks``) and nothing needs pandas or matplotlib (that is
``pktsim.display``, the Jupyter package, which builds its tables on these rows).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pktsim.core.lazy import lazy_exports

# ``explain`` is also a module's name: importing ``pktsim.render.explain`` would make the
# package's ``explain`` that module, so this one name is bound now, not on first use
from pktsim.render.explain import explain, print_stories, story

if TYPE_CHECKING:  # the names; at run time each module loads on first use (core.lazy)
    from pktsim.render.check import cluster_report
    from pktsim.render.dumps import node_dumps
    from pktsim.render.lines import JsonLines, jsonl, trace_line, trace_lines

__all__ = ["JsonLines", "cluster_report", "explain", "jsonl", "node_dumps", "print_stories",
           "story", "trace_line", "trace_lines"]

_EXPORTS = {
    "check": ("cluster_report",),
    "dumps": ("node_dumps",),
    "lines": ("JsonLines", "jsonl", "trace_line", "trace_lines"),
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
