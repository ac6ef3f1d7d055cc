"""tshark as the independent judge of our captures, plus a tiny pcapng block reader.

Why tshark: docs/scenario.md §7 promises that Wireshark opens every file without a malformed
packet or a checksum error, and the only honest check of that is Wireshark's own dissectors.
Checksum validation is off by default in Wireshark, so ``validate_capture`` turns it on for
IPv4, TCP and UDP (ICMP's checksum is always checked) and decodes flannel's VXLAN port so
the inner frames are checked too.  The tests in test_capture.py prove the filter does flag a
corrupted checksum, so this validator cannot silently pass.

The block reader is here because no reader we have exposes everything an IDB holds
(``if_description``) and we want exact, independent answers in tests.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

TSHARK_MISSING = "tshark not installed (Debian package: tshark)"

# an ICMP or ICMPv6 error whose own checksum is right: what it quotes is a packet cut short
# (576 / 1280 bytes in all), whose TCP or UDP checksum tshark cannot verify, yet flags --
# on the kernel's own errors too
_QUOTE = ("((icmpv6.type >= 1 && icmpv6.type <= 4 && icmpv6.checksum.status == 1) || "
          "((icmp.type == 3 || icmp.type == 11 || icmp.type == 12) && icmp.checksum.status == 1))")
FINDINGS_FILTER = (f"_ws.malformed || ((_ws.expert.severity >= error || "
                   f"_ws.expert.group == checksum) && !{_QUOTE})")
"""Frames tshark thinks are broken: malformed, an error-level expert item, or any checksum item
(but those inside what a correct ICMP error quotes)."""

CHECKSUM_PREFS = ("ip.check_checksum", "tcp.check_checksum", "udp.check_checksum")

# stderr lines that say nothing about the file.  tshark run as root (as in CI) says so.
_HARMLESS_STDERR = ('Running as user "root" and group "root". This could be dangerous.',)


def _tshark() -> str:
    exe = shutil.which("tshark")
    if exe is None:
        pytest.skip(TSHARK_MISSING)
    return exe


def _run(args: list[str]) -> str:
    """Run tshark; fail on a non-zero exit or on stderr beyond the harmless lines."""
    proc = subprocess.run([_tshark(), *args], capture_output=True, text=True, check=False)
    noise = [ln for ln in proc.stderr.splitlines() if ln.strip() and ln not in _HARMLESS_STDERR]
    if proc.returncode != 0 or noise:
        raise AssertionError(
            f"tshark {' '.join(args)} exited {proc.returncode}\n"
            f"stderr:\n{proc.stderr}\nstdout:\n{proc.stdout}"
        )
    return proc.stdout


# A capture of every interface holds each TCP segment once per interface it crossed; with
# its default reassembly Wireshark calls the later copies of a message spanning segments
# "New fragment overlaps old data".  pktsim's Wireshark profile turns on out-of-order
# reassembly, which files the copies as the retransmissions they look like; the merged
# capture is validated the same way (the per-interface pcaps need nothing).
MERGED_PREFS = ("tcp.reassemble_out_of_order:TRUE",)


def validate_capture(path: str | Path, *, merged: bool | None = None) -> None:
    """Raise AssertionError listing every frame tshark finds malformed or mis-checksummed."""
    args = ["-n", "-r", str(path)]
    for pref in CHECKSUM_PREFS:
        args += ["-o", f"{pref}:TRUE"]
    if merged or (merged is None and str(path).endswith(".pcapng")):
        for pref in MERGED_PREFS:
            args += ["-o", pref]
    args += ["-d", "udp.port==8472,vxlan", "-Y", FINDINGS_FILTER]
    out = _run(args)
    if out.strip():
        raise AssertionError(f"tshark findings in {path}:\n{out}")


def tshark_fields(path: str | Path, fields: list[str],
                  display_filter: str = "") -> list[list[str]]:
    """One row per frame (matching ``display_filter``), one string per field, via -T fields."""
    args = ["-n", "-r", str(path), "-T", "fields", "-E", "separator=/t"]
    for f in fields:
        args += ["-e", f]
    if display_filter:
        args += ["-Y", display_filter]
    out = _run(args)
    return [line.split("\t") for line in out.splitlines()]


# --- a small, strict pcapng reader (little-endian sections only, which is all we write) ---

@dataclass
class IDB:
    linktype: int
    snaplen: int
    options: dict[int, list[bytes]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.options.get(2, [b""])[0].decode()

    @property
    def description(self) -> str:
        return self.options.get(3, [b""])[0].decode()


@dataclass
class EPB:
    iface_id: int
    t_ticks: int  # raw 64-bit timestamp: nanoseconds when if_tsresol is 9
    caplen: int
    origlen: int
    data: bytes
    options: dict[int, list[bytes]] = field(default_factory=dict)

    @property
    def comments(self) -> list[str]:
        return [c.decode() for c in self.options.get(1, [])]

    @property
    def flags(self) -> int | None:
        raw = self.options.get(2)
        return None if raw is None else int(struct.unpack("<I", raw[0])[0])


@dataclass
class Pcapng:
    shb_options: dict[int, list[bytes]]
    interfaces: list[IDB]
    packets: list[EPB]
    order: list[str]  # block kinds in file order: "SHB", "IDB", "EPB"


def _options(buf: bytes) -> dict[int, list[bytes]]:
    """Parse an option list, checking padding and that it ends with opt_endofopt."""
    opts: dict[int, list[bytes]] = {}
    pos = 0
    while True:
        if pos + 4 > len(buf):
            raise AssertionError("option list without opt_endofopt")
        code, length = struct.unpack_from("<HH", buf, pos)
        pos += 4
        if code == 0:
            if length != 0 or pos != len(buf):
                raise AssertionError("opt_endofopt not at the end of the block body")
            return opts
        value = buf[pos:pos + length]
        pad = buf[pos + length:pos + length + (-length & 3)]
        if len(value) != length or pad != b"\0" * (-length & 3):
            raise AssertionError(f"option {code}: bad length or non-zero padding")
        opts.setdefault(code, []).append(value)
        pos += length + (-length & 3)


def read_pcapng(path: str | Path) -> Pcapng:
    """Parse a whole single-section little-endian pcapng file, checking block framing."""
    raw = Path(path).read_bytes()
    pos = 0
    shb: dict[int, list[bytes]] | None = None
    idbs: list[IDB] = []
    epbs: list[EPB] = []
    order: list[str] = []
    while pos < len(raw):
        btype, total = struct.unpack_from("<II", raw, pos)
        if total % 4 or total < 12 or pos + total > len(raw):
            raise AssertionError(f"block at {pos}: bad total length {total}")
        (trailer,) = struct.unpack_from("<I", raw, pos + total - 4)
        if trailer != total:
            raise AssertionError(f"block at {pos}: trailing length {trailer} != {total}")
        body = raw[pos + 8:pos + total - 4]
        if btype == 0x0A0D0D0A:
            if shb is not None:
                raise AssertionError("more than one section")
            magic, major, minor, _ = struct.unpack_from("<IHHq", body)
            if (magic, major, minor) != (0x1A2B3C4D, 1, 0):
                raise AssertionError("bad SHB")
            shb = _options(body[16:])
            order.append("SHB")
        elif btype == 1:
            linktype, _, snaplen = struct.unpack_from("<HHI", body)
            idbs.append(IDB(linktype, snaplen, _options(body[8:])))
            order.append("IDB")
        elif btype == 6:
            iface, hi, lo, caplen, origlen = struct.unpack_from("<5I", body)
            if iface >= len(idbs):
                raise AssertionError(f"EPB uses interface {iface} before its IDB")
            end = 20 + caplen + (-caplen & 3)
            if body[20 + caplen:end] != b"\0" * (-caplen & 3):
                raise AssertionError("EPB data padding is not zero")
            opts = _options(body[end:]) if end < len(body) else {}
            epbs.append(EPB(iface, hi << 32 | lo, caplen, origlen, body[20:20 + caplen], opts))
            order.append("EPB")
        else:
            raise AssertionError(f"unexpected block type {btype:#x}")
        pos += total
    if shb is None:
        raise AssertionError("no Section Header Block")
    return Pcapng(shb, idbs, epbs, order)


def interface_names(path: str | Path) -> list[str]:
    """The if_name of every IDB, in interface-id order."""
    return [idb.name for idb in read_pcapng(path).interfaces]


def read_pcap(path: str | Path) -> tuple[int, int, list[tuple[int, int, bytes]]]:
    """A classic nanosecond pcap: (linktype, snaplen, [(t_ns, orig_len, data), ...])."""
    raw = Path(path).read_bytes()
    magic, major, minor, zone, sigfigs, snaplen, linktype = struct.unpack_from("<IHHiIII", raw)
    if (magic, major, minor, zone, sigfigs) != (0xA1B23C4D, 2, 4, 0, 0):
        raise AssertionError("not a little-endian nanosecond pcap 2.4")
    pos = 24
    recs: list[tuple[int, int, bytes]] = []
    while pos < len(raw):
        sec, nsec, incl, orig = struct.unpack_from("<IIII", raw, pos)
        if nsec >= 1_000_000_000 or pos + 16 + incl > len(raw):
            raise AssertionError(f"bad record at {pos}")
        recs.append((sec * 1_000_000_000 + nsec, orig, raw[pos + 16:pos + 16 + incl]))
        pos += 16 + incl
    return linktype, snaplen, recs
