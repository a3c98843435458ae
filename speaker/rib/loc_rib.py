"""Loc-RIB: every path per prefix, the best one and the ECMP set, recomputed per touched prefix.

Operations on Adj-RIBs-In put the entries they touch on a *dirty* list (each entry once, by a
flag on the entry); :meth:`LocRib.settle` then recomputes each of them once and reports the
prefixes whose best path or ECMP set changed.  A prefix with a single path (the common case:
each Calico block has one announcer) skips selection entirely.
"""

from __future__ import annotations

from collections.abc import Iterator

from speaker.rib.decision import (
    DEFAULT_MERGE_LIMIT,
    DEFAULT_POLICY,
    BestPathReason,
    SelectionPolicy,
    decide,
    ecmp_set,
)
from speaker.rib.events import RouteChange
from speaker.rib.path import Path, same_paths
from speaker.wire.nlri import Prefix


class LocEntry:
    """One prefix: its paths (from every source), best path and ECMP set."""

    __slots__ = ("best", "dirty", "ecmp", "paths", "prefix")

    def __init__(self, prefix: Prefix) -> None:
        self.prefix = prefix
        self.paths: list[Path] = []
        self.best: Path | None = None
        self.ecmp: tuple[Path, ...] = ()
        self.dirty = False

    def __repr__(self) -> str:
        return f"LocEntry({self.prefix}, {len(self.paths)} paths)"


def replace_path(paths: list[Path], old: Path, new: Path) -> None:
    """Put ``new`` where ``old`` is (found by identity)."""
    for i, p in enumerate(paths):
        if p is old:
            paths[i] = new
            return
    raise KeyError(f"path {old.describe()} is not in the Loc-RIB")


def remove_path(paths: list[Path], old: Path) -> None:
    """Remove ``old`` (found by identity)."""
    for i, p in enumerate(paths):
        if p is old:
            del paths[i]
            return
    raise KeyError(f"path {old.describe()} is not in the Loc-RIB")


class LocRib:
    """The prefix table and the selection settings."""

    def __init__(
        self,
        policy: SelectionPolicy = DEFAULT_POLICY,
        *,
        merge_paths: bool = True,
        merge_limit: int = DEFAULT_MERGE_LIMIT,
    ) -> None:
        if merge_limit < 1:
            raise ValueError(f"merge limit {merge_limit} must be at least 1")
        self.policy = policy
        self.merge_limit = merge_limit if merge_paths else 1
        self.entries: dict[Prefix, LocEntry] = {}

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[LocEntry]:
        return iter(self.entries.values())

    def get(self, prefix: Prefix) -> LocEntry | None:
        """The entry for exactly this prefix."""
        return self.entries.get(prefix)

    def entry(self, prefix: Prefix) -> LocEntry:
        """The entry for this prefix, created if missing."""
        e = self.entries.get(prefix)
        if e is None:
            e = self.entries[prefix] = LocEntry(prefix)
        return e

    def settle(self, dirty: list[LocEntry]) -> list[RouteChange]:
        """Recompute each dirty entry once; return the changes of best path or ECMP set.

        Entries left without paths are removed from the table.
        """
        changes: list[RouteChange] = []
        append = changes.append
        entries = self.entries
        policy = self.policy
        limit = self.merge_limit
        for e in dirty:
            e.dirty = False
            paths = e.paths
            old_best = e.best
            old_ecmp = e.ecmp
            n = len(paths)
            if n == 1:
                only = paths[0]
                e.best = only
                if len(old_ecmp) == 1 and only.same_route(old_best):
                    e.ecmp = (only,)
                    continue
                e.ecmp = single = (only,)
                append(
                    RouteChange(
                        e.prefix, old_best, only, old_ecmp, single, BestPathReason.ONLY_PATH
                    )
                )
            elif n == 0:
                if entries.get(e.prefix) is e:
                    del entries[e.prefix]
                e.best = None
                e.ecmp = ()
                if old_best is not None:
                    append(
                        RouteChange(e.prefix, old_best, None, old_ecmp, (), BestPathReason.NO_PATH)
                    )
            else:
                d = decide(paths, policy)
                best = d.best
                assert best is not None
                ecmp = ecmp_set(best, paths, policy, limit)
                e.best = best
                e.ecmp = ecmp
                if best.same_route(old_best) and same_paths(ecmp, old_ecmp):
                    continue
                append(
                    RouteChange(
                        e.prefix, old_best, best, old_ecmp, ecmp, d.reason, d.runner_up, policy
                    )
                )
        return changes
