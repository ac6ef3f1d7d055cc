"""The same-node twin: one Kubernetes-like node built out of network namespaces, its pods
on a Linux bridge, as pktsim's single-node topology has them.

Topology (the "node" is itself a namespace)::

    node ns:  cbr0 (Linux bridge, 10.244.0.1/24, MTU 1500, defaults)
                ├── vethXXXXXXXX  (host end, hairpin on)  <-> pod ns A: eth0 10.244.0.2/24
                └── vethYYYYYYYY  (host end, hairpin on)  <-> pod ns B: eth0 10.244.0.3/24
    every pod ns: lo up, eth0, default via 10.244.0.1 dev eth0
    IPv6 disabled in every namespace (net.ipv6.conf.{all,default}.disable_ipv6=1)

Dual-stack (a pod with ``ip6``, or ``gateway_ip6``): IPv6 stays on everywhere and the
IPv6 half is configured as the bridge CNI plugin does it (containernetworking/plugins
plugins/main/bridge/bridge.go cmdAdd, pkg/ip/link_linux.go SetupVethWithName,
pkg/ipam/ipam_linux.go ConfigureIface): node net.ipv6.conf.all.forwarding=1
(ip.EnableIP6Forward), accept_ra=0 on cbr0 (ensureBridge) and on every host veth;
in the pod accept_dad=0 on eth0 (``enabledad`` false, the default), arp_notify=1 (a
gratuitous ARP at link-up, over before any capture), keep_addr_on_down=1,
the /64 added while eth0 is down, then eth0 up (no DAD: no tentative address to
settle) and ``default via <gateway_ip6>`` (isDefaultGateway); the gateway ``::1/64`` on
cbr0 (ensureAddr, DAD on: the node's default accept_dad=1).  Before the first capture
the twin waits until the kernel's start-up DAD and MLD frames are over
(:meth:`Twin.wait_ipv6_settled`); namespaces are ``pktk6-``.

Interface keys: ``"<pod>:eth0"``, ``"<pod>:lo"``, ``"node:<host veth>"``, ``"node:cbr0"``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from .namespaces import Twin, new_tag

__all__ = ["DEFAULT_BRIDGE_MAC", "GATEWAY_IP", "GATEWAY_IP6", "PREFIX_LEN", "PREFIX_LEN6",
           "KernelNode", "PodSpec", "plug_pod"]

GATEWAY_IP = "10.244.0.1"
PREFIX_LEN = 24
DEFAULT_BRIDGE_MAC = "0a:58:0a:f4:00:01"
GATEWAY_IP6 = "fd00:10:244::1"  # host-local's default gateway: the subnet's first address
PREFIX_LEN6 = 64


@dataclass(frozen=True)
class PodSpec:
    """One pod: logical name, eth0 IPv4, eth0 MAC, host-side veth name and MAC, and
    (dual-stack) eth0's IPv6 address.

    The MACs and the veth name are pktsim's, so both sides' frames carry the same
    addresses and ``normalize`` names them alike."""

    name: str
    ip: str
    mac: str
    veth: str
    veth_mac: str | None = None
    ip6: str | None = None


@dataclass(frozen=True)
class V6Plan:
    """The IPv6 side of a pod's plug: its bridge's gateway and the prefix length."""

    gateway: str
    prefix_len: int = PREFIX_LEN6


def plug_pod(twin: Twin, node_ns: str, pod_ns: str, p: PodSpec, *, veth_mac: str, bridge: str,
             prefix_len: int, gateway: str, mtu: int, hairpin: bool,
             v6: V6Plan | None = None) -> None:
    """Pod namespace ``pod_ns``, its veth pair with the host end on ``bridge`` in
    ``node_ns`` (hairpin on as kubenet/the bridge CNI set it, so a pod reaches itself
    through a Service) and its default route via the bridge address; with ``v6`` and
    ``p.ip6`` the IPv6 half as the bridge plugin configures it.  Both twins plug
    their pods this way."""
    dual = v6 is not None and p.ip6 is not None
    twin.add_ns(pod_ns)
    twin.ip(pod_ns, "link", "set", "lo", "up")
    twin.veth_pair(node_ns, p.veth, pod_ns)
    twin.ip(node_ns, "link", "set", p.veth, "address", veth_mac, "mtu", str(mtu))
    if dual:  # SetupVethWithName: "we want to own the routes for this interface"
        twin.sysctl(node_ns, f"net.ipv6.conf.{p.veth}.accept_ra=0")
    twin.ip(node_ns, "link", "set", p.veth, "master", bridge)
    if hairpin:
        twin.ip(node_ns, "link", "set", "dev", p.veth, "type", "bridge_slave", "hairpin", "on")
    twin.ip(node_ns, "link", "set", p.veth, "up")
    twin.ip(pod_ns, "link", "set", "eth0", "address", p.mac, "mtu", str(mtu))
    if dual:  # bridge.go cmdAdd (enabledad false), ipam.ConfigureIface
        twin.sysctl(pod_ns, "net.ipv6.conf.eth0.accept_dad=0", "net.ipv4.conf.eth0.arp_notify=1",
                    "net.ipv6.conf.eth0.keep_addr_on_down=1")
    twin.ip(pod_ns, "addr", "add", f"{p.ip}/{prefix_len}", "dev", "eth0")
    if dual:
        assert v6 is not None
        twin.ip(pod_ns, "addr", "add", f"{p.ip6}/{v6.prefix_len}", "dev", "eth0")
    twin.ip(pod_ns, "link", "set", "eth0", "up")
    twin.ip(pod_ns, "route", "add", "default", "via", gateway, "dev", "eth0")
    if dual:
        assert v6 is not None
        twin.ip(pod_ns, "-6", "route", "add", "default", "via", v6.gateway, "dev", "eth0")


def bridge_v6(twin: Twin, node_ns: str, bridge: str, gateway: str, prefix_len: int) -> None:
    """The node's IPv6 half of the bridge plugin: forwarding on (ip.EnableIP6Forward
    writes net.ipv6.conf.all.forwarding, which the kernel copies to every interface
    and to ``default``: addrconf_fixup_forwarding), cbr0 takes no RAs (ensureBridge)
    and carries the gateway address (ensureAddr)."""
    twin.sysctl(node_ns, "net.ipv6.conf.all.forwarding=1", f"net.ipv6.conf.{bridge}.accept_ra=0")
    twin.ip(node_ns, "addr", "add", f"{gateway}/{prefix_len}", "dev", bridge)


class KernelNode(Twin):
    """Context manager building the node + pods out of fresh ``pktk-`` namespaces."""

    def __init__(
        self,
        pods: Iterable[PodSpec],
        *,
        bridge: str = "cbr0",
        gateway_ip: str = GATEWAY_IP,
        prefix_len: int = PREFIX_LEN,
        bridge_mac: str = DEFAULT_BRIDGE_MAC,
        mtu: int = 1500,
        hairpin: bool = True,
        bridge_promisc: bool = False,
        capture_lo: bool = True,
        settle_igmp: bool = True,
        disable_ipv6: bool | None = None,
        gateway_ip6: str | None = None,
        prefix_len6: int = PREFIX_LEN6,
        workdir: str | None = None,
    ) -> None:
        pods = list(pods)
        self.dual_stack = gateway_ip6 is not None or any(p.ip6 for p in pods)
        if disable_ipv6 is None:
            disable_ipv6 = not self.dual_stack
        super().__init__(disable_ipv6=disable_ipv6, workdir=workdir)
        self.pods = pods
        names = [p.name for p in self.pods]
        if len(set(names)) != len(names):
            raise ValueError("pod names must be unique")
        for p in self.pods:
            if len(p.veth) > 15:
                raise ValueError(f"veth name too long: {p.veth}")
            ipaddress.IPv4Address(p.ip)
            if p.ip6:
                ipaddress.IPv6Address(p.ip6)
        self.v6 = V6Plan(gateway_ip6 or GATEWAY_IP6, prefix_len6) if self.dual_stack else None
        self.bridge = bridge
        self.gateway_ip = gateway_ip
        self.prefix_len = prefix_len
        self.bridge_mac = bridge_mac
        self.mtu = mtu
        self.hairpin = hairpin
        self.bridge_promisc = bridge_promisc
        self.capture_lo = capture_lo
        self.settle_igmp = settle_igmp
        self.tag = new_tag("pktk6" if self.dual_stack else "pktk")
        self.node_ns = f"{self.tag}-node"
        self.pod_ns = {p.name: f"{self.tag}-{p.name}" for p in self.pods}

    # ---------------------------------------------------------------- naming
    def ns_of(self, who: str) -> str:
        return self.node_ns if who == "node" else self.pod_ns[who]

    def pod(self, name: str) -> PodSpec:
        return next(p for p in self.pods if p.name == name)

    def veth_mac(self, index: int, p: PodSpec) -> str:
        """The host veth's MAC: pktsim's, else a fixed one (never the kernel's random)."""
        return (p.veth_mac or f"0a:00:00:00:01:{index + 2:02x}").lower()

    # ---------------------------------------------------------------- setup
    def _setup(self) -> None:
        node = self.node_ns
        self.add_ns(node)
        self.sysctl(node, "net.ipv4.ip_forward=1")
        self.ip(node, "link", "set", "lo", "up")
        self.ip(node, "link", "add", self.bridge, "type", "bridge")
        self.ip(node, "link", "set", self.bridge, "address", self.bridge_mac, "mtu", str(self.mtu))
        self.ip(node, "addr", "add", f"{self.gateway_ip}/{self.prefix_len}", "dev", self.bridge)
        if self.bridge_promisc:
            self.ip(node, "link", "set", self.bridge, "promisc", "on")
        if self.v6 is not None:
            bridge_v6(self, node, self.bridge, self.v6.gateway, self.v6.prefix_len)
        for i, p in enumerate(self.pods):
            plug_pod(self, node, self.pod_ns[p.name], p, veth_mac=self.veth_mac(i, p),
                     bridge=self.bridge, prefix_len=self.prefix_len, gateway=self.gateway_ip,
                     mtu=self.mtu, hairpin=self.hairpin, v6=self.v6)
        # cbr0 goes up last, once its ports exist, so the bridge has carrier when it
        # joins 224.0.0.106 (multicast snooping) and its IGMP reports really go out.
        self.ip(node, "link", "set", self.bridge, "up")
        links = {f"{p.name}:eth0": (self.pod_ns[p.name], "eth0") for p in self.pods}
        links |= {f"node:{p.veth}": (node, p.veth) for p in self.pods}
        links[f"node:{self.bridge}"] = (node, self.bridge)
        self.wait_ready(links, {node: [p.veth for p in self.pods]})
        if self.settle_igmp:
            self.wait_bridge_igmp([f"node:{self.bridge}"])
        if self.dual_stack:
            self.wait_ipv6_settled([node, *self.pod_ns.values()])
        self.setup_counters = self.counters()

    # ---------------------------------------------------------------- state
    def interfaces(self) -> dict[str, tuple[str, str]]:
        out: dict[str, tuple[str, str]] = {}
        for p in self.pods:
            out[f"{p.name}:eth0"] = (self.pod_ns[p.name], "eth0")
            if self.capture_lo:
                out[f"{p.name}:lo"] = (self.pod_ns[p.name], "lo")
        for p in self.pods:
            out[f"node:{p.veth}"] = (self.node_ns, p.veth)
        out[f"node:{self.bridge}"] = (self.node_ns, self.bridge)
        return out

    def iface_macs(self) -> dict[str, str]:
        """key -> MAC of that interface."""
        out = {}
        for i, p in enumerate(self.pods):
            out[f"{p.name}:eth0"] = p.mac.lower()
            out[f"{p.name}:lo"] = "00:00:00:00:00:00"
            out[f"node:{p.veth}"] = self.veth_mac(i, p)
        out[f"node:{self.bridge}"] = self.bridge_mac.lower()
        return out

    def mac_names(self) -> dict[str, str]:
        names = {"ff:ff:ff:ff:ff:ff": "broadcast", "00:00:00:00:00:00": "zero",
                 self.bridge_mac.lower(): self.bridge}
        for i, p in enumerate(self.pods):
            names[p.mac.lower()] = f"{p.name}.eth0"
            names[self.veth_mac(i, p)] = f"node.{p.veth}"
        return names

    def flush_state(self) -> None:
        """Forget neighbours, bridge FDB (dynamic) and TCP metrics, so a scenario
        starts from ARP like a fresh pod would."""
        for ns in [self.node_ns, *self.pod_ns.values()]:
            self.ip(ns, "neigh", "flush", "all")
            self.ip(ns, "tcp_metrics", "flush", "all", check=False)
            if self.dual_stack:  # learned path MTUs (Packet Too Big) live in the cache
                self.ip(ns, "-6", "route", "flush", "cache", check=False)
        self.flush_bridge_fdb(self.node_ns, self.bridge, ipv6=not self.disable_ipv6)
