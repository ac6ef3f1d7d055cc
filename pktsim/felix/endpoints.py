"""A node's workload endpoints as felix renders them: per-interface chains, dispatch, profiles.

Transcribed from calico ``felix/rules/endpoints.go`` (``WorkloadEndpointToIptablesChains``,
``endpointIptablesChain``, ``appendConntrackRules``, ``PolicyGroupToIptablesChains``) and
``felix/rules/dispatch.go`` (``WorkloadDispatchChains``, ``buildSingleDispatchChainTree``,
``sortAndDivideEndpointNamesToPrefixTree``).

``cali-tw-IFACE`` (to the workload: its ingress) and ``cali-fw-IFACE`` (from it: egress):
established and related packets are accepted first, invalid ones dropped; the accept and
pass marks are cleared; when policies select the endpoint in that direction, the tier
``default`` jumps to each (or to the chain of a group of policies with the same selector)
and returns as soon as one set the accept mark, else drops ("End of tier default"); then the
profiles (``kns.NAMESPACE`` allows everything, ``ksa.NAMESPACE.SA`` only carries labels)
decide, and a packet no profile accepted is dropped.  Policies are ordered as felix's
``PolKVLess`` orders policies of equal ``order`` (1000 for every Kubernetes policy): by
``name/namespace/kind``.
"""

from __future__ import annotations

from collections.abc import Sequence

from pktsim.felix.names import (
    DEFAULT_TIER,
    MARK_ACCEPT,
    MARK_PASS,
    endpoint_chain,
    group_chain,
    policy_chain,
    profile_chain,
)
from pktsim.felix.policy import policy_selector
from pktsim.felix.rules import (
    ACCEPT,
    DROP,
    RETURN,
    FChain,
    FRule,
    clear_mark,
    goto,
    jump,
    mark_clear,
    mark_set,
    set_mark,
)
from pktsim.felix.static import VXLAN_PORT
from pktsim.model.policy import NetworkPolicy

RETURN_STRIDE = 5  # PolicyGroupToIptablesChains: a RETURN every five jumps
WORKLOAD_PREFIX = {"Ingress": "cali-tw-", "Egress": "cali-fw-"}  # to / from the workload


def ordered(policies: Sequence[NetworkPolicy]) -> list[NetworkPolicy]:
    """``PolKVLess`` for equal order: ``name/namespace/kind`` as one string."""
    return sorted(policies, key=lambda p: f"{p.name}/{p.namespace}/KubernetesNetworkPolicy")


def groups(policies: list[NetworkPolicy]) -> list[list[NetworkPolicy]]:
    """``groupPolicies``: consecutive policies with the same selector share a group."""
    out: list[list[NetworkPolicy]] = []
    for p in policies:
        if out and policy_selector(out[-1][0]) == policy_selector(p):
            out[-1].append(p)
        else:
            out.append([p])
    return out


def group_chain_of(direction: str, group: list[NetworkPolicy]) -> FChain:
    """A group's own chain: jumps to its policies, a verdict check every five."""
    rules = []
    for i, p in enumerate(group):
        if i and i % RETURN_STRIDE == 0:
            rules.append(FRule((f"-m mark ! --mark 0/{MARK_PASS | MARK_ACCEPT:#x}",), RETURN,
                               ("Return on verdict",)))
        match = () if i % RETURN_STRIDE == 0 else (mark_clear(MARK_PASS | MARK_ACCEPT),)
        rules.append(FRule(match, jump(policy_chain(direction, p.namespace, p.name))))
    name = group_chain(direction, policy_selector(group[0]),
                       [(p.namespace, p.name) for p in group])
    return FChain(name, tuple(rules))


def workload_rules(direction: str, policies: list[NetworkPolicy],
                   profiles: list[str]) -> tuple[tuple[FRule, ...], list[FChain]]:
    """``cali-tw-``/``cali-fw-``'s rules for one interface, and the group chains they jump
    to: they do not depend on the interface, so every workload of a namespace that the
    same policies select has the same (``node_felix`` makes them once per build)."""
    rules = [FRule(("-m conntrack --ctstate RELATED,ESTABLISHED",), ACCEPT),
             FRule(("-m conntrack --ctstate INVALID",), DROP),
             FRule(action=clear_mark(MARK_ACCEPT | MARK_PASS))]
    if direction == "Egress":  # encapsulation from workloads could bypass egress policy
        rules += [FRule(("-p 17", f"-m multiport --destination-ports {VXLAN_PORT}"), DROP,
                        ("Drop VXLAN encapped packets originating in workloads",)),
                  FRule(("-p 4",), DROP,
                        ("Drop IPinIP encapped packets originating in workloads",))]
    extra: list[FChain] = []
    if policies:
        rules.append(FRule(action=clear_mark(MARK_PASS),
                           comments=(f"Start of tier {DEFAULT_TIER}",)))
        for group in groups(ordered(policies)):
            if len(group) > 1:
                chain = group_chain_of(direction, group)
                extra.append(chain)
                targets = [chain.name]
            else:
                targets = [policy_chain(direction, group[0].namespace, group[0].name)]
            for target in targets:
                rules += [FRule((mark_clear(MARK_PASS),), jump(target)),
                          FRule((mark_set(MARK_ACCEPT),), RETURN,
                                ("Return if policy accepted",))]
        rules.append(FRule((mark_clear(MARK_PASS),), DROP, (
            f"End of tier {DEFAULT_TIER}. Drop if no policies passed packet",)))
    for profile in profiles:
        rules += [FRule(action=jump(profile_chain(direction, profile))),
                  FRule((mark_set(MARK_ACCEPT),), RETURN, ("Return if profile accepted",))]
    rules.append(FRule(action=DROP, comments=("Drop if no profiles matched",)))
    return tuple(rules), extra


def profile_chains(profile: str) -> list[FChain]:
    """``ProfileToIptablesChains``: a namespace's profile allows all; a service account's
    has no rules (one comment-only rule)."""
    out = []
    for direction in ("Ingress", "Egress"):
        comment = f"Profile {profile} {direction.lower()}"
        rule = FRule(action=set_mark(MARK_ACCEPT)) if profile.startswith("kns.") else FRule()
        out.append(FChain(profile_chain(direction, profile), (rule.with_comment(comment),)))
    return out


def dispatch_chains(ifaces: list[str]) -> list[FChain]:
    """``cali-from-wl-dispatch`` and ``cali-to-wl-dispatch``, with one level of children
    per next character after the interfaces' common prefix."""
    names = sorted(set(ifaces))
    common = _common_prefix(names)
    by_prefix: dict[str, list[str]] = {}
    for name in names:
        by_prefix.setdefault(name[: len(common) + 1] if len(name) > len(common) else common,
                             []).append(name)
    end = FRule(action=DROP, comments=("Unknown interface",))
    chains = []
    for root, opt, pfx in (("cali-from-wl-dispatch", "--in-interface", "cali-fw-"),
                           ("cali-to-wl-dispatch", "--out-interface", "cali-tw-")):
        children, top = [], []
        for prefix, members in by_prefix.items():
            if len(members) > 1:
                child = f"{root}-{prefix[len(common):]}"
                top.append(FRule((f"{opt} {prefix}+",), goto(child)))
                children.append(FChain(child, tuple(
                    [FRule((f"{opt} {m}",), goto(endpoint_chain(pfx, m))) for m in members]
                    + [end])))
            else:
                top.append(FRule((f"{opt} {members[0]}",),
                                 goto(endpoint_chain(pfx, members[0]))))
        chains += [*children, FChain(root, (*top, end))]
    return chains


def _common_prefix(names: list[str]) -> str:
    """``stringutils.CommonPrefix``: the longest string every name starts with."""
    if not names:
        return ""
    first, last = min(names), max(names)
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    return first[:n]
