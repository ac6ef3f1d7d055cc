"""``pktsim check``: the cluster as the manifests and the defaults make it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pktsim.wire.parse import mac_str

if TYPE_CHECKING:
    from pktsim.api import Cluster


def cluster_report(cluster: Cluster) -> str:
    model = cluster.model
    cfg = model.config
    out = [f"cluster: network {cfg.network}, podCIDR {cfg.pod_cidr}, serviceCIDR "
           f"{cfg.service_cidr}, nodeCIDR {cfg.node_cidr}, bridge {cfg.bridge}, "
           f"hairpin {'on' if cfg.hairpin_mode else 'off'}, seed {cfg.seed}", "", "nodes:"]
    for node in model.node_list():
        out.append(f"  {node.name:<16} {node.ip!s:<15} podCIDR {node.pod_cidr!s:<18} "
                   f"eth0 {mac_str(node.eth0_mac)}  {cfg.bridge} {node.gateway} "
                   f"{mac_str(node.bridge_mac)}")
    out += ["", "pods:"]
    for info in sorted(model.pods.values(), key=lambda p: p.key):
        ready = "" if info.pod.ready else " (not ready)"
        where = "hostNetwork" if info.pod.host_network else \
            f"eth0 {mac_str(info.mac)} veth {info.veth}"
        out.append(f"  {info.key:<40} {info.node:<10} {info.ip!s:<15} {where}{ready}")
    topo = cluster.build()
    for name, ns in sorted(topo.node_ns.items()):
        out += ["", f"ip route ({name}):"]
        out += ["  " + line for line in ns.routes.dump().splitlines()]
    if cluster.flows:
        out += ["", "flows:"]
        out += [f"  {f.name}: {f.source_ref} -> {f.target or f.lookup} ({f.protocol})"
                for f in cluster.flows]
    return "\n".join(out) + "\n"
