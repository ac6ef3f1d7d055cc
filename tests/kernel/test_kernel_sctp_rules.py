"""SCTP Service ports against the kernel: pktsim's ``iptables-save`` of a node with an SCTP
NodePort Service is loaded with ``iptables-restore`` into a fresh network namespace, and the
kernel prints it back rule for rule (``-p sctp … -m sctp --dport N``: ``xt_sctp``)."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

import pktsim

sys.path.insert(0, str(Path(__file__).resolve().parent))
from twin import kernel_available, netfilter_available
from twin.commands import run

from tests.kubeproxy.test_kubeproxy_sctp import SCENARIO

pytestmark = pytest.mark.kernel


def _rules(text: str) -> list[str]:
    return [re.sub(r"\[\d+:\d+\]$", "[0:0]", line) for line in text.splitlines()
            if not line.startswith("#")]


def test_the_kernel_prints_sctp_rules_as_pktsim_does(tmp_path: Path) -> None:
    reason = kernel_available() or netfilter_available()
    if reason:
        pytest.skip(reason)
    pktsim.load(SCENARIO).run(tmp_path / "out")
    saved = (tmp_path / "out" / "nodes" / "node-1" / "iptables-save.txt").read_text()
    assert "-m sctp --dport 9000" in saved
    ns = f"pktk-sctp-{os.getpid()}"
    run(["ip", "netns", "add", ns])
    try:
        try:
            run(["ip", "netns", "exec", ns, "iptables-restore"], stdin=saved)
        except Exception as exc:  # the kernel lacks xt_sctp
            pytest.skip(f"iptables-restore refused the SCTP rules: {exc}")
        back = run(["ip", "netns", "exec", ns, "iptables-save"])
    finally:
        run(["ip", "netns", "del", ns], check=False)
    assert _rules(back) == _rules(saved)
