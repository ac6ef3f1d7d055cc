"""A Traffic entry that injects raw bytes: ``{frame: HEX, interface: HOST:IFNAME, start}``.

The bytes arrive on the interface as if its link peer had sent them: captured there
(``capture.pcapng``, the trace) and handed to the device, which drops what it cannot read
with a reason.  This is how users' own hypothesis tests throw
``pktsim.strategies.malformed_frames()`` at a cluster; nothing checks the bytes here but
their size, since a malformed frame is the point.
"""

from __future__ import annotations

import binascii

from pktsim.model.objects import Flow, Source
from pktsim.scenario.fields import Obj, wrong_type
from pktsim.scenario.syntax import interface_name

# An Ethernet frame holding the largest IPv4 packet (65,535 bytes) and its 14-byte header.
MAX_FRAME = 65_535 + 14
FRAME_VALID = f"the frame as hex digits (spaces and colons allowed), 1-{MAX_FRAME} bytes"
INTERFACE_VALID = "HOST:IFNAME as capture.pcapng names it (node-1:eth0, default/web:eth0)"
NOT_FOR_FRAMES = ("from", "to", "lookup", "protocol", "count", "payload", "type", "ttl",
                  "interval")


def parse_frame(value: object) -> bytes | None:
    """The bytes of ``value`` (hex text, or bytes from ``!!binary`` or Python), or None."""
    if isinstance(value, bytes | bytearray):
        data = bytes(value)
    elif isinstance(value, str) and len(value) <= 3 * MAX_FRAME + 64:
        digits = "".join(value.replace(":", " ").split())
        try:
            data = binascii.unhexlify(digits)
        except (binascii.Error, ValueError):
            return None
    else:
        return None
    return data if 1 <= len(data) <= MAX_FRAME else None


def interface_problem(text: str) -> tuple[str, str] | None:
    """Why ``text`` is no ``HOST:IFNAME``, or None (whether it exists is known at build)."""
    host, colon, name = text.rpartition(":")
    if colon and host and len(host) <= 253 and interface_name(name) is None:
        return None
    return "is not an interface", INTERFACE_VALID


def read_injection(obj: Obj, number: int, source: Source) -> Flow:
    """An injected frame's flow; the fields of connections are errors here."""
    from pktsim.scenario.traffic import _flow_name, _start

    flow = Flow(name=obj.string("name", f"flow-{number}", check=_flow_name), source_ref="",
                source=source)
    flow.interface = obj.string("interface", required=True, check=interface_problem,
                                valid=INTERFACE_VALID)
    value = obj.raw("frame")
    flow.frame = parse_frame(value) if value is not None else None
    if value is None:
        obj.missing("frame", FRAME_VALID)
    elif flow.frame is None and not isinstance(value, str | bytes):
        wrong_type(obj.ctx, obj.at("frame"), value, FRAME_VALID)
    elif flow.frame is None:
        obj.ctx.error(obj.at("frame"), value, "is not a frame", FRAME_VALID)
    for key in NOT_FOR_FRAMES:
        if obj.has(key):
            obj.ctx.error(obj.at(key), obj.raw(key), "is not used by an injected frame",
                          "frame, interface, start and name only")
    flow.start_ns = _start(obj)
    return flow
