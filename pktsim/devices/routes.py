"""A namespace's main routing table: longest-prefix match, as ``ip route`` shows it.

Routes are kept sorted by prefix length (longest first) and then by metric, so a lookup is the
first match — what the kernel's FIB answers for a table this small.  ``dump()`` prints the
table the way ``ip route show`` does (``default via …``, ``… proto kernel scope link src …``,
``… onlink``, ``blackhole …``).  A ``blackhole`` route (``RTN_BLACKHOLE``, as Calico puts on
each block its node holds) matches like any route and discards silently: ``fib_props`` gives it
``-EINVAL``, which ``ip_error`` (``net/ipv4/route.c``) drops without an ICMP error, and a local
sender's ``connect()`` fails with ``EINVAL``.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from itertools import pairwise

from pktsim.core.events import Route as RouteDetail


@dataclass(frozen=True, slots=True)
class Route:
    dst: IPv4Network | IPv6Network
    dev: str
    via: IPv4Address | IPv6Address | None = None
    src: IPv4Address | IPv6Address | None = None
    proto: str = ""  # "kernel" for connected routes
    scope: str = ""  # "link" for connected routes, "host" for local
    onlink: bool = False
    metric: int = 0
    type: str = ""  # "" (unicast) or "blackhole" (dev is then "")
    # ``ip route`` text and the trace detail of a packet forwarded by this route (shared by
    # all of them), made once, when first asked for: every forwarded packet's trace line
    # quotes them, but most of a big cluster's 300,000 pod routes are never shown
    _text: str = field(default="", init=False, compare=False, repr=False)
    _detail: RouteDetail | None = field(default=None, init=False, compare=False,
                                           repr=False, hash=False)

    @property
    def text(self) -> str:
        text = self._text
        if not text:
            text = self._render()
            object.__setattr__(self, "_text", text)
        return text

    @property
    def detail(self) -> RouteDetail:
        detail = self._detail
        if detail is None:
            detail = RouteDetail(self.text)
            object.__setattr__(self, "_detail", detail)
        return detail

    def _render(self) -> str:
        if self.dst.version == 6:
            return self._render6()
        dst = "default" if self.dst.prefixlen == 0 else (
            str(self.dst.network_address) if self.dst.prefixlen == 32 else str(self.dst))
        parts = ["blackhole", dst] if self.type == "blackhole" else [dst]
        if self.via is not None:
            parts += ["via", str(self.via)]
        if self.dev:
            parts += ["dev", self.dev]
        if self.proto:
            parts += ["proto", self.proto]
        if self.scope:
            parts += ["scope", self.scope]
        if self.src is not None:
            parts += ["src", str(self.src)]
        if self.metric:
            parts += ["metric", str(self.metric)]
        if self.onlink:
            parts.append("onlink")
        return " ".join(parts)

    def _render6(self) -> str:
        """``ip -6 route``: the metric always, then the router preference (RFC 4191)."""
        dst = "default" if self.dst.prefixlen == 0 else (
            str(self.dst.network_address) if self.dst.prefixlen == 128 else str(self.dst))
        parts = ["blackhole", dst] if self.type == "blackhole" else [dst]
        if self.via is not None:
            parts += ["via", str(self.via)]
        if self.dev:
            parts += ["dev", self.dev]
        if self.proto:
            parts += ["proto", self.proto]
        if self.src is not None:
            parts += ["src", str(self.src)]
        parts += ["metric", str(self.metric or 1024)]
        if self.onlink:
            parts.append("onlink")
        parts += ["pref", "medium"]
        return " ".join(parts)


def _insert_each(merged: list[Route], merged_keys: list[tuple[int, int]],
                 table: list[Route], keys: list[tuple[int, int]]) -> list[Route]:
    """``table``'s routes put into ``merged`` from the last, each before the routes of an
    equal key (what ``add_many`` does in one pass when the table is in order)."""
    for route, key in zip(reversed(table), reversed(keys), strict=True):
        at = bisect_left(merged_keys, key)
        merged.insert(at, route)
        merged_keys.insert(at, key)
    return merged


def order_key(route: Route) -> tuple[int, int]:
    """The table's order: longest prefix first, then lowest metric (then as added)."""
    return -route.dst.prefixlen, route.metric


class RoutingTable:
    def __init__(self) -> None:
        self.routes: list[Route] = []
        self._cache: dict[int, Route | None] = {}

    def add(self, route: Route) -> None:
        self.routes.append(route)
        self.routes.sort(key=order_key)
        self._cache.clear()

    def add_many(self, routes: Sequence[Route],
                 keys: Sequence[tuple[int, int]] | None = None) -> None:
        """``add`` each of ``routes`` in turn, in one step (a node gets a route per other
        node: 5,000 sorts of up to 5,000 routes each would be quadratic).

        ``keys``: the routes' ``order_key``s, given when ``routes`` are already in the table's
        order (the caller made them once for many tables); without them the routes are
        sorted here, stably, which keeps the order of equal keys as added."""
        if keys is None:
            routes = sorted(routes, key=order_key)
            keys = [order_key(r) for r in routes]
        mine = [order_key(r) for r in self.routes]
        if any(a > b for a, b in pairwise(mine)):  # a table not in order (set by hand)
            self.routes = _insert_each(list(routes), list(keys), self.routes, mine)
        else:  # one pass: each route of the table before the added ones of an equal key
            merged: list[Route] = []
            start = 0
            for route, key in zip(self.routes, mine, strict=True):
                at = bisect_left(keys, key, lo=start)
                merged += routes[start:at]
                merged.append(route)
                start = at
            merged += routes[start:]
            self.routes = merged
        self._cache.clear()

    def remove(self, dst: IPv4Network | IPv6Network) -> None:
        self.routes = [r for r in self.routes if r.dst != dst]
        self._cache.clear()

    def lookup(self, dst: bytes) -> Route | None:
        """The route for a destination address (4 or 16 raw bytes), or ``None``."""
        key = int.from_bytes(dst, "big")
        if key in self._cache:
            return self._cache[key]
        found = None
        for route in self.routes:
            net = route.dst
            if key & int(net.netmask) == int(net.network_address):
                found = route
                break
        if len(self._cache) < 65536:
            self._cache[key] = found
        return found

    def dump(self) -> str:
        """``ip route show`` order: default first, then by destination."""
        ordered = sorted(self.routes, key=lambda r: (r.dst.prefixlen != 0,
                                                      int(r.dst.network_address),
                                                      r.dst.prefixlen))
        return "".join(r.text + "\n" for r in ordered)
