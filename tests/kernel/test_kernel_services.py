"""pktsim's Services against the Linux kernel: kube-proxy's and flannel's iptables rules as
pktsim writes them, loaded with ``iptables-restore`` into real node namespaces.

For each scenario pktsim builds the cluster and runs one flow; the nodes' rules are taken
from ``result.topology.netfilters[node].save()`` (the text of ``nodes/NODE/iptables-save.txt``)
and loaded, nat and filter tables, into the node namespaces of a ``twin.KernelCluster``
with ``net.bridge.bridge-nf-call-iptables=1`` (set in the node namespaces only) and
forwarding on, plus pktsim's outside world (router at 172.18.0.1, external client
203.0.113.10).  The kernel runs the same flow with the same request/response bytes; every
interface pktsim has is captured and both sides go through ``twin.normalize`` (as in
test_kernel_cross_node.py).  The addresses MASQUERADE maps to are given as ``nat_ips``:
``--random-fully`` draws the port at random (1024-65535), so those ports read "natportN".

Scenarios (client pod on node-1; every Service has exactly one endpoint, so the DNAT
target is pinned, and it is compared too, from the conntrack tables):

* ``remote``      (a) ClusterIP 443 -> web:8443 on node-2 (routed DNAT across nodes)
* ``local``       (b) ClusterIP 443 -> near:8443 on node-1 (bridged DNAT, br_netfilter)
* ``noendpoints`` (c) ClusterIP with no endpoints: REJECT, ICMP port unreachable, the
                      client's connect() fails with ECONNREFUSED
* ``hairpin``     (d) the client through its own Service, 443 -> itself:8080
                      (masqueraded to the bridge address, back out of its hairpin port)
* ``outside``     (e) HTTP to the external client 203.0.113.10:80, masqueraded to the node
* ``outside-ping``(e) ping -c 2 203.0.113.10 (the echo id is remapped by MASQUERADE)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest

import pktsim
from pktsim.api import Result
from pktsim.wire.parse import mac_str

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import comparable as _comparable
from compare import diff as _diff
from compare import harness_keys, pktk_namespaces, request_and_body
from compare import kernel_comparable as _kernel_comparable
from compare import kernel_nodes as _kernel_nodes
from compare import pktsim_frames as _frames
from twin import (
    ExternalHost,
    ExternalSpec,
    KernelCluster,
    KernelFeatureMissing,
    NodeSpec,
    kernel_available,
    netfilter_available,
)

pytestmark = pytest.mark.kernel

SCENARIO = """
apiVersion: pktsim/v1alpha1
kind: Cluster
spec: {{nodes: 2, network: {network}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: client, labels: {{app: client}}}}
spec: {{nodeName: node-1, containers: [{{name: app, ports: [{{containerPort: 8080}}]}}]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: near, labels: {{app: near}}}}
spec: {{nodeName: node-1, containers: [{{name: app, ports: [{{containerPort: 8443}}]}}]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: web, labels: {{app: web}}}}
spec: {{nodeName: node-2, containers: [{{name: app, ports: [{{containerPort: 8443}}]}}]}}
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec: {{clusterIP: 10.96.100.10, selector: {{app: web}}, ports: [{{port: 443, targetPort: 8443}}]}}
---
apiVersion: v1
kind: Service
metadata: {{name: near}}
spec: {{clusterIP: 10.96.100.20, selector: {{app: near}}, ports: [{{port: 443, targetPort: 8443}}]}}
---
apiVersion: v1
kind: Service
metadata: {{name: empty}}
spec:
  clusterIP: 10.96.100.30
  selector: {{app: nothing}}
  ports: [{{port: 443, targetPort: 8443}}]
---
apiVersion: v1
kind: Service
metadata: {{name: self}}
spec:
  clusterIP: 10.96.100.40
  selector: {{app: client}}
  ports: [{{port: 443, targetPort: 8080}}]
---
apiVersion: pktsim/v1alpha1
kind: Traffic
spec:
  flows:
  - {{name: remote, from: default/client, to: 'http://10.96.100.10:443/'}}
  - {{name: local, from: default/client, to: 'http://10.96.100.20:443/'}}
  - {{name: noendpoints, from: default/client, to: 'http://10.96.100.30:443/'}}
  - {{name: hairpin, from: default/client, to: 'http://10.96.100.40:443/'}}
  - {{name: outside, from: default/client, to: 'http://203.0.113.10:80/'}}
  - {{name: outside-ping, from: default/client, to: 203.0.113.10, protocol: icmp, count: 2}}
"""

MODES = ["routes", "vxlan"]
TUNNEL = {"vxlan": "flannel.1"}
NODE1_IP, BRIDGE1_IP = "172.18.0.2", "10.244.0.1"


# scenario -> (kind, destination, port, server (who), server port, nat_ips, status)
SCENARIOS: dict[str, tuple[str, str, int, str, int, tuple[str, ...], str]] = {
    "remote": ("http", "10.96.100.10", 443, "web", 8443, (), "ok"),
    "local": ("http", "10.96.100.20", 443, "near", 8443, (), "ok"),
    "noendpoints": ("refused", "10.96.100.30", 443, "", 0, (), "connection refused"),
    "hairpin": ("http", "10.96.100.40", 443, "client", 8080, (BRIDGE1_IP,), "ok"),
    "outside": ("http", "203.0.113.10", 80, "external/client", 80, (NODE1_IP,), "ok"),
    "outside-ping": ("ping", "203.0.113.10", 0, "", 0, (), "ok"),
}
# the Service each scenario goes through: (VIP, port) -> the one endpoint (ip, port)
DNAT = {
    "remote": {("10.96.100.10", 443): ("10.244.1.2", 8443)},
    "local": {("10.96.100.20", 443): ("10.244.0.3", 8443)},
    "noendpoints": {},
    "hairpin": {("10.96.100.40", 443): ("10.244.0.2", 8080)},
    "outside": {},
    "outside-ping": {},
}


def tool_reason() -> str | None:
    return kernel_available() or netfilter_available()


def run_pktsim(network: str, flow: str) -> Result:
    cluster = pktsim.load(SCENARIO.format(network=network))
    return cluster.run(flows=[f for f in cluster.flows if f.name == flow])


def pktsim_frames(result: Result, network: str) -> dict[str, list[tuple[bytes, str]]]:
    return _frames(result, key_map(result, network))


def kernel_nodes(result: Result) -> list[NodeSpec]:
    return _kernel_nodes(result, namespace="default")


def comparable(key: str, frames: list[tuple[bytes, str]], names: dict[str, str],
               nat_ips: tuple[str, ...]) -> list[dict[str, Any]]:
    return _comparable(frames, names, nat_ips=nat_ips)


def kernel_comparable(cap: Any, key: str, names: dict[str, str],
                      nat_ips: tuple[str, ...]) -> list[dict[str, Any]]:
    return _kernel_comparable(cap, key, names, nat_ips=nat_ips)


def key_map(result: Result, network: str) -> dict[str, str]:
    """pktsim ``iface.if_name`` -> harness key."""
    return harness_keys(result, ("cbr0", "eth0", TUNNEL.get(network)),
                        ("external:eth0", "external:eth1", "external/client:eth0"))


def kernel_external(result: Result) -> ExternalSpec:
    topo = result.topology
    cfg = topo.model.config
    router = topo.router
    assert router is not None
    clients = tuple(
        ExternalHost(host.split("/", 1)[1], str(ns.ifaces["eth0"].addrs[0].ip),
                     mac_str(ns.ifaces["eth0"].mac))
        for host, ns in topo.clients.items())
    first = topo.model.node_list()[0]
    return ExternalSpec(str(router.ifaces["eth0"].addrs[0].ip), mac_str(router.ifaces["eth0"].mac),
                        str(cfg.external_cidr), mac_str(router.ifaces["eth1"].mac), clients,
                        ((str(cfg.load_balancer_cidr), str(first.ip)),))


# --------------------------------------------------------------------------- conntrack
_KV = re.compile(r"(\w+)=(\S+)")
_WELL_KNOWN = {"80", "443", "8080", "8443"}


def conntrack_view(lines: list[str]) -> list[tuple[Any, ...]]:
    """conntrack entries (``conntrack -L`` or ``/proc/net/nf_conntrack`` lines) reduced to
    what must agree: protocol, TCP state, both tuples, UNREPLIED/ASSURED; ports other than
    the scenario's well-known ones and ICMP ids renamed by first appearance; timeouts,
    marks, zone and use counts left out.  Only TCP, UDP and ICMP entries."""
    rows = []
    for line in lines:
        words = line.split()
        if words and words[0] == "ipv4":  # /proc/net/nf_conntrack: "ipv4 2 tcp 6 ..."
            words = words[2:]
        if not words or words[0] not in ("tcp", "udp", "icmp"):
            continue
        proto = words[0]
        state = words[3] if proto == "tcp" else ""
        kv = [(m.group(1), m.group(2)) for w in words if (m := _KV.fullmatch(w))]
        half = [i for i, (k, _) in enumerate(kv) if k == "src"]
        orig = tuple(kv[half[0]:half[1]])
        reply = tuple(kv[half[1]:half[1] + len(orig)])
        flags = tuple(w for w in words if w in ("[UNREPLIED]", "[ASSURED]"))
        rows.append((proto, state, orig, reply, flags))
    rows.sort(key=lambda r: (r[0], r[2]))
    names: dict[str, str] = {}
    out = []
    for proto, state, orig, reply, flags in rows:
        def ren(t: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
            res = []
            for k, v in t:
                if k in ("sport", "dport", "id") and v not in _WELL_KNOWN:
                    v = names.setdefault(v, f"p{len(names) + 1}")
                res.append((k, v))
            return tuple(res)
        out.append((proto, state, ren(orig), ren(reply), flags))
    return out


def dnat_targets(view: list[tuple[Any, ...]]) -> dict[tuple[str, int], tuple[str, int]]:
    """(original destination, port) -> (reply source, port) where they differ: the DNAT
    each conntrack entry records."""
    out = {}
    for proto, _state, orig, reply, _flags in view:
        if proto not in ("tcp", "udp"):
            continue
        o, r = dict(orig), dict(reply)
        if (o["dst"], o["dport"]) != (r["src"], r["sport"]):
            out[(o["dst"], int(o["dport"]))] = (r["src"], int(r["sport"]))
    return out


# --------------------------------------------------------------------------- kernel side
class Run:
    """One scenario on both sides: pktsim's result, the kernel's capture and state."""

    def __init__(self, mode: str, name: str) -> None:
        self.mode, self.name = mode, name
        self.result = run_pktsim(mode, name)
        self.rules = {n: nf.save() for n, nf in self.result.topology.netfilters.items()}
        self.kernel_rules: dict[str, str] = {}
        self.kernel_conntrack: dict[str, list[str] | None] = {}
        self.cap: Any = None
        self.outcome: Any = None
        self.names: dict[str, str] = {}
        self.kernel_keys: set[str] = set()

    def run_kernel(self) -> None:
        kind, dst, port, server, server_port, _nat, _status = SCENARIOS[self.name]
        kc = KernelCluster(kernel_nodes(self.result), mode=self.mode,
                           external=kernel_external(self.result), br_netfilter=True)
        try:
            with kc:
                for node, text in self.rules.items():
                    kc.iptables_restore(node, text)
                    self.kernel_rules[node] = kc.iptables_save(node)
                request, body = ("", "")
                if kind == "http":
                    request, body = request_and_body(self.result, "default/client:eth0")

                def traffic() -> Any:
                    if kind == "http":
                        return kc.tcp_exchange("client", server, dst, port, body=body,
                                               request=request, server_port=server_port)
                    if kind == "refused":
                        return kc.tcp_refused("client", dst, port)
                    return kc.ping("client", dst, count=2)

                self.cap = kc.scenario(traffic)
                self.outcome = self.cap.result
                for node in self.rules:
                    self.kernel_conntrack[node] = kc.conntrack(node)
                self.names = kc.mac_names()
                self.kernel_keys = set(kc.interfaces())
        finally:
            assert pktk_namespaces(kc.tag) == [], "pktk namespaces left behind"


_RUNS: dict[tuple[str, str], Run] = {}


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def get_run(mode: str, name: str) -> Run:
    reason = tool_reason()
    if reason:
        pytest.skip(reason)
    key = (mode, name)
    if key not in _RUNS:
        run = Run(mode, name)
        try:
            run.run_kernel()
        except KernelFeatureMissing as e:
            pytest.skip(str(e))
        _RUNS[key] = run
    return _RUNS[key]


# --------------------------------------------------------------------------- tests
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_rules_load_into_the_kernel_unchanged(mode: str, name: str) -> None:
    """iptables-restore takes pktsim's iptables-save text and iptables-save gives it back
    byte for byte (nat and filter, both nodes)."""
    run = get_run(mode, name)
    for node, text in run.rules.items():
        assert "*nat" in text and "*filter" in text
        assert run.kernel_rules[node] == text, node


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_outcome_matches_the_kernel(mode: str, name: str) -> None:
    run = get_run(mode, name)
    kind, *_rest, status = SCENARIOS[name]
    assert run.result.flows[0].status == status
    if kind == "refused":
        assert run.outcome == "refused ECONNREFUSED"
    elif kind == "http":
        assert run.outcome["client"].startswith("done HTTP/1.1 200 OK"), run.outcome
    else:
        assert "2 received" in run.outcome, run.outcome


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_frames_match_the_kernel(mode: str, name: str) -> None:
    run = get_run(mode, name)
    nat_ips = SCENARIOS[name][5]
    ours = pktsim_frames(run.result, mode)
    assert set(ours) <= run.kernel_keys
    problems = []
    for key in sorted(ours):
        theirs = kernel_comparable(run.cap, key, run.names, nat_ips)
        mine = comparable(key, ours[key], run.names, nat_ips)
        if mine != theirs:
            problems.append(_diff(key, mine, theirs))
    assert not problems, f"{mode}/{name}\n" + "\n".join(problems)


NO_CONNTRACK = ("cannot read the kernel's conntrack table: needs /proc/net/nf_conntrack "
                "(CONFIG_NF_CONNTRACK_PROCFS) or the conntrack tool (Debian package conntrack)")


def kernel_conntrack(run: Run, node: str) -> list[str]:
    lines = run.kernel_conntrack[node]
    if lines is None:
        pytest.skip(NO_CONNTRACK)
    return lines


def pktsim_conntrack(run: Run, node: str) -> list[str]:
    return run.result.topology.netfilters[node].conntrack.dump(_end(run.result)).splitlines()


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_endpoint_chosen_matches_the_kernel(mode: str, name: str) -> None:
    """The DNAT target recorded by the client node's conntrack: the one endpoint, on both
    sides (and no DNAT where the Service has none)."""
    run = get_run(mode, name)
    ours = dnat_targets(conntrack_view(pktsim_conntrack(run, "node-1")))
    theirs = dnat_targets(conntrack_view(kernel_conntrack(run, "node-1")))
    expected = {k: (ip, p) for k, (ip, p) in DNAT[name].items()}
    assert theirs == expected, ("kernel", theirs)
    assert ours == expected, ("pktsim", ours)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_conntrack_matches_the_kernel(mode: str, name: str) -> None:
    """Both nodes' conntrack tables after the flow (``conntrack -L`` lines from pktsim,
    /proc/net/nf_conntrack from the kernel), reduced by ``conntrack_view``."""
    run = get_run(mode, name)
    problems = []
    for node in run.result.topology.netfilters:
        ours = conntrack_view(pktsim_conntrack(run, node))
        theirs = conntrack_view(kernel_conntrack(run, node))
        if ours != theirs:
            problems.append(f"{node}:\n  pktsim {ours}\n  kernel {theirs}")
    assert not problems, f"{mode}/{name}\n" + "\n".join(problems)


@pytest.mark.parametrize("name", ["hairpin", "outside", "outside-ping"])
def test_masquerade_draws_a_new_port(mode: str, name: str) -> None:
    """MASQUERADE --random-fully (kube-proxy's KUBE-POSTROUTING, flannel's FLANNEL-POSTRTG):
    the source port (echo id) is drawn at random, never kept, in 1024-65535 for a TCP port
    >= 1024 (nf_nat_l4proto_unique_tuple), on both sides.  (A kernel draw equal to the
    original port, probability 1/64512, would fail this test.)"""
    run = get_run(mode, name)
    for side, lines in (("pktsim", pktsim_conntrack(run, "node-1")),
                        ("kernel", kernel_conntrack(run, "node-1"))):
        entries = [ln for ln in lines if " src=10.244.0.2 " in f" {ln} "]
        assert len(entries) == 1, (side, lines)
        kv = _KV.findall(entries[0])
        key = "id" if name == "outside-ping" else "sport"
        orig = int(next(v for k, v in kv if k == key))
        reply = int([v for k, v in kv if k == ("id" if key == "id" else "dport")][1])
        assert reply != orig, (side, entries[0])
        assert 1024 <= reply <= 65535 or key == "id", (side, entries[0])


def _end(result: Result) -> int:
    """The virtual time of the flow's last frame: the conntrack table right after the flow,
    as the kernel's is read (the driver's clock runs on to the end of TCP's TIME-WAIT)."""
    assert result.memory is not None
    last = max((f.t_abs_ns for f in result.memory.frames), default=0)
    return max(0, last - result.topology.driver.start_time_ns)


