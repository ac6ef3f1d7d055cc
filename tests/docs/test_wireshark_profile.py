"""The shipped Wireshark profile decodes flannel's UDP 8472 as VXLAN without any flag."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.test_cross_node import FLOWS, SCENARIO
from tests.helpers.sim import run_yaml

PROFILE = Path(__file__).resolve().parents[2] / "captures" / "wireshark-profile" / "pktsim"


def test_profile_decodes_vxlan(tmp_path: Path) -> None:
    if shutil.which("tshark") is None:
        pytest.skip("tshark not installed (Debian package: tshark)")
    run_yaml(SCENARIO.format(network="vxlan", flows=FLOWS), tmp_path / "out")
    config = tmp_path / "config"
    shutil.copytree(PROFILE, config / "wireshark" / "profiles" / "pktsim")
    env = {**os.environ, "XDG_CONFIG_HOME": str(config), "HOME": str(tmp_path)}

    def count(*extra: str) -> int:
        proc = subprocess.run(["tshark", "-n", "-r", str(tmp_path / "out" / "capture.pcapng"),
                               *extra, "-Y", "vxlan && tcp"], capture_output=True, text=True,
                              env=env, timeout=120, check=True)
        return len(proc.stdout.splitlines())

    assert count() == 0  # plain Wireshark does not know port 8472
    assert count("-C", "pktsim") > 0
