"""An unanswered SYN against the kernel: the retransmission schedule of Linux >= 6.5.

Two network namespaces joined by a veth pair; the server's ``INPUT`` drops the SYNs
(``iptables -j DROP``), the client connects with ``TCP_SYNCNT`` 2 (``icsk_syn_retries``:
``tcp_write_timeout`` allows ``syn_retries + tcp_syn_linear_timeouts`` retransmissions),
and tcpdump times the SYNs on the client's interface.  pktsim, with its ``SYN_RETRIES`` set
to the same 2, must send the same SYNs at the same offsets, 0, 1, 2, 3, 4, 5 s (linear),
and give up when the kernel does, at 7 s: before its 2 + 4 retransmissions are spent,
``retransmits_timed_out`` stops it once the time 2 exponential retransmissions would take
(``tcp_model_timeout``: (2 << 2) - 1 = 7 initial RTOs) has passed.  With the default
``tcp_syn_retries`` 6 the count decides: 10 retransmissions, 1, 1, 1, 1, 1, 2, 4, 8, 16, 32 s
apart (``tests/devices``)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from scapy.layers.inet import TCP
from scapy.utils import rdpcap

import pktsim
from pktsim.devices import tcp as pktsim_tcp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from twin import kernel_available, netfilter_available
from twin.commands import run

pytestmark = pytest.mark.kernel

SYNCNT = 2
CLIENT = f"""
import socket
s = socket.socket()
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_SYNCNT, {SYNCNT})
started = __import__("time").monotonic()
try:
    s.connect(("10.9.0.2", 80))
except OSError as exc:
    print(exc.errno, round(__import__("time").monotonic() - started, 1))
"""
SCENARIO = Path(__file__).with_name("syn_drop.yaml")


def _offsets(path: Path) -> list[float]:
    syns = [p for p in rdpcap(str(path)) if TCP in p and p[TCP].flags == "S"]
    return [round(float(p.time) - float(syns[0].time), 1) for p in syns]


def _kernel(tmp: Path) -> tuple[list[float], str]:
    a, b = f"pktk-syna-{os.getpid()}", f"pktk-synb-{os.getpid()}"
    run(["ip", "netns", "add", a])
    run(["ip", "netns", "add", b])
    try:
        run(["ip", "link", "add", "vsa", "netns", a, "type", "veth", "peer", "vsb",
             "netns", b])
        for ns, dev, addr in ((a, "vsa", "10.9.0.1/24"), (b, "vsb", "10.9.0.2/24")):
            run(["ip", "-n", ns, "addr", "add", addr, "dev", dev])
            run(["ip", "-n", ns, "link", "set", dev, "up"])
        run(["ip", "netns", "exec", b, "iptables", "-A", "INPUT", "-p", "tcp", "--dport",
             "80", "-j", "DROP"])
        pcap = tmp / "kernel.pcap"
        dump = subprocess.Popen(["ip", "netns", "exec", a, "tcpdump", "-i", "vsa", "-U", "-w",
                                 str(pcap), "tcp"], stderr=subprocess.DEVNULL)
        time.sleep(1)
        out = run(["ip", "netns", "exec", a, sys.executable, "-c", CLIENT], timeout=60)
        time.sleep(0.5)
        dump.terminate()
        dump.wait(5)
        return _offsets(pcap), out.strip()
    finally:
        run(["ip", "netns", "del", a], check=False)
        run(["ip", "netns", "del", b], check=False)


def test_an_unanswered_syn_is_retried_as_the_kernel_does(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reason = kernel_available() or netfilter_available()
    if reason:
        pytest.skip(reason)
    if not Path("/proc/sys/net/ipv4/tcp_syn_linear_timeouts").exists():
        pytest.skip("the kernel is older than 6.5 (no tcp_syn_linear_timeouts)")
    kernel, outcome = _kernel(tmp_path)
    monkeypatch.setattr(pktsim_tcp, "SYN_RETRIES", SYNCNT)
    pktsim.load(SCENARIO).run(tmp_path / "out")
    mine = _offsets(tmp_path / "out" / "pcap" / "default_a_eth0.pcap")
    assert [round(t) for t in kernel] == [round(t) for t in mine] == [0, 1, 2, 3, 4, 5]
    errno, elapsed = outcome.split()
    assert int(errno) == 110 and abs(float(elapsed) - 7.0) < 0.5  # ETIMEDOUT at 7 s
