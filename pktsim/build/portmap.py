"""The portmap CNI plugin's rules: a pod's ``hostPort`` forwarded from the node.

Theory of operation
-------------------
The pod network's CNI configuration chains the ``portmap`` plugin after the main one
(flannel's conflist is named ``cbr0``, Calico's ``k8s-pod-network``; ``snat`` on, mark bit
13).  At each pod's CNI ADD it writes, in the nat table (containernetworking/plugins
plugins/meta/portmap/portmap.go ``forwardPorts``, chain.go ``setup``: rules appended,
only the masquerade entry prepended; after the rules, the UDP conntrack entries to each
UDP hostPort are deleted, main.go ``cmdAdd`` ``deletePortmapStaleConnections``):

=========================  ===============================================================
chain                      rules
=========================  ===============================================================
PREROUTING, OUTPUT         ``-m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT``
CNI-HOSTPORT-DNAT          per pod and protocol (sorted), its ports in groups of 15:
                           ``-p P -m comment --comment "dnat name: \\"NET\\" id: \\"ID\\""
                           -m multiport --dports PORTS -j CNI-DN-<hash>``
CNI-DN-<hash>              per port mapping (``fillDnatRules``): the hairpin mark (from the
                           pod's own network), the localhost mark, then the DNAT
CNI-HOSTPORT-SETMARK       ``-j MARK --set-xmark 0x2000/0x2000``
POSTROUTING (first)        ``-j CNI-HOSTPORT-MASQ``, which masquerades the marked packets
=========================  ===============================================================

``<hash>`` is ``MustFormatChainNameWithPrefix`` (pkg/utils/iptables.go): SHA-512 of network
name + container ID, hex, cut to 28 characters with ``CNI-DN-``.  The container ID is the
pod sandbox's, which the runtime makes up; pktsim's is SHA-256 of the seed and the pod's key
(64 hex digits, as containerd's are).  A ``hostIP`` adds ``-d HOSTIP/32`` to the mapping's
rules; ``0.0.0.0`` or none forwards every local address.
"""

from __future__ import annotations

import hashlib
import shlex

from pktsim.model.cluster import ClusterModel, PodInfo
from pktsim.netfilter import Table
from pktsim.netfilter.save import parse_rule

DNAT_CHAIN = "CNI-HOSTPORT-DNAT"
SETMARK_CHAIN = "CNI-HOSTPORT-SETMARK"
MASQ_CHAIN = "CNI-HOSTPORT-MASQ"
MARK = "0x2000/0x2000"  # 1 << markMasqBit (13), portmap's default
MULTIPORT_MAX = 15  # splitPortList: multiport takes at most 15 ports


def network_name(model: ClusterModel) -> str:
    """The CNI network's name in its conflist (the ``name:`` of the comment and hash)."""
    return "k8s-pod-network" if model.config.network == "calico" else "cbr0"


def sandbox_id(model: ClusterModel, info: PodInfo) -> str:
    """The pod sandbox's container ID (pktsim's own: 64 hex digits from seed and pod)."""
    text = f"sandbox/{model.config.seed}/{info.key}/{model.incarnations.get(info.key, 1)}"
    return hashlib.sha256(text.encode()).hexdigest()


def dn_chain(net: str, container_id: str) -> str:
    """``MustFormatChainNameWithPrefix(net, id, "DN-")``."""
    return ("CNI-DN-" + hashlib.sha512((net + container_id).encode()).hexdigest())[:28]


def _mappings(info: PodInfo) -> list[tuple[int, int, str, str]]:
    """(hostPort, containerPort, protocol, hostIP or "") of the pod, in the order kubelet
    hands them to the runtime (containers, then ports)."""
    return [(p.host_port, p.port, p.protocol.lower(), str(p.host_ip or ""))
            for c in info.pod.containers for p in c.ports if p.host_port]


def pod_rules(model: ClusterModel, info: PodInfo) -> tuple[str, list[str], list[str]]:
    """The pod's chain name, its CNI-HOSTPORT-DNAT entries and its own rules, each as
    iptables-save prints it after ``-A CHAIN``."""
    net, cid = network_name(model), sandbox_id(model, info)
    chain = dn_chain(net, cid)
    comment = shlex.quote(f'dnat name: "{net}" id: "{cid}"')
    maps = _mappings(info)
    entries = []
    for proto in sorted({m[2] for m in maps}):
        ports = [str(m[0]) for m in maps if m[2] == proto]
        for i in range(0, len(ports), MULTIPORT_MAX):
            group = ",".join(ports[i:i + MULTIPORT_MAX])
            entries.append(f"-p {proto} -m comment --comment {comment} -m multiport "
                           f"--dports {group} -j {chain}")
    masq_cidr = f"{info.ip}/32" if model.config.network == "calico" else \
        str(model.nodes[info.node].pod_cidr)
    rules = []
    for host, port, proto, host_ip in maps:
        dst = f"-d {host_ip}/32 " if host_ip else ""
        base = f"{dst}-p {proto} -m {proto} --dport {host}"
        rules.append(f"-s {masq_cidr} {base} -j {SETMARK_CHAIN}")
        rules.append(f"-s 127.0.0.1/32 {base} -j {SETMARK_CHAIN}")
        rules.append(f"{base} -j DNAT --to-destination {info.ip}:{port}")
    return chain, entries, rules


def mapped_pods(model: ClusterModel) -> dict[str, list[PodInfo]]:
    """Per node, its pods with hostPorts in the order they were made (one pass over the
    pods for all nodes: 150,000 pods on 5,000 nodes)."""
    out: dict[str, list[PodInfo]] = {}
    for info in model.pods.values():
        if not info.pod.host_network and _mappings(info):
            out.setdefault(info.node, []).append(info)
    return out


def install(model: ClusterModel, node: str, nat: Table,
            pods_by_node: dict[str, list[PodInfo]] | None = None) -> None:
    """The node's portmap rules for its pods with hostPorts, in CNI ADD order (the order
    the pods were made in: ``InsertUnique`` appends, chain.go ``setup``).  The top-level
    chains and their jumps stay once made: a DEL tears down only the pod's ``CNI-DN-``
    chain and its entries (portmap_iptables.go ``unforwardPorts``).  ``pods_by_node``:
    ``mapped_pods(model)``, made once for a build of every node."""
    pods = (pods_by_node if pods_by_node is not None else mapped_pods(model)).get(node, [])
    if pods:
        model.portmap_nodes.add(node)
    if node not in model.portmap_nodes:
        return
    for name in (SETMARK_CHAIN, MASQ_CHAIN, DNAT_CHAIN):
        nat.ensure_chain(name)
    _append(nat, SETMARK_CHAIN, '-m comment --comment "CNI portfwd masquerade mark" -j MARK '
            f"--set-xmark {MARK}")
    _append(nat, MASQ_CHAIN, f"-m mark --mark {MARK} -j MASQUERADE")
    nat["POSTROUTING"].insert(0, parse_rule(shlex.split(
        f'-m comment --comment "CNI portfwd requiring masquerade" -j {MASQ_CHAIN}')))
    for hook in ("PREROUTING", "OUTPUT"):
        _append(nat, hook, f"-m addrtype --dst-type LOCAL -j {DNAT_CHAIN}")
    for info in pods:
        chain, entries, rules = pod_rules(model, info)
        nat.ensure_chain(chain)
        for line in rules:
            _append(nat, chain, line)
        for line in entries:
            _append(nat, DNAT_CHAIN, line)


def _append(nat: Table, chain: str, line: str) -> None:
    nat[chain].append(parse_rule(shlex.split(line)))
