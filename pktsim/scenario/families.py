"""Which IP families the cluster has, and every object checked against them.

Theory of operation
-------------------
The families are decided once the whole stream is read, since a ``Cluster`` document may
come after the objects:

* ``Cluster.spec.ipFamilies`` (or a Cluster CIDR list with an IPv6 entry) says;
* else the manifests say, as a ``kubectl get -o yaml`` snapshot of a dual-stack cluster
  does: the families of nodes' ``spec.podCIDRs`` and pods' ``status.podIPs``, whose order is
  the cluster's (kube-controller-manager's ``--cluster-cidr`` order decides a node's
  ``podCIDRs``, the CNI result's order a pod's ``podIPs``); failing those, Services'
  ``ipFamilies``/``clusterIPs``, which tell that the cluster has IPv6 but not which family
  is its primary (IPv4 first is then assumed, with a warning);
* else IPv4 only.

The first list with both families gives the order; lists that disagree with it make the
inference ambiguous, which a warning says.  Then ``family_refusal``
(``pktsim.scenario.cluster``) refuses what the build cannot run yet, and each object is
checked: an address or CIDR of a family the cluster lacks is an error, as the API server's
``not configured on this cluster`` is (``initIPFamilyFields``, kubernetes
``pkg/registry/core/service/storage/alloc.go``); a Service's families are checked
(``services_checked``) and resolved in the model (``pktsim.model.families``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pktsim.errors import ScenarioError
from pktsim.model.objects import ClusterConfig, Flow, Node, Pod, Service, Source
from pktsim.scenario.cluster import family_refusal
from pktsim.scenario.fields import ip_of
from pktsim.scenario.traffic import target_host


@dataclass(frozen=True, slots=True)
class Evidence:
    """One list of the manifests that names families, in its order."""

    source: Source | None
    field: str
    families: tuple[str, ...]


def _err(src: Source | None, field: str, value: object, message: str,
         valid: str) -> ScenarioError:
    return ScenarioError(message, file=src.file if src else "",
                         document=src.document() if src else "", field=field, value=value,
                         valid=valid)


def _where(src: Source | None) -> str:
    return f"{src.file}: {src.document()}" if src is not None else "pktsim's defaults"


def _shown(families: tuple[str, ...]) -> str:
    return f"[{', '.join(families)}]"


def evidence(nodes: list[Node], pods: list[Pod],
             services: list[Service]) -> tuple[list[Evidence], list[Evidence]]:
    """The nodes' and pods' lists (which give the order), and the Services' (which do not)."""
    strong = [Evidence(n.source, "spec.podCIDRs" if n.pod_cidr6 or n.pod_cidr else
                       "status.addresses", n.families) for n in nodes if n.families]
    strong += [Evidence(p.source, "status.podIPs", p.families) for p in pods if p.families]
    weak = [Evidence(s.source, "spec.ipFamilies", s.ip_families) for s in services
            if "IPv6" in s.ip_families]
    return strong, weak


def infer(strong: list[Evidence], weak: list[Evidence]) -> tuple[
        tuple[str, ...], Evidence | None, str]:
    """The families the manifests imply, the list that decided them, and why the inference
    is ambiguous (``""``: it is not)."""
    if any("IPv6" in e.families for e in strong):
        duals = [e for e in strong if len(e.families) == 2]
        first = duals[0] if duals else next(e for e in strong if "IPv6" in e.families)
        families = list(first.families)
        for e in strong:
            families += [f for f in e.families if f not in families]
        other = next((e for e in duals if e.families != first.families), None)
        if other is not None:
            return tuple(families), first, f"{_where(other.source)} {other.field} lists " \
                f"{_shown(other.families)}"
        if not duals and len(families) == 2:
            return tuple(families), first, "no list names both families"
        return tuple(families), first, ""
    if weak:
        return ("IPv4", "IPv6"), weak[0], "Services do not show which family is the " \
            "cluster's primary: IPv4 first is assumed"
    return ("IPv4",), None, ""


# what a dual-stack run leaves out, said once per run (docs/model.md, "IPv6")
IPV6_LIMITS = ("IPv6 is modelled for pods and nodes (addresses, routes, Neighbor Discovery, "
               "ICMPv6, TCP and UDP) and Services (IPv6 ClusterIPs, endpoints, kube-proxy's "
               "IPv6 rules in each node's ip6tables, IPv6 conntrack, CoreDNS's AAAA and "
               "ip6.arpa records); the setup's router solicitations and MLD reports are "
               "not sent, and a Packet Too Big shrinks only the TCP connection it concerns (no "
               "path MTU cache: on vxlan, flannel-v6.1's MTU 1430 is below the pods' 1450, as "
               "flannel leaves it, so each full-size connection over IPv6 meets one)")


def settle_families(cfg: ClusterConfig, decided: str, nodes: list[Node], pods: list[Pod],
                    services: list[Service], errors: list[ScenarioError],
                    warnings: list[str]) -> bool:
    """Set ``cfg.ip_families`` (unless the Cluster ``decided`` them) and refuse what
    ``family_refusal`` refuses; False when refused (the objects are then not checked)."""
    where: tuple[Source | None, str] = (cfg.source, decided)
    if not decided:
        families, first, ambiguous = infer(*evidence(nodes, pods, services))
        cfg.ip_families = families
        if first is not None:
            where = (first.source, first.field)
        if ambiguous and first is not None:
            src = cfg.source or first.source or Source()
            warnings.append(f"{src.file}: {src.document()}: ipFamilies inferred as "
                            f"{_shown(families)} from {_where(first.source)} {first.field}, "
                            f"but {ambiguous}; give Cluster.spec.ipFamilies to say")
    refusal = family_refusal(cfg.ip_families, cfg.network)
    if refusal is None:
        if cfg.has_ipv6:
            src = cfg.source or Source()
            warnings.append(f"{src.file}: {src.document()}: {IPV6_LIMITS}")
        return True
    errors.append(_err(where[0], where[1] or "spec.ipFamilies", _shown(cfg.ip_families),
                       *refusal))
    return False


def _family_errors(src: Source | None, given: dict[str, object], cfg: ClusterConfig,
                   what: str) -> list[ScenarioError]:
    """``given``: field -> value of one object; those of a family the cluster lacks."""
    out = []
    for field, value in given.items():
        family = "IPv6" if ":" in str(value) else "IPv4"
        if family not in cfg.ip_families:
            out.append(_err(src, field, str(value), f"is an {family} {what}, and the "
                            f"cluster's ipFamilies are {_shown(cfg.ip_families)} "
                            f"({_where(cfg.source)})", f"Cluster.spec.ipFamilies with "
                            f"{family}, or no {family} {what}"))
    return out


def pods_checked(cfg: ClusterConfig, pods: list[Pod]) -> list[ScenarioError]:
    """A pod's addresses must be of the cluster's families, the primary one among them."""
    out: list[ScenarioError] = []
    for pod in pods:
        given: dict[str, object] = {}
        for field, v4, v6 in (("status.podIPs", pod.pod_ip, pod.pod_ip6),
                              ("status.hostIPs", pod.host_ip, pod.host_ip6)):
            family_of = {"IPv4": v4, "IPv6": v6}
            wrong = [ip for f, ip in family_of.items() if ip is not None
                     and f not in cfg.ip_families]
            if wrong:
                given[field] = wrong[0]
        out += _family_errors(pod.source, given, cfg, "address")
        if pod.families and not given and cfg.primary_family not in pod.families:
            shown = pod.pod_ip6 if pod.pod_ip6 is not None else pod.pod_ip
            out.append(_err(pod.source, "status.podIPs", str(shown), f"gives no "
                            f"{cfg.primary_family} address, the cluster's primary family",
                            f"status.podIPs with an {cfg.primary_family} address"))
    return out


def nodes_checked(cfg: ClusterConfig, nodes: list[Node]) -> list[ScenarioError]:
    """A node's pod CIDRs must be of the cluster's families (its addresses may be of
    others: kind's docker network has both families whatever the cluster's are)."""
    out: list[ScenarioError] = []
    for node in nodes:
        cidrs = [c for c in (node.pod_cidr, node.pod_cidr6) if c is not None]
        wrong = [c for c in cidrs if f"IPv{c.version}" not in cfg.ip_families]
        if wrong:
            out += _family_errors(node.source, {"spec.podCIDRs": wrong[0]}, cfg, "CIDR")
        elif node.internal_ip6 is not None and not cfg.has_ipv6:
            out += _family_errors(node.source, {"status.addresses[InternalIP]":
                                                node.internal_ip6}, cfg, "address")
    return out


def flows_checked(cfg: ClusterConfig, flows: list[Flow], pods: dict[str, Pod]) -> list[
        ScenarioError]:
    """An IPv6 target needs the IPv6 family; ``family`` one the cluster and the pod have."""
    out: list[ScenarioError] = []
    for flow in flows:
        host = target_host(flow.target)
        literal = ip_of(host)
        if literal is not None and literal.version == 6 and not cfg.has_ipv6:
            out += _family_errors(flow.source, {f"{flow.path}.to": flow.target}, cfg,
                                  "target")
        if not flow.family:
            continue
        if flow.family not in cfg.ip_families:
            out.append(_err(flow.source, f"{flow.path}.family", flow.family, "is not a "
                            f"family of the cluster: its ipFamilies are "
                            f"{_shown(cfg.ip_families)} ({_where(cfg.source)})",
                            " | ".join(cfg.ip_families)))
            continue
        pod = pods.get(host)
        if pod is not None and pod.families and flow.family not in pod.families:
            out.append(_err(flow.source, f"{flow.path}.family", flow.family,
                            f"is not a family of pod {pod.key}: its status.podIPs are "
                            f"{_shown(pod.families)} ({_where(pod.source)})",
                            _shown(pod.families)))
    return out


def check_families(cfg: ClusterConfig, decided: str, stream: list[object], applied: list[object],
                   flows: list[Flow], errors: list[ScenarioError], warnings: list[str]) -> None:
    """The families settled from the ``stream``'s nodes, pods and Services, then those and
    the objects of ``apply`` events checked against them."""
    from pktsim.scenario.services import services_checked  # services imports pods only

    def of(kind: type, objects: list[object]) -> list[Any]:
        return [o for o in objects if isinstance(o, kind)]

    if not settle_families(cfg, decided, of(Node, stream), of(Pod, stream),
                           of(Service, stream), errors, warnings):
        return
    every = stream + applied
    pods = of(Pod, every)
    errors += nodes_checked(cfg, of(Node, every)) + pods_checked(cfg, pods)
    errors += services_checked(cfg, of(Service, every))
    errors += flows_checked(cfg, flows, {p.key: p for p in of(Pod, stream)})
