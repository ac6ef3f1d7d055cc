"""Classic pcap output: ``pcap/HOST_IFNAME.pcap``, one file per interface.

For tools that do not read pcapng.  Classic pcap has one link type per file and no comments
or directions, which is why there is one file per interface and why it is the secondary
format.  Nanosecond timestamps (magic ``0xa1b23c4d``), little-endian, snaplen 262144.

A cluster can have hundreds of interfaces, more than we want open file descriptors, so
records are buffered in memory per interface and appended to their files (open, append,
close) whenever the total buffered passes a budget, and on ``close()``.  Every announced
interface gets its file with the global header at once, even if no frame ever follows.
"""

from __future__ import annotations

import struct
from pathlib import Path

from pktsim.core.capture import Direction, Interface
from pktsim.core.events import TraceEvent

SNAPLEN = 262144
NS_MAGIC = 0xA1B23C4D

_GLOBAL_HEADER = struct.Struct("<IHHiIII")  # magic, 2, 4, thiszone, sigfigs, snaplen, linktype
_RECORD_HEADER = struct.Struct("<IIII")  # ts_sec, ts_nsec, incl_len, orig_len


def global_header(linktype: int, snaplen: int = SNAPLEN) -> bytes:
    """The 24-byte pcap file header for a nanosecond-resolution file."""
    return _GLOBAL_HEADER.pack(NS_MAGIC, 2, 4, 0, 0, snaplen, linktype)


def record_parts(t_abs_ns: int, data: bytes, snaplen: int = SNAPLEN) -> tuple[bytes, bytes]:
    """One packet record as its header (seconds, nanoseconds, lengths) and captured bytes:
    a writer that buffers can keep the frame's bytes without copying them."""
    if t_abs_ns < 0:
        raise ValueError(f"pcap timestamp {t_abs_ns} is negative")
    sec, nsec = divmod(t_abs_ns, 1_000_000_000)
    if sec > 0xFFFFFFFF:
        raise ValueError(f"pcap timestamp {t_abs_ns} does not fit 32-bit seconds")
    orig_len = len(data)
    if orig_len > snaplen:
        data = data[:snaplen]
    return _RECORD_HEADER.pack(sec, nsec, len(data), orig_len), data


def record(t_abs_ns: int, data: bytes, snaplen: int = SNAPLEN) -> bytes:
    """One packet record: header (seconds, nanoseconds, lengths) then the captured bytes."""
    head, body = record_parts(t_abs_ns, data, snaplen)
    return head + body


class PcapDirSink:
    """The Sink that writes ``<dir>/<iface.file_stem>.pcap`` for every interface announced."""

    takes_events = False  # the driver skips this sink's no-op for every event

    def __init__(self, directory: str | Path, flush_bytes: int = 8 << 20,
                 snaplen: int = SNAPLEN) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._flush_bytes = flush_bytes
        self._snaplen = snaplen
        self._paths: dict[Interface, Path] = {}
        self._owner: dict[str, Interface] = {}  # file stem -> the interface that has it
        self._pending: dict[Path, list[bytes]] = {}
        self._buffered = 0
        # id(iface) -> (iface, its pending chunks): one identity check per frame instead
        # of hashing the Interface dataclass and then the Path
        self._fast: dict[int, tuple[Interface, list[bytes]]] = {}

    def path_for(self, iface: Interface) -> Path:
        return self.directory / f"{iface.file_stem}.pcap"

    def _open(self, iface: Interface) -> Path:
        path = self._paths.get(iface)
        if path is not None:
            return path
        stem = iface.file_stem
        other = self._owner.get(stem)
        again = 1
        while other is not None and other.if_name == iface.if_name:
            # the same HOST:IFNAME made again (a pod deleted and created anew during the
            # run): its own file, numbered, ``default_web-0_eth0.2.pcap``
            again += 1
            stem = f"{iface.file_stem}.{again}"
            other = self._owner.get(stem)
        if other is not None:
            # Two distinct interfaces would share one file (e.g. differing only in link
            # type or description, or in "/" vs "_"): refuse rather than mix them.
            raise ValueError(f"interfaces {other!r} and {iface!r} both map to {stem}.pcap")
        path = self.directory / f"{stem}.pcap"
        path.write_bytes(global_header(int(iface.linktype), self._snaplen))
        self._owner[stem] = iface
        self._paths[iface] = path
        self._pending[path] = []
        return path

    def interface(self, iface: Interface) -> None:
        self._open(iface)

    def frame(self, t_abs_ns: int, iface: Interface, direction: Direction, data: bytes,
              comment: str) -> None:
        """Buffer one record; classic pcap has no place for the direction or the comment."""
        hit = self._fast.get(id(iface))
        if hit is not None and hit[0] is iface:
            chunks = hit[1]
        else:
            chunks = self._pending[self._paths.get(iface) or self._open(iface)]
            self._fast[id(iface)] = (iface, chunks)  # iface kept alive: its id stays valid
        head, body = record_parts(t_abs_ns, data, self._snaplen)
        chunks.append(head)
        chunks.append(body)  # the frame's bytes as they are: joined once, at flush
        self._buffered += 16 + len(body)
        if self._buffered >= self._flush_bytes:
            self.flush()

    def event(self, event: TraceEvent) -> None:
        """Trace events have no place in a pcap."""

    def flush(self) -> None:
        for path, chunks in self._pending.items():
            if chunks:
                with path.open("ab") as f:
                    f.write(b"".join(chunks))
                chunks.clear()
        self._buffered = 0

    def close(self) -> None:
        self.flush()
