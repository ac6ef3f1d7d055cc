"""docs/scenario.md's tables against the tables the loader validates with.

tests/docs/test_scenario_reference.py checks that every field the loader accepts has a row;
this module checks the rest of what a row says, from the loader's own tables:

* every kind of ``pktsim.scenario.loader.KINDS`` is a row of section 2, with each API group
  it is read from (``""`` is the core group);
* every default of ``kind: Cluster`` in the field table is what the loader gives a
  Cluster without that field, and the "every default written out" example loads to exactly
  the configuration an empty Cluster gets;
* every default of a flow in the field table is what the loader gives a flow without it;
* every row of the Sources and Targets tables, its placeholders filled in, is accepted by
  the loader's syntax checks (``source_problem``, ``target_problem``), and each choice the
  loader offers (``network``, ``dns``, ``proxyMode``, a lookup's ``type``) is on the page.
"""

from __future__ import annotations

import dataclasses
import re

import pytest
import yaml

import pktsim
from pktsim.scenario import cluster as cluster_fields
from pktsim.scenario import traffic
from pktsim.scenario.loader import KINDS
from tests.docs.test_scenario_reference import section

CLUSTER = "apiVersion: pktsim/v1alpha1\nkind: Cluster\nspec: {%s}\n"
TRAFFIC = ("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: c}]}\n"
           "---\napiVersion: pktsim/v1alpha1\nkind: Traffic\nspec:\n  flows:\n  - {%s}\n")
ROW = re.compile(r"^\| `([^`|]+)` \| ([^|]*) \|", flags=re.M)
PLACEHOLDERS = {"NAMESPACE": "default", "POD": "client", "CONTAINER": "curl", "NAME": "node-1",
                "PORT": "80", "A.B.C.D": "10.244.0.3", "HOST": "web.shop", "PATH": "index.html"}


def rows(title: str) -> dict[str, str]:
    """``| `field` | default | ...`` rows of a section: field -> the default cell."""
    return {f: d.strip() for f, d in ROW.findall(section(title))}


def config(fields: str = "") -> dict[str, object]:
    cfg = pktsim.load(CLUSTER % fields).scenario.config
    return {k: v for k, v in dataclasses.asdict(cfg).items() if k != "source"}


def test_every_kind_is_a_row_with_its_groups() -> None:
    table = section("2. Kubernetes objects")
    lines = {line for line in table.splitlines() if line.startswith("| `")}
    missing = []
    for name, kind in KINDS.items():
        line = next((ln for ln in lines if f"`{name}`" in ln.split("|")[1]), None)
        if line is None:
            missing.append(name)
            continue
        groups = line.split("|")[2]
        for group in kind.groups:
            if (group == "" and "core" not in groups) or (group and f"`{group}`" not in groups):
                missing.append(f"{name} group {group or 'core'}")
    assert missing == []


def test_the_written_out_defaults_are_the_defaults() -> None:
    blocks = re.findall(r"^```yaml\n(.*?)^```$", section("3. `kind: Cluster`"), re.M | re.S)
    written = next(b for b in blocks if "name: defaults" in b)
    spec = yaml.safe_load(written)["spec"]
    # ``calico`` is read only with ``network: calico`` (written here it is warned about as
    # having no effect); its defaults are in the field table, checked field by field below
    assert sorted(spec) == sorted(f for f in cluster_fields.FIELDS if f != "calico")
    loaded = pktsim.load(written).scenario.config
    assert {k: v for k, v in dataclasses.asdict(loaded).items() if k != "source"} == config()


@pytest.mark.parametrize("field", cluster_fields.FIELDS)
def test_each_cluster_default_in_the_table_is_the_loaders(field: str) -> None:
    """The table's default, written as the field's value, changes nothing."""
    default = rows("3. `kind: Cluster`")[field]
    value = re.fullmatch(r"`(.*)`", default)
    assert value is not None, f"{field}: default {default!r} is not one `value`"
    text = value.group(1)
    written = f'"{text}"' if field == "startTime" else text
    assert config(f"{field}: {written}") == config(), f"{field}: {text} is not the default"


def test_each_flow_default_in_the_table_is_the_loaders() -> None:
    table = rows("4. `kind: Traffic`")
    base = pktsim.load(TRAFFIC % "from: default/a, to: 'b:80'").flows[0]
    assert table["name"] == "`flow-<n>`" and base.name == "flow-1"
    assert table["protocol"] == f"`{base.protocol}`"
    assert table["count"] == f"`{base.count}`"
    assert table["start"] == f"`{base.start_ns}`"
    assert table["ttl"] == "`64`" and base.ttl is None  # None: the kernel's default, 64
    looked = pktsim.load(TRAFFIC % "from: default/a, lookup: web").flows[0]
    assert table["type"] == f"`{looked.qtype}`"
    assert "`udp` (default)" in section("4. `kind: Traffic`") and looked.protocol == "udp"


def filled(form: str) -> list[str]:
    """The examples a table's form stands for: ``external[:NAME]`` is two of them."""
    forms = [form]
    if "[" in form:
        inner = re.search(r"\[([^\]]*)\]", form)
        assert inner is not None
        forms = [form.replace(inner.group(0), ""), form.replace(inner.group(0), inner.group(1))]
    out = []
    for f in forms:
        for key in sorted(PLACEHOLDERS, key=len, reverse=True):
            f = f.replace(key, PLACEHOLDERS[key])
        out.append(f)
    return out


def test_every_source_form_is_accepted() -> None:
    forms = [f for f in rows("Sources") if f != "from"]  # not the header
    assert len(forms) >= 4
    rejected = [s for f in forms for s in filled(f) if traffic.source_problem(s) is not None]
    assert rejected == []


def test_every_target_form_is_accepted() -> None:
    lines = [ln for ln in section("Targets").splitlines()
             if ln.startswith("| `") and not ln.startswith("| `to` |")]  # not the header
    forms = [f for ln in lines for f in re.findall(r"`([^`]+)`", ln.split("|")[1])]
    assert len(forms) >= 7
    rejected = [s for f in forms for s in filled(f) if traffic.target_problem(s) is not None]
    assert rejected == []


def test_every_choice_the_loader_offers_is_on_the_page() -> None:
    cluster = section("3. `kind: Cluster`")
    for choice in ("routes", "vxlan", "ipip", "coredns", "none", "iptables"):
        assert f"`{choice}`" in cluster
    flows = section("4. `kind: Traffic`")
    assert [q for q in traffic.QTYPES if f"`{q}`" not in flows] == []
