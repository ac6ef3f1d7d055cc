"""The pytest plugin: fixtures for users, and the failing example's capture saved."""

from __future__ import annotations

import pytest

from tests.helpers.sim import validate_folder

pytestmark = pytest.mark.slow  # seconds in all: `make test-fast` leaves the module out

FAILING = '''
from hypothesis import given, strategies as st
from pktsim import invariants

SCENARIO = """
apiVersion: v1
kind: Pod
metadata: {name: a}
spec: {nodeName: node-1, containers: [{name: c, ports: [{containerPort: 80}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: b}
spec: {nodeName: node-2, containers: [{name: c, ports: [{containerPort: 80}]}]}
---
apiVersion: pktsim/v1alpha1
kind: Traffic
spec: {flows: [{from: default/a, to: 'http://10.244.1.2:%d/'}]}
"""

@given(st.integers(79, 90))
def test_every_port_answers(pktsim_cluster, port):
    result = pktsim_cluster(SCENARIO % port).run()
    invariants.flows_delivered(result)
'''


def test_failing_property_leaves_the_shrunk_capture(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_users=FAILING)
    result = pytester.runpytest_subprocess("--hypothesis-profile",
                                "pktsim", "-q")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*capture of the failing run: *capture.pcapng*"])
    folders = [p for p in (pytester.path / ".pktsim-failures").iterdir() if p.is_dir()]
    assert len(folders) == 1
    out = folders[0]
    assert (out / "capture.pcapng").stat().st_size > 0
    trace = (out / "trace.txt").read_text()
    assert "10.244.1.2.79" in trace  # hypothesis shrank to the smallest failing port, 79
    validate_folder(out)


def test_fixture_gives_the_demo_and_loads_yaml(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_ok='''
def test_demo(pktsim_cluster):
    assert "default/client" in pktsim_cluster().model.pods
    assert pktsim_cluster(network="vxlan").model.config.network == "vxlan"
''')
    pytester.runpytest_subprocess("-q").assert_outcomes(passed=1)
