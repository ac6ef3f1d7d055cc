"""The netfilter hook pipeline as data: for each IPv4 hook, its stages in priority order.

Theory of operation
-------------------
The kernel runs what is registered at a hook in ascending priority (``enum
nf_ip_hook_priorities``, ``include/uapi/linux/netfilter_ipv4.h``; ``Priority`` copies the
values used here).  ``PIPELINE`` is that order for the stages pktsim models — the four
tables, conntrack's tracking and its confirmation, destination and source NAT — and
``hooks.Netfilter.hook`` is one runner that walks it: the table in ``hooks.py``'s
docstring is ``render()`` of this data (a test checks they agree), and the order is
checked at import (``_check``).

Besides its stages, a hook says where a packet's context (conntrack entry, ``skb->mark``)
comes from and where it goes, which is the simulator's bookkeeping, not a kernel stage:

* ``carried``: ``"looped"`` (PREROUTING: the context a packet sent out ``lo`` took with
  it), ``"pending"`` (the context the earlier hook left, taken), ``"peek"`` (the same,
  left in place for the hook after).  A hook with a ``conntrack`` stage gives a packet with
  no context a new one, and only then runs its ``new_only`` stages (raw and conntrack: the
  kernel does not re-track a looped packet); any other hook tracks such a packet at once.
* ``after``: ``"remember"`` (kept for the next hook), ``"consume"`` (the packet's crossing
  ends here), ``"loop"`` (ends here, unless it leaves by ``lo``: kept for its PREROUTING).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class Priority(IntEnum):
    """``enum nf_ip_hook_priorities`` (include/uapi/linux/netfilter_ipv4.h)."""

    RAW = -300  # NF_IP_PRI_RAW
    CONNTRACK = -200  # NF_IP_PRI_CONNTRACK
    MANGLE = -150  # NF_IP_PRI_MANGLE
    NAT_DST = -100  # NF_IP_PRI_NAT_DST
    FILTER = 0  # NF_IP_PRI_FILTER
    NAT_SRC = 100  # NF_IP_PRI_NAT_SRC
    CONNTRACK_CONFIRM = 2**31 - 1  # NF_IP_PRI_CONNTRACK_CONFIRM = INT_MAX


@dataclass(frozen=True, slots=True)
class Stage:
    """One thing run at a hook: ``name`` is what the runner does (``hooks._RUN``)."""

    name: str
    priority: Priority
    label: str  # as the docstring table says it
    new_only: bool = False  # only for a packet whose context is new at this hook


RAW = Stage("raw", Priority.RAW, "raw", new_only=True)
TRACK = Stage("conntrack", Priority.CONNTRACK, "conntrack (track)", new_only=True)
MANGLE = Stage("mangle", Priority.MANGLE, "mangle")
NAT_DST = Stage("nat-dst", Priority.NAT_DST, "nat (destination NAT)")
FILTER = Stage("filter", Priority.FILTER, "filter")
NAT_SRC = Stage("nat-src", Priority.NAT_SRC, "nat (source NAT)")
CONFIRM = Stage("confirm", Priority.CONNTRACK_CONFIRM, "conntrack confirm")


@dataclass(frozen=True, slots=True)
class Hook:
    """A hook's stages in priority order, and its context's coming and going."""

    name: str
    stages: tuple[Stage, ...]
    carried: str  # "looped" | "pending" | "peek"
    after: str  # "remember" | "consume" | "loop"

    @property
    def tracks(self) -> bool:
        """A packet with no context gets a new one here (its new-only stages run)."""
        return TRACK in self.stages


PIPELINE: dict[str, Hook] = {h.name: h for h in (
    Hook("PREROUTING", (RAW, TRACK, MANGLE, NAT_DST), "looped", "remember"),
    Hook("INPUT", (MANGLE, FILTER, NAT_SRC, CONFIRM), "pending", "consume"),
    Hook("FORWARD", (MANGLE, FILTER), "peek", "remember"),
    Hook("OUTPUT", (RAW, TRACK, MANGLE, NAT_DST, FILTER), "pending", "remember"),
    Hook("POSTROUTING", (MANGLE, NAT_SRC, CONFIRM), "pending", "loop"),
)}


def render() -> str:
    """The pipeline as the table in ``hooks.py``'s docstring (indented four spaces)."""
    return "".join(f"    {h.name:<12} {', '.join(s.label for s in h.stages)}\n"
                   for h in PIPELINE.values())


def _check() -> None:
    """Each hook's stages are in the kernel's priority order, and the context rules are
    ones the runner knows."""
    for h in PIPELINE.values():
        if [s.priority for s in h.stages] != sorted(s.priority for s in h.stages):
            raise AssertionError(f"{h.name}: stages out of priority order")
        if h.carried not in ("looped", "pending", "peek") \
                or h.after not in ("remember", "consume", "loop"):
            raise AssertionError(f"{h.name}: unknown context rule")


_check()
