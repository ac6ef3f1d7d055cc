"""Hypothesis strategies for Kubernetes networking: addresses, frames, clusters, flows.

In hypothesis' house style: plural names, keyword-only bounds validated up front with
``InvalidArgument``, and strategies (not values) as arguments where a choice is open::

    from hypothesis import given, strategies as st
    from pktsim import invariants
    from pktsim.strategies import clusters, flows

    @given(st.data())
    def test_every_flow_is_answered(data):
        cluster = data.draw(clusters(max_nodes=2))
        flow = data.draw(flows(cluster))
        invariants.check_all(cluster.run(flows=[flow]))

Packets: ``mac_addresses()``, ``ipv4_addresses()``, ``frames()`` (valid Ethernet frames built
with scapy, as ``bytes``), ``packets()`` (the same as scapy packets), ``malformed_frames()``.

Clusters: ``manifests()`` (a list of valid Kubernetes objects as dicts: nodes, namespaces,
pods, Deployments, StatefulSets, DaemonSets, Services of every type, readiness),
``clusters()`` (the same plus a ``kind: Cluster``, loaded into a ``pktsim.Cluster``),
``flows(cluster)`` / ``flow_lists(cluster)`` (Traffic flows between things that exist in that
cluster, which a correct cluster answers) and ``scenarios()`` (all of it as one YAML stream).
``clusters(ip_families=st.sampled_from(IP_FAMILIES))`` draws dual-stack clusters too, whose
pods the flows reach over IPv6 as well.  Everything generated loads and runs; clusters
shrink towards one node and one pod.

Changes during the run: ``timelines(cluster)`` (a ``Timeline``: a list of
``pktsim.model.timeline.Change`` valid for that cluster -- pod deletions, scaling, node
failures and recoveries, NetworkPolicies, Services applied again -- and the same as
``spec.events`` entries), for ``cluster.scenario.changes``; it shrinks towards fewer and
earlier events.
"""


from pktsim.strategies.clusters import (
    IP_FAMILIES,
    NETWORKS,
    SERVICE_TYPES,
    WORKLOAD_KINDS,
    GeneratedCluster,
    clusters,
    manifests,
)
from pktsim.strategies.flows import FLOW_KINDS, flow_lists, flows, scenarios
from pktsim.strategies.frames import (
    frames,
    ipv4_addresses,
    mac_addresses,
    malformed_frames,
    packets,
)
from pktsim.strategies.timelines import TIMELINE_ACTIONS, Timeline, timelines

__all__ = [
    "FLOW_KINDS",
    "IP_FAMILIES",
    "NETWORKS",
    "SERVICE_TYPES",
    "TIMELINE_ACTIONS",
    "WORKLOAD_KINDS",
    "GeneratedCluster",
    "Timeline",
    "clusters",
    "flow_lists",
    "flows",
    "frames",
    "ipv4_addresses",
    "mac_addresses",
    "malformed_frames",
    "manifests",
    "packets",
    "scenarios",
    "timelines",
]

