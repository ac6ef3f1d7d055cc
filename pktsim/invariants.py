"""Network invariants to check on any run: plain functions that raise a readable
``AssertionError`` naming the packet and the hop where the property broke.

    result = cluster.run()
    invariants.check_all(result)            # or each one on its own

Packets are followed by the id pktsim gives every packet (it survives forwarding, NAT and
encapsulation); hops are the frames of ``capture.pcapng``, named by frame number and
interface, so a failure can be looked up in Wireshark.

=================================  ============================================================
``flows_delivered``                every flow got its answers (absent policy)
``ttl_decreases_per_routed_hop``   TTL never rises, and falls by one per routed hop
``delivered_once``                 no packet reaches a socket twice
``pod_to_pod_not_natted``          pod-to-pod packets keep both addresses on every hop
``no_reflection_without_hairpin``  a bridge never sends a frame back out of its ingress port
``checksums_valid``                every IPv4/ICMP/TCP/UDP checksum verifies
``service_replies_from_vip``       a Service client only hears back from the VIP:port it asked
``connections_keep_their_backend`` every packet after a connection's first goes to the same
                                   backend
``backends_are_ready_endpoints``   kube-proxy DNATs new connections only to ready endpoints
``dns_answers_match_model``        A answers and NXDOMAINs agree with the cluster model
=================================  ============================================================

``check_all`` runs every one but ``flows_delivered`` when ``delivered=False`` (for flows that
may legitimately fail).
"""

from __future__ import annotations

import struct
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype

from pktsim.api import Result
from pktsim.model.cluster import ClusterModel
from pktsim.model.services import ServiceInfo
from pktsim.sinks.trace import CapturedFrame
from pktsim.wire.checksum import checksum, l4_checksum

__all__ = [
    "Hop",
    "backends_are_ready_endpoints",
    "check_all",
    "checksums_valid",
    "connections_keep_their_backend",
    "delivered_once",
    "dns_answers_match_model",
    "flows_delivered",
    "hops",
    "no_reflection_without_hairpin",
    "pod_to_pod_not_natted",
    "service_replies_from_vip",
    "ttl_decreases_per_routed_hop",
]

TCP, UDP, ICMP = 6, 17, 1
_PROTO = {"TCP": TCP, "UDP": UDP}
_NAMES = {TCP: "tcp", UDP: "udp", ICMP: "icmp"}
UDP_TIMEOUT_NS = 30 * 10**9  # nf_conntrack_udp_timeout: a gap this long may start afresh


@dataclass(frozen=True, slots=True)
class Hop:
    """An IPv4 packet as one capture point saw it (the innermost header for tunnels)."""

    number: int
    if_name: str
    direction: str
    pid: int
    src: str
    dst: str
    ttl: int
    proto: int = 0
    sport: int = 0
    dport: int = 0
    flags: int = 0  # TCP flags
    t_ns: int = 0

    def where(self) -> str:
        return f"frame #{self.number} ({self.if_name}, {self.direction.lower()})"

    def text(self) -> str:
        if self.proto in (TCP, UDP):
            return f"{_NAMES[self.proto]} {self.src}:{self.sport} -> {self.dst}:{self.dport}"
        return f"{_NAMES.get(self.proto, f'proto {self.proto}')} {self.src} -> {self.dst}"


def _frames(result: Result) -> list[CapturedFrame]:
    if result.memory is None:
        raise ValueError("invariants need a run kept in memory: cluster.run() or run(keep=True)")
    return result.memory.frames


def _pids(result: Result) -> dict[int, int]:
    """frame number -> packet id, from the trace."""
    return {e.frame: e.packet for e in result.events if e.frame is not None
            and e.packet is not None}


def _outer_ip(f: CapturedFrame) -> bytes:
    if f.iface.linktype == 101:
        return f.data
    if len(f.data) >= 34 and f.data[12:14] == b"\x08\x00":
        return f.data[14:]
    return b""


def _inner_ip(f: CapturedFrame) -> bytes | None:
    data = _outer_ip(f)
    while len(data) >= 20 and data[0] >> 4 == 4:
        ihl = (data[0] & 0x0F) * 4
        if data[9] == 4:
            data = data[ihl:]
        elif data[9] == 17 and len(data) >= ihl + 8 + 8 + 34 and \
                struct.unpack_from("!H", data, ihl + 2)[0] == 8472:
            data = data[ihl + 16 + 14:]
        else:
            return data
    return None


def _hop(f: CapturedFrame, pid: int, ip: bytes) -> Hop:
    ihl = (ip[0] & 0x0F) * 4
    proto, sport, dport, flags = ip[9], 0, 0, 0
    if proto in (TCP, UDP) and len(ip) >= ihl + 4:
        sport, dport = struct.unpack_from("!HH", ip, ihl)
        if proto == TCP and len(ip) >= ihl + 14:
            flags = ip[ihl + 13]
    return Hop(f.number, f.iface.if_name, f.direction.name, pid,
               str(IPv4Address(ip[12:16])), str(IPv4Address(ip[16:20])), ip[8], proto, sport,
               dport, flags, f.t_abs_ns)


def hops(result: Result) -> Iterator[Hop]:
    """Every captured IPv4 packet with its packet id, in capture order."""
    pids = _pids(result)
    for f in _frames(result):
        ip = _inner_ip(f)
        pid = pids.get(f.number)
        if ip is None or pid is None:
            continue
        yield _hop(f, pid, ip)


def _by_packet(result: Result) -> dict[int, list[Hop]]:
    out: dict[int, list[Hop]] = defaultdict(list)
    for hop in hops(result):
        out[hop.pid].append(hop)
    return out


# -- delivery, TTL, NAT between pods, reflection, checksums ---------------------------------

def flows_delivered(result: Result) -> None:
    """Every flow got its answers (absent policy, every pod reaches every pod)."""
    bad = [f.line() for f in result.flows if f.status != "ok"]
    assert not bad, "flows not delivered:\n  " + "\n  ".join(bad)


def ttl_decreases_per_routed_hop(result: Result) -> None:
    """TTL never rises along a packet's path, and between any two captures of a packet it
    falls by exactly the number of times the packet was routed in between.

    The path is what the IP hosts on it sent and accepted: captures on bridge ports, and
    flooded copies a host refused (``not addressed to this host``), are off it -- a flood
    reaches hosts in any order, at any TTL."""
    topo = result.topology
    l2_ports = {f"{b.host}:{p}" for b in topo.bridges.values() for p in b.hairpin}
    by_frame = {f.number: f for f in _frames(result)}
    events = result.events
    routed: dict[int, int] = defaultdict(int)
    first: dict[int, tuple[Hop, int]] = {}
    last: dict[int, Hop] = {}
    for i, e in enumerate(events):
        if e.packet is None:
            continue
        pid = e.packet
        if e.event == "route":
            routed[pid] += 1
            continue
        f = by_frame.get(e.frame) if e.frame is not None else None
        if f is None or f.iface.if_name in l2_ports or (e.event == "rx"
                                                        and _refused(events, i)):
            continue
        ip = _inner_ip(f)
        if ip is None:
            continue
        hop = _hop(f, pid, ip)
        before = last.get(pid)
        if before is not None:
            assert hop.ttl <= before.ttl, (
                f"packet {pid} ({before.text()}): TTL rose from {before.ttl} to {hop.ttl} "
                f"between {before.where()} and {hop.where()}")
        last[pid] = hop
        start, routes_then = first.setdefault(pid, (hop, routed[pid]))
        fell, times = start.ttl - hop.ttl, routed[pid] - routes_then
        assert fell == times, (
            f"packet {pid} ({start.text()}): TTL fell by {fell} from {start.where()} to "
            f"{hop.where()} but it was routed {times} times")


def _refused(events: list[Any], i: int) -> bool:
    """Did the host that captured ``events[i]`` (an rx) drop it as not addressed to it?"""
    e = events[i]
    for after in events[i + 1:i + 4]:
        if after.packet == e.packet and after.host == e.host and after.event == "drop":
            return bool(after.detail.get("reason") == "NOT_FOR_US")
    return False


def delivered_once(result: Result) -> None:
    """No packet is delivered to a socket twice.

    A tunnel endpoint taking the packet to decapsulate it (``UDP 8472: VXLAN socket``,
    ``IP-in-IP to tunl0``: a ``deliver`` followed by a ``decap``) is a hand-off, not a
    delivery."""
    pending: dict[int, str] = {}  # pid -> host of a deliver that may turn out a hand-off
    seen: dict[tuple[int, str], str] = {}

    def settle(pid: int) -> None:
        host = pending.pop(pid, None)
        if host is None:
            return
        key = (pid, host)
        assert key not in seen, (f"packet {pid} delivered twice at {host} ({seen[key]}, "
                                 f"then {summaries[pid]})")
        seen[key] = summaries[pid]

    summaries: dict[int, str] = {}
    for e in result.events:
        pid = e.packet
        if pid is None:
            continue
        if e.event == "decap" and pid in pending:
            del pending[pid]
            continue
        if e.event == "deliver":
            settle(pid)
            pending[pid], summaries[pid] = e.host, e.summary
        elif pid in pending and e.event not in ("conntrack", "nat", "netfilter"):
            settle(pid)
    for pid in list(pending):
        settle(pid)


def pod_to_pod_not_natted(result: Result) -> None:
    """A packet from a pod IP to a pod IP keeps both addresses on every hop (no NAT), unless
    it is the reply of a connection made to a Service, which conntrack un-NATs."""
    pod_ips = {str(p.ip) for p in result.topology.model.pods.values()
               if not p.pod.host_network}
    # replies of a connection made to a Service are un-NATed by conntrack, by design
    replies = {e.packet for e in result.events if e.event == "nat"
               and e.summary.startswith("conntrack un-")}
    for pid, path in _by_packet(result).items():
        first = path[0]
        if first.src in pod_ips and first.dst in pod_ips and pid not in replies:
            for hop in path[1:]:
                assert (hop.src, hop.dst) == (first.src, first.dst), (
                    f"packet {pid}: pod-to-pod {first.src} -> {first.dst} became "
                    f"{hop.src} -> {hop.dst} at {hop.where()}")


def no_reflection_without_hairpin(result: Result) -> None:
    """A bridge never sends a frame back out of the port it came in on, unless hairpin."""
    topo = result.topology
    ports = {f"{b.host}:{p}": hairpin for b in topo.bridges.values()
             for p, hairpin in b.hairpin.items()}
    pids = _pids(result)
    came_in: dict[tuple[int, bytes], str] = {}
    for f in _frames(result):
        name = f.iface.if_name
        if name not in ports:
            continue
        key = (pids.get(f.number, -1), f.data)
        if f.direction.name == "INBOUND":
            came_in[key] = name
        elif came_in.get(key) == name:
            assert ports[name], (f"frame #{f.number}: the bridge sent packet {key[0]} back "
                                 f"out of {name}, its ingress port, with hairpin off")


def checksums_valid(result: Result) -> None:
    """Every captured IPv4 header, and every TCP, UDP and ICMP checksum, verifies."""
    for f in _frames(result):
        _check_ip(f, _outer_ip(f))


def _check_ip(f: CapturedFrame, ip: bytes) -> None:
    if len(ip) < 20:
        return
    ihl = (ip[0] & 0x0F) * 4
    where = f"frame #{f.number} ({f.iface.if_name})"
    assert checksum(ip[:ihl]) == 0, f"{where}: bad IPv4 header checksum"
    total = struct.unpack_from("!H", ip, 2)[0]
    body, proto = ip[ihl:total], ip[9]
    if proto in (6, 17) and len(body) >= 8:
        if proto == 17 and body[6:8] == b"\x00\x00":
            return
        assert l4_checksum(ip[12:16], ip[16:20], proto, body) == 0, \
            f"{where}: bad {'TCP' if proto == 6 else 'UDP'} checksum"
        if proto == 17 and len(body) > 16 + 14 and struct.unpack_from("!H", body, 2)[0] == 8472:
            inner = body[16:]
            if inner[12:14] == b"\x08\x00":
                _check_ip(f, inner[14:])
    elif proto == 1:
        assert checksum(body) == 0, f"{where}: bad ICMP checksum"
    elif proto == 4:
        _check_ip(f, body)


# -- Services -------------------------------------------------------------------------------

Frontend = tuple[str, int, int]  # (address, port, IP protocol)


def frontends(model: ClusterModel) -> dict[Frontend, tuple[ServiceInfo, int]]:
    """Every address:port kube-proxy answers for a Service port: ClusterIP, external IPs,
    the LoadBalancer IP, and the NodePort on every node -> (service, index of the port)."""
    out: dict[Frontend, tuple[ServiceInfo, int]] = {}
    nodes = [str(n.ip) for n in model.nodes.values()]
    for svc in model.services.values():
        if svc.cluster_ip is None:  # headless and ExternalName: kube-proxy skips them
            continue
        for index, port in enumerate(svc.ports):
            proto = _PROTO.get(port.protocol)
            if proto is None:
                continue
            number = port.spec.port
            addrs = [str(svc.cluster_ip), *(str(a) for a in svc.service.external_ips)]
            if svc.load_balancer_ip is not None:
                addrs.append(str(svc.load_balancer_ip))
            for addr in addrs:
                out[(addr, number, proto)] = (svc, index)
            if port.node_port is not None and svc.service.type in ("NodePort", "LoadBalancer"):
                for node in nodes:
                    out[(node, port.node_port, proto)] = (svc, index)
    return out


def _client_ifaces(result: Result) -> set[str]:
    """The ``eth0`` of every pod with its own namespace, and of every external client."""
    topo = result.topology
    node_ns = {id(ns) for ns in topo.node_ns.values()}
    pods = {f"{key}:eth0" for key, ns in topo.pod_ns.items() if id(ns) not in node_ns}
    return pods | {f"{host}:eth0" for host in topo.clients}


def _ports_of(ip: bytes) -> tuple[int, int] | None:
    ihl = (ip[0] & 0x0F) * 4
    if ip[9] not in (TCP, UDP) or len(ip) < ihl + 4:
        return None
    sport, dport = struct.unpack_from("!HH", ip, ihl)
    return sport, dport


def _svc_name(front: dict[Frontend, tuple[ServiceInfo, int]], key: Frontend) -> str:
    svc, index = front[key]
    port = svc.ports[index]
    return f"Service {svc.key} port {port.name or port.spec.port}/{port.protocol}"


def service_replies_from_vip(result: Result) -> None:
    """For a connection a client (a pod or an external client) opened to a Service address
    (ClusterIP, NodePort, LoadBalancer or external IP), every packet that comes back to the
    client's ``eth0`` has the VIP:port it asked as its source, and every ICMP error about it
    quotes the VIP:port as the destination: the node un-DNATed it."""
    front = frontends(result.topology.model)
    clients = _client_ifaces(result)
    pids = _pids(result)
    opened: dict[tuple[str, str, int, int], tuple[str, int, int]] = {}  # -> (vip, port, frame)
    for f in _frames(result):
        if f.iface.if_name not in clients:
            continue
        ip = _outer_ip(f)
        if len(ip) < 20:
            continue
        src, dst, proto = str(IPv4Address(ip[12:16])), str(IPv4Address(ip[16:20])), ip[9]
        outbound = f.direction.name == "OUTBOUND"
        if proto == ICMP and not outbound:
            _check_icmp_error(f, ip, opened, front, pids)
            continue
        ports = _ports_of(ip)
        if ports is None:
            continue
        sport, dport = ports
        if outbound:
            key = (f.iface.if_name, src, sport, proto)
            if (dst, dport, proto) in front:
                opened[key] = (dst, dport, f.number)
            else:
                opened.pop(key, None)
            continue
        asked = opened.get((f.iface.if_name, dst, dport, proto))
        if asked is None or (src, sport) == asked[:2]:
            continue
        name = _svc_name(front, (asked[0], asked[1], proto))
        raise AssertionError(
            f"frame #{f.number} ({f.iface.if_name}, inbound): packet {pids.get(f.number)} "
            f"{_NAMES[proto]} {src}:{sport} -> {dst}:{dport} answers the connection the "
            f"client opened to {asked[0]}:{asked[1]} ({name}, frame #{asked[2]}), but comes "
            f"from {src}:{sport}, not {asked[0]}:{asked[1]}: the reply was not un-DNATed")


def _check_icmp_error(f: CapturedFrame, ip: bytes, opened: dict[tuple[str, str, int, int],
                      tuple[str, int, int]], front: dict[Frontend, tuple[ServiceInfo, int]],
                      pids: dict[int, int]) -> None:
    ihl = (ip[0] & 0x0F) * 4
    if len(ip) < ihl + 8 + 20 or ip[ihl] not in (3, 11, 12):
        return
    quoted = ip[ihl + 8:]
    qihl = (quoted[0] & 0x0F) * 4
    if len(quoted) < qihl + 4 or quoted[9] not in (TCP, UDP):
        return
    proto = quoted[9]
    qsrc, qdst = str(IPv4Address(quoted[12:16])), str(IPv4Address(quoted[16:20]))
    sport, dport = struct.unpack_from("!HH", quoted, qihl)
    asked = opened.get((f.iface.if_name, qsrc, sport, proto))
    if asked is None or (qdst, dport) == asked[:2]:
        return
    raise AssertionError(
        f"frame #{f.number} ({f.iface.if_name}, inbound): packet {pids.get(f.number)}, an ICMP "
        f"error about the client's connection to {asked[0]}:{asked[1]} "
        f"({_svc_name(front, (asked[0], asked[1], proto))}, frame #{asked[2]}), quotes "
        f"{qsrc}:{sport} -> {qdst}:{dport}: the quoted destination was not un-DNATed")


def connections_keep_their_backend(result: Result) -> None:
    """Every packet of a connection to a Service address goes to the backend its first
    packet went to: conntrack keeps the DNAT binding, no rule is walked again.

    A connection is followed from the client's side (pods and external clients; node-local
    clients are DNATed before any capture) by its 5-tuple.  A packet that made kube-proxy's
    rules choose a backend (a new conntrack entry) opens it afresh when it is a TCP SYN or
    comes after a 30 s silence (``nf_conntrack_udp_timeout``); one that races the first
    packet's entry (UDP insert clash, resolved as Linux >= 5.6 does) may go elsewhere, but
    what follows goes where the first went.  A packet's backend is its destination on the
    last hop it was captured at, once translated."""
    front = frontends(result.topology.model)
    clients = _client_ifaces(result)
    paths = _by_packet(result)
    walked = {e.packet for e in result.events if e.event == "nat"
              and e.summary.startswith("kube-proxy DNAT")}
    conns: dict[tuple[str, int, str, int, int], tuple[str, Hop, int, Hop]] = {}
    for pid in sorted(paths, key=lambda p: paths[p][0].number):
        path = paths[pid]
        first = path[0]
        if first.if_name not in clients or first.direction != "OUTBOUND" or \
                (first.dst, first.dport, first.proto) not in front:
            continue
        moved = [h for h in path if (h.dst, h.dport) != (first.dst, first.dport)]
        if not moved:
            continue  # never translated (dropped, rejected, or still on its way)
        backend = f"{moved[-1].dst}:{moved[-1].dport}"
        key = (first.src, first.sport, first.dst, first.dport, first.proto)
        known = conns.get(key)
        if pid in walked:
            if known is None or (first.proto == TCP and first.flags & 0x12 == 0x02) or \
                    first.t_ns - known[2] >= UDP_TIMEOUT_NS:
                conns[key] = (backend, first, first.t_ns, moved[0])
            continue
        if known is None:
            continue  # its connection began before anything was captured
        was, opener, _, where = known
        conns[key] = (was, opener, first.t_ns, where)
        assert backend == was, (
            f"packet {pid} ({first.text()}, {first.where()}) went to backend {backend} "
            f"({moved[0].where()}), but its connection's first packet {opener.pid} "
            f"({opener.where()}) went to {was} ({where.where()}) "
            f"[{_svc_name(front, (first.dst, first.dport, first.proto))}]")


def _from_stream(model: ClusterModel, svc: ServiceInfo) -> bool:
    """Are the Service's endpoints given by EndpointSlices of the scenario (taken as
    written), rather than derived from its selector?"""
    spec = svc.service
    return any(s.namespace == spec.namespace and s.service == spec.name
               for s in model.scenario.endpoint_slices)


def _ready_endpoints(model: ClusterModel, svc: ServiceInfo, index: int) -> set[str]:
    """kube-proxy's ready endpoints: with ``publishNotReadyAddresses`` the EndpointSlice
    controller calls every selected pod ready."""
    publish = svc.service.publish_not_ready_addresses and not _from_stream(model, svc)
    return {f"{ep.ip}:{ep.port}" for ep in svc.ports[index].endpoints if ep.ready or publish}


def backends_are_ready_endpoints(result: Result) -> None:
    """Every connection kube-proxy DNATs goes to a ready endpoint of the Service whose
    address it asked (or any endpoint, with ``publishNotReadyAddresses``): never to a
    deleted pod, a not-ready one, or another Service's."""
    model = result.topology.model
    front = frontends(model)
    seen_after: dict[int, int] = {}
    for e in reversed(result.events):  # the first capture after each event, per packet
        if e.packet is not None and e.frame is not None:
            seen_after[e.packet] = e.frame
        if e.event != "nat" or not e.summary.startswith("kube-proxy DNAT"):
            continue
        diff = e.detail.get("nat", {})
        old, new = str(diff.get("old", "")), str(diff.get("new", ""))
        host, _, port = old.rpartition(":")
        match = next((front[k] for k in ((host, int(port), p) for p in (TCP, UDP))
                      if port.isdigit() and k in front), None)
        where = f"{e.host}:{e.iface}"
        frame = seen_after.get(e.packet) if e.packet is not None else None
        seen = f", next captured as frame #{frame}" if frame is not None else ""
        assert match is not None, (
            f"packet {e.packet} ({e.flow}) at {where}{seen}: kube-proxy DNAT {old} -> {new}, "
            f"but {old} is no Service address in the model")
        svc, index = match
        ready = _ready_endpoints(model, svc, index)
        assert new in ready, (
            f"packet {e.packet} ({e.flow}) at {where}{seen}: kube-proxy DNAT {old} -> {new}, "
            f"but {new} is not a ready endpoint of Service {svc.key} "
            f"(ready: {', '.join(sorted(ready)) or 'none'})")


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
        elif addrs:
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
        key = (f.iface.if_name, f.direction.name, str(IPv4Address(ip[12:16])), ports[0],
               str(IPv4Address(ip[16:20])), ports[1])
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


def check_all(result: Result, *, delivered: bool = True) -> None:
    """Every invariant (``flows_delivered`` only when ``delivered``)."""
    checks = [ttl_decreases_per_routed_hop, delivered_once, pod_to_pod_not_natted,
              no_reflection_without_hairpin, checksums_valid, service_replies_from_vip,
              connections_keep_their_backend, backends_are_ready_endpoints,
              dns_answers_match_model]
    if delivered:
        checks.insert(0, flows_delivered)
    for check in checks:
        check(result)
