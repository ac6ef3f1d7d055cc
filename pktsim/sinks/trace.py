"""Trace sinks: ``trace.jsonl`` (one JSON object per hop event), ``trace.txt``, and memory.

The text form is one line per event, stable enough to serve as a golden file::

    t=0.000004000  ping  default/a  eth0  tx  #7  IP 10.244.0.2 > 10.244.0.3: ICMP echo ...
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import TextIO

from pktsim.core.capture import Direction, Interface
from pktsim.core.events import SHARED_DETAILS, Detail, TraceEvent

_enc = json.encoder.encode_basestring_ascii  # the C string encoder json.dumps uses
# json.dumps(separators=(",", ":")) without its per-call wrapper: the detail of an event is
# plain data made by pktsim (no cycles), so the circular check is skipped too.
_dumps = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode


def format_event(e: TraceEvent) -> str:
    frame = f"#{e.frame}" if e.frame is not None else "-"
    where = f"{e.host}:{e.iface}" if e.iface else e.host
    t = e.t
    return (f"t={t // 1_000_000_000}.{t % 1_000_000_000:09d}  {e.flow or '-'}  {where}  "
            f"{e.event}  {frame}  {e.summary}")


class _TextFileSink:
    """A sink that writes one line per trace event to a text file, and ignores frames."""

    takes_frames = False  # the driver skips this sink's no-op for every frame

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._file: TextIO = open(path, "w", encoding="utf-8", buffering=1 << 20)
        self._write = self._file.write

    def interface(self, iface: Interface) -> None:
        return None

    def frame(self, t_abs_ns: int, iface: Interface, direction: Direction, data: bytes,
              comment: str) -> None:
        return None

    def line(self, event: TraceEvent) -> str:
        raise NotImplementedError

    def event(self, event: TraceEvent) -> None:
        self._write(self.line(event))

    def close(self) -> None:
        self._file.close()


class JsonlSink(_TextFileSink):
    """Streams every trace event as one JSON line (keys in a fixed order)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(path)
        # (flow, host, iface, event) -> their JSON text: a run has few distinct ones
        self._names: dict[tuple[str, str, str, str], tuple[str, str]] = {}
        self._details: dict[int, tuple[Detail, str]] = {}  # id -> (shared detail, JSON)

    def line(self, event: TraceEvent) -> str:
        e = event
        packet = "null" if e.packet is None else str(e.packet)
        frame = "" if e.frame is None else f',"frame":{e.frame}'
        extra = ""
        detail = e.detail
        if detail is None:
            pass
        elif type(detail) in SHARED_DETAILS:  # made once, for many events: encode once
            seen = self._details.get(id(detail))
            if seen is not None and seen[0] is detail:
                extra = seen[1]
            else:
                extra = "," + _dumps(detail.as_json())[1:-1]
                if len(self._details) >= 4096:
                    self._details.clear()
                self._details[id(detail)] = (detail, extra)  # kept alive: its id stays valid
        else:
            extra = "," + _dumps(detail.as_json())[1:-1]
        key = (e.flow, e.host, e.iface, e.event)
        names = self._names.get(key)
        if names is None:
            if len(self._names) >= 65536:
                self._names.clear()
            names = self._names[key] = (
                f'"flow":{_enc(e.flow)},"packet":',
                f',"host":{_enc(e.host)},"iface":{_enc(e.iface)},"event":{_enc(e.event)}')
        return (f'{{"t":{e.t},{names[0]}{packet}{names[1]},"summary":{_enc(e.summary)}'
                f"{frame}{extra}}}\n")


class TextSink(_TextFileSink):
    """Streams the human-readable trace, one line per event."""

    def line(self, event: TraceEvent) -> str:
        return format_event(event) + "\n"


@dataclass(slots=True)
class CapturedFrame:
    number: int
    t_abs_ns: int
    iface: Interface
    direction: Direction
    data: bytes
    comment: str


@dataclass
class MemorySink:
    """Keeps everything, for notebooks, tests and ``Result.write`` after the fact."""

    interfaces: list[Interface] = field(default_factory=list)
    frames: list[CapturedFrame] = field(default_factory=list)
    events: list[TraceEvent] = field(default_factory=list)

    def interface(self, iface: Interface) -> None:
        self.interfaces.append(iface)

    def frame(self, t_abs_ns: int, iface: Interface, direction: Direction, data: bytes,
              comment: str) -> None:
        self.frames.append(CapturedFrame(len(self.frames) + 1, t_abs_ns, iface, direction, data,
                                         comment))

    def event(self, event: TraceEvent) -> None:
        self.events.append(event)

    def close(self) -> None:
        return None
