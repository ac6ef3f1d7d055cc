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

The memo is dropped whenever any chain anywhere changes (``rules.generation()``: new rules,
a new policy, a new chain) and when it grows past ``LIMIT`` entries.  The nat table is not
memoised: it is walked once per connection, and kube-proxy's uses ``-m statistic``.
"""

from __future__ import annotations

from typing import Any

from pktsim.core.events import RuleHit
from pktsim.netfilter.engine import Outcome
from pktsim.netfilter.matches import (
    Comment,
    CtState,
    Destination,
    IcmpType,
    InIface,
    Mark,
    OutIface,
    Ports,
    Protocol,
    Source,
)
from pktsim.netfilter.rules import Table, generation
from pktsim.netfilter.targets import Jump, Reject, SetMark, Verdict
from pktsim.netfilter.view import PacketView

LIMIT = 4096  # entries kept; a run over many connections clears and refills
PURE_MATCHES = (Comment, CtState, Destination, IcmpType, InIface, Mark, OutIface, Ports,
                Protocol, Source)
PURE_TARGETS = (Jump, Reject, SetMark, Verdict)

Walked = tuple[Outcome, RuleHit]  # the outcome and the trace detail made from it


class WalkMemo:
    """The memo of one namespace's netfilter (its tables are its own, or shared frozen)."""

    def __init__(self) -> None:
        self._generation = generation()
        self._pure: dict[int, tuple[Table, bool]] = {}  # id(table) -> (table, pure?)
        self._entries: dict[tuple[Any, ...], Walked] = {}

    def key(self, table: Table, hook: str, v: PacketView) -> tuple[Any, ...] | None:
        """The facts a walk of ``table`` from ``hook`` depends on, or None (not memoisable)."""
        if self._generation != generation():
            self._generation = generation()
            self._pure.clear()
            self._entries.clear()
        if table.name == "nat" or not self._is_pure(table):
            return None
        return (id(table), hook, v.src, v.dst, v.proto, v.sport, v.dport, v.icmp, v.in_dev,
                v.out_dev, v.mark, v.ctstate)

    def get(self, key: tuple[Any, ...]) -> Walked | None:
        return self._entries.get(key)

    def put(self, key: tuple[Any, ...], walked: Walked) -> None:
        if len(self._entries) >= LIMIT:
            self._entries.clear()
        self._entries[key] = walked

    def _is_pure(self, table: Table) -> bool:
        known = self._pure.get(id(table))
        if known is not None and known[0] is table:
            return known[1]
        pure = all(isinstance(m, PURE_MATCHES) for _, _, rule in table.rules()
                   for m in rule.matches) and \
            all(rule.target is None or isinstance(rule.target, PURE_TARGETS)
                for _, _, rule in table.rules())
        self._pure[id(table)] = (table, pure)  # the table is kept: its id stays valid
        return pure
