"""Kubernetes' NetworkPolicy e2e truth tables, transcribed as data.

Source: kubernetes ``test/e2e/network/netpol/network_policy.go`` (read at commit
008b3652959ca58af8be3fb5b6ecfe9ae7638282), with ``model.go`` (namespaces labelled
``ns: <name>``, pods ``pod: <name>``, one container ``cont-<port>-<proto>`` per port and
protocol with the port named ``serve-<port>-<proto>``), ``policies.go``
(``GenNetworkPolicyWithNameAndPodMatchLabel``, ``SetSpecIngressRules``/``SetSpecEgressRules``,
which append their policy type) and ``reachability.go`` (see ``reachability.py``).

Each :class:`Case` is one state of an upstream ``f.It``: its name, the pods it creates
(``initializeResources(..., "x/a", ...)``), the policies then in force as Kubernetes YAML
dicts, and each ``ValidateOrFail`` probe with its reachability steps as upstream writes them.
A test that updates policies or labels gives one case per state (``stage``).  Upstream keeps
the generated namespace names apart from x, y, z; here they are x, y, z, with the
``kubernetes.io/metadata.name`` label the API server sets.  The SCTP contexts are left out
(pktsim does not model SCTP); the TCP tests that name SCTP in a policy are in.

An ipBlock holds ``{ip:NS/POD}`` (that pod's IP) or ``{large:NS/POD}`` (upstream's
``makeLargeCIDRForIP``: the /4 holding it), filled in by :func:`policies_for`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from ipaddress import IPv4Address, IPv4Network
from typing import Any

import yaml

from tests.netpol.reachability import (
    Expect,
    ExpectAllEgress,
    ExpectAllIngress,
    ExpectPeer,
    Reachability,
)
from tests.netpol.shapes import (
    ALL_PODS,
    NAMESPACES,
    NS_NAME,
    PORTS,
    PROTOCOLS,
    UDP_CONTEXT,
    Case,
    Probe,
    expr,
    labels,
    peer,
    policy,
    tcp,
    udp,
)

# Steps are frozen, so they can be shared; policy fragments are made afresh by functions.
DENY_INGRESS_X = ExpectPeer(peer(), peer("x"), False)  # (&Peer{}, &Peer{Namespace: nsX})
DENY_EGRESS_X = ExpectPeer(peer("x"), peer(), False)
NOT_FROM_X_OR_Z = (ExpectPeer(peer("x"), peer("x", "a"), False),
                   ExpectPeer(peer("z"), peer("x", "a"), False))
STACK_ALLOW = (ExpectPeer(peer("x"), peer("x", "a"), False),
               ExpectPeer(peer("y"), peer("x", "a"), True),
               ExpectPeer(peer("z"), peer("x", "a"), False))


def pod_a() -> dict[str, Any]:
    return labels(pod="a")


def ns_is(name: str) -> dict[str, Any]:
    """``MatchLabels: {namespaceLabelKey: nsY}``."""
    return {"matchLabels": {NS_NAME: name}}


def not_x() -> dict[str, Any]:
    return expr(NS_NAME, "NotIn", "x")


def with_y_pod_a(key: str) -> list[dict[str, Any]]:
    """One rule whose ``from``/``to`` is ``{namespaceSelector: ns=y, podSelector: pod=a}``."""
    return [{key: [{"namespaceSelector": ns_is("y"), "podSelector": pod_a()}]}]


def from_y_on(port: int | str, protocol: str = "TCP") -> list[dict[str, Any]]:
    return [{"from": [{"namespaceSelector": ns_is("y")}],
             "ports": [{"port": port, "protocol": protocol}]}]


def except_x_b() -> dict[str, Any]:
    return policy("allow-client-a-via-cidr-egress-rule", pod_a(), egress=[
        {"to": [{"ipBlock": {"cidr": "{large:x/b}", "except": ["{ip:x/b}/32"]}}]}])


def deny_all_x() -> dict[str, Any]:
    return policy("deny-all", {}, ingress=[], egress=[])


def _selector_cases() -> list[Case]:
    """Ingress by pod or namespace selector alone."""
    return [
        Case("should support a 'default-deny-ingress' policy", ("x/a", "x/b", "y/a", "y/b"),
             (policy("deny-ingress", {}, ingress=[]),), (tcp(80, DENY_INGRESS_X),)),
        Case("should support a 'default-deny-all' policy", ("x/a", "x/b", "y/a"),
             (deny_all_x(),), (tcp(80, DENY_INGRESS_X, DENY_EGRESS_X),)),
        Case("should enforce policy to allow traffic from pods within server namespace based on "
             "PodSelector", ("x/a", "x/b", "x/c", "y/a"),
             (policy("x-a-allows-x-b", pod_a(),
                     ingress=[{"from": [{"podSelector": labels(pod="b")}]}]),),
             (tcp(80, ExpectAllIngress("x/a", False), Expect("x/b", "x/a", True)),)),
        Case("should enforce policy to allow ingress traffic for a target", ("x/a", "x/b", "y/a"),
             (policy("deny-all", {}, ingress=[]),
              policy("allow-all-to-a", pod_a(),
                     ingress=[{"from": [{"podSelector": {}, "namespaceSelector": {}}]}])),
             (tcp(80, ExpectAllIngress("x/a", True), ExpectAllIngress("x/b", False)),)),
        Case("should enforce policy to allow ingress traffic from pods in all namespaces",
             ("x/a", "x/b", "y/a", "z/a"),
             (policy("allow-from-another-ns", pod_a(),
                     ingress=[{"from": [{"namespaceSelector": labels()}]}]),),
             (tcp(80),)),
        Case("should enforce policy to allow traffic only from a different namespace, based on "
             "NamespaceSelector", ("x/a", "x/b", "y/a", "z/a"),
             (policy("allow-client-a-via-ns-selector", pod_a(),
                     ingress=[{"from": [{"namespaceSelector": ns_is("y")}]}]),),
             (tcp(80, *NOT_FROM_X_OR_Z),)),
        Case("should enforce policy based on PodSelector with MatchExpressions",
             ("x/a", "x/b", "y/a"),
             (policy("x-a-allows-x-b", pod_a(),
                     ingress=[{"from": [{"podSelector": expr("pod", "In", "b")}]}]),),
             (tcp(80, ExpectAllIngress("x/a", False), Expect("x/b", "x/a", True)),)),
        Case("should enforce policy based on NamespaceSelector with MatchExpressions",
             ("x/a", "x/b", "y/a", "z/a"),
             (policy("allow-ns-y-match-selector", pod_a(),
                     ingress=[{"from": [{"namespaceSelector": expr(NS_NAME, "In", "y")}]}]),),
             (tcp(80, *NOT_FROM_X_OR_Z),)),
    ]


def _combined_selector_cases() -> list[Case]:
    """Ingress by pod and namespace selectors together, or either."""
    return [
        Case("should enforce policy based on PodSelector or NamespaceSelector",
             ("x/a", "x/b", "x/c", "y/a"),
             (policy("allow-ns-y-match-selector", pod_a(), ingress=[{"from": [
                 {"namespaceSelector": not_x()}, {"podSelector": labels(pod="b")}]}]),),
             (tcp(80, Expect("x/a", "x/a", False), Expect("x/c", "x/a", False)),)),
        Case("should enforce policy based on PodSelector and NamespaceSelector",
             ("x/a", "x/b", "y/a", "y/b", "z/b"),
             (policy("allow-ns-y-podselector-and-nsselector", pod_a(), ingress=[{"from": [
                 {"namespaceSelector": not_x(), "podSelector": labels(pod="b")}]}]),),
             (tcp(80, ExpectAllIngress("x/a", False), Expect("y/b", "x/a", True),
                  Expect("z/b", "x/a", True)),)),
        Case("should enforce policy based on Multiple PodSelectors and NamespaceSelectors",
             ("x/a", "x/b", "y/a", "y/b", "y/c"),
             (policy("allow-ns-y-z-pod-b-c", pod_a(), ingress=[{"from": [
                 {"namespaceSelector": not_x(), "podSelector": expr("pod", "In", "b", "c")}]}]),),
             (tcp(80, ExpectPeer(peer("x"), peer("x", "a"), False),
                  Expect("y/a", "x/a", False)),)),
        Case("should enforce policy based on any PodSelectors", ("x/a", "x/b", "x/c"),
             (policy("allow-ns-x-pod-b-c", pod_a(), ingress=[{"from": [
                 {"podSelector": labels(pod="b")}, {"podSelector": labels(pod="c")}]}]),),
             (tcp(80, ExpectAllIngress("x/a", False), Expect("x/b", "x/a", True),
                  Expect("x/c", "x/a", True)),)),
        Case("should enforce policy to allow traffic only from a pod in a different namespace "
             "based on PodSelector and NamespaceSelector", ("x/a", "x/b", "y/a", "y/b", "z/a"),
             (policy("allow-ns-y-pod-a-via-namespace-pod-selector", pod_a(),
                     ingress=with_y_pod_a("from")),),
             (tcp(80, ExpectAllIngress("x/a", False), Expect("y/a", "x/a", True)),)),
    ]


def _port_cases() -> list[Case]:
    """Ports, named ports, and tests that change policies."""
    return [
        Case("should enforce policy based on Ports", ("x/a", "x/b", "y/a", "y/b", "z/a"),
             (policy("allow-client-a-via-ns-selector", pod_a(), ingress=from_y_on(81)),),
             (tcp(81, *STACK_ALLOW),)),
        Case("should enforce multiple, stacked policies with overlapping podSelectors",
             ("x/a", "x/b", "y/a", "y/b", "z/a"),
             (policy("allow-client-a-via-ns-selector", pod_a(), ingress=from_y_on(81)),),
             (tcp(81, *STACK_ALLOW), tcp(80, ExpectAllIngress("x/a", False))),
             stage="port 81 allowed"),
        Case("should enforce multiple, stacked policies with overlapping podSelectors",
             ("x/a", "x/b", "y/a", "y/b", "z/a"),
             (policy("allow-client-a-via-ns-selector", pod_a(), ingress=from_y_on(81)),
              policy("allow-client-a-via-ns-selector-80", pod_a(), ingress=from_y_on(80))),
             (tcp(80, *STACK_ALLOW),), stage="port 80 unblocked"),
        Case("should support allow-all policy", ("x/a", "x/b", "y/a"),
             (policy("allow-all", labels(), ingress=[{}]),),
             (tcp(80), tcp(81))),
        Case("should allow ingress access on one named port", ("x/a", "x/b", "y/a"),
             (policy("allow-all", labels(), ingress=[{"ports": [{"port": "serve-81-tcp"}]}]),),
             (tcp(81), tcp(80, DENY_INGRESS_X))),
        Case("should allow ingress access from namespace on one named port",
             ("x/a", "x/b", "y/a", "z/a"),
             (policy("allow-client-a-via-ns-selector-80", pod_a(), ingress=[
                 {"from": [{"namespaceSelector": ns_is("y")}],
                  "ports": [{"port": "serve-80-tcp", "protocol": "TCP"}]}]),),
             (tcp(80, *NOT_FROM_X_OR_Z), tcp(81, ExpectAllIngress("x/a", False)))),
        Case("should allow egress access on one named port", ("x/a", "y/a"),
             (policy("allow-egress", labels(), egress=[{"ports": [{"port": "serve-80-tcp"}]}]),),
             (tcp(80), tcp(81, DENY_EGRESS_X))),
        Case("should enforce updated policy", ("x/a", "y/a"),
             (policy("allow-all-mutate-to-deny-all", labels(), ingress=[{}]),),
             (tcp(81),), stage="allow all"),
        Case("should enforce updated policy", ("x/a", "y/a"),
             (policy("allow-all-mutate-to-deny-all", labels(), ingress=[]),),
             (tcp(81, DENY_INGRESS_X),), stage="updated to deny all"),
    ]


def _label_cases() -> list[Case]:
    """Tests that change labels; egress."""
    return [
        Case("should allow ingress access from updated namespace", ("x/a", "y/a"),
             (policy("allow-client-a-via-ns-selector", pod_a(),
                     ingress=[{"from": [{"namespaceSelector": labels(ns2="updated")}]}]),),
             (tcp(80, ExpectAllIngress("x/a", False)),), stage="before the label"),
        Case("should allow ingress access from updated namespace", ("x/a", "y/a"),
             (policy("allow-client-a-via-ns-selector", pod_a(),
                     ingress=[{"from": [{"namespaceSelector": labels(ns2="updated")}]}]),),
             (tcp(80, ExpectAllIngress("x/a", False), ExpectPeer(peer("y"), peer(), True)),),
             stage="y labelled ns2=updated", namespace_labels={"y": {"ns2": "updated"}}),
        Case("should allow ingress access from updated pod", ("x/a", "x/b"),
             (policy("allow-client-a-via-pod-selector", pod_a(), ingress=[
                 {"from": [{"podSelector": labels(pod="b", pod2="updated")}]}]),),
             (tcp(80, ExpectAllIngress("x/a", False)),), stage="before the label"),
        Case("should allow ingress access from updated pod", ("x/a", "x/b"),
             (policy("allow-client-a-via-pod-selector", pod_a(), ingress=[
                 {"from": [{"podSelector": labels(pod="b", pod2="updated")}]}]),),
             (tcp(80, ExpectAllIngress("x/a", False), Expect("x/b", "x/a", True)),),
             stage="x/b labelled pod2=updated", pod_labels={"x/b": {"pod2": "updated"}}),
        Case("should deny ingress from pods on other namespaces", ("x/a", "x/b", "y/a", "z/a"),
             (policy("deny-empty-policy", {}, ingress=[{"from": [{"podSelector": labels()}]}]),),
             (tcp(80, ExpectPeer(peer("y"), peer("x"), False),
                  ExpectPeer(peer("z"), peer("x"), False)),)),
        Case("should deny ingress access to updated pod", ("x/a", "y/a"),
             (policy("deny-ingress-via-label-selector", labels(target="isolated"), ingress=[]),),
             (tcp(80),), stage="before the label"),
        Case("should deny ingress access to updated pod", ("x/a", "y/a"),
             (policy("deny-ingress-via-label-selector", labels(target="isolated"), ingress=[]),),
             (tcp(80, ExpectAllIngress("x/a", False)),), stage="x/a labelled target=isolated",
             pod_labels={"x/a": {"target": "isolated"}}),
        Case("should deny egress from pods based on PodSelector", ("x/a", "x/b", "y/a"),
             (policy("deny-egress-pod-a", pod_a(), egress=[]),),
             (tcp(80, ExpectAllEgress("x/a", False)),)),
        Case("should deny egress from all pods in a namespace", ("x/a", "x/b", "y/a"),
             (policy("deny-egress-ns-x", {}, egress=[]),), (tcp(80, DENY_EGRESS_X),)),
    ]


def _egress_cases() -> list[Case]:
    """Client-side egress, protocols, stacked and deleted policies."""
    return [
        Case("should work with Ingress, Egress specified together", ("x/a", "x/b", "x/c", "y/a"),
             (policy("allow-client-a-via-pod-selector", pod_a(),
                     ingress=[{"from": [{"podSelector": labels(pod="b")}]}],
                     egress=[{"ports": [{"port": 80}]}], types=["Egress", "Ingress"]),),
             (tcp(80, ExpectAllIngress("x/a", False), Expect("x/b", "x/a", True)),
              tcp(81, ExpectAllIngress("x/a", False), ExpectAllEgress("x/a", False),
                  Expect("x/b", "x/a", True)))),
        Case("should support denying of egress traffic on the client side (even if the server "
             "explicitly allows this traffic)", ("x/a", "y/a", "y/b"),
             (policy("allow-to-ns-y-pod-a", pod_a(), egress=with_y_pod_a("to")),
              *(policy(name, labels(pod=pod), namespace="y", ingress=[{"from": [
                  {"namespaceSelector": {"matchLabels": {NS_NAME: "x"}}, "podSelector": pod_a()}]}])
                for name, pod in (("allow-from-xa-on-ya-match-selector", "a"),
                                  ("allow-from-xa-on-yb-match-selector", "b")))),
             (tcp(80, ExpectPeer(peer("x", "a"), peer(), False),
                  ExpectPeer(peer(), peer("y", "a"), False),
                  ExpectPeer(peer("x", "a"), peer("y", "a"), True),
                  ExpectPeer(peer(), peer("y", "b"), False)),)),
        Case("should enforce egress policy allowing traffic to a server in a different namespace "
             "based on PodSelector and NamespaceSelector", ("x/a", "y/a", "y/b"),
             (policy("allow-to-ns-y-pod-a", pod_a(), egress=with_y_pod_a("to")),),
             (tcp(80, ExpectAllEgress("x/a", False), Expect("x/a", "y/a", True)),)),
        Case("should enforce ingress policy allowing any port traffic to a server on a specific "
             "protocol", ("x/a", "y/a"),
             (policy("allow-ingress-by-proto", pod_a(),
                     ingress=[{"ports": [{"protocol": "TCP"}]}]),),
             (tcp(80), udp(80, ExpectPeer(peer(), peer("x", "a"), False)))),
        Case("should enforce multiple ingress policies with ingress allow-all policy taking "
             "precedence", ("x/a", "y/a"),
             (policy("allow-ingress-port-80", labels(), ingress=[{"ports": [{"port": 80}]}]),),
             (tcp(81, DENY_INGRESS_X),), stage="port 80 only"),
        Case("should enforce multiple ingress policies with ingress allow-all policy taking "
             "precedence", ("x/a", "y/a"),
             (policy("allow-ingress-port-80", labels(), ingress=[{"ports": [{"port": 80}]}]),
              policy("allow-ingress", labels(), ingress=[{}])),
             (tcp(81),), stage="all ports allowed"),
        Case("should enforce multiple egress policies with egress allow-all policy taking "
             "precedence", ("x/a", "y/a"),
             (policy("allow-egress-port-80", labels(), egress=[{"ports": [{"port": 80}]}]),),
             (tcp(81, DENY_EGRESS_X),), stage="port 80 only"),
        Case("should enforce multiple egress policies with egress allow-all policy taking "
             "precedence", ("x/a", "y/a"),
             (policy("allow-egress-port-80", labels(), egress=[{"ports": [{"port": 80}]}]),
              policy("allow-egress", labels(), egress=[{}])),
             (tcp(81),), stage="all ports allowed"),
        Case("should stop enforcing policies after they are deleted", ("x/a", "y/a"),
             (deny_all_x(),), (tcp(80, DENY_EGRESS_X, DENY_INGRESS_X),), stage="deny all"),
    ]


def _cidr_cases() -> list[Case]:
    """ipBlocks and independent ingress/egress."""
    return [
        Case("should stop enforcing policies after they are deleted", ("x/a", "y/a"),
             (), (tcp(80),), stage="policies deleted"),
        Case("should allow egress access to server in CIDR block", ("x/a", "y/a", "y/b"),
             (policy("allow-client-a-via-cidr-egress-rule", pod_a(),
                     egress=[{"to": [{"ipBlock": {"cidr": "{ip:y/b}/32"}}]}]),),
             (tcp(80, ExpectAllEgress("x/a", False), Expect("x/a", "y/b", True)),)),
        Case("should enforce except clause while egress access to server in CIDR block",
             ("x/a", "x/b", "x/c"), (except_x_b(),), (tcp(80, Expect("x/a", "x/b", False)),)),
        Case("should ensure an IP overlapping both IPBlock.CIDR and IPBlock.Except is allowed",
             ("x/a", "x/b", "x/c"), (except_x_b(),), (tcp(80, Expect("x/a", "x/b", False)),),
             stage="except x/b"),
        Case("should ensure an IP overlapping both IPBlock.CIDR and IPBlock.Except is allowed",
             ("x/a", "x/b", "x/c"),
             (policy("allow-client-a-via-cidr-egress-rule", pod_a(),
                     egress=[{"to": [{"ipBlock": {"cidr": "{ip:x/b}/32"}}]}]),),
             (tcp(80, ExpectAllEgress("x/a", False), Expect("x/a", "x/b", True)),),
             stage="updated to allow x/b"),
    ]


def _protocol_cases() -> list[Case]:
    """SCTP and UDP named in TCP tests, default ns label, the UDP context."""
    return [
        Case("should enforce policies to check ingress and egress policies can be controlled "
             "independently based on PodSelector", ("x/a", "x/b", "y/a"),
             (policy("allow-egress-for-target", pod_a(), egress=[{}]),),
             (tcp(80),), stage="egress allowed"),
        Case("should enforce policies to check ingress and egress policies can be controlled "
             "independently based on PodSelector", ("x/a", "x/b", "y/a"),
             (policy("allow-egress-for-target", pod_a(), egress=[{}]),
              policy("deny-ingress-via-label-selector", pod_a(), ingress=[])),
             (tcp(80, ExpectAllIngress("x/a", False)),), stage="ingress denied"),
        Case("should not mistakenly treat 'protocol: SCTP' as 'protocol: TCP', even if the plugin "
             "doesn't support SCTP", ("x/a", "y/a"),
             (policy("deny-ingress", {}, ingress=[]),
              policy("allow-only-sctp-ingress-on-port-81", pod_a(),
                     ingress=[{"ports": [{"port": 81, "protocol": "SCTP"}]}])),
             (tcp(81, DENY_INGRESS_X),)),
        Case("should properly isolate pods that are selected by a policy allowing SCTP, even if "
             "the plugin doesn't support SCTP", ("x/a", "y/a"),
             (policy("allow-only-sctp-ingress-on-port-80", pod_a(),
                     ingress=[{"ports": [{"port": 80, "protocol": "SCTP"}]}]),),
             (tcp(81, ExpectAllIngress("x/a", False)),)),
        Case("should not allow access by TCP when a policy specifies only UDP", ("x/a", "y/a"),
             (policy("allow-only-udp-ingress-on-port-81", pod_a(),
                     ingress=[{"ports": [{"port": 81, "protocol": "UDP"}]}]),),
             (tcp(81, ExpectAllIngress("x/a", False)),)),
        Case("should enforce policy to allow traffic based on NamespaceSelector with MatchLabels "
             "using default ns label", ("x/a", "x/b", "y/a", "z/a"),
             (policy("allow-client-a-via-ns-selector-for-immutable-ns-label", pod_a(),
                     ingress=[{"from": [{"namespaceSelector": ns_is("y")}]}]),),
             (tcp(80, *NOT_FROM_X_OR_Z),)),
        Case("should enforce policy based on NamespaceSelector with MatchExpressions using default "
             "ns label", ("x/a", "x/b", "y/a", "z/a"),
             (policy("allow-ns-y-match-selector-for-immutable-ns-label", pod_a(), egress=[
                 {"to": [{"namespaceSelector": expr(NS_NAME, "NotIn", "y")}]}]),),
             (tcp(80, ExpectPeer(peer("x", "a"), peer("y"), False)),)),
        Case("should support a 'default-deny-ingress' policy", ("x/a", "x/b", "y/a", "y/b"),
             (policy("deny-all", {}, ingress=[]),), (udp(80, DENY_INGRESS_X),),
             context=UDP_CONTEXT),
        Case("should enforce policy based on Ports", ("x/a", "x/b", "y/a", "z/a"),
             (policy("allow-ingress-on-port-81-ns-x", pod_a(), ingress=from_y_on(81, "UDP")),),
             (udp(81, *NOT_FROM_X_OR_Z),), context=UDP_CONTEXT),
        Case("should enforce policy to allow traffic only from a pod in a different namespace "
             "based on PodSelector and NamespaceSelector", ("x/a", "x/b", "y/a"),
             (policy("allow-ns-y-pod-a-via-namespace-pod-selector", pod_a(),
                     ingress=with_y_pod_a("from")),),
             (udp(80, ExpectAllIngress("x/a", False), Expect("y/a", "x/a", True)),),
             context=UDP_CONTEXT),
    ]


def cases() -> list[Case]:
    """Every transcribed case, in upstream's order, built afresh."""
    return [*_selector_cases(), *_combined_selector_cases(), *_port_cases(), *_label_cases(),
            *_egress_cases(), *_cidr_cases(), *_protocol_cases()]


def expectations(case: Case) -> list[tuple[Probe, dict[tuple[str, str], bool]]]:
    """Each probe of ``case`` with upstream's expected ``(from, to) -> connected`` matrix over
    ``case.pods``, a pod to itself left out as upstream does (``ignoreLoopback``)."""
    out = []
    for probe in case.probes:
        table = Reachability.built(case.pods, probe.steps).expected
        out.append((probe, {pair: ok for pair, ok in table.items() if pair[0] != pair[1]}))
    return out


def policies_for(case: Case, ips: Mapping[str, IPv4Address]) -> list[dict[str, Any]]:
    """The case's policies with ``{ip:NS/POD}`` and ``{large:NS/POD}`` filled in."""
    def fill(match: re.Match[str]) -> str:
        ip = ips[match.group(2)]
        if match.group(1) == "ip":
            return str(ip)
        return str(IPv4Network(f"{ip}/4", strict=False))  # makeLargeCIDRForIP

    text = yaml.safe_dump(list(case.policies))
    return list(yaml.safe_load(re.sub(r"\{(ip|large):([a-z]/[a-z])\}", fill, text)))


def pod_ip(pod: str) -> tuple[str, IPv4Address]:
    """The node (alternating over node-1, node-2) and the address pinned for ``pod``."""
    index = ALL_PODS.index(pod)
    return f"node-{index % 2 + 1}", IPv4Address(f"10.244.{index % 2}.{10 + index}")


def pod_doc(pod: str, extra_labels: Mapping[str, str]) -> dict[str, Any]:
    """A pod of upstream's model: label ``pod: NAME``, one container per port and protocol."""
    namespace, _, name = pod.partition("/")
    node, ip = pod_ip(pod)
    containers = [{"name": f"cont-{port}-{proto.lower()}", "image": "agnhost",
                   "ports": [{"containerPort": port, "protocol": proto,
                              "name": f"serve-{port}-{proto.lower()}"}]}
                  for port in PORTS for proto in PROTOCOLS]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace,
                         "labels": {"pod": name, **extra_labels}},
            "spec": {"nodeName": node, "containers": containers},
            "status": {"podIP": str(ip)}}


def scenario_yaml(case: Case, network: str = "calico") -> str:
    """The scenario of ``case``: a Cluster on ``network``, namespaces x/y/z labelled
    ``ns: NAME``, the 9 pods x/a ... z/c serving 80 and 81 over TCP and UDP (pinned to
    node-1/node-2 at ``pod_ip``), the case's labels and its policies.  All 9 pods exist;
    upstream's matrix covers ``case.pods`` (``expectations``), whose cells do not depend on
    the other pods."""
    docs: list[dict[str, Any]] = [
        {"apiVersion": "pktsim/v1alpha1", "kind": "Cluster", "metadata": {"name": "netpol"},
         "spec": {"network": network, "nodes": 2}}]
    for ns in NAMESPACES:
        docs.append({"apiVersion": "v1", "kind": "Namespace",
                     "metadata": {"name": ns,
                                  "labels": {"ns": ns, **case.namespace_labels.get(ns, {})}}})
    docs += [pod_doc(p, case.pod_labels.get(p, {})) for p in ALL_PODS]
    docs += policies_for(case, {p: pod_ip(p)[1] for p in ALL_PODS})
    return yaml.safe_dump_all(docs, sort_keys=False)
