"""felix's static chains: what every Calico node has whatever its workloads.

Transcribed from calico ``felix/rules/static.go`` (``StaticFilterForwardChains``,
``StaticFilterForwardAppendRules``, ``filterInputChain``, ``filterWorkloadToHostChain``,
``filterOutputChain``, ``StaticNATPreroutingChains``, ``StaticNATPostroutingChains``,
``StaticNATOutputChains``) and ``felix/rules/nat.go`` (``NATOutgoingChain``), for the
configuration of Calico's manifest install: iptables backend, ``ACCEPT`` as the filter allow
action and ``DefaultEndpointToHostAction: ACCEPT`` (``FELIX_DEFAULTENDPOINTTOHOSTACTION`` in
calico.yaml), no host endpoints, no IPVS, no WireGuard, flow logs off.  Host-endpoint
dispatch chains exist and are empty, as on a node without HostEndpoints.

The raw and mangle chains (``cali-PREROUTING``'s reverse-path check for workloads, the
``cali-POSTROUTING`` host-endpoint checks) are not modelled: with no host endpoints and
no spoofed sources they pass every packet a scenario sends.  The failsafe chains are only
reached from host-endpoint chains and are left out with them.
"""

from __future__ import annotations

from dataclasses import dataclass

from pktsim.felix.names import ALL_MARK_BITS, MARK_ACCEPT
from pktsim.felix.rules import (
    ACCEPT,
    DROP,
    RETURN,
    FChain,
    FRule,
    clear_mark,
    goto,
    jump,
    mark_clear,
    mark_set,
    match_set,
    set_mark,
)

VXLAN_PORT = 4789  # felix config VXLANPort
ALL_HOSTS = "cali40all-hosts-net"
ALL_VXLAN = "cali40all-vxlan-net"
MASQ_POOLS = "cali40masq-ipam-pools"
ALL_POOLS = "cali40network-ip-pools"  # IPSetIDNetworkPools (rule_defs.go)
WORKLOADS = "cali+"  # WorkloadIfacePrefixes "cali" plus iptables' wildcard


@dataclass(frozen=True, slots=True)
class Config:
    """What of the node's Calico configuration the static chains depend on."""

    ipip: bool  # an IP pool has ipipMode Always/CrossSubnet (IPIPEnabled)
    vxlan: bool  # an IP pool has vxlanMode Always/CrossSubnet (VXLANEnabled)
    ipip_tunnel: bool  # tunl0 has an address (IPIPTunnelAddress)
    vxlan_tunnel: bool  # vxlan.calico has an address (VXLANTunnelAddress)
    nat_outgoing: bool  # some pool has natOutgoing


def filter_chains(cfg: Config) -> list[FChain]:
    return [_forward(), _input(cfg), _wl_to_host(), _output(cfg),
            *(FChain(name, ()) for name in (
                "cali-from-hep-forward", "cali-to-hep-forward", "cali-from-host-endpoint",
                "cali-to-host-endpoint", "cali-cidr-block"))]


def _forward() -> FChain:
    return FChain("cali-FORWARD", (
        FRule(action=clear_mark(ALL_MARK_BITS & ~MARK_ACCEPT)),
        FRule((mark_clear(MARK_ACCEPT),), jump("cali-from-hep-forward")),
        FRule((f"--in-interface {WORKLOADS}",), jump("cali-from-wl-dispatch")),
        FRule((f"--out-interface {WORKLOADS}",), jump("cali-to-wl-dispatch")),
        FRule(action=jump("cali-to-hep-forward")),
        FRule(action=jump("cali-cidr-block")),
    ))


def forward_append() -> list[FRule]:
    """Appended to the kernel's FORWARD, after every other program's rules."""
    return [FRule((mark_set(MARK_ACCEPT),), ACCEPT, ("Policy explicitly accepted packet.",)),
            FRule(action=set_mark(MARK_ACCEPT))]


def _input(cfg: Config) -> FChain:
    rules: list[FRule] = []
    if cfg.ipip:
        rules += [
            FRule(("-p 4", match_set(ALL_HOSTS, "src"), "-m addrtype --dst-type LOCAL"), ACCEPT,
                  ("Allow IPIP packets from Calico hosts",)),
            FRule(("-p 4",), DROP, ("Drop IPIP packets from non-Calico hosts",))]
    if cfg.vxlan:
        port = f"-m multiport --destination-ports {VXLAN_PORT}"
        rules += [
            FRule(("-p 17", port, match_set(ALL_VXLAN, "src"), "-m addrtype --dst-type LOCAL"),
                  ACCEPT, ("Allow IPv4 VXLAN packets from allowed hosts",)),
            FRule(("-p 17", port, "-m addrtype --dst-type LOCAL"), DROP,
                  ("Drop IPv4 VXLAN packets from non-allowed hosts",))]
    rules += [
        FRule((f"--in-interface {WORKLOADS}",), goto("cali-wl-to-host")),
        FRule((mark_set(MARK_ACCEPT),), ACCEPT),
        FRule(action=clear_mark(ALL_MARK_BITS)),
        FRule(action=jump("cali-from-host-endpoint")),
        FRule((mark_set(MARK_ACCEPT),), ACCEPT, ("Host endpoint policy accepted packet.",)),
    ]
    return FChain("cali-INPUT", tuple(rules))


def _wl_to_host() -> FChain:
    return FChain("cali-wl-to-host", (
        FRule(action=jump("cali-from-wl-dispatch")),
        FRule(action=ACCEPT, comments=("Configured DefaultEndpointToHostAction",)),
    ))


def _output(cfg: Config) -> FChain:
    rules = [FRule((mark_set(MARK_ACCEPT),), ACCEPT),
             FRule((f"--out-interface {WORKLOADS}",), RETURN)]
    if cfg.ipip:
        rules.append(FRule(("-p 4", match_set(ALL_HOSTS, "dst"),
                            "-m addrtype --src-type LOCAL"), ACCEPT,
                           ("Allow IPIP packets to other Calico hosts",)))
    if cfg.vxlan:
        rules.append(FRule(("-p 17", f"-m multiport --destination-ports {VXLAN_PORT}",
                            "-m addrtype --src-type LOCAL", match_set(ALL_VXLAN, "dst")),
                           ACCEPT, ("Allow IPv4 VXLAN packets to other allowed hosts",)))
    rules += [
        FRule(action=clear_mark(ALL_MARK_BITS)),
        FRule(("-m conntrack ! --ctstate DNAT",), jump("cali-to-host-endpoint")),
        FRule((mark_set(MARK_ACCEPT),), ACCEPT, ("Host endpoint policy accepted packet.",)),
    ]
    return FChain("cali-OUTPUT", tuple(rules))


def nat_chains(cfg: Config) -> list[FChain]:
    post = [FRule(action=jump("cali-fip-snat")), FRule(action=jump("cali-nat-outgoing"))]
    tunnels = (["tunl0"] if cfg.ipip and cfg.ipip_tunnel else []) + \
        (["vxlan.calico"] if cfg.vxlan and cfg.vxlan_tunnel else [])
    local = ("-m addrtype ! --src-type LOCAL --limit-iface-out", "-m addrtype --src-type LOCAL")
    for tunnel in tunnels:
        if cfg.vxlan:  # masqPortRangeExcluding(VXLANPort): keep 4789 free on the node
            post.append(FRule(("-p 17", f"--out-interface {tunnel}", *local),
                              "--jump MASQUERADE --to-ports 4790-65535 --random-fully"))
        post.append(FRule((f"--out-interface {tunnel}", *local),
                          "--jump MASQUERADE --random-fully"))
    outgoing = [FRule((match_set(MASQ_POOLS, "src"), match_set(ALL_POOLS, "dst", negate=True)),
                      "--jump MASQUERADE --random-fully")] if cfg.nat_outgoing else []
    return [FChain("cali-PREROUTING", (FRule(action=jump("cali-fip-dnat")),)),
            FChain("cali-POSTROUTING", tuple(post)),
            FChain("cali-OUTPUT", (FRule(action=jump("cali-fip-dnat")),)),
            FChain("cali-nat-outgoing", tuple(outgoing)),
            FChain("cali-fip-dnat", ()), FChain("cali-fip-snat", ())]


# the kernel chains felix inserts its jumps into (ChainInsertMode "insert": at the top)
HOOK_JUMPS = {
    "filter": {"INPUT": "cali-INPUT", "FORWARD": "cali-FORWARD", "OUTPUT": "cali-OUTPUT"},
    "nat": {"PREROUTING": "cali-PREROUTING", "POSTROUTING": "cali-POSTROUTING",
            "OUTPUT": "cali-OUTPUT"},
}
