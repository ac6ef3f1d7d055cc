"""kube-proxy's cleanup of stale UDP conntrack entries after a sync of its rules.

Theory of operation
-------------------
A UDP "connection" has no end: conntrack keeps an entry as long as datagrams keep coming
(30 s, refreshed by every packet, 120 s once it is a stream), and every datagram that hits
the entry is DNATed to the endpoint the *first* one was sent to.  When that endpoint goes
away, new rules do not help: the packets of an existing flow never walk the nat table again
(the famous case: a client's DNS queries keep going to a deleted CoreDNS pod).  So after
``syncProxyRules`` has written the rules, kube-proxy deletes the entries that no longer
match them: ``CleanStaleEntries`` (kubernetes ``pkg/proxy/conntrack/cleanup.go``, called at
the end of ``syncProxyRules`` in ``pkg/proxy/iptables/proxier.go``).

This is the reconciler design kube-proxy has used since 1.32 (it replaced the per-IP
``conntrack -D`` calls driven by the endpoint changes of one sync, ``DeletedUDPEndpoints``
and ``NewlyActiveUDPServices``): list every entry, compute what the entries should look
like from the current services and endpoints, delete the rest.
``clean_stale_entries`` transcribes ``CleanStaleEntries`` as the newest
``kubernetes/kubernetes`` text of ``cleanup.go`` reads (entries deleted one by one through
``ct.DeleteEntries``, endpoints compared by IP *and* port):

1. ``stale_filter`` builds two maps from the UDP service ports only (``svc.Protocol() !=
   v1.ProtocolUDP`` → skipped; TCP and SCTP service ports contribute nothing):

   ==============================  ===========================================================
   key                             value
   ==============================  ===========================================================
   ``clusterIP:port``              the service port's *serving* endpoints as ``ip:port``
   ``loadBalancerIP:port``         (``endpoint.IsServing()``; ready, topology, traffic policy
   ``externalIP:port``             and terminating are not looked at: a terminating endpoint
   ``*:nodePort`` (``!= 0``)       that still serves keeps its flows, as a TCP flow would)
   ==============================  ===========================================================

   A service port with *no* serving endpoint is skipped entirely ("a Service without
   endpoints does not require to clean the conntrack entries associated").  Later entries
   of the maps overwrite earlier ones; kube-proxy walks a Go map, pktsim the ports in the
   order given (``service_ports`` sorts them by name).
2. ``is_stale`` judges each entry; only UDP entries (``entry.Forward.Protocol !=
   IPPROTO_UDP`` → kept), so TCP, SCTP and ICMP entries are never deleted:

   =====================================================  ==================================
   original direction                                     deleted when the reply source
   =====================================================  ==================================
   ``--orig-dst`` ``:--orig-port-dst`` is a key above      ``--reply-src:--reply-port-src``
   ``--orig-port-dst`` is a node port (any ``--orig-dst``)  is not in that key's set
   =====================================================  ==================================

   The reply source of an entry is where its packets are DNATed to (the reply tuple's
   source), so this deletes entries DNATed to an endpoint that is gone, not serving, or
   serving on another port now (a changed ``targetPort``); and entries to a service IP:port
   that were *not* DNATed at all (reply source = the service IP: created while the service
   had no endpoints and nothing rejected them, as ``cleanup_test.go`` ``TestCleanStaleEntries``
builds them).  Entries
   to other ports of a service IP are kept: they are not kube-proxy's.  The node-port test
   matches the port alone, as upstream's ``*:NodePort`` does, whatever address it was sent to.

Later upstream work, not in the newest ``cleanup.go`` text transcribed here, changes step 1:
kubernetes/kubernetes#139629 also processes a UDP service port with no serving endpoint
(an empty set for its service IPs; its node port still skipped, since a port-only match
would delete flows that are not kube-proxy's), so flows of a service scaled to zero are cut
too.  ``clean_without_endpoints=True`` models that.  Deleted services
(kubernetes/kubernetes#141371) are not modelled: a service port missing from ``ports``
contributes nothing, as in the transcribed text.

When upstream calls it: only when ``endpointUpdateResult.ConntrackCleanupRequired``
(``EndpointsMap.Update``, ``pkg/proxy/endpointschangetracker.go``: some service whose
endpoints changed since the last sync has a UDP port).  Which sync that is is the caller's
business; calling it after a sync that changed no UDP endpoints can delete entries upstream
would keep until the next such change (e.g. a non-DNATed entry to a service IP).

Only IPv4 is modelled (pktsim has one family).  Expired entries are not listed
(``Conntrack.entries``), as the kernel's dump skips them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from pktsim.kubeproxy.ports import ServicePortInfo
from pktsim.netfilter.conntrack import Conn, Conntrack
from pktsim.wire.build import PROTO_UDP

# An (IPv4 address as 4 bytes, port) pair: a service frontend or an endpoint backend.
Addr = tuple[bytes, int]


@dataclass(frozen=True, slots=True)
class StaleFilter:
    """``serviceIPEndpoints`` and ``serviceNodePortEndpoints`` of ``CleanStaleEntries``."""

    by_service_ip: dict[Addr, frozenset[Addr]] = field(default_factory=dict)
    by_node_port: dict[int, frozenset[Addr]] = field(default_factory=dict)


def serving_endpoints(sp: ServicePortInfo) -> frozenset[Addr]:
    """The ``ip:port`` of every endpoint of ``sp`` with ``IsServing()``."""
    return frozenset((ep.ip.packed, ep.port) for ep in sp.endpoints if ep.serving)


def stale_filter(ports: Iterable[ServicePortInfo], *,
                 clean_without_endpoints: bool = False) -> StaleFilter:
    """Step 1 of ``CleanStaleEntries``: the frontends of the UDP service ports and the
    serving endpoints each may be DNATed to (see the module docstring)."""
    f = StaleFilter()
    for sp in ports:
        if sp.protocol != "udp":
            continue
        serving = serving_endpoints(sp)
        if not serving and not clean_without_endpoints:
            continue  # "a Service without endpoints does not require to clean ..."
        for ip in (sp.cluster_ip, *sp.lb_vips, *sp.external_ips):
            f.by_service_ip[(ip.packed, sp.port)] = serving
        if sp.node_port != 0 and serving:
            f.by_node_port[sp.node_port] = serving
    return f


def is_stale(conn: Conn, f: StaleFilter) -> bool:
    """Step 2 of ``CleanStaleEntries``: does ``conn`` point where no serving endpoint is?"""
    if conn.proto != PROTO_UDP:
        return False  # "we only deal with UDP protocol entries"
    orig, reply = conn.orig, conn.reply
    backend = (reply.src, reply.sport)  # --reply-src, --reply-port-src
    allowed = f.by_service_ip.get((orig.dst, orig.dport))  # --orig-dst, --orig-port-dst
    if allowed is not None and backend not in allowed:
        return True
    allowed = f.by_node_port.get(orig.dport)  # *:NodePort
    return allowed is not None and backend not in allowed


def clean_stale_entries(conntrack: Conntrack, now: int, ports: Iterable[ServicePortInfo],
                        *, clean_without_endpoints: bool = False) -> list[Conn]:
    """``CleanStaleEntries`` on one node: delete the stale UDP entries of ``conntrack``
    for the node's current service ports ``ports`` (``service_ports(model, node)``).

    Returns the deleted entries, oldest first, for the trace (``Conn.render`` prints each
    as ``conntrack -D`` does).  ``clean_without_endpoints`` models
    kubernetes/kubernetes#139629 (see the module docstring)."""
    f = stale_filter(ports, clean_without_endpoints=clean_without_endpoints)
    if not f.by_service_ip and not f.by_node_port:
        return []
    doomed = [conn for conn in conntrack.entries(now) if is_stale(conn, f)]
    for conn in doomed:
        conntrack.delete(conn)
    return doomed
