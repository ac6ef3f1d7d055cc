"""Which NetworkPolicy decided a probe, read from its trace -- never from a second evaluation.

A reachability matrix is worth having offline only if each cell is what the packets did:
a policy engine evaluated beside the simulator could agree with itself and disagree with
felix's iptables.  So the deciding policy is read from the probe's own trace: each walk of a
node's filter table through felix's endpoint chains (``cali-tw-IFACE`` to a pod, its
ingress; ``cali-fw-IFACE`` from it, its egress) leaves a ``policy`` step whose
``PolicyVerdict`` says, from the rules that fired (``pktsim.felix.verdicts``), which
policies isolate the pod in that direction and which policy's rule set the accept mark, or
that none did and felix's "End of tier default" rule dropped the packet.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pktsim.core.events import Event, PolicyVerdict, TraceEvent


@dataclass(frozen=True, slots=True)
class Denial:
    """A policy drop: the direction of the endpoint chain that dropped, and that chain."""

    direction: str  # "Ingress" | "Egress"
    chain: str
    host: str


@dataclass(frozen=True, slots=True)
class Decision:
    """What a probe's trace says about policy: who allowed it, and the drop if denied."""

    allowed_by: tuple[tuple[str, str], ...] = ()  # (direction, policy key), first seen first
    denial: Denial | None = None


def decide(events: Iterable[TraceEvent]) -> Decision:
    """The policy facts of one probe's events, on every host: the egress verdict is made
    on the source's node, the ingress one on the destination's (both in one walk on a
    single node); a retransmitted packet's verdicts count once."""
    allowed: dict[tuple[str, str], None] = {}
    denial = None
    for event in events:
        verdict = event.detail
        if event.event is not Event.POLICY or not isinstance(verdict, PolicyVerdict):
            continue
        if verdict.allowed and verdict.policy:
            allowed.setdefault((verdict.direction, verdict.policy))
        elif not verdict.allowed and denial is None:
            denial = Denial(verdict.direction, verdict.chain, event.host)
    return Decision(tuple(allowed), denial)
