"""The cluster as a graph: what is connected to what, where to draw it, where a packet went.

``cluster_graph(topology)`` gives a ``networkx.Graph`` whose nodes carry ``kind`` (one of
``KINDS``), ``label`` and ``pos`` (a layered layout, computed, never random, so a picture is
the same every time and no two boxes overlap): services on top; per cluster node a column
with its pods, their host-side veths, the bridge, the node's root namespace and its tunnel
device; the node network, the router, the external network and its clients below.  Edges
carry ``kind``: ``link`` (a cable or veth), ``endpoint`` (a Service's backend, virtual),
``overlay`` (VXLAN/IP-in-IP between tunnel devices, virtual).

``locate(graph, host, iface)`` maps a trace event's place to a graph node; ``path(graph,
model, trace)`` gives the nodes and edges the packets of a ``pktsim.trace.Trace`` crossed.
"""

from __future__ import annotations

from itertools import combinations, pairwise
from typing import TYPE_CHECKING

import networkx as nx

from pktsim.core.events import Event
from pktsim.trace import Trace

if TYPE_CHECKING:
    from pktsim.build.topology import Topology
    from pktsim.core.events import TraceEvent
    from pktsim.model.cluster import ClusterModel, NodeInfo, PodInfo
    from pktsim.model.objects import ClusterConfig
    from pktsim.model.services import ServiceInfo

KINDS = ("service", "pod", "veth", "bridge", "node", "tunnel", "switch", "router", "external")
Y = {"service": 5.2, "pod": 3.9, "veth": 2.95, "bridge": 2.1, "node": 1.1, "tunnel": 1.1,
     "switch": -0.15, "router": -0.15, "internet": -0.15, "external": -1.1}
PATH_EVENTS = frozenset({Event.TX, Event.RX, Event.NAT, Event.DROP, Event.DELIVER})
GAP = 0.7  # slots between two node columns
TUNNEL_KINDS = {"vxlan": "VXLAN VNI 1, UDP 8472", "ipip": "IP-in-IP",
                "vxlan.calico": "VXLAN VNI 4096, UDP 4789", "tunl0": "IP-in-IP"}


def _pod_label(info: PodInfo) -> str:
    ns, _, name = info.key.partition("/")
    return f"{name}\n{ns}\n{info.ip}"


def _ports_text(svc: ServiceInfo) -> str:
    parts = []
    for p in svc.ports:
        text = f"{p.spec.port}/{p.protocol}"
        if p.node_port:
            text += f" nodePort {p.node_port}"
        parts.append(text)
    lines = [", ".join(parts[i:i + 2]) for i in range(0, len(parts), 2)]
    return "\n".join(lines)


def _service_label(svc: ServiceInfo, model: ClusterModel) -> str:
    s = svc.service
    if s.type == "ExternalName":
        head = f"ExternalName -> {s.external_name}"
    elif svc.headless:
        head = "headless (no ClusterIP)"
    else:
        head = f"{s.type} " + " ".join(str(a) for a in (svc.cluster_ip, svc.cluster_ip6)
                                       if a is not None)
    lines = [svc.key, head]
    if svc.load_balancer_ip:
        lines.append(f"LB {svc.load_balancer_ip}")
    lines.append(_ports_text(svc))
    node_ips = {str(n.ip): n.name for n in model.nodes.values()}
    off_pod = sorted({f"{node_ips[str(e.ip)]}:{e.port}" for p in svc.ports for e in p.endpoints
                      if str(e.ip) in node_ips})
    if off_pod:
        lines.append("-> " + ", ".join(off_pod))
    return "\n".join(x for x in lines if x)


def cluster_graph(topo: Topology) -> nx.Graph:
    """The topology as a graph with a fixed layout (see the module docstring)."""
    model = topo.model
    cfg = model.config
    g = nx.Graph(network=cfg.network)
    has_tunnels = bool(topo.tunnels)
    columns = []
    x0 = 0.0
    for node in model.node_list():
        pods = sorted((p for p in model.pods_on(node.name) if not p.pod.host_network),
                      key=lambda p: p.key)
        width = max(len(pods), 2 if has_tunnels else 1)
        columns.append((node, pods, x0, width))
        x0 += width + GAP
    right = x0 - GAP - 1
    mid = right / 2
    pod_x: dict[str, float] = {}
    for node, pods, left, width in columns:
        centre = left + (width - 1) / 2
        side = 1.0 if centre <= mid else -1.0  # the tunnel faces the middle of the cluster
        nid = f"node:{node.name}"
        node_x = centre - 0.45 * side if has_tunnels else centre
        bid = _node_box(g, cfg, node, nid, (node_x, centre))
        tunnel = topo.tunnels.get(node.name)
        if tunnel is not None:
            tid = f"tun:{node.name}"
            kind = TUNNEL_KINDS.get(tunnel.name) or TUNNEL_KINDS.get(cfg.network, cfg.network)
            g.add_node(tid, kind="tunnel", pos=(centre + 0.55 * side, Y["tunnel"]),
                       iface=tunnel.name, label=f"{tunnel.name}\n{kind}")
            g.add_edge(nid, tid, kind="link")
        for j, info in enumerate(pods):
            x = left + j + (width - len(pods)) / 2
            pid, vid = f"pod:{info.key}", f"veth:{node.name}:{info.veth}"
            pod_x[info.key] = x
            g.add_node(pid, kind="pod", pos=(x, Y["pod"]), label=_pod_label(info))
            g.add_node(vid, kind="veth", pos=(x, Y["veth"]), label=info.veth)
            g.add_edge(pid, vid, kind="link")
            g.add_edge(vid, bid, kind="link")
    _add_overlay(g, topo)
    _add_outside(g, topo, mid)
    _add_services(g, model, pod_x, (0.0, right))
    return g


def _node_box(g: nx.Graph, cfg: ClusterConfig, node: NodeInfo, nid: str,
              xs: tuple[float, float]) -> str:
    """The node and, on flannel's modes, its bridge; returns what the veths attach to (on
    Calico the node itself: its cali veths are routed, not bridged)."""
    if cfg.network == "calico":
        blocks = ", ".join(str(b) for b in node.blocks) or "no block"
        g.add_node(nid, kind="node", pos=(xs[0], Y["node"]),
                   label=f"{node.name}\neth0 {node.ip}\nblocks {blocks}")
        return nid
    bid = f"br:{node.name}"
    g.add_node(nid, kind="node", pos=(xs[0], Y["node"]),
               label=f"{node.name}\neth0 {node.ip}\npodCIDR {node.pod_cidr}")
    g.add_node(bid, kind="bridge", pos=(xs[1], Y["bridge"]), iface=cfg.bridge,
               label=f"{cfg.bridge} (bridge)\n{node.gateway}")
    g.add_edge(bid, nid, kind="link")
    return bid


def _add_overlay(g: nx.Graph, topo: Topology) -> None:
    for a, b in combinations(sorted(topo.tunnels), 2):
        g.add_edge(f"tun:{a}", f"tun:{b}", kind="overlay")


def _add_outside(g: nx.Graph, topo: Topology, mid: float) -> None:
    cfg = topo.model.config
    g.add_node("switch", kind="switch", pos=(mid, Y["switch"]),
               label=f"node network\n{cfg.node_cidr}")
    for node in topo.model.node_list():
        g.add_edge(f"node:{node.name}", "switch", kind="link")
    if topo.router is None:
        return
    router_ips = " | ".join(str(a.ip) for _, a in topo.router.addresses()
                            if not a.ip.is_loopback)
    g.add_node("router", kind="router", pos=(mid + 1.45, Y["router"]),
               label=f"router (external)\n{router_ips}")
    g.add_edge("switch", "router", kind="link")
    g.add_node("internet", kind="switch", pos=(mid + 2.9, Y["internet"]),
               label=f"external network\n{cfg.external_cidr}")
    g.add_edge("router", "internet", kind="link")
    clients = sorted(topo.clients)
    for i, host in enumerate(clients):
        ip = topo.clients[host].primary_ip("eth0")
        x = mid + 2.9 + (i - (len(clients) - 1) / 2) * 1.1
        ip_text = ".".join(str(b) for b in ip) if ip else ""
        g.add_node(f"ext:{host}", kind="external", pos=(x, Y["external"]),
                   label=f"{host}\n{ip_text}")
        g.add_edge("internet", f"ext:{host}", kind="link")


def _add_services(g: nx.Graph, model: ClusterModel, pod_x: dict[str, float],
                  span: tuple[float, float]) -> None:
    by_ip = {str(p.ip): p.key for p in model.pods.values() if not p.pod.host_network}
    placed = []
    for key, svc in model.services.items():
        backends = sorted({by_ip[str(e.ip)] for p in svc.ports for e in p.endpoints
                           if str(e.ip) in by_ip})
        centre = sum(pod_x[b] for b in backends) / len(backends) if backends else span[0]
        placed.append((centre, key, svc, backends))
    placed.sort(key=lambda t: (t[0], t[1]))
    n = len(placed)
    lo, hi = span
    step = max((hi - lo) / max(n - 1, 1), 1.05)
    start = (lo + hi) / 2 - step * (n - 1) / 2
    for i, (_, key, svc, backends) in enumerate(placed):
        sid = f"svc:{key}"
        g.add_node(sid, kind="service", pos=(start + i * step, Y["service"]),
                   label=_service_label(svc, model), index=i)
        for b in backends:
            g.add_edge(sid, f"pod:{b}", kind="endpoint")


def locate(g: nx.Graph, host: str, iface: str) -> str | None:
    """The graph node where a trace event happened (``None``: not drawn)."""
    if f"pod:{host}" in g:
        return f"pod:{host}"
    if host == "external":
        return "router" if "router" in g else None
    if f"ext:{host}" in g:
        return f"ext:{host}"
    if f"node:{host}" not in g:
        return None
    if f"veth:{host}:{iface}" in g:
        return f"veth:{host}:{iface}"
    for kind in ("tun", "br"):
        if g.nodes.get(f"{kind}:{host}", {}).get("iface") == iface:
            return f"{kind}:{host}"
    return f"node:{host}"


def _service_of(g: nx.Graph, model: ClusterModel, addr: str) -> str | None:
    ip, _, port = addr.partition(":")
    for key, svc in model.services.items():
        ips = {str(svc.cluster_ip), str(svc.load_balancer_ip)}
        node_ports = {str(p.node_port) for p in svc.ports if p.node_port}
        nodes = {str(n.ip) for n in model.nodes.values()}
        if ip in ips or (port in node_ports and ip in nodes):
            return f"svc:{key}" if f"svc:{key}" in g else None
    return None


def path(g: nx.Graph, model: ClusterModel, trace: Trace) -> tuple[list[str], set[frozenset[str]]]:
    """Nodes (in first-visit order) and edges the packets of ``trace`` went through.

    Packets whose first frame is not IPv4 (ARP: a flood reaches every port) are not on
    the path; a packet whose frames the trace lacks is taken."""
    links = nx.Graph([(a, b) for a, b, k in g.edges(data="kind") if k == "link"])
    links.add_nodes_from(g.nodes)
    nodes: list[str] = []
    edges: set[frozenset[str]] = set()
    pod_by_ip = {str(p.ip): f"pod:{p.key}" for p in model.pods.values()}
    for packet in trace:
        first = packet.first
        if first is None or (trace.captured(first) is not None and not packet.is_ip):
            continue
        before: str | None = None
        for e in packet.steps:
            if e.event not in PATH_EVENTS:
                continue
            at = locate(g, e.host, e.iface)
            if at is None:
                continue
            _visit(nodes, at)
            if before is not None and before != at and nx.has_path(links, before, at):
                for a, b in pairwise(nx.shortest_path(links, before, at)):
                    edges.add(frozenset((a, b)))
                    _visit(nodes, a)
                    _visit(nodes, b)
            before = at
            _service_edge(g, model, e, pod_by_ip, nodes, edges)
    tunnels = [n for n in nodes if n.startswith("tun:")]
    for a, b in combinations(tunnels, 2):
        if g.has_edge(a, b):
            edges.add(frozenset((a, b)))
    return nodes, edges


def _visit(nodes: list[str], node: str) -> None:
    if node not in nodes:
        nodes.append(node)


def _service_edge(g: nx.Graph, model: ClusterModel, e: TraceEvent, pod_by_ip: dict[str, str],
                  nodes: list[str], edges: set[frozenset[str]]) -> None:
    """A DNAT to a Service's backend: the Service's box, and its edge to that backend."""
    nat = e.nat
    if nat is None or nat.field != "dst":
        return
    svc = _service_of(g, model, nat.old)
    if svc is None:
        return
    _visit(nodes, svc)
    backend = pod_by_ip.get(nat.new.partition(":")[0])
    if backend is not None and g.has_edge(svc, backend):
        edges.add(frozenset((svc, backend)))

