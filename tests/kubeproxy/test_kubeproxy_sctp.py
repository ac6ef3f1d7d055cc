"""SCTP Service ports: written into the rules as kube-proxy writes them, and matched.

kube-proxy's iptables proxier writes every Service port's protocol as ``-m PROTO -p PROTO``
(kubernetes ``pkg/proxy/iptables/proxier.go`` ``syncProxyRules``/``writeServiceToEndpointRules``,
``strings.ToLower(string(svcInfo.Protocol()))``), SCTP as TCP and UDP; iptables-save prints
them back as ``-p sctp … -m sctp --dport N`` (checked against the kernel in
``tests/kernel/test_kernel_sctp_rules.py``).  SCTP traffic itself is not modelled: a flow
asking for it is refused with exit status 2, never an internal error.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import pktsim
from pktsim import cli
from pktsim.errors import ScenarioError, ScenarioErrors
from pktsim.kubeproxy import node_rules
from pktsim.kubeproxy.tables import restore_tables
from pktsim.netfilter.engine import evaluate
from pktsim.netfilter.matches import Env
from pktsim.netfilter.save import render
from pktsim.netfilter.view import PacketView
from pktsim.wire.parse import ip_bytes

SCENARIO = """\
apiVersion: v1
kind: Pod
metadata: {name: s, labels: {app: s}}
spec: {nodeName: node-1, containers: [{name: c}]}
---
apiVersion: v1
kind: Service
metadata: {name: s}
spec:
  type: NodePort
  clusterIP: 10.96.9.9
  selector: {app: s}
  ports: [{port: 9000, protocol: SCTP, nodePort: 30900}]
"""


def _nat(cluster: pktsim.Cluster) -> str:
    return render(restore_tables(node_rules(cluster.model, "node-1")).values())


def test_sctp_service_rules_are_kube_proxys() -> None:
    cluster = pktsim.load(SCENARIO)
    pod = cluster.model.pods["default/s"].ip
    text = _nat(cluster)
    assert ('-A KUBE-SERVICES -d 10.96.9.9/32 -p sctp -m comment --comment '
            '"default/s cluster IP" -m sctp --dport 9000 -j KUBE-SVC-') in text
    assert ('-A KUBE-NODEPORTS -p sctp -m comment --comment "default/s" -m sctp --dport 30900 '
            '-j KUBE-EXT-') in text
    assert f'-p sctp -m comment --comment "default/s" -m sctp -j DNAT --to-destination ' \
           f'{pod}:9000' in text


@pytest.mark.parametrize(("proto", "dnat"), [(132, True), (6, False), (17, False)])
def test_only_sctp_packets_match_the_sctp_port(proto: int, dnat: bool) -> None:
    cluster = pktsim.load(SCENARIO)
    nat = restore_tables(node_rules(cluster.model, "node-1"))["nat"]
    packet = PacketView(ip_bytes("10.244.1.5"), ip_bytes("10.96.9.9"), proto, 40000, 9000)
    out = evaluate(nat, "PREROUTING", packet, Env())
    assert any("KUBE-SEP-" in step for step in out.path) is dnat


def test_an_sctp_flow_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO)
    flow = ("---\napiVersion: pktsim/v1alpha1\nkind: Traffic\nspec:\n  flows:\n"
            "  - {name: f, from: default/s, to: '10.96.9.9:9000', protocol: sctp}\n")
    with pytest.raises((ScenarioError, ScenarioErrors)) as raised:
        pktsim.load(SCENARIO + flow)
    assert "is not modelled: pktsim sends no SCTP packet" in str(raised.value)
    code = cli.main(["trace", str(path), "--from", "default/s", "--to", "10.96.9.9:9000",
                     "--protocol", "sctp"])
    assert code == 2
    assert "internal error" not in capsys.readouterr().err
