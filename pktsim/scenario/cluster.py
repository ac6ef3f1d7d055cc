"""``kind: Cluster`` (pktsim/v1alpha1): the cluster-wide settings of docs/scenario.md §3.

The fields live under ``spec`` (like every Kubernetes object); a document without ``spec`` may
give them at the top level instead.  Unknown fields are errors: a typo such as ``podCidr``
must not silently fall back to a default.  Names in ``clusterDomain`` and ``upstream`` are
lower-cased and lose a trailing dot (DNS names compare case-insensitively).

``ipFamilies`` and the per-family CIDRs: ``podCIDR``, ``serviceCIDR`` and ``nodeCIDR`` take
one CIDR per family, as a list or as kubeadm's comma-separated ``"v4,v6"`` string (kind's
``podSubnet``), in the order of the families; a family without a CIDR gets kind's default.
``family_refusal`` is the one place where families pktsim parses but cannot build yet are
refused.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Network
from typing import Any

from pktsim.model.objects import ClusterConfig, Source
from pktsim.scenario.calico import check_pool, read_pool
from pktsim.scenario.control import GROUPS as CONTROL_GROUPS
from pktsim.scenario.control import read_control
from pktsim.scenario.fields import CIDR_VALID, Obj, as_ipv4, as_str, network_of, wrong_type
from pktsim.scenario.syntax import domain_name, interface_name, label_value, parse_rfc3339

FIELDS = ("clusterDomain", "ipFamilies", "podCIDR", "serviceCIDR", "nodeCIDR", "externalCIDR",
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
FAMILIES = ("IPv4", "IPv6")
FAMILIES_VALID = "[IPv4], [IPv4, IPv6], [IPv6, IPv4] or [IPv6]"
# kube-controller-manager's --node-cidr-mask-size-ipv6 default (defaultNodeMaskCIDRIPv6,
# kubernetes cmd/kube-controller-manager/app/core.go setNodeCIDRMaskSizes)
NODE_MASK6 = 64
# the IPv6 range of each field that takes one per family, as CIDRS
CIDRS6 = {
    "podCIDR": ("pod_cidr6", NODE_MASK6, f"a /{NODE_MASK6} per node"),
    "serviceCIDR": ("service_cidr6", 124, "kube-dns at the 10th address"),
    "nodeCIDR": ("node_cidr6", 126, "node addresses from ::2"),
}


def family_refusal(families: tuple[str, ...], network: str) -> tuple[str, str] | None:
    """``(message, valid)`` when pktsim reads these families but cannot build them yet.

    The one place IPv6 is held back: the readers and the allocator
    (``pktsim.model.families``) handle every order of families, so lifting a refusal here
    is all it takes once the build has the dataplane for it."""
    if "IPv6" not in families:
        return None
    if families[0] == "IPv6":
        return ("IPv6-primary clusters are not modelled yet: pktsim models dual-stack with "
                "IPv4 first ([IPv4, IPv6])", "[IPv4, IPv6] or [IPv4]")
    if network not in ("routes", "vxlan"):
        return (f"IPv6 with network: {network} is not modelled yet",
                "network: routes or vxlan, or ipFamilies [IPv4]")
    return None


def cluster_fields(doc: Obj) -> Obj:
    """The mapping that holds the fields: ``spec``, or the document itself."""
    if doc.has("spec"):
        doc.unknown_keys((*OBJECT_KEYS, "spec"))
        body = doc.mapping("spec")
    else:
        body = Obj(doc.ctx, "", {k: v for k, v in doc.data.items() if k not in OBJECT_KEYS})
    body.unknown_keys(FIELDS)
    return body


def read_cluster(doc: Obj, source: Source) -> tuple[ClusterConfig, str]:
    """The Cluster, and the field that decided its families (``spec.ipFamilies``, or a CIDR
    list with an IPv6 entry); ``""`` when none did, and the manifests are to say."""
    body = cluster_fields(doc)
    cfg = ClusterConfig(source=source)
    domain = body.string("clusterDomain", cfg.cluster_domain, check=domain_name,
                         valid="a DNS name")
    cfg.cluster_domain = domain.lower().rstrip(".") or cfg.cluster_domain
    decided = _read_families(body, cfg, _read_cidrs(body, cfg))
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
    return cfg, decided


def _read_families(body: Obj, cfg: ClusterConfig, listed: dict[str, tuple[str, ...]]) -> str:
    """``ipFamilies`` (else the families the CIDR lists give), checked against the CIDRs:
    each family once, as ``ValidateIPFamilies`` (kubernetes
    pkg/apis/core/validation/validation.go) requires; a CIDR of a family not listed, or
    CIDRs in another order than the families', is an error."""
    families: list[str] = []
    if body.has("ipFamilies"):
        entries = body.sequence("ipFamilies")
        if not entries and isinstance(body.raw("ipFamilies"), list):
            body.ctx.error(body.at("ipFamilies"), [], "is empty", FAMILIES_VALID)
        for path, value in entries:
            name = as_str(body.ctx, path, value, _family, "IPv4 | IPv6")
            if name in families:
                body.ctx.error(path, name, "is given twice", f"each family once: {FAMILIES_VALID}")
            elif name is not None:
                families.append(name)
        decided = body.at("ipFamilies") if families else ""
    else:
        with6 = [key for key, fams in listed.items() if "IPv6" in fams]
        duals = [key for key, fams in listed.items() if len(fams) == 2]
        key = (duals or with6 or [""])[0]
        families = list(listed[key]) if key else []
        for fams in listed.values():
            families += [f for f in fams if f not in families]
        decided = body.at(key) if with6 else ""
        if not with6:
            return ""
    for key, fams in listed.items():
        extra = [f for f in fams if f not in families]
        order = [f for f in families if f in fams]
        if extra:
            body.ctx.error(body.at(key), body.raw(key), f"has an {extra[0]} CIDR, and "
                           f"ipFamilies is [{', '.join(families)}]",
                           "one CIDR per family of ipFamilies")
        elif list(fams) != order:
            body.ctx.error(body.at(key), body.raw(key), f"lists {fams[0]} first, and "
                           f"ipFamilies puts {families[0]} first",
                           "the CIDRs in the order of ipFamilies")
    if families:
        cfg.ip_families = tuple(families)
    return decided


def _family(text: str) -> tuple[str, str] | None:
    return None if text in FAMILIES else ("is not an IP family", "IPv4 | IPv6")


def _read_zones(body: Obj) -> list[str]:
    """``zones``: the ``topology.kubernetes.io/zone`` label values the generated nodes get,
    round robin (``pktsim.model.cluster.generated_nodes``); each a non-empty label value."""
    return body.strings("zones", _zone, "a non-empty label value")


def _zone(text: str) -> tuple[str, str] | None:
    if text == "":
        return "is empty", "a non-empty label value"
    return label_value(text)


def _read_cidrs(body: Obj, cfg: ClusterConfig) -> dict[str, tuple[str, ...]]:
    """The CIDR fields; returns the families each per-family field lists, in its order."""
    nets: dict[str, Any] = {}  # the valid IPv4 ones, given or default
    nets6: dict[str, Any] = {key: getattr(cfg, attr) for key, (attr, _, _) in CIDRS6.items()}
    listed: dict[str, tuple[str, ...]] = {}
    for key, attr, longest, why in CIDRS:
        if key in CIDRS6 and body.has(key):
            found = _cidr_list(body, key)
            listed[key] = tuple(f"IPv{n.version}" for n in found)
            net = next((n for n in found if n.version == 4), None)
            six = next((n for n in found if n.version == 6), None)
            if six is not None and _fits(body, key, six, *CIDRS6[key][1:]):
                setattr(cfg, CIDRS6[key][0], six)
                nets6[key] = six
            if net is None:
                nets[key] = getattr(cfg, attr)
                continue
        else:
            net = body.network(key)
            if net is None:
                if not body.has(key):
                    nets[key] = getattr(cfg, attr)
                continue
        if _fits(body, key, net, longest, why):
            setattr(cfg, attr, net)
            nets[key] = net
    _disjoint(body, nets)
    _disjoint(body, nets6)
    return listed


def _fits(body: Obj, key: str, net: IPv4Network | IPv6Network, longest: int, why: str) -> bool:
    if net.prefixlen <= longest:
        return True
    body.ctx.error(body.at(key), str(net), "is too small",
                   f"a prefix of /{longest} or shorter ({why})")
    return False


def _cidr_list(body: Obj, key: str) -> list[IPv4Network | IPv6Network]:
    """A per-family CIDR field: one CIDR, a list, or kubeadm's comma-separated string
    (``podSubnet: "10.244.0.0/16,fd00:10:244::/56"``); one CIDR per family, as kubeadm's
    ``ValidateIPNetFromString`` (kubernetes cmd/kubeadm/app/apis/kubeadm/validation)
    allows at most one of each."""
    value = body.raw(key)
    if isinstance(value, str):
        items: list[tuple[str, Any]] = [(body.at(key), part.strip())
                                        for part in value.split(",")]
    elif isinstance(value, list):
        items = body.sequence(key)
    else:
        wrong_type(body.ctx, body.at(key), value, CIDR_VALID)
        return []
    out: list[IPv4Network | IPv6Network] = []
    for path, item in items:
        text = as_str(body.ctx, path, item, valid=CIDR_VALID)
        if text is None:
            continue
        net = network_of(text)
        if isinstance(net, tuple):
            body.ctx.error(path, text, *net)
        elif any(n.version == net.version for n in out):
            body.ctx.error(path, text, f"is a second IPv{net.version} CIDR",
                           "one CIDR per IP family")
        else:
            out.append(net)
    return out


def _disjoint(body: Obj, nets: dict[str, Any]) -> None:
    """The ranges routed to different places must not overlap (per family)."""
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
