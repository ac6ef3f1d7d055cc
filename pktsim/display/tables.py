"""A host's tables at one moment, as tables: what ``bridge fdb``, ``ip route``, ``ip neigh``,
``ip addr``, ``iptables-save`` and ``conntrack -L`` would print, one row per entry.

The rows are ``pktsim.render.dumps``'s, the same the ``nodes/NODE/*.txt`` files print.

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

from pktsim.display.tabular import Table, esc
from pktsim.netfilter.conntrack import Conn
from pktsim.netfilter.targets import Jump
from pktsim.render.dumps import (
    address_rows,
    conntrack_row,
    fdb_rows,
    neigh_rows,
    route_rows,
    rule_row,
)
from pktsim.wire.parse import mac_str

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


def conntrack_table(conns: list[Conn], now: int, title: str = "conntrack") -> Table:
    table = Table(title, CONNTRACK)
    for i, c in enumerate(conns):
        row = conntrack_row(c, now)
        if row[7]:  # the nat column
            table.marks[i] = "nat"
        table.rows.append(row)
    return table


def iptables_table(nf: Netfilter, title: str = "iptables") -> Table:
    table = Table(title, IPTABLES)
    for name in ("raw", "mangle", "filter", "nat"):
        for chain, num, rule in nf.tables[name].rules():
            table.rows.append(rule_row(name, chain.name, num, rule))
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
                table.rows.append(rule_row(name, chain.name, num, rule))
                if isinstance(rule.target, Jump):
                    todo.append(rule.target.chain)
        while todo:
            chain_name = todo.popleft()
            if chain_name in seen or not chain_name.startswith(SERVICE_CHAINS):
                continue
            seen.add(chain_name)
            for num, rule in enumerate(t[chain_name].rules, 1):
                table.rows.append(rule_row(name, chain_name, num, rule))
                if isinstance(rule.target, Jump):
                    todo.append(rule.target.chain)
    return table


class NodeTables:
    """Snapshot of one host's tables; each attribute is a ``Table``."""

    def __init__(self, topology: Topology, host: str, now: int) -> None:
        self.host = host
        self.now = now
        ns = topology.netns_of(host)
        self.addresses = self._addresses(ns)
        self.routes = self._routes(ns)
        self.neighbours = self._neighbours(ns, now)
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
        for _, name, cfg in address_rows(ns):
            table.rows.append((name, cfg.kind, mac_str(cfg.mac) if cfg.mac else "", cfg.mtu,
                               " ".join(a.with_prefixlen for a in cfg.addrs)))
        return table

    def _routes(self, ns: Netns) -> Table:
        table = Table(f"ip route on {self.host}", ROUTES)
        for r in route_rows(ns):
            dst = "default" if r.dst.prefixlen == 0 else str(r.dst)
            table.rows.append((dst, str(r.via or ""), r.dev, r.proto, r.scope,
                               str(r.src or ""), "onlink" if r.onlink else ""))
        return table

    def _neighbours(self, ns: Netns, now: int) -> Table:
        table = Table(f"ip neigh on {self.host}", NEIGHBOURS)
        table.rows += neigh_rows(ns, now)
        return table

    def _fdb(self, topo: Topology, host: str, now: int) -> Table:
        table = Table(f"bridge fdb on {host}", FDB)
        table.rows += [(r.mac, r.dev, r.master, r.flags,
                        round(r.age_s, 3) if r.age_s is not None else "", r.dst)
                       for r in fdb_rows(topo, host, now)]
        if host not in topo.bridges and not table.rows:
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
