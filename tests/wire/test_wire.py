"""pktsim's frame builders write exactly the bytes scapy writes for the same fields."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

from pktsim.wire import build
from pktsim.wire.checksum import checksum, ones_sum, update16
from pktsim.wire.parse import ip_str, mac_str, summary

ips = st.binary(min_size=4, max_size=4)
macs = st.binary(min_size=6, max_size=6).map(lambda b: bytes([b[0] & 0xFE]) + b[1:])
ports = st.integers(1, 65535)
payloads = st.binary(max_size=300)


@given(ips, ips, ports, ports, st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1),
       st.integers(0, 0x3F), st.integers(0, 65535), payloads, st.integers(1, 255),
       st.integers(0, 65535))
def test_tcp_ipv4_matches_scapy(src: bytes, dst: bytes, sport: int, dport: int, seq: int,
                                ack: int, flags: int, win: int, payload: bytes, ttl: int,
                                ident: int) -> None:
    ours = build.ipv4(src, dst, 6, build.tcp(src, dst, sport, dport, seq, ack, flags, win,
                                             payload), ttl=ttl, ident=ident, flags=build.IP_DF)
    theirs = bytes(IP(src=ip_str(src), dst=ip_str(dst), ttl=ttl, id=ident, flags="DF")
                   / TCP(sport=sport, dport=dport, seq=seq, ack=ack, flags=flags, window=win)
                   / Raw(payload))
    assert ours == theirs


@given(ips, ips, ports, ports, payloads)
def test_udp_matches_scapy(src: bytes, dst: bytes, sport: int, dport: int,
                           payload: bytes) -> None:
    ours = build.ipv4(src, dst, 17, build.udp(src, dst, sport, dport, payload))
    theirs = bytes(IP(src=ip_str(src), dst=ip_str(dst), id=0, flags=0)
                   / UDP(sport=sport, dport=dport) / Raw(payload))
    assert ours == theirs


@given(st.integers(0, 65535), st.integers(0, 65535), payloads, st.sampled_from([0, 8]))
def test_icmp_echo_matches_scapy(ident: int, seq: int, payload: bytes, kind: int) -> None:
    ours = build.icmp_echo(kind, ident, seq, payload)
    assert ours == bytes(ICMP(type=kind, id=ident, seq=seq) / Raw(payload))


@given(macs, macs, ips, ips, st.sampled_from([1, 2]))
def test_arp_in_ether_matches_scapy(sha: bytes, tha: bytes, spa: bytes, tpa: bytes,
                                    op: int) -> None:
    ours = build.ether(tha, sha, build.ETH_P_ARP, build.arp(op, sha, spa, tha, tpa))
    theirs = bytes(Ether(dst=mac_str(tha), src=mac_str(sha))
                   / ARP(op=op, hwsrc=mac_str(sha), psrc=ip_str(spa), hwdst=mac_str(tha),
                         pdst=ip_str(tpa)))
    assert ours == theirs


@given(st.binary(min_size=20, max_size=20).map(lambda b: b"\x45" + b[1:10] + b"\0\0" + b[12:]),
       st.integers(0, 65535))
def test_incremental_checksum_equals_full_recompute(header: bytes, new_word: int) -> None:
    csum = checksum(header)
    fixed = header[:10] + csum.to_bytes(2, "big") + header[12:]
    old_word = (fixed[8] << 8) | fixed[9]
    patched = fixed[:8] + new_word.to_bytes(2, "big") + fixed[10:]
    incremental = update16(csum, old_word, new_word)
    assert checksum(patched[:10] + incremental.to_bytes(2, "big") + patched[12:]) == 0


def test_summary_reads_like_tcpdump() -> None:
    frame = bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
                  / IP(src="10.244.0.2", dst="10.244.0.3", ttl=64)
                  / TCP(sport=40000, dport=8080, flags="S", seq=1, window=64240))
    assert summary(frame) == ("IP 10.244.0.2.40000 > 10.244.0.3.8080: Flags [S], seq 1, "
                              "win 64240, length 0, ttl 64")
    assert summary(frame[:10]).startswith("truncated frame")


def _folded_sum(data: bytes) -> int:
    """RFC 1071 as written: add the 16-bit words, fold the carries back in."""
    if len(data) & 1:
        data += b"\x00"
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
        total = (total & 0xFFFF) + (total >> 16)
    return total


@given(st.binary(max_size=1600) | st.sampled_from([b"", b"\xff\xff", b"\x00\x00",
                                                    b"\x00\x01\xff\xfe", b"\xff" * 1501]))
def test_ones_sum_is_rfc1071_folding(data: bytes) -> None:
    assert ones_sum(data) == _folded_sum(data)
