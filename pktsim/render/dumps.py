"""A host's tables as rows, and the Linux tools' text made from them.

The rows are what both presentations share: the files of ``nodes/NODE/`` (``ip addr``,
``ip route``, ``ip neigh``, ``bridge fdb``, ``conntrack -L``, ``iptables-save``, written by
``node_dumps``) and the Jupyter tables of ``pktsim.display.NodeTables``.  Each table is read
from the devices once, here, in the order the tool prints it; the text form and the table
form only format the same rows.  A route's and a connection's own text (``Route.text``,
``Conn.render``) and ``iptables-save`` are the devices' (the netfilter package owns the
restore-text format), called, not re-made.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from ipaddress import IPv6Interface, IPv6Network
from typing import TYPE_CHECKING

from pktsim.devices.tunnels import VxlanDevice
from pktsim.netfilter.conntrack import NS, Conn
from pktsim.netfilter.tuples import PROTO_NAMES, Tuple
from pktsim.wire.ip6 import link_local, multicast_mac, solicited_node
from pktsim.wire.parse import ip_str, mac_str

if TYPE_CHECKING:
    from pktsim.build.topology import Topology
    from pktsim.devices.netns import IfConfig, Netns
    from pktsim.devices.routes import Route
    from pktsim.netfilter.rules import Rule

HIDDEN_KINDS = ("stack", "brnf")  # pktsim's internal hand-offs, not interfaces


# -- rows ----------------------------------------------------------------------------------

def address_rows(ns: Netns) -> list[tuple[int, str, IfConfig]]:
    """``(ifindex, name, config)`` of every interface ``ip addr`` shows."""
    return [(index, name, cfg) for index, (name, cfg) in enumerate(ns.ifaces.items(), start=1)
            if cfg.kind not in HIDDEN_KINDS]


def route_rows(ns: Netns) -> list[Route]:
    """``ip route show`` order: default first, then by destination."""
    return sorted(ns.routes.routes, key=lambda r: (r.dst.prefixlen != 0,
                                                   int(r.dst.network_address),
                                                   r.dst.prefixlen))


def neigh_rows(ns: Netns, now: int = 0) -> list[tuple[str, str, str, str]]:
    """``(ip, dev, lladdr or "", state)`` in ``ip neigh show`` order: ARP's table, then
    Neighbor Discovery's (``neigh_dump_info`` walks ``arp_tbl`` before ``nd_tbl``), an IPv6
    router's state prefixed by ``router`` (the state as of ``now``: a REACHABLE entry past
    its reachable time shows STALE)."""
    return [(ip_str(ip), dev, mac_str(e.mac) if e.mac is not None else "",
             ("router " if e.router else "") + ns.neigh.state_at(e, now))
            for (dev, ip), e in sorted(ns.neigh.all_entries(),
                                       key=lambda kv: (len(kv[0][1]), kv[0][1], kv[0][0]))]


@dataclass(frozen=True, slots=True)
class FdbRow:
    """One ``bridge fdb`` entry: a bridge's (``master``, ``age_s``) or a VTEP's (``dst``)."""

    mac: str
    dev: str
    master: str
    flags: str
    age_s: float | None
    dst: str


def fdb_rows(topo: Topology, host: str, now: int) -> list[FdbRow]:
    """The bridge's learned and permanent entries, then flannel's VTEP FDBs (IPv4's, then
    in a dual-stack cluster IPv6's)."""
    rows = []
    bridge = topo.bridges.get(host)
    if bridge is not None:
        rows += [FdbRow(mac, port, bridge.name, flags, age, "")
                 for mac, port, flags, age in bridge.fdb_table(now)]
    for tunnel in (topo.tunnels.get(host), topo.tunnels6.get(host)):
        if isinstance(tunnel, VxlanDevice):
            rows += [FdbRow(mac_str(mac), tunnel.name, "", "self permanent", None, ip_str(ip))
                     for mac, ip in tunnel.fdb_entries()]
    return rows


def _endpoint(t: Tuple, src: bool) -> str:
    ip = ip_str(t.src if src else t.dst)
    if t.proto in (6, 17):
        return f"{ip}:{t.sport if src else t.dport}"
    if t.proto == 1:
        return f"{ip} id {t.sport}" if src else f"{ip} type {t.dport >> 8}"
    return ip


def conntrack_row(c: Conn, now: int) -> tuple[int, str, str, str, str, str, str, str, int, str]:
    """A connection as the columns of ``NodeTables.conntrack``."""
    nat = "+".join(k for k, on in (("DNAT", c.dst_nat), ("SNAT", c.src_nat)) if on)
    flags = " ".join(f for f, on in (("ASSURED", c.assured),
                                     ("UNREPLIED", not c.seen_reply)) if on)
    return (c.id, PROTO_NAMES.get(c.proto, str(c.proto)), c.state, _endpoint(c.orig, True),
            _endpoint(c.orig, False), _endpoint(c.reply, True), _endpoint(c.reply, False), nat,
            max(0, (c.expires - now - 1) // NS), flags)


def rule_row(table: str, chain: str, num: int, rule: Rule) -> tuple[str, str, int, str, str]:
    """An iptables rule as ``(table, chain, num, matches, target)``."""
    matches = " ".join(m.save() for m in rule.matches)
    target = rule.target.save().removeprefix("-j ") if rule.target is not None else ""
    return (table, chain, num, matches, target)


# -- the tools' text -----------------------------------------------------------------------

_QLEN = " qlen 1000"  # txqueuelen of every device pktsim has (as the kernel twin shows)
IPTABLES_VERSION = "v1.8.9 (nf_tables)"  # the iptables of kind's node image and of the twin


def _link_line(cfg: IfConfig, bridges: list[str], local: str) -> tuple[str, str]:
    """The interface line after its name, and its ``link/`` line, as ``ip addr`` prints
    them (iproute2 ``print_linkinfo``: flags, mtu, qdisc, master, state, group, qlen)."""
    mac = mac_str(cfg.mac)
    if cfg.kind == "loopback":
        return (f"<LOOPBACK,UP,LOWER_UP> mtu {cfg.mtu} qdisc noqueue state UNKNOWN group "
                f"default{_QLEN}", "link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00")
    if cfg.kind == "ipip":
        return (f"<NOARP,UP,LOWER_UP> mtu {cfg.mtu} qdisc noqueue state UNKNOWN group "
                f"default{_QLEN}", f"link/ipip {local} brd 0.0.0.0")
    master = f" master {bridges[0]}" if bridges and cfg.kind == "ether" and \
        cfg.name.startswith("veth") else ""
    state = "UNKNOWN" if cfg.kind == "vxlan" else "UP"
    qlen = _QLEN
    return (f"<BROADCAST,MULTICAST,UP,LOWER_UP> mtu {cfg.mtu} qdisc noqueue{master} state "
            f"{state} group default{qlen}", f"link/ether {mac} brd ff:ff:ff:ff:ff:ff")


def bridge_ports(topo: Topology, node: str) -> list[IfConfig]:
    """The host-side veths enslaved to the node's bridge, in the order they were added:
    interfaces of the node that pktsim keeps in the bridge rather than in the namespace."""
    from pktsim.devices.ifaces import IfConfig

    bridge = topo.bridges.get(node)
    ns = topo.node_ns[node]
    if bridge is None or bridge.name not in ns.ifaces:
        return []
    macs = {p.veth: p.veth_mac for p in topo.model.pods_on(node)}
    mtu = ns.ifaces[bridge.name].mtu
    ports = [IfConfig(port, macs.get(port, b"\0" * 6), mtu) for port in bridge.hairpin]
    if ns.ifaces[bridge.name].addrs6:  # IPv6 on: each veth has its EUI-64 link-local
        for cfg in ports:
            cfg.addrs6.append(IPv6Interface((link_local(cfg.mac), 64)))
    return ports


def ip_addr(ns: Netns, ports: list[IfConfig] | None = None) -> str:
    """``ip addr`` of a namespace as iproute2 prints it (hidden tunnel sockets left out),
    with ``ports`` (``bridge_ports``) after its own interfaces.

    A veth's peer (``@ifN``, ``link-netnsid``) is not shown: pktsim numbers no peer
    interfaces.  ``inet6`` lines only where the namespace has IPv6 (a dual-stack cluster's:
    an IPv4-only one is built, and twinned, with IPv6 off)."""
    lines = []
    rows = address_rows(ns)
    last = rows[-1][0] if rows else 0
    rows += [(last + i, cfg.name, cfg) for i, cfg in enumerate(ports or [], start=1)]
    bridges = [cfg.name for _, _, cfg in rows if cfg.kind == "bridge"]
    eth0 = ns.ifaces.get("eth0")
    node_ip = str(eth0.addrs[0].ip) if eth0 is not None and eth0.addrs else "0.0.0.0"
    for index, name, cfg in rows:
        # tunl0 is the kernel's fallback device (local any); flannel.ipip has local NODE_IP
        local = "0.0.0.0" if name == "tunl0" else node_ip
        head, link = _link_line(cfg, bridges, local)
        lines += [f"{index}: {name}: {head}", f"    {link}"]
        for addr in cfg.addrs:
            scope = "host" if addr.ip.is_loopback else "global"
            brd = f" brd {addr.network.broadcast_address}" \
                if addr.network.prefixlen < 31 and not addr.ip.is_loopback else ""
            lines += [f"    inet {addr.with_prefixlen}{brd} scope {scope} {name}",
                      "       valid_lft forever preferred_lft forever"]
        for addr6 in cfg.addrs6:
            scope = "host" if addr6.ip.is_loopback else \
                "link" if addr6.ip.is_link_local else "global"
            lines += [f"    inet6 {addr6.with_prefixlen} scope {scope} ",
                      "       valid_lft forever preferred_lft forever"]
    return "\n".join(lines) + "\n"


def ip_route(ns: Netns) -> str:
    """``ip route show``."""
    return "".join(r.text + "\n" for r in route_rows(ns))


def route6_rows(ns: Netns, ports: list[IfConfig] | None = None) -> list[Route]:
    """``ip -6 route show`` order (the fib6 tree walk): by destination, the default route
    last, routes to one prefix in the order they were added -- ``fe80::/64`` per device as
    each got its link-local: ``eth0``, the first bridge port, the bridge (which has carrier
    once a port is up), then the other ports (``ports``: ``bridge_ports``)."""
    from pktsim.devices.routes import Route

    link = IPv6Network("fe80::/64")
    routes = [r for r in ns.routes6.routes if r.dst != link]
    own = {r.dev: r for r in ns.routes6.routes if r.dst == link}
    names = [p.name for p in ports or []]
    # creation order: eth0, the overlay devices (flanneld's, at its start), the first pod's
    # veth, the bridge (carrier once a port is up), then the other pods' veths
    kinds = {"ether": 0, "vxlan": 1, "bridge": 3}
    ordered = sorted(own.values(), key=lambda r: kinds.get(ns.ifaces[r.dev].kind, 0))
    added = [Route(link, name, proto="kernel", metric=256) for name in names]
    at = next((i for i, r in enumerate(ordered) if ns.ifaces[r.dev].kind == "bridge"),
              len(ordered))
    ordered[at:at] = added[:1]
    ordered[at + 2:at + 2] = added[1:]
    rows = sorted(routes, key=lambda r: (r.dst.prefixlen == 0, int(r.dst.network_address),
                                         r.dst.prefixlen, r.metric))
    at = next((i for i, r in enumerate(rows) if r.dst.prefixlen == 0 or
               int(r.dst.network_address) > int(link.network_address)), len(rows))
    return rows[:at] + ordered + rows[at:]


def ip6_route(ns: Netns, ports: list[IfConfig] | None = None) -> str:
    """``ip -6 route show``."""
    return "".join(r.text + "\n" for r in route6_rows(ns, ports))


def ip_neigh(ns: Netns, now: int = 0) -> str:
    """``ip neigh show`` (at ``now``)."""
    return "".join(f"{ip} dev {dev}{f' lladdr {mac}' if mac else ''} {state}\n"
                   for ip, dev, mac, state in neigh_rows(ns, now))


# the multicast addresses every up Ethernet device holds (IPv6 all-nodes: even with IPv6
# disabled; IPv4 all-hosts), and a bridge's multicast router discovery ones (224.0.0.106)
_SELF = ("33:33:00:00:00:01", "01:00:5e:00:00:01")
_BRIDGE_SELF = ("33:33:00:00:00:01", "01:00:5e:00:00:6a", "33:33:00:00:00:6a",
                "01:00:5e:00:00:01")


def _self_macs(cfg: IfConfig, forwarding: bool) -> tuple[str, ...]:
    """A device's multicast MACs in the order its groups were joined (seen in namespaces
    with the node's setup order: addresses, then link up, then carrier).  With IPv6 each
    device adds all-routers (a forwarding node), the solicited-node group of each address
    and, forwarding, that of the subnet-router anycast ``::`` of its prefixes
    (``addrconf_join_anycast``: ``ff02::1:ff00:0``, the link-local prefix's included)."""
    own = _BRIDGE_SELF if cfg.kind == "bridge" else _SELF
    if not cfg.addrs6:
        return own
    def group(addr: IPv6Interface) -> str:
        return mac_str(multicast_mac(solicited_node(addr.ip.packed)))
    globals_ = tuple(group(a) for a in reversed(cfg.addrs6) if not a.ip.is_link_local)
    links = tuple(group(a) for a in cfg.addrs6 if a.ip.is_link_local)
    routers = ("33:33:00:00:00:02",) if forwarding else ()
    anycast = ("33:33:ff:00:00:00",) if forwarding else ()
    return own[:1] + routers + globals_ + own[1:] + links + anycast


def bridge_fdb(topo: Topology, node: str, now: int) -> str:
    """``bridge fdb show`` as iproute2 prints it: device by device (ifindex order), a
    bridge port's learned entries and its own permanent one (``master``), each device's
    multicast addresses (``self permanent``), a VTEP's entries (``dst``).  Learned entries
    come in the bridge hash's order in the kernel: sorted here."""
    ns = topo.node_ns[node]
    rows = fdb_rows(topo, node, now)
    bridge = topo.bridges.get(node)
    devices = [cfg for _, _, cfg in address_rows(ns)] + bridge_ports(topo, node)
    ports = {cfg.name for cfg in bridge_ports(topo, node)}
    lines = []
    for cfg in devices:
        name = cfg.name
        if cfg.kind in ("loopback", "ipip"):
            continue
        if cfg.kind == "vxlan":
            lines += [f"{r.mac} dev {r.dev} dst {r.dst} {r.flags}" for r in rows
                      if r.dev == name and not r.master]
            continue
        own = [r for r in rows if r.dev == name and r.master]
        learned = [f"{r.mac} dev {name} master {r.master}" for r in own if not r.flags]
        permanent = [f"{r.mac} dev {name} master {r.master} permanent" for r in own if r.flags]
        if name in ports and bridge is not None:
            permanent.append(f"{mac_str(cfg.mac)} dev {name} master {bridge.name} permanent")
        selfs = [f"{m} dev {name} self permanent" for m in _self_macs(cfg, ns.forwarding)]
        lines += selfs + permanent if cfg.kind == "bridge" else learned + permanent + selfs
    return "\n".join(lines) + ("\n" if lines else "")


def iptables_save(text: str, now: int, tool: str = "iptables-save") -> str:
    """``iptables-save`` as the tool prints it: each table framed by ``# Generated by
    iptables-save … on DATE`` and ``# Completed on DATE`` (iptables ``iptables-save.c``
    ``__do_output``).  The date is the Unix epoch plus the run's virtual time, in ctime's
    form, so that a run stays a pure function of its input.  ``tool`` ``ip6tables-save``
    frames an IPv6 netfilter's text the same way (``ip6tables-save`` is the same program)."""
    stamp = time.strftime("%a %b %e %H:%M:%S %Y", time.gmtime(now // NS))
    out = []
    for line in text.splitlines(keepends=True):
        if line.startswith("*"):
            out.append(f"# Generated by {tool} {IPTABLES_VERSION} on {stamp}\n")
        out.append(line)
        if line.rstrip("\n") == "COMMIT":
            out.append(f"# Completed on {stamp}\n")
    return "".join(out)


def conntrack_list(conns: list[Conn], now: int) -> str:
    """``conntrack -L`` (oldest entry first)."""
    return "".join(conn.render(now) + "\n" for conn in conns)


def node_dumps(topo: Topology, now: int) -> dict[str, str]:
    """Per node: ``nodes/NODE/{ip-addr,ip-route,ip-neigh,bridge-fdb,iptables-save,
    conntrack}.txt`` (the last as ``conntrack -L`` prints it at the end of the run),
    ``ipset-save.txt`` where the node has IP sets (felix's, on Calico), and
    ``ip6tables-save.txt`` and ``conntrack6.txt`` (``conntrack -L -f ipv6``) where it has
    IPv6."""
    out = {}
    for name, ns in sorted(topo.node_ns.items()):
        out[f"nodes/{name}/ip-addr.txt"] = ip_addr(ns, bridge_ports(topo, name))
        out[f"nodes/{name}/ip-route.txt"] = ip_route(ns)
        if ns.routes6.routes:
            out[f"nodes/{name}/ip-6-route.txt"] = ip6_route(ns, bridge_ports(topo, name))
        out[f"nodes/{name}/ip-neigh.txt"] = ip_neigh(ns, now)
        out[f"nodes/{name}/bridge-fdb.txt"] = bridge_fdb(topo, name, now)
        nf = topo.netfilters.get(name)
        if nf is not None:
            out[f"nodes/{name}/iptables-save.txt"] = iptables_save(nf.save(), now)
            out[f"nodes/{name}/conntrack.txt"] = conntrack_list(nf.conntrack.entries(now), now)
            if nf.ipsets.sets:  # felix's IP sets, on Calico
                out[f"nodes/{name}/ipset-save.txt"] = nf.ipsets.save()
        nf6 = topo.netfilters6.get(name)
        if nf6 is not None:  # ip6tables-save and conntrack -L -f ipv6
            out[f"nodes/{name}/ip6tables-save.txt"] = iptables_save(nf6.save(), now,
                                                                    "ip6tables-save")
            out[f"nodes/{name}/conntrack6.txt"] = conntrack_list(nf6.conntrack.entries(now),
                                                                 now)
    return out
