"""The order ``getaddrinfo`` returns a name's addresses in: glibc's destination address
selection (``rfc3484_sort`` in glibc ``sysdeps/posix/getaddrinfo.c``), whose first
address is the one a client (curl, a ``connect()`` loop) tries.

glibc keeps RFC 3484's default policy table (``default_labels``, ``default_precedence``)
when ``/etc/gai.conf`` says nothing, as in the images pods run; under it a ULA IPv6
address (``fc00::/7``, kind's ``fd00:10:96::/112``) has precedence 40 and every IPv4
address 10, so a dual-stack Service is reached over IPv6 -- seen in namespaces: ``getent
ahosts`` of a name with an A and a ULA AAAA lists the AAAA first.  The rules applied, in
order: 1 an address without a route or a source address last; 2 the same scope as the
source; 5 the same label as the source; 6 higher precedence; 9 the longer common prefix
with the source (IPv6 only); 10 the resolver's own order (A answers before AAAA).
"""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address, IPv6Network, ip_address

# (prefix, label, precedence) for IPv6 (an IPv4 address as ::ffff:a.b.c.d), most specific
# first: glibc's default_labels / default_precedence
_POLICY = ((IPv6Network("::1/128"), 0, 50), (IPv6Network("::ffff:0:0/96"), 4, 10),
           (IPv6Network("::/96"), 3, 20), (IPv6Network("2001::/32"), 7, 40),
           (IPv6Network("2002::/16"), 2, 30), (IPv6Network("fec0::/10"), 5, 40),
           (IPv6Network("fc00::/7"), 6, 40), (IPv6Network("::/0"), 1, 40))


def _policy(ip: IPv4Address | IPv6Address) -> tuple[int, int]:
    mapped = IPv6Address(b"\x00" * 10 + b"\xff\xff" + ip.packed) if ip.version == 4 else ip
    return next((label, prec) for net, label, prec in _POLICY if mapped in net)


def _scope(ip: IPv4Address | IPv6Address) -> int:
    """``get_scope``: IPv4 loopback and link-local are link scope (2), the rest global
    (14); IPv6 by its address type."""
    if ip.version == 4:
        return 2 if ip.is_loopback or ip.is_link_local else 14
    return 1 if ip.is_loopback else 2 if ip.is_link_local else 5 if ip.is_site_local else 14


def _common_prefix(a: bytes, b: bytes) -> int:
    diff = int.from_bytes(a, "big") ^ int.from_bytes(b, "big")
    return len(a) * 8 - diff.bit_length()


def gai_order(addresses: list[str],
              source_for: Callable[[bytes], tuple[bytes | None, int | None]]) -> list[str]:
    """``addresses`` (A answers, then AAAA) as ``getaddrinfo`` sorts them for a client
    whose stack picks ``source_for(destination)``."""
    def key(text: str) -> tuple[bool, bool, bool, int, int]:
        dst = ip_address(text)
        src_bytes, _mtu = source_for(dst.packed)
        if src_bytes is None:
            return True, True, True, 0, 0
        src = ip_address(src_bytes)
        (label, prec), (src_label, _) = _policy(dst), _policy(src)
        prefix = _common_prefix(src_bytes, dst.packed) if dst.version == 6 else 0
        return False, _scope(dst) != _scope(src), label != src_label, -prec, -prefix

    return sorted(addresses, key=key)
