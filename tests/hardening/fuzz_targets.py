"""Fuzz targets of issue 16: the loader, the CLI and frame injection.

Each target takes one generated input and asserts the promise for it: bad input is exit 2
with short ``pktsim: FILE: ...`` lines (never exit 1, never a traceback), an accepted input
runs to its end or its budget, the output folder is the complete new one or absent with
nothing beside it, and every injected frame gets a fate in the trace.  The strategies
here feed them; ``test_fuzz_targets.py`` runs a few hundred examples in CI and
``tests/strategies/fuzz_long.py`` (``make fuzz``) the long run.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import shutil
import tempfile
import time
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

import pktsim
from pktsim.build.budget import Budget
from pktsim.cli import main
from pktsim.core.capture import LinkType
from pktsim.strategies import frames, malformed_frames, manifests, scenarios
from tests.scenario import test_scenario_fuzz as loader

NETWORKS = ("routes", "vxlan", "ipip")
COMPLETE = {"capture.pcapng", "trace.jsonl", "trace.txt", "pcap", "nodes"}
LINE_MAX = 2000  # no line of a message is longer (values and names are cut)

# -- inputs ------------------------------------------------------------------------------

HOSTILE = [
    "!!bool maybe", "!!float x", "!!int 0x", "9" * 5000, "&a [*a]", "!!binary '###'",
    "'10.0.0.1:" + "9" * 5000 + "'", "10.244.0.1", "10.244.0.0", "10.244.0.255",
    "10.96.0.10", "172.18.0.1", "0.0.0.0", "255.255.255.255", "x" * 100_000,
    "9000000000000", "1000000", "65536", "-1", "{}", "[]", "~",
]
ENCODINGS = ("utf-8", "utf-8-sig", "latin-1", "utf-16", "utf-32", "junk-byte")


def encode(text: str, how: str) -> bytes:
    """``text`` in one of ``ENCODINGS`` (``junk-byte``: UTF-8 with a 0xff in the middle)."""
    if how == "junk-byte":
        data = text.encode("utf-8")
        return data[: len(data) // 2] + b"\xff" + data[len(data) // 2:]
    return text.encode(how, errors="replace")


@st.composite
def manifest_texts(draw: st.DrawFn) -> str:
    """Scenario text: random documents, mutated hand-written or generated manifests, with
    hostile scalars (tags, huge integers, aliases, clashing addresses) spliced in."""
    base = draw(st.sampled_from(["random", "handwritten", "generated"]))
    if base == "random":
        docs: list[Any] = draw(st.lists(loader.documents, min_size=1, max_size=4))
    else:
        docs = copy.deepcopy(loader.BASE) if base == "handwritten" else draw(
            manifests(max_services=3))
        for _ in range(draw(st.integers(0, 3))):
            i = draw(st.integers(0, len(docs) - 1))
            path = draw(st.sampled_from(loader.paths(docs[i])))
            junk = draw(loader.trees)
            docs[i] = loader.mutate(docs[i], path, junk, draw(st.booleans()))
    text = loader.dump(docs)
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, len(text)))
        word = draw(st.sampled_from(HOSTILE))
        cut = draw(st.integers(0, 12))
        text = text[:at] + word + text[at + cut:]
    return text


# -- progress of a long run: PKTSIM_FUZZ_LOG gets a line every 1,000 inputs per target ------

COUNTS: dict[str, int] = {}
_STARTED = time.monotonic()


def tick(target: str, n: int = 1) -> None:
    """Count ``n`` inputs given to ``target``; log the counts now and then, so a long run
    cut short by its deadline still says how far it got."""
    before = COUNTS.get(target, 0)
    COUNTS[target] = before + n
    log = os.environ.get("PKTSIM_FUZZ_LOG")
    if log and (before // 1000 != COUNTS[target] // 1000):
        with open(log, "a", encoding="utf-8") as f:
            f.write(f"{time.monotonic() - _STARTED:8.0f} s  {target}: {COUNTS[target]:,}"
                    f"  {INJECTED}\n")


# -- targets -----------------------------------------------------------------------------

def _cli(argv: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(argv)
    return status, err.getvalue()


def _assert_clean(status: int, err: str, allowed: tuple[int, ...]) -> None:
    assert status in allowed, (status, err[:2000])
    assert "Traceback" not in err and "internal error" not in err, err[:2000]
    lines = err.splitlines()
    assert all(len(line) <= LINE_MAX for line in lines), max(map(len, lines))
    if status == 2:
        problems = [line for line in lines if not line.startswith("pktsim: warning:")]
        assert problems and all(line.startswith("pktsim: ") for line in problems), err[:500]
        assert len(problems) <= 21, len(problems)


def loader_target(text: str) -> None:
    """``pktsim.load``: a Cluster (addresses allocated) or a ScenarioError."""
    tick("loader")
    try:
        pktsim.load(text)
    except pktsim.ScenarioError as exc:
        assert exc.line() and len(exc.line()) <= 100 * LINE_MAX


def cli_check_target(data: bytes) -> None:
    """``pktsim check FILE``: exit 0 or 2, clean messages."""
    tick("check")
    with tempfile.TemporaryDirectory(prefix="pktsim-fuzz-") as tmp:
        path = Path(tmp) / "in.yaml"
        path.write_bytes(data)
        status, err = _cli(["check", str(path)])
    _assert_clean(status, err, (0, 2))


def cli_run_target(text: str) -> None:
    """``pktsim run FILE --out DIR``: exit 0, 2 or 3; DIR complete or absent, alone."""
    tick("run")
    with tempfile.TemporaryDirectory(prefix="pktsim-fuzz-") as tmp:
        path, out = Path(tmp) / "in.yaml", Path(tmp) / "out"
        path.write_text(text, encoding="utf-8")
        status, err = _cli(["run", str(path), "--out", str(out), "--quiet",
                            "--max-events", "20000"])
        _assert_clean(status, err, (0, 2, 3))
        beside = sorted(os.listdir(tmp))
        if status == 2:
            assert beside == ["in.yaml"], beside
        else:
            assert beside == ["in.yaml", "out"], beside
            assert set(os.listdir(out)) == COMPLETE
        shutil.rmtree(out, ignore_errors=True)


@cache
def cluster(network: str) -> pktsim.Cluster:
    return pktsim.Cluster(pktsim.demo_cluster(network).scenario)


@cache
def interfaces(network: str) -> tuple[tuple[str, bool], ...]:
    """Every capture point of the demo cluster in ``network`` mode, and whether it carries
    bare IPv4 (tunl0) rather than Ethernet."""
    found = cluster(network).build().driver.interfaces
    return tuple(sorted((i.if_name, i.linktype == LinkType.RAW) for i in found))


def inject_target(network: str, batch: list[tuple[int, int, bytes]]) -> None:
    """``batch`` of (interface index, time in µs, frame) injected in one run of the demo
    cluster: no exception, each frame's result names its fate.  ``INJECTED`` counts them."""
    names = interfaces(network)
    flows = []
    for n, (index, at_us, data) in enumerate(batch):
        name, raw = names[index % len(names)]
        body = data[14:] if raw and len(data) > 14 else data
        flows.append(pktsim.inject(name, body, at=f"{at_us}us", name=f"frame-{n}"))
    result = cluster(network).run(flows=flows, budget=FUZZ_BUDGET)
    assert not result.stopped, result.stopped
    for outcome in result.flows:
        assert outcome.status == "ok" and outcome.reason not in ("", "received"), \
            outcome.line()  # a step after the capture: what the device did with it
    INJECTED[network] = INJECTED.get(network, 0) + len(flows)
    tick("frames", len(flows))


INJECTED: dict[str, int] = {}  # frames injected, per network mode (the long run's count)


FUZZ_BUDGET = Budget(horizon_ns=3600 * 10**9, max_events=2_000_000)

frame_batches = st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 50_000),
                                   st.one_of(malformed_frames(), frames()).filter(bool)),
                         min_size=8, max_size=40)  # hypothesis favours short lists
encoded_manifests = st.tuples(manifest_texts(), st.sampled_from(ENCODINGS)).map(
    lambda pair: encode(*pair))
runnable = st.one_of(scenarios(max_nodes=3, max_flows=3), manifest_texts())


def dump(docs: list[Any]) -> str:
    return yaml.safe_dump_all(docs)
