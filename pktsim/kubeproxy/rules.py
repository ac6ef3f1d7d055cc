"""kube-proxy's iptables rules for one node, as the iptables-restore text it writes.

Theory of operation
-------------------
kube-proxy (iptables mode, ``pkg/proxy/iptables/proxier.go`` ``syncProxyRules``) programs a
node in two steps, and so does this module:

1. **Jump rules.**  ``iptables -N``/``-I`` (``EnsureChain``, ``EnsureRule(Prepend, ...)``) hook
   its chains into the built-in ones, for each entry of ``iptablesJumpChains`` in order, then
   kubelet's ``KUBE-FIREWALL`` jumps (``iptablesKubeletJumpChains``).  Each insertion goes to
   the top, so the list ends up reversed; kubelet has made its ``KUBE-FIREWALL`` jumps before
   kube-proxy starts, so they stay last.  ``chains.jump_rules`` gives the result.
2. **The restore text.**  Everything else is one ``iptables-restore --noflush --counters``
   input: ``*filter`` then ``*nat``, each with the chain lines (``:KUBE-SERVICES - [0:0]``) of
   the top-level chains, then of the per-service chains, then all the rules, ``COMMIT``.
   ``restore_data`` returns that text byte for byte as kube-proxy would (``LineBuffer``
   joins words with one space; comments with spaces are written with their double quotes).

``node_rules`` puts both together into one self-contained document — built-in chain
declarations (``:INPUT ACCEPT [0:0]``), chain lines, jump rules, kube-proxy's rules — that
``iptables-restore`` (without ``--noflush``) or pktsim's netfilter can load into an empty
namespace.

Per service port, the rules come in kube-proxy's order (``_service``): capture rules for the
cluster IP, external IPs, load-balancer IPs and node port (nat ``KUBE-SERVICES`` /
``KUBE-NODEPORTS``, or the filter REJECT/DROP rules when there are no usable endpoints), the
health-check node port ACCEPT, the off-cluster masquerade rule, then the ``KUBE-EXT``,
``KUBE-FW``, ``KUBE-SVC``, ``KUBE-SVL`` and ``KUBE-SEP`` chains.  Service ports are taken in
``ns/name:port`` order (kube-proxy's Go-map order is undefined).  Not modelled: the
large-cluster mode that drops comments above 1000 endpoints, ``nodePortAddresses``
(every local address is a node-port address), partial syncs and stale-chain deletion
(``-X``) and the ``KUBE-PROXY-CANARY`` chains.  ``node_rules6`` is the IPv6 proxier's
document (the same code with the family's addresses, see its docstring).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from pktsim.kubeproxy.chains import (
    BUILTIN,
    EXTERNAL_SERVICES,
    FILTER_CHAINS,
    FORWARD,
    KUBELET_FIREWALL,
    MARK_MASQ,
    NAT_CHAINS,
    NFACCT_INVALID_DROPPED,
    NFACCT_LOCALHOST_NODEPORTS,
    NODEPORTS,
    NODEPORTS_LAST,
    POSTROUTING,
    PROXY_FIREWALL,
    SERVICES,
    chain_line,
    jump_rules,
    quote,
)
from pktsim.kubeproxy.ports import Endpoint, ProxyConfig, ServicePortInfo, service_ports
from pktsim.kubeproxy.tables import RuleMaker, restore_direct
from pktsim.kubeproxy.topology import categorize
from pktsim.model.cluster import ClusterModel
from pktsim.netfilter.document import Item, RuleLine
from pktsim.netfilter.rules import Rule, Table
from pktsim.netfilter.save import read_line


def probability(n: int) -> str:
    """``computeProbability``: ``fmt.Sprintf("%0.10f", 1.0/float64(n))``."""
    return f"{1.0 / n:0.10f}"


class _NatRules:
    """kube-proxy's nat rules ``LineBuffer``: text lines (``text``); or, with a maker, the
    document items they stand for (``items``): each line read by the maker's rule reader,
    and the per-endpoint rules (95% of a big cluster's) made directly, without text."""

    __slots__ = ("items", "maker", "text")

    def __init__(self, maker: RuleMaker | None) -> None:
        self.maker = maker
        self.text: list[str] = []
        self.items: list[Item] = []

    def append(self, line: str) -> None:
        if self.maker is None:
            self.text.append(line)
        else:
            self.items.append(read_line(line, self.maker.rule))

    def made(self, chain: str, rule: Rule) -> None:
        """``-A chain <rule>`` for a rule the maker made."""
        self.items.append(RuleLine(chain, rule))


@dataclass(slots=True)
class _Out:
    """kube-proxy's four ``LineBuffer``s (the nat rules' one knows the ``maker``)."""

    filter_chains: list[str] = field(default_factory=list)
    filter_rules: list[str] = field(default_factory=list)
    nat_chains: list[str] = field(default_factory=list)
    maker: RuleMaker | None = None
    nat_rules: _NatRules = field(init=False)

    def __post_init__(self) -> None:
        self.nat_rules = _NatRules(self.maker)


@dataclass(frozen=True, slots=True)
class _Ctx:
    cfg: ProxyConfig
    cidr: IPv4Network | IPv6Network | None  # the local-traffic detector's (None: none)
    node_ip: IPv4Address | IPv6Address | None
    node: str = ""  # the node's name and zone, for CategorizeEndpoints' topology
    zone: str = ""
    ipv6: bool = False  # the IPv6 proxier's rules (ip6tables)


def _w(buf: list[str] | _NatRules, *words: str) -> None:
    buf.append(" ".join(words))


@dataclass(slots=True)
class _Plan:
    """``syncProxyRules``'s per-service-port decisions."""

    cluster: list[Endpoint]
    local: list[Endpoint]
    reachable: list[Endpoint]
    has_endpoints: bool
    has_internal: bool
    has_external: bool
    internal_chain: str
    external_policy_chain: str
    uses_ext: bool
    uses_fw: bool
    int_target: str = ""
    int_comment: str = ""
    ext_target: str = ""
    ext_comment: str = ""


def _plan(ctx: _Ctx, sp: ServicePortInfo) -> _Plan:
    cluster, local, reachable, has = categorize(sp, ctx.node, ctx.zone)
    p = _Plan(cluster, local, reachable, has,
              has and (not sp.internal_local or bool(local)),
              has and (not sp.external_local or bool(local)),
              sp.svl_chain if sp.internal_local else sp.svc_chain,
              sp.svl_chain if sp.external_local else sp.svc_chain,
              has and sp.externally_accessible,
              has and bool(sp.lb_vips) and bool(sp.source_ranges))
    if not has:
        p.int_target = p.ext_target = "REJECT"
        p.int_comment = p.ext_comment = quote(f"{sp.name} has no endpoints")
    if has and not p.has_internal:
        p.int_target, p.int_comment = "DROP", quote(f"{sp.name} has no local endpoints")
    if has and not p.has_external:
        p.ext_target, p.ext_comment = "DROP", quote(f"{sp.name} has no local endpoints")
    return p


def _capture_cluster_ip(out: _Out, sp: ServicePortInfo, p: _Plan) -> None:
    match = ("-m", sp.protocol, "-p", sp.protocol, "-d", str(sp.cluster_ip),
             "--dport", str(sp.port))
    if p.has_internal:
        _w(out.nat_rules, "-A", SERVICES, "-m", "comment", "--comment",
           quote(f"{sp.name} cluster IP"), *match, "-j", p.internal_chain)
    else:
        _w(out.filter_rules, "-A", SERVICES, "-m", "comment", "--comment", p.int_comment,
           *match, "-j", p.int_target)


def _capture_external(out: _Out, sp: ServicePortInfo, p: _Plan) -> None:
    """External IPs, then load-balancer IPs (``Capture externalIPs``/``load-balancer``)."""
    proto = ("-m", sp.protocol, "-p", sp.protocol)
    for ip in sp.external_ips:
        dst = ("-d", str(ip), "--dport", str(sp.port))
        if p.has_endpoints:
            _w(out.nat_rules, "-A", SERVICES, "-m", "comment", "--comment",
               quote(f"{sp.name} external IP"), *proto, *dst, "-j", sp.ext_chain)
        if not p.has_external:
            _w(out.filter_rules, "-A", EXTERNAL_SERVICES, "-m", "comment", "--comment",
               p.ext_comment, *proto, *dst, "-j", p.ext_target)
    lb_chain = sp.fw_chain if p.uses_fw else sp.ext_chain
    for ip in sp.lb_vips:
        dst = ("-d", str(ip), "--dport", str(sp.port))
        if p.has_endpoints:
            _w(out.nat_rules, "-A", SERVICES, "-m", "comment", "--comment",
               quote(f"{sp.name} loadbalancer IP"), *proto, *dst, "-j", lb_chain)
        if p.uses_fw:
            _w(out.filter_rules, "-A", PROXY_FIREWALL, "-m", "comment", "--comment",
               quote(f"{sp.name} traffic not accepted by {sp.fw_chain}"), *proto, *dst,
               "-j", "DROP")
    if not p.has_external:
        for ip in sp.lb_vips:
            _w(out.filter_rules, "-A", EXTERNAL_SERVICES, "-m", "comment", "--comment",
               p.ext_comment, *proto, "-d", str(ip), "--dport", str(sp.port),
               "-j", p.ext_target)


def _capture_node_ports(out: _Out, ctx: _Ctx, sp: ServicePortInfo, p: _Plan) -> None:
    """The node port, then the health-check node port (filter ``KUBE-NODEPORTS``)."""
    proto = ("-m", sp.protocol, "-p", sp.protocol)
    if sp.node_port:
        port = str(sp.node_port)
        if p.has_endpoints:
            if ctx.cfg.localhost_node_ports and ctx.cfg.nfacct:
                _w(out.nat_rules, "-A", NODEPORTS, "-m", "comment", "--comment", sp.name,
                   *proto, "-d", "127.0.0.0/8", "--dport", port, "-m", "nfacct",
                   "--nfacct-name", NFACCT_LOCALHOST_NODEPORTS, "-j", sp.ext_chain)
            _w(out.nat_rules, "-A", NODEPORTS, "-m", "comment", "--comment", sp.name,
               *proto, "--dport", port, "-j", sp.ext_chain)
        if not p.has_external:
            _w(out.filter_rules, "-A", EXTERNAL_SERVICES, "-m", "comment", "--comment",
               p.ext_comment, "-m", "addrtype", "--dst-type", "LOCAL", *proto,
               "--dport", port, "-j", p.ext_target)
    if sp.health_check_node_port:
        _w(out.filter_rules, "-A", NODEPORTS, "-m", "comment", "--comment",
           quote(f"{sp.name} health check node port"), "-m", "tcp", "-p", "tcp",
           "--dport", str(sp.health_check_node_port), "-j", "ACCEPT")


def _internal_masquerade(out: _Out, ctx: _Ctx, sp: ServicePortInfo, p: _Plan) -> None:
    """``! -s <clusterCIDR> -j KUBE-MARK-MASQ`` first in the cluster IP's chain."""
    if not p.has_internal:
        return
    args = ("-A", p.internal_chain, "-m", "comment", "--comment", quote(f"{sp.name} cluster IP"),
            "-m", sp.protocol, "-p", sp.protocol, "-d", str(sp.cluster_ip),
            "--dport", str(sp.port))
    if ctx.cfg.masquerade_all:
        _w(out.nat_rules, *args, "-j", MARK_MASQ)
    elif ctx.cidr is not None:
        _w(out.nat_rules, *args, "!", "-s", str(ctx.cidr), "-j", MARK_MASQ)


def _ext_chain(out: _Out, ctx: _Ctx, sp: ServicePortInfo, p: _Plan) -> None:
    """``KUBE-EXT-<h>``: masquerade (Cluster policy) or the Local short-circuits."""
    if not p.uses_ext:
        return
    ext, name = sp.ext_chain, sp.name
    out.nat_chains.append(chain_line(ext))
    if not sp.external_local:
        _w(out.nat_rules, "-A", ext, "-m", "comment", "--comment",
           quote(f"masquerade traffic for {name} external destinations"), "-j", MARK_MASQ)
    else:
        if ctx.cidr is not None:
            _w(out.nat_rules, "-A", ext, "-m", "comment", "--comment",
               quote(f"pod traffic for {name} external destinations"), "-s", str(ctx.cidr),
               "-j", sp.svc_chain)
        _w(out.nat_rules, "-A", ext, "-m", "comment", "--comment",
           quote(f"masquerade LOCAL traffic for {name} external destinations"),
           "-m", "addrtype", "--src-type", "LOCAL", "-j", MARK_MASQ)
        _w(out.nat_rules, "-A", ext, "-m", "comment", "--comment",
           quote(f"route LOCAL traffic for {name} external destinations"),
           "-m", "addrtype", "--src-type", "LOCAL", "-j", sp.svc_chain)
    if p.has_external:
        _w(out.nat_rules, "-A", ext, "-j", p.external_policy_chain)


def _fw_chain(out: _Out, ctx: _Ctx, sp: ServicePortInfo, p: _Plan) -> None:
    """``KUBE-FW-<h>``: one ``-s <range>`` rule per loadBalancerSourceRange."""
    if not p.uses_fw:
        return
    out.nat_chains.append(chain_line(sp.fw_chain))
    args = ("-A", sp.fw_chain, "-m", "comment", "--comment", quote(f"{sp.name} loadbalancer IP"))
    from_node = False
    for cidr in sp.source_ranges:
        _w(out.nat_rules, *args, "-s", str(cidr), "-j", sp.ext_chain)
        from_node = from_node or (ctx.node_ip is not None and ctx.node_ip in cidr)
    if from_node:
        for ip in sp.lb_vips:
            _w(out.nat_rules, *args, "-s", str(ip), "-j", sp.ext_chain)
    _w(out.nat_rules, "-A", sp.fw_chain, "-m", "comment", "--comment",
       quote(f"other traffic to {sp.name} will be dropped by KUBE-PROXY-FIREWALL"))


def _dispatch(out: _Out, sp: ServicePortInfo, chain: str, endpoints: list[Endpoint]) -> None:
    """``writeServiceToEndpointRules``: affinity checks, then the random spread."""
    out.nat_chains.append(chain_line(chain))
    if sp.affinity_seconds is not None:
        for ep in endpoints:
            _w(out.nat_rules, "-A", chain, "-m", "comment", "--comment",
               quote(f"{sp.name} -> {ep.addr}"), "-m", "recent", "--name", ep.chain,
               "--rcheck", "--seconds", str(sp.affinity_seconds), "--reap", "-j", ep.chain)
    n, maker = len(endpoints), out.maker
    for i, ep in enumerate(endpoints):
        chance = probability(n - i) if i < n - 1 else None
        comment = f"{sp.name} -> {ep.addr}"
        if maker is not None:
            out.nat_rules.made(chain, maker.jump(comment, chance, ep.chain))
            continue
        spread = ("-m", "statistic", "--mode", "random", "--probability", chance) \
            if chance is not None else ()
        _w(out.nat_rules, "-A", chain, "-m", "comment", "--comment", quote(comment), *spread,
           "-j", ep.chain)


def _endpoint_chains(out: _Out, sp: ServicePortInfo, endpoints: list[Endpoint]) -> None:
    """``KUBE-SEP-<h>``: hairpin masquerade, then DNAT (with the affinity ``--set``)."""
    maker = out.maker if sp.affinity_seconds is None and sp.protocol in ("tcp", "udp") \
        else None
    for ep in endpoints:
        out.nat_chains.append(chain_line(ep.chain))
        if maker is not None and isinstance(ep.ip, IPv4Address):  # IPv4 tables only
            out.nat_rules.made(ep.chain, maker.masquerade_from(sp.name, ep.ip, MARK_MASQ))
            out.nat_rules.made(ep.chain, maker.dnat(sp.name, sp.protocol, ep.ip, ep.port))
            continue
        args: tuple[str, ...] = ("-A", ep.chain, "-m", "comment", "--comment", sp.name)
        _w(out.nat_rules, *args, "-s", str(ep.ip), "-j", MARK_MASQ)
        if sp.affinity_seconds is not None:
            args += ("-m", "recent", "--name", ep.chain, "--set")
        _w(out.nat_rules, *args, "-m", sp.protocol, "-p", sp.protocol, "-j", "DNAT",
           "--to-destination", ep.addr)


def _service(out: _Out, ctx: _Ctx, sp: ServicePortInfo) -> None:
    p = _plan(ctx, sp)
    _capture_cluster_ip(out, sp, p)
    _capture_external(out, sp, p)
    _capture_node_ports(out, ctx, sp, p)
    _internal_masquerade(out, ctx, sp, p)
    _ext_chain(out, ctx, sp, p)
    _fw_chain(out, ctx, sp, p)
    if p.cluster and sp.uses_cluster_endpoints:
        _dispatch(out, sp, sp.svc_chain, p.cluster)
    if p.local and sp.uses_local_endpoints:
        _dispatch(out, sp, sp.svl_chain, p.local)
    _endpoint_chains(out, sp, p.reachable)


def _preamble(out: _Out, cfg: ProxyConfig) -> None:
    """Top-level chain lines, KUBE-POSTROUTING, KUBE-MARK-MASQ and KUBE-FIREWALL."""
    out.filter_chains += [chain_line(c) for c in FILTER_CHAINS]
    out.nat_chains += [chain_line(c) for c in NAT_CHAINS]
    mark = cfg.mark
    _w(out.nat_rules, "-A", POSTROUTING, "-m", "mark", "!", "--mark", f"{mark}/{mark}",
       "-j", "RETURN")
    _w(out.nat_rules, "-A", POSTROUTING, "-j", "MARK", "--xor-mark", mark)
    fully = ("--random-fully",) if cfg.random_fully else ()
    _w(out.nat_rules, "-A", POSTROUTING, "-m", "comment", "--comment",
       quote("kubernetes service traffic requiring SNAT"), "-j", "MASQUERADE", *fully)
    _w(out.nat_rules, "-A", MARK_MASQ, "-j", "MARK", "--or-mark", mark)
    if cfg.localhost_node_ports:
        out.filter_chains.append(chain_line(KUBELET_FIREWALL))
        _w(out.filter_rules, "-A", KUBELET_FIREWALL, "-m", "comment", "--comment",
           quote("block incoming localnet connections"), "-d", "127.0.0.0/8", "!", "-s",
           "127.0.0.0/8", "-m", "conntrack", "!", "--ctstate", "RELATED,ESTABLISHED,DNAT",
           "-j", "DROP")


def _trailer(out: _Out, cfg: ProxyConfig, ipv6: bool) -> None:
    """The last KUBE-SERVICES rule (to KUBE-NODEPORTS) and the KUBE-FORWARD rules.
    Localhost node ports never work over IPv6 (no ``route_localnet``), so the IPv6 jump
    always leaves out ``::1`` (``syncProxyRules``: ``if isIPv6 { "!", "-d", "::1/128" }``)."""
    local_only = ("!", "-d", "::1/128") if ipv6 else () if cfg.localhost_node_ports \
        else ("!", "-d", "127.0.0.0/8")
    _w(out.nat_rules, "-A", SERVICES, "-m", "comment", "--comment", NODEPORTS_LAST,
       "-m", "addrtype", "--dst-type", "LOCAL", *local_only, "-j", NODEPORTS)
    if not cfg.conntrack_tcp_liberal:
        acct = ("-m", "nfacct", "--nfacct-name", NFACCT_INVALID_DROPPED) if cfg.nfacct else ()
        _w(out.filter_rules, "-A", FORWARD, "-m", "conntrack", "--ctstate", "INVALID", *acct,
           "-j", "DROP")
    mark = cfg.mark
    _w(out.filter_rules, "-A", FORWARD, "-m", "comment", "--comment",
       quote("kubernetes forwarding rules"), "-m", "mark", "--mark", f"{mark}/{mark}",
       "-j", "ACCEPT")
    _w(out.filter_rules, "-A", FORWARD, "-m", "comment", "--comment",
       quote("kubernetes forwarding conntrack rule"), "-m", "conntrack",
       "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT")


def _build(model: ClusterModel, node_name: str, cfg: ProxyConfig,
           maker: RuleMaker | None = None, family: str = "IPv4") -> _Out:
    if node_name not in model.nodes:
        raise KeyError(f"no node {node_name!r} in the model ({', '.join(model.nodes)})")
    info = model.nodes[node_name]
    ctx = _Ctx(cfg, (cfg.cluster_cidr or model.config.pod_cidr) if cfg.detect_local else None,
               info.ip, node_name, info.zone)
    if family == "IPv6":
        # the IPv6 proxier: its nodePortAddresses never contain 127.0.0.1, so
        # localhostNodePorts is off (NewProxier: ``!nodePortAddresses.ContainsIPv4Loopback()``)
        # and neither the 127.0.0.0/8 node-port rules nor KUBE-FIREWALL are written
        cfg = replace(cfg, localhost_node_ports=False)
        ctx = _Ctx(cfg, (cfg.cluster_cidr6 or model.config.pod_cidr6) if cfg.detect_local
                   else None, info.ip6, node_name, info.zone, ipv6=True)
    out = _Out(maker=maker)
    _preamble(out, cfg)
    for sp in service_ports(model, node_name, family):
        _service(out, ctx, sp)
    _trailer(out, cfg, ctx.ipv6)
    return out


def _table(name: str, chains: list[str], rules: list[str]) -> str:
    return "".join(f"{line}\n" for line in [f"*{name}", *chains, *rules, "COMMIT"])


def restore_data(model: ClusterModel, node_name: str, config: ProxyConfig | None = None,
                 family: str = "IPv4") -> str:
    """Exactly what kube-proxy on ``node_name`` pipes to ``iptables-restore --noflush``
    (``family="IPv6"``: what its IPv6 proxier pipes to ``ip6tables-restore``)."""
    out = _build(model, node_name, config or ProxyConfig(), family=family)
    return (_table("filter", out.filter_chains, out.filter_rules)
            + _table("nat", out.nat_chains, out.nat_rules.text))


def node_rules(model: ClusterModel, node_name: str, config: ProxyConfig | None = None) -> str:
    """The node's complete kube-proxy ``filter`` and ``nat`` tables as one restore document.

    Built-in chains (policy ACCEPT), every chain kube-proxy declares, the jump rules, then
    kube-proxy's own rules in the order it writes them; loadable without ``--noflush``.
    """
    return "".join(f"{line}\n" for line in _document(_build(model, node_name,
                                                            config or ProxyConfig())))


def node_rules6(model: ClusterModel, node_name: str, config: ProxyConfig | None = None) -> str:
    """The node's ip6tables ``filter`` and ``nat`` tables, as kube-proxy's IPv6 proxier
    leaves them: one restore document, loadable without ``--noflush`` into an empty
    namespace, like ``node_rules``.

    A dual-stack kube-proxy runs one proxier per family (``NewDualStackProxier``,
    ``pkg/proxy/iptables/proxier.go``), with the same chains, hashes, masquerade mark and
    comments; the IPv6 one writes the Services that have an IPv6 ClusterIP
    (``ServiceInfo.cluster_ip6``) with their IPv6 endpoints (``PortInfo.endpoints6``),
    ``-d fd00:10:96::a``, ``--to-destination [fd00:10:244::2]:53``, the IPv6 pod CIDR in
    the masquerade rule (``! -s fd00:10:244::/56``, ``ProxyConfig.cluster_cidr6`` else the
    model's ``pod_cidr6``), ``-j REJECT`` (ip6tables' default is
    ``icmp6-port-unreachable``), no localhost node ports (no ``-d 127.0.0.0/8`` rules, no
    ``KUBE-FIREWALL``: kubelet adds that chain and its jumps for IPv4 only,
    ``syncIPTablesRules``, "ipv6 doesn't have this issue"), and the ``KUBE-NODEPORTS``
    jump with ``-m addrtype --dst-type LOCAL ! -d ::1/128``.  Without Services of the
    family it is kube-proxy's base chains and rules only.  The node's NodePorts are the
    IPv4 proxier's numbers (one ``nodePort`` per Service port, both families).
    """
    out = _build(model, node_name, config or ProxyConfig(), family="IPv6")
    return "".join(f"{line}\n" for line in _document(out, kubelet=False))


def node_tables(model: ClusterModel, node_name: str,
                config: ProxyConfig | None = None) -> dict[str, Table]:
    """``restore_tables(node_rules(...))``, the per-endpoint rules made without their text
    (a 10,000-Service cluster has 470,000 rules: writing and reading them took 12 s)."""
    cfg = config or ProxyConfig()
    return restore_direct(lambda maker: _items(_build(model, node_name, cfg, maker)),
                          lambda: node_rules(model, node_name, cfg))


def _document(out: _Out, kubelet: bool = True) -> list[str]:
    """The lines of the ``node_rules`` document (``out`` written as text; ``kubelet``:
    with kubelet's IPv4-only ``KUBE-FIREWALL`` chain and jumps)."""
    head, nat_head = _frame(out, kubelet)
    return [*head, *nat_head, *out.nat_rules.text, "COMMIT"]


def _items(out: _Out) -> list[Item]:
    """The ``node_rules`` document as items (``out`` built with a maker)."""
    assert out.maker is not None
    head, nat_head = _frame(out)
    rule = out.maker.rule
    return [*(read_line(line, rule) for line in (*head, *nat_head)), *out.nat_rules.items,
            read_line("COMMIT", rule)]


def _frame(out: _Out, kubelet: bool = True) -> tuple[list[str], list[str]]:
    """The document around the nat rules: the whole filter table, and the nat table's
    chain declarations and jump rules."""
    jumps = jump_rules(kubelet)
    builtin = {t: [f":{c} ACCEPT [0:0]" for c in chains] for t, chains in BUILTIN.items()}
    filter_chains = list(out.filter_chains)
    if kubelet and chain_line(KUBELET_FIREWALL) not in filter_chains:  # EnsureChain made it
        filter_chains.append(chain_line(KUBELET_FIREWALL))
    return (["*filter", *builtin["filter"], *filter_chains, *jumps["filter"],
             *out.filter_rules, "COMMIT"],
            ["*nat", *builtin["nat"], *out.nat_chains, *jumps["nat"]])
