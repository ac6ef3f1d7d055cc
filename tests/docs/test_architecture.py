"""docs/architecture.md's layer table is the import graph of pktsim/: every import that runs
goes to a layer the table allows.  Imports under ``if TYPE_CHECKING:`` only name types for
annotations and are left out, as the page says."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "pktsim"
FRONT_ENDS = {"display", "invariants", "strategies", "cli", "interrupts", "pytest_plugin",
              "__init__", "__main__"}


def layer_of(module: str) -> str:
    """``pktsim.devices.l4`` -> ``devices``; ``pktsim.api`` -> ``api``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def allowed() -> dict[str, set[str]]:
    """The table of docs/architecture.md: layer -> the layers it may import."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    table: dict[str, set[str]] = {}
    for row in re.findall(r"^\| (\w[\w ]*) \| (.+?) \| .+? \| (.+?) \|$", text, re.M):
        layer, folders, may = row
        names = {Path(f.strip("`/")).stem for f in re.findall(r"`([\w./]+)`", folders)}
        targets = {"*"} if may.strip() in ("everything", "every layer above") else \
            {m.strip() for m in may.replace("nothing of pktsim", "").split(",") if m.strip()}
        for name in names or {layer}:
            table[name] = targets
    return table


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node of ``tree`` but those inside ``if TYPE_CHECKING:`` blocks."""
    out: list[ast.AST] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        out.append(node)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                todo.extend(child.orelse)
                continue
            todo.append(child)
    return out


def imports() -> dict[tuple[str, str], list[str]]:
    """(importing layer, imported layer) -> the files with that edge."""
    edges: dict[tuple[str, str], list[str]] = {}
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        me = layer_of(".".join(rel.parts))
        for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
            names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else \
                [a.name for a in node.names] if isinstance(node, ast.Import) else []
            for name in names:
                if name.startswith("pktsim.") and layer_of(name) != me:
                    edges.setdefault((me, layer_of(name)), []).append(str(rel))
    return edges


def test_the_table_names_every_layer() -> None:
    table = allowed()
    layers = {p.stem for p in PKG.iterdir() if (p.is_dir() and (p / "__init__.py").exists())
              or p.suffix == ".py"} - FRONT_ENDS
    assert layers <= set(table), f"layers missing from docs/architecture.md: {layers - set(table)}"


def test_every_import_goes_down_the_table() -> None:
    table = allowed()
    bad = [f"{a} -> {b} ({', '.join(sorted(set(files)))})"
           for (a, b), files in sorted(imports().items())
           if a not in FRONT_ENDS and "*" not in table.get(a, set())
           and b not in table.get(a, set())]
    assert not bad, "imports the layer table does not allow:\n" + "\n".join(bad)


def test_devices_and_driver_do_not_import_each_other() -> None:
    edges = imports()
    assert ("devices", "driver") not in edges and ("driver", "devices") not in edges
