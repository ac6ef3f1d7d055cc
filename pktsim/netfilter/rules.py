"""Rules, chains and tables: kube-proxy's and flannel's iptables rules held as data.

Theory of operation
-------------------
``Table(name)`` is one of the four tables pktsim runs — ``raw``, ``mangle``, ``nat``,
``filter`` — created with its built-in chains (policy ACCEPT) in the kernel's order.  User
chains are added with ``new_chain`` (``iptables -N``).  A ``Chain`` is an ordered list of
``Rule``s; a rule is a tuple of matches (``matches.py``) and a target (``targets.py``).

A rule is normalised when built, the way the kernel stores it: the IP-header matches
(``-s -d -i -o -p``) first, then the ``-m`` modules in the order written; a ``comment``
given as a keyword becomes the first module (where kube-proxy writes it).  ``-m tcp``
without ``-p tcp`` is refused, as iptables refuses it.

``validate`` does what ``iptables-restore`` does before committing: every jump names an
existing user chain, no chain calls itself through jumps (``mark_source_chains``), each
target is allowed in this table and is reachable only from hooks it supports (DNAT from
PREROUTING/OUTPUT, MASQUERADE from POSTROUTING, ...).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property

from pktsim.netfilter.matches import (
    Comment,
    Destination,
    Env,
    InIface,
    Match,
    OutIface,
    PacketView,
    Ports,
    Protocol,
    Source,
)
from pktsim.netfilter.targets import Jump, Reject, Target, Verdict

BUILTIN_CHAINS: dict[str, tuple[str, ...]] = {
    "raw": ("PREROUTING", "OUTPUT"),
    "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
}
TABLE_ORDER = ("mangle", "raw", "filter", "nat")  # the order iptables-nft-save prints them
MAX_CHAIN_NAME = 28  # XT_EXTENSION_MAXNAMELEN - 1 ... as iptables enforces for chain names


@dataclass(frozen=True)
class Rule:
    """``-A CHAIN <matches> -j <target>``; ``comment`` is a shorthand for ``-m comment``."""

    matches: tuple[Match, ...] = ()
    target: Target | None = None
    comment: str = ""

    def __post_init__(self) -> None:
        found = [m for m in self.matches if isinstance(m, Comment)]
        ordered = list(self.matches)
        if self.comment and not found:
            ordered.insert(0, Comment(self.comment))
        elif found and not self.comment:
            object.__setattr__(self, "comment", found[0].text)
        elif found and found[0].text != self.comment:
            raise ValueError(f"two different comments: {self.comment!r}, {found[0].text!r}")
        ordered = [m for m in ordered if not _matches_all(m)]
        ordered.sort(key=lambda m: m.order)  # stable: modules keep their written order
        _check_matches(ordered)
        object.__setattr__(self, "matches", tuple(ordered))

    def applies(self, p: PacketView, env: Env) -> bool:
        """All matches hold (evaluated in order; side effects like ``recent --set`` happen
        only if the earlier matches held, as in the kernel)."""
        return all(m.matches(p, env) for m in self.matches)

    def save(self) -> str:
        return self.text

    @cached_property
    def text(self) -> str:
        """The rule as iptables-save prints it after ``-A CHAIN``."""
        parts = [m.save() for m in self.matches]
        if self.target is not None:
            parts.append(self.target.save())
        return " ".join(parts)


def _matches_all(m: Match) -> bool:
    """``-s 0.0.0.0/0`` is no condition (iptables drops it); its negation is refused."""
    if isinstance(m, Source | Destination) and m.net.prefixlen == 0:
        if m.negate:
            raise ValueError(f"{m.save()} matches nothing")
        return True
    return False


def _check_matches(ms: list[Match]) -> None:
    header = [m.order for m in ms if m.order < 100]
    if len(header) != len(set(header)):
        raise ValueError("multiple -s, -d, -i, -o or -p flags in one rule")
    protos = {m.proto for m in ms if isinstance(m, Protocol) and not m.negate}
    for m in ms:
        if isinstance(m, Ports) and m.proto not in protos:
            raise ValueError(f"{m.save()} needs -p {m.save().split()[1]}")


@dataclass
class Chain:
    """A chain of rules; ``policy`` is set for built-in chains only (ACCEPT or DROP)."""

    name: str
    table: str
    policy: str | None = None
    rules: list[Rule] = field(default_factory=list)

    @property
    def builtin(self) -> bool:
        return self.policy is not None

    def append(self, rule: Rule) -> Rule:
        """``iptables -A``."""
        self._check(rule)
        self.rules.append(rule)
        return rule

    def insert(self, position: int, rule: Rule) -> Rule:
        """``iptables -I CHAIN position`` (1-based)."""
        self._check(rule)
        self.rules.insert(position - 1, rule)
        return rule

    def _check_ifaces(self, rule: Rule) -> None:
        """No input interface after routing a local packet, no output one before routing."""
        for m in rule.matches:
            if (isinstance(m, InIface) and self.name in ("OUTPUT", "POSTROUTING")) or \
                    (isinstance(m, OutIface) and self.name in ("PREROUTING", "INPUT")):
                raise ValueError(f"can't use {m.save().split()[-2]} with {self.name}")

    def _check(self, rule: Rule) -> None:
        if self.builtin:
            self._check_ifaces(rule)
        t = rule.target
        if t is None:
            return
        if self.table not in t.tables:
            raise ValueError(f"{t.save()} is not allowed in the {self.table} table")
        if self.table == "nat" and t == Verdict("DROP"):
            raise ValueError('the "nat" table is not intended for filtering: no DROP')
        if self.builtin and self.name not in t.hooks:
            raise ValueError(f"{t.save()} cannot be used in {self.name}")
        if isinstance(t, Reject) and t.with_ == "tcp-reset" and not any(
                isinstance(m, Protocol) and m.proto == 6 and not m.negate for m in rule.matches):
            raise ValueError("REJECT --reject-with tcp-reset needs -p tcp")


class Table:
    """One iptables table with its built-in chains and any user chains."""

    def __init__(self, name: str) -> None:
        if name not in BUILTIN_CHAINS:
            raise ValueError(f"unknown table {name!r} (one of {', '.join(BUILTIN_CHAINS)})")
        self.name = name
        self.chains: dict[str, Chain] = {
            c: Chain(c, name, "ACCEPT") for c in BUILTIN_CHAINS[name]}

    def __getitem__(self, chain: str) -> Chain:
        try:
            return self.chains[chain]
        except KeyError:
            raise KeyError(f"no chain {chain!r} in table {self.name}") from None

    def __contains__(self, chain: object) -> bool:
        return chain in self.chains

    def new_chain(self, name: str) -> Chain:
        """``iptables -N``."""
        if name in self.chains:
            raise ValueError(f"chain {name} already exists in table {self.name}")
        if not name or len(name) > MAX_CHAIN_NAME or name.startswith(("-", "!")) \
                or name in ("ACCEPT", "DROP", "RETURN", "QUEUE"):
            raise ValueError(f"invalid chain name {name!r}")
        chain = Chain(name, self.name)
        self.chains[name] = chain
        return chain

    def ensure_chain(self, name: str) -> Chain:
        return self.chains[name] if name in self.chains else self.new_chain(name)

    def builtins(self) -> list[Chain]:
        return [self.chains[c] for c in BUILTIN_CHAINS[self.name]]

    def user_chains(self) -> list[Chain]:
        """User chains sorted by name, as iptables-save lists them."""
        return sorted((c for c in self.chains.values() if not c.builtin), key=lambda c: c.name)

    def is_empty(self) -> bool:
        return all(not c.rules and c.policy in (None, "ACCEPT") for c in self.chains.values()) \
            and not self.user_chains()

    def rules(self) -> Iterator[tuple[Chain, int, Rule]]:
        """Every rule with its chain and 1-based position, in iptables-save order."""
        for chain in [*self.builtins(), *self.user_chains()]:
            for i, rule in enumerate(chain.rules, 1):
                yield chain, i, rule

    def validate(self) -> None:
        """What iptables-restore checks before it commits; raises ValueError."""
        for chain, i, rule in self.rules():
            t = rule.target
            if isinstance(t, Jump) and (t.chain not in self.chains or self.chains[t.chain].builtin):
                raise ValueError(f"{self.name} {chain.name} rule {i}: no user chain {t.chain}")
        reach = self.hooks_reaching()
        for chain, i, rule in self.rules():
            t = rule.target
            if t is None or isinstance(t, Jump):
                continue
            bad = reach.get(chain.name, set()) - t.hooks
            if bad:
                raise ValueError(f"{self.name} {chain.name} rule {i}: {t.save()} is reachable "
                                 f"from {', '.join(sorted(bad))}")

    def hooks_reaching(self) -> dict[str, set[str]]:
        """For each chain, the built-in chains (hooks) from which jumps reach it."""
        reach: dict[str, set[str]] = {name: set() for name in self.chains}
        for hook in BUILTIN_CHAINS[self.name]:
            self._mark(hook, hook, reach, [])
        return reach

    def _mark(self, chain: str, hook: str, reach: dict[str, set[str]], stack: list[str]) -> None:
        if chain in stack:
            raise ValueError(f"{self.name}: loop through chains {' -> '.join([*stack, chain])}")
        if hook in reach[chain] and chain != hook:
            return
        reach[chain].add(hook)
        for rule in self.chains[chain].rules:
            if isinstance(rule.target, Jump) and rule.target.chain in self.chains:
                self._mark(rule.target.chain, hook, reach, [*stack, chain])
