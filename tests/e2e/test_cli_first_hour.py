"""What a new user meets first: ``--version``, ``--help`` that describes the arguments and
points to the reference, and a run that says when nothing was sent."""

from __future__ import annotations

import argparse
from importlib.metadata import version
from pathlib import Path

import pytest

import pktsim
from pktsim.cli import _parser, main
from tests.helpers.sim import validate_folder

PODS_ONLY = """
apiVersion: v1
kind: Pod
metadata: {name: a}
spec: {containers: [{name: c, command: [curl, http://b/]}]}
"""


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out == f"pktsim {pktsim.__version__}\n"
    assert pktsim.__version__ == version("pktsim")  # the package's own, as pip knows it


@pytest.mark.parametrize("command", ["run", "trace", "check", "demo"])
def test_help_describes_every_argument(command: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    parser = _parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    undescribed = [a.dest for a in sub.choices[command]._actions if not a.help]
    assert undescribed == []
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert "docs/scenario.md" in capsys.readouterr().out


def test_run_without_traffic_says_nothing_was_sent(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "pods.yaml"
    scenario.write_text(PODS_ONLY, encoding="utf-8")
    out = tmp_path / "out"
    assert main(["run", str(scenario), "--out", str(out), "--quiet"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1, err
    assert "nothing was sent" in err[0]
    assert "kind: Traffic" in err[0] and "command" in err[0]
    validate_folder(out)


def test_run_with_traffic_says_nothing_of_the_kind(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(PODS_ONLY + "---\napiVersion: pktsim/v1alpha1\nkind: Traffic\n"
                        "spec: {flows: [{from: default/a, to: localhost, protocol: icmp}]}\n",
                        encoding="utf-8")
    assert main(["run", str(scenario), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    assert "nothing was sent" not in capsys.readouterr().err
