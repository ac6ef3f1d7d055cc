"""The pytest plugin under pytest-xdist (``pytest -n 2``): one whole failure folder per
failing test, none for a passing one, no clash between workers, the old folders cleared
once (docs/property-testing.md, "running in parallel")."""

from __future__ import annotations

import pytest

from tests.e2e.test_pytest_plugin import FAILING
from tests.helpers.sim import validate_folder

pytestmark = pytest.mark.slow  # two worker processes: a few seconds

pytest.importorskip("xdist", reason="pytest-xdist not installed (the dev extra has it)")

MORE = '''
import pytest

SCENARIO = """
apiVersion: v1
kind: Pod
metadata: {name: a}
spec: {containers: [{name: c, ports: [{containerPort: 80}]}]}
---
apiVersion: pktsim/v1alpha1
kind: Traffic
spec: {flows: [{from: default/a, to: 'localhost:%d'}]}
"""

@pytest.mark.parametrize("port", [80, 81, "81 "])
def test_port(pktsim_cluster, port):
    result = pktsim_cluster(SCENARIO % int(port)).run()
    assert result.flows[0].ok

def test_passes(pktsim_cluster):
    assert pktsim_cluster(SCENARIO % 80).run().flows[0].ok
'''


def test_one_folder_per_failing_test_under_two_workers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_users=FAILING, test_more=MORE)
    stale = pytester.path / ".pktsim-failures" / "old-run"
    stale.mkdir(parents=True)
    (pytester.path / ".pktsim-failures" / ".pktsim-failures").touch()
    result = pytester.runpytest_subprocess("-n", "2", "-p", "xdist", "--hypothesis-profile",
                                           "pktsim", "-q")
    result.assert_outcomes(failed=3, passed=2)
    result.stdout.fnmatch_lines(["*capture of the failing run: *capture.pcapng*"])
    folders = sorted(p for p in (pytester.path / ".pktsim-failures").iterdir() if p.is_dir())
    names = [p.name for p in folders]
    assert len(folders) == 3, names  # the stale one is gone; ids "81" and "81 " do not clash
    assert sum(n.startswith("test_more.py_test_port_81") for n in names) == 2, names
    assert sum(n.startswith("test_users.py_test_every_port_answers") for n in names) == 1
    for out in folders:
        validate_folder(out)
    users = next(p for p in folders if p.name.startswith("test_users"))
    assert "10.244.1.2.79" in (users / "trace.txt").read_text()  # shrunk as without -n
    assert not list((pytester.path / ".pktsim-failures").glob(".*.tmp-*"))
