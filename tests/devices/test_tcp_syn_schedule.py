"""A SYN nobody answers, as Linux >= 6.5 retries it (the kernel modelled: 6.18).

``tcp_syn_linear_timeouts`` 4 (net/ipv4/tcp_timer.c ``tcp_retransmit_timer``: the RTO is not
doubled while a SYN_SENT socket's retransmissions do not exceed it) and ``tcp_write_timeout``'s
limit of ``tcp_syn_retries`` 6 + 4 retransmissions: SYNs at 0, 1, 2, 3, 4, 5, 7, 11, 19, 35
and 67 s, then ETIMEDOUT at 131 s.  Before 6.5 the RTO doubled from the first retransmission
and 6 were sent (0, 1, 3, 7, 15, 31, 63 s).  Checked against the kernel with a smaller
``TCP_SYNCNT`` in ``tests/kernel/test_kernel_syn_schedule.py``.
"""

from __future__ import annotations

from pathlib import Path

from scapy.layers.inet import TCP
from scapy.utils import rdpcap

import pktsim

SCENARIO = Path(__file__).resolve().parents[1] / "kernel" / "syn_drop.yaml"


def test_an_unanswered_syn_follows_the_linear_then_exponential_schedule(
        tmp_path: Path) -> None:
    result = pktsim.load(SCENARIO).run(tmp_path / "out")
    syns = [p for p in rdpcap(str(tmp_path / "out" / "pcap" / "default_a_eth0.pcap"))
            if TCP in p and p[TCP].flags == "S"]
    start = float(syns[0].time)
    assert [round(float(p.time) - start, 3) for p in syns] == [
        0, 1, 2, 3, 4, 5, 7, 11, 19, 35, 67]
    assert result.flows[0].status == "timed out"
