"""Starting an application in a namespace, as the driver's scheduled call."""

from __future__ import annotations

from collections.abc import Callable

from pktsim.core.frame import Reaction
from pktsim.devices.l4 import App
from pktsim.devices.netns import Netns
from pktsim.driver.driver import Driver


def starter(ns: Netns, app: App) -> Callable[[int], Reaction]:
    """What the driver calls to start ``app`` in ``ns`` (a process starting in the pod)."""
    return lambda now: ns.l4.start(now, app)


def start_at_zero(driver: Driver, ns: Netns, app: App) -> None:
    """``driver.call(0, ns, starter(ns, app))`` for a build, without the event when it would
    do nothing more: a 150,000-pod cluster's 150,000 server starts were its first 150,000
    events, none of them traced.

    The app starts now, in build order — the order those events ran in, before anything
    else at time 0 (flows are scheduled after the build).  If starting did anything the
    driver must see (trace steps, frames, a timer to arm), an event at 0, scheduled where
    the start event was, applies it then, as the start event did."""
    reaction = ns.l4.start(0, app)
    if reaction.steps or reaction.emits or ns.next_deadline() is not None:
        driver.call(0, ns, lambda now: reaction)
