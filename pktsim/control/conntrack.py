"""When a node's kube-proxy cleans stale UDP conntrack entries, and with what.

After each sync, ``syncProxyRules`` (kubernetes pkg/proxy/iptables/proxier.go) runs
``conntrack.CleanStaleEntries`` only when the sync took in a change that requires it
(``ConntrackCleanupRequired``: the endpoints or service ports of a UDP Service changed);
the cleanup itself is ``pktsim.kubeproxy.cleanup.clean_stale_entries``.  pktsim compares the
node's UDP service ports and their serving endpoints with those of its previous cleanup.
"""

from __future__ import annotations

from collections.abc import Callable

from pktsim.build.topology import Topology
from pktsim.kubeproxy.cleanup import clean_stale_entries
from pktsim.kubeproxy.ports import ServicePortInfo, service_ports
from pktsim.netfilter.conntrack import Conn
from pktsim.netfilter.hooks import Netfilter

UdpView = frozenset[tuple[object, ...]]


def udp_view(ports: list[ServicePortInfo]) -> UdpView:
    """What of the node's services the cleanup depends on: UDP ports and serving endpoints."""
    return frozenset((sp.name, sp.cluster_ip, sp.port, sp.node_port, tuple(sp.external_ips),
                      tuple(sp.lb_vips), frozenset((e.ip, e.port) for e in sp.endpoints
                                                   if e.serving))
                     for sp in ports if sp.protocol == "udp")


def cleanup_for(topo: Topology, node: str,
                last: dict[str, UdpView]) -> Callable[[Netfilter, int], list[Conn]]:
    """What the node's kube-proxy runs after it wrote its rules; ``last`` holds each
    node's view at its previous cleanup (the start-up sync's at first)."""

    def clean(nf: Netfilter, now: int) -> list[Conn]:
        ports = service_ports(topo.model, node)
        view = udp_view(ports)
        if last.get(node) == view:
            return []  # nothing UDP changed: ConntrackCleanupRequired is false
        last[node] = view
        return clean_stale_entries(nf.conntrack, now, ports)

    return clean
