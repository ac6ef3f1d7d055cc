"""Overlay devices: VXLAN (flannel's ``flannel.1``, Calico's ``vxlan.calico``) and IP-in-IP
(flannel's ``flannel.ipip``, Calico's ``tunl0``).

Theory of operation
-------------------
A tunnel is a device between two ports of the node's namespace.  Its ``dev`` port is the
interface the routing table points at (captured: ``node-1:flannel.1`` carries the inner
Ethernet frames, ``node-1:flannel.ipip`` or ``node-1:tunl0`` the bare inner IPv4 packets,
LINKTYPE_RAW).  Its ``stack``
port is the tunnel's socket inside the same namespace: encapsulated packets leave through it
to be routed like any packet the node sends (out of ``eth0``, after ARP), and packets for the
tunnel (UDP 8472 or 4789, IP protocol 4) come back through it to be decapsulated.

VXLAN (Linux ``drivers/net/vxlan``, flannel ``pkg/backend/vxlan``): the inner destination MAC
is looked up in the device's FDB — flannel installs one permanent entry per remote node
(VTEP MAC -> node IP), so nothing is learned and no ARP crosses the overlay.  The outer UDP
source port comes from a hash of the inner flow within 32768-60999 (``udp_flow_src_port``):
a TCP socket's own random hash, so each direction has its port, and otherwise the flow
dissector's symmetric hash, so ping's request and reply share one.  Destination 8472, VXLAN
flags 0x08 and the VNI.  Outer IPv4: TTL 64, no DF, and a real UDP checksum (flannel leaves
``udpcsum`` at the kernel's default, on; checked against the kernel,
docs/kernel-observations.md §8.2).  A device with an IPv6 local address (flannel's
``flannel-v6.1`` in a dual-stack cluster) sends over IPv6: hop limit 64, flow label 0 (the
device's ``label``), the UDP checksum always (IPv6 requires it).

IP-in-IP (``ttl inherit nopmtudisc``, as both flannel and Calico leave it): the outer
destination is the route's gateway (the remote node), protocol 4, the outer TTL inherited
from the inner packet, and the inner DF bit copied out (``ip_tunnel_xmit``).
"""

from __future__ import annotations

import hashlib
import struct

from pktsim.core.events import Encap, Event
from pktsim.core.frame import DropReason, Frame, Reaction
from pktsim.wire import build
from pktsim.wire.build import PROTO_IPIP, PROTO_UDP
from pktsim.wire.parse import ip_str, mac_str

VXLAN_PORT = 8472  # Linux's vxlan_port (drivers/net/vxlan/vxlan_core.c), not IANA's 4789
PORT_RANGE = (32768, 60999)


class _IpIds:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.ids: dict[bytes, int] = {}

    def next(self, dst: bytes) -> int:
        cur = self.ids.get(dst)
        if cur is None:
            cur = int.from_bytes(hashlib.sha256(self.seed.to_bytes(8, "big") + dst).digest()[:2],
                                 "big")
        self.ids[dst] = (cur + 1) & 0xFFFF
        return cur


class VxlanDevice:
    """``flannel.<VNI>`` / ``vxlan.calico``: encapsulates inner Ethernet frames in UDP by
    its FDB."""

    def __init__(self, host: str, name: str, *, vni: int, local_ip: bytes, seed: int,
                 port: int = VXLAN_PORT) -> None:
        self.host = host
        self.name = name
        self.vni = vni
        self.port = port
        self.local_ip = local_ip
        # VTEP MAC -> node IP (permanent); shared by every node (share_fdb): see fdb_entries
        self.fdb: dict[bytes, bytes] = {}
        self._own_mac: bytes | None = None  # left out of a shared ``fdb``
        self._seed = seed
        self._ids = _IpIds(seed)

    def share_fdb(self, fdb: dict[bytes, bytes], own_mac: bytes) -> None:
        """Every VTEP of the cluster, shared by all nodes' devices (never changed after
        the build); this device's own MAC is not one of its entries."""
        self.fdb, self._own_mac = fdb, own_mac

    def fdb_entries(self) -> list[tuple[bytes, bytes]]:
        """``bridge fdb show dev NAME``'s entries: (MAC, remote IP), by MAC."""
        return sorted((mac, ip) for mac, ip in self.fdb.items() if mac != self._own_mac)

    def next_deadline(self) -> int | None:
        return None

    def on_deadline(self, now: int) -> Reaction:
        return Reaction()

    def source_port(self, inner: bytes) -> int:
        """A hash of the inner flow, as ``udp_flow_src_port`` spreads it over the range."""
        if inner[12:14] == b"\x86\xdd":
            key = _flow_key6(inner) if len(inner) >= 54 else inner[:14]
        elif len(inner) < 34:
            key = inner[:14]
        elif inner[23] == 6 and len(inner) >= 38:  # a TCP socket's hash: one per direction
            key = inner[26:34] + inner[34:38]
        else:  # the flow dissector's hash is symmetric (__flow_hash_consistentify)
            ends = sorted((inner[26:30], inner[30:34]))
            key = ends[0] + ends[1] + inner[23:24]
            if inner[23] == 17 and len(inner) >= 38:
                key += b"".join(sorted((inner[34:36], inner[36:38])))
        digest = hashlib.sha256(self._seed.to_bytes(8, "big") + key).digest()
        lo, hi = PORT_RANGE
        return lo + int.from_bytes(digest[:4], "big") % (hi - lo + 1)

    def receive(self, now: int, port: str, frame: Frame) -> Reaction:
        return self._encap(frame) if port == "dev" else self._decap(frame)

    def _encap(self, frame: Frame) -> Reaction:
        r = Reaction()
        inner = frame.data
        remote = self.fdb.get(inner[0:6]) if inner[0:6] != self._own_mac else None
        if remote is None:
            r.drop(DropReason.NO_ROUTE, self.name, frame, f"no FDB entry for {mac_str(inner[0:6])}")
            return r
        header = struct.pack("!B3xI", 0x08, self.vni << 8)
        sport = self.source_port(inner)
        udp = build.udp(self.local_ip, remote, sport, self.port, header + inner)
        if len(remote) == 16:  # vxlan6_xmit_skb: hop limit 64, the device's label 0
            outer = build.ipv6(self.local_ip, remote, PROTO_UDP, udp, hlim=64)
        else:
            outer = build.ipv4(self.local_ip, remote, PROTO_UDP, udp, ttl=64,
                               ident=self._ids.next(remote))
        r.step(Event.ENCAP, f"{self.name}: VXLAN VNI {self.vni}, fdb {mac_str(inner[0:6])} -> "
               f"{ip_str(remote)}, UDP {sport} -> {self.port}", self.name, frame,
               Encap(ip_str(remote), self.vni))
        r.send("stack", frame.with_data(outer))
        return r

    def _decap(self, frame: Frame) -> Reaction:
        r = Reaction()
        payload = frame.data
        if len(payload) < 8 + 14 or not payload[0] & 0x08:
            r.drop(DropReason.MALFORMED, self.name, frame, "not a VXLAN packet")
            return r
        vni = int.from_bytes(payload[4:7], "big")
        if vni != self.vni:
            r.drop(DropReason.NOT_FOR_US, self.name, frame, f"VNI {vni}")
            return r
        r.step(Event.DECAP, f"{self.name}: VXLAN VNI {vni} decapsulated", self.name, frame)
        r.send("dev", frame.with_data(payload[8:]))
        return r


def _flow_key6(inner: bytes) -> bytes:
    """The hashed fields of an inner IPv6 frame: a TCP socket's own (one per direction),
    else the flow dissector's: the addresses (sorted) and next header, then the flow label
    when there is one (``FLOW_DISSECTOR_F_STOP_AT_FLOW_LABEL``: the ports are not read,
    and each direction has its label, so ping's request and reply get different source
    ports -- unlike IPv4's), else the UDP ports (sorted)."""
    nh, src, dst = inner[20], inner[22:38], inner[38:54]
    if nh == 6 and len(inner) >= 58:
        return src + dst + inner[54:58]
    ends = sorted((src, dst))
    key = ends[0] + ends[1] + bytes((nh,))
    label = int.from_bytes(inner[14:18], "big") & 0xFFFFF
    if label:
        return key + label.to_bytes(3, "big")
    if nh == 17 and len(inner) >= 58:
        key += b"".join(sorted((inner[54:56], inner[56:58])))
    return key


class IpipDevice:
    """``flannel.ipip``/``tunl0``: wraps the inner IPv4 packet in IPv4 protocol 4 to the
    route's gateway."""

    def __init__(self, host: str, name: str, *, local_ip: bytes, seed: int) -> None:
        self.host = host
        self.name = name
        self.local_ip = local_ip
        self._ids = _IpIds(seed)

    def next_deadline(self) -> int | None:
        return None

    def on_deadline(self, now: int) -> Reaction:
        return Reaction()

    def receive(self, now: int, port: str, frame: Frame) -> Reaction:
        r = Reaction()
        if port == "dev":
            remote = frame.nexthop
            if remote is None:
                r.drop(DropReason.NO_ROUTE, self.name, frame, f"no remote endpoint for {self.name}")
                return r
            inner = frame.data
            outer = build.ipv4(self.local_ip, remote, PROTO_IPIP, inner, ttl=inner[8],
                               ident=self._ids.next(remote), flags=inner[6] << 8 & build.IP_DF)
            r.step(Event.ENCAP, f"{self.name}: IP-in-IP to {ip_str(remote)}", self.name,
                   frame, Encap(ip_str(remote)))
            r.send("stack", frame.with_data(outer))
            return r
        r.step(Event.DECAP, f"{self.name}: IP-in-IP decapsulated", self.name, frame)
        r.send("dev", frame.with_data(frame.data))
        return r
