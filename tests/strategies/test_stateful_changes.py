"""A rule-based state machine over one live run whose cluster changes while traffic flows
(issue 17): its rules are the change events of ``spec.events``, decided step by step.

Unlike ``test_stateful.py``'s machine (which re-derives kube-proxy's rules itself on a
static topology), this one runs pktsim's own control plane: the topology is built once, a
``ControlPlane`` is installed with no timeline, and each rule hands it one ``Change`` at the
machine's clock (``ControlPlane.schedule``), so the EndpointSlice controller, kube-proxy's
sync runner (``minSyncPeriod``), kubelet's grace periods and the node lifecycle controller
act on it as they do on a file's ``spec.events``.  Rules: delete a pod that exists now,
scale a Deployment (0-3), fail a node that is up, recover one that failed, send traffic
(TCP connections and UDP datagrams to the Service, TCP straight to a pod) -- optionally
with a change a few hundred microseconds later, inside the connections just opened -- and
advance the clock (so syncs, grace periods and the 50 s node grace pass).

After every step, over everything the run has put on the wire so far: no new connection
reaches a pod whose deletion its node's kube-proxy had synced
(``new_connections_follow_the_last_sync``), and no change that touches neither end of an
established connection breaks it (``unrelated_changes_keep_connections``).  The cluster,
its seed and the machine's clock are fixed: the same draws give the same run.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import HealthCheck, find, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

import pktsim
from pktsim import invariants
from pktsim.api import Result
from pktsim.build.flows import start_flows
from pktsim.build.topology import Topology
from pktsim.control.plane import ControlPlane
from pktsim.devices.outcome import FlowResult
from pktsim.model.timeline import Change
from pktsim.sinks.trace import MemorySink
from tests.helpers.echo import CLIENT_POD, echo_app, flush_conntrack_at_each_sync

pytestmark = pytest.mark.slow

MS, US = 10**6, 10**3
NODES = ("node-1", "node-2", "node-3")
DEPLOYMENTS = ("echo", "other")
CLUSTER = """\
apiVersion: pktsim/v1alpha1
kind: Cluster
spec: {network: NETWORK, nodes: 3}
""" + "".join(echo_app(name, 2, 2) for name in DEPLOYMENTS) + "---\n" + CLIENT_POD
CLIENT = "default/client"  # evicted after its node has been down 350 s: then no traffic
OFFSETS = (50 * US, 120 * US, 200 * US, 300 * US, 2 * MS)  # a change inside fresh traffic


class ChangeMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.memory = MemorySink()
        self.results: list[FlowResult] = []
        self.now = 0
        self.sent = 0
        self.failed: set[str] = set()
        self.topo: Topology | None = None
        self.plane: ControlPlane | None = None

    @initialize(network=st.sampled_from(["routes", "vxlan", "ipip", "calico"]))
    def start(self, network: str) -> None:
        cluster = pktsim.load(CLUSTER.replace("NETWORK", network))
        self.topo = cluster.build([self.memory])
        self.plane = ControlPlane(self.topo, [], self.results)
        self.topo.driver.run(until=0)  # the servers listen
        self.warm_up()

    def warm_up(self) -> None:
        """One connection from the client to every pod, and a second: the neighbours are
        known (a change right after a handshake then meets an established connection, not
        one waiting for ARP), and ``minSyncPeriod`` is past (a change's sync comes at once)."""
        assert self.topo is not None
        pods = [self.topo.model.pods[k] for k in self.pods()]
        self.results += start_flows(self.topo, [
            pktsim.flow(CLIENT, f"{p.ip}:8080", name=f"warm-up-{i}", protocol="tcp")
            for i, p in enumerate(pods)])
        self.advance(1000)

    # -- the changes ------------------------------------------------------------------------
    def change(self, change: Change) -> None:
        assert self.plane is not None
        self.plane.schedule(change)

    def pods(self) -> list[str]:
        assert self.topo is not None
        return sorted(k for k in self.topo.model.pods if k.split("/")[1].startswith(DEPLOYMENTS))

    def _delete_pod(self, data: st.DataObject, at: int = 0) -> None:
        pod = data.draw(st.sampled_from(self.pods()), label="pod")
        self.change(Change(self.now + at, "delete", "Pod", *pod.split("/")))

    def _scale(self, name: str, replicas: int, at: int = 0) -> None:
        self.change(Change(self.now + at, "scale", "Deployment", "default", name,
                           replicas=replicas))

    def _fail_node(self, data: st.DataObject, at: int = 0) -> None:
        node = data.draw(st.sampled_from(sorted(set(NODES) - self.failed)), label="node")
        self.failed.add(node)
        self.change(Change(self.now + at, "fail", "Node", "", node))

    @precondition(lambda self: self.topo is not None and self.pods())
    @rule(data=st.data())
    def delete_pod(self, data: st.DataObject) -> None:
        self._delete_pod(data)

    @precondition(lambda self: self.topo is not None)
    @rule(name=st.sampled_from(DEPLOYMENTS), replicas=st.integers(0, 3))
    def scale(self, name: str, replicas: int) -> None:
        self._scale(name, replicas)

    @precondition(lambda self: self.topo is not None and len(self.failed) < len(NODES))
    @rule(data=st.data())
    def fail_node(self, data: st.DataObject) -> None:
        self._fail_node(data)

    @precondition(lambda self: self.failed)
    @rule(data=st.data())
    def recover_node(self, data: st.DataObject) -> None:
        node = data.draw(st.sampled_from(sorted(self.failed)), label="node")
        self.failed.discard(node)
        self.change(Change(self.now, "recover", "Node", "", node))

    # -- traffic and time -------------------------------------------------------------------
    def flows(self, kinds: list[str]) -> list[pktsim.Flow]:
        assert self.topo is not None
        vip = self.topo.model.services["default/echo"].cluster_ip
        out = []
        for kind in kinds:
            self.sent += 1
            name = f"{self.sent}-{kind}"
            if kind == "tcp-service":
                out.append(pktsim.flow(CLIENT, f"{vip}:80", name=name,
                                       protocol="tcp", count=4))
            elif kind == "udp-service":
                out.append(pktsim.flow(CLIENT, f"{vip}:9000", name=name,
                                       protocol="udp", count=3))
            elif self.pods():
                pod = self.topo.model.pods[self.pods()[0]]
                out.append(pktsim.flow(CLIENT, f"{pod.ip}:8080", name=name,
                                       protocol="tcp", count=4))
        return [dataclasses.replace(f, start_ns=self.now) for f in out]

    @precondition(lambda self: self.topo is not None and CLIENT in self.topo.model.pods)
    @rule(kinds=st.lists(st.sampled_from(["tcp-service", "udp-service", "tcp-pod"]),
                         min_size=1, max_size=3, unique=True),
          then=st.sampled_from(["nothing", "delete_pod", "scale", "fail_node"]),
          offset=st.sampled_from(OFFSETS), data=st.data())
    def send(self, kinds: list[str], then: str, offset: int, data: st.DataObject) -> None:
        """Traffic now; ``then`` a change ``offset`` later, inside the connections opened."""
        assert self.topo is not None
        self.results += start_flows(self.topo, self.flows(kinds))
        if then == "scale":
            self._scale(data.draw(st.sampled_from(DEPLOYMENTS), label="name"),
                        data.draw(st.integers(0, 3), label="replicas"), offset)
        elif then == "delete_pod" and self.pods():
            self._delete_pod(data, offset)
        elif then == "fail_node" and len(self.failed) < len(NODES):
            self._fail_node(data, offset)
        self.advance(10)

    @precondition(lambda self: self.topo is not None)
    @rule(ms=st.sampled_from([1, 300, 1000, 2500, 5000, 60_000]))
    def advance(self, ms: int) -> None:
        assert self.topo is not None
        self.now += ms * MS
        self.topo.driver.run(until=self.now)

    def result(self) -> Result:
        assert self.topo is not None
        return Result(self.topo, self.results, self.memory)

    @invariant()
    def new_connections_follow_the_last_sync(self) -> None:
        if self.topo is not None:
            invariants.new_connections_follow_the_last_sync(self.result())

    @invariant()
    def unrelated_changes_keep_connections(self) -> None:
        if self.topo is not None:
            invariants.unrelated_changes_keep_connections(self.result())

    def teardown(self) -> None:
        if self.topo is not None:  # what was still on its way, and the grace periods
            self.advance(10_000)
            self.new_connections_follow_the_last_sync()
            self.unrelated_changes_keep_connections()


ChangeMachine.TestCase.settings = settings(
    max_examples=40, stateful_step_count=20, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
TestChangeMachine = ChangeMachine.TestCase


# -- the machine's checks, shown to catch what they are for ---------------------------------

class Draws:
    """A stand-in for ``st.data()`` in a scripted machine: each draw is the strategy's
    simplest value (the first pod, the first node)."""

    def draw(self, strategy: st.SearchStrategy[Any], label: str = "") -> Any:
        return find(strategy, lambda _: True)


def scripted(network: str = "routes") -> ChangeMachine:
    """Traffic to the Service; a pod deleted; a second later (kube-proxy has synced) the
    same traffic again: new connections after the sync."""
    machine = ChangeMachine()
    machine.start(network)
    machine.advance(1000)
    draws: Any = Draws()
    machine.send(["tcp-service", "udp-service"], "delete_pod", 50 * US, draws)
    machine.advance(300)
    machine.send(["tcp-service", "udp-service"], "nothing", 50 * US, draws)
    machine.advance(1000)
    return machine


def test_the_scripted_machine_holds_and_judges_something() -> None:
    machine = scripted()
    result = machine.result()
    deleted = [e for e in result.events if "Terminating" in e.summary]
    assert len(deleted) == 1
    later = [e for e in result.events if e.nat is not None and e.nat.rule is not None
             and e.summary.startswith("kube-proxy DNAT") and e.t > deleted[0].t]
    assert later, "new connections were DNATed after the deletion's sync"
    machine.new_connections_follow_the_last_sync()
    machine.unrelated_changes_keep_connections()
    machine.teardown()


def test_the_same_steps_give_the_same_run() -> None:
    one, two = scripted("vxlan"), scripted("vxlan")
    assert [(f.t_abs_ns, f.iface.if_name, f.data) for f in one.memory.frames] == \
        [(f.t_abs_ns, f.iface.if_name, f.data) for f in two.memory.frames]
    assert [e.to_json_dict() for e in one.memory.events] == \
        [e.to_json_dict() for e in two.memory.events]


def test_the_machine_catches_a_sync_that_keeps_a_deleted_endpoint(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import pktsim.control.sync as sync

    original = sync.load_rules

    def stale(topo: Any, info: Any, nf: Any, written: Any = None) -> Any:
        if written is None:  # kube-proxy's sync writes nothing: its old rules stay
            return topo.proxy_written[info.name]
        return original(topo, info, nf, written)

    monkeypatch.setattr(sync, "load_rules", stale)
    with pytest.raises(AssertionError, match=r"kube-proxy DNAT .* \(default/echo:(http/tcp|"
                                             r"udp/udp)\), but when node-1's kube-proxy last "
                                             r"synced .* terminating \(serving: true\)"):
        scripted().new_connections_follow_the_last_sync()


def test_the_machine_catches_a_change_that_breaks_an_unrelated_connection(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every kube-proxy sync flushes conntrack on nodes that cannot pick connections up
    again: a pod of the *other* Deployment deleted inside a connection to ``echo`` breaks
    it (the deletion's sync comes at once: a second has passed since the start-up sync)."""
    flush_conntrack_at_each_sync(monkeypatch)
    machine = ChangeMachine()
    machine.start("routes")
    assert machine.topo is not None  # warmed up: a second on, the neighbours known
    other = next(p for p in machine.pods() if p.startswith("default/other"))
    machine.results += start_flows(machine.topo, machine.flows(["tcp-service"]))
    machine.change(Change(machine.now + 120 * US, "delete", "Pod", *other.split("/")))
    machine.advance(10_000)
    with pytest.raises(AssertionError, match=rf"tcp .* -> .*:80 \(default/client:eth0\), "
                                             rf"established at 1\.0000\d+ s, never completed "
                                             rf".* after changes that concern neither end: "
                                             rf"1\.00012 s control-plane: kubectl: pod {other} "
                                             rf"Terminating"):
        machine.unrelated_changes_keep_connections()
