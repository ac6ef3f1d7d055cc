"""The node tables when the last flow ends, and at the moments ``--snapshot-at`` names."""

from __future__ import annotations

from pathlib import Path

import pytest

import pktsim
from pktsim import cli

ROOT = Path(__file__).resolve().parents[2]
TRAFFIC = """\
apiVersion: pktsim/v1alpha1
kind: Traffic
spec:
  flows:
  - {name: web, from: default/client, to: 'http://10.96.45.12/'}
"""


def test_conntrack_is_dumped_when_the_last_flow_ends(tmp_path: Path) -> None:
    """The run goes on until TIME_WAIT ends; the dump is taken before, when curl is done."""
    cluster = pktsim.load(ROOT / "pktsim" / "data" / "demo.yaml", TRAFFIC)
    result = cluster.run(tmp_path / "out", flows=[f for f in cluster.flows if f.name == "web"])
    table = (tmp_path / "out" / "nodes" / "node-1" / "conntrack.txt").read_text()
    assert "dst=10.96.45.12" in table and "dport=80" in table
    assert result.topology.driver.now >= 60 * 10**9  # the run ends after TIME_WAIT (60 s)


def test_snapshot_at_writes_the_tables_of_that_moment(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    traffic = tmp_path / "t.yaml"
    traffic.write_text(TRAFFIC)
    out = tmp_path / "out"
    code = cli.main(["run", str(ROOT / "pktsim" / "data" / "demo.yaml"), str(traffic),
                     "--out", str(out), "--quiet", "--snapshot-at", "0ms",
                     "--snapshot-at", "300s"])
    assert code == 0, capsys.readouterr().err
    node = out / "nodes" / "node-1"
    assert sorted(p.name for p in (node / "at-0ms").iterdir()) == sorted(
        p.name for p in node.iterdir() if p.is_file())
    assert (node / "at-0ms" / "conntrack.txt").read_text() == ""  # nothing sent yet
    assert (node / "at-300s" / "conntrack.txt").read_text() == ""  # everything aged out
    assert "on Thu Jan  1 00:05:00 1970" in (node / "at-300s" / "iptables-save.txt").read_text()


def test_a_bad_snapshot_time_is_refused(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["run", str(ROOT / "pktsim" / "data" / "demo.yaml"), "--out",
                     str(tmp_path / "o"), "--snapshot-at", "soon"])
    assert code == 2 and "--snapshot-at: 'soon' is not a duration" in capsys.readouterr().err
