"""The Kubernetes objects pktsim reads, as plain validated data (scenario -> model).

These dataclasses are what the scenario loader produces and what the builder consumes.  They
hold what the manifests *say*; anything the manifests leave open (pod IPs, node IPs, names of
generated pods, MACs) is decided later, deterministically, by ``pktsim.model.cluster``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import TYPE_CHECKING, Any

from pktsim.model.timeline import SECOND, Change, ControlConfig

if TYPE_CHECKING:
    from pktsim.model.policy import NetworkPolicy


@dataclass(frozen=True, slots=True)
class Source:
    """Where an object came from, for error messages: ``file: document N (Kind ns/name)``.

    ``index`` is the 1-based position of the document in the file's YAML stream (empty
    documents count, so it matches the n-th ``---`` section).  ``items`` locates an object
    inside ``kind: List`` documents: 0-based positions in ``items``, outermost first, shown as
    ``document 2 items[4]`` (nested Lists: ``document 2 items[4].items[0]``).
    """

    file: str = "<string>"
    index: int = 0
    kind: str = ""
    name: str = ""
    items: tuple[int, ...] = ()

    def document(self) -> str:
        label = " ".join(part for part in (self.kind, self.name) if part)
        what = f" ({label})" if label else ""
        where = ".".join(f"items[{i}]" for i in self.items)
        return f"document {self.index}{' ' + where if where else ''}{what}"


@dataclass(slots=True)
class CalicoPool:
    """The one Calico IPPool pktsim models (``spec.calico`` or a ``kind: IPPool`` document):
    the fields of ``IPPoolSpec`` (calico ``api/pkg/apis/projectcalico/v3/ippool.go``) that
    shape the dataplane.  The defaults are those of Calico's manifest install
    (``CALICO_IPV4POOL_IPIP=Always``, VXLAN ``Never``, ``/26`` blocks, ``natOutgoing``);
    ``cidr`` ``None`` is the cluster ``podCIDR`` (``CALICO_IPV4POOL_CIDR``)."""

    cidr: IPv4Network | None = None
    block_size: int = 26
    ipip_mode: str = "Always"  # Always | CrossSubnet | Never
    vxlan_mode: str = "Never"  # Always | CrossSubnet | Never
    nat_outgoing: bool = True
    name: str = "default-ipv4-ippool"

    @property
    def encap(self) -> str:
        """``ipip``, ``vxlan`` or ``none``: which tunnel (if any) the pool's routes use."""
        if self.ipip_mode != "Never":
            return "ipip"
        return "vxlan" if self.vxlan_mode != "Never" else "none"

    @property
    def cross_subnet(self) -> bool:
        """Encapsulate only towards nodes on another subnet (``CrossSubnet``)."""
        return "CrossSubnet" in (self.ipip_mode, self.vxlan_mode)


@dataclass(slots=True)
class ClusterConfig:
    """``kind: Cluster`` (pktsim/v1alpha1); the defaults of docs/scenario.md §3."""

    cluster_domain: str = "cluster.local"
    pod_cidr: IPv4Network = IPv4Network("10.244.0.0/16")
    service_cidr: IPv4Network = IPv4Network("10.96.0.0/12")
    node_cidr: IPv4Network = IPv4Network("172.18.0.0/16")
    external_cidr: IPv4Network = IPv4Network("203.0.113.0/24")
    load_balancer_cidr: IPv4Network = IPv4Network("198.51.100.0/24")
    # spec.ipFamilies, the first the primary: what kind's networking.ipFamily (ipv4, ipv6,
    # dual) and kubeadm's "v4,v6" podSubnet say.  With IPv6, its ranges are kind's defaults
    # (SetDefaultsCluster, kind pkg/apis/config/v1alpha4/default.go) and the kind docker
    # network's IPv6 subnet (generateULASubnetFromName, kind
    # pkg/cluster/internal/providers/docker/network.go); pktsim.model.ipv6 cuts them up
    ip_families: tuple[str, ...] = ("IPv4",)
    pod_cidr6: IPv6Network = IPv6Network("fd00:10:244::/56")
    service_cidr6: IPv6Network = IPv6Network("fd00:10:96::/112")
    node_cidr6: IPv6Network = IPv6Network("fc00:f853:ccd:e793::/64")
    nodes: int = 2
    # Cluster.spec.zones: the topology.kubernetes.io/zone labels of the generated nodes
    # node-1 ... node-N, given out round robin (empty: no zone label)
    zones: list[str] = field(default_factory=list)
    # routes | vxlan | ipip (flannel) | calico (model.policy.enforces_policy: which enforce)
    network: str = "routes"
    calico: CalicoPool = field(default_factory=CalicoPool)  # read on network: calico
    bridge: str = "cbr0"
    hairpin_mode: bool = True
    proxy_mode: str = "iptables"
    dns: str = "coredns"
    upstream: dict[str, IPv4Address] = field(default_factory=dict)
    start_time_ns: int = 1767225600 * 10**9  # 2026-01-01T00:00:00Z
    seed: int = 0
    # spec.kubeProxy, spec.controllers, spec.kubelet: how fast the control loops react
    control: ControlConfig = field(default_factory=ControlConfig)
    source: Source | None = None

    @property
    def has_ipv4(self) -> bool:
        return "IPv4" in self.ip_families

    @property
    def has_ipv6(self) -> bool:
        """Whether nodes and pods get IPv6 addresses (dual-stack, or IPv6 only)."""
        return "IPv6" in self.ip_families

    @property
    def primary_family(self) -> str:
        """``IPv4`` or ``IPv6``: the family of ``status.podIP`` and of a Service's default."""
        return self.ip_families[0]


@dataclass(slots=True)
class ContainerPort:
    port: int
    protocol: str = "TCP"  # TCP | UDP
    name: str = ""
    host_port: int | None = None  # hostPort: the node's port the portmap plugin forwards
    host_ip: IPv4Address | None = None  # hostIP: only that node address (None: all)


@dataclass(slots=True)
class Container:
    name: str
    ports: list[ContainerPort] = field(default_factory=list)


@dataclass(slots=True)
class Node:
    name: str
    internal_ip: IPv4Address | None = None  # status.addresses[type=InternalIP]
    pod_cidr: IPv4Network | None = None  # spec.podCIDR
    labels: dict[str, str] = field(default_factory=dict)
    source: Source | None = None
    internal_ip6: IPv6Address | None = None  # the IPv6 InternalIP of status.addresses
    pod_cidr6: IPv6Network | None = None  # the IPv6 entry of spec.podCIDRs
    # the families spec.podCIDRs (else the InternalIPs) list, in their order: () when none
    # is given; the stream's families are inferred from it (pktsim.scenario.families)
    families: tuple[str, ...] = ()


@dataclass(slots=True)
class Pod:
    namespace: str
    name: str
    containers: list[Container]
    labels: dict[str, str] = field(default_factory=dict)
    node_name: str | None = None  # spec.nodeName
    pod_ip: IPv4Address | None = None  # status.podIP(s): the IPv4 one
    host_ip: IPv4Address | None = None  # status.hostIP(s): the IPv4 one
    pod_ip6: IPv6Address | None = None  # status.podIPs: the IPv6 one
    host_ip6: IPv6Address | None = None  # status.hostIPs: the IPv6 one
    # the families status.podIPs lists, in order (() when the status gives no address): a
    # pod whose status gives addresses has only those families (one made before the
    # cluster turned dual-stack keeps one), a pod without gets every family of the cluster
    families: tuple[str, ...] = ()
    ready: bool = True  # status.conditions[Ready] / readinessGates
    terminating: bool = False  # metadata.deletionTimestamp set (during a run: being deleted)
    host_network: bool = False
    hostname: str = ""
    subdomain: str = ""
    dns_policy: str = "ClusterFirst"
    dns_config: dict[str, object] = field(default_factory=dict)
    owner: str = ""  # "Deployment/web", "StatefulSet/db", ... when generated from a workload
    # spec.terminationGracePeriodSeconds: from deletion to SIGKILL (the API default is 30 s,
    # SetDefaults_PodSpec in kubernetes pkg/apis/core/v1/defaults.go)
    termination_grace_ns: int = 30 * SECOND
    source: Source | None = None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(slots=True)
class ServicePort:
    port: int
    protocol: str = "TCP"
    name: str = ""
    target_port: int | str | None = None  # None: same as port
    node_port: int | None = None


@dataclass(slots=True)
class Service:
    namespace: str
    name: str
    type: str = "ClusterIP"  # ClusterIP | NodePort | LoadBalancer | ExternalName
    cluster_ip: str | None = None  # an address, "None" (headless) or None (allocate)
    selector: dict[str, str] | None = None
    ports: list[ServicePort] = field(default_factory=list)
    external_name: str = ""
    external_ips: list[IPv4Address] = field(default_factory=list)
    load_balancer_ip: IPv4Address | None = None  # status.loadBalancer.ingress[0].ip
    load_balancer_ip6: IPv6Address | None = None  # the first IPv6 ingress ip
    external_traffic_policy: str = "Cluster"
    internal_traffic_policy: str = "Cluster"
    session_affinity: str = "None"
    session_affinity_timeout: int = 10800
    publish_not_ready_addresses: bool = False
    load_balancer_source_ranges: list[IPv4Network] = field(default_factory=list)
    health_check_node_port: int | None = None
    # spec.trafficDistribution: "" | PreferClose | PreferSameZone | PreferSameNode
    traffic_distribution: str = ""
    # the service.kubernetes.io/topology-mode annotation (or the deprecated
    # topology-aware-hints one) says Auto: the controller ignores trafficDistribution
    topology_auto: bool = False
    source: Source | None = None
    # spec.ipFamilies as written, else the families of spec.clusterIPs in their order (as the
    # API server defaults them: initIPFamilyFields, kubernetes
    # pkg/registry/core/service/storage/alloc.go); spec.ipFamilyPolicy ("" unset); the IPv6
    # entry of clusterIPs, kept but not served (kube-proxy's IPv6 rules are not modelled)
    ip_families: tuple[str, ...] = ()
    ip_family_policy: str = ""
    cluster_ip6: str | None = None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(slots=True)
class EndpointPort:
    port: int
    protocol: str = "TCP"
    name: str = ""


@dataclass(slots=True)
class Endpoint:
    addresses: list[IPv4Address]  # of an IPv4 slice
    ready: bool = True
    serving: bool = True
    terminating: bool = False
    hostname: str = ""
    node_name: str = ""
    target_pod: str = ""  # "ns/name"
    zone: str = ""
    for_zones: tuple[str, ...] = ()  # hints.forZones[].name
    for_nodes: tuple[str, ...] = ()  # hints.forNodes[].name
    addresses6: list[IPv6Address] = field(default_factory=list)  # of an IPv6 slice


@dataclass(slots=True)
class EndpointSlice:
    namespace: str
    name: str
    service: str  # kubernetes.io/service-name
    endpoints: list[Endpoint] = field(default_factory=list)
    ports: list[EndpointPort] = field(default_factory=list)
    source: Source | None = None
    address_type: str = "IPv4"  # IPv4 | IPv6 (FQDN slices are skipped by the reader)


@dataclass(slots=True)
class Flow:
    """One entry of a ``kind: Traffic`` document, as written (targets resolved later)."""

    name: str
    source_ref: str  # NAMESPACE/POD[/CONTAINER] | node:NAME | external[:NAME]
    target: str = ""  # docs/scenario.md §4 "Targets"; empty for a lookup
    protocol: str = "tcp"  # tcp | udp | icmp
    count: int = 1
    payload: bytes = b""
    start_ns: int = 0
    lookup: str = ""
    qtype: str = "A"
    ttl: int | None = None  # IP TTL of the packets the flow sends (None: the kernel's 64)
    # the gap between connections, datagrams or echo requests (None: the apps' own defaults)
    interval_ns: int | None = None
    # a lookup's resolver socket bound to this port for every lookup (None: a new
    # ephemeral port each time, as glibc)
    source_port: int | None = None
    source: Source | None = None
    path: str = ""  # where in its document: ``spec.flows[3]`` (errors name its fields so)
    frame: bytes | None = None  # an injected frame: these bytes arrive on ``interface``
    interface: str = ""  # HOST:IFNAME of the capture (``node-1:eth0``), for ``frame``
    # IPv4 | IPv6: which of a NAMESPACE/POD or node:NAME target's addresses ("": the
    # primary one, status.podIP)
    family: str = ""


@dataclass(slots=True)
class Scenario:
    """Everything one or more scenario files said, after validation, before allocation."""

    config: ClusterConfig = field(default_factory=ClusterConfig)
    namespaces: list[str] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)
    pods: list[Pod] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)
    endpoint_slices: list[EndpointSlice] = field(default_factory=list)
    network_policies: list[NetworkPolicy] = field(default_factory=list)  # validated, defaulted
    flows: list[Flow] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # labels of every namespace in ``namespaces`` (for NetworkPolicy namespaceSelectors),
    # including ``kubernetes.io/metadata.name``, which the API server sets on each namespace
    namespace_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    # the workloads of the stream (``scenario.workloads.Workload``), whose controllers act
    # on ``changes``; and the changes themselves (``spec.events``), in time order
    workloads: list[Any] = field(default_factory=list)
    # spec.events of the Traffic documents, sorted by at_ns (stably: file order breaks ties)
    changes: list[Change] = field(default_factory=list)
