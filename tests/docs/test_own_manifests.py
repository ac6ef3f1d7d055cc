"""Our own manifests pass ``pktsim check --strict``: no unknown field, nothing unmodelled.

The manifests shipped in ``pktsim/data/`` and those the notebooks load (the triple-quoted
YAML of their code cells).  The test suite's own manifests were audited once with every
load's warnings recorded (the only ones left are the warnings tests ask for on purpose, and
``healthCheckNodePort`` of the kube-proxy golden tests' Local LoadBalancer).
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest

from pktsim import cli

ROOT = Path(__file__).resolve().parents[2]


def _notebook_manifests() -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        found: dict[str, str] = {}
        for cell in cells:
            source = "".join(cell["source"]) if cell["cell_type"] == "code" else ""
            for name, text in re.findall(r'(\w+) = (?:textwrap\.dedent\()?"""(.*?)"""',
                                         source, flags=re.S):
                if "apiVersion" in text:
                    found[name] = textwrap.dedent(text)
        if "CLUSTER" in found and "POLICY" in found:  # 06 loads them together
            found["CLUSTER"] += found.pop("POLICY")
        out += [(f"{path.stem}-{name}", text) for name, text in found.items()]
    return out


NOTEBOOKS = _notebook_manifests()


def test_the_notebooks_have_manifests() -> None:
    assert len(NOTEBOOKS) >= 2


@pytest.mark.parametrize(("name", "text"), NOTEBOOKS, ids=[n for n, _ in NOTEBOOKS])
def test_notebook_manifest_is_strict_clean(name: str, text: str, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    assert cli.main(["check", "--strict", str(path)]) == 0, capsys.readouterr().err


@pytest.mark.parametrize("name", ["demo.yaml", "coredns.yaml", "demo-policy.yaml",
                                  "demo-changes.yaml"])
def test_shipped_manifest_is_strict_clean(name: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    files = [str(ROOT / "pktsim" / "data" / name)]
    if name == "demo-policy.yaml":  # the calico demo's policies: enforced on calico only
        demo = (ROOT / "pktsim" / "data" / "demo.yaml").read_text(encoding="utf-8")
        (tmp_path / "demo.yaml").write_text(demo.replace("network: routes", "network: calico"),
                                            encoding="utf-8")
        files = [str(tmp_path / "demo.yaml"), *files]
    if name == "demo-changes.yaml":  # the demo's change story: flows of the demo's pods
        files = [str(ROOT / "pktsim" / "data" / "demo.yaml"), *files]
    assert cli.main(["check", "--strict", *files]) == 0, capsys.readouterr().err
