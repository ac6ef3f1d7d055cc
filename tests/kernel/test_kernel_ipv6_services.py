"""pktsim's Services over IPv6 against the kernel: kube-proxy's and flannel's ip6tables rules
as pktsim writes them (``nodes/NODE/ip6tables-save.txt``) loaded with ``ip6tables-restore``
into both node namespaces of the dual-stack twin (``bridge-nf-call-ip6tables=1`` there
only), the same HTTP to a Service's IPv6 ClusterIP, the same frames on every interface:

* ``remote``  the ClusterIP DNATed to the one endpoint, on node-2 (routed)
* ``local``   the ClusterIP DNATed to the one endpoint, on node-1 (bridged: br_netfilter)
* ``empty``   a Service without endpoints: REJECT with ICMPv6 port unreachable

and the kernel's ``ip6tables-save`` printing pktsim's rules back unchanged.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import pktsim
from pktsim.api import Result

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import (
    comparable,
    harness_keys,
    kernel_comparable,
    pktk_namespaces,
    pktsim_frames,
    request_and_body,
)
from compare import diff as _diff
from test_kernel_ip6tables import _retried, _tables
from test_kernel_ipv6_compare import TAIL_NS, node_specs
from twin import KernelCluster, kernel_available
from twin.commands import in_ns, run

pytestmark = pytest.mark.kernel

SCENARIO = """
apiVersion: pktsim/v1alpha1
kind: Cluster
spec: {nodes: 2, network: routes, ipFamilies: [IPv4, IPv6], dns: none}
---
apiVersion: v1
kind: Pod
metadata: {name: a}
spec: {nodeName: node-1, containers: [{name: app, ports: [{containerPort: 8080}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: near, labels: {app: near}}
spec: {nodeName: node-1, containers: [{name: app, ports: [{containerPort: 8443}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec: {nodeName: node-2, containers: [{name: app, ports: [{containerPort: 8443}]}]}
"""
SERVICES = {"remote": ("web", "fd00:10:96::100"), "local": ("near", "fd00:10:96::101"),
            "empty": ("nobody", "fd00:10:96::102")}
CASES = sorted(SERVICES)


def _text(case: str) -> str:
    docs = [SCENARIO]
    for app, ip in SERVICES.values():
        docs.append(f"apiVersion: v1\nkind: Service\nmetadata: {{name: {app}}}\n"
                    f"spec: {{ipFamilies: [IPv6], ipFamilyPolicy: SingleStack, "
                    f"clusterIP: '{ip}', selector: {{app: {app}}}, "
                    f"ports: [{{port: 443, targetPort: 8443}}]}}\n")
    target = f"http://[{SERVICES[case][1]}]:443/" if case != "empty" else \
        f"[{SERVICES[case][1]}]:443"
    docs.append("apiVersion: pktsim/v1alpha1\nkind: Traffic\nspec:\n  flows:\n"
                f"  - {{name: flow, from: default/a, to: '{target}'}}\n")
    return "---\n".join(docs)


def run_pktsim(case: str) -> Result:
    return pktsim.load(_text(case)).run()


@pytest.fixture(scope="module", params=CASES)
def kernel(request: pytest.FixtureRequest) -> Any:
    reason = kernel_available()
    if reason:
        pytest.skip(reason)
    case = request.param
    result = run_pktsim(case)
    twin = KernelCluster(node_specs(result), mode="routes")
    twin.case, twin.result = case, result
    try:
        with twin:
            for name, ns in twin.node_nss.items():
                run(in_ns(ns, "sysctl", "-q", "-w", "net.bridge.bridge-nf-call-ip6tables=1"))
                # pktsim's nodes route by default via the docker network's ::1, as kind's
                # do: an address with no endpoint is routed, and so reaches FORWARD
                twin.ip(ns, "-6", "route", "add", "default", "via", "fc00:f853:ccd:e793::1",
                        "dev", "eth0")
                text = result.topology.netfilters6[name].save()
                loaded = subprocess.run(in_ns(ns, "ip6tables-restore"), input=text,
                                        capture_output=True, text=True, timeout=20)
                assert loaded.returncode == 0, loaded.stderr
            yield twin
    finally:
        assert pktk_namespaces(twin.tag) == [], "pktk namespaces left behind"


def test_pktsims_ip6tables_rules_load_and_print_back_unchanged(kernel: Any) -> None:
    for name in ("node-1", "node-2"):
        mine = kernel.result.topology.netfilters6[name].save()
        names = {line[1:] for line in mine.splitlines() if line.startswith("*")}
        assert _tables(kernel.exec(name, ["ip6tables-save"]), names) == _tables(mine, names)


def test_ipv6_service_frames_match_the_kernel(kernel: Any) -> None:
    result = kernel.result
    [flow] = result.flows
    empty = kernel.case == "empty"
    assert flow.status == ("connection refused" if empty else "ok"), flow.line()
    vip = SERVICES[kernel.case][1]
    server = "web" if kernel.case == "remote" else "near"
    if empty:
        cap = kernel.scenario(lambda: kernel.tcp_refused("a", vip, 443))
    else:
        request, body = request_and_body(result, "default/a:eth0")
        cap = kernel.scenario(lambda: kernel.tcp_exchange("a", server, vip, 443, body=body,
                                                          request=request, server_port=8443))
    cap = cap.without_router_solicitations()
    names = kernel.mac_names()
    ours = pktsim_frames(result, harness_keys(result, ("cbr0", "eth0")), TAIL_NS)
    problems = []
    for key in sorted(ours):
        theirs = kernel_comparable(cap, key, names) if key in cap.frames else []
        mine = comparable(ours[key], names)
        if empty and len(theirs) == len(mine) + 2:
            theirs = _retried(theirs, mine)
        if mine != theirs:
            problems.append(_diff(key, mine, theirs))
    assert not problems, "\n".join(problems)
