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
from speaker.wire.enums import Afi
from speaker.wire.nlri import Prefix

_IPV4 = Afi.IPV4


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
        self.best_by_source: dict[str, int] = {}
        """IPv4 prefixes whose best path comes from each source (peer or local source
        name), kept as entries settle: ``show protocols all``'s "preferred" without a walk."""
        self.best_by_source6: dict[str, int] = {}
        """The same for the IPv6 prefixes."""
        self.ipv6 = 0
        """IPv6 entries (kept as entries come and go; the rest are IPv4, the only other family
        decoded)."""

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
            if prefix.afi is not _IPV4:
                self.ipv6 += 1
        return e

    def ipv4_count(self) -> int:
        """How many IPv4 prefixes the table holds (O(1))."""
        return len(self.entries) - self.ipv6

    def settle(self, dirty: list[LocEntry]) -> list[RouteChange]:
        """Recompute each dirty entry once; return the changes of best path or ECMP set.

        Entries left without paths are removed from the table.
        """
        changes: list[RouteChange] = []
        append = changes.append
        entries = self.entries
        policy = self.policy
        limit = self.merge_limit
        by_source = self.best_by_source
        by_source6 = self.best_by_source6
        for e in dirty:
            e.dirty = False
            paths = e.paths
            old_best = e.best
            old_ecmp = e.ecmp
            n = len(paths)
            if n == 1:
                only = paths[0]
                e.best = only
                if old_best is None or old_best.peer is not only.peer:
                    _count_best(by_source, by_source6, old_best, only)
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
                    if e.prefix.afi is not _IPV4:
                        self.ipv6 -= 1
                e.best = None
                e.ecmp = ()
                if old_best is not None:
                    _count_best(by_source, by_source6, old_best, None)
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
                if old_best is None or old_best.peer is not best.peer:
                    _count_best(by_source, by_source6, old_best, best)
                if best.same_route(old_best) and same_paths(ecmp, old_ecmp):
                    continue
                append(
                    RouteChange(
                        e.prefix, old_best, best, old_ecmp, ecmp, d.reason, d.runner_up, policy
                    )
                )
        return changes


def _count_best(by_source: dict[str, int], by_source6: dict[str, int], old: Path | None,
                new: Path | None) -> None:
    """A prefix's best path moved from ``old``'s source to ``new``'s (IPv4 and IPv6 are
    counted apart, as BIRD 1.6's two daemons count them)."""
    path = old if old is not None else new
    if path is None:
        return
    if path.prefix.afi is not _IPV4:
        by_source = by_source6
    if old is not None:
        name = old.peer.name
        left = by_source[name] - 1
        if left:
            by_source[name] = left
        else:
            del by_source[name]
    if new is not None:
        name = new.peer.name
        by_source[name] = by_source.get(name, 0) + 1
