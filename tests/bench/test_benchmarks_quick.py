"""The benchmarks still run (so they never rot): tiny workloads, no timing assertions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import run
from benchmarks.common import read_pcapng
from benchmarks.hop_rate import (
    SAME_NODE,
    HopKind,
    analyse,
    hop_mix,
    scapy_hops,
    spread,
    time_pktsim,
)

pytestmark = pytest.mark.slow  # seconds in all: `make test-fast` leaves the module out


def test_hop_rate_quick_writes_positive_figures(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "latest.json"
    results.write_text(json.dumps({"other": {"kept": True}}))
    code = run.main(["--quick", "--only", "hop_rate", "--segments", "20", "--sample", "30",
                     "--results", str(results), "--workdir", str(tmp_path)])
    assert code == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("hop_rate: ") and "hop-events/s" in last and "ratio" in last
    data = json.loads(results.read_text())
    assert data["other"] == {"kept": True}
    figures = data["hop_rate"]
    for key in ("hop_events_per_s", "frames_per_s", "packets_per_s", "reference_hops_per_s",
                "ratio", "seconds", "hops", "frames", "tcp_segments"):
        assert figures[key] > 0, key
    assert figures["data_segments"] >= 40  # 20 segments each way
    assert figures["frames"] >= figures["hops"]
    assert figures["cpu_count"] and figures["python"] and figures["date"]
    assert [p.name for p in tmp_path.iterdir()] == ["latest.json"]  # temporary folders gone


def test_reference_does_every_hop_kind(tmp_path: Path) -> None:
    r = time_pktsim(SAME_NODE.yaml(3 * 1448), tmp_path / "out")
    a = analyse(tmp_path / "out", SAME_NODE, r.frames, 12)
    assert a.frames == r.frames and len(a.sample) == 12
    assert hop_mix(r.hops, a.events, SAME_NODE.hop_kinds) == {HopKind.L2: r.hops}
    for kind in HopKind:
        assert scapy_hops(a.sample, [kind] * 12, tmp_path / "ref.pcapng") > 0
        written = list(read_pcapng(tmp_path / "ref.pcapng"))
        assert [f.if_name for f in written] == [f.if_name for f in a.sample]
        assert (kind is HopKind.L2) == all(
            w.data == f.data for w, f in zip(written, a.sample, strict=True))


def test_spread_keeps_the_proportions() -> None:
    kinds = spread({HopKind.L2: 70, HopKind.ROUTE: 20, HopKind.NAT: 10}, 10)
    assert len(kinds) == 10
    assert kinds.count(HopKind.L2) == 7 and kinds.count(HopKind.ROUTE) == 2
    assert kinds.count(HopKind.NAT) == 1
    assert spread({}, 3) == [HopKind.L2] * 3
