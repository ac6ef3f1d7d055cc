"""The pods' cross-node path in the cross-node twin, one function per ``network:`` mode
pktsim models:

    routes  : <remote pod CIDR> via <remote node IP> dev eth0 (dual-stack: and
              <remote pod /64> via <remote node IPv6> dev eth0)
    vxlan   : flannel.1 = vxlan id 1 local <node IP> dev eth0 dstport 8472 nolearning,
              MAC = VTEP MAC given, MTU 1450, <pod CIDR>.0/32; per remote node:
              route <remote CIDR> via <remote .0> dev flannel.1 onlink,
              neigh replace <remote .0> lladdr <remote VTEP> dev flannel.1 nud permanent,
              bridge fdb replace <remote VTEP> dev flannel.1 dst <remote IP> self permanent
              (flannel's NeighSet calls: pkg/backend/vxlan/device.go AddARP/AddFDB);
              dual-stack: flannel-v6.1 = the same over IPv6 (local <node IPv6>, MTU
              1430, <pod /64>::/128) with its route, neighbour and FDB entry per node
    ipip    : flannel.ipip = ipip local <node IP> ttl inherit nopmtudisc, MTU 1480,
              <pod CIDR>.0/32; per remote node: <remote CIDR> via <remote node IP>
              dev flannel.ipip onlink  (flannel pkg/backend/ipip/ipip.go; needs
              CONFIG_NET_IPIP)

Everything is configured inside the node's namespace; the ipip driver is never loaded by
the harness (loading it would create a ``tunl0`` in the root namespace too).
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from .commands import KernelFeatureMissing, kernel_config_hint, run

if TYPE_CHECKING:
    from .cluster import NodeSpec
    from .namespaces import Twin

__all__ = ["OVERLAY_MTU", "TUNNEL_DEV", "VXLAN6_DEV", "VXLAN_DEV", "VXLAN_PORT",
           "build_overlay", "check_vxlan_state", "vxlan_details"]

OVERLAY_MTU = {"routes": 1500, "vxlan": 1450, "ipip": 1480}
VXLAN_DEV = "flannel.1"
VXLAN6_DEV = "flannel-v6.1"
VXLAN6_MTU = 1430
VXLAN_PORT = 8472
IPIP_DEV = "flannel.ipip"
TUNNEL_DEV = {"vxlan": VXLAN_DEV, "ipip": IPIP_DEV}


def build_overlay(twin: Twin, ns: str, mode: str, n: NodeSpec, others: list[NodeSpec],
                  vxlan_udp_csum: bool | None = None) -> None:
    """Node ``n``'s (namespace ``ns``) path to the pods of ``others`` in ``mode``."""
    if mode == "routes":
        for o in others:
            twin.ip(ns, "route", "add", o.pod_cidr, "via", o.ip, "dev", "eth0")
            if n.pod_cidr6 and o.pod_cidr6 and o.ip6:  # the /64 via the node's IPv6
                twin.ip(ns, "-6", "route", "add", o.pod_cidr6, "via", o.ip6, "dev", "eth0")
    elif mode == "vxlan":
        _vxlan(twin, ns, n, others, vxlan_udp_csum)
        if n.vtep_mac6:
            _vxlan6(twin, ns, n, others)
    else:
        _ipip(twin, ns, n, others)


def _vxlan(twin: Twin, ns: str, n: NodeSpec, others: list[NodeSpec],
           udp_csum: bool | None) -> None:
    """flannel's VTEP and, per remote node, the route, the permanent neighbour and the
    FDB entry flannel installs (no learning: nothing is flooded, ARP never crosses)."""
    argv = ["link", "add", VXLAN_DEV, "type", "vxlan", "id", "1", "local", n.ip,
            "dev", "eth0", "dstport", str(VXLAN_PORT), "nolearning"]
    if udp_csum is not None:
        argv.append("udpcsum" if udp_csum else "noudpcsum")
    twin.ip(ns, *argv)
    assert n.vtep_mac is not None
    twin.ip(ns, "link", "set", VXLAN_DEV, "address", n.vtep_mac,
            "mtu", str(OVERLAY_MTU["vxlan"]))
    twin.ip(ns, "addr", "add", f"{n.tunnel_ip}/32", "dev", VXLAN_DEV)
    twin.ip(ns, "link", "set", VXLAN_DEV, "up")
    for o in others:
        assert o.vtep_mac is not None
        twin.ip(ns, "route", "add", o.pod_cidr, "via", o.tunnel_ip, "dev", VXLAN_DEV,
                "onlink")
        twin.ip(ns, "neigh", "replace", o.tunnel_ip, "lladdr", o.vtep_mac,
                "dev", VXLAN_DEV, "nud", "permanent")
        run(["bridge", "-n", ns, "fdb", "replace", o.vtep_mac, "dev", VXLAN_DEV,
             "dst", o.ip, "self", "permanent"])


def _vxlan6(twin: Twin, ns: str, n: NodeSpec, others: list[NodeSpec]) -> None:
    """flannel's IPv6 VTEP in a dual-stack cluster and its per-node entries."""
    assert n.ip6 and n.vtep_mac6 and n.tunnel_ip6
    twin.ip(ns, "link", "add", VXLAN6_DEV, "type", "vxlan", "id", "1", "local", n.ip6,
            "dev", "eth0", "dstport", str(VXLAN_PORT), "nolearning")
    twin.ip(ns, "link", "set", VXLAN6_DEV, "address", n.vtep_mac6, "mtu", str(VXLAN6_MTU))
    twin.ip(ns, "addr", "add", f"{n.tunnel_ip6}/128", "dev", VXLAN6_DEV)
    twin.ip(ns, "link", "set", VXLAN6_DEV, "up")
    for o in others:
        assert o.vtep_mac6 and o.tunnel_ip6 and o.pod_cidr6 and o.ip6
        twin.ip(ns, "-6", "route", "add", o.pod_cidr6, "via", o.tunnel_ip6, "dev", VXLAN6_DEV,
                "onlink")
        twin.ip(ns, "-6", "neigh", "replace", o.tunnel_ip6, "lladdr", o.vtep_mac6,
                "dev", VXLAN6_DEV, "nud", "permanent")
        run(["bridge", "-n", ns, "fdb", "replace", o.vtep_mac6, "dev", VXLAN6_DEV,
             "dst", o.ip6, "self", "permanent"])


def _ipip(twin: Twin, ns: str, n: NodeSpec, others: list[NodeSpec]) -> None:
    """flannel's flannel.ipip (``configureIPIPDevice``) and one onlink route per remote
    node through it (``GetRoute``, DirectRouting off)."""
    # Never make the kernel autoload the module: loading ipip creates a tunl0 in the root
    # namespace too, which this harness must not touch.
    if not os.path.isdir("/sys/module/ipip"):
        raise KernelFeatureMissing(
            "ipip mode needs the kernel's IP-in-IP driver (CONFIG_NET_IPIP, module "
            f"ipip), which is not loaded here{kernel_config_hint('CONFIG_NET_IPIP')}; "
            "the harness does not load it (that would add tunl0 to the root namespace)")
    twin.ip(ns, "link", "add", "name", IPIP_DEV, "type", "ipip", "local", n.ip, "ttl",
            "inherit", "nopmtudisc")
    twin.ip(ns, "link", "set", IPIP_DEV, "mtu", str(OVERLAY_MTU["ipip"]))
    twin.ip(ns, "addr", "add", f"{n.tunnel_ip}/32", "dev", IPIP_DEV)
    twin.ip(ns, "link", "set", IPIP_DEV, "up")
    for o in others:
        twin.ip(ns, "route", "add", o.pod_cidr, "via", o.ip, "dev", IPIP_DEV, "onlink")


def check_vxlan_state(twin: Twin, nodes: list[NodeSpec], node_nss: dict[str, str]) -> None:
    """The flannel entries are still there: one PERMANENT neighbour and one permanent
    FDB entry with ``dst`` per remote node.  (``ip neigh flush all`` must leave them:
    without them the kernel would ARP across the tunnel, which flannel never does.)"""
    for n in nodes:
        ns = node_nss[n.name]
        neigh = json.loads(twin.ip(ns, "-j", "neigh", "show", "dev", VXLAN_DEV))
        fdb = json.loads(run(["bridge", "-n", ns, "-j", "fdb", "show", "dev", VXLAN_DEV]))
        for o in nodes:
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


def vxlan_details(twin: Twin, ns: str) -> dict[str, Any]:
    """``ip -d -j link show flannel.1`` linkinfo data in ``ns`` (udp_csum, ttl, ...)."""
    info = json.loads(twin.ip(ns, "-d", "-j", "link", "show", "dev", VXLAN_DEV))
    return dict(info[0]["linkinfo"]["info_data"])
