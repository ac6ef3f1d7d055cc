"""``pktsim check``'s report: the cluster as the manifests and the defaults make it — nodes,
pods, Services and their endpoints, NetworkPolicies and the pods each isolates, each node's
routes and each pod's resolv.conf — printed before anything runs, so a scenario can be
checked by eye."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pktsim.build.flows import start_flows
from pktsim.model.policy import POLICY_TYPES, enforces_policy
from pktsim.render.dumps import bridge_ports, ip6_route
from pktsim.wire.parse import mac_str

if TYPE_CHECKING:
    from pktsim.api import Cluster
    from pktsim.build.topology import Topology
    from pktsim.model.cluster import NodeInfo
    from pktsim.model.services import EndpointAddr


def cluster_report(cluster: Cluster) -> str:
    model = cluster.model
    cfg = model.config
    out = [f"cluster: network {cfg.network}, podCIDR {cfg.pod_cidr}, serviceCIDR "
           f"{cfg.service_cidr}, nodeCIDR {cfg.node_cidr}, {_pod_side(cluster)}, "
           f"seed {cfg.seed}"]
    if cfg.has_ipv6:
        out.append(f"ipFamilies {', '.join(cfg.ip_families)}: IPv6 podCIDR {cfg.pod_cidr6}, "
                   f"serviceCIDR {cfg.service_cidr6}, nodeCIDR {cfg.node_cidr6}")
    out += ["", "nodes:"]
    for node in model.node_list():
        v6 = f"  ipv6 {node.ip6} podCIDR {node.pod_cidr6}" if node.ip6 is not None else ""
        out.append(_node_line(cluster, node) + v6)
    out += ["", "pods:"]
    for info in sorted(model.pods.values(), key=lambda p: p.key):
        ready = "" if info.pod.ready else " (not ready)"
        where = "hostNetwork" if info.pod.host_network else \
            f"eth0 {mac_str(info.mac)} veth {info.veth}"
        v6 = f" ipv6 {info.ip6}" if info.ip6 is not None else ""
        out.append(f"  {info.key:<40} {info.node:<10} {info.ip!s:<15} {where}{v6}{ready}")
    out += _services(cluster)
    out += _policies(cluster)
    topo = cluster.build()
    # every flow resolved as ``run`` resolves it, so check and run accept the same input
    start_flows(topo, cluster.flows)
    for name, ns in sorted(topo.node_ns.items()):
        out += ["", f"ip route ({name}):"]
        out += ["  " + line for line in ns.routes.dump().splitlines()]
        if ns.routes6.routes:
            out += ["", f"ip -6 route ({name}):"]
            out += ["  " + line for line in ip6_route(ns, bridge_ports(topo, name)).splitlines()]
    out += _resolv_confs(topo)
    if cluster.flows:
        out += ["", "flows:"]
        out += [f"  {f.name}: {f.source_ref} -> {f.target or f.lookup} ({f.protocol})"
                for f in cluster.flows]
    if cluster.scenario.changes:  # spec.events, in the order the run takes them
        out += ["", "events:"]
        out += [f"  at {_seconds(c.at_ns)}: {c.label()}" for c in cluster.scenario.changes]
    return "\n".join(out) + "\n"


def _seconds(ns: int) -> str:
    """``2.5s``: exact, however long the run (no float rounding)."""
    whole, rest = divmod(ns, 10**9)
    return f"{whole}s" if not rest else f"{whole}.{rest:09d}".rstrip("0") + "s"


def _pod_side(cluster: Cluster) -> str:
    """The bridge (flannel's modes) or the Calico IP pool."""
    cfg = cluster.model.config
    if cfg.network != "calico":
        return f"bridge {cfg.bridge}, hairpin {'on' if cfg.hairpin_mode else 'off'}"
    pool = cfg.calico
    return (f"pool {pool.cidr or cfg.pod_cidr} blockSize {pool.block_size} ipipMode "
            f"{pool.ipip_mode} vxlanMode {pool.vxlan_mode} natOutgoing "
            f"{'on' if pool.nat_outgoing else 'off'}")


def _node_line(cluster: Cluster, node: NodeInfo) -> str:
    cfg = cluster.model.config
    head = f"  {node.name:<16} {node.ip!s:<15} "
    zone = f"  zone {node.zone}" if node.zone else ""
    if cfg.network == "calico":
        blocks = ",".join(str(b) for b in node.blocks) or "-"
        return (f"{head}blocks {blocks:<18} eth0 {mac_str(node.eth0_mac)}  tunnel "
                f"{node.tunnel_ip or '-'}{zone}")
    return (f"{head}podCIDR {node.pod_cidr!s:<18} eth0 {mac_str(node.eth0_mac)}  "
            f"{cfg.bridge} {node.gateway} {mac_str(node.bridge_mac)}{zone}")


def _endpoint(e: EndpointAddr[Any]) -> str:
    """``ip:port`` (``[ip]:port`` for IPv6), whether it is ready, and the topology hints
    kube-proxy reads."""
    hinted = ", ".join((*e.for_zones, *e.for_nodes))
    host = f"[{e.ip}]" if e.ip.version == 6 else str(e.ip)
    return f"{host}:{e.port}" + ("" if e.ready else " (not ready)") + \
        (f" (for {hinted})" if hinted else "")


def _services(cluster: Cluster) -> list[str]:
    out = ["", "services:"]
    for key, info in sorted(cluster.model.services.items()):
        svc = info.service
        ips = [str(a) for a in (info.cluster_ip, info.cluster_ip6) if a is not None]
        ip = "None (headless)" if info.headless else " ".join(ips) or "-"
        lbs = [str(a) for a in (info.load_balancer_ip, info.load_balancer_ip6) if a is not None]
        extra = f" lb {' '.join(lbs)}" if lbs else ""
        if svc.type == "ExternalName":
            extra = f" -> {svc.external_name}"
        out.append(f"  {key:<40} {svc.type:<12} {ip}{extra}")
        for port in info.ports:
            node_port = f" nodePort {port.node_port}" if port.node_port else ""
            both: list[EndpointAddr[Any]] = [*port.endpoints, *port.endpoints6]
            eps = ", ".join(_endpoint(e) for e in both) or "no endpoints"
            out.append(f"      {port.name or '-'} {port.spec.port}/{port.protocol}{node_port}"
                       f" -> {eps}")
    return out


def _policies(cluster: Cluster) -> list[str]:
    """Every NetworkPolicy, its policy types and the pods it isolates per direction.

    hostNetwork pods are left out: NetworkPolicy applies to pods with their own network
    namespace (Calico makes workload endpoints only for those)."""
    model = cluster.model
    if not model.network_policies:
        return []
    network = model.config.network
    state = "enforced" if enforces_policy(network) else "not enforced"
    out = ["", f"network policies ({state} by network {network}):"]
    pods = sorted((p for p in model.pods.values() if not p.pod.host_network),
                  key=lambda p: p.key)
    for policy in sorted(model.network_policies, key=lambda p: p.key):
        out.append(f"  {policy.key:<40} {', '.join(policy.policy_types):<16} "
                   f"podSelector {policy.pod_selector.text()}")
        chosen = [p.key for p in pods if policy.selects(p.pod.namespace, p.pod.labels)]
        for direction in POLICY_TYPES:
            if direction in policy.policy_types:
                out.append(f"      isolates for {direction}: {', '.join(chosen) or 'no pods'}")
    return out


def _resolv_confs(topo: Topology) -> list[str]:
    from pktsim.build.topology import pod_resolv_conf

    out = ["", "resolv.conf:"]
    for key, info in sorted(topo.model.pods.items()):
        text = pod_resolv_conf(topo.model, info).render().strip().replace("\n", " | ")
        out.append(f"  {key:<40} {text}")
    return out
