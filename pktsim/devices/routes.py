"""A namespace's main routing table: longest-prefix match, as ``ip route`` shows it.

Routes are kept sorted by prefix length (longest first) and then by metric, so a lookup is the
first match — what the kernel's FIB answers for a table this small.  ``dump()`` prints the
table the way ``ip route show`` does (``default via …``, ``… proto kernel scope link src …``,
``… onlink``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network


@dataclass(frozen=True, slots=True)
class Route:
    dst: IPv4Network
    dev: str
    via: IPv4Address | None = None
    src: IPv4Address | None = None
    proto: str = ""  # "kernel" for connected routes
    scope: str = ""  # "link" for connected routes, "host" for local
    onlink: bool = False
    metric: int = 0
    # ``ip route`` text, rendered once: every forwarded packet's trace line quotes it
    text: str = field(default="", init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", self._render())

    def render(self) -> str:
        return self.text

    def _render(self) -> str:
        dst = "default" if self.dst.prefixlen == 0 else (
            str(self.dst.network_address) if self.dst.prefixlen == 32 else str(self.dst))
        parts = [dst]
        if self.via is not None:
            parts += ["via", str(self.via)]
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


class RoutingTable:
    def __init__(self) -> None:
        self.routes: list[Route] = []
        self._cache: dict[int, Route | None] = {}

    def add(self, route: Route) -> None:
        self.routes.append(route)
        self.routes.sort(key=lambda r: (-r.dst.prefixlen, r.metric))
        self._cache.clear()

    def remove(self, dst: IPv4Network) -> None:
        self.routes = [r for r in self.routes if r.dst != dst]
        self._cache.clear()

    def lookup(self, dst: bytes) -> Route | None:
        """The route for a destination address (4 raw bytes), or ``None``."""
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
        return "".join(r.render() + "\n" for r in ordered)
