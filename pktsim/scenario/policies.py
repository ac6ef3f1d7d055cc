"""``NetworkPolicy`` documents, validated and defaulted as the API server does.

Validation follows kubernetes ``pkg/apis/networking/validation/validation.go``
(``ValidateNetworkPolicySpec``, ``ValidateNetworkPolicyPort``, ``ValidateNetworkPolicyPeer``,
``ValidateIPBlock``) and apimachinery's ``ValidateLabelSelector`` /
``ValidateLabelSelectorRequirement`` (``staging/src/k8s.io/apimachinery/pkg/apis/meta/v1/
validation/validation.go``); defaulting follows ``SetDefaults_NetworkPolicy`` and
``SetDefaults_NetworkPolicyPort`` (``pkg/apis/networking/v1/defaults.go``).  Every problem is
recorded in the document's ``Ctx`` with its field path (``spec.ingress[0].from[1].ipBlock.
cidr``), so the loader reports them all at once.

CIDRs are parsed as ``IsValidCIDRForLegacyField`` does while the ``StrictIPCIDRValidation``
gate is off (its default; alpha since 1.33): ``netutils.ParseCIDRSloppy``, which accepts an
address with host bits (``10.0.0.1/24`` means ``10.0.0.0/24``) and leading zeros.  Such a
value is accepted with the warning ``GetWarningsForCIDR`` words
(``staging/src/k8s.io/apimachinery/pkg/util/validation/ip.go``), as kubectl shows it.
"""

from __future__ import annotations

import re
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network

from pktsim.model.objects import Source
from pktsim.model.policy import (
    OPERATORS,
    POLICY_PROTOCOLS,
    POLICY_TYPES,
    IpBlock,
    LabelSelector,
    Net,
    NetworkPolicy,
    Peer,
    PolicyPort,
    PolicyRule,
    Requirement,
    enforces_policy,
)
from pktsim.scenario.fields import Obj, as_int, as_str, wrong_type
from pktsim.scenario.meta import Meta
from pktsim.scenario.syntax import label_key, label_value, port_name

CIDR_VALID = "a CIDR like 10.9.8.0/24 or 2001:db8::/64"
_SLOPPY_V4 = re.compile(r"(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\Z")
_PREFIX = re.compile(r"\d+\Z")


def read_network_policy(doc: Obj, meta: Meta, source: Source) -> NetworkPolicy:
    """The policy; its invalid parts are reported in ``doc.ctx`` and left out."""
    spec = doc.mapping("spec")
    selector = read_selector(spec, "podSelector") or LabelSelector()
    ingress = tuple(_rule(obj, "from") for obj in spec.mappings("ingress"))
    egress = tuple(_rule(obj, "to") for obj in spec.mappings("egress"))
    types = _policy_types(spec, egress)
    return NetworkPolicy(meta.namespace, meta.name, selector, types, ingress, egress,
                         source=source)


def _policy_types(spec: Obj, egress: tuple[PolicyRule, ...]) -> tuple[str, ...]:
    """``policyTypes`` checked (``ValidateNetworkPolicySpec``) and defaulted
    (``SetDefaults_NetworkPolicy``: Ingress, plus Egress when there are egress rules)."""
    listed = spec.sequence("policyTypes")
    if len(listed) > len(POLICY_TYPES):
        spec.ctx.error(spec.at("policyTypes"), [v for _, v in listed],
                       "may not specify more than two policyTypes", "Ingress, Egress")
        return ()
    given: set[str] = set()
    for path, value in listed:
        text = as_str(spec.ctx, path, value, valid=" | ".join(POLICY_TYPES))
        if text is None:
            continue
        if text not in POLICY_TYPES:
            spec.ctx.error(path, text, "is not supported", " | ".join(POLICY_TYPES))
            continue
        given.add(text)
    if not listed:
        given = {"Ingress", "Egress"} if egress else {"Ingress"}
    return tuple(t for t in POLICY_TYPES if t in given)


def _rule(obj: Obj, peers_key: str) -> PolicyRule:
    """An ingress (``from``) or egress (``to``) rule."""
    ports = tuple(p for p in (read_port(o) for o in obj.mappings("ports")) if p is not None)
    peers = tuple(p for p in (read_peer(o) for o in obj.mappings(peers_key)) if p is not None)
    return PolicyRule(peers, ports)


def read_port(obj: Obj) -> PolicyPort | None:
    """``ValidateNetworkPolicyPort``; the protocol defaults to TCP."""
    protocol = obj.choice("protocol", POLICY_PROTOCOLS, "TCP")
    value = obj.raw("port")
    port: int | str | None = None
    if isinstance(value, str):
        port = as_str(obj.ctx, obj.at("port"), value, port_name)
    elif isinstance(value, int) and not isinstance(value, bool):
        port = as_int(obj.ctx, obj.at("port"), value, 1, 65535)
    elif value is not None:
        wrong_type(obj.ctx, obj.at("port"), value, "a port number 1-65535 or a port name")
    end = _end_port(obj, value, port)
    if (value is not None and port is None) or (obj.raw("endPort") is not None and end is None):
        return None
    return PolicyPort(protocol, port, end)


def _end_port(obj: Obj, value: object, port: int | str | None) -> int | None:
    """``endPort``: only after a numeric ``port``, and not below it."""
    if obj.raw("endPort") is None:
        return None
    end = obj.optional_int("endPort", 1, 65535)
    if end is None:
        return None
    if value is None:
        obj.ctx.error(obj.at("endPort"), end, "may not be specified when `port` is not "
                      "specified", "an endPort only with a numeric port")
        return None
    if isinstance(value, str):
        obj.ctx.error(obj.at("endPort"), end, "may not be specified when `port` is "
                      "non-numeric", "an endPort only with a numeric port")
        return None
    if isinstance(port, int) and end < port:
        obj.ctx.error(obj.at("endPort"), end, "must be greater than or equal to `port`",
                      f"an integer {port}-65535")
        return None
    return end


def read_peer(obj: Obj) -> Peer | None:
    """``ValidateNetworkPolicyPeer``: at least one of the three; ``ipBlock`` alone."""
    present = [k for k in ("podSelector", "namespaceSelector", "ipBlock")
               if obj.raw(k) is not None]
    pods = read_selector(obj, "podSelector")
    namespaces = read_selector(obj, "namespaceSelector")
    block = None
    if isinstance(obj.raw("ipBlock"), dict):
        block = read_ip_block(obj.mapping("ipBlock"))
    elif "ipBlock" in present:
        obj.mapping("ipBlock")  # reports the wrong type
    if not present:
        obj.ctx.error(obj.path, obj.data, "must specify a peer",
                      "podSelector, namespaceSelector (or both), or ipBlock")
        return None
    if len(present) > 1 and "ipBlock" in present:
        obj.ctx.error(obj.path, sorted(present), "may not specify both ipBlock and another "
                      "peer", "ipBlock alone, or podSelector and/or namespaceSelector")
        return None
    if block is None and not (pods or namespaces):
        return None
    return Peer(pods, namespaces, block)


def read_selector(obj: Obj, key: str) -> LabelSelector | None:
    """A ``metav1.LabelSelector`` (None when absent), as ``ValidateLabelSelector`` checks it."""
    if obj.raw(key) is None:
        return None
    sel = obj.mapping(key)
    labels = sel.str_map("matchLabels", label_key, label_value)
    reqs = tuple(r for r in (_requirement(o) for o in sel.mappings("matchExpressions"))
                 if r is not None)
    return LabelSelector(tuple(sorted(labels.items())), reqs)


def _requirement(obj: Obj) -> Requirement | None:
    """``ValidateLabelSelectorRequirement``: In/NotIn need values, Exists/DoesNotExist none."""
    key = obj.string("key", required=True, check=label_key, valid="a label key")
    operator = obj.string("operator", required=True, valid=" | ".join(OPERATORS))
    values = tuple(obj.strings("values", label_value, "a label value"))
    if operator and operator not in OPERATORS:
        obj.ctx.error(obj.at("operator"), operator, "is not a valid selector operator",
                      " | ".join(OPERATORS))
        return None
    if operator in ("In", "NotIn") and not values:
        obj.ctx.error(obj.at("values"), None, f"must be specified when `operator` is "
                      f"{operator!r}", "at least one label value")
        return None
    if operator in ("Exists", "DoesNotExist") and obj.sequence("values"):
        obj.ctx.error(obj.at("values"), list(values), f"may not be specified when "
                      f"`operator` is {operator!r}", "no values")
        return None
    if not key or not operator:
        return None
    return Requirement(key, operator, values)


def read_ip_block(obj: Obj) -> IpBlock | None:
    """``ValidateIPBlock``: a CIDR, and each ``except`` a strict subset of it."""
    text = obj.string("cidr", required=True, valid=CIDR_VALID)
    cidr = parse_cidr(obj, obj.at("cidr"), text) if text else None
    if cidr is None:
        obj.sequence("except")  # type check only
        return None
    excepts: list[Net] = []
    for path, value in obj.sequence("except"):
        item = as_str(obj.ctx, path, value, valid=CIDR_VALID)
        net = parse_cidr(obj, path, item) if item is not None else None
        if net is None:
            continue
        if net.version != cidr.version or net.network_address not in cidr or \
                cidr.prefixlen >= net.prefixlen:
            obj.ctx.error(path, item, "must be a strict subset of `cidr`",
                          f"a network inside {cidr} with a longer prefix")
            continue
        excepts.append(net)
    return IpBlock(cidr, tuple(excepts))


def parse_cidr(obj: Obj, path: str, text: str) -> Net | None:
    """``ParseCIDRSloppy``: the network (host bits cleared), or None after an error; a value
    in a non-standard form is accepted with ``GetWarningsForCIDR``'s warning."""
    address, slash, prefix = text.partition("/")
    net = _sloppy(address, prefix) if slash and _PREFIX.match(prefix) else None
    if net is None:
        obj.ctx.error(path, text, "is not a valid CIDR", CIDR_VALID)
        return None
    plain = _plain(address)
    if ip_address(plain) != net.network_address:
        obj.ctx.warn(f"{path}: CIDR value {text!r} is ambiguous in this context (should be "
                     f"{str(net)!r} or '{plain}/{net.max_prefixlen}'?)")
    if plain != address or (len(prefix) > 1 and prefix.startswith("0")):
        obj.ctx.warn(f"{path}: non-standard CIDR value {text!r} will be considered invalid "
                     f"in a future Kubernetes release: use {str(net)!r}")
    return net


def _sloppy(address: str, prefix: str) -> Net | None:
    """The network of ``address/prefix``, IPv4 octets and prefix may carry leading zeros."""
    plain = _plain(address)
    try:
        net = ip_network(f"{plain}/{int(prefix)}", strict=False)
    except ValueError:
        return None
    return net if isinstance(net, IPv4Network | IPv6Network) else None


def _plain(address: str) -> str:
    """An IPv4 address with its octets' leading zeros dropped (decimal, as Go reads them)."""
    found = _SLOPPY_V4.match(address)
    return ".".join(str(int(g)) for g in found.groups()) if found else address


def has_ipv6_block(policy: NetworkPolicy) -> bool:
    """Whether an ipBlock of ``policy`` is IPv6 (it can never match pktsim's IPv4 packets)."""
    rules = (*policy.ingress, *policy.egress)
    return any(peer.ip_block is not None and peer.ip_block.cidr.version == 6
               for rule in rules for peer in rule.peers)


def policy_warnings(policies: list[NetworkPolicy], network: str) -> list[str]:
    """One warning per run for policies the network cannot enforce, one for IPv6 blocks."""
    out: list[str] = []
    if policies and not enforces_policy(network):
        out.append(f"NetworkPolicy {_names(policies)} has no effect: network {network} "
                   f"({_cni(network)}) does not enforce NetworkPolicy, as on a real cluster "
                   "with that CNI; Cluster.spec.network: calico does")
    ipv6 = [p for p in policies if has_ipv6_block(p)]
    if ipv6:
        out.append(f"NetworkPolicy {_names(ipv6)}: IPv6 ipBlocks are kept but have no effect "
                   "(pktsim models IPv4 packets only)")
    return out


def _cni(network: str) -> str:
    """The CNI plugin a ``Cluster.spec.network`` stands for (docs/model.md)."""
    names = (("routes", "kubenet"), ("vxlan", "flannel"), ("ipip", "flannel IPIP"))
    return next((cni for net, cni in names if net == network), network)


def _names(policies: list[NetworkPolicy], shown: int = 5) -> str:
    """``ns/a, ns/b, ns/c`` -- the first ``shown`` keys, then how many more."""
    keys = [p.key for p in policies]
    more = f" and {len(keys) - shown} more" if len(keys) > shown else ""
    return ", ".join(keys[:shown]) + more
