"""Typed access to the loosely typed YAML tree.

A YAML document is whatever the user wrote: a string where an integer belongs, a list where a
mapping belongs, ``null`` anywhere.  Every accessor here checks the type (and, where given, the
range or syntax), and on a mismatch *records* a :class:`ScenarioError` in the document's
:class:`Ctx` and returns a default, so one pass over a file reports every problem at once and
no Python exception ever escapes the loader.

An :class:`Obj` is a mapping plus the field path that leads to it (``spec.ports[0]``); its
accessors take a key and build the path of the child, so error messages name the exact field.
"""

from __future__ import annotations

import reprlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import (
    AddressValueError,
    IPv4Address,
    IPv4Network,
    IPv6Address,
    IPv6Network,
    ip_address,
    ip_network,
)
from typing import Any

from pktsim.errors import ScenarioError, clip, value_text
from pktsim.model.objects import Source

# A syntax check: ``None`` when the string is fine, else ``(message, what would be valid)``.
Check = Callable[[str], tuple[str, str] | None]

_SHOWN_MAX = 60


class Shown:
    """A value too long (or too nested) to print whole: its ``repr`` cut to one short line."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _short_repr() -> reprlib.Repr:
    short = reprlib.Repr()
    short.maxlevel, short.maxdict, short.maxlist, short.maxtuple = 3, 4, 4, 4
    short.maxstring, short.maxother, short.maxlong = _SHOWN_MAX, _SHOWN_MAX, _SHOWN_MAX
    return short


_REPR = _short_repr()


def shown(value: object) -> object:
    """The value as an error message should show it: scalars as they are, the rest shortened.

    The ``repr`` is bounded in depth and width, so a huge or alias-built value costs little.
    """
    if isinstance(value, int) and value.bit_length() > 256:
        return Shown(value_text(value))  # repr() of 4,300+ digits raises ValueError
    if isinstance(value, bool | int | float) or (
            isinstance(value, str) and len(value) <= _SHOWN_MAX):
        text = repr(value)
        if len(text) <= _SHOWN_MAX:
            return value
    try:
        text = _REPR.repr(value)
    except (RecursionError, ValueError):
        text = "<unprintable value>"
    if len(text) > _SHOWN_MAX:
        text = text[: _SHOWN_MAX - 3] + "..."
    return Shown(text)


def shown_text(text: str) -> str:
    """A string put into a message's text (not its value): cut to a short line."""
    return clip(text, _SHOWN_MAX)


def type_name(value: object) -> str:
    """``a string``, ``a list``, … for messages such as ``'80' is a string``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    names: list[tuple[type, str]] = [
        (str, "a string"), (int, "an integer"), (float, "a number"), (dict, "a mapping"),
        (list, "a list"), (bytes, "binary data"),
    ]
    for kind, name in names:
        if isinstance(value, kind):
            return name
    return f"a {type(value).__name__}"


@dataclass(slots=True)
class Ctx:
    """One document being read: where it came from, and the shared error and warning lists."""

    file: str
    source: Source
    errors: list[ScenarioError]
    warnings: list[str]

    def error(self, path: str, value: object, message: str, valid: str = "") -> None:
        self.errors.append(ScenarioError(
            message, file=self.file, document=self.source.document(), field=path,
            value=None if value is None else shown(value), valid=valid))

    def warn(self, message: str, *, with_kind: bool = True) -> None:
        src = self.source if with_kind else Source(self.file, self.source.index, "", "",
                                                   self.source.items)
        self.warnings.append(clip(f"{clip(self.file)}: {clip(src.document())}: {message}",
                                  3 * _SHOWN_MAX + 400))


def wrong_type(ctx: Ctx, path: str, value: object, valid: str) -> None:
    ctx.error(path, value, f"is {type_name(value)}", valid)


def as_str(ctx: Ctx, path: str, value: object, check: Check | None = None,
           valid: str = "a string") -> str | None:
    """``value`` if it is a string that passes ``check``; else record an error and give None."""
    if not isinstance(value, str):
        wrong_type(ctx, path, value, valid)
        return None
    if check is not None:
        problem = check(value)
        if problem is not None:
            ctx.error(path, value, problem[0], problem[1])
            return None
    return value


def range_text(lo: int | None, hi: int | None) -> str:
    if lo is not None and hi is not None:
        return f"an integer {lo}-{hi}"
    if lo is not None:
        return f"an integer >= {lo}"
    return "an integer"


def as_int(ctx: Ctx, path: str, value: object, lo: int | None = None,
           hi: int | None = None) -> int | None:
    """``value`` if it is an integer (not a boolean) within ``lo..hi``; else error and None."""
    valid = range_text(lo, hi)
    if isinstance(value, bool) or not isinstance(value, int):
        wrong_type(ctx, path, value, valid)
        return None
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        ctx.error(path, value, "is out of range", valid.removeprefix("an integer "))
        return None
    return value


def as_bool(ctx: Ctx, path: str, value: object) -> bool | None:
    if not isinstance(value, bool):
        wrong_type(ctx, path, value, "true or false")
        return None
    return value


def ipv4_problem(text: str) -> tuple[str, str] | None:
    """Why ``text`` is not an IPv4 address, or None when it is one."""
    try:
        IPv4Address(text)
    except AddressValueError:
        try:
            ip_address(text)
        except ValueError:
            return "is not an IP address", "an IPv4 address like 10.0.0.1"
        return "is an IPv6 address", "an IPv4 address (IPv6 is not modelled here)"
    return None


IP_VALID = "an IPv4 or IPv6 address like 10.0.0.1 or fd00::1"
CIDR_VALID = "an IPv4 or IPv6 network in CIDR notation like 10.244.0.0/16 or fd00:10:244::/56"


def ipv6_problem(text: str) -> tuple[str, str] | None:
    """Why ``text`` is not an IPv6 address (an IPv6 EndpointSlice's), or None when it is."""
    found = ip_of(text)
    if found is None:
        return "is not an IP address", "an IPv6 address like fd00:10:244::2"
    if found.version == 4:
        return "is an IPv4 address", "an IPv6 address (the slice's addressType is IPv6)"
    return None


def ip_of(text: str) -> IPv4Address | IPv6Address | None:
    """``text`` as an address of either family (None: not one; a scoped ``fe80::1%eth0``
    is not one either: no Kubernetes address field takes a zone)."""
    if "%" in text:
        return None
    try:
        return ip_address(text)
    except ValueError:
        return None


def network_of(text: str) -> IPv4Network | IPv6Network | tuple[str, str]:
    """``text`` as a network of either family, or ``(message, valid)`` saying why not."""
    if "/" not in text:
        return "is not in CIDR notation", CIDR_VALID
    try:
        return ip_network(text)
    except ValueError:
        try:
            loose = ip_network(text, strict=False)
        except ValueError:
            return "is not an IP network", CIDR_VALID
        return "has host bits set", str(loose)


def as_ipv4(ctx: Ctx, path: str, value: object) -> IPv4Address | None:
    text = as_str(ctx, path, value, ipv4_problem, "an IPv4 address like 10.0.0.1")
    return None if text is None else IPv4Address(text)


def network_problem(text: str, strict: bool = True) -> tuple[str, str] | None:
    """Why ``text`` is not an IPv4 network in CIDR notation, or None when it is one."""
    valid = "an IPv4 network in CIDR notation like 10.244.0.0/16"
    if "/" not in text:
        return "is not in CIDR notation", valid
    try:
        IPv4Network(text, strict=strict)
    except ValueError:
        try:
            loose = ip_network(text, strict=False)
        except ValueError:
            return "is not an IPv4 network", valid
        if loose.version == 6:
            return "is an IPv6 network", "an IPv4 network (IPv6 is not modelled here)"
        return "has host bits set", str(loose)
    return None


def as_network(ctx: Ctx, path: str, value: object, strict: bool = True) -> IPv4Network | None:
    def check(text: str) -> tuple[str, str] | None:
        return network_problem(text, strict)

    text = as_str(ctx, path, value, check, "an IPv4 network like 10.244.0.0/16")
    return None if text is None else IPv4Network(text, strict=strict)


class Obj:
    """A mapping of the document and the field path that leads to it."""

    __slots__ = ("ctx", "data", "path")

    def __init__(self, ctx: Ctx, path: str, data: Mapping[Any, Any]) -> None:
        self.ctx = ctx
        self.path = path
        self.data = data

    def at(self, key: str) -> str:
        """The path of child ``key``: ``spec`` + ``ports`` -> ``spec.ports``."""
        return f"{self.path}.{key}" if self.path else key

    def raw(self, key: str) -> Any:
        return self.data.get(key)

    def has(self, key: str) -> bool:
        """Whether ``key`` is set: present, not null and not ``""``."""
        value = self.data.get(key)
        return value is not None and not (isinstance(value, str) and value == "")

    def missing(self, key: str, valid: str = "") -> None:
        self.ctx.error(self.at(key), None, "is required", valid)

    def mapping(self, key: str, *, required: bool = False) -> Obj:
        """The child mapping (an empty one when absent or of the wrong type)."""
        value = self.data.get(key)
        if isinstance(value, dict):
            return Obj(self.ctx, self.at(key), value)
        if value is not None:
            wrong_type(self.ctx, self.at(key), value, "a mapping")
        elif required:
            self.missing(key, "a mapping")
        return Obj(self.ctx, self.at(key), {})

    def sequence(self, key: str, *, required: bool = False) -> list[tuple[str, Any]]:
        """The child list as ``(path, item)`` pairs (empty when absent or not a list)."""
        value = self.data.get(key)
        if isinstance(value, list):
            base = self.at(key)
            return [(f"{base}[{i}]", item) for i, item in enumerate(value)]
        if value is not None:
            wrong_type(self.ctx, self.at(key), value, "a list")
        elif required:
            self.missing(key, "a list")
        return []

    def mappings(self, key: str, *, required: bool = False) -> list[Obj]:
        """The child list of mappings; items of another type are reported and left out."""
        out: list[Obj] = []
        for path, item in self.sequence(key, required=required):
            if isinstance(item, dict):
                out.append(Obj(self.ctx, path, item))
            else:
                wrong_type(self.ctx, path, item, "a mapping")
        return out

    def strings(self, key: str, check: Check | None = None, valid: str = "a string") -> list[str]:
        """The child list of strings; items failing the type or ``check`` are reported."""
        out: list[str] = []
        for path, item in self.sequence(key):
            text = as_str(self.ctx, path, item, check, valid)
            if text is not None:
                out.append(text)
        return out

    def string(self, key: str, default: str = "", *, required: bool = False,
               check: Check | None = None, valid: str = "a string") -> str:
        """The child string; ``""`` counts as unset (as in Kubernetes) and skips ``check``."""
        value = self.data.get(key)
        if not self.has(key):
            if required:
                self.missing(key, valid)
            return default
        text = as_str(self.ctx, self.at(key), value, check, valid)
        return default if text is None else text

    def integer(self, key: str, default: int, lo: int | None = None,
                hi: int | None = None) -> int:
        found = self.optional_int(key, lo, hi)
        return default if found is None else found

    def optional_int(self, key: str, lo: int | None = None, hi: int | None = None, *,
                     required: bool = False) -> int | None:
        value = self.data.get(key)
        if value is None:
            if required:
                self.missing(key, range_text(lo, hi))
            return None
        return as_int(self.ctx, self.at(key), value, lo, hi)

    def boolean(self, key: str, default: bool) -> bool:
        value = self.data.get(key)
        if value is None:
            return default
        found = as_bool(self.ctx, self.at(key), value)
        return default if found is None else found

    def choice(self, key: str, choices: Sequence[str], default: str, *,
               fold: bool = False) -> str:
        """One of ``choices`` (compared case-insensitively when ``fold``), or ``default``."""
        value = self.data.get(key)
        if not self.has(key):
            return default
        text = as_str(self.ctx, self.at(key), value, valid=" | ".join(choices))
        if text is None:
            return default
        for choice in choices:
            if text == choice or (fold and text.lower() == choice.lower()):
                return choice
        self.ctx.error(self.at(key), text, "is not supported", " | ".join(choices))
        return default

    def ipv4(self, key: str) -> IPv4Address | None:
        value = self.data.get(key)
        return None if value is None else as_ipv4(self.ctx, self.at(key), value)

    def network(self, key: str, *, strict: bool = True) -> IPv4Network | None:
        value = self.data.get(key)
        return None if value is None else as_network(self.ctx, self.at(key), value, strict)

    def str_map(self, key: str, check_key: Check | None = None,
                check_value: Check | None = None) -> dict[str, str]:
        """A ``string -> string`` mapping such as labels or a selector."""
        out: dict[str, str] = {}
        child = self.mapping(key)
        for name, value in child.data.items():
            path = f"{child.path}[{name}]"
            if as_str(self.ctx, path, name, check_key, "a string key") is None:
                continue
            text = as_str(self.ctx, path, value, check_value,
                          'a string (quote numbers and booleans: "1", "true")')
            if text is not None:
                out[name] = text
        return out

    def unknown_keys(self, allowed: Sequence[str]) -> None:
        """Report keys outside ``allowed`` (for pktsim's own kinds, where a typo is a bug)."""
        for name in self.data:
            if name not in allowed:
                path = self.at(name) if isinstance(name, str) else self.path or "(document)"
                self.ctx.error(path, name if not isinstance(name, str) else None,
                               "is not a known field", ", ".join(allowed))
