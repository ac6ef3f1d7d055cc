"""The README's commands run as written (its ```sh and ```python blocks)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def test_shell_blocks_run() -> None:
    runnable = [b for b in blocks("sh") if "make " not in b]  # make: the README's own header
    assert runnable
    env_bin = Path(sys.executable).parent
    for block in runnable:
        script = block.replace(".venv/bin/", f"{env_bin}/")
        proc = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=ROOT,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, (block, proc.stdout[-2000:], proc.stderr[-2000:])
    assert (ROOT / "tour" / "out" / "capture.pcapng").exists()


def test_python_blocks_run() -> None:
    for block in blocks("python"):
        proc = subprocess.run([sys.executable, "-c", block], cwd=ROOT, capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 0, (block, proc.stderr[-2000:])


def test_make_targets_named_in_the_readme_exist() -> None:
    makefile = (ROOT / "Makefile").read_text()
    for target in re.findall(r"`make (\w+)`", README):
        assert re.search(rf"^{target}:", makefile, flags=re.M), target
