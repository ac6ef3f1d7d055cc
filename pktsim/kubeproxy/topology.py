"""Which endpoints kube-proxy on one node uses: ``CategorizeEndpoints`` with topology.

Transcribed from kubernetes ``pkg/proxy/topology.go`` (``CategorizeEndpoints``,
``topologyModeFromHints``, ``availableForTopology``: the version that reads
``hints.forNodes``, 1.33 on, and no longer looks at the ``topology-mode`` annotation), for
release 1.37: the ``PreferSameTrafficDistribution`` gate it checks is locked on since 1.35
(kubernetes/website ``feature-gates/PreferSameTrafficDistribution.md``), so node hints are
always read:

* ``topologyModeFromHints``: looking only at *ready* endpoints, when every one has a node
  hint and some is hinted for this node, the mode is ``PreferSameNode``; otherwise, when
  every one has a zone hint and some is hinted for this node's zone (its
  ``topology.kubernetes.io/zone`` label), ``PreferSameZone``; otherwise none.  No ready
  endpoint: none.
* the cluster endpoints are the ready ones ``availableForTopology`` in that mode (hinted
  for this node, or for this zone; every one without a mode).  When that leaves none, the
  serving terminating endpoints of the whole cluster, whatever their hints.
* the local endpoints (Local traffic policy) ignore topology: the ready local ones, else
  the serving terminating local ones.
* all reachable endpoints: the cluster ones when the service uses no local ones; the local
  ones when it uses no cluster ones; the cluster ones when no topology mode applies and the
  local ones are ready (they are then a subset); else both merged (Go merges through a
  map: here they come out sorted by ``ip:port``).

The hints are the EndpointSlice's ``hints.forZones``/``hints.forNodes`` as
``endpointslicecache.go`` reads them (``pkg/proxy``); which ones the controller writes is
``pktsim.model.topology``.
"""

from __future__ import annotations

from pktsim.kubeproxy.ports import Endpoint, ServicePortInfo

PREFER_SAME_NODE = "PreferSameNode"
PREFER_SAME_ZONE = "PreferSameZone"


def topology_mode(endpoints: list[Endpoint], node: str, zone: str) -> str:
    """``topologyModeFromHints``: ``""``, ``PreferSameZone`` or ``PreferSameNode``."""
    ready = [ep for ep in endpoints if ep.ready]
    if not ready:
        return ""
    if all(ep.node_hints for ep in ready) and any(node in ep.node_hints for ep in ready):
        return PREFER_SAME_NODE
    if all(ep.zone_hints for ep in ready) and any(zone in ep.zone_hints for ep in ready):
        return PREFER_SAME_ZONE
    return ""


def available(ep: Endpoint, mode: str, node: str, zone: str) -> bool:
    """``availableForTopology``: the endpoint serves this node in ``mode``."""
    if mode == PREFER_SAME_NODE:
        return node in ep.node_hints
    if mode == PREFER_SAME_ZONE:
        return zone in ep.zone_hints
    return mode == ""


def _fallback(ep: Endpoint) -> bool:
    return ep.serving and ep.terminating


def categorize(sp: ServicePortInfo, node: str = "", zone: str = "") -> tuple[
        list[Endpoint], list[Endpoint], list[Endpoint], bool]:
    """``CategorizeEndpoints`` for kube-proxy on ``node`` in ``zone``: (cluster, local, all
    reachable endpoints, whether any is usable anywhere in the cluster)."""
    cluster: list[Endpoint] = []
    mode = ""
    has_any = False
    if sp.uses_cluster_endpoints:
        mode = topology_mode(sp.endpoints, node, zone)
        cluster = [ep for ep in sp.endpoints if ep.ready and available(ep, mode, node, zone)] \
            or [ep for ep in sp.endpoints if _fallback(ep)]
        has_any = bool(cluster)
    if not sp.uses_local_endpoints:
        return cluster, [], cluster, has_any
    has_any = has_any or any(ep.ready or _fallback(ep) for ep in sp.endpoints)
    local = [ep for ep in sp.endpoints if ep.local and ep.ready]
    terminating = not local
    if terminating:
        local = [ep for ep in sp.endpoints if ep.local and _fallback(ep)]
    if not sp.uses_cluster_endpoints:
        return cluster, local, local, has_any
    if mode == "" and (not terminating or not local):
        return cluster, local, cluster, has_any
    merged = {ep.addr: ep for ep in (*cluster, *local)}  # Go merges through a map
    return cluster, local, [merged[k] for k in sorted(merged)], has_any
