"""Addresses Kubernetes would never hand out, refused with both sides of the conflict named.

kube-controller-manager gives each node a pod CIDR from the cluster's and the host-local
IPAM plugin gives each pod an address of its node's CIDR other than the network address,
the gateway (the bridge, ``.1``) and the broadcast address; the API server's allocator
never gives one Service address twice, and kubeadm reserves the service CIDR's 10th address
for kube-dns.  A snapshot or a hand-written manifest can still say otherwise; so can a
Cluster whose CIDRs overlap.  Each such input is an error here, not a strange run.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from pktsim.errors import ScenarioError
from pktsim.model.objects import ClusterConfig, Node, Pod, Source


def _where(src: Source | None) -> str:
    return f"{src.file}: {src.document()}" if src is not None and src.file else "pktsim's " \
        "defaults"


def _err(src: Source | None, field_: str, value: object, message: str,
         valid: str) -> ScenarioError:
    return ScenarioError(message, file=src.file if src else "",
                         document=src.document() if src else "", field=field_, value=value,
                         valid=valid)


def config_conflicts(cfg: ClusterConfig) -> list[ScenarioError]:
    """The Cluster's own ranges that overlap: a LoadBalancer pool inside the pods' (the LB
    address would be a bridge's), the services' or the nodes' network."""
    errors = []
    ranges = [("podCIDR", cfg.pod_cidr), ("serviceCIDR", cfg.service_cidr),
              ("nodeCIDR", cfg.node_cidr)]
    for i, (name, net) in enumerate(ranges):
        for other, other_net in [*ranges[i + 1:], ("loadBalancerCIDR", cfg.load_balancer_cidr)]:
            if net.overlaps(other_net):
                errors.append(_err(cfg.source, f"spec.{other}", str(other_net),
                                   f"overlaps spec.{name} {net}", f"a range apart from {net}"))
    return errors


# What this machine (24 GB, shared) builds, measured with a DaemonSet on every node:
# routes and ipip 10,000 nodes in 1.2 GB; vxlan's per-peer neighbour and FDB entries are
# shared by all nodes (build/overlay.py ``share_vteps``), so it holds as many.
MAX_NODES = 10_000


def node_count_problem(cfg: ClusterConfig, nodes: list[Node]) -> ScenarioError | None:
    """More nodes than the node network or the pod CIDR's /24s can hold: one error, at the
    Cluster document (not one per node, nameless).  Nodes with their own InternalIP and
    podCIDR are checked one by one instead."""
    addresses = max(0, cfg.node_cidr.num_addresses - 3)  # network, router (.1), broadcast
    subnets = 2 ** max(0, 24 - cfg.pod_cidr.prefixlen) if cfg.pod_cidr.prefixlen <= 24 else 0
    count = len(nodes)
    if count > MAX_NODES:
        return _err(cfg.source, "spec.nodes", count, f"cannot hold {count:,} nodes",
                    f"at most {MAX_NODES:,} nodes")
    if any(n.internal_ip is None for n in nodes[addresses:]):
        return _err(cfg.source, "spec.nodeCIDR", str(cfg.node_cidr), f"holds {addresses} "
                    f"node addresses, not the {count} nodes of the scenario",
                    "a larger nodeCIDR or fewer nodes")
    if sum(n.pod_cidr is None for n in nodes) > subnets:
        return _err(cfg.source, "spec.podCIDR", str(cfg.pod_cidr), f"has {subnets} /24s for "
                    f"nodes, not the {count} nodes of the scenario",
                    "a larger podCIDR (a /16 holds 256 nodes) or fewer nodes")
    return None


def node_ip_problem(node: Node, ip: IPv4Address, cfg: ClusterConfig) -> ScenarioError | None:
    """A node InternalIP that is a Service's range, kube-dns's address or a pod's range."""
    field_ = "status.addresses[InternalIP]"
    dns = cfg.service_cidr.network_address + 10
    if ip == dns:
        return _err(node.source, field_, str(ip), "is kube-dns's ClusterIP (the 10th address "
                    f"of spec.serviceCIDR {cfg.service_cidr}, {_where(cfg.source)})",
                    "an address outside the service CIDR")
    for name, net in (("serviceCIDR", cfg.service_cidr), ("podCIDR", cfg.pod_cidr),
                      ("loadBalancerCIDR", cfg.load_balancer_cidr)):
        if ip in net:
            return _err(node.source, field_, str(ip), f"lies inside spec.{name} {net} "
                        f"({_where(cfg.source)})", f"an address outside {net}")
    return None


def pod_ip_problem(pod: Pod, cidr: IPv4Network, node: str) -> ScenarioError | None:
    """A pod address host-local never gives: the network, the gateway or the broadcast."""
    ip = pod.pod_ip
    if ip is None:
        return None
    names = {cidr.network_address: "the network address",
             cidr.network_address + 1: "the gateway (the bridge's address)",
             cidr.broadcast_address: "the broadcast address"}
    what = names.get(ip)
    if what is None:
        return None
    return _err(pod.source, "status.podIP", str(ip), f"is {what} of node {node}'s podCIDR "
                f"{cidr}", f"an address from {cidr.network_address + 2} to "
                f"{cidr.broadcast_address - 1}")


def duplicate_pod_ip(pod: Pod, first: Pod) -> ScenarioError:
    """Two pods with one address: the second is named, and where the first is."""
    return _err(pod.source, "status.podIP", str(pod.pod_ip), f"is also the address of pod "
                f"{first.key} ({_where(first.source)})", "a distinct podIP per pod")
