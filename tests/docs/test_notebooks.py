"""The notebooks in notebooks/ run top to bottom without an error, are committed with their
outputs (so the repository shows them rendered), and those outputs are current: each
notebook is run as ``make notebook-outputs`` runs it (``notebooks/execute.py``) and what it
shows is compared with what is stored, with nothing normalised (a run is deterministic, and
the notebooks keep what would vary out at the source).  A run leaves nothing in the system
temp folder.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # seconds in all: `make test-fast` leaves the module out

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
EXPECTED = ["01-tour", "02-services-and-kube-proxy", "03-dns", "04-overlays",
            "05-property-testing", "06-network-policy", "07-changes"]


def test_the_notebooks_are_there() -> None:
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_is_stored_with_its_outputs(name: str) -> None:
    book = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text(encoding="utf-8"))
    assert book["metadata"]["kernelspec"]["name"] == "python3"
    assert book["cells"][0]["cell_type"] == "markdown"
    code = [c for c in book["cells"] if c["cell_type"] == "code"]
    assert [c["execution_count"] for c in code] == list(range(1, len(code) + 1)), \
        f"{name}: not run top to bottom once: run `make notebook-outputs`"
    assert any(c["outputs"] for c in code)
    for cell in code:
        assert "execution" not in cell["metadata"], f"{name}: timings stored"
        assert all(o.get("output_type") != "error" for o in cell["outputs"])


@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_outputs_are_current(name: str, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    for module in ("nbclient", "nbformat", "ipykernel", "matplotlib", "pandas"):
        pytest.importorskip(module)
    import nbformat

    from notebooks.execute import execute, outputs

    # a temp folder of the test's own, for this process and the kernel: what is left in it
    # after the run is what the notebook (or Jupyter) would leave in the system's
    private = tmp_path / "tmp"
    private.mkdir()
    monkeypatch.setenv("TMPDIR", str(private))
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    path = NOTEBOOKS / f"{name}.ipynb"
    start = time.monotonic()
    executed = execute(path)
    elapsed = time.monotonic() - start
    assert list(private.iterdir()) == [], "left in the temp folder"
    stored = outputs(nbformat.read(path, as_version=4))
    fresh = outputs(executed)
    assert len(fresh) == len(stored)
    for index, (now, then) in enumerate(zip(fresh, stored, strict=True)):
        assert now == then, (f"{name}: code cell {index + 1} shows other outputs than the "
                             "stored ones: run `make notebook-outputs`")
    assert elapsed < 90, f"{name} took {elapsed:.1f} s"
