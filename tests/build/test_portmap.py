"""hostPort through the portmap CNI plugin's chains (containernetworking/plugins
plugins/meta/portmap/portmap.go ``forwardPorts``/``fillDnatRules``)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import pktsim
from pktsim.build.portmap import dn_chain
from pktsim.core.events import Event
from pktsim.errors import ScenarioError
from tests.helpers.tshark import validate_capture

PODS = """\
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  nodeName: node-2
  containers:
  - name: web
    ports:
    - {containerPort: 80, hostPort: 8080}
    - {containerPort: 9000, protocol: UDP, hostPort: 9999, hostIP: 172.18.0.3}
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec: {nodeName: node-2, containers: [{name: c}]}
"""

FLOWS = """\
---
apiVersion: pktsim/v1alpha1
kind: Traffic
spec:
  flows:
  - {name: ext, from: external, to: "http://172.18.0.3:8080/"}
  - {name: hairpin, from: default/client, to: "http://172.18.0.3:8080/"}
  - {name: node-local, from: "node:node-2", to: "http://127.0.0.1:8080/"}
  - {name: other-node, from: "node:node-1", to: "http://172.18.0.3:8080/"}
  - {name: udp-host-ip, from: "node:node-1", to: "172.18.0.3:9999", protocol: udp}
  - {name: udp-elsewhere, from: "node:node-2", to: "127.0.0.1:9999", protocol: udp}
"""


@pytest.fixture(scope="module", params=["routes", "calico"])
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[
        pktsim.Result, Path]:
    out = tmp_path_factory.mktemp("portmap") / "out"
    cluster = ("---\napiVersion: pktsim/v1alpha1\nkind: Cluster\n"
               f"spec: {{network: {request.param}}}\n")
    return _load(tmp_path_factory, PODS + cluster + FLOWS).run(out, keep=True), out


def _load(factory: pytest.TempPathFactory, text: str) -> pktsim.Cluster:
    path = factory.mktemp("scenario") / "portmap.yaml"
    path.write_text(text)
    return pktsim.load(path)


def test_the_node_port_reaches_the_pod_from_everywhere(run: tuple[pktsim.Result, Path]) -> None:
    result, out = run
    validate_capture(out / "capture.pcapng")
    status = {f.flow: f.status.value for f in result.flows}
    assert status == {"ext": "ok", "hairpin": "ok", "node-local": "ok", "other-node": "ok",
                      "udp-host-ip": "ok", "udp-elsewhere": "connection refused"}
    pod_ip = str(result.topology.model.pods["default/web"].ip)
    for flow in ("ext", "hairpin", "node-local", "other-node"):
        dnat = [e for e in result.events if e.flow == flow and e.nat and e.nat.field == "dst"
                and e.nat.new == f"{pod_ip}:80"]
        assert dnat and dnat[0].nat.rule is not None  # type: ignore[union-attr]
        assert dnat[0].nat.rule.chain.startswith("CNI-DN-")  # type: ignore[union-attr]


def test_hairpin_and_localhost_are_masqueraded_the_rest_keeps_its_source(
        run: tuple[pktsim.Result, Path]) -> None:
    """The SETMARK rules mark what comes from the pod's own network (the node's pod CIDR
    on a bridge; on Calico the pod's /32 alone, so another pod's hairpin is routed back
    unmasqueraded) or 127.0.0.1; CNI-HOSTPORT-MASQ masquerades it."""
    result, _ = run
    calico = result.topology.model.config.network == "calico"

    def masq(flow: str) -> bool:
        return any(e.flow == flow and e.nat and e.nat.field == "src" and
                   "MASQUERADE" in e.summary for e in result.events)
    assert masq("hairpin") is not calico and masq("node-local")
    assert not masq("ext")


def test_the_rules_are_the_plugins(run: tuple[pktsim.Result, Path]) -> None:
    result, out = run
    model = result.topology.model
    text = (out / "nodes" / "node-2" / "iptables-save.txt").read_text()
    net = "k8s-pod-network" if model.config.network == "calico" else "cbr0"
    chain = next(line.split()[0][1:] for line in text.splitlines()
                 if line.startswith(":CNI-DN-"))
    assert len(chain) == 28
    cid = text.split(f'dnat name: \\"{net}\\" id: \\"')[1].split("\\")[0]
    assert len(cid) == 64 and chain == dn_chain(net, cid)
    assert "-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT" in text
    assert "-d 172.18.0.3/32 -p udp -m udp --dport 9999 -j DNAT --to-destination" in text
    assert "CNI-" not in (out / "nodes" / "node-1" / "iptables-save.txt").read_text()


def test_the_scheduler_keeps_two_pods_off_one_host_port(tmp_path: Path) -> None:
    """The NodePorts filter: a second pod asking for 8080/TCP goes to another node; a
    pod pinned to a node whose port is taken is refused."""
    two = PODS.replace("  nodeName: node-2\n", "").replace("name: web}", "name: web-a}")
    two += "---\n" + PODS.split("---\n")[0].replace("  nodeName: node-2\n", "").replace(
        "name: web}", "name: web-b}")
    path = tmp_path / "two.yaml"
    path.write_text(two)
    model = pktsim.load(path).model
    assert model.pods["default/web-a"].node != model.pods["default/web-b"].node
    pinned = two.replace("metadata: {name: web-b}\nspec:\n",
                         "metadata: {name: web-b}\nspec:\n  nodeName: NODE\n")
    pinned = pinned.replace("NODE", model.pods["default/web-a"].node)
    path.write_text(pinned)
    with pytest.raises(ScenarioError, match="hostPort: 8080 is already taken on node"):
        pktsim.load(path)


@pytest.mark.kernel
def test_iptables_restore_reads_them_and_saves_them_back_unchanged(
        run: tuple[pktsim.Result, Path]) -> None:
    """The kernel's iptables loads pktsim's nat table and prints the plugin's rules the
    same (in a network namespace of its own)."""
    from tests.kernel.twin import kernel_available

    if kernel_available():
        pytest.skip(kernel_available())
    _, out = run
    text = (out / "nodes" / "node-2" / "iptables-save.txt").read_text()
    ns = "pktsim-portmap-test"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    sets = out / "nodes" / "node-2" / "ipset-save.txt"  # felix's rules name its IP sets
    try:
        if sets.is_file():
            subprocess.run(["ip", "netns", "exec", ns, "ipset", "restore"],
                           input=sets.read_text(), text=True, check=True)
        subprocess.run(["ip", "netns", "exec", ns, "iptables-restore"], input=text,
                       text=True, check=True)
        saved = subprocess.run(["ip", "netns", "exec", ns, "iptables-save", "-t", "nat"],
                               capture_output=True, text=True, check=True).stdout
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=True)
    ours = [line for line in text.splitlines() if "CNI-" in line]
    theirs = [line for line in saved.splitlines() if "CNI-" in line]
    assert ours == theirs


def test_a_pod_made_during_the_run_gets_its_host_port_at_cni_add(tmp_path: Path) -> None:
    text = PODS.split("---\n")[1] + """---
apiVersion: pktsim/v1alpha1
kind: Traffic
spec:
  flows:
  - {name: early, from: external, to: "http://172.18.0.3:8080/", start: 500ms}
  - {name: late, from: external, to: "http://172.18.0.3:8080/", start: 3s}
  events:
  - at: 1s
    apply: {apiVersion: v1, kind: Pod, metadata: {name: web},
            spec: {nodeName: node-2, containers: [{name: web, ports: [
              {containerPort: 80, hostPort: 8080}]}]}}
"""
    path = tmp_path / "late.yaml"
    path.write_text(text)
    result = pktsim.load(path).run()
    early, late = result.flows
    assert early.status.value == "connection refused" and late.ok
    portmap = [e for e in result.events if e.event is Event.SYNC and
               e.detail.component == "portmap"]  # type: ignore[union-attr]
    assert [e.t for e in portmap] == [2 * 10**9]
    assert any("CNI-HOSTPORT-DNAT" in line for line in
               portmap[0].detail.added)  # type: ignore[union-attr]


UDP_POD = ("{{apiVersion: v1, kind: Pod, metadata: {{name: {name}}}, spec: {{nodeName: node-2, "
           "terminationGracePeriodSeconds: 1, containers: [{{name: u, ports: [{{containerPort: "
           "9000, protocol: UDP, hostPort: 9999}}]}}]}}}}")


def test_a_new_pod_takes_over_the_udp_host_port_flows_of_the_old(tmp_path: Path) -> None:
    """cmdAdd deletes the UDP conntrack entries to the new pod's UDP hostPorts
    (``deletePortmapStaleConnections``): a client that keeps its source port, stuck on the
    deleted pod's address, is answered by the new pod after its CNI ADD."""
    text = f"""\
apiVersion: pktsim/v1alpha1
kind: Traffic
spec:
  flows:
  - {{name: u, from: external, to: "172.18.0.3:9999", protocol: udp, count: 7}}
  events:
  - {{at: 0s, apply: {UDP_POD.format(name="old")}}}
  - {{at: 2500ms, delete: default/old}}
  - {{at: 4500ms, apply: {UDP_POD.format(name="new")}}}
"""
    result = pktsim.load(text).run()
    pods = result.topology.model.pods
    new_ip = str(pods["default/new"].ip)
    flow = result.flows[0]
    # t = 1, 2, 3 s to old (it exits at 3.5 s: grace 1 s), 4 and 5 s to its address,
    # unanswered; the ADD at 5.5 s (podStartup 1 s) clears the entry: 6 s to new
    assert flow.sent == 7 and flow.answered == 4, flow.line()
    add = next(e for e in result.events if e.event is Event.SYNC and e.t == 5500 * 10**6
               and e.detail.component == "portmap")  # type: ignore[union-attr]
    assert len(add.detail.deleted) == 1  # type: ignore[union-attr]
    last = [e for e in result.events if e.event is Event.NAT and e.t > 5500 * 10**6]
    assert any(e.nat and e.nat.new.startswith(new_ip) for e in last)


def test_the_top_level_chains_stay_after_the_last_pod_goes(tmp_path: Path) -> None:
    """unforwardPorts tears down the pod's CNI-DN- chain and its entries only; a pod made
    later is appended after the ones before it, whatever its name (InsertUnique)."""
    text = f"""\
apiVersion: v1
kind: Pod
metadata: {{name: zz}}
spec:
  nodeName: node-2
  containers: [{{name: u, ports: [{{containerPort: 80, hostPort: 8081}}]}}]
---
apiVersion: pktsim/v1alpha1
kind: Traffic
spec:
  events:
  - {{at: 1s, apply: {UDP_POD.format(name="aa")}}}
  - {{at: 3s, delete: default/aa}}
  - {{at: 3s, delete: default/zz}}
"""
    midway = pktsim.load(text).run(until_ns=2500 * 10**6).topology.netfilters["node-2"]
    entries = [line for line in midway.save().splitlines()
               if line.startswith("-A CNI-HOSTPORT-DNAT")]
    assert ["8081" in entries[0], "9999" in entries[1]] == [True, True]  # zz's, then aa's
    result = pktsim.load(text).run()
    adds = [e for e in result.events if e.event is Event.SYNC and e.t == 2 * 10**9]
    assert adds, "the ADD of aa at 2 s"
    saved = result.topology.netfilters["node-2"].save()
    assert ":CNI-HOSTPORT-DNAT - [0:0]" in saved and "-j CNI-HOSTPORT-DNAT" in saved
    assert "-A POSTROUTING -m comment --comment \"CNI portfwd requiring masquerade\"" in saved
    assert "CNI-DN-" not in saved and "--dports" not in saved
