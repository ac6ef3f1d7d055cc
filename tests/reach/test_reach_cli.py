"""``pktsim reach`` end to end: text, json and csv on a small two-namespace scenario with a
NetworkPolicy (on ``routes`` every cell is allowed, with the warning that the network does
not enforce policy), and bad arguments: one line, exit 2."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from pktsim.cli import main

SCENARIO = """\
apiVersion: pktsim/v1alpha1
kind: Cluster
spec: {network: routes, nodes: 2}
---
{apiVersion: v1, kind: Namespace, metadata: {name: shop}}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web}}
spec:
  nodeName: node-1
  containers: [{name: web, image: nginx, ports: [{containerPort: 80}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: db, namespace: shop, labels: {app: db}}
spec:
  nodeName: node-2
  containers: [{name: db, image: postgres, ports: [{containerPort: 80}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: default, labels: {app: client}}
spec:
  nodeName: node-1
  containers: [{name: c, image: curl, ports: [{containerPort: 80}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: agent, namespace: default}
spec:
  nodeName: node-2
  hostNetwork: true
  containers: [{name: a, image: agent}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-from-web, namespace: shop}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress: [{from: [{podSelector: {matchLabels: {app: web}}}]}]
"""
PODS = ["default/client", "shop/db", "shop/web"]
ARGS = ["--namespaces", "default,shop"]


@pytest.fixture
def scenario(tmp_path: Path) -> str:
    path = tmp_path / "shop.yaml"
    path.write_text(SCENARIO, encoding="utf-8")
    return str(path)


def reach(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["reach", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_text_matrix(scenario: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "pktsim", "reach", scenario, *ARGS,
                           "--ports", "80,81"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "does not enforce NetworkPolicy" in proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "reachability: 3 pods, network routes (NetworkPolicy not enforced)"
    header = next(i for i, line in enumerate(lines) if line.startswith("| tcp/80 "))
    assert [c.strip() for c in lines[header].strip("|").split("|")] == ["tcp/80", *PODS]
    rows = [[c.strip() for c in line.strip("|").split("|")]
            for line in lines[header + 2: header + 5]]
    assert rows == [["default/client", "-", ".", "."], ["shop/db", ".", "-", "."],
                    ["shop/web", ".", ".", "-"]]
    assert "| tcp/81 " in proc.stdout  # one matrix per port: 81 is refused everywhere
    legend = next(line for line in lines if line.startswith("  R refused"))
    assert legend == ("  R refused: the network let it through, nothing listens: "
                      "* -> default/client; * -> shop/db; * -> shop/web")
    assert "warning: network routes does not enforce NetworkPolicy" in proc.stdout


def test_json_one_record_per_cell(scenario: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = reach(capsys, scenario, *ARGS, "--format", "json")
    assert code == 0
    records = [json.loads(line) for line in out.splitlines()]
    assert len(records) == 3 * 2  # one port (80, declared by every pod); no hostNetwork pod
    assert {(r["source"], r["destination"]) for r in records} == \
        {(s, d) for s in PODS for d in PODS if s != d}
    assert records[0] == {"source": "default/client", "destination": "shop/db", "port": 80,
                          "protocol": "tcp", "verdict": "allowed", "direction": [],
                          "policy": [], "reason": "network does not enforce NetworkPolicy"}


def test_csv_and_udp(scenario: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = reach(capsys, scenario, *ARGS, "--format", "csv", "--protocol", "udp",
                         "--ports", "80")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 6 and {r["protocol"] for r in rows} == {"udp"}
    assert {r["verdict"] for r in rows} == {"refused"}  # declared TCP 80: no UDP listener
    assert list(rows[0]) == ["source", "destination", "port", "protocol", "verdict",
                             "direction", "policy", "reason"]


def test_same_input_same_output(scenario: str, capsys: pytest.CaptureFixture[str]) -> None:
    first = reach(capsys, scenario, "--seed", "7")
    assert first[0] == 0 and first == reach(capsys, scenario, "--seed", "7")


@pytest.mark.parametrize(("args", "message"), [
    (["--ports", "80,x"], "--ports: 'x' is not a port"),
    (["--ports", "0"], "--ports: '0' is not a port"),
    (["--ports", "70000"], "--ports: '70000' is not a port"),
    (["--namespaces", "nope"], "--namespaces: 'nope' has no pod with its own network"),
])
def test_bad_arguments_one_line_exit_2(scenario: str, capsys: pytest.CaptureFixture[str],
                                       args: list[str], message: str) -> None:
    code, out, err = reach(capsys, scenario, *args)
    assert code == 2 and out == ""
    errors = [line for line in err.splitlines() if "warning" not in line]
    assert len(errors) == 1 and message in errors[0], err


def test_bad_protocol_or_file_exit_2(scenario: str, capsys: pytest.CaptureFixture[str],
                                     tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as done:
        main(["reach", scenario, "--protocol", "icmp"])
    assert done.value.code == 2
    capsys.readouterr()
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec: {}\n")
    code, _, err = reach(capsys, str(bad))
    assert code == 2 and len(err.splitlines()) == 1


def test_help_describes_every_argument(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["reach", "--help"])
    shown = capsys.readouterr().out
    for option in ("--ports", "--protocol", "--namespaces", "--format", "--seed", "scenario"):
        assert option in shown
    assert shown.count("(default") >= 3
