"""A memo of raw, mangle and filter walks: the same packet facts get the same decision.

Theory of operation
-------------------
A table walk is a function of the facts its matches read — addresses, protocol, ports, ICMP
type and code, the interfaces, ``skb->mark`` and the conntrack state (``PacketView``) — as
long as no rule of the table reads anything else: ``-m statistic`` draws a random number,
``-m recent`` reads and writes its lists, ``-m addrtype`` asks the routing table.  For a
table whose every match and target is of a *pure* kind (a whitelist: anything new is
impure until shown otherwise), the outcome of a walk — and the trace detail made from it —
is remembered under those facts.  Every established packet of a connection then shares one
entry, and the walk becomes a dictionary lookup: the kernel repeats the rule walk for every
packet, a simulator that gets the same verdict, hits and trace need not.

Each table walked has its own memo (``TableMemo``), filled at the table's generation
(``Table.generation``: bumped by new rules, a new policy, a new chain of that table or, for
an overlay, of its base).  Before every walk the generation is compared, so a change takes
effect on the very next packet, and it empties only that table's memo: a change to one
node's rules leaves every other node's memo alone.  A table's memo is also emptied when it
grows past ``LIMIT`` entries.  The nat table is not memoised: it is walked once per
connection, and kube-proxy's uses ``-m statistic``.
"""

from __future__ import annotations

from typing import Any

from pktsim.core.events import RuleHit
from pktsim.netfilter.engine import Outcome
from pktsim.netfilter.ipset import SetMatch
from pktsim.netfilter.matches import (
    Comment,
    CtState,
    Destination,
    Icmp6Type,
    IcmpType,
    InIface,
    Mark,
    Multiport,
    OutIface,
    Ports,
    Protocol,
    Source,
)
from pktsim.netfilter.rules import Table
from pktsim.netfilter.targets import Jump, Reject, SetMark, Verdict
from pktsim.netfilter.view import PacketView

LIMIT = 4096  # entries kept; a run over many connections clears and refills
# a --match-set reads the namespace's IP sets, which are fixed once the node is built
PURE_MATCHES = (Comment, CtState, Destination, Icmp6Type, IcmpType, InIface, Mark, Multiport,
                OutIface, Ports, Protocol, SetMatch, Source)
PURE_TARGETS = (Jump, Reject, SetMark, Verdict)

Walked = tuple[Outcome, RuleHit]  # the outcome and the trace detail made from it


class TableMemo:
    """The remembered walks of one table, valid while its generation is ``generation``."""

    __slots__ = ("entries", "generation", "pure", "table")

    def __init__(self, table: Table) -> None:
        self.table = table  # kept: its id stays valid while it is a key of the WalkMemo
        self.generation = table.generation
        self.pure = _is_pure(table)
        self.entries: dict[tuple[Any, ...], Walked] = {}

    def key(self, hook: str, v: PacketView) -> tuple[Any, ...]:
        """The facts a walk of the table from ``hook`` depends on."""
        return (hook, v.src, v.dst, v.proto, v.sport, v.dport, v.icmp, v.in_dev, v.out_dev,
                v.mark, v.ctstate, v.ct_nat)

    def get(self, key: tuple[Any, ...]) -> Walked | None:
        return self.entries.get(key)

    def put(self, key: tuple[Any, ...], walked: Walked) -> None:
        if len(self.entries) >= LIMIT:
            self.entries.clear()
        self.entries[key] = walked


class WalkMemo:
    """The memo of one namespace's netfilter (its tables are its own, or shared frozen)."""

    def __init__(self) -> None:
        self._tables: dict[int, TableMemo] = {}  # id(table) -> its memo

    def of(self, table: Table) -> TableMemo | None:
        """The memo for walks of ``table``, emptied first if the table changed since it was
        filled; None when the table's walks are not memoisable."""
        memo = self._tables.get(id(table))
        if memo is None or memo.table is not table or memo.generation != table.generation:
            if table.name == "nat":
                return None
            memo = self._tables[id(table)] = TableMemo(table)
        return memo if memo.pure else None

    def __len__(self) -> int:
        """Walks remembered, over all tables."""
        return sum(len(m.entries) for m in self._tables.values())

    def clear(self) -> None:
        """Forget every walk (as if no packet had been walked)."""
        for memo in self._tables.values():
            memo.entries.clear()


def _is_pure(table: Table) -> bool:
    """Every match and target of the table is of a kind that reads only the packet."""
    return all(isinstance(m, PURE_MATCHES) for _, _, rule in table.rules()
               for m in rule.matches) and \
        all(rule.target is None or isinstance(rule.target, PURE_TARGETS)
            for _, _, rule in table.rules())
