"""Put iptables-restore text in the canonical order kube-proxy's own unit tests compare in.

Theory of operation
-------------------
kube-proxy writes services in Go-map order, so its tests (``pkg/proxy/iptables/
proxier_test.go``) never compare raw output: ``assertIPTablesRulesEqual`` first runs the
result through ``sortIPTablesRules``, and the expected texts are written in that form.
``sort_rules`` is a port of it, so those expected texts can be used as golden data:

* tables sorted by name; in each, the chain lines ``KUBE-NODEPORTS`` first, then
  ``KUBE-SERVICES``, then the other ``KUBE-*`` chains, then the rest, each group by name;
* every chain's rules listed together, in chain order (``iptablestest.ParseIPTablesDump``
  followed by ``Dump.String``), each rule's text unchanged;
* the rules of ``KUBE-NODEPORTS`` (filter and nat) and ``KUBE-SERVICES`` (filter and nat)
  stably sorted by the service name in their comment (the comment up to its first space or
  colon), except that the nat ``KUBE-SERVICES`` rule whose comment says "must be the last
  rule" stays last.  Rules of one service keep their relative order.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

_COMMENT = re.compile(r'--comment ("[^"]*"|\S+)')


@dataclass(slots=True)
class _Table:
    name: str
    chains: list[str] = field(default_factory=list)
    lines: dict[str, str] = field(default_factory=dict)  # chain -> its declaration line
    rules: dict[str, list[str]] = field(default_factory=dict)


def parse_tables(text: str) -> list[_Table]:
    """``*table`` sections with their chain lines and ``-A`` rules (ValueError if malformed)."""
    tables: list[_Table] = []
    current: _Table | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("*"):
            current = _Table(line[1:])
            tables.append(current)
        elif current is None:
            raise ValueError(f"line outside a table: {line!r}")
        elif line == "COMMIT":
            current = None
        elif line.startswith(":"):
            chain = line[1:].split()[0]
            current.chains.append(chain)
            current.lines[chain] = line
            current.rules.setdefault(chain, [])
        elif line.startswith("-A "):
            chain = line.split()[1]
            if chain not in current.lines:
                raise ValueError(f"rule for undeclared chain {chain}: {line!r}")
            current.rules[chain].append(line)
        else:
            raise ValueError(f"unexpected line: {line!r}")
    return tables


def comment_of(rule: str) -> str | None:
    """The ``--comment`` value of a rule, unquoted (None if it has none)."""
    found = _COMMENT.search(rule)
    return shlex.split(found.group(1))[0] if found else None


def _service_name(rule: str) -> str:
    comment = comment_of(rule) or ""
    return re.split(r"[ :]", comment, maxsplit=1)[0]


def _chain_key(chain: str) -> tuple[int, str]:
    if chain == "KUBE-NODEPORTS":
        return (0, "")
    if chain == "KUBE-SERVICES":
        return (1, "")
    return (2 if chain.startswith("KUBE-") else 3, chain)


def _rule_key(table: str, chain: str, rule: str) -> tuple[int, str]:
    comment = comment_of(rule) or ""
    last = table == "nat" and chain == "KUBE-SERVICES" and "must be the last rule" in comment
    return (1 if last else 0, _service_name(rule))


def _sorted_rules(table: str, chain: str, rules: list[str]) -> list[str]:
    if chain not in ("KUBE-NODEPORTS", "KUBE-SERVICES"):
        return rules
    return sorted(rules, key=lambda rule: _rule_key(table, chain, rule))


def sort_rules(text: str) -> str:
    """``sortIPTablesRules``: the canonical form of kube-proxy's restore text."""
    out: list[str] = []
    for table in sorted(parse_tables(text), key=lambda t: t.name):
        chains = sorted(table.chains, key=_chain_key)
        out.append(f"*{table.name}")
        out += [table.lines[c] for c in chains]
        for chain in chains:
            out += _sorted_rules(table.name, chain, table.rules[chain])
        out.append("COMMIT")
    return "".join(f"{line}\n" for line in out)
