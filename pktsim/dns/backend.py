"""The kubernetes plugin's backend: query names -> "service entries" (CoreDNS ``msg.Service``).

Theory of operation
-------------------
This is coredns ``plugin/kubernetes/{parse,kubernetes,reverse,ns}.go`` over a ``ZoneIndex``:

* ``parse_request`` splits ``[_port._proto.|endpoint.]service.namespace.(svc|pod).<zone>``;
  an empty base or ``svc``/``pod`` alone is an apex (NODATA), a last label other than
  ``svc``/``pod`` or more than two leading labels is an invalid name (NXDOMAIN);
* ``records`` finds what a name denotes (``Records``/``findServices``/``findPods``): a name
  error (``NameErr``, CoreDNS's ``errNoItems``/``errNsNotExposed``/``errInvalidRequest``)
  becomes NXDOMAIN, an empty list NODATA;
* ``services`` adds the per-type special cases of ``Kubernetes.Services``: the
  ``dns-version`` TXT (TTL 28800), TXT of other existing names (NODATA) or missing ones
  (NXDOMAIN), ``ns.dns.<zone>`` and the NS addresses, and drops ExternalName CNAMEs from SRV;
* ``reverse`` is ``serviceRecordForIP``: the first Service whose ClusterIP is the address,
  else every Service that has the address as a ready endpoint.

Comparisons are case-insensitive (``strings.EqualFold``; the query name is lower-cased by
``state.Name()``); names built from the zone keep the query's spelling of the zone, as
CoreDNS's ``zone = qname[len(qname)-len(zone):]`` does, while PTR targets use the configured
zone (``primaryZone``).
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address

from pktsim.dns.records import Svc, ZoneIndex, is_ip

DNS_SCHEMA_VERSION = "1.1.0"  # kubernetes.go DNSSchemaVersion
DNS_VERSION_TTL = 28800


class NameErr(Exception):
    """A name error: NXDOMAIN, or fall through to the next plugin in a fallthrough zone."""


@dataclass(frozen=True, slots=True)
class Entry:
    """CoreDNS's ``msg.Service``: what a name holds before it becomes RRs."""

    host: str  # an IP literal, or a domain name (an ExternalName: CNAME)
    ttl: int
    port: int = 0
    domain: str = ""  # ``msg.Domain(Key)``: the FQDN the entry lives at (SRV/NS target)
    text: str = ""

    @property
    def host_type(self) -> str:
        if not is_ip(self.host):
            return "CNAME"
        return "A" if isinstance(ip_address(self.host), IPv4Address) else "AAAA"


@dataclass(frozen=True, slots=True)
class Request:
    port: str = ""
    protocol: str = ""
    endpoint: str = ""
    service: str = ""
    namespace: str = ""
    pod_or_svc: str = ""


def parse_request(base: list[str]) -> Request:
    """``parseRequest`` on the labels left of the zone (lower-case)."""
    if base in ([], ["svc"], ["pod"]):
        return Request()
    segs = list(base)
    kind = segs.pop()
    if kind not in ("svc", "pod"):
        raise NameErr("invalid query name")
    fields = {"pod_or_svc": kind}
    for key in ("namespace", "service"):
        if not segs:
            return Request(**fields)
        fields[key] = segs.pop()
    if not segs:
        return Request(**fields)
    if len(segs) == 1:
        return Request(endpoint=segs[0], **fields)
    if len(segs) == 2:
        return Request(port=segs[0].removeprefix("_"), protocol=segs[1].removeprefix("_"),
                       **fields)
    raise NameErr("too long")


def _match_port(req: Request, name: str, protocol: str) -> bool:
    """``matchPortAndProtocol``: an empty port or protocol in the query matches any."""
    return (not req.port or req.port == name.lower()) and \
        (not req.protocol or req.protocol == protocol.lower())


def pod_ip(label: str) -> str | None:
    """``findPods``: ``a-b-c-d`` is IPv4, anything else dashes-to-colons IPv6."""
    text = label.replace("-", ".") if label.count("-") == 3 and "--" not in label else \
        label.replace("-", ":")
    try:
        return str(ip_address(text))
    except ValueError:
        return None


class KubeBackend:
    def __init__(self, index: ZoneIndex, *, ttl: int, pods_mode: str, primary_zone: str,
                 local_ips: tuple[IPv4Address | IPv6Address, ...]) -> None:
        self.index, self.ttl, self.pods_mode = index, ttl, pods_mode
        self.primary_zone = primary_zone  # "cluster.local." as configured
        self.local_ips = local_ips

    # -- Records --------------------------------------------------------------------------
    def records(self, base: list[str], zone: str, reverse_zone: bool) -> list[Entry]:
        req = parse_request(base)
        if not req.pod_or_svc:
            return []
        if reverse_zone:
            raise NameErr("reverse")
        if req.namespace not in self.index.namespaces:
            raise NameErr("namespace not exposed")
        if req.pod_or_svc == "pod":
            return self._pods(req, zone)
        return self._services(req, zone)

    def _pods(self, req: Request, zone: str) -> list[Entry]:
        if self.pods_mode == "disabled":
            raise NameErr("pods disabled")
        if not req.service:
            return []
        ip = pod_ip(req.service)
        if ip is None:
            raise NameErr("not an address")
        domain = f"{req.service}.{req.namespace}.pod.{zone}"
        if self.pods_mode == "verified":
            namespaces = self.index.pods.get(ip_address(ip), [])
            if req.namespace not in namespaces:
                raise NameErr("no such pod")
        return [Entry(ip, self.ttl, domain=domain)]

    def _services(self, req: Request, zone: str) -> list[Entry]:
        if not req.service:
            return []
        svc = self.index.services.get((req.namespace, req.service))
        if svc is None:
            raise NameErr("no such service")
        domain = f"{svc.name}.{svc.namespace}.svc.{zone}"
        if svc.kind == "ExternalName":
            if req.endpoint or req.port or req.protocol or is_ip(svc.external_name):
                raise NameErr("external service")
            return [Entry(svc.external_name, self.ttl, domain=domain)]
        if svc.headless or req.endpoint:
            found = self._endpoints(svc, req, domain)
        else:
            found = [Entry(str(ip), self.ttl, port, domain=domain)
                     for name, proto, port in svc.ports if _match_port(req, name, proto)
                     for ip in svc.cluster_ips]
            if not any(_match_port(req, name, proto) for name, proto, _ in svc.ports):
                raise NameErr("no such port")
        return found

    def _endpoints(self, svc: Svc, req: Request, domain: str) -> list[Entry]:
        found = []
        for addr in svc.addrs:
            if req.endpoint and req.endpoint != addr.hostname.lower():
                continue
            for name, proto, port in addr.ports:
                if _match_port(req, name, proto):
                    found.append(Entry(str(addr.ip), self.ttl, port,
                                       domain=f"{addr.hostname}.{domain}"))
        if not found:
            raise NameErr("no endpoints")
        return found

    # -- Services (per query type) --------------------------------------------------------
    def services(self, base: list[str], qtype: str, zone: str, reverse_zone: bool,
                 qname_text: str) -> list[Entry]:
        if qtype == "TXT":
            if base == ["dns-version"]:
                return [Entry("", DNS_VERSION_TTL, text=DNS_SCHEMA_VERSION)]
            try:
                found = self.records(base, zone, reverse_zone)
            except NameErr:
                found = []
            if found:
                return []
            raise NameErr("no TXT")
        if qtype == "NS":
            return [Entry(ip, self.ttl, domain=name) for name, ip in self.ns_addrs(zone)]
        if base == ["ns", "dns"]:  # isDefaultNS: ns.dns.<zone>
            return [Entry(ip, self.ttl, domain=qname_text) for _, ip in self.ns_addrs(zone)
                    if Entry(ip, 0).host_type == qtype]
        found = self.records(base, zone, reverse_zone)
        if qtype == "SRV":  # "SRV for external services is not yet implemented"
            found = [e for e in found if e.host_type != "CNAME"]
        return found

    def ns_addrs(self, zone: str) -> list[tuple[str, str]]:
        """``nsAddrs``: the Services that front this CoreDNS (by its local IPs)."""
        out: list[tuple[str, str]] = []
        for local in self.local_ips:
            for svc, _ in self.index.by_endpoint_ip.get(local, []):
                name = f"{svc.name}.{svc.namespace}.svc.{zone}"
                if svc.headless:
                    out += [(f"{a.hostname}.{name}", str(a.ip)) for a in svc.addrs]
                else:
                    out += [(name, str(ip)) for ip in svc.cluster_ips]
        if not out:
            out = [(f"ns.dns.{zone}", str(ip)) for ip in self.local_ips]
        return out

    # -- Reverse --------------------------------------------------------------------------
    def reverse(self, address: IPv4Address | IPv6Address) -> list[Entry]:
        zone = self.primary_zone
        svc = self.index.by_cluster_ip.get(address)
        if svc is not None:
            return [Entry(f"{svc.name}.{svc.namespace}.svc.{zone}", self.ttl)]
        return [Entry(f"{addr.hostname}.{s.name}.{s.namespace}.svc.{zone}", self.ttl)
                for s, addr in self.index.by_endpoint_ip.get(address, [])]
