"""Upstream's reachability truth table, so that expectations are transcribed, not computed.

A copy in Python of kubernetes ``test/e2e/network/netpol/reachability.go`` (``Reachability``,
``Peer.Matches``, ``Expect``, ``ExpectAllIngress``, ``ExpectAllEgress``, ``ExpectPeer``) over
``truthtable.go`` (``SetAllTo``, ``SetAllFrom``, ``Set``): a table of every ordered pair of
pods, filled with a default and then overwritten by the steps in the order a test calls them.
A step is data (the classes below), so a case reads as upstream's test does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class PeerMatch:
    """Upstream ``Peer``: an empty namespace or pod matches every one."""

    namespace: str = ""
    pod: str = ""

    def matches(self, pod: str) -> bool:
        namespace, _, name = pod.partition("/")
        return (self.namespace in ("", namespace)) and (self.pod in ("", name))


@dataclass(frozen=True)
class Expect:
    """``reachability.Expect(from, to, connected)``: one cell."""

    frm: str
    to: str
    connected: bool


@dataclass(frozen=True)
class ExpectAllIngress:
    """``ExpectAllIngress(pod, connected)``: every cell into ``pod`` (``SetAllTo``)."""

    pod: str
    connected: bool


@dataclass(frozen=True)
class ExpectAllEgress:
    """``ExpectAllEgress(pod, connected)``: every cell out of ``pod`` (``SetAllFrom``)."""

    pod: str
    connected: bool


@dataclass(frozen=True)
class ExpectPeer:
    """``ExpectPeer(&Peer{..}, &Peer{..}, connected)``: every matching pair."""

    frm: PeerMatch
    to: PeerMatch
    connected: bool


Step = Expect | ExpectAllIngress | ExpectAllEgress | ExpectPeer


class Reachability:
    """``NewReachability(pods, defaultExpectation)`` and its expectation setters."""

    def __init__(self, pods: Sequence[str], default: bool = True) -> None:
        self.pods = tuple(pods)
        self.expected = {(f, t): default for f in self.pods for t in self.pods}

    def apply(self, step: Step) -> None:
        if isinstance(step, Expect):
            self._set(step.frm, step.to, step.connected)
        elif isinstance(step, ExpectAllIngress):
            for frm in self.pods:
                self._set(frm, step.pod, step.connected)
        elif isinstance(step, ExpectAllEgress):
            for to in self.pods:
                self._set(step.pod, to, step.connected)
        else:
            for frm in self.pods:
                for to in self.pods:
                    if step.frm.matches(frm) and step.to.matches(to):
                        self._set(frm, to, step.connected)

    def _set(self, frm: str, to: str, connected: bool) -> None:
        if (frm, to) not in self.expected:  # upstream: framework.Failf("... not found")
            raise KeyError(f"{frm} -> {to}: not a pod of this test")
        self.expected[(frm, to)] = connected

    @classmethod
    def built(cls, pods: Sequence[str], steps: Iterable[Step]) -> Reachability:
        table = cls(pods, True)
        for step in steps:
            table.apply(step)
        return table
