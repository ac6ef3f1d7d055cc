"""``Service`` and ``EndpointSlice`` documents, validated as the API server would.

``status.loadBalancer.ingress[*].ip`` (else the deprecated ``spec.loadBalancerIP``) gives a
LoadBalancer Service its address.  ``selector: {}`` means no selector, as in Kubernetes.
EndpointSlices of address type IPv4 and IPv6 are read (an IPv6 slice's endpoints serve the
Service's IPv6 family, pktsim.model.services6); FQDN slices, and slices without the
``kubernetes.io/service-name`` label (they belong to no Service), are skipped with a warning;
an endpoint port without ``port`` ("all ports") is left out.  An endpoint's ``zone`` and
``hints`` are read for kube-proxy's topology-aware routing (pktsim.kubeproxy.topology).
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

from pktsim.errors import ScenarioError
from pktsim.model.objects import (
    ClusterConfig,
    Endpoint,
    EndpointPort,
    EndpointSlice,
    Service,
    ServicePort,
    Source,
)
from pktsim.model.topology import (
    TOPOLOGY_AWARE_HINTS,
    TOPOLOGY_MODE,
    TRAFFIC_DISTRIBUTIONS,
    ZONE_LABEL,
    hints_enabled,
)
from pktsim.scenario.fields import (
    Check,
    Obj,
    as_int,
    as_network,
    as_str,
    ipv4_problem,
    ipv6_problem,
    wrong_type,
)
from pktsim.scenario.meta import Meta
from pktsim.scenario.pods import dual_addresses
from pktsim.scenario.syntax import (
    dns_label,
    dns_subdomain,
    domain_name,
    label_key,
    label_value,
    port_name,
)

SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
PROTOCOLS = ("TCP", "UDP", "SCTP")
NODE_PORT_MIN, NODE_PORT_MAX = 30000, 32767
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
IP_FAMILY_POLICIES = ("SingleStack", "PreferDualStack", "RequireDualStack")


def read_service(doc: Obj, meta: Meta, source: Source) -> Service:
    spec = doc.mapping("spec")
    svc = Service(meta.namespace, meta.name, source=source)
    svc.type = spec.choice("type", SERVICE_TYPES, "ClusterIP")
    known = None if spec.has("type") and spec.raw("type") != svc.type else svc.type
    implied = _cluster_ip(spec, svc, known)
    svc.selector = spec.str_map("selector", label_key, label_value) or None
    svc.ports = _ports(spec, svc, known)
    svc.external_name = spec.string("externalName", required=svc.type == "ExternalName",
                                    check=domain_name, valid="a DNS name")
    svc.external_ips = [IPv4Address(a) for a in spec.strings("externalIPs", ipv4_problem)]
    if svc.type == "LoadBalancer":
        _load_balancer_ips(doc, spec, svc)
    policies = ("Cluster", "Local")
    svc.external_traffic_policy = spec.choice("externalTrafficPolicy", policies, "Cluster")
    svc.internal_traffic_policy = spec.choice("internalTrafficPolicy", policies, "Cluster")
    svc.session_affinity = spec.choice("sessionAffinity", ("None", "ClientIP"), "None")
    client_ip = spec.mapping("sessionAffinityConfig").mapping("clientIP")
    svc.session_affinity_timeout = client_ip.integer("timeoutSeconds", 10800, 1, 86400)
    svc.publish_not_ready_addresses = spec.boolean("publishNotReadyAddresses", False)
    for path, value in spec.sequence("loadBalancerSourceRanges"):
        net = as_network(doc.ctx, path, value, strict=False)
        if net is not None:
            svc.load_balancer_source_ranges.append(net)
    svc.health_check_node_port = spec.optional_int("healthCheckNodePort", 1, 65535)
    _ip_families(spec, svc, implied)
    _topology(doc, spec, svc)
    return svc


def _topology(doc: Obj, spec: Obj, svc: Service) -> None:
    """``spec.trafficDistribution``, validated as ``validateServiceTrafficDistribution``
    (kubernetes ``pkg/apis/core/validation/validation.go``) does since 1.35, and the Auto
    topology mode of the annotations, which pktsim does not model (pktsim.model.topology)."""
    svc.traffic_distribution = spec.choice("trafficDistribution", TRAFFIC_DISTRIBUTIONS, "")
    annotations = doc.mapping("metadata").raw("annotations")
    if not isinstance(annotations, dict) or not hints_enabled(annotations):
        return
    svc.topology_auto = True
    ignored = f"; trafficDistribution {svc.traffic_distribution} is ignored, as the " \
        "EndpointSlice controller ignores it in Auto mode" if svc.traffic_distribution else ""
    key = TOPOLOGY_AWARE_HINTS if TOPOLOGY_AWARE_HINTS in annotations else TOPOLOGY_MODE
    doc.ctx.warn(f"topology mode Auto (annotation {key}) is not modelled: the EndpointSlice "
                 "controller's proportional zone hints need the nodes' allocatable CPU; the "
                 f"endpoints get no hints, and kube-proxy uses every endpoint{ignored}")


def _ip_families(spec: Obj, svc: Service, implied: tuple[str, ...]) -> None:
    """``ipFamilies`` (each family once, ``ValidateService``'s ``validateIPFamilies``,
    kubernetes pkg/apis/core/validation/validation.go) and ``ipFamilyPolicy`` as written;
    without ``ipFamilies``, the families ``clusterIPs`` imply (``implied``), as the API
    server defaults them.  What they ask of the cluster is checked once its families are
    known (``services_checked``)."""
    svc.ip_family_policy = spec.choice("ipFamilyPolicy", IP_FAMILY_POLICIES, "")
    families: list[str] = []
    for path, value in spec.sequence("ipFamilies"):
        name = as_str(spec.ctx, path, value, _family, "IPv4 | IPv6")
        if name in families:
            spec.ctx.error(path, name, "is given twice", "each family once")
        elif name is not None:
            families.append(name)
    svc.ip_families = tuple(families) or implied


def services_checked(cfg: ClusterConfig, services: list[Service]) -> list[ScenarioError]:
    """What each Service's families ask of the cluster, as ``initIPFamilyFields`` (kubernetes
    ``pkg/registry/core/service/storage/alloc.go``) judges it: a family the cluster lacks,
    and ``RequireDualStack`` in a single-stack cluster, are errors; ``PreferDualStack`` there
    is single-stack without a word.  The families are then resolved in the model
    (``pktsim.model.families.service_families``): single-stack IPv4 or IPv6, or dual-stack
    with both ClusterIPs."""
    errors: list[ScenarioError] = []
    for svc in services:
        if svc.type == "ExternalName":
            continue
        src = svc.source or Source()
        problem = _family_problem(cfg, svc)
        if problem is not None:
            field, value, message, valid = problem
            errors.append(ScenarioError(message, file=src.file, document=src.document(),
                                        field=field, value=value, valid=valid))
    return errors


def _family_problem(cfg: ClusterConfig, svc: Service) -> tuple[str, object, str, str] | None:
    shown = ", ".join(svc.ip_families)
    cluster = f"[{', '.join(cfg.ip_families)}]"
    if svc.ip_family_policy == "SingleStack" and len(svc.ip_families) == 2:
        return ("spec.ipFamilyPolicy", "SingleStack", "is single-stack, and ipFamilies gives "
                f"two families ({shown})", "PreferDualStack or RequireDualStack")
    missing = [f for f in svc.ip_families if f not in cfg.ip_families]
    if missing:
        return ("spec.ipFamilies", shown, f"asks for {missing[0]}, which is not configured "
                f"on this cluster (ipFamilies {cluster})", f"families of {cluster}")
    # two families ask for both; a headless Service without a selector defaults to
    # RequireDualStack too, but takes what the cluster has (initIPFamilyFields), so it is
    # not judged by its default (pktsim.model.families.family_policy)
    policy = svc.ip_family_policy or ("RequireDualStack" if len(svc.ip_families) == 2
                                      else "SingleStack")
    if svc.load_balancer_ip6 is not None and svc.load_balancer_ip is None \
            and not cfg.has_ipv6:
        return ("status.loadBalancer.ingress", str(svc.load_balancer_ip6), "is an IPv6 "
                f"address and no IPv4 one is given: the cluster's ipFamilies are {cluster}",
                "an IPv4 address (or a dual-stack list with one)")
    if policy == "RequireDualStack" and len(cfg.ip_families) < 2:
        return ("spec.ipFamilyPolicy", policy, "asks for both families: this cluster is not "
                f"configured for dual-stack services (ipFamilies {cluster})",
                "SingleStack or PreferDualStack")
    return None


def _family(text: str) -> tuple[str, str] | None:
    return None if text in ("IPv4", "IPv6") else ("is not an IP family", "IPv4 | IPv6")


def _cluster_ip(spec: Obj, svc: Service, kind: str | None) -> tuple[str, ...]:
    """``spec.clusterIP``/``clusterIPs``: ``svc.cluster_ip`` an IPv4 address, "None" or None,
    ``svc.cluster_ip6`` the IPv6 one; returns the families they list, in order."""
    candidates: list[tuple[str, object]] = []
    if spec.has("clusterIP"):
        candidates.append((spec.at("clusterIP"), spec.raw("clusterIP")))
    candidates += spec.sequence("clusterIPs")
    if not candidates:
        return ()
    if candidates[0][1] == "None":
        if kind not in ("ClusterIP", None):
            spec.ctx.error(candidates[0][0], "None", f"(headless) is not allowed for type {kind}",
                           "type ClusterIP")
        svc.cluster_ip = "None"
        return ()
    if kind == "ExternalName":
        spec.ctx.error(candidates[0][0], candidates[0][1], "is not allowed for type ExternalName",
                       "no clusterIP")
        return ()
    v4, v6, families = dual_addresses(spec, candidates)
    svc.cluster_ip = None if v4 is None else str(v4)
    svc.cluster_ip6 = None if v6 is None else str(v6)
    return families


def _ports(spec: Obj, svc: Service, kind: str | None) -> list[ServicePort]:
    """The ports; checks that depend on the type are left out when ``kind`` is invalid."""
    ctx = spec.ctx
    objs = spec.mappings("ports")
    if not objs and svc.type != "ExternalName" and svc.cluster_ip != "None":
        spec.missing("ports", "at least one port (only headless and ExternalName Services "
                     "may have none)")
    out: list[ServicePort] = []
    seen: dict[tuple[int, str], str] = {}
    names: set[str] = set()
    for obj in objs:
        port = obj.optional_int("port", 1, 65535, required=True)
        protocol = obj.choice("protocol", PROTOCOLS, "TCP")
        name = obj.string("name", check=dns_label)
        if len(objs) > 1 and not obj.has("name"):
            obj.missing("name", "a name for each port when a Service has several")
        if name and name in names:
            ctx.error(obj.at("name"), name, "is used by two ports", "a unique name per port")
        names.add(name)
        target, node_port = _target_port(obj), _node_port(obj, kind)
        if port is None:
            continue
        first = seen.setdefault((port, protocol), obj.path)
        if first != obj.path:
            ctx.error(obj.at("port"), port, f"is declared twice for {protocol} (also at "
                      f"{first})", "a port+protocol declared once per Service")
        out.append(ServicePort(port, protocol, name, target, node_port))
    return out


def _target_port(obj: Obj) -> int | str | None:
    value = obj.raw("targetPort")
    if value is None or (type(value) is int and value == 0):
        return None
    if isinstance(value, str):
        return as_str(obj.ctx, obj.at("targetPort"), value, port_name)
    if isinstance(value, int) and not isinstance(value, bool):
        return as_int(obj.ctx, obj.at("targetPort"), value, 1, 65535)
    wrong_type(obj.ctx, obj.at("targetPort"), value, "a port number 1-65535 or a port name")
    return None


def _node_port(obj: Obj, kind: str | None) -> int | None:
    value = obj.raw("nodePort")
    if value is None or (type(value) is int and value == 0):  # 0: allocate one
        return None
    port = obj.optional_int("nodePort", NODE_PORT_MIN, NODE_PORT_MAX)
    if port is not None and kind not in ("NodePort", "LoadBalancer", None):
        obj.ctx.error(obj.at("nodePort"), port, f"is not allowed for type {kind}",
                      "type NodePort or LoadBalancer")
        return None
    return port


def _load_balancer_ips(doc: Obj, spec: Obj, svc: Service) -> None:
    """The first ingress ``ip`` of each family (a dual-stack load balancer lists both),
    else ``spec.loadBalancerIP`` (IPv4); whether the cluster has the IPv6 family is
    checked with the Service's families (``services_checked``)."""
    ingress = doc.mapping("status").mapping("loadBalancer").mappings("ingress")
    v4, v6, _ = dual_addresses(doc, [(i.at("ip"), i.raw("ip")) for i in ingress
                                     if i.has("ip")], once=False)
    svc.load_balancer_ip = v4 if v4 is not None else spec.ipv4("loadBalancerIP")
    svc.load_balancer_ip6 = v6


def check_node_ports(services: list[Service], errors: list[ScenarioError]) -> None:
    """A nodePort (per protocol) belongs to one Service port in the whole cluster."""
    owners: dict[tuple[int, str], str] = {}
    for svc in services:
        for i, port in enumerate(svc.ports):
            if port.node_port is None:
                continue
            here = f"Service {svc.key} spec.ports[{i}]"
            first = owners.setdefault((port.node_port, port.protocol), here)
            if first != here:
                src = svc.source or Source()
                errors.append(ScenarioError(
                    f"is already allocated to {first}", file=src.file,
                    document=src.document(), field=f"spec.ports[{i}].nodePort",
                    value=port.node_port, valid="a nodePort unique in the cluster"))


def read_endpoint_slice(doc: Obj, meta: Meta, source: Source) -> EndpointSlice | None:
    address_type = doc.choice("addressType", ("IPv4", "IPv6", "FQDN"), "IPv4")
    service = meta.labels.get(SERVICE_NAME_LABEL, "")
    if address_type == "FQDN":
        doc.ctx.warn(f"skipped (addressType {address_type} not modelled)")
        return None
    if not service:
        doc.ctx.warn(f"skipped (no {SERVICE_NAME_LABEL} label: it belongs to no Service)")
        return None
    out = EndpointSlice(meta.namespace, meta.name, service, source=source,
                        address_type=address_type)
    out.endpoints = [_endpoint(obj, meta.namespace, address_type)
                     for obj in doc.mappings("endpoints")]
    for obj in doc.mappings("ports"):
        port = obj.optional_int("port", 1, 65535)
        protocol = obj.choice("protocol", PROTOCOLS, "TCP")
        name = obj.string("name", check=dns_label)
        if port is not None:
            out.ports.append(EndpointPort(port, protocol, name))
    return out


MAX_HINTS = 8  # maxZoneHints (and maxNodeHints), pkg/apis/discovery/validation


def _hint_names(hints: Obj, key: str, check: Check, *, empty: bool) -> tuple[str, ...]:
    """``hints.forZones[].name`` or ``hints.forNodes[].name`` as ``validateHints``
    (kubernetes ``pkg/apis/discovery/validation/validation.go``) checks them: at most 8,
    none twice, a label value (zones: ``""`` too, ``empty``, which kube-proxy then matches
    to a node without a zone) or a node name (nodes)."""
    entries = hints.mappings(key)
    if len(entries) > MAX_HINTS:
        hints.ctx.error(hints.at(key), len(entries), "has too many entries",
                        f"at most {MAX_HINTS}")
        return ()
    names: list[str] = []
    for entry in entries:
        raw = entry.raw("name")
        if empty and raw in (None, ""):
            name: str | None = ""
        else:
            name = entry.string("name", required=True, check=check) or None
        if name is not None and name in names:
            hints.ctx.error(entry.at("name"), name, "is given twice", "distinct names")
        elif name is not None:
            names.append(name)
    return tuple(names)


def _endpoint(obj: Obj, namespace: str, address_type: str) -> Endpoint:
    """One endpoint; its addresses of the slice's type (``validateEndpoints``: each an
    address of ``addressType``, kubernetes pkg/apis/discovery/validation)."""
    six = address_type == "IPv6"
    texts = obj.strings("addresses", ipv6_problem if six else ipv4_problem)
    if not texts and not obj.has("addresses"):
        obj.missing("addresses", f"a list of {address_type} addresses")
    cond = obj.mapping("conditions")
    # unset conditions as kube-proxy reads them (pkg/proxy/endpointslicecache.go
    # addEndpoints): ready and serving when nil, terminating only when true
    end = Endpoint([] if six else [IPv4Address(a) for a in texts],
                   ready=cond.boolean("ready", True), serving=cond.boolean("serving", True),
                   terminating=cond.boolean("terminating", False),
                   addresses6=[IPv6Address(a) for a in texts] if six else [])
    end.hostname = obj.string("hostname", check=dns_label)
    # discovery/v1beta1's topology labels, as its conversion to v1 moves them to nodeName and
    # zone (pkg/apis/discovery/v1beta1 conversion.go)
    topology = obj.mapping("topology")  # label values: strings, checked as such
    host = topology.string("kubernetes.io/hostname", check=dns_subdomain)
    zone = topology.string(ZONE_LABEL, check=label_value)
    end.node_name = obj.string("nodeName", host, check=dns_subdomain)
    end.zone = obj.string("zone", zone, check=label_value)
    hints = obj.mapping("hints")
    end.for_zones = _hint_names(hints, "forZones", label_value, empty=True)
    end.for_nodes = _hint_names(hints, "forNodes", dns_subdomain, empty=False)
    ref = obj.mapping("targetRef")
    if ref.raw("kind") == "Pod" and ref.has("name"):
        pod_ns = ref.string("namespace", namespace, check=dns_label) or namespace
        end.target_pod = f"{pod_ns}/{ref.string('name', check=dns_subdomain)}"
    return end
