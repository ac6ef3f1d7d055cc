"""kube-proxy in iptables mode: the rules it writes for each node, as iptables-restore text.

``node_rules(model, node)`` is the node's complete ``filter`` + ``nat`` document (built-in
chains, kube-proxy's jump rules, its chains and rules); ``restore_data(model, node)`` is only
what kube-proxy itself pipes to ``iptables-restore --noflush``; ``node_rules6(model, node)``
is the IPv6 proxier's ip6tables document (dual-stack and IPv6 Services).
``service_chain_name`` and
``endpoint_chain_name`` give the ``KUBE-SVC-``/``KUBE-SEP-`` names for a service port name
(``ns/name:port``, or ``ns/name`` when the port has no name).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pktsim.core.lazy import lazy_exports

if TYPE_CHECKING:  # the names; at run time each module loads on first use (core.lazy)
    from pktsim.kubeproxy.chains import jump_rules
    from pktsim.kubeproxy.cleanup import clean_stale_entries
    from pktsim.kubeproxy.hashes import (
        endpoint_chain_name,
        join_host_port,
        service_chain_name,
        service_chain_suffix,
        service_port_name,
    )
    from pktsim.kubeproxy.ports import ProxyConfig, ServicePortInfo, service_ports
    from pktsim.kubeproxy.rules import node_rules, node_rules6, probability, restore_data

__all__ = [
    "ProxyConfig",
    "ServicePortInfo",
    "clean_stale_entries",
    "endpoint_chain_name",
    "join_host_port",
    "jump_rules",
    "node_rules",
    "node_rules6",
    "probability",
    "restore_data",
    "service_chain_name",
    "service_chain_suffix",
    "service_port_name",
    "service_ports",
]

_EXPORTS = {
    "chains": ("jump_rules",),
    "cleanup": ("clean_stale_entries",),
    "hashes": ("endpoint_chain_name", "join_host_port", "service_chain_name",
               "service_chain_suffix", "service_port_name"),
    "ports": ("ProxyConfig", "ServicePortInfo", "service_ports"),
    "rules": ("node_rules", "node_rules6", "probability", "restore_data"),
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
