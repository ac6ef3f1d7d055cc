"""The ip6tables of one namespace: IPv6 packets through raw, mangle, nat and filter.

Theory of operation
-------------------
Linux registers the same tables for IPv6 (``net/ipv6/netfilter/ip6table_*.c``) at the same
five hooks with the same priorities (``enum nf_ip6_hook_priorities``), and one conntrack and
NAT core serves both families (``nf_conntrack_proto.c`` ``nf_ct_netns_get``,
``nf_nat_proto.c``).  So ``Netfilter6`` is ``hooks.Netfilter`` — the same pipeline, walker,
memo, NAT binding and trace — with the IPv6 pieces put in: ``PacketView.of6`` to read a
packet, ``Conntrack6`` (``conntrack6.py``) to track it, ``mangle6`` to rewrite it, and
ip6tables' syntax for its restore text (``save.parse(family=6)``).  A node has one of each:
``ns.hooks`` for IPv4 and ``ns.hooks6`` for IPv6, so the stack picks the family once per
packet and no IPv4 match ever asks for a version.

What is IPv6's own here:

* ``-m addrtype`` (``xt_addrtype.c`` ``match_lookup_rt6``): LOCAL for an address of the
  namespace (and ``::1``), MULTICAST for ``ff00::/8``, UNICAST otherwise — IPv6 has no
  broadcast;
* MASQUERADE takes the source address ``ipv6_dev_get_saddr`` picks on the output device for
  the packet's destination (``nf_nat_masquerade_ipv6``);
* REJECT (``ip6t_REJECT.c``) answers with an ICMPv6 destination unreachable of the chosen
  code (``nf_send_unreach6``: ``icmpv6_send``), or with a RST built as ``nf_send_reset6``
  builds it, RELATED to the rejected packet's entry so it is un-NATed like a reply;
* an ICMPv6 error RELATED to a NATed connection is translated inside and out
  (``nf_nat_icmpv6_reply_translation``).
"""

from __future__ import annotations

from pktsim.core.events import Event, RuleHit
from pktsim.core.frame import DropReason, Frame
from pktsim.netfilter import nat
from pktsim.netfilter.conntrack import Track
from pktsim.netfilter.conntrack6 import IP6_HLEN, Conntrack6
from pktsim.netfilter.engine import Outcome
from pktsim.netfilter.hooks import Netfilter, _Ctx, _Pkt, _side
from pktsim.netfilter.mangle import DST, SRC
from pktsim.netfilter.mangle6 import icmp6_translate, rewrite6, tcp_reset6
from pktsim.netfilter.targets import REJECT6_WITH, Reject
from pktsim.netfilter.tuples import packet_tuple6
from pktsim.netfilter.view import PacketView
from pktsim.wire.build import PROTO_ICMPV6, PROTO_TCP
from pktsim.wire.parse import ip_str

LOOPBACK6 = b"\x00" * 15 + b"\x01"
ICMP6_DST_UNREACH = 1


class Netfilter6(Netfilter):
    """``Hooks`` for IPv6 packets: ``ns.hooks6 = Netfilter6(ns, rng)``."""

    family = 6
    _view = staticmethod(PacketView.of6)
    _rewrite = staticmethod(rewrite6)
    _tuple_at = staticmethod(packet_tuple6)
    _proto_at = 6
    _icmp_proto = PROTO_ICMPV6
    _conntrack_cls = Conntrack6

    def _addr_type(self, ip: bytes) -> str:
        """``match_lookup_rt6``: what the namespace's routes make of an IPv6 address."""
        if self.ns.is_local(ip) or ip == LOOPBACK6:
            return "LOCAL"
        if ip[0] == 0xFF:
            return "MULTICAST"
        return "UNICAST"

    def _addr_type_on(self, ip: bytes, dev: str) -> str:
        """LOCAL only for an address of ``dev`` itself (``--limit-iface-out``)."""
        cfg = self.ns.ifaces.get(dev)
        if cfg is not None and any(a.ip.packed == ip for a in cfg.addrs6):
            return "LOCAL"
        kind = self._addr_type(ip)
        return "UNICAST" if kind == "LOCAL" else kind

    def _masq_source(self, dev: str, pkt: bytes) -> bytes | None:
        return self.ns.masquerade_source6(dev, pkt[24:40])

    def _reject(self, p: _Pkt, pkt: bytes, ctx: _Ctx, target: Reject, out: Outcome,
                detail: RuleHit) -> None:
        p.r.drop_as(f"REJECT {target.with_} ({out.path_text()}){self.gen_note}",
                    DropReason.RULE, p.iface, p.frame, detail)
        if target.with_ != "tcp-reset":
            self.ns.icmp6_error(p.now, ICMP6_DST_UNREACH, REJECT6_WITH[target.with_], pkt,
                                p.frame, p.r, in_dev=p.in_dev)
            return
        rst = tcp_reset6(pkt) if pkt[6] == PROTO_TCP else None
        if rst is None:
            return
        frame = Frame(rst, self.ns.new_pid(), p.frame.flow)
        tr = ctx.track
        if tr.conn is not None:  # nf_ct_attach: the RST is RELATED to the rejected packet
            self._pending[frame.pid] = _Ctx(Track(tr.conn, 1 - tr.dir, "RELATED"))
        p.r.step(Event.SEND, f"REJECT: send TCP RST to {ip_str(rst[24:40])}", p.iface, frame)
        self.ns.ip_output(p.now, rst, frame, p.r)

    def _icmp_related(self, p: _Pkt, pkt: bytes, ctx: _Ctx, mt: int) -> bytes:
        conn = ctx.track.conn
        assert conn is not None
        new = nat.icmp_reply(pkt, conn, ctx.track.dir, mt, icmp6_translate)
        if new != pkt:
            inner_mt = DST if mt == SRC else SRC
            at = IP6_HLEN + 8
            inner = (f"{_side(pkt, inner_mt, at, packet_tuple6)} -> "
                     f"{_side(new, inner_mt, at, packet_tuple6)}")
            self._nat_step(p, pkt, new, mt, "conntrack un-NAT ICMPv6 error",
                           f", quoted {'dst' if inner_mt == DST else 'src'} {inner}")
        return new
