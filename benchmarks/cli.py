"""The CLI benchmark (benchmarks/README.md §7): how long ``pktsim --help`` and ``pktsim check``
on the demo scenario take, as multiples of a bare ``python -c pass``, side by side.

Each command runs in a fresh interpreter (the benchmark's own ``sys.executable``, from the
repository's root, so ``-m pktsim`` is this tree's), with ``PYTHONDONTWRITEBYTECODE=1``: a
machine that never writes bytecode reads what the install compiled (the Makefile runs
``compileall`` on ``pktsim``; so does this benchmark first).  The three commands take turns in
every round, so a busy moment of a shared machine falls on all three alike; the figure of each
is its median wall time over the rounds, and its ratio the median over the rounds of its time
over the bare interpreter's in the same round (a round takes well under a second, so the
load of the machine changes less within a round than between rounds).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import Outcome, median

NAME = "cli"
ROOT = Path(__file__).resolve().parent.parent
DEMO = "pktsim/data/demo.yaml"
COMMANDS: dict[str, list[str]] = {
    "python": ["-c", "pass"],
    "help": ["-m", "pktsim", "--help"],
    "check": ["-m", "pktsim", "check", DEMO],
}
LABELS = {"python": "python -c pass", "help": "pktsim --help", "check": "pktsim check demo.yaml"}
TARGETS = {"help": 1.5, "check": 4.0}  # wall time / a bare interpreter's, median per round


@dataclass(frozen=True)
class CliConfig:
    rounds: int = 30

    @classmethod
    def quick(cls) -> CliConfig:
        return cls(rounds=3)


def configure(quick: bool, rounds: int | None = None) -> CliConfig:
    cfg = CliConfig.quick() if quick else CliConfig()
    return CliConfig(rounds or cfg.rounds)


def environment() -> dict[str, str]:
    """The caller's environment, never writing bytecode (the slow case of issue 19)."""
    return {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}


def compile_bytecode() -> None:
    """What ``make`` does at install: without it every command would compile pktsim."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", "pktsim"], cwd=ROOT,
                   stdout=subprocess.DEVNULL, check=True)


def time_once(args: list[str], env: dict[str, str]) -> float:
    """Wall seconds of one fresh interpreter running ``args``; it must exit 0 and, but for
    the bare one, print something."""
    t = time.perf_counter()
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                          check=False)
    seconds = time.perf_counter() - t
    if done.returncode != 0 or (args[0] == "-m" and not done.stdout):
        raise RuntimeError(f"{' '.join(args)} failed (exit {done.returncode}): "
                           f"{done.stderr.decode(errors='replace')[-2000:]}")
    return seconds


def measure(rounds: int) -> dict[str, list[float]]:
    """Every command's wall times, the commands taking turns (rotated) in each round."""
    env = environment()
    names = list(COMMANDS)
    times: dict[str, list[float]] = {name: [] for name in names}
    for i in range(rounds):
        for name in names[i % len(names):] + names[:i % len(names)]:
            times[name].append(time_once(COMMANDS[name], env))
        if (i + 1) % 10 == 0 or i + 1 == rounds:
            print(f"  cli: {i + 1}/{rounds} rounds", flush=True)
    return times


def ratios(times: dict[str, list[float]]) -> dict[str, float]:
    """Per target command: the median over the rounds of its time / the bare one's."""
    bare = times["python"]
    return {name: median([t / b for t, b in zip(times[name], bare, strict=True)])
            for name in TARGETS}


def run(cfg: CliConfig) -> Outcome:
    compile_bytecode()
    times = measure(cfg.rounds)
    seconds = {name: median(values) for name, values in times.items()}
    ratio = ratios(times)
    figures: dict[str, Any] = {
        "rounds": cfg.rounds, "seconds": seconds, "ratio": ratio, "target": TARGETS,
        "min_seconds": {name: min(values) for name, values in times.items()},
        "ratio_of_medians": {name: seconds[name] / seconds["python"] for name in TARGETS},
    }
    lines = [f"  {LABELS[name]:<24} {seconds[name] * 1e3:7.1f} ms "
             f"(fastest {figures['min_seconds'][name] * 1e3:.1f})" for name in COMMANDS]
    verdicts = [f"{name} {ratio[name]:.2f}x (target <= {TARGETS[name]}x) "
                f"{'met' if ratio[name] <= TARGETS[name] else 'NOT met'}" for name in TARGETS]
    lines.append(f"cli: {cfg.rounds} rounds, each vs python -c pass: {'; '.join(verdicts)}")
    return Outcome(NAME, figures, lines)
