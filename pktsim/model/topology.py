"""Zones and the EndpointSlice controller's topology hints (Kubernetes 1.37).

Theory of operation
-------------------
A node's zone is its ``topology.kubernetes.io/zone`` label (``v1.LabelTopologyZone``).  The
EndpointSlice controller copies it onto each endpoint it makes from a pod
(``podToEndpoint``, ``staging/src/k8s.io/endpointslice/utils.go``: ``zone`` when the pod's
node has a non-empty label, ``nodeName`` when the pod has one), then sets the hints
kube-proxy reads (``Reconciler.reconcileByAddressType``, ``staging/src/k8s.io/
endpointslice/reconciler.go``):

* ``canUseTrafficDistribution``: ``spec.trafficDistribution`` is ``PreferClose``,
  ``PreferSameZone`` or ``PreferSameNode`` (``validTrafficDistribution``; the last two
  need ``PreferSameTrafficDistribution``, locked on since 1.35: kubernetes/website
  ``feature-gates/PreferSameTrafficDistribution.md``) and the Service does not ask for Auto
  topology mode (``hintsEnabled``);
* then ``trafficdist.ReconcileHints`` (``staging/src/k8s.io/endpointslice/trafficdist/
  trafficdist.go``, ``preferCloseHeuristic.update``): every *ready* endpoint gets
  ``forZones: [its own zone]`` when it has a zone and, for ``PreferSameNode`` only,
  ``forNodes: [its own node]``; an endpoint with neither gets no hints; a not-ready one
  is left alone (a slice made afresh has none);
* otherwise (``defaultHeuristic``, ``topologycache.RemoveHintsFromSlices``) no endpoint
  has hints.

``Auto`` topology mode (the ``service.kubernetes.io/topology-mode`` annotation) hands the
hints to the topology cache (``staging/src/k8s.io/endpointslice/topologycache``), which
shares endpoints out among zones in proportion to their nodes' allocatable CPU.  pktsim
does not model node CPU, so it does not compute them: the scenario reader warns, and such a
Service's endpoints get no hints (what the cache itself does when it cannot assign them).

pktsim's controller recomputes each Service's endpoints from the pods every time, so the
reconciler's "which slices need an update" bookkeeping reduces to what ``hints`` returns for
each endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping

ZONE_LABEL = "topology.kubernetes.io/zone"  # v1.LabelTopologyZone
# pkg/apis/core/validation validateServiceTrafficDistribution's allowed values (1.35 on)
TRAFFIC_DISTRIBUTIONS = ("PreferClose", "PreferSameZone", "PreferSameNode")
TOPOLOGY_MODE = "service.kubernetes.io/topology-mode"  # v1.AnnotationTopologyMode
# v1.DeprecatedAnnotationTopologyAwareHints
TOPOLOGY_AWARE_HINTS = "service.kubernetes.io/topology-aware-hints"

Hints = tuple[tuple[str, ...], tuple[str, ...]]  # (forZones names, forNodes names)


def hints_enabled(annotations: Mapping[str, object]) -> bool:
    """``hintsEnabled`` (``staging/src/k8s.io/endpointslice/utils.go``): the deprecated
    annotation wins over ``topology-mode`` when both are set; ``Auto`` or ``auto``."""
    value = annotations.get(TOPOLOGY_AWARE_HINTS, annotations.get(TOPOLOGY_MODE))
    return value in ("Auto", "auto")


def uses_traffic_distribution(traffic_distribution: str, topology_auto: bool) -> bool:
    """``canUseTrafficDistribution``: a valid value and no Auto topology mode."""
    return traffic_distribution in TRAFFIC_DISTRIBUTIONS and not topology_auto


def hints(traffic_distribution: str, topology_auto: bool, ready: bool, zone: str,
          node: str) -> Hints:
    """The hints the controller gives an endpoint it made from a pod (see the module)."""
    if not ready or not uses_traffic_distribution(traffic_distribution, topology_auto):
        return (), ()
    for_zones = (zone,) if zone else ()
    for_nodes = (node,) if node and traffic_distribution == "PreferSameNode" else ()
    return for_zones, for_nodes


def generated_zone(zones: list[str], index: int) -> str:
    """The zone of generated node ``node-<index + 1>``: ``Cluster.spec.zones`` round robin."""
    return zones[index % len(zones)] if zones else ""
