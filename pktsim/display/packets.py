"""Frames as scapy dissects them, and the addresses a hop table shows.

scapy is the inspector (docs/model.md, "Decisions"): a ``FrameView`` is one captured frame
with its capture point, and its ``packet`` is the scapy dissection — Ethernet for every
interface but ``tunl0``, whose frames are bare IPv4 (LINKTYPE_RAW).  Only ``scapy.layers.*``
is imported (never ``scapy.all``), with the VXLAN binding for flannel's UDP 8472 and DNS.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from pktsim.core.capture import LinkType
from pktsim.display.tabular import esc

__all__ = ["BINDINGS", "FrameView", "dissect"]

if TYPE_CHECKING:
    from scapy.packet import Packet

    from pktsim.sinks.trace import CapturedFrame

# layers whose import binds them: DNS to port 53, VXLAN to UDP 8472 (flannel's port)
BINDINGS = ("scapy.layers.dns", "scapy.layers.vxlan")


def dissect(data: bytes, raw: bool = False) -> Packet:
    """The scapy packet for a frame (``raw``: a bare IPv4 packet, as on ``tunl0``)."""
    for module in BINDINGS:
        importlib.import_module(module)
    from scapy.layers.inet import IP
    from scapy.layers.l2 import Ether

    return IP(data) if raw else Ether(data)


class FrameView:
    """One captured frame: number, capture point, direction, trace comment and dissection."""

    def __init__(self, frame: CapturedFrame) -> None:
        self.frame = frame
        self._packet: Packet | None = None

    @property
    def number(self) -> int:
        return self.frame.number

    @property
    def raw(self) -> bool:
        return self.frame.iface.linktype == LinkType.RAW

    @property
    def data(self) -> bytes:
        return self.frame.data

    @property
    def packet(self) -> Packet:
        """The scapy dissection (built on first use)."""
        if self._packet is None:
            self._packet = dissect(self.frame.data, self.raw)
        return self._packet

    def layers(self) -> list[str]:
        """Layer names outermost first: ``['Ether', 'IP', 'UDP', 'VXLAN', 'Ether', ...]``."""
        names = []
        layer: Packet | None = self.packet
        while layer is not None and layer.name != "NoPayload":
            names.append(type(layer).__name__)
            payload = layer.payload
            layer = payload if payload and type(payload).__name__ != "NoPayload" else None
        return names

    def headline(self) -> str:
        f = self.frame
        way = {1: "in", 2: "out"}.get(int(f.direction), "?")
        return (f"frame #{f.number} on {f.iface.if_name} ({way}), {len(f.data)} bytes, "
                f"t={f.t_abs_ns / 1e9:.9f}: {f.comment}")

    def show(self) -> str:
        """scapy's ``show()`` text."""
        return str(self.packet.show(dump=True))

    def hexdump(self) -> str:
        from scapy.utils import hexdump

        return str(hexdump(self.frame.data, dump=True))

    def __repr__(self) -> str:
        return f"<FrameView {self.headline()}>"

    def __str__(self) -> str:
        return self.headline() + "\n" + self.show()

    def _repr_html_(self) -> str:
        return (f'<div class="pktsim-frame"><b>{esc(self.headline())}</b>'
                f'<pre style="font-size:12px">{esc(self.show())}</pre></div>')
