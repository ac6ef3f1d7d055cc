"""pktsim.render: each text form made once, and the forms that share rows agree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import pktsim
from pktsim.render import explain, jsonl, node_dumps, trace_lines
from pktsim.render.lines import JsonLines


@pytest.fixture(scope="module")
def result() -> pktsim.Result:
    return pktsim.demo_cluster("vxlan").run()


def test_jsonl_line_is_json_dumps(result: pktsim.Result) -> None:
    writer = JsonLines()
    for e in result.events:
        want = json.dumps(e.to_json_dict(), separators=(",", ":")) + "\n"
        assert writer.line(e) == want
        assert writer.line(e) == want  # the cached names and shared details, again
    assert jsonl(result.events) == "".join(
        json.dumps(e.to_json_dict(), separators=(",", ":")) + "\n" for e in result.events)


def test_written_files_are_the_render_forms(result: pktsim.Result, tmp_path: Path) -> None:
    out = result.write(tmp_path / "o")
    assert (out / "trace.txt").read_text() == result.trace_lines() == trace_lines(result.events)
    assert result.trace_text() == result.trace_lines()
    assert (out / "trace.jsonl").read_text() == jsonl(result.events)
    for rel, text in node_dumps(result.topology, result.topology.driver.now).items():
        assert (out / rel).read_text() == text


def test_explain_is_not_trace_txt(result: pktsim.Result) -> None:
    text = result.explain()
    assert text == explain(result)
    assert text.startswith("== ") and "packet " in text
    assert text != result.trace_lines()


def test_tables_and_dumps_share_rows(result: pktsim.Result) -> None:
    topo, now = result.topology, result.topology.driver.now
    dumps = node_dumps(topo, now)
    for node in topo.node_ns:
        tables = result.tables(node)
        lines = {k: dumps[f"nodes/{node}/{k}.txt"].splitlines()
                 for k in ("ip-route", "ip-neigh", "bridge-fdb", "conntrack")}
        assert len(tables.routes) == len(lines["ip-route"])
        assert len(tables.neighbours) == len(lines["ip-neigh"])
        # the dump adds what only `bridge fdb show` lists: each device's multicast addresses
        # (self permanent) and each bridge port's own address (master … permanent)
        extra = [ln for ln in lines["bridge-fdb"]
                 if (" self permanent" in ln and " dst " not in ln)
                 or (ln.endswith("permanent") and ln.split()[2].startswith("veth"))]
        lines["bridge-fdb"] = [ln for ln in lines["bridge-fdb"] if ln not in extra]
        assert len(tables.fdb) == len(lines["bridge-fdb"])
        assert len(tables.conntrack) == len(lines["conntrack"])
        for row, line in zip(tables.neighbours.rows, lines["ip-neigh"], strict=True):
            assert line.startswith(f"{row[0]} dev {row[1]}")
        for row in tables.fdb.rows:
            assert any(ln.startswith(f"{row[0]} dev {row[1]}") for ln in lines["bridge-fdb"])
