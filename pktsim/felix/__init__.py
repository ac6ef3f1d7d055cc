"""Calico's felix, iptables dataplane: the tables and IP sets of one Calico node.

``node_felix`` gives what felix programs on a node — its chains in the filter and nat
tables (``static``: the fixed ones; ``endpoints``: one pair per local workload, dispatch,
profiles; ``policy``: the NetworkPolicies that select a local workload), the jumps it
inserts at the top of the kernel's chains and appends to ``FORWARD``, and its IP sets.
``install`` loads that into a node's netfilter next to kube-proxy's rules, as felix's
``iptables-restore --noflush`` and ``ipset restore`` leave a real node.  ``names`` holds
felix's naming (chains, rule hashes, IP sets, marks).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

from pktsim.felix.endpoints import (
    WORKLOAD_PREFIX,
    dispatch_chains,
    ordered,
    profile_chains,
    workload_rules,
)
from pktsim.felix.names import endpoint_chain
from pktsim.felix.policy import Sets, World, policy_chains
from pktsim.felix.restore import BuildCache
from pktsim.felix.rules import FChain, FRule, jump
from pktsim.felix.static import (
    ALL_HOSTS,
    ALL_POOLS,
    ALL_VXLAN,
    HOOK_JUMPS,
    MASQ_POOLS,
    Config,
    filter_chains,
    forward_append,
    nat_chains,
)
from pktsim.felix.verdicts import Endpoint, Explainer
from pktsim.model.cluster import PodInfo
from pktsim.model.policy import NetworkPolicy, policies_selecting
from pktsim.netfilter.hooks import Netfilter
from pktsim.netfilter.ipset import IpSet

# the chains whose DROP is a policy verdict (``Netfilter.policy_chains``)
POLICY_CHAINS = ("cali-tw-", "cali-fw-", "cali-pi-", "cali-po-", "cali-gi-", "cali-go-")


@dataclass(frozen=True, slots=True)
class Inputs:
    """What felix on one node knows: its config, the cluster's workloads and policies."""

    config: Config
    local: tuple[PodInfo, ...]  # this node's workloads (PodInfo.veth: the cali interface)
    world: World
    policies: tuple[NetworkPolicy, ...]
    host_ips: tuple[str, ...]  # every node's address (all-hosts-net, all-vxlan-net)
    pools: tuple[tuple[str, bool], ...]  # (cidr, natOutgoing) per IP pool


@dataclass(slots=True)
class NodeFelix:
    """felix's program for one node, in felix's own spelling."""

    chains: dict[str, list[FChain]] = field(default_factory=dict)  # table -> chains
    inserts: dict[str, dict[str, list[FRule]]] = field(default_factory=dict)
    appends: dict[str, dict[str, list[FRule]]] = field(default_factory=dict)
    sets: Sets = field(default_factory=Sets)
    explainer: Explainer = field(default_factory=Explainer)  # the trace's policy verdicts


def node_felix(inputs: Inputs, cache: BuildCache | None = None) -> NodeFelix:
    """Everything felix programs on the node ``inputs`` describes (``cache``: what the
    other nodes of the build made, for the rules of workload chains)."""
    cache = BuildCache() if cache is None else cache
    out = NodeFelix()
    _global_sets(inputs, out.sets)
    filt = filter_chains(inputs.config)
    filt += dispatch_chains([w.veth for w in inputs.local])
    active: dict[str, NetworkPolicy] = {}
    profiles: dict[str, None] = {}
    for w in sorted(inputs.local, key=lambda w: w.veth):
        ns, labels = w.pod.namespace, w.pod.labels
        mine = [f"kns.{ns}", f"ksa.{ns}.default"]
        profiles.update(dict.fromkeys(mine))
        for direction in ("Ingress", "Egress"):
            selecting = policies_selecting(inputs.policies, ns, labels, direction)
            active.update((p.key, p) for p in selecting)
            rules, groups = cache.template(
                (direction, tuple(p.key for p in selecting), tuple(mine)),
                partial(workload_rules, direction, selecting, mine))
            chain = FChain(endpoint_chain(WORKLOAD_PREFIX[direction], w.veth), rules)
            filt += [chain, *groups]
            out.explainer.endpoints[chain.name] = Endpoint(
                w.pod.key, direction, tuple(p.key for p in ordered(selecting)))
    for policy in sorted(active.values(), key=lambda p: p.key):
        made = policy_chains(policy, inputs.world, out.sets, out.explainer.rule_of)
        out.explainer.policies.update((c.name, policy.key) for c in made)
        filt += made
    for profile in profiles:
        filt += profile_chains(profile)
    out.chains = {"filter": _unique(filt), "nat": nat_chains(inputs.config)}
    out.inserts = {table: {hook: [FRule(action=jump(target))]
                           for hook, target in hooks.items()}
                   for table, hooks in HOOK_JUMPS.items()}
    out.appends = {"filter": {"FORWARD": forward_append()}}
    return out


def _unique(chains: list[FChain]) -> list[FChain]:
    """Group chains shared by several endpoints are programmed once."""
    seen: dict[str, FChain] = {}
    for c in chains:
        seen.setdefault(c.name, c)
    return list(seen.values())


def _global_sets(inputs: Inputs, sets: Sets) -> None:
    """The sets the static chains use (``IPSetIDAllHostNets`` … in rule_defs.go)."""
    cfg = inputs.config
    if cfg.ipip:
        sets.add(ALL_HOSTS, "hash:net", inputs.host_ips)
    if cfg.vxlan:
        sets.add(ALL_VXLAN, "hash:net", inputs.host_ips)
    if cfg.nat_outgoing:
        sets.add(MASQ_POOLS, "hash:net", [c for c, nat in inputs.pools if nat])
        sets.add(ALL_POOLS, "hash:net", [c for c, _ in inputs.pools])


def install(nf: Netfilter, program: NodeFelix, cache: BuildCache | None = None) -> None:
    """Load ``program`` into ``nf``: IP sets first (the rules name them), then chains, the
    inserted jumps at the top of the kernel chains, the appended rules at their end."""
    cache = BuildCache() if cache is None else cache
    for name, (kind, members) in program.sets.sets.items():
        made = cache.sets.get(name)
        if made is None:
            made = cache.sets[name] = IpSet(name, kind)
            for member in members:
                made.add(member)
        nf.ipsets.adopt(made)
    for table, chains in program.chains.items():
        t = nf.table(table)
        for c in chains:
            t.new_chain(c.name)
        for c in chains:
            cache.fill(t[c.name], c)  # iptables-restore's checks of each rule
    for table, hooks in program.inserts.items():
        for hook, rules in hooks.items():
            for i, rule in enumerate(cache.chain_rules(FChain(hook, tuple(rules)))):
                nf.table(table)[hook].insert(i + 1, rule)
    for table, hooks in program.appends.items():
        for hook, rules in hooks.items():
            for rule in cache.chain_rules(FChain(hook, tuple(rules)), f"{hook}*appends*"):
                nf.table(table)[hook].append(rule)
    nf.policy_chains = POLICY_CHAINS
    nf.explain = program.explainer
