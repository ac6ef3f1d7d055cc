"""Felix's iptables tables (``cali-*`` chains, policy, ``cali-nat-outgoing``).

A stand-in: felix's tables — see issue 14, being written.  ``install`` is the one call point
the build makes for a ``network: calico`` node, after kube-proxy's rules are loaded and
before the tables are validated; it does nothing yet.  What felix needs is on the model:
``NodeInfo.blocks``, ``NodeInfo.tunnel_ip``, ``NodeInfo.ip`` (all nodes:
``ClusterModel.node_list()``), ``ClusterConfig.calico`` (the pool: ``cidr`` or the cluster
``podCIDR``, ``nat_outgoing``, ``encap``), and per node the local workloads
``pktsim.build.calico.workloads(topo, node)`` (host interface name, ``PodInfo``).

``WRITES_NAT_OUTGOING`` says whether ``install`` masquerades the pool's outgoing traffic
itself; while it is ``False`` the build adds the one stand-in rule of
``pktsim.build.calico.nat_outgoing_standin`` so that pods still reach the outside world.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pktsim.build.topology import Topology
    from pktsim.model.cluster import NodeInfo
    from pktsim.netfilter import Netfilter

WRITES_NAT_OUTGOING = False


def install(topo: Topology, node: NodeInfo, nf: Netfilter) -> None:
    """Felix's tables on ``node``: see issue 14, being written (does nothing yet)."""
