"""pktsim: a packet-level emulator of Kubernetes networking.

Real Ethernet/ARP/IPv4/ICMP/TCP/UDP frames pass through models of what a node has — pause
sandboxes, veth pairs, the ``cbr0`` learning bridge, the node's routing table — and come out as
pcapng captures and a hop-by-hop trace.  The public surface (pinned by
``tests/docs/test_public_api.py``):

* ``load(*paths_or_yaml, seed=None) -> Cluster`` and ``demo_cluster(network) -> Cluster``
* ``flow(source, to, ...) -> Flow``: a flow checked as a ``kind: Traffic`` entry is
* ``inject(interface, frame, at=0) -> Flow``: raw bytes arriving on an interface
* ``Cluster.run(out=None, flows=None) -> Result``; ``Result.flows`` (``FlowResult``\\ s),
  ``Result.events`` (``TraceEvent``\\ s: ``Event``, typed details, ``DropReason``),
  ``Result.topology`` (``Topology``), ``Result.write(dir)``
* exploring (``pktsim.display``, rich in Jupyter): ``Cluster.diagram()``,
  ``Cluster.simulate(flows) -> Simulation`` (``step()``), ``Result.trace(flow)``,
  ``Result.tables(host)``, ``Result.frame(n)``, ``Result.diagram(flow)``, ``Result.to_dataframe()``
* ``Cluster.resolv_conf(pod) -> ResolvConf``: the pod's ``/etc/resolv.conf``
* ``Cluster.reachability(ports, protocol=, namespaces=) -> Reachability``: every pod probed
  from every pod, ``.cells`` (each a ``ReachCell`` with a ``Verdict``), ``.text()``,
  ``.frame()``, ``.heatmap()``
* ``observing(callback)``: a context in which every finished run is passed to ``callback``
* ``ScenarioError``: bad input, with file, document, field and value
"""

from __future__ import annotations

from importlib import import_module

# not ``typing.TYPE_CHECKING``: importing typing would cost more than this whole module;
# type checkers treat any module-level TYPE_CHECKING as true
TYPE_CHECKING = False
if TYPE_CHECKING:  # the names, for type checkers; at run time they load on first use
    from typing import Any

    from pktsim.api import Cluster, Result, demo_cluster, flow, inject, load, observing
    from pktsim.build.topology import Topology
    from pktsim.core.events import DropReason, Event, TraceEvent
    from pktsim.devices.outcome import FlowResult, FlowStatus
    from pktsim.dns.resolv import ResolvConf
    from pktsim.errors import ScenarioError
    from pktsim.model.objects import Flow
    from pktsim.reach.cells import Reachability, ReachCell, Verdict

# where each public name lives: ``import pktsim`` itself loads nothing else, so a command
# that needs little (``pktsim --help``) pays for little (PEP 562 module ``__getattr__``)
_HOME = {
    "Cluster": "pktsim.api", "Result": "pktsim.api", "demo_cluster": "pktsim.api",
    "flow": "pktsim.api", "inject": "pktsim.api", "load": "pktsim.api",
    "observing": "pktsim.api",
    "Topology": "pktsim.build.topology", "DropReason": "pktsim.core.events",
    "Event": "pktsim.core.events", "TraceEvent": "pktsim.core.events",
    "FlowResult": "pktsim.devices.outcome", "FlowStatus": "pktsim.devices.outcome",
    "ResolvConf": "pktsim.dns.resolv", "ScenarioError": "pktsim.errors",
    "Flow": "pktsim.model.objects", "Reachability": "pktsim.reach.cells",
    "ReachCell": "pktsim.reach.cells", "Verdict": "pktsim.reach.cells",
}

__all__ = ["Cluster", "DropReason", "Event", "Flow", "FlowResult", "FlowStatus",
           "ReachCell", "Reachability", "ResolvConf", "Result",
           "ScenarioError", "Topology", "TraceEvent", "Verdict", "demo_cluster", "flow",
           "inject", "load", "observing"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'pktsim' has no attribute {name!r}")
    value = getattr(import_module(home), name)
    globals()[name] = value  # once loaded, an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
