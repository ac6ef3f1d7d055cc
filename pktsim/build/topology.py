"""Model -> devices: what kubelet, the CNI plugin and the node's setup create.

Per node: the root namespace (``forwarding`` on) with ``lo``, ``eth0`` on the node network and
the bridge interface (``cbr0``, the pods' gateway ``.1``); a learning ``Bridge``; the routes to
every other node's pod CIDR.  Per pod: a pause sandbox namespace with ``lo`` and ``eth0``, a
veth pair whose host side (``vethXXXXXXXX``, hairpin per ``hairpinMode``) is a bridge port, a
default route via the gateway, and a server on every declared ``containerPort``.  Pods with
``hostNetwork`` share the node's namespace.  All nodes' ``eth0`` meet on one switch.
``network: calico`` has no bridge: ``pktsim.build.calico`` gives its nodes and pods what
Calico's CNI plugin, BIRD and felix set up instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from ipaddress import IPv4Interface, IPv4Network
from types import ModuleType
from typing import Any

from pktsim.build import dualstack, overlay, portmap
from pktsim.build.external import RESOLVER_HOST, build_external
from pktsim.build.start import start_at_zero
from pktsim.core.capture import Interface, Sink
from pktsim.core.seeding import Streams
from pktsim.devices.apps import TcpServerApp, UdpEchoApp
from pktsim.devices.bridge import Bridge
from pktsim.devices.dnsapps import CoreDnsApp
from pktsim.devices.healthcheck import (
    PROXY_HEALTHZ_PORT,
    HealthServerApp,
    Response,
    proxy_healthz,
    service_health,
)
from pktsim.devices.l4 import App
from pktsim.devices.netns import Netns
from pktsim.devices.routes import Route
from pktsim.devices.tunnels import IpipDevice, VxlanDevice
from pktsim.dns import ClusterZone, CoreDns, ResolvConf, node_resolv_conf, resolv_conf
from pktsim.driver.driver import Driver
from pktsim.kubeproxy import node_rules
from pktsim.kubeproxy import rules as kubeproxy_rules
from pktsim.kubeproxy.tables import node_specific, restore_tables, sharing_key
from pktsim.model.addons import is_coredns
from pktsim.model.bulk import gc_paused
from pktsim.model.cluster import ClusterModel, NodeInfo, PodInfo
from pktsim.model.services import ServiceInfo
from pktsim.netfilter import (
    ConntrackConfig,
    Netfilter,
    Table,
    flannel_forward,
    flannel_masquerade,
)
from pktsim.netfilter.hooks6 import Netfilter6
from pktsim.netfilter.presets import canaries
from pktsim.netfilter.rules import BUILTIN_CHAINS
from pktsim.wire.parse import mac_str

DEFAULT_ROUTE = IPv4Network("0.0.0.0/0")
ZERO_MAC = b"\x00" * 6
NODE_NET_LATENCY = 20_000  # 20 µs across the node network
VETH_LATENCY = 1_000


def _calico() -> ModuleType:
    """``pktsim.build.calico``, imported by the first Calico cluster: felix's rules and
    policy model (~10 ms of imports) are never needed by flannel's modes (``pktsim check``
    on them, docs/performance.md "The command line")."""
    from pktsim.build import calico

    return calico


@dataclass(slots=True)
class Topology:
    """The built network: the driver and every device, by name."""

    model: ClusterModel
    driver: Driver
    node_ns: dict[str, Netns] = field(default_factory=dict)
    bridges: dict[str, Bridge] = field(default_factory=dict)
    pod_ns: dict[str, Netns] = field(default_factory=dict)
    switch: Bridge | None = None
    outside: Bridge | None = None
    router: Netns | None = None
    clients: dict[str, Netns] = field(default_factory=dict)
    tunnels: dict[str, VxlanDevice | IpipDevice] = field(default_factory=dict)
    tunnels6: dict[str, VxlanDevice] = field(default_factory=dict)  # flannel-v6.1 (vxlan)
    netfilters: dict[str, Netfilter] = field(default_factory=dict)
    netfilters6: dict[str, Netfilter6] = field(default_factory=dict)  # ip6tables, with IPv6
    # the random streams of this build: fresh per build, so every run of a cluster is the
    # same run (the model's own streams decided its addresses once, at allocation)
    streams: Streams = field(default_factory=lambda: Streams(0))
    # kube-proxy's tables, loaded once per distinct rule set and frozen: each node's
    # netfilter holds overlays of them (``install_netfilter``)
    kube_proxy_tables: dict[object, dict[str, Table]] = field(default_factory=dict)
    shared: dict[object, Any] = field(default_factory=dict)  # what every node has alike
    zones: list[ClusterZone] = field(default_factory=list)  # each CoreDNS pod's view
    # per node, kube-proxy's tables as it last wrote them (a felix sync keeps them)
    proxy_written: dict[str, dict[str, Table]] = field(default_factory=dict)
    # per node, the ready endpoints its kube-proxy counted per Service (health check ports)
    local_endpoints: dict[str, dict[str, int]] = field(default_factory=dict)

    def netns_of(self, host: str) -> Netns:
        """The namespace of a pod (``ns/name``), a node, ``external/NAME`` or ``external``."""
        if host in self.pod_ns:
            return self.pod_ns[host]
        if host in self.clients:
            return self.clients[host]
        if host == "external" and self.router is not None:
            return self.router
        return self.node_ns[host]


def build(model: ClusterModel, sinks: list[Sink] | None = None) -> Topology:
    """The devices of ``model`` (with the garbage collector paused: ``model.bulk``)."""
    with gc_paused():
        return _build(model, sinks)


def _build(model: ClusterModel, sinks: list[Sink] | None) -> Topology:
    cfg = model.config
    driver = Driver(sinks, start_time_ns=cfg.start_time_ns)
    topo = Topology(model, driver, streams=Streams(cfg.seed))
    topo.switch = Bridge("network", "nodes", b"\x02\x00\x00\x00\x00\x01", local=False)
    for node in model.node_list():
        _build_node(topo, node)
    build_external(topo)
    for node in model.node_list():
        if cfg.network == "calico":
            _calico().install(topo, node)
        else:
            overlay.install(topo, node)
            if node.ip6 is not None:
                dualstack.overlay_ipv6(topo, node)
        install_netfilter(topo, node)
        dualstack.install_netfilter6(topo, node)
    for pod in sorted(model.pods.values(), key=lambda p: (model.nodes[p.node].index, p.key)):
        build_pod(topo, pod)
    return topo


def _build_node(topo: Topology, node: NodeInfo) -> None:
    cfg = topo.model.config
    driver = topo.driver
    streams = topo.streams
    ns = Netns(node.name, forwarding=True, rng=streams.stream(f"netns/{node.name}"),
               new_pid=driver.new_pid)
    ns.add_iface("lo", b"\x00" * 6, mtu=65536, kind="loopback")
    ns.add_iface("eth0", node.eth0_mac)
    ns.add_addr("eth0", IPv4Interface(f"{node.ip}/{cfg.node_cidr.prefixlen}"))
    ns.add_route("0.0.0.0/0", "eth0", cfg.node_cidr.network_address + 1)
    topo.node_ns[node.name] = ns
    driver.loopback(ns, "lo", driver.add_interface(Interface(node.name, "lo",
                                                             description="node loopback")))
    eth0 = driver.add_interface(Interface(
        node.name, "eth0", description=f"node {node.name} eth0 {node.ip} "
        f"{mac_str(node.eth0_mac)} on the node network"))
    assert topo.switch is not None
    topo.switch.add_port(node.name)
    driver.connect(ns, "eth0", eth0, topo.switch, node.name, None, latency=NODE_NET_LATENCY)
    if cfg.network != "calico":
        _build_bridge(topo, node, ns)
    dualstack.node_ipv6(topo, node, ns)
    if node.index == 0:  # the control plane: kube-apiserver behind default/kubernetes
        start_at_zero(driver, ns, TcpServerApp(6443, f"kube-apiserver on {node.name}"))
    _health_servers(topo, node, ns)


def _health_servers(topo: Topology, node: NodeInfo, ns: Netns) -> None:
    """kube-proxy's ``:10256/healthz`` and, per LoadBalancer Service with
    ``externalTrafficPolicy: Local``, its ``healthCheckNodePort`` (``pktsim.devices.healthcheck``),
    answering with this node's count of distinct ready endpoint IPs."""
    start_at_zero(topo.driver, ns, HealthServerApp(PROXY_HEALTHZ_PORT, proxy_healthz))
    for info, port in health_checked(topo):
        start_at_zero(topo.driver, ns, HealthServerApp(port, partial(
            _local_health, topo, node.name, info.key)))
    count_local_endpoints(topo, node.name)


def health_checked(topo: Topology) -> list[tuple[ServiceInfo, int]]:
    """The Services with a ``healthCheckNodePort`` and the port, found once per build (not
    once per node: 10,000 Services on 5,000 nodes)."""
    found: list[tuple[ServiceInfo, int]] | None = topo.shared.get("health services")
    if found is None:
        found = topo.shared["health services"] = [
            (info, port) for info in topo.model.services.values()
            if (port := health_port(info)) is not None]
    return found


def health_port(info: ServiceInfo) -> int | None:
    """The ``healthCheckNodePort`` kube-proxy serves for the Service (None: none)."""
    svc = info.service
    if svc.type != "LoadBalancer" or svc.external_traffic_policy != "Local":
        return None
    return svc.health_check_node_port


def count_local_endpoints(topo: Topology, node: str) -> None:
    """What the node's health servers answer from now on: its distinct ready endpoint IPs
    per Service, as kube-proxy hands them over at each sync (``SyncEndpoints``)."""
    topo.local_endpoints[node] = {
        info.key: len({ep.ip for p in info.ports for ep in p.endpoints
                       if ep.ready and ep.node == node})
        for info, _ in health_checked(topo)}


def _local_health(topo: Topology, node: str, key: str, now: int) -> Response:
    namespace, _, name = key.partition("/")
    return service_health(namespace, name, topo.local_endpoints[node].get(key, 0))


def _build_bridge(topo: Topology, node: NodeInfo, ns: Netns) -> None:
    """The CNI bridge plugin's ``cbr0``: the pods' gateway, a port per pod's veth."""
    cfg, driver = topo.model.config, topo.driver
    ns.add_iface(cfg.bridge, node.bridge_mac, kind="bridge", mtu=overlay.pod_mtu(cfg.network))
    ns.add_addr(cfg.bridge, node.gateway)
    bridge = Bridge(node.name, cfg.bridge, node.bridge_mac)
    bridge.host_ns = ns  # net.bridge.bridge-nf-call-iptables=1, as kube-proxy requires
    topo.bridges[node.name] = bridge
    br_if = driver.add_interface(Interface(
        node.name, cfg.bridge, description=f"bridge {cfg.bridge} {node.gateway} "
        f"{mac_str(node.bridge_mac)}: the pods' gateway"))
    driver.connect(ns, cfg.bridge, br_if, bridge, cfg.bridge, None, latency=0)
    ns.add_iface(f"{cfg.bridge}.brnf", b"\x00" * 6, kind="brnf")  # br_netfilter's hand-off
    driver.connect(bridge, f"{cfg.bridge}.brnf", None, ns, f"{cfg.bridge}.brnf", None,
                   latency=0)


@dataclass(frozen=True, slots=True)
class _PodNet:
    """What every pod on one node has alike (its default route, prefix and MTU), made once:
    routes are immutable, so the node's 30 pods share one."""

    default: Route
    prefixlen: int
    mtu: int


def _pod_net(topo: Topology, node: str) -> _PodNet:
    key = ("pod net", node)
    found: _PodNet | None = topo.shared.get(key)
    if found is None:
        info = topo.model.nodes[node]
        found = topo.shared[key] = _PodNet(Route(DEFAULT_ROUTE, "eth0", info.gateway.ip),
                                           info.pod_cidr.prefixlen,
                                           overlay.pod_mtu(topo.model.config.network))
    return found


def build_pod(topo: Topology, info: PodInfo,
              start: Callable[[Netns, App], None] | None = None) -> None:
    """The pod's sandbox and its servers, started at 0 at build (``start``: how a pod made
    during the run starts them, at the driver's now)."""
    model, driver = topo.model, topo.driver
    pod, key = info.pod, info.key
    if start is None:
        start = partial(start_at_zero, driver)
    if pod.host_network:
        ns = topo.node_ns[info.node]
        topo.pod_ns[key] = ns
    elif model.config.network == "calico":
        ns = _calico().pod_netns(topo, info)
    else:
        ns = _pod_netns(topo, info, key)
    coredns = is_coredns(pod) and model.config.dns == "coredns"
    if coredns:
        start(ns, coredns_app(topo, info))
    for container in pod.containers:
        for port in container.ports:
            if coredns and port.port == 53:
                continue
            app = (TcpServerApp(port.port, f"{key} ({info.ip}:{port.port})")
                   if port.protocol == "TCP" else UdpEchoApp(port.port))
            start(ns, app)


def _pod_netns(topo: Topology, info: PodInfo, key: str) -> Netns:
    """The pod's sandbox: ``lo``, ``eth0`` and a veth to the node's bridge."""
    model, driver = topo.model, topo.driver
    net = _pod_net(topo, info.node)
    name = f"netns/{key}"
    ns = Netns(key, rng_factory=lambda: topo.streams.stream(name), new_pid=driver.new_pid)
    ns.add_iface("lo", ZERO_MAC, mtu=65536, kind="loopback")
    ns.add_iface("eth0", info.mac, mtu=net.mtu)
    ns.add_addr("eth0", IPv4Interface((int(info.ip), net.prefixlen)))
    ns.routes.add(net.default)  # ns.add_route("0.0.0.0/0", "eth0", gateway)
    dualstack.pod_ipv6(topo, info, ns)
    topo.pod_ns[key] = ns
    lo = driver.add_interface(Interface(key, "lo", description=f"pod {key} lo"))
    driver.loopback(ns, "lo", lo)
    eth0 = driver.add_interface(Interface(
        key, "eth0", description=f"pod {key} eth0 {info.ip} {mac_str(info.mac)}"
        f" (veth peer {info.veth} on {info.node})"))
    veth = driver.add_interface(Interface(
        info.node, info.veth, description=f"host side of pod {key}'s eth0, port of "
        f"{model.config.bridge}"))
    bridge = topo.bridges[info.node]
    bridge.add_port(info.veth, hairpin=model.config.hairpin_mode)
    driver.connect(ns, "eth0", eth0, bridge, info.veth, veth, latency=VETH_LATENCY)
    return ns


def coredns_app(topo: Topology, info: PodInfo) -> CoreDnsApp:
    """CoreDNS in ``info``'s pod: the kubeadm Corefile, forwarding to the node's resolver."""
    streams = topo.streams
    zone = ClusterZone(topo.model, rng=streams.stream(f"dns/{info.key}"),
                       local_ips=(info.ip,))
    core = CoreDns(zone, [upstream_ip(topo.model)], streams.stream(f"coredns/{info.key}"))
    topo.zones.append(zone)  # a cluster that changes tells every CoreDNS (its informers)
    return CoreDnsApp(core)


def upstream_ip(model: ClusterModel) -> str:
    """The recursive resolver on the external network, every node's ``nameserver``."""
    return str(model.config.external_cidr.network_address + RESOLVER_HOST)


def pod_resolv_conf(model: ClusterModel, info: PodInfo) -> ResolvConf:
    """kubelet's ``/etc/resolv.conf`` for the pod (``GetPodDNS``, kubernetes
    ``pkg/kubelet/network/dns/dns.go``), from the model alone."""
    kube_dns = model.services.get("kube-system/kube-dns")
    dns_ip = str(kube_dns.cluster_ip) if kube_dns and kube_dns.cluster_ip else None
    return resolv_conf(info.pod, node_resolv_conf(upstream_ip(model)), dns_ip,
                       model.config.cluster_domain)


def install_netfilter(topo: Topology, node: NodeInfo) -> None:
    """The node's iptables: kube-proxy's rules (as it writes them) and the CNI's masquerade.

    pod -> pod keeps its source; pod -> anywhere outside the cluster CIDR is masqueraded to
    the node's address (flannel's FLANNEL-POSTRTG, ``masqRules`` in flannel
    ``pkg/trafficmngr/iptables/iptables.go``, for ``routes``, ``vxlan`` and ``ipip``).  On
    ``calico`` felix writes its own tables instead (``pktsim.felix``: its filter and nat
    chains, ``cali-nat-outgoing`` for the pool's ``natOutgoing``, and its IP sets).
    Nodes whose kube-proxy rules are the same (``sharing_key``) share them: the text is
    written and parsed once, and each node copies only the chains it changes.
    """
    ns = topo.node_ns[node.name]
    nf = Netfilter(ns, topo.streams.stream(f"netfilter/{node.name}"),
                   config=ConntrackConfig.kube_proxy())
    topo.proxy_written[node.name] = load_rules(topo, node, nf)
    ns.hooks = nf
    topo.netfilters[node.name] = nf


def load_rules(topo: Topology, node: NodeInfo, nf: Netfilter,
               kube_proxy: dict[str, Table] | None = None) -> dict[str, Table]:
    """Every table and IP set of the node, from the model as it is now, into ``nf``
    (emptied first: a sync during the run replaces them all; conntrack is kept).
    ``kube_proxy``: kube-proxy's frozen tables as it last wrote them (felix rewriting its
    own chains does not write kube-proxy's); returned, made afresh when not given."""
    cfg = topo.model.config
    nf.tables = {name: Table(name) for name in BUILTIN_CHAINS}
    nf.ipsets.sets.clear()
    shared = kube_proxy if kube_proxy is not None else _kube_proxy_shared(topo, node)
    nf.tables.update({name: table.overlay() for name, table in shared.items()})
    canaries(nf.tables)
    mapped = topo.shared.get("portmap pods")
    if mapped is None:
        mapped = topo.shared["portmap pods"] = portmap.mapped_pods(topo.model)
    if cfg.network == "calico":  # felix keeps its jumps above the portmap plugin's
        portmap.install(topo.model, node.name, nf.table("nat"), mapped)
        _calico().install_felix(topo, node, nf)
    else:  # the plugin prepends its masquerade jump at each pod's ADD, after flanneld's
        flannel_masquerade(nf.table("nat"), str(node.pod_cidr), str(cfg.pod_cidr))
        flannel_forward(nf.table("filter"), str(cfg.pod_cidr))
        portmap.install(topo.model, node.name, nf.table("nat"), mapped)
    nf.validate()
    return shared


def _kube_proxy_shared(topo: Topology, node: NodeInfo) -> dict[str, Table]:
    """kube-proxy's tables for ``node``: iptables-restore of its rules, parsed, validated
    and frozen once per distinct rule set (``sharing_key``)."""
    specific = topo.shared.get("kube-proxy node-specific")
    if specific is None:
        specific = topo.shared["kube-proxy node-specific"] = node_specific(topo.model)
    key = sharing_key(topo.model, node.name, specific)
    shared = topo.kube_proxy_tables.get(key)
    if shared is None:
        shared = {name: table.freeze() for name, table in
                  kube_proxy_tables(topo.model, node.name).items()}
        topo.kube_proxy_tables[key] = shared
    return shared


def kube_proxy_tables(model: ClusterModel, node: str) -> dict[str, Table]:
    """The tables iptables-restore makes of ``node_rules`` (the text is written and read
    only when ``node_rules`` was replaced, as tests do to feed in stale rules)."""
    if node_rules is not kubeproxy_rules.node_rules:
        return restore_tables(node_rules(model, node))
    return kubeproxy_rules.node_tables(model, node)
