"""The public surface, pinned (as trio's test_exports does): a name added to or removed from
``pktsim``, ``pktsim.display``, ``pktsim.strategies``, ``pktsim.invariants`` or
``pktsim.devices`` fails here until the list below (and the docs) say so.  Every type a
user receives from the public objects is exported, and every public name has a docstring."""

from __future__ import annotations

import importlib
import inspect
import typing

import pytest

import pktsim

PUBLIC = {
    "pktsim": {"Cluster", "DropReason", "Event", "Flow", "FlowResult", "FlowStatus", "ReachCell",
               "Reachability", "ResolvConf", "Result", "Verdict",
               "ScenarioError", "Topology", "TraceEvent", "demo_cluster", "flow", "inject", "load",
               "observing"},
    "pktsim.display": {"FrameView", "NodeTables", "SimStep", "Simulation", "Table",
                       "TopologyView", "TraceView"},
    "pktsim.strategies": {"FLOW_KINDS", "IP_FAMILIES", "NETWORKS", "SERVICE_TYPES",
                          "TIMELINE_ACTIONS",
                          "WORKLOAD_KINDS", "GeneratedCluster", "Timeline", "clusters",
                          "flow_lists", "flows", "frames", "ipv4_addresses", "mac_addresses",
                          "malformed_frames", "manifests", "packets", "scenarios",
                          "timelines"},
    "pktsim.invariants": {"Connection", "Hop", "backends_are_ready_endpoints", "check_all",
                          "checksums_valid", "connections", "connections_keep_their_backend",
                          "delivered_once", "dns_answers_match_model", "flows_delivered",
                          "hops", "new_connections_follow_the_last_sync",
                          "no_reflection_without_hairpin", "pod_to_pod_not_natted",
                          "service_replies_from_vip", "ttl_decreases_per_routed_hop",
                          "unrelated_changes_keep_connections"},
    "pktsim.devices": {"Bridge", "Frame", "Reaction"},
}


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_exports_are_pinned(module: str) -> None:
    mod = importlib.import_module(module)
    assert set(mod.__all__) == PUBLIC[module]
    for name in mod.__all__:
        obj = getattr(mod, name)  # every exported name exists
        if callable(obj) and not isinstance(obj, str | tuple | frozenset):
            assert inspect.getdoc(obj), f"{module}.{name} has no docstring"


def _exported() -> set[object]:
    out: set[object] = set()
    for module, names in PUBLIC.items():
        mod = importlib.import_module(module)
        out |= {getattr(mod, n) for n in names}
    return out


def _pktsim_classes(hint: object) -> set[type]:
    """The pktsim classes an annotation names (inside list[...], X | None, ...)."""
    if isinstance(hint, type):
        return {hint} if hint.__module__.startswith("pktsim") else set()
    return {c for arg in typing.get_args(hint) for c in _pktsim_classes(arg)}


def _namespace(cls: type) -> dict[str, object]:
    """The names an annotation of ``cls`` may use, including its TYPE_CHECKING imports."""
    import pandas

    import pktsim.display
    import pktsim.dns
    from pktsim.reach.cells import Reachability
    from pktsim.sinks.trace import MemorySink

    names = dict(vars(importlib.import_module(cls.__module__)))
    names.update({n: getattr(pktsim.display, n) for n in pktsim.display.__all__})
    names.update(pandas=pandas, ResolvConf=pktsim.dns.ResolvConf)
    # imported by pktsim.api under TYPE_CHECKING (and where a run needs them)
    names.update(Reachability=Reachability, MemorySink=MemorySink)
    return names


@pytest.mark.parametrize("cls", [pktsim.Cluster, pktsim.Result])
def test_what_users_receive_is_exported(cls: type) -> None:
    """Every pktsim type returned by a public method or attribute of Cluster and Result is
    itself public: a user can name it, import it and read its documentation."""
    exported = _exported()
    received: set[type] = set()
    for name, member in inspect.getmembers(cls):
        if name.startswith("_"):
            continue
        fn = member.fget if isinstance(member, property) else member
        if callable(fn):
            hints = typing.get_type_hints(fn, _namespace(cls))
            received |= _pktsim_classes(hints.get("return"))
    for name, hint in typing.get_type_hints(cls, _namespace(cls)).items():
        if not name.startswith("_") and name not in ("memory", "model", "scenario"):
            received |= _pktsim_classes(hint)
    missing = {c.__qualname__ for c in received if c not in exported}
    assert not missing, f"returned to users but not exported: {sorted(missing)}"


def test_no_module_level_mutable_registries() -> None:
    """Module-level state a caller could append to (an observer list, a memo stack) leaks
    between runs, tests and threads: such state is a ContextVar or lives on an object."""
    import ast
    from pathlib import Path

    root = Path(pktsim.__file__).parent
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
            empty = isinstance(value, ast.List | ast.Dict | ast.Set) and not (
                getattr(value, "elts", None) or getattr(value, "keys", None))
            call = isinstance(value, ast.Call) and ast.unparse(value.func) in (
                "list", "dict", "set", "collections.defaultdict", "defaultdict")
            if empty or call:
                found.append(f"{path.relative_to(root)}:{node.lineno}")
    assert not found, f"module-level mutable containers: {found}"
