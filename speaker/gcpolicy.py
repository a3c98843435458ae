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
* after each collection of the middle or the old generation, *freezes* what survived it
  (:func:`gc.freeze`): those objects are left out of later collections, which then only look
  at what is newer.  A frozen object is still freed by reference counting when its last
  reference goes.  Freezing the middle generation's survivors too keeps the table out of the
  old generation: without it the first full collection after a feed examined all of it (115
  ms, in the middle of the distinct feed's withdrawal; seconds at 1,000,000 routes);
* and, because a *cycle* of frozen objects would never be collected, unfreezes everything
  every ``refreeze_after`` seconds (10 minutes): the next full collection examines the whole
  heap once, collects such cycles, and freezes the survivors again (until it has run, a
  middle-generation collection freezes nothing).

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
    """Thresholds at install; freeze after collections of the older generations; unfreeze now
    and then."""

    def __init__(self, *, refreeze_after: float = REFREEZE_AFTER,
                 thresholds: tuple[int, int, int] = THRESHOLDS) -> None:
        self.refreeze_after = refreeze_after
        self.thresholds = thresholds
        self.stats = GcStats()
        self._seen = (0, 0)
        """(gen1, gen2) collections counted at the last tick."""
        self._unfrozen_at: float | None = None
        self._awaiting_full = False
        """Unfrozen, and no full collection since: freezing now would hide cycles again."""

    def install(self, now: float) -> None:
        """Set the thresholds; the first unfreeze comes ``refreeze_after`` from ``now``."""
        gc.set_threshold(*self.thresholds)
        gc.freeze()  # what start-up made (modules, classes, the config) lives as long as we do
        self.stats.freezes += 1
        self._seen = _collections()
        self._unfrozen_at = now

    def tick(self, now: float) -> None:
        """Freeze after a collection of the middle or old generation since the last tick (only
        after a full one while awaiting it); unfreeze when ``refreeze_after`` has passed since
        the last unfreeze."""
        if self._unfrozen_at is None:
            self._unfrozen_at = now
        seen = _collections()
        middle, full = seen[0] != self._seen[0], seen[1] != self._seen[1]
        self._seen = seen
        if full or (middle and not self._awaiting_full):
            self._awaiting_full = False
            gc.freeze()  # O(1): the generations' lists are spliced onto the permanent one
            self.stats.freezes += 1
        elif now - self._unfrozen_at >= self.refreeze_after:
            self._unfrozen_at = now
            self._awaiting_full = True
            gc.unfreeze()  # O(1) too; gc.get_freeze_count() would walk the list
            self.stats.unfreezes += 1


def _collections() -> tuple[int, int]:
    """How many gen1 and gen2 collections the interpreter has run (automatic or collect())."""
    stats = gc.get_stats()
    return int(stats[1]["collections"]), int(stats[2]["collections"])
