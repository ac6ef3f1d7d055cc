"""Scenario files -> :class:`pktsim.model.objects.Scenario` (docs/scenario.md §1-4).

Two entry points::

    load_scenario([("demo.yaml", text)])   # (display name, YAML text) pairs
    load_paths(["demo.yaml", "-"])          # files, directories (*.yaml, *.yml, *.json), stdin

Both read every document of every input in one pass and raise a single
:class:`~pktsim.errors.ScenarioError`, or :class:`~pktsim.errors.ScenarioErrors` when there are
several problems; warnings (skipped kinds, ignored fields) land in ``Scenario.warnings``.
``seed`` overrides ``Cluster.seed`` (the CLI's ``--seed``): it decides generated pod names.

Where a problem is reported: ``FILE: document N (Kind ns/name): FIELD: VALUE MESSAGE; valid:
WHAT``.  ``N`` is the 1-based position of the YAML document in its file's stream, empty documents
included; an object inside a ``kind: List`` adds its 0-based position, ``document 2 items[4]``
(nested Lists: ``document 2 items[4].items[0]``).  A YAML syntax error names the line and column.

Module map: ``stream`` (YAML, Lists), ``fields`` (typed accessors that record errors),
``syntax`` (name, duration and time syntaxes), ``meta``, ``pods`` (Pod, Node, pod specs),
``workloads`` (Deployment & co. -> pods, deterministic names), ``services`` (Service,
EndpointSlice), ``policies`` (NetworkPolicy), ``cluster`` and ``traffic`` (pktsim's kinds;
``inject``: a Traffic entry that injects a raw frame),
``loader`` (dispatch, assembly).
"""

from __future__ import annotations

import sys
from pathlib import Path

from pktsim.errors import ScenarioError
from pktsim.model.objects import Scenario
from pktsim.scenario.addons import with_addons
from pktsim.scenario.loader import load

__all__ = ["load_paths", "load_scenario", "read_text", "with_addons"]

SCENARIO_SUFFIXES = (".yaml", ".yml", ".json")


def load_scenario(inputs: list[tuple[str, str]], *, seed: int | None = None,
                  addons: bool = True) -> Scenario:
    """The scenario described by ``(display file name, YAML text)`` inputs, in order, with
    kubeadm's add-ons (CoreDNS, ``pktsim.scenario.addons``) unless ``addons`` is false."""
    return load(inputs, seed, addons=addons)


def load_paths(paths: list[str], *, seed: int | None = None, addons: bool = True) -> Scenario:
    """The scenario in files (``-`` is stdin; a directory gives its scenario files, sorted),
    with the add-ons as in ``load_scenario``."""
    inputs: list[tuple[str, str]] = []
    errors: list[ScenarioError] = []
    for path in paths:
        for name in _expand(path):
            text = read_text(name, errors)
            if text is not None:
                inputs.append(("<stdin>" if name == "-" else name, text))
    return load(inputs, seed, errors, addons=addons)


def read_text(name: str, errors: list[ScenarioError]) -> str | None:
    """The text of file ``name`` (``-``: stdin), or None with the reason in ``errors``:
    unreadable, a folder, or not UTF-8 (a Latin-1 byte, UTF-16) -- named by file and byte,
    never a bare UnicodeDecodeError."""
    try:
        if name == "-":
            stdin = getattr(sys.stdin, "buffer", None)  # a test's StringIO has none
            return stdin.read().decode("utf-8-sig") if stdin else sys.stdin.read()
        return Path(name).read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        byte = exc.object[exc.start:exc.start + 1].hex()
        errors.append(ScenarioError(
            f"is not UTF-8 text: byte 0x{byte} at offset {exc.start}", file=name,
            valid="a UTF-8 YAML or JSON file (iconv -f latin1 -t utf-8, or -f utf-16)"))
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        errors.append(ScenarioError(f"cannot read the file: {reason}", file=name,
                                    valid="a readable UTF-8 YAML file"))
    return None


def _expand(path: str) -> list[str]:
    if path != "-" and Path(path).is_dir():
        found = sorted(str(p) for p in Path(path).iterdir()
                       if p.suffix in SCENARIO_SUFFIXES and p.is_file())
        return found or [path]
    return [path]
