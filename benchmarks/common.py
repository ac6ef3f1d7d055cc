"""What every benchmark shares: the results file, the machine description, a pcapng reader."""

from __future__ import annotations

import datetime
import json
import os
import platform
import resource
import statistics
import struct
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"
"""Where ``python -m benchmarks.run`` records its figures (merged, one key per benchmark)."""


def two_pods(name: str, flow: str, *, nodes: int, network: str = "routes",
             b_node: str = "node-1", extra: str = "") -> str:
    """A benchmark's scenario: pod ``default/a`` on node-1 (client), pod ``default/b`` on
    ``b_node`` (server, port 8080 named ``http``, label ``app: b``), ``extra`` documents (a
    Service), and one flow (a YAML flow mapping)."""
    return f"""\
apiVersion: pktsim/v1alpha1
kind: Cluster
metadata: {{name: {name}}}
spec: {{nodes: {nodes}, network: {network}, seed: 0}}
---
apiVersion: v1
kind: Pod
metadata: {{name: a, namespace: default}}
spec:
  nodeName: node-1
  containers: [{{name: client}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: b, namespace: default, labels: {{app: b}}}}
spec:
  nodeName: {b_node}
  containers: [{{name: server, ports: [{{name: http, containerPort: 8080}}]}}]
---
{extra}apiVersion: pktsim/v1alpha1
kind: Traffic
spec:
  flows:
  - {flow}
"""


def peak_rss_kb() -> tuple[int, int]:
    """(this process's own peak RSS, ``ru_maxrss``), in KiB.

    The first is ``VmHWM`` of ``/proc/self/status``, the high-water mark of this process's
    own memory map.  ``ru_maxrss`` is not enough on Linux: it carries the parent's RSS at
    the fork across ``execve`` (``signal_struct.maxrss``), so a child started by a
    benchmark run that already holds 100 MB reports at least 100 MB.  Elsewhere (no
    ``/proc``) both are ``ru_maxrss``."""
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]), maxrss
    except (OSError, ValueError, IndexError):
        pass
    return maxrss, maxrss


@dataclass(frozen=True)
class Outcome:
    """What one benchmark hands back: its figures (for the JSON) and its summary lines."""

    name: str
    figures: dict[str, Any]
    lines: list[str]


def machine() -> dict[str, Any]:
    """When and where the figures were taken."""
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "machine": platform.machine(),
        "system": platform.system(),
        "cpu_count": os.cpu_count(),
    }


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def write_results(outcomes: Sequence[Outcome], path: Path = RESULTS) -> dict[str, Any]:
    """Merge each outcome under its name into ``path`` (other benchmarks' keys are kept)."""
    data: dict[str, Any] = {}
    if path.is_file():
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            loaded = None
        if isinstance(loaded, dict):
            data = loaded
    for outcome in outcomes:
        data[outcome.name] = {**outcome.figures, **machine()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)
    return data


# -- reading capture.pcapng (the benchmark's own reader: struct only, no scapy) ----------------

_BLOCK_HEAD = struct.Struct("<II")
_EPB_FIXED = struct.Struct("<IIIII")  # interface id, ts high, ts low, captured len, orig len
_OPT_HDR = struct.Struct("<HH")
_IDB_TYPE = 1
_EPB_TYPE = 6
_IF_NAME = 2
_EPB_FLAGS = 2


@dataclass(frozen=True, slots=True)
class PcapngFrame:
    """One Enhanced Packet Block: capture point, ``epb_flags`` direction, time and bytes."""

    index: int  # 0-based position in the file
    if_name: str
    linktype: int
    direction: int  # 0 unknown, 1 inbound, 2 outbound
    t_ns: int  # assumes if_tsresol = 9, which is what pktsim writes
    data: bytes


def _options(body: bytes, offset: int) -> Iterator[tuple[int, bytes]]:
    while offset + 4 <= len(body):
        code, length = _OPT_HDR.unpack_from(body, offset)
        if code == 0:
            return
        yield code, body[offset + 4: offset + 4 + length]
        offset += 4 + length + (-length & 3)


def read_pcapng(path: str | os.PathLike[str]) -> Iterator[PcapngFrame]:
    """Every EPB of a little-endian single-section pcapng file, in file order."""
    ifaces: list[tuple[str, int]] = []
    index = 0
    with open(path, "rb", buffering=1 << 20) as f:
        while True:
            head = f.read(8)
            if len(head) < 8:
                return
            block_type, total = _BLOCK_HEAD.unpack(head)
            body = f.read(total - 8)
            if len(body) != total - 8:
                raise ValueError(f"{path}: truncated block at frame {index}")
            body = body[:-4]  # the trailing copy of the total length
            if block_type == _IDB_TYPE:
                linktype = struct.unpack_from("<H", body, 0)[0]
                name = f"if{len(ifaces)}"
                for code, value in _options(body, 8):
                    if code == _IF_NAME:
                        name = value.decode("utf-8", "replace")
                ifaces.append((name, linktype))
            elif block_type == _EPB_TYPE:
                if_id, ts_hi, ts_lo, cap_len, _orig = _EPB_FIXED.unpack_from(body, 0)
                data = body[20: 20 + cap_len]
                direction = 0
                for code, value in _options(body, 20 + cap_len + (-cap_len & 3)):
                    if code == _EPB_FLAGS and len(value) == 4:
                        direction = struct.unpack("<I", value)[0] & 3
                name, linktype = ifaces[if_id]
                yield PcapngFrame(index, name, linktype, direction, (ts_hi << 32) | ts_lo, data)
                index += 1


def python_line() -> str:
    return f"Python {sys.version.split()[0]} on {platform.machine()}, {os.cpu_count()} CPUs"
