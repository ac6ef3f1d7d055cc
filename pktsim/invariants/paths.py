"""Invariants about a packet's path: delivery, TTL, NAT between pods, bridge reflection,
checksums; and ``hops``, the captured IP packets they walk -- IPv4 and IPv6 alike (an IPv6
packet's hop limit is its TTL; Neighbor Discovery, like ARP, is the link's and no hop).
"""

from __future__ import annotations

import contextlib
import contextvars
import struct
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from ipaddress import IPv6Address
from socket import inet_ntoa
from typing import Any, TypeVar

from pktsim.api import Result
from pktsim.core.events import DropReason, Event
from pktsim.sinks.trace import CapturedFrame
from pktsim.trace import Trace
from pktsim.wire.checksum import checksum, l4_checksum
from pktsim.wire.parse import VXLAN_PORTS

TCP, UDP, ICMP = 6, 17, 1
_PROTO = {"TCP": TCP, "UDP": UDP}
_NAMES = {TCP: "tcp", UDP: "udp", ICMP: "icmp"}
UDP_TIMEOUT_NS = 30 * 10**9  # nf_conntrack_udp_timeout: a gap this long may start afresh


@dataclass(frozen=True, slots=True)
class Hop:
    """An IP packet as one capture point saw it (the innermost header for tunnels); ``ttl``
    is an IPv6 packet's hop limit."""

    number: int
    if_name: str
    direction: str
    pid: int
    src: str
    dst: str
    ttl: int
    proto: int = 0
    sport: int = 0
    dport: int = 0
    flags: int = 0  # TCP flags
    t_ns: int = 0

    def where(self) -> str:
        return f"frame #{self.number} ({self.if_name}, {self.direction.lower()})"

    def text(self) -> str:
        if self.proto in (TCP, UDP):
            return f"{_NAMES[self.proto]} {self.src}:{self.sport} -> {self.dst}:{self.dport}"
        return f"{_NAMES.get(self.proto, f'proto {self.proto}')} {self.src} -> {self.dst}"


def _frames(result: Result) -> list[CapturedFrame]:
    if result.memory is None:
        raise ValueError("invariants need a run kept in memory: cluster.run() or run(keep=True)")
    return result.memory.frames


# -- tables several invariants derive from one run, made once while ``check_all`` runs ------

_T = TypeVar("_T")
# the run ``sharing`` is active for, and its tables: per context, never a module-level list
_shared: contextvars.ContextVar[tuple[Result, dict[str, Any]] | None] = \
    contextvars.ContextVar("pktsim_invariant_tables", default=None)


@contextlib.contextmanager
def sharing(result: Result) -> Iterator[None]:
    """While active, the tables derived from ``result`` (packet ids, hops, paths) are made
    once and shared by every invariant, instead of once per invariant: ``check_all`` runs
    twelve of them over the same frames.  Outside it every call derives afresh, so a result
    that changes between calls (a live simulation) is never judged on stale tables."""
    token = _shared.set((result, {}))
    try:
        yield
    finally:
        _shared.reset(token)


def _memo(result: Result, name: str, make: Callable[[], _T]) -> _T:
    """``make()``, or its value from earlier in the same ``sharing(result)``."""
    active = _shared.get()
    if active is None or active[0] is not result:
        return make()
    table = active[1]
    if name not in table:
        table[name] = make()
    value: _T = table[name]
    return value


def _trace(result: Result) -> Trace:
    """The run's trace model, made once per ``sharing`` (callers must not change it)."""
    _frames(result)  # raises, naming the fix, for a run not kept in memory
    return _memo(result, "trace", lambda: Trace.of(result))


def _pids(result: Result) -> dict[int, int]:
    """frame number -> packet id, from the trace model (callers must not change it)."""
    return _memo(result, "pids", lambda: _trace(result).frame_pids())


def _outer_ip(f: CapturedFrame) -> bytes:
    if f.iface.linktype == 101:
        return f.data
    if len(f.data) >= 34 and f.data[12:14] in (b"\x08\x00", b"\x86\xdd"):
        return f.data[14:]
    return b""


def _inner_ip(f: CapturedFrame) -> bytes | None:
    data = _outer_ip(f)
    if len(data) >= 40 and data[0] >> 4 == 6:  # Neighbor Discovery is no hop
        return None if data[6] == 58 and len(data) > 40 and 133 <= data[40] <= 137 else data
    while len(data) >= 20 and data[0] >> 4 == 4:
        ihl = (data[0] & 0x0F) * 4
        if data[9] == 4:
            data = data[ihl:]
        elif data[9] == 17 and len(data) >= ihl + 8 + 8 + 34 and \
                struct.unpack_from("!H", data, ihl + 2)[0] in VXLAN_PORTS:
            data = data[ihl + 16 + 14:]
        else:
            return data
    return None


def _hop(f: CapturedFrame, pid: int, ip: bytes) -> Hop:
    if ip[0] >> 4 == 6:
        return _hop6(f, pid, ip)
    ihl = (ip[0] & 0x0F) * 4
    proto, sport, dport, flags = ip[9], 0, 0, 0
    if proto in (TCP, UDP) and len(ip) >= ihl + 4:
        sport, dport = struct.unpack_from("!HH", ip, ihl)
        if proto == TCP and len(ip) >= ihl + 14:
            flags = ip[ihl + 13]
    return Hop(f.number, f.iface.if_name, f.direction.name, pid, inet_ntoa(ip[12:16]),
               inet_ntoa(ip[16:20]), ip[8], proto, sport, dport, flags, f.t_abs_ns)


def _hop6(f: CapturedFrame, pid: int, ip: bytes) -> Hop:
    proto, sport, dport, flags = ip[6], 0, 0, 0
    if proto in (TCP, UDP) and len(ip) >= 44:
        sport, dport = struct.unpack_from("!HH", ip, 40)
        if proto == TCP and len(ip) >= 54:
            flags = ip[53]
    return Hop(f.number, f.iface.if_name, f.direction.name, pid, str(IPv6Address(ip[8:24])),
               str(IPv6Address(ip[24:40])), ip[7], proto, sport, dport, flags, f.t_abs_ns)


def hops(result: Result) -> Iterator[Hop]:
    """Every captured IP packet with its packet id, in capture order."""
    yield from _memo(result, "hops", lambda: list(_hops(result)))


def _hops(result: Result) -> Iterator[Hop]:
    pids = _pids(result)
    for f in _frames(result):
        ip = _inner_ip(f)
        pid = pids.get(f.number)
        if ip is None or pid is None:
            continue
        yield _hop(f, pid, ip)


def _by_packet(result: Result) -> dict[int, list[Hop]]:
    """packet id -> its hops in capture order (callers must not change it: shared)."""
    def make() -> dict[int, list[Hop]]:
        out: dict[int, list[Hop]] = defaultdict(list)
        for hop in hops(result):
            out[hop.pid].append(hop)
        return out

    return _memo(result, "by_packet", make)


# -- delivery, TTL, NAT between pods, reflection, checksums ---------------------------------

def flows_delivered(result: Result) -> None:
    """Every flow got its answers (absent policy, every pod reaches every pod)."""
    bad = [f.line() for f in result.flows if f.status != "ok"]
    assert not bad, "flows not delivered:\n  " + "\n  ".join(bad)


def ttl_decreases_per_routed_hop(result: Result) -> None:
    """TTL never rises along a packet's path, and between any two captures of a packet it
    falls by exactly the number of times the packet was routed in between.

    The path is what the IP hosts on it sent and accepted: captures on bridge ports, and
    flooded copies a host refused (``not addressed to this host``), are off it -- a flood
    reaches hosts in any order, at any TTL."""
    topo = result.topology
    l2_ports = {f"{b.host}:{p}" for b in topo.bridges.values() for p in b.hairpin}
    trace = _trace(result)
    events = trace.events
    routed: dict[int, int] = defaultdict(int)
    first: dict[int, tuple[Hop, int]] = {}
    last: dict[int, Hop] = {}
    for i, e in enumerate(events):
        if e.packet is None:
            continue
        pid = e.packet
        if e.event is Event.ROUTE:
            routed[pid] += 1
            continue
        f = trace.captured(e)
        if f is None or f.iface.if_name in l2_ports or (e.event is Event.RX
                                                        and _refused(events, i)):
            continue
        ip = _inner_ip(f)
        if ip is None:
            continue
        hop = _hop(f, pid, ip)
        before = last.get(pid)
        if before is not None:
            assert hop.ttl <= before.ttl, (
                f"packet {pid} ({before.text()}): TTL rose from {before.ttl} to {hop.ttl} "
                f"between {before.where()} and {hop.where()}")
        last[pid] = hop
        start, routes_then = first.setdefault(pid, (hop, routed[pid]))
        fell, times = start.ttl - hop.ttl, routed[pid] - routes_then
        assert fell == times, (
            f"packet {pid} ({start.text()}): TTL fell by {fell} from {start.where()} to "
            f"{hop.where()} but it was routed {times} times")


def _refused(events: list[Any], i: int) -> bool:
    """Did the host that captured ``events[i]`` (an rx) drop it as not addressed to it?"""
    e = events[i]
    for after in events[i + 1:i + 4]:
        if after.packet == e.packet and after.host == e.host and after.event is Event.DROP:
            return bool(after.drop_reason is DropReason.NOT_FOR_US)
    return False


_BOOKKEEPING = frozenset((Event.CONNTRACK, Event.NAT, Event.NETFILTER))  # after a deliver


def delivered_once(result: Result) -> None:
    """No packet is delivered to a socket twice.

    A tunnel endpoint taking the packet to decapsulate it (``UDP 8472: VXLAN socket``,
    ``IP-in-IP to tunl0``: a ``deliver`` followed by a ``decap``) is a hand-off, not a
    delivery."""
    pending: dict[int, str] = {}  # pid -> host of a deliver that may turn out a hand-off
    seen: dict[tuple[int, str], str] = {}

    def settle(pid: int) -> None:
        host = pending.pop(pid, None)
        if host is None:
            return
        key = (pid, host)
        assert key not in seen, (f"packet {pid} delivered twice at {host} ({seen[key]}, "
                                 f"then {summaries[pid]})")
        seen[key] = summaries[pid]

    summaries: dict[int, str] = {}
    for e in result.events:
        pid = e.packet
        if pid is None:
            continue
        if e.event is Event.DECAP and pid in pending:
            del pending[pid]
            continue
        if e.event is Event.DELIVER:
            settle(pid)
            pending[pid], summaries[pid] = e.host, e.summary
        elif pid in pending and e.event not in _BOOKKEEPING:
            settle(pid)
    for pid in list(pending):
        settle(pid)


def pod_to_pod_not_natted(result: Result) -> None:
    """A packet from a pod IP to a pod IP keeps both addresses on every hop (no NAT), unless
    it is the reply of a connection made to a Service, which conntrack un-NATs."""
    pods = [p for p in result.topology.model.pods.values() if not p.pod.host_network]
    pod_ips = {str(p.ip) for p in pods} | {str(p.ip6) for p in pods if p.ip6 is not None}
    # replies of a connection made to a Service are un-NATed by conntrack, by design
    replies = {e.packet for e in result.events if e.event is Event.NAT
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
    """Every captured IPv4 header, and every TCP, UDP, ICMP and ICMPv6 checksum, verifies."""
    for f in _frames(result):
        _check_ip(f, _outer_ip(f))


def _check_ip(f: CapturedFrame, ip: bytes) -> None:
    if len(ip) >= 40 and ip[0] >> 4 == 6:
        _check_ip6(f, ip)
        return
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
        if proto == 17 and len(body) > 16 + 14 and \
                struct.unpack_from("!H", body, 2)[0] in VXLAN_PORTS:
            inner = body[16:]
            if inner[12:14] == b"\x08\x00":
                _check_ip(f, inner[14:])
    elif proto == 1:
        assert checksum(body) == 0, f"{where}: bad ICMP checksum"
    elif proto == 4:
        _check_ip(f, body)


def _check_ip6(f: CapturedFrame, ip: bytes) -> None:
    """IPv6 has no header checksum; TCP, UDP (never 0 over IPv6) and ICMPv6 cover the
    pseudo-header (RFC 8200 §8.1)."""
    body, proto = ip[40:40 + struct.unpack_from("!H", ip, 4)[0]], ip[6]
    if proto in (6, 17, 58) and len(body) >= 4:
        name = {6: "TCP", 17: "UDP", 58: "ICMPv6"}[proto]
        assert l4_checksum(ip[8:24], ip[24:40], proto, body) == 0, \
            f"frame #{f.number} ({f.iface.if_name}): bad {name} checksum"
