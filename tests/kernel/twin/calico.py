"""The Calico twin: the cross-node twin's node network and nodes, but Calico's dataplane —
no bridge; per pod a ``caliX`` veth (MAC ee:ee:ee:ee:ee:ee, proxy_arp 1, proxy_delay 0, a
``/32 dev caliX scope link`` route), the pod's ``eth0`` a /32 with ``169.254.1.1 dev eth0
scope link`` and ``default via 169.254.1.1``; per node ``blackhole <block> proto bird`` and
the remote blocks in one of three modes:

    none  : <block> via <node IP> dev eth0 proto bird              (BGP-learned)
    vxlan : vxlan.calico = vxlan id 4096 local <node IP> dev eth0 dstport 4789 nolearning,
            MAC = felix's VTEP MAC, MTU 1450, <tunnel address>/32; per remote node
            <block> via <remote tunnel address> dev vxlan.calico proto 80 onlink, a
            permanent neighbour and a permanent FDB entry (felix vxlan_mgr.go)
    ipip  : tunl0 (needs CONFIG_NET_IPIP, never loaded by the harness), MTU 1480,
            <tunnel address>/32; <block> via <node IP> dev tunl0 proto bird onlink

As in Calico (cni-plugin ``dataplane_linux.go``), every pod's host side carries the same MAC.
``NodeSpec.pod_cidr`` is the node's (one) block and ``tunnel_ip`` its first address.
"""

from __future__ import annotations

import os
from typing import Any

from .cluster import SWITCH, KernelCluster, NodeSpec
from .commands import KernelFeatureMissing, kernel_config_hint

__all__ = ["CALICO_MTU", "HOST_MAC", "KernelCalico"]

HOST_MAC = "ee:ee:ee:ee:ee:ee"
CALICO_MTU = {"none": 1500, "vxlan": 1450, "ipip": 1480}
TUNNEL = {"vxlan": "vxlan.calico", "ipip": "tunl0"}


class KernelCalico(KernelCluster):
    """A ``network: calico`` cluster in namespaces (``encap``: none, vxlan or ipip)."""

    def __init__(self, nodes: list[NodeSpec], *, encap: str = "none", **kw: Any) -> None:
        if encap not in CALICO_MTU:
            raise ValueError(f"encap must be one of {sorted(CALICO_MTU)}")
        super().__init__(nodes, mode="routes", settle_igmp=False, **kw)
        self.encap = encap
        self.mtu = CALICO_MTU[encap]

    @property
    def tunnel(self) -> str | None:
        return TUNNEL.get(self.encap)

    def l2_len(self, key: str) -> int:
        return 0 if key.endswith(":tunl0") else 14

    def _setup(self) -> None:
        net = self.net_ns
        self.add_ns(net)
        self.ip(net, "link", "set", "lo", "up")
        self.ip(net, "link", "add", SWITCH, "type", "bridge", "mcast_snooping", "0")
        for i, n in enumerate(self.nodes):
            self._build_node(i, n)
        self.ip(net, "link", "set", SWITCH, "up")
        for n in self.nodes:
            self._routes(n, [o for o in self.nodes if o.name != n.name])
        self.wait_ready(self._all_links(), {net: [f"swp{i + 1}"
                                                  for i in range(len(self.nodes))]},
                        unknown_ok=lambda key: key.endswith((":tunl0", ":vxlan.calico")))
        self.setup_counters = self.counters()

    def _build_node(self, i: int, n: NodeSpec) -> None:
        ns = self.node_nss[n.name]
        self.add_ns(ns)
        self.sysctl(ns, "net.ipv4.ip_forward=1")
        self.ip(ns, "link", "set", "lo", "up")
        port = f"swp{i + 1}"
        self.veth_pair(self.net_ns, port, ns)
        self.ip(self.net_ns, "link", "set", port, "master", SWITCH)
        self.ip(self.net_ns, "link", "set", port, "up")
        self.ip(ns, "link", "set", "eth0", "address", n.mac, "mtu", "1500")
        self.ip(ns, "addr", "add", f"{n.ip}/{self.node_prefix_len}", "dev", "eth0")
        self.ip(ns, "link", "set", "eth0", "up")
        if self.default_gateway:
            self.ip(ns, "route", "add", "default", "via", self.default_gateway, "dev", "eth0")
        for p in n.pods:
            self._plug(ns, p)

    def _plug(self, ns: str, p: Any) -> None:
        """``DoNetworking``/``configureSysctls``/``SetupRoutes`` for one pod."""
        pod_ns = self.pod_ns[p.name]
        self.add_ns(pod_ns)
        self.ip(pod_ns, "link", "set", "lo", "up")
        self.veth_pair(ns, p.veth, pod_ns)
        self.ip(ns, "link", "set", p.veth, "address", HOST_MAC, "mtu", str(self.mtu))
        self.sysctl(ns, f"net.ipv4.conf.{p.veth}.proxy_arp=1",
                    f"net.ipv4.neigh.{p.veth}.proxy_delay=0")
        self.ip(ns, "link", "set", p.veth, "up")
        self.ip(pod_ns, "link", "set", "eth0", "address", p.mac, "mtu", str(self.mtu))
        self.ip(pod_ns, "addr", "add", f"{p.ip}/32", "dev", "eth0")
        self.ip(pod_ns, "link", "set", "eth0", "up")
        self.ip(pod_ns, "route", "add", "169.254.1.1", "dev", "eth0", "scope", "link")
        self.ip(pod_ns, "route", "add", "default", "via", "169.254.1.1", "dev", "eth0")
        self.ip(ns, "route", "add", f"{p.ip}/32", "dev", p.veth, "scope", "link")

    def _routes(self, n: NodeSpec, others: list[NodeSpec]) -> None:
        ns = self.node_nss[n.name]
        proto = "80" if self.encap == "vxlan" else "bird"
        self.ip(ns, "route", "add", "blackhole", n.pod_cidr, "proto", proto)
        if self.encap == "vxlan":
            self._vxlan(ns, n, others)
        elif self.encap == "ipip":
            self._tunl0(ns, n, others)
        else:
            for o in others:
                self.ip(ns, "route", "add", o.pod_cidr, "via", o.ip, "dev", "eth0",
                        "proto", "bird")

    def _vxlan(self, ns: str, n: NodeSpec, others: list[NodeSpec]) -> None:
        dev = "vxlan.calico"
        self.ip(ns, "link", "add", dev, "type", "vxlan", "id", "4096", "local", n.ip,
                "dev", "eth0", "dstport", "4789", "nolearning")
        assert n.vtep_mac is not None
        self.ip(ns, "link", "set", dev, "address", n.vtep_mac, "mtu", "1450")
        self.ip(ns, "addr", "add", f"{n.tunnel_ip}/32", "dev", dev)
        self.ip(ns, "link", "set", dev, "up")
        for o in others:
            assert o.vtep_mac is not None
            self.ip(ns, "route", "add", o.pod_cidr, "via", o.tunnel_ip, "dev", dev,
                    "proto", "80", "onlink")
            self.ip(ns, "neigh", "replace", o.tunnel_ip, "lladdr", o.vtep_mac, "dev", dev,
                    "nud", "permanent")
            self.run_bridge(ns, "fdb", "replace", o.vtep_mac, "dev", dev, "dst", o.ip,
                            "self", "permanent")

    def _tunl0(self, ns: str, n: NodeSpec, others: list[NodeSpec]) -> None:
        if not os.path.isdir("/sys/module/ipip"):
            raise KernelFeatureMissing(
                "calico IPIP needs the kernel's IP-in-IP driver (CONFIG_NET_IPIP, module "
                f"ipip), which is not loaded here{kernel_config_hint('CONFIG_NET_IPIP')}; "
                "the harness does not load it (that would add tunl0 to the root namespace)")
        self.ip(ns, "link", "set", "tunl0", "mtu", "1480")
        self.ip(ns, "addr", "add", f"{n.tunnel_ip}/32", "dev", "tunl0")
        self.ip(ns, "link", "set", "tunl0", "up")
        for o in others:
            self.ip(ns, "route", "add", o.pod_cidr, "via", o.ip, "dev", "tunl0", "proto",
                    "bird", "onlink")

    def run_bridge(self, ns: str, *args: str) -> None:
        from .commands import run

        run(["bridge", "-n", ns, *args])

    def interfaces(self) -> dict[str, tuple[str, str]]:
        out: dict[str, tuple[str, str]] = {}
        for p in self.pods:
            out[f"{p.name}:eth0"] = (self.pod_ns[p.name], "eth0")
        for n in self.nodes:
            ns = self.node_nss[n.name]
            for p in n.pods:
                out[f"{n.name}:{p.veth}"] = (ns, p.veth)
            out[f"{n.name}:eth0"] = (ns, "eth0")
            if self.tunnel:
                out[f"{n.name}:{self.tunnel}"] = (ns, self.tunnel)
        return out

    def mac_names(self) -> dict[str, str]:
        names = {"ff:ff:ff:ff:ff:ff": "broadcast", "00:00:00:00:00:00": "zero",
                 HOST_MAC: "cali-host"}
        for n in self.nodes:
            names[n.mac.lower()] = f"{n.name}.eth0"
            if n.vtep_mac:
                names[n.vtep_mac.lower()] = f"{n.name}.vxlan.calico"
            for p in n.pods:
                names[p.mac.lower()] = f"{p.name}.eth0"
        return names

    def flush_state(self) -> None:
        """Forget dynamic neighbours (felix's permanent ones stay), the switch's learned
        entries and TCP metrics."""
        for ns in [*self.node_nss.values(), *self.pod_ns.values()]:
            self.ip(ns, "neigh", "flush", "all")
            self.ip(ns, "tcp_metrics", "flush", "all", check=False)
        self.ip(self.net_ns, "link", "set", "dev", SWITCH, "type", "bridge", "fdb_flush")
