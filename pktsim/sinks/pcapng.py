"""Our own pcapng writer: capture.pcapng, one IDB per capture point, one EPB per frame.

Why not scapy's writer: it cannot give each interface its own IDB with ``if_name`` /
``if_description``, it writes microsecond timestamps, and it is far too slow for the hot
path.  This module is ``struct`` only, little-endian, and precomputes everything that does
not change per packet (the option headers, the padding, the ``epb_flags`` option bytes).

Format reference: draft-ietf-opsawg-pcapng (Section Header Block, Interface Description
Block, Enhanced Packet Block).  Every block is ``type, total_length, body, total_length``
with the body and every option value padded to 32 bits; option lists end in
``opt_endofopt``.  Nothing here depends on the wall clock, so the same frames give
byte-identical files.
"""

from __future__ import annotations

import os
import struct
from typing import BinaryIO

from pktsim.core.capture import Direction, Interface
from pktsim.core.events import TraceEvent

SNAPLEN = 262144
"""What Linux tcpdump uses; every frame we make is far smaller, longer ones are truncated."""

_SHB_TYPE = 0x0A0D0D0A
_IDB_TYPE = 0x00000001
_EPB_TYPE = 0x00000006
_BYTE_ORDER_MAGIC = 0x1A2B3C4D

_OPT_ENDOFOPT = 0
_OPT_COMMENT = 1
_SHB_USERAPPL = 4
_IF_NAME = 2
_IF_DESCRIPTION = 3
_IF_TSRESOL = 9
_EPB_FLAGS = 2

_U32 = struct.Struct("<I")
_OPT_HDR = struct.Struct("<HH")
# EPB fixed part: type, total length, interface id, ts high, ts low, captured len, orig len.
_EPB_HEAD = struct.Struct("<7I")
_END_OF_OPT = _OPT_HDR.pack(_OPT_ENDOFOPT, 0)
_PAD = (b"", b"\0\0\0", b"\0\0", b"\0")  # indexed by len % 4
# The option-list tail, indexed by direction: just opt_endofopt for UNKNOWN, else the
# epb_flags option (direction in bits 0-1) then opt_endofopt.  A tuple, not a dict keyed by
# Direction: Enum.__hash__ is Python code, tuple indexing by an IntEnum is not.
_TAILS = (
    _END_OF_OPT,
    _OPT_HDR.pack(_EPB_FLAGS, 4) + _U32.pack(int(Direction.INBOUND)) + _END_OF_OPT,
    _OPT_HDR.pack(_EPB_FLAGS, 4) + _U32.pack(int(Direction.OUTBOUND)) + _END_OF_OPT,
)


def _option(code: int, value: bytes) -> bytes:
    """One option: code, unpadded length, value padded to 32 bits."""
    if len(value) > 0xFFFF:
        raise ValueError(f"pcapng option {code} too long ({len(value)} bytes)")
    return _OPT_HDR.pack(code, len(value)) + value + _PAD[len(value) & 3]


def _block(block_type: int, body: bytes) -> bytes:
    """A whole block: the body must already be 32-bit aligned."""
    total = 12 + len(body)
    return _U32.pack(block_type) + _U32.pack(total) + body + _U32.pack(total)


def section_header(userappl: str = "pktsim") -> bytes:
    """A Section Header Block with unknown section length (-1), as streaming writers use."""
    body = struct.pack("<IHHq", _BYTE_ORDER_MAGIC, 1, 0, -1)
    body += _option(_SHB_USERAPPL, userappl.encode()) + _END_OF_OPT
    return _block(_SHB_TYPE, body)


def interface_description(iface: Interface, snaplen: int = SNAPLEN) -> bytes:
    """An IDB: link type, snaplen, if_name, if_description (when set), if_tsresol = 9 (ns)."""
    body = struct.pack("<HHI", int(iface.linktype), 0, snaplen)
    body += _option(_IF_NAME, iface.if_name.encode())
    if iface.description:
        body += _option(_IF_DESCRIPTION, iface.description.encode())
    body += _option(_IF_TSRESOL, b"\x09") + _END_OF_OPT
    return _block(_IDB_TYPE, body)


class PcapngWriter:
    """Streams one pcapng section to a binary file: SHB now, IDBs and EPBs on demand.

    The caller owns the file (opening, closing); this class only appends bytes to it, one
    ``write`` call per block so a buffered file keeps the cost at a memcpy.
    """

    __slots__ = ("_file", "_n_ifaces", "_snaplen")

    def __init__(self, file: BinaryIO, snaplen: int = SNAPLEN) -> None:
        self._file = file
        self._snaplen = snaplen
        self._n_ifaces = 0
        file.write(section_header())

    @property
    def interface_count(self) -> int:
        return self._n_ifaces

    def add_interface(self, iface: Interface) -> int:
        """Write an IDB and return its interface id (0, 1, 2, ... in the order added)."""
        self._file.write(interface_description(iface, self._snaplen))
        self._n_ifaces += 1
        return self._n_ifaces - 1

    def write_packet(self, iface_id: int, t_abs_ns: int, data: bytes, comment: str = "",
                     direction: Direction = Direction.UNKNOWN) -> None:
        """Write one EPB: 64-bit ns timestamp, optional opt_comment and epb_flags."""
        if not 0 <= iface_id < self._n_ifaces:
            raise ValueError(f"pcapng interface id {iface_id} was never added")
        if not 0 <= t_abs_ns < 1 << 64:
            raise ValueError(f"pcapng timestamp {t_abs_ns} is outside 0 .. 2**64-1 ns")
        orig_len = len(data)
        if orig_len > self._snaplen:
            data = data[: self._snaplen]
        cap_len = len(data)
        total = 32 + cap_len + (-cap_len & 3)
        if comment:
            raw = comment.encode()
            n = len(raw)
            if n > 0xFFFF:
                raise ValueError(f"pcapng comment too long ({n} bytes)")
            tail = _TAILS[direction]
            total += 4 + n + (-n & 3) + len(tail)
            block = b"".join((
                _EPB_HEAD.pack(_EPB_TYPE, total, iface_id, t_abs_ns >> 32,
                               t_abs_ns & 0xFFFFFFFF, cap_len, orig_len),
                data, _PAD[cap_len & 3],
                _OPT_HDR.pack(_OPT_COMMENT, n), raw, _PAD[n & 3], tail,
                _U32.pack(total),
            ))
        else:
            tail = _TAILS[direction] if direction else b""
            total += len(tail)
            block = b"".join((
                _EPB_HEAD.pack(_EPB_TYPE, total, iface_id, t_abs_ns >> 32,
                               t_abs_ns & 0xFFFFFFFF, cap_len, orig_len),
                data, _PAD[cap_len & 3], tail, _U32.pack(total),
            ))
        self._file.write(block)


class PcapngSink:
    """The Sink that writes ``capture.pcapng``: an IDB per announced interface, an EPB per frame.

    An IDB is written when its interface is announced (or, to be robust, when a frame
    arrives on an interface never announced); pcapng lets IDBs appear anywhere in the
    section as long as they precede the EPBs that use them, and tshark reads such files.
    """

    takes_events = False  # the driver skips this sink's no-op for every event

    def __init__(self, path: str | os.PathLike[str], buffering: int = 1 << 20) -> None:
        self.path = path
        self._file: BinaryIO = open(path, "wb", buffering=buffering)
        self._writer = PcapngWriter(self._file)
        self._ids: dict[Interface, int] = {}
        # id(iface) -> (iface, interface id): a hit costs one identity check instead of
        # hashing the dataclass's fields for every frame.  Keeping iface alive keeps id() valid.
        self._fast: dict[int, tuple[Interface, int]] = {}

    def _iface_id(self, iface: Interface) -> int:
        hit = self._fast.get(id(iface))
        if hit is not None and hit[0] is iface:
            return hit[1]
        idx = self._ids.get(iface)
        if idx is None:
            idx = self._writer.add_interface(iface)
            self._ids[iface] = idx
        if len(self._fast) > 4 * len(self._ids) + 64:
            self._fast.clear()  # equal-but-new Interface objects: do not grow without bound
        self._fast[id(iface)] = (iface, idx)
        return idx

    def interface(self, iface: Interface) -> None:
        self._iface_id(iface)

    def frame(self, t_abs_ns: int, iface: Interface, direction: Direction, data: bytes,
              comment: str) -> None:
        self._writer.write_packet(self._iface_id(iface), t_abs_ns, data, comment, direction)

    def event(self, event: TraceEvent) -> None:
        """Trace events do not go into the capture (the comments already say it)."""

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
