"""The matcher: one small evaluator that walks a chain the way ``ipt_do_table`` does.

Theory of operation
-------------------
Start at a built-in chain, try its rules in order.  A rule whose matches all hold fires
its target:

* ``-j <user chain>`` pushes the return point (chain, next rule) and continues at the top
  of the called chain; reaching the end of a user chain, or ``-j RETURN`` in it, pops back;
  ``-g <user chain>`` continues there without pushing (so it returns to the caller);
* ``-j RETURN`` in a built-in chain, or running off its end, applies the chain's policy;
* ``-j MARK`` rewrites ``skb->mark`` and the walk goes on (it is the only non-terminal
  target here; later rules see the new mark);
* any other target ends the walk: ACCEPT, DROP, REJECT, DNAT, SNAT, MASQUERADE.

The result says what was decided (``verdict`` ACCEPT or DROP, and the ``target`` that
decided, None for a policy), the rules that fired on the way as ``Hit``s — chain, 1-based
rule number as ``iptables -L --line-numbers`` counts, and the rule's iptables-save text —
and ``path``, the chains called from the built-in one down to the deciding one, which is
what the trace prints (``KUBE-SERVICES -> KUBE-SVC-... -> KUBE-SEP-...``).

The dispatch index
------------------
kube-proxy's ``KUBE-SERVICES`` is a linear list of ``-d VIP/32 -p tcp -m tcp --dport P``
rules, one per service port: walked rule by rule, the cost of a NAT decision grows with the
number of Services.  The kernel pays it too; a simulator need not.  For a chain with at
least ``INDEX_MIN`` rules, each run of consecutive rules that match on nothing but one
destination address, one protocol and one destination port (plus comments, which always
match) gets a dictionary from ``(dst, proto, dport)`` to the positions of its rules with that
key, in order.  Inside such a run the walk jumps straight to the next rule whose key is the
packet's (or past the run), and tries that rule as usual.  The rules it skips could not have
matched and have no side effects, so the walk fires the same rules, in the same order, with
the same numbers: an exactly equivalent shortcut.  Every other rule is tried in turn.  The
index is rebuilt when the chain's rules change (``RuleList.version``).
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field

from pktsim.netfilter.matches import Comment, Destination, Ports, Protocol
from pktsim.netfilter.rules import Chain, Rule, RuleList, Table
from pktsim.netfilter.targets import Goto, Jump, Reject, SetMark, Target, Verdict
from pktsim.netfilter.view import Env, PacketView

MAX_DEPTH = 64  # no legal table nests deeper; a deeper stack means a loop slipped through
INDEX_MIN = 16  # chains shorter than this are walked rule by rule

Key = tuple[int, int, int]  # (destination address, protocol, destination port)


@dataclass(frozen=True, slots=True)
class _Run:
    """Consecutive rules ``start`` .. ``end - 1`` that match only on a ``Key``."""

    end: int
    positions: dict[Key, list[int]]  # key -> 0-based positions of its rules, ascending


def rule_key(rule: Rule) -> Key | None:
    """The key of a rule matching exactly ``-d A/32 -p P -m P --dport N`` (and comments)."""
    dst = proto = port = None
    for m in rule.matches:
        if isinstance(m, Comment):
            continue
        if isinstance(m, Destination) and dst is None and not m.negate \
                and m.net.prefixlen == 32:
            dst = int(m.net.network_address)
        elif isinstance(m, Protocol) and proto is None and not m.negate:
            proto = m.proto
        elif isinstance(m, Ports) and port is None and m.sport is None and m.dport is not None \
                and not m.dport_negate and m.dport[0] == m.dport[1]:
            port = (m.proto, m.dport[0])
        else:
            return None
    if dst is None or proto is None or port is None or port[0] != proto:
        return None
    return dst, proto, port[1]


def chain_index(chain: Chain) -> list[_Run | None] | None:
    """Per position, the indexed run it lies in (None: not indexed); None for a short chain.

    Built once per version of the chain's rules and kept on the chain."""
    rules = chain.rules
    version = rules.version if isinstance(rules, RuleList) else -1
    cached = chain.index_cache
    if cached is not None and cached[0] is rules and cached[1] == version and version >= 0:
        return cached[2]
    index = _build_index(rules) if len(rules) >= INDEX_MIN else None
    chain.index_cache = (rules, version, index)
    return index


def _build_index(rules: list[Rule]) -> list[_Run | None] | None:
    keys = [rule_key(rule) for rule in rules]
    at: list[_Run | None] = [None] * len(rules)
    start = 0
    while start < len(rules):
        if keys[start] is None:
            start += 1
            continue
        end = start
        positions: dict[Key, list[int]] = {}
        while end < len(rules) and (key := keys[end]) is not None:
            positions.setdefault(key, []).append(end)
            end += 1
        if end - start >= INDEX_MIN // 2:
            run = _Run(end, positions)
            at[start:end] = [run] * (end - start)
        start = end
    return at if any(r is not None for r in at) else None


def _skip(run: _Run, i: int, key: Key | None) -> int:
    """The position of the first rule at or after ``i`` in ``run`` with ``key`` (or its end)."""
    found = run.positions.get(key) if key is not None else None
    if found is None:
        return run.end
    j = bisect_left(found, i)
    return found[j] if j < len(found) else run.end


@dataclass(frozen=True, slots=True)
class Hit:
    """A rule that fired: its chain, its 1-based number there, and its text."""

    chain: str
    index: int
    text: str

    def __str__(self) -> str:
        return f"{self.chain} #{self.index}: {self.text}"


@dataclass(slots=True)
class Outcome:
    """What a walk decided."""

    verdict: str  # ACCEPT | DROP
    target: Target | None  # the terminal target that decided; None: the chain policy
    hits: list[Hit] = field(default_factory=list)
    path: list[str] = field(default_factory=list)
    mark: int = 0

    @property
    def decider(self) -> Hit | None:
        """The rule whose target decided (None when the policy did)."""
        return self.hits[-1] if self.target is not None and self.hits else None

    def path_text(self) -> str:
        """The called chains, without the built-in one unless it decided by itself."""
        chains = self.path[1:] or self.path
        return " -> ".join(chains)


def evaluate(table: Table, chain: str, p: PacketView, env: Env, *,
             indexed: bool = True) -> Outcome:
    """Walk ``chain`` of ``table`` for packet ``p``; ``p.mark`` is updated by MARK rules.

    ``indexed=False`` walks every rule in turn (the reference the dispatch index is tested
    against; the outcome is the same)."""
    hits: list[Hit] = []
    stack: list[tuple[str, int]] = []
    key = packet_key(p)
    current, i = chain, 0
    rules, index = _chain(table, current, indexed)
    while True:
        if index is not None and i < len(rules) and (run := index[i]) is not None:
            i = _skip(run, i, key)
        if i >= len(rules):
            if not stack:
                return _fall_through(table, chain, hits, p)
            current, i = stack.pop()
            rules, index = _chain(table, current, indexed)
            continue
        rule = rules[i]
        i += 1
        if not rule.applies(p, env):
            continue
        t = rule.target
        hits.append(Hit(current, i, f"-A {current} {rule.text}"))
        if isinstance(t, Goto):
            current, i = t.chain, 0
            rules, index = _chain(table, current, indexed)
        elif isinstance(t, Jump):
            if len(stack) >= MAX_DEPTH:
                raise RuntimeError(f"{table.name}: chain nesting deeper than {MAX_DEPTH}")
            stack.append((current, i))
            current, i = t.chain, 0
            rules, index = _chain(table, current, indexed)
        elif isinstance(t, SetMark):
            p.mark = t.apply(p.mark)
        elif t == Verdict("RETURN"):
            if not stack:
                return _fall_through(table, chain, hits, p)
            current, i = stack.pop()
            rules, index = _chain(table, current, indexed)
        elif t is not None:
            verdict = "DROP" if t == Verdict("DROP") or isinstance(t, Reject) else "ACCEPT"
            return Outcome(verdict, t, hits, [c for c, _ in stack] + [current], p.mark)


def packet_key(p: PacketView) -> Key | None:
    """The packet's ``Key`` (None when it has no ports: such a packet matches no ``--dport``)."""
    if p.sport is None or p.dport is None:
        return None
    return int.from_bytes(p.dst, "big"), p.proto, p.dport


def _chain(table: Table, name: str,
           indexed: bool) -> tuple[list[Rule], list[_Run | None] | None]:
    found = table.chain(name)
    if found is None:
        raise KeyError(f"no chain {name!r} in table {table.name}")
    return found.rules, chain_index(found) if indexed else None


def _fall_through(table: Table, chain: str, hits: list[Hit], p: PacketView) -> Outcome:
    policy = table[chain].policy or "ACCEPT"
    return Outcome(policy, None, hits, [chain], p.mark)
