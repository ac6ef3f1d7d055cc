"""pktsim: a packet-level emulator of Kubernetes networking.

Real Ethernet/ARP/IPv4/ICMP/TCP/UDP frames pass through models of what a node has — pause
sandboxes, veth pairs, the ``cbr0`` learning bridge, the node's routing table — and come out as
pcapng captures and a hop-by-hop trace.  The public surface:

* ``load(*paths_or_yaml, seed=None) -> Cluster`` and ``demo_cluster(network) -> Cluster``
* ``Cluster.run(out=None) -> Result``; ``Result.flows``, ``Result.events``, ``Result.write(dir)``
* exploring (``pktsim.display``, rich in Jupyter): ``Cluster.diagram()``,
  ``Cluster.simulate(flows) -> Simulation`` (``step()``), ``Result.trace(flow)``,
  ``Result.tables(host)``, ``Result.frame(n)``, ``Result.diagram(flow)``, ``Result.to_dataframe()``
* ``ScenarioError``: bad input, with file, document, field and value
"""

from pktsim.api import Cluster, Result, demo_cluster, load
from pktsim.errors import ScenarioError

__all__ = ["Cluster", "Result", "ScenarioError", "demo_cluster", "load"]
__version__ = "0.1.0"
