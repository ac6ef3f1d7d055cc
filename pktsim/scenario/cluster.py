"""``kind: Cluster`` (pktsim/v1alpha1): the cluster-wide settings of docs/scenario.md §3.

The fields live under ``spec`` (like every Kubernetes object); a document without ``spec`` may
give them at the top level instead.  Unknown fields are errors: a typo such as ``podCidr``
must not silently fall back to a default.  Names in ``clusterDomain`` and ``upstream`` are
lower-cased and lose a trailing dot (DNS names compare case-insensitively).
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from pktsim.model.objects import ClusterConfig, Source
from pktsim.scenario.calico import check_pool, read_pool
from pktsim.scenario.control import GROUPS as CONTROL_GROUPS
from pktsim.scenario.control import read_control
from pktsim.scenario.fields import Obj, as_ipv4, as_str
from pktsim.scenario.syntax import domain_name, interface_name, label_value, parse_rfc3339

FIELDS = ("clusterDomain", "podCIDR", "serviceCIDR", "nodeCIDR", "externalCIDR",
          "loadBalancerCIDR", "nodes", "zones", "network", "bridge", "hairpinMode",
          "proxyMode", "dns", "upstream", "startTime", "seed", "calico", *CONTROL_GROUPS)
NETWORKS = ("routes", "vxlan", "ipip", "calico")
OBJECT_KEYS = ("apiVersion", "kind", "metadata")
MAX_SEED = 2**64 - 1

# field, attribute, the longest prefix that still leaves room for what the network must hold
CIDRS = (
    ("podCIDR", "pod_cidr", 24, "a /24 per node"),
    ("serviceCIDR", "service_cidr", 28, "kube-dns at the 10th address"),
    ("nodeCIDR", "node_cidr", 30, "node addresses from .2"),
    ("externalCIDR", "external_cidr", 28, "the router at .1 and clients from .10"),
    ("loadBalancerCIDR", "load_balancer_cidr", 32, "one address"),
)
# these four are routed to different places, so they must not overlap
DISJOINT = ("podCIDR", "serviceCIDR", "nodeCIDR", "externalCIDR")


def cluster_fields(doc: Obj) -> Obj:
    """The mapping that holds the fields: ``spec``, or the document itself."""
    if doc.has("spec"):
        doc.unknown_keys((*OBJECT_KEYS, "spec"))
        body = doc.mapping("spec")
    else:
        body = Obj(doc.ctx, "", {k: v for k, v in doc.data.items() if k not in OBJECT_KEYS})
    body.unknown_keys(FIELDS)
    return body


def read_cluster(doc: Obj, source: Source) -> ClusterConfig:
    body = cluster_fields(doc)
    cfg = ClusterConfig(source=source)
    domain = body.string("clusterDomain", cfg.cluster_domain, check=domain_name,
                         valid="a DNS name")
    cfg.cluster_domain = domain.lower().rstrip(".") or cfg.cluster_domain
    _read_cidrs(body, cfg)
    cfg.nodes = body.integer("nodes", cfg.nodes, 1, 10000)
    cfg.zones = _read_zones(body)
    cfg.network = body.choice("network", NETWORKS, cfg.network)
    if body.has("calico"):
        calico = body.mapping("calico")
        cfg.calico = read_pool(calico, cfg.calico, strict=True)
        check_pool(calico, cfg.calico, cfg)
        if cfg.network != "calico":
            body.ctx.warn(f"calico has no effect: network is {cfg.network}, not calico")
    cfg.bridge = body.string("bridge", cfg.bridge, check=interface_name)
    cfg.hairpin_mode = body.boolean("hairpinMode", cfg.hairpin_mode)
    cfg.proxy_mode = body.choice("proxyMode", ("iptables",), cfg.proxy_mode)
    cfg.dns = body.choice("dns", ("coredns", "none"), cfg.dns)
    cfg.upstream = _read_upstream(body)
    if body.has("startTime"):
        stamp = body.string("startTime", valid="an RFC 3339 time like 2026-01-01T00:00:00Z")
        ns = parse_rfc3339(stamp) if stamp else None
        if ns is not None:
            cfg.start_time_ns = ns
        elif stamp:
            body.ctx.error(body.at("startTime"), stamp, "is not an RFC 3339 time",
                           "a time like 2026-01-01T00:00:00Z or 2026-01-01T01:00:00.5+01:00")
    cfg.seed = body.integer("seed", cfg.seed, 0, MAX_SEED)
    cfg.control = read_control(body)
    return cfg


def _read_zones(body: Obj) -> list[str]:
    """``zones``: the ``topology.kubernetes.io/zone`` label values the generated nodes get,
    round robin (``pktsim.model.cluster.generated_nodes``); each a non-empty label value."""
    return body.strings("zones", _zone, "a non-empty label value")


def _zone(text: str) -> tuple[str, str] | None:
    if text == "":
        return "is empty", "a non-empty label value"
    return label_value(text)


def _read_cidrs(body: Obj, cfg: ClusterConfig) -> None:
    nets: dict[str, IPv4Network] = {}  # the valid ones, given or default
    for key, attr, longest, why in CIDRS:
        net = body.network(key)
        if net is None:
            if not body.has(key):
                nets[key] = getattr(cfg, attr)
            continue
        if net.prefixlen > longest:
            body.ctx.error(body.at(key), str(net), "is too small",
                           f"a prefix of /{longest} or shorter ({why})")
            continue
        setattr(cfg, attr, net)
        nets[key] = net
    checked = [key for key in DISJOINT if key in nets]
    for i, first in enumerate(checked):
        for second in checked[i + 1:]:
            if not nets[first].overlaps(nets[second]):
                continue
            if body.has(first) or body.has(second):
                where, other = (second, first) if body.has(second) else (first, second)
                body.ctx.error(body.at(where), str(nets[where]),
                               f"overlaps {other} {nets[other]}",
                               "disjoint pod, service, node and external CIDRs")


def _read_upstream(body: Obj) -> dict[str, IPv4Address]:
    out: dict[str, IPv4Address] = {}
    table = body.mapping("upstream")
    for name, value in table.data.items():
        path = f"{table.path}[{name}]"
        key = as_str(body.ctx, path, name, domain_name, "a DNS name")
        address = as_ipv4(body.ctx, path, value)
        if key is not None and address is not None:
            out[key.lower().rstrip(".")] = address
    return out
