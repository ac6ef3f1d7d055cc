"""ARP in a namespace (``net/ipv4/arp.c``): requests answered and learned from, replies
that resolve a waiting entry, proxy ARP, retries of an unresolved entry and the unicast
probes of an unconfirmed one.

The functions take the namespace they run in (``pktsim.devices.netns.Netns``), whose
neighbour table (``pktsim.devices.neigh``) holds the states and timers; ``Netns.receive``
hands ARP packets to :func:`arp_in`, its deadline to :func:`arp_retry` and :func:`probe`,
and its output path asks :func:`arp_request` to resolve a next hop.
"""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import TYPE_CHECKING

from pktsim.core.events import Event
from pktsim.core.frame import DropReason, Frame, Reaction
from pktsim.devices.ifaces import IfConfig
from pktsim.devices.neigh import MCAST_SOLICIT, RETRANS_NS, UCAST_SOLICIT, Neighbour
from pktsim.devices.routes import Route
from pktsim.wire import build
from pktsim.wire.build import BROADCAST, ETH_P_ARP, ZERO_MAC
from pktsim.wire.parse import ip_str, mac_str

if TYPE_CHECKING:
    from pktsim.devices.netns import Netns


def arp_in(ns: Netns, now: int, port: str, pkt: bytes, frame: Frame, r: Reaction) -> None:
    if len(pkt) < 28 or pkt[0:6] != b"\x00\x01\x08\x00\x06\x04":
        r.drop(DropReason.MALFORMED, port, frame, "not an Ethernet/IPv4 ARP packet")
        return
    op = (pkt[6] << 8) | pkt[7]
    sha, spa, tpa = pkt[8:14], pkt[14:18], pkt[24:28]
    iface = ns.ifaces[port]
    for_us = any(a.ip.packed == tpa for a in iface.addrs)
    entry = ns.neigh.get(port, spa)
    if op == 2 and entry is not None:
        _neigh_resolved(ns, now, port, spa, sha, "REACHABLE", r)
    elif op == 1 and for_us:
        if entry is None or entry.mac != sha:
            _neigh_resolved(ns, now, port, spa, sha, "STALE", r)
        reply = build.ether(sha, iface.mac, ETH_P_ARP,
                            build.arp(2, iface.mac, tpa, sha, spa))
        r.step(Event.ARP, f"ARP reply {ip_str(tpa)} is-at our {port}", port, frame)
        r.send(port, Frame(reply, ns.new_pid(), frame.flow))
    elif op == 1 and (proxied := proxy_route(ns, port, iface, tpa)) is not None:
        if entry is None or entry.mac != sha:  # neigh_event_ns
            _neigh_resolved(ns, now, port, spa, sha, "STALE", r)
        reply = build.ether(sha, iface.mac, ETH_P_ARP,
                            build.arp(2, iface.mac, tpa, sha, spa))
        r.step(Event.ARP, f"ARP reply {ip_str(tpa)} is-at our {port} (proxy ARP: routed "
               f"via {proxied.dev})", port, frame)
        r.send(port, Frame(reply, ns.new_pid(), frame.flow))
    elif op == 1:
        r.step(Event.ARP, f"ARP request for {ip_str(tpa)}: not ours, ignored", port, frame)
    elif op == 2:  # arp_process(): no entry, and arp_accept (0) creates none for it
        r.step(Event.ARP, f"ARP reply {ip_str(spa)} is-at {mac_str(sha)}: unsolicited "
               "(no neighbour entry; arp_accept=0 creates none), ignored", port, frame)
    else:  # net/ipv4/arp.c, arp_process(): only ARPOP_REQUEST and ARPOP_REPLY are read
        r.drop(DropReason.UNSUPPORTED, port, frame,
               f"ARP opcode {op} is neither request nor reply (arp_process drops it)")

def proxy_route(ns: Netns, port: str, iface: IfConfig, tpa: bytes) -> Route | None:
    """``arp_process``'s proxy case (``net/ipv4/arp.c``): forwarding on, the route to the
    target a unicast one (not local, not a blackhole), and ``arp_fwd_proxy``: proxy_arp
    on the interface and the route leaving by another device."""
    if not (iface.proxy_arp and ns.forwarding) or ns.is_local(tpa):
        return None
    route = ns.routes.lookup(tpa)
    ok = route is not None and route.type == "" and route.dev != port
    return route if ok else None

def _neigh_resolved(ns: Netns, now: int, dev: str, ip: bytes, mac: bytes, state: str,
                    r: Reaction) -> None:
    entry = ns.neigh.set(dev, ip, mac, state, now)
    if not entry.queue:  # nothing waits (and a shared PERMANENT peer is never written)
        return
    queued, entry.queue = entry.queue, []
    for pkt, tags in queued:
        ns._emit_ether(dev, mac, pkt, tags, r)

def arp_request(ns: Netns, dev: str, target: bytes, tags: Frame, r: Reaction) -> None:
    iface = ns.ifaces[dev]
    src = _arp_source(ns, dev, target)
    req = build.ether(BROADCAST, iface.mac, ETH_P_ARP,
                      build.arp(1, iface.mac, src, ZERO_MAC, target))
    frame = Frame(req, ns.new_pid(), tags.flow)
    r.step(Event.ARP, f"ARP who-has {ip_str(target)} on {dev}", dev, frame)
    r.send(dev, frame)

def _arp_source(ns: Netns, dev: str, target: bytes) -> bytes:
    addrs = ns.ifaces[dev].addrs
    for a in addrs:
        if IPv4Address(target) in a.network:
            return a.ip.packed
    # no address on ``dev`` (a cali* veth): inet_select_addr's first address of link
    # scope or wider on any device (lo's 127.0.0.1 is host scope)
    return addrs[0].ip.packed if addrs else ns._any_ip() or b"\x00" * 4

def arp_retry(ns: Netns, now: int, dev: str, ip: bytes, r: Reaction) -> None:
    entry = ns.neigh.get(dev, ip)
    if entry is None:
        return
    if entry.probes >= MCAST_SOLICIT:
        ns.neigh.fail(entry)
        for pkt, tags in entry.queue:
            r.drop(DropReason.NEIGH_FAILED, dev, tags, f"{ip_str(ip)} did not answer")
            ns._unreachable_to_sender(now, pkt, tags, r)
        entry.queue = []
        return
    entry.probes += 1
    entry.next_probe = now + RETRANS_NS
    arp_request(ns, dev, ip, entry.queue[0][1] if entry.queue else Frame(b"", 0), r)

def probe(ns: Netns, now: int, entry: Neighbour, r: Reaction) -> None:
    """PROBE: ``arp_solicit`` unicasts a request to the MAC it has, ``ucast_solicit``
    times; no answer and the entry is FAILED (nothing waits on it: it still sent)."""
    if entry.probes >= UCAST_SOLICIT:
        ns.neigh.fail(entry)
        r.step(Event.ARP, f"{ip_str(entry.ip)} on {entry.dev} did not answer "
               f"{UCAST_SOLICIT} unicast probes: FAILED", entry.dev,
               Frame(b"", 0, entry.flow))
        return
    entry.probes += 1
    entry.next_probe = now + RETRANS_NS
    assert entry.mac is not None
    iface = ns.ifaces[entry.dev]
    src = _arp_source(ns, entry.dev, entry.ip)
    req = build.ether(entry.mac, iface.mac, ETH_P_ARP,
                      build.arp(1, iface.mac, src, ZERO_MAC, entry.ip))
    frame = Frame(req, ns.new_pid(), entry.flow)
    r.step(Event.ARP, f"ARP who-has {ip_str(entry.ip)} on {entry.dev}, unicast to "
           f"{mac_str(entry.mac)} (probe {entry.probes} of {UCAST_SOLICIT}: the entry "
           "was not confirmed)", entry.dev, frame)
    r.send(entry.dev, frame)
