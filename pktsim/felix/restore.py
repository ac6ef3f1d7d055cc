"""What iptables-restore makes of felix's lines, made once per build for all its nodes.

felix writes each rule as ``-A CHAIN -m comment --comment "cali:HASH" <rule>``
(``FChain.lines``; calico ``felix/iptables/renderer.go`` ``renderInner``), the hash chaining
in the chain's name and the chain's earlier rules (``generictables.RuleHashes``).  Across
the nodes of one build:

* most of felix's chains are the same on every node, name and rules (the static chains,
  a namespace's profile chains, a policy's chains), so their hashes are too: their rules
  are made once per build (``BuildCache.chains``) and every node's table holds the same
  rule objects.  That is safe because a rule is immutable: netfilter keeps no per-rule
  counters (iptables-save prints ``[0:0]``), and what it derives from rules (the walk memo,
  the matcher's dispatch index) is per table or per chain, never on the rule;
* a workload's ``cali-tw-``/``cali-fw-`` chains are the node's own (named after its
  interface), but their rules are those of every workload with the same policies and
  profiles (``BuildCache.template``) with a hash comment of their own: a template's rules
  are parsed once per build and their hash input made once (``Parsed``), so a chain adds
  only its hashes and one rule object per rule — the bulk of a Calico node's rules, 2
  chains of about 10 per pod.  The dispatch chains, which name the node's interfaces,
  are parsed for the node alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from pktsim.felix.names import rule_hashes_of_tails
from pktsim.felix.rules import FChain, FRule
from pktsim.netfilter.ipset import IpSet
from pktsim.netfilter.matches import Comment, Match
from pktsim.netfilter.rules import Chain, Rule
from pktsim.netfilter.save import parse_rule

# chains that are one node's (named after its interfaces): not kept for other nodes
OWN_CHAINS = ("cali-tw-", "cali-fw-", "cali-from-wl-dispatch", "cali-to-wl-dispatch")


@dataclass(frozen=True, slots=True)
class Parsed:
    """One felix rule as iptables-restore reads it without its hash comment (``rest``),
    its matches split where the comment goes (after the IP-header ones, before the
    modules) and its part of the hash input (``FRule.hash_tail``)."""

    rest: Rule
    tail: bytes
    head: tuple[Match, ...]
    modules: tuple[Match, ...]

    @classmethod
    def of(cls, frule: FRule) -> Parsed:
        rest = parse_rule(frule.tokens())
        split = sum(1 for m in rest.matches if m.order < Comment.order)
        return cls(rest, frule.hash_tail().encode(), rest.matches[:split],
                   rest.matches[split:])


@dataclass(slots=True)
class BuildCache:
    """What every node of one build shares: each felix rule parsed, each chain alike on
    every node as rules, which of them passed ``Chain.check`` in which table, and each IP
    set by name (a set's members are the cluster's, whichever node has it)."""

    rules: dict[FRule, Parsed] = field(default_factory=dict)
    chains: dict[tuple[FChain, str], tuple[Rule, ...]] = field(default_factory=dict)
    # id(rules) -> (rules, parsed): a tuple of rules many chains hold (``templates``'),
    # kept alive here so that its id stays its own
    by_id: dict[int, tuple[tuple[FRule, ...], list[Parsed]]] = field(default_factory=dict)
    # (table, id of rules kept in ``chains`` or of a template's tuple): checked there
    checked: set[tuple[str, int]] = field(default_factory=set)
    sets: dict[str, IpSet] = field(default_factory=dict)
    # a workload chain's rules and group chains by (direction, policies, profiles)
    templates: dict[tuple[str, tuple[str, ...], tuple[str, ...]],
                    tuple[tuple[FRule, ...], list[FChain]]] = field(default_factory=dict)

    def parsed(self, rules: tuple[FRule, ...], keep: bool = True) -> list[Parsed]:
        """Each of ``rules`` parsed; looked up once for a tuple of ``templates``.  Not
        ``keep``: what is parsed is not kept (a dispatch chain's rules name the node's
        interfaces: 300,000 of them at 150,000 pods, each parsed once anyway)."""
        known = self._template(rules)
        if known is not None:
            return known
        out = []
        for frule in rules:
            found = self.rules.get(frule)
            if found is None:
                found = Parsed.of(frule)
                if keep:
                    self.rules[frule] = found
            out.append(found)
        return out

    def chain_rules(self, chain: FChain, hash_name: str = "") -> tuple[Rule, ...]:
        """The chain's rules as iptables-restore reads ``chain.lines(hash_name)``."""
        return self._made(chain, hash_name)[0]

    def fill(self, chain: Chain, source: FChain) -> None:
        """Append ``source``'s rules to the new user chain ``chain``, with ``iptables
        -A``'s checks: once per table for rules every node has, and once for all the
        chains of a template (in a user chain the checks read a rule's target and
        protocol, never its hash comment)."""
        if chain.builtin:
            raise ValueError(f"{chain.name} is a built-in chain: insert or append to it")
        made, kept = self._made(source, "")
        if kept is None or (chain.table, kept) not in self.checked:
            for rule in made:
                chain.check(rule)
            if kept is not None:
                self.checked.add((chain.table, kept))
        chain.rules.extend(made)

    def _made(self, chain: FChain, hash_name: str) -> tuple[tuple[Rule, ...], int | None]:
        """``chain_rules``, and the id of what they were made from if it is kept here
        (the rules themselves, or their template's tuple), for ``checked``."""
        own = chain.name.startswith(OWN_CHAINS)
        key = (chain, hash_name)
        made = None if own else self.chains.get(key)
        if made is not None:
            return made, id(made)
        template = self._template(chain.rules)
        parsed = template if template is not None else self.parsed(chain.rules, not own)
        hashes = rule_hashes_of_tails(hash_name or chain.name, [p.tail for p in parsed])
        # each rule with ``-m comment --comment "cali:HASH"`` first of its modules, as
        # ``Rule((Comment(...), *rest.matches), rest.target)`` normalises it, in one loop
        normalised = Rule.normalised
        made = tuple([normalised((*p.head, Comment(c := "cali:" + h), *p.modules),
                                 p.rest.target, c)
                      for p, h in zip(parsed, hashes, strict=True)])
        if not own:
            self.chains[key] = made
            return made, id(made)
        return made, id(chain.rules) if template is not None else None

    def _template(self, rules: tuple[FRule, ...]) -> list[Parsed] | None:
        """The parsed rules of a template's tuple (None for any other tuple)."""
        known = self.by_id.get(id(rules))
        return known[1] if known is not None and known[0] is rules else None

    def template(self, key: tuple[str, tuple[str, ...], tuple[str, ...]],
                 make: Callable[[], tuple[tuple[FRule, ...], list[FChain]]]) -> \
            tuple[tuple[FRule, ...], list[FChain]]:
        """A workload chain's rules for ``key`` (made by ``make`` the first time), their
        parsing remembered by the tuple's identity."""
        found = self.templates.get(key)
        if found is None:
            found = self.templates[key] = make()
            self.by_id[id(found[0])] = (found[0], self.parsed(found[0]))
        return found
