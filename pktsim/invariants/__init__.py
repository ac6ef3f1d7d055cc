"""Network invariants to check on any run: plain functions that raise a readable
``AssertionError`` naming the packet and the hop where the property broke.

    result = cluster.run()
    invariants.check_all(result)            # or each one on its own

Packets are followed by the id pktsim gives every packet (it survives forwarding, NAT and
encapsulation); hops are the frames of ``capture.pcapng``, named by frame number and
interface, so a failure can be looked up in Wireshark.

==========================================  ==================================================
``flows_delivered``                         every flow got its answers (absent policy)
``ttl_decreases_per_routed_hop``            TTL never rises, and falls by one per routed hop
``delivered_once``                          no packet reaches a socket twice
``pod_to_pod_not_natted``                   pod-to-pod packets keep both addresses on every hop
``no_reflection_without_hairpin``           a bridge never sends a frame back out of its ingress
                                            port
``checksums_valid``                         every IPv4/ICMP/TCP/UDP checksum verifies
``service_replies_from_vip``                a Service client only hears back from the VIP:port
                                            it asked
``connections_keep_their_backend``          every packet after a connection's first goes to
                                            the same backend
``backends_are_ready_endpoints``            kube-proxy DNATs new connections only to ready
                                            endpoints, those its node uses (topology, traffic
                                            policy)
``dns_answers_match_model``                 A answers and NXDOMAINs agree with the cluster
                                            model
``new_connections_follow_the_last_sync``    a new connection never reaches a pod whose
                                            deletion its node's kube-proxy has synced
                                            (``spec.events``)
``unrelated_changes_keep_connections``      a change touching neither end of an established
                                            connection never breaks it (``spec.events``)
==========================================  ==================================================

``check_all`` runs every one but ``flows_delivered`` when ``delivered=False`` (for flows that
may legitimately fail).  The last two judge only what a run with ``spec.events`` changed: on
a run without changes they find nothing to judge.  ``hops(result)`` gives every captured
IPv4 packet (a ``Hop``); ``connections`` (of a result) every TCP connection and UDP flow a
client opened, from its first packet to its end (a ``Connection``).
"""


from __future__ import annotations

from pktsim.api import Result
from pktsim.invariants.changes import (
    Connection,
    connections,
    new_connections_follow_the_last_sync,
    unrelated_changes_keep_connections,
)
from pktsim.invariants.dns import dns_answers_match_model
from pktsim.invariants.paths import (
    Hop,
    checksums_valid,
    delivered_once,
    flows_delivered,
    hops,
    no_reflection_without_hairpin,
    pod_to_pod_not_natted,
    sharing,
    ttl_decreases_per_routed_hop,
)
from pktsim.invariants.services import (
    backends_are_ready_endpoints,
    connections_keep_their_backend,
    service_replies_from_vip,
)

__all__ = [
    "Connection",
    "Hop",
    "backends_are_ready_endpoints",
    "check_all",
    "checksums_valid",
    "connections",
    "connections_keep_their_backend",
    "delivered_once",
    "dns_answers_match_model",
    "flows_delivered",
    "hops",
    "new_connections_follow_the_last_sync",
    "no_reflection_without_hairpin",
    "pod_to_pod_not_natted",
    "service_replies_from_vip",
    "ttl_decreases_per_routed_hop",
    "unrelated_changes_keep_connections",
]



def check_all(result: Result, *, delivered: bool = True) -> None:
    """Every invariant (``flows_delivered`` only when ``delivered``)."""
    checks = [ttl_decreases_per_routed_hop, delivered_once, pod_to_pod_not_natted,
              no_reflection_without_hairpin, checksums_valid, service_replies_from_vip,
              connections_keep_their_backend, backends_are_ready_endpoints,
              dns_answers_match_model, new_connections_follow_the_last_sync,
              unrelated_changes_keep_connections]
    if delivered:
        checks.insert(0, flows_delivered)
    with sharing(result):  # packet ids and hops are derived once for all of them
        for check in checks:
            check(result)
