"""The shapes of a transcribed upstream NetworkPolicy e2e case (see ``upstream_cases.py``):
a :class:`Case`, its :class:`Probe`s, and builders that read as upstream's policy helpers
(kubernetes ``test/e2e/network/netpol/policies.go``) so a case can be checked against the
Go source line by line."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.netpol.reachability import PeerMatch, Step

NAMESPACES = ("x", "y", "z")
POD_NAMES = ("a", "b", "c")
ALL_PODS = tuple(f"{ns}/{p}" for ns in NAMESPACES for p in POD_NAMES)
PORTS = (80, 81)
PROTOCOLS = ("TCP", "UDP")
NS_NAME = "kubernetes.io/metadata.name"  # upstream namespaceLabelKey, v1.LabelMetadataName
SOURCE = "test/e2e/network/netpol/network_policy.go"
TCP_CONTEXT = "Netpol NetworkPolicy between server and client"
UDP_CONTEXT = "Netpol [LinuxOnly] NetworkPolicy between server and client using UDP"


@dataclass(frozen=True)
class Probe:
    """One ``ValidateOrFail(k8s, &TestCase{ToPort, Protocol, Reachability})``."""

    port: int
    protocol: str
    steps: tuple[Step, ...] = ()  # applied to NewReachability(pods, true)


@dataclass(frozen=True)
class Case:
    name: str  # the f.It text
    pods: tuple[str, ...]
    policies: tuple[dict[str, Any], ...]
    probes: tuple[Probe, ...]
    stage: str = ""  # which state of a test that changes policies or labels
    context: str = TCP_CONTEXT
    pod_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # AddPodLabels
    namespace_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.name} [{self.stage}]" if self.stage else self.name


def policy(name: str, selector: dict[str, Any], *, namespace: str = "x",
           ingress: list[Any] | None = None, egress: list[Any] | None = None,
           types: list[str] | None = None) -> dict[str, Any]:
    """``GenNetworkPolicyWithNameAnd...(name, selector, SetSpecIngressRules(...), ...)``:
    each setter given adds its rules (possibly none) and its policy type."""
    spec: dict[str, Any] = {"podSelector": selector}
    listed: list[str] = []
    if ingress is not None:
        spec["ingress"], listed = ingress, [*listed, "Ingress"]
    if egress is not None:
        spec["egress"], listed = egress, [*listed, "Egress"]
    spec["policyTypes"] = types or listed
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def labels(**pairs: str) -> dict[str, Any]:
    return {"matchLabels": dict(pairs)}


def expr(key: str, operator: str, *values: str) -> dict[str, Any]:
    return {"matchExpressions": [{"key": key, "operator": operator, "values": list(values)}]}


def peer(ns: str = "", pod: str = "") -> PeerMatch:
    return PeerMatch(ns, pod)


def tcp(port: int, *steps: Step) -> Probe:
    return Probe(port, "TCP", steps)


def udp(port: int, *steps: Step) -> Probe:
    return Probe(port, "UDP", steps)
