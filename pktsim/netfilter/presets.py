"""Rule sets other components install on a node, written exactly as they write them.

Theory of operation
-------------------
``flannel_masquerade`` is flanneld's ``masqRules`` (flannel-io/flannel
``pkg/trafficmngr/iptables/iptables.go``): POSTROUTING jumps to
FLANNEL-POSTRTG, which

1. returns for packets kube-proxy marked 0x4000 (KUBE-POSTROUTING masquerades those),
2. returns for pod -> cluster and 3. cluster -> pod traffic (pods keep their addresses
   across the overlay: the Kubernetes network model),
4. returns for traffic from outside the cluster to this node's pods,
5. masquerades pod -> outside (anything but multicast) to the output interface's address,
6. masquerades host -> cluster traffic (a node process talking to a remote pod).

``flannel_forward`` is the FLANNEL-FWD filter chain (accept to and from the cluster CIDR:
``forwardRules`` in the same file).
``canaries`` are the empty chains kubelet and kube-proxy create to notice a flush of their
rules: kubelet's ``KUBE-IPTABLES-HINT`` (mangle: tells kube-proxy which iptables backend the
host uses) and ``KUBE-KUBELET-CANARY`` (mangle, nat, filter; kubernetes
``pkg/kubelet/kubelet_network_linux.go`` ``syncIPTablesRules``/``initNetworkUtil``), and
kube-proxy's ``KUBE-PROXY-CANARY`` (mangle, nat, filter; ``pkg/proxy/iptables/proxier.go``
``NewProxier``: ``ipt.Monitor(kubeProxyCanaryChain, …)``).
``kube_proxy_masquerade`` is kube-proxy's KUBE-MARK-MASQ / KUBE-POSTROUTING pair (kubernetes
``pkg/proxy/iptables/proxier.go``, ``syncProxyRules``; mark 0x4000 = ``1 << masqueradeBit``, 14
by default in ``pkg/proxy/apis/config/v1alpha1/defaults.go``); the per-service chains are the
kube-proxy builder's business.
"""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_network

from pktsim.netfilter.matches import Comment, Destination, Mark, Source
from pktsim.netfilter.rules import Rule, Table
from pktsim.netfilter.targets import ACCEPT, RETURN, Jump, Masquerade, SetMark

MASQ_MARK = 0x4000  # 1 << masqueradeBit (14)


def flannel_masquerade(nat: Table, pod_cidr: str, cluster_cidr: str, *,
                       random_fully: bool = True) -> None:
    """Install FLANNEL-POSTRTG in ``nat`` for a node whose lease is ``pod_cidr`` (IPv4, or
    IPv6 in ip6tables: ``masqIP6Rules``, the same rules with ``ff00::/8``)."""
    pod, cluster = ip_network(pod_cidr), ip_network(cluster_cidr)
    # multicast is never masqueraded: 224.0.0.0/4, or ff00::/8 in masqIP6Rules
    multicast = IPv4Network("224.0.0.0/4") if pod.version == 4 else IPv6Network("ff00::/8")
    note = "flanneld masq"
    chain = nat.ensure_chain("FLANNEL-POSTRTG")
    chain.rules.clear()
    nat["POSTROUTING"].append(Rule((Comment(note),), Jump("FLANNEL-POSTRTG")))
    masq = Masquerade(random_fully=random_fully)
    for matches, target in (
            ((Mark(MASQ_MARK, MASQ_MARK),), RETURN),
            ((Source(pod), Destination(cluster)), RETURN),
            ((Source(cluster), Destination(pod)), RETURN),
            ((Source(cluster, negate=True), Destination(pod)), RETURN),
            ((Source(cluster), Destination(multicast, negate=True)), masq),
            ((Source(cluster, negate=True), Destination(cluster)), masq)):
        chain.append(Rule((*matches, Comment(note)), target))  # flannel: -m comment last


def flannel_forward(filter_table: Table, cluster_cidr: str) -> None:
    """Install FLANNEL-FWD in ``filter``: forward anything to or from the cluster CIDR (of
    either family: ``forwardRules`` is called for the IPv6 network too)."""
    cluster = ip_network(cluster_cidr)
    note = "flanneld forward"
    chain = filter_table.ensure_chain("FLANNEL-FWD")
    chain.rules.clear()
    filter_table["FORWARD"].append(Rule((), Jump("FLANNEL-FWD"), note))
    chain.append(Rule((Source(cluster),), ACCEPT, note))
    chain.append(Rule((Destination(cluster),), ACCEPT, note))


def kube_proxy_masquerade(nat: Table, *, random_fully: bool = True) -> None:
    """KUBE-MARK-MASQ sets the mark; KUBE-POSTROUTING masquerades marked packets once."""
    mark_masq = nat.ensure_chain("KUBE-MARK-MASQ")
    post = nat.ensure_chain("KUBE-POSTROUTING")
    mark_masq.rules.clear()
    post.rules.clear()
    nat["POSTROUTING"].append(Rule((), Jump("KUBE-POSTROUTING"),
                                   "kubernetes postrouting rules"))
    mark_masq.append(Rule((), SetMark.or_mark(MASQ_MARK)))
    post.append(Rule((Mark(MASQ_MARK, MASQ_MARK, negate=True),), RETURN))
    post.append(Rule((), SetMark.xor_mark(MASQ_MARK)))
    post.append(Rule((), Masquerade(random_fully=random_fully),
                     "kubernetes service traffic requiring SNAT"))


CANARY_CHAINS = {"mangle": ("KUBE-IPTABLES-HINT", "KUBE-KUBELET-CANARY", "KUBE-PROXY-CANARY"),
                 "nat": ("KUBE-KUBELET-CANARY", "KUBE-PROXY-CANARY"),
                 "filter": ("KUBE-KUBELET-CANARY", "KUBE-PROXY-CANARY")}


def canaries(tables: dict[str, Table]) -> None:
    """kubelet's and kube-proxy's empty canary chains (no rule jumps to them)."""
    for table, chains in CANARY_CHAINS.items():
        for chain in chains:
            tables[table].ensure_chain(chain)
