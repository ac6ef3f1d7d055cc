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
    """tshark checks capture.pcapng (when tshark exists); dnspython parses every DNS message.

    The per-interface pcaps hold the same frames (``test_output_folder`` proves it byte for
    byte); ``per_interface`` runs tshark on each of them too.
    """
    parse_dns_messages(out / "capture.pcapng")
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


def dns_payloads(capture: Path) -> list[bytes]:
    """Every DNS message in a capture: UDP port 53 payloads and TCP port 53 messages."""
    from scapy.utils import RawPcapNgReader

    out: list[bytes] = []
    streams: dict[tuple[str, int, str, int], bytes] = {}
    for data, meta in RawPcapNgReader(str(capture)):
        pkt = IP(data) if meta.linktype == 101 else Ether(data)
        if IP not in pkt:
            continue
        ip = pkt[IP]
        if UDP in ip and 53 in (ip[UDP].sport, ip[UDP].dport) and ip[UDP].dport != 8472:
            out.append(bytes(ip[UDP].payload))
        elif TCP in ip and 53 in (ip[TCP].sport, ip[TCP].dport) and len(ip[TCP].payload):
            key = (ip.src, ip[TCP].sport, ip.dst, ip[TCP].dport)
            buf = streams.get(key, b"") + bytes(ip[TCP].payload)
            while len(buf) >= 2 and len(buf) >= 2 + int.from_bytes(buf[:2], "big"):
                size = int.from_bytes(buf[:2], "big")
                out.append(buf[2:2 + size])
                buf = buf[2 + size:]
            streams[key] = buf
    return out


def parse_dns_messages(capture: Path) -> list[object]:
    """dnspython parses every DNS message of the capture (raising on any that it cannot)."""
    import dns.message

    return [dns.message.from_wire(wire) for wire in dns_payloads(capture)]
