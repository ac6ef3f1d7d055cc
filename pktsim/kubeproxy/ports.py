"""What kube-proxy knows of each service port on one node, taken from the cluster model.

Theory of operation
-------------------
kube-proxy never looks at Services and EndpointSlices directly when it writes rules: its
``ServiceChangeTracker`` and ``EndpointSliceCache`` reduce them to one ``ServicePort`` per
(service, port) and a sorted endpoint list per service port.  ``service_ports`` does the same
from a ``ClusterModel``, as seen from node ``node_name``:

* headless services (ClusterIP ``None``) and ``ExternalName`` services are skipped
  (``ShouldSkipService``);
* ``protocol`` is lower-case; the external IPs, the load-balancer ingress IP and the
  ``loadBalancerSourceRanges`` are kept as given, those of the proxier's family (the IPv6
  proxier takes the IPv6 ClusterIP, load-balancer address and endpoints);
* ``externalTrafficPolicy: Local`` counts only for externally accessible services
  (``ExternalPolicyLocal``: type NodePort or LoadBalancer, or ClusterIP with external IPs);
  ``healthCheckNodePort`` counts only for LoadBalancer services with that policy
  (``NeedsHealthCheck``);
* ``sessionAffinity: ClientIP`` keeps its timeout (``StickyMaxAgeSeconds``);
* endpoints are deduplicated and sorted by their ``ip:port`` string, as
  ``endpointsMapFromEndpointInfo`` sorts them (``byEndpoint``), and an endpoint is local when
  its ``nodeName`` is this node.  Each keeps its ``ready``/``serving``/``terminating``
  conditions and its ``hints.forZones``/``forNodes`` for ``CategorizeEndpoints``
  (``pktsim.kubeproxy.topology``).  When the
  service has ``publishNotReadyAddresses`` and its endpoints come from the selector, every
  endpoint counts as ready: the EndpointSlice controller writes ``ready: true`` for them
  (``ready := service.Spec.PublishNotReadyAddresses || podutil.IsPodReady(pod)``).  Slices
  given in the scenario are taken as written.

Service ports come out sorted by their ``ns/name:port`` string.  kube-proxy walks a Go map,
so its order is undefined; sorting makes pktsim's output stable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Any

from pktsim.kubeproxy.hashes import (
    EXT,
    FW,
    SVC,
    SVL,
    endpoint_chain_name,
    join_host_port,
    service_chain_name,
    service_port_name,
)
from pktsim.model.cluster import ClusterModel
from pktsim.model.services import EndpointAddr, PortInfo, ServiceInfo


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    """The kube-proxy settings that change its rules (defaults: kube-proxy's own)."""

    masquerade_bit: int = 14
    # "" = as kube-proxy formats it, fmt.Sprintf("%#08x", 1<<bit) -> "0x00004000"; the
    # upstream unit tests use a fake proxier with "0x4000"
    masquerade_mark: str = ""
    masquerade_all: bool = False
    # the local-traffic detector (DetectLocalByCIDR); None = the model's podCIDR (its IPv6
    # one for the IPv6 proxier: --cluster-cidr gives one CIDR per family)
    cluster_cidr: IPv4Network | None = None
    cluster_cidr6: IPv6Network | None = None
    detect_local: bool = True
    localhost_node_ports: bool = True  # iptables.localhostNodePorts
    random_fully: bool = True  # iptables supports MASQUERADE --random-fully
    nfacct: bool = False  # the kernel has nfnetlink_acct: kube-proxy adds -m nfacct counters
    conntrack_tcp_liberal: bool = False  # net.netfilter.nf_conntrack_tcp_be_liberal != 0

    @property
    def mark(self) -> str:
        return self.masquerade_mark or f"0x{1 << self.masquerade_bit:08x}"


@dataclass(frozen=True, slots=True)
class Endpoint:
    ip: IPv4Address | IPv6Address
    port: int
    local: bool
    ready: bool
    chain: str  # KUBE-SEP-...
    serving: bool = True
    terminating: bool = False
    zone_hints: frozenset[str] = frozenset()  # hints.forZones[].name
    node_hints: frozenset[str] = frozenset()  # hints.forNodes[].name

    @property
    def addr(self) -> str:
        """``Endpoint.String()``: ``ip:port``."""
        return join_host_port(self.ip, self.port)


@dataclass(slots=True)
class ServicePortInfo:
    """kube-proxy's ``servicePortInfo`` for one port of one service."""

    name: str  # "ns/name:port" (ServicePortName.String())
    protocol: str  # tcp | udp | sctp
    cluster_ip: IPv4Address | IPv6Address
    port: int
    node_port: int = 0
    external_ips: list[IPv4Address | IPv6Address] = field(default_factory=list)
    lb_vips: list[IPv4Address | IPv6Address] = field(default_factory=list)
    source_ranges: list[IPv4Network | IPv6Network] = field(default_factory=list)
    health_check_node_port: int = 0
    affinity_seconds: int | None = None  # ClientIP affinity timeout; None: no affinity
    internal_local: bool = False
    external_local: bool = False
    endpoints: list[Endpoint] = field(default_factory=list)

    def chain(self, prefix: str) -> str:
        return service_chain_name(self.name, self.protocol, prefix)

    @property
    def svc_chain(self) -> str:
        return self.chain(SVC)

    @property
    def svl_chain(self) -> str:
        return self.chain(SVL)

    @property
    def ext_chain(self) -> str:
        return self.chain(EXT)

    @property
    def fw_chain(self) -> str:
        return self.chain(FW)

    @property
    def externally_accessible(self) -> bool:
        return self.node_port != 0 or bool(self.lb_vips) or bool(self.external_ips)

    @property
    def uses_cluster_endpoints(self) -> bool:
        return not self.internal_local or self.externally_accessible

    @property
    def uses_local_endpoints(self) -> bool:
        return self.internal_local or (self.external_local and self.externally_accessible)


def _external_policy_local(info: ServiceInfo) -> bool:
    svc = info.service
    accessible = svc.type in ("NodePort", "LoadBalancer") or (
        svc.type == "ClusterIP" and bool(svc.external_ips))
    return accessible and svc.external_traffic_policy == "Local"


def _from_stream(model: ClusterModel, info: ServiceInfo) -> bool:
    svc = info.service
    return any(s.namespace == svc.namespace and s.service == svc.name
               for s in model.scenario.endpoint_slices)


def _endpoints(name: str, protocol: str, addrs: list[EndpointAddr[Any]], node: str,
               all_ready: bool) -> list[Endpoint]:
    seen: dict[str, Endpoint] = {}
    for a in addrs:
        text = join_host_port(a.ip, a.port)
        if text not in seen:
            seen[text] = Endpoint(a.ip, a.port, bool(node) and a.node == node,
                                  a.ready or all_ready,
                                  endpoint_chain_name(name, protocol, text),
                                  a.serving, a.terminating, frozenset(a.for_zones),
                                  frozenset(a.for_nodes))
    return [seen[k] for k in sorted(seen)]


def _service_port(model: ClusterModel, info: ServiceInfo, port: PortInfo,
                  node: str, family: str) -> ServicePortInfo:
    """One service port as the ``family`` proxier sees it: upstream's
    ``newBaseServiceInfo`` keeps the addresses of the proxier's family only (the
    ClusterIP of that family, ``MapIPsByIPFamily`` of the external and load-balancer IPs,
    ``MapCIDRsByIPFamily`` of the source ranges) and the endpoints of its slices."""
    svc = info.service
    name = service_port_name(svc.namespace, svc.name, port.name)
    protocol = port.protocol.lower()
    external_local = _external_policy_local(info)
    publish = svc.publish_not_ready_addresses and not _from_stream(model, info)
    version = 6 if family == "IPv6" else 4
    cluster_ip = info.cluster_ip6 if version == 6 else info.cluster_ip
    lb = info.load_balancer_ip6 if version == 6 else info.load_balancer_ip
    assert cluster_ip is not None
    endpoints: list[EndpointAddr[Any]] = list(port.endpoints6 if version == 6
                                              else port.endpoints)
    return ServicePortInfo(
        name, protocol, cluster_ip, port.spec.port, port.node_port or 0,
        [ip for ip in svc.external_ips if ip.version == version],
        [lb] if lb is not None else [],
        [net for net in svc.load_balancer_source_ranges if net.version == version],
        (svc.health_check_node_port or 0)
        if svc.type == "LoadBalancer" and external_local else 0,
        svc.session_affinity_timeout if svc.session_affinity == "ClientIP" else None,
        svc.internal_traffic_policy == "Local", external_local,
        _endpoints(name, protocol, endpoints, node, publish))


def service_ports(model: ClusterModel, node_name: str,
                  family: str = "IPv4") -> list[ServicePortInfo]:
    """Every proxied service port, sorted by name, as kube-proxy's ``family`` proxier on
    ``node_name`` sees it: the Services with a ClusterIP of that family (a dual-stack
    kube-proxy runs one proxier per family, ``NewDualStackProxier``)."""
    out = []
    for info in model.services.values():
        ip = info.cluster_ip6 if family == "IPv6" else info.cluster_ip
        if ip is None or info.headless or info.service.type == "ExternalName":
            continue
        out += [_service_port(model, info, port, node_name, family) for port in info.ports]
    out.sort(key=lambda sp: (sp.name, sp.protocol))
    return out
