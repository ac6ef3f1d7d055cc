"""The repository stands on its own: it cites no document it does not contain.

Every tracked file (``git ls-files``, this test excepted, binary files skipped) is searched for

* the names of the team's design notes kept outside the repository (``OUTSIDE_NAMES``: the
  scenario, architecture and performance notes, the facts list, their folder) and the
  numbering of that facts list: a citation names the primary source instead (a kernel,
  kube-proxy, CoreDNS, CNI plugin or glibc file and function, an RFC, a man page) or a page of
  ``docs/``;
* ``docs/NAME.md`` paths: each must exist.

The names are assembled from parts, so that this file, which forbids them, does not itself
read as citing them.
"""

from __future__ import annotations

import functools
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SELF = Path(__file__).resolve().relative_to(ROOT).as_posix()
OUTSIDE_NAMES = (*(f"{stem}.md" for stem in ("SCENARIO", "ARCHITECTURE", "PERFORMANCE")),
                 "K8S" + "-FACTS", "design" + "/")
OUTSIDE = re.compile("|".join(re.escape(name) for name in OUTSIDE_NAMES))
FACT_NUMBER = re.compile(r"\bfacts? \d", re.IGNORECASE)
# A docs/ page of this repository; not a docs/ folder inside some other path
# (``kubernetes/website/content/en/docs/...``, ``kubernetes/dns/docs/specification.md``).
DOC_PATH = re.compile(r"(?<![\w/.-])docs/[\w./-]*?\.md\b")


@functools.cache
def tracked_texts() -> dict[str, str]:
    """``{path: text}`` of every tracked text file but this one."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                                check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    out = {}
    for name in listed.decode().split("\0"):
        path = ROOT / name
        if not name or name == SELF or not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" in data:  # pcap, pcapng, png: no citations there
            continue
        out[name] = data.decode("utf-8", errors="replace")
    return out


def hits(pattern: re.Pattern[str]) -> list[str]:
    found = []
    for name, text in sorted(tracked_texts().items()):
        for number, line in enumerate(text.splitlines(), start=1):
            for match in pattern.finditer(line):
                found.append(f"{name}:{number}: {match.group(0)!r} in {line.strip()[:100]!r}")
    return found


def test_tracked_files_are_read() -> None:
    texts = tracked_texts()
    assert "README.md" in texts and "docs/scenario.md" in texts


def test_no_outside_design_document_is_cited() -> None:
    assert hits(OUTSIDE) == []


def test_no_outside_fact_number_is_cited() -> None:
    assert hits(FACT_NUMBER) == []


def test_every_cited_docs_page_exists() -> None:
    missing = []
    for name, text in sorted(tracked_texts().items()):
        for match in DOC_PATH.finditer(text):
            page = match.group(0)
            if not (ROOT / page).is_file():
                missing.append(f"{name}: {page}")
    assert missing == []
