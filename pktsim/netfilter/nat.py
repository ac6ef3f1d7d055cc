"""NAT bindings on conntrack entries (``nf_nat_core.c``): chosen once, applied to every packet.

Theory of operation
-------------------
NAT happens only when a connection is new.  At each NAT hook the manipulation type is fixed
— destination at PREROUTING and OUTPUT, source at POSTROUTING and INPUT — and for the first
packet of a connection the ``nat`` chain of that hook is walked once.  Whatever it decides
becomes a *binding*, recorded by rewriting the entry's reply tuple (``setup``,
``nf_nat_setup_info``): DNAT to 10.244.2.7:8080 turns the expected reply
``10.96.45.12:80 -> client`` into ``10.244.2.7:8080 -> client``.  When the chain decides
nothing, a *null binding* is recorded all the same; for the source side it may still move
the source port, when another entry already expects replies on that port.

Choosing the new tuple is ``get_unique_tuple``: for a source rewrite without ``--random``
or ``--random-fully``, keep the packet's source port if the resulting tuple is not taken
(``Conntrack.taken``); otherwise search the port range — 1024-65535 for an ephemeral port,
1-511 or 600-1023 for a low one, the whole identifier space for ICMP — starting at an offset
from the random stream and trying at most 128 ports, then fewer from a new offset
(``nf_nat_l4proto_unique_tuple``).  ``--random-fully`` skips the "keep" step: its port is
random from the first packet.  A destination rewrite never moves a port it was not told to.

Afterwards every packet of the connection, both directions, gets the manipulation its
hook is responsible for (``manip_for``, ``nf_nat_packet``), with no rule walked: a packet
in the original direction gets the binding, a reply gets its inverse — which is how a
reply from 10.244.2.7:8080 leaves the node as 10.96.45.12:80.  An ICMP error RELATED to
the entry is translated inside and out (``icmp_reply``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from pktsim.netfilter.conntrack import Conn, Conntrack
from pktsim.netfilter.mangle import DST, SRC, icmp_translate
from pktsim.netfilter.tuples import Tuple, invert
from pktsim.wire.build import PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP

ICMPS = (PROTO_ICMP, PROTO_ICMPV6)  # the identifier is their "port" (nf_nat_core.c)

MAX_ATTEMPTS = 128  # NF_NAT_MAX_ATTEMPTS


@dataclass(frozen=True, slots=True)
class NatRange:
    """``struct nf_nat_range``: one address, optionally a port range, and the random flags."""

    ip: bytes
    ports: tuple[int, int] | None = None
    random: bool = False
    random_fully: bool = False


def setup(ct: Conntrack, now: int, conn: Conn, mt: int, r: NatRange | None, kind: str,
          rng: random.Random) -> Tuple | None:
    """Bind manipulation ``mt`` of a new connection; returns the new tuple if it changed.

    ``r`` None is the null binding (nothing in the chain decided)."""
    curr = invert(conn.reply)
    assert curr is not None
    if r is None:
        r = NatRange(curr.src if mt == SRC else curr.dst)
        kind = "SNAT (source port clash)" if mt == SRC else "DNAT"
    new = unique_tuple(ct, now, conn, curr, mt, r, rng)
    conn.nat_init.add(mt)
    if new == curr:
        return None
    reply = invert(new)
    assert reply is not None
    conn.reply = reply
    if mt == SRC:
        conn.src_nat = True
    else:
        conn.dst_nat = True
    conn.nat_kind[mt] = kind
    return new


def _key(t: Tuple, mt: int) -> int:
    return t.sport if mt == SRC or t.proto in ICMPS else t.dport


def _with_key(t: Tuple, mt: int, value: int) -> Tuple:
    if mt == SRC or t.proto in ICMPS:
        return t._replace(sport=value)
    return t._replace(dport=value)


def _in_range(t: Tuple, mt: int, r: NatRange) -> bool:
    if (t.src if mt == SRC else t.dst) != r.ip:
        return False
    return r.ports is None or r.ports[0] <= _key(t, mt) <= r.ports[1]


def unique_tuple(ct: Conntrack, now: int, conn: Conn, curr: Tuple, mt: int, r: NatRange,
                 rng: random.Random) -> Tuple:
    """``get_unique_tuple``: the tuple the connection's packets will have after ``mt``."""
    random_all = r.random or r.random_fully
    if mt == SRC and not random_all and _in_range(curr, mt, r) \
            and not ct.taken(now, curr, conn):
        return curr
    cand = curr._replace(src=r.ip) if mt == SRC else curr._replace(dst=r.ip)
    if r.ports is not None and not _in_range(cand, mt, r):
        cand = _with_key(cand, mt, r.ports[0])
    if not random_all:
        if r.ports is not None and r.ports[0] == r.ports[1]:
            return cand
        if not ct.taken(now, cand, conn):
            return cand
    return _search(ct, now, conn, cand, mt, r, rng)


def _search(ct: Conntrack, now: int, conn: Conn, cand: Tuple, mt: int, r: NatRange,
            rng: random.Random) -> Tuple:
    """``nf_nat_l4proto_unique_tuple``; returns the last try when every port is taken
    (the clash then fails at confirm, as in the kernel)."""
    if cand.proto not in (PROTO_TCP, PROTO_UDP, PROTO_ICMP, PROTO_ICMPV6):
        return cand
    if r.ports is not None:
        low, size = r.ports[0], r.ports[1] - r.ports[0] + 1
    elif cand.proto in ICMPS:
        low, size = 0, 65536
    elif mt == DST:
        return cand  # "if it's dst rewrite, can't change port"
    elif cand.sport >= 1024:
        low, size = 1024, 65535 - 1024 + 1
    else:
        low, size = (1, 511) if cand.sport <= 511 else (600, 1023 - 600 + 1)
    random_all = r.random or r.random_fully
    offset = rng.getrandbits(16) if random_all or mt != DST else 0
    attempts = min(size, MAX_ATTEMPTS)
    while True:
        for i in range(attempts):
            cand = _with_key(cand, mt, low + (offset + i) % size)
            if not ct.taken(now, cand, conn):
                return cand
        if attempts >= size or attempts < 16:
            return cand
        attempts //= 2
        offset = rng.getrandbits(16)


def _status(conn: Conn, d: int, mt: int) -> bool:
    """Does a packet in direction ``d`` need manipulation ``mt``? (IPS_SRC_NAT/DST_NAT,
    inverted for replies)."""
    if d == 1:
        mt = DST if mt == SRC else SRC
    return conn.src_nat if mt == SRC else conn.dst_nat


def manip_for(conn: Conn, d: int, mt: int) -> Tuple | None:
    """``nf_nat_packet``: the target tuple to write into a packet, or None."""
    if not _status(conn, d, mt):
        return None
    target = invert(conn.tuple(1 - d))
    assert target is not None
    return target


Translate = Callable[[bytes, Tuple, int, Tuple, int], bytes]


def icmp_reply(pkt: bytes, conn: Conn, d: int, mt: int,
               translate: Translate = icmp_translate) -> bytes:
    """``nf_nat_icmp_reply_translation``: un-NAT an ICMP error RELATED to ``conn``
    (``translate``: ``mangle6.icmp6_translate`` for ICMPv6,
    ``nf_nat_icmpv6_reply_translation``)."""
    if not _status(conn, d, mt):
        return pkt
    other = conn.tuple(1 - d)
    outer = invert(other)
    assert outer is not None
    return translate(pkt, other, DST if mt == SRC else SRC, outer, mt)
