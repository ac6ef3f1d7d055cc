"""The output folder of docs/scenario.md §7, written to a temporary folder and moved into place.

A failed run leaves no half-written folder: everything goes to ``.DIR.tmp-XXXX`` beside the
destination and is renamed over it only when the run succeeded.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from pktsim.core.capture import Sink
from pktsim.errors import ScenarioError

if TYPE_CHECKING:
    from pktsim.build.topology import Topology
    from pktsim.sinks.snapshots import Snapshots


# Errors of the file system under --out that the user can fix (and not pktsim): exit 2.
USER_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT,
                         errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG, errno.ELOOP,
                         errno.EEXIST, errno.EFBIG})
_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


def check_destination(dest: Path, force: bool) -> None:
    if dest.exists() and not dest.is_dir():
        raise ScenarioError("exists and is not a folder", field="--out", value=str(dest),
                            valid="a folder path")
    if dest.is_dir() and any(dest.iterdir()) and not force:
        raise ScenarioError("is not empty; pass --force to replace it", field="--out",
                            value=str(dest), valid="an empty or new folder")


def fs_error(exc: OSError, dest: Path) -> ScenarioError:
    """A file-system refusal (read-only, full, no permission) as bad input naming the path."""
    path = str(exc.filename) if exc.filename is not None else str(dest)
    what = "" if path == str(dest) else f" {path}"
    return ScenarioError(f"cannot write{what}: {exc.strerror or exc}", field="--out",
                         value=str(dest), valid="a folder on a writable file system with "
                         "room for the run's output")


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP wait until the block is done (then are delivered): the
    swap of the old folder for the new one is never cut in half.  A no-op off the main
    thread, where Python never runs signal handlers anyway."""
    main = threading.current_thread() is threading.main_thread()
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS) if main else None
    try:
        yield
    finally:
        if old is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)


@contextlib.contextmanager
def atomic_dir(dest: Path, *, force: bool = True) -> Iterator[Path]:
    """Yield a temporary folder; on success it replaces ``dest``, on failure it vanishes.

    ``dest`` a symlink: the folder it points to is replaced (the link stays).  ``dest`` a
    mount point (a Docker volume), which no rename can replace: the temporary folder is
    made inside it and its contents swapped in.  A refusal of the file system is a
    ``ScenarioError`` naming the path (exit 2)."""
    import shutil  # here, not at the top: ``pktsim check`` imports this module, writes nothing
    import tempfile

    check_destination(dest, force)
    try:
        real = dest.resolve() if dest.is_symlink() else dest
    except (RuntimeError, OSError):  # Python 3.11 raises RuntimeError on a symlink loop
        raise ScenarioError("is a symlink loop", field="--out", value=str(dest),
                            valid="a folder, or a symlink to one") from None
    inside = os.path.ismount(real)
    try:
        real.parent.mkdir(parents=True, exist_ok=True)
        home = real if inside else real.parent
        tmp = Path(tempfile.mkdtemp(prefix=f".{real.name}.tmp-", dir=home))
    except OSError as exc:
        raise fs_error(exc, dest) from None
    try:
        yield tmp
        with signals_held():
            _commit(tmp, real, inside)
    except BaseException as exc:
        with signals_held():
            shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError) and exc.errno in USER_ERRNOS:
            raise fs_error(exc, dest) from None
        raise


def _commit(tmp: Path, real: Path, inside: bool) -> None:
    """Put ``tmp``'s files at ``real``: the old folder is moved aside first and removed
    last, so at every moment one complete folder is there."""
    if inside:
        for entry in list(real.iterdir()):
            if entry != tmp:
                _remove(entry)
        for entry in list(tmp.iterdir()):
            entry.rename(real / entry.name)
        tmp.rmdir()
        return
    old = None
    if real.exists():
        old = real.with_name(f"{tmp.name}-old")
        real.rename(old)
    tmp.rename(real)
    if old is not None:
        import shutil

        shutil.rmtree(old)


def _remove(entry: Path) -> None:
    if entry.is_dir() and not entry.is_symlink():
        import shutil

        shutil.rmtree(entry)
    else:
        entry.unlink()


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
    from pktsim.sinks.pcap import PcapDirSink  # here: ``pktsim check`` writes nothing
    from pktsim.sinks.pcapng import PcapngSink
    from pktsim.sinks.trace import JsonlSink, TextSink

    (folder / "pcap").mkdir(exist_ok=True)
    return [PcapngSink(folder / "capture.pcapng"), PcapDirSink(folder / "pcap"),
            JsonlSink(folder / "trace.jsonl"), TextSink(folder / "trace.txt")]
