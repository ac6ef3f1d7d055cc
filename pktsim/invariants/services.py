"""Invariants about Services: replies come from the VIP, connections keep their backend,
new connections go to ready endpoints.
"""

from __future__ import annotations

import struct
from socket import inet_ntoa

from pktsim.api import Result
from pktsim.core.capture import LinkType
from pktsim.core.events import Event
from pktsim.invariants.paths import (
    _NAMES,
    _PROTO,
    ICMP,
    TCP,
    UDP,
    UDP_TIMEOUT_NS,
    Hop,
    _by_packet,
    _frames,
    _outer_ip,
    _pids,
    _trace,
)
from pktsim.model.cluster import ClusterModel
from pktsim.model.services import ServiceInfo
from pktsim.sinks.trace import CapturedFrame
from pktsim.wire.parse import inner_ipv4

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
        src, dst, proto = inet_ntoa(ip[12:16]), inet_ntoa(ip[16:20]), ip[9]
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
    qsrc, qdst = inet_ntoa(quoted[12:16]), inet_ntoa(quoted[16:20])
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
    walked = {e.packet for e in result.events if e.event is Event.NAT
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
    controller calls every selected pod ready; when none is ready, the serving terminating
    ones stand in (``CategorizeEndpoints``' fallback, ``pkg/proxy/topology.go``)."""
    publish = svc.service.publish_not_ready_addresses and not _from_stream(model, svc)
    eps = svc.ports[index].endpoints
    ready = {f"{ep.ip}:{ep.port}" for ep in eps if ep.ready or publish}
    return ready or {f"{ep.ip}:{ep.port}" for ep in eps if ep.serving and ep.terminating}


def _node_view(model: ClusterModel, node: str) -> dict[tuple[str, int, str], set[str]]:
    """The endpoints kube-proxy on ``node`` writes rules for, per (Service key, port,
    protocol): ``CategorizeEndpoints``' reachable ones, topology hints and traffic
    policies applied (``pktsim.kubeproxy.topology``) -- computed from the model, so a
    node loaded with another node's rules is caught."""
    from pktsim.kubeproxy.ports import service_ports
    from pktsim.kubeproxy.topology import categorize

    zone = model.nodes[node].zone
    out: dict[tuple[str, int, str], set[str]] = {}
    for sp in service_ports(model, node):
        key = (sp.name.partition(":")[0], sp.port, sp.protocol.upper())
        out.setdefault(key, set()).update(ep.addr for ep in categorize(sp, node, zone)[2])
    return out


def _protos_of(result: Result, number: int | None) -> list[int]:
    """The IP protocol of captured frame ``number`` (its innermost IPv4 header), or both
    TCP and UDP when the frame is not in memory."""
    f = _trace(result).frames.get(number) if number is not None else None
    ip = inner_ipv4(f.data, f.iface.linktype == LinkType.RAW) if f is not None else None
    return [ip[9]] if ip is not None and ip[9] in (TCP, UDP) else [TCP, UDP]


def _settled(result: Result) -> dict[str, int]:
    """On a run with ``spec.events``, per host: from when its rules are those of the model
    as the run ends (its last rule sync after the last change; never, when none came).
    The model is all this invariant knows, so it judges only what came after; what came
    before is ``new_connections_follow_the_last_sync``'s to judge."""
    changes = [e.t for e in result.events if e.event is Event.CHANGE]
    if not changes:
        return {}
    last = max(changes)
    hosts = {e.host for e in result.events if e.nat is not None}
    syncs: dict[str, int] = {}
    for e in result.events:
        if e.event is Event.SYNC and e.t >= last:
            syncs[e.host] = max(syncs.get(e.host, 0), e.t)
    never = 2**63
    return {h: syncs.get(h, never) if h in result.topology.model.nodes else last
            for h in hosts}


def backends_are_ready_endpoints(result: Result) -> None:
    """Every connection kube-proxy DNATs goes to a ready endpoint of the Service whose
    address it asked (or any endpoint, with ``publishNotReadyAddresses``): never to a
    deleted pod, a not-ready one, or another Service's; and, on a node, to one that node's
    kube-proxy uses (its zone's or its own, when the endpoints are hinted so)."""
    model = result.topology.model
    front = frontends(model)
    views: dict[str, dict[tuple[str, int, str], set[str]]] = {}
    seen_after: dict[int, int] = {}
    settled = _settled(result)
    for e in reversed(result.events):  # the first capture after each event, per packet
        if e.packet is not None and e.frame is not None:
            seen_after[e.packet] = e.frame
        diff = e.nat
        if diff is None or not e.summary.startswith("kube-proxy DNAT"):
            continue
        if e.t < settled.get(e.host, 0):  # rules of before the run's last change
            continue
        old, new = diff.old, diff.new
        host, _, port = old.rpartition(":")
        where = f"{e.host}:{e.iface}"
        frame = seen_after.get(e.packet) if e.packet is not None else None
        # the Service port of the packet's own protocol: a Service may give TCP and UDP on
        # the same port different targets
        match = next((front[k] for k in ((host, int(port), p) for p in _protos_of(result, frame))
                      if port.isdigit() and k in front), None)
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
        if e.host not in model.nodes:
            continue
        used = views.setdefault(e.host, _node_view(model, e.host)).get(
            (svc.key, svc.ports[index].spec.port, svc.ports[index].protocol), set())
        zone = model.nodes[e.host].zone or "none"
        assert new in used, (
            f"packet {e.packet} ({e.flow}) at {where}{seen}: kube-proxy DNAT {old} -> {new}, "
            f"but kube-proxy on {e.host} (zone {zone}) uses only "
            f"{', '.join(sorted(used)) or 'none'} of Service {svc.key} (CategorizeEndpoints)")

