"""Wireshark's analysis flags in the merged capture, with the shipped profile.

``capture.pcapng`` holds each packet once per interface it crossed.  Wireshark 4.2 and later
can key conversations by interface (``protocols.conversation_deinterlacing_key``, registered
in epan/prefs.c); the profile sets it, and then a run without a real retransmission must show
no ``tcp.analysis.flags`` and no ``dns.retransmission``.  An older tshark cannot: there the
counts must be the ones captures/README.md documents for its version, so the page cannot
drift from what a user of that version sees.  The demo runs retransmit nothing, which the
per-interface pcaps (one interface each, nothing to confuse) confirm.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.helpers.tshark import TSHARK_MISSING

ROOT = Path(__file__).resolve().parents[2]
PROFILE = ROOT / "captures" / "wireshark-profile" / "pktsim"
README = ROOT / "captures" / "README.md"
FLAGS = {"tcp": "tcp.analysis.flags", "dns": "dns.retransmission"}
NETWORKS = ("routes", "vxlan", "ipip")


def tshark(*args: str, env: dict[str, str] | None = None) -> str:
    if shutil.which("tshark") is None:
        pytest.skip(TSHARK_MISSING)
    return subprocess.run(["tshark", *args], capture_output=True, text=True, check=True,
                          env=env, timeout=120).stdout


def version() -> str:
    """``4.0`` for TShark 4.0.17: the documented rows are per major.minor version."""
    found = re.search(r"TShark \(Wireshark\) (\d+\.\d+)", tshark("--version"))
    assert found is not None
    return found.group(1)


def profile_env(tmp: Path) -> dict[str, str]:
    shutil.copytree(PROFILE, tmp / "config" / "wireshark" / "profiles" / "pktsim")
    return {**os.environ, "XDG_CONFIG_HOME": str(tmp / "config"), "HOME": str(tmp)}


def count(capture: Path, shown: str, *extra: str, env: dict[str, str] | None = None) -> int:
    return len(tshark("-n", "-r", str(capture), *extra, "-Y", shown, env=env).splitlines())


def documented() -> dict[tuple[str, str], tuple[int, int]]:
    """(tshark version, network) -> (TCP flags, DNS retransmissions) from the README table."""
    rows = re.findall(r"^\| (\d+\.\d+) \| `demo-(\w+)` \| \d+ \| (\d+) \| (\d+) \|$",
                      README.read_text(encoding="utf-8"), flags=re.M)
    return {(v, n): (int(t), int(d)) for v, n, t, d in rows}


@pytest.mark.parametrize("network", NETWORKS)
def test_flags_with_the_profile(network: str, tmp_path: Path) -> None:
    capture = ROOT / "captures" / f"demo-{network}" / "capture.pcapng"
    env = profile_env(tmp_path)
    got = tuple(count(capture, f, "-C", "pktsim", env=env) for f in FLAGS.values())
    supported = "conversation_deinterlacing_key" in tshark("-G", "defaultprefs")
    table = documented()
    if supported:  # TCP's analysis looks its conversation up by the deinterlacing key
        assert got[0] == 0, f"TCP flags with the profile (tshark {version()}): {got[0]}"
        # DNS's retransmission matching: 0, unless the README says what this version shows
        assert got[1] == table.get((version(), network), (0, 0))[1], got
    else:
        assert (version(), network) in table, \
            f"captures/README.md documents no row for tshark {version()}: measured {got}"
        assert got == table[version(), network]


@pytest.mark.slow  # one tshark per interface: ~5 s
def test_nothing_was_sent_again() -> None:
    """One interface at a time, the same frames show no flag: every flag of the merged file
    under an older Wireshark is a copy on another interface, never a retransmission.  The
    vxlan run stands for the three (the same flows; it has the most interfaces)."""
    network = "vxlan"
    pcaps = sorted((ROOT / "captures" / f"demo-{network}" / "pcap").glob("*.pcap"))
    assert pcaps
    shown = " || ".join(FLAGS.values())
    with ThreadPoolExecutor(max_workers=2) as pool:  # one tshark per file: two at a time
        assert sum(pool.map(lambda p: count(p, shown), pcaps)) == 0
