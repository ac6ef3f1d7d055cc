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
* ``vxlan``: flannel's second device ``flannel-v6.1`` (VNI 1, UDP 8472 over IPv6 from the
  node's IPv6 address, its own random VTEP MAC, the /64's ``::`` as its /128 address), and
  per other node ``<its /64> via <its /64's ::> dev flannel-v6.1 onlink``, a PERMANENT
  neighbour for that ``::`` and an FDB entry from its VTEP MAC to its IPv6 address
  (flannel ``pkg/backend/vxlan``, the v6 halves of ``newSubnetAttrs`` and
  ``handleSubnetEvents``).

* ip6tables: a node with IPv6 gets its IPv6 netfilter (``install_netfilter6``: raw, mangle,
  nat and filter with their built-in chains, ACCEPT, and IPv6 conntrack with kube-proxy's
  sysctls) and br_netfilter's ``bridge-nf-call-ip6tables=1``; until kube-proxy's IPv6
  rules are written the tables stay empty.  ``load_ip6tables`` is ``ip6tables-restore``
  into a node (``kubeproxy.tables.restore_tables(text, family=6)``).

Duplicate address detection is off on the pod's ``eth0`` (the bridge plugin's default
``enabledad: false`` -> ``disableIPV6DAD``), so its addresses are usable at once; the
setup's own frames (router solicitations, MLD reports, the bridge's DAD) happen before a run
starts and are not emitted (docs/model.md, "IPv6"), but what they leave behind is: the node
holds a STALE entry for each pod's link-local, learned from its first router solicitation
(docs/kernel-observations.md, "IPv6").
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
from pktsim.wire.ip6 import link_local

if TYPE_CHECKING:
    from pktsim.build.topology import Topology

DEFAULT6 = IPv6Network("::/0")


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
    # the pod's first router solicitation, at link-up, left the node a STALE entry for its
    # link-local (ndisc_recv_rs); the solicitation itself is setup, before any run
    bridge = topo.model.config.bridge
    node_ns = topo.node_ns.get(info.node)
    if node_ns is not None and bridge in node_ns.ifaces:
        node_ns.neigh.set(bridge, link_local(info.mac), info.mac, "STALE")


VXLAN6_DEV = "flannel-v6.1"
VXLAN6_MTU = 1430  # the external interface's 1500 less 70: IPv6 40, UDP 8, VXLAN 8, inner 14


def overlay_ipv6(topo: Topology, node: NodeInfo) -> None:
    """How ``node`` reaches the other nodes' IPv6 pods, per flannel mode."""
    network = topo.model.config.network
    if network == "routes":
        routes_ipv6(topo, node)
    elif network == "vxlan":
        _vxlan6(topo, node)
        ns = topo.node_ns[node.name]
        for name in ("flannel.1", VXLAN6_DEV):  # an Ethernet-like device: its link-local
            ns.add_addr6(name, IPv6Interface((link_local(ns.ifaces[name].mac), 64)))


def vtep_mac6(topo: Topology, node: NodeInfo) -> bytes:
    """``flannel-v6.1``'s MAC: random, as the kernel gives a new device one (flannel keeps
    it in the node's ``backend-v6-data`` annotation), drawn from the seed by node."""
    key = ("vtep mac6", node.name)  # drawn once per build: every node's peers name it
    mac: bytes | None = topo.shared.get(key)
    if mac is None:
        mac = topo.shared[key] = topo.streams.mac(f"{node.name}/{VXLAN6_DEV}")
    return mac


def _vxlan6(topo: Topology, node: NodeInfo) -> None:
    from pktsim.build.overlay import share_vteps
    from pktsim.core.capture import Interface
    from pktsim.devices.tunnels import VxlanDevice

    ns, driver = topo.node_ns[node.name], topo.driver
    assert node.ip6 is not None and node.pod_cidr6 is not None
    mac = vtep_mac6(topo, node)
    ns.add_iface(VXLAN6_DEV, mac, mtu=VXLAN6_MTU, kind="vxlan")
    ns.add_addr6(VXLAN6_DEV, IPv6Interface((node.pod_cidr6.network_address, 128)))
    ns.add_iface(f"{VXLAN6_DEV}.stack", b"\x00" * 6, kind="stack")
    ns.tunnel_stack["udp6/8472"] = f"{VXLAN6_DEV}.stack"
    dev = VxlanDevice(node.name, VXLAN6_DEV, vni=1, local_ip=node.ip6.packed,
                      seed=topo.model.config.seed)
    ns.routes6.add_many([Route(other.pod_cidr6, VXLAN6_DEV, other.pod_cidr6.network_address,
                               onlink=True, metric=1024)
                         for other in topo.model.node_list()
                         if other.name != node.name and other.pod_cidr6 is not None])
    share_vteps(topo, node, dev, lambda n: n.pod_cidr6.network_address if n.pod_cidr6 else None,
                lambda n: vtep_mac6(topo, n), lambda n: n.ip6.packed if n.ip6 else b"")
    iface = driver.add_interface(Interface(
        node.name, VXLAN6_DEV, description=f"flannel IPv6 VXLAN device, VNI 1, UDP 8472 over "
        f"IPv6, MTU {VXLAN6_MTU}, {node.pod_cidr6.network_address}/128"))
    driver.connect(ns, VXLAN6_DEV, iface, dev, "dev", None, latency=0)
    driver.connect(ns, f"{VXLAN6_DEV}.stack", None, dev, "stack", None, latency=0)
    topo.tunnels6[node.name] = dev


def routes_ipv6(topo: Topology, node: NodeInfo) -> None:
    """``network: routes``: one route per other node's /64 via its IPv6 address."""
    ns = topo.node_ns[node.name]
    ns.routes6.add_many([Route(other.pod_cidr6, "eth0", other.ip6, metric=1024)
                         for other in topo.model.node_list()
                         if other.name != node.name and other.pod_cidr6 is not None and
                         other.ip6 is not None])


def install_netfilter6(topo: Topology, node: NodeInfo) -> None:
    """The node's ip6tables and IPv6 conntrack (nodes with IPv6 only), with its rules."""
    if node.ip6 is None:
        return
    ns = topo.node_ns[node.name]
    nf6 = Netfilter6(ns, topo.streams.stream(f"netfilter6/{node.name}"),
                     config=ConntrackConfig.kube_proxy())
    ns.hooks6 = nf6
    topo.netfilters6[node.name] = nf6
    load_rules6(topo, node)


def load_rules6(topo: Topology, node: NodeInfo) -> None:
    """The node's ip6tables from the model as it is now (a kube-proxy sync replaces them;
    conntrack is kept): kube-proxy's IPv6 proxier's rules (``node_rules6``), kubelet's and
    kube-proxy's canaries, and flanneld's IPv6 masquerade and forward chains
    (``masqIP6Rules``, ``forwardRules`` for the IPv6 network)."""
    from pktsim.kubeproxy import node_rules6
    from pktsim.netfilter import Table, flannel_forward, flannel_masquerade
    from pktsim.netfilter.presets import canaries
    from pktsim.netfilter.rules import BUILTIN_CHAINS

    nf6 = topo.netfilters6.get(node.name)
    if nf6 is None or node.pod_cidr6 is None:
        return
    cfg = topo.model.config
    nf6.tables = {name: Table(name) for name in BUILTIN_CHAINS}
    nf6.tables.update(restore_tables(node_rules6(topo.model, node.name), family=6))
    canaries(nf6.tables)
    flannel_masquerade(nf6.table("nat"), str(node.pod_cidr6), str(cfg.pod_cidr6))
    flannel_forward(nf6.table("filter"), str(cfg.pod_cidr6))
    nf6.validate()


def load_ip6tables(topo: Topology, node: str, text: str) -> None:
    """``ip6tables-restore`` of ``text`` into ``node``: every table the text names is
    replaced (validated first, as the tool does before committing); conntrack is kept."""
    tables = restore_tables(text, family=6)
    for table in tables.values():
        table.validate()
    topo.netfilters6[node].tables.update(tables)
