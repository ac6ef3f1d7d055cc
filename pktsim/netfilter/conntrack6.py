"""Connection tracking of IPv6 packets (``nf_conntrack`` with ``l3num`` NFPROTO_IPV6).

Theory of operation
-------------------
The kernel keeps one conntrack table for both families, each entry keyed by its family
(``nf_conntrack_tuple.src.l3num``); ``conntrack -L -f ipv6`` lists the IPv6 ones (and
conntrack-tools 1.4.7's plain ``conntrack -L`` both families, as a namespace here showed:
pktsim's ``conntrack.txt`` keeps the IPv4 entries, ``conntrack6.txt`` has the IPv6 ones,
each line in the tool's format: ``icmpv6   58 29 src=fd00::1 dst=fd00::100 type=128 code=0
id=5379 src=fd00::2 dst=fd00::1 type=129 code=0 id=5379 mark=0 use=1``).  pktsim gives a
node's IPv6 netfilter its own ``Conntrack6`` object: the entries of the two families never
meet in a lookup anyway (their tuples differ in address length), and keeping them apart
leaves the IPv4 table, its dump and kube-proxy's cleanup exactly as they were.
``nf_conntrack_max`` counts both families in the kernel; here each table has its own limit
(a scenario never comes near it).

``track`` is ``nf_conntrack_in`` for an IPv6 packet (``ipv6_get_l4proto``: no extension
headers, the next header is the protocol); the protocol trackers are IPv4's — TCP's state
table, UDP's stream promotion, 30 s for ICMPv6 (``nf_conntrack_icmpv6_timeout``) — with
ICMPv6's own rules (``nf_conntrack_proto_icmpv6.c``):

* Neighbor Discovery and MLD (``noct_valid_new``: types 130-136, 143) are UNTRACKED: no
  entry, ``--ctstate UNTRACKED``, and no NAT (``nf_conntrack_icmpv6_error``);
* an error (type < 128) is RELATED to the connection of the packet it quotes
  (``icmpv6_error_message``), and INVALID when there is none;
* an echo request (or node information query) may start a connection; its reply is the
  inverse type (``invmap``), and any other informational type starts nothing (INVALID).
"""

from __future__ import annotations

from pktsim.netfilter.conntrack import Conntrack, Track
from pktsim.netfilter.tuples import ICMP6_UNTRACKED, invert, packet_tuple6
from pktsim.wire.build import PROTO_ICMPV6

IP6_HLEN = 40  # the fixed header: no extension headers are modelled


class Conntrack6(Conntrack):
    """The IPv6 entries of a namespace's table; ``dump`` is ``conntrack -L -f ipv6``."""

    def track(self, now: int, pkt: bytes) -> Track:
        """``nf_conntrack_in`` for an IPv6 packet (header already validated)."""
        t = packet_tuple6(pkt)
        if t is None:
            return Track(None, note="invalid: no transport header (truncated)")
        if t.proto == PROTO_ICMPV6:
            if t.icmp_type in ICMP6_UNTRACKED:
                return Track(None, ctstate="UNTRACKED")
            if t.icmp_type < 128:
                return self._related6(now, pkt)
        return self.track_l4(now, t, pkt, IP6_HLEN)

    def _related6(self, now: int, pkt: bytes) -> Track:
        """``icmpv6_error_message``: the entry of the quoted packet's answer, RELATED."""
        inner = packet_tuple6(pkt, IP6_HLEN + 8)
        about = invert(inner) if inner is not None else None
        if about is None:
            return Track(None, note="invalid: ICMPv6 error quotes no trackable packet")
        found = self.lookup(now, about)
        if found is None:
            return Track(None, note=f"invalid: ICMPv6 error about unknown {inner}")
        conn, d = found
        return Track(conn, d, "RELATED", note=f"ICMPv6 error related to {conn.orig}")
