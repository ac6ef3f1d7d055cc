"""The IPv6 half of the address plan of a cluster with the IPv6 family.

Theory of operation
-------------------
What the manifests give wins (a node's IPv6 ``spec.podCIDRs`` entry and ``InternalIP``, a
pod's IPv6 ``status.podIPs`` entry); the rest is decided as the components decide it:

* node *i* (in name order, as for IPv4) gets the *i*-th free ``/64`` of the cluster's IPv6
  pod CIDR: the node IPAM controller's CIDR set hands out ``--node-cidr-mask-size-ipv6``
  (64) subnets in order (``CidrSet.AllocateNext``, kubernetes
  ``pkg/controller/nodeipam/ipam/cidrset/cidr_set.go``), and its IPv6 InternalIP is
  ``nodeCIDR6 ::2``+*i*, as Docker's IPAM gives kind's nodes addresses of the kind network's
  IPv6 subnet in order after the gateway ``::1``;
* pods: host-local, one range per family (``plugins/ipam/host-local/backend/allocator``):
  the gateway is the range's first address, ``::1`` (``Range.Canonicalize``: ``Gateway =
  ip.NextIP(Subnet.IP)``), the first pod gets ``::2``, and a range ends at its last address
  (``lastIP`` leaves out the broadcast for IPv4 only); a pod whose status gives addresses
  keeps exactly those families; one created during the run takes the address after the
  last one reserved (``next_host_local6``).
"""

from __future__ import annotations

from collections.abc import Iterator
from ipaddress import IPv6Address, IPv6Network
from typing import TYPE_CHECKING

from pktsim.errors import ScenarioError
from pktsim.model.objects import ClusterConfig, Node, Pod, Source

if TYPE_CHECKING:
    from pktsim.model.cluster import ClusterModel, NodeInfo

NODE_MASK6 = 64  # --node-cidr-mask-size-ipv6's default (pktsim.scenario.cluster.NODE_MASK6)


def _err(src: Source | None, field_: str, value: object, message: str,
         valid: str) -> ScenarioError:
    return ScenarioError(message, file=src.file if src else "",
                         document=src.document() if src else "", field=field_, value=value,
                         valid=valid)


def node_subnets6(cfg: ClusterConfig) -> int:
    """How many node ``/64``s the cluster's IPv6 pod CIDR holds."""
    return 2 ** max(0, NODE_MASK6 - cfg.pod_cidr6.prefixlen) \
        if cfg.pod_cidr6.prefixlen <= NODE_MASK6 else 0


def node_count_problem6(cfg: ClusterConfig, nodes: list[Node]) -> ScenarioError | None:
    """More nodes than the IPv6 node network or pod CIDR holds: one error, at the Cluster."""
    if not cfg.has_ipv6:
        return None
    count = len(nodes)
    addresses = max(0, cfg.node_cidr6.num_addresses - 2)  # the subnet router ::, the gateway
    if sum(n.internal_ip6 is None for n in nodes) > addresses:
        return _err(cfg.source, "spec.nodeCIDR", str(cfg.node_cidr6), f"holds {addresses} "
                    f"IPv6 node addresses, not the {count} nodes of the scenario",
                    "a larger IPv6 nodeCIDR or fewer nodes")
    subnets = node_subnets6(cfg)
    if sum(n.pod_cidr6 is None for n in nodes) > subnets:
        return _err(cfg.source, "spec.podCIDR", str(cfg.pod_cidr6), f"has {subnets} "
                    f"/{NODE_MASK6}s for nodes, not the {count} nodes of the scenario",
                    "a larger IPv6 podCIDR (a /56 holds 256 nodes) or fewer nodes")
    return None


def _free_subnets(cfg: ClusterConfig, given: list[IPv6Network]) -> Iterator[IPv6Network]:
    if cfg.pod_cidr6.prefixlen > NODE_MASK6:
        return
    for subnet in cfg.pod_cidr6.subnets(new_prefix=NODE_MASK6):
        if not any(subnet.overlaps(g) for g in given):
            yield subnet


def allocate_nodes6(model: ClusterModel, nodes: list[Node], errors: list[ScenarioError]) -> None:
    """Each node's IPv6 InternalIP and pod CIDR (see the module), with the conflicts a
    manifest can make: an address twice, a CIDR outside the cluster's or overlapping."""
    cfg = model.config
    if not cfg.has_ipv6:
        return
    given = [n.pod_cidr6 for n in nodes if n.pod_cidr6 is not None]
    subnets = _free_subnets(cfg, given)
    owners: dict[IPv6Address, str] = {}
    cidrs: list[tuple[IPv6Network, str]] = []
    for index, node in enumerate(nodes):
        info = model.nodes.get(node.name)
        if info is None:
            continue
        ip = node.internal_ip6 or cfg.node_cidr6.network_address + 2 + index
        first = owners.setdefault(ip, node.name)
        if first != node.name:
            errors.append(_err(node.source, "status.addresses[InternalIP]", str(ip),
                               f"is also node {first}'s address", "a distinct InternalIP "
                               "per node"))
        for name, net in (("serviceCIDR", cfg.service_cidr6), ("podCIDR", cfg.pod_cidr6)):
            if ip in net:
                errors.append(_err(node.source, "status.addresses[InternalIP]", str(ip),
                                   f"lies inside the cluster's IPv6 {name} {net}",
                                   f"an address outside {net}"))
        cidr = node.pod_cidr6 or next(subnets, None)
        if cidr is None:
            errors.append(_err(node.source, "spec.podCIDRs", None, "the cluster's IPv6 "
                               f"podCIDR {cfg.pod_cidr6} has no /{NODE_MASK6} left for this "
                               "node", "a larger Cluster.spec.podCIDR"))
            continue
        if node.pod_cidr6 is not None:
            errors += _cidr6_problems(node, cidr, cfg, cidrs)
            cidrs.append((cidr, node.name))
        info.ip6, info.pod_cidr6 = ip, cidr


def _cidr6_problems(node: Node, cidr: IPv6Network, cfg: ClusterConfig,
                    taken: list[tuple[IPv6Network, str]]) -> list[ScenarioError]:
    """A given IPv6 pod CIDR: inside the cluster's, room for a pod, apart from the others
    given (the ones allocated keep clear of every given one)."""
    out = []
    if not cidr.subnet_of(cfg.pod_cidr6):
        out.append(_err(node.source, "spec.podCIDRs", str(cidr), "lies outside the cluster's "
                        f"IPv6 podCIDR {cfg.pod_cidr6}", f"a subnet of {cfg.pod_cidr6}"))
    if cidr.prefixlen > 126:
        out.append(_err(node.source, "spec.podCIDRs", str(cidr), "is too small to allocate "
                        "from (host-local needs a /126 or larger)",
                        "a prefix length of 126 or less"))
    out += [_err(node.source, "spec.podCIDRs", str(cidr), f"overlaps node {name}'s {other}",
                 "non-overlapping pod CIDRs") for other, name in taken if cidr.overlaps(other)]
    return out


def reserved6(placed: list[tuple[Pod, str]], errors: list[ScenarioError]) -> dict[
        str, set[IPv6Address]]:
    """The IPv6 addresses pods' statuses give, per node; a second pod with one is refused."""
    owners: dict[IPv6Address, Pod] = {}
    out: dict[str, set[IPv6Address]] = {}
    for pod, node in placed:
        if pod.pod_ip6 is None or pod.host_network:
            continue
        first = owners.setdefault(pod.pod_ip6, pod)
        if first is not pod:
            where = f"{first.source.file}: {first.source.document()}" if first.source else \
                "pktsim's defaults"
            errors.append(_err(pod.source, "status.podIPs", str(pod.pod_ip6), "is also the "
                               f"address of pod {first.key} ({where})",
                               "a distinct podIP per pod"))
            continue
        out.setdefault(node, set()).add(pod.pod_ip6)
    return out


def wants_ipv6(cfg: ClusterConfig, pod: Pod) -> bool:
    """Whether the pod has an IPv6 address: the cluster's families, unless its status gives
    addresses without one (a pod made before the cluster turned dual-stack keeps one)."""
    return cfg.has_ipv6 and (not pod.families or "IPv6" in pod.families)


def pod_ip6(cfg: ClusterConfig, pod: Pod, info: NodeInfo, reserved: set[IPv6Address],
            cursor: dict[str, IPv6Address], errors: list[ScenarioError]) -> IPv6Address | None:
    """The pod's IPv6 address at build (see the module); None: none, or refused."""
    if pod.host_network:
        return info.ip6
    if not wants_ipv6(cfg, pod) or info.pod_cidr6 is None:
        return None
    cidr = info.pod_cidr6
    if pod.pod_ip6 is not None:
        problem = ("is outside node {node}'s IPv6 pod CIDR {cidr}" if pod.pod_ip6 not in cidr
                   else "is the subnet-router address of node {node}'s pod CIDR {cidr}"
                   if pod.pod_ip6 == cidr.network_address else "is the gateway (the "
                   "bridge's address) of node {node}'s pod CIDR {cidr}"
                   if pod.pod_ip6 == cidr.network_address + 1 else "")
        if problem:
            errors.append(_err(pod.source, "status.podIPs", str(pod.pod_ip6),
                               problem.format(node=info.name, cidr=cidr), "an address from "
                               f"{cidr.network_address + 2} to {cidr.broadcast_address}"))
            return None
        return pod.pod_ip6
    ip = cursor.get(info.name, cidr.network_address + 2)
    while ip in reserved:
        ip += 1
    if ip > cidr.broadcast_address or ip < cidr.network_address + 2:
        errors.append(_err(pod.source, "metadata.name", pod.name, f"node {info.name}'s IPv6 "
                           f"pod CIDR {cidr} is exhausted", "fewer pods on the node or a "
                           "larger pod CIDR"))
        return None
    cursor[info.name] = ip + 1 if ip < cidr.broadcast_address else ip
    reserved.add(ip)
    return ip


def next_host_local6(model: ClusterModel, node: str) -> IPv6Address | None:
    """host-local's next IPv6 address after the last one it reserved on the node, skipping
    those in use, round robin over ``::2`` to the range's last address (``Get`` with
    ``lastReservedIP``, plugins/ipam/host-local/backend/allocator/allocator.go)."""
    cidr = model.nodes[node].pod_cidr6
    if cidr is None:
        return None
    used = {p.ip6 for p in model.pods.values() if p.node == node and p.ip6 is not None}
    last = model.last_reserved6.get(node)
    if last is None:
        last = max((ip for ip in used if ip in cidr), default=cidr.network_address + 1)
    first, final = cidr.network_address + 2, cidr.broadcast_address
    ip = last
    for _ in range(min(cidr.num_addresses, len(used) + 2)):
        ip = ip + 1 if first <= ip < final else first
        if ip not in used:
            model.last_reserved6[node] = ip
            return ip
    return None
