"""Probe -> trace -> deciding policy through the real netfilter engine, before felix exists:
a hand-written stand-in of felix's filter chains (the shape of ``rules/endpoints.go``: a
workload chain jumping to a policy chain that sets the accept mark, and the end-of-tier
DROP) is restored on the node, and the matrix must name the policies as a run with felix
will.  When felix lands, the same expectations hold with ``network: calico``."""

from __future__ import annotations

import pytest

import pktsim
from pktsim.build.topology import Topology
from pktsim.core.events import DropReason
from pktsim.felix.names import policy_chain
from pktsim.model.cluster import ClusterModel
from pktsim.netfilter.save import parse
from pktsim.reach import Verdict
from pktsim.reach import probe as probe_module

SCENARIO = """
apiVersion: pktsim/v1alpha1
kind: Cluster
spec: {network: routes, nodes: 1}
---
{apiVersion: v1, kind: Namespace, metadata: {name: x}}
""" + "".join(f"""---
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: x, labels: {{pod: {name}}}}}
spec: {{containers: [{{name: c, image: i, ports: [{{containerPort: 80}}]}}]}}
""" for name in "abc") + """---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-c, namespace: x}
spec:
  podSelector: {matchLabels: {pod: b}}
  ingress: [{from: [{podSelector: {matchLabels: {pod: c}}}]}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-egress, namespace: x}
spec: {podSelector: {matchLabels: {pod: a}}, policyTypes: [Egress]}
"""
END = '-m comment --comment "End of tier default. DROP if no policies passed packet" -j DROP'


def felix_standin(model: ClusterModel) -> str:
    """x/b isolated for ingress (allow-c lets x/c in), x/a for egress (nothing allowed)."""
    ip = {name: model.pods[f"x/{name}"].ip for name in "abc"}
    pi = policy_chain("Ingress", "x", "allow-c")
    return "\n".join([
        "*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
        ":cali-FORWARD - [0:0]", ":cali-tw-calib - [0:0]", ":cali-fw-calia - [0:0]",
        f":{pi} - [0:0]",
        "-A FORWARD -j cali-FORWARD",
        "-A cali-FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        f"-A cali-FORWARD -s {ip['a']}/32 -j cali-fw-calia",
        f"-A cali-FORWARD -d {ip['b']}/32 -j cali-tw-calib",
        "-A cali-FORWARD -j ACCEPT",
        "-A cali-tw-calib -j MARK --set-xmark 0x0/0x10000",
        f"-A cali-tw-calib -j {pi}",
        "-A cali-tw-calib -m mark --mark 0x10000/0x10000 -j RETURN",
        f"-A cali-tw-calib {END}",
        f"-A {pi} -s {ip['c']}/32 -j MARK --set-xmark 0x10000/0x10000",
        f"-A {pi} -m mark --mark 0x10000/0x10000 -j RETURN",
        f"-A cali-fw-calia {END}",
        "COMMIT", ""])


@pytest.fixture
def reach(monkeypatch: pytest.MonkeyPatch) -> pktsim.Reachability:
    real_build = probe_module.build

    def build(model: ClusterModel, sinks: list[object]) -> Topology:
        topo = real_build(model, sinks)  # type: ignore[arg-type]
        for nf in topo.netfilters.values():
            nf.tables["filter"] = parse(felix_standin(model))["filter"]
            nf.validate()
        return topo

    monkeypatch.setattr(probe_module, "build", build)
    monkeypatch.setattr(probe_module, "enforces_policy", lambda network: True)
    return pktsim.load(SCENARIO).reachability(namespaces=["x"])


def test_cells_and_deciding_policies_from_the_wire(reach: pktsim.Reachability) -> None:
    got = {(c.source, c.destination): (c.verdict, c.decided_by) for c in reach.cells}
    egress = (("Egress", "x/deny-egress"),)
    assert got == {
        ("x/a", "x/b"): (Verdict.DENIED, egress),
        ("x/a", "x/c"): (Verdict.DENIED, egress),
        ("x/b", "x/a"): (Verdict.ALLOWED, ()),
        ("x/b", "x/c"): (Verdict.ALLOWED, ()),
        ("x/c", "x/a"): (Verdict.ALLOWED, ()),
        ("x/c", "x/b"): (Verdict.ALLOWED, (("Ingress", "x/allow-c"),)),
    }
    assert reach.cell("x/a", "x/b", 80).reason.startswith(
        "egress isolation of x/a (x/deny-egress): dropped by cali-fw-calia on node-1")


def test_the_text_legend_names_them(reach: pktsim.Reachability) -> None:
    text = reach.text()
    assert "  X denied by egress isolation (x/deny-egress): x/a -> x/b; x/a -> x/c" in text
    assert "  . allowed by egress: not isolated; ingress: x/allow-c: x/c -> x/b" in text


def test_a_denied_connect_is_given_up_at_its_timeout(reach: pktsim.Reachability) -> None:
    """One SYN, dropped; at 1 s the connect is abandoned: no retransmission is sent."""
    cell = reach.cell("x/a", "x/b", 80)
    assert cell.reason.endswith("cali-fw-calia on node-1")
    # the same probe alone (the stand-in is still installed by the fixture's patch)
    _, results, sink = probe_module.run_probes(pktsim.load(SCENARIO).scenario, [
        probe_module.Probe("x/a", "x/b", 80, "tcp", pktsim.flow("x/a", "x/b:80",
                                                                name=cell.flow))])
    steps = sink.by_flow[cell.flow]
    syns = [e for e in steps if e.host == "x/a" and e.event.value == "tx"
            and "Flags [S]" in e.summary]
    assert len(syns) == 1
    assert [e.drop_reason for e in steps if e.event.value == "drop"] == [DropReason.RULE]
    assert max(e.t for e in steps) < 10**6  # nothing after the drop: no retransmission
    assert results[cell.flow].text() == "no answer within 1 s"
