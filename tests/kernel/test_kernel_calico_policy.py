"""A NetworkPolicy enforced by felix's rules, against the Linux kernel: a Calico node built in
network namespaces (cali veths with proxy ARP, /32 routes, no encapsulation), pktsim's own
``ipset save`` and ``iptables-save`` loaded into it, and one allowed and one denied exchange:
the same frames on every interface.  The kernel also reads the rules and sets back as
pktsim prints them (``iptables-save``, ``ipset save``: equal but for ipset's random initval).
Needs ``ip_set`` (``ipset``) in the kernel; skips with the reason otherwise."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import pktsim
from pktsim.api import Result

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import comparable as _comparable
from compare import diff as _diff
from compare import harness_keys, kernel_nodes, pktk_namespaces, request_and_body
from compare import kernel_comparable as _kernel_comparable
from compare import pktsim_frames as _frames
from twin import KernelFeatureMissing, kernel_available, netfilter_available
from twin.calico import KernelCalico

pytestmark = pytest.mark.kernel

SCENARIO = """
apiVersion: pktsim/v1alpha1
kind: Cluster
spec: {nodes: 2, network: calico, calico: {ipipMode: Never, vxlanMode: Never}}
---
apiVersion: v1
kind: Pod
metadata: {name: a, labels: {app: a}}
spec: {nodeName: node-1, containers: [{name: app, ports: [{containerPort: 8080}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: c, labels: {app: c}}
spec: {nodeName: node-1, containers: [{name: app, ports: [{containerPort: 8080}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: b, labels: {app: b}}
spec: {nodeName: node-2, containers: [{name: app, ports: [{containerPort: 8080}]}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: b-from-a}
spec:
  podSelector: {matchLabels: {app: b}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: a}}}]
    ports: [{port: 8080, protocol: TCP}]
---
apiVersion: pktsim/v1alpha1
kind: Traffic
spec:
  flows:
  - {name: allowed, from: default/a, to: 'http://B/'}
  - {name: denied, from: default/c, to: default/b, protocol: icmp}
"""


def run_pktsim(flow: str) -> Result:
    cluster = pktsim.load(SCENARIO)
    chosen = [f for f in cluster.flows if f.name == flow]
    for f in chosen:
        f.target = f.target.replace("//B/", f"//{cluster.model.pods['default/b'].ip}:8080/")
    return cluster.run(flows=chosen)


def key_map(result: Result) -> dict[str, str]:
    return harness_keys(result, ("eth0",))


def _ipset_available() -> str:
    if shutil.which("ipset") is None:
        return "no ipset command (Debian package ipset)"
    return ""


@pytest.fixture(scope="module")
def kernel() -> Any:
    reason = kernel_available() or netfilter_available() or _ipset_available()
    if reason:
        pytest.skip(reason)
    result = run_pktsim("allowed")
    netfilters = result.topology.netfilters
    kc = KernelCalico(kernel_nodes(result, namespace="default"), encap="none")
    try:
        with kc:
            for node, nf in netfilters.items():
                try:
                    kc.ipset_restore(node, nf.ipsets.save())
                except RuntimeError as e:  # no ip_set in this kernel
                    pytest.skip(f"the kernel has no IP sets (ip_set): {e}")
                kc.iptables_restore(node, nf.save())
            yield kc, {n: (nf.save(), nf.ipsets.save()) for n, nf in netfilters.items()}
    except KernelFeatureMissing as e:
        pytest.skip(str(e))
    finally:
        assert pktk_namespaces(kc.tag) == [], "pktk namespaces left behind"


def _capture(kc: KernelCalico, flow: str, result: Result) -> Any:
    pods = result.topology.model.pods
    b_ip = str(pods["default/b"].ip)
    if flow == "denied":  # iputils ping: one echo request, no reply (exit status 1)
        return kc.scenario(lambda: kc.exec("c", ["ping", "-n", "-c", "1", "-W", "2", b_ip],
                                           check=False, timeout=20))
    request, body = request_and_body(result, "default/a:eth0")
    return kc.scenario(lambda: kc.tcp_exchange("a", "b", b_ip, 8080, body=body,
                                               request=request))


@pytest.mark.parametrize("flow", ["allowed", "denied"])
def test_policy_frames_match_the_kernel(kernel: Any, flow: str) -> None:
    kc, _ = kernel
    result = run_pktsim(flow)
    assert (result.flows[0].status == "ok") == (flow == "allowed")
    names = kc.mac_names()
    ours = _frames(result, key_map(result))
    b_veth = f"node-2:{result.topology.model.pods['default/b'].veth}"
    busy = ["node-2:eth0"] + ([b_veth, "b:eth0"] if flow == "allowed" else [])
    assert all(ours[k] for k in busy), "a comparison of nothing"
    if flow == "denied":  # reached b's node, dropped before b's veth: nothing crossed it
        assert ours[b_veth] == [] and ours["b:eth0"] == []
    cap = _capture(kc, flow, result)
    problems = []
    for key in sorted(ours):
        mine = _comparable(ours[key], names)
        theirs = _kernel_comparable(cap, key, names)
        if mine != theirs:
            problems.append(_diff(key, mine, theirs))
    assert not problems, "\n".join(problems)


def _rules(text: str) -> list[str]:
    """The rules, without iptables-save's dated comments and with packet counters zeroed."""
    return [re.sub(r"\[\d+:\d+\]$", "[0:0]", line) for line in text.splitlines()
            if not line.startswith("#")]


def test_the_kernel_prints_the_rules_and_sets_as_pktsim_does(kernel: Any) -> None:
    kc, saved = kernel
    for node, (rules, sets) in saved.items():
        assert _rules(kc.iptables_save(node)) == _rules(rules), node
        got = subprocess.run(["ip", "netns", "exec", kc.node_nss[node], "ipset", "save"],
                             capture_output=True, text=True, check=True).stdout
        initval = re.compile(r" initval 0x[0-9a-f]+")
        assert initval.sub("", got) == initval.sub("", sets), node
