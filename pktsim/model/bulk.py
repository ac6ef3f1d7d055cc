"""Building a big cluster's objects without the cyclic garbage collector in the way.

Loading, allocating and building a 150,000-pod cluster makes tens of millions of objects
and almost no garbage.  Each full pass of CPython's cyclic collector walks every tracked
object, and the passes come more often the more objects are made: for a 1,000-node cluster
they are half of the build time.  ``gc_paused`` turns the collector off for such a bulk
step (and back on, if it was on); the objects are the same.

Turning it back on is not enough: every object made while it was off is still in the
youngest generation, so the next collections (the first during the run) walk all of them,
three times over as they are promoted — at 5,000 nodes that is most of a traced flow's
30 seconds.  So a step that made more than ``FREEZE_AT`` objects moves them to the permanent
generation (``gc.freeze``), which the collector no longer walks.  The price: a reference
cycle among those objects (a namespace and its transport point at each other) is never
collected once garbage, so a process that builds several such clusters keeps their memory
until ``thaw()``.  Small clusters (tests, the properties benchmark) stay below the limit.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

FREEZE_AT = 1_000_000  # objects made in one bulk step: more, and they are frozen


@contextmanager
def gc_paused() -> Iterator[None]:
    """Run the block with the cyclic garbage collector off (reference counting goes on)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if gc.get_count()[0] > FREEZE_AT:
            gc.freeze()
        if was_enabled:
            gc.enable()


def thaw() -> None:
    """Give frozen objects back to the collector (its next full pass walks them again)."""
    gc.unfreeze()
