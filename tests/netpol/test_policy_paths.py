"""Where on the wire NetworkPolicy acts, on ``network: calico``: an egress-denied packet never
leaves its node, an ingress-denied one reaches the destination's node and stops before the
pod's veth, traffic from the pod's own node is always allowed (felix's ``cali-OUTPUT``
returns for ``cali+``: Kubernetes lets the node reach its pods), and replies of an allowed
connection pass a pod isolated in both directions."""

from __future__ import annotations

import pktsim
from pktsim.core.events import DropReason, Event
from pktsim.devices.outcome import FlowStatus

SCENARIO = """
apiVersion: pktsim/v1alpha1
kind: Cluster
spec: {nodes: 2, network: calico}
---
apiVersion: v1
kind: Pod
metadata: {name: a, labels: {app: a}}
spec: {nodeName: node-1, containers: [{name: c, ports: [{containerPort: 8080}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: b, labels: {app: b}}
spec: {nodeName: node-2, containers: [{name: c, ports: [{containerPort: 8080}]}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a-no-egress}
spec: {podSelector: {matchLabels: {app: a}}, policyTypes: [Egress]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: b-isolated}
spec:
  podSelector: {matchLabels: {app: b}}
  policyTypes: [Ingress, Egress]
  ingress: [{from: [{podSelector: {matchLabels: {app: c}}}]}]
"""


def _run(*flows: tuple[str, str, str]) -> pktsim.Result:
    cluster = pktsim.load(SCENARIO)
    ips = {k: str(p.ip) for k, p in cluster.model.pods.items()}
    chosen = [pktsim.flow(src, f"{ips.get(dst, dst)}:8080", name=name)
              for name, src, dst in flows]
    return cluster.run(flows=chosen)


def test_egress_denied_never_leaves_its_node() -> None:
    result = _run(("out", "default/a", "default/b"))
    assert result.flows[0].status is not FlowStatus.OK
    drops = [e for e in result.events if e.event is Event.DROP]
    assert drops and {(e.host, e.drop_reason) for e in drops} == {("node-1",
                                                                   DropReason.POLICY)}
    assert not any(e.host == "node-2" for e in result.events if e.flow == "out")


def test_ingress_denied_reaches_the_node_and_stops_before_the_veth() -> None:
    result = _run(("in", "node:node-1", "default/b"))
    b = result.topology.model.pods["default/b"]
    hosts = {e.host for e in result.events if e.flow == "in"}
    assert "node-2" in hosts and "default/b" not in hosts
    drops = {(e.host, e.drop_reason) for e in result.events if e.event is Event.DROP}
    assert drops == {("node-2", DropReason.POLICY)}
    assert not any(e.iface == b.veth and e.event is Event.TX for e in result.events)


def test_the_pods_own_node_is_always_allowed() -> None:
    result = _run(("own-node", "node:node-2", "default/b"))
    assert result.flows[0].status is FlowStatus.OK  # b's ingress isolation does not apply


def test_replies_of_an_allowed_connection_pass_an_egress_isolated_pod() -> None:
    # b allows no egress at all, yet answers the connection its own node opened
    result = _run(("reply", "node:node-2", "default/b"))
    replies = [e for e in result.events if e.flow == "reply" and e.host == "default/b"
               and e.event is Event.TX]
    assert result.flows[0].status is FlowStatus.OK and replies


def test_an_ipv6_ipblock_allows_no_ipv4_packet() -> None:
    """felix ``FilterRuleToIPVersion``: a rule whose only net is IPv6 has no IPv4 form, so
    on IPv4 it allows nothing (and the pod it isolates stays isolated)."""
    extra = """
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: b-from-v6}
spec:
  podSelector: {matchLabels: {app: b}}
  ingress: [{from: [{ipBlock: {cidr: "fd00::/64"}}]}]
"""
    cluster = pktsim.load(SCENARIO + extra)
    result = cluster.run(flows=[pktsim.flow("node:node-1",
                                            f"{cluster.model.pods['default/b'].ip}:8080")])
    assert result.flows[0].status is not FlowStatus.OK
    assert any("b-from-v6: IPv6 ipBlocks" in w for w in cluster.scenario.warnings)
