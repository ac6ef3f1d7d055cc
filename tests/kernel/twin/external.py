"""pktsim's outside world in the cross-node twin (pktsim/build/external.py): a router with
eth0 on the node network (the nodes' default gateway) and eth1 at ``.1`` of the external
network, and clients there (default route via the router)::

    net ns    : sw1 (bridge, the external network) with xr (router eth1), xcp<i> (clients);
                sw0 also gets swr (router eth0)
    router ns : eth0 <router_ip>/<node prefix>, eth1 <ext .1>, ip_forward=1, no netfilter
    client ns : eth0 <ip>/<ext prefix>, default via <ext .1>

The Services comparison needs it for traffic leaving the cluster (MASQUERADE to the node's
address) and for the LoadBalancer route pktsim gives the router.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .namespaces import Twin

__all__ = ["EXT_SWITCH", "ROUTER_EXT_PORT", "ROUTER_PORT", "ExternalHost", "ExternalSpec",
           "build_external", "ext_ports"]

EXT_SWITCH = "sw1"  # the external network (with ``external=``)
ROUTER_PORT = "swr"  # the router's port on sw0
ROUTER_EXT_PORT = "xr"  # the router's port on sw1


@dataclass(frozen=True)
class ExternalHost:
    """A client on the external network: ``external/<name>``, its IPv4 and MAC."""

    name: str
    ip: str
    mac: str


@dataclass(frozen=True)
class ExternalSpec:
    """pktsim's outside world: the router (eth0 address and MAC, eth1 MAC), the external
    network, its clients, and ``routes``: extra (prefix, via) routes of the router, out of
    eth0 (pktsim routes loadBalancerCIDR to the first node)."""

    router_ip: str
    router_mac: str
    ext_cidr: str
    ext_mac: str
    clients: tuple[ExternalHost, ...] = ()
    routes: tuple[tuple[str, str], ...] = ()

    @property
    def ext_ip(self) -> str:
        return str(ipaddress.IPv4Network(self.ext_cidr).network_address + 1)


def ext_ports(ext: ExternalSpec | None) -> list[str]:
    """The clients' switch ports on sw1, in client order."""
    n = len(ext.clients) if ext else 0
    return [f"xcp{i + 1}" for i in range(n)]


def _plug(twin: Twin, net: str, port: str, bridge: str, ns: str, dev: str, mac: str,
          addr: str) -> None:
    """A veth from ``bridge`` (in the net namespace) to ``dev`` in ``ns``, addressed."""
    twin.veth_pair(net, port, ns, dev)
    twin.ip(net, "link", "set", port, "master", bridge)
    twin.ip(net, "link", "set", port, "up")
    twin.ip(ns, "link", "set", dev, "address", mac, "mtu", "1500")
    twin.ip(ns, "addr", "add", addr, "dev", dev)
    twin.ip(ns, "link", "set", dev, "up")


def build_external(twin: Twin, ext: ExternalSpec, *, net: str, switch: str, router_ns: str,
                   client_nss: dict[str, str], node_prefix_len: int) -> None:
    """The router on ``switch`` (sw0) and on a second switch ``sw1`` (the external
    network, in the net namespace too), and the external clients on sw1.
    ``client_nss``: ``external/<name>`` -> namespace."""
    twin.add_ns(router_ns)
    twin.sysctl(router_ns, "net.ipv4.ip_forward=1")
    twin.ip(router_ns, "link", "set", "lo", "up")
    twin.ip(net, "link", "add", EXT_SWITCH, "type", "bridge", "mcast_snooping", "0")
    ext_net = ipaddress.IPv4Network(ext.ext_cidr)
    _plug(twin, net, ROUTER_PORT, switch, router_ns, "eth0", ext.router_mac,
          f"{ext.router_ip}/{node_prefix_len}")
    _plug(twin, net, ROUTER_EXT_PORT, EXT_SWITCH, router_ns, "eth1", ext.ext_mac,
          f"{ext.ext_ip}/{ext_net.prefixlen}")
    for prefix, via in ext.routes:
        twin.ip(router_ns, "route", "add", prefix, "via", via, "dev", "eth0")
    for port, c in zip(ext_ports(ext), ext.clients, strict=True):
        cns = client_nss[f"external/{c.name}"]
        twin.add_ns(cns)
        twin.ip(cns, "link", "set", "lo", "up")
        _plug(twin, net, port, EXT_SWITCH, cns, "eth0", c.mac, f"{c.ip}/{ext_net.prefixlen}")
        twin.ip(cns, "route", "add", "default", "via", ext.ext_ip, "dev", "eth0")
    twin.ip(net, "link", "set", EXT_SWITCH, "up")
