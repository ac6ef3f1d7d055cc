"""What a namespace's interfaces are, and the IPv4 header check every input path makes.

Kept apart from ``pktsim.devices.netns`` (which re-exports them) so that the namespace's
module holds only the stack's behaviour.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Interface, IPv6Interface


@dataclass(slots=True)
class IfConfig:
    """One interface of the namespace as ``ip addr`` shows it."""

    name: str
    mac: bytes
    mtu: int = 1500
    addrs: list[IPv4Interface] = field(default_factory=list)
    # IPv6 addresses, link-local included, in the order ``ip -6 addr`` lists them (newest
    # first); empty when the namespace has no IPv6 (an IPv4-only cluster's, as pktsim builds it)
    addrs6: list[IPv6Interface] = field(default_factory=list)
    kind: str = "ether"  # loopback | ether | bridge | vxlan | ipip
    up: bool = True
    # net.ipv4.conf.<dev>.proxy_arp, with neigh.<dev>.proxy_delay 0 (what Calico's CNI
    # plugin sets on its cali* veths: ``configureSysctls``); a delayed proxy reply
    # (``pneigh_enqueue``, the kernel's default proxy_delay) is not modelled
    proxy_arp: bool = False


def ipv4_problem(pkt: bytes) -> str:
    """What is wrong with an IPv4 header (``ip_rcv_core``'s checks), or ``""``."""
    if len(pkt) < 20 or pkt[0] >> 4 != 4 or (pkt[0] & 0x0F) < 5:
        return "bad IPv4 version or header length"
    ihl = (pkt[0] & 0x0F) * 4
    total = (pkt[2] << 8) | pkt[3]
    if total < ihl or total > len(pkt) or len(pkt) < ihl:
        return f"IPv4 total length {total}"
    return ""


def pid_counter() -> Callable[[], int]:
    """A counter from 1: a namespace's packet ids when no driver gives them."""
    state = [0]

    def nxt() -> int:
        state[0] += 1
        return state[0]

    return nxt
