"""Services as the API server and the EndpointSlice controller leave them.

Theory of operation
-------------------
* **ClusterIPs.** What the manifest gives is kept (it must lie in ``serviceCIDR``).  The
  ``kubernetes`` Service always takes the 1st address and ``kube-dns`` the 10th (kubeadm's
  ``GetDNSIP`` in ``cmd/kubeadm/app/constants/constants.go``).  Others are drawn at random,
  seeded per service, from the upper band of the range: since KEP-3070 the lower
  ``min(max(16, size/16), 256)`` addresses are left for static assignment, as the API server
  does.
* **NodePorts** (30000-32767) are kept or drawn at random, seeded, among the free ones;
  **LoadBalancer** addresses come from ``loadBalancerCIDR`` in order from ``.1``, as a pool
  allocator (MetalLB) hands out the first free address, unless ``status.loadBalancer`` says.
* **Endpoints.** An ``EndpointSlice`` in the stream wins for its service.  Otherwise every pod
  in the namespace whose labels match the selector is an endpoint, ready as the pod is, for
  each service port whose ``targetPort`` resolves in that pod (a name must name a container
  port with the same protocol; a number is taken as is).  A not-ready pod is listed with
  ``ready: false``; consumers decide (kube-proxy skips it, unless
  ``publishNotReadyAddresses``).  A pod's hostname goes with its endpoint when the pod's
  ``subdomain`` is the service's name (kubernetes/website ``dns-pod-service.md``, "Pod's
  hostname and subdomain fields").  Each endpoint carries its node's zone and the topology
  hints the Service's ``trafficDistribution`` asks for (``pktsim.model.topology``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from typing import Generic, TypeVar

from pktsim.core.seeding import stream_digest
from pktsim.errors import ScenarioError
from pktsim.model.families import service_families
from pktsim.model.objects import (
    ClusterConfig,
    Endpoint,
    EndpointSlice,
    Pod,
    Service,
    ServicePort,
    Source,
)
from pktsim.model.topology import hints

NODE_PORT_RANGE = (30000, 32767)
IP = TypeVar("IP", IPv4Address, IPv6Address)


@dataclass(frozen=True, slots=True)
class EndpointAddr(Generic[IP]):
    """One address of an EndpointSlice (``IPv4Address`` in an IPv4 slice, ``IPv6Address``
    in an IPv6 one: the controller makes one slice per address type)."""

    ip: IP
    port: int
    ready: bool = True
    node: str = ""
    hostname: str = ""
    pod: str = ""  # "ns/name"
    # EndpointSlice conditions; for a pod of the selector as the EndpointSlice controller
    # sets them (``podToEndpoint``, pkg/controller/util/endpointslice): serving = the pod's
    # Ready condition, terminating = a deletion timestamp, ready = serving and not terminating
    serving: bool = True
    terminating: bool = False
    # the endpoint's zone and its hints (pktsim.model.topology: what the controller sets
    # for a pod of the selector; a slice of the stream's as written)
    zone: str = ""
    for_zones: tuple[str, ...] = ()
    for_nodes: tuple[str, ...] = ()


@dataclass(slots=True)
class PortInfo:
    """One service port, resolved: what kube-proxy and CoreDNS need."""

    spec: ServicePort
    node_port: int | None = None
    endpoints: list[EndpointAddr[IPv4Address]] = field(default_factory=list)
    # the IPv6 slice's endpoints, for a Service with the IPv6 family (the NodePort is
    # shared: kube-proxy's IPv6 proxier opens the same port on the node's IPv6 addresses)
    endpoints6: list[EndpointAddr[IPv6Address]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def protocol(self) -> str:
        return self.spec.protocol


@dataclass(slots=True)
class ServiceInfo:
    service: Service
    cluster_ip: IPv4Address | None  # None: headless, ExternalName or without IPv4
    ports: list[PortInfo] = field(default_factory=list)
    load_balancer_ip: IPv4Address | None = None
    # the families as the API server resolves them (``ipFamilies``, the primary first:
    # pktsim.model.families) and the IPv6 ClusterIP (None: no IPv6 family, or
    # headless)
    families: tuple[str, ...] = ("IPv4",)
    cluster_ip6: IPv6Address | None = None
    load_balancer_ip6: IPv6Address | None = None

    @property
    def key(self) -> str:
        return self.service.key

    @property
    def headless(self) -> bool:
        return self.service.cluster_ip == "None"


def _err(src: Source | None, field_: str, value: object, message: str, valid: str) -> \
        ScenarioError:
    return ScenarioError(message, file=src.file if src else "",
                         document=src.document() if src else "", field=field_, value=value,
                         valid=valid)


def _draw(seed: int, name: str, size: int) -> int:
    return int.from_bytes(stream_digest(seed, name)[:8], "big") % size


def allocate_cluster_ips(services: list[Service], cfg: ClusterConfig) -> dict[str, IPv4Address]:
    """IPv4 ClusterIP per service key (headless and ExternalName services, and those without
    the IPv4 family, get none)."""
    wanted = [s for s in services if "IPv4" in service_families(s, cfg)]
    got = _allocate_ips(wanted, cfg.service_cidr, cfg, lambda s: s.cluster_ip,
                        cfg.primary_family == "IPv4", "clusterip", "spec.clusterIP")
    return {k: IPv4Address(int(v)) for k, v in got.items()}


def allocate_cluster_ips6(services: list[Service], cfg: ClusterConfig) -> dict[
        str, IPv6Address]:
    """IPv6 ClusterIP per service key with the IPv6 family, from ``service_cidr6`` as the
    IPv4 one is from ``service_cidr``: the API server runs one allocator per service CIDR
    (``ipallocator.Range``, kubernetes pkg/registry/core/service/ipallocator), each with
    the same static band; the kubernetes and kube-dns Services take their fixed addresses
    in the primary family only (their secondary family, if any, is drawn)."""
    if not cfg.has_ipv6:
        return {}
    wanted = [s for s in services if "IPv6" in service_families(s, cfg)]
    got = _allocate_ips(wanted, cfg.service_cidr6, cfg, lambda s: s.cluster_ip6,
                        cfg.primary_family == "IPv6", "clusterip6", "spec.clusterIPs")
    return {k: IPv6Address(int(v)) for k, v in got.items()}


Address = IPv4Address | IPv6Address


def _allocate_ips(services: list[Service], net: IPv4Network | IPv6Network, cfg: ClusterConfig,
                  given: Callable[[Service], str | None], primary: bool, draw: str,
                  field_: str) -> dict[str, Address]:
    """One family's allocator: manifests' addresses first, kubeadm's fixed ones (in the
    primary family), then a seeded draw in the upper band (KEP-3070)."""
    taken: dict[Address, str] = {}
    out: dict[str, Address] = {}
    fixed: dict[str, Address] = {"default/kubernetes": net.network_address + 1,
                                 "kube-system/kube-dns": net.network_address + 10} \
        if primary else {}
    pending = []
    present = {s.key for s in services}
    # kubeadm's addresses are the kubernetes and kube-dns Services' before any other asks
    # for them: a Service that does is the one in conflict, not the add-on
    taken.update({ip: key for key, ip in fixed.items() if key in present})
    for svc in services:
        if svc.type == "ExternalName" or svc.cluster_ip == "None":
            continue
        text = given(svc)
        ip = ip_address(text) if text else fixed.get(svc.key)
        if ip is None:
            pending.append(svc)
            continue
        if ip not in net:
            raise _err(svc.source, field_, str(ip), f"is outside the service "
                       f"CIDR {net}", f"an address in {net}")
        if taken.get(ip, svc.key) != svc.key:
            owner = taken[ip]
            why = " (kubeadm gives it the service CIDR's 10th address)" \
                if owner == "kube-system/kube-dns" else ""
            raise _err(svc.source, field_, str(ip), f"is already allocated to "
                       f"{owner}{why}", "a free address, or none to allocate one")
        taken[ip] = svc.key
        out[svc.key] = ip
    band = min(max(16, net.num_addresses // 16), 256)
    size = net.num_addresses - band - 1
    for svc in pending:
        offset = _draw(cfg.seed, f"{draw}/{svc.key}", size)
        for step in range(size):
            ip = net.network_address + band + (offset + step) % size
            if ip not in taken:
                break
        else:
            raise _err(svc.source, field_, None, f"the service CIDR {net} is full",
                       "a larger Cluster.spec.serviceCIDR")
        taken[ip] = svc.key
        out[svc.key] = ip
    return out


def allocate_node_ports(services: list[Service], seed: int) -> dict[tuple[str, int], int]:
    """NodePort per (service key, port index) for NodePort and LoadBalancer services."""
    lo, hi = NODE_PORT_RANGE
    taken = {p.node_port for s in services for p in s.ports if p.node_port}
    out: dict[tuple[str, int], int] = {}
    for svc in services:
        if svc.type not in ("NodePort", "LoadBalancer"):
            continue
        for index, port in enumerate(svc.ports):
            chosen = port.node_port
            if chosen is None:
                offset = _draw(seed, f"nodeport/{svc.key}/{index}", hi - lo + 1)
                chosen = next(lo + (offset + k) % (hi - lo + 1) for k in range(hi - lo + 1)
                              if lo + (offset + k) % (hi - lo + 1) not in taken)
                taken.add(chosen)
            out[(svc.key, index)] = chosen
    return out


def allocate_health_check_ports(services: list[Service], seed: int,
                                node_ports: dict[tuple[str, int], int]) -> dict[str, int]:
    """``healthCheckNodePort`` for LoadBalancer services with ``externalTrafficPolicy:
    Local``, drawn from the NodePort range as the API server does, unless given."""
    lo, hi = NODE_PORT_RANGE
    taken = set(node_ports.values()) | {s.health_check_node_port for s in services
                                        if s.health_check_node_port}
    out: dict[str, int] = {}
    for svc in services:
        if svc.type != "LoadBalancer" or svc.external_traffic_policy != "Local":
            continue
        port = svc.health_check_node_port
        if port is None:
            offset = _draw(seed, f"healthcheck/{svc.key}", hi - lo + 1)
            port = next(lo + (offset + k) % (hi - lo + 1) for k in range(hi - lo + 1)
                        if lo + (offset + k) % (hi - lo + 1) not in taken)
            taken.add(port)
        out[svc.key] = port
    return out


def allocate_lb_ips(services: list[Service], pool: IPv4Network) -> dict[str, IPv4Address]:
    taken = {s.load_balancer_ip for s in services if s.load_balancer_ip is not None}
    out: dict[str, IPv4Address] = {}
    hosts = (ip for ip in pool.hosts() if ip not in taken)
    for svc in services:
        if svc.type != "LoadBalancer":
            continue
        ip = svc.load_balancer_ip or next(hosts, None)
        if ip is None:
            raise _err(svc.source, "status.loadBalancer.ingress", None,
                       f"the load balancer pool {pool} is exhausted",
                       "a larger Cluster.spec.loadBalancerCIDR")
        out[svc.key] = ip
    return out


def _selects(selector: dict[str, str] | None, labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in (selector or {}).items())


def _resolve_target(port: ServicePort, pod: Pod) -> int | None:
    target = port.target_port if port.target_port is not None else port.port
    if isinstance(target, int):
        return target
    for container in pod.containers:
        for cp in container.ports:
            if cp.name == target and cp.protocol == port.protocol:
                return cp.port
    return None


PodEntry = tuple[Pod, str, IPv4Address]


class PodIndex(Generic[IP]):
    """Pods by namespace and by label, so a selector looks at the pods that carry one of its
    labels, not at every pod of the cluster (10,000 Services x 150,000 pods otherwise).
    Lists keep creation order, which is the endpoints' order.  Entries are (pod, node, the
    pod's address of one family)."""

    def __init__(self, pods: Sequence[tuple[Pod, str, IP]]) -> None:
        self.by_label: dict[tuple[str, str, str], list[tuple[Pod, str, IP]]] = {}
        for entry in pods:
            pod = entry[0]
            for key, value in pod.labels.items():
                self.by_label.setdefault((pod.namespace, key, value), []).append(entry)

    def candidates(self, namespace: str, selector: dict[str, str]) -> list[tuple[Pod, str, IP]]:
        """The pods of ``namespace`` that may match ``selector`` (a superset, in order)."""
        lists = [self.by_label.get((namespace, k, v), []) for k, v in selector.items()]
        return min(lists, key=len) if lists else []


def slices_by_service(slices: list[EndpointSlice]) -> dict[tuple[str, str], list[EndpointSlice]]:
    """EndpointSlices by (namespace, service name), in stream order."""
    out: dict[tuple[str, str], list[EndpointSlice]] = {}
    for eps in slices:
        out.setdefault((eps.namespace, eps.service), []).append(eps)
    return out


def derive_endpoints(svc: Service, pods: list[PodEntry], slices: list[EndpointSlice], *,
                     index: PodIndex[IPv4Address] | None = None,
                     by_service: dict[tuple[str, str], list[EndpointSlice]] | None = None,
                     zones: Mapping[str, str] | None = None) -> list[PortInfo]:
    """Endpoints per service port, from the stream's IPv4 EndpointSlices or from the selector.

    ``pods``: (pod, node name, pod IP) in creation order.  ``index`` and ``by_service``
    (``PodIndex(pods)``, ``slices_by_service(slices)``) make it fast for many Services.
    ``zones``: each node's zone, which a pod's endpoint carries, with the hints the
    Service's ``trafficDistribution`` asks for (``pktsim.model.topology``).  The IPv6
    slice's endpoints are ``endpoint_lists`` with the IPv6 addresses
    (``pktsim.model.services6.derive_endpoints6``).
    """
    ports = [PortInfo(p) for p in svc.ports]
    lists = endpoint_lists(svc, pods, slices, "IPv4", lambda ep: ep.addresses, index=index,
                           by_service=by_service, zones=zones)
    for info, endpoints in zip(ports, lists, strict=True):
        info.endpoints = endpoints
    return ports


def endpoint_lists(svc: Service, pods: Sequence[tuple[Pod, str, IP]],
                   slices: list[EndpointSlice], address_type: str,
                   addresses: Callable[[Endpoint], Sequence[IP]], *,
                   index: PodIndex[IP] | None = None,
                   by_service: dict[tuple[str, str], list[EndpointSlice]] | None = None,
                   zones: Mapping[str, str] | None = None) -> list[list[EndpointAddr[IP]]]:
    """One family's endpoints per service port (``derive_endpoints``): the stream's slices
    of ``address_type`` (their endpoints' ``addresses``) win; else the selector's pods,
    each with its address of the family."""
    out: list[list[EndpointAddr[IP]]] = [[] for _ in svc.ports]
    mine = by_service.get((svc.namespace, svc.name), []) if by_service is not None else \
        [s for s in slices if s.namespace == svc.namespace and s.service == svc.name]
    mine = [s for s in mine if s.address_type == address_type]
    if mine:
        for spec, endpoints in zip(svc.ports, out, strict=True):
            for eps in mine:
                endpoints += _from_slice(spec, eps, addresses)
        return out
    if index is not None:
        pods = index.candidates(svc.namespace, svc.selector) if svc.selector else []
    for pod, node, ip in pods:
        if pod.namespace != svc.namespace or not _selects(svc.selector, pod.labels):
            continue
        hostname = pod.hostname if pod.subdomain == svc.name else ""
        ready = pod.ready and not pod.terminating
        zone = zones.get(node, "") if zones is not None else ""
        # trafficdist's endpointReady: the Ready condition as written, which
        # publishNotReadyAddresses makes true (podToEndpoint)
        for_zones, for_nodes = hints(svc.traffic_distribution, svc.topology_auto,
                                     ready or svc.publish_not_ready_addresses, zone, node)
        for spec, endpoints in zip(svc.ports, out, strict=True):
            target = _resolve_target(spec, pod)
            if target is not None:
                endpoints.append(EndpointAddr(
                    ip, target, ready, node, hostname, pod.key, serving=pod.ready,
                    terminating=pod.terminating, zone=zone, for_zones=for_zones,
                    for_nodes=for_nodes))
    return out


def _from_slice(spec: ServicePort, eps: EndpointSlice,
                addresses: Callable[[Endpoint], Sequence[IP]]) -> list[EndpointAddr[IP]]:
    out = []
    for sp in eps.ports:
        if sp.name != spec.name or sp.protocol != spec.protocol:
            continue
        for ep in eps.endpoints:
            for addr in addresses(ep):
                out.append(EndpointAddr(addr, sp.port, ep.ready, ep.node_name, ep.hostname,
                                        ep.target_pod, ep.serving, ep.terminating, ep.zone,
                                        ep.for_zones, ep.for_nodes))
    return out
