"""Run the notebooks top to bottom and store their outputs, or check that the stored ones
are current.

    python notebooks/execute.py            # run every notebook, store its outputs
    python notebooks/execute.py --check    # exit 1 when a stored output is not what a run shows
    python notebooks/execute.py 03-dns     # only the notebooks named

The notebooks are committed with their outputs so that a reader who only browses the
repository sees them rendered; a test (tests/docs/test_notebooks.py) runs each one the same
way and compares, with nothing normalised: a pktsim run is a pure function of its input and
seed, so everything a notebook shows is too.  What would vary between two runs is kept out
at the source:

* the kernel runs *this* interpreter with ``PYTHONHASHSEED=0`` (set and dict orders of
  strings), without the variables by which hypothesis detects a CI machine (its ``ci``
  profile prints more) and matplotlib's inline backend, from a kernel spec in a temporary folder (a
  fresh machine needs no ``ipykernel install``);
* the notebooks run in a temporary working folder, their own temporary files in
  ``tempfile.TemporaryDirectory()`` blocks, and the kernel's connection file (jupyter_client
  otherwise makes one with ``mkstemp`` in the system temp folder and leaves it) and runtime
  folder in the same scratch folder: all removed when the run ends;
* nbclient records no timings (``record_timing=False``), and the stored notebook keeps its
  own metadata (not the running Python's version).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
KERNEL = "pktsim-notebooks"
CELL_TIMEOUT = 120  # seconds; each notebook takes a few seconds
# the variables hypothesis reads to decide it runs in CI (hypothesis/_settings.py _CI_VARS)
CI_VARIABLES = frozenset({
    "CI", "__TOX_ENVIRONMENT_VARIABLE_ORIGINAL_CI", "TF_BUILD", "bamboo.buildKey",
    "BUILDKITE", "CIRCLECI", "CIRRUS_CI", "CODEBUILD_BUILD_ID", "GITHUB_ACTIONS",
    "GITLAB_CI", "HEROKU_TEST_RUN_ID", "TEAMCITY_VERSION", "HYPOTHESIS_PROFILE"})


def notebooks(names: list[str] | None = None) -> list[Path]:
    """The notebooks of this folder, in order; ``names`` (stems) picks some."""
    found = sorted(HERE.glob("*.ipynb"))
    return [p for p in found if not names or p.stem in names]


def _kernel_spec(root: Path) -> None:
    spec = root / KERNEL
    spec.mkdir()
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "pktsim notebooks", "language": "python",
        "env": {"MPLBACKEND": "module://matplotlib_inline.backend_inline",
                "PYTHONHASHSEED": "0"}}))


def execute(path: Path) -> Any:
    """The notebook at ``path``, run top to bottom in a fresh kernel (an error raises
    ``nbclient.exceptions.CellExecutionError`` naming the cell)."""
    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    book = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory(prefix="pktsim-notebook-") as scratch:
        root = Path(scratch)
        _kernel_spec(root)
        (root / "work").mkdir()
        runtime = os.environ.get("JUPYTER_RUNTIME_DIR")
        os.environ["JUPYTER_RUNTIME_DIR"] = str(root / "runtime")
        # hypothesis behaves otherwise where it detects CI (``is_in_ci`` in
        # hypothesis/_settings.py: its ``ci`` profile prints a reproduce_failure blob), so
        # the kernel, which inherits this environment, runs without those variables
        hidden = {k: os.environ.pop(k) for k in list(os.environ) if k in CI_VARIABLES}
        try:
            manager = KernelManager(kernel_name=KERNEL, kernel_spec_manager=KernelSpecManager(
                kernel_dirs=[str(root)]), connection_file=str(root / "connection.json"))
            client = NotebookClient(book, km=manager, timeout=CELL_TIMEOUT,
                                    allow_errors=False, record_timing=False,
                                    resources={"metadata": {"path": str(root / "work")}})
            client.execute()
        finally:
            os.environ.update(hidden)
            if runtime is None:
                os.environ.pop("JUPYTER_RUNTIME_DIR", None)
            else:
                os.environ["JUPYTER_RUNTIME_DIR"] = runtime
    return book


def outputs(book: Any) -> list[tuple[Any, list[dict[str, Any]]]]:
    """Each code cell's execution count and outputs, as plain JSON values."""
    return [(c.get("execution_count"), json.loads(json.dumps(c.get("outputs", []))))
            for c in book["cells"] if c["cell_type"] == "code"]


def store(path: Path, executed: Any) -> None:
    """Write ``executed``'s outputs into the notebook at ``path``, the rest as it was."""
    import nbformat

    book = nbformat.read(path, as_version=4)
    ran = [c for c in executed.cells if c.cell_type == "code"]
    for cell, done in zip([c for c in book.cells if c.cell_type == "code"], ran, strict=True):
        cell.outputs = done.outputs
        cell.execution_count = done.execution_count
        cell.metadata.pop("execution", None)
    nbformat.write(book, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="notebook names (default: all)")
    parser.add_argument("--check", action="store_true",
                        help="compare with the stored outputs instead of storing")
    args = parser.parse_args(argv)
    stale = []
    for path in notebooks(args.names):
        executed = execute(path)
        if args.check:
            import nbformat

            if outputs(executed) != outputs(nbformat.read(path, as_version=4)):
                stale.append(path.name)
        else:
            store(path, executed)
        print(f"{path.name}: {'checked' if args.check else 'stored'}")
    if stale:
        print(f"outputs not current: {', '.join(stale)} (run `make notebook-outputs`)",
              file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
