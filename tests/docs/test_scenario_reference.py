"""docs/scenario.md against the code, so the reference cannot fall behind it.

* every ```yaml block of the page is a complete scenario: it loads with ``pktsim.load``,
  ``pktsim check`` accepts it (exit 0, no warning), and its flows start and run (a flow from a
  pod that does not exist is only found then);
* every subcommand of ``pktsim --help`` has a section, and every option and choice of
  ``pktsim <command> --help`` is named in that command's section;
* every field the loader accepts in ``kind: Cluster`` and in a flow (the list its "is not a
  known field" error gives) is a row of the page's tables;
* every file of an output folder, every top-level key of ``trace.jsonl`` and every event seen
  in a run is named on the page;
* the ```python example runs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import pktsim
from pktsim import cli

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "scenario.md"
TEXT = DOC.read_text(encoding="utf-8")
BLOCKS = re.findall(r"^```yaml\n(.*?)^```$", TEXT, flags=re.M | re.S)
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z-]*")
CHOICES = re.compile(r"\{([\w.-]+(?:,[\w.-]+)+)\}")


def section(title: str) -> str:
    """The text under the heading ``title`` (any level), up to the next heading of its level
    or above; lines inside code fences (YAML comments start with ``#`` too) are no headings."""
    found: list[str] | None = None
    level = 0
    fenced = False
    for line in TEXT.splitlines(keepends=True):
        if line.startswith("```"):
            fenced = not fenced
        heading = None if fenced else re.match(r"(#+) (.*)$", line.rstrip("\n"))
        if found is None:
            if heading is not None and heading.group(2) == title:
                found, level = [], len(heading.group(1))
            continue
        if heading is not None and len(heading.group(1)) <= level:
            break
        found.append(line)
    assert found is not None, f"docs/scenario.md has no section {title!r}"
    return "".join(found)


def help_text(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    with pytest.raises(SystemExit) as done:
        cli.main([*args, "--help"])
    assert done.value.code == 0
    return capsys.readouterr().out


def commands(capsys: pytest.CaptureFixture[str]) -> list[str]:
    found = CHOICES.search(help_text(capsys))
    assert found is not None, "pktsim --help lists no subcommands"
    return found.group(1).split(",")


def allowed_fields(text: str) -> list[str]:
    """The fields the loader accepts where ``text`` puts an unknown one (from its error)."""
    with pytest.raises(pktsim.ScenarioError) as bad:
        pktsim.load(text)
    assert bad.value.message == "is not a known field", bad.value.line()
    return bad.value.valid.split(", ")


def test_the_page_has_examples() -> None:
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_yaml_example_loads_checks_and_runs(index: int, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    text = BLOCKS[index]
    cluster = pktsim.load(text)
    assert not cluster.scenario.warnings, cluster.scenario.warnings
    path = tmp_path / f"example-{index + 1}.yaml"
    path.write_text(text, encoding="utf-8")
    assert cli.main(["check", str(path)]) == 0
    shown = capsys.readouterr()
    assert shown.out.startswith("cluster: "), shown.out
    assert shown.err == ""
    if cluster.flows:
        result = cluster.run()
        assert [f.flow for f in result.flows] == [f.name for f in cluster.flows]


def test_every_subcommand_has_a_section(capsys: pytest.CaptureFixture[str]) -> None:
    names = commands(capsys)
    assert names
    for name in names:
        section(f"`pktsim {name}`")


def test_every_option_and_choice_is_documented(capsys: pytest.CaptureFixture[str]) -> None:
    missing = []
    for name in commands(capsys):
        shown = help_text(capsys, name)
        text = section(f"`pktsim {name}`")
        options = set(OPTION.findall(shown)) - {"--help"}
        choices = {c for group in CHOICES.findall(shown) for c in group.split(",")}
        missing += [f"pktsim {name} {o}" for o in sorted(options) if f"`{o}" not in text]
        missing += [f"pktsim {name} choice {c}" for c in sorted(choices) if c not in text]
    assert not missing, f"not in docs/scenario.md: {missing}"


def test_every_cluster_field_is_documented() -> None:
    fields = allowed_fields("apiVersion: pktsim/v1alpha1\nkind: Cluster\nspec: {zzz: 1}\n")
    table = section("3. `kind: Cluster`")
    assert len(fields) > 5
    assert [f for f in fields if f"| `{f}` |" not in table] == []


def test_every_flow_field_is_documented() -> None:
    fields = allowed_fields("apiVersion: pktsim/v1alpha1\nkind: Traffic\nspec:\n  flows:\n"
                            "  - {from: default/a, to: 'b:80', zzz: 1}\n")
    table = section("4. `kind: Traffic`")
    assert len(fields) > 5
    assert [f for f in fields if f"| `{f}` |" not in table] == []


def test_the_output_folder_is_documented(tmp_path: Path) -> None:
    out = tmp_path / "out"
    pktsim.load(BLOCKS[0]).run(out)
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    shown = set()
    for name in files:
        parts = name.split("/")
        if parts[0] == "nodes":
            shown.add(f"nodes/NODE/{parts[2]}")
        elif parts[0] == "pcap":
            shown.add("pcap/HOST_IFNAME.pcap")
        else:
            shown.add(name)
    folder = section("7. Output folder")
    assert [s for s in sorted(shown) if f"`{s}`" not in folder] == []

    events = [json.loads(line) for line in
              (out / "trace.jsonl").read_text(encoding="utf-8").splitlines()]
    keys = {k for e in events for k in e}
    kinds = {e["event"] for e in events}
    assert {"t", "flow", "packet", "host", "iface", "event", "summary", "frame"} <= keys
    assert [k for k in sorted(keys) if f"`{k}`" not in folder] == []
    assert [k for k in sorted(kinds) if f"`{k}`" not in folder] == []


def test_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    """The ```python block of section 8, in a folder holding the first example as hello.yaml."""
    blocks = re.findall(r"^```python\n(.*?)^```$", section("8. From Python"), flags=re.M | re.S)
    assert len(blocks) == 1
    monkeypatch.chdir(tmp_path)
    (tmp_path / "hello.yaml").write_text(BLOCKS[0], encoding="utf-8")
    exec(compile(blocks[0], "docs/scenario.md", "exec"), {})
    assert "curl-web: http to http://web.shop/: ok" in capsys.readouterr().out
    assert (tmp_path / "out" / "capture.pcapng").is_file()
    assert (tmp_path / "demo-vxlan" / "trace.jsonl").is_file()
