"""Which NetworkPolicy decided a probe, read from its trace -- never from a second evaluation.

Why from the trace
------------------
A reachability matrix is worth having offline only if each cell is what the packets did:
a policy engine evaluated beside the simulator could agree with itself and disagree with
felix's iptables.  So the deciding policy is read from the rules that fired on the probe's
own packets, as an operator reads ``iptables -L -v`` counters or Calico's flow logs:

* felix jumps from a workload's chain (``cali-tw-IFACE`` to the pod, ``cali-fw-IFACE`` from
  it) to one chain per policy and direction (``cali-pi-…``/``cali-po-…``, named by
  :func:`pktsim.felix.names.policy_chain`).  A policy **allowed** the packet when a rule of
  its chain set the accept mark (``--set-xmark 0x10000/0x10000``, ``MARK_ACCEPT``; felix
  ``rules/policy.go`` renders an allow as ``MARK --set-xmark`` then ``RETURN`` on the mark).
* A packet no policy passed is **dropped** by the workload chain's last rule, "End of tier
  default. DROP if no policies passed packet" (felix ``rules/endpoints.go``): a ``drop`` step
  with ``DropReason.POLICY`` whose deciding chain is ``cali-tw-``/``cali-fw-``.  That chain
  says the direction; which policies isolate the pod that way is the model's
  (``policies_selecting``), since none of them fired.

Chain names are mapped back to policies by computing the name of every model policy's chain
(felix's names are hashes past 28 characters, so they cannot be parsed).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pktsim.core.events import DropReason, Event, RuleHit, TraceEvent
from pktsim.felix.names import MARK_ACCEPT, policy_chain
from pktsim.model.policy import POLICY_TYPES, NetworkPolicy

ACCEPT_MARK = f"--set-xmark {MARK_ACCEPT:#x}/{MARK_ACCEPT:#x}"  # 0x10000/0x10000
TO_WORKLOAD = "cali-tw-"  # ingress: the chain of traffic to a pod
FROM_WORKLOAD = "cali-fw-"  # egress: the chain of traffic from a pod


@dataclass(frozen=True, slots=True)
class Denial:
    """A policy drop: the direction its chain stands for and the chain itself."""

    direction: str  # "Ingress" | "Egress" | "" (a policy drop in a chain of no workload)
    chain: str
    host: str


@dataclass(frozen=True, slots=True)
class Decision:
    """What a probe's trace says about policy: who allowed it, and the drop if denied."""

    allowed_by: tuple[tuple[str, str], ...] = ()  # (direction, policy key), first seen first
    denial: Denial | None = None


def policy_chains(policies: Iterable[NetworkPolicy]) -> dict[str, tuple[str, str]]:
    """Chain name -> (direction, policy key), for each direction of each policy."""
    return {policy_chain(direction, p.namespace, p.name): (direction, p.key)
            for p in policies for direction in POLICY_TYPES}


def _hit(text: str) -> tuple[str, str]:
    """``CHAIN #N: -A CHAIN …`` (a ``RuleHit.hits`` entry) -> (chain, rule)."""
    head, _, rule = text.partition(": ")
    return head.rsplit(" #", 1)[0], rule


def _rule_hits(event: TraceEvent) -> Iterable[str]:
    rule = event.rule
    return rule.hits if rule is not None else ()


def _denial(event: TraceEvent) -> Denial | None:
    """A drop of the policy kind (``POLICY``; a ``RULE`` drop in a workload chain too, the
    same rule under the reason netfilter gives any DROP), with its direction."""
    if event.event is not Event.DROP:
        return None
    rule: RuleHit | None = event.rule
    chain = rule.chain if rule is not None else ""
    workload = chain.startswith((TO_WORKLOAD, FROM_WORKLOAD))
    reason = event.drop_reason
    if reason is not DropReason.POLICY and not (reason is DropReason.RULE and workload):
        return None
    direction = "Ingress" if chain.startswith(TO_WORKLOAD) else \
        "Egress" if chain.startswith(FROM_WORKLOAD) else ""
    return Denial(direction, chain, event.host)


def decide(events: Iterable[TraceEvent], chains: dict[str, tuple[str, str]]) -> Decision:
    """The policy facts of one probe's events (``chains`` from :func:`policy_chains`).

    Every rule that fired counts, on every host: the egress side fires on the source's
    node, the ingress side on the destination's (both in one walk on a single node).
    """
    allowed: dict[tuple[str, str], None] = {}
    denial = None
    for event in events:
        for text in _rule_hits(event):
            chain, rule = _hit(text)
            if chain in chains and ACCEPT_MARK in rule:
                allowed.setdefault(chains[chain])
        if denial is None:
            denial = _denial(event)
    return Decision(tuple(allowed), denial)
