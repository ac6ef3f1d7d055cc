"""Probing every pod from every pod, on the wire: the cells of a ``Reachability``.

What a probe is
---------------
As upstream's NetworkPolicy e2e probes (kubernetes ``test/e2e/network/netpol/probe.go``,
``kubemanager.go`` ``probeConnectivity``: ``agnhost connect ADDR:PORT --timeout=1s
--protocol=P`` in the source pod, ``getProbeTimeoutSeconds`` = 1): a TCP connect or a UDP
datagram from the source pod to the destination pod's IP, answered within one second or
not.  Each probe is a pktsim flow (``make_flow``, the checks of a Traffic entry) whose
client, agnhost's connect (``pktsim.reach.connect``), is started in the source pod's
namespace; the cell is what its client saw
(SYN-ACK or echo: allowed; RST or ICMP port unreachable: refused) and what its own trace
shows (a policy drop: denied, ``pktsim.reach.decode``).

The pods are those upstream and Calico treat as policy subjects: with a network namespace
of their own and an IP (a hostNetwork pod is the node, to which NetworkPolicy does not
apply); a pod to itself is left out, as upstream does (``ignoreLoopback``: the API does not
define loopback).

Why all at once is safe
-----------------------
Every probe runs in one network, so a 9-pod x 2-port matrix costs one build and about one
second of virtual time.  No probe can influence another:

* each (source, destination, port, protocol) is probed once, and each client takes its
  source port when it starts, after the source's earlier probes took theirs: no two probes
  share a conntrack tuple.  (A reply tuple could equal another probe's original tuple only
  if probed ports lay in the ephemeral range 32768-60999 and the draws met.)
* a source's probes start ``STAGGER_NS`` (1 ms) apart: the first resolves the next hop's
  MAC, the others find it resolved, so none waits in a neighbour queue (``unres_qlen``,
  101 packets) that a hundred probes sent at once toward one gateway would overflow.
* each probe's 1 s timeout runs from its own start (``pktsim.reach.connect``).

The tests check that a cell does not change with the other probes run beside it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pktsim.build.flows import source_netns
from pktsim.build.topology import Topology, build
from pktsim.core.capture import Direction, Interface
from pktsim.core.events import Event, TraceEvent
from pktsim.core.frame import Reaction
from pktsim.devices.outcome import FlowResult, FlowStatus
from pktsim.errors import ScenarioError
from pktsim.model.cluster import ClusterModel, allocate
from pktsim.model.objects import Flow, Scenario
from pktsim.model.policy import enforces_policy, policies_selecting
from pktsim.reach.cells import Reachability, ReachCell, Verdict
from pktsim.reach.connect import TIMEOUT_NS, ConnectApp, EchoApp
from pktsim.reach.decode import Decision, decide
from pktsim.scenario.traffic import make_flow

STAGGER_NS = 1_000_000  # between two probes of one source (see "Why all at once is safe")
PROTOCOLS = ("tcp", "udp")
DEFAULT_PORT = 80  # when no destination declares a port of the protocol


@dataclass(frozen=True, slots=True)
class Probe:
    """One cell to probe, and the flow that probes it."""

    source: str
    destination: str
    port: int
    protocol: str
    flow: Flow


class _Events:
    """A sink keeping each flow's trace events (no frames: a probe needs none)."""

    takes_frames = False

    def __init__(self) -> None:
        self.by_flow: dict[str, list[TraceEvent]] = {}

    def interface(self, iface: Interface) -> None:
        pass

    def frame(self, t_abs_ns: int, iface: Interface, direction: Direction, data: bytes,
              comment: str) -> None:
        pass

    def event(self, event: TraceEvent) -> None:
        self.by_flow.setdefault(event.flow, []).append(event)

    def close(self) -> None:
        pass


def probe_pods(model: ClusterModel, namespaces: Sequence[str] = ()) -> tuple[str, ...]:
    """The ``NAMESPACE/POD`` keys probed, sorted: pods with their own namespace and an IP,
    in ``namespaces`` when given (a namespace without such pods is an error)."""
    pods = sorted(key for key, info in model.pods.items()
                  if not info.pod.host_network and info.ip is not None)
    if not namespaces:
        return tuple(pods)
    have = {p.split("/")[0] for p in pods}
    for ns in namespaces:
        if ns not in have:
            raise ScenarioError("has no pod with its own network namespace", field="namespaces",
                                value=ns, valid=", ".join(sorted(have)) or "no namespace")
    return tuple(p for p in pods if p.split("/")[0] in namespaces)


def default_ports(model: ClusterModel, pods: Sequence[str], protocol: str) -> tuple[int, ...]:
    """The container ports of ``protocol`` the pods declare (every pod is probed on each,
    as cyclonus probes a fixed port on every pod), or 80 when they declare none."""
    found = {port.port for key in pods for c in model.pods[key].pod.containers
             for port in c.ports if port.protocol == protocol.upper()}
    return tuple(sorted(found)) or (DEFAULT_PORT,)


def plan(pods: Sequence[str], ports: Sequence[int], protocol: str) -> list[Probe]:
    """Every probe, port by port, then source, then destination (the matrix order)."""
    probes: list[Probe] = []
    for port in ports:
        for src in pods:
            for dst in pods:
                if src != dst:
                    name = f"reach-{len(probes) + 1}"
                    flow = make_flow({"name": name, "from": src, "to": f"{dst}:{port}",
                                      "protocol": protocol})
                    probes.append(Probe(src, dst, port, protocol, flow))
    return probes


def _client(topo: Topology, probe: Probe) -> ConnectApp | EchoApp:
    """agnhost's connect: a TCP handshake, or a UDP datagram and its echo."""
    ip = topo.model.pods[probe.destination].ip
    assert ip is not None  # probe_pods keeps pods with an address only
    cls = ConnectApp if probe.protocol == "tcp" else EchoApp
    return cls(probe.flow.name, ip.packed, probe.port, probe.flow.target)


def _starter(topo: Topology, probe: Probe, results: dict[str, FlowResult]
             ) -> Callable[[int], Reaction]:
    """Start the probe's client, made only now (see "Why all at once is safe")."""
    ns = source_netns(topo, probe.flow)

    def start(now: int) -> Reaction:
        app = _client(topo, probe)
        results[probe.flow.name] = app.result
        return ns.l4.start(now, app)

    return start


def run_probes(scenario: Scenario, probes: Sequence[Probe]
               ) -> tuple[ClusterModel, dict[str, FlowResult], _Events]:
    """Run every probe in one fresh network, each source's probes ``STAGGER_NS`` apart,
    until the last one's timeout."""
    model = allocate(scenario)
    events = _Events()
    topo = build(model, [events])
    results: dict[str, FlowResult] = {}
    started: dict[str, int] = {}
    for probe in probes:
        at = started.get(probe.source, 0)
        started[probe.source] = at + STAGGER_NS
        topo.driver.call(at, source_netns(topo, probe.flow), _starter(topo, probe, results))
    last = max(started.values(), default=STAGGER_NS) - STAGGER_NS
    topo.driver.run(until=last + TIMEOUT_NS)
    return model, results, events


def _sides(model: ClusterModel, allowed_by: tuple[tuple[str, str], ...]) -> str:
    """``egress: x/p; ingress: not isolated`` -- who passed the probe each way."""
    parts = []
    for direction in ("Egress", "Ingress"):
        keys = [key for d, key in allowed_by if d == direction]
        parts.append(f"{direction.lower()}: {', '.join(keys) if keys else 'not isolated'}")
    return "; ".join(parts)


def _denied(model: ClusterModel, probe: Probe, decision: Decision) -> ReachCell:
    denial = decision.denial
    assert denial is not None
    pod = probe.destination if denial.direction == "Ingress" else probe.source
    info = model.pods[pod]
    isolating = policies_selecting(model.network_policies, info.pod.namespace,
                                   info.pod.labels, denial.direction) \
        if denial.direction else []
    which = ", ".join(p.key for p in isolating) or "no policy in the model"
    reason = (f"{denial.direction.lower()} isolation of {pod} ({which}): dropped by "
              f"{denial.chain} on {denial.host}") if denial.direction else \
        f"dropped by policy in {denial.chain} on {denial.host}"
    passed = [f"{d.lower()} {key}" for d, key in decision.allowed_by if d != denial.direction]
    if passed:  # the other side had let it through: say so, it is half the story
        reason += f" (after {', '.join(passed)} passed it)"
    return ReachCell(probe.source, probe.destination, probe.port, probe.protocol,
                     Verdict.DENIED, tuple((denial.direction, p.key) for p in isolating),
                     reason, probe.flow.name)


def _failure(result: FlowResult | None, events: Sequence[TraceEvent]) -> str:
    """Why an unanswered probe failed: its client's words and the drops on its way."""
    said = result.text() if result is not None and result.status is not FlowStatus.PENDING \
        else "no answer"
    drops = dict.fromkeys(e.drop_reason.value for e in events
                          if e.event is Event.DROP and e.drop_reason is not None)
    return f"{said} (dropped: {', '.join(drops)})" if drops else said


def judge(model: ClusterModel, probe: Probe, result: FlowResult | None,
          events: Sequence[TraceEvent]) -> ReachCell:
    """The cell of one probe from its client's outcome and its own trace."""
    decision = decide(events)
    if decision.denial is not None:
        return _denied(model, probe, decision)
    status = result.status if result is not None else FlowStatus.PENDING
    enforced = enforces_policy(model.config.network)
    sides = _sides(model, decision.allowed_by) if enforced else \
        "network does not enforce NetworkPolicy"
    cell = ReachCell(probe.source, probe.destination, probe.port, probe.protocol,
                     Verdict.FAILED, decision.allowed_by, "", probe.flow.name)
    if status is FlowStatus.OK:
        return _with(cell, Verdict.ALLOWED, sides)
    if status is FlowStatus.REFUSED:
        assert result is not None
        return _with(cell, Verdict.REFUSED, f"{result.text()}: nothing listens ({sides})")
    return _with(cell, Verdict.FAILED, _failure(result, events))


def _with(cell: ReachCell, verdict: Verdict, reason: str) -> ReachCell:
    return ReachCell(cell.source, cell.destination, cell.port, cell.protocol, verdict,
                     cell.decided_by if verdict is not Verdict.FAILED else (), reason,
                     cell.flow)


def reachability(scenario: Scenario, *, ports: Sequence[int] | None = None,
                 protocol: str = "tcp", namespaces: Sequence[str] = ()) -> Reachability:
    """Probe every pod from every pod on each port (default: ``default_ports``)."""
    protocol = protocol.lower()
    if protocol not in PROTOCOLS:
        raise ScenarioError("is not a probe protocol", field="protocol", value=protocol,
                            valid="tcp or udp")
    model = allocate(scenario)
    pods = probe_pods(model, namespaces)
    chosen = tuple(ports) if ports else default_ports(model, pods, protocol)
    for port in chosen:
        if not 1 <= port <= 65535:
            raise ScenarioError("is out of range", field="ports", value=port, valid="1-65535")
    probes = plan(pods, chosen, protocol)
    model, results, events = run_probes(scenario, probes)
    cells = [judge(model, p, results.get(p.flow.name), events.by_flow.get(p.flow.name, []))
             for p in probes]
    network = model.config.network
    enforced = enforces_policy(network)
    count = len(model.network_policies)
    warnings = [] if enforced else [
        f"network {network} does not enforce NetworkPolicy: every cell is what the network "
        f"does without policy ({count or 'no'} {'policy' if count == 1 else 'policies'} "
        "in the scenario)"]
    return Reachability(pods, tuple((protocol, p) for p in chosen), network, enforced, cells,
                        warnings)
