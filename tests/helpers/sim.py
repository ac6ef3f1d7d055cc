"""Run a scenario in a test: write the output folder, validate every capture, dissect frames."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

from scapy.layers.inet import ICMP, IP, TCP, UDP  # noqa: F401  (binds layers for dissection)
from scapy.layers.l2 import ARP, Ether  # noqa: F401
from scapy.packet import Packet

import pktsim
from pktsim.api import Result
from pktsim.sinks.trace import CapturedFrame
from tests.helpers.tshark import validate_capture


def validate_folder(out: Path, *, per_interface: bool = False) -> None:
    """tshark checks capture.pcapng (when tshark exists).

    The per-interface pcaps hold the same frames (``test_output_folder`` proves it byte for
    byte); ``per_interface`` runs tshark on each of them too.
    """
    if shutil.which("tshark") is None:
        return
    validate_capture(out / "capture.pcapng")
    if per_interface:
        for pcap in sorted((out / "pcap").glob("*.pcap")):
            validate_capture(pcap)


def run_yaml(text: str, out: Path, **kwargs: object) -> Result:
    cluster = pktsim.load(text)
    result = cluster.run(out, keep=True, **kwargs)  # type: ignore[arg-type]
    validate_folder(out)
    return result


def frames_on(result: Result, if_name: str, flow: str | None = None) -> list[CapturedFrame]:
    assert result.memory is not None
    return [f for f in result.memory.frames if f.iface.if_name == if_name
            and (flow is None or _flow_of(result, f.number) == flow)]


def _flow_of(result: Result, number: int) -> str:
    for e in result.events:
        if e.frame == number:
            return e.flow
    return ""


def dissect(frames: Iterable[CapturedFrame]) -> list[Packet]:
    return [Ether(f.data) for f in frames]


def interfaces_with_frames(result: Result, flow: str) -> set[str]:
    return {e.host + ":" + e.iface for e in result.events
            if e.flow == flow and e.event in ("rx", "tx")}
