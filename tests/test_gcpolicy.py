"""speaker/gcpolicy.py: thresholds, a freeze after each full collection, an unfreeze now and
then so that cycles among frozen objects are collected after all."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from speaker.gcpolicy import THRESHOLDS, GcPolicy


@pytest.fixture(autouse=True)
def _restore_gc() -> Iterator[None]:
    old = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*old)


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def _cycle() -> tuple[list[_Node], weakref.ref[_Node]]:
    """Two nodes referring to each other (held by the list until the caller drops it), and a
    weak reference that tells when the collector has freed them."""
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    return [a, b], weakref.ref(a)


def test_install_sets_the_thresholds() -> None:
    GcPolicy().install(0.0)
    assert gc.get_threshold() == THRESHOLDS


def test_a_full_collection_is_followed_by_a_freeze_at_the_next_tick() -> None:
    policy = GcPolicy(refreeze_after=600.0)
    policy.install(0.0)
    assert policy.stats.freezes == 1  # start-up's objects, at install
    policy.tick(1.0)
    assert policy.stats.freezes == 1  # no full collection since
    kept = [_Node() for _ in range(1000)]
    gc.unfreeze()
    gc.collect()
    policy.tick(2.0)
    assert policy.stats.freezes == 2
    assert gc.get_freeze_count() >= len(kept)
    policy.tick(3.0)
    assert policy.stats.freezes == 2  # once per full collection


def test_frozen_objects_are_still_freed_by_reference_counting() -> None:
    policy = GcPolicy()
    policy.install(0.0)
    node = _Node()
    ref = weakref.ref(node)
    gc.collect()
    policy.tick(1.0)
    assert gc.get_freeze_count() > 0 and ref() is node
    del node
    assert ref() is None  # no cycle: gone at once, frozen or not


def test_a_frozen_cycle_is_collected_after_the_unfreeze() -> None:
    policy = GcPolicy(refreeze_after=10.0)
    policy.install(0.0)
    pair, ref = _cycle()
    gc.collect()
    policy.tick(1.0)  # the cycle is frozen with everything else
    del pair
    gc.collect()
    assert ref() is not None  # frozen: the collector does not see it
    policy.tick(5.0)  # that collection was a full one too: frozen again, not unfrozen
    assert policy.stats.freezes == 3
    assert policy.stats.unfreezes == 0 and ref() is not None
    policy.tick(11.0)  # refreeze_after passed: everything goes back to the collector
    assert policy.stats.unfreezes == 1 and gc.get_freeze_count() == 0
    gc.collect()
    assert ref() is None
    policy.tick(12.0)  # and what survived that collection is frozen again
    assert policy.stats.freezes == 4 and gc.get_freeze_count() > 0


def test_a_middle_generation_collection_is_followed_by_a_freeze() -> None:
    policy = GcPolicy(refreeze_after=600.0)
    policy.install(0.0)
    kept = [_Node() for _ in range(1000)]
    gc.collect(1)  # the table's newest objects survive into the old generation...
    policy.tick(1.0)
    assert policy.stats.freezes == 2  # ...and are frozen there: no full collection sees them
    assert gc.get_freeze_count() >= len(kept)
    assert gc.get_count()[2] == 0 and len(gc.get_objects(generation=2)) == 0


def test_after_an_unfreeze_only_a_full_collection_freezes_again() -> None:
    policy = GcPolicy(refreeze_after=10.0)
    policy.install(0.0)
    pair, ref = _cycle()
    gc.collect(1)
    policy.tick(1.0)  # frozen with the middle generation's survivors
    del pair
    policy.tick(11.0)
    assert policy.stats.unfreezes == 1 and gc.get_freeze_count() == 0
    gc.collect(1)
    policy.tick(12.0)  # a middle collection before the full one: nothing frozen
    assert policy.stats.freezes == 2 and gc.get_freeze_count() == 0
    gc.collect()  # the full collection finds the cycle that was frozen
    assert ref() is None
    policy.tick(13.0)
    assert policy.stats.freezes == 3
    gc.collect(1)
    policy.tick(14.0)  # and middle collections freeze again
    assert policy.stats.freezes == 4
