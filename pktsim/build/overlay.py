"""How a flannel node reaches the other nodes' pods: ``routes``, ``vxlan`` or ``ipip``.

* ``routes`` (kubenet, flannel host-gw: flannel ``pkg/backend/hostgw/hostgw.go``): ``<remote
  podCIDR> via <remote InternalIP> dev eth0`` — the pod packet crosses the node network
  unmodified.
* ``vxlan`` (flannel ``pkg/backend/vxlan/vxlan.go``, ``device.go``, ``vxlan_network.go``; the
  port is Linux's ``vxlan_port``): ``flannel.1`` (VNI 1, UDP 8472, MTU 1450, address
  ``<podCIDR>.0/32``) and per remote node one route ``<remote podCIDR> via <remote .0> dev
  flannel.1 onlink``, a permanent neighbour ``<remote .0> lladdr <remote VTEP MAC>`` and a
  permanent FDB entry ``<remote VTEP MAC> dst <remote node IP>``: "1 route, 1 arp entry and 1
  FDB entry per host".
* ``ipip`` (flannel's IPIP backend, ``pkg/backend/ipip/ipip.go``: ``configureIPIPDevice``
  and ``GetRoute``; the device is Linux ``net/ipv4/ipip.c``): ``flannel.ipip`` (``local``
  the node's IP, ttl inherit, nopmtudisc, MTU the external interface's less 20: 1480,
  address ``<podCIDR>.0/32``) and per remote node ``<remote podCIDR> via <remote node IP>
  dev flannel.ipip onlink``, with the ``cbr0`` bridge as every flannel mode.
  ``DirectRouting`` (routes via ``eth0`` to nodes on the same subnet) is off, flannel's
  default; the kernel's own ``tunl0`` fallback device, which loading ``ipip`` creates down
  and unused, is left out.

``network: calico`` is not here: Calico has no bridge (``pktsim.build.calico``).
"""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Interface, IPv6Address
from typing import TYPE_CHECKING

from pktsim.core.capture import Interface, LinkType
from pktsim.devices.neigh import Neighbour
from pktsim.devices.routes import Route, order_key
from pktsim.devices.tunnels import IpipDevice, VxlanDevice
from pktsim.model.cluster import NodeInfo

if TYPE_CHECKING:
    from pktsim.build.topology import Topology

MTU = {"routes": 1500, "vxlan": 1450, "ipip": 1480}  # pod eth0, bridge and tunnel MTUs
IPIP_DEV = "flannel.ipip"  # ipip.go tunnelName


def pod_mtu(network: str) -> int:
    return MTU.get(network, 1500)


def install(topo: Topology, node: NodeInfo) -> None:
    """Give ``node`` its overlay device (if any) and its routes to every other node."""
    network = topo.model.config.network
    if network == "vxlan":
        _vxlan(topo, node)
    elif network == "ipip":
        _ipip(topo, node)
    else:
        add_routes(topo, node, "eth0", onlink=False, via=lambda other: other.ip)


def _others(topo: Topology, node: NodeInfo) -> list[NodeInfo]:
    return [n for n in topo.model.node_list() if n.name != node.name]


def add_routes(topo: Topology, node: NodeInfo, dev: str, *, onlink: bool,
               via: Callable[[NodeInfo], IPv4Address]) -> None:
    """One route per other node's pod CIDR, as ``ns.add_route`` one by one would leave them.

    Every node has the same route to a given node, so the routes are made once per build and
    shared (5,000 nodes have 25 million of them); each node's table is the stable merge of
    what it had and the shared routes but its own, which is what adding them in turn
    (each ``add`` a stable sort) gives, without 5,000 sorts of 5,000 routes per node."""
    cache_key = ("routes", dev, onlink)
    shared = topo.shared.get(cache_key)
    if shared is None:
        nodes = topo.model.node_list()
        made = [(Route(n.pod_cidr, dev, via(n), onlink=onlink), n.name) for n in nodes]
        made.sort(key=lambda pair: order_key(pair[0]))
        shared = topo.shared[cache_key] = (
            [r for r, _ in made], [order_key(r) for r, _ in made],
            {name: i for i, (_, name) in enumerate(made)})
    routes, keys, position = shared
    own = position[node.name]
    topo.node_ns[node.name].routes.add_many(routes[:own] + routes[own + 1:],
                                            keys[:own] + keys[own + 1:])


def share_vteps(topo: Topology, node: NodeInfo, dev: VxlanDevice,
                address: Callable[[NodeInfo], IPv4Address | IPv6Address | None],
                vtep_mac: Callable[[NodeInfo], bytes] = lambda n: n.vtep_mac,
                remote: Callable[[NodeInfo], bytes] = lambda n: n.ip.packed) -> None:
    """The VTEP entries flannel (``handleSubnetEvents``) or felix (``vxlan_mgr.go``)
    installs on ``node`` for every other node: a PERMANENT neighbour for the other VTEP's
    ``address`` on the device, and an FDB entry from its MAC to the node's IP.  They are
    the same on every node but for the node's own, so they are made once per build and
    shared (``share_peers``/``share_fdb`` leave the node's own out): 5,000 nodes would
    otherwise hold 25 million of each."""
    key = ("vteps", dev.name)
    shared = topo.shared.get(key)
    if shared is None:
        peers: dict[bytes, Neighbour] = {}
        fdb: dict[bytes, bytes] = {}
        for other in topo.model.node_list():
            ip = address(other)
            if ip is not None:
                mac = vtep_mac(other)
                peers[ip.packed] = Neighbour(ip.packed, dev.name, mac, "PERMANENT")
                fdb[mac] = remote(other)
        shared = topo.shared[key] = (peers, fdb)
    peers, fdb = shared
    own = address(node)
    topo.node_ns[node.name].neigh.share_peers(dev.name, peers,
                                              own.packed if own is not None else b"")
    dev.share_fdb(fdb, vtep_mac(node))


def _vxlan(topo: Topology, node: NodeInfo) -> None:
    ns, driver = topo.node_ns[node.name], topo.driver
    name = "flannel.1"
    ns.add_iface(name, node.vtep_mac, mtu=MTU["vxlan"], kind="vxlan")
    ns.add_addr(name, IPv4Interface(f"{node.pod_cidr.network_address}/32"))
    ns.add_iface(f"{name}.stack", b"\x00" * 6, kind="stack")
    ns.tunnel_stack["udp/8472"] = f"{name}.stack"
    dev = VxlanDevice(node.name, name, vni=1, local_ip=node.ip.packed,
                      seed=topo.model.config.seed)
    add_routes(topo, node, name, onlink=True, via=lambda other: other.pod_cidr.network_address)
    share_vteps(topo, node, dev, lambda n: n.pod_cidr.network_address)
    iface = driver.add_interface(Interface(
        node.name, name, description=f"flannel VXLAN device, VNI 1, UDP 8472, MTU 1450, "
        f"{node.pod_cidr.network_address}/32"))
    driver.connect(ns, name, iface, dev, "dev", None, latency=0)
    driver.connect(ns, f"{name}.stack", None, dev, "stack", None, latency=0)
    topo.tunnels[node.name] = dev


def _ipip(topo: Topology, node: NodeInfo) -> None:
    ns, driver = topo.node_ns[node.name], topo.driver
    ns.add_iface(IPIP_DEV, b"", mtu=MTU["ipip"], kind="ipip")
    ns.add_addr(IPIP_DEV, IPv4Interface(f"{node.pod_cidr.network_address}/32"))
    ns.add_iface(f"{IPIP_DEV}.stack", b"\x00" * 6, kind="stack")
    ns.tunnel_stack["ipip"] = f"{IPIP_DEV}.stack"
    dev = IpipDevice(node.name, IPIP_DEV, local_ip=node.ip.packed, seed=topo.model.config.seed)
    add_routes(topo, node, IPIP_DEV, onlink=True, via=lambda other: other.ip)
    iface = driver.add_interface(Interface(
        node.name, IPIP_DEV, LinkType.RAW, description=f"flannel IP-in-IP device (ipip local "
        f"{node.ip}, ttl inherit, nopmtudisc), MTU 1480"))
    driver.connect(ns, IPIP_DEV, iface, dev, "dev", None, latency=0, raw_ip=True)
    driver.connect(ns, f"{IPIP_DEV}.stack", None, dev, "stack", None, latency=0)
    topo.tunnels[node.name] = dev
