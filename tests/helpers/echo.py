"""What the change tests share: echo Deployments (UDP 9000 and HTTP 8080 behind a Service
of the same name), a client pod on node-1, and a model broken on purpose."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

CLIENT_POD = """\
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: default}
spec:
  nodeName: node-1
  containers: [{name: c}]
"""


def echo_app(name: str, replicas: int, grace_s: int) -> str:
    """A Deployment ``name`` of ``replicas`` pods (UDP 9000, TCP 8080) and its Service
    (udp 9000, http 80 -> 8080), as YAML documents, each starting with ``---``."""
    return f"""---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: default}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      terminationGracePeriodSeconds: {grace_s}
      containers:
      - name: {name}
        ports: [{{containerPort: 9000, protocol: UDP}}, {{containerPort: 8080}}]
---
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: default}}
spec:
  selector: {{app: {name}}}
  ports:
  - {{name: udp, port: 9000, protocol: UDP}}
  - {{name: http, port: 80, targetPort: 8080}}
"""


def flush_conntrack_at_each_sync(monkeypatch: pytest.MonkeyPatch) -> None:
    """Break the model: every rule sync flushes the node's conntrack table, TCP included,
    on nodes that do not pick established connections up again (``tcp_loose`` off)."""
    import pktsim.control.plane as plane

    original = plane.resync

    def flush(topo: Any, node: str, agent: str, generation: int, cleanup: Any) -> Any:
        done = original(topo, node, agent, generation, cleanup)
        table = topo.netfilters[node].conntrack
        table.config = dataclasses.replace(table.config, tcp_loose=False)
        table.delete_where(topo.driver.now, lambda conn: True)
        return done

    monkeypatch.setattr(plane, "resync", flush)
