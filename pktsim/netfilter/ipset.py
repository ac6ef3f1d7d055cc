"""IP sets (``ipset``) and the ``-m set --match-set`` match that reads them.

Theory of operation
-------------------
An IP set is a named, typed collection the kernel keeps per network namespace
(``net/netfilter/ipset/ip_set_core.c``); iptables rules refer to it by name with
``-m set [!] --match-set NAME FLAGS`` (``net/netfilter/xt_set.c``, ``set_match_v4``), where
FLAGS (``src``, ``dst``, ``dst,dst`` ...) say which packet field feeds each dimension of the
set's type.  Three types are modelled, the ones felix creates
(calico ``felix/ipsets/ipset_defs.go``):

* ``hash:ip`` — addresses (felix's selector sets ``cali40s:…``);
* ``hash:net`` — CIDRs (``cali40all-ipam-pools``, ``cali40masq-ipam-pools``,
  ``cali40all-hosts-net``): an address matches when some member contains it;
* ``hash:ip,port`` — ``(address, protocol, port)`` (felix's named-port sets ``cali40n:…``).

``IpSets`` is one namespace's collection; ``restore`` reads ``ipset restore`` text (what
felix writes) and ``save`` prints what ``ipset save`` prints (ipset v7: ``create NAME TYPE
family inet hashsize 1024 maxelem N bucketsize 12 initval 0x…`` — the initval is random per
set in the kernel; here it is derived from the set's name, so a run is reproducible).
Sets are fixed once the node is built: the netfilter memo treats a ``--match-set`` as a
function of the packet alone.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import ClassVar

from pktsim.netfilter.matches import PROTOCOLS, Match, _bang
from pktsim.netfilter.view import Env, PacketView

TYPES = ("hash:ip", "hash:net", "hash:ip,port")
PROTO_NUMBERS = {name: PROTOCOLS[name] for name in ("tcp", "udp", "sctp")}  # hash:ip,port
PROTO_NAMES = {v: k for k, v in PROTO_NUMBERS.items()}
MAXELEM = {"hash:ip,port": 65536}  # felix's named-port sets; the others 1048576


@dataclass(slots=True)
class IpSet:
    """One set: its name, type and members (kept in insertion order for ``save``)."""

    name: str
    type: str
    members: dict[object, None] = field(default_factory=dict)
    _nets: dict[int, set[int]] = field(default_factory=dict)  # hash:net: mask -> bases

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise ValueError(f"ipset {self.name}: unsupported type {self.type!r}")
        if len(self.name) > 31:  # IPSET_MAXNAMELEN - 1
            raise ValueError(f"ipset name longer than 31 characters: {self.name!r}")

    def add(self, entry: str) -> None:
        """``add NAME ENTRY``: an address, a CIDR, or ``addr,proto:port``."""
        if self.type == "hash:ip":
            self.members[IPv4Address(entry).packed] = None
        elif self.type == "hash:net":
            net = IPv4Network(entry, strict=False)
            if net not in self.members:
                self.members[net] = None
                self._nets.setdefault(int(net.netmask), set()).add(int(net.network_address))
        else:
            addr, _, rest = entry.partition(",")
            proto, _, port = rest.partition(":")
            self.members[(IPv4Address(addr).packed, PROTO_NUMBERS[proto], int(port))] = None

    def contains(self, ip: bytes, proto: int = 0, port: int | None = None) -> bool:
        if self.type == "hash:ip":
            return ip in self.members
        if self.type == "hash:net":  # one lookup per prefix length, as the kernel's
            value = int.from_bytes(ip, "big")  # hash:net tries each cidr it holds
            return any(value & mask in bases for mask, bases in self._nets.items())
        return port is not None and (ip, proto, port) in self.members

    def entries(self) -> list[str]:
        """The members as ``ipset save`` prints them."""
        out = []
        for m in self.members:
            if isinstance(m, bytes):
                out.append(str(IPv4Address(m)))
            elif isinstance(m, IPv4Network):
                out.append(str(m) if m.prefixlen < 32 else str(m.network_address))
            elif isinstance(m, tuple):
                ip, proto, port = m
                out.append(f"{IPv4Address(ip)},{PROTO_NAMES[proto]}:{port}")
        return out


class IpSets:
    """The sets of one network namespace, by name."""

    def __init__(self) -> None:
        self.sets: dict[str, IpSet] = {}

    def get(self, name: str) -> IpSet | None:
        return self.sets.get(name)

    def adopt(self, made: IpSet) -> None:
        """Add a set built elsewhere: nodes whose sets are alike share one (a 5,000-node
        Calico cluster has 5,000 copies of ``cali40all-hosts-net``, each of 5,000 hosts).
        Sets never change after a node is built, so sharing is invisible."""
        if made.name in self.sets:
            raise ValueError(f"ipset {made.name} already exists")
        self.sets[made.name] = made

    def create(self, name: str, type_: str) -> IpSet:
        if name in self.sets:
            raise ValueError(f"ipset {name} already exists")
        made = self.sets[name] = IpSet(name, type_)
        return made

    def restore(self, text: str) -> None:
        """``ipset restore``: ``create NAME TYPE [options]`` and ``add NAME ENTRY`` lines."""
        for number, line in enumerate(text.splitlines(), 1):
            words = line.split()
            if not words or words[0].startswith("#"):
                continue
            if words[0] == "create" and len(words) >= 3:
                self.create(words[1], words[2])
            elif words[0] == "add" and len(words) == 3 and words[1] in self.sets:
                self.sets[words[1]].add(words[2])
            else:
                raise ValueError(f"ipset restore line {number}: cannot read {line!r}")

    def save(self) -> str:
        """``ipset save``: every set with its header and members, in creation order."""
        lines = []
        for s in self.sets.values():
            maxelem = MAXELEM.get(s.type, 1048576)
            initval = int.from_bytes(hashlib.sha256(s.name.encode()).digest()[:4], "big")
            lines.append(f"create {s.name} {s.type} family inet hashsize 1024 maxelem "
                         f"{maxelem} bucketsize 12 initval {initval:#010x}")
            lines += [f"add {s.name} {entry}" for entry in s.entries()]
        return "".join(line + "\n" for line in lines)


@dataclass(frozen=True, slots=True)
class SetMatch(Match):
    """``-m set [!] --match-set NAME src|dst[,dst]`` (``xt_set.c`` ``set_match_v4``).

    The first flag picks the address (source or destination), a second one the port of
    the same side for ``hash:ip,port``.  A set the namespace does not have is an error at
    restore time in the kernel; here ``Netfilter.validate`` checks names (``names``)."""

    name: str
    flags: tuple[str, ...]
    negate: bool = False
    order: ClassVar[int] = 100

    def matches(self, p: PacketView, env: Env) -> bool:
        found = env.ipsets.get(self.name) if env.ipsets is not None else None
        if found is None:
            raise KeyError(f"no ipset {self.name!r} in this namespace")
        ip = p.src if self.flags[0] == "src" else p.dst
        port = None
        if len(self.flags) > 1:
            port = p.sport if self.flags[1] == "src" else p.dport
        return found.contains(ip, p.proto, port) != self.negate

    def save(self) -> str:
        return f"-m set {_bang(self.negate)}--match-set {self.name} {','.join(self.flags)}"
