"""A pod's ``/etc/resolv.conf``, as kubelet composes it and containerd writes it.

Theory of operation
-------------------
kubelet's ``Configurer.GetPodDNS`` (kubernetes ``pkg/kubelet/network/dns/dns.go``):

* starts from the node's resolv.conf (``--resolv-conf``): nameservers accumulate, the last
  ``search`` line wins (trailing dots trimmed), the last ``options`` line wins;
* policy (``getPodDNSType``): ``None`` starts empty; ``ClusterFirstWithHostNet``, and
  ``ClusterFirst`` without hostNetwork, use the cluster DNS as the only nameserver, the search
  list ``<ns>.svc.<domain> svc.<domain> <domain>`` + the node's search domains (duplicates
  dropped) and ``options ndots:5`` (node options dropped); ``ClusterFirst`` with hostNetwork
  and ``Default`` keep the node's settings; ``ClusterFirst`` with no cluster DNS configured
  falls back to ``Default`` (kubelet emits ``MissingClusterDNS``);
* ``dnsConfig`` is appended (``appendDNSConfig``): nameservers and searches de-duplicated,
  options merged by name with the pod's values winning.  kubelet rebuilds the options from a
  Go map, so their order is random there; here it is first-seen order;
* limits (``formDNSConfigFitsLimits``): 3 nameservers; then the search list is cut to 32
  domains, domains over 253 characters are dropped, and domains are cut from the end until
  the joined line is at most 2048 characters (``DNSConfigForming`` warnings are collected in
  ``ResolvConf.warnings``).

containerd's CRI plugin writes the file (``parseDNSOptions``): ``search`` line, then one
``nameserver`` line each, then ``options``; lines with nothing to say are left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pktsim.model.objects import Pod

DEFAULT_OPTIONS = ("ndots:5",)
MAX_NAMESERVERS = 3
MAX_SEARCH_PATHS = 32  # validation.MaxDNSSearchPaths (ExpandedDNSConfig, GA in 1.28)
MAX_SEARCH_CHARS = 2048
MAX_DOMAIN = 253  # utilvalidation.DNS1123SubdomainMaxLength


@dataclass(slots=True)
class ResolvConf:
    nameservers: list[str] = field(default_factory=list)
    searches: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def render(self) -> str:
        """The file as containerd writes it."""
        text = ""
        if self.searches:
            text += f"search {' '.join(self.searches)}\n"
        for server in self.nameservers:
            text += f"nameserver {server}\n"
        if self.options:
            text += f"options {' '.join(self.options)}\n"
        return text

    def option(self, name: str) -> str | None:
        """The value of ``name:value`` (the last one, as glibc reads them), "" for a flag."""
        found = None
        for opt in self.options:
            key, _, value = opt.partition(":")
            if key == name:
                found = value
        return found


def parse_resolv_conf(text: str) -> ResolvConf:
    """kubelet's ``parseResolvConf``."""
    conf = ResolvConf()
    for line in text.split("\n"):
        trimmed = line.strip()
        if trimmed.startswith("#"):
            continue
        fields = trimmed.split()
        if not fields:
            continue
        if fields[0] == "nameserver" and len(fields) >= 2:
            conf.nameservers.append(fields[1])
        elif fields[0] == "search":
            conf.searches = [s.removesuffix(".") for s in fields[1:]]
        elif fields[0] == "options":
            conf.options = fields[1:]
    return conf


def node_resolv_conf(upstream_ip: str) -> str:
    """The node's own resolv.conf in pktsim: the upstream resolver, no search domains."""
    return f"nameserver {upstream_ip}\n"


def _dedup(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def merge_options(existing: list[str], pod_options: list[dict[str, object]]) -> list[str]:
    """``mergeDNSOptions``: by name, the pod's value wins (first-seen order kept)."""
    merged: dict[str, str] = {}
    for opt in existing:
        name, sep, value = opt.partition(":")
        merged[name] = value if sep else ""
    for option in pod_options:
        merged[str(option.get("name", ""))] = str(option.get("value", ""))
    return [f"{name}:{value}" if value else name for name, value in merged.items()]


def _fit_searches(searches: list[str], warnings: list[str]) -> list[str]:
    """``formDNSSearchFitsLimits``."""
    exceeded = False
    if len(searches) > MAX_SEARCH_PATHS:
        searches, exceeded = searches[:MAX_SEARCH_PATHS], True
    kept = [s for s in searches if len(s) <= MAX_DOMAIN]
    exceeded = exceeded or len(kept) != len(searches)
    length = len(" ".join(kept))
    if length > MAX_SEARCH_CHARS:
        cut, cut_chars = 0, 0
        for domain in reversed(kept):
            cut_chars += len(domain) + 1
            cut += 1
            if length - cut_chars <= MAX_SEARCH_CHARS:
                break
        kept, exceeded = kept[: len(kept) - cut], True
    if exceeded:
        warnings.append("DNSConfigForming: Search Line limits were exceeded, some search paths "
                        f"have been omitted, the applied search line is: {' '.join(kept)}")
    return kept


def _pod_base(pod: Pod, node: ResolvConf, cluster_dns: list[str], cluster_domain: str,
              warnings: list[str]) -> ResolvConf:
    policy = pod.dns_policy
    if policy == "None":
        return ResolvConf()
    # ClusterFirst on hostNetwork: "Fallback to DNSDefault for pod on hostnetwork"
    cluster = not pod.host_network if policy == "ClusterFirst" else policy != "Default"
    if cluster and cluster_dns:
        searches = list(node.searches)
        if cluster_domain:
            ns_svc = f"{pod.namespace}.svc.{cluster_domain}"
            searches = _dedup([ns_svc, f"svc.{cluster_domain}", cluster_domain, *searches])
        return ResolvConf(list(cluster_dns), searches, list(DEFAULT_OPTIONS))
    if cluster:
        warnings.append(f'MissingClusterDNS: kubelet does not have ClusterDNS IP configured '
                        f'and cannot create Pod using "{policy}" policy. Falling back to '
                        f'"Default" policy.')
    return ResolvConf(list(node.nameservers), list(node.searches), list(node.options))


def resolv_conf(pod: Pod, node_resolv: str, cluster_dns_ip: str | list[str] | None,
                cluster_domain: str) -> ResolvConf:
    """The pod's resolv.conf (``GetPodDNS``); ``node_resolv`` is the node file's text."""
    warnings: list[str] = []
    node = parse_resolv_conf(node_resolv)
    servers = [cluster_dns_ip] if isinstance(cluster_dns_ip, str) else list(cluster_dns_ip or [])
    domain = cluster_domain.removesuffix(".")
    conf = _pod_base(pod, node, servers, domain, warnings)
    extra = pod.dns_config
    if extra:
        conf.nameservers = _dedup(conf.nameservers + _strings(extra.get("nameservers")))
        conf.searches = _dedup(conf.searches + _strings(extra.get("searches")))
        options = extra.get("options")
        pod_options = [o for o in options if isinstance(o, dict)] \
            if isinstance(options, list) else []
        conf.options = merge_options(conf.options, pod_options)
    if len(conf.nameservers) > MAX_NAMESERVERS:
        conf.nameservers = conf.nameservers[:MAX_NAMESERVERS]
        warnings.append("DNSConfigForming: Nameserver limits were exceeded, some nameservers "
                        "have been omitted, the applied nameserver line is: "
                        + " ".join(conf.nameservers))
    conf.searches = _fit_searches(conf.searches, warnings)
    conf.warnings = warnings
    return conf


def _strings(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []
