"""``metadata`` of every object: name, namespace, labels and the controlling owner."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pktsim.scenario.fields import Check, Obj
from pktsim.scenario.syntax import dns_label, label_key, label_value

DEFAULT_NAMESPACE = "default"


@dataclass(slots=True)
class Meta:
    name: str
    namespace: str  # "" for cluster-scoped kinds
    labels: dict[str, str]
    owner: tuple[str, str] | None  # the controller ownerReference: (kind, name)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


def read_meta(doc: Obj, name_check: Check | None, *, namespaced: bool,
              name_required: bool = True) -> Meta | None:
    """The object's metadata; None when the name is missing (already reported)."""
    meta = doc.mapping("metadata")
    name = meta.string("name", required=name_required)
    problem = name_check(name) if name and name_check is not None else None
    if problem is not None:  # reported, but the rest of the object is still checked
        doc.ctx.error(meta.at("name"), name, *problem)
    namespace = ""
    if namespaced:
        namespace = meta.string("namespace", DEFAULT_NAMESPACE, check=dns_label) or \
            DEFAULT_NAMESPACE
    labels = meta.str_map("labels", label_key, label_value)
    if not name and name_required:
        return None
    return Meta(name, namespace, labels, controller_of(meta.raw("ownerReferences")))


def peek_key(doc: Obj, namespaced: bool) -> str:
    """``ns/name`` (or ``name``) as far as the document gives them, before any validation."""
    meta = doc.raw("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
        return ""
    namespace = meta.get("namespace") or DEFAULT_NAMESPACE
    if not namespaced:
        return str(meta["name"])
    return f"{namespace}/{meta['name']}" if isinstance(namespace, str) else ""


def controller_of(refs: Any) -> tuple[str, str] | None:
    """The ``controller: true`` owner reference, read leniently (a running cluster's field)."""
    if not isinstance(refs, list):
        return None
    for ref in refs:
        if not isinstance(ref, dict) or ref.get("controller") is not True:
            continue
        kind, name = ref.get("kind"), ref.get("name")
        if isinstance(kind, str) and isinstance(name, str):
            return kind, name
    return None
