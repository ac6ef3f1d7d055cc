"""dnspython's modules, each imported on first use: ``dns.message``, ``dns.name``, ...

dnspython costs ~50 ms to import (``dns.name`` asks ``importlib.metadata`` for the versions
of its optional packages), which is more than ``pktsim check`` spends building a cluster:
building one makes CoreDNS pods and resolvers, but only a DNS message that is sent needs
dnspython.  The modules of ``pktsim.dns`` (and ``pktsim.devices.dnsapps``) therefore write::

    if TYPE_CHECKING:
        import dns.message
    else:
        from pktsim.dns.dnspython import dns

and use ``dns.message.from_wire(...)`` as before: type checkers see the real modules, and at
run time the first ``dns.message`` imports it and keeps it as an ordinary attribute (later
look-ups cost what a module attribute costs).
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType


class _Dnspython:
    """Stands for the ``dns`` package: ``dns.NAME`` imports ``dns.NAME`` on first use."""

    def __getattr__(self, name: str) -> ModuleType:
        if name.startswith("__"):  # copy, pickle and the like probe for dunders
            raise AttributeError(name)
        module = import_module(f"dns.{name}")
        setattr(self, name, module)
        return module


dns = _Dnspython()
