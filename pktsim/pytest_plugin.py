"""pktsim's pytest plugin (entry point ``pytest11``): fixtures, failure artefacts, a profile.

* ``pktsim_cluster``: a factory fixture — ``pktsim_cluster(yaml_text_or_path, ...)`` loads a
  cluster (``pktsim_cluster()`` gives the demo cluster).
* When a test fails, the last run it made (for hypothesis, the shrunk counterexample, which
  hypothesis replays last) is written to ``--pktsim-artifacts`` (default
  ``.pktsim-failures/``) as ``<test id>/capture.pcapng`` and ``trace.txt`` (the whole output
  folder, in fact), and the report says where — ready to open in Wireshark.
* A hypothesis profile ``pktsim`` (derandomized, 50 examples, no deadline) for CI:
  ``pytest --hypothesis-profile pktsim``.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

import pktsim
from pktsim import api

try:  # the profile is registered only where hypothesis is installed
    from hypothesis import settings

    settings.register_profile("pktsim", derandomize=True, max_examples=50, deadline=None)
except ImportError:  # pragma: no cover
    pass

_KEY = pytest.StashKey[list[api.Result]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--pktsim-artifacts", default=".pktsim-failures",
                     help="where pktsim writes the capture and trace of a failing test")


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
    dest = folder / re.sub(r"[^A-Za-z0-9_.-]+", "_", item.nodeid)
    written = _write(runs[-1], dest)
    if written is not None:
        report.sections.append(("pktsim", f"capture of the failing run: "
                                f"{written / 'capture.pcapng'} (trace: {written / 'trace.txt'})"))


def _write(result: api.Result, dest: Path) -> Path | None:
    if result.memory is not None:
        return result.write(dest)
    if result.out is not None and result.out.exists():
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(result.out, dest)
        return dest
    return None
