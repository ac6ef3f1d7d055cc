"""Trace sinks: ``trace.jsonl`` (one JSON object per hop event), ``trace.txt``, and memory.

The lines themselves are made by ``pktsim.render.lines`` (one writer per form, shared with
``Result.trace_lines`` and ``pktsim trace --format json``); this module only streams them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TextIO

from pktsim.core.capture import Direction, Interface
from pktsim.core.events import TraceEvent
from pktsim.render.lines import JsonLines, trace_line


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
    """Streams every trace event as one JSON line (``pktsim.render.lines.JsonLines``)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(path)
        self._writer = JsonLines()

    def line(self, event: TraceEvent) -> str:
        return self._writer.line(event)


class TextSink(_TextFileSink):
    """Streams the human-readable trace, one line per event (``trace_line``)."""

    def line(self, event: TraceEvent) -> str:
        return trace_line(event) + "\n"


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
