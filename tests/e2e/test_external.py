"""The outside world: pods reach it masqueraded to their node; external clients answer."""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, TCP
from scapy.layers.l2 import Ether

from tests.helpers.sim import frames_on, run_yaml

SCENARIO = """
apiVersion: pktsim/v1alpha1
kind: Cluster
spec: {{network: {network}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: a}}
spec: {{nodeName: node-2, containers: [{{name: c}}]}}
---
apiVersion: pktsim/v1alpha1
kind: Traffic
spec:
  flows:
  - {{name: out, from: default/a, to: 'http://203.0.113.10/'}}
  - {{name: ping, from: default/a, to: external, protocol: icmp, start: 1s}}
  - {{name: named, from: default/a, to: 'external:bob:8080', start: 2s}}
"""


@pytest.mark.parametrize("network", ["routes", "vxlan", "ipip"])
def test_pod_to_outside_is_masqueraded_and_back(tmp_path: Path, network: str) -> None:
    result = run_yaml(SCENARIO.format(network=network), tmp_path / "out")
    assert [f.status for f in result.flows] == ["ok", "ok", "ok"]
    assert result.flows[2].first_answer == b"hello\n"  # not HTTP: the server echoes
    assert frames_on(result, "external/bob:eth0", "named")  # external:bob is 203.0.113.11
    pod = [Ether(f.data) for f in frames_on(result, "default/a:eth0", "out")]
    wire = [Ether(f.data) for f in frames_on(result, "node-2:eth0", "out")
            if IP in Ether(f.data)]
    outside = [Ether(f.data) for f in frames_on(result, "external/client:eth0", "out")]
    assert all("10.244.1.2" in (p[IP].src, p[IP].dst) for p in pod if IP in p)
    # on the node network and outside, the pod's address never appears: the node's does
    for p in wire + outside:
        if IP in p:
            assert "10.244.1.2" not in (p[IP].src, p[IP].dst)
            assert "172.18.0.3" in (p[IP].src, p[IP].dst)
    syn = next(p for p in outside if TCP in p and p[TCP].flags == "S")
    assert syn[IP].src == "172.18.0.3" and syn[IP].ttl == 62  # node-2, router
    masq = [e for e in result.events if e.flow == "out" and "MASQUERADE" in e.summary]
    assert masq[0].host == "node-2" and "FLANNEL-POSTRTG" in masq[0].summary
    ping = [Ether(f.data) for f in frames_on(result, "default/a:eth0", "ping")
            if ICMP in Ether(f.data)]
    assert [(p[ICMP].type, p[IP].src) for p in ping] == [(8, "10.244.1.2"), (0, "203.0.113.10")]
