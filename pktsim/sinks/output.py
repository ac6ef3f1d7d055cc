"""The output folder of docs/scenario.md §7, written to a temporary folder and moved into place.

A failed run leaves no half-written folder: everything goes to ``.DIR.tmp-XXXX`` beside the
destination and is renamed over it only when the run succeeded.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from pktsim.core.capture import Sink
from pktsim.errors import ScenarioError
from pktsim.sinks.pcap import PcapDirSink
from pktsim.sinks.pcapng import PcapngSink
from pktsim.sinks.trace import JsonlSink, TextSink

if TYPE_CHECKING:
    from pktsim.build.topology import Topology
    from pktsim.sinks.snapshots import Snapshots


def check_destination(dest: Path, force: bool) -> None:
    if dest.exists() and not dest.is_dir():
        raise ScenarioError("exists and is not a folder", field="--out", value=str(dest),
                            valid="a folder path")
    if dest.is_dir() and any(dest.iterdir()) and not force:
        raise ScenarioError("is not empty; pass --force to replace it", field="--out",
                            value=str(dest), valid="an empty or new folder")


@contextlib.contextmanager
def atomic_dir(dest: Path, *, force: bool = True) -> Iterator[Path]:
    """Yield a temporary folder; on success it replaces ``dest``, on failure it vanishes."""
    check_destination(dest, force)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if dest.exists():
        shutil.rmtree(dest)
    tmp.rename(dest)


def write_dumps(folder: Path, topo: Topology, snapshots: Snapshots | None = None) -> None:
    """``nodes/NODE/*.txt``: the node tables when the last flow ended (else at the end of
    the run), as Linux tools print them (``pktsim.render.dumps``), and the snapshots the
    user named (``nodes/NODE/at-LABEL/``)."""
    from pktsim.render.dumps import node_dumps

    final = snapshots.final if snapshots is not None else None
    files = dict(final if final is not None else node_dumps(topo, topo.driver.now))
    if snapshots is not None:
        files.update(snapshots.files())
    for rel, text in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def file_sinks(folder: Path) -> list[Sink]:
    """capture.pcapng, pcap/HOST_IFNAME.pcap, trace.jsonl, trace.txt in ``folder``."""
    (folder / "pcap").mkdir(exist_ok=True)
    return [PcapngSink(folder / "capture.pcapng"), PcapDirSink(folder / "pcap"),
            JsonlSink(folder / "trace.jsonl"), TextSink(folder / "trace.txt")]
