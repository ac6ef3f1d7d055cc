"""The node tables taken at chosen moments of a run, not only when the network is quiet.

A run goes on until nothing is left to do, and by then most conntrack entries of short
flows have aged out (TIME_WAIT is 120 s), so ``conntrack.txt`` written at that end is
usually empty.  ``Snapshots`` takes the dumps of ``pktsim.render.dumps.node_dumps``

* when the last flow ends (every flow's outcome is known): what ``nodes/NODE/*.txt`` holds;
  a run whose flows do not all end keeps the tables of its end;
* at each moment the user names (``--snapshot-at 2s``), into ``nodes/NODE/at-2s/``.

Each is a driver action at its virtual time, so it sees the tables between two events, and
the run stays a pure function of its input.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pktsim.build.topology import Topology
    from pktsim.core.events import TraceEvent


class _Outcome(Protocol):
    @property
    def status(self) -> str: ...


def time_label(t: int) -> str:
    """``2s``, ``2.5s``, ``0.000001s``: seconds, as short as exact."""
    whole, frac = divmod(t, 10**9)
    return f"{whole}.{frac:09d}".rstrip("0").rstrip(".") + "s" if frac else f"{whole}s"


class Snapshots:
    """Install on a built topology before it runs; read ``final`` and ``named`` after."""

    def __init__(self, topo: Topology, results: Sequence[_Outcome],
                 at: Mapping[str, int] | None = None) -> None:
        self.topo = topo
        self.results = results
        self.final: dict[str, str] | None = None  # at the last flow's end
        self.named: dict[str, dict[str, str]] = {}  # label -> dumps
        self._ended = 0  # results[:_ended] have ended (an outcome never goes back)
        self._armed = False
        for label, t in (at or {}).items():
            topo.driver.at(t, partial(self._take, label))
        if results:
            topo.driver.listeners.append(self._watch)

    def _dumps(self) -> dict[str, str]:
        from pktsim.render.dumps import node_dumps

        return node_dumps(self.topo, self.topo.driver.now)

    def _take(self, label: str) -> None:
        self.named[label] = self._dumps()

    def take_at(self, t: int) -> None:
        """The tables now, labelled by the virtual time (a change's moment: ``at-2.5s``);
        a later take at the same moment replaces it, so the last change of a moment wins."""
        self._take(time_label(t))

    def _watch(self, event: TraceEvent) -> None:
        if self._armed:
            return
        while self._ended < len(self.results) and \
                self.results[self._ended].status != "pending":
            self._ended += 1
        if self._ended == len(self.results):
            self._armed = True  # after the event being handled, at the same time
            self.topo.driver.at(self.topo.driver.now, self._take_final)

    def _take_final(self) -> None:
        self.final = self._dumps()

    def files(self) -> dict[str, str]:
        """Every snapshot's files by path in the output folder (``nodes/NODE/at-L/F``)."""
        out: dict[str, str] = {}
        for label, dumps in sorted(self.named.items()):
            for rel, text in dumps.items():
                head, _, name = rel.rpartition("/")
                out[f"{head}/at-{label}/{name}"] = text
        return out
