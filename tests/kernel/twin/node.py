"""The same-node twin: one Kubernetes-like node built out of network namespaces, its pods
on a Linux bridge, as pktsim's single-node topology has them.

Topology (the "node" is itself a namespace)::

    node ns:  cbr0 (Linux bridge, 10.244.0.1/24, MTU 1500, defaults)
                ├── vethXXXXXXXX  (host end, hairpin on)  <-> pod ns A: eth0 10.244.0.2/24
                └── vethYYYYYYYY  (host end, hairpin on)  <-> pod ns B: eth0 10.244.0.3/24
    every pod ns: lo up, eth0, default via 10.244.0.1 dev eth0
    IPv6 disabled in every namespace (net.ipv6.conf.{all,default}.disable_ipv6=1)

Interface keys: ``"<pod>:eth0"``, ``"<pod>:lo"``, ``"node:<host veth>"``, ``"node:cbr0"``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from .namespaces import Twin, new_tag

__all__ = ["DEFAULT_BRIDGE_MAC", "GATEWAY_IP", "PREFIX_LEN", "KernelNode", "PodSpec", "plug_pod"]

GATEWAY_IP = "10.244.0.1"
PREFIX_LEN = 24
DEFAULT_BRIDGE_MAC = "0a:58:0a:f4:00:01"


@dataclass(frozen=True)
class PodSpec:
    """One pod: logical name, eth0 IPv4, eth0 MAC, host-side veth name and MAC.

    The MACs and the veth name are pktsim's, so both sides' frames carry the same
    addresses and ``normalize`` names them alike."""

    name: str
    ip: str
    mac: str
    veth: str
    veth_mac: str | None = None


def plug_pod(twin: Twin, node_ns: str, pod_ns: str, p: PodSpec, *, veth_mac: str, bridge: str,
             prefix_len: int, gateway: str, mtu: int, hairpin: bool) -> None:
    """Pod namespace ``pod_ns``, its veth pair with the host end on ``bridge`` in
    ``node_ns`` (hairpin on as kubenet/the bridge CNI set it, so a pod reaches itself
    through a Service) and its default route via the bridge address.  Both twins plug
    their pods this way."""
    twin.add_ns(pod_ns)
    twin.ip(pod_ns, "link", "set", "lo", "up")
    twin.veth_pair(node_ns, p.veth, pod_ns)
    twin.ip(node_ns, "link", "set", p.veth, "address", veth_mac, "mtu", str(mtu))
    twin.ip(node_ns, "link", "set", p.veth, "master", bridge)
    if hairpin:
        twin.ip(node_ns, "link", "set", "dev", p.veth, "type", "bridge_slave", "hairpin", "on")
    twin.ip(node_ns, "link", "set", p.veth, "up")
    twin.ip(pod_ns, "link", "set", "eth0", "address", p.mac, "mtu", str(mtu))
    twin.ip(pod_ns, "addr", "add", f"{p.ip}/{prefix_len}", "dev", "eth0")
    twin.ip(pod_ns, "link", "set", "eth0", "up")
    twin.ip(pod_ns, "route", "add", "default", "via", gateway, "dev", "eth0")


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
        disable_ipv6: bool = True,
        workdir: str | None = None,
    ) -> None:
        super().__init__(disable_ipv6=disable_ipv6, workdir=workdir)
        self.pods = list(pods)
        names = [p.name for p in self.pods]
        if len(set(names)) != len(names):
            raise ValueError("pod names must be unique")
        for p in self.pods:
            if len(p.veth) > 15:
                raise ValueError(f"veth name too long: {p.veth}")
            ipaddress.IPv4Address(p.ip)
        self.bridge = bridge
        self.gateway_ip = gateway_ip
        self.prefix_len = prefix_len
        self.bridge_mac = bridge_mac
        self.mtu = mtu
        self.hairpin = hairpin
        self.bridge_promisc = bridge_promisc
        self.capture_lo = capture_lo
        self.settle_igmp = settle_igmp
        self.tag = new_tag()
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
        for i, p in enumerate(self.pods):
            plug_pod(self, node, self.pod_ns[p.name], p, veth_mac=self.veth_mac(i, p),
                     bridge=self.bridge, prefix_len=self.prefix_len, gateway=self.gateway_ip,
                     mtu=self.mtu, hairpin=self.hairpin)
        # cbr0 goes up last, once its ports exist, so the bridge has carrier when it
        # joins 224.0.0.106 (multicast snooping) and its IGMP reports really go out.
        self.ip(node, "link", "set", self.bridge, "up")
        links = {f"{p.name}:eth0": (self.pod_ns[p.name], "eth0") for p in self.pods}
        links |= {f"node:{p.veth}": (node, p.veth) for p in self.pods}
        links[f"node:{self.bridge}"] = (node, self.bridge)
        self.wait_ready(links, {node: [p.veth for p in self.pods]})
        if self.settle_igmp:
            self.wait_bridge_igmp([f"node:{self.bridge}"])
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
        self.ip(self.node_ns, "link", "set", "dev", self.bridge, "type", "bridge", "fdb_flush")
