"""Kernel reference harness, cross-node: two (or more) Kubernetes-like nodes out of network
namespaces, joined by a node network, with the pods' cross-node path in one of the
``network:`` modes pktsim models (``routes``, ``vxlan`` = flannel, ``ipip`` = Calico).

It reuses :class:`harness.KernelNode`'s capture machinery (one ``tcpdump -p`` per
interface, one ``-i any -y LINUX_SLL2`` per namespace for the packet types, flush
checks against the link counters) and its traffic drivers (``ping``, ``tcp_exchange``).

Safety: every interface, address, route, neighbour and FDB entry lives in namespaces
created here (``pktk-<pid>-<random>-...``); the root namespace is never touched and the
namespaces are deleted in ``__exit__`` (also on errors).  No address outside them is
ever used: the default route of the nodes points at ``172.18.0.1``, which does not
exist (no router namespace), and nothing is sent to it.

Topology (node network = a bridge in its own namespace, playing the switch)::

    net ns  : sw0 (Linux bridge, stp off, mcast_snooping 0, no address)
                ├── swp1 <-> node-1 ns: eth0 172.18.0.2/16 02:42:ac:12:00:02
                └── swp2 <-> node-2 ns: eth0 172.18.0.3/16 02:42:ac:12:00:03
    node ns : lo, eth0 (above), default via 172.18.0.1 dev eth0, ip_forward=1,
              cbr0 (bridge, 10.244.X.1/24, MAC and MTU given) with one host veth per pod
              (hairpin on, MAC given), pods as in KernelNode (default via 10.244.X.1)
    routes  : <remote pod CIDR> via <remote node IP> dev eth0
    vxlan   : flannel.1 = vxlan id 1 local <node IP> dev eth0 dstport 8472 nolearning,
              MAC = VTEP MAC given, MTU 1450, <pod CIDR>.0/32; per remote node:
              route <remote CIDR> via <remote .0> dev flannel.1 onlink,
              neigh replace <remote .0> lladdr <remote VTEP> dev flannel.1 nud permanent,
              bridge fdb replace <remote VTEP> dev flannel.1 dst <remote IP> self permanent
              (flannel's NeighSet calls: pkg/backend/vxlan/device.go AddARP/AddFDB)
    ipip    : tunl0 (ipip fallback device), MTU 1480, <pod CIDR>.0/32; per remote node:
              <remote CIDR> via <remote node IP> dev tunl0 onlink  (needs CONFIG_NET_IPIP)
    every ns: IPv6 off, net.ipv4.tcp_rmem pinned (as KernelNode)

Interface keys: ``"<pod>:eth0"`` (``"<pod>:lo"`` with ``capture_lo``), ``"<node>:<veth>"``,
``"<node>:cbr0"``, ``"<node>:eth0"``, ``"<node>:flannel.1"`` / ``"<node>:tunl0"`` and, with
``capture_switch``, ``"net:swp<i>"``.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from harness import SETUP_TIMEOUT, KernelNode, PodSpec, _run

__all__ = ["OVERLAY_MTU", "ExternalHost", "ExternalSpec", "KernelCluster",
           "KernelFeatureMissing", "NodeSpec", "PodSpec", "netfilter_available"]

OVERLAY_MTU = {"routes": 1500, "vxlan": 1450, "ipip": 1480}
VXLAN_DEV = "flannel.1"
VXLAN_PORT = 8472
SWITCH = "sw0"
EXT_SWITCH = "sw1"  # the external network (with ``external=``)
ROUTER_PORT = "swr"  # the router's port on sw0
ROUTER_EXT_PORT = "xr"  # the router's port on sw1


def _read_root(path: str) -> str:
    """Read a /proc/sys file in the harness process's own (root) namespace: read only."""
    with open(path) as f:
        return f.read().strip()


def _ipip_config_hint() -> str:
    """ " (CONFIG_NET_IPIP is not set)" etc. from /proc/config.gz when the kernel has it."""
    import gzip

    try:
        with gzip.open("/proc/config.gz", "rt") as f:
            for line in f:
                if "CONFIG_NET_IPIP" in line:
                    return f" ({line.strip().lstrip('# ')})"
    except OSError:
        pass
    return ""


class KernelFeatureMissing(RuntimeError):
    """The running kernel lacks what a mode needs (e.g. CONFIG_NET_IPIP for ``ipip``)."""


def netfilter_available() -> str | None:
    """None if iptables-restore/-save can be used in the node namespaces, else a skip
    reason naming the Debian package."""
    import shutil

    for tool in ("iptables-restore", "iptables-save"):
        if shutil.which(tool) is None:
            return f"needs {tool} (Debian package iptables: apt-get install iptables)"
    return None


@dataclass(frozen=True)
class ExternalHost:
    """A client on the external network: ``external/<name>``, its IPv4 and MAC."""

    name: str
    ip: str
    mac: str


@dataclass(frozen=True)
class ExternalSpec:
    """pktsim's outside world (pktsim/build/external.py): a router with eth0 on the node
    network (the nodes' default gateway) and eth1 at ``.1`` of the external network, and
    clients there (default route via the router).  ``routes``: extra (prefix, via) routes
    of the router, out of eth0 (pktsim routes loadBalancerCIDR to the first node)."""

    router_ip: str
    router_mac: str
    ext_cidr: str
    ext_mac: str
    clients: tuple[ExternalHost, ...] = ()
    routes: tuple[tuple[str, str], ...] = ()

    @property
    def ext_ip(self) -> str:
        return str(ipaddress.IPv4Network(self.ext_cidr).network_address + 1)


@dataclass(frozen=True)
class NodeSpec:
    """One node: name, eth0 IPv4 and MAC, pod CIDR, bridge MAC, VTEP MAC (vxlan), pods."""

    name: str
    ip: str
    mac: str
    pod_cidr: str
    bridge_mac: str
    pods: tuple[PodSpec, ...] = field(default_factory=tuple)
    vtep_mac: str | None = None

    @property
    def gateway(self) -> str:
        return str(ipaddress.IPv4Network(self.pod_cidr).network_address + 1)

    @property
    def tunnel_ip(self) -> str:
        return str(ipaddress.IPv4Network(self.pod_cidr).network_address)

    @property
    def prefix_len(self) -> int:
        return ipaddress.IPv4Network(self.pod_cidr).prefixlen


class KernelCluster(KernelNode):
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
        workdir: str | None = None,
    ) -> None:
        if mode not in OVERLAY_MTU:
            raise ValueError(f"mode must be one of {sorted(OVERLAY_MTU)}")
        self.nodes = list(nodes)
        pods = [p for n in self.nodes for p in n.pods]
        super().__init__(pods, bridge=bridge, mtu=OVERLAY_MTU[mode], hairpin=hairpin,
                         capture_lo=capture_lo, settle_igmp=settle_igmp, workdir=workdir)
        names = [n.name for n in self.nodes] + [p.name for p in pods] + ["net"]
        if len(set(names)) != len(names):
            raise ValueError("node and pod names must be unique (and not 'net')")
        for n in self.nodes:
            if mode == "vxlan" and not n.vtep_mac:
                raise ValueError(f"{n.name}: vxlan needs vtep_mac")
            ipaddress.IPv4Address(n.ip)
        self.mode = mode
        self.node_prefix_len = node_prefix_len
        self.default_gateway = default_gateway
        self.capture_switch = capture_switch
        self.vxlan_udp_csum = vxlan_udp_csum
        self.tag = f"pktk-{os.getpid()}-{secrets.token_hex(2)}"
        self.net_ns = f"{self.tag}-net"
        self.node_nss = {n.name: f"{self.tag}-{n.name}" for n in self.nodes}
        self.pod_ns = {p.name: f"{self.tag}-pod-{p.name}" for p in pods}
        self.node_ns = self.node_nss[self.nodes[0].name]  # KernelNode compatibility
        self.node_of = {p.name: n.name for n in self.nodes for p in n.pods}
        self.external = external
        self.br_netfilter = br_netfilter
        self.router_ns = f"{self.tag}-router"
        self.ext_nss = {f"external/{c.name}": f"{self.tag}-ext-{c.name}"
                        for c in (external.clients if external else ())}
        if external is not None:
            if default_gateway != external.router_ip:
                raise ValueError("the router must be the nodes' default gateway")
            if len(self.ext_nss) != len(external.clients):
                raise ValueError("external client names must be unique")

    # ---------------------------------------------------------------- naming
    @property
    def tunnel(self) -> str | None:
        return {"vxlan": VXLAN_DEV, "ipip": "tunl0"}.get(self.mode)

    def node(self, name: str) -> NodeSpec:
        return next(n for n in self.nodes if n.name == name)

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

    def _veth_mac(self, node_index: int, pod_index: int, p: PodSpec) -> str:
        return (p.veth_mac or f"0a:00:00:00:{node_index + 1:02x}:{pod_index + 2:02x}").lower()

    def _l2_len(self, key: str) -> int:
        return 0 if key.endswith(":tunl0") else 14

    def namespaces(self) -> list[str]:
        ext = [self.router_ns, *self.ext_nss.values()] if self.external else []
        return [self.net_ns, *self.node_nss.values(), *self.pod_ns.values(), *ext]

    # ---------------------------------------------------------------- setup
    def _setup(self) -> None:
        net = self.net_ns
        self._add_ns(net)
        self.ip(net, "link", "set", "lo", "up")
        # the switch: no STP (default), no multicast snooping (a snooping bridge sends
        # IGMP reports of its own), no address: it only carries frames
        self.ip(net, "link", "add", SWITCH, "type", "bridge", "mcast_snooping", "0")
        for i, n in enumerate(self.nodes):
            ns = self.node_nss[n.name]
            self._add_ns(ns)
            _run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
            self.ip(ns, "link", "set", "lo", "up")
            port = f"swp{i + 1}"
            self.ip(net, "link", "add", port, "type", "veth", "peer", "name", "eth0",
                    "netns", ns)
            self.ip(net, "link", "set", port, "master", SWITCH)
            self.ip(net, "link", "set", port, "up")
            self.ip(ns, "link", "set", "eth0", "address", n.mac, "mtu", "1500")
            self.ip(ns, "addr", "add", f"{n.ip}/{self.node_prefix_len}", "dev", "eth0")
            self.ip(ns, "link", "set", "eth0", "up")
            if self.default_gateway:
                self.ip(ns, "route", "add", "default", "via", self.default_gateway,
                        "dev", "eth0")
            self.ip(ns, "link", "add", self.bridge, "type", "bridge")
            self.ip(ns, "link", "set", self.bridge, "address", n.bridge_mac,
                    "mtu", str(self.mtu))
            self.ip(ns, "addr", "add", f"{n.gateway}/{n.prefix_len}", "dev", self.bridge)
            for j, p in enumerate(n.pods):
                pns = self.pod_ns[p.name]
                self._add_ns(pns)
                self.ip(pns, "link", "set", "lo", "up")
                self.ip(ns, "link", "add", p.veth, "type", "veth", "peer", "name", "eth0",
                        "netns", pns)
                self.ip(ns, "link", "set", p.veth, "address", self._veth_mac(i, j, p),
                        "mtu", str(self.mtu))
                self.ip(ns, "link", "set", p.veth, "master", self.bridge)
                if self.hairpin:
                    self.ip(ns, "link", "set", "dev", p.veth, "type", "bridge_slave",
                            "hairpin", "on")
                self.ip(ns, "link", "set", p.veth, "up")
                self.ip(pns, "link", "set", "eth0", "address", p.mac, "mtu", str(self.mtu))
                self.ip(pns, "addr", "add", f"{p.ip}/{n.prefix_len}", "dev", "eth0")
                self.ip(pns, "link", "set", "eth0", "up")
                self.ip(pns, "route", "add", "default", "via", n.gateway, "dev", "eth0")
        if self.external is not None:
            self._external(self.external)
        self.ip(net, "link", "set", SWITCH, "up")
        for n in self.nodes:
            self._overlay(n)
        if self.br_netfilter:
            self._br_netfilter()
        for n in self.nodes:  # cbr0 up last (see KernelNode._setup: IGMP needs carrier)
            self.ip(self.node_nss[n.name], "link", "set", self.bridge, "up")
        self._wait_ready()
        if self.settle_igmp:
            self._wait_bridge_igmp()
        self.setup_counters = self.counters()

    def _external(self, ext: ExternalSpec) -> None:
        """The router (``external``) on sw0 and on a second switch ``sw1`` (the external
        network, in the net namespace too), and the external clients on sw1."""
        net, rns = self.net_ns, self.router_ns
        self._add_ns(rns)
        _run(["ip", "netns", "exec", rns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
        self.ip(rns, "link", "set", "lo", "up")
        self.ip(net, "link", "add", EXT_SWITCH, "type", "bridge", "mcast_snooping", "0")
        ext_net = ipaddress.IPv4Network(ext.ext_cidr)
        for dev, port, bridge, mac, addr in (
                ("eth0", ROUTER_PORT, SWITCH, ext.router_mac,
                 f"{ext.router_ip}/{self.node_prefix_len}"),
                ("eth1", ROUTER_EXT_PORT, EXT_SWITCH, ext.ext_mac,
                 f"{ext.ext_ip}/{ext_net.prefixlen}")):
            self.ip(net, "link", "add", port, "type", "veth", "peer", "name", dev,
                    "netns", rns)
            self.ip(net, "link", "set", port, "master", bridge)
            self.ip(net, "link", "set", port, "up")
            self.ip(rns, "link", "set", dev, "address", mac, "mtu", "1500")
            self.ip(rns, "addr", "add", addr, "dev", dev)
            self.ip(rns, "link", "set", dev, "up")
        for prefix, via in ext.routes:
            self.ip(rns, "route", "add", prefix, "via", via, "dev", "eth0")
        for i, c in enumerate(ext.clients):
            cns = self.ext_nss[f"external/{c.name}"]
            self._add_ns(cns)
            self.ip(cns, "link", "set", "lo", "up")
            port = f"xcp{i + 1}"
            self.ip(net, "link", "add", port, "type", "veth", "peer", "name", "eth0",
                    "netns", cns)
            self.ip(net, "link", "set", port, "master", EXT_SWITCH)
            self.ip(net, "link", "set", port, "up")
            self.ip(cns, "link", "set", "eth0", "address", c.mac, "mtu", "1500")
            self.ip(cns, "addr", "add", f"{c.ip}/{ext_net.prefixlen}", "dev", "eth0")
            self.ip(cns, "link", "set", "eth0", "up")
            self.ip(cns, "route", "add", "default", "via", ext.ext_ip, "dev", "eth0")
        self.ip(net, "link", "set", EXT_SWITCH, "up")

    def _br_netfilter(self) -> None:
        """``net.bridge.bridge-nf-call-iptables=1`` in every node namespace (only there).

        The sysctl is per network namespace since Linux 5.3 (br_netfilter registers its
        table per netns, ``brnf_init_net``); before, the table existed in the initial
        namespace only, so its presence in our namespace is the proof that writing it
        cannot touch the root namespace's value, which is also checked unchanged."""
        path = "/proc/sys/net/bridge/bridge-nf-call-iptables"
        root_before = _read_root(path)
        for name, ns in self.node_nss.items():
            probe = _run(["ip", "netns", "exec", ns, "sh", "-c",
                          f"test -e {path} && echo yes || echo no"]).strip()
            if probe != "yes":
                raise KernelFeatureMissing(
                    f"{name}: no per-namespace {path} (needs CONFIG_BRIDGE_NETFILTER and "
                    "Linux >= 5.3); the harness will not change the root namespace's value")
            _run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w",
                  "net.bridge.bridge-nf-call-iptables=1"])
            got = _run(["ip", "netns", "exec", ns, "sysctl", "-n",
                        "net.bridge.bridge-nf-call-iptables"]).strip()
            if got != "1":
                raise RuntimeError(f"{name}: bridge-nf-call-iptables is {got}")
        if _read_root(path) != root_before:
            raise RuntimeError(f"the root namespace's {path} changed")

    # ---------------------------------------------------------------- netfilter
    def iptables_restore(self, node: str, text: str) -> None:
        """``iptables-restore`` (flushing the tables the text names) in ``node``'s ns."""
        import subprocess

        p = subprocess.run(["ip", "netns", "exec", self.node_nss[node], "iptables-restore"],
                           input=text, capture_output=True, text=True, timeout=20)
        if p.returncode != 0:
            raise RuntimeError(f"{node}: iptables-restore failed ({p.returncode}): "
                               f"{p.stderr.strip()}")

    def iptables_save(self, node: str, *, counters: bool = False) -> str:
        """``iptables-save`` of ``node`` without its ``#`` comment lines (and, unless
        ``counters``, with the chain counters zeroed as pktsim prints them)."""
        argv = ["iptables-save", *(["-c"] if counters else [])]
        out = self.exec(node, argv)
        return "".join(line + "\n" for line in out.splitlines() if not line.startswith("#"))

    def conntrack(self, node: str) -> list[str] | None:
        """The node's conntrack table: ``/proc/net/nf_conntrack`` lines (the namespace's
        own table; needs CONFIG_NF_CONNTRACK_PROCFS), else ``conntrack -L`` lines (Debian
        package conntrack), else None."""
        import shutil

        ns = self.node_nss[node]
        probe = _run(["ip", "netns", "exec", ns, "sh", "-c",
                      "test -r /proc/net/nf_conntrack && echo yes || echo no"]).strip()
        if probe == "yes":
            out = self.exec(node, ["cat", "/proc/net/nf_conntrack"])
        elif shutil.which("conntrack") is not None:
            out = self.exec(node, ["conntrack", "-L"])
        else:
            return None
        return [ln for ln in out.splitlines() if ln.strip() and not ln.startswith("conntrack")]

    def _overlay(self, n: NodeSpec) -> None:
        ns = self.node_nss[n.name]
        others = [o for o in self.nodes if o.name != n.name]
        if self.mode == "routes":
            for o in others:
                self.ip(ns, "route", "add", o.pod_cidr, "via", o.ip, "dev", "eth0")
        elif self.mode == "vxlan":
            argv = ["link", "add", VXLAN_DEV, "type", "vxlan", "id", "1", "local", n.ip,
                    "dev", "eth0", "dstport", str(VXLAN_PORT), "nolearning"]
            if self.vxlan_udp_csum is not None:
                argv.append("udpcsum" if self.vxlan_udp_csum else "noudpcsum")
            self.ip(ns, *argv)
            assert n.vtep_mac is not None
            self.ip(ns, "link", "set", VXLAN_DEV, "address", n.vtep_mac,
                    "mtu", str(OVERLAY_MTU["vxlan"]))
            self.ip(ns, "addr", "add", f"{n.tunnel_ip}/32", "dev", VXLAN_DEV)
            self.ip(ns, "link", "set", VXLAN_DEV, "up")
            for o in others:
                assert o.vtep_mac is not None
                self.ip(ns, "route", "add", o.pod_cidr, "via", o.tunnel_ip, "dev", VXLAN_DEV,
                        "onlink")
                self.ip(ns, "neigh", "replace", o.tunnel_ip, "lladdr", o.vtep_mac,
                        "dev", VXLAN_DEV, "nud", "permanent")
                _run(["bridge", "-n", ns, "fdb", "replace", o.vtep_mac, "dev", VXLAN_DEV,
                      "dst", o.ip, "self", "permanent"])
        else:  # ipip
            have = json.loads(self.ip(ns, "-j", "link", "show"))
            if not any(ln["ifname"] == "tunl0" for ln in have):
                # With the ipip driver present every new netns gets the fallback tunl0
                # (unless net.core.fb_tunnels_only_for_init_net says otherwise: then create
                # one).  Never make the kernel autoload the module: loading ipip creates a
                # tunl0 in the root namespace too, which this harness must not touch.
                if not os.path.isdir("/sys/module/ipip"):
                    raise KernelFeatureMissing(
                        "ipip mode needs the kernel's IP-in-IP driver (CONFIG_NET_IPIP, module "
                        f"ipip), which is not loaded here{_ipip_config_hint()}; the harness "
                        "does not load it (that would add tunl0 to the root namespace)")
                self.ip(ns, "link", "add", "name", "tunl0", "type", "ipip", "ttl", "inherit",
                        "nopmtudisc")  # what the fallback tunl0 Calico uses has
            self.ip(ns, "link", "set", "tunl0", "mtu", str(OVERLAY_MTU["ipip"]))
            self.ip(ns, "addr", "add", f"{n.tunnel_ip}/32", "dev", "tunl0")
            self.ip(ns, "link", "set", "tunl0", "up")
            for o in others:
                self.ip(ns, "route", "add", o.pod_cidr, "via", o.ip, "dev", "tunl0", "onlink")

    def _wait_ready(self) -> None:
        """Bounded poll: every link up (a tunnel may say UNKNOWN: no carrier management),
        every port of cbr0 and of the switch forwarding."""
        deadline = time.monotonic() + SETUP_TIMEOUT
        while True:
            ok = True
            for key, (ns, ifname) in self._all_links().items():
                state = self._operstate(ns, ifname)
                if state != "UP" and not (key.endswith((":flannel.1", ":tunl0"))
                                          and state == "UNKNOWN"):
                    ok = False
            if ok:
                for ns, ports in self._bridge_ports().items():
                    states = json.loads(_run(["bridge", "-n", ns, "-j", "link", "show"]))
                    fwd = {s["ifname"]: s.get("state") for s in states}
                    ok = ok and all(fwd.get(p) == "forwarding" for p in ports)
            if ok:
                return
            if time.monotonic() > deadline:
                raise TimeoutError("links did not come up")
            time.sleep(0.02)

    def _all_links(self) -> dict[str, tuple[str, str]]:
        out = dict(self.interfaces())
        for i, _n in enumerate(self.nodes):
            out[f"net:swp{i + 1}"] = (self.net_ns, f"swp{i + 1}")
        out[f"net:{SWITCH}"] = (self.net_ns, SWITCH)
        if self.external is not None:
            for port in (ROUTER_PORT, ROUTER_EXT_PORT, EXT_SWITCH, *self._ext_ports()):
                out[f"net:{port}"] = (self.net_ns, port)
        return out

    def _ext_ports(self) -> list[str]:
        n = len(self.external.clients) if self.external else 0
        return [f"xcp{i + 1}" for i in range(n)]

    def _bridge_ports(self) -> dict[str, list[str]]:
        out = {self.node_nss[n.name]: [p.veth for p in n.pods] for n in self.nodes}
        out[self.net_ns] = [f"swp{i + 1}" for i in range(len(self.nodes))]
        if self.external is not None:
            out[self.net_ns] += [ROUTER_PORT, ROUTER_EXT_PORT, *self._ext_ports()]
        return out

    def _wait_bridge_igmp(self, timeout: float = 3.0) -> None:
        deadline = time.monotonic() + timeout
        keys = [f"{n.name}:{self.bridge}" for n in self.nodes]
        while time.monotonic() < deadline:
            c = self.counters()
            if all(c[k]["tx"] >= 2 for k in keys):
                return
            time.sleep(0.02)

    # ---------------------------------------------------------------- state
    def interfaces(self) -> dict[str, tuple[str, str]]:
        out: dict[str, tuple[str, str]] = {}
        for n in self.nodes:
            for p in n.pods:
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
        out: dict[str, str] = {}
        for i, n in enumerate(self.nodes):
            for j, p in enumerate(n.pods):
                out[f"{p.name}:eth0"] = p.mac.lower()
                out[f"{n.name}:{p.veth}"] = self._veth_mac(i, j, p)
            out[f"{n.name}:{self.bridge}"] = n.bridge_mac.lower()
            out[f"{n.name}:eth0"] = n.mac.lower()
            if self.mode == "vxlan" and n.vtep_mac:
                out[f"{n.name}:{VXLAN_DEV}"] = n.vtep_mac.lower()
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
            for j, p in enumerate(n.pods):
                names[p.mac.lower()] = f"{p.name}.eth0"
                names[self._veth_mac(i, j, p)] = f"{n.name}.{p.veth}"
        if self.external is not None:
            names[self.external.router_mac.lower()] = "external.eth0"
            names[self.external.ext_mac.lower()] = "external.eth1"
            for c in self.external.clients:
                names[c.mac.lower()] = f"external/{c.name}.eth0"
        return names

    def flush_state(self) -> None:
        """Forget dynamic neighbours (the overlay's permanent ones stay), dynamic FDB
        entries of every cbr0 and of the switch, and TCP metrics."""
        ext = [self.router_ns, *self.ext_nss.values()] if self.external else []
        for ns in [*self.node_nss.values(), *self.pod_ns.values(), *ext]:
            self.ip(ns, "neigh", "flush", "all")
            self.ip(ns, "tcp_metrics", "flush", "all", check=False)
        for ns in self.node_nss.values():
            self.ip(ns, "link", "set", "dev", self.bridge, "type", "bridge", "fdb_flush")
        self.ip(self.net_ns, "link", "set", "dev", SWITCH, "type", "bridge", "fdb_flush")
        if self.external is not None:
            self.ip(self.net_ns, "link", "set", "dev", EXT_SWITCH, "type", "bridge",
                    "fdb_flush")
        if self.mode == "vxlan":
            self.check_vxlan_state()

    def check_vxlan_state(self) -> None:
        """The flannel entries are still there: one PERMANENT neighbour and one permanent
        FDB entry with ``dst`` per remote node."""
        for n in self.nodes:
            ns = self.node_nss[n.name]
            neigh = json.loads(self.ip(ns, "-j", "neigh", "show", "dev", VXLAN_DEV))
            fdb = json.loads(_run(["bridge", "-n", ns, "-j", "fdb", "show", "dev", VXLAN_DEV]))
            for o in self.nodes:
                if o is n:
                    continue
                assert o.vtep_mac is not None
                if not any(e.get("dst") == o.tunnel_ip
                           and e.get("lladdr", "").lower() == o.vtep_mac.lower()
                           and "PERMANENT" in e.get("state", []) for e in neigh):
                    raise RuntimeError(f"{n.name}: permanent neighbour for {o.name} gone: "
                                       f"{neigh}")
                if not any(e.get("mac", "").lower() == o.vtep_mac.lower()
                           and e.get("dst") == o.ip for e in fdb):
                    raise RuntimeError(f"{n.name}: FDB entry for {o.name} gone: {fdb}")

    def vxlan_details(self, node: str) -> dict[str, Any]:
        """``ip -d -j link show flannel.1`` linkinfo data of ``node`` (udp_csum, ttl, ...)."""
        info = json.loads(self.ip(self.node_nss[node], "-d", "-j", "link", "show", "dev",
                                  VXLAN_DEV))
        return dict(info[0]["linkinfo"]["info_data"])
