"""A rule-based state machine over a cluster that changes while traffic runs.

pktsim has no live-mutation API (a ``Cluster`` is built once from its manifests), so the
machine keeps the *desired state* as manifests and applies it in the two ways that are
honest about what pktsim models:

* **kube-proxy resync on one live topology.**  ``live`` is built once (``cluster.build()``)
  and keeps running on one virtual clock: conntrack, ARP and FDB state carry over.  When the
  desired state changes, the machine does what kube-proxy does on a sync: it regenerates
  every node's iptables from the new model (``node_rules``) and ``iptables-restore``\\ s it
  (``Netfilter.load``), and, as kube-proxy's ``deleteEndpointConnections`` does, deletes the
  UDP conntrack entries of endpoints that went away.  Deleted pods keep running in the live
  topology (a terminating pod still answers); pods *added* cannot be, since pktsim cannot
  add a namespace to a built topology, so an addition rebuilds ``live`` from scratch (and
  conntrack starts empty).  CoreDNS's zone is not resynced either, so flows on ``live`` use
  addresses, not names.
* **a fresh build per run** for everything else: ``run_rebuilt`` loads the desired state
  and runs flows of every kind, names and lookups included, with every invariant.

Pods are pinned (``spec.nodeName``, ``status.podIP``, never reusing an address) and CoreDNS
is part of the manifests (a snapshot: a Deployment and its two pods, pinned too), so an
address means the same pod across rebuilds.  Invariants after every step: flows sent are
answered and keep every ``pktsim.invariants`` check (so no new connection goes to a deleted
or not-ready endpoint after the resync), and conntrack entries expire on time: never before
their timeout, always by it, with the timeout Linux (and kube-proxy's sysctls) give the
entry's state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, settings
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
from pktsim.devices.outcome import FlowResult
from pktsim.kubeproxy import node_rules
from pktsim.model.objects import Flow
from pktsim.netfilter import flannel_masquerade
from pktsim.netfilter.conntrack import NS, Conn, ConntrackConfig
from pktsim.netfilter.tcpstate import TcpTimeouts
from pktsim.sinks.trace import MemorySink
from pktsim.strategies import flow_lists
from pktsim.strategies.flows import _parse_flows

pytestmark = pytest.mark.slow  # seconds in all: `make test-fast` leaves the module out

APPS = ("web", "api")
NODES = ("node-1", "node-2")
LIVE_KINDS = ("pod-to-pod", "pod-to-service", "node-to-pod", "node-to-service",
              "external-to-nodeport", "external-to-loadbalancer")
RUN_FOR = 10 * NS  # virtual time given to a batch of flows
CONNTRACK = ConntrackConfig.kube_proxy()
TCP_TIMEOUTS = TcpTimeouts.kube_proxy()

COREDNS = [
    {"apiVersion": "apps/v1", "kind": "Deployment",
     "metadata": {"name": "coredns", "namespace": "kube-system"},
     "spec": {"replicas": 2, "selector": {"matchLabels": {"k8s-app": "kube-dns"}},
              "template": {"metadata": {"labels": {"k8s-app": "kube-dns"}},
                           "spec": {"containers": [{"name": "coredns"}]}}}},
    *({"apiVersion": "v1", "kind": "Pod",
       "metadata": {"name": f"coredns-7db6d8ff4d-{i}", "namespace": "kube-system",
                    "labels": {"k8s-app": "kube-dns", "pod-template-hash": "7db6d8ff4d"},
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                         "name": "coredns-7db6d8ff4d", "controller": True}]},
       "spec": {"nodeName": node, "dnsPolicy": "Default", "containers": [
           {"name": "coredns", "ports": [
               {"name": "dns", "containerPort": 53, "protocol": "UDP"},
               {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
               {"name": "metrics", "containerPort": 9153, "protocol": "TCP"}]}]},
       "status": {"podIP": f"10.244.{i}.2"}} for i, node in enumerate(NODES)),
    {"apiVersion": "v1", "kind": "Service",
     "metadata": {"name": "kube-dns", "namespace": "kube-system",
                  "labels": {"k8s-app": "kube-dns"}},
     "spec": {"clusterIP": "10.96.0.10", "selector": {"k8s-app": "kube-dns"},
              "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                        {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                        {"name": "metrics", "port": 9153, "protocol": "TCP",
                         "targetPort": 9153}]}},
]
CONTAINERS = [{"name": "app", "ports": [
    {"name": "http", "containerPort": 8080, "protocol": "TCP"},
    {"name": "echo", "containerPort": 9999, "protocol": "UDP"}]}]


@dataclass
class PodState:
    app: str
    node: int  # index into NODES
    ip: str
    ready: bool = True
    owner: str = ""  # the Deployment whose ReplicaSet owns it


@dataclass
class Desired:
    """The cluster as the API server holds it, rendered as a snapshot's manifests."""

    network: str = "routes"
    pods: dict[str, PodState] = field(default_factory=dict)
    deployments: dict[str, int] = field(default_factory=dict)  # name -> pods made so far
    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    next_host: list[int] = field(default_factory=lambda: [10, 10])

    def new_ip(self, node: int) -> str:
        host = self.next_host[node]
        self.next_host[node] += 1  # never reused: a deleted pod's address stays unused
        return f"10.244.{node}.{host}"

    def docs(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = [
            {"apiVersion": "pktsim/v1alpha1", "kind": "Cluster",
             "spec": {"nodes": len(NODES), "network": self.network}}, *COREDNS]
        for name in sorted(self.deployments):
            replicas = sum(p.owner == name for p in self.pods.values())
            out.append({"apiVersion": "apps/v1", "kind": "Deployment",
                        "metadata": {"name": name},
                        "spec": {"replicas": replicas,
                                 "selector": {"matchLabels": {"app": name}},
                                 "template": {"metadata": {"labels": {"app": name}},
                                              "spec": {"containers": CONTAINERS}}}})
        for name, pod in sorted(self.pods.items()):
            meta: dict[str, Any] = {"name": name, "labels": {"app": pod.app}}
            if pod.owner:
                meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                            "name": f"{pod.owner}-5d9c7b", "controller": True}]
            out.append({"apiVersion": "v1", "kind": "Pod", "metadata": meta,
                        "spec": {"nodeName": NODES[pod.node], "containers": CONTAINERS},
                        "status": {"podIP": pod.ip, "conditions": [
                            {"type": "Ready", "status": str(pod.ready)}]}})
        for name, svc in sorted(self.services.items()):
            spec: dict[str, Any] = {"selector": {"app": svc["app"]}, "ports": [
                {"name": "http", "port": 80, "targetPort": "http"},
                {"name": "echo", "port": 9999, "protocol": "UDP", "targetPort": "echo"}]}
            if svc["type"] == "Headless":
                spec["clusterIP"] = "None"
            elif svc["type"] != "ClusterIP":
                spec["type"] = svc["type"]
            if svc["publish"]:
                spec["publishNotReadyAddresses"] = True
            out.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
                        "spec": spec})
        return out

    def cluster(self) -> pktsim.Cluster:
        return pktsim.load(yaml.safe_dump_all(self.docs()))


def resync(topo: Topology, model: Any, now: int) -> int:
    """kube-proxy's sync on every node: restore its rules from ``model``, put flannel's
    masquerade back, and delete UDP conntrack entries of endpoints that are gone.  Returns
    how many entries were deleted."""
    live = {(str(ep.ip), ep.port) for svc in model.services.values() for port in svc.ports
            for ep in port.endpoints if ep.ready or svc.service.publish_not_ready_addresses}
    deleted = 0
    for name, nf in topo.netfilters.items():
        node = model.nodes[name]
        nf.load(node_rules(model, name))
        flannel_masquerade(nf.table("nat"), str(node.pod_cidr), str(model.config.pod_cidr))
        nf.validate()
        deleted += len(nf.conntrack.delete_where(now, lambda c: c.proto == 17 and c.dst_nat
                                                 and (pktsim_ip(c.reply.src), c.reply.sport)
                                                 not in live))
    topo.model = model
    return deleted


def pktsim_ip(raw: bytes) -> str:
    return ".".join(str(b) for b in raw)


def timeout_of(conn: Conn) -> int:
    """The longest lifetime (ns) an entry in ``conn``'s state may be given from now."""
    if conn.tcp is not None:
        return TCP_TIMEOUTS.of(conn.tcp.state) * NS
    if conn.proto == 17:
        return (CONNTRACK.udp_stream if conn.assured else CONNTRACK.udp) * NS
    if conn.proto == 1:
        return CONNTRACK.icmp * NS
    return CONNTRACK.generic * NS


class ClusterMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.desired = Desired()
        self.topo: Topology | None = None
        self.memory = MemorySink()
        self.pods_built: dict[str, str] = {}  # live topology's pods: key -> IP
        self.now = 0
        self.dirty = True  # desired state changed since the last sync of ``live``
        self.counter = 0
        self.rebuilds = 0
        self.resyncs = 0

    # -- desired state --------------------------------------------------------------------
    @initialize(network=st.sampled_from(["routes", "vxlan", "ipip", "calico"]),
                node=st.integers(0, 1))
    def start(self, network: str, node: int) -> None:
        self.desired.network = network
        self.desired.pods["client"] = PodState("client", node, self.desired.new_ip(node))

    def _name(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.counter}"

    @rule(app=st.sampled_from(APPS), node=st.integers(0, 1), ready=st.booleans())
    def add_pod(self, app: str, node: int, ready: bool) -> None:
        self.desired.pods[self._name(app)] = PodState(app, node, self.desired.new_ip(node),
                                                      ready)
        self.dirty = True

    @precondition(lambda self: self.desired.pods)
    @rule(data=st.data())
    def remove_pod(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.desired.pods)), label="pod")
        del self.desired.pods[name]
        self.dirty = True

    @precondition(lambda self: self.desired.pods)
    @rule(data=st.data())
    def flip_readiness(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.desired.pods)), label="pod")
        pod = self.desired.pods[name]
        pod.ready = not pod.ready
        self.dirty = True

    @rule(app=st.sampled_from(APPS))
    def add_deployment(self, app: str) -> None:
        self.desired.deployments.setdefault(app, 0)
        self.dirty = True

    @precondition(lambda self: self.desired.deployments)
    @rule(data=st.data(), replicas=st.integers(0, 3))
    def scale_deployment(self, data: st.DataObject, replicas: int) -> None:
        name = data.draw(st.sampled_from(sorted(self.desired.deployments)), label="deployment")
        mine = sorted(k for k, p in self.desired.pods.items() if p.owner == name)
        for key in mine[replicas:]:  # scale down: the newest names go last, as here
            del self.desired.pods[key]
        for _ in range(replicas - len(mine)):  # scale up: the scheduler spreads them
            made = self.desired.deployments[name]
            self.desired.deployments[name] = made + 1
            node = made % len(NODES)
            self.desired.pods[f"{name}-5d9c7b-{made:05d}"] = PodState(
                name, node, self.desired.new_ip(node), True, name)
        self.dirty = True

    @rule(app=st.sampled_from(APPS), kind=st.sampled_from(["ClusterIP", "NodePort",
                                                           "LoadBalancer", "Headless"]),
          publish=st.booleans())
    def add_service(self, app: str, kind: str, publish: bool) -> None:
        self.desired.services[self._name(f"{app}-svc")] = {"app": app, "type": kind,
                                                           "publish": publish}
        self.dirty = True

    @precondition(lambda self: self.desired.services)
    @rule(data=st.data())
    def remove_service(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.desired.services)), label="service")
        del self.desired.services[name]
        self.dirty = True

    # -- one fresh build: every kind of flow, names and lookups included --------------------
    @rule(data=st.data())
    def run_rebuilt(self, data: st.DataObject) -> None:
        cluster = self.desired.cluster()
        chosen = data.draw(flow_lists(cluster, max_size=3), label="flows")
        invariants.check_all(cluster.run(flows=chosen))

    # -- the live topology ------------------------------------------------------------------
    def _sync(self) -> pktsim.Cluster:
        cluster = self.desired.cluster()
        pods = {k: str(p.ip) for k, p in cluster.model.pods.items()}
        added = any(self.pods_built.get(k) != ip for k, ip in pods.items())
        if self.topo is None or added:
            self.memory = MemorySink()
            self.topo = cluster.build([self.memory])
            self.topo.driver.run(until=self.now)  # start the servers
            self.pods_built = pods
            self.rebuilds += 1
            self.now = max(self.now, self.topo.driver.now)
        elif self.dirty:
            resync(self.topo, cluster.model, self.now)
            self.resyncs += 1
        self.dirty = False
        return cluster

    @rule(data=st.data())
    def send_live(self, data: st.DataObject) -> None:
        cluster = self._sync()
        self.send(data.draw(flow_lists(cluster, max_size=3, kinds=LIVE_KINDS), label="flows"))

    def send(self, flows: list[Flow]) -> list[FlowResult]:
        """Start ``flows`` now on the live topology, give them ``RUN_FOR``, check them."""
        self._sync()
        assert self.topo is not None
        for flow in flows:
            flow.start_ns += self.now
        frames, events = len(self.memory.frames), len(self.memory.events)
        results = start_flows(self.topo, flows)
        self.now += RUN_FOR
        self.topo.driver.run(until=self.now)
        self._check(results, frames, events)
        return results

    def _check(self, results: list[FlowResult], frames: int, events: int) -> None:
        """Every invariant over what this batch put on the wire (since the last resync)."""
        assert self.topo is not None
        view = MemorySink(self.memory.interfaces, self.memory.frames[frames:],
                          self.memory.events[events:])
        invariants.check_all(Result(self.topo, results, view))

    @rule(seconds=st.sampled_from([0.001, 1, 10, 29, 31, 61, 119, 121, 3601, 86401]))
    def advance_clock(self, seconds: float) -> None:
        if self.topo is None:
            return
        before = {(node, c.id): c.expires for node, nf in self.topo.netfilters.items()
                  for c in nf.conntrack.entries(self.now)}
        events = len(self.memory.events)
        self.now += int(seconds * NS)
        self.topo.driver.run(until=self.now)
        touched = any(e.event == "conntrack" for e in self.memory.events[events:])
        for node, nf in self.topo.netfilters.items():
            after = {c.id: c for c in nf.conntrack.entries(self.now)}
            for (where, ident), expires in before.items():
                if where != node:
                    continue
                if ident in after:
                    assert after[ident].expires > self.now
                elif not touched:  # nothing refreshed or ended it: only time did
                    assert expires <= self.now, (
                        f"{node}: conntrack entry {ident} vanished at {self.now} ns, before "
                        f"its timeout at {expires} ns")

    @invariant()
    def conntrack_timeouts_are_the_kernels(self) -> None:
        if self.topo is None:
            return
        for node, nf in self.topo.netfilters.items():
            for conn in nf.conntrack.entries(self.now):
                left = conn.expires - self.now
                assert 0 < left <= timeout_of(conn), (
                    f"{node}: {conn.render(self.now).strip()}: expires in {left / NS:.3f} s, "
                    f"more than the {timeout_of(conn) / NS:.0f} s its state allows")


ClusterMachine.TestCase.settings = settings(
    max_examples=30, stateful_step_count=20, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much])
TestClusterMachine = ClusterMachine.TestCase


# -- the machine's checks, shown to catch what they are for ---------------------------------

def flows(*entries: dict[str, Any]) -> list[Flow]:
    return _parse_flows([{"name": f"f{i}", **e} for i, e in enumerate(entries)])


def web_machine() -> ClusterMachine:
    """client on node-1; web-a and web-b (node-2) behind ClusterIP Service web-svc-1."""
    machine = ClusterMachine()
    machine.start("routes", 0)
    machine.add_pod("web", 1, True)
    machine.add_pod("web", 1, True)
    machine.add_service("web", "ClusterIP", False)
    return machine


def vip(machine: ClusterMachine) -> str:
    assert machine.topo is not None
    return str(machine.topo.model.services["default/web-svc-3"].cluster_ip)


def backends(machine: ClusterMachine) -> set[str]:
    return {e.nat.new for e in machine.memory.events if e.nat is not None
            and e.summary.startswith(f"kube-proxy DNAT {vip(machine)}:80")}


def test_after_the_resync_no_new_connection_goes_to_a_deleted_endpoint() -> None:
    machine = web_machine()
    machine.send(flows({"from": "default/client", "to": "default/web-1:8080"}))
    to_vip = {"from": "default/client", "to": f"http://{vip(machine)}/", "count": 6}
    machine.send(flows(to_vip))
    assert backends(machine) == {"10.244.1.10:8080", "10.244.1.11:8080"}
    machine.memory.events.clear()
    del machine.desired.pods["web-2"]  # 10.244.1.11
    machine.dirty = True
    machine.send(flows(to_vip))  # resyncs first: kube-proxy's rules lose web-2
    assert machine.resyncs == 1 and machine.rebuilds == 1
    assert backends(machine) == {"10.244.1.10:8080"}


def test_without_the_resync_the_deleted_endpoint_is_caught() -> None:
    machine = web_machine()
    machine.send(flows({"from": "default/client", "to": "default/web-1:8080"}))
    to_vip = {"from": "default/client", "to": f"http://{vip(machine)}/", "count": 6}
    del machine.desired.pods["web-2"]
    machine.topo.model = machine.desired.cluster().model  # type: ignore[union-attr]
    machine.dirty = False  # kube-proxy missed the change: its rules still have web-2
    with pytest.raises(AssertionError, match=r"kube-proxy DNAT 10\.\d+\.\d+\.\d+:80 -> "
                                             r"10\.244\.1\.11:8080, but 10\.244\.1\.11:8080 "
                                             r"is not a ready endpoint of Service "
                                             r"default/web-svc-3"):
        machine.send(flows(to_vip))


def test_conntrack_entries_expire_on_time() -> None:
    machine = web_machine()
    machine.send(flows({"from": "default/client", "to": "10.244.1.10:9999", "protocol": "udp"}))
    assert machine.topo is not None
    table = machine.topo.netfilters["node-1"].conntrack
    (conn,) = [c for c in table.entries(machine.now) if c.proto == 17 and c.orig.dport == 9999]
    last = max(e.t for e in machine.memory.events if e.event == "rx" and e.host == "node-1"
               and e.flow == "f0" and "UDP" in e.summary)  # the echo coming back: the entry's
    # last packet (the ARP frames after it are the neighbour's reachability probe)
    assert conn.expires == last + 30 * NS  # nf_conntrack_udp_timeout (replied, not a stream)
    machine.conntrack_timeouts_are_the_kernels()
    machine.advance_clock((conn.expires - machine.now - 1) / NS)
    assert conn in table.entries(machine.now)  # one nanosecond to go ...
    machine.now += 1
    assert conn not in table.entries(machine.now)  # ... and gone on time


def test_a_wrong_conntrack_timeout_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    from pktsim.netfilter.conntrack import Conntrack

    original = Conntrack._refresh

    def lingering(self: Conntrack, now: int, conn: Conn, d: int) -> str:
        note = original(self, now, conn, d)
        conn.expires += 300 * NS  # a UDP entry that outlives nf_conntrack_udp_timeout
        return note

    monkeypatch.setattr(Conntrack, "_refresh", lingering)
    machine = web_machine()
    machine.send(flows({"from": "default/client", "to": "10.244.1.10:9999", "protocol": "udp"}))
    with pytest.raises(AssertionError, match=r"node-1: udp .* expires in 32\d\.\d+ s, more "
                                             r"than the 30 s its state allows"):
        machine.conntrack_timeouts_are_the_kernels()
