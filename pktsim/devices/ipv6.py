"""IPv6 in a namespace: input, forwarding, output and ICMPv6 errors (``net/ipv6/``).

Theory of operation
-------------------
``Netns.receive`` hands frames of ethertype 0x86DD to :func:`ip6_in`:

* ``ipv6_rcv`` checks the header (version 6, a payload length the frame holds) and trims the
  Ethernet padding; there is no header checksum.
* ``ip6_route_input``: a unicast address of the namespace is delivered
  (``ip6_input_finish``), Neighbor Discovery to ``pktsim.devices.ndisc``, everything else to
  the transport; a multicast destination is delivered only when the interface joined the
  group (``ipv6_chk_mcast_addr``: all-nodes, the solicited-node group of each of its
  addresses, all-routers when forwarding) and is never forwarded here.
* ``ip6_forward`` (forwarding on): hop limit 1 or less earns "time exceeded" (the hop limit
  is checked *before* the route, as ``ip6_forward`` does once ``ip6_route_input`` found one);
  no route earns "no route" (code 0, ``ip6_pkt_drop``); a link-local or loopback source is
  never forwarded (``ip6_forward``: "security critical"); a packet bigger than the out
  device's MTU earns "packet too big" with the MTU (routers never fragment, RFC 8200 §5).
* :func:`ip6_output` routes a local packet and resolves the next hop with Neighbor Discovery
  (``ip6_finish_output2`` -> ``neigh_output``); multicast goes to ``33:33:`` + the group's
  last 32 bits, with no neighbour entry.
* :func:`icmp6_error` is ``icmp6_send``: never about an ICMPv6 error (``is_ineligible``)
  or a multicast destination (but "packet too big"), never from ``::``; its source is the
  offending packet's destination when that is ours, else the address a reply would leave with; it
  quotes as much of the offending packet as fits in 1280 bytes (RFC 4443 §2.4 (c)).

ip6tables: with ``ns.hooks6`` set (a node with IPv6: ``pktsim.netfilter.hooks6``), packets
cross the five hooks where ``net/ipv6/`` has them: PREROUTING in ``ipv6_rcv`` (unless
br_netfilter ran it already, ``frame.prerouted``), INPUT in ``ip6_input`` (multicast and
Neighbor Discovery too: conntrack leaves ND UNTRACKED), FORWARD after the hop limit is
decremented (``ip6_forward``), OUTPUT in ``__ip6_local_out`` — a destination NATed there is
routed again (``ip6_route_me_harder``) — and POSTROUTING in ``ip6_output``.  Neighbor
Discovery's own messages are sent by ``ndisc_send_skb`` through OUTPUT in the kernel; here
they go out without hooks (they are UNTRACKED, and no rule pktsim writes matches them).

Not modelled: extension headers (delivered locally, a packet with one earns Parameter
Problem), the redirect a router sends when a packet leaves by the interface it came in on,
ICMPv6 rate limiting (``icmpv6_xrlim_allow``: a burst of 6 per destination is far more than
a scenario's errors), and a reply to a link-local address scoped to the interface the
request came in on (the table's first ``fe80::/64`` route is taken, where Linux uses the
incoming ifindex).
"""

from __future__ import annotations

import struct
import zlib
from ipaddress import IPv6Network
from typing import TYPE_CHECKING

from pktsim.core.events import Event
from pktsim.core.frame import DropReason, Frame, Reaction
from pktsim.devices import ndisc
from pktsim.devices.neigh import RETRANS_NS, UNRES_QLEN
from pktsim.devices.outcome import FlowStatus, SocketError
from pktsim.devices.routes import Route
from pktsim.wire import build, ip6
from pktsim.wire.build import ETH_P_IPV6, PROTO_ICMPV6, ZERO_MAC
from pktsim.wire.parse import ip_str

if TYPE_CHECKING:
    from pktsim.devices.netns import Netns

HOP_LIMIT = 64  # net.ipv6.conf.all.hop_limit
ICMP6_ROOM = ip6.MIN_MTU - 40 - 8  # icmp6_send(): the quote fits a minimum-MTU packet

# the ICMPv4 (type, code) the transport and the IPv4-minded callers ask for, as ICMPv6
# (icmpv6_send's callers: ip6_forward, ip6_pkt_drop, udpv6_rcv, ip6_link_failure, ...)
_AS_ICMP6 = {(3, 0): (ip6.ICMP6_DST_UNREACH, 0),   # no route
             (3, 1): (ip6.ICMP6_DST_UNREACH, 3),   # address unreachable (ND failed)
             (3, 2): (ip6.ICMP6_PARAM_PROB, 1),    # unrecognized next header
             (3, 3): (ip6.ICMP6_DST_UNREACH, 4),   # port unreachable
             (3, 4): (ip6.ICMP6_PACKET_TOO_BIG, 0),
             (11, 0): (ip6.ICMP6_TIME_EXCEEDED, 0)}


def ipv6_problem(pkt: bytes, loopback: bool = False) -> str:
    """What ``ip6_rcv_core`` refuses in a header, or ``""``: a bad version or length, a
    multicast source, the loopback address on a device other than ``lo``, a multicast
    destination of interface-local scope from the wire (RFC 4291 §2.7)."""
    if len(pkt) < 40 or pkt[0] >> 4 != 6:
        return "bad IPv6 version or header length"
    if ((pkt[4] << 8) | pkt[5]) > len(pkt) - 40:
        return f"IPv6 payload length {(pkt[4] << 8) | pkt[5]}"
    src, dst = pkt[8:24], pkt[24:40]
    if ip6.is_multicast(src):
        return "multicast source"
    if not loopback and (src == ip6.LOOPBACK or dst == ip6.LOOPBACK):
        return "the loopback address off the loopback device"
    if not loopback and ip6.is_multicast(dst) and dst[1] & 0x0F in (0, 1):
        return "multicast destination of scope 0 or 1"
    return ""


def ip6_in(ns: Netns, now: int, port: str, pkt: bytes, frame: Frame, r: Reaction) -> None:
    """``ipv6_rcv``: the header checked, PREROUTING, then delivered, forwarded or dropped."""
    cfg = ns.ifaces.get(port)
    problem = ipv6_problem(pkt, cfg is not None and cfg.kind == "loopback")
    if problem:
        r.drop(DropReason.MALFORMED, port, frame, problem)
        return
    pkt = pkt[:40 + ((pkt[4] << 8) | pkt[5])]
    hooks = ns.hooks6
    if hooks is not None and not frame.prerouted:
        hooked = hooks.hook("PREROUTING", now, pkt, port, "", frame, r)
        if hooked is None:
            return
        pkt = hooked
    dst = pkt[24:40]
    if ip6.is_multicast(dst):
        if dst not in groups6(ns, port):
            r.drop(DropReason.NOT_A_MEMBER, port, frame, ip_str(dst))
            return
        _deliver(ns, now, port, pkt, frame, r)
    elif dst in ns._local:
        _deliver(ns, now, port, pkt, frame, r)
    elif ns.forwarding:
        ip6_forward(ns, now, port, pkt, frame, r)
    else:
        r.drop(DropReason.NOT_FOR_US, port, frame, f"{ip_str(dst)} is not ours, "
               "forwarding off")


def _deliver(ns: Netns, now: int, port: str, pkt: bytes, frame: Frame, r: Reaction) -> None:
    hooks = ns.hooks6
    if hooks is not None:
        hooked = hooks.hook("INPUT", now, pkt, port, "", frame, r)
        if hooked is None:
            return
        pkt = hooked
    if pkt[6] == PROTO_ICMPV6 and len(pkt) >= 44 and pkt[40] in ip6.ND_TYPES:
        ndisc.ndisc_rcv(ns, now, port, pkt, frame, r)
    else:
        ns.l4.deliver(now, port, pkt, frame, r)


def ip6_forward(ns: Netns, now: int, port: str, pkt: bytes, frame: Frame, r: Reaction) -> None:
    """``ip6_route_input`` for another host's address, then ``ip6_forward``."""
    dst, hlim = pkt[24:40], pkt[7]
    route = ns.routes6.lookup(dst)
    if route is None:
        r.drop(DropReason.NO_ROUTE, port, frame, ip_str(dst))
        icmp6_error(ns, now, ip6.ICMP6_DST_UNREACH, 0, pkt, frame, r, in_dev=port)
        return
    if route.type == "blackhole":  # its input is dst_discard: ip6_forward never runs
        r.drop(DropReason.BLACKHOLE, port, frame, route.text)
        return
    if hlim <= 1:
        r.drop(DropReason.HOP_LIMIT, port, frame, f"hlim {hlim}")
        icmp6_error(ns, now, ip6.ICMP6_TIME_EXCEEDED, 0, pkt, frame, r, in_dev=port)
        return
    src = pkt[8:24]
    if src in (ip6.UNSPECIFIED, ip6.LOOPBACK) or ip6.is_multicast(src):
        r.drop(DropReason.NOT_FOR_US, port, frame, f"source {ip_str(src)} is never forwarded")
        return
    if ip6.is_link_local(src):  # ip6_forward: ICMPV6_NOT_NEIGHBOUR, "beyond scope"
        r.drop(DropReason.NOT_FOR_US, port, frame, f"link-local source {ip_str(src)}")
        icmp6_error(ns, now, ip6.ICMP6_DST_UNREACH, 2, pkt, frame, r, in_dev=port)
        return
    cfg = ns.ifaces.get(route.dev)
    if cfg is not None and len(pkt) > cfg.mtu:
        r.drop(DropReason.TOO_BIG, route.dev, frame, f"{len(pkt)} > mtu {cfg.mtu}")
        icmp6_error(ns, now, ip6.ICMP6_PACKET_TOO_BIG, 0, pkt, frame, r, info=cfg.mtu,
                    in_dev=port)
        return
    pkt = pkt[:7] + bytes([hlim - 1]) + pkt[8:]
    r.step(Event.ROUTE, f"forward {ip_str(dst)} via route {route.text}, hlim {hlim}->"
           f"{hlim - 1}", port, frame, route.detail)
    hooks = ns.hooks6
    if hooks is not None:
        hooked = hooks.hook("FORWARD", now, pkt, port, route.dev, frame, r)
        if hooked is None:
            return
        pkt = hooked
    _post_routing6(ns, now, route, pkt, frame, r, port)


def select_source6(ns: Netns, dst: bytes) -> tuple[Route | None, bytes | None]:
    """The route and source address a new local packet to ``dst`` takes
    (``ip6_route_output``, then ``ipv6_dev_get_saddr``'s first rules: the destination itself
    when it is ours, an address of the same scope on the out device, then any device)."""
    if dst in ns._local or dst == ip6.LOOPBACK:
        return Route(IPv6Network((dst, 128)), "lo", scope="host"), dst
    route = ns.routes6.lookup(dst)
    if route is None:
        return None, None
    if route.src is not None:
        return route, route.src.packed
    return route, source6(ns, route.dev, ip6.is_link_local(dst))


def ip6_output(ns: Netns, now: int, pkt: bytes, frame: Frame, r: Reaction) -> None:
    """Send a locally made IPv6 packet (``ip6_xmit`` / ``ip6_local_out``)."""
    dst = pkt[24:40]
    if ip6.is_multicast(dst):
        dev = multicast_dev6(ns)
        if dev is None:
            r.drop(DropReason.NO_ROUTE, "", frame, ip_str(dst))
            return
        route = Route(IPv6Network("ff00::/8"), dev)
    else:
        found, _src = select_source6(ns, dst)
        if found is None:
            r.drop(DropReason.NO_ROUTE, "", frame, ip_str(dst))
            ns.l4.local_error(now, pkt, SocketError(FlowStatus.NET_UNREACHABLE,
                                                    "network unreachable"), r, frame)
            return
        route = found
    if route.type == "blackhole":
        r.drop(DropReason.BLACKHOLE, "", frame, route.text)
        ns.l4.local_error(now, pkt, SocketError(FlowStatus.INVALID, route.text), r, frame)
        return
    hooks = ns.hooks6
    if hooks is not None:
        hooked = hooks.hook("OUTPUT", now, pkt, "", route.dev, frame, r)
        if hooked is None:
            return
        if hooked[24:40] != dst:  # DNAT in OUTPUT re-routes (ip6_route_me_harder)
            rerouted, _src = select_source6(ns, hooked[24:40])
            if rerouted is None:
                r.drop(DropReason.NO_ROUTE, "", frame, ip_str(hooked[24:40]))
                return
            route = rerouted
        pkt = hooked
    _post_routing6(ns, now, route, pkt, frame, r, "")


def _post_routing6(ns: Netns, now: int, route: Route, pkt: bytes, frame: Frame, r: Reaction,
                   in_dev: str) -> None:
    """``ip6_output``: POSTROUTING (source NAT, conntrack confirm), then the device."""
    hooks = ns.hooks6
    if hooks is not None:
        hooked = hooks.hook("POSTROUTING", now, pkt, in_dev, route.dev, frame, r)
        if hooked is None:
            return
        pkt = hooked
    _out(ns, now, route, pkt, frame, r)


def _out(ns: Netns, now: int, route: Route, pkt: bytes, frame: Frame, r: Reaction) -> None:
    """``ip6_output`` -> ``ip6_finish_output2``: the device, then the neighbour."""
    dev = ns.ifaces.get(route.dev)
    if dev is None or not dev.up:
        r.drop(DropReason.PORT_DOWN, route.dev, frame)
        return
    if len(pkt) > dev.mtu:  # Linux would fragment it (no fragments here: docs/model.md)
        r.drop(DropReason.TOO_BIG, route.dev, frame, f"{len(pkt)} > mtu {dev.mtu}")
        return
    if dev.kind == "loopback":
        r.send(route.dev, frame.with_data(build.ether(ZERO_MAC, ZERO_MAC, ETH_P_IPV6, pkt)))
        return
    dst = pkt[24:40]
    if ip6.is_multicast(dst):
        emit6(ns, route.dev, ip6.multicast_mac(dst), pkt, frame, r)
        return
    nexthop = route.via.packed if route.via is not None else dst
    if dev.kind == "vxlan" and ns.neigh.resolved(route.dev, nexthop) is None:
        r.drop(DropReason.NDISC_FAILED, route.dev, frame, "no neighbour entry on the overlay "
               "(flannel installs them; a miss is not resolved by Neighbor Discovery)")
        return
    mac = ns.neigh.use(route.dev, nexthop, now, frame.flow)
    if mac is not None:
        emit6(ns, route.dev, mac, pkt, frame, r)
        return
    entry = ns.neigh.incomplete(route.dev, nexthop)
    if len(entry.queue) >= UNRES_QLEN:
        dropped = entry.queue.pop(0)
        r.drop(DropReason.QUEUE_FULL, route.dev, dropped[1])
    entry.queue.append((pkt, frame))
    if entry.next_probe is None:
        entry.probes = 1
        entry.next_probe = now + RETRANS_NS
        ndisc.solicit(ns, route.dev, nexthop, pkt[8:24], None, frame, r)


def emit6(ns: Netns, dev: str, mac: bytes, pkt: bytes, tags: Frame, r: Reaction) -> None:
    """The IPv6 packet in an Ethernet frame to ``mac`` on ``dev``."""
    frame = Frame(build.ether(mac, ns.ifaces[dev].mac, ETH_P_IPV6, pkt), tags.pid, tags.flow,
                  brnf=tags.brnf)
    r.send(dev, frame)


def icmp6_error(ns: Netns, now: int, icmp_type: int, code: int, offending: bytes, tags: Frame,
                r: Reaction, *, info: int = 0, in_dev: str = "") -> None:
    """``icmp6_send`` (net/ipv6/icmp.c)."""
    src, dst = offending[8:24], offending[24:40]
    if src == ip6.UNSPECIFIED or ip6.is_multicast(src):
        return
    if ip6.is_multicast(dst) and icmp_type != ip6.ICMP6_PACKET_TOO_BIG:
        return
    if offending[6] == PROTO_ICMPV6 and (len(offending) <= 40 or offending[40] < 128):
        return  # is_ineligible: never about an ICMPv6 error, or an ICMPv6 without a type
    mine = dst if dst in ns._local else None
    route, my_ip = select_source6(ns, src)
    my_ip = mine or my_ip
    if route is None or my_ip is None:
        return
    body = ip6.icmpv6(my_ip, src, icmp_type, code, struct.pack("!I", info),
                      offending[:ICMP6_ROOM])
    pkt = build.ipv6(my_ip, src, PROTO_ICMPV6, body, hlim=HOP_LIMIT,
                     flow=flow_label(ns, my_ip, src, PROTO_ICMPV6, body[:2]))
    err = Frame(pkt, ns.new_pid(), tags.flow)
    r.step(Event.ICMP, f"send ICMPv6 type {icmp_type} code {code} to {ip_str(src)}", in_dev,
           err)
    ip6_output(ns, now, pkt, err, r)


def icmp_error_as6(ns: Netns, now: int, icmp_type: int, code: int, offending: bytes,
                   tags: Frame, r: Reaction, *, mtu: int = 0, in_dev: str = "") -> None:
    """An ICMPv4 error asked for an IPv6 packet (the transport speaks ICMPv4's codes)."""
    found = _AS_ICMP6.get((icmp_type, code))
    if found is None:
        return
    info = mtu if found[0] == ip6.ICMP6_PACKET_TOO_BIG else \
        6 if found[0] == ip6.ICMP6_PARAM_PROB else 0  # the pointer: the next header field
    icmp6_error(ns, now, found[0], found[1], offending, tags, r, info=info, in_dev=in_dev)


def source6(ns: Netns, dev: str, link_local: bool) -> bytes | None:
    """``ipv6_dev_get_saddr``'s answer for these addresses: an address of the wanted
    scope on ``dev`` (rule 2, then rule 5: the outgoing interface's), else a global one
    of any interface, else ``dev``'s link-local."""
    cfg = ns.ifaces.get(dev)
    own = cfg.addrs6 if cfg is not None else []
    for a in own:
        if ip6.is_link_local(a.ip.packed) == link_local:
            return a.ip.packed
    if not link_local:
        for name, other in ns.ifaces.items():
            for a in other.addrs6:
                if name != "lo" and not ip6.is_link_local(a.ip.packed):
                    return a.ip.packed
    return own[0].ip.packed if own else None


def groups6(ns: Netns, dev: str) -> set[bytes]:
    """The IPv6 groups ``dev`` joined: all-nodes, the solicited-node group of each of its
    addresses (``addrconf_join_solict``), and on a forwarding node all-routers and the
    subnet-router anycast addresses' group (``addrconf_join_anycast``; the anycast
    addresses themselves are not answered for: docs/model.md, "IPv6")."""
    cfg = ns.ifaces.get(dev)
    if cfg is None or not cfg.addrs6:
        return set()
    groups = {ip6.ALL_NODES} | {ip6.solicited_node(a.ip.packed) for a in cfg.addrs6}
    if ns.forwarding:  # all-routers, and the subnet-router anycast's group (of fe80:: too)
        groups |= {ip6.ALL_NODES[:15] + b"\x02", ip6.solicited_node(ip6.UNSPECIFIED)}
    return groups


def multicast_dev6(ns: Netns) -> str | None:
    """The device a multicast packet without one leaves by: the first with IPv6."""
    return next((n for n, c in ns.ifaces.items() if c.addrs6 and n != "lo"), None)


def flow_label(ns: Netns, src: bytes, dst: bytes, proto: int, ports: bytes) -> int:
    """The automatic flow label of a packet without a socket's own (``auto_flowlabels``
    1: ``ip6_make_flowlabel`` hashes the flow with a secret of the boot); pktsim's secret
    is drawn from the namespace's stream, so a run's labels are its seed's."""
    secret = ns._flow_secret
    if secret is None:
        secret = ns._flow_secret = ns.rng.getrandbits(32)
    return (zlib.crc32(src + dst + bytes((proto,)) + ports, secret) >> 4) & 0xFFFFF


def on_link_output(ns: Netns, now: int, dev: str, pkt: bytes, frame: Frame,
                   r: Reaction) -> None:
    """Send to a neighbour on ``dev`` through its entry (``ndisc_send_skb``'s
    ``dst_output``: the entry is used, and resolved first if it must be)."""
    _out(ns, now, Route(IPv6Network((pkt[24:40], 128)), dev), pkt, frame, r)
