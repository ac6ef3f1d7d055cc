"""Starting an application in a namespace, as the driver's scheduled call."""

from __future__ import annotations

from collections.abc import Callable

from pktsim.devices.base import Reaction
from pktsim.devices.l4 import App
from pktsim.devices.netns import Netns


def starter(ns: Netns, app: App) -> Callable[[int], Reaction]:
    """What the driver calls to start ``app`` in ``ns`` (a process starting in the pod)."""
    return lambda now: ns.l4.start(now, app)
