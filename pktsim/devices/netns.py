"""A network namespace: interfaces, ARP, IPv4 input/forward/output, ICMP, and L4 demux.

Theory of operation
-------------------
This is the part of the Linux stack a pod sandbox or a node's root namespace runs:

* ``receive`` is the driver's entry: Ethernet in (``eth_type_trans``: frames for another MAC
  are ``PACKET_OTHERHOST`` and dropped), ARP to ``arp.arp_in``, IPv4 to ``_ip_in``, IPv6 to
  ``pktsim.devices.ipv6`` (which has its own input, forwarding, output and Neighbor
  Discovery); the entry points the transport calls (``ip_output``, ``source_for``,
  ``icmp_error``) hand IPv6 packets and addresses there too.
* ``_ip_in`` validates the header (``ip_rcv_core``), then routes: a local address is delivered
  (``ip_local_deliver``) to ICMP, UDP or TCP; anything else is forwarded when ``forwarding``
  is on (the node) — TTL checked and decremented, a route looked up, ICMP errors sent as
  ``icmp_send`` would — and dropped otherwise (the pod).
* ``ip_output`` picks the route and source address, then ``_l3_out`` resolves the next hop
  through the neighbour table (queueing while ARP runs) and puts the frame on the link; ``lo``
  needs no ARP and carries all-zero MACs.
* Netfilter hooks (``hooks``) are called at PREROUTING, INPUT, FORWARD, OUTPUT and
  POSTROUTING; without a hook object the namespace behaves as a plain host.  IPv6 packets
  have hooks of their own (``hooks6``: ip6tables, called by ``pktsim.devices.ipv6``).

The transport layer (sockets, TCP connections, the applications) lives in
``pktsim.devices.l4``; this module only moves IPv4 packets, and offers the transport the few
operations of ``l4.IpStack`` (``source_for``, ``ip_output``, ``ip_id``, ``new_pid``,
``icmp_error``, ``tunnel_socket``, ``rng``).
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Iterator
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Interface, IPv6Network
from typing import TYPE_CHECKING, Protocol

from pktsim.core.events import Event
from pktsim.core.frame import DropReason, Frame, Reaction
from pktsim.devices import arp, ipv6, ndisc
from pktsim.devices.ifaces import IfConfig, ipv4_problem, pid_counter
from pktsim.devices.neigh import (
    RETRANS_NS,
    UNRES_QLEN,
    NeighTable,
)
from pktsim.devices.outcome import FlowStatus, SocketError
from pktsim.devices.routes import Route, RoutingTable
from pktsim.wire import build, ip6
from pktsim.wire.build import ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, PROTO_ICMP, ZERO_MAC
from pktsim.wire.checksum import checksum, update16
from pktsim.wire.parse import ip_str

if TYPE_CHECKING:
    from pktsim.devices.l4 import Transport

_IPH = struct.Struct("!BBHHHBBH4s4s")
LOOPBACK_NET = IPv4Network("127.0.0.0/8")
LOOPBACK_ADDR = IPv4Interface("127.0.0.1/8")  # every lo's address (immutable, so shared)
ICMP_ROOM = 576 - 20 - 8  # icmp_send(): the quoted original fits a 576-byte datagram


class Hooks(Protocol):
    """Netfilter as seen by the stack: each hook may rewrite the packet or drop it."""

    def hook(self, name: str, now: int, pkt: bytes, in_dev: str, out_dev: str, frame: Frame,
             r: Reaction) -> bytes | None: ...


class Netns:
    """A namespace; ``forwarding`` is ``net.ipv4.ip_forward`` (on for nodes, off for pods)."""

    def __init__(self, host: str, *, forwarding: bool = False, rng: random.Random | None = None,
                 new_pid: Callable[[], int] | None = None,
                 rng_factory: Callable[[], random.Random] | None = None) -> None:
        self.host = host
        self.name = host
        self.forwarding = forwarding
        # the namespace's random stream, made on first use (``rng_factory``): most of a big
        # cluster's 150,000 pods never draw, and a seeded stream costs ~10 µs and 2.5 kB
        self._rng = rng
        self._rng_factory = rng_factory
        self.ifaces: dict[str, IfConfig] = {}
        self.routes = RoutingTable()
        self.routes6 = RoutingTable()  # the IPv6 main table (empty without IPv6)
        self._flow_secret: int | None = None  # the auto flow label hash's key, drawn once
        self.neigh = NeighTable(host)
        self.hooks: Hooks | None = None
        self.hooks6: Hooks | None = None  # ip6tables (``netfilter.hooks6``), nodes with IPv6
        # "ipip" / "udp/8472" -> the port of the tunnel device's socket in this namespace
        self.tunnel_stack: dict[str, str] = {}
        self._local: dict[bytes, str] = {}
        self._ip_ids: dict[bytes, int] = {}
        self._pid_counter = new_pid or pid_counter()
        from pktsim.devices.l4 import Transport

        # the transport holds this namespace only as its IpStack (l4 never imports netns)
        self.l4: Transport = Transport(self)

    @property
    def rng(self) -> random.Random:
        rng = self._rng
        if rng is None:
            factory = self._rng_factory
            rng = self._rng = factory() if factory is not None else random.Random(0)
        return rng

    @rng.setter
    def rng(self, value: random.Random) -> None:
        self._rng = value

    # -- configuration (what kubelet, the CNI plugin and flanneld do) ---------------------
    def add_iface(self, name: str, mac: bytes, *, mtu: int = 1500, kind: str = "ether") -> IfConfig:
        cfg = IfConfig(name, mac, mtu, kind=kind)
        self.ifaces[name] = cfg
        if kind == "loopback":
            self.add_addr(name, LOOPBACK_ADDR)
        return cfg

    def add_addr(self, dev: str, addr: IPv4Interface, *, connected_route: bool = True) -> None:
        self.ifaces[dev].addrs.append(addr)
        ip = addr.ip
        self._local[ip.packed] = dev
        if connected_route and addr.network.prefixlen < 32 and dev != "lo":
            self.routes.add(Route(addr.network, dev, src=ip, proto="kernel", scope="link"))

    def add_addr6(self, dev: str, addr: IPv6Interface, *, connected_route: bool = True) -> None:
        """An IPv6 address (``addrconf``: in ``ip -6 addr`` order, by scope), and its prefix
        route, metric 256 (``addrconf_prefix_route``; ``fe80::/64`` for a link-local)."""
        cfg = self.ifaces[dev]
        # ipv6_link_dev_addr: the list is kept by scope, wider first, newest first within
        mine = ip6.scope(addr.ip.packed)
        at = next((i for i, a in enumerate(cfg.addrs6) if ip6.scope(a.ip.packed) <= mine),
                  len(cfg.addrs6))
        cfg.addrs6.insert(at, addr)
        self._local[addr.ip.packed] = dev
        if connected_route and addr.network.prefixlen < 128 and dev != "lo" and \
                all(r.dst != addr.network or r.dev != dev for r in self.routes6.routes):
            self.routes6.add(Route(addr.network, dev, proto="kernel", metric=256))

    def enable_ipv6(self) -> None:
        """IPv6 on: ``::1`` on ``lo`` and each interface's EUI-64 link-local address (what
        ``addrconf_dev_config`` gives an Ethernet device when it comes up)."""
        for name, cfg in self.ifaces.items():
            if cfg.kind == "loopback":
                self.add_addr6(name, IPv6Interface("::1/128"))
            elif cfg.kind in ("ether", "bridge"):
                self.add_addr6(name, IPv6Interface((ip6.link_local(cfg.mac), 64)))

    def add_route6(self, dst: IPv6Network, dev: str, via: bytes | None = None, *,
                   metric: int = 1024) -> None:
        """A route as ``ip -6 route add`` makes it (metric 1024, ``IP6_RT_PRIO_USER``)."""
        from ipaddress import IPv6Address

        gw = IPv6Address(via) if via is not None else None
        self.routes6.add(Route(dst, dev, gw, metric=metric))

    def add_route(self, dst: str | IPv4Network, dev: str, via: str | IPv4Address | None = None,
                  *, onlink: bool = False, src: IPv4Address | None = None) -> None:
        # parsed only when given as text: a big cluster adds 150,000 default routes
        net = dst if isinstance(dst, IPv4Network) else IPv4Network(dst)
        gw = None if not via else via if isinstance(via, IPv4Address) else IPv4Address(via)
        self.routes.add(Route(net, dev, gw, src=src, onlink=onlink))

    def new_pid(self) -> int:
        return self._pid_counter()

    def flow_label(self, src: bytes, dst: bytes, proto: int, ports: bytes) -> int:
        """``IpStack.flow_label``: ``ipv6.flow_label``."""
        return ipv6.flow_label(self, src, dst, proto, ports)

    def is_local(self, ip: bytes) -> bool:
        return ip in self._local or (ip[0] == 127 and len(ip) == 4)

    def masquerade_source(self, dev: str) -> bytes | None:
        """MASQUERADE's new source (``nf_nat_masquerade_ipv4``: ``inet_select_addr`` of the
        output device): its first address, else the first of any device that is not host
        scope (a cali* veth has none: the node's ``eth0`` address)."""
        return self.primary_ip(dev) or self._any_ip()

    def masquerade_source6(self, dev: str, dst: bytes) -> bytes | None:
        """``nf_nat_masquerade_ipv6``: ``ipv6_dev_get_saddr`` on ``dev`` towards ``dst``."""
        return ipv6.source6(self, dev, ip6.is_link_local(dst))

    def icmp6_error(self, now: int, icmp_type: int, code: int, offending: bytes, tags: Frame,
                    r: Reaction, *, in_dev: str = "") -> None:
        """``icmpv6_send`` with ICMPv6's own type and code (ip6t_REJECT's)."""
        ipv6.icmp6_error(self, now, icmp_type, code, offending, tags, r, in_dev=in_dev)

    def primary_ip(self, dev: str) -> bytes | None:
        addrs = self.ifaces[dev].addrs if dev in self.ifaces else []
        return addrs[0].ip.packed if addrs else None

    # -- driver interface ----------------------------------------------------------------
    def next_deadline(self) -> int | None:
        times = [t for t in (self.neigh.next_deadline(), self.l4.next_deadline()) if t is not None]
        return min(times) if times else None

    def on_deadline(self, now: int) -> Reaction:
        r = Reaction()
        for entry in self.neigh.due(now):
            if len(entry.ip) == 16:
                if entry.state == "INCOMPLETE":
                    ndisc.retry(self, now, entry, r)
                elif entry.state == "PROBE" or self.neigh.check(entry, now) == "PROBE":
                    ndisc.probe(self, now, entry, r)
            elif entry.state == "INCOMPLETE":
                arp.arp_retry(self, now, entry.dev, entry.ip, r)
            elif entry.state == "PROBE" or self.neigh.check(entry, now) == "PROBE":
                arp.probe(self, now, entry, r)
        self.l4.on_deadline(now, r)
        return r

    def receive(self, now: int, port: str, frame: Frame) -> Reaction:
        r = Reaction()
        iface = self.ifaces.get(port)
        data = frame.data
        if iface is None or not iface.up:
            r.drop(DropReason.PORT_DOWN, port, frame)
            return r
        if iface.kind == "ipip":
            self._ip_in(now, port, data, frame, r)
            return r
        if iface.kind == "brnf":  # br_netfilter hands a bridged DNAT to neighbour output
            self._bridged_dnat_out(now, port, frame, r)
            return r
        if iface.kind == "stack":  # an encapsulated packet a tunnel device hands us to send
            v6 = data[:1] and data[0] >> 4 == 6
            problem = ipv6.ipv6_problem(data, loopback=True) if v6 else ipv4_problem(data)
            if v6 and not problem:
                ipv6.ip6_output(self, now, data, frame, r)
                return r
            if problem:
                r.drop(DropReason.MALFORMED, port, frame, problem)
            else:
                self.ip_output(now, data, frame, r)
            return r
        if len(data) < 14:
            r.drop(DropReason.MALFORMED, port, frame, f"{len(data)} bytes")
            return r
        dst = data[0:6]
        if dst != iface.mac and not dst[0] & 1 and iface.kind != "loopback":
            r.drop(DropReason.NOT_FOR_US, port, frame, "PACKET_OTHERHOST")
            return r
        ethertype = (data[12] << 8) | data[13]
        if ethertype == ETH_P_IP:
            self._ip_in(now, port, data[14:], frame, r)
        elif ethertype == ETH_P_IPV6 and iface.addrs6:
            ipv6.ip6_in(self, now, port, data[14:], frame, r)
        elif ethertype == ETH_P_ARP:
            arp.arp_in(self, now, port, data[14:], frame, r)
        else:
            r.drop(DropReason.UNKNOWN_ETHERTYPE, port, frame, f"0x{ethertype:04x}")
        return r

    # -- ARP ------------------------------------------------------------------------------
    def _unreachable_to_sender(self, now: int, pkt: bytes, tags: Frame, r: Reaction) -> None:
        if self.is_local(pkt[8:24] if pkt[0] >> 4 == 6 else pkt[12:16]):
            self.l4.local_error(now, pkt, SocketError(FlowStatus.NO_ROUTE, "host unreachable"),
                               r, tags)
        else:
            self.icmp_error(now, 3, 1, pkt, tags, r)

    # -- IPv4 in ---------------------------------------------------------------------------
    def _ip_in(self, now: int, port: str, pkt: bytes, frame: Frame, r: Reaction) -> None:
        problem = ipv4_problem(pkt)
        if problem:
            r.drop(DropReason.MALFORMED, port, frame, problem)
            return
        ihl = (pkt[0] & 0x0F) * 4
        total = (pkt[2] << 8) | pkt[3]
        if checksum(pkt[:ihl]) != 0:
            r.drop(DropReason.BAD_CHECKSUM, port, frame, "IPv4 header")
            return
        pkt = pkt[:total]  # Ethernet padding is not part of the packet
        if self.hooks is not None and not frame.prerouted:
            hooked = self.hooks.hook("PREROUTING", now, pkt, port, "", frame, r)
            if hooked is None:
                return
            pkt = hooked
        dst = pkt[16:20]
        if self.is_local(dst) or dst == b"\xff\xff\xff\xff":
            if self.hooks is not None:
                hooked = self.hooks.hook("INPUT", now, pkt, port, "", frame, r)
                if hooked is None:
                    return
                pkt = hooked
            self.l4.deliver(now, port, pkt, frame, r)
        elif self.forwarding:
            self._forward(now, port, pkt, frame, r)
        else:
            r.drop(DropReason.NOT_FOR_US, port, frame, f"{ip_str(dst)} is not ours, "
                   "forwarding off")

    def _forward(self, now: int, port: str, pkt: bytes, frame: Frame, r: Reaction) -> None:
        dst = pkt[16:20]
        ttl = pkt[8]
        if ttl <= 1:
            r.drop(DropReason.TTL_EXCEEDED, port, frame, f"ttl {ttl}")
            self.icmp_error(now, 11, 0, pkt, frame, r, in_dev=port)
            return
        route = self.routes.lookup(dst)
        if route is None:
            r.drop(DropReason.NO_ROUTE, port, frame, ip_str(dst))
            self.icmp_error(now, 3, 0, pkt, frame, r, in_dev=port)
            return
        if route.type == "blackhole":  # ip_error: -EINVAL, no ICMP
            r.drop(DropReason.BLACKHOLE, port, frame, route.text)
            return
        old = (ttl << 8) | pkt[9]
        csum = update16((pkt[10] << 8) | pkt[11], old, old - 0x100)
        pkt = pkt[:8] + bytes([ttl - 1]) + pkt[9:10] + csum.to_bytes(2, "big") + pkt[12:]
        r.step(Event.ROUTE, f"forward {ip_str(dst)} via route {route.text}, ttl {ttl}->"
                    f"{ttl - 1}", port, frame, route.detail)
        if self.hooks is not None:
            hooked = self.hooks.hook("FORWARD", now, pkt, port, route.dev, frame, r)
            if hooked is None:
                return
            pkt = hooked
        self._post_routing(now, route, pkt, frame, r, in_dev=port)

    # -- IPv4 out --------------------------------------------------------------------------
    def select_source(self, dst: bytes) -> tuple[Route | None, bytes | None]:
        """The route and the source address a new local packet to ``dst`` would take."""
        if self.is_local(dst):
            local = dst if dst in self._local else b"\x7f\x00\x00\x01"
            return Route(IPv4Network(IPv4Address(dst)), "lo", scope="host"), local
        route = self.routes.lookup(dst)
        if route is None:
            return None, None
        if route.src is not None:
            return route, route.src.packed
        return route, self.primary_ip(route.dev) or self._any_ip()

    def source_for(self, dst: bytes) -> tuple[bytes | None, int | None]:
        """``IpStack.source_for``: what a socket needs of ``select_source`` -- the address
        and the MTU of the device the route leaves by (the socket's MSS comes from it)."""
        route, src = self.select_source(dst) if len(dst) == 4 else \
            ipv6.select_source6(self, dst)
        if route is None:
            return None, None
        cfg = self.ifaces.get(route.dev)
        return src, None if cfg is None else cfg.mtu

    def confirm_neighbour(self, now: int, dst: bytes) -> None:
        """``dst_confirm_neigh``: the neighbour entry of the route's next hop to ``dst``."""
        route = self.routes.lookup(dst) if len(dst) == 4 else self.routes6.lookup(dst)
        if route is not None:
            self.neigh.confirm(route.dev, route.via.packed if route.via else dst, now)

    def tunnel_socket(self, key: str) -> str | None:
        """``IpStack.tunnel_socket``: the tunnel device port bound to ``key``, if any."""
        return self.tunnel_stack.get(key)

    def _any_ip(self) -> bytes | None:
        for dev, cfg in self.ifaces.items():
            if dev != "lo" and cfg.addrs:
                return cfg.addrs[0].ip.packed
        return None

    def ip_id(self, dst: bytes) -> int:
        """``ip_select_ident`` for packets without a socket counter: per destination."""
        cur = self._ip_ids.get(dst)
        if cur is None:
            cur = self.rng.getrandbits(16)
        self._ip_ids[dst] = (cur + 1) & 0xFFFF
        return cur

    def ip_output(self, now: int, pkt: bytes, frame: Frame, r: Reaction) -> None:
        """Send a locally generated IPv4 packet (header complete, checksum set), or an IPv6
        one (``pktsim.devices.ipv6``)."""
        if pkt[0] >> 4 == 6:
            ipv6.ip6_output(self, now, pkt, frame, r)
            return
        dst = pkt[16:20]
        route, _src = self.select_source(dst)
        if route is None:
            r.drop(DropReason.NO_ROUTE, "", frame, ip_str(dst))
            self.l4.local_error(now, pkt, SocketError(FlowStatus.NET_UNREACHABLE,
                                                      "network unreachable"), r, frame)
            return
        if route.type == "blackhole":  # ip_route_output: -EINVAL to the socket
            r.drop(DropReason.BLACKHOLE, "", frame, route.text)
            self.l4.local_error(now, pkt, SocketError(FlowStatus.INVALID, route.text), r,
                                frame)
            return
        if self.hooks is not None:
            hooked = self.hooks.hook("OUTPUT", now, pkt, "", route.dev, frame, r)
            if hooked is None:
                return
            if hooked[16:20] != dst:  # DNAT in OUTPUT re-routes (ip_route_me_harder)
                pkt = hooked
                route, _src = self.select_source(pkt[16:20])
                if route is None:
                    r.drop(DropReason.NO_ROUTE, "", frame, ip_str(pkt[16:20]))
                    return
            pkt = hooked
        self._post_routing(now, route, pkt, frame, r, in_dev="")

    def _post_routing(self, now: int, route: Route, pkt: bytes, frame: Frame, r: Reaction, *,
                      in_dev: str) -> None:
        if self.hooks is not None:
            hooked = self.hooks.hook("POSTROUTING", now, pkt, in_dev, route.dev, frame, r)
            if hooked is None:
                return
            pkt = hooked
        dev = self.ifaces.get(route.dev)
        if dev is None or not dev.up:
            r.drop(DropReason.PORT_DOWN, route.dev, frame)
            return
        if len(pkt) > dev.mtu and pkt[6] & 0x40:
            r.drop(DropReason.FRAG_NEEDED, route.dev, frame, f"{len(pkt)} > mtu {dev.mtu}")
            if in_dev:
                self.icmp_error(now, 3, 4, pkt, frame, r, mtu=dev.mtu, in_dev=in_dev)
            return
        self._l3_out(now, route, pkt, frame, r)

    def _l3_out(self, now: int, route: Route, pkt: bytes, frame: Frame, r: Reaction) -> None:
        dev = route.dev
        cfg = self.ifaces[dev]
        if cfg.kind == "loopback":
            r.send(dev, frame.with_data(build.ether(ZERO_MAC, ZERO_MAC, ETH_P_IP, pkt)))
            return
        if cfg.kind == "vxlan" and self.neigh.resolved(dev, route.via.packed if route.via
                                                       else pkt[16:20]) is None:
            r.drop(DropReason.NEIGH_FAILED, dev, frame, "no neighbour entry on the overlay "
                   "(flannel installs them; an L3 miss is not resolved by ARP)")
            return
        nexthop = route.via.packed if route.via is not None else pkt[16:20]
        if cfg.kind == "ipip":  # no link layer: the tunnel takes the gateway from the route
            r.send(dev, frame.with_data(pkt, nexthop))
            return
        mac = self.neigh.use(dev, nexthop, now, frame.flow)
        if mac is not None:
            self._emit_ether(dev, mac, pkt, frame, r)
            return
        entry = self.neigh.incomplete(dev, nexthop)
        if len(entry.queue) >= UNRES_QLEN:
            dropped = entry.queue.pop(0)
            r.drop(DropReason.QUEUE_FULL, dev, dropped[1])
        entry.queue.append((pkt, frame))
        if entry.next_probe is None:
            entry.probes = 1
            entry.next_probe = now + RETRANS_NS
            arp.arp_request(self, dev, nexthop, frame, r)

    def _emit_ether(self, dev: str, mac: bytes, pkt: bytes, tags: Frame, r: Reaction) -> None:
        frame = Frame(build.ether(mac, self.ifaces[dev].mac, ETH_P_IP, pkt), tags.pid,
                      tags.flow, brnf=tags.brnf)
        r.send(dev, frame)

    def _bridged_dnat_out(self, now: int, port: str, frame: Frame, r: Reaction) -> None:
        """``br_nf_pre_routing_finish_bridge``, slow path: the DNATed frame leaves through the
        bridge's neighbour output (resolving first when needed); the bridge then restores the
        sender's MAC and bridges it on."""
        bridge = port.removesuffix(".brnf")
        pkt = frame.data[14:]
        v6 = frame.data[12:14] == b"\x86\xdd"  # br_netfilter_ipv6.c: the same, via ND
        problem = ("" if v6 else ipv4_problem(pkt)) if frame.brnf else "not a bridged DNAT"
        if problem or bridge not in self.ifaces:
            r.drop(DropReason.MALFORMED, port, frame, problem or f"no bridge {bridge}")
            return
        r.step(Event.BRNF, f"{bridge}: bridged DNAT through neighbour output", bridge, frame)
        if v6:
            ipv6.on_link_output(self, now, bridge, pkt, frame, r)
            return
        self._l3_out(now, Route(IPv4Network(IPv4Address(pkt[16:20])), bridge, scope="link"),
                     pkt, frame, r)

    # -- ICMP errors -----------------------------------------------------------------------
    def icmp_error(self, now: int, icmp_type: int, code: int, offending: bytes, tags: Frame,
                   r: Reaction, *, mtu: int = 0, in_dev: str = "") -> None:
        """``icmp_send``: never about an ICMP error, a fragment or a broadcast (an IPv6
        packet's error is ICMPv6's: ``ipv6.icmp_error_as6``)."""
        if offending[0] >> 4 == 6:
            ipv6.icmp_error_as6(self, now, icmp_type, code, offending, tags, r, mtu=mtu,
                                in_dev=in_dev)
            return
        if offending[9] == PROTO_ICMP and len(offending) > 20 + 0 and \
                offending[(offending[0] & 0x0F) * 4] not in (0, 8):
            return
        if (offending[6] & 0x1F) | offending[7]:
            return
        src = offending[12:16]
        rest = struct.pack("!HH", 0, mtu) if icmp_type == 3 and code == 4 else b"\x00" * 4
        body = build.icmp(icmp_type, code, rest, offending[:ICMP_ROOM])
        # icmp_errors_use_inbound_ifaddr=0: the source is the one a reply to the sender
        # would leave with (the route back's preferred source)
        route, my_ip = self.select_source(src)
        if route is None or my_ip is None:
            return
        pkt = build.ipv4(my_ip, src, PROTO_ICMP, body, ttl=64, ident=self.ip_id(src), tos=0xC0)
        err = Frame(pkt, self.new_pid(), tags.flow)
        r.step(Event.ICMP, f"send ICMP type {icmp_type} code {code} to {ip_str(src)}", in_dev, err)
        self.ip_output(now, pkt, err, r)

    def addresses(self) -> Iterator[tuple[str, IPv4Interface]]:
        for name, cfg in self.ifaces.items():
            for addr in cfg.addrs:
                yield name, addr
