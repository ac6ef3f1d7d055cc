"""A Kubernetes NetworkPolicy as felix renders it: Calico rules, then iptables rules and sets.

Theory of operation
-------------------
Calico never evaluates a Kubernetes policy itself.  The Kubernetes datastore driver converts
it into a Calico policy (libcalico-go ``lib/backend/k8s/conversion/conversion.go``
``K8sNetworkPolicyToCalico``, ``k8sRuleToCalico``): per rule, one Calico rule per protocol
named in its ports (sorted) and per peer, with every peer's selectors written as Calico
selector text (``k8sSelectorToCalico``) and namespaces folded in (``updateprocessors/rules.go``
``getEndpointSelector``: the policy's own namespace unless a namespaceSelector is given, which
then reads the ``pcns.`` copies of namespace labels).  felix turns each selector into an IP set
of the matching workload endpoints' addresses and each rule into iptables rules
(``felix/rules/policy.go`` ``ProtoRuleToIptablesRules``, ``CalculateRuleMatch``,
``CombineMatchAndActionsForProtoRule``): a match that sets the accept mark, then a RETURN on
that mark; several destination-port groups or an ipBlock's ``except`` list become "match
blocks" over two scratch mark bits.

Here the selectors are evaluated on the Kubernetes objects themselves (the same labels felix
copies onto endpoints), so a set's members are exactly the pods the Kubernetes peer names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Network

from pktsim.felix.names import (
    KIND_K8S_POLICY,
    MARK_ACCEPT,
    MARK_SCRATCH0,
    MARK_SCRATCH1,
    named_port_set,
    policy_chain,
    selector_set,
)
from pktsim.felix.rules import (
    RETURN,
    FChain,
    FRule,
    clear_mark,
    mark_set,
    masked_mark,
    match_set,
    ports,
    set_mark,
)
from pktsim.model.cluster import PodInfo
from pktsim.model.policy import LabelSelector, NetworkPolicy, Peer, PolicyRule

NS_LABEL = "projectcalico.org/namespace"
ORCHESTRATOR = "projectcalico.org/orchestrator == 'k8s'"
PortRange = tuple[int, int]


@dataclass(slots=True)
class Sets:
    """The IP sets the node's active rules refer to: name -> (type, members in order)."""

    sets: dict[str, tuple[str, Iterable[str]]] = field(default_factory=dict)

    def add(self, name: str, kind: str, members: Iterable[str]) -> str:
        """The set, kept as given (a shared tuple is not copied: every node names
        ``cali40all-hosts-net`` with the same thousands of hosts)."""
        if name not in self.sets:
            self.sets[name] = (kind, members if isinstance(members, tuple) else
                               tuple(dict.fromkeys(members)))
        return name


@dataclass(frozen=True, slots=True)
class World:
    """Who is who in the cluster: every workload endpoint and every namespace's labels."""

    workloads: tuple[PodInfo, ...]
    namespace_labels: Mapping[str, Mapping[str, str]]
    # each peer's workloads, found once: every node renders the same active policies
    found: dict[tuple[Peer, str], list[PodInfo]] = field(default_factory=dict,
                                                         compare=False)

    def peers(self, peer: Peer, namespace: str) -> list[PodInfo]:
        """The workloads a selector peer names (Kubernetes semantics; the same labels)."""
        known = self.found.get((peer, namespace))
        if known is None:
            known = self.found[(peer, namespace)] = self._peers(peer, namespace)
        return known

    def _peers(self, peer: Peer, namespace: str) -> list[PodInfo]:
        out = []
        for w in self.workloads:
            pod = w.pod
            if peer.namespace_selector is None:
                if pod.namespace != namespace:
                    continue
            elif not peer.namespace_selector.matches(self.namespace_labels.get(pod.namespace,
                                                                               {})):
                continue
            if peer.pod_selector is None or peer.pod_selector.matches(pod.labels):
                out.append(w)
        return out


def calico_selector(sel: LabelSelector | None, *, pod: bool) -> str:
    """``k8sSelectorToCalico``: sorted matchLabels, then expressions, joined by ``&&``."""
    parts = [ORCHESTRATOR] if pod else []
    if sel is None:
        return " && ".join(parts)
    if not pod and sel.empty:
        return "all()"
    parts += [f"{k} == '{v}'" for k, v in sorted(sel.match_labels)]
    for r in sel.match_expressions:
        values = "', '".join(r.values)
        parts.append({"In": f"{r.key} in {{ '{values}' }}",
                      "NotIn": f"{r.key} not in {{ '{values}' }}",
                      "Exists": f"has({r.key})", "DoesNotExist": f"! has({r.key})"}[r.operator])
    return " && ".join(parts)


def peer_selector(peer: Peer, namespace: str) -> str:
    """``getEndpointSelector`` for a selector peer of a policy in ``namespace``."""
    selector = calico_selector(peer.pod_selector, pod=True)
    if peer.namespace_selector is not None:
        ns = calico_selector(peer.namespace_selector, pod=False)
        ns = "has(projectcalico.org/namespace)" if ns == "all()" else " && ".join(
            f"pcns.{part}" if not part.startswith(("has(", "! has(")) else
            part.replace("has(", "has(pcns.") for part in ns.split(" && "))
    else:
        ns = f"{NS_LABEL} == '{namespace}'"
    return f"({ns}) && ({selector})"


def policy_selector(policy: NetworkPolicy) -> str:
    """The policy's own endpoint selector (``networkpolicyprocessor.go``)."""
    return f"({calico_selector(policy.pod_selector, pod=True)}) && " \
           f"{NS_LABEL} == '{policy.namespace}'"


@dataclass(frozen=True, slots=True)
class CalicoRule:
    """One converted rule: a protocol (or none), a peer (or none) and destination ports."""

    protocol: str  # "" (any), "tcp", "udp", "sctp"
    peer: Peer | None
    numeric: tuple[PortRange, ...]
    named: tuple[str, ...]


def convert(rule: PolicyRule) -> list[CalicoRule]:
    """``k8sRuleToCalico``: per protocol (sorted), per peer (in order)."""
    by_proto: dict[str, list[int | str | PortRange] | None] = {}
    for p in rule.ports:
        proto = p.protocol.lower()
        if p.port is None:
            by_proto[proto] = None  # the whole protocol: later ports add nothing
        elif proto not in by_proto or by_proto[proto]:
            entry: int | str | PortRange = (p.port, p.end_port) if p.end_port and \
                isinstance(p.port, int) else p.port
            by_proto.setdefault(proto, []).append(entry)  # type: ignore[union-attr]
    if not rule.ports:
        by_proto = {"": None}
    peers: list[Peer | None] = list(rule.peers) or [None]
    out = []
    for proto in sorted(by_proto):
        numeric, named = _simplify(by_proto[proto] or [])
        out += [CalicoRule(proto, peer, numeric, named) for peer in peers]
    return out


def _simplify(ports_: list[int | str | PortRange]) -> tuple[tuple[PortRange, ...],
                                                               tuple[str, ...]]:
    """``SimplifyPorts``: named ports as given, numbers merged into sorted ranges."""
    named = tuple(p for p in ports_ if isinstance(p, str))
    numbers: set[int] = set()
    for p in ports_:
        if isinstance(p, int):
            numbers.add(p)
        elif isinstance(p, tuple):
            numbers.update(range(p[0], p[1] + 1))
    ranges: list[PortRange] = []
    for n in sorted(numbers):
        if ranges and n == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], n)
        else:
            ranges.append((n, n))
    return tuple(ranges), named


def split_ports(ranges: tuple[PortRange, ...]) -> list[list[PortRange]]:
    """``SplitPortList``: at most 15 slots per multiport match, a range taking two."""
    splits: list[list[PortRange]] = []
    slots = 0
    for r in ranges:
        need = 1 if r[0] == r[1] else 2
        if not splits or slots + need > 15:
            splits.append([])
            slots = 0
        splits[-1].append(r)
        slots += need
    return splits


def policy_chains(policy: NetworkPolicy, world: World, sets: Sets,
                  rule_of: dict[str, list[int]] | None = None) -> list[FChain]:
    """The policy's ``cali-pi-``/``cali-po-`` chains (``PolicyToIptablesChains``).

    ``rule_of`` receives, per chain, the 1-based index of the Kubernetes rule each
    iptables rule was made from (for the trace's verdicts)."""
    chains = []
    for direction, rules in (("Ingress", policy.ingress), ("Egress", policy.egress)):
        out: list[FRule] = []
        origin: list[int] = []
        for number, rule in enumerate(rules, 1):
            for cr in convert(rule):
                made = _render(cr, direction, policy, world, sets)
                out += made
                origin += [number] * len(made)
        while out and out[-1].action == RETURN:  # ProtoRulesToIptablesRules
            out.pop()
        if rule_of is not None:
            rule_of[policy_chain(direction, policy.namespace, policy.name)] = \
                origin[:len(out)] or [0]
        comment = f"{KIND_K8S_POLICY} {policy.namespace}/{policy.name} " \
                  f"{direction.lower()}"
        out = [(out[0] if out else FRule()).with_comment(comment), *out[1:]]
        chains.append(FChain(policy_chain(direction, policy.namespace, policy.name),
                             tuple(out)))
    return chains


def _render(cr: CalicoRule, direction: str, policy: NetworkPolicy, world: World,
            sets: Sets) -> list[FRule]:
    """One Calico allow rule: match blocks, the accept-mark rule, the RETURN on it."""
    side = "src" if direction == "Ingress" else "dst"
    net_opt = "--source" if side == "src" else "--destination"
    blocks = _Blocks()
    peer_set = nets = None
    excepts: tuple[IPv4Network, ...] = ()
    if cr.peer is not None and cr.peer.ip_block is not None:
        if not isinstance(cr.peer.ip_block.cidr, IPv4Network):
            return []  # FilterRuleToIPVersion: no IPv4 net left, no IPv4 rule at all
        nets = str(cr.peer.ip_block.cidr)
        excepts = tuple(e for e in cr.peer.ip_block.except_
                        if isinstance(e, IPv4Network))
    elif cr.peer is not None:
        members = [str(w.ip) for w in world.peers(cr.peer, policy.namespace)]
        peer_set = sets.add(selector_set(peer_selector(cr.peer, policy.namespace)),
                            "hash:ip", members)
    named_sets = [_named_set(name, cr, direction, policy, world, sets) for name in cr.named]
    splits = split_ports(cr.numeric)
    proto = f"-p {cr.protocol}" if cr.protocol else ""
    if len(splits) + len(named_sets) > 1:
        blocks.ports(proto, splits, named_sets)
        splits, named_sets = [], []
    if excepts:
        blocks.negated([f"{net_opt} {e}" for e in excepts])
    match = [proto]
    if nets is not None:
        match.append(f"{net_opt} {nets}")
    if peer_set is not None:
        match.append(match_set(peer_set, side))
    match += [ports(s) for s in splits] + [match_set(n, "dst,dst") for n in named_sets]
    if blocks.used:
        match.append(mark_set(MARK_SCRATCH0))
    return [*blocks.rules, FRule(tuple(m for m in match if m), set_mark(MARK_ACCEPT)),
            FRule((mark_set(MARK_ACCEPT),), RETURN)]


def _named_set(name: str, cr: CalicoRule, direction: str, policy: NetworkPolicy,
               world: World, sets: Sets) -> str:
    """The ``hash:ip,port`` set of a named destination port over the endpoints the rule's
    destination selector matches: the peer's for an egress rule with a selector peer, else
    ``all()`` (felix ``calc/rule_scanner.go``: an empty destination selector is all
    endpoints; for ingress the destination is the policy's own pod anyway), so one set
    serves every rule that names the port that way."""
    if direction == "Egress" and cr.peer is not None and cr.peer.ip_block is None:
        targets = world.peers(cr.peer, policy.namespace)
        selector = peer_selector(cr.peer, policy.namespace)
    else:
        targets, selector = list(world.workloads), ""
    proto = cr.protocol or "tcp"
    members = [f"{w.ip},{proto}:{p.port}" for w in targets for c in w.pod.containers
               for p in c.ports if p.name == name and p.protocol.lower() == proto]
    return sets.add(named_port_set(selector or "all()", proto, name), "hash:ip,port", members)


@dataclass(slots=True)
class _Blocks:
    """felix's ``matchBlockBuilder``: scratch-0 says "every block so far matched"."""

    rules: list[FRule] = field(default_factory=list)
    used: bool = False
    positive_done: bool = False

    def _initial(self, bits: int) -> None:
        if not self.used:
            self.rules.append(FRule(action=masked_mark(bits, MARK_SCRATCH0 | MARK_SCRATCH1)))
            self.used = True

    def ports(self, proto: str, splits: list[list[PortRange]], named: list[str]) -> None:
        self._initial(0)
        bit = MARK_SCRATCH0 if not self.positive_done else MARK_SCRATCH1
        self.rules += [FRule(tuple(m for m in (proto, ports(s)) if m), set_mark(bit))
                       for s in splits]
        self.rules += [FRule((match_set(n, "dst,dst"),), set_mark(bit)) for n in named]
        if self.positive_done:
            self.rules.append(FRule((f"-m mark --mark 0/{MARK_SCRATCH1:#x}",),
                                    clear_mark(MARK_SCRATCH0)))
        self.positive_done = True

    def negated(self, nets: list[str]) -> None:
        self._initial(MARK_SCRATCH0)
        self.rules += [FRule((n,), clear_mark(MARK_SCRATCH0)) for n in nets]
