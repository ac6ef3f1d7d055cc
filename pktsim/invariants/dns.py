"""The DNS invariant: every answer on the wire agrees with the cluster model.
"""

from __future__ import annotations

import struct
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address
from socket import inet_ntoa

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype

from pktsim.api import Result
from pktsim.invariants.paths import UDP, _frames, _inner_ip, _pids
from pktsim.invariants.services import _from_stream, _ports_of
from pktsim.model.cluster import ClusterModel
from pktsim.model.services import ServiceInfo
from pktsim.sinks.trace import CapturedFrame

# -- DNS ------------------------------------------------------------------------------------

@dataclass(slots=True)
class _Expect:
    addresses: set[str] | None  # the A records the name must have (None: not checked)
    cname: str | None = None  # the CNAME target it must have (ExternalName)


def _dns_model(model: ClusterModel) -> tuple[dict[str, _Expect], str]:
    """name (lower case, absolute) -> what its A query must answer, from the model alone."""
    domain = model.config.cluster_domain.rstrip(".").lower()
    out: dict[str, _Expect] = {}
    for svc in model.services.values():
        spec = svc.service
        name = f"{spec.name}.{spec.namespace}.svc.{domain}.".lower()
        if spec.type == "ExternalName":
            target = spec.external_name.rstrip(".").lower() + "."
            try:
                IPv4Address(spec.external_name)
            except ValueError:
                out[name] = _Expect(None, target)
            continue
        addrs = _service_addresses(model, svc)
        if svc.cluster_ip is not None:
            out[name] = _Expect({str(svc.cluster_ip)})
        elif addrs and svc.headless:  # an IPv6-only Service has no A record to check
            out[name] = _Expect({ip for ip, _ in addrs})
        for ip, hostname in addrs:  # every ready endpoint has a name of its own
            label = (hostname or ip.replace(".", "-")).lower()
            key = f"{label}.{name}"
            known = out.get(key)
            if known is not None and known.addresses is not None:
                known.addresses.add(ip)
            else:
                out[key] = _Expect({ip})
    for upstream_name, upstream_ip in model.config.upstream.items():
        out[upstream_name.rstrip(".").lower() + "."] = _Expect({str(upstream_ip)})
    return out, domain


def _service_addresses(model: ClusterModel, svc: ServiceInfo) -> list[tuple[str, str]]:
    """(IP, hostname) of the ready endpoints CoreDNS knows for the Service."""
    spec = svc.service
    publish = spec.publish_not_ready_addresses and not _from_stream(model, svc)
    seen: dict[str, str] = {}
    for port in svc.ports:
        for ep in port.endpoints:
            if ep.ready or publish:
                seen.setdefault(str(ep.ip), ep.hostname)
    if not svc.ports and spec.selector and not _from_stream(model, svc):
        for info in model.pods.values():
            pod = info.pod
            if pod.namespace == spec.namespace and (pod.ready or publish) and all(
                    pod.labels.get(k) == v for k, v in spec.selector.items()):
                host = pod.hostname if pod.subdomain == spec.name else ""
                seen.setdefault(str(info.ip), host)
    return sorted(seen.items())


def _dns_messages(result: Result) -> Iterator[tuple[CapturedFrame, bytes]]:
    """Every DNS response on the wire (UDP, and TCP reassembled per capture point)."""
    streams: dict[tuple[str, str, str, int, str, int], bytes] = {}
    for f in _frames(result):
        ip = _inner_ip(f)
        if ip is None:
            continue
        ports = _ports_of(ip)
        if ports is None or ports[0] != 53:
            continue
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack_from("!H", ip, 2)[0]
        if ip[9] == UDP:
            yield f, ip[ihl + 8:total]
            continue
        offset = ihl + (ip[ihl + 12] >> 4) * 4
        payload = ip[offset:total]
        if not payload:
            continue
        key = (f.iface.if_name, f.direction.name, inet_ntoa(ip[12:16]), ports[0],
               inet_ntoa(ip[16:20]), ports[1])
        buf = streams.get(key, b"") + payload
        while len(buf) >= 2 and len(buf) >= 2 + int.from_bytes(buf[:2], "big"):
            size = int.from_bytes(buf[:2], "big")
            yield f, buf[2:2 + size]
            buf = buf[2 + size:]
        streams[key] = buf


def dns_answers_match_model(result: Result) -> None:
    """Every DNS response agrees with the cluster model: the A records of a Service's name
    are its ClusterIP (headless: its ready endpoints' addresses), of an endpoint's name its
    address, of an upstream name the address ``Cluster.spec.upstream`` gives; an
    ExternalName answers its CNAME; and NXDOMAIN comes only for names that do not exist."""
    expect, _domain = _dns_model(result.topology.model)
    pids = _pids(result)
    done: set[tuple[int | None, bytes]] = set()
    for f, wire in _dns_messages(result):
        pid = pids.get(f.number)
        if (pid, wire) in done:
            continue  # the same answer on a later hop
        done.add((pid, wire))
        try:
            msg = dns.message.from_wire(wire, ignore_trailing=True)
        except dns.exception.DNSException:
            continue  # malformed on the wire is checksums' and the parsers' business
        if not msg.flags & dns.flags.QR or not msg.question:
            continue
        where = f"frame #{f.number} ({f.iface.if_name}, {f.direction.name.lower()})"
        _check_answer(msg, expect, f"{where}: packet {pid}: DNS response {msg.id}")


def _check_answer(msg: dns.message.Message, expect: dict[str, _Expect], where: str) -> None:
    question = msg.question[0]
    qname = question.name.to_text().lower()
    rcode = msg.rcode()
    known = expect.get(qname)
    if rcode == dns.rcode.NXDOMAIN:
        assert known is None, (
            f"{where} says NXDOMAIN for {qname}, which exists in the model"
            + (f" ({', '.join(sorted(known.addresses))})" if known.addresses else ""))
        return
    if rcode != dns.rcode.NOERROR or msg.flags & dns.flags.TC:
        return
    owners: dict[str, set[str]] = defaultdict(set)
    cnames: dict[str, str] = {}
    for rrset in msg.answer:
        owner = rrset.name.to_text().lower()
        if rrset.rdtype == dns.rdatatype.A:
            owners[owner] |= {item.address for item in rrset}
        elif rrset.rdtype == dns.rdatatype.CNAME:
            cnames[owner] = rrset[0].target.to_text().lower()
    for owner, target in cnames.items():
        want = expect.get(owner)
        if want is not None and want.cname is not None:
            assert target == want.cname, (
                f"{where} answers {owner} CNAME {target}, but the model's ExternalName is "
                f"{want.cname}")
    for owner, got in owners.items():
        want = expect.get(owner)
        if want is None or want.addresses is None:
            continue
        assert got == want.addresses, (
            f"{where} answers {owner} A {', '.join(sorted(got))}, but the model says "
            f"{', '.join(sorted(want.addresses))}")
    if question.rdtype == dns.rdatatype.A and known is not None and known.addresses and \
            not cnames.get(qname):
        assert owners.get(qname), (f"{where} answers {qname} A with no address, but the "
                                   f"model has {', '.join(sorted(known.addresses))}")

