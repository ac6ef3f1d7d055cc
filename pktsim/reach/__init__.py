"""``pktsim reach`` and ``Cluster.reachability``: the NetworkPolicy reachability matrix, as
cyclonus prints it for a live cluster (github.com/mattfenwick/cyclonus), made offline from
probes run as traffic (``probe``) and decided from their trace (``decode``).

The names load on first use, so registering the subcommand (``reach.command``) costs
nothing until it runs."""

from __future__ import annotations

from importlib import import_module

# not ``typing.TYPE_CHECKING``: importing typing would cost more than this whole module;
# type checkers treat any module-level TYPE_CHECKING as true
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from pktsim.reach.cells import Reachability, ReachCell, Verdict
    from pktsim.reach.probe import reachability

_HOME = {"Reachability": "pktsim.reach.cells", "ReachCell": "pktsim.reach.cells",
         "Verdict": "pktsim.reach.cells", "reachability": "pktsim.reach.probe"}
__all__ = ["ReachCell", "Reachability", "Verdict", "reachability"]


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'pktsim.reach' has no attribute {name!r}")
    return getattr(import_module(home), name)
