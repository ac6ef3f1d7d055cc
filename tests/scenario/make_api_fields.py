"""Regenerate ``pktsim/data/api-fields.json``: the fields Kubernetes defines for each kind read.

The source is the Kubernetes OpenAPI document as the official Python client is generated
from it (``kubernetes`` 37.0.2 on PyPI, "The version of the OpenAPI document: release-1.37"):
each model class lists its JSON field names in ``__properties`` and types them in its
annotations.  The classes are parsed as text (``ast``), never imported, so the client's
dependencies are not needed::

    pip install --no-deps --target /tmp/k8s kubernetes==37.0.2
    python tests/scenario/make_api_fields.py /tmp/k8s/kubernetes/client/models

A type is written ``""`` (a scalar), ``"*"`` (free-form JSON), ``"Name"`` (an object),
``"[T]"`` (a list of T) or ``"{T}"`` (a map from string to T).
"""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

ROOTS = {
    "Pod": "V1Pod", "Deployment": "V1Deployment", "ReplicaSet": "V1ReplicaSet",
    "StatefulSet": "V1StatefulSet", "DaemonSet": "V1DaemonSet", "Service": "V1Service",
    "EndpointSlice": "V1EndpointSlice", "NetworkPolicy": "V1NetworkPolicy",
    "Namespace": "V1Namespace", "Node": "V1Node",
}
# discovery.k8s.io/v1beta1 (still in snapshots of older clusters): ``topology`` became
# ``deprecatedTopology`` in v1 (kubernetes api/discovery/v1beta1/types.go, Endpoint)
EXTRA = {"V1Endpoint": {"topology": "{}"}}
SCALARS = {"StrictStr", "StrictInt", "StrictBool", "StrictFloat", "datetime", "bytearray",
           "StrictBytes"}
OUT = Path(__file__).resolve().parents[2] / "pktsim" / "data" / "api-fields.json"


def _classes(models: Path) -> dict[str, dict[str, str]]:
    """Every model class: JSON field name -> annotation text."""
    out: dict[str, dict[str, str]] = {}
    for path in sorted(models.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                out[node.name] = _fields(node)
    return out


def _fields(cls: ast.ClassDef) -> dict[str, str]:
    props: list[str] = []
    annotations: dict[str, str] = {}
    for stmt in cls.body:
        if not isinstance(stmt, ast.AnnAssign) or not isinstance(stmt.target, ast.Name):
            continue
        name = stmt.target.id
        if name == "__properties" and isinstance(stmt.value, ast.List):
            props = [e.value for e in stmt.value.elts if isinstance(e, ast.Constant)]
            continue
        alias = name
        if isinstance(stmt.value, ast.Call):  # serialization_alias is the JSON name
            names = {kw.arg: kw.value.value for kw in stmt.value.keywords
                     if isinstance(kw.value, ast.Constant)}
            alias = names.get("serialization_alias", names.get("alias", name))
        annotations[alias] = ast.unparse(stmt.annotation)
    return {p: annotations.get(p, "Any") for p in props}


def _type(text: str, known: set[str]) -> str:
    text = text.strip()
    match = re.fullmatch(r"Optional\[(.*)\]", text)
    if match:
        return _type(match.group(1), known)
    match = re.fullmatch(r"List\[(.*)\]", text)
    if match:
        return f"[{_type(match.group(1), known)}]"
    match = re.fullmatch(r"Dict\[str, (.*)\]", text)
    if match:
        return "{" + _type(match.group(1), known) + "}"
    if text in known:
        return text
    parts = {p.strip() for p in re.split(r"[|,\[\]]", text.removeprefix("Union")) if p.strip()}
    return "" if parts and parts <= SCALARS else "*"


def build(models: Path) -> dict[str, object]:
    classes = _classes(models)
    known = set(classes)
    types: dict[str, dict[str, str]] = {}
    todo = list(ROOTS.values())
    while todo:
        name = todo.pop()
        if name in types:
            continue
        fields = {k: _type(v, known) for k, v in classes[name].items()}
        fields.update(EXTRA.get(name, {}))
        types[name] = fields
        todo += [t.strip("[]{}") for t in fields.values() if t.strip("[]{}") in known]
    return {"source": "kubernetes OpenAPI release-1.37, as the kubernetes 37.0.2 Python "
                      "client models it (tests/scenario/make_api_fields.py)",
            "kinds": ROOTS, "types": dict(sorted(types.items()))}


if __name__ == "__main__":
    OUT.write_text(json.dumps(build(Path(sys.argv[1])), indent=0, sort_keys=False) + "\n")
    print(f"wrote {OUT}")
