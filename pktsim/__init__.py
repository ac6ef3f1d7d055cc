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
* ``observing(callback)``: a context in which every finished run is passed to ``callback``
* ``ScenarioError``: bad input, with file, document, field and value
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pktsim.api import Cluster, Result, demo_cluster, flow, inject, load, observing
    from pktsim.build.topology import Topology
    from pktsim.core.events import DropReason, Event, TraceEvent
    from pktsim.devices.outcome import FlowResult, FlowStatus
    from pktsim.dns.resolv import ResolvConf
    from pktsim.errors import ScenarioError
    from pktsim.model.objects import Flow

# Imported on first use (PEP 562): ``pktsim`` the command imports ``pktsim.cli`` in a few
# milliseconds, so its SIGINT/SIGTERM handling is in place before a user's early Ctrl-C.
_HOMES = {"Cluster": "api", "Result": "api", "demo_cluster": "api", "flow": "api",
          "inject": "api", "load": "api", "observing": "api", "Topology": "build.topology",
          "DropReason": "core.events", "Event": "core.events", "TraceEvent": "core.events",
          "FlowResult": "devices.outcome", "FlowStatus": "devices.outcome",
          "ResolvConf": "dns.resolv", "ScenarioError": "errors", "Flow": "model.objects"}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'pktsim' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"pktsim.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = ["Cluster", "DropReason", "Event", "Flow", "FlowResult", "FlowStatus", "ResolvConf",
           "Result",
           "ScenarioError", "Topology", "TraceEvent", "demo_cluster", "flow", "inject", "load",
           "observing"]
__version__ = "0.1.0"
