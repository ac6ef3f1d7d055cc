"""A change during a run against the Linux kernel: kube-proxy rewrites a node's rules while a
UDP flow is alive, with and without its stale-entry cleanup (issue 17).

The scenario: a client pod on node-1 sends three datagrams from one socket, 1 s apart, to a
UDP Service whose one endpoint is ``old`` (node-2).  At 1.5 s the Service is applied again
with a selector that picks ``new`` instead; the endpoint controller publishes the slice and
each node's kube-proxy writes its rules at once (its last sync is more than minSyncPeriod
ago), which pktsim records as a ``sync`` event with the rules added and removed and, with
the cleanup on, the conntrack entries it deleted (``pkg/proxy/conntrack/cleanup.go``
``CleanStaleEntries``).

The kernel twin does the same between the second answer and the third datagram:
``iptables-restore`` of the rules pktsim wrote after the change into both nodes, and, with
the cleanup on, ``conntrack -D`` of each entry pktsim's kube-proxy deleted (kube-proxy
lists the table and deletes the stale entries over netlink; the tool deletes the same
entry by protocol, original destination and reply source).  Then the third datagram goes.

What must agree on every interface pktsim and the kernel share: the frames, normalised as
in the other twins.  So with the cleanup the third datagram is DNATed to ``new`` by the
new rules, and without it the kernel, like pktsim, keeps sending it to ``old`` along the
established entry (conntrack binds NAT once per connection: ``nf_nat_setup_info`` only
runs for a new one).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import pktsim
from pktsim.api import Result
from pktsim.core.events import Event, RuleSync

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import (
    comparable,
    diff,
    harness_keys,
    kernel_comparable,
    kernel_nodes,
    pktk_namespaces,
)
from compare import pktsim_frames as frames_of
from twin import KernelCluster, KernelFeatureMissing, kernel_available, netfilter_available
from twin.commands import LineReader, in_ns

pytestmark = pytest.mark.kernel

VIP, PORT = "10.96.100.50", 9000
PROBE_WAIT_S = 3.6  # < compare.CAPTURE_TAIL_NS: what pktsim shows is what the kernel does
SCENARIO = """
apiVersion: pktsim/v1alpha1
kind: Cluster
spec: {{nodes: 2, network: routes, kubeProxy: {{conntrackCleanup: {cleanup}}}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: client, labels: {{app: client}}}}
spec: {{nodeName: node-1, containers: [{{name: app}}]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: old, labels: {{app: old}}}}
spec:
  nodeName: node-2
  containers: [{{name: app, ports: [{{containerPort: 9000, protocol: UDP}}]}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: new, labels: {{app: new}}}}
spec:
  nodeName: node-2
  containers: [{{name: app, ports: [{{containerPort: 9000, protocol: UDP}}]}}]
---
apiVersion: v1
kind: Service
metadata: {{name: echo}}
spec: {{clusterIP: 10.96.100.50, selector: {{app: old}}, ports: [{{port: 9000, protocol: UDP}}]}}
---
apiVersion: pktsim/v1alpha1
kind: Traffic
spec:
  flows:
  - {{name: udp, from: default/client, to: '10.96.100.50:9000', protocol: udp, count: 3}}
  events:
  - at: 1.5s
    apply:
      apiVersion: v1
      kind: Service
      metadata: {{name: echo}}
      spec:
        clusterIP: 10.96.100.50
        selector: {{app: new}}
        ports: [{{port: 9000, protocol: UDP}}]
"""

# the UDP echo each pod runs, as pktsim's pods answer a declared UDP port
ECHO = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
print("ready", flush=True)
while True:
    data, peer = s.recvfrom(65535)
    s.sendto(data, peer)
"""

# one socket, one datagram per line read on stdin; prints each answer's source
CLIENT = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
payload = bytes.fromhex(sys.argv[3])
for i, line in enumerate(sys.stdin):
    s.sendto(payload, (sys.argv[1], int(sys.argv[2])))
    try:
        data, peer = s.recvfrom(65535)
        print(f"#{i} answer", peer[0], flush=True)
    except socket.timeout:
        print(f"#{i} timeout", flush=True)
"""


def sync_of(result: Result, node: str) -> RuleSync:
    (sync,) = [e.detail for e in result.events if e.event is Event.SYNC and e.host == node]
    assert isinstance(sync, RuleSync)
    return sync


def payload(result: Result) -> str:
    """The first datagram's payload as pktsim's client sent it (hex)."""
    assert result.memory is not None
    for f in result.memory.frames:
        if f.iface.if_name == "default/client:eth0" and f.data[23:24] == b"\x11":
            ihl = (f.data[14] & 0x0F) * 4
            return f.data[14 + ihl + 8:].hex()
    raise AssertionError("no UDP datagram from the client")


_KV = re.compile(r"(\w+)=(\S+)")


def delete_args(line: str) -> list[str]:
    """``conntrack -D`` for one deleted entry (``conntrack -L`` text): protocol, original
    destination and port, reply source and port, which name that entry alone here."""
    kv = [(m.group(1), m.group(2)) for w in line.split() if (m := _KV.fullmatch(w))]
    src = [i for i, (k, _) in enumerate(kv) if k == "src"]
    orig, reply = dict(kv[src[0]:src[1]]), dict(kv[src[1]:])
    return ["conntrack", "-D", "-p", "udp", "--orig-dst", orig["dst"],
            "--orig-port-dst", orig["dport"], "--reply-src", reply["src"],
            "--reply-port-src", reply["sport"]]


class Run:
    """The scenario on both sides, with the cleanup on or off."""

    def __init__(self, cleanup: bool) -> None:
        text = SCENARIO.format(cleanup=str(cleanup).lower())
        self.result = pktsim.load(text).run()
        before = pktsim.load(text)
        before.scenario.changes = []
        self.rules_before = {n: nf.save() for n, nf in
                             before.run().topology.netfilters.items()}
        self.rules_after = {n: nf.save() for n, nf in self.result.topology.netfilters.items()}
        self.deleted = {n: sync_of(self.result, n).deleted for n in self.rules_after}
        self.answers: list[str] = []
        self.loaded: dict[str, str] = {}
        self.deleted_out: list[str] = []
        self.cap: Any = None
        self.names: dict[str, str] = {}

    def kernel(self) -> None:
        kc = KernelCluster(kernel_nodes(self.result, namespace="default"), mode="routes",
                           br_netfilter=True)
        try:
            with kc:
                for node, text in self.rules_before.items():
                    kc.iptables_restore(node, text)
                self.cap = kc.scenario(lambda: self.traffic(kc))
                self.names = kc.mac_names()
        finally:
            assert pktk_namespaces(kc.tag) == [], "pktk namespaces left behind"

    def traffic(self, kc: KernelCluster) -> list[str]:
        servers = [self.start(kc, pod) for pod in ("old", "new")]
        client = subprocess.Popen(
            in_ns(kc.ns_of("client"), sys.executable, "-c", CLIENT, VIP, str(PORT),
                  payload(self.result)),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        kc.track(client)
        try:
            assert client.stdin is not None and client.stdout is not None
            out = LineReader(client.stdout)
            for i in range(3):
                if i:
                    time.sleep(1.0)  # pktsim's interval: the neighbours' timers see the same
                if i == 2:
                    self.change(kc)
                client.stdin.write(b"go\n")
                client.stdin.flush()
                line = out.wait_for(f"#{i} ", 10.0, client)
                self.answers.append(line.split(" ", 1)[1].strip())
            client.stdin.close()
            client.wait(timeout=10)
            # the reachability probes of the entries the datagrams used unconfirmed come
            # 5 s after their first use (delay_first_probe_time), 3 s after the last one
            time.sleep(PROBE_WAIT_S)
        finally:
            for proc in (client, *servers):
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(timeout=5)
                kc.untrack(proc)
        return self.answers

    @staticmethod
    def start(kc: KernelCluster, pod: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(in_ns(kc.ns_of(pod), sys.executable, "-c", ECHO, str(PORT)),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        kc.track(proc)
        assert proc.stdout is not None
        LineReader(proc.stdout).wait_for("ready", 10.0, proc)
        return proc

    def change(self, kc: KernelCluster) -> None:
        """What kube-proxy does at its sync after the change: the new rules, then the
        stale entries deleted."""
        for node, text in self.rules_after.items():
            kc.iptables_restore(node, text)
            self.loaded[node] = kc.iptables_save(node)
            for line in self.deleted[node]:
                done = subprocess.run(in_ns(kc.node_nss[node], *delete_args(line)),
                                      capture_output=True, text=True, timeout=10)
                self.deleted_out.append(done.stderr)


_RUNS: dict[bool, Run] = {}


def get_run(cleanup: bool) -> Run:
    reason = kernel_available() or netfilter_available()
    if reason:
        pytest.skip(reason)
    if subprocess.run(["which", "conntrack"], capture_output=True).returncode != 0:
        pytest.skip("needs the conntrack tool (Debian package conntrack)")
    if cleanup not in _RUNS:
        r = Run(cleanup)
        try:
            r.kernel()
        except KernelFeatureMissing as e:
            pytest.skip(str(e))
        _RUNS[cleanup] = r
    return _RUNS[cleanup]


def pod_ip(result: Result, name: str) -> str:
    return str(result.topology.model.pods[f"default/{name}"].ip)


@pytest.mark.parametrize("cleanup", [True, False])
def test_the_third_datagram_goes_where_the_kernel_sends_it(cleanup: bool) -> None:
    r = get_run(cleanup)
    third = "new" if cleanup else "old"
    assert r.answers == [f"answer {VIP}"] * 3  # the client always hears the Service's IP
    assert r.result.flows[0].answered == 3
    # the rule change and the deleted entry, as pktsim recorded them
    assert len(r.deleted["node-1"]) == (1 if cleanup else 0) and not r.deleted["node-2"]
    if cleanup:
        assert "1 flow entries have been deleted" in "".join(r.deleted_out), r.deleted_out
    served = [e for e in r.result.events if e.event is Event.DELIVER
              and e.host == f"default/{third}" and "UDP" in e.summary]
    assert served, f"pktsim: the third datagram reaches {third}"
    assert json.dumps(r.loaded, sort_keys=True) == json.dumps(r.rules_after, sort_keys=True)


@pytest.mark.parametrize("cleanup", [True, False])
def test_frames_match_the_kernel_across_the_change(cleanup: bool) -> None:
    r = get_run(cleanup)
    keys = harness_keys(r.result, ("cbr0", "eth0"))
    ours = frames_of(r.result, keys)
    problems = []
    for key in sorted(ours):
        mine = comparable(ours[key], r.names)
        theirs = kernel_comparable(r.cap, key, r.names)
        if mine != theirs:
            problems.append(diff(key, mine, theirs))
    assert not problems, f"cleanup={cleanup}\n" + "\n".join(problems)
    new_ip, old_ip = pod_ip(r.result, "new"), pod_ip(r.result, "old")
    to_new = [f for f, _ in ours["new:eth0"] if f[30:34] == bytes(map(int, new_ip.split(".")))]
    to_old = [f for f, _ in ours["old:eth0"] if f[30:34] == bytes(map(int, old_ip.split(".")))]
    assert (len(to_new), len(to_old)) == ((1, 2) if cleanup else (0, 3))
