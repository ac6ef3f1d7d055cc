"""``Pod`` and ``Node`` documents, and the pod spec shared by pods and workload templates.

What a snapshot says wins: ``spec.nodeName``, ``status.podIP(s)``, ``status.hostIP(s)``,
``status.conditions``.  Running sidecars (init containers with ``restartPolicy: Always``)
count as containers: they run beside the others and their ports listen too.  Pods whose
``status.phase`` is ``Succeeded`` or ``Failed`` are not running and are skipped with a warning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from pktsim.model.objects import Container, ContainerPort, Node, Pod, Source
from pktsim.scenario.fields import (
        IP_VALID,
    Obj,
    ip_of,
    ipv4_problem,
    network_of,
    wrong_type,
)
from pktsim.scenario.meta import Meta
from pktsim.scenario.syntax import (
    dns_label,
    dns_subdomain,
    domain_name,
    label_key,
    label_value,
    port_name,
)

DNS_POLICIES = ("ClusterFirst", "ClusterFirstWithHostNet", "Default", "None")
# terminationGracePeriodSeconds: an int64 the API validates as non-negative
# (ValidateNonnegativeField in kubernetes pkg/apis/core/validation/validation.go); when unset,
# v1.DefaultTerminationGracePeriodSeconds, 30 (SetDefaults_PodSpec, pkg/apis/core/v1/defaults.go)
MAX_INT64 = 2**63 - 1
DEFAULT_GRACE_SECONDS = 30
MAX_NAMESERVERS = 3
MAX_SEARCHES = 32


@dataclass(slots=True)
class PodSpec:
    """A pod's ``spec`` as read once (for a workload: once for all its replicas)."""

    containers: list[Container]
    node_name: str | None = None
    host_network: bool = False
    hostname: str = ""
    subdomain: str = ""
    dns_policy: str = "ClusterFirst"
    dns_config: dict[str, object] = field(default_factory=dict)
    readiness_gates: list[str] = field(default_factory=list)
    node_selector: dict[str, str] = field(default_factory=dict)
    termination_grace_ns: int = DEFAULT_GRACE_SECONDS * 10**9


def read_pod_spec(spec: Obj) -> PodSpec:
    out = PodSpec(containers=read_containers(spec))
    out.node_name = spec.string("nodeName", check=dns_subdomain) or None
    out.host_network = spec.boolean("hostNetwork", False)
    out.hostname = spec.string("hostname", check=dns_label)
    out.subdomain = spec.string("subdomain", check=dns_label)
    out.dns_policy = spec.choice("dnsPolicy", DNS_POLICIES, "ClusterFirst")
    out.dns_config = read_dns_config(spec)
    if out.dns_policy == "None" and not out.dns_config.get("nameservers"):
        spec.ctx.error(spec.at("dnsConfig.nameservers"), None,
                       "is required when dnsPolicy is None", "at least one IPv4 address")
    for gate in spec.mappings("readinessGates"):
        out.readiness_gates.append(gate.string("conditionType", required=True))
    out.node_selector = spec.str_map("nodeSelector", label_key, label_value)
    grace = spec.integer("terminationGracePeriodSeconds", DEFAULT_GRACE_SECONDS, 0, MAX_INT64)
    out.termination_grace_ns = grace * 10**9
    return out


def read_containers(spec: Obj) -> list[Container]:
    """``containers`` plus running sidecars; a port+protocol may be declared once per pod."""
    seen: dict[tuple[int, str], str] = {}
    names: set[str] = set()
    out: list[Container] = []
    listed = spec.mappings("containers", required=True)
    if not listed and spec.has("containers"):
        spec.ctx.error(spec.at("containers"), None, "is empty", "at least one container")
    sidecars = [c for c in spec.mappings("initContainers") if c.raw("restartPolicy") == "Always"]
    for obj in [*sidecars, *listed]:
        name = obj.string("name", required=True, check=dns_label)
        if name in names:
            obj.ctx.error(obj.at("name"), name, "is used by two containers",
                          "a unique name per container")
        names.add(name)
        out.append(Container(name, read_ports(obj, seen)))
    return out


def read_ports(container: Obj, seen: dict[tuple[int, str], str]) -> list[ContainerPort]:
    ctx = container.ctx
    out: list[ContainerPort] = []
    names: set[str] = set()
    for obj in container.mappings("ports"):
        number = obj.optional_int("containerPort", 1, 65535, required=True)
        protocol = obj.choice("protocol", ("TCP", "UDP", "SCTP"), "TCP")
        name = obj.string("name", check=port_name)
        if name and name in names:
            ctx.error(obj.at("name"), name, "is used twice in this container",
                      "a unique port name per container")
        names.add(name)
        if number is None:
            continue
        if protocol == "SCTP":
            ctx.warn(f"{obj.path}: SCTP port {number} ignored (SCTP not modelled)")
            continue
        first = seen.setdefault((number, protocol), obj.path)
        if first != obj.path:
            ctx.error(obj.at("containerPort"), number,
                      f"is declared twice for {protocol} (also at {first}); containers share "
                      "the pod's network namespace", "a port+protocol declared once per pod")
            continue
        host = obj.optional_int("hostPort", 0, 65535)  # ValidateContainerPorts: 0 is unset
        host_ip = obj.ipv4("hostIP") if obj.has("hostIP") and host else None
        if host_ip is not None and host_ip.is_unspecified:
            host_ip = None  # 0.0.0.0: every address, as portmap's fillDnatRules reads it
        out.append(ContainerPort(number, protocol, name, host or None, host_ip))
    return out


def read_dns_config(spec: Obj) -> dict[str, object]:
    """``dnsConfig`` as ``{nameservers: [str], searches: [str], options: [{name[, value]}]}``."""
    if not spec.has("dnsConfig"):
        return {}
    cfg = spec.mapping("dnsConfig")
    servers = cfg.strings("nameservers", ipv4_problem, "an IPv4 address")
    if len(servers) > MAX_NAMESERVERS:
        cfg.ctx.error(cfg.at("nameservers"), servers, "has too many entries",
                      f"at most {MAX_NAMESERVERS} nameservers")
    searches = cfg.strings("searches", domain_name, "a DNS name")
    if len(searches) > MAX_SEARCHES:
        cfg.ctx.error(cfg.at("searches"), searches, "has too many entries",
                      f"at most {MAX_SEARCHES} search domains")
    options: list[dict[str, str]] = []
    for obj in cfg.mappings("options"):
        option = {"name": obj.string("name", required=True)}
        if obj.has("value"):
            option["value"] = obj.string("value")
        options.append(option)
    return {"nameservers": servers, "searches": searches, "options": options}


def pod_ready(status: Obj, gates: list[str]) -> bool:
    """Ready unless ``Ready`` is not True, or a readiness gate lacks a True condition."""
    conditions: dict[str, str] = {}
    for cond in status.mappings("conditions"):
        kind = cond.string("type", required=True)
        conditions[kind] = cond.choice("status", ("True", "False", "Unknown"), "Unknown")
    if conditions.get("Ready", "True") != "True":
        return False
    return all(conditions.get(gate) == "True" for gate in gates)


# an address list read per family: (the IPv4 one, the IPv6 one, the families in their order)
Addrs = tuple[IPv4Address | None, IPv6Address | None, tuple[str, ...]]
NO_ADDRS: Addrs = (None, None, ())


def status_ips(status: Obj, single: str, plural: str) -> Addrs:
    """``status.<single>`` and ``status.<plural>[*].ip`` per family: ``podIP`` is
    ``podIPs[0]``, so an address given in both counts once."""
    candidates: list[tuple[str, object]] = []
    if status.has(single):
        candidates.append((status.at(single), status.raw(single)))
    candidates += [(o.at("ip"), o.raw("ip")) for o in status.mappings(plural) if o.has("ip")]
    return dual_addresses(status, candidates)


def dual_addresses(where: Obj, candidates: list[tuple[str, object]], *,
                   once: bool = True) -> Addrs:
    """The IPv4 and the IPv6 address of a dual-stack list, first of each family, and the
    families in their order (which of the cluster's families come first is inferred from
    them, pktsim.scenario.families).  ``once``: a second, different address of a family is
    an error, as ``validatePodIPs`` (kubernetes pkg/apis/core/validation/validation.go)
    refuses it; a node's InternalIPs may repeat a family (the first is its address)."""
    v4: IPv4Address | None = None
    v6: IPv6Address | None = None
    families: list[str] = []
    for path, value in candidates:
        if not isinstance(value, str):
            wrong_type(where.ctx, path, value, "an IP address")
            continue
        ip = ip_of(value)
        if ip is None:
            where.ctx.error(path, value, "is not an IP address", IP_VALID)
            continue
        family = f"IPv{ip.version}"
        if family in families:
            if once and ip not in (v4, v6):
                where.ctx.error(path, value, f"is a second {family} address",
                                "at most one address per IP family")
            continue
        families.append(family)
        if isinstance(ip, IPv4Address):
            v4 = ip
        else:
            v6 = ip
    return v4, v6, tuple(families)


def make_pod(meta: Meta, name: str, spec: PodSpec, source: Source) -> Pod:
    return Pod(namespace=meta.namespace, name=name, containers=list(spec.containers),
               labels=dict(meta.labels), node_name=spec.node_name,
               ready=not spec.readiness_gates, host_network=spec.host_network,
               hostname=spec.hostname, subdomain=spec.subdomain, dns_policy=spec.dns_policy,
               dns_config=spec.dns_config, termination_grace_ns=spec.termination_grace_ns,
               source=source)


_Status = tuple[str, bool, Addrs, Addrs]


@dataclass(slots=True)
class PodMemo:
    """What reading equal ``spec``s and ``status``es gave, for one load.

    A snapshot of 150,000 pods has a few thousand distinct specs (they differ in
    ``nodeName``) and statuses: each is read once.  Reading depends on nothing but the
    data, so equal data (equal ``repr``: the JSON/YAML types print distinctly) reads the
    same; only a reading that found no problem is kept, so every problem is still reported
    for every document that has it.  Pods with equal specs share the spec's (immutable)
    containers, as a workload's replicas do."""

    specs: dict[str, PodSpec] = field(default_factory=dict)
    statuses: dict[tuple[str, tuple[str, ...]], _Status] = field(default_factory=dict)


def _problems(doc: Obj) -> tuple[int, int]:
    return len(doc.ctx.errors), len(doc.ctx.warnings)


def _spec(doc: Obj, memo: PodMemo | None) -> PodSpec:
    obj = doc.mapping("spec")
    if memo is None or not obj.data:
        return read_pod_spec(obj)
    key = repr(obj.data)
    found = memo.specs.get(key)
    if found is None:
        before = _problems(doc)
        found = read_pod_spec(obj)
        if _problems(doc) == before:
            memo.specs[key] = found
    return found


def _status(doc: Obj, gates: list[str], memo: PodMemo | None) -> _Status:
    status = doc.mapping("status")
    key = (repr(status.data), tuple(gates))
    found = memo.statuses.get(key) if memo is not None else None
    if found is None:
        before = _problems(doc)
        phase = status.string("phase")
        if phase in ("Succeeded", "Failed"):
            return phase, False, NO_ADDRS, NO_ADDRS
        found = (phase, pod_ready(status, gates), status_ips(status, "podIP", "podIPs"),
                 status_ips(status, "hostIP", "hostIPs"))
        if memo is not None and _problems(doc) == before:
            memo.statuses[key] = found
    return found


def read_pod(doc: Obj, meta: Meta, source: Source, memo: PodMemo | None = None) -> Pod | None:
    """The pod of a ``Pod`` document; ``memo`` keeps what equal specs and statuses gave."""
    spec = _spec(doc, memo)
    phase, ready, pod_ips, host_ips = _status(doc, spec.readiness_gates, memo)
    if phase in ("Succeeded", "Failed"):
        doc.ctx.warn(f"pod skipped (status.phase {phase}: not running)")
        return None
    pod = make_pod(meta, meta.name, spec, source)
    pod.ready, (pod.pod_ip, pod.pod_ip6, pod.families) = ready, pod_ips
    pod.host_ip, pod.host_ip6 = host_ips[0], host_ips[1]
    if meta.owner is not None:
        pod.owner = f"{meta.owner[0]}/{meta.owner[1]}"
    return pod


def read_node(doc: Obj, meta: Meta, source: Source) -> Node:
    """A Node: its pod CIDR and InternalIP per family (``spec.podCIDR`` is
    ``spec.podCIDRs[0]``), and the families they list, in order."""
    spec = doc.mapping("spec")
    status = doc.mapping("status")
    node = Node(meta.name, labels=dict(meta.labels), source=source)
    cidrs: list[tuple[str, object]] = []
    if spec.has("podCIDR"):
        cidrs.append((spec.at("podCIDR"), spec.raw("podCIDR")))
    cidrs += spec.sequence("podCIDRs")
    families = _node_cidrs(doc, node, cidrs)
    internal = [(a.at("address"), a.raw("address")) for a in status.mappings("addresses")
                if a.string("type") == "InternalIP" and a.has("address")]
    node.internal_ip, node.internal_ip6, by_address = dual_addresses(status, internal,
                                                                      once=False)
    node.families = families or by_address
    return node


def _node_cidrs(doc: Obj, node: Node, cidrs: list[tuple[str, object]]) -> tuple[str, ...]:
    """``spec.podCIDRs`` per family: at most one of each, as ``ValidateNode`` (kubernetes
    pkg/apis/core/validation/validation.go) requires of a dual-stack node."""
    families: list[str] = []
    for path, value in cidrs:
        if not isinstance(value, str):
            wrong_type(doc.ctx, path, value, "a network like 10.244.1.0/24 or fd00:10:244:1::/64")
            continue
        net = network_of(value)
        if isinstance(net, tuple):
            doc.ctx.error(path, value, *net)
            continue
        family = f"IPv{net.version}"
        if family in families:
            if net not in (node.pod_cidr, node.pod_cidr6):
                doc.ctx.error(path, value, f"is a second {family} CIDR",
                              "at most one pod CIDR per IP family")
            continue
        families.append(family)
        if isinstance(net, IPv4Network):
            node.pod_cidr = net
        else:
            assert isinstance(net, IPv6Network)
            node.pod_cidr6 = net
    return tuple(families)
