"""Each ``spec.events`` action as the API server and the controllers carry it out.

``ACTIONS`` maps an action to its handler; each handler changes the API's state through the
``ControlPlane`` and leaves the rest (endpoints, kube-proxy, felix, kubelet) to its loops.
Workload controllers: a Deployment's or ReplicaSet's pods are replaced as soon as one is
deleted and scaled by count (``pktsim.control.replicas``); a StatefulSet's pod comes back
under its own name once the old one is gone, a DaemonSet's on the same node.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from pktsim.control import endpoints, nodes, replicas
from pktsim.model.cluster import ServiceInfo
from pktsim.model.families import service_families
from pktsim.model.objects import EndpointSlice, Node, Pod, Service
from pktsim.model.services import (
    PortInfo,
    allocate_cluster_ips,
    allocate_cluster_ips6,
    allocate_health_check_ports,
    allocate_lb_ips,
    allocate_node_ports,
)
from pktsim.model.services6 import load_balancer_ip6
from pktsim.model.timeline import Change
from pktsim.model.topology import ZONE_LABEL

if TYPE_CHECKING:
    from pktsim.control.plane import ControlPlane

USER = "kubectl"


def _apply(plane: ControlPlane, change: Change) -> None:
    obj = change.obj
    if isinstance(obj, Pod):
        _apply_pod(plane, obj)
    elif isinstance(obj, Service):
        _apply_service(plane, obj)
    elif isinstance(obj, EndpointSlice):
        slices = [s for s in plane.model.slices if (s.namespace, s.name) !=
                  (obj.namespace, obj.name)]
        plane.model.slices = [*slices, obj]
        plane.note(USER, f"apply EndpointSlice {obj.namespace}/{obj.name}", (change.key,))
        plane.publish_endpoints(at_once=True)
    elif isinstance(obj, Node):
        _apply_node(plane, obj)
    elif change.kind == "NetworkPolicy":
        _apply_policy(plane, change)
    else:
        replicas.apply_workload(plane, change)


def _apply_pod(plane: ControlPlane, pod: Pod) -> None:
    info = plane.model.pods.get(pod.key)
    if info is None and pod.key not in plane.pending:
        plane.note(USER, f"apply Pod {pod.key}: created", (pod.key,))
        plane.create_pod(replace(pod, ready=True, terminating=False), "kubectl apply")
        return
    if info is None:
        return
    # a running pod: only its labels (and annotations) may change (the API refuses more)
    info.pod = replace(info.pod, labels=dict(pod.labels))
    plane.note(USER, f"apply Pod {pod.key}: labels now {_labels(pod.labels)}", (pod.key,))
    plane.pods_changed(info.node)


def _apply_node(plane: ControlPlane, node: Node) -> None:
    """New labels.  The DaemonSet controller looks again (``updateNode``: a node that now
    matches a DaemonSet's nodeSelector gets its pod, one that no longer does loses it,
    pkg/controller/daemon daemon_controller.go).  A new ``topology.kubernetes.io/zone`` is
    the node's zone from now on: kube-proxy, which watches its node's topology labels
    (``NodeTopologyConfig``, kubernetes ``pkg/proxy/config``), syncs at once; the
    EndpointSlice controller does not rewrite the slices for it (``updateNode`` only
    queues ``checkNodeTopologyDistribution``, for ``topology-mode: Auto`` Services,
    pkg/controller/endpointslice endpointslice_controller.go): the endpoints on the node
    keep their zone and hints until their Service's slices are next written.  (pktsim
    writes every Service's slices at each EndpointSlice update, so the next update of
    any Service brings the new zone to all.)"""
    info = plane.model.nodes.get(node.name)
    if info is None:  # the scenario refuses a node that joins (scenario/events.py)
        raise ValueError(f"apply Node {node.name}: a node joining is not modelled")
    zone = node.labels.get(ZONE_LABEL, "")
    moved = info.zone != zone
    info.zone = zone
    info.labels = {**node.labels, "kubernetes.io/hostname": node.name}
    now = f"; zone now {zone or 'none'}" if moved else ""
    plane.note(USER, f"apply Node {node.name} (labels {_labels(node.labels)}{now})",
               (node.name,))
    replicas.node_labels_changed(plane)
    if moved:
        plane.proxy_sync()


def _labels(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "none"


def _apply_service(plane: ControlPlane, svc: Service) -> None:
    """A new Service gets its addresses as the API server allocates them; a changed one
    keeps its cluster IP (immutable) and the node ports it had."""
    model = plane.model
    old = model.services.get(svc.key)
    others = [_fixed(i) for k, i in model.services.items() if k != svc.key]
    if old is not None:
        svc = replace(svc, cluster_ip=str(old.cluster_ip) if old.cluster_ip
                      else old.service.cluster_ip, cluster_ip6=str(old.cluster_ip6)
                      if old.cluster_ip6 else old.service.cluster_ip6)
    everyone = [*others, svc]
    cfg = model.config
    ips = allocate_cluster_ips(everyone, cfg)
    node_ports = allocate_node_ports(everyone, cfg.seed)
    health = allocate_health_check_ports(everyone, cfg.seed, node_ports)
    lb = allocate_lb_ips(everyone, cfg.load_balancer_cidr)
    if svc.key in health:
        svc.health_check_node_port = health[svc.key]
    families = service_families(svc, cfg)
    info = ServiceInfo(svc, ips.get(svc.key), [], lb.get(svc.key), families,
                       allocate_cluster_ips6(everyone, cfg).get(svc.key),
                       load_balancer_ip6(svc, families))
    info.ports = [PortInfo(p) for p in svc.ports]
    for index, port in enumerate(info.ports):
        port.node_port = node_ports.get((svc.key, index))
    model.services[svc.key] = info
    verb = "changed" if old is not None else f"created, ClusterIP {info.cluster_ip}"
    plane.note(USER, f"apply Service {svc.key}: {verb}", (svc.key,))
    plane.publish_endpoints(at_once=True)
    plane.proxy_sync()  # a Service's own rules change even with the same endpoints


def _fixed(info: ServiceInfo) -> Service:
    """A Service as allocated: its addresses and node ports given, so a new one asks for
    none of them."""
    ports = [replace(p.spec, node_port=p.node_port or p.spec.node_port) for p in info.ports]
    ip = str(info.cluster_ip) if info.cluster_ip else info.service.cluster_ip
    ip6 = str(info.cluster_ip6) if info.cluster_ip6 else info.service.cluster_ip6
    return replace(info.service, cluster_ip=ip, cluster_ip6=ip6, ports=ports,
                   load_balancer_ip=info.load_balancer_ip or info.service.load_balancer_ip)


def _apply_policy(plane: ControlPlane, change: Change) -> None:
    policy = change.obj
    model = plane.model
    model.network_policies = [p for p in model.network_policies
                              if (p.namespace, p.name) != (policy.namespace, policy.name)]
    model.network_policies.append(policy)
    plane.note(USER, f"apply NetworkPolicy {change.key}", (change.key,))
    if model.config.network == "calico":
        plane.felix_sync()


def _delete(plane: ControlPlane, change: Change) -> None:
    kind, key = change.kind, change.key
    model = plane.model
    if kind == "Pod":
        plane.delete_pod(key, USER)
    elif kind == "Service":
        gone = endpoints.published(model, [key], gone=True)
        model.services.pop(key, None)
        plane.note(USER, f"delete Service {key}", (key,), published=gone)
        plane.publish_endpoints(at_once=True)
        plane.proxy_sync()
    elif kind == "EndpointSlice":
        model.slices = [s for s in model.slices if f"{s.namespace}/{s.name}" != key]
        plane.note(USER, f"delete EndpointSlice {key}", (key,))
        plane.publish_endpoints(at_once=True)
    elif kind == "NetworkPolicy":
        model.network_policies = [p for p in model.network_policies
                                  if f"{p.namespace}/{p.name}" != key]
        plane.note(USER, f"delete NetworkPolicy {key}", (key,))
        if model.config.network == "calico":
            plane.felix_sync()
    else:
        replicas.delete_workload(plane, change)


def _fail(plane: ControlPlane, change: Change) -> None:
    nodes.fail(plane, change.name)


def _recover(plane: ControlPlane, change: Change) -> None:
    nodes.recover(plane, change.name)


ACTIONS: dict[str, Callable[[ControlPlane, Change], None]] = {
    "apply": _apply, "delete": _delete, "scale": replicas.scale, "fail": _fail,
    "recover": _recover,
}
