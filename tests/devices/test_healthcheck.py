"""kube-proxy's health-check servers (kubernetes ``pkg/proxy/healthcheck``): the
``healthCheckNodePort`` answers 200 on a node with a ready endpoint and 503 elsewhere, with
the count of local ready endpoint IPs; ``:10256/healthz`` answers 200."""

from __future__ import annotations

import pktsim
from pktsim.devices.healthcheck import go_time, http_response, service_health

SCENARIO = """\
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
  nodeName: node-2
  containers: [{name: web, ports: [{containerPort: 8080}, {containerPort: 8443}]}]
---
apiVersion: v1
kind: Service
metadata: {name: lb}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  healthCheckNodePort: 30999
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}, {name: https, port: 443, targetPort: 8443}]
---
apiVersion: pktsim/v1alpha1
kind: Traffic
spec:
  flows:
  - {name: hc-node-1, from: external, to: 'http://172.18.0.2:30999/'}
  - {name: hc-node-2, from: external, to: 'http://172.18.0.3:30999/'}
  - {name: healthz, from: external, to: 'http://172.18.0.2:10256/healthz'}
"""


def _answers() -> dict[str, bytes]:
    result = pktsim.load(SCENARIO).run()
    return {f.flow: f.first_answer for f in result.flows}


def test_health_check_node_port_answers_by_local_ready_endpoints() -> None:
    got = _answers()
    assert got["hc-node-1"].startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert got["hc-node-2"].startswith(b"HTTP/1.1 200 OK\r\n")
    # one pod behind two ports: one endpoint (distinct IPs, LocalReadyEndpoints)
    assert b"X-Load-Balancing-Endpoint-Weight: 1\r\n" in got["hc-node-2"]
    assert got["hc-node-2"].endswith(b'\t"localEndpoints": 1,\n\t"serviceProxyHealthy": true\n}')


def test_proxy_healthz_answers_200() -> None:
    answer = _answers()["healthz"]
    assert answer.startswith(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
    assert answer.endswith(b'"nodeEligible": true}')


def test_response_is_framed_as_go_net_http_frames_it() -> None:
    status, headers, body = service_health("ns", "svc", 0)
    assert status == 503
    text = http_response(5 * 10**9, status, headers, body).decode()
    assert text.split("\r\n")[:7] == [
        "HTTP/1.1 503 Service Unavailable", "Content-Type: application/json",
        "X-Content-Type-Options: nosniff", "X-Load-Balancing-Endpoint-Weight: 0",
        "Date: Thu, 01 Jan 1970 00:00:05 GMT", f"Content-Length: {len(body)}", ""]
    assert body.decode() == ('{\n\t"service": {\n\t\t"namespace": "ns",\n\t\t"name": "svc"\n\t},'
                             '\n\t"localEndpoints": 0,\n\t"serviceProxyHealthy": true\n}')
    assert go_time(5_250_000_000) == "1970-01-01 00:00:05.25 +0000 UTC"
