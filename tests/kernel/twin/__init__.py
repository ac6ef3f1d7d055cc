"""The kernel twin: pktsim's topologies rebuilt out of Linux network namespaces, driven
with the real Linux stack and captured with tcpdump, so pktsim's frames can be compared
with what Linux puts on the wire (docs/kernel-observations.md says what it does).

Modules, by idea:

- :mod:`.commands`   running commands in a namespace, waiting for helpers' output, the
                     checks that say whether a twin can be built here
- :mod:`.namespaces` the base of every twin: its ``pktk-`` namespaces (always deleted),
                     helper processes, link state, capture and traffic drivers
- :mod:`.node`       the same-node twin (:class:`KernelNode`): pods on one bridge
- :mod:`.cluster`    the cross-node twin (:class:`KernelCluster`): nodes on a switch
- :mod:`.overlay`    its cross-node path: ``routes``, ``vxlan`` (flannel), ``ipip`` (flannel IPIP)
- :mod:`.external`   pktsim's outside world: a router and external clients
- :mod:`.services`   pktsim's iptables rules loaded into the nodes, br_netfilter, conntrack
- :mod:`.capture`    tcpdump per interface, packet types, the flush checks
- :mod:`.traffic`    ping, an HTTP exchange over TCP, a refused connect()
- :mod:`.decode`, :mod:`.normalize`  frames -> header fields -> comparable rows, by a
                     table of per-field normalisers

Safety: every interface, address, route, neighbour and FDB entry lives in namespaces
created here, named ``pktk-<pid>-<random>-...``; the root namespace is never touched and
the namespaces are always deleted (``__exit__`` runs on errors too).

Usage::

    pods = [PodSpec("a", "10.244.0.2", "0a:58:0a:f4:00:02", "veth0000000a", "0a:00:00:00:01:02"),
            PodSpec("b", "10.244.0.3", "0a:58:0a:f4:00:03", "veth0000000b", "0a:00:00:00:01:03")]
    with KernelNode(pods) as node:
        cap = node.scenario(lambda: node.ping("a", "10.244.0.3", count=1))
        cap.frames["a:eth0"]        # list[bytes], raw Ethernet frames in capture order
        cap.pkttypes["a:eth0"]      # "outgoing" / "host" / "broadcast" / ... per frame
        normalize(cap.frames["a:eth0"], node.mac_names(), pkttypes=cap.pkttypes["a:eth0"])

Dual-stack: give pods (and, across nodes, ``NodeSpec.ip6``/``pod_cidr6``) an IPv6
address; the twin configures IPv6 as the bridge CNI plugin does, waits until the
kernel's own DAD and MLD frames are over, and names its namespaces ``pktk6-``::

    pods = [PodSpec("a", "10.244.0.2", "0a:58:0a:f4:00:02", "veth0000000a", None,
                    "fd00:10:244::2"), ...]
    with KernelNode(pods) as node:           # cbr0 fd00:10:244::1/64 (GATEWAY_IP6)
        cap = node.scenario(lambda: node.ping("a", "fd00:10:244::3", count=2))
        cap = cap.without_router_solicitations()   # the pods' endless, random RS
"""

from __future__ import annotations

from .capture import PKTTYPES, Capture, is_router_solicitation, read_pcap
from .cluster import SWITCH, KernelCluster, NodeSpec
from .commands import KernelFeatureMissing, kernel_available, netfilter_available
from .external import ExternalHost, ExternalSpec
from .namespaces import SETUP_TIMEOUT, Twin
from .node import GATEWAY_IP6, KernelNode, PodSpec, V6Plan
from .normalize import TABLE, Normaliser, describe, normalize
from .overlay import OVERLAY_MTU, VXLAN_DEV, VXLAN_PORT
from .traffic import TRAFFIC_TIMEOUT

__all__ = [
    "GATEWAY_IP6",
    "OVERLAY_MTU",
    "PKTTYPES",
    "SETUP_TIMEOUT",
    "SWITCH",
    "TABLE",
    "TRAFFIC_TIMEOUT",
    "VXLAN_DEV",
    "VXLAN_PORT",
    "Capture",
    "ExternalHost",
    "ExternalSpec",
    "KernelCluster",
    "KernelFeatureMissing",
    "KernelNode",
    "NodeSpec",
    "Normaliser",
    "PodSpec",
    "Twin",
    "V6Plan",
    "describe",
    "is_router_solicitation",
    "kernel_available",
    "netfilter_available",
    "normalize",
    "read_pcap",
]
