"""kube-proxy's stale UDP conntrack cleanup (``pktsim.kubeproxy.cleanup``).

The table cases are kubernetes ``pkg/proxy/conntrack/cleanup_test.go`` (``TestCleanStaleEntries``,
``TestServiceWithoutEndpoints``, ``TestPerformanceCleanStaleEntries``) ported to pktsim's
types: every entry is made by ``Conntrack.track`` of a real packet, DNATed by the real NAT
binding (``nat.setup``) and confirmed, as a packet walking a node's nat table makes it.
"""

from __future__ import annotations

import random
from ipaddress import IPv4Address

from hypothesis import given
from hypothesis import strategies as st

from pktsim.kubeproxy.cleanup import clean_stale_entries, is_stale, stale_filter
from pktsim.kubeproxy.ports import Endpoint, ServicePortInfo
from pktsim.netfilter import Conn, Conntrack
from pktsim.netfilter.mangle import DST
from pktsim.netfilter.nat import NatRange, setup
from pktsim.wire import build
from pktsim.wire.parse import TCP_SYN, ip_bytes

S = 1_000_000_000
PROTO_SCTP = 132

# cleanup_test.go's constants
CLUSTER_IP = "172.30.1.1"
EXTERNAL_IP = "192.168.99.100"
LB_IP = "1.2.3.4"
SERVING = "10.240.0.4"
NON_SERVING = "10.240.1.5"
DELETED = "10.240.2.6"
OLD_ENDPOINT_PORT = 8080  # testOldEndpointPort: the endpoint changed port, kept its IP
ENDPOINT_PORT = 9090
SERVICE_PORT = 8000
NODE_PORT = 32000
NON_SERVICE_PORT = 3000  # flows not owned by kube-proxy
FRONTENDS = (CLUSTER_IP, LB_IP, EXTERNAL_IP)
NODE_IP = "172.18.0.2"  # upstream matches *:NodePort; any address the node answers on
CLIENT = "10.244.1.5"


def endpoint(ip: str, *, serving: bool = True, ready: bool | None = None,
             terminating: bool = False, port: int = ENDPOINT_PORT) -> Endpoint:
    return Endpoint(IPv4Address(ip), port, False, serving if ready is None else ready,
                    "KUBE-SEP-TEST", serving, terminating)


def service_port(protocol: str, endpoints: list[Endpoint], node_port: int = 0,
                 port: int = SERVICE_PORT) -> ServicePortInfo:
    """``TestCleanStaleEntries``' service: cluster IP, one external IP, one LB ingress IP."""
    return ServicePortInfo(f"test/cleanup-test:test-{protocol}", protocol,
                           IPv4Address(CLUSTER_IP), port, node_port,
                           [IPv4Address(EXTERNAL_IP)], [IPv4Address(LB_IP)],
                           endpoints=endpoints)


def upstream_ports() -> list[ServicePortInfo]:
    """The tcp/udp/sctp ports of ``TestCleanStaleEntries``: one serving endpoint, one not."""
    eps = [endpoint(SERVING), endpoint(NON_SERVING, serving=False)]
    return [service_port("tcp", eps), service_port("udp", eps, NODE_PORT),
            service_port("sctp", eps, NODE_PORT)]


class Table:
    """A conntrack table filled by packets; each entry from its own client port."""

    def __init__(self) -> None:
        self.ct = Conntrack()
        self.rng = random.Random(1)
        self.sport = 40000

    def packet(self, proto: int, dst: str, dport: int) -> bytes:
        self.sport += 1
        src, to = ip_bytes(CLIENT), ip_bytes(dst)
        if proto == PROTO_SCTP:  # tracked by addresses alone: one client address per entry
            src = ip_bytes(f"10.244.9.{self.sport % 250 + 2}")
        if proto == 6:
            seg = build.tcp(src, to, self.sport, dport, 1, 0, TCP_SYN, 64240, b"")
        elif proto == 17:
            seg = build.udp(src, to, self.sport, dport, b"query")
        else:  # SCTP: pktsim tracks it as a generic protocol (addresses only)
            seg = self.sport.to_bytes(2, "big") + dport.to_bytes(2, "big") + bytes(8)
        return build.ipv4(src, to, proto, seg)

    def entry(self, proto: int, dst: str, dport: int, dnat: str | None = None,
              dnat_port: int = ENDPOINT_PORT) -> Conn:
        """The entry of a first packet to ``dst:dport``, DNATed to ``dnat:dnat_port``
        (``None``: not DNATed, the null binding), confirmed into the table."""
        tr = self.ct.track(0, self.packet(proto, dst, dport))
        assert tr.conn is not None and tr.new
        ports = (dnat_port, dnat_port) if proto in (6, 17) else None
        r = NatRange(ip_bytes(dnat), ports) if dnat is not None else None
        setup(self.ct, 0, tr.conn, DST, r, "DNAT", self.rng)
        assert self.ct.confirm(tr.conn)
        return tr.conn


def test_upstream_clean_stale_entries() -> None:
    """cleanup_test.go ``TestCleanStaleEntries``: 3 old-port + 63 + 6 non-DNATed entries."""
    table = Table()
    deleted: set[Conn] = set()
    kept: set[Conn] = set()
    # entries DNATed to the serving endpoint's IP on its old port: deleted
    for dst in FRONTENDS:
        deleted.add(table.entry(17, dst, SERVICE_PORT, SERVING, OLD_ENDPOINT_PORT))
    for dnat in (SERVING, NON_SERVING, DELETED):
        for proto in (6, 17, PROTO_SCTP):
            for dst in FRONTENDS:
                for port in (SERVICE_PORT, NON_SERVICE_PORT):
                    conn = table.entry(proto, dst, port, dnat)
                    stale = proto == 17 and port == SERVICE_PORT and dnat != SERVING
                    (deleted if stale else kept).add(conn)
            conn = table.entry(proto, NODE_IP, NODE_PORT, dnat)
            (deleted if proto == 17 and dnat != SERVING else kept).add(conn)
    # not DNATed (no DROP/REJECT rule for a service without endpoints): deleted on the
    # service port, kept on another port
    for dst in FRONTENDS:
        for port in (SERVICE_PORT, NON_SERVICE_PORT):
            (deleted if port == SERVICE_PORT else kept).add(table.entry(17, dst, port))
    before = table.ct.entries(S)
    assert len(before) == 72
    gone = clean_stale_entries(table.ct, S, upstream_ports())
    assert set(gone) == deleted
    # the old port; 2 endpoints x (3 service IPs + the node port); not DNATed
    assert len(gone) == 3 + 2 * (3 + 1) + 3
    assert gone == [c for c in before if c in deleted]  # oldest first
    assert set(table.ct.entries(S)) == kept


def test_upstream_service_without_endpoints() -> None:
    """cleanup_test.go ``TestServiceWithoutEndpoints``: the slice belongs to another
    service, so this one has no endpoints and neither entry is touched."""
    table = Table()
    table.entry(17, EXTERNAL_IP, SERVICE_PORT, SERVING)
    table.entry(17, EXTERNAL_IP, SERVICE_PORT, DELETED)
    assert clean_stale_entries(table.ct, S, [service_port("udp", [])]) == []
    assert len(table.ct.entries(S)) == 2


def test_service_scaled_to_zero_with_139629() -> None:
    """kubernetes/kubernetes#139629: a UDP service with no serving endpoint has its service
    IP entries cut (its node port entries are still left alone)."""
    table = Table()
    a = table.entry(17, EXTERNAL_IP, SERVICE_PORT, SERVING)
    b = table.entry(17, CLUSTER_IP, SERVICE_PORT)
    c = table.entry(17, NODE_IP, NODE_PORT, DELETED)
    gone = clean_stale_entries(table.ct, S, [service_port("udp", [], NODE_PORT)],
                               clean_without_endpoints=True)
    assert gone == [a, b]
    assert table.ct.entries(S) == [c]


@given(st.lists(st.integers(1, 65535), max_size=40))
def test_upstream_performance_case_by_port(ports: list[int]) -> None:
    """cleanup_test.go ``TestPerformanceCleanStaleEntries``, small: entries to the external
    IP on random ports, DNATed to a deleted endpoint, are deleted only on the service port."""
    table = Table()
    valid = table.entry(17, EXTERNAL_IP, SERVICE_PORT, SERVING)
    stale = [table.entry(17, EXTERNAL_IP, SERVICE_PORT, DELETED)]
    others: list[Conn] = []
    for port in ports:
        conn = table.entry(17, EXTERNAL_IP, port, DELETED)
        (stale if port == SERVICE_PORT else others).append(conn)
    sp = service_port("udp", [endpoint(SERVING), endpoint(NON_SERVING, serving=False)])
    assert clean_stale_entries(table.ct, S, [sp]) == stale
    assert table.ct.entries(S) == [valid, *others]


def test_serving_terminating_and_unready_serving_endpoints_keep_their_flows() -> None:
    """``IsServing()`` alone decides: "we do not take traffic policies, topology, or
    terminating status of the service into account" (cleanup.go)."""
    table = Table()
    term = table.entry(17, CLUSTER_IP, SERVICE_PORT, "10.240.0.7")
    unready = table.entry(17, CLUSTER_IP, SERVICE_PORT, "10.240.0.8")
    gone = table.entry(17, CLUSTER_IP, SERVICE_PORT, "10.240.0.9")
    sp = service_port("udp", [endpoint("10.240.0.7", ready=False, terminating=True),
                              endpoint("10.240.0.8", ready=False),
                              endpoint("10.240.0.9", serving=False, terminating=True)])
    assert clean_stale_entries(table.ct, S, [sp]) == [gone]
    assert table.ct.entries(S) == [term, unready]


def test_deleted_dns_pod_flow_is_cut_and_the_next_query_starts_anew() -> None:
    """The DNS case: a client's flow to kube-dns pinned to a deleted CoreDNS pod is deleted,
    so its next query is a NEW packet that the rules DNAT to a live pod."""
    dns_ip, pod_a, pod_b = "10.96.0.10", "10.244.2.7", "10.244.2.8"
    table = Table()
    table.sport = 53000 - 1
    conn = table.entry(17, dns_ip, 53, pod_a, 53)
    sp = ServicePortInfo("kube-system/kube-dns:dns", "udp", IPv4Address(dns_ip), 53,
                         endpoints=[endpoint(pod_b, port=53)])
    assert clean_stale_entries(table.ct, S, [sp]) == [conn]
    assert "[UNREPLIED] src=10.244.2.7 dst=10.244.1.5 sport=53 dport=53000" in conn.render(S)
    table.sport = 53000 - 1
    again = table.ct.track(S, table.packet(17, dns_ip, 53))
    assert again.new and again.ctstate == "NEW"


def test_expired_entries_are_not_listed() -> None:
    table = Table()
    table.entry(17, CLUSTER_IP, SERVICE_PORT, DELETED)
    assert clean_stale_entries(table.ct, 31 * S, upstream_ports()) == []


# -- properties ------------------------------------------------------------------------------
IPS = [f"10.240.0.{i}" for i in range(1, 7)]
conditions = st.tuples(st.booleans(), st.booleans(), st.booleans())  # ready, serving, term


@given(st.lists(conditions, min_size=len(IPS), max_size=len(IPS)),
       st.lists(st.tuples(st.sampled_from([6, 17]),
                          st.sampled_from([*FRONTENDS, NODE_IP]),
                          st.sampled_from([SERVICE_PORT, NODE_PORT, NON_SERVICE_PORT]),
                          st.sampled_from([*IPS, DELETED, None]),
                          st.sampled_from([ENDPOINT_PORT, OLD_ENDPOINT_PORT])),
                max_size=30),
       st.booleans())
def test_only_udp_entries_off_every_serving_endpoint_are_deleted(
        conds: list[tuple[bool, bool, bool]],
        flows: list[tuple[int, str, int, str | None, int]], zero: bool) -> None:
    """An entry DNATed to a serving endpoint of its service port is never deleted; a TCP
    entry is never deleted; a UDP entry to a service frontend whose reply source is no
    serving endpoint is (when the service port has one)."""
    eps = [endpoint(ip, ready=r, serving=s, terminating=t)
           for ip, (r, s, t) in zip(IPS, conds, strict=True)]
    ports = [service_port("udp", eps, NODE_PORT), service_port("tcp", eps)]
    table = Table()
    conns = [table.entry(*flow) for flow in flows]
    gone = set(clean_stale_entries(table.ct, S, ports, clean_without_endpoints=zero))
    serving = {(ep.ip.packed, ep.port) for ep in eps if ep.serving}
    for conn, (proto, dst, dport, dnat, dnat_port) in zip(conns, flows, strict=True):
        backend = (conn.reply.src, conn.reply.sport)
        if proto == 6 or backend in serving:
            assert conn not in gone
            continue
        frontend = dport == NODE_PORT if dst == NODE_IP else dport in (SERVICE_PORT, NODE_PORT)
        expect = frontend and (bool(serving) or (zero and dst != NODE_IP and
                                                 dport == SERVICE_PORT))
        assert (conn in gone) == expect, (dst, dport, dnat, dnat_port)
    assert set(table.ct.entries(S)) == set(conns) - gone


def test_filter_keys_service_ips_and_node_port_of_udp_ports_only() -> None:
    f = stale_filter(upstream_ports())
    assert set(f.by_service_ip) == {(ip_bytes(ip), SERVICE_PORT) for ip in FRONTENDS}
    assert f.by_node_port == {NODE_PORT: frozenset({(ip_bytes(SERVING), ENDPOINT_PORT)})}
    sctp = Table().entry(PROTO_SCTP, CLUSTER_IP, SERVICE_PORT, DELETED)
    assert not is_stale(sctp, f)
