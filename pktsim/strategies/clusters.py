"""Strategies for Kubernetes manifests and loaded clusters that shrink towards one node and
one pod.
"""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from pktsim.api import Cluster
from pktsim.model.topology import TRAFFIC_DISTRIBUTIONS, ZONE_LABEL

NETWORKS = ("routes", "vxlan", "ipip", "calico")
# the IP pools a calico cluster draws: IPIP (the manifest's default), no encapsulation, VXLAN,
# both CrossSubnet modes; /26 blocks and /29 ones (a node then holds several)
CALICO_POOLS: tuple[dict[str, object], ...] = (
    {"ipipMode": "Always"},
    {"ipipMode": "Never", "vxlanMode": "Never"},
    {"ipipMode": "Never", "vxlanMode": "Always"},
    {"ipipMode": "CrossSubnet"},
    {"ipipMode": "Never", "vxlanMode": "CrossSubnet"},
)
WORKLOAD_KINDS = ("Pod", "Deployment", "StatefulSet", "DaemonSet")
SERVICE_TYPES = ("ClusterIP", "Headless", "NodePort", "LoadBalancer", "ExternalName")
UPSTREAM = {"example.com": "203.0.113.10"}  # external/client: answers HTTP on 80 and 8080
# what a generated container may listen on: (port, protocol, name)
CONTAINER_PORTS = ((80, "TCP", "http"), (8080, "TCP", "http-alt"), (53, "UDP", "dns"),
                   (5432, "TCP", "pg"), (9999, "UDP", "echo"))
_BASES = ("web", "api", "db", "cache")
_ROLES = ("worker", "edge")
_ZONE_OF = {"worker": "zone-a", "edge": "zone-b"}
_MAX_NODES = 64
_MAX_PODS = 200

_NAMESPACES = st.sampled_from(("default", "shop"))
_KINDS = st.sampled_from(WORKLOAD_KINDS)
_SERVICE_TYPES = st.sampled_from(SERVICE_TYPES)
_READY = st.booleans().map(lambda flip: not flip)  # shrinks towards a ready pod
_NETWORK = st.sampled_from(NETWORKS)
_POOLS = st.tuples(st.sampled_from(CALICO_POOLS), st.sampled_from((26, 29))).map(
    lambda drawn: {**drawn[0], "blockSize": drawn[1]})
_SEEDS = st.integers(0, 2**16 - 1)

Manifest = dict[str, Any]


def _check_strategy(name: str, value: object) -> None:
    if not isinstance(value, st.SearchStrategy):
        raise InvalidArgument(f"{name}={value!r} must be a strategy, e.g. st.just({value!r})")


def _check_range(lo_name: str, lo: object, hi_name: str, hi: object, *, least: int,
                 most: int) -> None:
    for name, value in ((lo_name, lo), (hi_name, hi)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidArgument(f"{name}={value!r} must be an integer")
    assert isinstance(lo, int) and isinstance(hi, int)
    if lo < least:
        raise InvalidArgument(f"{lo_name}={lo} must be at least {least}")
    if hi > most:
        raise InvalidArgument(f"{hi_name}={hi} must be at most {most}")
    if lo > hi:
        raise InvalidArgument(f"{lo_name}={lo} must not exceed {hi_name}={hi}")


def manifests(*, min_nodes: int = 1, max_nodes: int = 3, min_pods: int = 1, max_pods: int = 6,
              max_services: int = 3, namespaces: st.SearchStrategy[str] = _NAMESPACES,
              kinds: st.SearchStrategy[str] = _KINDS,
              service_types: st.SearchStrategy[str] = _SERVICE_TYPES,
              ready: st.SearchStrategy[bool] = _READY) -> st.SearchStrategy[list[Manifest]]:
    """Lists of valid Kubernetes objects, as the dicts ``yaml.safe_dump_all`` writes.

    ``Node`` objects ``node-1`` … (labelled ``role: worker|edge``, in ``zone-a`` and
    ``zone-b`` by role: ``topology.kubernetes.io/zone``), a ``Namespace`` for every
    namespace but ``default``, between ``min_pods`` and ``max_pods`` pods made by
    ``kinds`` of workload (``Pod``, ``Deployment``, ``StatefulSet``, ``DaemonSet`` — a
    DaemonSet counts a pod per node it selects), each listening on some of
    ``CONTAINER_PORTS``, ready or not as ``ready`` draws; and up to ``max_services`` Services
    of ``service_types`` (``ClusterIP``, ``Headless``, ``NodePort``, ``LoadBalancer``,
    ``ExternalName``), with selectors that match a workload, several, or none, numeric and
    named ``targetPort``s, fixed and allocated ``nodePort``s, ``externalTrafficPolicy``,
    ``sessionAffinity``, ``publishNotReadyAddresses`` and ``trafficDistribution``.  Shrinks
    towards one node, one bare pod and no Service.
    """
    _check_range("min_nodes", min_nodes, "max_nodes", max_nodes, least=1, most=_MAX_NODES)
    _check_range("min_pods", min_pods, "max_pods", max_pods, least=0, most=_MAX_PODS)
    _check_range("max_services", 0, "max_services", max_services, least=0, most=50)
    for name, value in (("namespaces", namespaces), ("kinds", kinds),
                        ("service_types", service_types), ("ready", ready)):
        _check_strategy(name, value)
    roles = {n: st.lists(st.sampled_from(_ROLES), min_size=n, max_size=n)
             for n in range(min_nodes, max_nodes + 1)}
    return _manifests(st.integers(min_nodes, max_nodes), roles, max_pods,
                      st.lists(_plans(kinds, namespaces, ready, max_pods), max_size=max_pods),
                      min_pods,
                      st.lists(_service_plans(namespaces, service_types),
                               max_size=max_services))


_default_manifests = manifests  # ``clusters`` takes a ``manifests=`` argument


def _namespace_name(value: str) -> str:
    from pktsim.scenario.syntax import dns_label

    if not isinstance(value, str) or dns_label(value) is not None:
        raise InvalidArgument(f"namespaces drew {value!r}, which is not a DNS label")
    return value


def _plans(kinds: st.SearchStrategy[str], namespaces: st.SearchStrategy[str],
           ready: st.SearchStrategy[bool], max_pods: int) -> st.SearchStrategy[Manifest]:
    """One workload, drawn on its own so that shrinking deletes workloads cleanly."""

    def check(plan: Manifest) -> Manifest:
        if plan["kind"] not in WORKLOAD_KINDS:
            raise InvalidArgument(f"kinds drew {plan['kind']!r}: choose from {WORKLOAD_KINDS}")
        if not isinstance(plan["ready"], bool):
            raise InvalidArgument(f"ready drew {plan['ready']!r}, not a bool")
        plan["namespace"] = _namespace_name(plan["namespace"])
        return plan

    return st.fixed_dictionaries({
        "kind": kinds,
        "base": st.sampled_from(_BASES),
        "namespace": namespaces,
        "ports": st.lists(st.sampled_from(CONTAINER_PORTS), max_size=3,
                          unique_by=lambda p: (p[0], p[1])),
        "split": st.integers(0, 2),  # ports[:split] in the first container, the rest in a 2nd
        "ready": ready,
        "replicas": st.integers(1, max(1, max_pods)),
        "node": st.none() | st.integers(0, _MAX_NODES - 1),  # a bare pod's spec.nodeName
        "role": st.none() | st.sampled_from(_ROLES),  # a DaemonSet's nodeSelector
    }).map(check)


_SIMPLEST: Manifest = {"kind": "Pod", "base": _BASES[0], "namespace": "default", "ports": [],
                       "split": 0, "ready": True, "replicas": 1, "node": None, "role": None}
_PORT_NUMBERS = st.sampled_from([80, 443, 8000, 9000])
_SERVICE_PORT = st.fixed_dictionaries({
    "to_container": st.booleans(),
    "container": st.integers(0, 2),  # which of the selected workload's ports
    "how": st.sampled_from(["same", "number", "name"]),  # how targetPort names it
    "port": _PORT_NUMBERS,
    "protocol": st.sampled_from(["TCP", "UDP"]),
    "target": st.sampled_from([None, 80, 8080, 9999]),
    "node_port": st.none() | st.integers(30000, 32767),
})


def _service_plans(namespaces: st.SearchStrategy[str],
                   service_types: st.SearchStrategy[str]) -> st.SearchStrategy[Manifest]:
    def check(plan: Manifest) -> Manifest:
        if plan["type"] not in SERVICE_TYPES:
            raise InvalidArgument(f"service_types drew {plan['type']!r}: choose from "
                                  f"{SERVICE_TYPES}")
        plan["namespace"] = _namespace_name(plan["namespace"])
        return plan

    return st.fixed_dictionaries({
        "type": service_types,
        "base": st.sampled_from(_BASES),
        "namespace": namespaces,
        "selector": st.sampled_from(["app", "tier", "none", "nothing"]),
        "selects": st.integers(0, _MAX_PODS),  # which workload of its namespace
        "ports": st.lists(_SERVICE_PORT, max_size=2),
        "unnamed": st.booleans(),  # a single port may go without a name
        "local": st.booleans(),  # externalTrafficPolicy: Local
        "affinity": st.booleans(),  # sessionAffinity: ClientIP
        "publish": st.booleans(),  # publishNotReadyAddresses
        "external": st.integers(0, 50),  # ExternalName: 0 example.com, else an earlier Service
        # spec.trafficDistribution (the nodes' zones are drawn with the manifests)
        "distribution": st.sampled_from((None, *TRAFFIC_DISTRIBUTIONS)),
    }).map(check)


@st.composite
def _manifests(draw: st.DrawFn, node_counts: st.SearchStrategy[int],
               roles_of: dict[int, st.SearchStrategy[list[str]]], max_pods: int,
               plan_lists: st.SearchStrategy[list[Manifest]], min_pods: int,
               service_lists: st.SearchStrategy[list[Manifest]]) -> list[Manifest]:
    n_nodes = draw(node_counts, label="nodes")
    roles = draw(roles_of[n_nodes], label="roles")
    # each role its zone: edge nodes in zone-b, workers in zone-a (no draw of its own, so
    # shrinking is unchanged); trafficDistribution then keeps Services to a zone's endpoints
    nodes = [{"apiVersion": "v1", "kind": "Node",
              "metadata": {"name": f"node-{i + 1}",
                           "labels": {"kubernetes.io/hostname": f"node-{i + 1}",
                                      "role": roles[i], ZONE_LABEL: _ZONE_OF[roles[i]]}}}
             for i in range(n_nodes)]
    plans = draw(plan_lists, label="workloads")
    plans = plans + [_SIMPLEST] * (min_pods - len(plans))  # bare pods: lists shrink freely
    workloads: list[tuple[str, str, str, list[tuple[int, str, str]], Manifest]] = []
    total = 0
    for plan in plans:  # every plan makes at least one pod, until max_pods
        remaining = max_pods - total
        if remaining <= 0:
            break
        kind, role = plan["kind"], plan["role"] if plan["role"] in roles else None
        chosen = sum(1 for r in roles if role is None or r == role)
        if kind == "Pod" or (kind == "DaemonSet" and chosen > remaining):
            kind, chosen = "Pod", 1
        elif kind != "DaemonSet":
            chosen = min(plan["replicas"], remaining)
        name = f"{plan['base']}-{len(workloads)}"
        labels = {"app": name, "tier": plan["base"]}
        spec = _pod_spec(plan["ports"], plan["split"])
        if kind == "DaemonSet" and role is not None:
            spec["nodeSelector"] = {"role": role}
        node = None if plan["node"] is None else plan["node"] % n_nodes + 1
        doc = _workload(kind, name, plan["namespace"], labels, spec, chosen, plan["ready"],
                        node)
        workloads.append((plan["namespace"], name, plan["base"], plan["ports"], doc))
        total += chosen
    services = _services(draw(service_lists, label="services"), workloads)
    used = sorted({w[0] for w in workloads} | {s["metadata"]["namespace"] for s in services})
    namespace_docs = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
                      for ns in used if ns != "default"]
    return [*nodes, *namespace_docs, *(w[4] for w in workloads), *services]


def _pod_spec(ports: list[tuple[int, str, str]], split: int) -> Manifest:
    groups = [ports[:split], ports[split:]] if 0 < split < len(ports) else [ports]
    containers: list[Manifest] = []
    for i, group in enumerate(groups):
        container: Manifest = {"name": "app" if i == 0 else f"sidecar-{i}", "image": "nginx"}
        if group:
            container["ports"] = [{"containerPort": p, "protocol": proto, "name": pname}
                                  for p, proto, pname in group]
        containers.append(container)
    return {"containers": containers}


def _workload(kind: str, name: str, ns: str, labels: dict[str, str], spec: Manifest,
              replicas: int, ready: bool, node: int | None) -> Manifest:
    meta = {"name": name, "namespace": ns}
    if kind == "Pod":
        if node is not None:
            spec = {**spec, "nodeName": f"node-{node}"}
        doc: Manifest = {"apiVersion": "v1", "kind": "Pod",
                         "metadata": {**meta, "labels": labels}, "spec": spec}
        if not ready:
            doc["status"] = {"conditions": [{"type": "Ready", "status": "False"}]}
        return doc
    if not ready:  # a gate nobody sets: every replica stays not ready
        spec = {**spec, "readinessGates": [{"conditionType": "example.com/warm"}]}
    body: Manifest = {"selector": {"matchLabels": {"app": name}},
                      "template": {"metadata": {"labels": labels}, "spec": spec}}
    if kind in ("Deployment", "StatefulSet"):
        body["replicas"] = replicas
    if kind == "StatefulSet":
        body["serviceName"] = name
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": meta, "spec": body}


def _services(plans: list[Manifest],
              workloads: list[tuple[str, str, str, list[tuple[int, str, str]], Manifest]]) \
        -> list[Manifest]:
    out: list[Manifest] = []
    node_ports: set[int] = set()
    for index, plan in enumerate(plans):
        kind, ns = plan["type"], plan["namespace"]
        meta = {"name": f"{plan['base']}-svc-{index}", "namespace": ns}
        if kind == "ExternalName":
            targets = ["example.com", *(
                f"{s['metadata']['name']}.{s['metadata']['namespace']}.svc.cluster.local"
                for s in out if s["spec"].get("type") != "ExternalName")]
            out.append({"apiVersion": "v1", "kind": "Service", "metadata": meta,
                        "spec": {"type": "ExternalName",
                                 "externalName": targets[plan["external"] % len(targets)]}})
            continue
        mine = [w for w in workloads if w[0] == ns]
        choice = plan["selector"] if mine else ("nothing" if plan["selector"] == "nothing"
                                                 else "none")
        spec: Manifest = {}
        target_ports: list[tuple[int, str, str]] = []
        if choice in ("app", "tier"):
            w = mine[plan["selects"] % len(mine)]
            spec["selector"] = {"app": w[1]} if choice == "app" else {"tier": w[2]}
            target_ports = w[3]
        elif choice == "nothing":
            spec["selector"] = {"app": "nothing-here"}
        ports = _service_ports(plan["ports"], target_ports, headless=kind == "Headless")
        if len(ports) == 1 and plan["unnamed"]:
            del ports[0]["name"]
        if ports:
            spec["ports"] = ports
        if kind == "Headless":
            spec["clusterIP"] = "None"
        elif kind != "ClusterIP":
            spec["type"] = kind
            for port, port_plan in zip(ports, plan["ports"], strict=False):
                wanted = port_plan["node_port"]
                if wanted is not None and wanted not in node_ports:
                    node_ports.add(wanted)
                    port["nodePort"] = wanted
            if plan["local"]:
                spec["externalTrafficPolicy"] = "Local"
        if kind != "Headless" and plan["affinity"]:
            spec["sessionAffinity"] = "ClientIP"
        if plan["publish"]:
            spec["publishNotReadyAddresses"] = True
        if plan.get("distribution"):
            spec["trafficDistribution"] = plan["distribution"]
        out.append({"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec})
    return out


def _service_ports(plans: list[Manifest], targets: list[tuple[int, str, str]], *,
                   headless: bool) -> list[Manifest]:
    if not plans and not headless:  # a Service that is not headless needs a port
        plans = [{"to_container": True, "container": 0, "how": "same", "port": 80,
                  "protocol": "TCP", "target": None}]
    out: list[Manifest] = []
    taken: set[tuple[int, str]] = set()
    for i, plan in enumerate(plans):
        target: int | str | None
        if targets and plan["to_container"]:
            port, proto, pname = targets[plan["container"] % len(targets)]
            how = plan["how"]
            number = port if how == "same" else plan["port"]
            target = None if how == "same" else (port if how == "number" else pname)
        else:
            proto, number, target = plan["protocol"], plan["port"], plan["target"]
        if (number, proto) in taken:
            continue
        taken.add((number, proto))
        entry: Manifest = {"name": f"p{i}", "port": number, "protocol": proto}
        if target is not None:
            entry["targetPort"] = target
        out.append(entry)
    return out


class GeneratedCluster(Cluster):
    """A ``pktsim.Cluster`` loaded from generated YAML; ``yaml`` is that text, and the repr
    is the call that rebuilds it (what hypothesis prints for a falsifying example)."""

    yaml: str = ""

    def __repr__(self) -> str:
        return f"pktsim.load({self.yaml!r})"


def _cluster_doc(network: str, seed: int, pool: dict[str, object],
                 families: tuple[str, ...] = ("IPv4",)) -> Manifest:
    spec: Manifest = {"network": network, "seed": seed, "upstream": dict(UPSTREAM)}
    if network == "calico":
        spec["calico"] = dict(pool)
    if families != ("IPv4",):
        spec["ipFamilies"] = list(families)
    return {"apiVersion": "pktsim/v1alpha1", "kind": "Cluster", "spec": spec}


IP_FAMILIES = (("IPv4",), ("IPv4", "IPv6"))  # what the clusters' ipFamilies may draw
DUAL_STACK_NETWORKS = ("routes", "vxlan")  # the networks pktsim builds with IPv6
_FAMILIES = st.just(("IPv4",))


# libyaml's emitter when PyYAML has it: the same text as the pure-Python SafeDumper for
# everything generated here (checked on 300 derandomized manifests), ~3.5x faster, and every
# generated cluster and flow list is dumped (the property benchmark's largest own cost).
_Dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _dump(docs: list[Manifest]) -> str:
    return yaml.dump_all(docs, Dumper=_Dumper, sort_keys=False, default_flow_style=None,
                         width=100)


def _load(text: str) -> GeneratedCluster:
    from pktsim.scenario import load_scenario

    cluster = GeneratedCluster(load_scenario([("<generated>", text)]))
    cluster.yaml = text
    return cluster


def clusters(*, min_nodes: int = 1, max_nodes: int = 3, min_pods: int = 1, max_pods: int = 6,
             max_services: int = 3, network: st.SearchStrategy[str] = _NETWORK,
             seeds: st.SearchStrategy[int] = _SEEDS,
             manifests: st.SearchStrategy[list[Manifest]] | None = None,
             ip_families: st.SearchStrategy[tuple[str, ...]] = _FAMILIES) \
        -> st.SearchStrategy[GeneratedCluster]:
    """Loaded ``pktsim.Cluster``\\ s: ``manifests(...)`` plus a ``kind: Cluster`` with a
    ``network`` (``routes``, ``vxlan``, ``ipip``, ``calico`` with one of ``CALICO_POOLS``
    and a block size), a seed, and ``example.com`` known upstream (it is
    ``external/client``).  Pass ``manifests=`` to use your own object lists (the node
    and pod bounds then apply to the default ``manifests()`` only).  ``ip_families``
    draws the Cluster's ``ipFamilies`` from ``IP_FAMILIES`` (``[IPv4]`` by default;
    ``st.sampled_from(IP_FAMILIES)`` gives dual-stack clusters too, which are built on
    ``routes`` or ``vxlan`` only: a dual-stack draw of another network takes ``routes``).
    Shrinks towards one node, one pod, ``routes``, IPv4 and seed 0.
    """
    _check_strategy("network", network)
    _check_strategy("seeds", seeds)
    _check_strategy("ip_families", ip_families)
    if manifests is None:
        objects = _default_manifests(min_nodes=min_nodes, max_nodes=max_nodes,
                                     min_pods=min_pods, max_pods=max_pods,
                                     max_services=max_services)
    else:
        _check_strategy("manifests", manifests)
        objects = manifests

    def build(parts: tuple[list[Manifest], str, int, dict[str, object], tuple[str, ...]]) \
            -> GeneratedCluster:
        docs, net, seed, pool, families = parts
        if net not in NETWORKS:
            raise InvalidArgument(f"network drew {net!r}: choose from {NETWORKS}")
        if not isinstance(seed, int) or not 0 <= seed < 2**63:
            raise InvalidArgument(f"seeds drew {seed!r}, not a non-negative integer")
        if tuple(families) not in IP_FAMILIES:
            raise InvalidArgument(f"ip_families drew {families!r}: choose from {IP_FAMILIES}")
        if "IPv6" in families and net not in DUAL_STACK_NETWORKS:
            net = "routes"
        return _load(_dump([_cluster_doc(net, seed, pool, tuple(families)), *docs]))

    return st.tuples(objects, network, seeds, _POOLS, ip_families).map(build)


# -- flows ----------------------------------------------------------------------------------

