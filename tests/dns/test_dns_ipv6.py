"""CoreDNS in a dual-stack cluster: AAAA records for Services' IPv6 ClusterIPs and for
headless Services' IPv6 endpoints, ``ip6.arpa`` PTR records, pods' dashed IPv6 names; and
glibc's getaddrinfo order, which reaches a dual-stack Service over IPv6 (RFC 3484's policy
table ranks a ULA address above IPv4: seen in namespaces with ``getent ahosts``).  Every
DNS message of the captures is parsed by dnspython (``validate_folder``)."""

from __future__ import annotations

from ipaddress import ip_address
from pathlib import Path

import pytest

from pktsim import FlowStatus
from pktsim.dns.gai import gai_order
from pktsim.dns.zone import reverse_address
from tests.helpers.sim import run_yaml

SCENARIO = """
apiVersion: pktsim/v1alpha1
kind: Cluster
spec: {nodes: 2, network: routes, ipFamilies: [IPv4, IPv6]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {nodeName: node-2, containers: [{name: web, ports: [{containerPort: 8080}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec: {nodeName: node-1, containers: [{name: c}]}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  ipFamilyPolicy: PreferDualStack
  clusterIPs: [10.96.0.80, 'fd00:10:96::80']
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  clusterIP: None
  ipFamilyPolicy: RequireDualStack
  selector: {app: web}
  ports: [{name: web, port: 8080}]
---
apiVersion: pktsim/v1alpha1
kind: Traffic
spec:
  flows:
%s
"""


def run(tmp_path: Path, flows: str):  # type: ignore[no-untyped-def]
    return run_yaml(SCENARIO % flows, tmp_path / "out")


def test_a_dual_stack_service_has_a_and_aaaa_records(tmp_path: Path) -> None:
    result = run(tmp_path, "  - {name: a, from: default/client, lookup: web.default.svc."
                           "cluster.local, type: A}\n  - {name: aaaa, from: default/client, "
                           "lookup: web.default.svc.cluster.local, type: AAAA, start: 1s}")
    a, aaaa = result.flows
    assert a.status == aaaa.status == FlowStatus.OK
    assert "30 A 10.96.0.80" in a.notes[-1] and "AAAA" not in a.notes[-1]
    assert "30 AAAA fd00:10:96::80" in aaaa.notes[-1]


def test_a_headless_dual_stack_service_answers_each_endpoint_in_both_families(
        tmp_path: Path) -> None:
    result = run(tmp_path, "  - {name: aaaa, from: default/client, lookup: db.default.svc."
                           "cluster.local, type: AAAA}\n  - {name: srv, from: default/client,"
                           " lookup: _web._tcp.db.default.svc.cluster.local, type: SRV, start: 1s}")
    aaaa, srv = result.flows
    assert aaaa.status == FlowStatus.OK and "AAAA fd00:10:244:1::2" in aaaa.notes[-1]
    # each address is an endpoint of its own, named by its dashed address
    assert "fd00-10-244-1--2.db.default.svc.cluster.local." in srv.notes[-1]
    assert "10-244-1-2.db.default.svc.cluster.local." in srv.notes[-1]


def test_ip6_arpa_names_the_service_of_an_ipv6_cluster_ip(tmp_path: Path) -> None:
    name = ip_address("fd00:10:96::80").reverse_pointer
    result = run(tmp_path, f"  - {{name: ptr, from: default/client, lookup: {name}, "
                           "type: PTR}")
    [flow] = result.flows
    assert flow.status == FlowStatus.OK and "PTR web.default.svc.cluster.local." in \
        flow.notes[-1]
    assert reverse_address(name + ".") == ip_address("fd00:10:96::80")


def test_a_name_with_both_families_is_reached_over_ipv6(tmp_path: Path) -> None:
    """getaddrinfo puts the ULA AAAA first, so curl connects to the IPv6 ClusterIP."""
    result = run(tmp_path, "  - {name: http, from: default/client, to: 'http://web:80/'}")
    [flow] = result.flows
    assert flow.status == FlowStatus.OK, flow.line()
    dnat = [e.nat for e in result.events if e.flow == "http" and e.nat is not None and
            e.nat.field == "dst" and e.nat.old.endswith(":80")]
    assert dnat and dnat[0].old == "[fd00:10:96::80]:80"


def _sources(v4: bool, v6: bool):  # type: ignore[no-untyped-def]
    def source_for(dst: bytes) -> tuple[bytes | None, int | None]:
        if len(dst) == 4:
            return (ip_address("10.244.0.3").packed, 1500) if v4 else (None, None)
        return (ip_address("fd00:10:244::3").packed, 1500) if v6 else (None, None)
    return source_for


@pytest.mark.parametrize(("v4", "v6", "first"), [
    (True, True, "fd00:10:96::80"),  # precedence 40 (::/0) over IPv4's 10
    (True, False, "10.96.0.80"),  # no IPv6 source: rule 1
    (False, True, "fd00:10:96::80"),
])
def test_getaddrinfo_orders_as_glibc(v4: bool, v6: bool, first: str) -> None:
    assert gai_order(["10.96.0.80", "fd00:10:96::80"], _sources(v4, v6))[0] == first
