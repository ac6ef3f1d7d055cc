"""Terminating endpoints: kube-proxy falls back to the serving terminating ones.

``CategorizeEndpoints`` (kubernetes ``pkg/proxy/topology.go``): the cluster endpoints are the
ready ones; when no endpoint is ready anywhere, the serving-and-terminating ones; the local
endpoints (Local traffic policy) are the ready local ones, else the serving terminating
local ones; an endpoint that is neither ready nor serving-and-terminating is never used.
EndpointSlice conditions are read as kube-proxy reads them (``endpointslicecache.go``
``newEndpointSliceInfo``: ready and serving when unset, terminating only when true).  Cases
after upstream's ``TestCategorizeEndpoints`` (``pkg/proxy/topology_test.go``), then a whole
run: a Service whose only endpoint is terminating answers instead of rejecting.
"""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

import pktsim
from pktsim.kubeproxy.ports import Endpoint, ServicePortInfo
from pktsim.kubeproxy.topology import categorize


def _ep(last: int, *, ready: bool = True, serving: bool = True, terminating: bool = False,
        local: bool = False) -> Endpoint:
    return Endpoint(IPv4Address(f"10.0.0.{last}"), 80, local, ready, f"KUBE-SEP-{last}",
                    serving, terminating)


def _sp(*eps: Endpoint, internal_local: bool = False, external_local: bool = False,
        node_port: int = 0) -> ServicePortInfo:
    return ServicePortInfo("ns/svc:p", "tcp", IPv4Address("10.96.0.9"), 80, node_port,
                           internal_local=internal_local, external_local=external_local,
                           endpoints=list(eps))


def _ips(eps: list[Endpoint]) -> list[int]:
    return [int(str(ep.ip).rpartition(".")[2]) for ep in eps]


CASES = [
    # name, service port, (cluster, local, all reachable, has any endpoints)
    ("cluster: ready ones only", _sp(_ep(1), _ep(2, ready=False, terminating=True),
                                     _ep(3, ready=False, serving=False)),
     ([1], [], [1], True)),
    ("cluster: none ready, the serving terminating ones",
     _sp(_ep(1, ready=False, terminating=True), _ep(2, ready=False, terminating=True),
         _ep(3, ready=False, serving=False, terminating=True)),
     ([1, 2], [], [1, 2], True)),
    ("cluster: none ready nor serving", _sp(_ep(1, ready=False, serving=False,
                                                terminating=True), _ep(2, ready=False)),
     ([], [], [], False)),
    ("iTP Local: the local ready ones", _sp(_ep(1, local=True), _ep(2),
                                            internal_local=True),
     ([], [1], [1], True)),
    ("iTP Local: no local ready, the local serving terminating ones",
     _sp(_ep(1, ready=False, terminating=True, local=True), _ep(2), internal_local=True),
     ([], [1], [1], True)),
    ("iTP Local: nothing local, but endpoints elsewhere", _sp(_ep(2), internal_local=True),
     ([], [], [], True)),
    ("eTP Local: cluster ready, local terminating: both reachable",
     _sp(_ep(1, ready=False, terminating=True, local=True), _ep(2), external_local=True,
         node_port=30080),
     ([2], [1], [1, 2], True)),
]


@pytest.mark.parametrize(("sp", "want"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_categorize_endpoints(sp: ServicePortInfo,
                              want: tuple[list[int], list[int], list[int], bool]) -> None:
    cluster, local, reachable, has = categorize(sp)
    assert (_ips(cluster), _ips(local), _ips(reachable), has) == want


SCENARIO = """\
apiVersion: v1
kind: Pod
metadata: {{name: web, labels: {{app: web}}}}
spec: {{nodeName: node-2, containers: [{{name: web, ports: [{{containerPort: 8080}}]}}]}}
status: {{podIP: 10.244.1.7}}
---
apiVersion: v1
kind: Pod
metadata: {{name: client}}
spec: {{nodeName: node-1, containers: [{{name: c}}]}}
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec: {{clusterIP: 10.96.7.7, ports: [{{port: 80, targetPort: 8080}}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: web-1, labels: {{kubernetes.io/service-name: web}}}}
addressType: IPv4
ports: [{{port: 8080, protocol: TCP}}]
endpoints:
- addresses: [10.244.1.7]
  nodeName: node-2
  conditions: {conditions}
---
apiVersion: pktsim/v1alpha1
kind: Traffic
spec:
  flows: [{{name: curl, from: default/client, to: 'http://10.96.7.7/'}}]
"""


@pytest.mark.parametrize(("conditions", "status"), [
    ("{ready: false, serving: true, terminating: true}", "ok"),
    ("{ready: false, terminating: true}", "ok"),  # serving unset: true
    ("{ready: false, serving: false, terminating: true}", "connection refused"),
])
def test_a_service_whose_only_endpoint_terminates(conditions: str, status: str) -> None:
    result = pktsim.load(SCENARIO.format(conditions=conditions)).run()
    assert result.flows[0].status == status
