"""The capture writers round-trip through independent readers: scapy's, our own, tshark.

Why three readers: scapy checks that another implementation parses our blocks the way we
meant them; the block reader in tests/helpers checks framing byte by byte (padding, lengths,
opt_endofopt, IDB before use) and gives exact nanoseconds; tshark is what users open the
files with, and it is the judge of "no malformed packet, no checksum error".
"""

from __future__ import annotations

import io
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoRequest, ICMPv6PacketTooBig, IPv6
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet, Raw
from scapy.utils import PcapNgReader, RawPcapNgReader, RawPcapReader

from pktsim.core.capture import Direction, Interface, LinkType
from pktsim.core.events import TraceEvent
from pktsim.sinks.pcap import NS_MAGIC, PcapDirSink, global_header, record
from pktsim.sinks.pcapng import SNAPLEN, PcapngSink, PcapngWriter
from tests.helpers.tshark import (
    interface_names,
    read_pcap,
    read_pcapng,
    tshark_fields,
    validate_capture,
)

T0 = 1_700_000_000_000_000_000  # a plausible absolute time, in ns
MAC_A, MAC_B = "02:00:00:00:00:01", "02:00:00:00:00:02"

# --- strategies --------------------------------------------------------------------------

# Text that encodes to UTF-8 (no lone surrogates); pcapng strings are UTF-8.
_chars = st.characters(codec="utf-8")
_text = st.text(_chars, max_size=40)
_hosts = st.one_of(
    st.sampled_from(["node-1", "node-2", "external", "default/web", "kube-system/coredns-x"]),
    _text.filter(bool),
)
_ifnames = st.one_of(
    st.sampled_from(["eth0", "lo", "cbr0", "flannel.1", "tunl0", "veth1a2b3c4d"]),
    _text.filter(bool),
)
interfaces = st.builds(
    Interface, host=_hosts, name=_ifnames, linktype=st.sampled_from(LinkType),
    description=st.one_of(st.just(""), _text),
)
_macs = st.binary(min_size=6, max_size=6).map(lambda b: ":".join(f"{x:02x}" for x in b))
_ips = st.ip_addresses(v=4).map(str)
_ports = st.integers(0, 65535)


@st.composite
def ip_packets(draw: st.DrawFn) -> IP:
    """A valid IPv4 packet carrying TCP, UDP or ICMP; addresses are always explicit."""
    ip = IP(src=draw(_ips), dst=draw(_ips), ttl=draw(st.integers(1, 255)),
            id=draw(st.integers(0, 65535)))
    payload = Raw(draw(st.binary(max_size=300)))
    kind = draw(st.sampled_from(["tcp", "udp", "icmp"]))
    l4: Packet
    if kind == "tcp":
        l4 = TCP(sport=draw(_ports), dport=draw(_ports), seq=draw(st.integers(0, 2**32 - 1)),
                 flags=draw(st.sampled_from(["S", "SA", "A", "PA", "FA", "R"])))
    elif kind == "udp":
        l4 = UDP(sport=draw(_ports), dport=draw(_ports))
    else:
        l4 = ICMP(type=draw(st.sampled_from([0, 8])), id=draw(_ports), seq=draw(_ports))
    return ip / l4 / payload


def frame_for(linktype: LinkType, pkt: IP, src: str = MAC_A, dst: str = MAC_B) -> bytes:
    """The bytes as that kind of interface carries them: Ethernet, or bare IP for tunl0."""
    if linktype is LinkType.RAW:
        return bytes(pkt)
    return bytes(Ether(src=src, dst=dst) / pkt)


def _file_safe(iface: Interface) -> bool:
    """No NUL, and within NAME_MAX (255 bytes) with the .pcap suffix."""
    return "\0" not in iface.file_stem and len(f"{iface.file_stem}.pcap".encode()) <= 255


@st.composite
def captures(draw: st.DrawFn, max_t: int = 2**64 - 1, file_names: bool = False) -> tuple[
        list[Interface], list[tuple[int, int, bytes, str, Direction]]]:
    """Distinct interfaces, and frames on them: (iface index, t_ns, bytes, comment, dir).

    ``file_names``: only interfaces whose file stem Linux accepts as a file name.
    """
    strategy = interfaces.filter(_file_safe) if file_names else interfaces
    ifaces = draw(st.lists(strategy, min_size=1, max_size=5, unique_by=lambda i: i.file_stem))
    frames = []
    for _ in range(draw(st.integers(0, 12))):
        k = draw(st.integers(0, len(ifaces) - 1))
        data = frame_for(ifaces[k].linktype, draw(ip_packets()), draw(_macs), draw(_macs))
        frames.append((k, draw(st.integers(0, max_t)), data,
                       draw(st.one_of(st.just(""), st.text(_chars, max_size=120))),
                       draw(st.sampled_from(Direction))))
    return ifaces, frames


_SETTINGS = settings(max_examples=60, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# --- (a) pcapng round trip ---------------------------------------------------------------


@_SETTINGS
@given(captures())
def test_pcapng_round_trips_through_scapy_and_block_reader(
        cap: tuple[list[Interface], list[tuple[int, int, bytes, str, Direction]]]) -> None:
    ifaces, frames = cap
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "capture.pcapng"
        with path.open("wb") as f:
            w = PcapngWriter(f)
            ids = [w.add_interface(i) for i in ifaces]
            assert ids == list(range(len(ifaces)))
            for k, t, data, comment, direction in frames:
                w.write_packet(ids[k], t, data, comment, direction)

        # Our strict block reader: framing, exact ns, every option.
        pn = read_pcapng(path)
        assert pn.shb_options == {4: [b"pktsim"]}
        assert pn.order == ["SHB"] + ["IDB"] * len(ifaces) + ["EPB"] * len(frames)
        for iface, idb in zip(ifaces, pn.interfaces, strict=True):
            assert idb.linktype == iface.linktype
            assert idb.snaplen == SNAPLEN
            assert idb.name == iface.if_name
            assert idb.description == iface.description
            assert (3 in idb.options) == bool(iface.description)
            assert idb.options[9] == [b"\x09"]
        for (k, t, data, comment, direction), epb in zip(frames, pn.packets, strict=True):
            assert (epb.iface_id, epb.t_ticks, epb.data, epb.origlen) == (k, t, data, len(data))
            assert epb.comments == ([comment] if comment else [])
            assert epb.flags == (int(direction) if direction else None)

        # scapy's reader: raw bytes and metadata, then its dissected packets' times.
        with RawPcapNgReader(str(path)) as raw:
            got: list[tuple[bytes, Any]] = list(raw)  # scapy types the metadata loosely
        assert len(got) == len(frames)
        for (k, t, data, comment, direction), (pkt, meta) in zip(frames, got, strict=True):
            assert pkt == data
            assert meta.linktype == ifaces[k].linktype
            assert meta.tsresol == 1_000_000_000
            assert (meta.tshigh << 32 | meta.tslow) == t
            assert meta.wirelen == len(data)
            assert meta.ifname == ifaces[k].if_name.encode()
            assert (meta.comments or []) == ([comment.encode()] if comment else [])
            assert meta.direction == (int(direction) if direction else None)
        with PcapNgReader(str(path)) as rd:
            times = [p.time for p in rd]
        assert times == [Decimal(t) / 1_000_000_000 for _, t, *_ in frames]


@pytest.mark.parametrize("comment", ["", "a", "ab", "abc", "abcd", "é", "→→"])
@pytest.mark.parametrize("n", range(9))
def test_pcapng_padding_every_length(n: int, comment: str) -> None:
    """Data and comment lengths in every residue mod 4, with and without flags."""
    buf = io.BytesIO()
    w = PcapngWriter(buf)
    i = w.add_interface(Interface("h", "x" * n, description="d" * (n % 5)))
    w.write_packet(i, 7, bytes(range(n)), comment, Direction.UNKNOWN)
    w.write_packet(i, 8, bytes(range(n)), comment, Direction.INBOUND)
    raw = buf.getvalue()
    assert len(raw) % 4 == 0
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "c.pcapng"
        p.write_bytes(raw)
        pn = read_pcapng(p)
    assert [e.data for e in pn.packets] == [bytes(range(n))] * 2
    assert [e.comments for e in pn.packets] == [[comment] if comment else []] * 2
    assert [e.flags for e in pn.packets] == [None, 1]
    assert pn.interfaces[0].name == "h:" + "x" * n


def test_pcapng_writer_rejects_what_it_cannot_write() -> None:
    w = PcapngWriter(io.BytesIO())
    with pytest.raises(ValueError, match="never added"):
        w.write_packet(0, 0, b"")
    i = w.add_interface(Interface("h", "eth0"))
    with pytest.raises(ValueError, match="outside"):
        w.write_packet(i, -1, b"")
    with pytest.raises(ValueError, match="outside"):
        w.write_packet(i, 2**64, b"")
    with pytest.raises(ValueError, match="too long"):
        w.write_packet(i, 0, b"", "x" * 70000)


def test_pcapng_truncates_to_snaplen_keeping_original_length() -> None:
    buf = io.BytesIO()
    w = PcapngWriter(buf, snaplen=64)
    w.write_packet(w.add_interface(Interface("h", "eth0")), 1, bytes(100))
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "c.pcapng"
        p.write_bytes(buf.getvalue())
        (epb,) = read_pcapng(p).packets
    assert (epb.caplen, epb.origlen, epb.data) == (64, 100, bytes(64))


def test_pcapng_sink_writes_each_idb_once_and_before_use(tmp_path: Path) -> None:
    """Announce twice, equal-but-distinct objects, and a frame on an unannounced interface."""
    a = Interface("node-1", "eth0")
    b = Interface("default/web", "eth0", description="pod web")
    c = Interface("node-1", "tunl0", LinkType.RAW)
    pkt = IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=2) / b"x"
    sink = PcapngSink(str(tmp_path / "capture.pcapng"))
    sink.interface(a)
    sink.interface(b)
    sink.interface(Interface("node-1", "eth0"))  # equal to a: no new IDB
    sink.frame(T0, a, Direction.OUTBOUND, frame_for(a.linktype, pkt), "one")
    sink.frame(T0 + 1, Interface("default/web", "eth0", description="pod web"),
               Direction.INBOUND, frame_for(b.linktype, pkt), "two")
    sink.frame(T0 + 2, c, Direction.UNKNOWN, frame_for(c.linktype, pkt), "")  # never announced
    sink.event(TraceEvent(0, "f", 1, "node-1", "eth0", "tx", "ignored"))
    sink.close()
    sink.close()  # idempotent
    pn = read_pcapng(tmp_path / "capture.pcapng")
    assert pn.order == ["SHB", "IDB", "IDB", "EPB", "EPB", "IDB", "EPB"]
    assert interface_names(tmp_path / "capture.pcapng") == [
        "node-1:eth0", "default/web:eth0", "node-1:tunl0"]
    assert [e.iface_id for e in pn.packets] == [0, 1, 2]
    assert pn.interfaces[2].linktype == LinkType.RAW


def test_pcapng_is_deterministic(tmp_path: Path) -> None:
    outs = []
    for n in range(2):
        sink = PcapngSink(str(tmp_path / f"{n}.pcapng"))
        i = Interface("node-1", "eth0")
        sink.interface(i)
        sink.frame(T0, i, Direction.INBOUND, b"\x00" * 60, "c")
        sink.close()
        outs.append((tmp_path / f"{n}.pcapng").read_bytes())
    assert outs[0] == outs[1]


# --- (b) classic pcap, one file per interface --------------------------------------------


@_SETTINGS
@given(captures(max_t=2**32 * 1_000_000_000 - 1, file_names=True),
       st.sampled_from([1, 200, 8 << 20]))
def test_pcap_dir_round_trips(
        cap: tuple[list[Interface], list[tuple[int, int, bytes, str, Direction]]],
        flush_bytes: int) -> None:
    ifaces, frames = cap
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "pcap"
        sink = PcapDirSink(out, flush_bytes=flush_bytes)
        for i in ifaces:
            sink.interface(i)
        for k, t, data, comment, direction in frames:
            sink.frame(t, ifaces[k], direction, data, comment)
        sink.close()
        assert sorted(p.name for p in out.iterdir()) == sorted(
            f"{i.file_stem}.pcap" for i in ifaces)
        for k, iface in enumerate(ifaces):
            path = out / f"{iface.file_stem}.pcap"
            want = [(t, data) for kk, t, data, *_ in frames if kk == k]
            linktype, snaplen, recs = read_pcap(path)
            assert (linktype, snaplen) == (iface.linktype, SNAPLEN)
            assert [(t, data) for t, _, data in recs] == want
            assert all(orig == len(data) for _, orig, data in recs)
            with RawPcapReader(str(path)) as rd:
                assert rd.linktype == iface.linktype
                got = [(m.sec * 1_000_000_000 + m.usec, pkt) for pkt, m in rd]
            assert got == want


def test_pcap_header_and_record_bytes() -> None:
    assert global_header(101)[:4] == NS_MAGIC.to_bytes(4, "little")
    assert len(global_header(1)) == 24
    assert record(1_500_000_000, b"ab") == (
        (1).to_bytes(4, "little") + (500_000_000).to_bytes(4, "little")
        + (2).to_bytes(4, "little") * 2 + b"ab")
    with pytest.raises(ValueError):
        record(-1, b"")
    with pytest.raises(ValueError):
        record(2**32 * 1_000_000_000, b"")


def test_pcap_dir_refuses_two_interfaces_in_one_file(tmp_path: Path) -> None:
    sink = PcapDirSink(tmp_path)
    sink.interface(Interface("a/b", "c"))
    sink.interface(Interface("a/b", "c"))  # the same interface again is fine
    with pytest.raises(ValueError, match=r"a_b_c\.pcap"):
        sink.interface(Interface("a_b", "c"))


# --- (c) tshark as the judge -------------------------------------------------------------

_IP = IP(src="10.244.1.2", dst="10.96.0.10")


def _good_frames() -> list[tuple[Interface, bytes]]:
    eth = Interface("node-1", "eth0")
    tun = Interface("node-1", "tunl0", LinkType.RAW)
    vx = Ether(src=MAC_A, dst=MAC_B) / IP(src="192.168.0.1", dst="192.168.0.2") / UDP(
        sport=40000, dport=8472) / VXLAN(vni=1, flags=0x08) / Ether(src=MAC_A, dst=MAC_B) / (
        _IP / TCP(sport=40000, dport=80, flags="S"))
    return [
        (eth, frame_for(eth.linktype, _IP / TCP(sport=40000, dport=80, flags="S"))),
        (eth, frame_for(eth.linktype, _IP / UDP(sport=40000, dport=9999) / b"hello")),
        (eth, frame_for(eth.linktype, _IP / ICMP() / b"ping")),
        (tun, frame_for(tun.linktype, _IP / TCP(sport=40000, dport=80, flags="SA"))),
        (eth, bytes(vx)),
    ]


def _write(path: Path, frames: list[tuple[Interface, bytes]], comment: str = "c") -> None:
    sink = PcapngSink(str(path))
    for n, (iface, data) in enumerate(frames):
        sink.frame(T0 + n, iface, Direction.OUTBOUND, data, comment)
    sink.close()


def test_tshark_finds_nothing_wrong_with_good_frames(tmp_path: Path) -> None:
    _write(tmp_path / "good.pcapng", _good_frames())
    validate_capture(tmp_path / "good.pcapng")
    sink = PcapDirSink(tmp_path / "pcap")
    for n, (iface, data) in enumerate(_good_frames()):
        sink.frame(T0 + n, iface, Direction.INBOUND, data, "")
    sink.close()
    for p in sorted((tmp_path / "pcap").iterdir()):
        validate_capture(p)


_VX_BAD_INNER = Ether(src=MAC_A, dst=MAC_B) / IP(src="192.168.0.1", dst="192.168.0.2") / UDP(
    sport=40000, dport=8472) / VXLAN(vni=1, flags=0x08) / Ether(src=MAC_A, dst=MAC_B) / (
    _IP / TCP(sport=40000, dport=80, flags="S", chksum=0x1234))


@pytest.mark.parametrize("bad", [
    pytest.param(_IP / TCP(sport=40000, dport=80, flags="S", chksum=0x1234), id="tcp"),
    pytest.param(_IP / UDP(sport=40000, dport=9999, chksum=0x1234) / b"hello", id="udp"),
    pytest.param(_IP / ICMP(chksum=0x1234) / b"ping", id="icmp"),
    pytest.param(IP(src="10.244.1.2", dst="10.96.0.10", chksum=0x1234) / ICMP(), id="ip"),
    pytest.param(_VX_BAD_INNER, id="vxlan-inner-tcp"),
    pytest.param(IP(bytes(_IP / TCP(sport=1, dport=2))[:-4]), id="truncated"),
    pytest.param(Ether(src=MAC_A, dst=MAC_B) / IPv6(src="fd00::1", dst="fd00::2") /
                 ICMPv6PacketTooBig(mtu=1400, cksum=0x1234) /
                 IPv6(src="fd00::2", dst="fd00::3") / TCP(sport=1, dport=2, chksum=0x4321),
                 id="icmpv6-error"),  # a bad outer checksum is found though it quotes one
    pytest.param(Ether(src=MAC_A, dst=MAC_B) / IPv6(src="fd00::1", dst="fd00::2") /
                 ICMPv6EchoRequest(cksum=0x1234), id="icmpv6"),
])
def test_tshark_flags_a_bad_frame(tmp_path: Path, bad: IP) -> None:
    """The validator must not pass silently: one bad frame among good ones is reported."""
    eth = Interface("node-1", "eth0")
    data = bytes(bad) if isinstance(bad, Ether) else frame_for(eth.linktype, bad)
    _write(tmp_path / "bad.pcapng", [*_good_frames(), (eth, data)])
    with pytest.raises(AssertionError, match=r"tshark findings") as info:
        validate_capture(tmp_path / "bad.pcapng")
    lines = [ln for ln in str(info.value).splitlines()[1:] if ln.strip()]
    assert len(lines) == 1 and lines[0].split()[0] == str(len(_good_frames()) + 1)


def test_a_correct_icmp_error_quoting_a_cut_segment_is_not_a_finding(tmp_path: Path) -> None:
    """An ICMPv6 Packet Too Big quotes 1232 bytes of a 1450-byte segment: the quoted TCP
    checksum cannot be verified (tshark flags it anyway, on the kernel's errors too); the
    error's own checksum is right, so nothing is wrong."""
    segment = IPv6(src="fd00::2", dst="fd00::3") / TCP(sport=1, dport=2) / (b"x" * 1390)
    error = Ether(src=MAC_A, dst=MAC_B) / IPv6(src="fd00::1", dst="fd00::2") / \
        ICMPv6PacketTooBig(mtu=1400) / bytes(segment)[:1232]
    _write(tmp_path / "ptb.pcapng", [(Interface("node-1", "eth0"), bytes(error))])
    validate_capture(tmp_path / "ptb.pcapng")


def test_tshark_helper_fails_on_unreadable_file(tmp_path: Path) -> None:
    (tmp_path / "junk.pcapng").write_bytes(b"not a capture")
    with pytest.raises(AssertionError, match="exited"):
        validate_capture(tmp_path / "junk.pcapng")


# --- (d) what tshark reads back ----------------------------------------------------------


def test_tshark_reads_names_comments_directions_times(tmp_path: Path) -> None:
    a = Interface("node-1", "eth0", description="uplink")
    b = Interface("default/web", "eth0")
    c = Interface("node-1", "tunl0", LinkType.RAW)
    pkt = _IP / UDP(sport=40000, dport=9999) / b"hello"
    dnat = "kube-proxy DNAT 10.96.0.10:53 -> 10.244.1.3:53 (KUBE-SVC-TCOU7JCQXEZGVUNU → KUBE-SEP-…)"
    sink = PcapngSink(str(tmp_path / "capture.pcapng"))
    for i in (a, b):
        sink.interface(i)
    sink.frame(T0 + 1, a, Direction.OUTBOUND, frame_for(a.linktype, pkt), dnat)
    sink.frame(T0 + 2, b, Direction.INBOUND, frame_for(b.linktype, pkt), "into the pod")
    sink.frame(T0 + 3, c, Direction.UNKNOWN, frame_for(c.linktype, pkt), "")  # IDB after EPBs
    sink.close()
    rows = tshark_fields(tmp_path / "capture.pcapng", [
        "frame.interface_id", "frame.interface_name", "frame.interface_description",
        "frame.comment", "frame.packet_flags_direction", "frame.time_epoch"])
    assert rows == [
        ["0", "node-1:eth0", "uplink", dnat, "0x00000002", "1700000000.000000001"],
        ["1", "default/web:eth0", "", "into the pod", "0x00000001", "1700000000.000000002"],
        ["2", "node-1:tunl0", "", "", "", "1700000000.000000003"],
    ]
    assert tshark_fields(tmp_path / "capture.pcapng", ["frame.number"],
                         'frame.interface_name == "default/web:eth0"') == [["2"]]
    validate_capture(tmp_path / "capture.pcapng")
