"""Rich displays for notebooks, and stepping: pktsim in Jupyter.

Every object here has a text form (``str``/``repr``), an HTML or PNG form that Jupyter shows
(``_repr_html_``/``_repr_png_``), and where it is tabular a ``to_dataframe()`` (pandas, in
the ``notebook`` extra, imported only when called).  They are reached from the public
objects rather than built by hand:

* ``cluster.diagram()`` / ``result.diagram(flow)`` -> ``TopologyView``: the topology as a
  picture, with a flow's path drawn on it (networkx + matplotlib);
* ``result.trace(flow)`` -> ``TraceView``: the hops as a table (NAT rows and changed
  addresses highlighted, drops in red); ``result.to_dataframe()`` for every flow;
* ``result.frame(n)`` -> ``FrameView``: frame ``n`` of ``capture.pcapng`` dissected by scapy;
* ``result.tables(host)`` -> ``NodeTables``: bridge FDB, routes, neighbours, addresses,
  iptables and conntrack as ``Table``s;
* ``cluster.simulate(flows)`` -> ``Simulation``: ``step()`` one event at a time.
"""

from pktsim.display.draw import TopologyView
from pktsim.display.packets import FrameView
from pktsim.display.sim import SimStep, Simulation
from pktsim.display.tables import NodeTables
from pktsim.display.tabular import Table
from pktsim.display.trace import TraceView

__all__ = ["FrameView", "NodeTables", "SimStep", "Simulation", "Table", "TopologyView",
           "TraceView"]
