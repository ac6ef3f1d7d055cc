"""Smoke test of the kernel reference harness: a 2-pod node built from network
namespaces, ping (a) and an HTTP/1.1 exchange over TCP (b), checked against the
frame sequences documented in docs/kernel-observations.md."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from twin import KernelNode, PodSpec, kernel_available, normalize

pytestmark = pytest.mark.kernel

_skip = kernel_available()
if _skip:
    pytest.skip(_skip, allow_module_level=True)

A = PodSpec("a", "10.244.0.2", "0a:58:0a:f4:00:02", "veth0000000a", "0a:00:00:00:01:02")
B = PodSpec("b", "10.244.0.3", "0a:58:0a:f4:00:03", "veth0000000b", "0a:00:00:00:01:03")


def _pktk_namespaces(tag: str) -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [ln.split()[0] for ln in out.splitlines() if ln.startswith(tag)]


@pytest.fixture(scope="module")
def node():
    kn = KernelNode([A, B])
    tag = kn.node_ns.rsplit("-", 1)[0]
    with kn:
        yield kn
    assert _pktk_namespaces(tag) == [], "pktk namespaces left behind"


def _norm(node, cap, key):
    return normalize(cap.frames[key], node.mac_names(), pkttypes=cap.pkttypes[key])


def _is_arp_request(d, direction):
    return (d.get("arp_op") == "request" and d["eth_dst"] == "broadcast"
            and d["eth_src"] == "a.eth0" and d["arp_sha"] == "a.eth0"
            and d["arp_spa"] == A.ip and d["arp_tha"] == "zero" and d["arp_tpa"] == B.ip
            and d["dir"] == direction and d["len"] == 42)


def _is_arp_reply(d, direction):
    return (d.get("arp_op") == "reply" and d["eth_src"] == "b.eth0" and d["eth_dst"] == "a.eth0"
            and d["arp_sha"] == "b.eth0" and d["arp_spa"] == B.ip
            and d["arp_tha"] == "a.eth0" and d["arp_tpa"] == A.ip and d["dir"] == direction)


def test_ping_pod_to_pod(node):
    cap = node.scenario(lambda: node.ping("a", B.ip, count=1))
    a = _norm(node, cap, "a:eth0")
    # A's eth0: ARP request out, the same request back in (hairpin floods it to the
    # ingress port too), ARP reply in, echo request out, echo reply in.
    assert len(a) == 5, a
    assert _is_arp_request(a[0], "out")
    assert _is_arp_request(a[1], "in")
    assert _is_arp_reply(a[2], "in")
    req, rep = a[3], a[4]
    assert (req["dir"], req["icmp_type"], req["icmp_code"], req["icmp_seq"]) == ("out", 8, 0, 1)
    assert (req["eth_src"], req["eth_dst"], req["ip_src"], req["ip_dst"]) == (
        "a.eth0", "b.eth0", A.ip, B.ip)
    assert req["ip_ttl"] == 64 and req["ip_df"] and req["ip_len"] == 84
    # iputils payload: 16-byte struct timeval (masked by normalize) then 0x10..0x37
    assert req["icmp_payload"] == (bytes(16) + bytes(range(0x10, 0x38))).hex()
    assert (rep["dir"], rep["icmp_type"], rep["icmp_seq"]) == ("in", 0, 1)
    assert rep["ip_ttl"] == 64 and not rep["ip_df"]
    assert rep["icmp_id"] == req["icmp_id"] and rep["icmp_payload"] == req["icmp_payload"]

    # B's host veth: the broadcast request leaves the bridge towards B; the reply and
    # the echo frames are unicast and pass it too.
    vb = _norm(node, cap, f"node:{B.veth}")
    assert _is_arp_request(vb[0], "out")
    assert _is_arp_reply(vb[1], "in")
    assert [d.get("icmp_type") for d in vb[2:]] == [8, 0]
    # B's eth0 sees the request once and answers without ARPing for A itself
    b = _norm(node, cap, "b:eth0")
    assert _is_arp_request(b[0], "in")
    assert _is_arp_reply(b[1], "out")
    assert [d.get("arp_op") for d in b].count("request") == 1
    # cbr0 (not promiscuous): only the flooded broadcast, no unicast pod<->pod frames
    br = _norm(node, cap, "node:cbr0")
    assert len(br) == 1 and _is_arp_request(br[0], "in")
    assert cap.pkttypes["node:cbr0"] == ["broadcast"]
    # nothing on the pods' loopbacks
    assert cap.frames["a:lo"] == [] and cap.frames["b:lo"] == []


def test_tcp_pod_to_pod(node):
    cap = node.scenario(lambda: node.tcp_exchange("a", "b", B.ip, port=8080))
    assert cap.result["client"].startswith("done HTTP/1.1 200 OK")
    for key in ("a:eth0", f"node:{A.veth}", f"node:{B.veth}", "b:eth0"):
        frames = _norm(node, cap, key)
        arp = [d for d in frames if "arp_op" in d]
        tcp = [d for d in frames if "tcp_flags" in d]
        assert [d["arp_op"] for d in arp][-1] == "reply"
        assert len(tcp) >= 8, (key, tcp)
        syn, synack, ack = tcp[:3]
        assert (syn["tcp_flags"], syn["ip_src"], syn["tcp_dport"]) == ("S", A.ip, 8080)
        assert (synack["tcp_flags"], synack["ip_src"], synack["tcp_sport"]) == ("SA", B.ip, 8080)
        assert (ack["tcp_flags"], ack["tcp_seq"], ack["tcp_ack"]) == ("A", 1, 1)
        assert synack["tcp_ack"] == 1 and synack["ip_id"] == 0
        for d in tcp:
            assert d["ip_ttl"] == 64 and d["ip_df"]
        kinds = [k for k, _ in syn["tcp_options"]]
        assert kinds == ["MSS", "SAckOK", "Timestamp", "NOP", "WScale"]
        assert dict(syn["tcp_options"])["MSS"] == 1460
        # request and response each one segment
        data = [(d["ip_src"], d["tcp_payload_len"]) for d in tcp if d["tcp_payload_len"]]
        assert [s for s, _ in data] == [A.ip, B.ip]
        assert bytes.fromhex(next(d["tcp_payload"] for d in tcp if d["ip_src"] == B.ip
                                  and d["tcp_payload_len"])).startswith(b"HTTP/1.1 200 OK\r\n")
        # client closes first, server's FIN follows, last ACK from the client
        fins = [d["ip_src"] for d in tcp if "F" in d["tcp_flags"]]
        assert fins == [A.ip, B.ip]
        assert tcp[-1]["tcp_flags"] == "A" and tcp[-1]["ip_src"] == A.ip
    assert len(_norm(node, cap, "node:cbr0")) == 1  # the ARP broadcast only
