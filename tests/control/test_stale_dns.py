"""The stale-UDP DNS incident with real lookups (issue 17): a resolver that keeps its UDP
source port keeps one conntrack entry to kube-dns alive; when the CoreDNS pod it is DNATed
to goes, only kube-proxy's cleanup (pkg/proxy/conntrack CleanStaleEntries) sends its next
query elsewhere.  A glibc client (a new socket per lookup, ``send_dg`` in
resolv/res_send.c) makes a new entry each time and escapes."""

from __future__ import annotations

import contextlib
import io
import struct
from pathlib import Path

import dns.message
import dns.rdatatype
import pytest

import pktsim
from pktsim.cli import main
from pktsim.core.events import Event
from pktsim.devices.outcome import FlowStatus
from pktsim.model.timeline import SECOND
from tests.helpers.tshark import validate_capture

MS = 10**6
NAME = "kubernetes.default.svc.cluster.local."
STORY = f"""\
apiVersion: v1
kind: Pod
metadata: {{name: client, namespace: default}}
spec:
  nodeName: node-1
  containers: [{{name: c}}]
---
apiVersion: pktsim/v1alpha1
kind: Cluster
spec: {{nodes: 3, kubeProxy: {{conntrackCleanup: CLEANUP}}}}
---
apiVersion: pktsim/v1alpha1
kind: Traffic
spec:
  flows:
  - {{name: stub, from: default/client, lookup: {NAME}, count: 20, sourcePort: 5353}}
  - {{name: glibc, from: default/client, lookup: {NAME}, count: 20}}
"""
HEAD = STORY.replace("CLEANUP", "true").split("  - {name: stub")[0]  # up to flows:


def write(tmp_path: Path, cleanup: bool, victim: str = "") -> Path:
    text = STORY.replace("CLEANUP", "true" if cleanup else "false")
    if victim:
        text += f"  events:\n  - {{at: 2500ms, delete: {victim}}}\n"
    path = tmp_path / f"story-{cleanup}.yaml"
    path.write_text(text)
    return path


def stub_backend(tmp_path: Path) -> tuple[str, str]:
    """The CoreDNS pod (and its address) the stub's one conntrack entry is DNATed to."""
    c = pktsim.load(write(tmp_path, True))
    result = c.run()
    nat = next(e.nat for e in result.events if e.flow == "stub" and e.nat
               and e.nat.field == "dst")
    ip = nat.new.split(":")[0]
    return next(k for k, p in c.model.pods.items() if str(p.ip) == ip), ip


def dns_frames(result: pktsim.Result, iface: str) -> list[tuple[int, int, int, bytes]]:
    """(time, source port, destination port, DNS message) of every UDP frame on ``iface``."""
    assert result.memory is not None
    start = result.topology.driver.start_time_ns
    out = []
    for f in result.memory.frames:
        data = f.data
        if f.iface.if_name != iface or data[12:14] != b"\x08\x00" or data[23] != 17:
            continue
        ihl = (data[14] & 0x0F) * 4
        sport, dport = struct.unpack("!HH", data[14 + ihl:18 + ihl])
        if 53 in (sport, dport):
            out.append((f.t_abs_ns - start, sport, dport, data[22 + ihl:]))
    return out


@pytest.mark.parametrize("cleanup", [True, False])
def test_a_resolver_keeping_its_port_follows_the_stale_entry_unless_kube_proxy_cleans(
        tmp_path: Path, cleanup: bool) -> None:
    """CoreDNS pod X, the stub's backend, is deleted at 2.5 s; it answers through its
    ``lameduck 5s`` and its sandbox goes at 7.5 s, when kube-proxy syncs.  With the
    cleanup, that sync deletes the stub's entry and the next query makes a new one to
    another CoreDNS pod: every lookup answered.  Without it, each query (one every few
    seconds, within nf_conntrack_udp_timeout_stream's 120 s) refreshes the entry and is
    DNATed to X's old address: the 12 lookups after 7.5 s time out."""
    victim, victim_ip = stub_backend(tmp_path)
    out = tmp_path / "out"
    result = pktsim.load(write(tmp_path, cleanup, victim)).run(out, keep=True)
    validate_capture(out / "capture.pcapng")
    stub, glibc = result.flows
    assert (glibc.answered, glibc.sent) == (20, 20), "a new port per lookup: a new entry"
    sync = next(e for e in result.events if e.event is Event.SYNC and e.host == "node-1"
                and e.t == 7500 * MS)
    deleted = sync.detail.deleted  # type: ignore[union-attr]
    late = [e.nat.new for e in result.events if e.flow == "stub" and e.nat
            and e.nat.field == "dst" and e.t > 7500 * MS]
    assert late
    if cleanup:
        assert (stub.answered, stub.sent) == (20, 20) and not result.impact
        assert len(deleted) == 1
        assert "sport=5353" in deleted[0] and f"src={victim_ip} " in deleted[0]
        assert all(not new.startswith(victim_ip + ":") for new in late)
    else:
        assert (stub.answered, stub.sent) == (8, 20)  # lookups at 0..7 s
        assert stub.errors == ["DNS error (TRY_AGAIN)"] * 12
        assert result.impact == {"stub": [
            f"12 × DNS error (TRY_AGAIN) after delete Pod {victim} at 2.5 s"]}
        assert not deleted
        assert set(late) == {f"{victim_ip}:53"}


@pytest.mark.parametrize("cleanup", [True, False])
def test_the_answers_on_the_wire_parse_and_the_ports_are_as_each_resolver_keeps_them(
        tmp_path: Path, cleanup: bool) -> None:
    """dnspython reads every answer the client got: from 10.96.0.10 (un-DNATed), the A
    record of the kubernetes Service, one per lookup answered.  The stub asks from 5353
    every time; glibc from 20 different ports."""
    victim, _ = stub_backend(tmp_path)
    result = pktsim.load(write(tmp_path, cleanup, victim)).run()
    frames = dns_frames(result, "default/client:eth0")
    queries = [(sport, dns.message.from_wire(wire)) for _, sport, dport, wire in frames
               if dport == 53]
    answers = [(dport, dns.message.from_wire(wire)) for _, sport, dport, wire in frames
               if sport == 53]
    assert {sport for sport, _ in queries if sport == 5353} == {5353}
    glibc_ports = {sport for sport, _ in queries if sport != 5353}
    assert len(glibc_ports) == 20
    by_flow = {r.flow: r for r in result.flows}
    for port, flow in ((5353, "stub"), (None, "glibc")):
        mine = [m for p, m in answers if (p == port if port else p in glibc_ports)]
        assert len(mine) == by_flow[flow].answered
        for m in mine:
            rrset = m.find_rrset(m.answer, dns.name.from_text(NAME), dns.rdataclass.IN,
                                 dns.rdatatype.A)
            assert [r.address for r in rrset] == ["10.96.0.1"]


def test_the_story_from_the_command_line(tmp_path: Path) -> None:
    """``pktsim run`` says what the deletion did to the stub, and nothing about glibc."""
    victim, _ = stub_backend(tmp_path)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["run", str(write(tmp_path, False, victim)), "--out", str(tmp_path / "o")])
    assert code == 0
    lines = buf.getvalue().splitlines()
    assert lines[0].startswith(f"stub: dns A to {NAME}: ok (8/20 answered)")
    assert lines[1] == f"  12 × DNS error (TRY_AGAIN) after delete Pod {victim} at 2.5 s"
    assert lines[2].startswith(f"glibc: dns A to {NAME}: ok (20/20 answered)")


@pytest.mark.parametrize(("flow", "field", "value", "message"), [
    ("{from: default/client, lookup: x., sourcePort: 0}", "sourcePort", "0",
     "is out of range; valid: 1-65535"),
    ("{from: default/client, lookup: x., sourcePort: 65536}", "sourcePort", "65536",
     "is out of range; valid: 1-65535"),
    ("{from: default/client, lookup: x., sourcePort: dns}", "sourcePort", "'dns'",
     "is a string"),
    ("{from: default/client, to: 'x:53', protocol: udp, sourcePort: 5353}", "sourcePort",
     "5353", "is only for lookups"),
    ("{from: default/client, lookup: x., count: 0}", "count", "0", "is out of range"),
    ("{from: default/client, lookup: x., interval: soon}", "interval", "'soon'",
     "is not a valid duration"),
])
def test_bad_lookup_fields_exit_2_naming_file_document_field_and_value(
        tmp_path: Path, flow: str, field: str, value: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(HEAD + f"  - {flow}\n")
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["check", str(path)])
    assert code == 2
    assert (f"{path}: document 3 (Traffic): spec.flows[0].{field}: {value} {message}"
            in err.getvalue())


def test_lookups_repeat_interval_after_each_other_ends(tmp_path: Path) -> None:
    """``count`` lookups, each ``interval`` after the one before it was answered."""
    path = tmp_path / "repeat.yaml"
    path.write_text(HEAD + f"  - {{name: r, from: default/client, lookup: {NAME}, count: 3, "
                    "interval: 250ms, start: 1s}\n")
    result = pktsim.load(path).run()
    sent = [t for t, sport, dport, _ in dns_frames(result, "default/client:eth0")
            if dport == 53]
    got = [t for t, sport, dport, _ in dns_frames(result, "default/client:eth0")
           if sport == 53]
    assert len(sent) == len(got) == 3 and 0 <= sent[0] - SECOND < MS  # after its ARP
    # the next query leaves 250 ms after the answer reached the resolver (the frame on
    # eth0 plus the receive path's few microseconds)
    assert all(0 <= s - g - 250 * MS < MS // 10 for s, g in zip(sent[1:], got[:-1],
                                                               strict=True))
    assert result.flows[0].line().startswith(f"r: dns A to {NAME}: ok (3/3 answered)")


def test_a_source_port_another_socket_holds_is_address_in_use(tmp_path: Path) -> None:
    """bind() to a port a socket of the namespace holds fails (EADDRINUSE): the second
    flow bound to 5353 makes no lookup; the first one is untouched."""
    path = tmp_path / "busy.yaml"
    path.write_text(HEAD + f"  - {{name: a, from: default/client, lookup: {NAME}, count: 3, "
                    "sourcePort: 5353}\n"
                    f"  - {{name: b, from: default/client, lookup: {NAME}, sourcePort: 5353, "
                    "start: 500ms}\n")
    a, b = pktsim.load(path).run().flows
    assert (a.answered, a.sent) == (3, 3)
    assert b.sent == 0 and b.status is FlowStatus.ADDRESS_IN_USE
    assert b.line() == (f"b: dns A to {NAME}: bind to UDP port 5353: address already in use "
                        "(0/0 answered)")


def test_the_example_of_docs_scenario_lookups_does_what_the_page_says(tmp_path: Path) -> None:
    """docs/scenario.md "Lookups": 8/20 for the stub without the cleanup, 20/20 with it,
    glibc 20/20 both ways, the cleanup's entry deleted at 7.5 s."""
    page = (Path(__file__).resolve().parents[2] / "docs" / "scenario.md").read_text()
    start = page.index("```yaml\n", page.index("A glibc client mostly escapes")) + 8
    text = page[start:page.index("```\n", start)]
    assert "conntrackCleanup: false" in text
    for cleanup, answered in (("false", 8), ("true", 20)):
        path = tmp_path / f"{cleanup}.yaml"
        path.write_text(text.replace("conntrackCleanup: false", f"conntrackCleanup: {cleanup}"))
        result = pktsim.load(path).run()
        stub, glibc = result.flows
        assert (stub.answered, glibc.answered) == (answered, 20)
        deleted = [e for e in result.events if e.event is Event.SYNC
                   and e.detail.deleted]  # type: ignore[union-attr]
        assert [e.t for e in deleted] == ([7500 * MS] if cleanup == "true" else [])
