"""What a matching rule does (``-j ...``), as data.

Theory of operation
-------------------
A target is a frozen dataclass with the text ``iptables-save`` prints for it and the places
the kernel allows it: ``tables`` (REJECT only in ``filter``; DNAT, SNAT, MASQUERADE only in
``nat``; DROP refused in ``nat`` by iptables itself) and ``hooks`` (DNAT only reachable from
PREROUTING/OUTPUT, SNAT from POSTROUTING/INPUT, MASQUERADE from POSTROUTING, REJECT from
INPUT/FORWARD/OUTPUT).  ``Table.validate`` checks both, as ``iptables-restore`` would.

Verdicts (ACCEPT, DROP, RETURN) and jumps steer the walk (``engine.py``).  MARK is the only
non-terminal target here: it rewrites ``skb->mark`` and the walk goes on.  Every ``MARK``
form is one operation, ``mark = (mark & ~mask) ^ value`` (``--set-xmark value/mask``):
``--or-mark X`` is ``X/X``, ``--xor-mark X`` is ``X/0``, ``--and-mark X`` is ``0/~X``,
``--set-mark X`` is ``X/0xffffffff`` — which is why iptables-save prints kube-proxy's
``--or-mark 0x4000`` as ``--set-xmark 0x4000/0x4000``.  The NAT targets only *choose* the
binding; ``conntrack.py`` applies it to the connection.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import ClassVar

ALL_HOOKS = frozenset({"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"})
ALL_TABLES = frozenset({"raw", "mangle", "nat", "filter"})

# ipt_REJECT's --reject-with names and the ICMP destination-unreachable code each sends
REJECT_WITH = {
    "icmp-net-unreachable": 0, "icmp-host-unreachable": 1, "icmp-proto-unreachable": 2,
    "icmp-port-unreachable": 3, "icmp-net-prohibited": 9, "icmp-host-prohibited": 10,
    "icmp-admin-prohibited": 13, "tcp-reset": -1,
}
# ip6t_REJECT's names and the ICMPv6 destination-unreachable code each sends
# (libip6t_REJECT.c ``reject_table_xlate``; ip6tables also reads the short aliases)
REJECT6_WITH = {
    "icmp6-no-route": 0, "icmp6-adm-prohibited": 1, "icmp6-addr-unreachable": 3,
    "icmp6-port-unreachable": 4, "icmp6-policy-fail": 5, "icmp6-reject-route": 6,
    "tcp-reset": -1,
}
REJECT6_ALIASES = {"no-route": "icmp6-no-route", "adm-prohibited": "icmp6-adm-prohibited",
                   "addr-unreach": "icmp6-addr-unreachable",
                   "port-unreach": "icmp6-port-unreachable"}

PortRange = tuple[int, int]


class Target:
    """The action of a rule; ``terminal`` targets end the walk."""

    terminal: ClassVar[bool] = True
    tables: ClassVar[frozenset[str]] = ALL_TABLES
    hooks: ClassVar[frozenset[str]] = ALL_HOOKS

    def save(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class Jump(Target):
    """``-j <user chain>``: walk that chain, come back on RETURN or at its end."""

    chain: str
    terminal: ClassVar[bool] = False

    def save(self) -> str:
        return f"-j {self.chain}"


@dataclass(frozen=True, slots=True)
class Verdict(Target):
    """``-j ACCEPT``, ``-j DROP`` or ``-j RETURN``."""

    name: str

    def __post_init__(self) -> None:
        if self.name not in ("ACCEPT", "DROP", "RETURN"):
            raise ValueError(f"not a verdict: {self.name!r}")

    def save(self) -> str:
        return f"-j {self.name}"


@dataclass(frozen=True, slots=True)
class Goto(Jump):
    """``-g <user chain>``: continue in that chain without a return point, so its RETURN
    (or end) returns to the caller of the chain that went there (``ipt_do_table``: no
    ``jumpstack`` push for ``XT_GOTO``).  A kind of jump for every check of called chains."""

    def save(self) -> str:
        return f"-g {self.chain}"


ACCEPT = Verdict("ACCEPT")
DROP = Verdict("DROP")
RETURN = Verdict("RETURN")


@dataclass(frozen=True, slots=True)
class Reject(Target):
    """``-j REJECT``: drop and answer with an ICMP error (default port unreachable) or RST."""

    with_: str = "icmp-port-unreachable"
    tables: ClassVar[frozenset[str]] = frozenset({"filter"})
    hooks: ClassVar[frozenset[str]] = frozenset({"INPUT", "FORWARD", "OUTPUT"})

    def __post_init__(self) -> None:
        if self.with_ not in REJECT_WITH and self.with_ not in REJECT6_WITH:
            raise ValueError(f"unknown --reject-with {self.with_!r}")

    def save(self) -> str:
        return f"-j REJECT --reject-with {self.with_}"


@dataclass(frozen=True, slots=True)
class SetMark(Target):
    """``-j MARK --set-xmark value/mask``: ``mark = (mark & ~mask) ^ value``."""

    value: int
    mask: int = 0xFFFFFFFF
    terminal: ClassVar[bool] = False

    @classmethod
    def or_mark(cls, bits: int) -> SetMark:
        return cls(bits, bits)

    @classmethod
    def xor_mark(cls, bits: int) -> SetMark:
        return cls(bits, 0)

    @classmethod
    def and_mark(cls, bits: int) -> SetMark:
        return cls(0, ~bits & 0xFFFFFFFF)

    @classmethod
    def set_mark(cls, value: int, mask: int = 0xFFFFFFFF) -> SetMark:
        return cls(value, value | mask)

    def apply(self, mark: int) -> int:
        return ((mark & ~self.mask) ^ self.value) & 0xFFFFFFFF

    def save(self) -> str:
        return f"-j MARK --set-xmark {self.value:#x}/{self.mask:#x}"


def _to(ip: IPv4Address | IPv6Address, ports: PortRange | None) -> str:
    """``--to-destination``/``--to-source`` as libxt_NAT prints it: an IPv6 address is
    bracketed only when a port follows (``__NAT_print``)."""
    if ip.version == 6 and ports is not None:
        return f"[{ip}]{_ports(ports)}"
    return f"{ip}{_ports(ports)}"


def _ports(r: PortRange | None, sep: str = ":") -> str:
    if r is None:
        return ""
    return f"{sep}{r[0]}" if r[0] == r[1] else f"{sep}{r[0]}-{r[1]}"


@dataclass(frozen=True, slots=True)
class Dnat(Target):
    """``-j DNAT --to-destination IP[:PORT[-PORT]]`` (``[IP6]:PORT`` for IPv6)."""

    ip: IPv4Address | IPv6Address
    ports: PortRange | None = None
    random: bool = False
    persistent: bool = False
    tables: ClassVar[frozenset[str]] = frozenset({"nat"})
    hooks: ClassVar[frozenset[str]] = frozenset({"PREROUTING", "OUTPUT"})

    def save(self) -> str:
        text = f"-j DNAT --to-destination {_to(self.ip, self.ports)}"
        return text + (" --random" if self.random else "") + (
            " --persistent" if self.persistent else "")


@dataclass(frozen=True, slots=True)
class Snat(Target):
    """``-j SNAT --to-source IP[:PORT[-PORT]]`` (``[IP6]:PORT`` for IPv6)."""

    ip: IPv4Address | IPv6Address
    ports: PortRange | None = None
    random: bool = False
    random_fully: bool = False
    persistent: bool = False
    tables: ClassVar[frozenset[str]] = frozenset({"nat"})
    hooks: ClassVar[frozenset[str]] = frozenset({"POSTROUTING", "INPUT"})

    def save(self) -> str:
        text = f"-j SNAT --to-source {_to(self.ip, self.ports)}"
        return text + (" --random" if self.random else "") + (
            " --random-fully" if self.random_fully else "") + (
            " --persistent" if self.persistent else "")


@dataclass(frozen=True, slots=True)
class Masquerade(Target):
    """``-j MASQUERADE``: SNAT to the output interface's address."""

    ports: PortRange | None = None
    random: bool = False
    random_fully: bool = False
    tables: ClassVar[frozenset[str]] = frozenset({"nat"})
    hooks: ClassVar[frozenset[str]] = frozenset({"POSTROUTING"})

    def save(self) -> str:
        text = "-j MASQUERADE"
        if self.ports is not None:
            text += f" --to-ports {_ports(self.ports, '')}"
        return text + (" --random" if self.random else "") + (
            " --random-fully" if self.random_fully else "")


NatTarget = Dnat | Snat | Masquerade
