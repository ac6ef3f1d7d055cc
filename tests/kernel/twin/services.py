"""Services in the cross-node twin: pktsim's own iptables rules (kube-proxy's and
flannel's, the text of ``nodes/NODE/iptables-save.txt``) loaded with ``iptables-restore``
into the node namespaces, read back with ``iptables-save``, bridged traffic sent through
them (br_netfilter), and the kernel's conntrack table read for the comparison.

Every write goes to a node namespace; the one root-namespace file involved
(bridge-nf-call-iptables) is only read, before and after, to prove it did not change.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import TYPE_CHECKING

from .commands import KernelFeatureMissing, in_ns, read_root, run

if TYPE_CHECKING:
    from .namespaces import Twin

__all__ = ["BR_NF_CALL_IPTABLES", "conntrack", "enable_br_netfilter", "iptables_restore",
           "iptables_save"]

BR_NF_CALL_IPTABLES = "/proc/sys/net/bridge/bridge-nf-call-iptables"


def _probe(ns: str, test: str) -> bool:
    """``test`` (a shell test expression) true inside ``ns``?"""
    return run(in_ns(ns, "sh", "-c", f"{test} && echo yes || echo no")).strip() == "yes"


def enable_br_netfilter(node_nss: dict[str, str]) -> None:
    """``net.bridge.bridge-nf-call-iptables=1`` in every node namespace (only there), so
    pod-to-pod traffic on one bridge passes kube-proxy's DNAT as on a real node.

    The sysctl is per network namespace since Linux 5.3 (br_netfilter registers its
    table per netns, ``brnf_init_net``); before, the table existed in the initial
    namespace only, so its presence in our namespace is the proof that writing it
    cannot touch the root namespace's value, which is also checked unchanged."""
    path = BR_NF_CALL_IPTABLES
    root_before = read_root(path)
    for name, ns in node_nss.items():
        if not _probe(ns, f"test -e {path}"):
            raise KernelFeatureMissing(
                f"{name}: no per-namespace {path} (needs CONFIG_BRIDGE_NETFILTER and "
                "Linux >= 5.3); the harness will not change the root namespace's value")
        run(in_ns(ns, "sysctl", "-q", "-w", "net.bridge.bridge-nf-call-iptables=1"))
        got = run(in_ns(ns, "sysctl", "-n", "net.bridge.bridge-nf-call-iptables")).strip()
        if got != "1":
            raise RuntimeError(f"{name}: bridge-nf-call-iptables is {got}")
    if read_root(path) != root_before:
        raise RuntimeError(f"the root namespace's {path} changed")


def iptables_restore(ns: str, node: str, text: str) -> None:
    """``iptables-restore`` (flushing the tables the text names) in ``node``'s ns."""
    p = subprocess.run(in_ns(ns, "iptables-restore"), input=text, capture_output=True,
                       text=True, timeout=20)
    if p.returncode != 0:
        raise RuntimeError(f"{node}: iptables-restore failed ({p.returncode}): "
                           f"{p.stderr.strip()}")


def ipset_restore(ns: str, node: str, text: str) -> None:
    """``ipset restore`` in ``node``'s ns (IP sets are per network namespace: the kernel's
    ``ip_set_net``); before ``iptables_restore`` of rules that name them."""
    p = subprocess.run(in_ns(ns, "ipset", "restore"), input=text, capture_output=True,
                       text=True, timeout=20)
    if p.returncode != 0:
        raise RuntimeError(f"{node}: ipset restore failed ({p.returncode}): "
                           f"{p.stderr.strip()}")


def iptables_save(twin: Twin, node: str, *, counters: bool = False) -> str:
    """``iptables-save`` of ``node`` without its ``#`` comment lines (and, unless
    ``counters``, with the chain counters zeroed as pktsim prints them)."""
    argv = ["iptables-save", *(["-c"] if counters else [])]
    out = twin.exec(node, argv)
    return "".join(line + "\n" for line in out.splitlines() if not line.startswith("#"))


def conntrack(twin: Twin, node: str) -> list[str] | None:
    """The node's conntrack table: ``/proc/net/nf_conntrack`` lines (the namespace's
    own table; needs CONFIG_NF_CONNTRACK_PROCFS), else ``conntrack -L`` lines (Debian
    package conntrack), else None."""
    if _probe(twin.ns_of(node), "test -r /proc/net/nf_conntrack"):
        out = twin.exec(node, ["cat", "/proc/net/nf_conntrack"])
    elif shutil.which("conntrack") is not None:
        out = twin.exec(node, ["conntrack", "-L"])
    else:
        return None
    return [ln for ln in out.splitlines() if ln.strip() and not ln.startswith("conntrack")]
