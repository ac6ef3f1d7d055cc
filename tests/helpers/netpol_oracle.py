"""A reference evaluator of NetworkPolicy, independent of any iptables: the test oracle.

Written from the API's documented semantics (https://kubernetes.io/docs/concepts/
services-networking/network-policies/ and the field comments of ``NetworkPolicySpec`` in
kubernetes ``staging/src/k8s.io/api/networking/v1/types.go``), not from pktsim's own
policy code: it uses pktsim's policy dataclasses as plain data and does its own selector
matching, so a bug in ``pktsim.model.policy`` cannot hide here.

* A connection is allowed when the source's egress allows it AND the destination's ingress
  allows it; each side is checked only when that side is a pod.
* A pod is isolated for a direction when at least one policy of its namespace selects it
  and lists that policy type; it then accepts only what the union of those policies' rules
  of that direction allows.  A non-isolated pod allows everything that way.
* A rule allows a peer on a port when some peer entry matches (or it has none) and some port
  entry matches (or it has none).
* ``ipBlock`` matches by IP address, ``except`` carved out.  The API docs say ipBlock is
  meant for cluster-external addresses and leave its effect on pod IPs to the
  implementation; this oracle follows Calico, which matches a pod's IP against ipBlocks
  like any address (upstream's e2e ``should allow egress access to server in CIDR block``
  expects the same).
* A named port is resolved on the destination pod: the container port of that name and
  protocol; a destination without it (or outside the cluster) matches nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from pktsim.model.policy import LabelSelector, NetworkPolicy, Peer, PolicyPort, PolicyRule


@dataclass(frozen=True)
class Endpoint:
    """One end of a connection: a pod (``namespace`` set) or an address outside the cluster."""

    ip: IPv4Address
    namespace: str | None = None  # None: not a pod
    labels: Mapping[str, str] = field(default_factory=dict)
    ports: Sequence[tuple[str, int, str]] = ()  # container ports (name, number, protocol)

    @property
    def is_pod(self) -> bool:
        return self.namespace is not None


def allowed(policies: Sequence[NetworkPolicy], namespace_labels: Mapping[str, Mapping[str, str]],
            src: Endpoint, dst: Endpoint, port: int, protocol: str) -> bool:
    """Whether ``src`` may open a ``protocol`` connection to ``dst`` on ``port``."""
    return (_side_allows(policies, namespace_labels, src, "Egress", src, dst, port, protocol)
            and _side_allows(policies, namespace_labels, dst, "Ingress", src, dst, port,
                             protocol))


def _side_allows(policies: Sequence[NetworkPolicy],
                 namespace_labels: Mapping[str, Mapping[str, str]], pod: Endpoint,
                 direction: str, src: Endpoint, dst: Endpoint, port: int,
                 protocol: str) -> bool:
    """The verdict of ``pod``'s policies for ``direction`` (the other end is the peer)."""
    if not pod.is_pod:
        return True
    isolating = [p for p in policies if p.namespace == pod.namespace
                 and direction in p.policy_types and _matches(p.pod_selector, pod.labels)]
    if not isolating:
        return True
    peer = dst if direction == "Egress" else src
    for policy in isolating:
        rules = policy.egress if direction == "Egress" else policy.ingress
        if any(_rule_allows(rule, policy.namespace, namespace_labels, peer, dst, port,
                            protocol) for rule in rules):
            return True
    return False


def _rule_allows(rule: PolicyRule, policy_namespace: str,
                 namespace_labels: Mapping[str, Mapping[str, str]], peer: Endpoint,
                 dst: Endpoint, port: int, protocol: str) -> bool:
    ports_ok = not rule.ports or any(_port_matches(p, dst, port, protocol) for p in rule.ports)
    peers_ok = not rule.peers or any(
        _peer_matches(p, policy_namespace, namespace_labels, peer) for p in rule.peers)
    return ports_ok and peers_ok


def _peer_matches(entry: Peer, policy_namespace: str,
                  namespace_labels: Mapping[str, Mapping[str, str]], peer: Endpoint) -> bool:
    if entry.ip_block is not None:
        block = entry.ip_block
        inside = block.cidr.version == 4 and peer.ip in block.cidr
        return inside and not any(e.version == 4 and peer.ip in e for e in block.except_)
    if peer.namespace is None:
        return False  # selectors select pods only
    if entry.namespace_selector is None:
        ns_ok = peer.namespace == policy_namespace
    else:
        ns_ok = _matches(entry.namespace_selector, namespace_labels.get(peer.namespace, {}))
    pod_ok = entry.pod_selector is None or _matches(entry.pod_selector, peer.labels)
    return ns_ok and pod_ok


def _port_matches(entry: PolicyPort, dst: Endpoint, port: int, protocol: str) -> bool:
    if entry.protocol != protocol:
        return False
    if entry.port is None:
        return True
    if isinstance(entry.port, int):
        last = entry.end_port if entry.end_port is not None else entry.port
        return entry.port <= port <= last
    return any(name == entry.port and number == port and proto == protocol
               for name, number, proto in dst.ports)


def _matches(selector: LabelSelector, labels: Mapping[str, str]) -> bool:
    """Label selector semantics: every matchLabels pair and every expression must hold;
    ``NotIn`` and ``DoesNotExist`` hold when the key is absent; ``{}`` selects all."""
    for key, value in selector.match_labels:
        if labels.get(key) != value:
            return False
    for req in selector.match_expressions:
        has = req.key in labels
        ok = {"In": has and labels.get(req.key) in req.values,
              "NotIn": not has or labels.get(req.key) not in req.values,
              "Exists": has, "DoesNotExist": not has}[req.operator]
        if not ok:
            return False
    return True
