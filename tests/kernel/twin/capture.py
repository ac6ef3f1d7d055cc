"""Capturing a twin's interfaces: one ``tcpdump -p`` per interface (the frames) plus one
``tcpdump -i any -y LINUX_SLL2`` per namespace (only to learn each frame's packet type:
a pcap file has no direction field), a bounded wait until the files hold everything the
kernel's link counters say passed, and the pairing of the two.

Why so careful: the comparison is frame by frame, so a capture that silently misses or
drops a frame would read as a pktsim bug.  Every capture is therefore checked against
the kernel's own counters and against tcpdump's "captured"/"dropped by kernel" lines.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import struct
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .commands import LineReader, in_ns

__all__ = ["PKTTYPES", "Capture", "CaptureRun", "is_router_solicitation", "read_pcap"]

# --immediate-mode makes libpcap use a TPACKET_V2 ring of fixed slots of snaplen size:
# with the default snaplen (262144) and buffer (2 MiB) that is only 8 slots and a burst
# of 9+ frames is dropped ("packets dropped by kernel"). 65600 covers a 64 KiB GSO
# frame on lo plus headers; 8 MiB gives ~120 slots.
SNAP = ("-s", "65600", "-B", "8192")
# packet types of the SLL2 header (linux/if_packet.h PACKET_*)
PKTTYPES = {0: "host", 1: "broadcast", 2: "multicast", 3: "otherhost", 4: "outgoing"}
FLUSH_TIMEOUT = 5.0

Records = list[tuple[int, bytes]]
_PCAP_MAGIC = {
    b"\xd4\xc3\xb2\xa1": ("<", 1000),
    b"\xa1\xb2\xc3\xd4": (">", 1000),
    b"\x4d\x3c\xb2\xa1": ("<", 1),
    b"\xa1\xb2\x3c\x4d": (">", 1),
}


def read_pcap(path: str, *, tolerant: bool = False) -> Records:
    """Read a classic pcap file -> [(timestamp_ns, frame_bytes)].

    Handles µs and ns magic in both byte orders. With ``tolerant`` a truncated last
    record (file still being written) is ignored instead of raising.
    """
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        if tolerant:
            return []
        raise ValueError(f"{path}: no pcap header")
    magic = data[:4]
    if magic not in _PCAP_MAGIC:
        raise ValueError(f"{path}: not a pcap file (magic {magic.hex()})")
    endian, mult = _PCAP_MAGIC[magic]
    out: Records = []
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, _orig = struct.unpack(endian + "IIII", data[off : off + 16])
        if off + 16 + incl > len(data):
            if tolerant:
                break
            raise ValueError(f"{path}: truncated record at {off}")
        out.append((sec * 1_000_000_000 + frac * mult, data[off + 16 : off + 16 + incl]))
        off += 16 + incl
    if off != len(data) and not tolerant:
        raise ValueError(f"{path}: {len(data) - off} trailing bytes")
    return out


@dataclass
class Capture:
    """Result of one capture: per-interface frames in capture order.

    ``records[key]`` = [(timestamp_ns, frame)], ``pkttypes[key]`` = the Linux packet
    type of each frame (from a companion ``-i any -y LINUX_SLL2`` capture; pcap files
    themselves carry no direction): "outgoing" = sent by this interface, anything else
    ("host", "broadcast", "multicast", "otherhost") = received by it.
    """

    records: dict[str, Records]
    pkttypes: dict[str, list[str]]
    tcpdump_stats: dict[str, list[str]]
    counter_deltas: dict[str, int]
    result: Any = None

    @property
    def directions(self) -> dict[str, list[str]]:
        """"out"/"in" per frame: the packet type reduced to what pktsim records."""
        return {k: ["out" if t == "outgoing" else "in" for t in v]
                for k, v in self.pkttypes.items()}

    @property
    def frames(self) -> dict[str, list[bytes]]:
        """The frames alone, per interface, in capture order."""
        return {k: [b for _, b in v] for k, v in self.records.items()}

    def without(self, drop: Callable[[bytes], bool]) -> Capture:
        """A copy without the frames ``drop`` says are background, packet types kept
        aligned (counters and tcpdump statistics are those of the whole capture)."""
        records: dict[str, Records] = {}
        pkttypes: dict[str, list[str]] = {}
        for key, recs in self.records.items():
            types = self.pkttypes.get(key, ["unknown"] * len(recs))
            kept = [(r, t) for r, t in zip(recs, types, strict=True) if not drop(r[1])]
            records[key] = [r for r, _ in kept]
            pkttypes[key] = [t for _, t in kept]
        return Capture(records, pkttypes, self.tcpdump_stats, self.counter_deltas,
                       self.result)

    def without_router_solicitations(self) -> Capture:
        """A copy without ICMPv6 Router Solicitations: a pod sends them for ever after
        its link comes up, at randomised times (addrconf_rs_timer with
        rfc3315_s14_backoff_update: about 4 s, 8 s, 16 s, ... apart, up to
        rtr_solicit_max_interval 1 h), and nobody answers them on a node (no RA), so
        they never belong to a scenario and may fall into any capture window."""
        return self.without(is_router_solicitation)

    def merged(self) -> list[tuple[int, str, bytes]]:
        """All interfaces merged by capture timestamp: [(ts_ns, key, frame)]."""
        allr = [(ts, k, b) for k, v in self.records.items() for ts, b in v]
        return sorted(allr, key=lambda r: r[0])


def is_router_solicitation(frame: bytes) -> bool:
    """An Ethernet frame carrying an ICMPv6 Router Solicitation (type 133, RFC 4861
    4.1: next header 58 right after the fixed header, as ndisc_send_rs builds it)."""
    return (frame[12:14] == b"\x86\xdd" and len(frame) > 54 and frame[20] == 58
            and frame[54] == 133)


class Capturable(Protocol):
    """What a capture needs from its twin (both twins in :mod:`namespaces` have it)."""

    workdir: str

    def interfaces(self) -> dict[str, tuple[str, str]]: ...
    def counters(self) -> dict[str, dict[str, int]]: ...
    def ip(self, ns: str, *args: str, check: bool = True) -> str: ...
    def l2_len(self, key: str) -> int: ...
    def track(self, proc: subprocess.Popen[bytes]) -> None: ...
    def untrack(self, proc: subprocess.Popen[bytes]) -> None: ...


@dataclass
class Tcpdump:
    """One running tcpdump: which interface (``ifname`` "any" for the SLL2 companion),
    where it writes, and its stderr (where "listening on" and the statistics appear)."""

    key: str
    ns: str
    ifname: str
    path: str
    proc: subprocess.Popen[bytes]
    err: LineReader
    stats_lines: list[str] = field(default_factory=list)


def _stat(lines: list[str], what: str) -> int | None:
    for ln in lines:
        if what in ln:
            return int(ln.split()[0])
    return None


class CaptureRun:
    """The tcpdumps of one scenario, from start to the checked :class:`Capture`."""

    def __init__(self, twin: Capturable, keys: Iterable[str] | None, seq: int) -> None:
        self.twin = twin
        self.ifs = twin.interfaces()
        self.keys = list(keys) if keys is not None else list(self.ifs)
        self.seq = seq
        self.eth: list[Tcpdump] = []
        self.any: list[Tcpdump] = []
        self.before: dict[str, dict[str, int]] = {}
        self.flush_problem = ""

    def _spawn(self, key: str, ns: str, ifname: str, path: str, *, promisc_off: bool,
               tail: tuple[str, ...] = ()) -> Tcpdump:
        """Start one tcpdump writing ``path``, tracked by the twin so ``close`` can kill it."""
        argv = in_ns(ns, "tcpdump", "-Z", "root", *(["-p"] if promisc_off else []), "-n",
                     "-U", "--immediate-mode", "--time-stamp-precision=nano", *SNAP,
                     "-i", ifname, *tail, "-w", path)
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        self.twin.track(proc)
        assert proc.stderr is not None
        return Tcpdump(key, ns, ifname, path, proc, LineReader(proc.stderr))

    def start(self) -> None:
        """Start every tcpdump, wait until each says it is capturing (an event, not a
        sleep), then note the counters the flush check measures from."""
        wd = self.twin.workdir
        for key in self.keys:  # -p: a promiscuous cbr0 would take in unicast pod frames
            ns, ifname = self.ifs[key]
            fname = key.replace(":", "_").replace("/", "_")
            path = os.path.join(wd, f"{self.seq:03d}-{fname}.pcap")
            self.eth.append(self._spawn(key, ns, ifname, path, promisc_off=True))
        # companion capture per namespace on "any" with SLL2 headers: ifindex +
        # packet type, i.e. the direction the Ethernet pcap cannot record.
        for ns in dict.fromkeys(self.ifs[k][0] for k in self.keys):
            path = os.path.join(wd, f"{self.seq:03d}-{ns}-any.pcap")
            self.any.append(self._spawn(f"{ns}:any", ns, "any", path, promisc_off=False,
                                        tail=("-y", "LINUX_SLL2")))
        for d in self.eth + self.any:  # event: tcpdump says it is capturing
            d.err.wait_for("listening on", 10.0, d.proc)
        self.before = self.twin.counters()

    def stop(self) -> Capture:
        """Wait for the files to catch up with the counters, stop tcpdump, check its
        statistics and return the frames with their packet types."""
        deltas = self._wait_flushed()
        dumps = self.eth + self.any
        for d in dumps:
            d.proc.send_signal(signal.SIGINT)
        records: dict[str, Records] = {}
        stats: dict[str, list[str]] = {}
        for d in dumps:
            d.proc.wait(timeout=10)
            stats[d.key] = [ln for ln in d.err.drain() if "packets" in ln]
            records[d.key] = read_pcap(d.path)
            n = _stat(stats[d.key], "packets captured")
            drop = _stat(stats[d.key], "packets dropped by kernel")
            if n is not None and n != len(records[d.key]):
                raise RuntimeError(f"{d.key}: tcpdump captured {n}, file has "
                                   f"{len(records[d.key])}")
            if drop:
                raise RuntimeError(f"{d.key}: kernel dropped {drop} packets: {stats}")
        if self.flush_problem:
            raise RuntimeError(f"{self.flush_problem}; tcpdump stats {stats}")
        eth_records = {d.key: records[d.key] for d in self.eth}
        pkttypes = self._match_pkttypes(eth_records, {d.ns: records[d.key] for d in self.any})
        return Capture(eth_records, pkttypes, stats, deltas)

    def kill(self) -> None:
        """Whatever happened, no tcpdump outlives its capture."""
        for d in self.eth + self.any:
            if d.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    d.proc.kill()
                d.proc.wait(timeout=5)
            self.twin.untrack(d.proc)

    def _wait_flushed(self) -> dict[str, int]:
        """Bounded poll until every pcap file holds as many frames as the interface's
        kernel counters say passed it (lo: rx only - libpcap hides lo's outgoing copy),
        each namespace's "any" file at least the sum of its interfaces, and the
        counters are stable.  On timeout the problem is kept for :meth:`stop` to raise
        once tcpdump's statistics are known."""
        deadline = time.monotonic() + FLUSH_TIMEOUT
        prev: dict[str, dict[str, int]] | None = None
        while True:
            now = self.twin.counters()
            deltas = self._deltas(now)
            have = {d.key: len(read_pcap(d.path, tolerant=True)) for d in self.eth}
            for a in self.any:
                have[a.key] = len(read_pcap(a.path, tolerant=True))
                deltas[a.key] = sum(deltas[d.key] for d in self.eth if d.ns == a.ns)
            if prev == now and all(have[k] >= deltas[k] for k in deltas):
                return {d.key: deltas[d.key] for d in self.eth}
            if time.monotonic() > deadline:
                self.flush_problem = f"capture not flushed: files {have}, counters {deltas}"
                return {d.key: deltas[d.key] for d in self.eth}
            prev = now
            time.sleep(0.02)

    def _deltas(self, now: dict[str, dict[str, int]]) -> dict[str, int]:
        deltas = {}
        for d in self.eth:
            rx = now[d.key]["rx"] - self.before[d.key]["rx"]
            tx = now[d.key]["tx"] - self.before[d.key]["tx"]
            deltas[d.key] = rx if d.ifname == "lo" else rx + tx
        return deltas

    def _sll2_by_interface(self, anyrec: dict[str, Records]
                           ) -> dict[tuple[str, str], list[tuple[str, bytes, bytes]]]:
        """(ns, ifname) -> [(packet type, bytes after the link header, source address)]
        from the SLL2 records, the interface named through ``ip link``'s ifindex."""
        per_if: dict[tuple[str, str], list[tuple[str, bytes, bytes]]] = {}
        for ns, recs in anyrec.items():
            links = json.loads(self.twin.ip(ns, "-j", "link", "show"))
            ifindex = {int(ln["ifindex"]): ln["ifname"] for ln in links}
            for _ts, b in recs:
                _proto, _r, idx, _hatype, ptype, alen = struct.unpack("!HHIHBB", b[:12])
                name = ifindex.get(idx, f"if{idx}")
                src = b[12 : 12 + min(alen, 8)]
                per_if.setdefault((ns, name), []).append(
                    (PKTTYPES.get(ptype, str(ptype)), b[20:], src)
                )
        return per_if

    def _match_pkttypes(self, eth: dict[str, Records],
                        anyrec: dict[str, Records]) -> dict[str, list[str]]:
        """Pair every Ethernet-capture frame with the SLL2 record of the same interface
        and the same bytes after the MAC header (first unused one, in order)."""
        per_if = self._sll2_by_interface(anyrec)
        out: dict[str, list[str]] = {}
        for key, recs in eth.items():
            cand = per_if.get(self.ifs[key], [])
            used = [False] * len(cand)
            types = []
            hl = self.twin.l2_len(key)
            lo = self.ifs[key][1] == "lo"
            for _ts, fr in recs:
                for i, (pt, payload, src) in enumerate(cand):
                    if not used[i] and payload == fr[hl:] and (lo or hl == 0 or src == fr[6:12]):
                        used[i] = True
                        types.append(pt)
                        break
                else:
                    types.append("unknown")
            out[key] = types
        return out
