"""kube-proxy's restore text into netfilter tables, fast, and shared between nodes.

Theory of operation
-------------------
``restore_tables(text)`` is ``pktsim.netfilter.save.parse(text)`` with a rule reader made
fast enough for 10,000 Services (≈ 470,000 rules): rules made of the words kube-proxy uses
most (``-m comment``, ``-p``/``-m tcp|udp --dport``, ``-d``/``-s``, ``-m statistic``, any
target) are built from cached match and target objects without the general option parser.
The result is the same tables, rule for rule: any other rule, and any malformed one, goes
through ``parse_rule``, so an error is the one ``parse`` reports.

``sharing_key(model, node)`` says which nodes get the same rules: kube-proxy's rules depend
on the node only through its local endpoints (Services with a ``Local`` traffic policy) and
its address (``loadBalancerSourceRanges``).  Without such Services every node has the same
rules (key ``None``) and the builder loads them once, frozen, with one overlay per node.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from ipaddress import IPv4Address, IPv4Network

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
from pktsim.netfilter.save import Item, parse, parse_items, parse_rule, parse_target
from pktsim.netfilter.targets import Dnat, Jump, Target


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
    return parse(text, rule=_Reader().rule)


def restore_direct(build: Callable[[RuleMaker], Iterable[Item]],
                   text: Callable[[], str]) -> dict[str, Table]:
    """``restore_tables(text())`` without writing and reading most of the text: ``build``
    gives the document as lines and rules a ``RuleMaker`` made directly.  On any problem,
    the text is written and read after all, so an error is the one the text gives."""
    maker = RuleMaker()
    try:
        return parse_items(build(maker), rule=maker.rule)
    except ValueError:
        return restore_tables(text())


class _Reader:
    """One text's worth of caches: equal words give the same (immutable) objects."""

    def __init__(self) -> None:
        self.nets: dict[str, IPv4Network] = {}
        self.matches: dict[tuple[str, ...], Match] = {}
        self.targets: dict[tuple[str, ...], Target] = {}

    def rule(self, words: list[str]) -> Rule:
        """``parse_rule(words)``: the fast path, else the general one (which also gives the
        error of a malformed rule, so the error is ``parse``'s)."""
        try:
            return self._fast(words)
        except (_Slow, ValueError, KeyError, IndexError):
            return parse_rule(words)

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
            addr, slash, prefix = text.partition("/")
            value = quad(addr)
            net = self.nets[text] = (
                IPv4Network((value, int(prefix)), strict=False)
                if value is not None and slash and prefix.isascii() and prefix.isdigit()
                and int(prefix) <= 32 else IPv4Network(text, strict=False))
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
            found = self.targets[words] = _quick_target(words) or \
                parse_target(words[0], list(words[1:]))
        return found


_NOT_JUMPS = frozenset({"ACCEPT", "DROP", "RETURN", "REJECT", "MARK", "DNAT", "SNAT",
                        "MASQUERADE"})


def _quick_target(words: tuple[str, ...]) -> Target | None:
    """``parse_target`` of the two targets kube-proxy writes per endpoint — ``-j KUBE-SEP-…``
    and ``-j DNAT --to-destination IP:PORT`` — without its option loop and address parser;
    None for anything else."""
    if len(words) == 1 and words[0] not in _NOT_JUMPS:
        return Jump(words[0])
    if len(words) == 3 and words[0] == "DNAT" and words[1] == "--to-destination":
        ip, colon, port = words[2].partition(":")
        value = quad(ip)
        if value is not None and colon and port.isascii() and port.isdigit():
            return Dnat(IPv4Address(value), (int(port), int(port)))
    return None


def quad(text: str) -> int | None:
    """The value of a dotted quad as ``IPv4Address`` reads it (four decimal bytes, no
    leading zeros); None when it is anything else (the caller lets ``ipaddress`` decide)."""
    parts = text.split(".")
    if len(parts) != 4:
        return None
    value = 0
    for part in parts:
        if not (part.isascii() and part.isdigit()) or len(part) > 3 \
                or (len(part) > 1 and part[0] == "0"):
            return None
        byte = int(part)
        if byte > 255:
            return None
        value = value << 8 | byte
    return value


class RuleMaker(_Reader):
    """The rules kube-proxy writes per endpoint, made without their text: each is the rule
    ``_Reader`` makes of the line ``kubeproxy.rules`` would write (a test compares them)."""

    def jump(self, comment: str, probability: str | None, chain: str) -> Rule:
        """``-m comment --comment "C" [-m statistic --mode random --probability P] -j CHAIN``."""
        modules = [self._match(("comment", comment))]
        if probability is not None:
            modules.append(self._match(("statistic", probability)))
        return Rule(tuple(modules), self._target((chain,)))

    def masquerade_from(self, comment: str, ip: IPv4Address, target: str) -> Rule:
        """``-m comment --comment C -s IP -j TARGET`` (the endpoint's hairpin mark)."""
        net = IPv4Network((int(ip), 32))
        return Rule((Source(net, False), self._match(("comment", comment))),
                    self._target((target,)))

    def dnat(self, comment: str, protocol: str, ip: IPv4Address, port: int) -> Rule:
        """``-m comment --comment C -m PROTO -p PROTO -j DNAT --to-destination IP:PORT``."""
        return Rule((self._match(("-p", protocol)), self._match(("comment", comment)),
                     self._match(("ports", protocol, ""))), Dnat(ip, (port, port)))


def _ports(key: tuple[str, ...]) -> Match:
    port = int(key[2]) if key[2] else None
    return Ports(PROTOCOLS[key[1]], None, (port, port) if port is not None else None)


_MAKERS: dict[str, Callable[[tuple[str, ...]], Match]] = {
    "-p": lambda key: Protocol(PROTOCOLS[key[1]]),
    "comment": lambda key: Comment(key[1]),
    "ports": _ports,
    "statistic": lambda key: Statistic(key[1]),
}
