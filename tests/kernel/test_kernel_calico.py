"""pktsim's ``network: calico`` against the Linux kernel: two nodes, pods ``a`` and ``c`` on
node-1 and ``b`` on node-2, Calico's cali veths with proxy ARP, /32 routes, the
``169.254.1.1`` routes, blackholes, and the cross-node path unencapsulated (BGP-learned
routes), over ``vxlan.calico`` and, where the kernel has the ipip module, over ``tunl0``;
and a pod reaching itself through its Service (kube-proxy's rules, loaded from pktsim's
``iptables-save``, masquerade the hairpin to the node's ``eth0`` address).
Same frames on every interface (``twin.KernelCalico``; namespaces this test creates and
deletes)."""

from __future__ import annotations

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
from twin.calico import TUNNEL, KernelCalico

pytestmark = pytest.mark.kernel

SCENARIO = """
apiVersion: pktsim/v1alpha1
kind: Cluster
spec: {{nodes: 2, network: calico, calico: {pool}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: a, labels: {{app: a}}}}
spec: {{nodeName: node-1, containers: [{{name: app, ports: [{{containerPort: 8080}}]}}]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: c}}
spec: {{nodeName: node-1, containers: [{{name: app, ports: [{{containerPort: 8080}}]}}]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: b}}
spec: {{nodeName: node-2, containers: [{{name: app, ports: [{{containerPort: 8080}}]}}]}}
---
apiVersion: v1
kind: Service
metadata: {{name: a}}
spec: {{clusterIP: 10.96.100.40, selector: {{app: a}}, ports: [{{port: 80, targetPort: 8080}}]}}
---
apiVersion: pktsim/v1alpha1
kind: Traffic
spec:
  flows:
  - {{name: same, from: default/a, to: default/c, protocol: icmp, count: 2}}
  - {{name: ping, from: default/a, to: default/b, protocol: icmp, count: 2}}
  - {{name: http, from: default/a, to: 'http://B/'}}
  - {{name: hairpin, from: default/a, to: 'http://10.96.100.40/'}}
"""
POOLS = {"none": "{ipipMode: Never, vxlanMode: Never}",
         "vxlan": "{ipipMode: Never, vxlanMode: Always}",
         "ipip": "{ipipMode: Always}"}
FLOWS = ["same", "ping", "http", "hairpin"]


def run_pktsim(encap: str, flow: str) -> Result:
    cluster = pktsim.load(SCENARIO.format(pool=POOLS[encap]))
    chosen = [f for f in cluster.flows if f.name == flow]
    for f in chosen:  # b's address is Calico IPAM's: known once the model is made
        f.target = f.target.replace("//B/", f"//{cluster.model.pods['default/b'].ip}:8080/")
    return cluster.run(flows=chosen)


def key_map(result: Result, encap: str) -> dict[str, str]:
    """pktsim ``iface.if_name`` -> harness key (the twin's pods are a, b and c)."""
    return harness_keys(result, ("eth0", TUNNEL.get(encap)))


class _Kernel:
    def __init__(self, encap: str, kc: KernelCalico) -> None:
        self.encap, self.kc = encap, kc
        self.captures: dict[str, Any] = {}

    def capture(self, flow: str, result: Result) -> Any:
        if flow not in self.captures:
            kc, pods = self.kc, result.topology.model.pods
            c_ip, b_ip = str(pods["default/c"].ip), str(pods["default/b"].ip)
            if flow == "same":
                cap = kc.scenario(lambda: kc.ping("a", c_ip, count=2))
            elif flow == "ping":
                cap = kc.scenario(lambda: kc.ping("a", b_ip, count=2))
            elif flow == "hairpin":  # kube-proxy masquerades it: out of caliA, back into it
                request, body = request_and_body(result, "default/a:eth0")
                cap = kc.scenario(lambda: kc.tcp_exchange(
                    "a", "a", "10.96.100.40", 80, body=body, request=request,
                    server_port=8080))
            else:
                request, body = request_and_body(result, "default/a:eth0")
                cap = kc.scenario(lambda: kc.tcp_exchange("a", "b", b_ip, 8080, body=body,
                                                          request=request))
            self.captures[flow] = cap
        return self.captures[flow]


@pytest.fixture(scope="module", params=sorted(POOLS))
def kernel(request: pytest.FixtureRequest) -> Any:
    reason = kernel_available() or netfilter_available()
    if reason:
        pytest.skip(reason)
    encap = request.param
    netfilters = run_pktsim(encap, "same").topology.netfilters
    rules = {n: nf.save() for n, nf in netfilters.items()}
    sets = {n: nf.ipsets.save() for n, nf in netfilters.items()}
    kc = KernelCalico(kernel_nodes(run_pktsim(encap, "same"), namespace="default"),
                      encap=encap)
    try:
        with kc:
            for node, text in rules.items():  # kube-proxy's and felix's rules, felix's sets
                kc.ipset_restore(node, sets[node])
                kc.iptables_restore(node, text)
            yield _Kernel(encap, kc)
    except KernelFeatureMissing as e:
        pytest.skip(str(e))
    finally:
        assert pktk_namespaces(kc.tag) == [], "pktk namespaces left behind"


@pytest.mark.parametrize("flow", FLOWS)
def test_frames_match_the_kernel(kernel: _Kernel, flow: str) -> None:
    result = run_pktsim(kernel.encap, flow)
    assert result.flows[0].status == "ok"
    names = kernel.kc.mac_names()
    ours = _frames(result, key_map(result, kernel.encap))
    assert set(ours) <= set(kernel.kc.interfaces())
    busy = ["a:eth0", f"node-1:{result.topology.model.pods['default/a'].veth}"]
    if flow in ("ping", "http"):
        busy += ["node-1:eth0", "b:eth0"] + [k for k in ours if k.endswith(
            tuple(TUNNEL.values()))]
    assert all(ours[k] for k in busy), "a comparison of nothing"
    cap = kernel.capture(flow, result)
    raw = kernel.encap == "ipip"
    # the hairpin is masqueraded (--random-fully) to node-1's eth0 address, as
    # inet_select_addr picks it for the address-less cali device: its port is random
    nat = ("172.18.0.2",) if flow == "hairpin" else ()
    problems = []
    for key in sorted(ours):
        is_raw = raw and key.endswith(":tunl0")
        theirs = _kernel_comparable(cap, key, names, raw_ip=is_raw, nat_ips=nat)
        mine = _comparable(ours[key], names, raw_ip=is_raw, nat_ips=nat)
        if mine != theirs:
            problems.append(_diff(key, mine, theirs))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("kernel", ["none"], indirect=True)
def test_the_kernel_proxies_arp_for_169_254_1_1(kernel: _Kernel) -> None:
    """Both sides: a's ARP for 169.254.1.1 is answered by node-1 with ee:ee:ee:ee:ee:ee."""
    result = run_pktsim("none", "same")
    cap = kernel.capture("same", result)
    names = kernel.kc.mac_names()
    ours = _frames(result, key_map(result, "none"))
    for side, rows in (("kernel", _kernel_comparable(cap, "a:eth0", names)),
                       ("pktsim", _comparable(ours["a:eth0"], names))):
        arps = [r for r in rows if r["ethertype"] == "0x0806"]
        assert arps and (arps[0]["arp_op"], arps[0]["arp_tpa"]) == ("request", "169.254.1.1")
        assert (arps[1]["arp_op"], arps[1]["arp_spa"], arps[1]["arp_sha"]) == (
            "reply", "169.254.1.1", "cali-host"), side
