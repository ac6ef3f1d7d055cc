"""The failure folder of a test: a file name of its own for every test id."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pktsim.pytest_plugin import folder_name


def test_ids_that_read_alike_get_folders_of_their_own() -> None:
    ids = ["t.py::test[a b]", "t.py::test[a_b]", "t.py::test[a/b]", "t.py::test[a:b]"]
    names = {folder_name(i) for i in ids}
    assert len(names) == len(ids)
    assert all(n.startswith("t.py_test_a_b") for n in names)


@given(st.text(min_size=1, max_size=400))
def test_a_folder_name_is_a_short_safe_file_name(nodeid: str) -> None:
    name = folder_name(nodeid)
    assert 9 < len(name) <= 120
    assert "/" not in name and not name.startswith(".")
    assert name == folder_name(nodeid)
