"""Traffic flows -> client applications started in the right namespace at the right time.

A flow's ``from`` names a pod (``ns/pod[/container]``), a node (``node:NAME``) or an external
client; its target (SCENARIO.md §1 "Targets") is resolved against the cluster: ``localhost``,
an IPv4 address, ``ns/pod``, ``node:NAME``, each with ``:PORT``, or ``http://HOST[:PORT]/PATH``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from ipaddress import IPv4Address

from pktsim.build.topology import Topology, starter
from pktsim.devices.apps import FlowResult, PingApp, TcpClientApp, UdpClientApp
from pktsim.devices.l4 import App
from pktsim.devices.netns import Netns
from pktsim.errors import ScenarioError
from pktsim.model.objects import Flow

_URL = re.compile(r"^http://(?P<host>[^/:]+)(?::(?P<port>\d+))?(?P<path>/.*)?$")


@dataclass(slots=True)
class Target:
    host: str
    ip: IPv4Address
    port: int | None
    path: str = ""
    http: bool = False


def _fail(flow: Flow, field: str, value: str, message: str, valid: str) -> ScenarioError:
    src = flow.source
    return ScenarioError(message, file=src.file if src else "",
                         document=src.document() if src else "", field=field, value=value,
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
        host = m.group("host")
        return Target(host, _host_ip(topo, flow, host), int(m.group("port") or 80),
                      m.group("path") or "/", True)
    host, maybe_port = _split_port(flow, text)
    return Target(host, _host_ip(topo, flow, host), maybe_port)


def external_host(ref: str) -> str:
    """``external`` -> ``external/client``; ``external:NAME`` -> ``external/NAME``."""
    name = ref.partition(":")[2] or "client"
    return f"external/{name}"


def _split_port(flow: Flow, text: str) -> tuple[str, int | None]:
    head, sep, tail = text.rpartition(":")
    if sep and tail.isdigit() and head not in ("node", ""):
        port = int(tail)
        if not 1 <= port <= 65535:
            raise _fail(flow, "to", text, "port out of range", "1-65535")
        return head, port
    return text, None


def _host_ip(topo: Topology, flow: Flow, host: str) -> IPv4Address:
    if host == "localhost":
        return IPv4Address("127.0.0.1")
    try:
        return IPv4Address(host)
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
        return node.ip
    if "/" in host:
        info = topo.model.pods.get(host)
        if info is None:
            raise _fail(flow, "to", host, "names no pod", "NAMESPACE/POD of a pod in the scenario")
        return info.ip
    raise _fail(flow, "to", host, "cannot be resolved (DNS names need the cluster DNS)",
                "localhost, an IPv4 address, NAMESPACE/POD or node:NAME")


def make_client(topo: Topology, flow: Flow, ns: Netns) -> tuple[App, FlowResult]:
    target = resolve_target(topo, flow)
    rng = topo.model.streams.stream(f"flow/{flow.name}")
    ttl = flow.ttl or 64
    dst = target.ip.packed
    shown = flow.target
    if flow.protocol == "icmp":
        size = len(flow.payload) if flow.payload else 56
        app: PingApp | TcpClientApp | UdpClientApp = PingApp(
            flow.name, dst, flow.count, size, ttl, rng.getrandbits(16), rng.getrandbits(16),
            shown)
        return app, app.result
    port = target.port
    if port is None:
        raise _fail(flow, "to", flow.target, f"a {flow.protocol} flow needs a port",
                    "HOST:PORT or a URL")
    if flow.protocol == "udp":
        app = UdpClientApp(flow.name, dst, port, flow.count, flow.payload or b"ping",
                           ttl, ns.l4.ephemeral_port(), shown)
        return app, app.result
    if target.http:
        host = target.host if target.port == 80 else f"{target.host}:{target.port}"
        request = (f"GET {target.path} HTTP/1.1\r\nHost: {host}\r\n"
                   "User-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n").encode()
    else:
        request = flow.payload or b"hello\n"
    app = TcpClientApp(flow.name, dst, port, flow.count, request, target.http, ttl,
                       shown)
    return app, app.result


def start_flows(topo: Topology, flows: list[Flow]) -> list[FlowResult]:
    results = []
    for flow in flows:
        ns = source_netns(topo, flow)
        app, result = make_client(topo, flow, ns)
        topo.driver.call(flow.start_ns, ns, starter(ns, app))
        results.append(result)
    return results
