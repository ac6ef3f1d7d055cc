"""kube-proxy's fixed chains and the jump rules that hook them into the built-in chains.

Theory of operation
-------------------
kube-proxy does not write the built-in chains (``PREROUTING``, ``INPUT``, ...) in its
``iptables-restore`` input, which it loads with ``--noflush`` so as not to disturb other
programs' rules there.  Instead, on every full sync, it runs ``EnsureChain`` and
``EnsureRule(Prepend, ...)`` (``iptables -N``, then ``iptables -C`` and ``-I CHAIN 1``) for
each entry of ``iptablesJumpChains`` in order, then for kubelet's ``KUBE-FIREWALL`` jumps
(``iptablesKubeletJumpChains``).  A rule is inserted at the top only if it is not there yet,
so the rules end up in reverse order; kubelet installed its ``KUBE-FIREWALL`` jumps when it
started, before the kube-proxy pod ran, so those stay last (as ``iptables-save`` on a real
node shows them).  The rule text is what ``iptables-save`` prints back: the extra matches
(``-m conntrack --ctstate NEW``), then the comment, then the jump.
"""

from __future__ import annotations

SERVICES = "KUBE-SERVICES"
EXTERNAL_SERVICES = "KUBE-EXTERNAL-SERVICES"
NODEPORTS = "KUBE-NODEPORTS"
POSTROUTING = "KUBE-POSTROUTING"
MARK_MASQ = "KUBE-MARK-MASQ"
FORWARD = "KUBE-FORWARD"
PROXY_FIREWALL = "KUBE-PROXY-FIREWALL"
KUBELET_FIREWALL = "KUBE-FIREWALL"
FILTER_CHAINS = (SERVICES, EXTERNAL_SERVICES, FORWARD, NODEPORTS, PROXY_FIREWALL)
NAT_CHAINS = (SERVICES, NODEPORTS, POSTROUTING, MARK_MASQ)
BUILTIN = {"filter": ("INPUT", "FORWARD", "OUTPUT"),
           "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING")}
NFACCT_LOCALHOST_NODEPORTS = "localhost_nps_accepted_pkts"
NFACCT_INVALID_DROPPED = "ct_state_invalid_dropped_pkts"
NODEPORTS_LAST = '"kubernetes service nodeports; NOTE: this must be the last rule in this chain"'

_NEW = ("-m", "conntrack", "--ctstate", "NEW")
# iptablesJumpChains: (table, chain jumped to, built-in chain, comment, extra matches)
JUMP_CHAINS: tuple[tuple[str, str, str, str, tuple[str, ...]], ...] = (
    ("filter", EXTERNAL_SERVICES, "INPUT", "kubernetes externally-visible service portals", _NEW),
    ("filter", EXTERNAL_SERVICES, "FORWARD", "kubernetes externally-visible service portals",
     _NEW),
    ("filter", NODEPORTS, "INPUT", "kubernetes health check service ports", ()),
    ("filter", SERVICES, "FORWARD", "kubernetes service portals", _NEW),
    ("filter", SERVICES, "OUTPUT", "kubernetes service portals", _NEW),
    ("filter", FORWARD, "FORWARD", "kubernetes forwarding rules", ()),
    ("filter", PROXY_FIREWALL, "INPUT", "kubernetes load balancer firewall", _NEW),
    ("filter", PROXY_FIREWALL, "OUTPUT", "kubernetes load balancer firewall", _NEW),
    ("filter", PROXY_FIREWALL, "FORWARD", "kubernetes load balancer firewall", _NEW),
    ("nat", SERVICES, "OUTPUT", "kubernetes service portals", ()),
    ("nat", SERVICES, "PREROUTING", "kubernetes service portals", ()),
    ("nat", POSTROUTING, "POSTROUTING", "kubernetes postrouting rules", ()),
)
# iptablesKubeletJumpChains (no comment)
KUBELET_JUMP_CHAINS: tuple[tuple[str, str, str, str, tuple[str, ...]], ...] = (
    ("filter", KUBELET_FIREWALL, "INPUT", "", ()),
    ("filter", KUBELET_FIREWALL, "OUTPUT", "", ()),
)


def chain_line(chain: str) -> str:
    """``utiliptables.MakeChainLine``."""
    return f":{chain} - [0:0]"


def quote(text: str) -> str:
    """A comment with spaces, quoted as kube-proxy writes it (``fmt.Sprintf(`"%s ..."`)``)."""
    return f'"{text}"'


def jump_rules(kubelet: bool = True) -> dict[str, list[str]]:
    """The built-in chains' rules after kube-proxy's ``EnsureRule(Prepend, ...)`` calls
    (``kubelet``: after kubelet's ``KUBE-FIREWALL`` jumps, which it makes in iptables only:
    ``syncIPTablesRules``, kubernetes pkg/kubelet/kubelet_network_linux.go)."""
    chains: dict[tuple[str, str], list[str]] = {}
    for table, dst, src, comment, extra in (KUBELET_JUMP_CHAINS if kubelet else ()) \
            + JUMP_CHAINS:
        words = [*extra, *(("-m", "comment", "--comment", quote(comment)) if comment else ())]
        rule = " ".join(["-A", src, *words, "-j", dst])
        rules = chains.setdefault((table, src), [])
        if rule not in rules:  # EnsureRule: only if not there yet
            rules.insert(0, rule)
    return {table: [r for src in builtins for r in chains.get((table, src), [])]
            for table, builtins in BUILTIN.items()}
