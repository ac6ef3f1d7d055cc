"""Neighbor Discovery in a namespace (``net/ipv6/ndisc.c``): IPv6's ARP.

Theory of operation
-------------------
The neighbour table (``pktsim.devices.neigh``) is shared with ARP -- Linux's ``nd_tbl`` runs
the same state machine as ``arp_tbl`` with the same defaults (retrans 1 s, 3 multicast and 3
unicast solicitations, delay 5 s, reachable 30 s) -- so only the messages differ:

* Resolution (:func:`solicit`, ``ndisc_solicit``): a Neighbor Solicitation to the target's
  solicited-node group (``ff02::1:ffXX:XXXX``, MAC ``33:33:ff:XX:XX:XX``), from the
  waiting packet's source when it is ours on that device, else (a forwarded packet, a
  probe) from the device's link-local address (``ndisc_send_ns``), hop limit 255, with the
  source link-layer option.  A probe of an
  unconfirmed entry is the same message unicast to the cached MAC and address.
* An NS for one of our addresses (``ndisc_recv_ns``) makes the asker's entry STALE with its
  link-layer option (created only when the NS has the option or was unicast), then earns a
  Neighbor Advertisement sent through that entry (which turns it DELAY: the asker is probed
  5 s later unless something confirms it -- unlike ARP, whose reply bypasses the table).
  The NA is Solicited, Router when the interface forwards (``cnf.forwarding``), and for a
  multicast NS only Override and with the target link-layer option (``inc_opt``).  A DAD
  probe (source ``::``) for an address we hold is answered to all-nodes, unsolicited.
* An NA (``ndisc_recv_na``) updates only an entry that exists: REACHABLE when solicited,
  else STALE; without Override it never replaces a known link-layer address.  Its Router
  flag is kept on the entry (``ip -6 neigh`` prints ``router``).
* Router solicitations and advertisements, redirects: a node forwards and runs no router
  advertisement daemon, so an RS is only learned from (``ndisc_recv_rs``: the sender's entry
  STALE), and RAs and redirects are ignored (a pod's routes come from its CNI plugin).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pktsim.core.events import Event
from pktsim.core.frame import DropReason, Frame, Reaction
from pktsim.devices.neigh import MCAST_SOLICIT, RETRANS_NS, UCAST_SOLICIT, Neighbour
from pktsim.wire import build, ip6
from pktsim.wire.build import ETH_P_IPV6, PROTO_ICMPV6
from pktsim.wire.checksum import l4_checksum
from pktsim.wire.parse import ip_str, mac_str

if TYPE_CHECKING:
    from pktsim.devices.netns import Netns


def ndisc_rcv(ns: Netns, now: int, port: str, pkt: bytes, frame: Frame, r: Reaction) -> None:
    """``ndisc_rcv``: hop limit 255 and code 0 or the message is not trusted (RFC 4861)."""
    body = pkt[40:]
    if pkt[7] != ip6.ND_HOP_LIMIT or body[1] != 0:
        r.drop(DropReason.MALFORMED, port, frame, f"ND with hop limit {pkt[7]}, code "
               f"{body[1]} (RFC 4861: 255 and 0)")
        return
    if l4_checksum(pkt[8:24], pkt[24:40], PROTO_ICMPV6, body) != 0:
        r.drop(DropReason.BAD_CHECKSUM, port, frame, "ICMPv6")
        return
    kind = body[0]
    if kind == ip6.ND_NEIGHBOR_SOLICIT and len(body) >= 24:
        _recv_ns(ns, now, port, pkt, body, frame, r)
    elif kind == ip6.ND_NEIGHBOR_ADVERT and len(body) >= 24:
        _recv_na(ns, now, port, pkt, body, frame, r)
    elif kind == ip6.ND_ROUTER_SOLICIT and len(body) >= 8:
        _recv_rs(ns, now, port, pkt, body, frame, r)
    elif kind in (ip6.ND_NEIGHBOR_SOLICIT, ip6.ND_NEIGHBOR_ADVERT, ip6.ND_ROUTER_SOLICIT):
        r.drop(DropReason.MALFORMED, port, frame, f"ND type {kind} truncated")
    else:
        r.step(Event.ND, f"ND type {kind} ignored (no router advertisements, no redirects "
               "are acted on)", port, frame)


def _recv_ns(ns: Netns, now: int, port: str, pkt: bytes, body: bytes, frame: Frame,
             r: Reaction) -> None:
    """``ndisc_recv_ns``: a DAD probe for an address we hold is defended; any other NS for
    one is learned from (its source STALE) and answered through the asker's entry."""
    src, dst, target = pkt[8:24], pkt[24:40], body[8:24]
    opts = ip6.nd_options(body, 24)
    if opts is None or ip6.is_multicast(target):
        r.drop(DropReason.MALFORMED, port, frame, "NS options or target")
        return
    sll = opts.get(ip6.ND_OPT_SOURCE_LL)
    dad = src == ip6.UNSPECIFIED
    if dad and (sll is not None or dst != ip6.solicited_node(target)):
        r.drop(DropReason.MALFORMED, port, frame, "bad DAD packet (RFC 4861 §7.1.1)")
        return
    if ns._local.get(target) != port:
        r.step(Event.ND, f"NS for {ip_str(target)}: not ours, ignored", port, frame)
        return
    router = ns.forwarding
    if dad:  # someone's DAD for an address we hold: defend it
        flags = (ip6.NA_ROUTER if router else 0) | ip6.NA_OVERRIDE
        _send_na(ns, now, port, ip6.ALL_NODES, target, flags, True, frame, r)
        return
    inc = ip6.is_multicast(dst)
    if inc and sll is None and ns.neigh.get(port, src) is None:
        r.step(Event.ND, f"NS for {ip_str(target)} without a link-layer address from an "
               "unknown asker: nothing to answer through, ignored", port, frame)
        return
    if ns.neigh.get(port, src) is None:
        ns.neigh.incomplete(port, src)
    _update(ns, now, port, src, sll, "STALE", r, override=True)
    flags = (ip6.NA_ROUTER if router else 0) | ip6.NA_SOLICITED | \
        (ip6.NA_OVERRIDE if inc else 0)
    _send_na(ns, now, port, src, target, flags, inc, frame, r)


def _update(ns: Netns, now: int, dev: str, ip: bytes, lladdr: bytes | None, new: str,
            r: Reaction, *, override: bool, isrouter: bool | None = None) -> None:
    """``__neigh_update`` with ``NEIGH_UPDATE_F_WEAK_OVERRIDE`` (every ND caller's):
    without an address only a valid entry is refreshed; a different address replaces the
    known one only with Override (else a REACHABLE entry turns STALE and keeps it); the
    same address proposed STALE leaves the state as it is; the Router flag changes only
    when ``isrouter`` says and the address was not refused."""
    entry = ns.neigh.get(dev, ip)
    if entry is None:
        return
    old = ns.neigh.state_at(entry, now)
    if old == "PERMANENT":
        return
    valid = old in ("REACHABLE", "STALE", "DELAY", "PROBE")
    if lladdr is None:
        if not valid:
            return
        lladdr = entry.mac
    assert lladdr is not None
    update_router = isrouter is not None
    if valid and lladdr != entry.mac and not override:
        update_router = False
        if old != "REACHABLE":
            return
        lladdr, new = entry.mac, "STALE"
        assert lladdr is not None
    elif valid and lladdr == entry.mac and new == "STALE":
        new = old
    if new == "REACHABLE" or new != old or lladdr != entry.mac:
        _resolved(ns, now, dev, ip, lladdr, new, r)
    found = ns.neigh.get(dev, ip)
    if update_router and found is not None:
        found.router = bool(isrouter)


def _send_na(ns: Netns, now: int, port: str, dst: bytes, target: bytes, flags: int,
             tll: bool, tags: Frame, r: Reaction) -> None:
    """``ndisc_send_na``: from the target address, through the output path (so the asker's
    entry is used like any other)."""
    from pktsim.devices.ipv6 import on_link_output

    mac = ns.ifaces[port].mac
    body = ip6.neighbor_advert(target, dst, target, flags, mac if tll else None)
    pkt = build.ipv6(target, dst, PROTO_ICMPV6, body, hlim=ip6.ND_HOP_LIMIT)
    na = Frame(pkt, ns.new_pid(), tags.flow)
    names = "".join(n for bit, n in ((ip6.NA_ROUTER, "R"), (ip6.NA_SOLICITED, "S"),
                                     (ip6.NA_OVERRIDE, "O")) if flags & bit)
    r.step(Event.ND, f"NA {ip_str(target)} is-at our {port} [{names or 'none'}]", port, na)
    if ip6.is_multicast(dst):
        from pktsim.devices.ipv6 import emit6

        emit6(ns, port, ip6.multicast_mac(dst), pkt, na, r)
        return
    on_link_output(ns, now, port, pkt, na, r)


def _recv_na(ns: Netns, now: int, port: str, pkt: bytes, body: bytes, frame: Frame,
             r: Reaction) -> None:
    """``ndisc_recv_na``: it updates an entry that exists and has not FAILED: REACHABLE
    when solicited, else STALE, with Override and Router as ``__neigh_update`` reads
    them; never one for an address of ours, never a solicited NA sent to a group."""
    target, flags = body[8:24], body[4]
    opts = ip6.nd_options(body, 24)
    if opts is None or ip6.is_multicast(target):
        r.drop(DropReason.MALFORMED, port, frame, "NA options or target")
        return
    if flags & ip6.NA_SOLICITED and ip6.is_multicast(pkt[24:40]):
        r.drop(DropReason.MALFORMED, port, frame, "solicited NA to a multicast group")
        return
    if target in ns._local:
        r.step(Event.ND, f"NA for our own {ip_str(target)}, ignored", port, frame)
        return
    entry = ns.neigh.get(port, target)
    if entry is None or entry.state in ("PERMANENT", "FAILED"):
        r.step(Event.ND, f"NA {ip_str(target)}: no entry waits for it (accept_untracked_na "
               "0), ignored", port, frame)
        return
    tll = opts.get(ip6.ND_OPT_TARGET_LL)
    new = "REACHABLE" if flags & ip6.NA_SOLICITED else "STALE"
    _update(ns, now, port, target, tll, new, r, override=bool(flags & ip6.NA_OVERRIDE),
            isrouter=bool(flags & ip6.NA_ROUTER))
    found = ns.neigh.get(port, target)
    state = ns.neigh.state_at(found, now) if found is not None else "none"
    said = mac_str(tll) if tll is not None else "(no target option)"
    kept = found is not None and found.mac is not None and tll is not None and \
        found.mac != tll
    how = f"{state}, {mac_str(found.mac)} kept (no Override)" if kept and found and \
        found.mac else state
    r.step(Event.ND, f"NA {ip_str(target)} is-at {said}: {how}", port, frame)


def _recv_rs(ns: Netns, now: int, port: str, pkt: bytes, body: bytes, frame: Frame,
             r: Reaction) -> None:
    """``ndisc_recv_rs``: a host ignores it; a forwarding node learns the sender."""
    src = pkt[8:24]
    opts = ip6.nd_options(body, 8)
    sll = opts.get(ip6.ND_OPT_SOURCE_LL) if opts else None
    if not ns.forwarding or src == ip6.UNSPECIFIED or sll is None:
        r.step(Event.ND, "router solicitation ignored", port, frame)
        return
    r.step(Event.ND, f"router solicitation from {ip_str(src)}: learned, no advertisement "
           "(no router advertisement daemon)", port, frame)
    if ns.neigh.get(port, src) is None:
        ns.neigh.incomplete(port, src)
    _update(ns, now, port, src, sll, "STALE", r, override=True, isrouter=False)


def _resolved(ns: Netns, now: int, dev: str, ip: bytes, mac: bytes, state: str,
              r: Reaction) -> None:
    from pktsim.devices.ipv6 import emit6

    entry = ns.neigh.set(dev, ip, mac, state, now)
    if not entry.queue:
        return
    queued, entry.queue = entry.queue, []
    for pkt, tags in queued:
        emit6(ns, dev, mac, pkt, tags, r)


def solicit(ns: Netns, dev: str, target: bytes, pkt_src: bytes | None, unicast: bytes | None,
            tags: Frame, r: Reaction, why: str = "") -> None:
    """``ndisc_solicit``: an NS for ``target``, multicast to its solicited-node group, or
    unicast to the cached ``unicast`` MAC (a probe)."""
    iface = ns.ifaces[dev]
    if pkt_src is not None and ns._local.get(pkt_src) == dev:
        src: bytes | None = pkt_src
    else:  # ndisc_send_ns without a source: the device's link-local (ipv6_get_lladdr)
        src = next((a.ip.packed for a in iface.addrs6 if ip6.is_link_local(a.ip.packed)),
                   None)
    if src is None:
        return
    dst = target if unicast is not None else ip6.solicited_node(target)
    body = ip6.neighbor_solicit(src, dst, target, iface.mac)
    pkt = build.ipv6(src, dst, PROTO_ICMPV6, body, hlim=ip6.ND_HOP_LIMIT)
    mac = unicast if unicast is not None else ip6.multicast_mac(dst)
    frame = Frame(build.ether(mac, iface.mac, ETH_P_IPV6, pkt), ns.new_pid(), tags.flow)
    r.step(Event.ND, f"NS who-has {ip_str(target)} on {dev}{why}", dev, frame)
    r.send(dev, frame)


def retry(ns: Netns, now: int, entry: Neighbour, r: Reaction) -> None:
    """An INCOMPLETE entry's timer: another multicast NS, or FAILED after
    ``mcast_solicit`` -- its packets dropped, each sender told "address unreachable"."""
    if entry.probes >= MCAST_SOLICIT:
        ns.neigh.fail(entry)
        for pkt, tags in entry.queue:
            r.drop(DropReason.NDISC_FAILED, entry.dev, tags, f"{ip_str(entry.ip)} did not "
                   "answer")
            ns._unreachable_to_sender(now, pkt, tags, r)
        entry.queue = []
        return
    entry.probes += 1
    entry.next_probe = now + RETRANS_NS
    first = entry.queue[-1] if entry.queue else None  # neigh_probe: skb_peek_tail
    solicit(ns, entry.dev, entry.ip, first[0][8:24] if first else None, None,
            first[1] if first else Frame(b"", 0, entry.flow), r)


def probe(ns: Netns, now: int, entry: Neighbour, r: Reaction) -> None:
    """PROBE: ``ucast_solicit`` unicast solicitations to the cached MAC, then FAILED."""
    if entry.probes >= UCAST_SOLICIT:
        ns.neigh.fail(entry)
        r.step(Event.ND, f"{ip_str(entry.ip)} on {entry.dev} did not answer "
               f"{UCAST_SOLICIT} unicast probes: FAILED", entry.dev,
               Frame(b"", 0, entry.flow))
        return
    entry.probes += 1
    entry.next_probe = now + RETRANS_NS
    assert entry.mac is not None
    solicit(ns, entry.dev, entry.ip, None, entry.mac, Frame(b"", 0, entry.flow), r,
            f", unicast to {mac_str(entry.mac)} (probe {entry.probes} of {UCAST_SOLICIT}: "
            "the entry was not confirmed)")
