"""The scenario loader: every kind, List flattening, snapshots, workload expansion, Traffic."""

from __future__ import annotations

import io
import json
import re
import textwrap
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest
import yaml

from pktsim.model.objects import Pod, Scenario
from pktsim.scenario import load_paths, load_scenario

ALPHA = "[bcdfghjklmnpqrstvwxz2456789]"


def load(*docs: str, seed: int | None = None, file: str = "test.yaml") -> Scenario:
    text = "\n---\n".join(textwrap.dedent(d) for d in docs)
    return load_scenario([(file, text)], seed=seed, addons=False)


def pods_by_key(scenario: Scenario) -> dict[str, Pod]:
    return {p.key: p for p in scenario.pods}


DEPLOYMENT = """
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: web, namespace: shop}
    spec:
      replicas: 3
      selector: {matchLabels: {app: web}}
      template:
        metadata: {labels: {app: web, tier: front}}
        spec:
          containers:
          - name: app
            ports: [{containerPort: 8080, name: http}, {containerPort: 53, protocol: UDP}]
"""

CLUSTER = """
    apiVersion: pktsim/v1alpha1
    kind: Cluster
    spec: {seed: %d}
"""


# ---------------------------------------------------------------------------------- kinds


def test_empty_input_gives_defaults() -> None:
    s = load("", "---", "")
    assert s.pods == [] and s.flows == [] and s.warnings == []
    assert s.namespaces == ["default", "kube-system"]
    assert s.config.cluster_domain == "cluster.local" and s.config.seed == 0


def test_namespace_objects_and_implicit_namespaces() -> None:
    s = load("""
        apiVersion: v1
        kind: Namespace
        metadata: {name: shop, labels: {team: a}}
    """, """
        apiVersion: v1
        kind: Service
        metadata: {name: api, namespace: zeta}
        spec: {ports: [{port: 80}]}
    """)
    assert s.namespaces == ["default", "kube-system", "shop", "zeta"]
    assert s.namespace_labels["shop"] == {"team": "a", "kubernetes.io/metadata.name": "shop"}
    assert s.namespace_labels["zeta"] == {"kubernetes.io/metadata.name": "zeta"}


def test_node_fields() -> None:
    s = load("""
        apiVersion: v1
        kind: Node
        metadata: {name: worker-1, labels: {zone: a}}
        spec: {podCIDRs: [10.244.7.0/24, "fd00::/64"]}
        status:
          addresses:
          - {type: Hostname, address: worker-1}
          - {type: InternalIP, address: "fd00::2"}
          - {type: InternalIP, address: 172.18.0.9}
    """)
    node = s.nodes[0]
    assert node.name == "worker-1" and node.labels == {"zone": "a"}
    assert node.pod_cidr == IPv4Network("10.244.7.0/24")
    assert node.internal_ip == IPv4Address("172.18.0.9")
    # a dual-stack node: both families kept, and the cluster's inferred from them
    assert str(node.pod_cidr6) == "fd00::/64" and str(node.internal_ip6) == "fd00::2"
    assert node.families == ("IPv4", "IPv6") and s.config.ip_families == ("IPv4", "IPv6")
    assert node.source is not None and node.source.document() == "document 1 (Node worker-1)"


def test_pod_fields() -> None:
    s = load("""
        apiVersion: v1
        kind: Pod
        metadata: {name: client, namespace: shop, labels: {app: c}}
        spec:
          nodeName: node-2
          hostNetwork: false
          hostname: cli
          subdomain: sub
          dnsPolicy: None
          dnsConfig:
            nameservers: [1.1.1.1]
            searches: [example.com]
            options: [{name: ndots, value: "2"}, {name: edns0}]
          initContainers:
          - {name: init, ports: [{containerPort: 9}]}
          - {name: proxy, restartPolicy: Always, ports: [{containerPort: 15001}]}
          containers:
          - name: main
            ports: [{containerPort: 80, name: http}, {containerPort: 80, protocol: UDP}]
        status: {podIP: 10.244.1.5, hostIP: 172.18.0.3}
    """)
    pod = s.pods[0]
    assert pod.key == "shop/client" and pod.labels == {"app": "c"}
    assert (pod.node_name, pod.hostname, pod.subdomain, pod.dns_policy) == \
        ("node-2", "cli", "sub", "None")
    assert pod.dns_config == {"nameservers": ["1.1.1.1"], "searches": ["example.com"],
                              "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}
    assert [c.name for c in pod.containers] == ["proxy", "main"]
    ports = [(p.port, p.protocol, p.name) for p in pod.containers[1].ports]
    assert ports == [(80, "TCP", "http"), (80, "UDP", "")]
    assert pod.pod_ip == IPv4Address("10.244.1.5") and pod.host_ip == IPv4Address("172.18.0.3")
    assert pod.ready and pod.owner == "" and not pod.host_network


@pytest.mark.parametrize(("status", "gates", "ready"), [
    ("{}", "[]", True),
    ("{conditions: [{type: Ready, status: 'True'}]}", "[]", True),
    ("{conditions: [{type: Ready, status: 'False'}]}", "[]", False),
    ("{conditions: [{type: Ready, status: Unknown}]}", "[]", False),
    ("{}", "[{conditionType: example.com/lb}]", False),
    ("{conditions: [{type: example.com/lb, status: 'False'}]}", "[{conditionType: example.com/lb}]",
     False),
    ("{conditions: [{type: example.com/lb, status: 'True'}]}", "[{conditionType: example.com/lb}]",
     True),
])
def test_pod_readiness(status: str, gates: str, ready: bool) -> None:
    s = load(f"""
        kind: Pod
        apiVersion: v1
        metadata: {{name: p}}
        spec: {{readinessGates: {gates}, containers: [{{name: c}}]}}
        status: {status}
    """)
    assert s.pods[0].ready is ready


def test_finished_pods_are_skipped_with_a_warning() -> None:
    s = load("""
        kind: Pod
        apiVersion: v1
        metadata: {name: job-x}
        spec: {containers: [{name: c}]}
        status: {phase: Succeeded, podIP: 10.244.0.9}
    """)
    assert s.pods == []
    assert s.warnings == ["test.yaml: document 1 (Pod default/job-x): pod skipped "
                          "(status.phase Succeeded: not running)"]


def test_sctp_container_port_is_ignored_with_a_warning() -> None:
    s = load("""
        kind: Pod
        apiVersion: v1
        metadata: {name: p}
        spec: {containers: [{name: c, ports: [{containerPort: 9, protocol: SCTP}]}]}
    """)
    assert s.pods[0].containers[0].ports == []
    assert "SCTP port 9 ignored" in s.warnings[0]


def test_service_fields() -> None:
    s = load("""
        apiVersion: v1
        kind: Service
        metadata: {name: web, namespace: shop}
        spec:
          type: LoadBalancer
          clusterIP: 10.96.3.4
          selector: {app: web}
          ports:
          - {name: http, port: 80, targetPort: http, nodePort: 30080}
          - {name: dns, port: 53, protocol: UDP, targetPort: 5353}
          externalIPs: [192.0.2.7]
          externalTrafficPolicy: Local
          internalTrafficPolicy: Local
          sessionAffinity: ClientIP
          sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}
          publishNotReadyAddresses: true
          loadBalancerSourceRanges: [203.0.113.0/24]
          healthCheckNodePort: 31999
        status: {loadBalancer: {ingress: [{hostname: lb.example}, {ip: 198.51.100.4}]}}
    """)
    svc = s.services[0]
    assert (svc.key, svc.type, svc.cluster_ip) == ("shop/web", "LoadBalancer", "10.96.3.4")
    assert svc.selector == {"app": "web"}
    assert [(p.name, p.port, p.protocol, p.target_port, p.node_port) for p in svc.ports] == [
        ("http", 80, "TCP", "http", 30080), ("dns", 53, "UDP", 5353, None)]
    assert svc.external_ips == [IPv4Address("192.0.2.7")]
    assert svc.load_balancer_ip == IPv4Address("198.51.100.4")
    assert (svc.external_traffic_policy, svc.internal_traffic_policy) == ("Local", "Local")
    assert (svc.session_affinity, svc.session_affinity_timeout) == ("ClientIP", 60)
    assert svc.publish_not_ready_addresses
    assert svc.load_balancer_source_ranges == [IPv4Network("203.0.113.0/24")]
    assert svc.health_check_node_port == 31999


def test_service_defaults_headless_and_external_name() -> None:
    s = load("""
        kind: Service
        apiVersion: v1
        metadata: {name: a}
        spec: {ports: [{port: 80}], selector: {}}
    """, """
        kind: Service
        apiVersion: v1
        metadata: {name: db}
        spec: {clusterIP: None, selector: {app: db}}
    """, """
        kind: Service
        apiVersion: v1
        metadata: {name: ext}
        spec: {type: ExternalName, externalName: www.example.com}
    """)
    a, db, ext = s.services
    assert (a.type, a.cluster_ip, a.selector, a.session_affinity_timeout) == \
        ("ClusterIP", None, None, 10800)
    assert a.ports[0].target_port is None and a.ports[0].protocol == "TCP"
    assert db.cluster_ip == "None" and db.ports == []
    assert (ext.type, ext.external_name) == ("ExternalName", "www.example.com")


def test_endpoint_slice_fields() -> None:
    s = load("""
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        metadata:
          name: web-abc
          namespace: shop
          labels: {kubernetes.io/service-name: web}
        addressType: IPv4
        endpoints:
        - addresses: [10.244.1.2]
          conditions: {ready: true}
          hostname: web-0
          nodeName: node-1
          targetRef: {kind: Pod, name: web-0}
        - addresses: [10.244.2.2]
          conditions: {ready: false, terminating: true}
        - addresses: [10.244.2.3]
        ports: [{name: http, port: 8080, protocol: TCP}, {name: all}]
    """)
    es = s.endpoint_slices[0]
    assert (es.namespace, es.name, es.service) == ("shop", "web-abc", "web")
    first, second, third = es.endpoints
    assert first.addresses == [IPv4Address("10.244.1.2")] and first.ready and first.serving
    assert (first.hostname, first.node_name, first.target_pod) == ("web-0", "node-1", "shop/web-0")
    # an unset serving is true, as kube-proxy reads it (endpointslicecache.go newEndpointSliceInfo)
    assert (second.ready, second.serving, second.terminating) == (False, True, True)
    assert third.ready and third.serving and not third.terminating
    assert [(p.name, p.port, p.protocol) for p in es.ports] == [("http", 8080, "TCP")]


def test_endpoint_slices_without_service_are_skipped_ipv6_ones_read() -> None:
    s = load("""
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        metadata: {name: loose}
        addressType: IPv4
        endpoints: []
    """, """
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        metadata: {name: v6, labels: {kubernetes.io/service-name: web}}
        addressType: IPv6
        endpoints: []
    """)
    assert [(e.name, e.address_type) for e in s.endpoint_slices] == [("v6", "IPv6")]
    assert len(s.warnings) == 1 and "no kubernetes.io/service-name label" in s.warnings[0]


def test_network_policy_is_read_with_its_namespace() -> None:
    s = load("""
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: deny}
        spec: {podSelector: {}, policyTypes: [Ingress]}
    """)
    policy = s.network_policies[0]
    assert (policy.key, policy.policy_types, policy.ingress) == ("default/deny", ("Ingress",), ())
    assert policy.pod_selector.empty


def test_cluster_fields() -> None:
    s = load("""
        apiVersion: pktsim/v1alpha1
        kind: Cluster
        metadata: {name: lab}
        spec:
          clusterDomain: Corp.Example.
          podCIDR: 10.32.0.0/16
          serviceCIDR: 10.100.0.0/16
          nodeCIDR: 192.168.50.0/24
          externalCIDR: 100.64.0.0/24
          loadBalancerCIDR: 100.65.0.0/28
          nodes: 5
          network: vxlan
          bridge: br-k8s
          hairpinMode: false
          proxyMode: iptables
          dns: none
          upstream: {Example.COM.: 93.184.216.34}
          startTime: "2026-03-01T12:00:00.000000005+01:00"
          seed: 42
    """)
    c = s.config
    assert c.cluster_domain == "corp.example"
    assert (c.pod_cidr, c.service_cidr) == (IPv4Network("10.32.0.0/16"),
                                            IPv4Network("10.100.0.0/16"))
    assert (c.node_cidr, c.external_cidr, c.load_balancer_cidr) == (
        IPv4Network("192.168.50.0/24"), IPv4Network("100.64.0.0/24"),
        IPv4Network("100.65.0.0/28"))
    assert (c.nodes, c.network, c.bridge, c.hairpin_mode, c.proxy_mode, c.dns) == \
        (5, "vxlan", "br-k8s", False, "iptables", "none")
    assert c.upstream == {"example.com": IPv4Address("93.184.216.34")}
    assert c.start_time_ns == 1772362800 * 10**9 + 5
    assert c.seed == 42 and c.source is not None and c.source.name == "lab"


def test_cluster_fields_may_sit_at_the_top_level() -> None:
    s = load("""
        apiVersion: pktsim/v1alpha1
        kind: Cluster
        network: ipip
        startTime: 2026-01-01T00:00:00Z
    """)
    assert s.config.network == "ipip" and s.config.start_time_ns == 1767225600 * 10**9


def test_unknown_kinds_are_skipped_with_one_warning_each() -> None:
    s = load("""
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: cfg}
        data: {a: b}
    """, """
        apiVersion: networking.k8s.io/v1
        kind: Ingress
        metadata: {name: ing}
    """, """
        apiVersion: cluster.x-k8s.io/v1beta1
        kind: Cluster
        metadata: {name: capi}
    """, file="app.yaml")
    assert s.warnings == [
        "app.yaml: document 1: kind ConfigMap skipped (not modelled)",
        "app.yaml: document 2: kind Ingress skipped (not modelled)",
        "app.yaml: document 3: kind Cluster (cluster.x-k8s.io/v1beta1) skipped (not modelled)",
    ]
    assert s.config.source is None


# ------------------------------------------------------------------------- List, snapshots


def test_list_flattening_nested_and_typed_lists() -> None:
    s = load("""
        apiVersion: v1
        kind: List
        items:
        - {apiVersion: v1, kind: Namespace, metadata: {name: a}}
        - apiVersion: v1
          kind: List
          items:
          - null
          - {apiVersion: v1, kind: Secret, metadata: {name: s}}
        - apiVersion: v1
          kind: PodList
          items:
          - metadata: {name: p1, namespace: a}
            spec: {containers: [{name: c}]}
    """)
    assert s.namespaces == ["a", "default", "kube-system"]
    assert s.warnings == ["test.yaml: document 1 items[1].items[1]: kind Secret skipped "
                          "(not modelled)"]
    pod = s.pods[0]
    assert pod.key == "a/p1"
    assert pod.source is not None
    assert pod.source.document() == "document 1 items[2].items[0] (Pod a/p1)"


def test_json_input() -> None:
    docs = list(yaml.safe_load_all(SNAPSHOT))
    s = load_scenario([("snap.json", json.dumps(docs[0]))], addons=False)
    assert [p.key for p in s.pods] == ["default/web-7c79c4bf97-xk2lq"]
    assert s.pods[0].source is not None
    assert s.pods[0].source.document() == "document 1 items[3] (Pod default/web-7c79c4bf97-xk2lq)"


def test_document_index_counts_empty_documents() -> None:
    s = load_scenario([("f.yaml", "---\n---\nkind: Node\napiVersion: v1\nmetadata: {name: n}\n")],
                      addons=False)
    assert s.nodes[0].source is not None and s.nodes[0].source.index == 2


SNAPSHOT = """
apiVersion: v1
kind: List
metadata: {resourceVersion: ""}
items:
- apiVersion: v1
  kind: Node
  metadata:
    name: kind-worker
    uid: 0d7f6c1e-5b1f-4c9b-9a43-8d9d3b1f7a10
    resourceVersion: "612"
    creationTimestamp: "2026-01-01T00:00:00Z"
    labels: {kubernetes.io/hostname: kind-worker, kubernetes.io/os: linux}
    annotations: {node.alpha.kubernetes.io/ttl: "0"}
    managedFields:
    - {apiVersion: v1, fieldsType: FieldsV1, manager: kubelet, operation: Update,
       fieldsV1: {"f:status": {"f:addresses": {}}}}
  spec:
    podCIDR: 10.244.1.0/24
    podCIDRs: [10.244.1.0/24]
    providerID: kind://docker/kind/kind-worker
  status:
    addresses: [{address: 172.18.0.3, type: InternalIP}, {address: kind-worker, type: Hostname}]
    conditions: [{type: Ready, status: "True", lastHeartbeatTime: "2026-01-01T00:00:00Z"}]
    nodeInfo: {kubeletVersion: v1.31.0}
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: web, namespace: default, uid: a, generation: 1,
             annotations: {deployment.kubernetes.io/revision: "1"}}
  spec:
    replicas: 2
    selector: {matchLabels: {app: web}}
    template:
      metadata: {creationTimestamp: null, labels: {app: web}}
      spec:
        containers:
        - {name: nginx, image: nginx, ports: [{containerPort: 80, protocol: TCP}],
           resources: {}, terminationMessagePath: /dev/termination-log}
        restartPolicy: Always
  status: {availableReplicas: 2, readyReplicas: 2, replicas: 2}
- apiVersion: apps/v1
  kind: ReplicaSet
  metadata:
    name: web-7c79c4bf97
    namespace: default
    labels: {app: web, pod-template-hash: 7c79c4bf97}
    ownerReferences:
    - {apiVersion: apps/v1, kind: Deployment, name: web, uid: a, controller: true,
       blockOwnerDeletion: true}
  spec:
    replicas: 2
    selector: {matchLabels: {app: web, pod-template-hash: 7c79c4bf97}}
    template:
      metadata: {labels: {app: web, pod-template-hash: 7c79c4bf97}}
      spec: {containers: [{name: nginx, ports: [{containerPort: 80}]}]}
- apiVersion: v1
  kind: Pod
  metadata:
    name: web-7c79c4bf97-xk2lq
    namespace: default
    labels: {app: web, pod-template-hash: 7c79c4bf97}
    ownerReferences:
    - {apiVersion: apps/v1, kind: ReplicaSet, name: web-7c79c4bf97, uid: b, controller: true}
  spec:
    containers: [{name: nginx, ports: [{containerPort: 80, protocol: TCP}]}]
    nodeName: kind-worker
    dnsPolicy: ClusterFirst
  status:
    phase: Running
    podIP: 10.244.1.7
    podIPs: [{ip: 10.244.1.7}]
    hostIP: 172.18.0.3
    conditions:
    - {type: Ready, status: "True"}
    - {type: ContainersReady, status: "True"}
    startTime: "2026-01-01T00:00:05Z"
- apiVersion: v1
  kind: Service
  metadata: {name: web, namespace: default, uid: c, resourceVersion: "700"}
  spec:
    clusterIP: 10.96.200.20
    clusterIPs: [10.96.200.20]
    ipFamilies: [IPv4]
    ipFamilyPolicy: SingleStack
    ports: [{port: 80, protocol: TCP, targetPort: 80}]
    selector: {app: web}
    sessionAffinity: None
    type: ClusterIP
  status: {loadBalancer: {}}
- apiVersion: discovery.k8s.io/v1
  kind: EndpointSlice
  metadata:
    name: web-x7q2z
    namespace: default
    labels: {kubernetes.io/service-name: web, endpointslice.kubernetes.io/managed-by: c}
    generateName: web-
  addressType: IPv4
  endpoints:
  - addresses: [10.244.1.7]
    conditions: {ready: true, serving: true, terminating: false}
    nodeName: kind-worker
    targetRef: {kind: Pod, name: web-7c79c4bf97-xk2lq, namespace: default, uid: d}
  ports: [{name: "", port: 80, protocol: TCP}]
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: kube-root-ca.crt, namespace: default}
  data: {ca.crt: "x"}
"""


def test_kubectl_snapshot_loads_as_the_cluster_it_describes() -> None:
    s = load_scenario([("snap.yaml", SNAPSHOT)], addons=False)
    assert [n.name for n in s.nodes] == ["kind-worker"]
    assert s.nodes[0].pod_cidr == IPv4Network("10.244.1.0/24")
    assert s.nodes[0].internal_ip == IPv4Address("172.18.0.3")
    # the pod the snapshot holds, and none generated from the Deployment or its ReplicaSet
    assert [p.key for p in s.pods] == ["default/web-7c79c4bf97-xk2lq"]
    pod = s.pods[0]
    assert pod.owner == "ReplicaSet/web-7c79c4bf97" and pod.node_name == "kind-worker"
    assert pod.pod_ip == IPv4Address("10.244.1.7")
    assert s.services[0].cluster_ip == "10.96.200.20"
    assert s.endpoint_slices[0].endpoints[0].target_pod == "default/web-7c79c4bf97-xk2lq"
    assert s.warnings == ["snap.yaml: document 1 items[6]: kind ConfigMap skipped (not modelled)"]


def test_deployment_and_its_replicaset_without_pods_expand_once() -> None:
    snapshot = "\n".join(line for line in SNAPSHOT.split("- apiVersion: v1\n  kind: Pod")[0]
                         .splitlines())
    s = load_scenario([("snap.yaml", snapshot)], addons=False)
    assert len(s.pods) == 2
    assert all(p.owner == "Deployment/web" for p in s.pods)


# ------------------------------------------------------------------------------- workloads


def test_deployment_pod_names_labels_and_containers() -> None:
    s = load(DEPLOYMENT)
    assert len(s.pods) == 3
    names = [p.name for p in s.pods]
    assert all(re.fullmatch(f"web-{ALPHA}{{10}}-{ALPHA}{{5}}", n) for n in names), names
    assert len({n.split("-")[1] for n in names}) == 1  # one template hash
    assert len(set(names)) == 3
    pod = s.pods[0]
    assert pod.namespace == "shop" and pod.owner == "Deployment/web"
    digest = names[0].split("-")[1]
    assert pod.labels == {"app": "web", "tier": "front", "pod-template-hash": digest}
    assert [(p.port, p.protocol, p.name) for p in pod.containers[0].ports] == [
        (8080, "TCP", "http"), (53, "UDP", "")]
    assert pod.source is not None and pod.source.kind == "Deployment"


def test_pod_names_are_deterministic_per_seed() -> None:
    first = [p.name for p in load(DEPLOYMENT).pods]
    assert [p.name for p in load(DEPLOYMENT).pods] == first
    assert [p.name for p in load(CLUSTER % 0, DEPLOYMENT).pods] == first
    other = [p.name for p in load(CLUSTER % 1, DEPLOYMENT).pods]
    assert set(other).isdisjoint(first)
    assert [p.name for p in load(DEPLOYMENT, seed=1).pods] == other
    # the Cluster document may come after the workload
    assert [p.name for p in load(DEPLOYMENT, CLUSTER % 1).pods] == other


def test_more_replicas_keep_the_first_names() -> None:
    three = [p.name for p in load(DEPLOYMENT).pods]
    five = [p.name for p in load(DEPLOYMENT.replace("replicas: 3", "replicas: 5")).pods]
    assert five[:3] == three


def test_replica_defaults_and_zero() -> None:
    one = load(DEPLOYMENT.replace("replicas: 3", ""))
    zero = load(DEPLOYMENT.replace("replicas: 3", "replicas: 0"))
    assert len(one.pods) == 1 and zero.pods == []


def test_replicaset_names() -> None:
    s = load("""
        apiVersion: apps/v1
        kind: ReplicaSet
        metadata: {name: rs}
        spec:
          replicas: 2
          template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c}]}}
    """)
    assert all(re.fullmatch(f"rs-{ALPHA}{{5}}", p.name) for p in s.pods)
    assert [p.owner for p in s.pods] == ["ReplicaSet/rs"] * 2


def test_statefulset_ordinals_hostname_subdomain() -> None:
    s = load("""
        apiVersion: apps/v1
        kind: StatefulSet
        metadata: {name: db, namespace: data}
        spec:
          replicas: 3
          serviceName: db-hl
          template: {metadata: {labels: {app: db}}, spec: {containers: [{name: pg}]}}
    """)
    assert [p.name for p in s.pods] == ["db-0", "db-1", "db-2"]
    assert [(p.hostname, p.subdomain) for p in s.pods][1] == ("db-1", "db-hl")
    assert s.pods[2].labels["statefulset.kubernetes.io/pod-name"] == "db-2"
    started = load("""
        apiVersion: apps/v1
        kind: StatefulSet
        metadata: {name: db}
        spec:
          replicas: 2
          ordinals: {start: 5}
          template: {spec: {containers: [{name: pg}]}}
    """)
    assert [p.name for p in started.pods] == ["db-5", "db-6"]


DAEMONSET = """
    apiVersion: apps/v1
    kind: DaemonSet
    metadata: {name: agent, namespace: kube-system}
    spec:
      template:
        metadata: {labels: {app: agent}}
        spec: {containers: [{name: a, ports: [{containerPort: 9100}]}]}
"""


def test_daemonset_one_pod_per_cluster_node() -> None:
    s = load(CLUSTER.replace("seed: %d", "nodes: 3"), DAEMONSET)
    assert [p.node_name for p in s.pods] == ["node-1", "node-2", "node-3"]
    assert all(re.fullmatch(f"agent-{ALPHA}{{5}}", p.name) for p in s.pods)
    assert len({p.name for p in s.pods}) == 3


def test_daemonset_uses_stream_nodes_and_node_selector() -> None:
    nodes = [f"""
        apiVersion: v1
        kind: Node
        metadata: {{name: {name}, labels: {{role: {role}}}}}
    """ for name, role in (("b", "edge"), ("a", "edge"), ("c", "core"))]
    s = load(DAEMONSET, *nodes)
    assert [p.node_name for p in s.pods] == ["a", "b", "c"]
    picky = load(DAEMONSET.replace("spec: {containers", "spec: {nodeSelector: {role: edge}, "
                                   "containers"), *nodes)
    assert [p.node_name for p in picky.pods] == ["a", "b"]
    # adding a node renames no other pod
    fewer = load(DAEMONSET, *nodes[:2])
    assert {p.name for p in fewer.pods} < {p.name for p in s.pods}


def test_pods_keep_creation_order() -> None:
    s = load("""
        kind: Pod
        apiVersion: v1
        metadata: {name: first}
        spec: {containers: [{name: c}]}
    """, DEPLOYMENT.replace("replicas: 3", "replicas: 1"), """
        kind: Pod
        apiVersion: v1
        metadata: {name: last}
        spec: {containers: [{name: c}]}
    """)
    assert [p.name for p in s.pods][0::2] == ["first", "last"]
    assert s.pods[1].owner == "Deployment/web"


# --------------------------------------------------------------------------------- Traffic


def traffic(*flows: str) -> str:
    body = "\n".join(f"  - {f}" for f in flows)
    head = "apiVersion: pktsim/v1alpha1\nkind: Traffic\nmetadata: {name: t}\n"
    return f"{head}spec:\n  flows:\n{body}\n"


@pytest.mark.parametrize(("start", "ns"), [
    ("0ms", 0), ("0", 0), ("1s", 10**9), ("250us", 250_000), ("250µs", 250_000), ("10ns", 10),
    ("1.5s", 1_500_000_000), ("1m30s", 90 * 10**9), ("2h", 7200 * 10**9), ("250", 250 * 10**6),
    ("0.5ms", 500_000),
])
def test_flow_start_durations(start: str, ns: int) -> None:
    s = load(traffic(f"{{from: default/a, to: b, start: {start}}}"))
    assert s.flows[0].start_ns == ns


def test_flow_defaults_and_fields() -> None:
    s = load(traffic("{from: default/a/side, to: 'localhost:8080'}",
                     "{name: ping, from: 'node:node-1', to: 10.244.1.2, protocol: ICMP, count: 3, "
                     "ttl: 2}",
                     "{from: external, to: 'web.shop:53', protocol: udp, payload: 30}",
                     "{from: 'external:client2', to: web, payload: 'héllo'}"))
    a, ping, udp, text = s.flows
    assert (a.name, a.source_ref, a.target, a.protocol, a.count, a.payload, a.start_ns) == \
        ("flow-1", "default/a/side", "localhost:8080", "tcp", 1, b"", 0)
    assert (ping.name, ping.protocol, ping.count, ping.ttl) == ("ping", "icmp", 3, 2)
    assert a.ttl is None
    assert udp.payload == b"abcdefghijklmnopqrstuvwxyzabcd"
    assert text.payload == "héllo".encode()
    assert a.source is not None and a.source.document() == "document 1 (Traffic t)"


def test_url_implies_tcp() -> None:
    s = load(traffic("{from: default/a, to: 'http://web.shop:8080/index.html'}"))
    assert s.flows[0].protocol == "tcp"


def test_lookups() -> None:
    s = load(traffic("{from: default/a, lookup: web}",
                     "{from: default/a, lookup: _http._tcp.web.shop.svc.cluster.local., "
                     "type: srv, protocol: tcp}"))
    a, srv = s.flows
    assert (a.lookup, a.qtype, a.protocol, a.target) == ("web", "A", "udp", "")
    assert (srv.lookup, srv.qtype, srv.protocol) == \
        ("_http._tcp.web.shop.svc.cluster.local.", "SRV", "tcp")


def test_flow_numbers_run_across_traffic_documents() -> None:
    s = load(traffic("{from: default/a, to: b}", "{name: x, from: default/a, to: b}"),
             traffic("{from: default/a, to: c}"))
    assert [f.name for f in s.flows] == ["flow-1", "x", "flow-3"]


# ------------------------------------------------------------------------------ load_paths


def test_load_paths_files_directories_and_stdin(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.yaml").write_text("kind: Namespace\napiVersion: v1\nmetadata: {name: a}\n")
    (tmp_path / "b.yml").write_text("kind: Namespace\napiVersion: v1\nmetadata: {name: b}\n")
    (tmp_path / "notes.txt").write_text("not yaml: [")
    monkeypatch.setattr("sys.stdin", io.StringIO(
        "kind: Namespace\napiVersion: v1\nmetadata: {name: c}\n"))
    s = load_paths([str(tmp_path), "-"], addons=False)
    assert s.namespaces == ["a", "b", "c", "default", "kube-system"]
    single = load_paths([str(tmp_path / "a.yaml")], seed=3, addons=False)
    assert single.namespaces[0] == "a" and single.config.seed == 3
