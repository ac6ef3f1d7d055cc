"""Bad input is one clear line per problem and exit 2, never a traceback (issue 16):
encodings, YAML tags, huge integers, alias bombs, long values, many problems."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import pktsim
from pktsim.cli import main

POD = "apiVersion: v1\nkind: Pod\nmetadata: {name: %s}\nspec: {containers: [{name: c}]}\n"
CLUSTER = "apiVersion: pktsim/v1alpha1\nkind: Cluster\nspec: {nodes: %s}\n"


def check(tmp_path: Path, capsys: pytest.CaptureFixture[str], data: bytes | str,
          name: str = "in.yaml") -> tuple[int, list[str]]:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    status = main(["check", str(path)])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return status, err.splitlines()


@pytest.mark.parametrize("data, byte", [
    ((POD % "caf\xe9").encode("latin-1"), "0xe9"),
    ((POD % "web").encode("utf-16"), "0xff"),
])
def test_a_file_that_is_not_utf8_is_named_with_its_byte(tmp_path, capsys, data, byte):
    status, lines = check(tmp_path, capsys, data)
    assert status == 2
    assert lines == [f"pktsim: {tmp_path / 'in.yaml'}: is not UTF-8 text: byte {byte} at "
                     f"offset {lines[0].split('offset ')[1].split(';')[0]}; valid: a UTF-8 "
                     "YAML or JSON file (iconv -f latin1 -t utf-8, or -f utf-16)"]


@pytest.mark.parametrize("value", ["!!bool maybe", "!!float x", "!!float ''", "!!int x",
                                   "!!int ''", "9" * 5000])
def test_a_yaml_value_its_tag_cannot_hold_is_exit_2_naming_the_document(tmp_path, capsys,
                                                                        value):
    status, lines = check(tmp_path, capsys, "---\n" + CLUSTER % value)
    assert status == 2 and len(lines) == 1
    assert "in.yaml: document 1: YAML value error:" in lines[0]
    assert len(lines[0]) < 300


def test_a_5000_digit_port_in_a_traffic_target_is_out_of_range(tmp_path, capsys):
    text = ("apiVersion: pktsim/v1alpha1\nkind: Traffic\nspec:\n  flows:\n"
            f"  - {{name: a, from: default/x, to: '10.0.0.1:{'9' * 5000}'}}\n")
    status, lines = check(tmp_path, capsys, text)
    assert status == 2
    assert "spec.flows[0].to:" in lines[0] and "has a port out of range" in lines[0]
    assert len(lines[0]) < 300


@pytest.mark.parametrize("where", ["spec", "status"])
def test_an_alias_bomb_in_a_pod_is_refused_at_once(tmp_path, capsys, where):
    lines = ["apiVersion: v1", "kind: Pod", "metadata: {name: p}",
             "spec: {containers: [{name: c}]}" if where == "status" else "spec:",
             f"{where}:" if where == "status" else "  containers: [{name: c}]",
             "  l0: &l0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 10)]
    started = time.monotonic()
    status, err = check(tmp_path, capsys, "\n".join(lines) + "\n")
    assert time.monotonic() - started < 5
    assert status == 2
    assert "expands through YAML aliases to more than 100,000 values" in err[0]


def test_a_recursive_alias_is_refused(tmp_path, capsys):
    status, err = check(tmp_path, capsys, POD % "p" + "status: &s {x: [*s]}\n")
    assert status == 2 and "expands through YAML aliases" in err[0]


def test_a_one_megabyte_name_gives_a_short_line(tmp_path, capsys):
    status, lines = check(tmp_path, capsys, POD % ("x" * 1_000_000))
    assert status == 2
    assert all(len(line) < 1000 for line in lines), [len(line) for line in lines]


def test_many_bad_documents_give_the_first_20_problems_and_a_count(tmp_path, capsys):
    docs = "---\n".join(POD % "Bad_Name" for _ in range(5000))
    status, lines = check(tmp_path, capsys, docs)
    assert status == 2
    assert len(lines) == 21
    assert lines[-1].startswith("pktsim: ... and ") and "more problems" in lines[-1]


def test_one_line_of_yaml_too_long_to_be_a_path_is_read_as_yaml():
    text = "!!bool maybe" + "9" * 5000  # pktsim.load takes a path or YAML text
    with pytest.raises(pktsim.ScenarioError, match="YAML value error"):
        pktsim.load(text)
