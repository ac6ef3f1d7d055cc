"""What the scheduler, kubelet and the CNI plugin do to a node when a pod comes or goes.

Theory of operation
-------------------
A pod created during the run is placed as at build (``model.cluster._place_pods``: the
ready node with the fewest pods, ties to the first), and gets its address from the node's
allocator as the IPAM plugin would: ``host-local`` hands out the address after the last one
it gave (``lastReservedIP``, round robin, plugins/ipam/host-local/backend/allocator
``Get``), so a new pod never reuses the address a deleted pod just freed; Calico IPAM takes
the block's next unallocated ordinal (libcalico-go ipam ``assignFromExistingBlock``).
With the IPv6 family, host-local's IPv6 range does the same (``model.ipv6.next_host_local6``).
When its sandbox is up (CNI ``ADD``) the node has the pod's veth -- a ``cbr0`` port, or a
``cali`` interface with its ``/32`` route -- and the containers' servers listen.

A pod that goes (its grace period over, or every container exited) loses its sandbox: CNI
``DEL`` removes the veth -- the bridge forgets the port and the MACs learned on it
(``br_fdb_delete_by_port``), Calico's ``/32`` route and the interface's neighbours go with
the interface -- and the namespace with every socket in it is gone.  What stays is what
Linux keeps: the node's ARP entry for the address on ``cbr0`` and every conntrack entry
naming it, so a packet still sent there is flooded on the bridge and answered by no one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network

from pktsim.build.start import starter
from pktsim.build.topology import Topology, build_pod
from pktsim.devices.l4 import App
from pktsim.devices.netns import Netns
from pktsim.devices.routes import Route
from pktsim.model.calico_ipam import HOST_VETH_MAC, veth_name
from pktsim.model.cluster import ClusterModel, HostPort, PodInfo, host_ports, port_clash
from pktsim.model.draws import OneShot
from pktsim.model.ipv6 import next_host_local6, wants_ipv6
from pktsim.model.objects import Pod


def place(model: ClusterModel, pod: Pod, usable: set[str]) -> str | None:
    """The node the scheduler picks: ``spec.nodeName``, else the usable node with the
    fewest pods (the least-allocated score of equal pods), ties to the first by index."""
    if pod.node_name is not None:
        return pod.node_name if pod.node_name in model.nodes else None
    load = {name: 0 for name in model.nodes}
    taken: dict[str, list[HostPort]] = {name: [] for name in model.nodes}
    for info in model.pods.values():
        load[info.node] += 1
        taken[info.node] += host_ports(info.pod)
    wanted = host_ports(pod)
    candidates = [n for n in model.node_list() if n.name in usable
                  and port_clash(wanted, taken[n.name]) is None]  # the NodePorts filter
    if not candidates:
        return None
    return min(candidates, key=lambda n: (load[n.name], n.index)).name


def allocate(model: ClusterModel, pod: Pod, node: str) -> PodInfo | None:
    """The pod's address, MACs and veth name on ``node`` (None: the node's range is full)."""
    info = model.nodes[node]
    draw = OneShot(model.streams.seed)
    key = pod.key
    # a pod made again under a name it had (a StatefulSet's, a Pod re-applied) is a new
    # sandbox: new random MACs and veth name (RandomVethName), drawn under a new name
    again = model.incarnations.get(key, 0) + 1
    model.incarnations[key] = again
    if again > 1:
        key = f"{key}#{again}"
    if pod.host_network:
        ip: IPv4Address | None = info.ip
    elif model.config.network == "calico":
        ip = _calico_address(model, node)
    else:
        ip = _host_local(model, node)
    if ip is None:
        return None
    if model.config.network == "calico":
        return PodInfo(pod, node, ip, draw.mac(f"pod/{key}/eth0"),
                       veth_name(pod.namespace, pod.name), HOST_VETH_MAC)  # Calico's: by name
    ip6 = info.ip6 if pod.host_network else \
        next_host_local6(model, node) if wants_ipv6(model.config, pod) else None
    if ip6 is None and wants_ipv6(model.config, pod) and not pod.host_network:
        return None  # host-local fails the ADD when a range of the pod's is full
    return PodInfo(pod, node, ip, draw.mac(f"pod/{key}/eth0"),
                   "veth" + draw.hex8(f"pod/{key}/veth"), draw.mac(f"pod/{key}/veth"), ip6)


def _host_local(model: ClusterModel, node: str) -> IPv4Address | None:
    """host-local's next address after the last reserved one, skipping those in use."""
    cidr = model.nodes[node].pod_cidr
    used = {p.ip for p in model.pods.values() if p.node == node}
    last = model.last_reserved.get(node)
    if last is None:
        last = max((ip for ip in used if ip in cidr), default=cidr.network_address + 1)
    first, final = cidr.network_address + 2, cidr.broadcast_address - 1
    ip = last
    for _ in range(cidr.num_addresses):
        ip = ip + 1 if ip < final else first
        if ip not in used:
            model.last_reserved[node] = ip
            return ip
    return None


def _calico_address(model: ClusterModel, node: str) -> IPv4Address | None:
    """The next never-allocated address of the node's blocks (Calico's ``Unallocated``
    list starts in order; a released address goes to its end, so it comes back last)."""
    used = {p.ip for p in model.pods.values()} | model.handed_out
    used |= {n.tunnel_ip for n in model.nodes.values() if n.tunnel_ip is not None}
    blocks = model.nodes[node].blocks
    for block in blocks:
        for ip in block:
            if ip not in used:
                model.handed_out.add(ip)
                return ip
    live = {p.ip for p in model.pods.values()}
    return next((ip for ip in model.released
                 if ip not in live and any(ip in b for b in blocks)), None)


Starter = Callable[[Netns, App], None]


def add_sandbox(topo: Topology, info: PodInfo) -> Netns:
    """CNI ``ADD`` and the containers' start, now: the pod's namespace, veth, routes and
    servers (``pktsim.build.topology.build_pod``, as at build, started at the driver's now)."""
    driver = topo.driver

    def start(ns: Netns, app: App) -> None:
        driver.call(driver.now, ns, starter(ns, app))

    build_pod(topo, info, start)
    if topo.model.config.network == "calico" and not info.pod.host_network:
        node_ns = topo.node_ns[info.node]
        node_ns.routes.add(Route(IPv4Network(info.ip), info.veth, scope="link"))
    return topo.pod_ns[info.key]


def remove_sandbox(topo: Topology, info: PodInfo) -> None:
    """CNI ``DEL`` and the namespace's end: the veth and what hangs off it go."""
    ns = topo.pod_ns.pop(info.key, None)
    if ns is None or info.pod.host_network:
        return
    driver = topo.driver
    driver.set_down([ns], True)  # its sockets and timers are gone with it
    driver.disconnect(ns, "eth0")
    driver.disconnect(ns, "lo")
    if topo.model.config.network == "calico":
        node_ns = topo.node_ns[info.node]
        node_ns.ifaces.pop(info.veth, None)
        node_ns.routes.remove(IPv4Network(info.ip))
        node_ns.neigh.forget_dev(info.veth)
        topo.model.released.append(info.ip)
    else:
        topo.bridges[info.node].remove_port(info.veth)


def stop_app(ns: Netns, app: App) -> None:
    """A container's process exits: its listening sockets close (a SYN then gets a RST, a
    datagram an ICMP port unreachable), its timers stop."""
    l4 = ns.l4
    if app in l4.apps:
        l4.apps.remove(app)
    for table in (l4.listeners, l4.udp):
        for port in [p for p, handler in table.items() if handler is app]:
            del table[port]


def with_status(info: PodInfo, *, ready: bool | None = None,
                terminating: bool | None = None) -> None:
    """Replace the pod's status in the model (the scenario's Pod is never changed: one
    Scenario backs many runs)."""
    pod = info.pod
    info.pod = replace(pod, ready=pod.ready if ready is None else ready,
                       terminating=pod.terminating if terminating is None else terminating)
