"""A host's tables at one moment, as tables: what ``bridge fdb``, ``ip route``, ``ip neigh``,
``ip addr``, ``iptables-save`` and ``conntrack -L`` would print, one row per entry.

``NodeTables(topology, host, now)`` is a *snapshot*: take one before a step and one after and
compare.  ``host`` is a node (``node-1``), a pod (``default/client``), ``external`` (the
router) or an external client; a pod has no bridge, iptables or conntrack of its own.

Columns (also the DataFrames'):

* ``fdb``: mac, dev, master, flags, age_s, dst (``dst`` for flannel's VTEP entries)
* ``routes``: dst, via, dev, proto, scope, src, flags
* ``neighbours``: ip, dev, lladdr, state
* ``addresses``: iface, kind, mac, mtu, addresses
* ``iptables``: table, chain, num, matches, target
* ``conntrack``: id, proto, state, orig_src, orig_dst, reply_src, reply_dst, nat,
  timeout_s, flags
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from pktsim.devices.routes import Route
from pktsim.display.tabular import Table, esc
from pktsim.netfilter.conntrack import NS, Conn
from pktsim.netfilter.rules import Rule
from pktsim.netfilter.targets import Jump
from pktsim.netfilter.tuples import PROTO_NAMES, Tuple
from pktsim.wire.parse import ip_str, mac_str

if TYPE_CHECKING:
    from pktsim.build.topology import Topology
    from pktsim.devices.netns import Netns
    from pktsim.netfilter import Netfilter

FDB = ("mac", "dev", "master", "flags", "age_s", "dst")
ROUTES = ("dst", "via", "dev", "proto", "scope", "src", "flags")
NEIGHBOURS = ("ip", "dev", "lladdr", "state")
ADDRESSES = ("iface", "kind", "mac", "mtu", "addresses")
IPTABLES = ("table", "chain", "num", "matches", "target")
CONNTRACK = ("id", "proto", "state", "orig_src", "orig_dst", "reply_src", "reply_dst", "nat",
             "timeout_s", "flags")
SERVICE_CHAINS = ("KUBE-SVC-", "KUBE-SVL-", "KUBE-SEP-", "KUBE-EXT-", "KUBE-FW-")


def _endpoint(t: Tuple, src: bool) -> str:
    ip = ip_str(t.src if src else t.dst)
    if t.proto in (6, 17):
        return f"{ip}:{t.sport if src else t.dport}"
    if t.proto == 1:
        return f"{ip} id {t.sport}" if src else f"{ip} type {t.dport >> 8}"
    return ip


def conntrack_table(conns: list[Conn], now: int, title: str = "conntrack") -> Table:
    table = Table(title, CONNTRACK)
    for i, c in enumerate(conns):
        nat = "+".join(k for k, on in (("DNAT", c.dst_nat), ("SNAT", c.src_nat)) if on)
        if nat:
            table.marks[i] = "nat"
        flags = " ".join(f for f, on in (("ASSURED", c.assured),
                                         ("UNREPLIED", not c.seen_reply)) if on)
        table.rows.append((c.id, PROTO_NAMES.get(c.proto, str(c.proto)), c.state,
                           _endpoint(c.orig, True), _endpoint(c.orig, False),
                           _endpoint(c.reply, True), _endpoint(c.reply, False), nat,
                           max(0, (c.expires - now - 1) // NS), flags))
    return table


def _rule_row(table: str, chain: str, num: int, rule: Rule) -> tuple[str, str, int, str, str]:
    matches = " ".join(m.save() for m in rule.matches)
    target = rule.target.save().removeprefix("-j ") if rule.target is not None else ""
    return (table, chain, num, matches, target)


def iptables_table(nf: Netfilter, title: str = "iptables") -> Table:
    table = Table(title, IPTABLES)
    for name in ("raw", "mangle", "filter", "nat"):
        for chain, num, rule in nf.tables[name].rules():
            table.rows.append(_rule_row(name, chain.name, num, rule))
    return table


def service_rules(nf: Netfilter, service: str, title: str = "") -> Table:
    """The rules kube-proxy wrote for ``service`` (``ns/name``), in walking order: the rules
    whose comment names it, then every per-service chain they jump to."""
    table = Table(title or f"iptables rules of {service}", IPTABLES)
    for name in ("filter", "nat"):
        t = nf.tables[name]
        todo: deque[str] = deque()
        seen: set[str] = set()
        for chain, num, rule in t.rules():
            if chain.name.startswith(SERVICE_CHAINS):
                continue
            if rule.comment == service or rule.comment.startswith(f"{service}:"):
                table.rows.append(_rule_row(name, chain.name, num, rule))
                if isinstance(rule.target, Jump):
                    todo.append(rule.target.chain)
        while todo:
            chain_name = todo.popleft()
            if chain_name in seen or not chain_name.startswith(SERVICE_CHAINS):
                continue
            seen.add(chain_name)
            for num, rule in enumerate(t[chain_name].rules, 1):
                table.rows.append(_rule_row(name, chain_name, num, rule))
                if isinstance(rule.target, Jump):
                    todo.append(rule.target.chain)
    return table


def _route_key(r: Route) -> tuple[bool, int, int]:
    dst = r.dst
    return (dst.prefixlen != 0, int(dst.network_address), dst.prefixlen)


class NodeTables:
    """Snapshot of one host's tables; each attribute is a ``Table``."""

    def __init__(self, topology: Topology, host: str, now: int) -> None:
        self.host = host
        self.now = now
        ns = topology.netns_of(host)
        self.addresses = self._addresses(ns)
        self.routes = self._routes(ns)
        self.neighbours = self._neighbours(ns)
        self.fdb = self._fdb(topology, host, now)
        nf = topology.netfilters.get(host)
        self._nf = nf
        self.iptables = iptables_table(nf, f"iptables on {host}") if nf is not None else \
            Table(f"iptables on {host}", IPTABLES, note="no netfilter in this namespace")
        self.conntrack = conntrack_table(nf.conntrack.entries(now), now,
                                         f"conntrack on {host}") if nf is not None else \
            Table(f"conntrack on {host}", CONNTRACK, note="no conntrack in this namespace")

    def service_rules(self, service: str) -> Table:
        """kube-proxy's rules for one Service (``ns/name``) on this node."""
        if self._nf is None:
            return Table(f"iptables rules of {service}", IPTABLES, note=f"{self.host} has none")
        return service_rules(self._nf, service, f"iptables rules of {service} on {self.host}")

    def all(self) -> dict[str, Table]:
        return {"addresses": self.addresses, "routes": self.routes,
                "neighbours": self.neighbours, "fdb": self.fdb, "iptables": self.iptables,
                "conntrack": self.conntrack}

    def _addresses(self, ns: Netns) -> Table:
        table = Table(f"ip addr on {self.host}", ADDRESSES)
        for name, cfg in ns.ifaces.items():
            if cfg.kind in ("stack", "brnf"):
                continue
            table.rows.append((name, cfg.kind, mac_str(cfg.mac) if cfg.mac else "", cfg.mtu,
                               " ".join(a.with_prefixlen for a in cfg.addrs)))
        return table

    def _routes(self, ns: Netns) -> Table:
        table = Table(f"ip route on {self.host}", ROUTES)
        for r in sorted(ns.routes.routes, key=_route_key):
            dst = "default" if r.dst.prefixlen == 0 else str(r.dst)
            table.rows.append((dst, str(r.via or ""), r.dev, r.proto, r.scope,
                               str(r.src or ""), "onlink" if r.onlink else ""))
        return table

    def _neighbours(self, ns: Netns) -> Table:
        table = Table(f"ip neigh on {self.host}", NEIGHBOURS)
        for (dev, ip), e in sorted(ns.neigh.entries.items(), key=lambda kv: (kv[0][1],
                                                                            kv[0][0])):
            table.rows.append((ip_str(ip), dev, mac_str(e.mac) if e.mac else "", e.state))
        return table

    def _fdb(self, topo: Topology, host: str, now: int) -> Table:
        table = Table(f"bridge fdb on {host}", FDB)
        bridge = topo.bridges.get(host)
        if bridge is not None:
            for mac, port, flags, age in bridge.fdb_table(now):
                table.rows.append((mac, port, bridge.name, flags, round(age, 3), ""))
        tunnel = topo.tunnels.get(host)
        fdb = getattr(tunnel, "fdb", None)
        if tunnel is not None and fdb:
            for mac, ip in sorted(fdb.items()):
                table.rows.append((mac_str(mac), tunnel.name, "", "self permanent", "",
                                   ip_str(ip)))
        if bridge is None and not table.rows:
            table.note = "no bridge in this namespace"
        return table

    def __str__(self) -> str:
        return "\n".join(t.text() for t in self.all().values())

    def __repr__(self) -> str:
        return (f"<NodeTables {self.host} at {self.now / 1e6:.3f} ms: "
                + ", ".join(f"{k} {len(t)}" for k, t in self.all().items()) + ">")

    def _repr_html_(self) -> str:
        parts = [f"<h4>{esc(self.host)} at {self.now / 1e6:.3f} ms</h4>"]
        for name, t in self.all().items():
            if name == "iptables":  # hundreds of rules: folded
                parts.append(f"<details><summary>iptables: {len(t)} rules</summary>"
                             f"{t.html()}</details>")
            else:
                parts.append(t.html())
        return "".join(parts)
