"""The conditions of an iptables rule (``-s``, ``-p``, ``-m mark`` ...), as data.

Theory of operation
-------------------
A rule is a list of matches and one target (``rules.py``).  Each match here is a frozen
dataclass that knows two things: whether a packet satisfies it (``matches``, the kernel
module's ``match`` function) and how ``iptables-save`` prints it (``save``, the userspace
extension's ``save`` function).  The printed form is the kernel's normalised one, checked
against a real ``iptables-save`` (``tests/netfilter/test_netfilter_save.py``): addresses with their
prefix (``-d 10.96.0.10/32``), marks in hex with the mask dropped when it is all ones,
connection states in the kernel's order (INVALID,NEW,RELATED,ESTABLISHED), probabilities as
``%.11f`` of the stored 31-bit fraction.

``order`` gives iptables' print order: the IP-header matches first (``-s -d -i -o -p``),
then the ``-m`` modules in the order they were written.  The kernel evaluates them in the
same order, so a rule is normalised to it when built.

What a match needs beyond the packet's headers travels in ``PacketView`` (the interfaces,
``skb->mark``, the conntrack state) and ``Env`` (the virtual clock, the random stream the
statistic module draws from, the ``recent`` lists, and ``addr_type`` for ``-m addrtype``);
both live in ``view.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network
from typing import ClassVar

from pktsim.netfilter.view import NS, Env, PacketView
from pktsim.wire.build import PROTO_ICMP, PROTO_TCP, PROTO_UDP

# the names iptables prints (its own table, then /etc/protocols: ``ipencap`` is IP-in-IP)
# ip6tables reads ``icmpv6`` and prints ``ipv6-icmp`` (libxtables ``xtables_chain_protos``)
PROTOCOLS = {"tcp": PROTO_TCP, "udp": PROTO_UDP, "icmp": PROTO_ICMP, "sctp": 132, "ipencap": 4,
             "icmpv6": 58, "ipv6-icmp": 58}
PROTO_TEXT = {v: k for k, v in PROTOCOLS.items()}
# libxt_conntrack.c conntrack_dump_states' print order
CT_STATES = ("INVALID", "NEW", "RELATED", "ESTABLISHED", "UNTRACKED", "SNAT", "DNAT")
ADDR_TYPES = ("UNSPEC", "UNICAST", "LOCAL", "BROADCAST", "ANYCAST", "MULTICAST", "BLACKHOLE",
              "UNREACHABLE", "PROHIBIT", "THROW", "NAT", "XRESOLVE")
ALL_ONES = 0xFFFFFFFF


class Match:
    """One condition; ``order`` is its place in iptables' canonical order (100: a module)."""

    order: ClassVar[int] = 100

    def matches(self, p: PacketView, env: Env) -> bool:
        raise NotImplementedError

    def save(self) -> str:
        raise NotImplementedError


def _bang(negate: bool) -> str:
    return "! " if negate else ""


@dataclass(frozen=True, slots=True)
class Source(Match):
    net: IPv4Network | IPv6Network
    negate: bool = False
    order: ClassVar[int] = 0

    def matches(self, p: PacketView, env: Env) -> bool:
        return (int.from_bytes(p.src, "big") & int(self.net.netmask)
                == int(self.net.network_address)) != self.negate

    def save(self) -> str:
        return f"{_bang(self.negate)}-s {self.net}"


@dataclass(frozen=True, slots=True)
class Destination(Match):
    net: IPv4Network | IPv6Network
    negate: bool = False
    order: ClassVar[int] = 1

    def matches(self, p: PacketView, env: Env) -> bool:
        return (int.from_bytes(p.dst, "big") & int(self.net.netmask)
                == int(self.net.network_address)) != self.negate

    def save(self) -> str:
        return f"{_bang(self.negate)}-d {self.net}"


def _iface_match(pattern: str, dev: str) -> bool:
    if pattern.endswith("+"):
        return dev.startswith(pattern[:-1])
    return dev == pattern


@dataclass(frozen=True, slots=True)
class InIface(Match):
    name: str
    negate: bool = False
    order: ClassVar[int] = 2

    def matches(self, p: PacketView, env: Env) -> bool:
        return _iface_match(self.name, p.in_dev) != self.negate

    def save(self) -> str:
        return f"{_bang(self.negate)}-i {self.name}"


@dataclass(frozen=True, slots=True)
class OutIface(Match):
    name: str
    negate: bool = False
    order: ClassVar[int] = 3

    def matches(self, p: PacketView, env: Env) -> bool:
        return _iface_match(self.name, p.out_dev) != self.negate

    def save(self) -> str:
        return f"{_bang(self.negate)}-o {self.name}"


@dataclass(frozen=True, slots=True)
class Protocol(Match):
    proto: int
    negate: bool = False
    order: ClassVar[int] = 4

    def matches(self, p: PacketView, env: Env) -> bool:
        return (p.proto == self.proto) != self.negate

    def save(self) -> str:
        return f"{_bang(self.negate)}-p {PROTO_TEXT.get(self.proto, str(self.proto))}"


PortRange = tuple[int, int]


def _port_text(r: PortRange) -> str:
    return str(r[0]) if r[0] == r[1] else f"{r[0]}:{r[1]}"


@dataclass(frozen=True, slots=True)
class Ports(Match):
    """``-m tcp`` / ``-m udp`` / ``-m sctp`` with ``--sport`` and ``--dport`` (single ports or
    ranges; ``xt_tcpudp.c``, ``xt_sctp.c`` ``sctp_mt``: an SCTP packet's common header holds
    its ports where TCP and UDP have theirs)."""

    proto: int
    sport: PortRange | None = None
    dport: PortRange | None = None
    sport_negate: bool = False
    dport_negate: bool = False

    def __post_init__(self) -> None:
        for side in ("sport", "dport"):
            if getattr(self, side) == (0, 65535):  # the whole range: no condition at all
                if getattr(self, f"{side}_negate"):
                    raise ValueError(f"! --{side} 0:65535 matches nothing")
                object.__setattr__(self, side, None)
            if getattr(self, side) is None:  # a negation without its option means nothing
                object.__setattr__(self, f"{side}_negate", False)

    def matches(self, p: PacketView, env: Env) -> bool:
        if p.proto != self.proto or p.sport is None or p.dport is None:
            return False
        if self.sport and (self.sport[0] <= p.sport <= self.sport[1]) == self.sport_negate:
            return False
        return not (self.dport
                    and (self.dport[0] <= p.dport <= self.dport[1]) == self.dport_negate)

    def save(self) -> str:
        text = f"-m {PROTO_TEXT[self.proto]}"
        if self.sport:
            text += f" {_bang(self.sport_negate)}--sport {_port_text(self.sport)}"
        if self.dport:
            text += f" {_bang(self.dport_negate)}--dport {_port_text(self.dport)}"
        return text


@dataclass(frozen=True, slots=True)
class Multiport(Match):
    """``-m multiport [!] --dports|--sports P[,P:Q…]`` (``xt_multiport.c`` ``ports_match_v1``:
    up to 15 ports, a range counting two), for the protocol given with ``-p``."""

    proto: int
    ranges: tuple[PortRange, ...]
    source: bool = False
    negate: bool = False

    def __post_init__(self) -> None:
        if sum(1 if a == b else 2 for a, b in self.ranges) > 15:  # XT_MULTI_PORTS
            raise ValueError("too many ports specified")

    def matches(self, p: PacketView, env: Env) -> bool:
        port = p.sport if self.source else p.dport
        if p.proto != self.proto or port is None:
            return False
        return any(a <= port <= b for a, b in self.ranges) != self.negate

    def save(self) -> str:
        option = "--sports" if self.source else "--dports"
        listed = ",".join(_port_text(r) for r in self.ranges)
        return f"-m multiport {_bang(self.negate)}{option} {listed}"


ICMP_TYPE_NAMES = {"any": (255, None), "echo-reply": (0, None), "pong": (0, None),
                   "destination-unreachable": (3, None), "network-unreachable": (3, 0),
                   "host-unreachable": (3, 1), "port-unreachable": (3, 3),
                   "fragmentation-needed": (3, 4), "echo-request": (8, None),
                   "ping": (8, None), "time-exceeded": (11, None)}


def _icmp_type(names: dict[str, tuple[int, int | None]], text: str) -> tuple[int, int | None]:
    """``TYPE[/CODE]`` or a name of the table, as the tool's parser reads it."""
    if text in names:
        return names[text]
    icmp_type_text, _, code_text = text.partition("/")
    return int(icmp_type_text), int(code_text) if code_text else None


@dataclass(frozen=True, slots=True)
class IcmpType(Match):
    """``-m icmp --icmp-type TYPE[/CODE]`` (type 255: any)."""

    type: int
    code: int | None = None
    negate: bool = False

    @classmethod
    def named(cls, text: str, negate: bool = False) -> IcmpType:
        return cls(*_icmp_type(ICMP_TYPE_NAMES, text), negate)

    def matches(self, p: PacketView, env: Env) -> bool:
        if p.icmp is None:
            return False
        hit = self.type == 255 or (p.icmp[0] == self.type
                                   and (self.code is None or p.icmp[1] == self.code))
        return hit != self.negate

    def save(self) -> str:
        code = "" if self.code is None else f"/{self.code}"
        return f"-m icmp {_bang(self.negate)}--icmp-type {self.type}{code}"


ICMP6_TYPE_NAMES = {"destination-unreachable": (1, None), "no-route": (1, 0),
                    "communication-prohibited": (1, 1), "address-unreachable": (1, 3),
                    "port-unreachable": (1, 4), "packet-too-big": (2, None),
                    "time-exceeded": (3, None), "ttl-exceeded": (3, None),
                    "parameter-problem": (4, None), "echo-request": (128, None),
                    "echo-reply": (129, None), "router-solicitation": (133, None),
                    "router-advertisement": (134, None),
                    "neighbour-solicitation": (135, None), "neighbor-solicitation": (135, None),
                    "neighbour-advertisement": (136, None),
                    "neighbor-advertisement": (136, None)}
"""libip6t_icmp6.c ``icmpv6_codes`` (the names ip6tables reads; it prints numbers)."""


@dataclass(frozen=True, slots=True)
class Icmp6Type(Match):
    """``-m icmp6 --icmpv6-type TYPE[/CODE]`` (``ip6t_icmp6.c`` ``icmp6_match``)."""

    type: int
    code: int | None = None
    negate: bool = False

    @classmethod
    def named(cls, text: str, negate: bool = False) -> Icmp6Type:
        return cls(*_icmp_type(ICMP6_TYPE_NAMES, text), negate)

    def matches(self, p: PacketView, env: Env) -> bool:
        if p.icmp is None:
            return False
        hit = p.icmp[0] == self.type and (self.code is None or p.icmp[1] == self.code)
        return hit != self.negate

    def save(self) -> str:
        code = "" if self.code is None else f"/{self.code}"
        return f"-m icmp6 {_bang(self.negate)}--icmpv6-type {self.type}{code}"


_NO_QUOTE = frozenset("_-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def save_string(value: str) -> str:
    """``xtables_save_string``: bare when only ``[A-Za-z0-9_-]``, else double-quoted."""
    if value and all(c in _NO_QUOTE for c in value):
        return value
    escaped = "".join("\\" + c if c in "\"\\'" else c for c in value)
    return f'"{escaped}"'


@dataclass(frozen=True, slots=True)
class Comment(Match):
    text: str

    def __post_init__(self) -> None:
        if len(self.text.encode()) > 255 or "\n" in self.text:
            raise ValueError(f"comment longer than 255 bytes or multi-line: {self.text!r}")

    def matches(self, p: PacketView, env: Env) -> bool:
        return True

    def save(self) -> str:
        return f"-m comment --comment {save_string(self.text)}"


@dataclass(frozen=True, slots=True)
class Mark(Match):
    """``-m mark --mark value[/mask]``: ``skb->mark & mask == value``."""

    value: int
    mask: int = ALL_ONES
    negate: bool = False

    def matches(self, p: PacketView, env: Env) -> bool:
        return ((p.mark & self.mask) == self.value) != self.negate

    def save(self) -> str:
        mask = "" if self.mask == ALL_ONES else f"/{self.mask:#x}"
        return f"-m mark {_bang(self.negate)}--mark {self.value:#x}{mask}"


@dataclass(frozen=True, slots=True)
class AddrType(Match):
    """``-m addrtype --src-type/--dst-type`` (``inet_addr_type``: LOCAL, UNICAST, ...)."""

    src_types: tuple[str, ...] = ()
    dst_types: tuple[str, ...] = ()
    src_negate: bool = False
    dst_negate: bool = False
    limit_out: bool = False  # --limit-iface-out: the type on the output device only

    def __post_init__(self) -> None:
        object.__setattr__(self, "src_negate", self.src_negate and bool(self.src_types))
        object.__setattr__(self, "dst_negate", self.dst_negate and bool(self.dst_types))

    def _type(self, ip: bytes, p: PacketView, env: Env) -> str:
        # xt_addrtype.c addrtype_mt_v1: with XT_ADDRTYPE_LIMIT_IFACE_OUT the lookup is
        # limited to the output device (a source LOCAL on *that* device)
        return env.addr_type_on(ip, p.out_dev) if self.limit_out else env.addr_type(ip)

    def matches(self, p: PacketView, env: Env) -> bool:
        if self.src_types and (self._type(p.src, p, env) in self.src_types) == self.src_negate:
            return False
        return not (self.dst_types
                    and (self._type(p.dst, p, env) in self.dst_types) == self.dst_negate)

    def save(self) -> str:
        text = "-m addrtype"
        if self.src_types:
            text += f" {_bang(self.src_negate)}--src-type {','.join(self.src_types)}"
        if self.dst_types:
            text += f" {_bang(self.dst_negate)}--dst-type {','.join(self.dst_types)}"
        return text + (" --limit-iface-out" if self.limit_out else "")


@dataclass(frozen=True, slots=True)
class CtState(Match):
    """``-m conntrack --ctstate`` (or the older ``-m state --state``)."""

    states: frozenset[str]
    negate: bool = False
    module: str = "conntrack"

    def matches(self, p: PacketView, env: Env) -> bool:
        # xt_conntrack.c conntrack_mt: the state bit, plus XT_CONNTRACK_STATE_SNAT/DNAT
        # when the entry's status has IPS_SRC_NAT/IPS_DST_NAT; any bit in the mask matches
        hit = p.ctstate in self.states or bool(p.ct_nat and not p.ct_nat.isdisjoint(self.states))
        return hit != self.negate

    def save(self) -> str:
        listed = ",".join(s for s in CT_STATES if s in self.states)
        option = "--ctstate" if self.module == "conntrack" else "--state"
        return f"-m {self.module} {_bang(self.negate)}{option} {listed}"


def probability_u32(text: str) -> int:
    """libxt_statistic: ``lround(0x80000000 * P)`` — what the kernel stores."""
    return math.floor(float(text) * 0x80000000 + 0.5)


@dataclass(frozen=True, slots=True)
class Statistic(Match):
    """``-m statistic --mode random --probability P``; P is kept as written (kube-proxy's
    ``%0.10f``) and compared by the 31-bit fraction the kernel stores."""

    probability: str = field(compare=False)
    negate: bool = False
    u32: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "u32", probability_u32(self.probability))

    def matches(self, p: PacketView, env: Env) -> bool:
        return (env.rng.getrandbits(31) < self.u32) != self.negate

    def save(self) -> str:
        value = self.u32 / 0x80000000
        return f"-m statistic --mode random {_bang(self.negate)}--probability {value:.11f}"


@dataclass(frozen=True, slots=True)
class Recent(Match):
    """``-m recent``: ``set`` records the source address with the time; ``rcheck`` matches
    when it was seen within ``seconds`` (``reap`` then forgets the older ones)."""

    name: str
    mode: str = "rcheck"  # set | rcheck | update | remove
    seconds: int = 0
    reap: bool = False
    negate: bool = False
    rsource: bool = True
    mask: str = "255.255.255.255"

    def matches(self, p: PacketView, env: Env) -> bool:
        addr = p.src if self.rsource else p.dst
        last = env.recent.seen(self.name, addr)
        if self.mode == "set":
            env.recent.set(self.name, addr, env.now)
            return not self.negate
        if last is None:
            return self.negate
        if self.mode == "remove":
            env.recent.remove(self.name, addr)
            return not self.negate
        fresh = not self.seconds or env.now - last <= self.seconds * NS
        if self.reap and not fresh:
            env.recent.remove(self.name, addr)
        if fresh and self.mode == "update":
            env.recent.set(self.name, addr, env.now)
        return fresh != self.negate

    def save(self) -> str:
        text = f"-m recent {_bang(self.negate)}--{self.mode}"
        if self.seconds:
            text += f" --seconds {self.seconds}"
        if self.reap:
            text += " --reap"
        side = "--rsource" if self.rsource else "--rdest"
        return f"{text} --name {self.name} --mask {self.mask} {side}"
