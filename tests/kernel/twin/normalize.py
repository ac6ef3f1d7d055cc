"""Normalisation: the per-field rules that make pktsim's frames and the kernel's
comparable, as a table.

Two captures of the same scenario are never byte-equal, even kernel against kernel: the
kernel draws some header fields at random (ISNs, IP ids, ephemeral ports, TCP timestamp
offsets, flow hashes), iputils writes the time into its payload, and offloaded checksums
are left partial on the wire tap.  ``normalize`` decodes every frame into header fields
(:mod:`decode`) and passes each field through :data:`TABLE`: every entry names the header
field it applies to, says how it is normalised and why the kernel makes it differ.  A
field no entry claims is compared as decoded (TTL, DF, lengths, flags, payloads, ...).

First-appearance names ("id1", "eph2", ...) are counted per ``normalize`` call, over all
frames of the call and the packets nested in them (VXLAN/IP-in-IP inner packets, ICMP
quotes), so equal values stay equal and different ones stay different.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .decode import Field, decode

__all__ = ["TABLE", "Normaliser", "Session", "describe", "normalize"]

EPHEMERAL = range(32768, 60999 + 1)  # Linux' default net.ipv4.ip_local_port_range
OPT_NAMES = {0: "EOL", 1: "NOP", 2: "MSS", 3: "WScale", 4: "SAckOK", 5: "SAck",
             8: "Timestamp", 30: "MPTCP", 34: "TFO"}
Conn = tuple[str, int, str, int]
Out = list[tuple[str, Any]]


@dataclass
class Session:
    """One ``normalize`` call: its options and the maps its renamings share."""

    macs: dict[str, str]
    keep_window: bool = True
    keep_ip_id: bool = True
    ephemeral_ports: bool = True
    nat_ips: frozenset[str] = frozenset()
    ip_ids: dict[str, dict[int, str]] = field(default_factory=dict)
    icmp_ids: dict[int, str] = field(default_factory=dict)
    ephemeral: dict[int, str] = field(default_factory=dict)
    nat_ports: dict[tuple[str, int], str] = field(default_factory=dict)
    vxlan_sports: dict[int, str] = field(default_factory=dict)
    flowlabels: dict[int, str] = field(default_factory=dict)
    isn: dict[Conn, int] = field(default_factory=dict)
    alias: dict[Conn, Conn] = field(default_factory=dict)


def first_seen(names: dict[Any, str], value: Hashable, stem: str) -> str:
    """``stem<n>``, n = the order in which ``value`` first appeared in ``names``."""
    return names.setdefault(value, f"{stem}{len(names) + 1}")


@dataclass(frozen=True)
class Normaliser:
    """One entry of :data:`TABLE`.

    ``apply(field, session)`` returns the (key, value) pairs to report instead of the
    field (keys relative to the field's prefix; ``[]`` drops it), or None when the value
    is not its business: the next entry with the same ``tag`` decides, and if none does
    the field is reported as decoded."""

    tag: str
    field: str
    how: str
    why: str
    apply: Callable[[Field, Session], Out | None]


# --------------------------------------------------------------------------- the rules

def _mac(f: Field, s: Session) -> Out | None:
    name = s.macs.get(f.value)
    return None if name is None else [(f.key, name)]


def _ip_id(f: Field, s: Session) -> Out:
    if not s.keep_ip_id:
        return []
    if f.value == 0:
        return [(f.key, 0)]
    return [(f.key, first_seen(s.ip_ids.setdefault(f.ctx, {}), f.value, "id"))]


def _tcp_seq(f: Field, s: Session) -> Out:
    me = f.ctx.me
    if f.ctx.flags & 0x02 or me not in s.isn:
        s.isn[me] = f.value
    return [(f.key, (f.value - s.isn[me]) & 0xFFFFFFFF)]


def _nat_peer(s: Session, me: Conn, ack: int) -> Conn:
    """The other direction of ``me``'s connection when NAT made the two directions'
    addresses differ where this interface sees them (e.g. cbr0 of a DNATing node sees
    the SYN after DNAT and the SYN-ACK after un-DNAT): the known ISN of another
    direction closest below ``ack`` (at most 2**24), remembered for ``me``."""
    if me in s.alias:
        return s.alias[me]
    best = None
    for key, value in s.isn.items():
        dist = (ack - value) & 0xFFFFFFFF
        if key != me and dist <= 1 << 24 and (best is None or dist < best[0]):
            best = (dist, key)
    if best is None:
        return (me[2], me[3], me[0], me[1])
    s.alias[me] = best[1]
    return best[1]


def _tcp_ack(f: Field, s: Session) -> Out:
    ack, me = f.value, f.ctx.me
    if not f.ctx.flags & 0x10:
        return [(f.key, ack)]
    peer = (me[2], me[3], me[0], me[1])
    if peer not in s.isn:
        peer = _nat_peer(s, me, ack)
    if peer in s.isn:
        return [(f.key, (ack - s.isn[peer]) & 0xFFFFFFFF)]
    return [(f.key, f"abs:{ack}")]


def _tcp_window(f: Field, s: Session) -> Out | None:
    return None if s.keep_window else []


def _tcp_options(f: Field, s: Session) -> Out:
    out: list[tuple[str, int | None]] = []
    for kind, data in f.value:
        name = OPT_NAMES.get(kind, f"kind{kind}")
        if kind == 2:
            out.append((name, struct.unpack("!H", data)[0]))
        elif kind == 3:
            out.append((name, data[0]))
        else:
            out.append((name, None))
    return [(f.key, out)]


def _nat_port(f: Field, s: Session) -> Out | None:
    if f.ctx not in s.nat_ips:
        return None
    return [(f.key, first_seen(s.nat_ports, (f.ctx, f.value), "natport"))]


def _ephemeral_port(f: Field, s: Session) -> Out | None:
    if not s.ephemeral_ports or f.value not in EPHEMERAL:
        return None
    return [(f.key, first_seen(s.ephemeral, f.value, "eph"))]


def _icmp_id(f: Field, s: Session) -> Out:
    return [(f.key, first_seen(s.icmp_ids, f.value, "icmpid"))]


def _echo_payload(f: Field, s: Session) -> Out:
    data: bytes = f.value
    return [(f.key, (bytes(min(16, len(data))) + data[16:]).hex())]


def _vxlan_sport(f: Field, s: Session) -> Out:
    return [(f.key, first_seen(s.vxlan_sports, f.value, "vxsport")),
            (f"{f.key}_in_range", f.value in EPHEMERAL)]


def _vxlan_csum(f: Field, s: Session) -> Out:
    return [(f"{f.key}_zero", f.value == 0)]


def _flowlabel(f: Field, s: Session) -> Out:
    if f.value == 0:
        return [(f.key, 0)]
    return [(f.key, first_seen(s.flowlabels, f.value, "fl"))]


def _nd_nonce(f: Field, s: Session) -> Out:
    return [(f.key, "nonce")]


def _drop(f: Field, s: Session) -> Out:
    return []


# --------------------------------------------------------------------------- the table

TABLE: tuple[Normaliser, ...] = (
    Normaliser(
        "mac", "MAC address (Ethernet destination/source, ARP sender/target hardware)",
        how="named through ``macs`` (``a.eth0``, ``node-1.cbr0``, ``broadcast``, ``zero``);"
            " a MAC not in ``macs`` is kept verbatim",
        why="not random here: the twins give every interface the MAC pktsim chose (the"
            " kernel would draw veth and bridge MACs, eth_random_addr). Named so a row or"
            " a diff says which interface sent a frame and to whom",
        apply=_mac),
    Normaliser(
        "ip_id", "IPv4 identification",
        how="0 stays 0; any other value -> ``id<n>``, n = order of first appearance among"
            " the non-zero ids of the same source address; left out with keep_ip_id=False",
        why="Linux draws it: a connected socket counts from a random start (inet_id ="
            " get_random_u16() at connect()/accept()); a DF packet without one carries 0;"
            " any other takes the next value of a counter bucket chosen by a siphash of the"
            " addresses with a boot-time key and advanced by a random step with time"
            " (ip_select_ident_segs, __ip_select_ident). Values change every run; which"
            " packets carry 0 and which ids repeat (one packet seen on several interfaces)"
            " do not",
        apply=_ip_id),
    Normaliser(
        "tcp_seq", "TCP sequence number",
        how="relative to the ISN of its direction (taken from a SYN, else from the first"
            " segment seen), modulo 2**32",
        why="the ISN is secure_tcp_seq(): a siphash of the 4-tuple keyed with a boot-time"
            " random secret plus a nanosecond clock (RFC 6528), new every connection",
        apply=_tcp_seq),
    Normaliser(
        "tcp_ack", "TCP acknowledgment number",
        how="with ACK set: relative to the opposite direction's ISN; if NAT made the two"
            " directions' addresses differ where the interface sees them (cbr0 of a"
            " DNATing node sees the SYN after DNAT, the SYN-ACK after un-DNAT), relative to"
            " the known ISN closest below it (within 2**24), the pairing kept for the"
            " direction; ``abs:<n>`` if none fits. Without ACK: the value as sent",
        why="it counts in the peer's ISN, random as the sequence number's",
        apply=_tcp_ack),
    Normaliser(
        "tcp_window", "TCP window",
        how="kept; left out with keep_window=False",
        why="deterministic here, so compared: the window follows the receive buffer, and"
            " the twins pin net.ipv4.tcp_rmem (per namespace) to what pktsim models."
            " keep_window=False is for captures where receive-buffer autotuning"
            " (tcp_rcv_space_adjust, driven by how fast the application reads) moves it",
        apply=_tcp_window),
    Normaliser(
        "tcp_options", "TCP options",
        how="a list of (kind name, value): the value kept for MSS and WScale, None for"
            " every other kind (Timestamp, SAck, MPTCP, TFO, unknown ``kind<n>``)",
        why="MSS and window scale follow from the MTU and tcp_rmem, fixed here. TSval is"
            " the TCP clock plus a per-connection random offset (secure_tcp_ts_off) and"
            " TSecr echoes the peer's; SACK blocks are absolute sequence numbers (random"
            " ISN). Kinds and their order still compare",
        apply=_tcp_options),
    Normaliser(
        "port", "TCP/UDP port paired with a source-NAT address (``nat_ips``)",
        how="the source port when the source address is in ``nat_ips``, the destination"
            " port when the destination is -> ``natport<n>`` by first appearance of"
            " (address, port); before, and instead of, the ephemeral renaming",
        why="MASQUERADE --random-fully (kube-proxy's KUBE-POSTROUTING, flannel's"
            " FLANNEL-POSTRTG) draws the mapped port at random in 1024-65535"
            " (nf_nat_l4proto_unique_tuple, get_random_u16): a new draw every kernel run,"
            " a seeded one in pktsim",
        apply=_nat_port),
    Normaliser(
        "port", "TCP/UDP ephemeral port",
        how="a port in 32768-60999 -> ``eph<n>`` by first appearance; off with"
            " ephemeral_ports=False",
        why="connect() takes the local port from net.ipv4.ip_local_port_range (default"
            " 32768-60999), starting at a keyed hash of the addresses plus a random"
            " perturbation (__inet_hash_connect, secure_ipv4_port_ephemeral): a different"
            " port every run",
        apply=_ephemeral_port),
    Normaliser(
        "icmp_id", "ICMP echo identifier",
        how="``icmpid<n>`` by first appearance",
        why="iputils ping's identifier is chosen by the kernel for an ICMP datagram socket"
            " (ping_get_port: the next free value of a global rover) or is derived from"
            " the process id with a raw socket; MASQUERADE remaps it at random: different"
            " every run",
        apply=_icmp_id),
    Normaliser(
        "echo_payload", "ICMP echo data",
        how="hex, the first 16 bytes (at most) replaced by zeros",
        why="iputils ping puts the send time (a struct timeval, 16 bytes on 64-bit) at the"
            " start of the data to compute the RTT; the fill pattern after it is kept",
        apply=_echo_payload),
    Normaliser(
        "vxlan_sport", "VXLAN outer UDP source port",
        how="``vxsport<n>`` by first appearance, plus ``udp_sport_in_range`` (in"
            " 32768-60999)",
        why="the kernel derives it from the inner flow's hash, scaled into the local port"
            " range (udp_flow_src_port, skb_get_hash: the flow dissector's seed is random"
            " per boot), so ECMP spreads flows: one port per flow, a different one per run,"
            " always in range",
        apply=_vxlan_sport),
    Normaliser(
        "vxlan_csum", "VXLAN outer UDP checksum",
        how="only whether it is zero (``udp_csum_zero``)",
        why="zero means the device sends no outer checksum (noudpcsum); any other value"
            " covers the inner packet, whose ports, ids and ISNs are random",
        apply=_vxlan_csum),
    Normaliser(
        "flowlabel", "IPv6 flow label",
        how="0 stays 0; any other value -> ``fl<n>`` by first appearance",
        why="with net.ipv6.auto_flowlabels=1 (the default) a socket's packets carry a"
            " label made from the flow's hash (ip6_make_flowlabel): TCP's is the socket's"
            " sk_txhash, a random draw per connection (and per SYN-ACK, tcp_rsk txhash);"
            " ping's and ICMPv6 errors' a flow dissector hash of addresses, protocol and"
            " ICMP type keyed with a random boot-time seed (skb_get_hash_flowi6)."
            " Neighbor Discovery and MLD send 0 (ip6_nd_hdr, ip6_mc_hdr). Which packets"
            " share a label is stable, the values are not",
        apply=_flowlabel),
    Normaliser(
        "nd_nonce", "Neighbor Solicitation nonce option (DAD, RFC 7527)",
        how="``nonce``",
        why="enhanced_dad puts 6 random bytes in every DAD NS (addrconf_dad_work,"
            " get_random_bytes) to recognise its own looped-back probes",
        apply=_nd_nonce),
    Normaliser(
        "checksum", "IPv4 header, ICMP, TCP and UDP checksums",
        how="dropped",
        why="veth and lo offload checksumming (CHECKSUM_PARTIAL): a TCP/UDP segment"
            " captured on its way out holds only the pseudo-header sum; and every checksum"
            " covers fields that are random per run (ids, ports, ISNs, timestamps)",
        apply=_drop),
)

_BY_TAG: dict[str, list[Normaliser]] = {}
for _entry in TABLE:
    _BY_TAG.setdefault(_entry.tag, []).append(_entry)


def describe() -> str:
    """The table as text: header field, how, why (for docs and failing diffs)."""
    return "\n".join(f"- {e.field}: {e.how}.\n  Why: {e.why}." for e in TABLE)


def _normalise(f: Field, s: Session) -> Out:
    for entry in _BY_TAG.get(f.tag, []) if f.tag else []:
        got = entry.apply(f, s)
        if got is not None:
            return got
    return [(f.key, f.value)]


def normalize(
    frames: Iterable[bytes],
    macs: dict[str, str] | None = None,
    *,
    keep_window: bool = True,
    keep_ip_id: bool = True,
    ephemeral_ports: bool = True,
    pkttypes: Iterable[str] | None = None,
    raw_ip: bool = False,
    vxlan_ports: Iterable[int] = (8472, 4789),
    nat_ips: Iterable[str] = (),
) -> list[dict[str, Any]]:
    """Map frames to comparable dicts, one per frame: every header field decoded
    (:func:`decode.decode`) and passed through :data:`TABLE` (see :func:`describe`).

    - ``macs``: MAC -> name; ``keep_window``, ``keep_ip_id``, ``ephemeral_ports``,
      ``nat_ips``: options of the table's entries (see there).
    - ``pkttypes`` (optional, ``Capture.pkttypes[key]``): adds "dir" ("out" for outgoing,
      else "in") and "pkttype" (Linux packet type: outgoing/host/broadcast/multicast/
      otherhost) per frame. Do not infer direction from the source MAC: with hairpin
      on, a pod's own broadcasts come back to it.
    - ``raw_ip``: the frames are bare IPv4 packets (LINKTYPE_RAW, e.g. ``tunl0``): no
      ``eth_*``/``ethertype`` keys.
    - ``vxlan_ports``: UDP to one of them is VXLAN: ``udp_*`` and ``vxlan_flags``,
      ``vxlan_reserved`` (hex of the 4 reserved bytes), ``vxlan_vni``, and the inner
      Ethernet frame as ``inner.<key>``; IP-in-IP likewise as ``inner.<key>``, and the
      packet an ICMP error (types 3, 4, 5, 11, 12) quotes as ``quoted.<key>`` after
      ``icmp_rest`` (the 4 bytes after the checksum; other ICMP: all bytes after it).
    """
    frames = list(frames)
    types = list(pkttypes) if pkttypes is not None else None
    if types is not None and len(types) != len(frames):
        raise ValueError("pkttypes must align with frames")
    session = Session({k.lower(): v for k, v in (macs or {}).items()}, keep_window,
                      keep_ip_id, ephemeral_ports, frozenset(nat_ips))
    ports = frozenset(vxlan_ports)
    out: list[dict[str, Any]] = []
    for n, fr in enumerate(frames):
        row: dict[str, Any] = {}
        for f in decode(fr, raw_ip=raw_ip, vxlan_ports=ports):
            row.update((f.prefix + key, value) for key, value in _normalise(f, session))
        if types is not None:
            row["dir"] = "out" if types[n] == "outgoing" else "in"
            row["pkttype"] = types[n]
        out.append(row)
    return out
