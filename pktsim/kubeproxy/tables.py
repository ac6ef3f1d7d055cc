"""kube-proxy's restore text into netfilter tables, fast, and shared between nodes.

Theory of operation
-------------------
``restore_tables(text)`` is ``pktsim.netfilter.save.parse(text)`` for the text kube-proxy
writes, made fast enough for 10,000 Services (≈ 470,000 rules): lines without backslashes
are split without the character-by-character tokenizer, and rules made of the words
kube-proxy uses most (``-m comment``, ``-p``/``-m tcp|udp --dport``, ``-d``/``-s``,
``-m statistic``, any target) are built from cached match and target objects without the
general option parser.  The result is the same tables, rule for rule: anything else on a
line goes through ``parse_rule``, and any error makes the whole text go through ``parse``,
so that the error is the one ``parse`` reports.

``sharing_key(model, node)`` says which nodes get the same rules: kube-proxy's rules depend
on the node only through its local endpoints (Services with a ``Local`` traffic policy) and
its address (``loadBalancerSourceRanges``).  Without such Services every node has the same
rules (key ``None``) and the builder loads them once, frozen, with one overlay per node.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from ipaddress import IPv4Network

from pktsim.model.cluster import ClusterModel
from pktsim.netfilter.matches import (
    PROTOCOLS,
    Comment,
    Destination,
    Match,
    Ports,
    Protocol,
    Source,
    Statistic,
)
from pktsim.netfilter.rules import Rule, Table
from pktsim.netfilter.save import parse, parse_rule, parse_target, tokenize
from pktsim.netfilter.targets import Target


class _Slow(Exception):
    """The fast path does not know this line: let the general parser read it."""


def node_specific(model: ClusterModel) -> bool:
    """Whether some Service makes kube-proxy's rules differ from node to node."""
    for info in model.services.values():
        svc = info.service
        if info.cluster_ip is None or info.headless or svc.type == "ExternalName":
            continue
        if svc.internal_traffic_policy == "Local" or svc.external_traffic_policy == "Local" \
                or svc.load_balancer_source_ranges:
            return True
    return False


def sharing_key(model: ClusterModel, node: str, specific: bool | None = None) -> Hashable:
    """Nodes with equal keys get equal kube-proxy rules: ``None`` for all when no Service
    makes them node-specific, else the node's name.  ``specific``: ``node_specific(model)``
    if known (it looks at every Service)."""
    if specific is None:
        specific = node_specific(model)
    return node if specific else None


def restore_tables(text: str) -> dict[str, Table]:
    """``parse(text)``, fast for kube-proxy's text (same tables, same errors)."""
    try:
        return _Reader().read(text)
    except (ValueError, KeyError, IndexError, _Slow):
        return parse(text)


def split_words(line: str) -> list[str]:
    """``tokenize(line)``, without its per-character loop when every quoted part is a whole
    word and nothing is escaped (what kube-proxy writes)."""
    if "\\" in line or "\t" in line:
        return tokenize(line)
    if '"' not in line:
        return [w for w in line.split(" ") if w]
    parts = line.split('"')
    last = len(parts) - 1
    if last % 2:
        return tokenize(line)  # unbalanced: let it raise its error
    words: list[str] = []
    for i, part in enumerate(parts):
        if i % 2 == 0:
            words += [w for w in part.split(" ") if w]
            continue
        before, after = parts[i - 1], parts[i + 1]
        if (before and not before.endswith(" ")) or (not before and i > 1) \
                or (after and not after.startswith(" ")) or (not after and i + 1 < last):
            return tokenize(line)  # a quoted part glued to something: the general way
        words.append(part)
    return words


class _Reader:
    """One text's worth of caches: equal words give the same (immutable) objects."""

    def __init__(self) -> None:
        self.nets: dict[str, IPv4Network] = {}
        self.matches: dict[tuple[str, ...], Match] = {}
        self.targets: dict[tuple[str, ...], Target] = {}

    def read(self, text: str) -> dict[str, Table]:
        tables: dict[str, Table] = {}
        current: Table | None = None
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("*"):
                current = Table(line[1:])
            elif current is None:
                raise _Slow
            elif line == "COMMIT":
                tables[current.name], current = current, None
            elif line.startswith(":"):
                name, policy = line[1:].split()[:2]
                if policy == "-":
                    current.ensure_chain(name)
                elif policy in ("ACCEPT", "DROP"):
                    current[name].policy = policy
                else:
                    raise _Slow
            elif line.startswith("-A "):
                words = split_words(line)
                current[words[1]].append(self.rule(words[2:]))
            else:
                raise _Slow
        if current is not None:
            raise _Slow
        return tables

    def rule(self, words: Sequence[str]) -> Rule:
        """``parse_rule(words)``: the fast path, else the general one."""
        try:
            return self._fast(words)
        except _Slow:
            return parse_rule(list(words))

    def _fast(self, words: Sequence[str]) -> Rule:
        header: list[Match] = []
        modules: list[Match | None] = []
        ports_at, ports_proto, dport = -1, "", ""  # the -m tcp/udp module, built at the end
        i, n = 0, len(words)
        while i < n:
            w = words[i]
            if w == "-j":
                if ports_at >= 0:
                    modules[ports_at] = self._match(("ports", ports_proto, dport))
                target = self._target(tuple(words[i + 1:]))
                return Rule((*header, *(m for m in modules if m is not None)), target)
            if w == "!":
                i += 1
                header.append(self._addr(words[i], words[i + 1], True))
            elif w in ("-d", "-s"):
                header.append(self._addr(w, words[i + 1], False))
            elif w == "-p" and words[i + 1] in PROTOCOLS:
                header.append(self._match(("-p", words[i + 1])))
            elif w == "-m" and words[i + 1] == "comment" and words[i + 2] == "--comment":
                modules.append(self._match(("comment", words[i + 3])))
                i += 2
            elif w == "-m" and words[i + 1] in ("tcp", "udp") and ports_at < 0:
                ports_at, ports_proto = len(modules), words[i + 1]
                modules.append(None)
            elif w == "--dport" and ports_at >= 0 and not dport and words[i + 1].isdigit():
                dport = words[i + 1]
            elif w == "-m" and words[i + 1] == "statistic" \
                    and tuple(words[i + 2:i + 5]) == ("--mode", "random", "--probability"):
                modules.append(self._match(("statistic", words[i + 5])))
                i += 4
            else:
                raise _Slow
            i += 2
        raise _Slow  # no target: rare, the general parser handles it

    def _addr(self, flag: str, text: str, negate: bool) -> Match:
        net = self.nets.get(text)
        if net is None:
            net = self.nets[text] = IPv4Network(text, strict=False)
        if flag == "-d":
            return Destination(net, negate)
        if flag == "-s":
            return Source(net, negate)
        raise _Slow

    def _match(self, key: tuple[str, ...]) -> Match:
        found = self.matches.get(key)
        if found is None:
            found = self.matches[key] = _MAKERS[key[0]](key)
        return found

    def _target(self, words: tuple[str, ...]) -> Target:
        found = self.targets.get(words)
        if found is None:
            if not words:
                raise _Slow
            found = self.targets[words] = parse_target(words[0], list(words[1:]))
        return found


def _ports(key: tuple[str, ...]) -> Match:
    port = int(key[2]) if key[2] else None
    return Ports(PROTOCOLS[key[1]], None, (port, port) if port is not None else None)


_MAKERS: dict[str, Callable[[tuple[str, ...]], Match]] = {
    "-p": lambda key: Protocol(PROTOCOLS[key[1]]),
    "comment": lambda key: Comment(key[1]),
    "ports": _ports,
    "statistic": lambda key: Statistic(key[1]),
}
