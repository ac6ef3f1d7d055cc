"""TCP options as Linux writes and pktsim reads them (``tcp_options_write``,
``tcp_parse_options``): a SYN's ``mss,sackOK,TS,nop,wscale`` and the timestamp of every other
segment."""

from __future__ import annotations

import struct

WSCALE = 10  # the reference kernel (6.18, tcp_rmem max 32 MiB); 7 on kernels before 6.x


def parse_options(raw: bytes) -> dict[str, int | tuple[int, int] | bool]:
    """The options pktsim understands: mss, wscale, sackOK, ts=(val, ecr)."""
    out: dict[str, int | tuple[int, int] | bool] = {}
    i = 0
    while i < len(raw):
        kind = raw[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= len(raw) or raw[i + 1] < 2 or i + raw[i + 1] > len(raw):
            break
        length = raw[i + 1]
        body = raw[i + 2:i + length]
        if kind == 2 and length == 4:
            out["mss"] = int.from_bytes(body, "big")
        elif kind == 3 and length == 3:
            out["wscale"] = body[0]
        elif kind == 4:
            out["sackOK"] = True
        elif kind == 8 and length == 10:
            out["ts"] = struct.unpack("!II", body)
        i += length
    return out


def syn_options(mss: int, tsval: int, tsecr: int, wscale: int = WSCALE) -> bytes:
    """``mss,sackOK,TS,nop,wscale`` — the order and bytes Linux writes."""
    return (struct.pack("!BBH", 2, 4, mss) + b"\x04\x02"
            + struct.pack("!BBII", 8, 10, tsval & 0xFFFFFFFF, tsecr) + b"\x01\x03\x03"
            + bytes([wscale]))


def ts_options(tsval: int, tsecr: int) -> bytes:
    return b"\x01\x01" + struct.pack("!BBII", 8, 10, tsval & 0xFFFFFFFF, tsecr)
