"""Strategies for Traffic flows a correct cluster answers, and whole scenario files.
"""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Any

from hypothesis import reject
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from pktsim.api import Cluster
from pktsim.model.objects import Flow
from pktsim.strategies.clusters import (
    _FAMILIES,
    _NETWORK,
    _SEEDS,
    Manifest,
    _check_range,
    _dump,
    clusters,
)

FLOW_KINDS = ("pod-to-pod", "pod-to-service", "pod-to-service-name", "pod-to-external",
              "node-to-pod", "node-to-service", "node-to-external", "external-to-nodeport",
              "external-to-loadbalancer", "lookup")


def _listens(model: Any, pod_key: str, port: int, proto: str) -> bool:
    """Does the pod (or, for ``default/kubernetes``, the API server) serve ``port``?"""
    info = model.pods.get(pod_key)
    if info is None:
        return False
    if info.pod.namespace == "kube-system" and port == 53:
        return False  # CoreDNS speaks DNS there, not echo
    return any(cp.port == port and cp.protocol == proto
               for c in info.pod.containers for cp in c.ports)


def _usable(svc: Any, port: Any, node: str | None, local: bool) -> list[Any]:
    """The endpoints kube-proxy may pick for a connection (``local``: only ``node``'s)."""
    eps = [ep for ep in port.endpoints
           if ep.ready or svc.service.publish_not_ready_addresses]
    return [ep for ep in eps if ep.node == node] if local else eps


def _answered(model: Any, svc: Any, port: Any, eps: list[Any]) -> bool:
    """Would every endpoint kube-proxy may pick answer on ``port``?"""
    if not eps:
        return False
    proto = port.protocol
    if svc.key == "default/kubernetes":
        return proto == "TCP"
    return all(_listens(model, ep.pod, ep.port, proto) for ep in eps)


def _service_addrs(model: Any, svc: Any) -> list[tuple[str, str]]:
    """(pod key, IP) of the addresses a headless Service's name resolves to (ready ones)."""
    spec = svc.service
    seen: dict[str, str] = {}
    for port in svc.ports:
        for ep in port.endpoints:
            if ep.ready or spec.publish_not_ready_addresses:
                seen.setdefault(str(ep.ip), ep.pod)
    if not svc.ports and spec.selector:
        for info in model.pods.values():
            if info.pod.namespace == spec.namespace and (
                    info.pod.ready or spec.publish_not_ready_addresses) and all(
                    info.pod.labels.get(k) == v for k, v in spec.selector.items()):
                seen.setdefault(str(info.ip), info.key)
    return [(pod, ip) for ip, pod in seen.items()]


def _names(svc: Any, from_ns: str | None, domain: str) -> list[str]:
    name, ns = svc.service.name, svc.service.namespace
    out = [f"{name}.{ns}", f"{name}.{ns}.svc", f"{name}.{ns}.svc.{domain}"]
    return [name, *out] if from_ns == ns else out


def _connect(host: str, port: int, proto: str) -> list[Manifest]:
    """The ways to reach ``host:port`` over ``proto`` as flow targets."""
    if proto == "UDP":
        return [{"to": f"{host}:{port}", "protocol": "udp"}]
    url = f"http://{host}/" if port == 80 else f"http://{host}:{port}/"
    return [{"to": url}, {"to": f"{host}:{port}", "protocol": "tcp"}]


def _resolves_to(model: Any, svc: Any, upstream: dict[str, Any], domain: str) \
        -> list[tuple[int, str]] | None:
    """For a name lookup: the (port, protocol)s every address behind the name answers on;
    None when the name has no address."""
    spec = svc.service
    if spec.type == "ExternalName":
        target = spec.external_name.rstrip(".").lower()
        if target in upstream:
            return [(80, "TCP"), (8080, "TCP")]
        for other in model.services.values():
            if target == f"{other.service.name}.{other.service.namespace}.svc.{domain}" and \
                    other.service.type != "ExternalName":
                return _resolves_to(model, other, upstream, domain)
        return None
    if svc.cluster_ip is not None:
        return [(p.spec.port, p.protocol) for p in svc.ports
                if _answered(model, svc, p, _usable(svc, p, None, False))]
    addrs = _service_addrs(model, svc)
    if not addrs:
        return None
    common: set[tuple[int, str]] | None = None
    for pod, _ in addrs:
        info = model.pods.get(pod)
        served = {(cp.port, cp.protocol) for c in info.pod.containers for cp in c.ports} \
            if info is not None else set()
        served = {(p, proto) for p, proto in served
                  if _listens(model, pod, p, proto)}
        common = served if common is None else common & served
    return sorted(common or ())


def _pod_targets(model: Any, dst: Any) -> list[Manifest]:
    """The ways to reach pod ``dst``: ping, and each port it serves by address (both
    families' on a dual-stack pod) and by name."""
    targets: list[Manifest] = [{"to": dst.key, "protocol": "icmp"}]
    if dst.ip6 is not None:  # a dual-stack pod: over IPv6 too
        targets.append({"to": dst.key, "family": "IPv6", "protocol": "icmp"})
    for c in dst.pod.containers:
        for cp in c.ports:
            if _listens(model, dst.key, cp.port, cp.protocol):
                targets += _connect(str(dst.ip), cp.port, cp.protocol)
                if dst.ip6 is not None:
                    targets += _connect(f"[{dst.ip6}]", cp.port, cp.protocol)
                if cp.protocol == "TCP":
                    targets.append({"to": f"{dst.key}:{cp.port}", "protocol": "tcp"})
    return targets


def _flow_candidates(cluster: Cluster, missing_names: bool) -> dict[str, list[Manifest]]:
    """Every flow of each kind that a correct cluster answers (before count/payload/start)."""
    model = cluster.model
    cfg = model.config
    domain = cfg.cluster_domain.rstrip(".")
    upstream = {name.rstrip(".").lower(): ip for name, ip in cfg.upstream.items()}
    out: dict[str, list[Manifest]] = {kind: [] for kind in FLOW_KINDS}
    pods = sorted((p for p in model.pods.values() if not p.pod.host_network),
                  key=lambda p: p.key)
    sources = [p for p in pods if p.pod.namespace != "kube-system"
               and p.pod.dns_policy == "ClusterFirst"]
    nodes = [n.name for n in model.node_list()]
    services = [s for s in model.services.values() if s.key != "kube-system/kube-dns"]
    client = cfg.external_cidr.network_address + 10  # external/client
    web = [name for name, ip in upstream.items() if IPv4Address(ip) == client]
    for dst in pods:
        targets = _pod_targets(model, dst)
        out["pod-to-pod"] += [{"from": src.key, **t} for src in sources for t in targets]
        out["node-to-pod"] += [{"from": f"node:{n}", **t} for n in nodes for t in targets]
    for src in sources:
        for host in [*web, str(client)]:
            out["pod-to-external"] += _with(src.key, _connect(host, 80, "TCP"))
    for n in nodes:
        out["node-to-external"] += _with(f"node:{n}", _connect(str(client), 8080, "TCP"))
    for svc in services:
        spec = svc.service
        vip = svc.cluster_ip
        for port in svc.ports if vip is not None else []:
            number, proto = port.spec.port, port.protocol
            local_internal = spec.internal_traffic_policy == "Local"
            for src in sources:
                eps = _usable(svc, port, src.node, local_internal)
                if _answered(model, svc, port, eps):
                    out["pod-to-service"] += _with(src.key, _connect(str(vip), number, proto))
            if not local_internal and _answered(model, svc, port, _usable(svc, port, None,
                                                                          False)):
                out["node-to-service"] += [{"from": f"node:{n}", **t} for n in nodes
                                           for t in _connect(str(vip), number, proto)]
            if port.node_port is None or spec.type not in ("NodePort", "LoadBalancer"):
                continue
            local = spec.external_traffic_policy == "Local"
            for info in model.node_list():
                if _answered(model, svc, port, _usable(svc, port, info.name, local)):
                    out["external-to-nodeport"] += _with(
                        "external", _connect(str(info.ip), port.node_port, proto))
            first = model.node_list()[0].name
            if svc.load_balancer_ip is not None and _answered(
                    model, svc, port, _usable(svc, port, first, local)):
                out["external-to-loadbalancer"] += _with(
                    "external", _connect(str(svc.load_balancer_ip), number, proto))
        reached = _resolves_to(model, svc, upstream, domain)
        if reached is None:
            continue
        for src in sources:
            names = _names(svc, src.pod.namespace, domain)
            for name in names:
                out["lookup"] += [{"from": src.key, "lookup": name},
                                  {"from": src.key, "lookup": name, "protocol": "tcp"}]
                for number, proto in reached:
                    out["pod-to-service-name"] += _with(src.key, _connect(name, number, proto))
            if svc.cluster_ip is not None:
                for port in svc.ports:
                    if port.name:
                        srv = (f"_{port.name}._{port.protocol.lower()}.{spec.name}."
                               f"{spec.namespace}.svc.{domain}.")
                        out["lookup"].append({"from": src.key, "lookup": srv, "type": "SRV"})
    for src in sources:
        out["lookup"] += [{"from": src.key, "lookup": name} for name in upstream]
        if missing_names:
            out["lookup"] += [{"from": src.key, "lookup": "no-such-service"},
                              {"from": src.key,
                               "lookup": f"no-such-service.{src.pod.namespace}.svc.{domain}."},
                              {"from": src.key, "lookup": "no-such-host.example.org."}]
    return out


def _with(source: str, targets: list[Manifest]) -> list[Manifest]:
    return [{"from": source, **t} for t in targets]


_COUNTS = st.integers(1, 3)
_PAYLOADS = {"udp": st.sampled_from([None, 1, 100, 1000]),
             "icmp": st.sampled_from([None, 8, 1000]),
             "tcp": st.sampled_from([None, 1, 100, 1400, 3000])}
_STARTS = st.sampled_from([0, 1, 20, 1000])


def _finish(draw: st.DrawFn, kind: str, base: Manifest) -> Manifest:
    """A candidate flow with a name, a count, a payload and a start time drawn."""
    flow: Manifest = {"name": kind, **base}
    if "lookup" not in flow:
        proto = flow.get("protocol", "tcp")
        flow["count"] = draw(_COUNTS, label="count")
        payload = None if "://" in flow["to"] else draw(_PAYLOADS[proto], label="payload")
        if payload is not None:
            flow["payload"] = payload
    start = draw(_STARTS, label="start (ms)")
    if start:
        flow["start"] = start
    return flow


def _check_kinds(kinds: tuple[str, ...]) -> None:
    if isinstance(kinds, str) or not kinds or set(kinds) - set(FLOW_KINDS):
        raise InvalidArgument(f"kinds={kinds!r}: a tuple of some of {FLOW_KINDS}")


def _flow_dicts(cluster: Cluster, kinds: tuple[str, ...],
                missing_names: bool) -> st.SearchStrategy[Manifest]:
    if not isinstance(cluster, Cluster):
        raise InvalidArgument(f"cluster={cluster!r} must be a pktsim.Cluster (draw one from "
                              "clusters() first)")
    _check_kinds(kinds)
    candidates = _flow_candidates(cluster, missing_names)
    available = [k for k in FLOW_KINDS if k in kinds and candidates[k]]
    if not available:
        raise InvalidArgument(f"this cluster has no flow of kinds {kinds!r}")

    kinds_st = st.sampled_from(available)
    of_kind = {k: st.sampled_from(candidates[k]) for k in available}

    @st.composite
    def one(draw: st.DrawFn) -> Manifest:
        kind = draw(kinds_st, label="kind")
        return _finish(draw, kind, draw(of_kind[kind], label="flow"))

    return one()


def _parse_flows(entries: list[Manifest], families: tuple[str, ...] = ("IPv4",)) -> list[Flow]:
    """The flows as the loader reads them (in a stream of the cluster's families, so that a
    flow's ``family: IPv6`` is one the cluster has)."""
    from pktsim.scenario import load_scenario

    docs: list[Manifest] = [{"apiVersion": "pktsim/v1alpha1", "kind": "Traffic",
                             "spec": {"flows": entries}}]
    if families != ("IPv4",):
        docs.insert(0, {"apiVersion": "pktsim/v1alpha1", "kind": "Cluster",
                        "spec": {"ipFamilies": list(families)}})
    return load_scenario([("<generated flows>", _dump(docs))]).flows


def flows(cluster: Cluster, *, kinds: tuple[str, ...] = FLOW_KINDS,
          missing_names: bool = False) -> st.SearchStrategy[Flow]:
    """A ``Flow`` (a ``kind: Traffic`` entry, as the loader reads it) between things that
    exist in ``cluster``, which a correct cluster answers: pod to pod (ICMP, TCP, HTTP, UDP on
    declared ports), pod to a Service's ClusterIP or by DNS name (every form the search list
    resolves; headless and ExternalName too), pod and node to the outside, node to pod and
    Service, external client to a NodePort (on a node with a local endpoint when
    ``externalTrafficPolicy: Local``) and to a LoadBalancer IP, and DNS lookups (A, SRV; over
    UDP and TCP).  ``kinds`` limits the kinds (``FLOW_KINDS``); ``missing_names`` adds
    lookups of names that do not exist (answered NXDOMAIN, so not ``ok``).

    Its ``name`` is its kind; use ``flow_lists`` for several flows with distinct names.
    """
    if not isinstance(missing_names, bool):
        raise InvalidArgument(f"missing_names={missing_names!r} must be a bool")
    made = _flow_dicts(cluster, kinds, missing_names)  # checks ``cluster`` first
    families = cluster.model.config.ip_families
    return made.map(lambda f: _parse_flows([f], families)[0])


def flow_lists(cluster: Cluster, *, min_size: int = 1, max_size: int = 4,
               kinds: tuple[str, ...] = FLOW_KINDS,
               missing_names: bool = False) -> st.SearchStrategy[list[Flow]]:
    """Lists of ``flows(cluster)`` named ``1-pod-to-pod``, ``2-lookup``, … (distinct)."""
    _check_range("min_size", min_size, "max_size", max_size, least=0, most=1000)
    if not isinstance(missing_names, bool):
        raise InvalidArgument(f"missing_names={missing_names!r} must be a bool")
    made = _flow_dicts(cluster, kinds, missing_names)  # checks ``cluster`` first
    families = cluster.model.config.ip_families
    return st.lists(made, min_size=min_size, max_size=max_size).map(_numbered).map(
        lambda entries: _parse_flows(entries, families))


def _numbered(entries: list[Manifest]) -> list[Manifest]:
    return [{**e, "name": f"{i + 1}-{e['name']}"} for i, e in enumerate(entries)]


def scenarios(*, min_nodes: int = 1, max_nodes: int = 3, min_pods: int = 1, max_pods: int = 6,
              max_services: int = 3, min_flows: int = 1, max_flows: int = 4,
              network: st.SearchStrategy[str] = _NETWORK,
              seeds: st.SearchStrategy[int] = _SEEDS,
              kinds: tuple[str, ...] = FLOW_KINDS,
              ip_families: st.SearchStrategy[tuple[str, ...]] = _FAMILIES) \
        -> st.SearchStrategy[str]:
    """Whole scenario files as YAML text: a ``clusters(...)`` cluster and a ``kind: Traffic``
    of ``flow_lists(...)`` flows, for ``pktsim.load(text).run()`` or ``pktsim run``
    (``ip_families`` as for ``clusters``: dual-stack pods get IPv6 flows too)."""
    _check_range("min_flows", min_flows, "max_flows", max_flows, least=0, most=1000)
    _check_kinds(kinds)
    made = clusters(min_nodes=min_nodes, max_nodes=max_nodes, min_pods=min_pods,
                    max_pods=max_pods, max_services=max_services, network=network, seeds=seeds,
                    ip_families=ip_families)

    @st.composite
    def one(draw: st.DrawFn) -> str:
        cluster = draw(made)
        if max_flows == 0:
            return cluster.yaml
        try:
            one_flow = _flow_dicts(cluster, kinds, False)
        except InvalidArgument:  # no flow of these kinds in this cluster: try another
            reject()
        entries = draw(st.lists(one_flow, min_size=min_flows, max_size=max_flows),
                       label="flows")
        if not entries:
            return cluster.yaml
        traffic = {"apiVersion": "pktsim/v1alpha1", "kind": "Traffic",
                   "metadata": {"name": "generated"}, "spec": {"flows": _numbered(entries)}}
        return cluster.yaml + "---\n" + _dump([traffic])

    return one()
