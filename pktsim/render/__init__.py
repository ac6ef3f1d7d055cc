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

from pktsim.render.check import cluster_report
from pktsim.render.dumps import node_dumps
from pktsim.render.explain import explain, print_stories, story
from pktsim.render.lines import JsonLines, jsonl, trace_line, trace_lines

__all__ = ["JsonLines", "cluster_report", "explain", "jsonl", "node_dumps", "print_stories",
           "story", "trace_line", "trace_lines"]
