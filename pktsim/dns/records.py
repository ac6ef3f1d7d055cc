"""What CoreDNS's kubernetes plugin knows about the cluster: its informer caches, indexed.

Theory of operation
-------------------
CoreDNS watches Services, EndpointSlices and Namespaces (coredns ``plugin/kubernetes``).
``ZoneIndex.from_model`` reduces the pktsim model to the same view:

* a ``Svc`` per Service: its ClusterIPs (none for headless and ExternalName), its ports, its
  ExternalName, and its endpoint ``Addr``\\ s;
* an ``Addr`` is one endpoint address with the ports it serves -- CoreDNS's
  ``EndpointSubset`` is the cartesian product of addresses and ports, which is what the
  per-port endpoint lists of ``pktsim.model.services`` become when grouped by address;
* only **ready** addresses are kept: ``object/endpoint.go`` drops an EndpointSlice endpoint
  whose ``conditions.ready`` is false, and the EndpointSlice controller sets ready for every
  pod of a ``publishNotReadyAddresses`` Service (``EndpointConditions.ready`` in kubernetes/api
  ``discovery/v1/types.go``);
* a Service without ports still has endpoints (the controller lists the selected pods with
  no ports); CoreDNS gives them the sentinel port -1 (``object/endpoint.go`` "Add sentinel if
  there are no ports"), so they answer A queries but no SRV.  The pktsim model keeps
  endpoints per port, so for a portless Service they are rebuilt here from the stream's
  EndpointSlices or from the selector;
* the endpoint hostname is the endpoint's ``hostname`` (a pod's ``hostname`` when its
  ``subdomain`` names the Service), else the dashed IP (``endpointHostname``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any

from pktsim.model.cluster import ClusterModel
from pktsim.model.services import EndpointAddr, ServiceInfo

NO_PORT = ("", "", -1)  # CoreDNS's sentinel EndpointPort{Port: -1}
IP = IPv4Address | IPv6Address


@dataclass(frozen=True, slots=True)
class Addr:
    ip: IP
    hostname: str  # endpointHostname(): the hostname field, else the dashed IP
    ports: tuple[tuple[str, str, int], ...]  # (name, protocol, port) served at this address


@dataclass(frozen=True, slots=True)
class Svc:
    namespace: str
    name: str
    kind: str  # ClusterIP | Headless | ExternalName
    cluster_ips: tuple[IP, ...] = ()  # ``spec.clusterIPs``: both families' in a dual stack
    ports: tuple[tuple[str, str, int], ...] = ()
    external_name: str = ""
    addrs: tuple[Addr, ...] = ()

    @property
    def headless(self) -> bool:
        return self.kind == "Headless"


def endpoint_hostname(hostname: str, ip: IP) -> str:
    """``endpointHostname`` (coredns ``plugin/kubernetes/kubernetes.go``): the hostname,
    else the address with its dots -- or an IPv6 address's colons -- made dashes."""
    return hostname or str(ip).replace(".", "-").replace(":", "-")


def is_ip(text: str) -> bool:
    try:
        ip_address(text)
    except ValueError:
        return False
    return True


@dataclass(slots=True)
class ZoneIndex:
    namespaces: set[str] = field(default_factory=set)
    services: dict[tuple[str, str], Svc] = field(default_factory=dict)
    by_cluster_ip: dict[IP, Svc] = field(default_factory=dict)
    by_endpoint_ip: dict[IP, list[tuple[Svc, Addr]]] = field(default_factory=dict)
    pods: dict[IP, list[str]] = field(default_factory=dict)  # pod IP (each family's) -> ns

    @classmethod
    def from_model(cls, model: ClusterModel) -> ZoneIndex:
        index = cls(set(model.scenario.namespaces))
        for info in model.services.values():
            svc = _service(info, model)
            index.namespaces.add(svc.namespace)
            index.add(svc)
        for pod in model.pods.values():
            index.namespaces.add(pod.pod.namespace)
            if not pod.pod.host_network:
                index.pods.setdefault(pod.ip, []).append(pod.pod.namespace)
                if pod.ip6 is not None:
                    index.pods.setdefault(pod.ip6, []).append(pod.pod.namespace)
        return index

    def add(self, svc: Svc) -> None:
        self.services[(svc.namespace, svc.name)] = svc
        for ip in svc.cluster_ips:
            self.by_cluster_ip.setdefault(ip, svc)
        for addr in svc.addrs:
            self.by_endpoint_ip.setdefault(addr.ip, []).append((svc, addr))


def _service(info: ServiceInfo, model: ClusterModel) -> Svc:
    spec = info.service
    if spec.type == "ExternalName":
        return Svc(spec.namespace, spec.name, "ExternalName", external_name=spec.external_name)
    ports = tuple((p.name, p.protocol, p.port) for p in spec.ports)
    kind = "Headless" if info.headless else "ClusterIP"
    ips = _cluster_ips(info)
    addrs = _grouped(info) if ports else _portless(info, model)
    return Svc(spec.namespace, spec.name, kind, ips, ports, addrs=addrs)


def _cluster_ips(info: ServiceInfo) -> tuple[IP, ...]:
    """``spec.clusterIPs`` in the Service's family order (the primary first)."""
    by_family: dict[str, IP | None] = {"IPv4": info.cluster_ip, "IPv6": info.cluster_ip6}
    return tuple(ip for family in info.families if (ip := by_family.get(family)) is not None)


def _grouped(info: ServiceInfo) -> tuple[Addr, ...]:
    """Per-port endpoint lists -> one ``Addr`` per ready IP with the ports it serves (both
    families' slices: CoreDNS reads every EndpointSlice of the Service)."""
    publish = info.service.publish_not_ready_addresses
    order: dict[IP, tuple[str, list[tuple[str, str, int]]]] = {}
    for port in info.ports:
        both: list[EndpointAddr[Any]] = [*port.endpoints, *port.endpoints6]
        for ep in both:
            if not (ep.ready or publish):
                continue
            served = order.setdefault(ep.ip, (ep.hostname, []))[1]
            served.append((port.name, port.protocol, ep.port))
    return tuple(Addr(ip, endpoint_hostname(host, ip), tuple(served))
                 for ip, (host, served) in order.items())


def _portless(info: ServiceInfo, model: ClusterModel) -> tuple[Addr, ...]:
    """Endpoints of a Service without ports: the stream's slices, else the selector."""
    spec = info.service
    publish = spec.publish_not_ready_addresses
    found: dict[IP, str] = {}
    slices = [s for s in model.scenario.endpoint_slices
              if s.namespace == spec.namespace and s.service == spec.name]
    for eps in slices:
        for ep in eps.endpoints:
            listed: list[IP] = [*ep.addresses, *ep.addresses6]
            for ip in listed:
                if ep.ready or publish:
                    found.setdefault(ip, ep.hostname)
    if not slices and spec.selector:
        selector = spec.selector
        for pod in model.pods.values():
            meta = pod.pod
            if meta.namespace != spec.namespace or \
                    any(meta.labels.get(k) != v for k, v in selector.items()):
                continue
            if meta.ready or publish:
                host = meta.hostname if meta.subdomain == spec.name else ""
                ips: tuple[IP | None, ...] = (pod.ip, pod.ip6) if "IPv6" in info.families \
                    else (pod.ip,)
                for address in ips:
                    if address is not None:
                        found.setdefault(address, host)
    return tuple(Addr(ip, endpoint_hostname(host, ip), (NO_PORT,)) for ip, host in found.items())
