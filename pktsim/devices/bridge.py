"""The node bridge (``cbr0``): a Linux learning bridge, as net/bridge/ does it.

Theory of operation
-------------------
* Every port learns (``BR_LEARNING``, set for a new port by ``new_nbp`` in
  ``net/bridge/br_if.c``): the source MAC of each frame received on a port is
  written to the forwarding database (FDB) with the time it was seen.  Multicast or all-zero
  source MACs are invalid and the frame is dropped (``br_handle_frame``).
* An FDB entry ages out ``ageing_time`` (300 s: ``BR_DEFAULT_AGEING_TIME``, set by
  ``br_dev_setup`` in ``net/bridge/br_device.c``) after its last refresh.  As in ns-3's
  ``BridgeNetDevice`` the age is checked on lookup: a stale entry is a miss.
* Broadcast, multicast and unknown unicast are flooded to every port but the ingress port
  (``BR_FLOOD``); a known unicast goes to the learned port only.
* ``should_deliver()`` (``net/bridge/br_forward.c``): never out of the ingress port unless
  that port is in hairpin mode — so with hairpin on, a flood *does* return to its sender.
* The bridge is also an interface of the node (``cbr0`` itself, the local port): frames for
  the bridge's own MAC, and broadcast/multicast, are passed up to the node's IP stack; frames
  the node sends on ``cbr0`` enter the bridge from the local port.  The bridge MAC is pinned
  (the CNI bridge plugin sets it to itself: containernetworking/plugins
  ``plugins/main/bridge/bridge.go``, ``ensureAddr``) so it never changes as ports come and go.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pktsim.core.events import Event, FdbLearn, FdbLookup
from pktsim.core.frame import DropReason, Frame, Reaction
from pktsim.devices import brnf
from pktsim.wire.parse import mac_str

if TYPE_CHECKING:
    from pktsim.devices.netns import Netns

AGEING_NS = 300 * 10**9  # BR_DEFAULT_AGEING_TIME, include/linux/if_bridge.h


@dataclass(slots=True)
class FdbEntry:
    port: str
    updated: int  # ns of the last frame seen from this MAC
    local: bool = False


class Bridge:
    """A learning bridge with named ports; ``local_port`` is the bridge's own interface."""

    def __init__(self, host: str, name: str, mac: bytes, *, ageing_ns: int = AGEING_NS,
                 local: bool = True) -> None:
        self.host = host
        self.name = name
        self.mac = mac
        self.local_port = name
        self.ageing_ns = ageing_ns
        self.hairpin: dict[str, bool] = {}
        self.fdb: dict[bytes, FdbEntry] = {mac: FdbEntry(name, 0, local=True)} if local else {}
        self.has_local = local  # False for a plain switch: no interface of its own
        self.promisc = False
        self.host_ns: Netns | None = None  # set: bridge-nf-call-iptables=1 (br_netfilter)

    def add_port(self, port: str, *, hairpin: bool = False) -> None:
        """Enslave ``port`` (a host-side veth); ``hairpin`` is the CNI ``hairpinMode``."""
        self.hairpin[port] = hairpin

    def remove_port(self, port: str) -> None:
        self.hairpin.pop(port, None)
        for mac in [m for m, e in self.fdb.items() if e.port == port and not e.local]:
            del self.fdb[mac]

    def lookup(self, now: int, mac: bytes) -> FdbEntry | None:
        """The live FDB entry for ``mac``, or ``None`` (absent or aged out)."""
        entry = self.fdb.get(mac)
        if entry is None or entry.local:
            return entry
        if now - entry.updated > self.ageing_ns:
            return None
        return entry

    def fdb_table(self, now: int) -> list[tuple[str, str, str, float]]:
        """``bridge fdb show``-like rows: (mac, port, 'permanent'|'', age seconds)."""
        rows = []
        for mac, entry in sorted(self.fdb.items(), key=lambda kv: (kv[1].port, kv[0])):
            if entry.local:
                rows.append((mac_str(mac), entry.port, "permanent", 0.0))
            elif now - entry.updated <= self.ageing_ns:
                rows.append((mac_str(mac), entry.port, "", (now - entry.updated) / 1e9))
        return rows

    def next_deadline(self) -> int | None:
        return None

    def on_deadline(self, now: int) -> Reaction:
        return Reaction()

    def receive(self, now: int, port: str, frame: Frame) -> Reaction:
        r = Reaction()
        data = frame.data
        if len(data) < 14:
            r.drop(DropReason.MALFORMED, port, frame, f"{len(data)} bytes, no Ethernet header")
            return r
        dst, src = data[0:6], data[6:12]
        if src[0] & 1 or src == b"\x00" * 6:
            r.drop(DropReason.MALFORMED, port, frame, f"invalid source MAC {mac_str(src)}")
            return r
        ingress = port
        if port != self.local_port:
            self._learn(now, port, src, frame, r)
            if self.host_ns is not None and not dst[0] & 1:
                hooked, _ = brnf.prerouting(self.host_ns, self.name, now, port, frame, r)
                if hooked is None:
                    return r
                if hooked.brnf is not None:  # the slow path: through the node's neighbours
                    r.send(f"{self.name}.brnf", hooked)
                    return r
                frame, dst = hooked, hooked.data[0:6]
        elif frame.brnf is not None:  # back from neighbour output: the sender's MAC again
            src_mac, ingress = frame.brnf
            frame = Frame(dst + src_mac + data[12:], frame.pid, frame.flow, prerouted=True)
            r.step(Event.BRNF, f"{self.name}: bridged DNAT resumes as from {ingress}", ingress,
                   frame)
        if dst[0] & 1:
            self._flood(port, frame, r, "broadcast" if dst == b"\xff" * 6 else "multicast",
                        to_local=port != self.local_port and self.has_local)
            return r
        entry = self.lookup(now, dst)
        if entry is None:
            if not self.promisc:
                forwarded = self._nf_forward(now, frame, r)
                if forwarded is None:
                    return r
                frame = forwarded
            self._flood(port, frame, r, "unknown unicast", to_local=self.promisc)
            return r
        if entry.local:
            r.step(Event.FORWARD, f"{self.name}: {mac_str(dst)} is the bridge itself: up to the "
                   "host", port, frame, FdbLookup("local"))
            r.send(self.local_port, frame)
            return r
        if entry.port == ingress and not self.hairpin.get(ingress, False):
            r.drop(DropReason.INGRESS_PORT, ingress, frame, f"{mac_str(dst)} is on {ingress}")
            return r
        r.step(Event.FORWARD, f"{self.name}: fdb hit {mac_str(dst)} -> {entry.port}", port,
               frame, FdbLookup("hit", entry.port))
        forwarded = self._nf_forward(now, frame, r)
        if forwarded is not None:
            r.send(entry.port, forwarded)
        return r

    def _nf_forward(self, now: int, frame: Frame, r: Reaction) -> Frame | None:
        if self.host_ns is None:
            return frame
        return brnf.forward(self.host_ns, self.name, now, frame, r)

    def _learn(self, now: int, port: str, src: bytes, frame: Frame, r: Reaction) -> None:
        entry = self.fdb.get(src)
        if entry is not None and entry.local:
            return
        if entry is None or entry.port != port or now - entry.updated > self.ageing_ns:
            r.step(Event.LEARN, f"{self.name}: learn {mac_str(src)} on {port}", port, frame,
                   FdbLearn(mac_str(src), port))
            self.fdb[src] = FdbEntry(port, now)
        else:
            entry.updated = now

    def _flood(self, port: str, frame: Frame, r: Reaction, why: str, *, to_local: bool) -> None:
        outs = [p for p, hairpin in self.hairpin.items() if p != port or hairpin]
        up = to_local and self.has_local
        r.step(Event.FLOOD, f"{self.name}: {why}: flood to {', '.join(outs) or 'no port'}"
               + (" and up to the host" if up else ""), port, frame,
               FdbLookup("miss", tuple(outs)))
        for out in outs:
            r.send(out, frame)
        if to_local and self.has_local:
            r.send(self.local_port, frame)
