"""The cross-node twin: two (or more) Kubernetes-like nodes out of network namespaces,
joined by a node network, with the pods' cross-node path in one of the ``network:`` modes
pktsim models (``routes``, ``vxlan`` = flannel, ``ipip`` = flannel IPIP; see :mod:`overlay`),
optionally pktsim's outside world (:mod:`external`) and its Services (:mod:`services`).

No address outside the namespaces is ever used: the default route of the nodes points at
``172.18.0.1``, which does not exist unless ``external=`` adds the router there, and
nothing is sent to it.

Topology (node network = a bridge in its own namespace, playing the switch)::

    net ns  : sw0 (Linux bridge, stp off, mcast_snooping 0, no address)
                ├── swp1 <-> node-1 ns: eth0 172.18.0.2/16 02:42:ac:12:00:02
                └── swp2 <-> node-2 ns: eth0 172.18.0.3/16 02:42:ac:12:00:03
    node ns : lo, eth0 (above), default via 172.18.0.1 dev eth0, ip_forward=1,
              cbr0 (bridge, 10.244.X.1/24, MAC and MTU given) with one host veth per pod
              (hairpin on, MAC given), pods as in KernelNode (default via 10.244.X.1)
    every ns: IPv6 off, net.ipv4.tcp_rmem pinned (as KernelNode)

Interface keys: ``"<pod>:eth0"`` (``"<pod>:lo"`` with ``capture_lo``), ``"<node>:<veth>"``,
``"<node>:cbr0"``, ``"<node>:eth0"``, ``"<node>:flannel.1"`` / ``"<node>:flannel.ipip"`` and, with
``capture_switch``, ``"net:swp<i>"``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from . import overlay, services
from .external import EXT_SWITCH, ROUTER_EXT_PORT, ROUTER_PORT, ExternalSpec, build_external
from .external import ext_ports as _ext_ports
from .namespaces import Twin, new_tag
from .node import PodSpec, V6Plan, bridge_v6, plug_pod
from .overlay import OVERLAY_MTU, TUNNEL_DEV, VXLAN6_DEV, VXLAN_DEV

__all__ = ["SWITCH", "KernelCluster", "NodeSpec"]

SWITCH = "sw0"


@dataclass(frozen=True)
class NodeSpec:
    """One node: name, eth0 IPv4 and MAC, pod CIDR, bridge MAC, VTEP MAC (vxlan), pods,
    and (dual-stack) eth0's IPv6 address and the node's IPv6 pod /64."""

    name: str
    ip: str
    mac: str
    pod_cidr: str
    bridge_mac: str
    pods: tuple[PodSpec, ...] = field(default_factory=tuple)
    vtep_mac: str | None = None
    ip6: str | None = None
    pod_cidr6: str | None = None
    vtep_mac6: str | None = None  # flannel-v6.1's MAC (dual-stack vxlan)

    @property
    def tunnel_ip6(self) -> str | None:
        """flannel-v6.1's address: the node's /64's ``::``."""
        if self.pod_cidr6 is None:
            return None
        return str(ipaddress.IPv6Network(self.pod_cidr6).network_address)

    @property
    def gateway6(self) -> str | None:
        """cbr0's IPv6 address: host-local's default gateway, the /64's first address."""
        if self.pod_cidr6 is None:
            return None
        return str(ipaddress.IPv6Network(self.pod_cidr6).network_address + 1)

    @property
    def v6(self) -> V6Plan | None:
        if self.pod_cidr6 is None:
            return None
        gw = self.gateway6
        assert gw is not None
        return V6Plan(gw, ipaddress.IPv6Network(self.pod_cidr6).prefixlen)

    @property
    def gateway(self) -> str:
        return str(ipaddress.IPv4Network(self.pod_cidr).network_address + 1)

    @property
    def tunnel_ip(self) -> str:
        return str(ipaddress.IPv4Network(self.pod_cidr).network_address)

    @property
    def prefix_len(self) -> int:
        return ipaddress.IPv4Network(self.pod_cidr).prefixlen


class KernelCluster(Twin):
    """Context manager building the node network, the nodes, their pods and the overlay."""

    def __init__(
        self,
        nodes: Iterable[NodeSpec],
        *,
        mode: str = "routes",
        node_prefix_len: int = 16,
        default_gateway: str | None = "172.18.0.1",
        bridge: str = "cbr0",
        hairpin: bool = True,
        capture_lo: bool = False,
        capture_switch: bool = False,
        settle_igmp: bool = True,
        vxlan_udp_csum: bool | None = None,
        external: ExternalSpec | None = None,
        br_netfilter: bool = False,
        node_prefix_len6: int = 64,
        workdir: str | None = None,
    ) -> None:
        if mode not in OVERLAY_MTU:
            raise ValueError(f"mode must be one of {sorted(OVERLAY_MTU)}")
        nodes = list(nodes)
        self.dual_stack = any(n.pod_cidr6 or n.ip6 for n in nodes)
        if self.dual_stack and (mode not in ("routes", "vxlan") or external is not None):
            raise ValueError("dual-stack twins: network routes or vxlan, no external world "
                             "(yet)")
        super().__init__(disable_ipv6=not self.dual_stack, workdir=workdir)
        self.node_prefix_len6 = node_prefix_len6
        self.nodes = nodes
        self.pods = [p for n in self.nodes for p in n.pods]
        self._check_names()
        self.mode = mode
        self.mtu = OVERLAY_MTU[mode]
        self.bridge, self.hairpin = bridge, hairpin
        self.capture_lo, self.capture_switch = capture_lo, capture_switch
        self.settle_igmp = settle_igmp
        self.node_prefix_len = node_prefix_len
        self.default_gateway = default_gateway
        self.vxlan_udp_csum = vxlan_udp_csum
        self.external = external
        self.br_netfilter = br_netfilter
        self._name_namespaces()

    def _check_names(self) -> None:
        """Names are keys (``<who>:<ifname>``) and namespace suffixes: all unique."""
        if len({p.name for p in self.pods}) != len(self.pods):
            raise ValueError("pod names must be unique")
        for p in self.pods:
            if len(p.veth) > 15:
                raise ValueError(f"veth name too long: {p.veth}")
            ipaddress.IPv4Address(p.ip)
            if p.ip6:
                ipaddress.IPv6Address(p.ip6)
        names = [n.name for n in self.nodes] + [p.name for p in self.pods] + ["net"]
        if len(set(names)) != len(names):
            raise ValueError("node and pod names must be unique (and not 'net')")

    def _name_namespaces(self) -> None:
        for n in self.nodes:
            if self.mode == "vxlan" and not n.vtep_mac:
                raise ValueError(f"{n.name}: vxlan needs vtep_mac")
            ipaddress.IPv4Address(n.ip)
            if self.dual_stack and not (n.ip6 and n.pod_cidr6):
                raise ValueError(f"{n.name}: a dual-stack node needs ip6 and pod_cidr6")
        self.tag = new_tag("pktk6" if self.dual_stack else "pktk")
        self.net_ns = f"{self.tag}-net"
        self.node_nss = {n.name: f"{self.tag}-{n.name}" for n in self.nodes}
        self.pod_ns = {p.name: f"{self.tag}-pod-{p.name}" for p in self.pods}
        self.node_of = {p.name: n.name for n in self.nodes for p in n.pods}
        self.router_ns = f"{self.tag}-router"
        ext = self.external
        self.ext_nss = {f"external/{c.name}": f"{self.tag}-ext-{c.name}"
                        for c in (ext.clients if ext else ())}
        if ext is not None:
            if self.default_gateway != ext.router_ip:
                raise ValueError("the router must be the nodes' default gateway")
            if len(self.ext_nss) != len(ext.clients):
                raise ValueError("external client names must be unique")

    # ---------------------------------------------------------------- naming
    @property
    def tunnel(self) -> str | None:
        return TUNNEL_DEV.get(self.mode)

    def node(self, name: str) -> NodeSpec:
        return next(n for n in self.nodes if n.name == name)

    def pod(self, name: str) -> PodSpec:
        return next(p for p in self.pods if p.name == name)

    def ns_of(self, who: str) -> str:
        if who == "net":
            return self.net_ns
        if who in self.node_nss:
            return self.node_nss[who]
        if self.external is not None:
            if who == "external":
                return self.router_ns
            if who in self.ext_nss:
                return self.ext_nss[who]
        return self.pod_ns[who]

    def veth_mac(self, node_index: int, pod_index: int, p: PodSpec) -> str:
        """The host veth's MAC: pktsim's, else a fixed one per (node, pod) position."""
        return (p.veth_mac or f"0a:00:00:00:{node_index + 1:02x}:{pod_index + 2:02x}").lower()

    def l2_len(self, key: str) -> int:
        return 0 if key.endswith(":flannel.ipip") else 14

    def namespaces(self) -> list[str]:
        ext = [self.router_ns, *self.ext_nss.values()] if self.external else []
        return [self.net_ns, *self.node_nss.values(), *self.pod_ns.values(), *ext]

    # ---------------------------------------------------------------- setup
    def _setup(self) -> None:
        net = self.net_ns
        # the node network only carries frames: no IPv6 of its own (no DAD, MLD, RS)
        self.add_ns(net, ipv6=False)
        self.ip(net, "link", "set", "lo", "up")
        # the switch: no STP (default), no multicast snooping (a snooping bridge sends
        # IGMP reports of its own), no address: it only carries frames
        self.ip(net, "link", "add", SWITCH, "type", "bridge", "mcast_snooping", "0")
        for i, n in enumerate(self.nodes):
            self._build_node(i, n)
        if self.external is not None:
            build_external(self, self.external, net=net, switch=SWITCH,
                           router_ns=self.router_ns, client_nss=self.ext_nss,
                           node_prefix_len=self.node_prefix_len)
        self.ip(net, "link", "set", SWITCH, "up")
        for n in self.nodes:
            others = [o for o in self.nodes if o.name != n.name]
            overlay.build_overlay(self, self.node_nss[n.name], self.mode, n, others,
                                  self.vxlan_udp_csum)
        if self.br_netfilter:
            services.enable_br_netfilter(self.node_nss)
        for n in self.nodes:  # cbr0 up last (see KernelNode._setup: IGMP needs carrier)
            self.ip(self.node_nss[n.name], "link", "set", self.bridge, "up")
        self.wait_ready(self._all_links(), self._bridge_ports(),
                        unknown_ok=lambda key: key.endswith((":flannel.1", ":flannel.ipip",
                                                             f":{VXLAN6_DEV}")))
        if self.settle_igmp:
            self.wait_bridge_igmp([f"{n.name}:{self.bridge}" for n in self.nodes])
        if self.dual_stack:
            self.wait_ipv6_settled([*self.node_nss.values(), *self.pod_ns.values()])
        self.setup_counters = self.counters()

    def _build_node(self, i: int, n: NodeSpec) -> None:
        """Node namespace: eth0 on the switch port ``swp<i+1>``, its default route, the
        pod bridge (still down) and the pods on it."""
        ns = self.node_nss[n.name]
        self.add_ns(ns)
        self.sysctl(ns, "net.ipv4.ip_forward=1")
        if self.dual_stack:  # a router before eth0 is up: it never solicits routers
            self.sysctl(ns, "net.ipv6.conf.all.forwarding=1")
        self.ip(ns, "link", "set", "lo", "up")
        port = f"swp{i + 1}"
        self.veth_pair(self.net_ns, port, ns)
        self.ip(self.net_ns, "link", "set", port, "master", SWITCH)
        self.ip(self.net_ns, "link", "set", port, "up")
        self.ip(ns, "link", "set", "eth0", "address", n.mac, "mtu", "1500")
        self.ip(ns, "addr", "add", f"{n.ip}/{self.node_prefix_len}", "dev", "eth0")
        if n.ip6:
            self.ip(ns, "addr", "add", f"{n.ip6}/{self.node_prefix_len6}", "dev", "eth0")
        self.ip(ns, "link", "set", "eth0", "up")
        if self.default_gateway:
            self.ip(ns, "route", "add", "default", "via", self.default_gateway, "dev", "eth0")
        self.ip(ns, "link", "add", self.bridge, "type", "bridge")
        self.ip(ns, "link", "set", self.bridge, "address", n.bridge_mac, "mtu", str(self.mtu))
        self.ip(ns, "addr", "add", f"{n.gateway}/{n.prefix_len}", "dev", self.bridge)
        v6 = n.v6
        if v6 is not None:
            bridge_v6(self, ns, self.bridge, v6.gateway, v6.prefix_len)
        for j, p in enumerate(n.pods):
            plug_pod(self, ns, self.pod_ns[p.name], p, veth_mac=self.veth_mac(i, j, p),
                     bridge=self.bridge, prefix_len=n.prefix_len, gateway=n.gateway,
                     mtu=self.mtu, hairpin=self.hairpin, v6=v6)

    def _all_links(self) -> dict[str, tuple[str, str]]:
        """Every link that must be up before a scenario: the captured ones (less the
        loopbacks: ``lo`` has no carrier state) and the switches' ports."""
        out = {k: v for k, v in self.interfaces().items() if v[1] != "lo"}
        for i, _n in enumerate(self.nodes):
            out[f"net:swp{i + 1}"] = (self.net_ns, f"swp{i + 1}")
        out[f"net:{SWITCH}"] = (self.net_ns, SWITCH)
        if self.external is not None:
            for port in (ROUTER_PORT, ROUTER_EXT_PORT, EXT_SWITCH, *_ext_ports(self.external)):
                out[f"net:{port}"] = (self.net_ns, port)
        return out

    def _bridge_ports(self) -> dict[str, list[str]]:
        out = {self.node_nss[n.name]: [p.veth for p in n.pods] for n in self.nodes}
        out[self.net_ns] = [f"swp{i + 1}" for i in range(len(self.nodes))]
        if self.external is not None:
            out[self.net_ns] += [ROUTER_PORT, ROUTER_EXT_PORT, *_ext_ports(self.external)]
        return out

    # ---------------------------------------------------------------- state
    def interfaces(self) -> dict[str, tuple[str, str]]:
        out: dict[str, tuple[str, str]] = {}
        for p in self.pods:
            out[f"{p.name}:eth0"] = (self.pod_ns[p.name], "eth0")
            if self.capture_lo:
                out[f"{p.name}:lo"] = (self.pod_ns[p.name], "lo")
        for n in self.nodes:
            ns = self.node_nss[n.name]
            for p in n.pods:
                out[f"{n.name}:{p.veth}"] = (ns, p.veth)
            out[f"{n.name}:{self.bridge}"] = (ns, self.bridge)
            out[f"{n.name}:eth0"] = (ns, "eth0")
            if self.tunnel:
                out[f"{n.name}:{self.tunnel}"] = (ns, self.tunnel)
            if self.mode == "vxlan" and n.vtep_mac6:
                out[f"{n.name}:{VXLAN6_DEV}"] = (ns, VXLAN6_DEV)
        if self.external is not None:
            out["external:eth0"] = (self.router_ns, "eth0")
            out["external:eth1"] = (self.router_ns, "eth1")
            for who, ns in self.ext_nss.items():
                out[f"{who}:eth0"] = (ns, "eth0")
        if self.capture_switch:
            for i, _n in enumerate(self.nodes):
                out[f"net:swp{i + 1}"] = (self.net_ns, f"swp{i + 1}")
        return out

    def iface_macs(self) -> dict[str, str]:
        """key -> MAC of that interface."""
        out: dict[str, str] = {}
        for i, n in enumerate(self.nodes):
            for j, p in enumerate(n.pods):
                out[f"{p.name}:eth0"] = p.mac.lower()
                out[f"{n.name}:{p.veth}"] = self.veth_mac(i, j, p)
            out[f"{n.name}:{self.bridge}"] = n.bridge_mac.lower()
            out[f"{n.name}:eth0"] = n.mac.lower()
            if self.mode == "vxlan" and n.vtep_mac:
                out[f"{n.name}:{VXLAN_DEV}"] = n.vtep_mac.lower()
            if self.mode == "vxlan" and n.vtep_mac6:
                out[f"{n.name}:{VXLAN6_DEV}"] = n.vtep_mac6.lower()
        if self.external is not None:
            out["external:eth0"] = self.external.router_mac.lower()
            out["external:eth1"] = self.external.ext_mac.lower()
            for c in self.external.clients:
                out[f"external/{c.name}:eth0"] = c.mac.lower()
        return out

    def mac_names(self) -> dict[str, str]:
        """MAC -> symbolic name (``node-1.eth0``, ``node-1.cbr0``, ``node-1.flannel.1``,
        ``node-1.<veth>``, ``<pod>.eth0``, ``broadcast``, ``zero``)."""
        names = {"ff:ff:ff:ff:ff:ff": "broadcast", "00:00:00:00:00:00": "zero"}
        for i, n in enumerate(self.nodes):
            names[n.mac.lower()] = f"{n.name}.eth0"
            names[n.bridge_mac.lower()] = f"{n.name}.{self.bridge}"
            if n.vtep_mac:
                names[n.vtep_mac.lower()] = f"{n.name}.{VXLAN_DEV}"
            if n.vtep_mac6:
                names[n.vtep_mac6.lower()] = f"{n.name}.{VXLAN6_DEV}"
            for j, p in enumerate(n.pods):
                names[p.mac.lower()] = f"{p.name}.eth0"
                names[self.veth_mac(i, j, p)] = f"{n.name}.{p.veth}"
        if self.external is not None:
            names[self.external.router_mac.lower()] = "external.eth0"
            names[self.external.ext_mac.lower()] = "external.eth1"
            for c in self.external.clients:
                names[c.mac.lower()] = f"external/{c.name}.eth0"
        return names

    def flush_state(self) -> None:
        """Forget dynamic neighbours (the overlay's permanent ones stay), dynamic FDB
        entries of every cbr0 and of the switches, and TCP metrics."""
        ext = [self.router_ns, *self.ext_nss.values()] if self.external else []
        for ns in [*self.node_nss.values(), *self.pod_ns.values(), *ext]:
            self.ip(ns, "neigh", "flush", "all")
            self.ip(ns, "tcp_metrics", "flush", "all", check=False)
        for ns in self.node_nss.values():
            self.flush_bridge_fdb(ns, self.bridge, ipv6=self.dual_stack)
            if self.dual_stack:  # learned path MTUs (Packet Too Big) live in the cache
                self.ip(ns, "-6", "route", "flush", "cache", check=False)
        self.ip(self.net_ns, "link", "set", "dev", SWITCH, "type", "bridge", "fdb_flush")
        if self.external is not None:
            self.ip(self.net_ns, "link", "set", "dev", EXT_SWITCH, "type", "bridge",
                    "fdb_flush")
        if self.mode == "vxlan":
            self.check_vxlan_state()

    # ---------------------------------------------------------------- overlay, services
    def check_vxlan_state(self) -> None:
        """See :func:`overlay.check_vxlan_state`."""
        overlay.check_vxlan_state(self, self.nodes, self.node_nss)

    def vxlan_details(self, node: str) -> dict[str, Any]:
        """``ip -d -j link show flannel.1`` linkinfo data of ``node`` (udp_csum, ttl, ...)."""
        return overlay.vxlan_details(self, self.node_nss[node])

    def iptables_restore(self, node: str, text: str) -> None:
        """``iptables-restore`` (flushing the tables the text names) in ``node``'s ns."""
        services.iptables_restore(self.node_nss[node], node, text)

    def ipset_restore(self, node: str, text: str) -> None:
        """See :func:`services.ipset_restore`."""
        services.ipset_restore(self.node_nss[node], node, text)

    def iptables_save(self, node: str, *, counters: bool = False) -> str:
        """See :func:`services.iptables_save`."""
        return services.iptables_save(self, node, counters=counters)

    def conntrack(self, node: str) -> list[str] | None:
        """See :func:`services.conntrack`."""
        return services.conntrack(self, node)
