"""ip6tables-restore text in, ip6tables-save text out (``family=6``), as the real tools do it;
the IPv6 rewrites' checksums against scapy's; conntrack's ICMPv6 rules."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
from scapy.layers.inet import TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6

from pktsim.kubeproxy.tables import restore_tables
from pktsim.netfilter.conntrack6 import Conntrack6
from pktsim.netfilter.mangle import DST, SRC
from pktsim.netfilter.mangle6 import rewrite6
from pktsim.netfilter.save import parse, render
from pktsim.netfilter.tuples import Tuple, invert, packet_tuple6
from tests.netfilter.test_netfilter_save import _assert_same, _kernel_ready

WRITTEN = """*nat
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-X - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -m tcp -p tcp -d fd00:10:96::1 --dport 80 -j DNAT --to-destination [fd00:10:244:1::5]:8080
-A PREROUTING -d fd00:10:96::2/128 -p udp --dport 53 -j DNAT --to-destination fd00::5
-A POSTROUTING -s fd00:10:244::/56 ! -d fd00:10:244::/56 -j MASQUERADE --random-fully
-A POSTROUTING -p icmpv6 -j SNAT --to-source fd00::1
-A OUTPUT -m addrtype --dst-type LOCAL -j KUBE-X
-A KUBE-X -m recent --name KUBE-SEP-X --rcheck --seconds 10800 --reap -j RETURN
-A KUBE-X -m recent --set --name KUBE-SEP-X --rsource -p tcp -j DNAT --to-destination [fd00::5]:80
-A POSTROUTING -p tcp -j SNAT --to-source [fd00::5]:1000-2000 --random-fully
-A POSTROUTING -p tcp -j MASQUERADE --to-ports 1000-2000
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p tcp -m conntrack --ctstate NEW,UNTRACKED -m multiport --dports 80,90:99 -j REJECT
-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 128 -j ACCEPT
-A INPUT -p icmpv6 -m icmp6 --icmpv6-type echo-request -j ACCEPT
-A FORWARD -j REJECT --reject-with icmp6-adm-prohibited
-A FORWARD -p tcp -j REJECT --reject-with tcp-reset
-A FORWARD -m mark --mark 0x4000/0x4000 -m statistic --mode random --probability 0.5 -m comment --comment "a b" -j ACCEPT
COMMIT
"""  # noqa: E501

# what ip6tables-save v1.8.9 (nf_tables) printed for WRITTEN (comment lines left out)
PRINTED = """*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p tcp -m conntrack --ctstate NEW,UNTRACKED -m multiport --dports 80,90:99 -j REJECT --reject-with icmp6-port-unreachable
-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 128 -j ACCEPT
-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 128 -j ACCEPT
-A FORWARD -j REJECT --reject-with icmp6-adm-prohibited
-A FORWARD -p tcp -j REJECT --reject-with tcp-reset
-A FORWARD -m mark --mark 0x4000/0x4000 -m statistic --mode random --probability 0.50000000000 -m comment --comment "a b" -j ACCEPT
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-X - [0:0]
-A PREROUTING -d fd00:10:96::1/128 -p tcp -m comment --comment "kubernetes service portals" -m tcp --dport 80 -j DNAT --to-destination [fd00:10:244:1::5]:8080
-A PREROUTING -d fd00:10:96::2/128 -p udp -m udp --dport 53 -j DNAT --to-destination fd00::5
-A OUTPUT -m addrtype --dst-type LOCAL -j KUBE-X
-A POSTROUTING -s fd00:10:244::/56 ! -d fd00:10:244::/56 -j MASQUERADE --random-fully
-A POSTROUTING -p ipv6-icmp -j SNAT --to-source fd00::1
-A POSTROUTING -p tcp -j SNAT --to-source [fd00::5]:1000-2000 --random-fully
-A POSTROUTING -p tcp -j MASQUERADE --to-ports 1000-2000
-A KUBE-X -m recent --rcheck --seconds 10800 --reap --name KUBE-SEP-X --mask ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff --rsource -j RETURN
-A KUBE-X -p tcp -m recent --set --name KUBE-SEP-X --mask ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff --rsource -j DNAT --to-destination [fd00::5]:80
COMMIT
"""  # noqa: E501


def test_ip6tables_text_prints_as_ip6tables_save() -> None:
    assert render(parse(WRITTEN, family=6).values()) == PRINTED


def test_the_fast_reader_reads_ip6tables_text_as_parse() -> None:
    fast = restore_tables(WRITTEN, family=6)
    assert render(fast.values()) == render(parse(WRITTEN, family=6).values())


@pytest.mark.parametrize(("rule", "error"), [
    ("-A FORWARD -d 10.0.0.1 -j ACCEPT", "10.0.0.1"),
    ("-A FORWARD -j REJECT --reject-with icmp-port-unreachable", "icmp-port-unreachable"),
    ("-A FORWARD -s fd00::/64 -j DROP", ""),
    ("-A FORWARD -p icmp -m icmp --icmp-type 8 -j ACCEPT", "Couldn't load match `icmp'"),
])
def test_what_ip6tables_refuses(rule: str, error: str) -> None:
    text = f"*filter\n:FORWARD ACCEPT [0:0]\n{rule}\nCOMMIT\n"
    if not error:
        parse(text, family=6)
        with pytest.raises(ValueError):
            parse(text)  # an IPv6 CIDR in iptables text
        return
    with pytest.raises(ValueError, match=error):
        parse(text, family=6)
    with pytest.raises(ValueError, match=error):
        restore_tables(text, family=6)


A, B, VIP = (bytes.fromhex(h) for h in ("fd000010024400000000000000000002",
                                         "fd000010024400010000000000000005",
                                         "fd000010009600000000000000000001"))


@pytest.mark.parametrize("layer", [TCP(sport=40000, dport=80, flags="S"),
                                   UDP(sport=40000, dport=80) / b"hello",
                                   ICMPv6EchoRequest(id=7, seq=1)])
def test_rewrites_keep_the_l4_checksum_right(layer: object) -> None:
    pkt = bytes(IPv6(src="fd00:10:244::2", dst="fd00:10:96::1") / layer)  # type: ignore[operator]
    t = packet_tuple6(pkt)
    assert t is not None and t.dst == VIP
    dnat = rewrite6(pkt, t._replace(dst=B, dport=8080 if t.proto != 58 else t.dport), DST)
    snat = rewrite6(dnat, t._replace(src=B, sport=1234), SRC)
    for out in (dnat, snat):
        again = IPv6(out)
        l4 = again.payload
        delattr(l4, "cksum" if isinstance(l4, ICMPv6EchoRequest) else "chksum")
        assert bytes(IPv6(bytes(again))) == bytes(IPv6(out)), "checksum differs from scapy's"
    assert IPv6(snat).src == "fd00:10:244:1::5"


def test_icmpv6_echo_inverts_and_neighbor_discovery_is_untracked() -> None:
    t = Tuple(58, A, VIP, 7, 128 << 8)
    assert invert(t) == Tuple(58, VIP, A, 7, 129 << 8)
    assert invert(Tuple(58, A, VIP, 0, 1 << 8 | 4)) is None  # an error starts nothing
    ct = Conntrack6()
    solicit = bytes(IPv6(src="fe80::1", dst="ff02::1:ff00:2", nh=58) / b"\x87\x00\x00\x00"
                    / bytes(20))
    assert ct.track(0, solicit).ctstate == "UNTRACKED"
    reply = bytes(IPv6(src="fd00:10:244::2", dst="fd00:10:96::1") / ICMPv6EchoRequest(id=7))
    reply = reply[:40] + b"\x81" + reply[41:]  # an echo reply with no request: INVALID
    assert ct.track(0, reply).ctstate == "INVALID"


@pytest.fixture
def netns6() -> Iterator[str]:
    why = _kernel_ready()
    if why:
        pytest.skip(why)
    name = "pktk6nf-save"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if made.returncode:
        pytest.skip(f"cannot create a network namespace: {made.stderr.strip()}")
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], capture_output=True)


@pytest.mark.kernel
def test_real_ip6tables_reads_and_prints_what_pktsim_does(netns6: str) -> None:
    loaded = subprocess.run(["ip", "netns", "exec", netns6, "ip6tables-restore"], input=WRITTEN,
                            capture_output=True, text=True)
    assert loaded.returncode == 0, loaded.stderr
    saved = subprocess.run(["ip", "netns", "exec", netns6, "ip6tables-save"],
                           capture_output=True, text=True, check=True).stdout
    real = "".join(line + "\n" for line in saved.splitlines() if not line.startswith("#"))
    _assert_same(real, render(parse(WRITTEN, family=6).values()))
