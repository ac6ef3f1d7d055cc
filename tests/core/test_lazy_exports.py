"""The packages whose names load on first use (``pktsim.core.lazy``) offer what their eager
``__init__`` did: every name of ``__all__`` resolves to its module's object, the
``TYPE_CHECKING`` imports type checkers read name the same modules, and no name is also a
module of the package (importing that module would replace the name by the module)."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

LAZY = ["pktsim.kubeproxy", "pktsim.netfilter", "pktsim.render"]


def _checked_imports(package: str) -> dict[str, str]:
    """name -> module, from the ``if TYPE_CHECKING:`` block of the package's ``__init__``."""
    path = Path(importlib.import_module(package).__file__ or "")
    out: dict[str, str] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom) and imp.module
                out.update({a.name: imp.module for a in imp.names})
    return out


@pytest.mark.parametrize("package", LAZY)
def test_every_exported_name_resolves_to_its_module_object(package: str) -> None:
    pkg = importlib.import_module(package)
    checked = _checked_imports(package)
    exports = {name: f"{package}.{mod}" for mod, names in pkg._EXPORTS.items() for name in names}
    assert exports == checked
    eager = set(pkg.__all__) - set(exports)  # bound at import (a name that is also a module's)
    assert all(name in vars(pkg) for name in eager)
    for name in pkg.__all__:
        home = exports.get(name)
        value = getattr(pkg, name)
        if home is not None:
            assert value is getattr(importlib.import_module(home), name), name
    assert set(pkg.__all__) <= set(dir(pkg))
    with pytest.raises(AttributeError):
        _ = pkg.no_such_name


@pytest.mark.parametrize("package", LAZY)
def test_no_lazy_name_is_also_a_module_name(package: str) -> None:
    pkg = importlib.import_module(package)
    modules = {m.name for m in pkgutil.iter_modules(pkg.__path__)}
    names = {name for names in pkg._EXPORTS.values() for name in names}
    assert not names & modules


def test_render_explain_stays_the_function_whatever_is_imported_first() -> None:
    code = ("import pktsim.render.explain, pktsim.render as r, inspect; "
            "assert inspect.isfunction(r.explain), r.explain")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


def test_pktsim_check_imports_neither_dnspython_nor_felix() -> None:
    """What ``pktsim check`` on the demo does not need stays unimported (docs/performance.md
    "The command line")."""
    code = ("import sys; from pktsim.cli import main; main(['check', 'pktsim/data/demo.yaml']); "
            "loaded = sorted(m for m in sys.modules if m == 'dns' or m.startswith(('dns.', "
            "'pktsim.felix', 'pktsim.sinks.pcap', 'pktsim.reach.cells', 'hypothesis', "
            "'scapy'))); assert not loaded, loaded")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2],
                   stdout=subprocess.DEVNULL)
