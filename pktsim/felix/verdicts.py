"""The NetworkPolicy verdicts of one filter walk, read back from the rules that fired.

felix's chains decide, the trace explains: a walk through ``cali-fw-IFACE`` (egress of the
workload behind IFACE) or ``cali-tw-IFACE`` (its ingress) either accepted the packet as part
of a known connection (the chain's first rule: no verdict to report), returned with the
accept mark set by a policy rule (which policy, and which of its Kubernetes rules: the
iptables rule is mapped back to the rule it was rendered from), returned on the namespace
profile (no policy selects the pod), or dropped at "End of tier default" (the pod is
isolated and no rule allowed the packet).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pktsim.core.events import PolicyVerdict
from pktsim.netfilter.engine import Hit

ACCEPT_SET = "--set-xmark 0x10000/0x10000"
ENDPOINT_PREFIXES = ("cali-tw-", "cali-fw-")
POLICY_PREFIXES = ("cali-pi-", "cali-po-")


@dataclass(frozen=True, slots=True)
class Endpoint:
    pod: str
    direction: str
    selecting: tuple[str, ...]


@dataclass(slots=True)
class Explainer:
    """What felix knows about its chains, to name the policy behind a rule that fired."""

    endpoints: dict[str, Endpoint] = field(default_factory=dict)  # endpoint chain -> who
    policies: dict[str, str] = field(default_factory=dict)  # policy chain -> ns/name
    rule_of: dict[str, list[int]] = field(default_factory=dict)  # chain -> k8s rule per rule

    def __call__(self, hits: Sequence[Hit]) -> list[PolicyVerdict]:
        out: list[PolicyVerdict] = []
        current: Endpoint | None = None
        chain = ""
        allowed_by: tuple[str, int, str] | None = None
        for hit in hits:
            if hit.chain in self.endpoints and hit.chain != chain:
                current, chain, allowed_by = self.endpoints[hit.chain], hit.chain, None
                if hit.index == 1:  # RELATED,ESTABLISHED -j ACCEPT: a known connection
                    current = None
                continue
            if current is None:
                continue
            if hit.chain in self.policies and ACCEPT_SET in hit.text:
                rules = self.rule_of.get(hit.chain, [])
                number = rules[hit.index - 1] if hit.index <= len(rules) else 0
                allowed_by = (self.policies[hit.chain], number, hit.chain)
            elif hit.chain == chain and (verdict := self._end(hit, current, allowed_by)):
                out.append(verdict)
                current = None
        return out

    @staticmethod
    def _end(hit: Hit, ep: Endpoint,
             allowed_by: tuple[str, int, str] | None) -> PolicyVerdict | None:
        """The verdict an endpoint chain's rule gives, or None while the walk goes on."""
        if "Return if policy accepted" in hit.text and allowed_by is not None:
            policy, rule, chain = allowed_by
            return PolicyVerdict(ep.pod, ep.direction, True, ep.selecting, policy, rule, chain)
        if "Return if profile accepted" in hit.text:
            return PolicyVerdict(ep.pod, ep.direction, True, ep.selecting, chain=hit.chain)
        if "End of tier" in hit.text or "Drop if no profiles matched" in hit.text:
            return PolicyVerdict(ep.pod, ep.direction, False, ep.selecting, chain=hit.chain)
        return None
