"""Invariants of a cluster that changes while packets flow (``spec.events``): new connections
follow what kube-proxy was last told, and changes leave the connections they do not touch.

Both read only the ``Result``: the ``change`` events (``ClusterChange``; an endpoint update
carries the Service ports as published, ``published``), the ``sync`` events of each node
(``RuleSync``), the ``nat`` events of kube-proxy's rules and the captured frames.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from ipaddress import ip_address

from pktsim.api import Result
from pktsim.core.events import ClusterChange, Event, PublishedPort, RuleSync, TraceEvent
from pktsim.invariants.paths import _NAMES, TCP, UDP, UDP_TIMEOUT_NS, Hop, hops
from pktsim.invariants.services import _client_ifaces
from pktsim.model.cluster import ClusterModel
from pktsim.model.objects import ClusterConfig
from pktsim.model.timeline import SECOND

# a KUBE-SEP chain's DNAT rule: ``-A KUBE-SEP-… -p udp -m comment --comment "ns/svc:port"``
_SEP_RULE = re.compile(r'-p (\w+) -m comment --comment "?([^"\s]+)"?')
_Ports = dict[tuple[str, str], tuple[PublishedPort, int]]  # (name, proto) -> (port, when)


def usable_endpoints(port: PublishedPort, node: str) -> set[str]:
    """The endpoints (``IP:port``) kube-proxy on ``node`` may send a new connection to:
    ``CategorizeEndpoints`` (kubernetes pkg/proxy/topology.go).  Ready endpoints; when none
    is ready anywhere, the serving terminating ones (cluster traffic policy); when none is
    ready on ``node``, ``node``'s serving terminating ones (local policy).  A port whose
    traffic uses both sets may use either.  Topology hints may narrow the ready ones to
    this node's or zone's (``pktsim.kubeproxy.topology``); that is not judged here (it is
    ``backends_are_ready_endpoints``'): the property is about endpoints that left."""
    eps = port.endpoints
    fallback = [e for e in eps if e.serving and e.terminating]
    cluster = [e for e in eps if e.ready] or fallback
    local = [e for e in eps if e.ready and e.node == node] or \
        [e for e in fallback if e.node == node]
    return {e.addr for e in (cluster if port.cluster else []) + (local if port.local else [])}


def _state(port: PublishedPort, addr: str) -> str:
    ep = next((e for e in port.endpoints if e.addr == addr), None)
    if ep is None:
        return "no endpoint of it (its pod was gone)"
    if ep.terminating:
        return f"terminating (serving: {str(ep.serving).lower()}) while other endpoints " \
               "were usable"
    return "not ready"


def new_connections_follow_the_last_sync(result: Result) -> None:
    """A new connection never reaches a pod whose deletion kube-proxy has synced.

    For every connection kube-proxy DNATs (a TCP SYN, the first datagram of a UDP
    conntrack entry: a ``nat`` event with the rule that bound it) at ``t`` on node N, the
    endpoint chosen is usable (``usable_endpoints``) in the Service port as the
    EndpointSlice controller had published it when N's kube-proxy last synced before
    ``t``.  A pod deleted (Terminating: not ready), marked not ready (its node failed),
    or gone before that sync is no longer usable -- unless it is the fallback
    (every endpoint terminating).  Before N's first sync of the run after a port's first
    update, N runs its start-up rules: those connections are not judged (nothing had left
    them).  Established connections keep their binding (no ``nat`` rule is walked), so
    they are not judged either."""
    published: _Ports = {}
    synced: dict[str, tuple[int, _Ports]] = {}  # node -> (when it last synced, ports then)
    for e in result.events:
        d = e.detail
        if e.event is Event.CHANGE and isinstance(d, ClusterChange) and d.published:
            published = {**published, **{(p.name, p.protocol): (p, e.t) for p in d.published}}
        elif e.event is Event.SYNC and isinstance(d, RuleSync) and d.component == "kube-proxy":
            synced[e.host] = (e.t, published)
        elif e.host in synced:
            _check_binding(e, *synced[e.host])


def _check_binding(e: TraceEvent, synced_at: int, ports: _Ports) -> None:
    nat = e.nat
    if nat is None or nat.rule is None or not e.summary.startswith("kube-proxy DNAT"):
        return
    match = _SEP_RULE.search(nat.rule.rule)
    if match is None:
        return
    proto, name = match.groups()
    known = ports.get((name, proto))
    if known is None:
        return  # not updated during the run before that sync: the start-up endpoints
    port, when = known
    usable = usable_endpoints(port, e.host)
    assert nat.new in usable, (
        f"packet {e.packet} ({e.flow}) at {e.host}:{e.iface}, {e.t / SECOND:.6f} s: "
        f"kube-proxy DNAT {nat.old} -> {nat.new} ({name}/{proto}), but when {e.host}'s "
        f"kube-proxy last synced ({synced_at / SECOND:g} s), the endpoints published at "
        f"{when / SECOND:g} s had {nat.new} {_state(port, nat.new)}; usable then: "
        f"{', '.join(sorted(usable)) or 'none'}")


# -- established connections and the changes that do not concern them ------------------------

RST, SYN, FIN, ACK = 0x04, 0x02, 0x01, 0x10
HUNG_NS = 5 * SECOND  # a connection open this long after its handshake has hung
ANSWER_NS = 1 * SECOND  # a datagram unanswered this long went unanswered


@dataclass
class Connection:
    """One TCP connection, or one UDP flow of datagrams (a conntrack entry's life), as its
    client's ``eth0`` saw it; times in ns since the start of the run."""

    proto: int  # 6 or 17
    iface: str
    key: tuple[str, int, str, int]  # client address:port -> the address:port it asked
    first_pid: int  # the SYN, or the first datagram
    opened: int
    established: int | None = None  # the SYN-ACK, or the first answer, came back
    closed: int | None = None  # TCP: the server's FIN reached the client
    reset: Hop | None = None  # TCP: the first RST either way
    last: int = 0
    sent: list[int] = field(default_factory=list)  # UDP: datagrams sent once established
    answered: int = 0  # UDP: answers after the first

    def text(self) -> str:
        src, sport, dst, dport = self.key
        return f"{_NAMES[self.proto]} {src}:{sport} -> {dst}:{dport} ({self.iface})"


def connections(result: Result) -> Iterator[Connection]:
    """Every TCP connection and UDP flow a client with its own namespace (a pod, an external
    client) opened, on the client's ``eth0``: a TCP connection from its SYN, established
    when the SYN-ACK came back, closed when the server's FIN did, or reset (a RST either
    way); a UDP flow from its first datagram to a 30 s silence (``nf_conntrack_udp_timeout``
    ends its entry), established by its first answer."""
    start = result.topology.driver.start_time_ns
    clients = _client_ifaces(result)
    open_: dict[tuple[str, tuple[str, int, str, int]], Connection] = {}
    served: set[tuple[str, tuple[str, int, str, int]]] = set()  # UDP the other side began
    for hop in hops(result):
        if hop.proto not in (TCP, UDP) or hop.if_name not in clients:
            continue
        t = hop.t_ns - start
        out = hop.direction == "OUTBOUND"
        key = (hop.src, hop.sport, hop.dst, hop.dport) if out else \
            (hop.dst, hop.dport, hop.src, hop.sport)
        conn = open_.get((hop.if_name, key))
        if hop.proto == UDP and conn is None and (not out or (hop.if_name, key) in served):
            served.add((hop.if_name, key))  # a server's side: its replies open nothing
            continue
        if out and _opens(hop, conn, t):
            if conn is not None:  # the address and port used again: a new connection
                yield conn
            conn = open_[(hop.if_name, key)] = Connection(hop.proto, hop.if_name, key,
                                                          hop.pid, t)
        if conn is not None:
            _follow(conn, hop, out, t)
    yield from open_.values()


def _opens(hop: Hop, conn: Connection | None, t: int) -> bool:
    if hop.proto == UDP:
        return conn is None or t - conn.last >= UDP_TIMEOUT_NS
    return hop.flags & (SYN | ACK) == SYN and (conn is None or conn.established is not None)


def _follow(conn: Connection, hop: Hop, out: bool, t: int) -> None:
    conn.last = t
    if conn.proto == UDP:
        if out and conn.established is not None:
            conn.sent.append(t)
        elif not out and conn.established is None:
            conn.established = t
        elif not out:
            conn.answered += 1
    elif hop.flags & RST and conn.reset is None:
        conn.reset = hop
    elif not out and hop.flags & (SYN | ACK) == SYN | ACK and conn.established is None:
        conn.established = t
    elif not out and hop.flags & FIN and conn.closed is None:
        conn.closed = t


@dataclass(frozen=True)
class _Owners:
    """Who has each address at the end of the run (pods by key, nodes by name), and when
    each pod made during the run was created: an address may have been a deleted pod's
    before (host-local and Calico IPAM hand released addresses out again)."""

    at_end: dict[str, tuple[str, str]]  # address -> (pod key or node, its node)
    born: dict[str, int]  # pod key -> when the API created it (pods made during the run)

    @classmethod
    def of(cls, result: Result) -> _Owners:
        model = result.topology.model
        out = {str(n.ip): (name, name) for name, n in model.nodes.items()}
        out |= {str(n.ip6): (name, name) for name, n in model.nodes.items()
                if n.ip6 is not None}
        for key, info in model.pods.items():
            if not info.pod.host_network:
                out[str(info.ip)] = (key, info.node)
                if info.ip6 is not None:
                    out[str(info.ip6)] = (key, info.node)
        born: dict[str, int] = {}
        for e in result.events:
            if e.event is Event.CHANGE and isinstance(e.detail, ClusterChange) and \
                    " created" in e.summary:
                for key in e.detail.objects:
                    born.setdefault(key, e.t)
        return cls(out, born)

    def then(self, address: str, since: int) -> tuple[str, str] | None:
        """Who had ``address`` at ``since``, when it is who has it now."""
        owner = self.at_end.get(address)
        if owner is None or self.born.get(owner[0], -1) > since:
            return None
        return owner


def _depends_on(result: Result, conn: Connection, owners: _Owners,
                nats: dict[int, TraceEvent]) -> frozenset[str] | None:
    """What the connection depends on: its client and server (pods, or nodes), their
    nodes, the node that DNATed it and its Service; None when an end is no longer in the
    model (deleted during the run: the connection was touched)."""
    model = result.topology.model
    client = conn.iface.rpartition(":")[0]
    touched = {client}
    if client not in result.topology.clients:  # a pod, not an external client
        info = model.pods.get(client)
        if info is None or owners.born.get(client, -1) > conn.opened:
            return None
        touched.add(info.node)
    server = conn.key[2]
    nat = nats.get(conn.first_pid)
    if nat is not None and nat.nat is not None:
        server = nat.nat.new.rpartition(":")[0]
        touched.add(nat.host)
        rule = nat.nat.rule.rule if nat.nat.rule is not None else ""
        match = _SEP_RULE.search(rule)
        if match is not None:
            touched.add("Service " + match.group(2).partition(":")[0])
    owner = owners.then(server, conn.opened)
    if owner is not None:
        touched |= set(owner)
    elif _in_pod_cidr(server, model.config):
        return None  # the pod that had it then is gone: it was deleted
    return frozenset(touched)


def _in_pod_cidr(address: str, cfg: ClusterConfig) -> bool:
    """Is ``address`` (``10.244.1.2`` or ``fd00:10:244:1::2``) a pod address of the cluster?"""
    ip = ip_address(address)
    return ip in cfg.pod_cidr if ip.version == 4 else \
        cfg.has_ipv6 and ip in cfg.pod_cidr6


def _touches(e: TraceEvent, touched: frozenset[str], policies: _Policies) -> bool:
    """Does the change concern the connection?  Endpoint updates are consequences, not
    causes (their pods' own events say what happened to them).  A Service (``Service
    ns/name`` in ``touched``) is concerned by the user's ``apply``/``delete`` of it, not by
    a workload of its name; a NetworkPolicy change by ``policies.concern``."""
    d = e.detail
    if not isinstance(d, ClusterChange) or d.component == "endpointslice-controller":
        return False
    if "NetworkPolicy" in e.summary:
        return policies.concern(e, d, touched)
    return any(re.search(rf"\b{re.escape(t)}(?=$|[:\s])", e.summary) if t.startswith("Service ")
               else t in d.objects for t in touched)


@dataclass(frozen=True)
class _Policies:
    """The NetworkPolicies of the run's end, and how often the user changed each."""

    model: ClusterModel
    changed: dict[str, int]  # policy key -> applies and deletes during the run

    @classmethod
    def of(cls, result: Result) -> _Policies:
        changed: dict[str, int] = {}
        for e in result.events:
            d = e.detail
            if isinstance(d, ClusterChange) and d.component == "kubectl" and \
                    "NetworkPolicy" in e.summary:
                for key in d.objects:
                    changed[key] = changed.get(key, 0) + 1
        return cls(result.topology.model, changed)

    def concern(self, e: TraceEvent, d: ClusterChange, touched: frozenset[str]) -> bool:
        """An ``apply`` of a policy that selects neither end's pod (namespace and
        podSelector, ``NetworkPolicy.selects``) leaves the connection alone; a policy
        deleted, changed twice or gone by the end may have selected them: it concerns it."""
        key = d.objects[0] if len(d.objects) == 1 else ""
        policy = next((p for p in self.model.network_policies if p.key == key), None)
        if policy is None or self.changed.get(key) != 1 or " apply NetworkPolicy " not in \
                f" {e.summary}":
            return True
        pods = [self.model.pods[t] for t in touched if t in self.model.pods]
        return any(policy.selects(p.pod.namespace, p.pod.labels) for p in pods)


def unrelated_changes_keep_connections(result: Result, *, hung_ns: int = HUNG_NS,
                                       answer_ns: int = ANSWER_NS) -> None:
    """An unrelated change never breaks an established connection.

    A connection (``connections``: TCP from the client's SYN on its ``eth0``, UDP from its
    first datagram) is judged when it was established (the SYN-ACK, or a first answer, came
    back), the cluster changed or a node's rules were rewritten (a ``change`` or ``sync``
    event) between then and its end (UDP: its last datagram), and no change from its start
    to its end was *related*.  A change is related when it names (``objects`` of its
    ``change`` event; what a controller or kubelet does follows as events of its own) the
    client pod, the server pod (the DNAT's endpoint, or the address asked), the node of
    either, the node that DNATed it, or its Service; or when it applies or deletes a
    NetworkPolicy that selects either pod (as the policy is at the end of the run; one
    deleted, or changed more than once, counts whichever pods it selected).  An end missing
    from the model at the end of the run was deleted: related.  Endpoint updates and
    kube-proxy or felix syncs are never related: they are what must not break it.

    Such a TCP connection ends well: no RST either way, and the server's FIN reaches the
    client; one still open ``hung_ns`` after it was established (pktsim's clients finish
    in milliseconds) is broken too.  Such a UDP flow has every datagram sent once it was
    established answered (those sent in the last ``answer_ns`` of the run may still be on
    their way).  Clients on a node's own namespace are not followed (their packets meet no
    ``eth0`` of theirs before the rules)."""
    model_events = [e for e in result.events if e.event in (Event.CHANGE, Event.SYNC)]
    times = [e.t for e in model_events]
    owners, policies = _Owners.of(result), _Policies.of(result)
    nats = {e.packet: e for e in result.events if e.packet is not None and e.nat is not None
            and e.nat.rule is not None and e.summary.startswith("kube-proxy DNAT")}
    end_of_run = result.topology.driver.now
    for conn in connections(result):
        if conn.established is None:
            continue
        ended = _end(conn, result.topology.driver.start_time_ns, end_of_run)
        window = model_events[bisect_left(times, conn.opened):bisect_right(times, ended)]
        during = [e for e in window if e.t >= conn.established]
        touched = _depends_on(result, conn, owners, nats)
        if not during or touched is None or any(_touches(e, touched, policies)
                                                for e in window):
            continue
        _judge(conn, during, end_of_run, hung_ns, answer_ns)


def _end(conn: Connection, start: int, end_of_run: int) -> int:
    """Until when the connection depends on its ends: its RST or the server's FIN (TCP),
    its last datagram (UDP), else the end of the run."""
    if conn.proto == UDP:
        return max(conn.sent, default=conn.last)
    if conn.reset is not None:
        return conn.reset.t_ns - start
    return conn.closed if conn.closed is not None else end_of_run


def _judge(conn: Connection, during: list[TraceEvent], end_of_run: int, hung_ns: int,
           answer_ns: int) -> None:
    assert conn.established is not None
    what = "; ".join(f"{e.t / SECOND:g} s {e.host}: {e.summary}" for e in during[:3])
    more = f" (and {len(during) - 3} more)" if len(during) > 3 else ""
    after = f"after changes that concern neither end: {what}{more}"
    since = f"established at {conn.established / SECOND:.6f} s"
    if conn.proto == UDP:
        due = [t for t in conn.sent if t <= end_of_run - answer_ns]
        assert conn.answered >= len(due), (
            f"{conn.text()}, {since}: {len(due)} datagrams sent since (by "
            f"{due[-1] / SECOND:.6f} s, {answer_ns / SECOND:g} s before the run ended) got "
            f"only {conn.answered} answers {after}")
        return
    assert conn.reset is None, (
        f"{conn.text()}, {since}, was reset ({conn.reset.where()}: RST "
        f"{conn.reset.src}:{conn.reset.sport} -> {conn.reset.dst}:{conn.reset.dport}) {after}")
    assert conn.closed is not None or end_of_run - conn.established < hung_ns, (
        f"{conn.text()}, {since}, never completed (no FIN from the server by "
        f"{end_of_run / SECOND:g} s, last packet at {conn.last / SECOND:.6f} s) {after}")
