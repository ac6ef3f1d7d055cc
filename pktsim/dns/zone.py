"""CoreDNS's kubernetes plugin as kubeadm configures it: the answers for the cluster zone.

Theory of operation
-------------------
kubeadm's Corefile (kubernetes ``cmd/kubeadm/app/phases/addons/dns/manifests.go``) serves
``kubernetes cluster.local in-addr.arpa ip6.arpa { pods insecure; fallthrough in-addr.arpa
ip6.arpa; ttl 30 }`` followed by ``forward``, ``cache`` and ``loadbalance``.
``ClusterZone.answer`` is the plugin's ``ServeDNS`` (coredns ``plugin/kubernetes/handler.go``)
with the record builders of ``plugin/backend_lookup.go``:

* the query's zone is the longest of the three that contains the name; a name in none of
  them returns ``None``: CoreDNS hands it to ``forward`` (the caller sends it upstream);
* A/AAAA: one RR per address, duplicates dropped; an ExternalName gives its CNAME and, when
  the target is inside the zone, the target's records (only if it has some); a target
  outside the zone is looked up upstream by CoreDNS -- here the answer stops at the CNAME and
  ``external_target``/``complete_chase`` let the caller do that lookup (handler_test "CNAME
  External");
* SRV: priority 0, weight ``floor(100/N)`` (at least 1) where N counts every entry behind the
  name, one SRV per (target, port), the target's A/AAAA as glue in Additional; an endpoint
  without ports (sentinel -1) counts in N but gets no SRV (``backend_lookup.go`` ``SRV``);
* PTR: the ClusterIP's service, else every service with that address as ready endpoint;
* TXT: ``dns-version`` only; SOA/NS only at the zone apex; every other type does a "fake A
  lookup" to tell NODATA from NXDOMAIN;
* a name error in ``in-addr.arpa``/``ip6.arpa`` falls through (``None``: forwarded); in the
  cluster zone it is NXDOMAIN; an empty answer is NODATA; both carry the SOA
  ``<zone> min(ttl,300) IN SOA ns.dns.<zone> hostmaster.<zone> <serial> 7200 1800 86400 ttl``
  in Authority (``BackendError``/``SOA``).  CoreDNS's serial is the time the informers last
  saw a change; pktsim uses the scenario start time in Unix seconds (2026-01-01T00:00:00Z is
  1767225600): every object exists from the start and nothing changes during a run;
* responses copy id, opcode, RD, CD and the question; AA=1; **RA=0**: CoreDNS stopped
  setting RA in authoritative plugins in 1.3 (coredns/coredns#2408), hence dig's "recursion
  requested but not available" and log lines ``NXDOMAIN qr,aa,rd`` (coredns#3835);
* owner names echo the query exactly (``state.QName()``); NOERROR answers are shuffled by
  ``loadbalance`` from a seeded ``random.Random``.

Use ``pktsim.dns.wire.encode`` for the bytes on the wire (EDNS echo, 512-byte truncation).
"""

from __future__ import annotations

import functools
import math
import random
import re
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import TYPE_CHECKING

from pktsim.dns.backend import Entry, KubeBackend, NameErr
from pktsim.dns.records import ZoneIndex
from pktsim.dns.wire import flatten, load_balance, reply_to, rr
from pktsim.model.cluster import ClusterModel

if TYPE_CHECKING:  # the modules; at run time each loads on first use
    import dns.flags
    import dns.message
    import dns.name
    import dns.rcode
    import dns.rdatatype
    import dns.rrset
else:
    from pktsim.dns.dnspython import dns

REVERSE_ZONES = ("in-addr.arpa.", "ip6.arpa.")
_PLAIN_LABEL = re.compile(r"[A-Za-z0-9_-]+")
MAX_CNAME_CHAIN = 7  # backend_lookup.go: "if len(previousRecords) > 7"

if TYPE_CHECKING:
    Records = list[dns.rrset.RRset]


def _fqdn(host: str) -> str:
    return host if host.endswith(".") else host + "."


def _zone_text(domain: str) -> str:
    """``dns.name.from_text(domain).to_text()`` without dnspython for the names the loader
    accepts (letters, digits, '-' and '_': nothing to escape); others take dnspython's."""
    body = domain[:-1] if domain.endswith(".") else domain
    if 0 < len(body) <= 253 and all(0 < len(label) <= 63 and _PLAIN_LABEL.fullmatch(label)
                    for label in body.split(".")):
        return body + "."
    return dns.name.from_text(domain).to_text()


def reverse_address(name: str) -> IPv4Address | IPv6Address | None:
    """``dnsutil.ExtractAddressFromReverse``: ``d.c.b.a.in-addr.arpa.`` or the 32 nibbles of
    an ``ip6.arpa.`` name, reversed; ``None`` for anything else."""
    if name.endswith(".in-addr.arpa."):
        labels = name[: -len(".in-addr.arpa.")].split(".")
        try:
            address = ip_address(".".join(reversed(labels)))
        except ValueError:
            return None
        return address if isinstance(address, IPv4Address) else None
    if name.endswith(".ip6.arpa."):
        nibbles = name[: -len(".ip6.arpa.")].split(".")
        if len(nibbles) != 32 or any(len(n) != 1 or n not in "0123456789abcdef"
                                     for n in nibbles):
            return None
        return IPv6Address(bytes.fromhex("".join(reversed(nibbles))))
    return None


class _Query:
    """One question, with the pieces every builder needs (CoreDNS's ``request.Request``)."""

    def __init__(self, qname: dns.name.Name, qtype: str, zone: dns.name.Name) -> None:
        self.qname = qname
        self.qtype = qtype
        self.name = qname.to_text().lower()  # state.Name()
        split = len(qname.labels) - len(zone.labels)
        self.zone = dns.name.Name(qname.labels[split:]).to_text()  # the query's spelling
        self.base = [label.decode("latin-1").lower() for label in qname.labels[:split]]
        self.reverse = self.zone.lower() in REVERSE_ZONES

    def derive(self, name: str, qtype: str) -> _Query:
        """``state.NewWithQuestion(name, qtype)`` inside the same zone."""
        return _Query(dns.name.from_text(name), qtype, dns.name.from_text(self.zone))


class ClusterZone:
    def __init__(self, model: ClusterModel, *, ttl: int = 30, pods_mode: str = "insecure",
                 rng: random.Random | None = None, serial: int | None = None,
                 local_ips: tuple[IPv4Address | IPv6Address, ...] | None = None) -> None:
        cfg = model.config
        self.ttl = ttl
        self.cluster_domain = cfg.cluster_domain
        self.serial = (cfg.start_time_ns // 10**9) & 0xFFFFFFFF if serial is None else serial
        self.rng = rng if rng is not None else model.streams.stream("dns/loadbalance")
        index = ZoneIndex.from_model(model)
        if local_ips is None:  # any CoreDNS pod behind kube-dns: NS answers name the Service
            dns_svc = index.services.get(("kube-system", "kube-dns"))
            local_ips = (dns_svc.addrs[0].ip,) if dns_svc and dns_svc.addrs else ()
        self.backend = KubeBackend(index, ttl=ttl, pods_mode=pods_mode,
                                   primary_zone=_zone_text(cfg.cluster_domain),
                                   local_ips=local_ips)

    # the zones as dnspython names, made by the first query: a cluster that is built and
    # never sends one (``pktsim check``) does not import dnspython (pktsim.dns.dnspython)
    @functools.cached_property
    def domain(self) -> dns.name.Name:
        return dns.name.from_text(self.cluster_domain)

    @functools.cached_property
    def zones(self) -> list[dns.name.Name]:
        return [self.domain, *(dns.name.from_text(z) for z in REVERSE_ZONES)]

    # -- entry point ----------------------------------------------------------------------
    def answer(self, query: dns.message.Message, *,
               shuffle: bool = True) -> dns.message.Message | None:
        """The response for a name in the plugin's zones; None: forward it upstream.

        ``shuffle=False`` leaves the ``loadbalance`` step to the caller (``CoreDns`` does it
        once, after the ``cache`` plugin).
        """
        if not query.question:
            return None
        question = query.question[0]
        zone = self.zone_of(question.name)
        if zone is None:
            return None
        q = _Query(question.name, dns.rdatatype.to_text(question.rdtype), zone)
        try:
            records, extra = self._dispatch(q)
        except NameErr:
            if q.reverse:  # fallthrough in-addr.arpa ip6.arpa
                return None
            return self._negative(query, q, dns.rcode.NXDOMAIN)
        if not records:
            return self._negative(query, q, dns.rcode.NOERROR)
        response = reply_to(query, aa=True)
        response.answer, response.additional = records, extra
        if shuffle:
            load_balance(response, self.rng)
        return response

    def zone_of(self, name: dns.name.Name) -> dns.name.Name | None:
        """``plugin.Zones.Matches``: the longest zone of the plugin that holds ``name``."""
        matches = [z for z in self.zones if name.is_subdomain(z)]
        return max(matches, key=lambda z: len(z.labels)) if matches else None

    def soa(self, zone: str) -> dns.rrset.RRset:
        """``plugin.SOA``: the zone's SOA as negative answers carry it."""
        return rr(zone, min(self.ttl, 300), "SOA", f"ns.dns.{zone} hostmaster.{zone} "
                  f"{self.serial} 7200 1800 86400 {self.ttl}")

    def _negative(self, query: dns.message.Message, q: _Query,
                  rcode: dns.rcode.Rcode) -> dns.message.Message:
        response = reply_to(query, rcode=rcode, aa=True)
        response.authority = [self.soa(q.zone)]
        return response

    def _dispatch(self, q: _Query) -> tuple[Records, Records]:
        kind = q.qtype
        if kind in ("A", "AAAA"):
            return self._address(q, []), []
        if kind == "SRV":
            return self._srv(q)
        if kind == "TXT":
            return self._txt(q), []
        if kind == "CNAME":
            return self._cname(q), []
        if kind == "PTR":
            return self._ptr(q), []
        if kind == "MX":  # no entry is ever a mail server: NODATA or NXDOMAIN
            self._services(q)
            return [], []
        if kind == "SOA" and q.name == q.zone.lower():
            return [self.soa(q.zone)], []
        if kind == "NS" and q.name == q.zone.lower():
            return self._ns(q)
        self._address(q.derive(q.qname.to_text(), "A"), [])  # the "fake A lookup"
        return [], []

    def _services(self, q: _Query) -> list[Entry]:
        return self.backend.services(q.base, q.qtype, q.zone, q.reverse, q.qname.to_text())

    # -- builders (plugin/backend_lookup.go) ----------------------------------------------
    def _address(self, q: _Query, previous: Records) -> Records:
        """``plugin.A``/``plugin.AAAA`` (with ``checkForApex``: no apex.dns entries here)."""
        records: Records = []
        seen: set[str] = set()
        for entry in self._services(q):
            kind = entry.host_type
            if kind == "CNAME":
                records += self._cname_step(q, entry, previous)
            elif kind == q.qtype and entry.host not in seen:
                seen.add(entry.host)
                records.append(rr(q.qname, entry.ttl, kind, entry.host))
        return records

    def _cname_step(self, q: _Query, entry: Entry, previous: Records) -> Records:
        target = _fqdn(entry.host)
        if target.lower() == q.name or len(previous) > MAX_CNAME_CHAIN:
            return []
        cname = rr(q.qname, entry.ttl, "CNAME", target)
        if any(p.name == cname.name and p[0] == cname[0] for p in previous):
            return []
        if not dns.name.from_text(target).is_subdomain(dns.name.from_text(q.zone)):
            return [cname]  # looked up upstream by the caller: see complete_chase()
        try:
            following = self._address(q.derive(target, q.qtype), [*previous, cname])
        except NameErr:
            return []
        return [cname, *following] if following else []

    def _srv(self, q: _Query) -> tuple[Records, Records]:
        entries = self._services(q)
        total = 100 * len(entries)  # every entry weighs 100 at priority 0
        records: Records = []
        extra: Records = []
        seen_srv: set[tuple[str, int]] = set()
        seen_addr: set[tuple[str, str]] = set()
        for entry in entries:
            if entry.port == -1:
                continue
            weight = max(1, math.floor(100.0 / float(total) * 100))
            target = _fqdn(entry.domain)
            if (target.lower(), entry.port) not in seen_srv:
                seen_srv.add((target.lower(), entry.port))
                records.append(rr(q.qname, entry.ttl, "SRV",
                                  f"0 {weight} {entry.port} {target}"))
            if (target.lower(), entry.host) not in seen_addr:
                seen_addr.add((target.lower(), entry.host))
                extra.append(rr(target, entry.ttl, entry.host_type, entry.host))
        return records, extra

    def _txt(self, q: _Query) -> Records:
        return [rr(q.qname, e.ttl, "TXT", f'"{e.text}"') for e in self._services(q) if e.text]

    def _cname(self, q: _Query) -> Records:
        entries = self._services(q)
        if entries and entries[0].host_type == "CNAME":
            return [rr(q.qname, entries[0].ttl, "CNAME", _fqdn(entries[0].host))]
        return []

    def _ptr(self, q: _Query) -> Records:
        """``plugin.PTR`` over ``Kubernetes.Reverse``."""
        address = reverse_address(q.name)
        if address is None:
            if q.name.endswith(".ip6.arpa."):
                raise NameErr("not an IPv6 address")
            self.backend.records(q.base, q.zone, q.reverse)
            return []
        entries = self.backend.reverse(address)
        if not entries:
            raise NameErr("no service for this address")
        hosts = list(dict.fromkeys(e.host for e in entries))
        return [rr(q.qname, self.ttl, "PTR", _fqdn(host)) for host in hosts]

    def _ns(self, q: _Query) -> tuple[Records, Records]:
        records: Records = []
        extra: Records = []
        seen: set[str] = set()
        for entry in self._services(q):
            target = _fqdn(entry.domain)
            extra.append(rr(target, entry.ttl, entry.host_type, entry.host))
            if target.lower() not in seen:
                seen.add(target.lower())
                records.append(rr(q.qname, entry.ttl, "NS", target))
        return records, extra

    # -- the upstream part of an ExternalName answer --------------------------------------
    def external_target(self, response: dns.message.Message) -> dns.name.Name | None:
        """The CNAME target CoreDNS would look up upstream, if ``response`` stops at one."""
        if not response.question or response.rcode() != dns.rcode.NOERROR or \
                not response.answer:
            return None
        last = response.answer[-1]
        if response.question[0].rdtype not in (dns.rdatatype.A, dns.rdatatype.AAAA) or \
                last.rdtype != dns.rdatatype.CNAME:
            return None
        target: dns.name.Name = last[0].target
        return None if any(target.is_subdomain(z) for z in self.zones) else target

    def complete_chase(self, response: dns.message.Message,
                       upstream: dns.message.Message | None, *,
                       shuffle: bool = True) -> dns.message.Message:
        """Append the upstream answer to the CNAME(s), as ``plugin.A`` does after ``Lookup``.

        ``upstream`` None means the lookup failed: CoreDNS then drops the CNAME and the
        answer is NODATA.  A truncated upstream answer truncates this one.
        """
        out = reply_to(response, aa=True)
        out.flags = response.flags
        out.set_rcode(response.rcode())
        if upstream is None:
            question = response.question[0]
            zone = self.zone_of(question.name)
            assert zone is not None
            q = _Query(question.name, dns.rdatatype.to_text(question.rdtype), zone)
            out.authority = [self.soa(q.zone)]
            return out
        out.answer = [*response.answer, *flatten(upstream.answer)]
        out.additional = list(response.additional)
        if upstream.flags & dns.flags.TC:
            out.flags |= dns.flags.TC
        if shuffle:
            load_balance(out, self.rng)
        return out
