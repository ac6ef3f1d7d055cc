"""Probe -> trace -> deciding policy through felix's rules on ``network: calico``: the matrix
names the policies the wire met (x/b isolated for ingress, x/c let in; x/a isolated for
egress, nothing let out)."""

from __future__ import annotations

import pytest

import pktsim
from pktsim import Verdict
from pktsim.core.events import DropReason
from pktsim.reach import probe as probe_module

SCENARIO = """
apiVersion: pktsim/v1alpha1
kind: Cluster
spec: {network: calico, nodes: 1}
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


@pytest.fixture(scope="module")
def reach() -> pktsim.Reachability:
    return pktsim.load(SCENARIO).reachability(namespaces=["x"])


def _iface(pod: str) -> str:
    return pktsim.load(SCENARIO).model.pods[pod].veth


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
        f"egress isolation of x/a (x/deny-egress): dropped by cali-fw-{_iface('x/a')} on "
        "node-1")


def test_the_text_legend_names_them(reach: pktsim.Reachability) -> None:
    text = reach.text()
    assert "  X denied by egress isolation (x/deny-egress): x/a -> x/b; x/a -> x/c" in text
    assert "  . allowed by egress: not isolated; ingress: x/allow-c: x/c -> x/b" in text


def test_a_denied_connect_is_given_up_at_its_timeout(reach: pktsim.Reachability) -> None:
    """One SYN, dropped; at 1 s the connect is abandoned: no retransmission is sent."""
    cell = reach.cell("x/a", "x/b", 80)
    assert cell.reason.endswith(f"cali-fw-{_iface('x/a')} on node-1")
    # the same probe alone
    _, results, sink = probe_module.run_probes(pktsim.load(SCENARIO).scenario, [
        probe_module.Probe("x/a", "x/b", 80, "tcp", pktsim.flow("x/a", "x/b:80",
                                                                name=cell.flow))])
    steps = sink.by_flow[cell.flow]
    syns = [e for e in steps if e.host == "x/a" and e.event.value == "tx"
            and "Flags [S]" in e.summary]
    assert len(syns) == 1
    assert [e.drop_reason for e in steps if e.event.value == "drop"] == [DropReason.POLICY]
    assert max(e.t for e in steps) < 10**6  # nothing after the drop: no retransmission
    assert results[cell.flow].text() == "no answer within 1 s"
