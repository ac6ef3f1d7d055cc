"""NetworkPolicy (networking.k8s.io/v1) as validated, defaulted data, and what it selects.

The loader (``pktsim.scenario.policies``) builds these from the manifests after validating
them as the API server does and applying ``SetDefaults_NetworkPolicy`` /
``SetDefaults_NetworkPolicyPort`` (kubernetes ``pkg/apis/networking/v1/defaults.go``), so a
consumer -- felix's iptables rendering, ``pktsim check``, a test oracle -- reads one shape
whatever the YAML left out: ``policy_types`` is always set, every port has a protocol.

Selectors follow apimachinery's label semantics (``pkg/labels/selector.go``,
``Requirement.Matches``; ``LabelSelectorAsSelector`` in ``pkg/apis/meta/v1/helpers.go``):
requirements are ANDed, ``NotIn`` and ``DoesNotExist`` match when the key is absent, and the
empty selector ``{}`` selects everything.

Which networks enforce policy is one function, :func:`enforces_policy`: kubenet (``routes``)
and flannel (``vxlan``, ``ipip``) do not implement NetworkPolicy at all, as on a real
cluster with those CNIs; Calico (``calico``) does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pktsim.model.objects import Pod, Source

OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")
POLICY_TYPES = ("Ingress", "Egress")
POLICY_PROTOCOLS = ("TCP", "UDP", "SCTP")
ENFORCING_NETWORKS = frozenset({"calico"})
ALL_PORTS = (0, 65535)


def enforces_policy(network: str) -> bool:
    """Whether the CNI of ``Cluster.spec.network`` implements NetworkPolicy.

    kubenet (``routes``) and flannel (``vxlan``, ``ipip``) have no policy engine: a policy is
    accepted by the API server and has no effect.  Calico's felix renders it into iptables.
    """
    return network in ENFORCING_NETWORKS


@dataclass(frozen=True, slots=True)
class Requirement:
    """One ``matchExpressions`` entry (apimachinery ``LabelSelectorRequirement``)."""

    key: str
    operator: str  # "In" | "NotIn" | "Exists" | "DoesNotExist"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """``labels.Requirement.Matches``: the negative operators hold for an absent key."""
        present = self.key in labels
        if self.operator == "In":
            return present and labels[self.key] in self.values
        if self.operator == "NotIn":
            return not present or labels[self.key] not in self.values
        if self.operator == "Exists":
            return present
        return not present  # DoesNotExist (validation admits no other operator)


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """A ``metav1.LabelSelector``: ``matchLabels`` and ``matchExpressions``, ANDed."""

    match_labels: tuple[tuple[str, str], ...] = ()  # sorted by key
    match_expressions: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy every matchLabels pair and every requirement."""
        return (all(labels.get(key) == value for key, value in self.match_labels)
                and all(req.matches(labels) for req in self.match_expressions))

    @property
    def empty(self) -> bool:
        """``{}``: selects everything (``LabelSelectorAsSelector`` gives ``Everything()``)."""
        return not self.match_labels and not self.match_expressions

    def text(self) -> str:
        """The selector as ``kubectl describe`` writes it: ``pod=a,ns notin (x)``."""
        parts = [f"{key}={value}" for key, value in self.match_labels]
        for req in self.match_expressions:
            if req.operator in ("Exists", "DoesNotExist"):
                parts.append(req.key if req.operator == "Exists" else f"!{req.key}")
            else:
                parts.append(f"{req.key} {req.operator.lower()} ({','.join(req.values)})")
        return ",".join(parts) or "{}"


Net = IPv4Network | IPv6Network


@dataclass(frozen=True, slots=True)
class IpBlock:
    """``ipBlock``: ``cidr`` minus each ``except`` (each strictly inside ``cidr``)."""

    cidr: Net
    except_: tuple[Net, ...] = ()

    def contains(self, ip: IPv4Address | IPv6Address) -> bool:
        """Whether ``ip`` is in the block (an IPv6 block never holds an IPv4 address)."""
        return (ip.version == self.cidr.version and ip in self.cidr
                and not any(ip in net for net in self.except_))


@dataclass(frozen=True, slots=True)
class Peer:
    """One ``from``/``to`` entry: an ``ip_block``, or one or both selectors.

    A ``pod_selector`` alone selects pods of the policy's namespace; a
    ``namespace_selector`` alone every pod of the selected namespaces; both, the selected
    pods of the selected namespaces (NetworkPolicyPeer in ``staging/src/k8s.io/api/
    networking/v1/types.go``).
    """

    pod_selector: LabelSelector | None = None
    namespace_selector: LabelSelector | None = None
    ip_block: IpBlock | None = None


@dataclass(frozen=True, slots=True)
class PolicyPort:
    """One ``ports`` entry; ``protocol`` already defaulted (``SetDefaults_NetworkPolicyPort``)."""

    protocol: str = "TCP"  # TCP | UDP | SCTP
    port: int | str | None = None  # None: every port; str: a named container port
    end_port: int | None = None  # only with an integer port: the range port..end_port


@dataclass(frozen=True, slots=True)
class PolicyRule:
    """An ingress or egress rule: traffic matching any peer AND any port is allowed."""

    peers: tuple[Peer, ...] = ()  # empty (or the field omitted): every peer
    ports: tuple[PolicyPort, ...] = ()  # empty: every port and protocol


@dataclass(frozen=True, slots=True)
class NetworkPolicy:
    """A validated, defaulted NetworkPolicy."""

    namespace: str
    name: str
    pod_selector: LabelSelector
    policy_types: tuple[str, ...]  # after defaulting, in the order ("Ingress", "Egress")
    ingress: tuple[PolicyRule, ...] = ()
    egress: tuple[PolicyRule, ...] = ()
    source: Source | None = None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def selects(self, namespace: str, labels: Mapping[str, str]) -> bool:
        """Whether the policy applies to a pod: same namespace, labels match podSelector."""
        return namespace == self.namespace and self.pod_selector.matches(labels)


def policies_selecting(policies: Iterable[NetworkPolicy], namespace: str,
                       labels: Mapping[str, str], direction: str) -> list[NetworkPolicy]:
    """The policies that isolate the pod in ``direction`` ("Ingress" or "Egress").

    A pod is isolated for a direction as soon as one policy selecting it has that policy
    type; its traffic that way is then allowed only by the union of those policies' rules.
    """
    return [p for p in policies
            if direction in p.policy_types and p.selects(namespace, labels)]


def resolve_port(port: PolicyPort, pod: Pod) -> tuple[int, int] | None:
    """The inclusive port range ``port`` allows on ``pod`` (for ``port.protocol``).

    Every port: ``(0, 65535)``; a number: ``(port, end_port or port)``; a name: the
    container port of that name and protocol on ``pod``, or None when the pod has none --
    the entry then matches nothing for that pod, as upstream (a named port is resolved
    against the destination pod's container ports).
    """
    if port.port is None:
        return ALL_PORTS
    if isinstance(port.port, int):
        return port.port, port.end_port if port.end_port is not None else port.port
    for container in pod.containers:
        for declared in container.ports:
            if declared.name == port.port and declared.protocol == port.protocol:
                return declared.port, declared.port
    return None
