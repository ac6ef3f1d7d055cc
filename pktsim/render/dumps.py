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

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pktsim.netfilter.conntrack import NS, Conn
from pktsim.netfilter.tuples import PROTO_NAMES, Tuple
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


def neigh_rows(ns: Netns) -> list[tuple[str, str, str, str]]:
    """``(ip, dev, lladdr or "", state)`` in ``ip neigh show`` order."""
    return [(ip_str(ip), dev, mac_str(e.mac) if e.mac is not None else "", e.state)
            for (dev, ip), e in sorted(ns.neigh.entries.items(),
                                       key=lambda kv: (kv[0][1], kv[0][0]))]


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
    """The bridge's learned and permanent entries, then flannel's VTEP FDB."""
    rows = []
    bridge = topo.bridges.get(host)
    if bridge is not None:
        rows += [FdbRow(mac, port, bridge.name, flags, age, "")
                 for mac, port, flags, age in bridge.fdb_table(now)]
    tunnel = topo.tunnels.get(host)
    fdb = getattr(tunnel, "fdb", None)
    if tunnel is not None and fdb:
        rows += [FdbRow(mac_str(mac), tunnel.name, "", "self permanent", None, ip_str(ip))
                 for mac, ip in sorted(fdb.items())]
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

def ip_addr(ns: Netns) -> str:
    """``ip -brief``-like ``ip addr`` of a namespace (hidden tunnel sockets left out)."""
    lines = []
    for index, name, cfg in address_rows(ns):
        state = "UNKNOWN" if cfg.kind in ("loopback", "ipip") else "UP"
        kind = "loopback" if cfg.kind == "loopback" else "ether"
        link = "" if cfg.kind == "ipip" else f" link/{kind} {mac_str(cfg.mac)}"
        lines.append(f"{index}: {name}: mtu {cfg.mtu} state {state}{link}")
        for addr in cfg.addrs:
            scope = "host" if addr.ip.is_loopback else "global"
            lines.append(f"    inet {addr.with_prefixlen} scope {scope} {name}")
    return "\n".join(lines) + "\n"


def ip_route(ns: Netns) -> str:
    """``ip route show``."""
    return "".join(r.text + "\n" for r in route_rows(ns))


def ip_neigh(ns: Netns) -> str:
    """``ip neigh show``."""
    return "".join(f"{ip} dev {dev}{f' lladdr {mac}' if mac else ''} {state}\n"
                   for ip, dev, mac, state in neigh_rows(ns))


def bridge_fdb(topo: Topology, node: str, now: int) -> str:
    """``bridge fdb show``: the bridge's learned and permanent entries, the VTEP's FDB."""
    lines = []
    for r in fdb_rows(topo, node, now):
        if r.master:
            extra = " permanent" if r.flags else f" (age {r.age_s or 0.0:.1f}s)"
            lines.append(f"{r.mac} dev {r.dev} master {r.master}{extra}")
        else:
            lines.append(f"{r.mac} dev {r.dev} dst {r.dst} {r.flags}")
    return "\n".join(lines) + ("\n" if lines else "")


def conntrack_list(conns: list[Conn], now: int) -> str:
    """``conntrack -L`` (oldest entry first)."""
    return "".join(conn.render(now) + "\n" for conn in conns)


def node_dumps(topo: Topology, now: int) -> dict[str, str]:
    """Per node: ``nodes/NODE/{ip-addr,ip-route,ip-neigh,bridge-fdb,iptables-save,
    conntrack}.txt`` (the last as ``conntrack -L`` prints it at the end of the run), and
    ``ipset-save.txt`` where the node has IP sets (felix's, on Calico)."""
    out = {}
    for name, ns in sorted(topo.node_ns.items()):
        out[f"nodes/{name}/ip-addr.txt"] = ip_addr(ns)
        out[f"nodes/{name}/ip-route.txt"] = ip_route(ns)
        out[f"nodes/{name}/ip-neigh.txt"] = ip_neigh(ns)
        out[f"nodes/{name}/bridge-fdb.txt"] = bridge_fdb(topo, name, now)
        nf = topo.netfilters.get(name)
        if nf is not None:
            out[f"nodes/{name}/iptables-save.txt"] = nf.save()
            out[f"nodes/{name}/conntrack.txt"] = conntrack_list(nf.conntrack.entries(now), now)
            if nf.ipsets.sets:  # felix's IP sets, on Calico
                out[f"nodes/{name}/ipset-save.txt"] = nf.ipsets.save()
    return out
