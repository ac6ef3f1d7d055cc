"""Traffic flows -> client applications started in the right namespace at the right time.

A flow's ``from`` names a pod (``ns/pod[/container]``), a node (``node:NAME``) or an external
client; its target (docs/scenario.md §4 "Targets") is resolved against the cluster: ``localhost``,
an IPv4 address, an IPv6 one (``[fd00::1]:80`` with a port), ``ns/pod``, ``node:NAME``, each
with ``:PORT``, or ``http://HOST[:PORT]/PATH``.  A flow's ``family`` picks which address of a
pod or node it aims at (its primary one, ``status.podIP``, by default).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address

from pktsim.build.start import starter
from pktsim.build.topology import Topology, pod_resolv_conf, upstream_ip
from pktsim.core.events import FRAME_EVENTS, TraceEvent
from pktsim.core.frame import Frame
from pktsim.devices.apps import (
    PING_INTERVAL,
    TCP_INTERVAL,
    UDP_INTERVAL,
    PingApp,
    TcpClientApp,
    UdpClientApp,
)
from pktsim.devices.dnsapps import ResolveApp
from pktsim.devices.l4 import App
from pktsim.devices.netns import Netns
from pktsim.devices.outcome import FlowResult, FlowStatus
from pktsim.dns import ResolvConf, StubResolver
from pktsim.errors import ScenarioError
from pktsim.model.objects import Flow

_NAME = re.compile(r"^(?=.{1,253}\.?$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.)*"
                   r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.?$")
LOOKUP_INTERVAL = UDP_INTERVAL  # between a lookup flow's lookups: a second, as datagrams
_URL = re.compile(r"^http://(?P<host>\[[0-9A-Fa-f:.]+\]|[^/:\[\]]+)(?::(?P<port>\d+))?"
                  r"(?P<path>/.*)?$")
IP = IPv4Address | IPv6Address


@dataclass(slots=True)
class Target:
    host: str  # as written, an IPv6 address without its brackets
    ip: IP | None  # None: a DNS name, resolved at run time
    port: int | None
    path: str = ""
    http: bool = False


def _fail(flow: Flow, field: str, value: str, message: str, valid: str) -> ScenarioError:
    """A flow that names what the cluster does not have: file, document and the field's
    full path (``spec.flows[2].to``), as the loader names its problems."""
    src = flow.source
    path = f"{flow.path}.{field}" if flow.path else field
    return ScenarioError(message, file=src.file if src else "",
                         document=src.document() if src else "", field=path, value=value,
                         valid=valid)


def source_netns(topo: Topology, flow: Flow, field: str = "from") -> Netns:
    ref = flow.source_ref
    if ref == "external" or ref.startswith("external:"):
        return topo.clients[external_host(ref)]
    if ref.startswith("node:"):
        name = ref[5:]
        if name not in topo.node_ns:
            raise _fail(flow, field, ref, "names no node", ", ".join(sorted(topo.node_ns)))
        return topo.node_ns[name]
    parts = ref.split("/")
    key = "/".join(parts[:2])
    info = topo.model.pods.get(key)
    if info is None:
        raise _fail(flow, field, ref, "names no pod", "NAMESPACE/POD of a pod in the scenario")
    if len(parts) == 3 and parts[2] not in {c.name for c in info.pod.containers}:
        raise _fail(flow, field, ref, f"pod {key} has no container {parts[2]!r}",
                    ", ".join(c.name for c in info.pod.containers))
    return topo.pod_ns[key]


def resolve_target(topo: Topology, flow: Flow) -> Target:
    text = flow.target
    m = _URL.match(text)
    if m:
        host = m.group("host").strip("[]")
        return Target(host, _host_ip(topo, flow, host), int(m.group("port") or 80),
                      m.group("path") or "/", True)
    host, maybe_port = _split_port(flow, text)
    return Target(host, _host_ip(topo, flow, host), maybe_port)


def external_host(ref: str) -> str:
    """``external`` -> ``external/client``; ``external:NAME`` -> ``external/NAME``."""
    name = ref.partition(":")[2] or "client"
    return f"external/{name}"


def _split_port(flow: Flow, text: str) -> tuple[str, int | None]:
    if text.startswith("["):  # [IPv6] or [IPv6]:PORT
        addr, _, rest = text[1:].partition("]")
        if rest and not (rest.startswith(":") and rest[1:].isdigit()):
            raise _fail(flow, "to", text, "is not [IPv6]:PORT", "[fd00::1]:80")
        text = addr + rest
        if not rest:
            return addr, None
        head, tail = addr, rest[1:]
        port = int(tail)
        if not 1 <= port <= 65535:
            raise _fail(flow, "to", text, "port out of range", "1-65535")
        return head, port
    if text.count(":") > 1 and not text.startswith(("node:", "external:")):
        return text, None  # a bare IPv6 address: no port can follow it
    head, sep, tail = text.rpartition(":")
    if sep and tail.isdigit() and head not in ("node", ""):
        port = int(tail)
        if not 1 <= port <= 65535:
            raise _fail(flow, "to", text, "port out of range", "1-65535")
        return head, port
    return text, None


def _host_ip(topo: Topology, flow: Flow, host: str) -> IP | None:
    v6 = flow.family == "IPv6"
    if host == "localhost":
        return IPv6Address("::1") if v6 else IPv4Address("127.0.0.1")
    try:
        return ip_address(host)
    except ValueError:
        pass
    if host == "external" or host.startswith("external:"):
        ns = topo.clients.get(external_host(host))
        if ns is None:
            raise _fail(flow, "to", host, "names no external client", "external[:NAME]")
        ip = ns.primary_ip("eth0")
        assert ip is not None
        return IPv4Address(ip)
    if host.startswith("node:"):
        node = topo.model.nodes.get(host[5:])
        if node is None:
            raise _fail(flow, "to", host, "names no node", ", ".join(sorted(topo.model.nodes)))
        return _family_ip(flow, host, node.ip, node.ip6, v6)
    if "/" in host:
        info = topo.model.pods.get(host)
        if info is None:
            raise _fail(flow, "to", host, "names no pod", "NAMESPACE/POD of a pod in the scenario")
        return _family_ip(flow, host, info.ip, info.ip6, v6)
    if _NAME.match(host):
        return None  # a DNS name: resolved on the wire by the pod's resolver
    raise _fail(flow, "to", host, "is not a host", "localhost, an IPv4 address, [an IPv6 "
                "address], NAMESPACE/POD, node:NAME, external[:NAME] or a DNS name")


def _family_ip(flow: Flow, host: str, ip4: IPv4Address, ip6: IPv6Address | None,
               v6: bool) -> IP:
    """A pod's or node's address of the flow's ``family``."""
    if not v6:
        return ip4
    if ip6 is None:
        raise _fail(flow, "family", "IPv6", f"{host} has no IPv6 address", "IPv4")
    return ip6


def make_client(topo: Topology, flow: Flow, ns: Netns) -> tuple[App, FlowResult]:
    """The application a flow runs; behind a resolver when its target is a DNS name."""
    if flow.lookup:
        result = FlowResult(flow.name, f"dns {flow.qtype}", flow.lookup)
        conf, rng = _resolv(topo, flow, ns), topo.streams.stream(f"resolver/{flow.name}")

        def fresh() -> StubResolver:  # each lookup's own, from the flow's one stream
            return StubResolver(conf, flow.lookup, (flow.qtype,), rng=rng)

        gap = LOOKUP_INTERVAL if flow.interval_ns is None else flow.interval_ns
        return ResolveApp(fresh(), result, flow.name, port=flow.source_port, again=fresh,
                          count=flow.count, gap=gap), result
    target = resolve_target(topo, flow)
    if target.ip is not None:
        app = _client_app(topo, flow, ns, target, target.ip.packed)
        return app, app.result  # type: ignore[attr-defined]
    result = FlowResult(flow.name, "http" if target.http else flow.protocol, flow.target)

    def then(addresses: list[str]) -> App:
        # getaddrinfo's first: the A answer before the AAAA (RFC 6724's default policy
        # ranks IPv4 above a ULA IPv6 address, kind's fd00::/8), else the AAAA
        app = _client_app(topo, flow, ns, target, ip_address(addresses[0]).packed)
        app.result = result  # type: ignore[attr-defined]
        result.kind = "http" if target.http else flow.protocol
        return app

    stub = StubResolver(_resolv(topo, flow, ns), target.host,
                        rng=topo.streams.stream(f"resolver/{flow.name}"))
    return ResolveApp(stub, result, flow.name, then), result


def _resolv(topo: Topology, flow: Flow, ns: Netns) -> ResolvConf:
    info = next((p for p in topo.model.pods.values() if topo.pod_ns.get(p.key) is ns), None)
    if info is None:  # a node or an external host: the node's own resolv.conf
        return ResolvConf([upstream_ip(topo.model)])
    return pod_resolv_conf(topo.model, info)


def _client_app(topo: Topology, flow: Flow, ns: Netns, target: Target, dst: bytes) -> App:
    rng = topo.streams.stream(f"flow/{flow.name}")
    ttl = flow.ttl or 64
    shown = flow.target
    gap = flow.interval_ns
    if flow.protocol == "icmp":
        size = len(flow.payload) if flow.payload else 56
        return PingApp(flow.name, dst, flow.count, size, ttl, rng.getrandbits(16),
                       rng.getrandbits(16), shown, PING_INTERVAL if gap is None else gap)
    port = target.port
    if port is None:
        raise _fail(flow, "to", flow.target, f"a {flow.protocol} flow needs a port",
                    "HOST:PORT or a URL")
    if flow.protocol == "udp":
        return UdpClientApp(flow.name, dst, port, flow.count, flow.payload or b"ping",
                            ttl, ns.l4.ephemeral_port(), shown,
                            UDP_INTERVAL if gap is None else gap)
    if target.http:
        name = f"[{target.host}]" if ":" in target.host else target.host
        host = name if target.port == 80 else f"{name}:{target.port}"
        request = (f"GET {target.path} HTTP/1.1\r\nHost: {host}\r\n"
                   "User-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n").encode()
    else:
        request = flow.payload or b"hello\n"
    return TcpClientApp(flow.name, dst, port, flow.count, request, target.http, ttl, shown,
                        TCP_INTERVAL if gap is None else gap)


def start_flows(topo: Topology, flows: list[Flow]) -> list[FlowResult]:
    """Schedule every flow; a flow naming what the cluster lacks raises ScenarioError
    (before anything runs: ``pktsim check`` calls this too)."""
    results = []
    fates: dict[int, FlowResult] = {}  # injected frame's pid -> its result
    for flow in flows:
        if flow.frame is not None:
            if not fates:
                topo.driver.listeners.append(lambda event: _fate(fates, event))
            results.append(inject_frame(topo, flow, flow.frame, fates))
            continue
        ns = source_netns(topo, flow)
        app, result = make_client(topo, flow, ns)
        topo.driver.call(flow.start_ns, ns, starter(ns, app))
        results.append(result)
    return results


def inject_frame(topo: Topology, flow: Flow, data: bytes,
                 fates: dict[int, FlowResult]) -> FlowResult:
    """Schedule ``flow``'s raw frame on its interface; the result tells the frame's fate
    (the last thing a device did with it: a drop and its reason, a delivery, a forward)."""
    end = topo.driver.receiving_end(flow.interface)
    if end is None:
        names = sorted(i.if_name for i in topo.driver.interfaces)
        raise _fail(flow, "interface", flow.interface, "names no interface of the cluster",
                    ", ".join(names[:6]) + (", ..." if len(names) > 6 else ""))
    result = FlowResult(flow.name, "frame", flow.interface)
    frame = Frame(data, topo.driver.new_pid(), flow.name)
    fates[frame.pid] = result
    topo.driver.inject(flow.start_ns, end, frame)
    return result


def _fate(fates: dict[int, FlowResult], event: TraceEvent) -> None:
    result = fates.get(event.packet) if event.packet is not None else None
    if result is None:
        return
    if event.event in FRAME_EVENTS:
        if not result.sent:
            result.sent = 1
            result.end(FlowStatus.OK, "received")
        return
    result.end(FlowStatus.OK, event.summary)
