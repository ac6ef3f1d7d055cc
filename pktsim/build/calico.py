"""``network: calico``: what calico-node, felix, BIRD and Calico's CNI plugin leave on a node.

There is no bridge.  Per pod (cni-plugin ``pkg/dataplane/linux/dataplane_linux.go``,
``DoNetworking``, ``configureSysctls``, ``SetupRoutes``):

* a veth whose host side is ``caliXXXXXXXXXXX`` (``VethNameForWorkload``), MAC
  ``ee:ee:ee:ee:ee:ee`` (``hostSideMAC``), no address, ``proxy_arp`` 1 and
  ``neigh.<dev>.proxy_delay`` 0, and on the node ``<pod IP> dev caliX scope link``;
* in the pod: ``eth0`` with the pod IP ``/32``, ``169.254.1.1 dev eth0 scope link`` and
  ``default via 169.254.1.1 dev eth0``.  Nothing owns 169.254.1.1: the pod ARPs for it and
  the node answers by proxy ARP (``arp_fwd_proxy``: the route to it leaves by ``eth0``, not
  by the cali device) with ee:ee:ee:ee:ee:ee, so every pod packet is routed by the node,
  even to a pod on the same node (its TTL drops by one).

Per node, from the IP pool's encapsulation (``pktsim.model.calico_ipam`` gives the blocks):

* IPIP (``ipipMode`` Always/CrossSubnet): ``tunl0`` (``ipip`` fallback device, MTU 1480,
  the node's tunnel address ``/32``), BIRD's ``<block> via <node IP> dev tunl0 proto bird
  onlink`` per remote block and ``blackhole <block> proto bird`` per local one (calico confd:
  the static ``route <block> blackhole`` of each local block in ``bird_aggr.cfg``, exported
  to the peers, and ``krt_tunnel="tunl0"`` on the imported IPIP routes,
  ``pkg/backends/calico/bgp_processor.go``);
* VXLAN (``vxlanMode``): ``vxlan.calico`` (VNI 4096, UDP 4789, MTU 1450: felix
  ``config/config_params.go``; MAC ``vtepMACForHost``), and per remote node felix's
  ``<block> via <remote tunnel address> dev vxlan.calico onlink``, a permanent neighbour and
  a permanent FDB entry (felix ``dataplane/linux/vxlan_mgr.go``), all ``proto 80``
  (``dataplanedefs.DefaultRouteProto``), the local blackhole too (``route_mgr.go``
  ``blackholeRoutes``);
* neither: BIRD's ``<block> via <node IP> dev eth0 proto bird`` (BGP-learned).

``CrossSubnet`` encapsulates only towards a node whose address lies on another subnet than
this node's ``eth0``; towards the others the route is the unencapsulated one via ``eth0``
(felix ``route_mgr.go`` ``noEncapRoute``, BIRD's same-subnet export).
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from itertools import pairwise
from typing import TYPE_CHECKING

from pktsim import felix
from pktsim.build.overlay import share_vteps
from pktsim.core.capture import Interface, LinkType
from pktsim.devices.netns import Netns
from pktsim.devices.routes import Route, order_key
from pktsim.devices.tunnels import IpipDevice, VxlanDevice
from pktsim.felix import Inputs
from pktsim.felix.policy import World
from pktsim.felix.static import Config
from pktsim.model.cluster import NodeInfo, PodInfo
from pktsim.netfilter import Netfilter
from pktsim.wire.parse import mac_str

if TYPE_CHECKING:
    from pktsim.build.topology import Topology

LINK_LOCAL_GW = IPv4Address("169.254.1.1")  # the pods' next hop that nobody owns
TUNL0_MTU = 1480  # Calico: 20 bytes of IPIP header off a 1500-byte network
VXLAN_MTU = 1450  # 50 bytes of outer Ethernet/IPv4/UDP/VXLAN
VXLAN_DEV, VXLAN_VNI, VXLAN_PORT = "vxlan.calico", 4096, 4789
FELIX_PROTO = "80"  # felix's own routes: dataplanedefs.DefaultRouteProto
ZERO_MAC = b"\x00" * 6
VETH_LATENCY = 1_000


def pod_mtu(topo: Topology) -> int:
    """The pods' ``eth0`` MTU (and their veths'): the network's, less the encapsulation
    (calico-node writes it into the CNI config: ``veth_mtu``)."""
    encap = topo.model.config.calico.encap
    return {"ipip": TUNL0_MTU, "vxlan": VXLAN_MTU}.get(encap, 1500)


def subnet(topo: Topology, node: NodeInfo) -> IPv4Network:
    """The subnet of the node's ``eth0`` address."""
    return IPv4Interface((int(node.ip), topo.model.config.node_cidr.prefixlen)).network


def same_subnet(topo: Topology, a: NodeInfo, b: NodeInfo) -> bool:
    """Whether two nodes' ``eth0`` addresses share a subnet (CrossSubnet's test)."""
    return subnet(topo, a) == subnet(topo, b)


def install(topo: Topology, node: NodeInfo) -> None:
    """The node's tunnel device (if the pool encapsulates) and its routes to every block."""
    encap = topo.model.config.calico.encap
    ns = topo.node_ns[node.name]
    if encap == "ipip":
        _tunl0(topo, node)
    elif encap == "vxlan":
        _vxlan(topo, node)
    proto = FELIX_PROTO if encap == "vxlan" else "bird"
    routes = [Route(block, "", proto=proto, type="blackhole") for block in node.blocks]
    routes += [Route(IPv4Network(p.ip), p.veth, scope="link")  # SetupRoutes, per pod
               for p in _local_pods(topo, node.name)]
    ns.routes.add_many(routes)
    peers, keys = _peer_routes(topo, node)  # then every other node's blocks, in node order
    ns.routes.add_many(peers, keys)


def _peer_routes(topo: Topology, node: NodeInfo) -> tuple[list[Route], list[tuple[int, int]]]:
    """The routes to every other node's blocks, in the table's order, with their keys.

    They are the same on every node but for the node's own blocks (and CrossSubnet's
    choice, the same for the nodes of one subnet), so they are made and sorted once per
    build: 5,000 nodes sorting 5,000 routes each took longer than the rest of the routes.
    Adding them after the node's own routes, with ``add_many``'s stable merge, leaves the
    table as adding all of them in one go would (each key: what was there first)."""
    pool = topo.model.config.calico
    mixed = pool.encap != "none" and pool.cross_subnet
    group = subnet(topo, node) if mixed else None
    key = ("calico peers", group)
    shared = topo.shared.get(key)
    if shared is None:
        made = [(route, other.name) for other in topo.model.node_list()
                for route in _routes_to(topo, node, other)]
        made.sort(key=lambda pair: order_key(pair[0]))
        at: dict[str, list[int]] = {}
        for i, (_, name) in enumerate(made):
            at.setdefault(name, []).append(i)
        shared = topo.shared[key] = ([r for r, _ in made], [order_key(r) for r, _ in made], at)
    routes, keys, positions = shared
    cut = [-1, *positions.get(node.name, ()), len(routes)]
    mine: list[Route] = []
    my_keys: list[tuple[int, int]] = []
    for start, end in pairwise(cut):
        mine += routes[start + 1:end]
        my_keys += keys[start + 1:end]
    return mine, my_keys


def _local_pods(topo: Topology, node: str) -> list[PodInfo]:
    """The node's pods with a cali veth, from one pass over the model per build."""
    by_node: dict[str, list[PodInfo]] | None = topo.shared.get("calico pods")
    if by_node is None:
        by_node = topo.shared["calico pods"] = {}
        for info in sorted(topo.model.pods.values(), key=lambda p: p.key):
            if not info.pod.host_network:
                by_node.setdefault(info.node, []).append(info)
    return by_node.get(node, [])


def _routes_to(topo: Topology, node: NodeInfo, other: NodeInfo) -> list[Route]:
    """The routes to ``other``'s blocks; alike on every node but for CrossSubnet's choice,
    so made once per (other node, choice) and shared (a big cluster has millions)."""
    pool = topo.model.config.calico
    encap = pool.encap
    if encap != "none" and pool.cross_subnet and same_subnet(topo, node, other):
        encap = "none"
    key = ("calico routes", other.name, encap)
    made: list[Route] | None = topo.shared.get(key)
    if made is None:
        made = topo.shared[key] = _make_routes(topo, other, encap)
    return made


def _make_routes(topo: Topology, other: NodeInfo, encap: str) -> list[Route]:
    pool = topo.model.config.calico
    if encap == "ipip":
        return [Route(b, "tunl0", other.ip, proto="bird", onlink=True) for b in other.blocks]
    if encap == "vxlan" and other.tunnel_ip is not None:
        return [Route(b, VXLAN_DEV, other.tunnel_ip, proto=FELIX_PROTO, onlink=True)
                for b in other.blocks]
    proto = FELIX_PROTO if pool.encap == "vxlan" else "bird"
    return [Route(b, "eth0", other.ip, proto=proto) for b in other.blocks]


def _tunl0(topo: Topology, node: NodeInfo) -> None:
    ns, driver = topo.node_ns[node.name], topo.driver
    ns.add_iface("tunl0", b"", mtu=TUNL0_MTU, kind="ipip")
    if node.tunnel_ip is not None:
        ns.add_addr("tunl0", IPv4Interface(f"{node.tunnel_ip}/32"))
    ns.add_iface("tunl0.stack", ZERO_MAC, kind="stack")
    ns.tunnel_stack["ipip"] = "tunl0.stack"
    dev = IpipDevice(node.name, "tunl0", local_ip=node.ip.packed, seed=topo.model.config.seed)
    iface = driver.add_interface(Interface(
        node.name, "tunl0", LinkType.RAW, description=f"Calico IP-in-IP device tunl0 (ttl "
        f"inherit), MTU {TUNL0_MTU}, {node.tunnel_ip}/32"))
    driver.connect(ns, "tunl0", iface, dev, "dev", None, latency=0, raw_ip=True)
    driver.connect(ns, "tunl0.stack", None, dev, "stack", None, latency=0)
    topo.tunnels[node.name] = dev


def _vxlan(topo: Topology, node: NodeInfo) -> None:
    ns, driver = topo.node_ns[node.name], topo.driver
    ns.add_iface(VXLAN_DEV, node.vtep_mac, mtu=VXLAN_MTU, kind="vxlan")
    if node.tunnel_ip is not None:
        ns.add_addr(VXLAN_DEV, IPv4Interface(f"{node.tunnel_ip}/32"))
    ns.add_iface(f"{VXLAN_DEV}.stack", ZERO_MAC, kind="stack")
    ns.tunnel_stack[f"udp/{VXLAN_PORT}"] = f"{VXLAN_DEV}.stack"
    dev = VxlanDevice(node.name, VXLAN_DEV, vni=VXLAN_VNI, local_ip=node.ip.packed,
                      seed=topo.model.config.seed, port=VXLAN_PORT)
    share_vteps(topo, node, dev, lambda n: n.tunnel_ip)
    iface = driver.add_interface(Interface(
        node.name, VXLAN_DEV, description=f"Calico VXLAN device, VNI {VXLAN_VNI}, UDP "
        f"{VXLAN_PORT}, MTU {VXLAN_MTU}, {node.tunnel_ip}/32 {mac_str(node.vtep_mac)}"))
    driver.connect(ns, VXLAN_DEV, iface, dev, "dev", None, latency=0)
    driver.connect(ns, f"{VXLAN_DEV}.stack", None, dev, "stack", None, latency=0)
    topo.tunnels[node.name] = dev


def pod_netns(topo: Topology, info: PodInfo) -> Netns:
    """The pod's sandbox and its cali veth on the node, as ``DoNetworking`` sets them."""
    driver, key = topo.driver, info.key
    mtu = pod_mtu(topo)
    name = f"netns/{key}"
    ns = Netns(key, rng_factory=lambda: topo.streams.stream(name), new_pid=driver.new_pid)
    ns.add_iface("lo", ZERO_MAC, mtu=65536, kind="loopback")
    ns.add_iface("eth0", info.mac, mtu=mtu)
    ns.add_addr("eth0", IPv4Interface((int(info.ip), 32)))
    for route in _pod_routes(topo):
        ns.routes.add(route)
    topo.pod_ns[key] = ns
    node_ns = topo.node_ns[info.node]
    host = node_ns.add_iface(info.veth, info.veth_mac, mtu=mtu)  # its route: ``install``
    host.proxy_arp = True
    driver.loopback(ns, "lo", driver.add_interface(Interface(key, "lo",
                                                             description=f"pod {key} lo")))
    eth0 = driver.add_interface(Interface(
        key, "eth0", description=f"pod {key} eth0 {info.ip}/32 {mac_str(info.mac)}"
        f" (veth peer {info.veth} on {info.node})"))
    veth = driver.add_interface(Interface(
        info.node, info.veth, description=f"host side of pod {key}'s eth0 (Calico: "
        f"{mac_str(info.veth_mac)}, proxy_arp, {info.ip} dev {info.veth} scope link)"))
    driver.connect(ns, "eth0", eth0, node_ns, info.veth, veth, latency=VETH_LATENCY)
    return ns


def _pod_routes(topo: Topology) -> tuple[Route, Route]:
    """A pod's ``169.254.1.1 dev eth0 scope link`` and ``default via 169.254.1.1 dev
    eth0``: the same in every pod, and routes are immutable, so made once per build."""
    found: tuple[Route, Route] | None = topo.shared.get("calico pod routes")
    if found is None:
        found = topo.shared["calico pod routes"] = (
            Route(IPv4Network(LINK_LOCAL_GW), "eth0", scope="link"),
            Route(IPv4Network("0.0.0.0/0"), "eth0", LINK_LOCAL_GW))
    return found


def workloads(topo: Topology, node: str) -> list[tuple[str, PodInfo]]:
    """The node's local workload endpoints as felix sees them: (host interface, pod), in
    interface-name order (hostNetwork pods have none)."""
    return sorted(((p.veth, p) for p in _local_pods(topo, node)), key=lambda pair: pair[0])


def pool_cidr(topo: Topology) -> IPv4Network:
    """The IP pool's CIDR (the cluster podCIDR unless the pool gives its own)."""
    cfg = topo.model.config
    return cfg.calico.cidr or cfg.pod_cidr


def felix_inputs(topo: Topology, node: NodeInfo) -> Inputs:
    """What felix on ``node`` reads from the datastore: the pool (its modes and
    ``natOutgoing``), the node's workloads, every workload and namespace (for selectors),
    the policies and every node's address (``all-hosts-net``)."""
    model = topo.model
    pool = model.config.calico
    everyone = shared_world(topo)
    cfg = Config(ipip=pool.ipip_mode != "Never", vxlan=pool.vxlan_mode != "Never",
                 ipip_tunnel=pool.encap == "ipip" and node.tunnel_ip is not None,
                 vxlan_tunnel=pool.encap == "vxlan" and node.tunnel_ip is not None,
                 nat_outgoing=pool.nat_outgoing)
    hosts = topo.shared.get("felix hosts")
    if hosts is None:  # every node's address, made once: all-hosts-net on every node
        hosts = topo.shared["felix hosts"] = tuple(str(n.ip) for n in model.node_list())
    return Inputs(cfg, tuple(p for _, p in workloads(topo, node.name)), everyone,
                  tuple(model.network_policies), hosts,
                  ((str(pool_cidr(topo)), pool.nat_outgoing),))


def shared_world(topo: Topology) -> World:
    """Every workload endpoint and namespace's labels, made once per build."""
    found: World | None = topo.shared.get("felix world")
    if found is None:
        model = topo.model
        pods = sorted((p for p in model.pods.values() if not p.pod.host_network),
                      key=lambda p: p.key)
        found = topo.shared["felix world"] = World(tuple(pods), model.namespace_labels)
    return found


def install_felix(topo: Topology, node: NodeInfo, nf: Netfilter) -> None:
    """felix's tables and IP sets on ``node`` (``pktsim.felix``), beside kube-proxy's."""
    cache = topo.shared.get("felix")
    if cache is None:
        cache = topo.shared["felix"] = felix.BuildCache()
    felix.install(nf, felix.node_felix(felix_inputs(topo, node), cache), cache)
