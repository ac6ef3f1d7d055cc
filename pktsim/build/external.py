"""The world outside the cluster: a router and external clients (docs/scenario.md §5).

The router sits on the node network at ``nodeCIDR`` ``.1`` (as Docker's bridge gateway does
for kind nodes; in a dual-stack cluster also at the IPv6 ``nodeCIDR``'s ``::1``, IPv6 routing
nowhere else) and on the external network at ``externalCIDR`` ``.1``.  Nodes use it as their
default route.  It routes ``loadBalancerCIDR`` to the nodes (towards the first node, as a
MetalLB-style speaker would announce it) and knows nothing of pod or service addresses:
pods reach it only masqueraded to their node's IP.  External clients live on the external
network from ``.10`` on (``external`` is ``external/client``; ``external:NAME`` is
``external/NAME``); they answer ping, and HTTP on 80 and 8080.

The LoadBalancer is a cloud L4 balancer that health-checks each node's
``healthCheckNodePort`` (the GCE/AWS NLB model: kubernetes ``pkg/proxy/healthcheck`` is what
they probe): a Service with ``externalTrafficPolicy: Local`` goes to the first node, in node
order, whose health check answers 200 (one with a ready endpoint: ``healthy_backends``), so
that Local works wherever its pods are; every other LoadBalancer address goes to the first
node, which every health check of kube-proxy's ``:10256/healthz`` finds healthy.  The probes
themselves are not sent as packets: their answer is known when the cluster is built.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv6Interface
from typing import TYPE_CHECKING

from pktsim.build.start import starter
from pktsim.core.capture import Interface
from pktsim.devices.apps import TcpServerApp
from pktsim.devices.bridge import Bridge
from pktsim.devices.dnsapps import UpstreamDnsApp
from pktsim.devices.netns import Netns
from pktsim.dns import UpstreamResolver
from pktsim.wire.parse import mac_str

if TYPE_CHECKING:
    from pktsim.build.topology import Topology
    from pktsim.model.cluster import ClusterModel


LATENCY = 50_000  # 50 µs to the outside
CLIENT_PORTS = (80, 8080)
RESOLVER_HOST = 53  # the upstream resolver: externalCIDR .53 (host external/resolver)


def client_names(topo: Topology) -> list[str]:
    """``external/client`` first, then every ``external:NAME`` the flows mention."""
    names = ["client"]
    for flow in topo.model.scenario.flows:
        for ref in (flow.source_ref, flow.target):
            if ref.startswith("external:"):
                name = ref[len("external:"):].split(":")[0]
                if name and not name.isdigit() and name not in names:
                    names.append(name)
    return names


def healthy_backends(model: ClusterModel) -> list[tuple[IPv4Address, IPv4Address]]:
    """(LoadBalancer IP, node IP) for each Local-policy Service with a node whose health
    check passes: the first node, in node order, with a ready endpoint of the Service."""
    out = []
    nodes = model.node_list()
    for info in model.services.values():
        svc = info.service
        if svc.type != "LoadBalancer" or svc.external_traffic_policy != "Local" or \
                info.load_balancer_ip is None:
            continue
        ready = {ep.node for p in info.ports for ep in p.endpoints if ep.ready}
        node = next((n for n in nodes if n.name in ready), None)
        if node is not None:
            out.append((info.load_balancer_ip, node.ip))
    return out


def build_external(topo: Topology) -> None:
    cfg, driver, streams = topo.model.config, topo.driver, topo.streams
    router = Netns("external", forwarding=True, rng=streams.stream("netns/external"),
                   new_pid=driver.new_pid)
    router.add_iface("lo", b"\x00" * 6, mtu=65536, kind="loopback")
    node_side = cfg.node_cidr.network_address + 1
    ext_side = cfg.external_cidr.network_address + 1
    for dev, addr, net in (("eth0", node_side, cfg.node_cidr), ("eth1", ext_side,
                                                                 cfg.external_cidr)):
        mac = b"\x02\x42" + addr.packed if dev == "eth0" else streams.mac(f"external/{dev}")
        router.add_iface(dev, mac)
        router.add_addr(dev, IPv4Interface(f"{addr}/{net.prefixlen}"))
    if cfg.has_ipv6:  # the docker network's IPv6 gateway: the nodes' default route
        router.enable_ipv6()
        router.add_addr6("eth0", IPv6Interface((cfg.node_cidr6.network_address + 1,
                                                cfg.node_cidr6.prefixlen)))
    first = topo.model.node_list()[0]
    router.add_route(cfg.load_balancer_cidr, "eth0", first.ip)
    for vip, node_ip in healthy_backends(topo.model):
        router.add_route(f"{vip}/32", "eth0", node_ip)
    topo.router = router
    assert topo.switch is not None
    topo.switch.add_port("router")
    eth0 = driver.add_interface(Interface("external", "eth0", description=f"router {node_side} "
                                          "on the node network (the nodes' default gateway)"))
    driver.connect(router, "eth0", eth0, topo.switch, "router", None, latency=LATENCY)
    outside = Bridge("external", "internet", b"\x02\x00\x00\x00\x00\x02", local=False)
    topo.outside = outside
    outside.add_port("router")
    eth1 = driver.add_interface(Interface("external", "eth1", description=f"router {ext_side} "
                                          "on the external network"))
    driver.connect(router, "eth1", eth1, outside, "router", None, latency=LATENCY)
    for index, name in enumerate(client_names(topo)):
        offset = 10 + index + (1 if 10 + index >= RESOLVER_HOST else 0)
        _client(topo, name, cfg.external_cidr.network_address + offset, ext_side)
    resolver = _client(topo, "resolver", cfg.external_cidr.network_address + RESOLVER_HOST,
                       ext_side, serve=False)
    upstream = UpstreamResolver({name: ip for name, ip in cfg.upstream.items()})
    driver.call(0, resolver, starter(resolver, UpstreamDnsApp(upstream)))


def _client(topo: Topology, name: str, ip: IPv4Address, gateway: IPv4Address, *,
            serve: bool = True) -> Netns:
    cfg, driver, streams = topo.model.config, topo.driver, topo.streams
    host = f"external/{name}"
    ns = Netns(host, rng=streams.stream(f"netns/{host}"), new_pid=driver.new_pid)
    ns.add_iface("lo", b"\x00" * 6, mtu=65536, kind="loopback")
    mac = streams.mac(f"{host}/eth0")
    ns.add_iface("eth0", mac)
    ns.add_addr("eth0", IPv4Interface(f"{ip}/{cfg.external_cidr.prefixlen}"))
    ns.add_route("0.0.0.0/0", "eth0", gateway)
    topo.clients[host] = ns
    assert topo.outside is not None
    topo.outside.add_port(host)
    driver.loopback(ns, "lo", driver.add_interface(Interface(host, "lo")))
    eth0 = driver.add_interface(Interface(host, "eth0", description=f"external client {name} "
                                          f"{ip} {mac_str(mac)}"))
    driver.connect(ns, "eth0", eth0, topo.outside, host, None, latency=LATENCY)
    if serve:
        for port in CLIENT_PORTS:
            driver.call(0, ns, starter(ns, TcpServerApp(port, f"{host} ({ip}:{port})")))
    return ns
