"""Hypothesis strategies for Kubernetes networking: addresses, frames, clusters, flows.

In hypothesis' house style: plural names, keyword-only bounds validated up front with
``InvalidArgument``, and strategies (not values) as arguments where a choice is open::

    from hypothesis import given, strategies as st
    from pktsim import invariants
    from pktsim.strategies import clusters, flows

    @given(st.data())
    def test_every_flow_is_answered(data):
        cluster = data.draw(clusters(max_nodes=2))
        flow = data.draw(flows(cluster))
        invariants.check_all(cluster.run(flows=[flow]))

Packets: ``mac_addresses()``, ``ipv4_addresses()``, ``frames()`` (valid Ethernet frames built
with scapy, as ``bytes``), ``packets()`` (the same as scapy packets), ``malformed_frames()``.

Clusters: ``manifests()`` (a list of valid Kubernetes objects as dicts: nodes, namespaces,
pods, Deployments, StatefulSets, DaemonSets, Services of every type, readiness),
``clusters()`` (the same plus a ``kind: Cluster``, loaded into a ``pktsim.Cluster``),
``flows(cluster)`` / ``flow_lists(cluster)`` (Traffic flows between things that exist in that
cluster, which a correct cluster answers) and ``scenarios()`` (all of it as one YAML stream).
Everything generated loads and runs; clusters shrink towards one node and one pod.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from typing import Any

import dns.message
import dns.rdatatype
import yaml
from hypothesis import reject
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Packet, Raw

from pktsim.api import Cluster
from pktsim.model.objects import Flow

__all__ = [
    "FLOW_KINDS",
    "NETWORKS",
    "SERVICE_TYPES",
    "WORKLOAD_KINDS",
    "GeneratedCluster",
    "clusters",
    "flow_lists",
    "flows",
    "frames",
    "ipv4_addresses",
    "mac_addresses",
    "malformed_frames",
    "manifests",
    "packets",
    "scenarios",
]

PROTOCOLS = ("arp", "icmp", "udp", "tcp", "dns")


def mac_addresses(*, unicast: bool = True) -> st.SearchStrategy[str]:
    """MAC addresses as ``aa:bb:cc:dd:ee:ff``; ``unicast`` keeps the group bit clear."""
    if not isinstance(unicast, bool):
        raise InvalidArgument(f"unicast={unicast!r} must be a bool")

    def fmt(raw: bytes) -> str:
        first = raw[0] & 0xFE if unicast else raw[0]
        return ":".join(f"{b:02x}" for b in bytes([first]) + raw[1:])

    return st.binary(min_size=6, max_size=6).map(fmt)


def ipv4_addresses(*, network: str | IPv4Network = "0.0.0.0/0",
                   hosts_only: bool = False) -> st.SearchStrategy[str]:
    """Dotted-quad addresses within ``network`` (``hosts_only`` skips network/broadcast)."""
    try:
        net = IPv4Network(network)
    except ValueError as exc:
        raise InvalidArgument(f"network={network!r} is not an IPv4 network: {exc}") from None
    lo, hi = int(net.network_address), int(net.broadcast_address)
    if hosts_only and net.prefixlen < 31:
        lo, hi = lo + 1, hi - 1
    return st.integers(lo, hi).map(lambda i: str(IPv4Address(i)))


def _l4(protocol: str) -> st.SearchStrategy[Packet]:
    ports = st.integers(1, 65535)
    payload = st.binary(max_size=64).map(Raw)
    if protocol == "tcp":
        return st.builds(lambda s, d, seq, fl, p: TCP(sport=s, dport=d, seq=seq, flags=fl) / p,
                         ports, ports, st.integers(0, 2**32 - 1), st.sampled_from(
                             ["S", "SA", "A", "PA", "FA", "R", "RA"]), payload)
    if protocol == "udp":
        return st.builds(lambda s, d, p: UDP(sport=s, dport=d) / p,
                         ports.filter(lambda p: p not in (53, 8472)),
                         ports.filter(lambda p: p not in (53, 8472)), payload)
    if protocol == "dns":
        return st.builds(_dns_query, st.integers(0, 65535), st.sampled_from(
            ["web.default.svc.cluster.local.", "kubernetes.default.svc.cluster.local.",
             "example.com."]), st.sampled_from(["A", "AAAA", "SRV", "PTR", "TXT"]), ports)
    return st.builds(lambda i, s, p: ICMP(type=8, id=i, seq=s) / p,
                     st.integers(0, 65535), st.integers(0, 65535), payload)


def _dns_query(qid: int, name: str, qtype: str, sport: int) -> Packet:
    query = dns.message.make_query(name, dns.rdatatype.from_text(qtype))
    query.id = qid
    return UDP(sport=sport, dport=53) / Raw(query.to_wire())


def frames(*, protocols: tuple[str, ...] = PROTOCOLS,
           sources: st.SearchStrategy[str] | None = None,
           destinations: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[bytes]:
    """Valid Ethernet frames: ARP, or IPv4 carrying ICMP echo, UDP, TCP or a DNS query."""
    return packets(protocols=protocols, sources=sources, destinations=destinations).map(bytes)


def packets(*, protocols: tuple[str, ...] = PROTOCOLS,
            sources: st.SearchStrategy[str] | None = None,
            destinations: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[Packet]:
    """The scapy packets ``frames()`` serialises, for ``show()`` and field access."""
    unknown = set(protocols) - set(PROTOCOLS)
    if not protocols or unknown:
        raise InvalidArgument(f"protocols={protocols!r}: choose from {PROTOCOLS}")
    src_ips = sources if sources is not None else ipv4_addresses(network="10.244.0.0/16")
    dst_ips = destinations if destinations is not None else ipv4_addresses(
        network="10.244.0.0/16")
    for name, strategy in (("sources", src_ips), ("destinations", dst_ips)):
        if not isinstance(strategy, st.SearchStrategy):
            raise InvalidArgument(f"{name}={strategy!r} must be a strategy")

    def build(proto: str) -> st.SearchStrategy[Packet]:
        macs = mac_addresses()
        if proto == "arp":
            return st.builds(lambda sm, dm, si, di, op: Ether(src=sm, dst=dm if op == 2 else
                                                               "ff:ff:ff:ff:ff:ff")
                             / ARP(op=op, hwsrc=sm, psrc=si, hwdst=dm if op == 2 else
                                   "00:00:00:00:00:00", pdst=di),
                             macs, macs, src_ips, dst_ips, st.sampled_from([1, 2]))
        return st.builds(lambda sm, dm, si, di, ttl, l4: Ether(src=sm, dst=dm)
                         / IP(src=si, dst=di, ttl=ttl) / l4,
                         macs, macs, src_ips, dst_ips, st.integers(1, 255), _l4(proto))

    return st.sampled_from(protocols).flatmap(build)


def malformed_frames() -> st.SearchStrategy[bytes]:
    """Frames a device must drop with a reason, never crash on: random bytes, truncations,
    bad lengths and checksums, bogus header lengths, DNS compression loops, fragments,
    unknown ethertypes."""
    valid: st.SearchStrategy[bytes] = frames()
    return st.one_of(
        st.binary(max_size=128),
        st.tuples(valid, st.integers(0, 80)).map(lambda t: t[0][:t[1]]),
        st.tuples(valid, st.integers(14, 60), st.integers(0, 255)).map(_flip),
        st.tuples(valid, st.integers(0, 15)).map(lambda t: _ihl(t[0], t[1])),
        st.tuples(valid, st.integers(0, 65535)).map(lambda t: _total_len(t[0], t[1])),
        st.tuples(valid, st.integers(0, 0xFFFF)).map(lambda t: t[0][:12]
                                                     + t[1].to_bytes(2, "big") + t[0][14:]),
        valid.map(_fragment),
        st.just(_compression_loop()),
    )


def _flip(t: tuple[bytes, int, int]) -> bytes:
    data, at, value = t
    if at >= len(data):
        return data
    return data[:at] + bytes([data[at] ^ (value or 1)]) + data[at + 1:]


def _ihl(data: bytes, ihl: int) -> bytes:
    if len(data) < 15 or data[12:14] != b"\x08\x00":
        return data
    return data[:14] + bytes([0x40 | ihl]) + data[15:]


def _total_len(data: bytes, length: int) -> bytes:
    if len(data) < 18 or data[12:14] != b"\x08\x00":
        return data
    return data[:16] + length.to_bytes(2, "big") + data[18:]


def _fragment(data: bytes) -> bytes:
    if len(data) < 22 or data[12:14] != b"\x08\x00":
        return data
    return data[:20] + b"\x20\x00" + data[22:]  # MF set, offset 0 (checksum now wrong)


def _compression_loop() -> bytes:
    """A DNS query whose question name points at itself (a compression loop)."""
    dns_payload = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01"
    pkt = (Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
           / IP(src="10.244.0.2", dst="10.96.0.10") / UDP(sport=40000, dport=53)
           / Raw(dns_payload))
    return bytes(pkt)


# -- clusters -------------------------------------------------------------------------------

NETWORKS = ("routes", "vxlan", "ipip")
WORKLOAD_KINDS = ("Pod", "Deployment", "StatefulSet", "DaemonSet")
SERVICE_TYPES = ("ClusterIP", "Headless", "NodePort", "LoadBalancer", "ExternalName")
UPSTREAM = {"example.com": "203.0.113.10"}  # external/client: answers HTTP on 80 and 8080
# what a generated container may listen on: (port, protocol, name)
CONTAINER_PORTS = ((80, "TCP", "http"), (8080, "TCP", "http-alt"), (53, "UDP", "dns"),
                   (5432, "TCP", "pg"), (9999, "UDP", "echo"))
_BASES = ("web", "api", "db", "cache")
_ROLES = ("worker", "edge")
_MAX_NODES = 64
_MAX_PODS = 200

_NAMESPACES = st.sampled_from(("default", "shop"))
_KINDS = st.sampled_from(WORKLOAD_KINDS)
_SERVICE_TYPES = st.sampled_from(SERVICE_TYPES)
_READY = st.booleans().map(lambda flip: not flip)  # shrinks towards a ready pod
_NETWORK = st.sampled_from(NETWORKS)
_SEEDS = st.integers(0, 2**16 - 1)

Manifest = dict[str, Any]


def _check_strategy(name: str, value: object) -> None:
    if not isinstance(value, st.SearchStrategy):
        raise InvalidArgument(f"{name}={value!r} must be a strategy, e.g. st.just({value!r})")


def _check_range(lo_name: str, lo: object, hi_name: str, hi: object, *, least: int,
                 most: int) -> None:
    for name, value in ((lo_name, lo), (hi_name, hi)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidArgument(f"{name}={value!r} must be an integer")
    assert isinstance(lo, int) and isinstance(hi, int)
    if lo < least:
        raise InvalidArgument(f"{lo_name}={lo} must be at least {least}")
    if hi > most:
        raise InvalidArgument(f"{hi_name}={hi} must be at most {most}")
    if lo > hi:
        raise InvalidArgument(f"{lo_name}={lo} must not exceed {hi_name}={hi}")


def manifests(*, min_nodes: int = 1, max_nodes: int = 3, min_pods: int = 1, max_pods: int = 6,
              max_services: int = 3, namespaces: st.SearchStrategy[str] = _NAMESPACES,
              kinds: st.SearchStrategy[str] = _KINDS,
              service_types: st.SearchStrategy[str] = _SERVICE_TYPES,
              ready: st.SearchStrategy[bool] = _READY) -> st.SearchStrategy[list[Manifest]]:
    """Lists of valid Kubernetes objects, as the dicts ``yaml.safe_dump_all`` writes.

    ``Node`` objects ``node-1`` … (labelled ``role: worker|edge``), a ``Namespace`` for every
    namespace but ``default``, between ``min_pods`` and ``max_pods`` pods made by
    ``kinds`` of workload (``Pod``, ``Deployment``, ``StatefulSet``, ``DaemonSet`` — a
    DaemonSet counts a pod per node it selects), each listening on some of
    ``CONTAINER_PORTS``, ready or not as ``ready`` draws; and up to ``max_services`` Services
    of ``service_types`` (``ClusterIP``, ``Headless``, ``NodePort``, ``LoadBalancer``,
    ``ExternalName``), with selectors that match a workload, several, or none, numeric and
    named ``targetPort``s, fixed and allocated ``nodePort``s, ``externalTrafficPolicy``,
    ``sessionAffinity`` and ``publishNotReadyAddresses``.  Shrinks towards one node, one
    bare pod and no Service.
    """
    _check_range("min_nodes", min_nodes, "max_nodes", max_nodes, least=1, most=_MAX_NODES)
    _check_range("min_pods", min_pods, "max_pods", max_pods, least=0, most=_MAX_PODS)
    _check_range("max_services", 0, "max_services", max_services, least=0, most=50)
    for name, value in (("namespaces", namespaces), ("kinds", kinds),
                        ("service_types", service_types), ("ready", ready)):
        _check_strategy(name, value)
    roles = {n: st.lists(st.sampled_from(_ROLES), min_size=n, max_size=n)
             for n in range(min_nodes, max_nodes + 1)}
    return _manifests(st.integers(min_nodes, max_nodes), roles, max_pods,
                      st.lists(_plans(kinds, namespaces, ready, max_pods), max_size=max_pods),
                      min_pods,
                      st.lists(_service_plans(namespaces, service_types),
                               max_size=max_services))


_default_manifests = manifests  # ``clusters`` takes a ``manifests=`` argument


def _namespace_name(value: str) -> str:
    from pktsim.scenario.syntax import dns_label

    if not isinstance(value, str) or dns_label(value) is not None:
        raise InvalidArgument(f"namespaces drew {value!r}, which is not a DNS label")
    return value


def _plans(kinds: st.SearchStrategy[str], namespaces: st.SearchStrategy[str],
           ready: st.SearchStrategy[bool], max_pods: int) -> st.SearchStrategy[Manifest]:
    """One workload, drawn on its own so that shrinking deletes workloads cleanly."""

    def check(plan: Manifest) -> Manifest:
        if plan["kind"] not in WORKLOAD_KINDS:
            raise InvalidArgument(f"kinds drew {plan['kind']!r}: choose from {WORKLOAD_KINDS}")
        if not isinstance(plan["ready"], bool):
            raise InvalidArgument(f"ready drew {plan['ready']!r}, not a bool")
        plan["namespace"] = _namespace_name(plan["namespace"])
        return plan

    return st.fixed_dictionaries({
        "kind": kinds,
        "base": st.sampled_from(_BASES),
        "namespace": namespaces,
        "ports": st.lists(st.sampled_from(CONTAINER_PORTS), max_size=3,
                          unique_by=lambda p: (p[0], p[1])),
        "split": st.integers(0, 2),  # ports[:split] in the first container, the rest in a 2nd
        "ready": ready,
        "replicas": st.integers(1, max(1, max_pods)),
        "node": st.none() | st.integers(0, _MAX_NODES - 1),  # a bare pod's spec.nodeName
        "role": st.none() | st.sampled_from(_ROLES),  # a DaemonSet's nodeSelector
    }).map(check)


_SIMPLEST: Manifest = {"kind": "Pod", "base": _BASES[0], "namespace": "default", "ports": [],
                       "split": 0, "ready": True, "replicas": 1, "node": None, "role": None}
_PORT_NUMBERS = st.sampled_from([80, 443, 8000, 9000])
_SERVICE_PORT = st.fixed_dictionaries({
    "to_container": st.booleans(),
    "container": st.integers(0, 2),  # which of the selected workload's ports
    "how": st.sampled_from(["same", "number", "name"]),  # how targetPort names it
    "port": _PORT_NUMBERS,
    "protocol": st.sampled_from(["TCP", "UDP"]),
    "target": st.sampled_from([None, 80, 8080, 9999]),
    "node_port": st.none() | st.integers(30000, 32767),
})


def _service_plans(namespaces: st.SearchStrategy[str],
                   service_types: st.SearchStrategy[str]) -> st.SearchStrategy[Manifest]:
    def check(plan: Manifest) -> Manifest:
        if plan["type"] not in SERVICE_TYPES:
            raise InvalidArgument(f"service_types drew {plan['type']!r}: choose from "
                                  f"{SERVICE_TYPES}")
        plan["namespace"] = _namespace_name(plan["namespace"])
        return plan

    return st.fixed_dictionaries({
        "type": service_types,
        "base": st.sampled_from(_BASES),
        "namespace": namespaces,
        "selector": st.sampled_from(["app", "tier", "none", "nothing"]),
        "selects": st.integers(0, _MAX_PODS),  # which workload of its namespace
        "ports": st.lists(_SERVICE_PORT, max_size=2),
        "unnamed": st.booleans(),  # a single port may go without a name
        "local": st.booleans(),  # externalTrafficPolicy: Local
        "affinity": st.booleans(),  # sessionAffinity: ClientIP
        "publish": st.booleans(),  # publishNotReadyAddresses
        "external": st.integers(0, 50),  # ExternalName: 0 example.com, else an earlier Service
    }).map(check)


@st.composite
def _manifests(draw: st.DrawFn, node_counts: st.SearchStrategy[int],
               roles_of: dict[int, st.SearchStrategy[list[str]]], max_pods: int,
               plan_lists: st.SearchStrategy[list[Manifest]], min_pods: int,
               service_lists: st.SearchStrategy[list[Manifest]]) -> list[Manifest]:
    n_nodes = draw(node_counts, label="nodes")
    roles = draw(roles_of[n_nodes], label="roles")
    nodes = [{"apiVersion": "v1", "kind": "Node",
              "metadata": {"name": f"node-{i + 1}",
                           "labels": {"kubernetes.io/hostname": f"node-{i + 1}",
                                      "role": roles[i]}}} for i in range(n_nodes)]
    plans = draw(plan_lists, label="workloads")
    plans = plans + [_SIMPLEST] * (min_pods - len(plans))  # bare pods: lists shrink freely
    workloads: list[tuple[str, str, str, list[tuple[int, str, str]], Manifest]] = []
    total = 0
    for plan in plans:  # every plan makes at least one pod, until max_pods
        remaining = max_pods - total
        if remaining <= 0:
            break
        kind, role = plan["kind"], plan["role"] if plan["role"] in roles else None
        chosen = sum(1 for r in roles if role is None or r == role)
        if kind == "Pod" or (kind == "DaemonSet" and chosen > remaining):
            kind, chosen = "Pod", 1
        elif kind != "DaemonSet":
            chosen = min(plan["replicas"], remaining)
        name = f"{plan['base']}-{len(workloads)}"
        labels = {"app": name, "tier": plan["base"]}
        spec = _pod_spec(plan["ports"], plan["split"])
        if kind == "DaemonSet" and role is not None:
            spec["nodeSelector"] = {"role": role}
        node = None if plan["node"] is None else plan["node"] % n_nodes + 1
        doc = _workload(kind, name, plan["namespace"], labels, spec, chosen, plan["ready"],
                        node)
        workloads.append((plan["namespace"], name, plan["base"], plan["ports"], doc))
        total += chosen
    services = _services(draw(service_lists, label="services"), workloads)
    used = sorted({w[0] for w in workloads} | {s["metadata"]["namespace"] for s in services})
    namespace_docs = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
                      for ns in used if ns != "default"]
    return [*nodes, *namespace_docs, *(w[4] for w in workloads), *services]


def _pod_spec(ports: list[tuple[int, str, str]], split: int) -> Manifest:
    groups = [ports[:split], ports[split:]] if 0 < split < len(ports) else [ports]
    containers: list[Manifest] = []
    for i, group in enumerate(groups):
        container: Manifest = {"name": "app" if i == 0 else f"sidecar-{i}", "image": "nginx"}
        if group:
            container["ports"] = [{"containerPort": p, "protocol": proto, "name": pname}
                                  for p, proto, pname in group]
        containers.append(container)
    return {"containers": containers}


def _workload(kind: str, name: str, ns: str, labels: dict[str, str], spec: Manifest,
              replicas: int, ready: bool, node: int | None) -> Manifest:
    meta = {"name": name, "namespace": ns}
    if kind == "Pod":
        if node is not None:
            spec = {**spec, "nodeName": f"node-{node}"}
        doc: Manifest = {"apiVersion": "v1", "kind": "Pod",
                         "metadata": {**meta, "labels": labels}, "spec": spec}
        if not ready:
            doc["status"] = {"conditions": [{"type": "Ready", "status": "False"}]}
        return doc
    if not ready:  # a gate nobody sets: every replica stays not ready
        spec = {**spec, "readinessGates": [{"conditionType": "example.com/warm"}]}
    body: Manifest = {"selector": {"matchLabels": {"app": name}},
                      "template": {"metadata": {"labels": labels}, "spec": spec}}
    if kind in ("Deployment", "StatefulSet"):
        body["replicas"] = replicas
    if kind == "StatefulSet":
        body["serviceName"] = name
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": meta, "spec": body}


def _services(plans: list[Manifest],
              workloads: list[tuple[str, str, str, list[tuple[int, str, str]], Manifest]]) \
        -> list[Manifest]:
    out: list[Manifest] = []
    node_ports: set[int] = set()
    for index, plan in enumerate(plans):
        kind, ns = plan["type"], plan["namespace"]
        meta = {"name": f"{plan['base']}-svc-{index}", "namespace": ns}
        if kind == "ExternalName":
            targets = ["example.com", *(
                f"{s['metadata']['name']}.{s['metadata']['namespace']}.svc.cluster.local"
                for s in out if s["spec"].get("type") != "ExternalName")]
            out.append({"apiVersion": "v1", "kind": "Service", "metadata": meta,
                        "spec": {"type": "ExternalName",
                                 "externalName": targets[plan["external"] % len(targets)]}})
            continue
        mine = [w for w in workloads if w[0] == ns]
        choice = plan["selector"] if mine else ("nothing" if plan["selector"] == "nothing"
                                                 else "none")
        spec: Manifest = {}
        target_ports: list[tuple[int, str, str]] = []
        if choice in ("app", "tier"):
            w = mine[plan["selects"] % len(mine)]
            spec["selector"] = {"app": w[1]} if choice == "app" else {"tier": w[2]}
            target_ports = w[3]
        elif choice == "nothing":
            spec["selector"] = {"app": "nothing-here"}
        ports = _service_ports(plan["ports"], target_ports, headless=kind == "Headless")
        if len(ports) == 1 and plan["unnamed"]:
            del ports[0]["name"]
        if ports:
            spec["ports"] = ports
        if kind == "Headless":
            spec["clusterIP"] = "None"
        elif kind != "ClusterIP":
            spec["type"] = kind
            for port, port_plan in zip(ports, plan["ports"], strict=False):
                wanted = port_plan["node_port"]
                if wanted is not None and wanted not in node_ports:
                    node_ports.add(wanted)
                    port["nodePort"] = wanted
            if plan["local"]:
                spec["externalTrafficPolicy"] = "Local"
        if kind != "Headless" and plan["affinity"]:
            spec["sessionAffinity"] = "ClientIP"
        if plan["publish"]:
            spec["publishNotReadyAddresses"] = True
        out.append({"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec})
    return out


def _service_ports(plans: list[Manifest], targets: list[tuple[int, str, str]], *,
                   headless: bool) -> list[Manifest]:
    if not plans and not headless:  # a Service that is not headless needs a port
        plans = [{"to_container": True, "container": 0, "how": "same", "port": 80,
                  "protocol": "TCP", "target": None}]
    out: list[Manifest] = []
    taken: set[tuple[int, str]] = set()
    for i, plan in enumerate(plans):
        target: int | str | None
        if targets and plan["to_container"]:
            port, proto, pname = targets[plan["container"] % len(targets)]
            how = plan["how"]
            number = port if how == "same" else plan["port"]
            target = None if how == "same" else (port if how == "number" else pname)
        else:
            proto, number, target = plan["protocol"], plan["port"], plan["target"]
        if (number, proto) in taken:
            continue
        taken.add((number, proto))
        entry: Manifest = {"name": f"p{i}", "port": number, "protocol": proto}
        if target is not None:
            entry["targetPort"] = target
        out.append(entry)
    return out


class GeneratedCluster(Cluster):
    """A ``pktsim.Cluster`` loaded from generated YAML; ``yaml`` is that text, and the repr
    is the call that rebuilds it (what hypothesis prints for a falsifying example)."""

    yaml: str = ""

    def __repr__(self) -> str:
        return f"pktsim.load({self.yaml!r})"


def _cluster_doc(network: str, seed: int) -> Manifest:
    return {"apiVersion": "pktsim/v1alpha1", "kind": "Cluster",
            "spec": {"network": network, "seed": seed, "upstream": dict(UPSTREAM)}}


def _dump(docs: list[Manifest]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=None, width=100)


def _load(text: str) -> GeneratedCluster:
    from pktsim.scenario import load_scenario

    cluster = GeneratedCluster(load_scenario([("<generated>", text)]))
    cluster.yaml = text
    return cluster


def clusters(*, min_nodes: int = 1, max_nodes: int = 3, min_pods: int = 1, max_pods: int = 6,
             max_services: int = 3, network: st.SearchStrategy[str] = _NETWORK,
             seeds: st.SearchStrategy[int] = _SEEDS,
             manifests: st.SearchStrategy[list[Manifest]] | None = None) \
        -> st.SearchStrategy[GeneratedCluster]:
    """Loaded ``pktsim.Cluster``\\ s: ``manifests(...)`` plus a ``kind: Cluster`` with a
    ``network`` (``routes``, ``vxlan``, ``ipip``), a seed, and ``example.com`` known upstream
    (it is ``external/client``).  Pass ``manifests=`` to use your own object lists (the node
    and pod bounds then apply to the default ``manifests()`` only).  Shrinks towards one
    node, one pod, ``routes`` and seed 0.
    """
    _check_strategy("network", network)
    _check_strategy("seeds", seeds)
    if manifests is None:
        objects = _default_manifests(min_nodes=min_nodes, max_nodes=max_nodes,
                                     min_pods=min_pods, max_pods=max_pods,
                                     max_services=max_services)
    else:
        _check_strategy("manifests", manifests)
        objects = manifests

    def build(parts: tuple[list[Manifest], str, int]) -> GeneratedCluster:
        docs, net, seed = parts
        if net not in NETWORKS:
            raise InvalidArgument(f"network drew {net!r}: choose from {NETWORKS}")
        if not isinstance(seed, int) or not 0 <= seed < 2**63:
            raise InvalidArgument(f"seeds drew {seed!r}, not a non-negative integer")
        return _load(_dump([_cluster_doc(net, seed), *docs]))

    return st.tuples(objects, network, seeds).map(build)


# -- flows ----------------------------------------------------------------------------------

FLOW_KINDS = ("pod-to-pod", "pod-to-service", "pod-to-service-name", "pod-to-external",
              "node-to-pod", "node-to-service", "node-to-external", "external-to-nodeport",
              "external-to-loadbalancer", "lookup")


def _listens(model: Any, pod_key: str, port: int, proto: str) -> bool:
    """Does the pod (or, for ``default/kubernetes``, the API server) serve ``port``?"""
    info = model.pods.get(pod_key)
    if info is None:
        return False
    if info.pod.namespace == "kube-system" and port == 53:
        return False  # CoreDNS speaks DNS there, not echo
    return any(cp.port == port and cp.protocol == proto
               for c in info.pod.containers for cp in c.ports)


def _usable(svc: Any, port: Any, node: str | None, local: bool) -> list[Any]:
    """The endpoints kube-proxy may pick for a connection (``local``: only ``node``'s)."""
    eps = [ep for ep in port.endpoints
           if ep.ready or svc.service.publish_not_ready_addresses]
    return [ep for ep in eps if ep.node == node] if local else eps


def _answered(model: Any, svc: Any, port: Any, eps: list[Any]) -> bool:
    """Would every endpoint kube-proxy may pick answer on ``port``?"""
    if not eps:
        return False
    proto = port.protocol
    if svc.key == "default/kubernetes":
        return proto == "TCP"
    return all(_listens(model, ep.pod, ep.port, proto) for ep in eps)


def _service_addrs(model: Any, svc: Any) -> list[tuple[str, str]]:
    """(pod key, IP) of the addresses a headless Service's name resolves to (ready ones)."""
    spec = svc.service
    seen: dict[str, str] = {}
    for port in svc.ports:
        for ep in port.endpoints:
            if ep.ready or spec.publish_not_ready_addresses:
                seen.setdefault(str(ep.ip), ep.pod)
    if not svc.ports and spec.selector:
        for info in model.pods.values():
            if info.pod.namespace == spec.namespace and (
                    info.pod.ready or spec.publish_not_ready_addresses) and all(
                    info.pod.labels.get(k) == v for k, v in spec.selector.items()):
                seen.setdefault(str(info.ip), info.key)
    return [(pod, ip) for ip, pod in seen.items()]


def _names(svc: Any, from_ns: str | None, domain: str) -> list[str]:
    name, ns = svc.service.name, svc.service.namespace
    out = [f"{name}.{ns}", f"{name}.{ns}.svc", f"{name}.{ns}.svc.{domain}"]
    return [name, *out] if from_ns == ns else out


def _connect(host: str, port: int, proto: str) -> list[Manifest]:
    """The ways to reach ``host:port`` over ``proto`` as flow targets."""
    if proto == "UDP":
        return [{"to": f"{host}:{port}", "protocol": "udp"}]
    url = f"http://{host}/" if port == 80 else f"http://{host}:{port}/"
    return [{"to": url}, {"to": f"{host}:{port}", "protocol": "tcp"}]


def _resolves_to(model: Any, svc: Any, upstream: dict[str, Any], domain: str) \
        -> list[tuple[int, str]] | None:
    """For a name lookup: the (port, protocol)s every address behind the name answers on;
    None when the name has no address."""
    spec = svc.service
    if spec.type == "ExternalName":
        target = spec.external_name.rstrip(".").lower()
        if target in upstream:
            return [(80, "TCP"), (8080, "TCP")]
        for other in model.services.values():
            if target == f"{other.service.name}.{other.service.namespace}.svc.{domain}" and \
                    other.service.type != "ExternalName":
                return _resolves_to(model, other, upstream, domain)
        return None
    if svc.cluster_ip is not None:
        return [(p.spec.port, p.protocol) for p in svc.ports
                if _answered(model, svc, p, _usable(svc, p, None, False))]
    addrs = _service_addrs(model, svc)
    if not addrs:
        return None
    common: set[tuple[int, str]] | None = None
    for pod, _ in addrs:
        info = model.pods.get(pod)
        served = {(cp.port, cp.protocol) for c in info.pod.containers for cp in c.ports} \
            if info is not None else set()
        served = {(p, proto) for p, proto in served
                  if _listens(model, pod, p, proto)}
        common = served if common is None else common & served
    return sorted(common or ())


def _flow_candidates(cluster: Cluster, missing_names: bool) -> dict[str, list[Manifest]]:
    """Every flow of each kind that a correct cluster answers (before count/payload/start)."""
    model = cluster.model
    cfg = model.config
    domain = cfg.cluster_domain.rstrip(".")
    upstream = {name.rstrip(".").lower(): ip for name, ip in cfg.upstream.items()}
    out: dict[str, list[Manifest]] = {kind: [] for kind in FLOW_KINDS}
    pods = sorted((p for p in model.pods.values() if not p.pod.host_network),
                  key=lambda p: p.key)
    sources = [p for p in pods if p.pod.namespace != "kube-system"
               and p.pod.dns_policy == "ClusterFirst"]
    nodes = [n.name for n in model.node_list()]
    services = [s for s in model.services.values() if s.key != "kube-system/kube-dns"]
    client = cfg.external_cidr.network_address + 10  # external/client
    web = [name for name, ip in upstream.items() if IPv4Address(ip) == client]
    for dst in pods:
        targets: list[Manifest] = [{"to": dst.key, "protocol": "icmp"}]
        for c in dst.pod.containers:
            for cp in c.ports:
                if _listens(model, dst.key, cp.port, cp.protocol):
                    targets += _connect(str(dst.ip), cp.port, cp.protocol)
                    if cp.protocol == "TCP":
                        targets.append({"to": f"{dst.key}:{cp.port}", "protocol": "tcp"})
        out["pod-to-pod"] += [{"from": src.key, **t} for src in sources for t in targets]
        out["node-to-pod"] += [{"from": f"node:{n}", **t} for n in nodes for t in targets]
    for src in sources:
        for host in [*web, str(client)]:
            out["pod-to-external"] += _with(src.key, _connect(host, 80, "TCP"))
    for n in nodes:
        out["node-to-external"] += _with(f"node:{n}", _connect(str(client), 8080, "TCP"))
    for svc in services:
        spec = svc.service
        vip = svc.cluster_ip
        for port in svc.ports if vip is not None else []:
            number, proto = port.spec.port, port.protocol
            local_internal = spec.internal_traffic_policy == "Local"
            for src in sources:
                eps = _usable(svc, port, src.node, local_internal)
                if _answered(model, svc, port, eps):
                    out["pod-to-service"] += _with(src.key, _connect(str(vip), number, proto))
            if not local_internal and _answered(model, svc, port, _usable(svc, port, None,
                                                                          False)):
                out["node-to-service"] += [{"from": f"node:{n}", **t} for n in nodes
                                           for t in _connect(str(vip), number, proto)]
            if port.node_port is None or spec.type not in ("NodePort", "LoadBalancer"):
                continue
            local = spec.external_traffic_policy == "Local"
            for info in model.node_list():
                if _answered(model, svc, port, _usable(svc, port, info.name, local)):
                    out["external-to-nodeport"] += _with(
                        "external", _connect(str(info.ip), port.node_port, proto))
            first = model.node_list()[0].name
            if svc.load_balancer_ip is not None and _answered(
                    model, svc, port, _usable(svc, port, first, local)):
                out["external-to-loadbalancer"] += _with(
                    "external", _connect(str(svc.load_balancer_ip), number, proto))
        reached = _resolves_to(model, svc, upstream, domain)
        if reached is None:
            continue
        for src in sources:
            names = _names(svc, src.pod.namespace, domain)
            for name in names:
                out["lookup"] += [{"from": src.key, "lookup": name},
                                  {"from": src.key, "lookup": name, "protocol": "tcp"}]
                for number, proto in reached:
                    out["pod-to-service-name"] += _with(src.key, _connect(name, number, proto))
            if svc.cluster_ip is not None:
                for port in svc.ports:
                    if port.name:
                        srv = (f"_{port.name}._{port.protocol.lower()}.{spec.name}."
                               f"{spec.namespace}.svc.{domain}.")
                        out["lookup"].append({"from": src.key, "lookup": srv, "type": "SRV"})
    for src in sources:
        out["lookup"] += [{"from": src.key, "lookup": name} for name in upstream]
        if missing_names:
            out["lookup"] += [{"from": src.key, "lookup": "no-such-service"},
                              {"from": src.key,
                               "lookup": f"no-such-service.{src.pod.namespace}.svc.{domain}."},
                              {"from": src.key, "lookup": "no-such-host.example.org."}]
    return out


def _with(source: str, targets: list[Manifest]) -> list[Manifest]:
    return [{"from": source, **t} for t in targets]


_COUNTS = st.integers(1, 3)
_PAYLOADS = {"udp": st.sampled_from([None, 1, 100, 1000]),
             "icmp": st.sampled_from([None, 8, 1000]),
             "tcp": st.sampled_from([None, 1, 100, 1400, 3000])}
_STARTS = st.sampled_from([0, 1, 20, 1000])


def _finish(draw: st.DrawFn, kind: str, base: Manifest) -> Manifest:
    """A candidate flow with a name, a count, a payload and a start time drawn."""
    flow: Manifest = {"name": kind, **base}
    if "lookup" not in flow:
        proto = flow.get("protocol", "tcp")
        flow["count"] = draw(_COUNTS, label="count")
        payload = None if "://" in flow["to"] else draw(_PAYLOADS[proto], label="payload")
        if payload is not None:
            flow["payload"] = payload
    start = draw(_STARTS, label="start (ms)")
    if start:
        flow["start"] = start
    return flow


def _check_kinds(kinds: tuple[str, ...]) -> None:
    if isinstance(kinds, str) or not kinds or set(kinds) - set(FLOW_KINDS):
        raise InvalidArgument(f"kinds={kinds!r}: a tuple of some of {FLOW_KINDS}")


def _flow_dicts(cluster: Cluster, kinds: tuple[str, ...],
                missing_names: bool) -> st.SearchStrategy[Manifest]:
    if not isinstance(cluster, Cluster):
        raise InvalidArgument(f"cluster={cluster!r} must be a pktsim.Cluster (draw one from "
                              "clusters() first)")
    _check_kinds(kinds)
    candidates = _flow_candidates(cluster, missing_names)
    available = [k for k in FLOW_KINDS if k in kinds and candidates[k]]
    if not available:
        raise InvalidArgument(f"this cluster has no flow of kinds {kinds!r}")

    kinds_st = st.sampled_from(available)
    of_kind = {k: st.sampled_from(candidates[k]) for k in available}

    @st.composite
    def one(draw: st.DrawFn) -> Manifest:
        kind = draw(kinds_st, label="kind")
        return _finish(draw, kind, draw(of_kind[kind], label="flow"))

    return one()


def _parse_flows(entries: list[Manifest]) -> list[Flow]:
    from pktsim.scenario import load_scenario

    text = _dump([{"apiVersion": "pktsim/v1alpha1", "kind": "Traffic",
                   "spec": {"flows": entries}}])
    return load_scenario([("<generated flows>", text)]).flows


def flows(cluster: Cluster, *, kinds: tuple[str, ...] = FLOW_KINDS,
          missing_names: bool = False) -> st.SearchStrategy[Flow]:
    """A ``Flow`` (a ``kind: Traffic`` entry, as the loader reads it) between things that
    exist in ``cluster``, which a correct cluster answers: pod to pod (ICMP, TCP, HTTP, UDP on
    declared ports), pod to a Service's ClusterIP or by DNS name (every form the search list
    resolves; headless and ExternalName too), pod and node to the outside, node to pod and
    Service, external client to a NodePort (on a node with a local endpoint when
    ``externalTrafficPolicy: Local``) and to a LoadBalancer IP, and DNS lookups (A, SRV; over
    UDP and TCP).  ``kinds`` limits the kinds (``FLOW_KINDS``); ``missing_names`` adds
    lookups of names that do not exist (answered NXDOMAIN, so not ``ok``).

    Its ``name`` is its kind; use ``flow_lists`` for several flows with distinct names.
    """
    if not isinstance(missing_names, bool):
        raise InvalidArgument(f"missing_names={missing_names!r} must be a bool")
    return _flow_dicts(cluster, kinds, missing_names).map(lambda f: _parse_flows([f])[0])


def flow_lists(cluster: Cluster, *, min_size: int = 1, max_size: int = 4,
               kinds: tuple[str, ...] = FLOW_KINDS,
               missing_names: bool = False) -> st.SearchStrategy[list[Flow]]:
    """Lists of ``flows(cluster)`` named ``1-pod-to-pod``, ``2-lookup``, … (distinct)."""
    _check_range("min_size", min_size, "max_size", max_size, least=0, most=1000)
    if not isinstance(missing_names, bool):
        raise InvalidArgument(f"missing_names={missing_names!r} must be a bool")
    return st.lists(_flow_dicts(cluster, kinds, missing_names), min_size=min_size,
                    max_size=max_size).map(_numbered).map(_parse_flows)


def _numbered(entries: list[Manifest]) -> list[Manifest]:
    return [{**e, "name": f"{i + 1}-{e['name']}"} for i, e in enumerate(entries)]


def scenarios(*, min_nodes: int = 1, max_nodes: int = 3, min_pods: int = 1, max_pods: int = 6,
              max_services: int = 3, min_flows: int = 1, max_flows: int = 4,
              network: st.SearchStrategy[str] = _NETWORK,
              seeds: st.SearchStrategy[int] = _SEEDS,
              kinds: tuple[str, ...] = FLOW_KINDS) -> st.SearchStrategy[str]:
    """Whole scenario files as YAML text: a ``clusters(...)`` cluster and a ``kind: Traffic``
    of ``flow_lists(...)`` flows, for ``pktsim.load(text).run()`` or ``pktsim run``."""
    _check_range("min_flows", min_flows, "max_flows", max_flows, least=0, most=1000)
    _check_kinds(kinds)
    made = clusters(min_nodes=min_nodes, max_nodes=max_nodes, min_pods=min_pods,
                    max_pods=max_pods, max_services=max_services, network=network, seeds=seeds)

    @st.composite
    def one(draw: st.DrawFn) -> str:
        cluster = draw(made)
        if max_flows == 0:
            return cluster.yaml
        try:
            one_flow = _flow_dicts(cluster, kinds, False)
        except InvalidArgument:  # no flow of these kinds in this cluster: try another
            reject()
        entries = draw(st.lists(one_flow, min_size=min_flows, max_size=max_flows),
                       label="flows")
        if not entries:
            return cluster.yaml
        traffic = {"apiVersion": "pktsim/v1alpha1", "kind": "Traffic",
                   "metadata": {"name": "generated"}, "spec": {"flows": _numbered(entries)}}
        return cluster.yaml + "---\n" + _dump([traffic])

    return one()
