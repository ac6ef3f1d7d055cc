"""``pktsim reach`` and ``Cluster.reachability``: the NetworkPolicy reachability matrix, as
cyclonus prints it for a live cluster (github.com/mattfenwick/cyclonus), made offline from
probes run as traffic (``probe``) and decided from their trace (``decode``)."""

from pktsim.reach.cells import Reachability, ReachCell, Verdict
from pktsim.reach.probe import reachability

__all__ = ["ReachCell", "Reachability", "Verdict", "reachability"]
