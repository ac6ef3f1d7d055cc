"""The scale, policy, failing and cli benchmarks still run (so they never rot): tiny sizes,
no timing assertions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import run
from benchmarks.scale import cluster_objects, sizes

pytestmark = pytest.mark.slow  # seconds in all: `make test-fast` leaves the module out


def test_scale_quick_writes_positive_figures(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "latest.json"
    results.write_text(json.dumps({"other": {"kept": True}}))
    code = run.main(["--quick", "--only", "scale", "--nodes", "3", "4", "--nat-repeats", "20",
                     "--results", str(results), "--workdir", str(tmp_path)])
    assert code == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("scale: NAT decision") and "ratio" in last
    data = json.loads(results.read_text())
    assert data["other"] == {"kept": True}
    figures = data["scale"]
    assert [s["nodes"] for s in figures["sizes"]] == [3, 4]
    for size in figures["sizes"]:
        for key in ("load_build_s", "load_s", "build_s", "flow_s", "peak_rss_mb", "pods",
                    "services", "flow_events"):
            assert size[key] > 0, key
        assert size["flow_status"] == "ok"
    for key in ("load_build_s", "peak_rss_mb", "flow_s", "nat_ratio", "nat_linear_ratio"):
        assert figures[key] > 0, key
    assert all(us > 0 for us in figures["nat_us"] + figures["nat_linear_us"])
    assert figures["cpu_count"] and figures["python"] and figures["date"]
    assert [p.name for p in tmp_path.iterdir()] == ["latest.json"]  # temporary files gone


def test_generated_cluster_has_the_documented_shape() -> None:
    assert sizes(5_000) == (150_000, 10_000)
    items = cluster_objects(4)["items"]
    kinds = [i["kind"] for i in items]
    assert kinds.count("Pod") == 120 and kinds.count("Service") == 8
    assert kinds[0] == "Cluster"


def test_policy_quick_allows_the_syn_and_writes_a_ratio(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "latest.json"
    assert run.main(["--quick", "--only", "policy", "--results", str(results)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("policy: ") and "ratio" in last
    figures = json.loads(results.read_text())["policy"]
    assert figures["small"]["policies"] == 5 and figures["large"]["policies"] == 50
    assert figures["ratio"] > 0 and figures["large"]["rules"] > figures["small"]["rules"]


def test_failing_quick_reports_the_broken_property_with_its_capture(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "latest.json"
    assert run.main(["--quick", "--only", "failing", "--results", str(results)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("failing: a broken property reported in ")
    figures = json.loads(results.read_text())["failing"]
    assert figures["profile"]["seconds"] > 0 and figures["profile"]["capture_bytes"] > 0
    assert "with_explain" not in figures  # --quick times the profile only


def test_cli_quick_times_help_and_check_against_a_bare_interpreter(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "latest.json"
    results.write_text(json.dumps({"other": {"kept": True}}))
    assert run.main(["--quick", "--only", "cli", "--cli-rounds", "2",
                     "--results", str(results)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("cli: ") and "help" in last and "check" in last and "target" in last
    data = json.loads(results.read_text())
    assert data["other"] == {"kept": True}
    figures = data["cli"]
    assert figures["rounds"] == 2 and set(figures["ratio"]) == {"help", "check"}
    assert all(s > 0 for s in figures["seconds"].values()) and figures["ratio"]["check"] > 0
