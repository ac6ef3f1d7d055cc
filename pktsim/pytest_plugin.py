"""pktsim's pytest plugin (entry point ``pytest11``): fixtures, failure artefacts, a profile.

* ``pktsim_cluster``: a factory fixture — ``pktsim_cluster(yaml_text_or_path, ...)`` loads a
  cluster (``pktsim_cluster()`` gives the demo cluster).
* When a test fails, the last run it made (for hypothesis, the shrunk counterexample, which
  hypothesis replays last) is written to ``--pktsim-artifacts`` (default
  ``.pktsim-failures/``) as ``<test id>/capture.pcapng`` and ``trace.txt`` (the whole output
  folder, in fact), and the report says where — ready to open in Wireshark.
* A hypothesis profile ``pktsim`` (derandomized, 50 examples, no deadline, no explain
  phase) for CI: ``pytest --hypothesis-profile pktsim``.

Safe under pytest-xdist (``pytest -n 2``): each worker writes only the folders of the tests
it ran, every test has a folder of its own (the name is the test id made safe for a file
name, plus a hash of the id, so two ids that read alike never share one), each is written
to a temporary folder beside it and renamed into place, and the folders of an earlier
session are removed once, by the process that is not a worker, before any test runs.
With ``--hypothesis-profile pktsim`` every worker draws the same examples a single process
would (derandomized), so a failure found under ``-n`` is found without it.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

import pktsim
from pktsim import api
from pktsim.sinks.output import atomic_dir

try:  # the profile is registered only where hypothesis is installed
    from hypothesis import Phase, settings

    # hypothesis' explain phase re-runs the minimal example many times over to say which
    # parts of it matter; with a network simulation in each run it took most of the time a
    # failing property needs to report (benchmarks/README.md §6): the profile leaves it out
    settings.register_profile("pktsim", derandomize=True, max_examples=50, deadline=None,
                              phases=[p for p in Phase if p is not Phase.explain])
except ImportError:  # pragma: no cover
    pass

_KEY = pytest.StashKey[list[api.Result]]()
MARKER = ".pktsim-failures"  # in a folder the plugin made: it may remove that folder


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--pktsim-artifacts", default=".pktsim-failures",
                     help="where pktsim writes the capture and trace of a failing test")


def pytest_configure(config: pytest.Config) -> None:
    """Remove the failure folders of an earlier session, once: in the main process (an
    xdist worker has ``workerinput``), and only a folder this plugin made (it holds the
    marker file), never one the user pointed ``--pktsim-artifacts`` at by mistake."""
    if hasattr(config, "workerinput"):
        return
    folder = Path(str(config.getoption("--pktsim-artifacts")))
    if (folder / MARKER).is_file():
        shutil.rmtree(folder)


def folder_name(nodeid: str) -> str:
    """A file name for a test id: readable, at most ~120 characters, unique (a hash of the
    id: ``test[a b]`` and ``test[a_b]`` would otherwise both be ``test_a_b_``)."""
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid)[:110].strip("._") or "test"
    return f"{readable}-{hashlib.sha256(nodeid.encode()).hexdigest()[:8]}"


@pytest.fixture(scope="session")
def pktsim_cluster() -> Callable[..., pktsim.Cluster]:
    """Load a cluster from YAML text or paths; no argument gives the demo cluster.

    Session-scoped (it holds no state), so ``@given`` tests may use it.
    """

    def make(*sources: str, seed: int | None = None, network: str | None = None) \
            -> pktsim.Cluster:
        if not sources:
            return pktsim.demo_cluster(network or "routes")
        cluster = pktsim.load(*sources, seed=seed)
        if network is not None:
            cluster.scenario.config.network = network
            cluster = pktsim.Cluster(cluster.scenario)
        return cluster

    return make


@pytest.fixture(autouse=True)
def _pktsim_recorder(request: pytest.FixtureRequest) -> Iterator[None]:
    runs: list[api.Result] = []
    request.node.stash[_KEY] = runs
    with api.observing(runs.append):
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item,
                              call: pytest.CallInfo[Any]) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    runs = item.stash.get(_KEY, [])
    if not runs:
        return
    folder = Path(str(item.config.getoption("--pktsim-artifacts")))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).touch()
    written = _write(runs[-1], folder / folder_name(item.nodeid))
    if written is not None:
        report.sections.append(("pktsim", f"capture of the failing run: "
                                f"{written / 'capture.pcapng'} (trace: {written / 'trace.txt'})"))


def _write(result: api.Result, dest: Path) -> Path | None:
    if result.memory is not None:
        return result.write(dest)
    if result.out is not None and result.out.exists():
        with atomic_dir(dest) as tmp:  # the copy appears whole, or not at all
            shutil.copytree(result.out, tmp, dirs_exist_ok=True)
        return dest
    return None
