"""The properties and memory benchmarks still run (so they never rot): tiny workloads, no
timing or memory assertions — only that positive figures and the JSON come out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import memory, properties, run
from pktsim.api import Cluster
from pktsim.strategies import clusters as clusters_strategy
from pktsim.strategies.clusters import GeneratedCluster

pytestmark = pytest.mark.slow  # seconds in all: `make test-fast` leaves the module out


def _run(argv: list[str], results: Path, capsys: pytest.CaptureFixture[str]) -> tuple[
        str, dict[str, object]]:
    results.write_text(json.dumps({"other": {"kept": True}}))
    assert run.main([*argv, "--results", str(results)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    data = json.loads(results.read_text())
    assert data["other"] == {"kept": True}
    return last, data


def test_properties_quick_writes_positive_figures(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    last, data = _run(["--quick", "--only", "properties", "--examples", "3"],
                      tmp_path / "latest.json", capsys)
    assert last.startswith("properties: ") and "ratio" in last and "target" in last
    figures = data["properties"]
    assert isinstance(figures, dict)
    assert figures["examples"] == 3 and figures["flows"] == 15
    for key in ("seconds", "examples_per_s", "ratio", "pods", "hops", "frames"):
        assert figures[key] > 0, key
    assert set(figures["split_seconds"]) == set(properties.PARTS)
    assert all(v >= 0 for v in figures["split_seconds"].values())
    assert figures["split_seconds"]["run"] > 0 and figures["split_seconds"]["load"] > 0
    assert figures["cpu_count"] and figures["python"] and figures["date"]


def test_properties_timers_are_put_back() -> None:
    split = properties.Split()
    with properties.timers(split):
        assert GeneratedCluster.build is not Cluster.build
    assert "build" not in GeneratedCluster.__dict__
    assert properties.cluster_strategies._load.__name__ == "_load"
    assert properties.flow_strategies._parse_flows.__name__ == "_parse_flows"
    assert callable(clusters_strategy)


def test_properties_profile_sorts_time_into_areas() -> None:
    assert properties.area_of("/x/pktsim/invariants/paths.py") == "pktsim/invariants"
    assert properties.area_of("/x/site-packages/hypothesis/core.py") == "hypothesis"
    assert properties.area_of("~") == "builtins"
    text, areas = properties.profile_once(properties.PropertiesConfig(examples=2, repeats=1),
                                          top=5)
    assert "function calls" in text and areas and all(v >= 0 for v in areas.values())


def test_memory_quick_writes_positive_figures(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    last, data = _run(["--quick", "--only", "memory", "--mem-small", "500", "--mem-large",
                       "1000", "--mem-diagnose", "--workdir", str(tmp_path)],
                      tmp_path / "latest.json", capsys)
    assert last.startswith("memory: ratio") and "target" in last
    figures = data["memory"]
    assert isinstance(figures, dict)
    assert figures["small"]["packets"] == 500 and figures["large"]["packets"] == 1000
    for key in ("peak_rss_small_mib", "peak_rss_large_mib", "ratio"):
        assert figures[key] > 0, key
    for size in ("small", "large"):
        assert figures[size]["frames"] > figures[size]["packets"] > 0
        assert figures[size]["output_bytes"] > 0 and figures[size]["ok"]
    assert figures["growth_sites"] and all(":" in r["where"] for r in figures["growth_sites"])
    assert [p.name for p in tmp_path.iterdir()] == ["latest.json"]  # temporary folders gone


def test_memory_workloads_are_sized_by_packets(tmp_path: Path) -> None:
    figures = memory.child("cross-node-tcp", 60, tmp_path / "out", None)
    assert figures["ok"] and figures["by_proto"].get("tcp", 0) > 0
    assert figures["peak_kb"] >= figures["base_kb"] > 0
    assert "count: 50" in memory.WORKLOADS["cross-node-ping"].yaml(100)
