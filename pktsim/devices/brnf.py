"""``br_netfilter``: bridged IPv4 frames through the node's iptables (bridge-nf-call-iptables).

Theory of operation (Linux ``net/bridge/br_netfilter_hooks.c``)
---------------------------------------------------------------
kube-proxy needs ``net.bridge.bridge-nf-call-iptables=1``: without it a reply from a pod to a
pod on the same bridge would be bridged straight back and never un-DNATed.  With it, every
IPv4 frame entering the bridge from a port runs the IP PREROUTING hook (conntrack, then the
nat table's DNAT) with the bridge as its input interface, before the FDB decides:

* If DNAT changed the destination and the route to the new one leads back out of the bridge,
  the frame is *bridged*, not routed (``br_nf_pre_routing_finish_bridge``): its TTL is
  untouched, and it goes where the FDB says — back out of its ingress port for a pod reaching
  itself through its Service, which is why that needs hairpin mode (``should_deliver`` in
  ``net/bridge/br_forward.c``; the CNI bridge plugin's ``hairpinMode`` sets it on the port).
  With a
  neighbour in NUD_CONNECTED (REACHABLE, PERMANENT) only the destination MAC is rewritten
  (``neigh_hh_bridge``).  Otherwise the frame goes through the node's neighbour output on the
  bridge device — an ARP first if need be, and a copy seen leaving ``cbr0`` with the bridge's
  MAC as source — after which the bridge restores the sender's MAC and bridges it on
  (``br_nf_pre_routing_finish_bridge_slow``).  pktsim hands such frames to the node through
  an internal ``cbr0.brnf`` port (no wire, no capture: a function call in the kernel).
  Checked against the kernel (docs/kernel-observations.md §9).
* A frame bridged port to port runs FORWARD and POSTROUTING (SNAT/MASQUERADE) too, with the
  bridge as both interfaces.
* A frame going up to the node is marked ``prerouted`` so the node does not run PREROUTING a
  second time (``ip_sabotage_in``).

Bridged IPv6 frames do the same through the node's ip6tables (``bridge-nf-call-ip6tables=1``,
``net/bridge/br_netfilter_ipv6.c``: ``br_nf_pre_routing_ipv6`` checks the header as
``ipv6_rcv`` does, and ``br_nf_pre_routing_finish_ipv6`` bridges a DNAT whose route leads
back into the bridge through ``br_nf_pre_routing_finish_bridge``, as for IPv4), with the
IPv6 routes and the neighbour entries Neighbor Discovery made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pktsim.core.events import Event
from pktsim.core.frame import Frame, Reaction
from pktsim.wire.checksum import checksum
from pktsim.wire.parse import ip_str

if TYPE_CHECKING:
    from pktsim.devices.netns import Hooks, Netns

ETH_P_IP = b"\x08\x00"
ETH_P_IPV6 = b"\x86\xdd"
CONNECTED = ("REACHABLE", "PERMANENT")  # NUD_CONNECTED


def is_ipv4(data: bytes) -> bool:
    return len(data) >= 34 and data[12:14] == ETH_P_IP and data[14] >> 4 == 4 and \
        (data[14] & 0x0F) >= 5 and checksum(data[14:14 + (data[14] & 0x0F) * 4]) == 0


def is_ipv6(data: bytes) -> bool:
    """``br_validate_ipv6``: a whole IPv6 header, version 6, a payload the frame holds."""
    return len(data) >= 54 and data[12:14] == ETH_P_IPV6 and data[14] >> 4 == 6 and \
        ((data[18] << 8) | data[19]) <= len(data) - 54


def _ip_packet(host: Netns, data: bytes) -> tuple[Hooks | None, bytes, slice]:
    """The family's hooks, the IP packet without Ethernet padding, and where its
    destination address is; no hooks for anything but IPv4 and IPv6."""
    if is_ipv4(data):
        pkt = data[14:]
        total = (pkt[2] << 8) | pkt[3]
        return host.hooks, pkt[:total] if total <= len(pkt) else pkt, slice(16, 20)
    if host.hooks6 is not None and is_ipv6(data):
        return host.hooks6, data[14:54 + ((data[18] << 8) | data[19])], slice(24, 40)
    return None, b"", slice(0)


def prerouting(host: Netns, bridge: str, now: int, port: str, frame: Frame,
               r: Reaction) -> tuple[Frame | None, bool]:
    """Run PREROUTING on a bridged frame; return (frame to bridge, bridged DNAT happened)."""
    data = frame.data
    hooks, pkt, dst = _ip_packet(host, data)
    if hooks is None:
        return frame, False
    out = hooks.hook("PREROUTING", now, pkt, bridge, "", frame, r)
    if out is None:
        return None, False
    if out == pkt:
        return Frame(data, frame.pid, frame.flow, prerouted=True), False
    new = Frame(data[:14] + out, frame.pid, frame.flow, prerouted=True)
    if out[dst] == pkt[dst]:
        return new, False
    route = (host.routes if dst.start == 16 else host.routes6).lookup(out[dst])
    if route is None or route.dev != bridge:  # routed: up to the node, which forwards it
        return Frame(data[:14] + out, frame.pid, frame.flow, prerouted=True), False
    entry = host.neigh.get(bridge, out[dst])
    if entry is not None and entry.mac is not None and entry.state in CONNECTED:
        r.step(Event.BRNF, f"{bridge}: bridged DNAT, destination MAC -> neighbour of "
               f"{ip_str(out[dst])}", port, frame)
        return Frame(entry.mac + data[6:14] + out, frame.pid, frame.flow, prerouted=True), True
    slow = Frame(data[:14] + out, frame.pid, frame.flow, prerouted=True,
                 brnf=(data[6:12], port))
    return slow, True


def forward(host: Netns, bridge: str, now: int, frame: Frame, r: Reaction) -> Frame | None:
    """FORWARD then POSTROUTING for a frame bridged from port to port."""
    if not frame.prerouted:  # set only by ``prerouting``: an IPv4 or IPv6 packet
        return frame
    hooks = host.hooks6 if frame.data[12:14] == ETH_P_IPV6 else host.hooks
    if hooks is None:
        return frame
    pkt = frame.data[14:]
    for hook in ("FORWARD", "POSTROUTING"):
        out = hooks.hook(hook, now, pkt, bridge, bridge, frame, r)
        if out is None:
            return None
        pkt = out
    return Frame(frame.data[:14] + pkt, frame.pid, frame.flow)
