"""felix's names and rule hashes, against values felix itself produces.

The hashes are the ones every Calico node prints (felix's own tests use the FORWARD one:
calico ``felix/iptables/table_test.go`` "should extract a rule with a hash"); the others
appear in ``iptables-save`` of any Calico node with IPIP on."""

from __future__ import annotations

import pytest

from pktsim.felix.names import length_limited, policy_chain, profile_chain, selector_set
from pktsim.felix.rules import FChain, FRule, jump
from pktsim.felix.static import Config, filter_chains, forward_append


def _hash(line: str) -> str:
    return line.split('"cali:')[1].split('"')[0]


@pytest.mark.parametrize(("hook", "target", "expected"), [
    ("FORWARD", "cali-FORWARD", "wUHhoiAYhphO9Mso"),
    ("INPUT", "cali-INPUT", "Cz_u1IQiXIMmKD4c"),
    ("OUTPUT", "cali-OUTPUT", "tVnHkvAo15HuiPy0"),
])
def test_the_jumps_into_kernel_chains_hash_as_on_every_calico_node(
        hook: str, target: str, expected: str) -> None:
    line = FChain(hook, (FRule(action=jump(target)),)).lines()[0]
    assert _hash(line) == expected


def test_appended_forward_rules_hash_under_the_appends_name() -> None:
    lines = FChain("FORWARD", tuple(forward_append())).lines("FORWARD*appends*")
    assert _hash(lines[0]) == "S93hcgKJrXEqnTfs"
    assert "Policy explicitly accepted packet." in lines[0]
    assert lines[0].startswith("-A FORWARD ")


def test_the_ipip_input_rules_hash_as_felix_writes_them() -> None:
    cfg = Config(ipip=True, vxlan=False, ipip_tunnel=True, vxlan_tunnel=False,
                 nat_outgoing=True)
    chain = next(c for c in filter_chains(cfg) if c.name == "cali-INPUT")
    lines = chain.lines()
    assert [_hash(x) for x in lines[:2]] == ["PajejrV4aFdkZojI", "_wjq-Yrma8Ly1Svo"]


def test_names_fit_iptables_and_ipset_limits() -> None:
    assert profile_chain("Ingress", "ksa.default.default") == "cali-pri-ksa.default.default"
    long = profile_chain("Ingress", "ksa.kube-system.default")
    assert long.startswith("cali-pri-_") and len(long) == 28
    assert policy_chain("Egress", "x", "deny") == "cali-po-knp/x/deny"
    assert len(policy_chain("Ingress", "a-long-namespace", "a-long-policy-name")) == 28
    assert length_limited("cali-tw-", "cali12345678901") == "cali-tw-cali12345678901"
    name = selector_set("projectcalico.org/orchestrator == 'k8s'")
    assert name.startswith("cali40s:") and len(name) == 31
