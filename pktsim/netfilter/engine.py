"""The matcher: one small evaluator that walks a chain the way ``ipt_do_table`` does.

Theory of operation
-------------------
Start at a built-in chain, try its rules in order.  A rule whose matches all hold fires
its target:

* ``-j <user chain>`` pushes the return point (chain, next rule) and continues at the top
  of the called chain; reaching the end of a user chain, or ``-j RETURN`` in it, pops back;
* ``-j RETURN`` in a built-in chain, or running off its end, applies the chain's policy;
* ``-j MARK`` rewrites ``skb->mark`` and the walk goes on (it is the only non-terminal
  target here; later rules see the new mark);
* any other target ends the walk: ACCEPT, DROP, REJECT, DNAT, SNAT, MASQUERADE.

The result says what was decided (``verdict`` ACCEPT or DROP, and the ``target`` that
decided, None for a policy), the rules that fired on the way as ``Hit``s — chain, 1-based
rule number as ``iptables -L --line-numbers`` counts, and the rule's iptables-save text —
and ``path``, the chains called from the built-in one down to the deciding one, which is
what the trace prints (``KUBE-SERVICES -> KUBE-SVC-... -> KUBE-SEP-...``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pktsim.netfilter.rules import Table
from pktsim.netfilter.targets import Jump, Reject, SetMark, Target, Verdict
from pktsim.netfilter.view import Env, PacketView

MAX_DEPTH = 64  # no legal table nests deeper; a deeper stack means a loop slipped through


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


def evaluate(table: Table, chain: str, p: PacketView, env: Env) -> Outcome:
    """Walk ``chain`` of ``table`` for packet ``p``; ``p.mark`` is updated by MARK rules."""
    hits: list[Hit] = []
    stack: list[tuple[str, int]] = []
    current, i = chain, 0
    while True:
        rules = table[current].rules
        if i >= len(rules):
            if not stack:
                return _fall_through(table, chain, hits, p)
            current, i = stack.pop()
            continue
        rule = rules[i]
        i += 1
        if not rule.applies(p, env):
            continue
        t = rule.target
        hits.append(Hit(current, i, f"-A {current} {rule.text}"))
        if isinstance(t, Jump):
            if len(stack) >= MAX_DEPTH:
                raise RuntimeError(f"{table.name}: chain nesting deeper than {MAX_DEPTH}")
            stack.append((current, i))
            current, i = t.chain, 0
        elif isinstance(t, SetMark):
            p.mark = t.apply(p.mark)
        elif t == Verdict("RETURN"):
            if not stack:
                return _fall_through(table, chain, hits, p)
            current, i = stack.pop()
        elif t is not None:
            verdict = "DROP" if t == Verdict("DROP") or isinstance(t, Reject) else "ACCEPT"
            return Outcome(verdict, t, hits, [c for c, _ in stack] + [current], p.mark)


def _fall_through(table: Table, chain: str, hits: list[Hit], p: PacketView) -> Outcome:
    policy = table[chain].policy or "ACCEPT"
    return Outcome(policy, None, hits, [chain], p.mark)
