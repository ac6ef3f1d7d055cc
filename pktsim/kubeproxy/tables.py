"""kube-proxy's restore text into netfilter tables, fast, and shared between nodes.

Theory of operation
-------------------
``restore_tables(text)`` is ``pktsim.netfilter.save.parse(text)`` with a rule reader made
fast enough for 10,000 Services (≈ 470,000 rules): rules made of the words kube-proxy uses
most (``-m comment``, ``-p``/``-m tcp|udp --dport``, ``-d``/``-s``, ``-m statistic``, any
target) are built from cached match and target objects without the general option parser.
The result is the same tables, rule for rule: the fast path checks up front that a rule is
of a form it knows, and any other rule, and any malformed one, goes through ``parse_rule``
by an explicit branch, so an error is the one ``parse`` reports.  Nothing is caught: a bug
in the fast path raises (a test checks fast == slow on kube-proxy's own rule text).

``sharing_key(model, node)`` says which nodes get the same rules: kube-proxy's rules depend
on the node only through its local endpoints (Services with a ``Local`` traffic policy), its
address (``loadBalancerSourceRanges``), and its name and zone (endpoints with topology
hints, ``pktsim.kubeproxy.topology``), in either family's rules (one key serves both).
Without such Services every node has the same rules (key ``None``) and the builder loads
them once, frozen, with one overlay per node.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from pktsim.model.cluster import ClusterModel
from pktsim.model.services import EndpointAddr
from pktsim.netfilter.document import Item, load
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
from pktsim.netfilter.save import parse, parse_rule, parse_target
from pktsim.netfilter.targets import Dnat, Jump, Target


def node_specific(model: ClusterModel) -> str:
    """What makes kube-proxy's rules differ from node to node: ``"node"`` (a Service with a
    ``Local`` traffic policy or ``loadBalancerSourceRanges``, or an endpoint with
    ``hints.forNodes``), ``"zone"`` (an endpoint with ``hints.forZones``: the rules differ
    by the node's zone, ``CategorizeEndpoints``), else ``""``."""
    level = ""
    for info in model.services.values():
        svc = info.service
        if (info.cluster_ip is None and info.cluster_ip6 is None) or info.headless \
                or svc.type == "ExternalName":
            continue  # proxied by neither family's kube-proxy
        if svc.internal_traffic_policy == "Local" or svc.external_traffic_policy == "Local" \
                or svc.load_balancer_source_ranges:
            return "node"
        for port in info.ports:
            hinted: list[EndpointAddr[Any]] = [*port.endpoints, *port.endpoints6]
            for ep in hinted:
                if ep.for_nodes:
                    return "node"
                if ep.for_zones:
                    level = "zone"
    return level


def sharing_key(model: ClusterModel, node: str, specific: str | None = None) -> Hashable:
    """Nodes with equal keys get equal kube-proxy rules: ``None`` for all when no Service
    makes them node-specific, the node's zone when only zone hints do, else the node's
    name.  ``specific``: ``node_specific(model)`` if known (it looks at every Service)."""
    if specific is None:
        specific = node_specific(model)
    if specific == "zone":
        return ("zone", model.nodes[node].zone)
    return node if specific else None


def restore_tables(text: str, family: int = 4) -> dict[str, Table]:
    """``parse(text)``, fast for kube-proxy's text (same tables, same errors); ``family``
    6 reads ``ip6tables-restore`` text (its addresses always by the general parser)."""
    return parse(text, rule=_Reader(family).rule, family=family)


def restore_direct(build: Callable[[RuleMaker], Iterable[Item]],
                   text: Callable[[], str]) -> dict[str, Table]:
    """``restore_tables(text())`` without writing and reading most of the text: ``build``
    gives the document's items, lines read with the maker's ``rule`` and rules it made
    directly.  On an error, the text is written and read after all, so the error is the
    one the text gives; if the text reads, the direct path was wrong where the text was
    not — a bug, raised as one rather than hidden as a slowdown."""
    maker = RuleMaker()
    try:
        return load(build(maker))
    except ValueError as direct:
        restore_tables(text())  # raises the text's own error
        raise RuntimeError(f"kube-proxy's rules made directly fail where their text "
                           f"reads: {direct}") from direct


class _Reader:
    """One text's worth of caches: equal words give the same (immutable) objects."""

    def __init__(self, family: int = 4) -> None:
        self.family = family  # 6: the fast path leaves every address to parse_rule
        self.nets: dict[str, IPv4Network] = {}
        self.matches: dict[tuple[str, ...], Match] = {}
        self.targets: dict[tuple[str, ...], Target] = {}

    def rule(self, words: list[str]) -> Rule:
        """``parse_rule(words)``.  The fast path takes only the forms it knows — it says so
        by looking at the words, never by trying and catching — and every other rule goes
        to the general parser by an explicit branch (which also gives a malformed rule's
        error, so the error is ``parse``'s).  An exception out of the fast path is a bug
        and is raised as one, not hidden as a slowdown."""
        made = self._fast(words)
        return made if made is not None else parse_rule(words, self.family)

    def _fast(self, words: Sequence[str]) -> Rule | None:
        """The rule, if ``words`` are of kube-proxy's common forms; else None."""
        header: list[Match] = []
        modules: list[Match | None] = []
        flags: set[str] = set()  # -d -s -p given: a second one is parse_rule's to refuse
        ports_at, ports_proto, dport, proto = -1, "", "", ""  # -m tcp/udp, built at the end
        i, n = 0, len(words)
        while i + 1 < n:
            w, arg = words[i], words[i + 1]
            negate = w == "!" and arg in ("-d", "-s") and i + 2 < n
            if negate:
                i += 1
                w, arg = arg, words[i + 1]
            if w == "-j":
                if ports_at >= 0:
                    if ports_proto != proto:
                        return None  # -m tcp without -p tcp: parse_rule's error
                    modules[ports_at] = self._match(("ports", ports_proto, dport))
                target = self._target(tuple(words[i + 1:]))
                return Rule((*header, *(m for m in modules if m is not None)), target)
            if w in ("-d", "-s") and w not in flags:
                net = self._net(arg, negate)
                if net is None:
                    return None
                header.append(Destination(net, negate) if w == "-d" else Source(net, negate))
            elif negate:
                return None
            elif w == "-p" and arg in PROTOCOLS and w not in flags:
                header.append(self._match(("-p", arg)))
                proto = arg
            elif w == "-m" and arg == "comment" and words[i + 2:i + 3] == ["--comment"] \
                    and i + 3 < n:
                modules.append(self._match(("comment", words[i + 3])))
                i += 2
            elif w == "-m" and arg in ("tcp", "udp") and ports_at < 0:
                ports_at, ports_proto = len(modules), arg
                modules.append(None)
            elif w == "--dport" and ports_at >= 0 and not dport and _port(arg):
                dport = arg
            elif w == "-m" and arg == "statistic" and i + 5 < n and _probability(words[i + 5]) \
                    and tuple(words[i + 2:i + 5]) == ("--mode", "random", "--probability"):
                modules.append(self._match(("statistic", words[i + 5])))
                i += 4
            else:
                return None
            flags.add(w)
            i += 2
        return None  # no target, or a last word alone: rare, the general parser reads it

    def _net(self, text: str, negate: bool) -> IPv4Network | None:
        """``-d``/``-s`` TEXT when it is ``a.b.c.d`` or ``a.b.c.d/N``; None for any other
        form, and for ``! 0.0.0.0/0`` (which parse_rule refuses)."""
        net = self.nets.get(text)
        if net is None:
            if self.family != 4:
                return None
            addr, slash, prefix = text.partition("/")
            value = quad(addr)
            if value is None or (slash and not (prefix.isascii() and prefix.isdigit()
                                                and len(prefix) <= 2 and int(prefix) <= 32)):
                return None
            net = self.nets[text] = IPv4Network((value, int(prefix) if slash else 32),
                                                strict=False)
        return None if negate and net.prefixlen == 0 else net

    def _match(self, key: tuple[str, ...]) -> Match:
        found = self.matches.get(key)
        if found is None:
            found = self.matches[key] = _MAKERS[key[0]](key)
        return found

    def _target(self, words: tuple[str, ...]) -> Target:
        """``-j`` WORDS (not empty).  ``parse_target``'s error for a malformed target is
        also the slow path's: every word before ``-j`` was of a valid known form."""
        found = self.targets.get(words)
        if found is None:
            quick = _quick_target(words) if self.family == 4 else None
            found = self.targets[words] = quick or \
                parse_target(words[0], list(words[1:]), self.family)
        return found


def _port(text: str) -> bool:
    """A port number as kube-proxy writes it (decimal, 0..65535)."""
    return text.isascii() and text.isdigit() and len(text) <= 5 and int(text) <= 65535


def _probability(text: str) -> bool:
    """A probability as kube-proxy writes it (``%0.10f`` of 1/n: ``0.…`` or ``1.…``)."""
    whole, dot, frac = text.partition(".")
    return whole in ("0", "1") and bool(dot) and frac.isascii() and frac.isdigit() \
        and (whole == "0" or frac.strip("0") == "")


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
