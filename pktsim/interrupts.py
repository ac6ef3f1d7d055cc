"""SIGTERM and SIGHUP handled as SIGINT is: one exception, so every ``finally`` runs.

``timeout``, ``docker stop`` and a closed terminal send SIGTERM or SIGHUP, whose default
action ends the process at once, leaving the output folder's hidden temporary folder
behind.  Raised as a ``KeyboardInterrupt`` instead, they unwind the run like Ctrl-C:
``pktsim.sinks.output.atomic_dir`` removes the temporary folder and the previous output
stays.  The exit status is the shell's for a death by that signal, 128 + its number.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType


class Terminated(KeyboardInterrupt):
    """The run was stopped by ``signum`` (SIGTERM, SIGHUP)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise(signum: int, frame: FrameType | None) -> None:
    raise Terminated(signum)


def terminate_as_interrupt() -> None:
    """Install the handlers (main thread only: Python runs handlers nowhere else)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) is signal.SIG_DFL:
            signal.signal(signum, _raise)


def exit_status(exc: KeyboardInterrupt) -> int:
    """128 + the signal's number: 130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP."""
    return 128 + (exc.signum if isinstance(exc, Terminated) else signal.SIGINT)


def describe(exc: KeyboardInterrupt) -> str:
    """The line printed on the way out."""
    name = exc.args[0] if isinstance(exc, Terminated) else "SIGINT"
    return f"interrupted by {name}; an existing --out folder is left as it was"
