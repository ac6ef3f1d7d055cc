"""Network invariants to check on any run: plain functions that raise a readable
``AssertionError`` naming the packet and the hop where the property broke.

    result = cluster.run()
    invariants.check_all(result)            # or each one on its own

Packets are followed by the id pktsim gives every packet (it survives forwarding, NAT and
encapsulation); hops are the frames of ``capture.pcapng``, named by frame number and
interface, so a failure can be looked up in Wireshark.
"""

from __future__ import annotations

import struct
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address
from itertools import pairwise

from pktsim.api import Result
from pktsim.sinks.trace import CapturedFrame
from pktsim.wire.checksum import checksum, l4_checksum

__all__ = [
    "check_all",
    "checksums_valid",
    "flows_delivered",
    "no_reflection_without_hairpin",
    "pod_to_pod_not_natted",
    "ttl_decreases_per_routed_hop",
]


@dataclass(frozen=True, slots=True)
class Hop:
    """An IPv4 packet as one capture point saw it (the innermost header for tunnels)."""

    number: int
    if_name: str
    direction: str
    pid: int
    src: str
    dst: str
    ttl: int

    def where(self) -> str:
        return f"frame #{self.number} ({self.if_name}, {self.direction.lower()})"


def _frames(result: Result) -> list[CapturedFrame]:
    if result.memory is None:
        raise ValueError("invariants need a run kept in memory: cluster.run() or run(keep=True)")
    return result.memory.frames


def _pids(result: Result) -> dict[int, int]:
    """frame number -> packet id, from the trace."""
    return {e.frame: e.packet for e in result.events if e.frame is not None
            and e.packet is not None}


def _inner_ip(f: CapturedFrame) -> bytes | None:
    data = f.data if f.iface.linktype == 101 else (
        f.data[14:] if len(f.data) >= 34 and f.data[12:14] == b"\x08\x00" else b"")
    while len(data) >= 20 and data[0] >> 4 == 4:
        ihl = (data[0] & 0x0F) * 4
        if data[9] == 4:
            data = data[ihl:]
        elif data[9] == 17 and len(data) >= ihl + 8 + 8 + 34 and \
                struct.unpack_from("!H", data, ihl + 2)[0] == 8472:
            data = data[ihl + 16 + 14:]
        else:
            return data
    return None


def hops(result: Result) -> Iterator[Hop]:
    pids = _pids(result)
    for f in _frames(result):
        ip = _inner_ip(f)
        pid = pids.get(f.number)
        if ip is None or pid is None:
            continue
        yield Hop(f.number, f.iface.if_name, f.direction.name, pid,
                  str(IPv4Address(ip[12:16])), str(IPv4Address(ip[16:20])), ip[8])


def _by_packet(result: Result) -> dict[int, list[Hop]]:
    out: dict[int, list[Hop]] = defaultdict(list)
    for hop in hops(result):
        out[hop.pid].append(hop)
    return out


def flows_delivered(result: Result) -> None:
    """Every flow got its answers (absent policy, every pod reaches every pod)."""
    bad = [f.line() for f in result.flows if f.status != "ok"]
    assert not bad, "flows not delivered:\n  " + "\n  ".join(bad)


def ttl_decreases_per_routed_hop(result: Result) -> None:
    """TTL never rises along a packet's path, and falls by one at each routed hop."""
    routed: dict[int, int] = defaultdict(int)
    for e in result.events:
        if e.event == "route" and e.packet is not None:
            routed[e.packet] += 1
    for pid, path in _by_packet(result).items():
        for before, after in pairwise(path):
            assert after.ttl <= before.ttl, (
                f"packet {pid} ({before.src} -> {before.dst}): TTL rose from {before.ttl} to "
                f"{after.ttl} between {before.where()} and {after.where()}")
        fell = path[0].ttl - path[-1].ttl
        assert fell == routed[pid], (
            f"packet {pid} ({path[0].src} -> {path[0].dst}): TTL fell by {fell} from "
            f"{path[0].where()} to {path[-1].where()} but it was routed {routed[pid]} times")


def delivered_once(result: Result) -> None:
    """No packet is delivered to a socket twice."""
    seen: dict[tuple[int, str], int] = defaultdict(int)
    for e in result.events:
        if e.event == "deliver" and e.packet is not None:
            seen[(e.packet, e.host)] += 1
            assert seen[(e.packet, e.host)] == 1, (
                f"packet {e.packet} delivered twice at {e.host} ({e.summary})")


def pod_to_pod_not_natted(result: Result) -> None:
    """A packet from a pod IP to a pod IP keeps both addresses on every hop (no NAT)."""
    pod_ips = {str(p.ip) for p in result.topology.model.pods.values()
               if not p.pod.host_network}
    # replies of a connection made to a Service are un-NATed by conntrack, by design
    replies = {e.packet for e in result.events if e.event == "nat"
               and e.summary.startswith("conntrack un-")}
    for pid, path in _by_packet(result).items():
        first = path[0]
        if first.src in pod_ips and first.dst in pod_ips and pid not in replies:
            for hop in path[1:]:
                assert (hop.src, hop.dst) == (first.src, first.dst), (
                    f"packet {pid}: pod-to-pod {first.src} -> {first.dst} became "
                    f"{hop.src} -> {hop.dst} at {hop.where()}")


def no_reflection_without_hairpin(result: Result) -> None:
    """A bridge never sends a frame back out of the port it came in on, unless hairpin."""
    topo = result.topology
    ports = {f"{b.host}:{p}": hairpin for b in topo.bridges.values()
             for p, hairpin in b.hairpin.items()}
    pids = _pids(result)
    came_in: dict[tuple[int, bytes], str] = {}
    for f in _frames(result):
        name = f.iface.if_name
        if name not in ports:
            continue
        key = (pids.get(f.number, -1), f.data)
        if f.direction.name == "INBOUND":
            came_in[key] = name
        elif came_in.get(key) == name:
            assert ports[name], (f"frame #{f.number}: the bridge sent packet {key[0]} back "
                                 f"out of {name}, its ingress port, with hairpin off")


def checksums_valid(result: Result) -> None:
    """Every captured IPv4 header, and every TCP, UDP and ICMP checksum, verifies."""
    for f in _frames(result):
        ip = f.data if f.iface.linktype == 101 else (
            f.data[14:] if f.data[12:14] == b"\x08\x00" else b"")
        _check_ip(f, ip)


def _check_ip(f: CapturedFrame, ip: bytes) -> None:
    if len(ip) < 20:
        return
    ihl = (ip[0] & 0x0F) * 4
    where = f"frame #{f.number} ({f.iface.if_name})"
    assert checksum(ip[:ihl]) == 0, f"{where}: bad IPv4 header checksum"
    total = struct.unpack_from("!H", ip, 2)[0]
    body, proto = ip[ihl:total], ip[9]
    if proto in (6, 17) and len(body) >= 8:
        if proto == 17 and body[6:8] == b"\x00\x00":
            return
        assert l4_checksum(ip[12:16], ip[16:20], proto, body) == 0, \
            f"{where}: bad {'TCP' if proto == 6 else 'UDP'} checksum"
        if proto == 17 and len(body) > 16 + 14 and struct.unpack_from("!H", body, 2)[0] == 8472:
            inner = body[16:]
            if inner[12:14] == b"\x08\x00":
                _check_ip(f, inner[14:])
    elif proto == 1:
        assert checksum(body) == 0, f"{where}: bad ICMP checksum"
    elif proto == 4:
        _check_ip(f, body)


def check_all(result: Result) -> None:
    for check in (flows_delivered, ttl_decreases_per_routed_hop, delivered_once,
                  pod_to_pod_not_natted, no_reflection_without_hairpin, checksums_valid):
        check(result)
