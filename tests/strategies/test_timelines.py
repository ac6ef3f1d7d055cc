"""``pktsim.strategies.timelines``: every timeline is one the loader accepts for its cluster
and one that runs; shrinking goes to fewer, earlier events; bad arguments are refused."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

import pktsim
from pktsim import invariants
from pktsim.model.timeline import SECOND, Change
from pktsim.strategies import TIMELINE_ACTIONS, clusters, flow_lists, timelines
from tests.helpers.echo import CLIENT_POD, echo_app

pytestmark = pytest.mark.slow  # generated clusters, run with their timelines

MS = 10**6
RUNS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def shape(changes: list[Change]) -> list[tuple[Any, ...]]:
    return [(c.at_ns, c.action, c.kind, c.key, c.replicas, type(c.obj)) for c in changes]


def with_events(cluster_yaml: str, events: list[dict[str, Any]]) -> str:
    traffic = {"apiVersion": "pktsim/v1alpha1", "kind": "Traffic",
               "spec": {"flows": [], "events": events}}
    return cluster_yaml + "\n---\n" + yaml.safe_dump(traffic, sort_keys=False)


@RUNS
@given(st.data())
def test_every_timeline_loads_as_spec_events_and_runs(data: st.DataObject) -> None:
    """The entries, pasted under ``spec.events`` of the cluster's own file, load without an
    error (the loader's ``check_changes``: every name exists at its moment, nodes fail and
    recover in turn) into the same changes; the cluster runs them with traffic, and the
    invariants of a changing cluster hold."""
    cluster = data.draw(clusters(max_nodes=3, max_pods=4, max_services=2), label="cluster")
    timeline = data.draw(timelines(cluster, max_size=5, end_ns=4 * SECOND), label="timeline")
    loaded = pktsim.load(with_events(cluster.yaml, timeline.events))
    assert shape(loaded.scenario.changes) == shape(timeline)
    flows = [spread(f) for f in data.draw(flow_lists(cluster, max_size=2), label="flows")]
    cluster.scenario.changes = list(timeline)
    result = cluster.run(flows=flows, until_ns=8 * SECOND)
    assert not result.stopped
    invariants.new_connections_follow_the_last_sync(result)
    invariants.unrelated_changes_keep_connections(result)


ECHO = """\
apiVersion: pktsim/v1alpha1
kind: Cluster
spec: {network: NETWORK, nodes: 3}
---
""" + CLIENT_POD + echo_app("echo", 3, 1) + echo_app("other", 2, 1)


def spread(flow: pktsim.Flow, count: int = 8, interval_ns: int = 500 * MS) -> pktsim.Flow:
    """The flow made to last through a timeline: ``count`` connections, datagrams or pings
    ``interval_ns`` apart (lookups as they are)."""
    if flow.lookup or flow.frame is not None:
        return flow
    return dataclasses.replace(flow, count=max(flow.count, count), interval_ns=interval_ns)


@RUNS
@given(network=st.sampled_from(["routes", "vxlan", "ipip", "calico"]), data=st.data())
def test_the_invariants_hold_through_generated_timelines(network: str,
                                                         data: st.DataObject) -> None:
    """A Service ``echo`` with three endpoints and another, ``other``, with two; from
    node-1's client, a UDP datagram to ``echo`` every half second and 100 TCP connections
    to it back to back (10 µs apart) from 2 s; a timeline of up to four changes at any
    100 µs of the stretch the connections cover, so most land inside one (kube-proxy syncs
    at once: its start-up sync was more than ``minSyncPeriod`` before).  New connections
    follow the syncs; unrelated changes break nothing."""
    cluster = pktsim.load(ECHO.replace("NETWORK", network))
    timeline = data.draw(timelines(cluster, max_size=4, start_ns=2 * SECOND,
                                   end_ns=2 * SECOND + 25 * MS, tick_ns=100_000),
                         label="timeline")
    vip = cluster.model.services["default/echo"].cluster_ip
    tcp = pktsim.flow("default/client", f"{vip}:80", name="tcp", protocol="tcp", count=100,
                      start="2s")
    flows = [dataclasses.replace(tcp, interval_ns=10_000),
             spread(pktsim.flow("default/client", f"{vip}:9000", name="udp",
                                protocol="udp"), count=14)]
    cluster.scenario.changes = list(timeline)
    result = cluster.run(flows=flows, until_ns=12 * SECOND)
    invariants.new_connections_follow_the_last_sync(result)
    invariants.unrelated_changes_keep_connections(result)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_timelines_are_sorted_and_name_what_exists(data: st.DataObject) -> None:
    cluster = pktsim.demo_cluster()
    end = data.draw(st.integers(0, 20), label="end s") * SECOND
    timeline = data.draw(timelines(cluster, max_size=8, end_ns=end), label="timeline")
    assert [c.at_ns for c in timeline] == sorted(c.at_ns for c in timeline)
    assert all(0 <= c.at_ns <= end for c in timeline)
    failed: set[str] = set()
    deleted: set[str] = set()
    for change in timeline:
        if change.action == "fail":
            assert change.name not in failed
            failed.add(change.name)
        elif change.action == "recover":
            assert change.name in failed  # recover only after a fail
            failed.discard(change.name)
        elif change.action == "delete":
            assert change.key in cluster.model.pods and change.key not in deleted
            assert not change.key.startswith("kube-system/")
            deleted.add(change.key)
        elif change.action == "scale":
            assert (change.kind, change.key) == ("Deployment", "shop/web")
            assert change.replicas is not None and 0 <= change.replicas <= 3


def test_shrinks_to_one_early_event() -> None:
    cluster = pktsim.demo_cluster()
    fails = find(timelines(cluster), lambda t: any(c.action == "fail" for c in t))
    assert [(c.at_ns, c.label()) for c in fails] == [(0, "fail node node-1")]
    recovers = find(timelines(cluster), lambda t: any(c.action == "recover" for c in t))
    assert [c.label() for c in recovers] == ["fail node node-1", "recover node node-1"]
    assert all(c.at_ns == 0 for c in recovers)
    late = find(timelines(cluster), lambda t: any(c.at_ns >= 5 * SECOND for c in t))
    assert [(c.at_ns, c.label()) for c in late] == [(5 * SECOND, "delete Pod default/app")]
    assert late.events == [{"at": "5s", "delete": "default/app"}]
    assert repr(late) == "Timeline(events=[{'at': '5s', 'delete': 'default/app'}])"


def test_actions_choose_what_is_drawn() -> None:
    cluster = pktsim.demo_cluster()
    scaled = find(timelines(cluster, min_size=2, actions=st.just("scale")), lambda t: True)
    assert [c.label() for c in scaled] == ["scale Deployment shop/web to 0"] * 2
    policy = find(timelines(cluster, actions=st.just("apply-policy")), lambda t: len(t) > 0)
    (change,) = policy
    assert (change.action, change.kind, change.key) == ("apply", "NetworkPolicy",
                                                         "default/timeline-1")
    assert change.obj.namespace == "default"


def test_a_cluster_with_nothing_to_change_gives_shorter_timelines() -> None:
    """Only recover-node plans and no node ever failed: every plan is left out."""
    cluster = pktsim.demo_cluster()
    empty = find(timelines(cluster, min_size=3, actions=st.just("recover-node")),
                 lambda t: True)
    assert list(empty) == [] and empty.events == []


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"min_size": 3, "max_size": 2}, "min_size=3 must not exceed max_size=2"),
    ({"min_size": -1}, "min_size=-1 must be at least 0"),
    ({"start_ns": 5 * SECOND, "end_ns": SECOND}, "must not exceed end_ns"),
    ({"tick_ns": 0}, "tick_ns=0 must be at least 1"),
    ({"max_replicas": 1.5}, "max_replicas=1.5 must be an integer"),
    ({"actions": "scale"}, "actions='scale' must be a strategy"),
])
def test_bad_arguments_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        timelines(pktsim.demo_cluster(), **kwargs).example()


def test_an_action_strategy_drawing_nonsense_is_refused() -> None:
    with pytest.raises(InvalidArgument, match=r"actions drew 'reboot': choose from"):
        find(timelines(pktsim.demo_cluster(), min_size=1, actions=st.just("reboot")),
             lambda t: True)
    assert "reboot" not in TIMELINE_ACTIONS
