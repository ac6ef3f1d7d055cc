"""Netfilter for one namespace: iptables rules as data, the matcher, conntrack and NAT.

``Netfilter(ns, rng)`` is what a ``Netns`` calls at its hooks (``ns.hooks = ...``); its
``tables`` hold kube-proxy's and flannel's rules, its ``conntrack`` the connections.
``render``/``parse`` convert tables to and from ``iptables-save`` text.  ``Netfilter6`` is
the same for IPv6 packets (ip6tables, IPv6 conntrack: ``ns.hooks6``), and
``parse(text, family=6)`` reads ``ip6tables-restore`` text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pktsim.core.lazy import lazy_exports

if TYPE_CHECKING:  # the names; at run time each module loads on first use (core.lazy)
    from pktsim.netfilter.conntrack import Conn, Conntrack, ConntrackConfig, Track
    from pktsim.netfilter.conntrack6 import Conntrack6
    from pktsim.netfilter.engine import Hit, Outcome, evaluate
    from pktsim.netfilter.hooks import Netfilter
    from pktsim.netfilter.hooks6 import Netfilter6
    from pktsim.netfilter.matches import (
        AddrType,
        Comment,
        CtState,
        Destination,
        Icmp6Type,
        IcmpType,
        InIface,
        Mark,
        Match,
        OutIface,
        Ports,
        Protocol,
        Recent,
        Source,
        Statistic,
    )
    from pktsim.netfilter.presets import flannel_forward, flannel_masquerade, kube_proxy_masquerade
    from pktsim.netfilter.rules import Chain, Rule, Table
    from pktsim.netfilter.save import parse, parse_rule, render
    from pktsim.netfilter.targets import (
        ACCEPT,
        DROP,
        RETURN,
        Dnat,
        Jump,
        Masquerade,
        Reject,
        SetMark,
        Snat,
        Target,
        Verdict,
    )
    from pktsim.netfilter.tcpstate import TcpTimeouts
    from pktsim.netfilter.tuples import Tuple
    from pktsim.netfilter.view import Env, PacketView, RecentTables

__all__ = [
    "ACCEPT", "DROP", "RETURN", "AddrType", "Chain", "Comment", "Conn", "Conntrack",
    "Conntrack6", "ConntrackConfig", "CtState", "Destination", "Dnat", "Env", "Hit",
    "Icmp6Type", "IcmpType", "InIface", "Jump", "Mark", "Masquerade", "Match", "Netfilter",
    "Netfilter6", "OutIface", "Outcome", "PacketView",
    "Ports", "Protocol", "Recent", "RecentTables", "Reject", "Rule", "SetMark", "Snat",
    "Source", "Statistic", "Table", "Target", "TcpTimeouts", "Track", "Tuple", "Verdict",
    "evaluate", "flannel_forward", "flannel_masquerade", "kube_proxy_masquerade", "parse",
    "parse_rule", "render",
]

_EXPORTS = {
    "conntrack": ("Conn", "Conntrack", "ConntrackConfig", "Track"),
    "conntrack6": ("Conntrack6",),
    "engine": ("Hit", "Outcome", "evaluate"),
    "hooks": ("Netfilter",),
    "hooks6": ("Netfilter6",),
    "matches": ("AddrType", "Comment", "CtState", "Destination", "Icmp6Type", "IcmpType",
                "InIface", "Mark", "Match", "OutIface", "Ports", "Protocol", "Recent", "Source",
                "Statistic"),
    "presets": ("flannel_forward", "flannel_masquerade", "kube_proxy_masquerade"),
    "rules": ("Chain", "Rule", "Table"),
    "save": ("parse", "parse_rule", "render"),
    "targets": ("ACCEPT", "DROP", "RETURN", "Dnat", "Jump", "Masquerade", "Reject", "SetMark",
                "Snat", "Target", "Verdict"),
    "tcpstate": ("TcpTimeouts",),
    "tuples": ("Tuple",),
    "view": ("Env", "PacketView", "RecentTables"),
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
