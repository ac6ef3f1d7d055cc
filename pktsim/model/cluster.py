"""The cluster as kubelet, the CNI plugin and the scheduler leave it: every address decided.

Theory of operation
-------------------
``allocate(scenario)`` turns what the manifests say into what a running cluster has, and
takes every value the manifests give as they are (docs/scenario.md §5):

* nodes sorted by name; node *i* gets InternalIP ``nodeCIDR`` ``.0.(2+i)`` (as kind does) and
  the *i*-th ``/24`` of ``podCIDR``, unless ``status.addresses``/``spec.podCIDR`` say;
* a pod without ``spec.nodeName`` goes to the node with the fewest pods so far (ties: the
  first by name), which spreads a Deployment's replicas as the default scheduler does;
* pod IPs come from the node's pod CIDR in creation order, host-local style: ``.1`` is the
  bridge (gateway), the first pod gets ``.2``; an address a pod's ``status.podIP`` gives is
  reserved first;
* MACs are random as the kernel makes them (``eth_random_addr``) but drawn from named streams
  of the seed; the node's ``eth0`` MAC follows Docker's ``02:42:<IPv4>`` as kind nodes have;
  host-side veths are ``veth`` + 8 hex digits (``RandomVethName``);
* with the IPv6 family, each node and pod gets its IPv6 address too (``pktsim.model.ipv6``).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from dataclasses import dataclass, field
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
)

from pktsim.core.seeding import Streams
from pktsim.errors import ScenarioError, ScenarioErrors
from pktsim.model.bulk import gc_paused
from pktsim.model.conflicts import (
    config_conflicts,
    duplicate_pod_ip,
    node_count_problem,
    node_ip_problem,
    pod_ip_problem,
)
from pktsim.model.draws import OneShot
from pktsim.model.ipv6 import allocate_nodes6, node_count_problem6, pod_ip6, reserved6
from pktsim.model.objects import (
    ClusterConfig,
    Endpoint,
    EndpointPort,
    EndpointSlice,
    Node,
    Pod,
    Scenario,
    Service,
    ServicePort,
    Source,
)
from pktsim.model.policy import NetworkPolicy
from pktsim.model.services import (
    PodIndex,
    PortInfo,
    ServiceInfo,
    allocate_cluster_ips,
    allocate_health_check_ports,
    allocate_lb_ips,
    allocate_node_ports,
    derive_endpoints,
    slices_by_service,
)
from pktsim.model.services6 import allocate_services6
from pktsim.model.topology import ZONE_LABEL, generated_zone


@dataclass(slots=True)
class NodeInfo:
    name: str
    index: int
    ip: IPv4Address
    pod_cidr: IPv4Network
    eth0_mac: bytes
    bridge_mac: bytes
    vtep_mac: bytes
    # Calico (network: calico): the node's affine IPAM blocks and its tunnel device's
    # address (``tunl0``/``vxlan.calico``, ``None`` without encapsulation); ``pod_cidr`` is
    # then the first block (or the pool, for a node that holds none)
    blocks: list[IPv4Network] = field(default_factory=list)
    tunnel_ip: IPv4Address | None = None
    zone: str = ""  # the topology.kubernetes.io/zone label ("": none)
    labels: dict[str, str] = field(default_factory=dict)  # the Node's (DaemonSets select)
    # with the IPv6 family (ClusterConfig.has_ipv6): the node's IPv6 InternalIP and pod
    # CIDR (a /64), pktsim.model.ipv6; None in an IPv4-only cluster
    ip6: IPv6Address | None = None
    pod_cidr6: IPv6Network | None = None

    @property
    def gateway(self) -> IPv4Interface:
        return IPv4Interface(f"{self.pod_cidr.network_address + 1}/{self.pod_cidr.prefixlen}")

    @property
    def gateway6(self) -> IPv6Interface | None:
        """The bridge's IPv6 address, the pod CIDR's ``::1``: host-local's default gateway
        (``Range.Canonicalize``, plugins/ipam/host-local/backend/allocator/range.go)."""
        cidr = self.pod_cidr6
        if cidr is None:
            return None
        return IPv6Interface(f"{cidr.network_address + 1}/{cidr.prefixlen}")


@dataclass(slots=True)
class PodInfo:
    pod: Pod
    node: str
    ip: IPv4Address
    mac: bytes = b""
    veth: str = ""  # host side: vethXXXXXXXX (bridge port) or caliXXXXXXXXXXX (Calico)
    veth_mac: bytes = b""
    ip6: IPv6Address | None = None  # with the IPv6 family (pktsim.model.ipv6), else None

    @property
    def key(self) -> str:
        return self.pod.key


@dataclass(slots=True)
class ClusterModel:
    config: ClusterConfig
    scenario: Scenario
    nodes: dict[str, NodeInfo] = field(default_factory=dict)
    pods: dict[str, PodInfo] = field(default_factory=dict)
    services: dict[str, ServiceInfo] = field(default_factory=dict)
    streams: Streams = field(default_factory=lambda: Streams(0))
    # validated, defaulted policies (enforced only where ``model.policy.enforces_policy``)
    network_policies: list[NetworkPolicy] = field(default_factory=list)
    # every namespace's labels, ``kubernetes.io/metadata.name`` included (namespaceSelectors)
    namespace_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    # the IPAM state pods created during a run allocate from (``pktsim.control.kubelet``):
    # host-local's last reserved address per node; Calico's addresses handed out and released
    last_reserved: dict[str, IPv4Address] = field(default_factory=dict)
    last_reserved6: dict[str, IPv6Address] = field(default_factory=dict)  # the IPv6 range's
    handed_out: set[IPv4Address] = field(default_factory=set)
    released: list[IPv4Address] = field(default_factory=list)
    incarnations: dict[str, int] = field(default_factory=dict)  # pod key -> sandboxes made
    # nodes where the portmap plugin made its top-level chains (they outlive the pods)
    portmap_nodes: set[str] = field(default_factory=set)
    # every EndpointSlice the Services' endpoints come from (the stream's, default/kubernetes')
    slices: list[EndpointSlice] = field(default_factory=list)

    def node_list(self) -> list[NodeInfo]:
        return sorted(self.nodes.values(), key=lambda n: n.index)

    def pods_on(self, node: str) -> list[PodInfo]:
        return [p for p in self.pods.values() if p.node == node]


def _err(src: Source | None, field_: str, value: object, message: str, valid: str = "") -> \
        ScenarioError:
    return ScenarioError(message, file=src.file if src else "",
                         document=src.document() if src else "", field=field_, value=value,
                         valid=valid)


def allocate(scenario: Scenario) -> ClusterModel:
    """Decide every address; raise ``ScenarioError(s)`` for conflicts the manifests create."""
    with gc_paused():
        return _allocate(scenario)


def _allocate(scenario: Scenario) -> ClusterModel:
    cfg = scenario.config
    model = ClusterModel(cfg, scenario, streams=Streams(cfg.seed),
                         network_policies=list(scenario.network_policies),
                         namespace_labels=namespace_labels(scenario))
    errors: list[ScenarioError] = config_conflicts(cfg)
    nodes = sorted(scenario.nodes or generated_nodes(cfg), key=lambda n: n.name)
    too_many = node_count_problem(cfg, nodes) or node_count_problem6(cfg, nodes)
    if too_many is not None and not errors:
        errors.append(too_many)
    if not errors:
        _allocate_nodes(model, nodes, errors)
        allocate_nodes6(model, nodes, errors)
        for node in nodes:
            if node.name in model.nodes:
                model.nodes[node.name].zone = node.labels.get(ZONE_LABEL, "")
                model.nodes[node.name].labels = dict(node.labels)
    if not errors:
        _allocate_pods(model, errors)
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ScenarioErrors(errors)
    _allocate_services(model)
    return model


def generated_nodes(cfg: ClusterConfig) -> list[Node]:
    """``node-1`` ... ``node-N`` of a stream without Node objects, labelled as kubelet
    labels a node (``kubernetes.io/hostname``, ``kubernetes.io/os``), with the zone
    ``Cluster.spec.zones`` gives each (``pktsim.model.topology.generated_zone``)."""
    out = []
    for i in range(cfg.nodes):
        name = f"node-{i + 1}"
        labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}
        zone = generated_zone(cfg.zones, i)
        if zone:
            labels[ZONE_LABEL] = zone
        out.append(Node(name, labels=labels))
    return out


def node_zones(model: ClusterModel) -> dict[str, str]:
    """Each node's zone, for the EndpointSlice controller (``podToEndpoint``)."""
    return {name: info.zone for name, info in model.nodes.items()}


def namespace_labels(scenario: Scenario) -> dict[str, dict[str, str]]:
    """Each namespace's labels with ``kubernetes.io/metadata.name``, which the API server
    sets on every namespace (``NamespaceLabelKey``), including the namespaces that only pods
    or policies name."""
    names = {*scenario.namespaces, *scenario.namespace_labels,
             *(p.namespace for p in scenario.pods),
             *(p.namespace for p in scenario.network_policies)}
    return {ns: {**scenario.namespace_labels.get(ns, {}), "kubernetes.io/metadata.name": ns}
            for ns in sorted(names)}


def _kubernetes_service(model: ClusterModel) -> tuple[Service, EndpointSlice]:
    """``default/kubernetes``: the API server on the first node, :6443 behind :443."""
    first = model.node_list()[0]
    svc = Service("default", "kubernetes", ports=[ServicePort(443, "TCP", "https", 6443)])
    eps = EndpointSlice("default", "kubernetes", "kubernetes",
                        [Endpoint([first.ip], node_name=first.name)],
                        [EndpointPort(6443, "TCP", "https")])
    return svc, eps


def _allocate_services(model: ClusterModel) -> None:
    scenario = model.scenario
    services = list(scenario.services)
    slices = list(scenario.endpoint_slices)
    if not any(s.key == "default/kubernetes" for s in services):
        svc, eps = _kubernetes_service(model)
        services.insert(0, svc)
        slices.append(eps)
    cfg = model.config
    ips = allocate_cluster_ips(services, cfg)
    node_ports = allocate_node_ports(services, cfg.seed)
    lb_ips = allocate_lb_ips(services, cfg.load_balancer_cidr)
    health = allocate_health_check_ports(services, cfg.seed, node_ports)
    model.slices = slices
    pods = [(p.pod, p.node, p.ip) for p in model.pods.values()]
    pod_index, by_service = PodIndex(pods), slices_by_service(slices)
    zones = node_zones(model)
    for svc in services:
        ports = [PortInfo(p) for p in svc.ports] if svc.type == "ExternalName" else \
            derive_endpoints(svc, pods, slices, index=pod_index, by_service=by_service,
                             zones=zones)
        for index, info in enumerate(ports):
            info.node_port = node_ports.get((svc.key, index))
        if svc.key in health:
            svc.health_check_node_port = health[svc.key]
        model.services[svc.key] = ServiceInfo(svc, ips.get(svc.key), ports, lb_ips.get(svc.key))
    allocate_services6(model, services, slices)


def _allocate_nodes(model: ClusterModel, nodes: list[Node], errors: list[ScenarioError]) -> None:
    cfg = model.config
    if cfg.network == "calico":  # Calico IPAM's own allocation (imports this module)
        from pktsim.model.calico import calico_nodes
        calico_nodes(model, nodes, errors)
        return
    subnets = cfg.pod_cidr.subnets(new_prefix=24) if cfg.pod_cidr.prefixlen <= 24 else iter(())
    taken_ips: dict[IPv4Address, str] = {}
    taken_cidrs = _Taken()
    given = {n.pod_cidr for n in nodes if n.pod_cidr is not None}
    for index, node in enumerate(nodes):
        ip = node.internal_ip or cfg.node_cidr.network_address + 2 + index
        problem = node_ip_problem(node, ip, cfg)
        if problem is not None:
            errors.append(problem)
        if ip in taken_ips:
            errors.append(_err(node.source, "status.addresses[InternalIP]", str(ip),
                               f"is also node {taken_ips[ip]}'s address",
                               "a distinct InternalIP per node"))
        taken_ips[ip] = node.name
        cidr = node.pod_cidr
        if cidr is None:
            cidr = next((s for s in subnets if s not in given), None)
            if cidr is None:
                errors.append(_err(node.source, "spec.podCIDR", None, "the cluster podCIDR "
                                   f"{cfg.pod_cidr} has no /24 left for this node",
                                   "a larger Cluster.spec.podCIDR"))
                continue
        _check_cidr(node, cidr, cfg, taken_cidrs, errors)
        taken_cidrs.append((cidr, node.name))
        draw = OneShot(model.streams.seed)  # each name is drawn from once
        model.nodes[node.name] = NodeInfo(
            node.name, index, ip, cidr, b"\x02\x42" + ip.packed,
            draw.mac(f"node/{node.name}/bridge"), draw.mac(f"node/{node.name}/vtep"))


def _check_cidr(node: Node, cidr: IPv4Network, cfg: ClusterConfig,
                taken: list[tuple[IPv4Network, str]], errors: list[ScenarioError]) -> None:
    if not cidr.subnet_of(cfg.pod_cidr):
        errors.append(_err(node.source, "spec.podCIDR", str(cidr),
                           f"lies outside the cluster podCIDR {cfg.pod_cidr}",
                           f"a subnet of {cfg.pod_cidr}"))
    if cidr.prefixlen > 30:
        errors.append(_err(node.source, "spec.podCIDR", str(cidr),
                           "is too small to allocate from (host-local needs a /30 or larger)",
                           "a prefix length of 30 or less"))
    if not _overlaps_any(cidr, taken):
        return
    for other, name in taken:
        if cidr.overlaps(other):
            errors.append(_err(node.source, "spec.podCIDR", str(cidr),
                               f"overlaps node {name}'s {other}", "non-overlapping pod CIDRs"))


class _Taken(list[tuple[IPv4Network, str]]):
    """The pod CIDRs given out so far, with what finds an overlap without trying each one:
    two CIDRs overlap only when one contains the other."""

    def __init__(self) -> None:
        super().__init__()
        self.nets: set[tuple[int, int]] = set()  # (first address, prefix length)
        self.starts: list[int] = []  # first addresses, sorted

    def append(self, item: tuple[IPv4Network, str]) -> None:
        super().append(item)
        net = item[0]
        self.nets.add((int(net.network_address), net.prefixlen))
        insort(self.starts, int(net.network_address))


def _overlaps_any(cidr: IPv4Network, taken: list[tuple[IPv4Network, str]]) -> bool:
    if not isinstance(taken, _Taken):
        return True  # no index: let the caller try each one
    first, last = int(cidr.network_address), int(cidr.broadcast_address)
    for prefix in range(cidr.prefixlen + 1):  # a taken CIDR that contains this one
        mask = (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF
        if (first & mask, prefix) in taken.nets:
            return True
    at = bisect_left(taken.starts, first)  # one that this one contains
    return at < len(taken.starts) and taken.starts[at] <= last


def _allocate_pods(model: ClusterModel, errors: list[ScenarioError]) -> None:
    placed, reserved = _place_pods(model, errors)
    if model.config.network == "calico":
        from pktsim.model.calico import calico_pods
        calico_pods(model, placed, errors)
        return
    cursor = {name: model.nodes[name].pod_cidr.network_address + 2 for name in model.nodes}
    cursor6: dict[str, IPv6Address] = {}
    taken6 = reserved6(placed, errors)
    draw = OneShot(model.streams.seed)  # each name is drawn from once
    for pod, node in placed:
        info = model.nodes[node]
        ip = _pod_ip(pod, info, reserved[node], cursor, errors)
        if ip is None:
            continue
        ip6 = pod_ip6(model.config, pod, info, taken6.setdefault(node, set()), cursor6, errors)
        key = pod.key
        model.pods[key] = PodInfo(pod, node, ip, draw.mac(f"pod/{key}/eth0"),
                                  "veth" + draw.hex8(f"pod/{key}/veth"),
                                  draw.mac(f"pod/{key}/veth"), ip6)


def _place_pods(model: ClusterModel, errors: list[ScenarioError]) -> tuple[
        list[tuple[Pod, str]], dict[str, set[IPv4Address]]]:
    """The scheduler's choice of node for each pod, and the pod IPs manifests give, per node."""
    load = {name: 0 for name in model.nodes}
    order = sorted(model.nodes, key=lambda n: model.nodes[n].index)
    reserved: dict[str, set[IPv4Address]] = {name: set() for name in model.nodes}
    placed: list[tuple[Pod, str]] = []
    owners: dict[IPv4Address, Pod] = {}  # status.podIP -> the first pod that has it
    ports: dict[str, list[HostPort]] = {name: [] for name in model.nodes}
    for pod in model.scenario.pods:
        node = pod.node_name
        wanted = host_ports(pod)
        if node is None:
            fits = [n for n in order if not port_clash(wanted, ports[n])]
            if not fits:
                errors.append(_err(pod.source, "spec.containers[].ports[].hostPort",
                                   wanted[0][0], "is taken on every node (the scheduler's "
                                   "NodePorts filter places the pod nowhere)",
                                   "a hostPort free on some node"))
                continue
            node = min(fits, key=lambda n: (load[n], model.nodes[n].index))
        elif node not in model.nodes:
            errors.append(_err(pod.source, "spec.nodeName", node, "names no node",
                               ", ".join(order)))
            continue
        elif (clash := port_clash(wanted, ports[node])) is not None:
            errors.append(_err(pod.source, "spec.containers[].ports[].hostPort", clash[0],
                               f"is already taken on node {node} (kubelet's NodePorts "
                               "admission would reject the pod)", "a free hostPort"))
            continue
        ports[node] += wanted
        load[node] += 1
        if pod.pod_ip is not None and not pod.host_network:
            first = owners.setdefault(pod.pod_ip, pod)
            if first is not pod:
                errors.append(duplicate_pod_ip(pod, first))
                continue
            reserved[node].add(pod.pod_ip)
        placed.append((pod, node))
    return placed, reserved


HostPort = tuple[int, str, IPv4Address | None]  # (hostPort, protocol, hostIP or None: any)


def host_ports(pod: Pod) -> list[HostPort]:
    """The pod's hostPorts (a hostNetwork pod's too: it binds them on the node itself)."""
    return [(p.host_port, p.protocol, p.host_ip) for c in pod.containers for p in c.ports
            if p.host_port]


def port_clash(wanted: list[HostPort], used: list[HostPort]) -> HostPort | None:
    """The first of ``wanted`` a pod on the node holds already (the NodePorts filter:
    the same port and protocol on the same address, or either on every address)."""
    for port, proto, ip in wanted:
        for other, other_proto, other_ip in used:
            if port == other and proto == other_proto and \
                    (ip is None or other_ip is None or ip == other_ip):
                return port, proto, ip
    return None


def _pod_ip(pod: Pod, info: NodeInfo, reserved: set[IPv4Address],
            cursor: dict[str, IPv4Address], errors: list[ScenarioError]) -> IPv4Address | None:
    if pod.host_network:
        return info.ip
    if pod.pod_ip is not None:
        if pod.pod_ip not in info.pod_cidr:
            errors.append(_err(pod.source, "status.podIP", str(pod.pod_ip),
                               f"is outside node {info.name}'s podCIDR {info.pod_cidr}",
                               f"an address in {info.pod_cidr}"))
            return None
        problem = pod_ip_problem(pod, info.pod_cidr, info.name)
        if problem is not None:
            errors.append(problem)
            return None
        return pod.pod_ip
    ip = cursor[info.name]
    while ip in reserved:
        ip += 1
    if ip >= info.pod_cidr.broadcast_address:
        errors.append(_err(pod.source, "metadata.name", pod.name,
                           f"node {info.name}'s podCIDR {info.pod_cidr} is exhausted",
                           "fewer pods on the node or a larger pod CIDR"))
        return None
    cursor[info.name] = ip + 1
    reserved.add(ip)
    return ip
