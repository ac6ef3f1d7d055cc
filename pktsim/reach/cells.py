"""The reachability matrix as data: a ``ReachCell`` per probe, grouped in a ``Reachability``.

The verdicts are cyclonus' (github.com/mattfenwick/cyclonus,
``pkg/connectivity/probe/connectivity.go``: ``.`` allowed, ``X`` blocked, ``!`` check
failed) with one more, ``R``: "connection refused" from the destination itself.  Upstream's
e2e (``test/e2e/network/netpol/kubemanager.go`` ``probeConnectivity``) and cyclonus' live
prober count any failed ``agnhost connect`` as blocked; here the wire says which it was, and
a refusal means the network let the probe through to a port nothing listens on -- a fact
about the pod, not about policy.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas
    from matplotlib.figure import Figure


class Verdict(enum.StrEnum):
    """A cell's outcome; ``symbol`` is its character in the text matrix."""

    ALLOWED = "allowed"  # answered: SYN-ACK (TCP) or the echo (UDP)
    DENIED = "denied"  # dropped by NetworkPolicy (felix's DROP), as the trace shows
    REFUSED = "refused"  # RST / ICMP port unreachable from the pod: allowed, nobody listens
    FAILED = "failed"  # no answer and no policy drop: routing, TTL, … (the reason says)

    @property
    def symbol(self) -> str:
        return {"allowed": ".", "denied": "X", "refused": "R", "failed": "!"}[self.value]


@dataclass(frozen=True, slots=True)
class ReachCell:
    """One probe: ``source`` -> ``destination`` (``NAMESPACE/POD``) on ``protocol``/``port``.

    ``decided_by`` is ``(direction, policy)`` pairs: for an allowed cell the policies whose
    chains set the accept mark, for a denied one the policies isolating the pod in the
    direction whose chain dropped it (none of them allowed it).  ``reason`` says it in words.
    """

    source: str
    destination: str
    port: int
    protocol: str  # "tcp" | "udp"
    verdict: Verdict
    decided_by: tuple[tuple[str, str], ...] = ()
    reason: str = ""
    flow: str = ""  # the probe's flow name in the trace

    @property
    def direction(self) -> str:
        """The directions of ``decided_by``, ``;``-separated and aligned with ``policy``
        (``Egress;Ingress`` with ``x/p;x/q``)."""
        return ";".join(d for d, _ in self.decided_by)

    @property
    def policy(self) -> str:
        """The policies of ``decided_by``, ``;``-separated, in its order."""
        return ";".join(p for _, p in self.decided_by)

    def record(self) -> dict[str, Any]:
        """The cell as one JSON object (``pktsim.render.reach.COLUMNS``; the directions and
        policies as lists, in ``decided_by`` order)."""
        return {"source": self.source, "destination": self.destination, "port": self.port,
                "protocol": self.protocol, "verdict": self.verdict.value,
                "direction": [d for d, _ in self.decided_by],
                "policy": [p for _, p in self.decided_by], "reason": self.reason}


@dataclass
class Reachability:
    """Every probe of ``pods`` x ``pods`` (a pod to itself left out) on each ``(protocol,
    port)`` of ``ports``; what ``pktsim reach`` prints and ``Cluster.reachability`` returns."""

    pods: tuple[str, ...]
    ports: tuple[tuple[str, int], ...]
    network: str
    enforced: bool  # whether the network enforces NetworkPolicy at all
    cells: list[ReachCell] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def __iter__(self) -> Iterator[ReachCell]:
        return iter(self.cells)

    def __len__(self) -> int:
        return len(self.cells)

    def cell(self, source: str, destination: str, port: int,
             protocol: str = "tcp") -> ReachCell:
        """The cell of one probe (KeyError when it was not probed)."""
        for c in self.cells:
            if (c.source, c.destination, c.port, c.protocol) == (source, destination, port,
                                                                    protocol):
                return c
        raise KeyError(f"no probe {source} -> {destination} {protocol}/{port}")

    def matrix(self, protocol: str, port: int) -> dict[tuple[str, str], Verdict]:
        """``(source, destination) -> verdict`` for one port."""
        return {(c.source, c.destination): c.verdict for c in self.cells
                if (c.protocol, c.port) == (protocol, port)}

    def __repr__(self) -> str:
        counts = {v.value: sum(c.verdict is v for c in self.cells) for v in Verdict}
        shown = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
        ports = ", ".join(f"{proto}/{port}" for proto, port in self.ports)
        return (f"<pktsim.Reachability: {len(self.pods)} pods, {ports}, network "
                f"{self.network}: {len(self.cells)} cells ({shown or 'none'})>")

    def text(self) -> str:
        """The matrices and their legend, as ``pktsim reach`` prints them."""
        from pktsim.render.reach import reach_text

        return reach_text(self)

    def __str__(self) -> str:
        return self.text()

    def frame(self) -> pandas.DataFrame:
        """One row per cell, the CSV's columns (pandas, from the ``notebook-run`` extra)."""
        import pandas

        from pktsim.render.reach import COLUMNS

        rows = [{**c.record(), "direction": c.direction, "policy": c.policy}
                for c in self.cells]
        return pandas.DataFrame(rows, columns=list(COLUMNS))

    def heatmap(self) -> Figure:
        """One coloured matrix per port (matplotlib): sources as rows, destinations as
        columns, ``ns/pod`` on both axes; allowed green, denied red, refused amber, failed
        grey, a pod to itself white."""
        from pktsim.render.reach import heatmap

        return heatmap(self)
