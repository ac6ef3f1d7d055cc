"""A package's names, each imported from its module on first use (PEP 562).

Importing one module of a package runs the package's ``__init__`` first: an ``__init__`` that
imports every module (to offer ``from pktsim.netfilter import Table``) makes ``pktsim check``,
which builds a cluster and sends nothing, pay for the matcher, the trace writers and the
rest.  With ``__getattr__, __dir__ = lazy_exports(__name__, {...})`` the names stay where they
were and each module loads when a name of it is first asked for; the ``__init__`` keeps the
imports under ``TYPE_CHECKING`` for type checkers (``tests/core/test_lazy_exports.py``
checks that both say the same).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from importlib import import_module


def lazy_exports(package: str, exports: Mapping[str, tuple[str, ...]]) -> tuple[
        Callable[[str], object], Callable[[], list[str]]]:
    """The module ``__getattr__`` and ``__dir__`` of ``package``, whose ``exports`` map each
    of its modules (relative name) to the names it offers."""
    home = {name: f"{package}.{module}" for module, names in exports.items() for name in names}
    namespace = sys.modules[package].__dict__

    def __getattr__(name: str) -> object:
        module = home.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(module), name)
        namespace[name] = value  # once loaded, an ordinary attribute
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *home})

    return __getattr__, __dir__
