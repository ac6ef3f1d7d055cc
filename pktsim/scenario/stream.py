"""From YAML text to the list of object documents it holds.

A file is a YAML stream (``---``-separated).  Empty documents are skipped but still counted, so
``document N`` is the N-th ``---`` section as the user sees it.  ``kind: List`` documents (what
``kubectl get -o yaml`` prints) and typed lists such as ``PodList`` (what the API returns) are
flattened, nested ones too; an item of a typed list that omits ``kind``/``apiVersion`` takes them
from the list (``PodList`` -> ``Pod``).

The YAML is read with the safe loader, minus two YAML 1.1 resolvers that Kubernetes' JSON
model does not have: timestamps stay strings (``startTime: 2026-01-01T00:00:00Z`` is parsed by
pktsim, with nanoseconds) and ``=`` is an ordinary string.  A file that is one JSON value
(``kubectl get -o json``) is read with the much faster JSON parser.

A key given twice in one mapping is an error: YAML 1.2 requires unique keys (§3.2.1.1), and
the API server's strict decoding rejects a duplicate field (apimachinery
``pkg/runtime/serializer/json`` ``strictCaseSensitiveJSONIterator``/sigs.k8s.io/yaml
``UnmarshalStrict``), where PyYAML and ``json`` would let the last one win in silence.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import yaml

from pktsim.errors import ScenarioError
from pktsim.model.objects import Source
from pktsim.scenario.fields import Ctx, shown_text, wrong_type

_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DROPPED_TAGS = ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:value")
_MAX_LIST_DEPTH = 8
# YAML aliases share one object many times: ``a: &a [x, x]``, ``b: &b [*a, *a]``, … is a
# "billion laughs" a few hundred bytes long.  A document whose values, aliases expanded,
# outnumber the characters of its file (or this floor) is refused before anything walks
# it: aliases may save typing, not multiply the work.  Counted only in files with anchors.
MIN_EXPANDED_VALUES = 100_000
# What a YAML tag cannot hold raises a plain Python exception from PyYAML's constructor
# (``!!bool maybe``: KeyError; ``!!float ''``: IndexError; ``!!float x``, an integer over
# Python's 4,300-digit limit: ValueError; ``!!binary`` of bad base64: yaml's own error).
_CONSTRUCT_ERRORS = (ValueError, LookupError, TypeError, OverflowError, AttributeError)


_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Loader(_BaseLoader):
    yaml_implicit_resolvers: ClassVar[dict[str, list[tuple[str, Any]]]] = {
        first: [(tag, rx) for tag, rx in resolvers if tag not in _DROPPED_TAGS]
        for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
    }

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[tuple[str, int, int]] = []  # (key, first line, line again)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        """Note every scalar key given twice (merge keys ``<<`` may override, as YAML says)."""
        if isinstance(node, yaml.MappingNode):
            first: dict[tuple[str, str], int] = {}
            for key, _ in node.value:
                if not isinstance(key, yaml.ScalarNode) or key.tag == _MERGE_TAG:
                    continue
                line = key.start_mark.line + 1
                if (key.tag, key.value) in first:
                    self.duplicates.append((key.value, first[key.tag, key.value], line))
                first.setdefault((key.tag, key.value), line)
        return super().construct_mapping(node, deep)


def _load_all(text: str) -> Iterator[tuple[Any, list[tuple[str, int, int]]]]:
    """Each document of the stream with the keys it repeats."""
    loader = _Loader(text)
    try:
        while loader.check_data():
            body = loader.get_data()
            found, loader.duplicates = loader.duplicates, []
            yield body, found
    finally:
        loader.dispose()


def _report_duplicates(ctx: Ctx, found: list[tuple[str, int, int]]) -> None:
    for key, first, again in found:
        where = f"at line {first} and again at line {again}" if first else "twice in an object"
        ctx.error(key, None, f"is given {where}: YAML requires unique keys (the last one "
                  "would win in silence)", "each key once per mapping")


@dataclass(slots=True)
class Document:
    """One object of the stream: its body and where it was found."""

    file: str
    index: int
    items: tuple[int, ...]
    body: dict[Any, Any]

    def source(self, kind: str = "", name: str = "") -> Source:
        return Source(self.file, self.index, kind, name, self.items)


def yaml_error(file: str, exc: Exception) -> ScenarioError:
    """A YAML syntax problem as a ScenarioError naming the file, line and column."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f"line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
    if isinstance(exc, yaml.reader.ReaderError):
        where = f"character {exc.position + 1}"
    if isinstance(exc, RecursionError):
        problem = "the YAML is nested too deeply"
    elif isinstance(exc, yaml.MarkedYAMLError):
        problem = ": ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
    else:
        problem = getattr(exc, "reason", "") or str(exc).partition("\n")[0] or "invalid YAML"
    return ScenarioError(f"YAML syntax error: {problem}", file=file, document=where)


def read_stream(file: str, text: str, errors: list[ScenarioError],
                warnings: list[str]) -> Iterator[Document]:
    """The object documents of one file, lazily; problems go to ``errors`` and ``warnings``."""
    json_dups: list[str] = []
    as_json = _json_document(text, json_dups)
    if as_json is not None:
        ctx = Ctx(file, Source(file, 1), errors, warnings)
        _report_duplicates(ctx, [(key, 0, 0) for key in json_dups])
        yield from _flatten(ctx, Document(file, 1, (), {}), as_json)
        return
    index = 0
    has_anchors = "&" in text and "*" in text  # an alias needs both: &name, *name
    limit = max(MIN_EXPANDED_VALUES, len(text))
    stream = _load_all(text)
    while True:
        try:
            body, duplicates = next(stream)
        except StopIteration:
            return
        except (yaml.YAMLError, RecursionError) as exc:
            errors.append(yaml_error(file, exc))
            return
        except _CONSTRUCT_ERRORS as exc:
            errors.append(_value_error(file, index + 1, exc))
            return
        index += 1
        if body is None:
            continue
        ctx = Ctx(file, Source(file, index), errors, warnings)
        if has_anchors and expanded_size(body, limit) > limit:
            ctx.error("", None, f"expands through YAML aliases to more than {limit:,} "
                      "values", "aliases that do not multiply the document (no alias bomb)")
            continue
        _report_duplicates(ctx, duplicates)
        yield from _flatten(ctx, Document(file, index, (), {}), body)


def _value_error(file: str, index: int, exc: Exception) -> ScenarioError:
    """A tagged value its tag cannot hold, e.g. ``!!bool maybe``: named by its document
    (PyYAML's constructor says neither line nor column)."""
    reason = str(exc).partition(";")[0] or type(exc).__name__
    if "integer string conversion" in reason:
        reason = "an integer of more than 4,300 digits"
    if isinstance(exc, KeyError):
        reason = f"{exc.args[0]!r} is not a value of its YAML tag" if exc.args else reason
    return ScenarioError(f"YAML value error: {shown_text(reason)}", file=file,
                         document=f"document {index}",
                         valid="a value its tag can hold (!!bool true, !!float 1.5, ...)")


def expanded_size(body: Any, limit: int) -> int:
    """How many values ``body`` holds with every alias expanded, counting up to ``limit``.

    Each shared object is sized once (by ``id``), so this costs the number of distinct
    objects however large the expansion; a cycle (``&a [*a]``) counts as ``limit + 1``."""
    if not isinstance(body, dict | list):
        return 1
    sizes: dict[int, int] = {}
    open_ids: set[int] = set()
    stack: list[Any] = [body]
    while stack:
        node = stack[-1]
        children = [c for c in (node.values() if isinstance(node, dict) else node)
                    if isinstance(c, dict | list)]
        if id(node) not in open_ids:
            open_ids.add(id(node))
            if any(id(c) in open_ids and id(c) not in sizes for c in children):
                return limit + 1  # a child that is its own ancestor: endless expansion
            stack.extend(c for c in children if id(c) not in sizes)
            continue
        stack.pop()
        if id(node) not in sizes:
            total = len(node) + 1 - len(children) + sum(sizes[id(c)] for c in children)
            sizes[id(node)] = min(total, limit + 1)
    return sizes[id(body)]


def _json_document(text: str, duplicates: list[str]) -> Any:
    """The document when ``text`` is one JSON value (``kubectl -o json``): parsed ~10x faster
    than as YAML.  None otherwise, and YAML (a superset) reads it and reports any error.
    Keys repeated in an object are added to ``duplicates``."""
    if text.lstrip()[:1] not in ("{", "["):
        return None

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out = dict(pairs)
        if len(out) != len(pairs):
            seen: set[str] = set()
            for key, _ in pairs:
                if key in seen:
                    duplicates.append(key)
                seen.add(key)
        return out

    try:
        return json.loads(text, object_pairs_hook=unique)
    except (ValueError, RecursionError):
        return None


def _flatten(ctx: Ctx, where: Document, body: Any) -> Iterator[Document]:
    if not isinstance(body, dict):
        what = "a mapping with apiVersion and kind (several objects: kind: List with items)"
        wrong_type(ctx, "", body, what)
        return
    if not _is_list(body):
        yield Document(where.file, where.index, where.items, body)
        return
    kind: str = body["kind"]
    items = body.get("items")
    if len(where.items) >= _MAX_LIST_DEPTH:
        ctx.error("items", None, "nests Lists too deeply",
                  f"at most {_MAX_LIST_DEPTH} levels")
        return
    if items is None:
        return
    if not isinstance(items, list):
        wrong_type(ctx, "items", items, "a list of objects")
        return
    for i, item in enumerate(items):
        if item is None:
            continue
        if isinstance(item, dict) and kind != "List" and "kind" not in item:
            item = {"kind": kind.removesuffix("List"), "apiVersion": body.get("apiVersion"),
                    **item}
        at = (*where.items, i)
        if isinstance(item, dict) and not _is_list(item):  # an object: nothing to report
            yield Document(where.file, where.index, at, item)  # (160,000 of them, at scale)
            continue
        item_doc = Document(where.file, where.index, at, {})
        item_ctx = Ctx(ctx.file, item_doc.source(), ctx.errors, ctx.warnings)
        yield from _flatten(item_ctx, item_doc, item)


def _is_list(body: dict[Any, Any]) -> bool:
    """``kind: List`` or a typed list such as ``PodList``, with its ``items``."""
    kind = body.get("kind")
    return isinstance(kind, str) and kind.endswith("List") and "items" in body
