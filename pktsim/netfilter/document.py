r"""An ``iptables-restore`` document as data: typed items, one per line, and ``load``.

Theory of operation
-------------------
A document is a sequence of items — ``TableStart`` (``*nat``), ``ChainDecl``
(``:CHAIN POLICY [0:0]``), ``NewChain`` (``-N``), ``RuleLine`` (``-A``/``-I`` with its
``Rule``), ``Commit``, ``Blank`` (empty and ``#`` lines, kept so items number as lines) and
``Invalid`` (a line that did not read, with its error).  ``save.read_line`` reads a line of
text into an item; kube-proxy's builder makes most ``RuleLine``\ s directly, without text
(``kubeproxy/rules.py``): a rule read and a rule made are the same type, so ``load`` never
asks which it was.  Items are plain slotted dataclasses: a big cluster makes hundreds of
thousands of them.

``load`` applies items to new tables in order, as ``iptables-restore`` does; an error names
the item by its 1-based number and quotes the line it was read from (``source``), or, for
a made rule, its ``-A`` text.  An ``Invalid`` item raises only when reached, after the
"no table" check, so errors come in the order iptables-restore gives them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from pktsim.netfilter.rules import Rule, Table


@dataclass(slots=True)
class TableStart:
    """``*name``: the rules up to the next ``COMMIT`` are for this table."""

    name: str
    source: str = field(default="", compare=False)


@dataclass(slots=True)
class ChainDecl:
    """``:NAME POLICY [0:0]``: a built-in chain's policy, or (policy None, ``-``) a user
    chain made if it is missing."""

    name: str
    policy: str | None
    source: str = field(default="", compare=False)


@dataclass(slots=True)
class NewChain:
    """``-N NAME``: a user chain that must not exist yet."""

    name: str
    source: str = field(default="", compare=False)


@dataclass(slots=True)
class RuleLine:
    """``-A CHAIN rule`` (``position`` None) or ``-I CHAIN position rule``.  A rule read from
    text and a rule made directly (kube-proxy's per-endpoint rules) are both one of these."""

    chain: str
    rule: Rule
    position: int | None = None
    source: str = field(default="", compare=False)


@dataclass(slots=True)
class Commit:
    """``COMMIT``: the table is complete."""

    source: str = field(default="", compare=False)


@dataclass(slots=True)
class Blank:
    """An empty or ``#`` comment line: nothing, but it keeps the line numbers."""

    source: str = field(default="", compare=False)


@dataclass(slots=True)
class Invalid:
    """A line that does not read: ``load`` raises ``error`` when it reaches it (after the
    checks that come first, so the error is the one iptables-restore reports first)."""

    error: str
    source: str = field(default="", compare=False)


Item = TableStart | ChainDecl | NewChain | RuleLine | Commit | Blank | Invalid
"""One line of an ``iptables-restore`` document, read (``read_line``) or made."""


def load(items: Iterable[Item]) -> dict[str, Table]:
    """A document's items to tables; an error names the item by its (1-based) number."""
    tables: dict[str, Table] = {}
    current: Table | None = None
    for lineno, item in enumerate(items, 1):
        try:
            if isinstance(item, RuleLine) and current is not None:  # most items: first
                chain = current[item.chain]
                if item.position is None:
                    chain.append(item.rule)
                else:
                    chain.insert(item.position, item.rule)
            elif isinstance(item, Blank):
                continue
            elif isinstance(item, TableStart):
                current = Table(item.name)
            elif current is None:
                raise ValueError("no table (*filter, *nat, ...) before this line")
            elif isinstance(item, Commit):
                tables[current.name], current = current, None
            else:
                _apply(current, item)
        except (ValueError, KeyError, IndexError) as err:
            raise ValueError(f"line {lineno}: {err}: {_shown(item)}") from None
    if current is not None:
        raise ValueError(f"table {current.name} has no COMMIT")
    return tables


def _apply(table: Table, item: Item) -> None:
    if isinstance(item, ChainDecl):
        if item.policy is None:
            table.ensure_chain(item.name)
        else:
            table[item.name].policy = item.policy
    elif isinstance(item, NewChain):
        table.new_chain(item.name)
    elif isinstance(item, Invalid):
        raise ValueError(item.error)


def _shown(item: Item) -> str:
    """The item as its error message quotes it: the line it was read from, else its text."""
    if item.source:
        return item.source
    if isinstance(item, RuleLine):
        return f"-A {item.chain} {item.rule.text}"
    return repr(item)
