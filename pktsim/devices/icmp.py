"""ICMP and ICMPv6 at a namespace's transport (``icmp_rcv``, ``icmpv6_rcv``): echo requests
answered by the kernel itself, echo replies to the ping socket whose id they carry, errors to
the socket that sent the packet they quote (``Transport.local_error``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pktsim.core.events import Event
from pktsim.core.frame import DropReason, Frame, Reaction
from pktsim.devices.outcome import SocketError
from pktsim.wire import build, ip6
from pktsim.wire.build import PROTO_ICMP, PROTO_ICMPV6
from pktsim.wire.checksum import checksum, l4_checksum
from pktsim.wire.parse import ip_str

if TYPE_CHECKING:
    from pktsim.devices.l4 import Transport


def icmp_in(t: Transport, now: int, port: str, pkt: bytes, body: bytes, frame: Frame,
            r: Reaction) -> None:
    """``icmp_rcv``: echo requests answered (no DF, the per-destination id, TTL 64)."""
    if len(body) < 8 or checksum(body) != 0:
        r.drop(DropReason.BAD_CHECKSUM if len(body) >= 8 else DropReason.MALFORMED, port,
               frame, "ICMP")
        return
    icmp_type = body[0]
    if icmp_type == 8:
        src, dst = pkt[12:16], pkt[16:20]
        reply = build.icmp(0, 0, body[4:8], body[8:])
        out = build.ipv4(dst, src, PROTO_ICMP, reply, ttl=64, ident=t.stack.ip_id(src))
        rf = Frame(out, t.stack.new_pid(), frame.flow)
        r.step(Event.DELIVER, f"ICMP echo request from {ip_str(src)}: kernel replies", port,
               frame)
        t.stack.ip_output(now, out, rf, r)
    elif icmp_type == 0:
        ident = (body[4] << 8) | body[5]
        app = t.echo.get(ident)
        r.step(Event.DELIVER, f"ICMP echo reply from {ip_str(pkt[12:16])} id {ident}", port,
               frame)
        if app is not None and hasattr(app, "on_echo_reply"):
            app.on_echo_reply(now, t, r, pkt, frame)
    elif icmp_type in (3, 11, 12):
        _icmp_error_in(t, now, port, pkt, body, frame, r)
    else:
        r.step(Event.DELIVER, f"ICMP type {icmp_type} ignored", port, frame)


def icmp6_in(t: Transport, now: int, port: str, pkt: bytes, body: bytes, frame: Frame,
             r: Reaction) -> None:
    """``icmpv6_rcv``: echo requests answered by the kernel, replies and errors to the
    socket they concern."""
    src, dst = pkt[8:24], pkt[24:40]
    if len(body) < 8 or l4_checksum(src, dst, PROTO_ICMPV6, body) != 0:
        r.drop(DropReason.BAD_CHECKSUM if len(body) >= 8 else DropReason.MALFORMED, port,
               frame, "ICMPv6")
        return
    kind = body[0]
    if kind == ip6.ICMP6_ECHO_REQUEST:
        me = dst if not ip6.is_multicast(dst) else t.stack.source_for(src)[0]
        if me is None:
            return
        reply = ip6.icmpv6(me, src, ip6.ICMP6_ECHO_REPLY, 0, body[4:8], body[8:])
        out = build.ipv6(me, src, PROTO_ICMPV6, reply, hlim=64, tclass=_tclass(pkt),
                         flow=t.stack.flow_label(me, src, PROTO_ICMPV6, body[4:6]))
        r.step(Event.DELIVER, f"ICMPv6 echo request from {ip_str(src)}: kernel replies",
               port, frame)
        t.stack.ip_output(now, out, Frame(out, t.stack.new_pid(), frame.flow), r)
    elif kind == ip6.ICMP6_ECHO_REPLY:
        ident = (body[4] << 8) | body[5]
        app = t.echo.get(ident)
        r.step(Event.DELIVER, f"ICMPv6 echo reply from {ip_str(src)} id {ident}", port,
               frame)
        if app is not None and hasattr(app, "on_echo_reply"):
            app.on_echo_reply(now, t, r, pkt, frame)
    elif kind in ip6.ICMP6_ERRORS:
        inner = body[8:]
        if len(inner) < 48:
            r.drop(DropReason.MALFORMED, port, frame, "ICMPv6 error quotes too little")
            return
        what = SocketError.icmp6(kind, body[1], ip_str(src))
        r.step(Event.DELIVER, f"ICMPv6 {what}", port, frame)
        mtu = int.from_bytes(body[4:8], "big")
        if kind == ip6.ICMP6_PACKET_TOO_BIG and t.path_mtu(now, inner, mtu, r):
            return
        t.local_error(now, inner, what, r, frame)
    else:
        r.step(Event.DELIVER, f"ICMPv6 type {kind} ignored", port, frame)


def _icmp_error_in(t: Transport, now: int, port: str, pkt: bytes, body: bytes, frame: Frame,
                   r: Reaction) -> None:
    inner = body[8:]
    if len(inner) < 28:
        r.drop(DropReason.MALFORMED, port, frame, "ICMP error quotes too little")
        return
    what = SocketError.icmp(body[0], body[1], ip_str(pkt[12:16]))
    r.step(Event.DELIVER, f"ICMP {what}", port, frame)
    t.local_error(now, inner, what, r, frame)


def _tclass(pkt: bytes) -> int:
    """An IPv6 header's traffic class (an echo reply reflects the request's)."""
    return ((pkt[0] & 0x0F) << 4) | (pkt[1] >> 4)
