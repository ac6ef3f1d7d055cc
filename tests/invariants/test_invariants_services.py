"""The Service and DNS invariants hold on honest runs and each catches a broken model:
a conntrack that forgets to un-DNAT replies, a DNAT that picks a backend per packet, a
kube-proxy that uses not-ready or deleted endpoints, a CoreDNS that answers a wrong address
or NXDOMAIN for a name that exists."""

from __future__ import annotations

import copy
import dataclasses
from ipaddress import IPv4Address
from typing import Any

import pytest

import pktsim
from pktsim import invariants
from pktsim.dns import backend as dns_backend
from pktsim.kubeproxy import node_rules
from pktsim.kubeproxy import rules as kp_rules
from pktsim.model.services import EndpointAddr
from pktsim.netfilter import nat
from pktsim.netfilter.mangle import DST, SRC

SCENARIO = """
apiVersion: pktsim/v1alpha1
kind: Cluster
spec: {nodes: 2}
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec: {nodeName: node-1, containers: [{name: c}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web-a, labels: {app: web}}
spec: {nodeName: node-2, containers: [{name: c, ports: [{containerPort: 8080, name: http}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web-b, labels: {app: web}}
spec: {nodeName: node-2, containers: [{name: c, ports: [{containerPort: 8080, name: http}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web-c, labels: {app: web}}
spec: {nodeName: node-1, containers: [{name: c, ports: [{containerPort: 8080, name: http}]}]}
status:
  conditions: [{type: Ready, status: "False"}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: 10.96.45.12
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: pktsim/v1alpha1
kind: Traffic
spec:
  flows:
  - {name: vip, from: default/client, to: 'http://10.96.45.12/', count: 8}
  - {name: by-name, from: default/client, to: 'http://web/', start: 1s}
  - {name: lookup, from: default/client, lookup: web.default, start: 2s}
"""
# web-a 10.244.1.2 and web-b 10.244.1.3 (node-2) are ready; web-c 10.244.0.3 is not


def cluster() -> pktsim.Cluster:
    return pktsim.load(SCENARIO)


def test_honest_run_keeps_every_service_and_dns_invariant() -> None:
    result = cluster().run()
    invariants.check_all(result)
    backends = {e.nat.new for e in result.events if e.nat is not None
                and e.summary.startswith("kube-proxy DNAT 10.96.45.12")}
    assert backends == {"10.244.1.2:8080", "10.244.1.3:8080"}  # both ready ones, not web-c


def test_replies_that_are_not_un_dnated_are_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    original = nat.manip_for

    def forget_un_dnat(conn: Any, d: int, mt: int) -> Any:
        if d == 1 and mt == SRC and conn.dst_nat:
            return None  # the reply keeps the backend's address
        return original(conn, d, mt)

    monkeypatch.setattr(nat, "manip_for", forget_un_dnat)
    result = cluster().run()
    with pytest.raises(AssertionError, match=(
            r"frame #\d+ \(default/client:eth0, inbound\): packet \d+ tcp "
            r"10\.244\.1\.[23]:8080 -> 10\.244\.0\.2:\d+ answers the connection the client "
            r"opened to 10\.96\.45\.12:80 \(Service default/web port http/TCP, frame #\d+\), "
            r"but comes from 10\.244\.1\.[23]:8080.*not un-DNATed")):
        invariants.service_replies_from_vip(result)
    with pytest.raises(AssertionError, match="flows not delivered"):
        invariants.flows_delivered(result)  # the client resets what it did not ask for


def test_a_dnat_that_picks_a_backend_per_packet_is_caught(
        monkeypatch: pytest.MonkeyPatch) -> None:
    original = nat.manip_for
    backends = [bytes([10, 244, 1, 2]), bytes([10, 244, 1, 3])]
    seen: dict[int, int] = {}

    def per_packet(conn: Any, d: int, mt: int) -> Any:
        target = original(conn, d, mt)
        if target is None or d != 0 or mt != DST or target.dport != 8080:
            return target
        seen[conn.id] = seen.get(conn.id, 0) + 1
        if seen[conn.id] == 1:
            return target  # the first packet goes where the rules said
        other = next(b for b in backends if b != target.dst)
        return target._replace(dst=other)  # ... every later one elsewhere

    monkeypatch.setattr(nat, "manip_for", per_packet)
    result = cluster().run()
    with pytest.raises(AssertionError, match=(
            r"packet \d+ \(tcp 10\.244\.0\.2:\d+ -> 10\.96\.45\.12:80, frame #\d+ "
            r"\(default/client:eth0, outbound\)\) went to backend 10\.244\.1\.[23]:8080 "
            r"\(frame #\d+ \(node-1:cbr0, inbound\)\), but its connection's first packet \d+ "
            r"\(frame #\d+ \(default/client:eth0, outbound\)\) went to 10\.244\.1\.[23]:8080")):
        invariants.connections_keep_their_backend(result)


def test_kube_proxy_using_not_ready_endpoints_is_caught(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def everyone(sp: Any, node: str = "", zone: str = "") -> tuple[
            list[Any], list[Any], list[Any], bool]:
        ready = [dataclasses.replace(ep, ready=True) for ep in sp.endpoints]
        return ready, [ep for ep in ready if ep.local], ready, bool(ready)

    monkeypatch.setattr(kp_rules, "categorize", everyone)
    result = cluster().run()
    with pytest.raises(AssertionError, match=(
            r"packet \d+ \(vip\) at node-1:cbr0, next captured as frame #\d+: kube-proxy DNAT "
            r"10\.96\.45\.12:80 -> 10\.244\.0\.3:8080, but 10\.244\.0\.3:8080 is not a ready "
            r"endpoint of Service default/web \(ready: 10\.244\.1\.2:8080, 10\.244\.1\.3:8080\)")):
        invariants.backends_are_ready_endpoints(result)


def test_kube_proxy_with_a_deleted_endpoint_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """kube-proxy still programs web-d (10.244.1.9), a pod deleted since: stale rules."""
    stale = copy.deepcopy(cluster().model)
    stale.services["default/web"].ports[0].endpoints.append(
        EndpointAddr(IPv4Address("10.244.1.9"), 8080, True, "node-2", "", "default/web-d"))
    monkeypatch.setattr("pktsim.build.topology.node_rules",
                        lambda model, node: node_rules(stale, node))
    result = cluster().run()
    with pytest.raises(AssertionError, match=(
            r"kube-proxy DNAT 10\.96\.45\.12:80 -> 10\.244\.1\.9:8080, but 10\.244\.1\.9:8080 "
            r"is not a ready endpoint of Service default/web")):
        invariants.backends_are_ready_endpoints(result)


def test_coredns_answering_a_wrong_address_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    original = dns_backend.KubeBackend._services

    def wrong(self: Any, req: Any, zone: str) -> list[Any]:
        return [dataclasses.replace(e, host="10.96.45.13") if e.host == "10.96.45.12" else e
                for e in original(self, req, zone)]

    monkeypatch.setattr(dns_backend.KubeBackend, "_services", wrong)
    result = cluster().run()
    with pytest.raises(AssertionError, match=(
            r"frame #\d+ \(kube-system/coredns-[a-z0-9-]+:eth0, outbound\): packet \d+: DNS "
            r"response \d+ answers web\.default\.svc\.cluster\.local\. A 10\.96\.45\.13, but "
            r"the model says 10\.96\.45\.12")):
        invariants.dns_answers_match_model(result)


def test_coredns_nxdomain_for_an_existing_service_is_caught(
        monkeypatch: pytest.MonkeyPatch) -> None:
    original = dns_backend.KubeBackend._services

    def forgetful(self: Any, req: Any, zone: str) -> list[Any]:
        if req.service == "web":
            raise dns_backend.NameErr("forgot web")
        return original(self, req, zone)

    monkeypatch.setattr(dns_backend.KubeBackend, "_services", forgetful)
    result = cluster().run()
    with pytest.raises(AssertionError, match=(
            r"frame #\d+ \(.*\): packet \d+: DNS response \d+ says NXDOMAIN for "
            r"web\.default\.svc\.cluster\.local\., which exists in the model \(10\.96\.45\.12\)")):
        invariants.dns_answers_match_model(result)


def test_upstream_answers_are_checked_too(monkeypatch: pytest.MonkeyPatch) -> None:
    from pktsim.dns import upstream

    text = ("apiVersion: pktsim/v1alpha1\nkind: Cluster\nspec: {upstream: {example.com: "
            "203.0.113.10}}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: "
            "{containers: [{name: c}]}\n---\napiVersion: pktsim/v1alpha1\nkind: Traffic\n"
            "spec: {flows: [{from: default/a, lookup: example.com}]}\n")
    invariants.check_all(pktsim.load(text).run())
    monkeypatch.setattr(upstream.UpstreamResolver, "lookup", lambda self, name: None)
    with pytest.raises(AssertionError, match=r"says NXDOMAIN for example\.com\., which exists "
                                             r"in the model \(203\.0\.113\.10\)"):
        invariants.dns_answers_match_model(pktsim.load(text).run())


def test_every_check_names_a_frame_and_an_interface() -> None:
    """The docstring table lists every invariant check_all runs."""
    doc = invariants.__doc__ or ""
    for name in invariants.__all__:
        if name not in ("Hop", "check_all", "hops"):
            assert f"``{name}``" in doc, name


def test_a_service_port_is_matched_by_the_packets_protocol() -> None:
    """TCP 80 and UDP 80 -> 53 on one Service: a UDP connection DNATed to :53 is to a ready
    endpoint (the invariant once looked the TCP port up first and called it wrong)."""
    text = """
apiVersion: pktsim/v1alpha1
kind: Cluster
spec: {network: routes, dns: none}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: default}
spec: {containers: [{name: app, image: nginx}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: default, labels: {app: web}}
spec:
  containers:
  - {name: app, image: nginx, ports: [{containerPort: 53, protocol: UDP}, {containerPort: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  clusterIP: 10.96.0.80
  selector: {app: web}
  ports:
  - {name: p0, port: 80, protocol: TCP}
  - {name: p1, port: 80, protocol: UDP, targetPort: 53}
"""
    cluster = pktsim.load(text)
    result = cluster.run(flows=[pktsim.flow("default/client", "10.96.0.80:80", protocol="udp"),
                                pktsim.flow("default/client", "10.96.0.80:80", name="t",
                                            start="1s")])
    assert {n.new.rpartition(":")[2] for e in result.events if (n := e.nat) is not None
            and e.summary.startswith("kube-proxy DNAT")} == {"53", "80"}
    invariants.backends_are_ready_endpoints(result)
