"""A Service's IP families as the API server resolves them.

``initIPFamilyFields`` (kubernetes ``pkg/registry/core/service/storage/alloc.go``) defaults
``ipFamilyPolicy`` — ``RequireDualStack`` for a headless Service without a selector (its
endpoints may be of either family), else ``SingleStack`` (two ``ipFamilies`` or
``clusterIPs`` ask for both: pktsim's reader takes them as ``RequireDualStack``) — and then
the families: ``SingleStack`` keeps the first given, else the cluster's primary;
``PreferDualStack`` and ``RequireDualStack`` add the other family when the cluster has both,
the given (or primary) one first.  What the cluster cannot give (``RequireDualStack`` in a
single-stack cluster, a family it lacks) is refused by the scenario
(``pktsim.scenario.services.services_checked``) before the model is built; a headless
Service without a selector is the exception, and keeps the cluster's families.
"""

from __future__ import annotations

from pktsim.model.objects import ClusterConfig, Service

FAMILIES = ("IPv4", "IPv6")


def family_policy(svc: Service) -> str:
    """``ipFamilyPolicy`` as defaulted (see the module)."""
    if svc.ip_family_policy:
        return svc.ip_family_policy
    if svc.cluster_ip == "None" and not svc.selector:
        return "RequireDualStack"
    return "RequireDualStack" if len(svc.ip_families) == 2 else "SingleStack"


def service_families(svc: Service, cfg: ClusterConfig) -> tuple[str, ...]:
    """The Service's ``spec.ipFamilies`` after the API server's defaulting, the primary
    first; ``()`` for an ExternalName Service, which has none."""
    if svc.type == "ExternalName":
        return ()
    cluster = cfg.ip_families
    given = [f for f in svc.ip_families if f in cluster]
    first = given[0] if given else cfg.primary_family
    if family_policy(svc) == "SingleStack" or len(cluster) < 2:
        return (first,)
    return (first, *(f for f in cluster if f != first))
