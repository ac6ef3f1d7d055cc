"""The EndpointSlice controller and CoreDNS's informers: who learns that a pod came or went.

Theory of operation
-------------------
The EndpointSlice controller (kubernetes pkg/controller/endpointslice, ``syncService``)
recomputes a Service's endpoints from the pods its selector picks whenever one of them
changes; with ``--endpointslice-updates-batch-period`` (0 by default) it waits that long
first, folding what changed meanwhile into one update.  A pod appears once it has an
address; its conditions are ``podToEndpoint``'s (pkg/controller/util/endpointslice):
serving = the pod's Ready condition, terminating = a deletion timestamp is set, ready =
serving and not terminating (``publishNotReadyAddresses`` aside, applied where the
endpoints are read); the zone of the pod's node and the ``trafficDistribution`` hints go
with it (``pktsim.model.topology``).  Services without a selector keep the slices the stream or an
``apply`` gave them.  ``refresh`` does that for every Service and says which changed.

CoreDNS's kubernetes plugin watches Services and EndpointSlices through informers and
answers from that cache: it sees a change as soon as the API has it (its own ``cache 30``
plugin may still hold an older answer).  Each CoreDNS pod's zone is rebuilt from the model
(``ClusterZone``'s index) when the controller publishes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pktsim.core.events import PublishedEndpoint, PublishedPort
from pktsim.dns import ClusterZone
from pktsim.dns.records import ZoneIndex
from pktsim.kubeproxy.ports import service_ports
from pktsim.model.cluster import ClusterModel, node_zones
from pktsim.model.services import (
    EndpointAddr,
    PodIndex,
    PortInfo,
    derive_endpoints,
    slices_by_service,
)
from pktsim.model.services6 import derive_endpoints6, family_slices_only, pods6


def _shape(ports: list[PortInfo]) -> list[tuple[object, ...]]:
    """What a consumer of the slices sees of a service's endpoints (both families')."""
    return [(p.spec.port, p.spec.protocol, _endpoints_shape(p.endpoints),
             _endpoints_shape(p.endpoints6)) for p in ports]


def _endpoints_shape(endpoints: Sequence[EndpointAddr[Any]]) -> tuple[object, ...]:
    return tuple((e.ip, e.port, e.ready, e.serving, e.terminating, e.node, e.zone,
                  e.for_zones, e.for_nodes) for e in endpoints)


def refresh(model: ClusterModel) -> list[str]:
    """Recompute every Service's endpoints from the pods and slices as they are now;
    the keys of the Services whose endpoints changed."""
    pods = [(p.pod, p.node, p.ip) for p in model.pods.values()]
    index, by_service = PodIndex(pods), slices_by_service(model.slices)
    with6 = pods6(model)
    index6 = PodIndex(with6)
    zones = node_zones(model)
    changed = []
    for key, info in model.services.items():
        svc = info.service
        if svc.type == "ExternalName":
            continue
        ports = derive_endpoints(svc, pods, model.slices, index=index, by_service=by_service,
                                 zones=zones)
        if "IPv6" in info.families:
            derive_endpoints6(svc, with6, model.slices, ports, index=index6,
                              by_service=by_service, zones=zones)
            family_slices_only(svc, info.families, ports, by_service)
        for old, new in zip(info.ports, ports, strict=False):
            new.node_port = old.node_port
        if _shape(ports) != _shape(info.ports):
            info.ports = ports
            changed.append(key)
    return changed


def refresh_zones(zones: list[ClusterZone], model: ClusterModel) -> None:
    """Every CoreDNS pod's informers catch up with the API: its zone's index is rebuilt."""
    index = ZoneIndex.from_model(model)
    for zone in zones:
        zone.backend.index = index


def published(model: ClusterModel, keys: Sequence[str], *,
              gone: bool = False) -> tuple[PublishedPort, ...]:
    """The proxied ports of Services ``keys`` as kube-proxy will read them at its next sync
    (``pktsim.kubeproxy.ports.service_ports``: ready counts ``publishNotReadyAddresses``),
    each endpoint with its node; ``gone``: the Services are being deleted (no endpoints)."""
    wanted = set(keys)
    nodes = {(str(ep.ip), ep.port): ep.node for key in wanted if key in model.services
             for port in model.services[key].ports for ep in port.endpoints}
    out = []
    for sp in service_ports(model, ""):
        if sp.name.partition(":")[0] not in wanted:
            continue
        eps = () if gone else tuple(
            PublishedEndpoint(ep.addr, nodes.get((str(ep.ip), ep.port), ""), ep.ready,
                              ep.serving, ep.terminating) for ep in sp.endpoints)
        out.append(PublishedPort(sp.name, sp.protocol, sp.uses_cluster_endpoints,
                                 sp.uses_local_endpoints, eps))
    return tuple(out)
