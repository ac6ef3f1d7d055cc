"""Packets are numbered in the order they first appear in the trace.

A SYN to an address whose MAC is not known yet is made first and waits in the neighbour
queue while the ARP request and reply go out: numbered as made, ``pktsim trace`` printed
packets 2 and 3 (ARP) before packet 1.  The driver numbers a packet at its first event.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import pktsim
from pktsim.cli import main

ROOT = Path(__file__).resolve().parents[2]


def first_appearances(numbers: list[int]) -> list[int]:
    seen: dict[int, None] = {}
    for n in numbers:
        seen.setdefault(n, None)
    return list(seen)


def test_trace_prints_packets_in_order(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trace", str(ROOT / "pktsim" / "data" / "demo.yaml"), "--from",
                 "default/client", "--to", "10.96.45.12", "--port", "80"]) == 0
    shown = capsys.readouterr().out
    numbers = [int(n) for n in re.findall(r"^packet (\d+):", shown, flags=re.M)]
    assert numbers[:3] == [1, 2, 3]
    assert numbers == list(range(1, len(numbers) + 1))


def test_trace_events_number_packets_by_first_appearance() -> None:
    result = pktsim.demo_cluster("routes").run()
    numbers = [e.packet for e in result.events if e.packet is not None]
    order = first_appearances(numbers)
    assert order == list(range(1, len(order) + 1))


def test_reference_trace_jsonl_numbers_packets_in_order() -> None:
    lines = (ROOT / "captures" / "demo-vxlan" / "trace.jsonl").read_text().splitlines()
    numbers = [p for p in (json.loads(ln)["packet"] for ln in lines) if p is not None]
    order = first_appearances(numbers)
    assert order == list(range(1, len(order) + 1))
