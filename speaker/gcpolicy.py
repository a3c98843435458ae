"""The cyclic garbage collector, tuned for a daemon that holds a large routing table.

CPython's collector examines every container object of a generation each time it collects
it.  A 100,000-route table is about a million such objects (paths, entries, attribute sets),
nearly all of them alive until their route is withdrawn -- and freed then by reference
counting, not by the collector, since routes form no cycles.  With the interpreter's defaults
that table is rescanned over and over; with one large young generation a single collection
holds the event loop for 100-200 ms in the middle of a feed (measured: the distinct feed's
slowest control answer), and a full collection at 1,000,000 routes takes seconds.

So the daemon
* makes the young generation large (fewer collections of short-lived decoding garbage) and
  the middle one small (a collection of it examines at most ``2 x 20,000`` objects);
* after each full collection, *freezes* what survived it (:func:`gc.freeze`): those objects
  are left out of later collections, which then only look at what is newer.  A frozen object
  is still freed by reference counting when its last reference goes;
* and, because a *cycle* of frozen objects would never be collected, unfreezes everything
  every ``refreeze_after`` seconds (10 minutes): the next full collection examines the whole
  heap once, collects such cycles, and freezes the survivors again.

:class:`GcPolicy` holds no clock and no loop: the asyncio layer calls :meth:`tick` four times a
second with the time (a tick is a few attribute reads: no count of the frozen objects, which
``gc.get_freeze_count()`` would walk).
"""

from __future__ import annotations

import gc
from dataclasses import dataclass

THRESHOLDS = (20_000, 2, 10)
"""gen0: collect after 20,000 net allocations of containers (the default 700 made a 100k
feed spend 40% more CPU in the collector); gen1 after 2 gen0 collections; gen2 considered
after 10 gen1 collections (and CPython's own rule: only once the objects waiting for it are a
quarter of those that survived the last one)."""

REFREEZE_AFTER = 600.0


@dataclass(slots=True)
class GcStats:
    """What the policy did: ``show``-able counters."""

    freezes: int = 0
    unfreezes: int = 0


class GcPolicy:
    """Thresholds at install; freeze after full collections; unfreeze now and then."""

    def __init__(self, *, refreeze_after: float = REFREEZE_AFTER,
                 thresholds: tuple[int, int, int] = THRESHOLDS) -> None:
        self.refreeze_after = refreeze_after
        self.thresholds = thresholds
        self.stats = GcStats()
        self._full_seen = 0
        self._unfrozen_at: float | None = None

    def install(self, now: float) -> None:
        """Set the thresholds; the first unfreeze comes ``refreeze_after`` from ``now``."""
        gc.set_threshold(*self.thresholds)
        gc.freeze()  # what start-up made (modules, classes, the config) lives as long as we do
        self.stats.freezes += 1
        self._full_seen = _full_collections()
        self._unfrozen_at = now

    def tick(self, now: float) -> None:
        """Freeze after a full collection that happened since the last tick; unfreeze when
        ``refreeze_after`` has passed since the last unfreeze."""
        if self._unfrozen_at is None:
            self._unfrozen_at = now
        full = _full_collections()
        if full != self._full_seen:
            self._full_seen = full
            gc.freeze()  # O(1): the generations' lists are spliced onto the permanent one
            self.stats.freezes += 1
        elif now - self._unfrozen_at >= self.refreeze_after:
            self._unfrozen_at = now
            gc.unfreeze()  # O(1) too; gc.get_freeze_count() would walk the list
            self.stats.unfreezes += 1


def _full_collections() -> int:
    """How many gen2 collections the interpreter has run (automatic or gc.collect())."""
    return int(gc.get_stats()[2]["collections"])
