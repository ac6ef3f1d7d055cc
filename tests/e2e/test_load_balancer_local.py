"""The LoadBalancer as a cloud L4 balancer that health-checks ``healthCheckNodePort``:
``externalTrafficPolicy: Local`` works wherever the pods are.  Before, every LoadBalancer
address went to node-1, and a Local Service whose pods were elsewhere timed out there
(kube-proxy drops on a node without local endpoints)."""

from __future__ import annotations

import pytest

import pktsim

SCENARIO = """\
apiVersion: v1
kind: Pod
metadata: {{name: web, labels: {{app: web}}}}
spec: {{nodeName: {node}, containers: [{{name: web, ports: [{{containerPort: 8080}}]}}]}}
---
apiVersion: v1
kind: Service
metadata: {{name: lb}}
spec:
  type: LoadBalancer
  externalTrafficPolicy: {policy}
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: pktsim/v1alpha1
kind: Traffic
spec:
  flows: [{{name: lb, from: external, to: 'http://198.51.100.1/'}}]
"""


@pytest.mark.parametrize("node", ["node-1", "node-2"])
@pytest.mark.parametrize("policy", ["Local", "Cluster"])
def test_load_balancer_reaches_the_pods_wherever_they_are(node: str, policy: str) -> None:
    result = pktsim.load(SCENARIO.format(node=node, policy=policy)).run()
    assert result.flows[0].status == "ok"


def test_the_healthy_node_is_the_one_with_the_ready_endpoint() -> None:
    from pktsim.build.external import healthy_backends

    model = pktsim.load(SCENARIO.format(node="node-2", policy="Local")).model
    assert [(str(vip), str(ip)) for vip, ip in healthy_backends(model)] == [
        ("198.51.100.1", str(model.nodes["node-2"].ip))]
