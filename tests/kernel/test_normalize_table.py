"""The normalisation table itself (no kernel needed): every field the decoder hands to the
table has an entry that says how and why, and a few hand-built frames come out as the
kernel comparisons rely on."""

from __future__ import annotations

import struct
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from twin import TABLE, describe, normalize
from twin.decode import decode

MACS = {"0a:58:0a:f4:00:02": "a.eth0", "0a:58:0a:f4:00:03": "b.eth0"}


def _ipv4(proto: int, payload: bytes, ipid: int = 0x1234, src: bytes = b"\x0a\xf4\x00\x02",
          dst: bytes = b"\x0a\xf4\x00\x03") -> bytes:
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ipid, 0x4000, 64, proto,
                       0xBEEF, src, dst) + payload


def _eth(payload: bytes) -> bytes:
    return bytes.fromhex("0a580af40003" "0a580af40002" "0800") + payload


def _syn(sport: int, isn: int) -> bytes:
    opts = bytes.fromhex("020405b4" "0402" "080a0000000100000000" "01" "030307")
    tcp = struct.pack("!HHIIHHHH", sport, 8080, isn, 0, ((20 + len(opts)) // 4) << 12 | 0x02,
                      64240, 0xDEAD, 0) + opts
    return _eth(_ipv4(6, tcp))


def test_every_tagged_field_has_an_entry() -> None:
    tags = {f.tag for fr in (_syn(40000, 7), _eth(_ipv4(1, bytes(16)))) for f in decode(fr)}
    tags.discard(None)
    assert tags <= {e.tag for e in TABLE}
    for e in TABLE:
        assert e.field and e.how and e.why, e
        assert e.field in describe()


def test_syn_is_normalised_as_the_comparisons_expect() -> None:
    (row,) = normalize([_syn(40000, 123456789)], MACS)
    assert (row["eth_src"], row["eth_dst"]) == ("a.eth0", "b.eth0")
    assert (row["tcp_sport"], row["tcp_dport"], row["tcp_seq"], row["tcp_ack"]) == (
        "eph1", 8080, 0, 0)
    assert row["ip_id"] == "id1" and row["tcp_window"] == 64240
    assert row["tcp_options"] == [("MSS", 1460), ("SAckOK", None), ("Timestamp", None),
                                  ("NOP", None), ("WScale", 7)]
    assert not any("csum" in k for k in row)


def test_options_drop_or_keep_fields() -> None:
    (row,) = normalize([_syn(40000, 1)], MACS, keep_window=False, keep_ip_id=False,
                       ephemeral_ports=False, nat_ips=("10.244.0.3",))
    assert "tcp_window" not in row and "ip_id" not in row
    assert (row["tcp_sport"], row["tcp_dport"]) == (40000, "natport1")


def test_echo_payload_timestamp_zeroed() -> None:
    data = bytes(range(0x60, 0x70)) + bytes(range(0x10, 0x38))
    icmp = struct.pack("!BBHHH", 8, 0, 0xAAAA, 0x4242, 1) + data
    (row,) = normalize([_eth(_ipv4(1, icmp))], MACS)
    assert row["icmp_id"] == "icmpid1" and row["icmp_seq"] == 1
    assert row["icmp_payload"] == (bytes(16) + bytes(range(0x10, 0x38))).hex()
