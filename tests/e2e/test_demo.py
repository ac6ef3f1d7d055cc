"""What a user sees first: the demo's six paths, `pktsim trace`, the reference captures."""

from __future__ import annotations

import filecmp
import re
import subprocess
import sys
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.utils import RawPcapNgReader

from tests.helpers.sim import parse_dns_messages, validate_folder

ROOT = Path(__file__).resolve().parents[2]
PATHS = ["container-to-container", "pod-to-pod-same-node", "pod-to-pod-across-nodes",
         "pod-to-service", "external-to-nodeport", "dns-service-discovery"]


def pktsim(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pktsim", *args], capture_output=True,
                          text=True, timeout=120, cwd=cwd)


def frames_with(capture: Path, iface: str) -> list[bytes]:
    """The frames captured on one interface (by its pcapng if_name)."""
    return [data for data, meta in RawPcapNgReader(str(capture))
            if getattr(meta, "ifname", None) == iface.encode()]


@pytest.mark.parametrize("network", ["routes", "vxlan", "ipip", "calico"])
def test_demo_tells_the_six_paths(tmp_path: Path, network: str) -> None:
    out = tmp_path / network
    proc = pktsim("demo", "--out", str(out), "--network", network)
    assert proc.returncode == 0, proc.stderr
    headers = [line for line in proc.stdout.splitlines() if line.startswith("== ")]
    for path in PATHS:
        assert any(h.startswith(f"== {path}: ") and ": ok (" in h for h in headers), path
    validate_folder(out)
    messages = parse_dns_messages(out / "capture.pcapng")
    assert any(m.answer and "10.96.45.12" in m.answer[0].to_text()  # type: ignore[attr-defined]
               for m in messages)
    comments = (out / "trace.txt").read_text()
    assert "kube-proxy DNAT 10.96.45.12:80 -> " in comments
    # the client only ever sees the VIP for the Service path
    client = [Ether(d) for d in frames_with(out / "capture.pcapng", "default/client:eth0")]
    vip = [p for p in client if IP in p and "10.96.45.12" in (p[IP].src, p[IP].dst)]
    assert vip and all(p[TCP].sport == 80 or p[TCP].dport == 80 for p in vip)


def test_the_dual_stack_demo_adds_the_ipv6_paths(tmp_path: Path) -> None:
    """``--ip-families IPv4,IPv6``: the same paths, and two over IPv6 (pod to pod on one
    node and across nodes), told with their IPv6 hops."""
    out = tmp_path / "dual"
    proc = pktsim("demo", "--out", str(out), "--ip-families", "IPv4,IPv6")
    assert proc.returncode == 0, proc.stderr
    headers = [line for line in proc.stdout.splitlines() if line.startswith("== ")]
    for path in (*PATHS, "pod-to-pod-same-node-ipv6", "pod-to-pod-across-nodes-ipv6"):
        assert any(h.startswith(f"== {path}: ") and ": ok (" in h for h in headers), path
    assert "hlim 64->63" in proc.stdout and "IP6 fd00:10:244::3." in proc.stdout
    validate_folder(out)
    assert (out / "nodes" / "node-1" / "ip-6-route.txt").read_text().startswith(
        "fc00:f853:ccd:e793::/64 dev eth0 proto kernel metric 256 pref medium\n")


@pytest.mark.parametrize("network", ["routes", "vxlan", "ipip", "calico", "dualstack"])
def test_reference_captures_regenerate_byte_for_byte(tmp_path: Path, network: str) -> None:
    out = tmp_path / "demo"
    how = ("--ip-families", "IPv4,IPv6") if network == "dualstack" else ("--network", network)
    assert pktsim("demo", "--quiet", "--out", str(out), *how).returncode == 0
    ref = ROOT / "captures" / f"demo-{network}"
    assert ref.is_dir(), f"run `make captures` to create {ref}"
    for name in ("capture.pcapng", "trace.jsonl", "trace.txt"):
        assert (out / name).read_bytes() == (ref / name).read_bytes(), name
    cmp = filecmp.dircmp(out / "pcap", ref / "pcap")
    assert not cmp.left_only and not cmp.right_only
    _match, mismatch, errors = filecmp.cmpfiles(out / "pcap", ref / "pcap", cmp.common_files,
                                                shallow=False)
    assert not mismatch and not errors


@pytest.mark.parametrize("network", ["routes", "calico"])
def test_demo_tells_the_change_story_with_and_without_the_cleanup(
        tmp_path: Path, network: str) -> None:
    """The CoreDNS pod the stub resolver's entry goes to is deleted (which one that is
    differs by network): with kube-proxy's cleanup its entry is deleted at the sync after
    the pod's end and every lookup is answered; without it the stub's last five fail,
    glibc's never do."""
    out = tmp_path / network
    proc = pktsim("demo", "--out", str(out), "--network", network)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    on, off = text[text.index("== change: "):].split("\n\n")[:2]
    assert on.splitlines()[0].endswith("kubeProxy.conntrackCleanup: true")
    assert off.splitlines()[0].endswith("kubeProxy.conntrackCleanup: false")
    victim = re.search(r"delete Pod (kube-system/coredns-\S+)", on)
    assert victim is not None and victim.group(1) in off
    name = "web.shop.svc.cluster.local."
    for story in (on, off):
        assert f"glibc-resolver: dns A to {name}: ok (12/12 answered)" in story
    assert f"stub-resolver: dns A to {name}: ok (12/12 answered)" in on
    deleted = [line for line in on.splitlines() if " kube-proxy at 6.5 s deleted: " in line]
    assert len(deleted) == 1 and "sport=5353 dport=53" in deleted[0]
    assert f"stub-resolver: dns A to {name}: ok (7/12 answered)" in off
    assert f"  5 × DNS error (TRY_AGAIN) after delete Pod {victim.group(1)} at 1.5 s" in off
    assert "deleted:" not in off
    for folder in ("cleanup", "no-cleanup"):
        validate_folder(out / "changes" / folder)


def test_trace_of_pod_to_service_names_every_decision_in_order() -> None:
    proc = pktsim("trace", "pktsim/data/demo.yaml", "--from", "default/client", "--to",
                  "10.96.45.12", "--port", "80")
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    syn = text[text.index("Flags [S], seq"):]
    order = ["nat dst: 10.96.45.12:80 -> 10.244.", "KUBE-SVC-", "KUBE-SEP-",
             "forward cbr0:", "route forward 10.244."]
    positions = [syn.index(piece) for piece in order]
    assert positions[0] < positions[1] < positions[2]
    assert "nat src: 10.244." in text and "-> 10.96.45.12:80  [conntrack]" in text
    assert re.search(r"out eth0 +#\d+", syn)  # frame numbers in capture.pcapng


def test_trace_to_a_service_without_endpoints_ends_with_reject(tmp_path: Path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text((ROOT / "pktsim" / "data" / "demo.yaml").read_text() + """
---
apiVersion: v1
kind: Service
metadata: {name: empty, namespace: shop}
spec: {clusterIP: 10.96.45.99, selector: {app: nobody}, ports: [{port: 80}]}
""")
    proc = pktsim("trace", str(scenario), "--from", "default/client", "--to", "10.96.45.99",
                  "--port", "80")
    assert proc.returncode == 0, proc.stderr
    assert "connection refused" in proc.stdout.splitlines()[0]
    reject = proc.stdout.index("REJECT icmp-port-unreachable")
    assert "ICMP port unreachable" in proc.stdout[reject:]
    json_out = pktsim("trace", str(scenario), "--from", "default/client", "--to",
                      "10.96.45.99", "--port", "80", "--format", "json")
    assert '"event":"drop"' in json_out.stdout and "REJECT" in json_out.stdout
