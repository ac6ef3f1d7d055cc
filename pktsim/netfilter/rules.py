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

from collections import ChainMap
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Self, SupportsIndex

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
        # one pass (rules are built by the hundred thousand for a big cluster): the comment,
        # the match-everything addresses dropped, then a stable sort by canonical order
        comment: Comment | None = None
        ordered: list[Match] = []
        for m in self.matches:
            if comment is None and isinstance(m, Comment):
                comment = m
            if not _matches_all(m):
                ordered.append(m)
        if self.comment and comment is None:
            ordered.insert(0, Comment(self.comment))
        elif comment is not None and not self.comment:
            object.__setattr__(self, "comment", comment.text)
        elif comment is not None and comment.text != self.comment:
            raise ValueError(f"two different comments: {self.comment!r}, {comment.text!r}")
        ordered.sort(key=_ORDER)  # stable: modules keep their written order
        _check_matches(ordered)
        object.__setattr__(self, "matches", tuple(ordered))

    @classmethod
    def normalised(cls, matches: tuple[Match, ...], target: Target | None,
                   comment: str) -> Rule:
        """The rule ``Rule(matches, target)`` would be, when ``matches`` are already as
        ``__post_init__`` leaves them (in canonical order, valid, no match-all address) and
        ``comment`` is the text of its first ``Comment``: felix's per-endpoint rules are
        another rule of the build with a hash comment added, by the million at 150,000
        pods, and normalising each again would cost more than the rest of its making."""
        rule = object.__new__(cls)
        d = rule.__dict__
        d["matches"], d["target"], d["comment"] = matches, target, comment
        return rule

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


def _order(m: Match) -> int:
    return m.order


_ORDER = _order


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
    protos = None
    for m in ms:
        if isinstance(m, Ports):
            if protos is None:
                protos = {p.proto for p in ms if isinstance(p, Protocol) and not p.negate}
            if m.proto not in protos:
                raise ValueError(f"{m.save()} needs -p {m.save().split()[1]}")


class Generation:
    """A table's change counter: bumped by any change to its chains (their rules, a policy,
    a new chain).  A cache of walk results (``memo.py``) remembers the generation it was
    filled at; each table has its own, so a change to one node's table leaves every other
    node's cache alone."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def bump(self) -> None:
        self.value += 1


class RuleList(list[Rule]):
    """A chain's rules: a list that counts its changes (``version``), so that an index built
    over it (the matcher's dispatch on destination, ``engine.py``) knows when it is stale,
    and bumps its chain's table's ``generation`` (set by the chain that holds it)."""

    version = 0
    generation: Generation | None = None

    def _changed(self) -> None:
        self.version += 1
        if self.generation is not None:
            self.generation.bump()

    def append(self, rule: Rule) -> None:
        self._changed()
        super().append(rule)

    def extend(self, rules: Iterable[Rule]) -> None:
        self._changed()
        super().extend(rules)

    def insert(self, index: SupportsIndex, rule: Rule) -> None:
        self._changed()
        super().insert(index, rule)

    def pop(self, index: SupportsIndex = -1) -> Rule:
        self._changed()
        return super().pop(index)

    def remove(self, rule: Rule) -> None:
        self._changed()
        super().remove(rule)

    def clear(self) -> None:
        self._changed()
        super().clear()

    def sort(self, *args: Any, **kwargs: Any) -> None:
        self._changed()
        super().sort(*args, **kwargs)

    def reverse(self) -> None:
        self._changed()
        super().reverse()

    def __setitem__(self, index: Any, value: Any) -> None:
        self._changed()
        super().__setitem__(index, value)

    def __delitem__(self, index: Any) -> None:
        self._changed()
        super().__delitem__(index)

    def __iadd__(self, rules: Iterable[Rule]) -> Self:  # type: ignore[override, misc]
        self._changed()
        return super().__iadd__(rules)

    def __imul__(self, n: SupportsIndex) -> Self:
        self._changed()
        return super().__imul__(n)


@dataclass
class Chain:
    """A chain of rules; ``policy`` is set for built-in chains only (ACCEPT or DROP)."""

    name: str
    table: str
    policy: str | None = None
    rules: list[Rule] = field(default_factory=RuleList)
    generation: Generation = field(default_factory=Generation, repr=False, compare=False)
    """The counter of the table that holds the chain (its own one for a loose chain)."""
    index_cache: Any = field(default=None, init=False, repr=False, compare=False)
    """What the matcher derived from ``rules`` (``engine.py``), tagged with their version."""

    def __init__(self, name: str, table: str, policy: str | None = None,
                 rules: Iterable[Rule] = (), generation: Generation | None = None) -> None:
        # written out, in one go: a big cluster makes tens of thousands of chains
        counter = generation if generation is not None else Generation()
        listed = rules if isinstance(rules, RuleList) else RuleList(rules)
        listed.generation = counter
        d = self.__dict__
        d["name"], d["table"], d["policy"] = name, table, policy
        d["rules"], d["generation"], d["index_cache"] = listed, counter, None

    def __setattr__(self, name: str, value: Any) -> None:
        d = self.__dict__
        if name == "rules" and not isinstance(value, RuleList):
            value = RuleList(value)
        d[name] = value
        generation = d["generation"]
        if name == "generation":
            d["rules"].generation = value
        elif name != "index_cache":
            if name == "rules":
                value.generation = generation
            generation.bump()  # a new policy or rule list changes what walks decide

    def copy(self, generation: Generation | None = None) -> Chain:
        """The same chain with its own list of (immutable) rules, counted in ``generation``
        (the table the copy is for; a new counter if None)."""
        return Chain(self.name, self.table, self.policy, RuleList(self.rules),
                     generation or Generation())

    @property
    def builtin(self) -> bool:
        return self.policy is not None

    def append(self, rule: Rule) -> Rule:
        """``iptables -A``."""
        self.check(rule)
        self.rules.append(rule)
        return rule

    def insert(self, position: int, rule: Rule) -> Rule:
        """``iptables -I CHAIN position`` (1-based)."""
        self.check(rule)
        self.rules.insert(position - 1, rule)
        return rule

    def _check_ifaces(self, rule: Rule) -> None:
        """No input interface after routing a local packet, no output one before routing."""
        for m in rule.matches:
            if (isinstance(m, InIface) and self.name in ("OUTPUT", "POSTROUTING")) or \
                    (isinstance(m, OutIface) and self.name in ("PREROUTING", "INPUT")):
                raise ValueError(f"can't use {m.save().split()[-2]} with {self.name}")

    def check(self, rule: Rule) -> None:
        """What ``-A``/``-I`` refuse (raises ValueError): a target not allowed in the table
        or, in a built-in chain, from its hook; in a user chain only the target and the
        protocol matter, so a rule's comment never changes the answer."""
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
    """One iptables table with its built-in chains and any user chains.

    A table may be an *overlay* of a frozen ``base`` table (``base.overlay()``): it reads the
    base's chains until one is asked for with ``table[name]`` (or ``ensure_chain``), which
    copies that chain into the overlay first, so changes never reach the base or the other
    overlays.  Every node of a big cluster has the same kube-proxy rules: the nodes share one
    frozen table and own only the few chains they change (flannel's POSTROUTING jump).
    """

    def __init__(self, name: str, base: Table | None = None) -> None:
        if name not in BUILTIN_CHAINS:
            raise ValueError(f"unknown table {name!r} (one of {', '.join(BUILTIN_CHAINS)})")
        if base is not None and (base.reach is None or base.base is not None):
            raise ValueError("an overlay needs a frozen table without a base of its own")
        self.name = name
        self.base: Table | None = base
        self.reach: dict[str, frozenset[str]] | None = None  # set when frozen
        self._generation = Generation()
        self.own: dict[str, Chain] = {  # an overlay owns copies of the (small) built-ins
            c: base.own[c].copy(self._generation) if base is not None
            else Chain(c, name, "ACCEPT", generation=self._generation)
            for c in BUILTIN_CHAINS[name]}

    @property
    def generation(self) -> int:
        """A number that changes whenever a chain of this table changes (its rules, its
        policy, a new chain; for an overlay, also its base's): what ``memo.py`` checks."""
        base = self.base
        own = self._generation.value
        return own if base is None else own + base._generation.value

    @property
    def chains(self) -> Mapping[str, Chain]:
        """Every chain by name (read them; change them through ``table[name]``)."""
        return ChainMap(self.own, self.base.own) if self.base is not None else self.own

    def chain(self, name: str) -> Chain | None:
        """The chain to read (None if there is none): no copy is made."""
        found = self.own.get(name)
        if found is None and self.base is not None:
            return self.base.own.get(name)
        return found

    def __getitem__(self, chain: str) -> Chain:
        found = self.own.get(chain)
        if found is not None:
            return found
        if self.reach is not None:
            raise ValueError(f"table {self.name} is frozen (shared by overlays)")
        shared = self.base.own.get(chain) if self.base is not None else None
        if shared is None:
            raise KeyError(f"no chain {chain!r} in table {self.name}") from None
        mine = self.own[chain] = shared.copy(self._generation)  # copy on write
        return mine

    def __contains__(self, chain: object) -> bool:
        return chain in self.own or (self.base is not None and chain in self.base.own)

    def new_chain(self, name: str) -> Chain:
        """``iptables -N``."""
        if name in self:
            raise ValueError(f"chain {name} already exists in table {self.name}")
        if not name or len(name) > MAX_CHAIN_NAME or name.startswith(("-", "!")) \
                or name in ("ACCEPT", "DROP", "RETURN", "QUEUE"):
            raise ValueError(f"invalid chain name {name!r}")
        if self.reach is not None:
            raise ValueError(f"table {self.name} is frozen (shared by overlays)")
        chain = Chain(name, self.name, generation=self._generation)
        self.own[name] = chain
        self._generation.bump()
        return chain

    def ensure_chain(self, name: str) -> Chain:
        return self[name] if name in self else self.new_chain(name)

    def builtins(self) -> list[Chain]:
        return [self._read(c) for c in BUILTIN_CHAINS[self.name]]

    def user_chains(self) -> list[Chain]:
        """User chains sorted by name, as iptables-save lists them."""
        return sorted((c for c in self.chains.values() if not c.builtin), key=lambda c: c.name)

    def _read(self, name: str) -> Chain:
        found = self.chain(name)
        if found is None:
            raise KeyError(f"no chain {name!r} in table {self.name}")
        return found

    def is_empty(self) -> bool:
        return all(not c.rules and c.policy in (None, "ACCEPT") for c in self.chains.values()) \
            and not self.user_chains()

    def rules(self) -> Iterator[tuple[Chain, int, Rule]]:
        """Every rule with its chain and 1-based position, in iptables-save order."""
        for chain in self._ordered():
            for i, rule in enumerate(chain.rules, 1):
                yield chain, i, rule

    # -- sharing --------------------------------------------------------------------------
    def freeze(self) -> Table:
        """Validate, then make this table a shareable base: no more changes to it."""
        self.validate()
        self.reach = {c: frozenset(h) for c, h in self.hooks_reaching().items()}
        return self

    def overlay(self) -> Table:
        """A table that starts as this frozen one and copies the chains it changes."""
        return Table(self.name, base=self)

    # -- iptables-restore's checks --------------------------------------------------------
    def validate(self) -> None:
        """What iptables-restore checks before it commits; raises ValueError.

        An overlay checks only what can differ from its (valid) base: its own chains' jumps,
        and the chains its own rules reach from hooks the base never reached them from."""
        shadowing = self.base is not None and any(
            not c.builtin and name in self.base.own for name, c in self.own.items())
        incremental = self.base is not None and not shadowing
        chains = self._ordered() if not incremental else [
            *(self.own[c] for c in BUILTIN_CHAINS[self.name]),
            *sorted((c for c in self.own.values() if not c.builtin), key=lambda c: c.name)]
        jumps = {chain.name: self._check_jumps(chain) for chain in chains}
        reach = self._reach(incremental, jumps)
        for chain in self._ordered() if not incremental else [self._read(c) for c in reach]:
            hooks = reach.get(chain.name, set())
            for i, rule in enumerate(chain.rules if hooks else (), 1):
                t = rule.target
                if t is None or isinstance(t, Jump):
                    continue
                bad = hooks - t.hooks
                if bad:
                    raise ValueError(f"{self.name} {chain.name} rule {i}: {t.save()} is "
                                     f"reachable from {', '.join(sorted(bad))}")

    def _check_jumps(self, chain: Chain) -> list[str]:
        """Every jump of ``chain`` names a user chain of this table (the names are checked
        once each: a Calico node's chains jump to a few chains many times over); the
        chains it jumps to, as ``_jumps`` gives them."""
        named = self._jumps(chain.name, exist=False)
        if all((found := self.chain(name)) is not None and not found.builtin
               for name in named):
            return named
        for i, rule in enumerate(chain.rules, 1):
            t = rule.target
            if isinstance(t, Jump):
                called = self.chain(t.chain)
                if called is None or called.builtin:
                    raise ValueError(f"{self.name} {chain.name} rule {i}: "
                                     f"no user chain {t.chain}")
        raise AssertionError("unreachable: a jump named no user chain")

    def _ordered(self) -> list[Chain]:
        return [*self.builtins(), *self.user_chains()]

    def hooks_reaching(self) -> dict[str, set[str]]:
        """For each chain, the built-in chains (hooks) from which jumps reach it."""
        reach = self._reach(skip_known=False)
        return {name: reach.get(name, set()) for name in self.chains}

    def _reach(self, skip_known: bool,
               jumps: dict[str, list[str]] | None = None) -> dict[str, set[str]]:
        """Hooks reaching each chain; with ``skip_known``, the walk stops at a base chain
        the base already saw reached from that hook (below it, all is base and valid).
        ``jumps``: what ``_jumps`` gives for chains already looked at."""
        reach: dict[str, set[str]] = {}
        known = self.base.reach if skip_known and self.base is not None else None
        jumps = {} if jumps is None else jumps
        for hook in BUILTIN_CHAINS[self.name]:
            self._mark(hook, hook, reach, [], known, jumps)
        return reach

    def _mark(self, chain: str, hook: str, reach: dict[str, set[str]], stack: list[str],
              known: dict[str, frozenset[str]] | None, jumps: dict[str, list[str]]) -> None:
        if chain in stack:
            raise ValueError(f"{self.name}: loop through chains {' -> '.join([*stack, chain])}")
        if known is not None and chain not in self.own and hook in known.get(chain, ()):
            return
        hooks = reach.setdefault(chain, set())
        if hook in hooks and chain != hook:
            return
        hooks.add(hook)
        called = jumps.get(chain)
        if called is None:
            called = jumps[chain] = self._jumps(chain)
        if called:
            stack.append(chain)
            for target in called:
                self._mark(target, hook, reach, stack, known, jumps)
            stack.pop()

    def _jumps(self, chain: str, exist: bool = True) -> list[str]:
        """The chains ``chain`` jumps to (that exist, unless not ``exist``), each once, in
        rule order: ``_mark`` ends a second walk to one at once (its hook is marked; a loop
        raised on the first), and a Calico node's chains are walked from several hooks."""
        found = self.chain(chain)
        targets = dict.fromkeys(rule.target.chain for rule in (
            found.rules if found is not None else ()) if isinstance(rule.target, Jump))
        return [t for t in targets if t in self] if exist else list(targets)
