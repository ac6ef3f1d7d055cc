"""SIGTERM and SIGHUP handled as SIGINT is: one exception, so every ``finally`` runs.

``timeout``, ``docker stop`` and a closed terminal send SIGTERM or SIGHUP, whose default
action ends the process at once, leaving the output folder's hidden temporary folder
behind.  Raised as a ``KeyboardInterrupt`` instead, they unwind the run like Ctrl-C:
``pktsim.sinks.output.atomic_dir`` removes the temporary folder and the previous output
stays.  The exit status is the shell's for a death by that signal, 128 + its number.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType


class Terminated(KeyboardInterrupt):
    """The run was stopped by ``signum`` (SIGTERM, SIGHUP)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise(signum: int, frame: FrameType | None) -> None:
    raise Terminated(signum)


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise ``Terminated`` (main thread only: Python
    runs handlers nowhere else); the handlers before are put back after it, so a program
    that calls ``pktsim.cli.main`` in-process keeps its own."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGHUP)}
    for signum, handler in before.items():
        if handler is signal.SIG_DFL:
            signal.signal(signum, _raise)
    try:
        yield
    finally:  # a signal now waits for the old handler (SIG_DFL: the process ends quietly)
        held = signal.pthread_sigmask(signal.SIG_BLOCK, set(before))
        for signum, handler in before.items():
            if handler is signal.SIG_DFL:
                signal.signal(signum, handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def within(exc: BaseException) -> KeyboardInterrupt | None:
    """The interrupt an exception wraps, if any: a signal that arrives while a class is made
    comes out as ``RuntimeError: Error calling __set_name__ ...`` (``type_new`` wraps what
    a descriptor raised), the interrupt its cause -- still an interrupt, not an error."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, KeyboardInterrupt):
            return cur
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return None


def exit_status(exc: KeyboardInterrupt) -> int:
    """128 + the signal's number: 130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP."""
    return 128 + (exc.signum if isinstance(exc, Terminated) else signal.SIGINT)


def describe(exc: KeyboardInterrupt) -> str:
    """The line printed on the way out."""
    name = exc.args[0] if isinstance(exc, Terminated) else "SIGINT"
    return f"interrupted by {name}; an existing --out folder is left as it was"
