"""Running commands for a twin: ``ip``/``ip netns exec`` calls that fail loudly, a
non-blocking line reader for long-running helpers (tcpdump, the TCP server), and the
checks that say whether this machine can build a twin at all.

Every command here is given the namespace it runs in by its caller; nothing in this module
knows a namespace name, so nothing here can reach the root namespace by itself.
"""

from __future__ import annotations

import gzip
import os
import selectors
import shutil
import subprocess
import time
from typing import IO

__all__ = ["KernelFeatureMissing", "LineReader", "in_ns", "kernel_available",
           "netfilter_available", "read_root", "run"]

# tools a twin needs -> the Debian package that has them (named in the skip reason)
_TOOLS = (
    ("ip", "needs `ip` from the Debian package iproute2 (apt-get install iproute2)"),
    ("tcpdump", "needs tcpdump (Debian package tcpdump: apt-get install tcpdump)"),
    ("ping", "needs ping (Debian package iputils-ping)"),
    ("bridge", "needs `bridge` from the Debian package iproute2"),
    ("ss", "needs ss from the Debian package iproute2"),
)


class KernelFeatureMissing(RuntimeError):
    """The running kernel lacks what a mode needs (e.g. CONFIG_NET_IPIP for ``ipip``).

    A separate type so the tests can skip on it (the machine's kernel, not pktsim, is what
    is missing) while any other setup error still fails them."""


def kernel_available() -> str | None:
    """Return None if a twin can be built here, else a human readable skip reason.

    Namespaces and captures need root; every tool is looked up once so a missing one is
    a skip naming its package rather than a confusing failure half-way through a build."""
    if os.geteuid() != 0:
        return "kernel harness needs root (network namespaces, tcpdump)"
    for tool, reason in _TOOLS:
        if shutil.which(tool) is None:
            return reason
    return None


def netfilter_available() -> str | None:
    """None if iptables-restore/-save can be used in the node namespaces, else a skip
    reason naming the Debian package (only the Services comparison needs them)."""
    for tool in ("iptables-restore", "iptables-save"):
        if shutil.which(tool) is None:
            return f"needs {tool} (Debian package iptables: apt-get install iptables)"
    return None


def run(argv: list[str], *, check: bool = True, timeout: float = 10.0,
        stdin: str | None = None) -> str:
    """Run ``argv`` and return its stdout; with ``check`` a non-zero exit raises with the
    command and its stderr, so a setup step never fails silently into a wrong topology."""
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, input=stdin)
    if check and p.returncode != 0:
        raise RuntimeError(f"command failed ({p.returncode}): {' '.join(argv)}\n{p.stderr}")
    return p.stdout


def in_ns(ns: str, *argv: str) -> list[str]:
    """``argv`` prefixed to run inside network namespace ``ns``."""
    return ["ip", "netns", "exec", ns, *argv]


def read_root(path: str) -> str:
    """Read a /proc/sys file in the harness process's own (root) namespace: read only, used
    to prove a per-namespace write left the root namespace's value alone."""
    with open(path) as f:
        return f.read().strip()


def kernel_config_hint(option: str) -> str:
    """``" (CONFIG_X is not set)"`` etc. from /proc/config.gz when the kernel has it, so a
    skip says whether the feature is missing from the build or only not loaded."""
    try:
        with gzip.open("/proc/config.gz", "rt") as f:
            for line in f:
                if option in line:
                    return f" ({line.strip().lstrip('# ')})"
    except OSError:
        pass
    return ""


def _readable(stream: IO[bytes]) -> bool:
    sel = selectors.DefaultSelector()
    sel.register(stream, selectors.EVENT_READ)
    try:
        return bool(sel.select(0))
    finally:
        sel.close()


class LineReader:
    """Non-blocking line reader over a subprocess pipe (bytes).

    The harness waits for events (tcpdump's "listening on", the server's "ready") instead
    of sleeping; a blocking readline could hang the test run when a helper dies silently,
    so reads go through a selector with a deadline."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.buf = b""
        self.lines: list[str] = []
        os.set_blocking(stream.fileno(), False)

    def _pump(self, timeout: float) -> bool:
        """Read what is there within ``timeout``; False once the pipe is at EOF."""
        sel = selectors.DefaultSelector()
        sel.register(self.stream, selectors.EVENT_READ)
        try:
            if not sel.select(timeout):
                return True
        finally:
            sel.close()
        try:
            chunk = os.read(self.stream.fileno(), 65536)
        except BlockingIOError:
            return True
        if not chunk:
            return False
        self.buf += chunk
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            self.lines.append(line.decode(errors="replace"))
        return True

    def wait_for(self, needle: str, timeout: float, proc: subprocess.Popen[bytes]) -> str:
        """Block until a line containing ``needle`` arrives; return it.  Raises
        TimeoutError after ``timeout`` and RuntimeError if ``proc`` exits first."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for line in self.lines[seen:]:
                if needle in line:
                    return line
            seen = len(self.lines)
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"timed out waiting for {needle!r}; got {self.lines!r}")
            alive = self._pump(min(left, 0.5))
            if not alive and proc.poll() is not None and needle not in "".join(self.lines[seen:]):
                # drain and re-check once more
                for line in self.lines[seen:]:
                    if needle in line:
                        return line
                raise RuntimeError(
                    f"process exited ({proc.returncode}) before {needle!r}: {self.lines!r}"
                )

    def drain(self) -> list[str]:
        """Everything the process wrote (it has exited or been signalled): all lines."""
        while self._pump(0):
            if not self.buf and not _readable(self.stream):
                break
        if self.buf:
            self.lines.append(self.buf.decode(errors="replace"))
            self.buf = b""
        return self.lines
