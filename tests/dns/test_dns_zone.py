"""CoreDNS's kubernetes plugin as kubeadm configures it: the kubernetes/dns specification and
coredns ``plugin/kubernetes`` (``kubernetes.go``, ``parse.go``, ``reverse.go``, ``handler.go``).

Every response is checked as bytes: ``encode`` packs it as CoreDNS would and
``dns.message.from_wire`` reads it back.  Expected values cite coredns
``plugin/kubernetes/handler_test.go`` where it has the same case.
"""

from __future__ import annotations

import random
from ipaddress import IPv4Address

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest

import pktsim
from pktsim.dns import ClusterZone, CoreDns, UpstreamResolver, encode
from pktsim.dns.wire import render

CLUSTER = """
apiVersion: pktsim/v1alpha1
kind: Cluster
metadata: {name: dns}
spec: {nodes: 3}
---
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Pod
metadata: {name: coredns-0, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec:
  nodeName: node-1
  dnsPolicy: Default
  containers:
  - name: coredns
    ports:
    - {containerPort: 53, protocol: UDP, name: dns}
    - {containerPort: 53, protocol: TCP, name: dns-tcp}
    - {containerPort: 9153, name: metrics}
status: {podIP: 10.244.0.3}
---
apiVersion: v1
kind: Pod
metadata: {name: web-a, labels: {app: web}}
spec: {nodeName: node-2, containers: [{name: c, ports: [{containerPort: 8080}]}]}
status: {podIP: 10.244.1.5}
---
apiVersion: v1
kind: Pod
metadata: {name: web-b, labels: {app: web}}
spec: {nodeName: node-3, containers: [{name: c, ports: [{containerPort: 8080}]}]}
status: {podIP: 10.244.2.7}
---
apiVersion: v1
kind: Pod
metadata: {name: db-0, labels: {app: db}}
spec:
  nodeName: node-2
  hostname: db-0
  subdomain: db
  containers: [{name: c, ports: [{containerPort: 5432}]}]
status: {podIP: 10.244.1.9}
---
apiVersion: v1
kind: Pod
metadata: {name: db-1, labels: {app: db}}
spec:
  nodeName: node-3
  hostname: db-1
  subdomain: db
  containers: [{name: c, ports: [{containerPort: 5432}]}]
status: {podIP: 10.244.2.9}
---
apiVersion: v1
kind: Pod
metadata: {name: db-2, labels: {app: db}}
spec:
  nodeName: node-2
  hostname: db-2
  subdomain: db
  containers: [{name: c, ports: [{containerPort: 5432}]}]
status: {podIP: 10.244.1.10, conditions: [{type: Ready, status: "False"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: cache-0, labels: {app: cache}}
spec:
  nodeName: node-2
  containers: [{name: c, ports: [{containerPort: 7000}, {containerPort: 7001}]}]
status: {podIP: 10.244.1.20}
---
apiVersion: v1
kind: Pod
metadata: {name: cache-1, labels: {app: cache}}
spec:
  nodeName: node-3
  containers: [{name: c, ports: [{containerPort: 7000}, {containerPort: 7001}]}]
status: {podIP: 10.244.2.20}
---
apiVersion: v1
kind: Pod
metadata: {name: busybox-1, labels: {name: busybox}}
spec:
  nodeName: node-2
  hostname: busybox-1
  subdomain: default-subdomain
  containers: [{name: busybox}]
status: {podIP: 10.244.1.30}
---
apiVersion: v1
kind: Pod
metadata: {name: busybox-2, labels: {name: busybox}}
spec:
  nodeName: node-3
  hostname: busybox-2
  subdomain: default-subdomain
  containers: [{name: busybox}]
status: {podIP: 10.244.2.30}
---
apiVersion: v1
kind: Pod
metadata: {name: lonely-0, labels: {app: lonely}}
spec: {nodeName: node-2, containers: [{name: c}]}
status: {podIP: 10.244.1.40, conditions: [{type: Ready, status: "False"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web}}
spec: {nodeName: node-1, containers: [{name: c, ports: [{containerPort: 8080}]}]}
status: {podIP: 10.244.0.20}
---
apiVersion: v1
kind: Service
metadata: {name: kube-dns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec:
  selector: {k8s-app: kube-dns}
  ports:
  - {name: dns, port: 53, protocol: UDP}
  - {name: dns-tcp, port: 53, protocol: TCP}
  - {name: metrics, port: 9153}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: 10.96.45.12
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web2}
spec:
  clusterIP: 10.96.45.14
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: empty}
spec: {clusterIP: 10.96.45.13, selector: {app: none}, ports: [{name: http, port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: plain}
spec: {clusterIP: 10.96.45.20, selector: {app: web}, ports: [{port: 8000, targetPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: db}
spec: {clusterIP: None, selector: {app: db}, ports: [{name: pg, port: 5432}]}
---
apiVersion: v1
kind: Service
metadata: {name: db-all}
spec:
  clusterIP: None
  publishNotReadyAddresses: true
  selector: {app: db}
  ports: [{name: pg, port: 5432}]
---
apiVersion: v1
kind: Service
metadata: {name: cache}
spec:
  clusterIP: None
  selector: {app: cache}
  ports: [{name: a, port: 7000}, {name: b, port: 7001}]
---
apiVersion: v1
kind: Service
metadata: {name: raw}
spec: {clusterIP: None, selector: {app: db}}
---
apiVersion: v1
kind: Service
metadata: {name: default-subdomain}
spec: {clusterIP: None, selector: {name: busybox}, ports: [{name: foo, port: 1234}]}
---
apiVersion: v1
kind: Service
metadata: {name: lonely}
spec: {clusterIP: None, selector: {app: lonely}, ports: [{name: x, port: 1}]}
---
apiVersion: v1
kind: Service
metadata: {name: foo}
spec: {type: ExternalName, externalName: www.example.com}
---
apiVersion: v1
kind: Service
metadata: {name: bar}
spec: {type: ExternalName, externalName: web.default.svc.cluster.local}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  clusterIP: 10.96.46.1
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
"""

SOA = "cluster.local. 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. " \
    "1767225600 7200 1800 86400 30"


@pytest.fixture(scope="module")
def model() -> pktsim.api.ClusterModel:
    return pktsim.load(CLUSTER).model


@pytest.fixture()
def zone(model: pktsim.api.ClusterModel) -> ClusterZone:
    return ClusterZone(model, rng=random.Random(1))


def query(name: str, qtype: str = "A", *, qid: int = 0x1234, rd: bool = True,
          edns: int | None = None) -> dns.message.Message:
    flags = dns.flags.RD if rd else 0
    if edns is None:
        return dns.message.make_query(name, qtype, use_edns=False, id=qid, flags=flags)
    return dns.message.make_query(name, qtype, use_edns=0, payload=edns, id=qid, flags=flags)


def ask(zone: ClusterZone, name: str, qtype: str = "A", *, tcp: bool = False,
        **kw: object) -> tuple[dns.message.Message, bytes]:
    q = query(name, qtype, **kw)  # type: ignore[arg-type]
    response = zone.answer(q)
    assert response is not None, f"{name} {qtype} was not answered by the zone"
    wire = encode(response, q, tcp=tcp)
    return dns.message.from_wire(wire), wire


def lines(section: list[dns.rrset.RRset]) -> list[str]:
    return [line for rrset in section for line in rrset.to_text().splitlines()]


def rcode(message: dns.message.Message) -> str:
    return dns.rcode.to_text(message.rcode())


# -- dns-version (kubernetes.go DNSSchemaVersion, TTL 28800) ------------------------------
def test_dns_version_txt(zone: ClusterZone) -> None:
    # handler_test: "dns-version.cluster.local 28800 IN TXT 1.1.0"
    reply, _ = ask(zone, "dns-version.cluster.local.", "TXT")
    assert rcode(reply) == "NOERROR"
    assert lines(reply.answer) == ['dns-version.cluster.local. 28800 IN TXT "1.1.0"']


# -- ClusterIP A (specification §2.3.1; kubeadm's ttl 30) ---------------------------------
def test_cluster_ip_a_record(zone: ClusterZone) -> None:
    reply, _ = ask(zone, "web.default.svc.cluster.local.")
    assert lines(reply.answer) == ["web.default.svc.cluster.local. 30 IN A 10.96.45.12"]
    assert reply.authority == [] and reply.additional == []


def test_service_without_endpoints_still_resolves(zone: ClusterZone) -> None:
    # handler_test "svcempty": the A record does not depend on endpoints
    reply, _ = ask(zone, "empty.default.svc.cluster.local.")
    assert lines(reply.answer) == ["empty.default.svc.cluster.local. 30 IN A 10.96.45.13"]


def test_kubernetes_service(zone: ClusterZone) -> None:
    reply, _ = ask(zone, "kubernetes.default.svc.cluster.local.")
    assert lines(reply.answer) == ["kubernetes.default.svc.cluster.local. 30 IN A 10.96.0.1"]


# -- SRV (specification §2.3.2; backend_lookup.go SRV(); parse.go) ------------------------
def test_named_port_srv_with_glue(zone: ClusterZone) -> None:
    # handler_test: "_http._tcp.svc1... SRV 0 100 80 svc1...", Extra "svc1... A 10.0.0.1"
    reply, _ = ask(zone, "_http._tcp.web.default.svc.cluster.local.", "SRV")
    assert lines(reply.answer) == [
        "_http._tcp.web.default.svc.cluster.local. 30 IN SRV 0 100 80 "
        "web.default.svc.cluster.local."]
    assert lines(reply.additional) == ["web.default.svc.cluster.local. 30 IN A 10.96.45.12"]


def test_srv_protocol_and_port_must_match(zone: ClusterZone) -> None:
    for name in ("_http._udp.web.default.svc.cluster.local.",
                 "_https._tcp.web.default.svc.cluster.local.",
                 "_http._tcp.plain.default.svc.cluster.local."):
        reply, _ = ask(zone, name, "SRV")
        assert rcode(reply) == "NXDOMAIN", name


def test_bare_name_srv_lists_every_port_even_unnamed(zone: ClusterZone) -> None:
    # parse.go: no _port._proto labels match every port; handler_test
    # "svc1.testns.svc.cluster.local. SRV"
    reply, _ = ask(zone, "plain.default.svc.cluster.local.", "SRV")
    assert lines(reply.answer) == [
        "plain.default.svc.cluster.local. 30 IN SRV 0 100 8000 plain.default.svc.cluster.local."]
    reply, _ = ask(zone, "kube-dns.kube-system.svc.cluster.local.", "SRV")
    # three ports, one ClusterIP: weight floor(100/3); dns and dns-tcp share (target, 53)
    assert lines(reply.answer) == [
        "kube-dns.kube-system.svc.cluster.local. 30 IN SRV 0 33 53 "
        "kube-dns.kube-system.svc.cluster.local.",
        "kube-dns.kube-system.svc.cluster.local. 30 IN SRV 0 33 9153 "
        "kube-dns.kube-system.svc.cluster.local."]
    assert lines(reply.additional) == [
        "kube-dns.kube-system.svc.cluster.local. 30 IN A 10.96.0.10"]


def test_headless_srv_weights_and_targets(zone: ClusterZone) -> None:
    # backend_lookup.go SRV(), weight floor(100 / 3): 3 ready endpoints -> 3 SRV
    # "0 33 <port> <host>..."; targets are the
    # dashed IPs because the pods' subdomain is "db", not "db-all"
    reply, _ = ask(zone, "_pg._tcp.db-all.default.svc.cluster.local.", "SRV")
    assert sorted(lines(reply.answer)) == sorted(
        f"_pg._tcp.db-all.default.svc.cluster.local. 30 IN SRV 0 33 5432 "
        f"{host}.db-all.default.svc.cluster.local."
        for host in ("10-244-1-9", "10-244-2-9", "10-244-1-10"))
    assert sorted(lines(reply.additional)) == sorted(
        f"{ip.replace('.', '-')}.db-all.default.svc.cluster.local. 30 IN A {ip}"
        for ip in ("10.244.1.9", "10.244.2.9", "10.244.1.10"))


def test_headless_srv_n_times_m(zone: ClusterZone) -> None:
    # specification §2.4.2: 2 endpoints x 2 named ports; _a._tcp has the 2 endpoint targets
    reply, _ = ask(zone, "_a._tcp.cache.default.svc.cluster.local.", "SRV")
    assert sorted(lines(reply.answer)) == [
        "_a._tcp.cache.default.svc.cluster.local. 30 IN SRV 0 50 7000 "
        "10-244-1-20.cache.default.svc.cluster.local.",
        "_a._tcp.cache.default.svc.cluster.local. 30 IN SRV 0 50 7000 "
        "10-244-2-20.cache.default.svc.cluster.local."]
    reply, _ = ask(zone, "cache.default.svc.cluster.local.", "SRV")
    assert len(lines(reply.answer)) == 4  # N x M
    assert {line.split()[6] for line in lines(reply.answer)} == {"7000", "7001"}
    assert {line.split()[5] for line in lines(reply.answer)} == {"25"}


def test_srv_with_stateful_hostnames(zone: ClusterZone) -> None:
    reply, _ = ask(zone, "_pg._tcp.db.default.svc.cluster.local.", "SRV")
    assert sorted(lines(reply.answer)) == [
        f"_pg._tcp.db.default.svc.cluster.local. 30 IN SRV 0 50 5432 {host}"
        for host in ("db-0.db.default.svc.cluster.local.", "db-1.db.default.svc.cluster.local.")]
    assert sorted(lines(reply.additional)) == [
        "db-0.db.default.svc.cluster.local. 30 IN A 10.244.1.9",
        "db-1.db.default.svc.cluster.local. 30 IN A 10.244.2.9"]


# -- PTR (specification §2.3.3; reverse.go serviceRecordForIP) ----------------------------
def test_ptr_for_cluster_ips(zone: ClusterZone) -> None:
    reply, _ = ask(zone, "10.0.96.10.in-addr.arpa.", "PTR")
    assert lines(reply.answer) == [
        "10.0.96.10.in-addr.arpa. 30 IN PTR kube-dns.kube-system.svc.cluster.local."]
    reply, _ = ask(zone, "1.0.96.10.in-addr.arpa.", "PTR")
    assert lines(reply.answer) == [
        "1.0.96.10.in-addr.arpa. 30 IN PTR kubernetes.default.svc.cluster.local."]
    assert reply.flags & dns.flags.AA


def test_ptr_for_endpoint_ip_names_every_service(zone: ClusterZone) -> None:
    # reverse_test: an address behind two services gets two PTRs
    reply, _ = ask(zone, "5.1.244.10.in-addr.arpa.", "PTR")
    assert sorted(lines(reply.answer)) == [
        "5.1.244.10.in-addr.arpa. 30 IN PTR 10-244-1-5.plain.default.svc.cluster.local.",
        "5.1.244.10.in-addr.arpa. 30 IN PTR 10-244-1-5.web.default.svc.cluster.local.",
        "5.1.244.10.in-addr.arpa. 30 IN PTR 10-244-1-5.web2.default.svc.cluster.local."]
    reply, _ = ask(zone, "9.1.244.10.in-addr.arpa.", "PTR")
    assert sorted(lines(reply.answer)) == [
        "9.1.244.10.in-addr.arpa. 30 IN PTR 10-244-1-9.db-all.default.svc.cluster.local.",
        "9.1.244.10.in-addr.arpa. 30 IN PTR 10-244-1-9.raw.default.svc.cluster.local.",
        "9.1.244.10.in-addr.arpa. 30 IN PTR db-0.db.default.svc.cluster.local."]


def test_unknown_reverse_names_fall_through(zone: ClusterZone) -> None:
    # fallthrough in-addr.arpa ip6.arpa: forwarded (None), never NXDOMAIN from the zone
    for name, qtype in (("99.99.99.10.in-addr.arpa.", "PTR"), ("1.0.96.in-addr.arpa.", "PTR"),
                        ("1.0.96.10.in-addr.arpa.", "A"),
                        ("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2"
                         ".ip6.arpa.", "PTR")):
        assert zone.answer(query(name, qtype)) is None, name


def test_names_outside_the_zones_are_forwarded(zone: ClusterZone) -> None:
    assert zone.answer(query("www.example.com.")) is None
    assert zone.answer(query("cluster.local.example.com.")) is None


# -- headless (specification §2.4; object/endpoint.go; endpointHostname) ------------------
def test_headless_a_records_are_the_ready_endpoints(zone: ClusterZone) -> None:
    reply, _ = ask(zone, "db.default.svc.cluster.local.")
    assert sorted(lines(reply.answer)) == [
        "db.default.svc.cluster.local. 30 IN A 10.244.1.9",
        "db.default.svc.cluster.local. 30 IN A 10.244.2.9"]


def test_headless_without_ready_endpoints_is_nxdomain(zone: ClusterZone) -> None:
    reply, _ = ask(zone, "lonely.default.svc.cluster.local.")
    assert rcode(reply) == "NXDOMAIN"
    assert lines(reply.authority) == [SOA]


def test_publish_not_ready_addresses(zone: ClusterZone) -> None:
    reply, _ = ask(zone, "db-all.default.svc.cluster.local.")
    assert {line.split()[-1] for line in lines(reply.answer)} == \
        {"10.244.1.9", "10.244.2.9", "10.244.1.10"}
    reply, _ = ask(zone, "db-2.db.default.svc.cluster.local.")
    assert rcode(reply) == "NXDOMAIN"  # not ready, not published


def test_endpoint_hostname_records(zone: ClusterZone) -> None:
    reply, _ = ask(zone, "db-0.db.default.svc.cluster.local.")
    assert lines(reply.answer) == ["db-0.db.default.svc.cluster.local. 30 IN A 10.244.1.9"]
    reply, _ = ask(zone, "10-244-2-9.db-all.default.svc.cluster.local.")
    assert lines(reply.answer) == [
        "10-244-2-9.db-all.default.svc.cluster.local. 30 IN A 10.244.2.9"]
    # an endpoint name works on a ClusterIP service too (findServices: r.endpoint != "")
    reply, _ = ask(zone, "10-244-1-5.web.default.svc.cluster.local.")
    assert lines(reply.answer) == [
        "10-244-1-5.web.default.svc.cluster.local. 30 IN A 10.244.1.5"]
    reply, _ = ask(zone, "bogusendpoint.db.default.svc.cluster.local.")
    assert rcode(reply) == "NXDOMAIN"  # handler_test "bogusendpoint.hdls1"


def test_pod_hostname_and_subdomain(zone: ClusterZone) -> None:
    # the busybox example of kubernetes/website dns-pod-service.md
    reply, _ = ask(zone, "busybox-1.default-subdomain.default.svc.cluster.local.")
    assert lines(reply.answer) == [
        "busybox-1.default-subdomain.default.svc.cluster.local. 30 IN A 10.244.1.30"]


def test_portless_headless_service(zone: ClusterZone) -> None:
    # handler_test "hdlsprtls": A records, and endpoint names, but no SRV (port -1)
    reply, _ = ask(zone, "raw.default.svc.cluster.local.")
    assert sorted(lines(reply.answer)) == ["raw.default.svc.cluster.local. 30 IN A 10.244.1.9",
                                           "raw.default.svc.cluster.local. 30 IN A 10.244.2.9"]
    reply, _ = ask(zone, "10-244-1-9.raw.default.svc.cluster.local.")
    assert lines(reply.answer) == ["10-244-1-9.raw.default.svc.cluster.local. 30 IN A 10.244.1.9"]
    reply, _ = ask(zone, "raw.default.svc.cluster.local.", "SRV")
    assert rcode(reply) == "NOERROR" and reply.answer == []


# -- ExternalName (specification §2.5) ----------------------------------------------------
def test_external_name_cname(zone: ClusterZone) -> None:
    reply, _ = ask(zone, "foo.default.svc.cluster.local.", "CNAME")
    assert lines(reply.answer) == ["foo.default.svc.cluster.local. 30 IN CNAME www.example.com."]


def test_external_name_a_stops_at_the_cname_for_the_caller_to_chase(zone: ClusterZone) -> None:
    q = query("foo.default.svc.cluster.local.")
    response = zone.answer(q)
    assert response is not None
    assert lines(response.answer) == [
        "foo.default.svc.cluster.local. 30 IN CNAME www.example.com."]
    target = zone.external_target(response)
    assert target is not None and target.to_text() == "www.example.com."
    upstream = UpstreamResolver({"www.example.com": IPv4Address("93.184.216.34")})
    ask_up = dns.message.make_query(target, "A", use_edns=False)
    full = zone.complete_chase(response, upstream.answer(ask_up))
    reply = dns.message.from_wire(encode(full, q, tcp=False))
    # CNAME first (loadbalance keeps CNAMEs in front), then the upstream answer
    assert lines(reply.answer) == ["foo.default.svc.cluster.local. 30 IN CNAME www.example.com.",
                                   "www.example.com. 300 IN A 93.184.216.34"]
    assert zone.external_target(reply) is None
    failed = zone.complete_chase(response, None)  # the lookup failed: NODATA
    assert failed.answer == [] and lines(failed.authority) == [SOA]


def test_external_name_to_an_internal_service_is_resolved_in_the_zone(zone: ClusterZone) -> None:
    # handler_test "CNAME External To Internal Service"
    reply, _ = ask(zone, "bar.default.svc.cluster.local.")
    assert lines(reply.answer) == [
        "bar.default.svc.cluster.local. 30 IN CNAME web.default.svc.cluster.local.",
        "web.default.svc.cluster.local. 30 IN A 10.96.45.12"]


def test_external_name_rejects_port_and_endpoint_labels(zone: ClusterZone) -> None:
    for name, qtype in (("_http._tcp.foo.default.svc.cluster.local.", "SRV"),
                        ("endpoint.foo.default.svc.cluster.local.", "CNAME")):
        reply, _ = ask(zone, name, qtype)
        assert rcode(reply) == "NXDOMAIN", name
    reply, _ = ask(zone, "foo.default.svc.cluster.local.", "SRV")
    assert rcode(reply) == "NOERROR" and reply.answer == []  # SRV of a CNAME: dropped


# -- pods insecure (kubernetes.go findPods) -----------------------------------------------
def test_pod_records_insecure(zone: ClusterZone) -> None:
    reply, _ = ask(zone, "172-17-0-3.default.pod.cluster.local.")
    assert lines(reply.answer) == ["172-17-0-3.default.pod.cluster.local. 30 IN A 172.17.0.3"]
    for name in ("foo.default.pod.cluster.local.", "10-0-0-1.nosuchns.pod.cluster.local."):
        reply, _ = ask(zone, name)
        assert rcode(reply) == "NXDOMAIN", name
    reply, _ = ask(zone, "default.pod.cluster.local.")
    assert rcode(reply) == "NOERROR" and reply.answer == []


def test_pod_records_disabled_and_verified(model: pktsim.api.ClusterModel) -> None:
    disabled = ClusterZone(model, pods_mode="disabled")
    reply, _ = ask(disabled, "10-244-1-5.default.pod.cluster.local.")
    assert rcode(reply) == "NXDOMAIN"
    verified = ClusterZone(model, pods_mode="verified")
    reply, _ = ask(verified, "10-244-1-5.default.pod.cluster.local.")
    assert lines(reply.answer) == ["10-244-1-5.default.pod.cluster.local. 30 IN A 10.244.1.5"]
    reply, _ = ask(verified, "10-244-1-5.shop.pod.cluster.local.")
    assert rcode(reply) == "NXDOMAIN"


# -- names, negative answers, flags (kubernetes.go match, handler.go, SOA()) ---------------
def test_case_insensitive_and_echoed(zone: ClusterZone) -> None:
    reply, _ = ask(zone, "WEB.Default.SVC.cluster.LOCAL.")
    assert lines(reply.answer) == ["WEB.Default.SVC.cluster.LOCAL. 30 IN A 10.96.45.12"]
    assert reply.question[0].name.to_text() == "WEB.Default.SVC.cluster.LOCAL."
    reply, _ = ask(zone, "NoSuch.default.svc.Cluster.Local.")
    # the SOA names the zone as the query spelled it (handler.go keeps the query's case)
    assert lines(reply.authority) == [
        "Cluster.Local. 30 IN SOA ns.dns.Cluster.Local. hostmaster.Cluster.Local. "
        "1767225600 7200 1800 86400 30"]


@pytest.mark.parametrize(("name", "qtype", "expected"), [
    ("web.default.svc.cluster.local.", "AAAA", "NOERROR"),  # IPv4-only service
    ("web.default.svc.cluster.local.", "TXT", "NOERROR"),
    ("web.default.svc.cluster.local.", "MX", "NOERROR"),
    ("web.default.svc.cluster.local.", "SOA", "NOERROR"),
    ("web.default.svc.cluster.local.", "ANY", "NOERROR"),
    ("svc.cluster.local.", "A", "NOERROR"),
    ("pod.cluster.local.", "A", "NOERROR"),
    ("default.svc.cluster.local.", "A", "NOERROR"),
    ("svc.cluster.local.", "NS", "NOERROR"),
    ("cluster.local.", "A", "NOERROR"),
    ("nosuch.default.svc.cluster.local.", "A", "NXDOMAIN"),
    ("nosuch.default.svc.cluster.local.", "AAAA", "NXDOMAIN"),
    ("nosuch.default.svc.cluster.local.", "TXT", "NXDOMAIN"),
    ("web.nosuchns.svc.cluster.local.", "A", "NXDOMAIN"),
    ("nosuchns.svc.cluster.local.", "A", "NXDOMAIN"),
    ("foo.cluster.local.", "NS", "NXDOMAIN"),
    ("foo.svc.cluster.local.", "NS", "NXDOMAIN"),
    ("www.example.com.default.svc.cluster.local.", "A", "NXDOMAIN"),
    ("a.b.c.web.default.svc.cluster.local.", "A", "NXDOMAIN"),  # too long
    ("dns-version.cluster.local.", "A", "NXDOMAIN"),
])
def test_nxdomain_versus_nodata(zone: ClusterZone, name: str, qtype: str,
                                expected: str) -> None:
    reply, _ = ask(zone, name, qtype)
    assert rcode(reply) == expected
    assert reply.answer == []
    assert lines(reply.authority) == [SOA]
    assert reply.flags & dns.flags.AA


def test_negative_answer_shape_and_size(zone: ClusterZone) -> None:
    # backend_lookup.go SOA(); and CoreDNS packs it uncompressed: coredns/coredns#3835 logs
    # "A IN mytotalfakedomain.svc.cluster.local. udp 53 false 512" NXDOMAIN qr,aa,rd 146
    q = query("mytotalfakedomain.svc.cluster.local.")
    assert len(q.to_wire()) == 53
    response = zone.answer(q)
    assert response is not None
    wire = encode(response, q, tcp=False)
    assert len(wire) == 146
    reply = dns.message.from_wire(wire)
    soa = reply.authority[0][0]
    assert (soa.mname.to_text(), soa.rname.to_text()) == ("ns.dns.cluster.local.",
                                                         "hostmaster.cluster.local.")
    assert (soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum) == \
        (1767225600, 7200, 1800, 86400, 30)
    assert reply.authority[0].ttl == 30


def test_soa_ttl_is_capped_at_300(model: pktsim.api.ClusterModel) -> None:
    zone = ClusterZone(model, ttl=3600)
    reply, _ = ask(zone, "nosuch.default.svc.cluster.local.")
    assert reply.authority[0].ttl == 300 and reply.authority[0][0].minimum == 3600
    reply, _ = ask(zone, "web.default.svc.cluster.local.")
    assert reply.answer[0].ttl == 3600


def test_header_flags(zone: ClusterZone) -> None:
    # id and RD copied, QR and AA set, RA not set (coredns#2408: no RA from authoritative
    # plugins; dig prints "recursion requested but not available")
    reply, wire = ask(zone, "web.default.svc.cluster.local.", qid=0xBEEF)
    assert reply.id == 0xBEEF
    assert reply.flags == dns.flags.QR | dns.flags.AA | dns.flags.RD
    assert wire[2:4] == b"\x85\x00"
    reply, _ = ask(zone, "web.default.svc.cluster.local.", rd=False)
    assert reply.flags == dns.flags.QR | dns.flags.AA
    reply, wire = ask(zone, "nosuch.default.svc.cluster.local.", rd=False)
    assert wire[2:4] == b"\x84\x03"  # QR AA, RCODE 3
    assert reply.question == query("nosuch.default.svc.cluster.local.").question


def test_edns_is_echoed(zone: ClusterZone) -> None:
    reply, _ = ask(zone, "web.default.svc.cluster.local.", edns=1232)
    assert reply.edns == 0 and reply.payload == 1232
    reply, _ = ask(zone, "web.default.svc.cluster.local.")
    assert reply.edns == -1


def test_zone_apex_soa_and_ns(zone: ClusterZone) -> None:
    reply, _ = ask(zone, "cluster.local.", "SOA")
    assert lines(reply.answer) == [SOA]
    reply, _ = ask(zone, "cluster.local.", "NS")
    assert lines(reply.answer) == [
        "cluster.local. 30 IN NS kube-dns.kube-system.svc.cluster.local."]
    assert lines(reply.additional) == [
        "kube-dns.kube-system.svc.cluster.local. 30 IN A 10.96.0.10"]
    reply, _ = ask(zone, "ns.dns.cluster.local.")
    assert lines(reply.answer) == ["ns.dns.cluster.local. 30 IN A 10.96.0.10"]


# -- loadbalance (coredns plugin/loadbalance) ---------------------------------------------
def test_answer_order_is_shuffled_but_deterministic(model: pktsim.api.ClusterModel) -> None:
    orders = set()
    for seed in range(8):
        reply, _ = ask(ClusterZone(model, rng=random.Random(seed)),
                       "db-all.default.svc.cluster.local.")
        orders.add(tuple(lines(reply.answer)))
    assert len(orders) > 1 and len({frozenset(o) for o in orders}) == 1
    first = ask(ClusterZone(model, rng=random.Random(3)), "db-all.default.svc.cluster.local.")
    again = ask(ClusterZone(model, rng=random.Random(3)), "db-all.default.svc.cluster.local.")
    assert first[1] == again[1]


# -- truncation ---------------------------------------------------------------------------
BIG = """
apiVersion: v1
kind: Service
metadata: {name: big}
spec: {clusterIP: None, selector: {app: big}, ports: [{name: http, port: 80}]}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: big}
spec:
  serviceName: big
  replicas: 40
  selector: {matchLabels: {app: big}}
  template:
    metadata: {labels: {app: big}}
    spec: {containers: [{name: c, ports: [{containerPort: 80, name: http}]}]}
"""


def test_big_answer_is_truncated_over_udp_and_whole_over_tcp() -> None:
    zone = ClusterZone(pktsim.load(BIG).model, rng=random.Random(0))
    q = query("big.default.svc.cluster.local.")
    response = zone.answer(q)
    assert response is not None
    # 12 + 31 + 4 bytes of header and question, 31 + 10 + 4 per A record
    assert len(render(response, compress=False)) == 47 + 40 * 45  # > 512
    udp = encode(response, q, tcp=False)
    reply = dns.message.from_wire(udp)
    assert reply.flags & dns.flags.TC
    assert len(udp) <= 512
    # CoreDNS's Scrub keeps as many RRs as fit (compressed, 16 bytes each): (512 - 47) // 16
    assert len(lines(reply.answer)) == 29
    tcp = encode(zone.answer(q) or response, q, tcp=True)
    whole = dns.message.from_wire(tcp)
    assert not whole.flags & dns.flags.TC and len(lines(whole.answer)) == 40
    assert len(tcp) == 47 + 40 * 45  # fits: sent without compression


def test_glue_is_cut_before_answers() -> None:
    zone = ClusterZone(pktsim.load(BIG).model, rng=random.Random(0))
    q = query("_http._tcp.big.default.svc.cluster.local.", "SRV")
    response = zone.answer(q)
    assert response is not None and len(response.additional) == 40
    reply = dns.message.from_wire(encode(response, q, tcp=False))
    assert reply.flags & dns.flags.TC and reply.additional == []


# -- the cache plugin's TTL cap (kubeadm: cache 30) ---------------------------------------
def test_coredns_caps_ttls_at_30(model: pktsim.api.ClusterModel) -> None:
    core = CoreDns(ClusterZone(model), ["203.0.113.53"], random.Random(0))
    q = query("dns-version.cluster.local.", "TXT")
    (reply,) = core.on_query(0, "client", q.to_wire(), False)
    assert lines(dns.message.from_wire(reply.wire).answer) == [  # type: ignore[union-attr]
        'dns-version.cluster.local. 30 IN TXT "1.1.0"']
