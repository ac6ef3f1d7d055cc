"""The command line: demo, run, check; bad input exits 2 with one line and leaves nothing."""

from __future__ import annotations

import filecmp
import subprocess
import sys
from pathlib import Path

import pytest

from pktsim.cli import main
from tests.helpers.sim import validate_folder

GOOD = """
apiVersion: v1
kind: Pod
metadata: {name: a}
spec: {containers: [{name: c, ports: [{containerPort: 80}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: b}
spec: {containers: [{name: c, ports: [{containerPort: 80}]}]}
---
apiVersion: pktsim/v1alpha1
kind: Traffic
spec: {flows: [{from: default/a, to: 'default/b:80'}, {from: default/b, to: default/a,
        protocol: icmp}]}
"""


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pktsim", *args], capture_output=True,
                          text=True, timeout=120)


@pytest.mark.slow
def test_run_writes_the_output_folder(tmp_path: Path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(GOOD)
    out = tmp_path / "out"
    proc = run_cli("run", str(scenario), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "flow-1: tcp to default/b:80: ok" in proc.stdout
    assert "flow-2: icmp to default/a: ok" in proc.stdout
    for name in ("capture.pcapng", "trace.jsonl", "trace.txt"):
        assert (out / name).stat().st_size > 0
    assert (out / "pcap" / "default_a_eth0.pcap").exists()
    validate_folder(out, per_interface=True)


def test_same_input_and_seed_give_byte_identical_output(tmp_path: Path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(GOOD)
    for name in ("one", "two"):
        assert main(["run", str(scenario), "--out", str(tmp_path / name), "--quiet"]) == 0
    cmp = filecmp.dircmp(tmp_path / "one", tmp_path / "two")
    assert not cmp.diff_files and not cmp.left_only and not cmp.right_only
    for name in ("capture.pcapng", "trace.jsonl", "trace.txt"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    pcaps = sorted(p.name for p in (tmp_path / "one" / "pcap").iterdir())
    for name in pcaps:
        assert ((tmp_path / "one" / "pcap" / name).read_bytes()
                == (tmp_path / "two" / "pcap" / name).read_bytes())
    assert main(["run", str(scenario), "--out", str(tmp_path / "three"), "--seed", "7",
                 "--quiet"]) == 0
    assert ((tmp_path / "three" / "capture.pcapng").read_bytes()
            != (tmp_path / "one" / "capture.pcapng").read_bytes())


@pytest.mark.parametrize(("text", "expect"), [
    ("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: c, ports: "
     "[{containerPort: 80}]}, {name: d, ports: [{containerPort: 80}]}]}\n",
     ["s.yaml", "document 1", "Pod default/a", "spec.containers[1].ports[0].containerPort",
      "80"]),
    ("kind: Service\napiVersion: v1\nmetadata: {name: s}\nspec: {type: NodePort, ports: "
     "[{port: 80, nodePort: 29999}]}\n",
     ["s.yaml", "Service default/s", "spec.ports[0].nodePort", "29999", "30000-32767"]),
    ("a: [unclosed\n", ["s.yaml", "line"]),
    ("apiVersion: pktsim/v1alpha1\nkind: Cluster\nspec: {podCIDR: 10.244.0.0/33}\n",
     ["s.yaml", "spec.podCIDR", "10.244.0.0/33"]),
])
def test_bad_input_exits_2_with_one_precise_line(tmp_path: Path, text: str,
                                                 expect: list[str]) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(text)
    out = tmp_path / "out"
    proc = run_cli("run", str(scenario), "--out", str(out))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for piece in expect:
        assert piece in lines[0], (piece, lines[0])
    assert "Traceback" not in proc.stderr
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_unknown_pod_in_a_flow_is_a_scenario_error(tmp_path: Path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(GOOD.replace("to: 'default/b:80'", "to: 'default/nope:80'"))
    proc = run_cli("run", str(scenario), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert "spec.flows[0].to" in proc.stderr or "to: 'default/nope'" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_out_refuses_a_non_empty_folder_without_force(tmp_path: Path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(GOOD)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["run", str(scenario), "--out", str(out), "--quiet"]) == 2
    assert (out / "keep.txt").read_text() == "mine"
    assert main(["run", str(scenario), "--out", str(out), "--quiet", "--force"]) == 0
    assert not (out / "keep.txt").exists()


def test_check_prints_nodes_pods_and_routes(tmp_path: Path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(GOOD)
    proc = run_cli("check", str(scenario))
    assert proc.returncode == 0, proc.stderr
    assert "node-1" in proc.stdout and "10.244.0.2" in proc.stdout
    assert "10.244.1.0/24 via 172.18.0.3 dev eth0" in proc.stdout
    assert "10.244.0.0/24 dev cbr0 proto kernel scope link src 10.244.0.1" in proc.stdout


def test_demo_runs_the_same_node_paths(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    proc = run_cli("demo", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "== container-to-container: http to http://localhost:8080/: ok" in proc.stdout
    assert "== pod-to-pod-same-node: icmp to default/app: ok (2/2 answered)" in proc.stdout
    validate_folder(out)
