"""The IPv6 half of a dual-stack cluster: what the node setup and the CNI plugin add.

* A node (kind's dual-stack node): ``::1`` on ``lo``, link-local addresses on ``eth0`` and
  ``cbr0``, ``eth0``'s address on the node network (kind's docker network
  ``fc00:f853:ccd:e793::/64``) with a default route via its ``::1``, and ``cbr0`` the pods'
  IPv6 gateway (the node's /64 ``::1``, host-local's default gateway, set by the bridge
  plugin with ``isGateway``).
* A pod: ``::1`` on ``lo``, ``eth0``'s link-local and its address in the node's /64, and a
  default route via the gateway (the bridge plugin's ``isDefaultGateway`` adds one per
  family: ``plugins/main/bridge/bridge.go``, ``calcGateways``).
* ``routes``: per other node ``<its /64> via <its eth0 IPv6> dev eth0`` (metric 1024,
  ``ip -6 route add``), as for IPv4.

* ip6tables: a node with IPv6 gets its IPv6 netfilter (``install_netfilter6``: raw, mangle,
  nat and filter with their built-in chains, ACCEPT, and IPv6 conntrack with kube-proxy's
  sysctls) and br_netfilter's ``bridge-nf-call-ip6tables=1``; until kube-proxy's IPv6
  rules are written the tables stay empty.  ``load_ip6tables`` is ``ip6tables-restore``
  into a node (``kubeproxy.tables.restore_tables(text, family=6)``).

Duplicate address detection is off on the pod's ``eth0`` (the bridge plugin's default
``enabledad: false`` -> ``disableIPV6DAD``), so its addresses are usable at once; the
setup's own frames (router solicitations, MLD reports) happen before a run starts and are
not emitted (docs/model.md, "IPv6").
"""

from __future__ import annotations

from ipaddress import IPv6Interface, IPv6Network
from typing import TYPE_CHECKING

from pktsim.devices.netns import Netns
from pktsim.devices.routes import Route
from pktsim.kubeproxy.tables import restore_tables
from pktsim.model.cluster import NodeInfo, PodInfo
from pktsim.netfilter.conntrack import ConntrackConfig
from pktsim.netfilter.hooks6 import Netfilter6

if TYPE_CHECKING:
    from pktsim.build.topology import Topology

DEFAULT6 = IPv6Network("::/0")


def has_ipv6(topo: Topology) -> bool:
    return "IPv6" in topo.model.config.ip_families


def node_ipv6(topo: Topology, node: NodeInfo, ns: Netns) -> None:
    """The node's IPv6 addresses and routes (after its interfaces exist)."""
    cfg = topo.model.config
    if node.ip6 is None:
        return
    ns.enable_ipv6()
    ns.add_addr6("eth0", IPv6Interface((node.ip6, cfg.node_cidr6.prefixlen)))
    ns.add_route6(DEFAULT6, "eth0", (cfg.node_cidr6.network_address + 1).packed)
    gateway = node.gateway6
    if cfg.bridge in ns.ifaces and gateway is not None:
        ns.add_addr6(cfg.bridge, gateway)


def pod_ipv6(topo: Topology, info: PodInfo, ns: Netns) -> None:
    """The pod's IPv6 address and default route (after ``eth0`` exists)."""
    node = topo.model.nodes[info.node]
    gateway = node.gateway6
    if info.ip6 is None or gateway is None:
        return
    ns.enable_ipv6()
    ns.add_addr6("eth0", IPv6Interface((info.ip6, gateway.network.prefixlen)))
    ns.add_route6(DEFAULT6, "eth0", gateway.ip.packed)


def routes_ipv6(topo: Topology, node: NodeInfo) -> None:
    """``network: routes``: one route per other node's /64 via its IPv6 address."""
    ns = topo.node_ns[node.name]
    ns.routes6.add_many([Route(other.pod_cidr6, "eth0", other.ip6, metric=1024)
                         for other in topo.model.node_list()
                         if other.name != node.name and other.pod_cidr6 is not None and
                         other.ip6 is not None])


def install_netfilter6(topo: Topology, node: NodeInfo) -> None:
    """The node's ip6tables and IPv6 conntrack (nodes with IPv6 only): empty tables."""
    if node.ip6 is None:
        return
    ns = topo.node_ns[node.name]
    nf6 = Netfilter6(ns, topo.streams.stream(f"netfilter6/{node.name}"),
                     config=ConntrackConfig.kube_proxy())
    ns.hooks6 = nf6
    topo.netfilters6[node.name] = nf6


def load_ip6tables(topo: Topology, node: str, text: str) -> None:
    """``ip6tables-restore`` of ``text`` into ``node``: every table the text names is
    replaced (validated first, as the tool does before committing); conntrack is kept."""
    tables = restore_tables(text, family=6)
    for table in tables.values():
        table.validate()
    topo.netfilters6[node].tables.update(tables)
