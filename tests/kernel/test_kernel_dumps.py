"""The node dumps against the kernel twin of the same node: ``ip addr`` as iproute2 prints
it, ``bridge fdb show`` and ``iptables-save``'s framing, compared with what the kernel
prints in the twin's node namespace (modulo ifindex, a veth's peer ``@ifN`` and
``link-netns``, the broadcast address the twin's ``ip addr add`` leaves out, the date and the
counters)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import pktsim

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import kernel_nodes
from twin import KernelFeatureMissing, kernel_available, netfilter_available
from twin.cluster import KernelCluster

pytestmark = pytest.mark.kernel


def _addr(text: str) -> dict[str, list[str]]:
    """``ip addr``'s lines per interface, without what differs by construction (see the
    module; the interfaces' order is their creation order, their ifindex)."""
    out: dict[str, list[str]] = {}
    lines: list[str] = []
    for line in text.splitlines():
        head = re.match(r"^\d+: ([^:@]+)(@\w+)?: ", line)
        if head:
            lines = out.setdefault(head.group(1), [])
            line = line[head.end():]
        line = re.sub(r" link-netns(id)? \S+", "", line)
        lines.append(re.sub(r"( inet \S+) brd \S+", r"\1", line))
    return out


def _framing(text: str) -> list[str]:
    """iptables-save's comment lines with the version and the date masked."""
    return [re.sub(r"v[\d.]+ \(\w+\) on .*|on .*", "<…>", line)
            for line in text.splitlines() if line.startswith("#")]


@pytest.mark.parametrize("network", ["routes", "vxlan"])
def test_ip_addr_and_iptables_save_are_printed_as_the_kernel_prints_them(
        network: str, tmp_path: Path) -> None:
    reason = kernel_available() or netfilter_available()
    if reason:
        pytest.skip(reason)
    result = pktsim.demo_cluster(network).run(tmp_path / "out")
    nodes = tmp_path / "out" / "nodes" / "node-1"
    kc = KernelCluster(kernel_nodes(result), mode=network, br_netfilter=True)
    try:
        with kc:
            ns = kc.node_nss["node-1"]
            kc.iptables_restore("node-1", result.topology.netfilters["node-1"].save())
            addr = subprocess.run(["ip", "netns", "exec", ns, "ip", "addr"],
                                  capture_output=True, text=True, check=True).stdout
            saved = subprocess.run(["ip", "netns", "exec", ns, "iptables-save"],
                                   capture_output=True, text=True, check=True).stdout
            fdb = subprocess.run(["ip", "netns", "exec", ns, "bridge", "fdb", "show"],
                                 capture_output=True, text=True, check=True).stdout
    except KernelFeatureMissing as exc:
        pytest.skip(str(exc))
    assert _addr((nodes / "ip-addr.txt").read_text()) == _addr(addr)
    assert _framing((nodes / "iptables-save.txt").read_text()) == _framing(saved)
    # the twin sent nothing, so it learned nothing: its entries are pktsim's permanent ones
    # (in ifindex order, which differs: compared sorted)
    mine = [ln for ln in (nodes / "bridge-fdb.txt").read_text().splitlines() if "permanent" in ln]
    assert sorted(mine) == sorted(fdb.splitlines())
