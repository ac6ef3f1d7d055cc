"""kube-proxy's cleanup of stale UDP conntrack entries after a sync, for one node.

After ``syncProxyRules`` writes the rules, kube-proxy deletes the UDP entries that still
send a Service's traffic somewhere it no longer goes (kubernetes pkg/proxy/conntrack
cleanup.go ``CleanStaleEntries``, called from pkg/proxy/iptables/proxier.go): an entry
whose original destination is a Service's address and port (cluster IP, external IPs,
load-balancer IPs, or a node port of this node) and whose reply comes from an endpoint that
is not a serving endpoint of that Service port now.  UDP has no connection to end, so
without this a client that keeps its socket -- a resolver sending every query from one
port -- keeps talking to the old endpoint for as long as it keeps sending.  TCP entries are
left alone: the endpoint's RST or the client's timeout ends those.
"""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv4Address

from pktsim.build.topology import Topology
from pktsim.kubeproxy.ports import ServicePortInfo, service_ports
from pktsim.netfilter.conntrack import Conn
from pktsim.netfilter.hooks import Netfilter

PROTO_UDP = 17


def _serving(ports: list[ServicePortInfo], node_ips: set[bytes]) -> tuple[
        dict[tuple[bytes, int], set[tuple[bytes, int]]], dict[int, set[tuple[bytes, int]]]]:
    """Service (address, port) -> its serving endpoints; node port -> the same."""
    by_vip: dict[tuple[bytes, int], set[tuple[bytes, int]]] = {}
    by_node_port: dict[int, set[tuple[bytes, int]]] = {}
    for sp in ports:
        if sp.protocol != "udp":
            continue
        eps = {(e.ip.packed, e.port) for e in sp.endpoints if e.serving}
        vips: list[IPv4Address] = [sp.cluster_ip, *sp.external_ips, *sp.lb_vips]
        for vip in vips:
            by_vip[(vip.packed, sp.port)] = eps
        if sp.node_port:
            by_node_port[sp.node_port] = eps
    return by_vip, by_node_port


def stale(conn: Conn, by_vip: dict[tuple[bytes, int], set[tuple[bytes, int]]],
          by_node_port: dict[int, set[tuple[bytes, int]]], node_ips: set[bytes]) -> bool:
    """Whether kube-proxy deletes ``conn``: UDP to a Service whose reply side is not one of
    its serving endpoints."""
    if conn.proto != PROTO_UDP:
        return False
    orig, reply = conn.orig, conn.reply
    eps = by_vip.get((orig.dst, orig.dport))
    if eps is None and orig.dst in node_ips:
        eps = by_node_port.get(orig.dport)
    if eps is None:
        return False
    return (reply.src, reply.sport) not in eps


def cleanup_for(topo: Topology, node: str) -> Callable[[Netfilter, int], list[Conn]]:
    """What the node's kube-proxy runs after it wrote its rules."""

    def clean(nf: Netfilter, now: int) -> list[Conn]:
        ports = service_ports(topo.model, node)
        node_ips = {topo.model.nodes[node].ip.packed}
        by_vip, by_node_port = _serving(ports, node_ips)
        gone = [c for c in nf.conntrack.entries(now)
                if stale(c, by_vip, by_node_port, node_ips)]
        for conn in gone:
            nf.conntrack.delete(conn)
        return gone

    return clean
