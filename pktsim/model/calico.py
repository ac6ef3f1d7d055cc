"""The nodes and pods of a ``network: calico`` cluster, as Calico IPAM and its CNI leave them.

* nodes: the same InternalIPs and ``eth0`` MACs as every mode; ``spec.podCIDR`` is ignored
  (Calico IPAM does not read it: ``calico-ipam`` allocates from the IPPool's blocks), so a
  node's ``pod_cidr`` is its first affine block.  ``vtep_mac`` is felix's derived MAC.
* the tunnel address of every node, in node order, when the pool encapsulates (calico-node's
  ``allocateip`` at start-up), then the pods in creation order (``pktsim.model.calico_ipam``);
* a pod's host-side veth is ``cali`` + 11 hex digits of sha1("ns.name"), MAC
  ``ee:ee:ee:ee:ee:ee``; the pod's ``eth0`` MAC is the kernel's random one (seeded).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pktsim.model.calico_ipam import HOST_VETH_MAC, Ipam, veth_name, vtep_mac
from pktsim.model.draws import OneShot
from pktsim.model.objects import Node, Pod

if TYPE_CHECKING:
    from pktsim.errors import ScenarioError
    from pktsim.model.cluster import ClusterModel


def calico_nodes(model: ClusterModel, nodes: list[Node], errors: list[ScenarioError]) -> None:
    """Node addresses as in every mode; blocks come later, with the first address asked."""
    from pktsim.model.cluster import NodeInfo, _err

    cfg = model.config
    pool = cfg.calico.cidr or cfg.pod_cidr
    taken: dict[object, str] = {}
    draw = OneShot(model.streams.seed)
    for index, node in enumerate(nodes):
        ip = node.internal_ip or cfg.node_cidr.network_address + 2 + index
        if ip in taken:
            errors.append(_err(node.source, "status.addresses[InternalIP]", str(ip),
                               f"is also node {taken[ip]}'s address",
                               "a distinct InternalIP per node"))
        taken[ip] = node.name
        model.nodes[node.name] = NodeInfo(node.name, index, ip, pool, b"\x02\x42" + ip.packed,
                                          draw.mac(f"node/{node.name}/bridge"),
                                          vtep_mac(node.name))


def calico_pods(model: ClusterModel, placed: list[tuple[Pod, str]],
                errors: list[ScenarioError]) -> None:
    """Given pod IPs first, then tunnel addresses (node order), then pods (creation order)."""
    from pktsim.model.cluster import PodInfo, _err

    cfg = model.config
    ipam = Ipam(cfg.calico.cidr or cfg.pod_cidr, cfg.calico.block_size)
    ok: list[tuple[Pod, str]] = []
    for pod, node in placed:
        if pod.pod_ip is not None and not pod.host_network:
            problem = ipam.reserve(node, pod.pod_ip)
            if problem:
                errors.append(_err(pod.source, "status.podIP", str(pod.pod_ip), problem,
                                   f"an address of the pool {ipam.pool} in a block of "
                                   f"node {node}'s"))
                continue
        ok.append((pod, node))
    if cfg.calico.encap != "none":
        for info in model.node_list():
            info.tunnel_ip = ipam.assign(info.name)
    draw = OneShot(model.streams.seed)
    for pod, node in ok:
        ip = model.nodes[node].ip if pod.host_network else pod.pod_ip or ipam.assign(node)
        if ip is None:
            errors.append(_err(pod.source, "metadata.name", pod.name, f"the Calico IP pool "
                               f"{ipam.pool} has no address left", "a larger pool"))
            continue
        key = pod.key
        model.pods[key] = PodInfo(pod, node, ip, draw.mac(f"pod/{key}/eth0"),
                                  veth_name(pod.namespace, pod.name), HOST_VETH_MAC)
    for info in model.node_list():
        info.blocks = ipam.blocks_of(info.name)
        if info.blocks:
            info.pod_cidr = info.blocks[0]
