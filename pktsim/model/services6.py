"""The IPv6 half of the Services: ClusterIPs and the IPv6 EndpointSlice's endpoints.

Theory of operation
-------------------
* **Families** and the IPv6 ClusterIP: ``pktsim.model.families.service_families`` and
  ``pktsim.model.services.allocate_cluster_ips6``.
* **Endpoints.** The EndpointSlice controller makes one slice per address type of the
  Service (``getAddressTypesForService``, kubernetes ``pkg/controller/endpointslice/
  reconciler.go``: the Service's ``ipFamilies``), the IPv6 one from the pods' IPv6
  addresses (``podToEndpoint`` takes the pod IP of the slice's family); a pod without one
  is left out of it.  A slice of the stream with ``addressType: IPv6`` wins for the IPv6
  family, as an IPv4 one does for IPv4 (``pktsim.model.services.derive_endpoints``).
"""

from __future__ import annotations

from collections.abc import Mapping
from ipaddress import IPv6Address
from typing import TYPE_CHECKING

from pktsim.model.families import service_families
from pktsim.model.objects import EndpointSlice, Pod, Service
from pktsim.model.services import (
    PodIndex,
    PortInfo,
    allocate_cluster_ips6,
    endpoint_lists,
    slices_by_service,
)

if TYPE_CHECKING:
    from pktsim.model.cluster import ClusterModel

def derive_endpoints6(svc: Service, pods: list[tuple[Pod, str, IPv6Address]],
                      slices: list[EndpointSlice], ports: list[PortInfo], *,
                      index: PodIndex[IPv6Address] | None = None,
                      by_service: dict[tuple[str, str], list[EndpointSlice]] | None = None,
                      zones: Mapping[str, str] | None = None) -> None:
    """Each of ``ports`` (the Service's, with their IPv4 endpoints) gets the endpoints of
    the Service's IPv6 slice in ``endpoints6``: the stream's ``addressType: IPv6`` slices,
    else the selector's pods with an IPv6 address (``pods``: pod, node, IPv6 address)."""
    lists = endpoint_lists(svc, pods, slices, "IPv6", lambda ep: ep.addresses6, index=index,
                           by_service=by_service, zones=zones)
    for port, endpoints in zip(ports, lists, strict=True):
        port.endpoints6 = endpoints


def family_slices_only(svc: Service, families: tuple[str, ...], ports: list[PortInfo],
                       by_service: dict[tuple[str, str], list[EndpointSlice]]) -> None:
    """A Service without the IPv4 family gets no IPv4 slice from the controller
    (``getAddressTypesForService``): the selector's IPv4 endpoints in ``ports`` are
    dropped; an IPv4 slice of the stream stays, as written."""
    if "IPv4" in families or any(s.address_type == "IPv4" for s in
                                 by_service.get((svc.namespace, svc.name), [])):
        return
    for port in ports:
        port.endpoints = []


def load_balancer_ip6(svc: Service, families: tuple[str, ...]) -> IPv6Address | None:
    """A LoadBalancer Service's IPv6 address: its status's, when it has the IPv6 family
    (kube-proxy's IPv6 proxier keeps the ingress IPs of its family, ``MapIPsByIPFamily``);
    no pool hands out IPv6 addresses (``loadBalancerCIDR`` is IPv4)."""
    if svc.type != "LoadBalancer" or "IPv6" not in families:
        return None
    return svc.load_balancer_ip6


def pods6(model: ClusterModel) -> list[tuple[Pod, str, IPv6Address]]:
    """The pods with an IPv6 address, in creation order, as ``derive_endpoints6`` takes
    them (a pod without one is in no IPv6 slice)."""
    return [(p.pod, p.node, p.ip6) for p in model.pods.values() if p.ip6 is not None]


def allocate_services6(model: ClusterModel, services: list[Service],
                       slices: list[EndpointSlice]) -> None:
    """The IPv6 half of ``pktsim.model.cluster``'s Service allocation: every Service's
    resolved families, and for those with the IPv6 family the IPv6 ClusterIP and the
    IPv6 slice's endpoints (the ``ServiceInfo``s exist, with their IPv4 half)."""
    cfg = model.config
    for svc in services:
        model.services[svc.key].families = service_families(svc, cfg)
    if not cfg.has_ipv6:
        return
    ips = allocate_cluster_ips6(services, cfg)
    pods = pods6(model)
    index, by_service = PodIndex(pods), slices_by_service(slices)
    for svc in services:
        info = model.services[svc.key]
        family_slices_only(svc, info.families, info.ports, by_service)
    zones = {name: info.zone for name, info in model.nodes.items()}
    for svc in services:
        info = model.services[svc.key]
        if "IPv6" not in info.families:
            continue
        info.cluster_ip6 = ips.get(svc.key)
        info.load_balancer_ip6 = load_balancer_ip6(svc, info.families)
        derive_endpoints6(svc, pods, slices, info.ports, index=index, by_service=by_service,
                          zones=zones)
