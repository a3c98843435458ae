"""Loc-RIB: every path per prefix, the best one and the ECMP set, recomputed per touched prefix.

The table maps a prefix to a *lone path* -- the :class:`Path` itself, when it is the prefix's
only path and its best (the common case: each Calico block has one announcer) -- or to a
:class:`LocEntry`, which holds several paths, or a prefix being changed.  A lone path costs
no entry object (64 bytes a prefix: 6.4 MB at 100,000 routes).  Between operations a lone
path is its prefix's settled best.  An operation *adds* a new prefix's first path as a lone
path, and lists the path to settle; one that adds or replaces a path of a lone path's prefix
first makes it an entry (:meth:`LocRib.entry`); one that removes a lone path *drops* it: the
prefix goes from the table at once, the path is listed.  :meth:`LocRib.settle` tells a new
lone path from a dropped one by whether the table still holds it, and puts a prefix left
with one path (its best) back as a lone path.  An operation that dropped a lone path adds no
new one (it makes an entry: :meth:`LocRib.dropped`), as the dropped path's settling would
take the new one for its replacement.  Readers get entries: :meth:`LocRib.get` and iteration
make a detached one for a lone path.

Operations on Adj-RIBs-In put the entries they touch on a *dirty* list; :meth:`LocRib.settle`
then recomputes each of them and reports the prefixes whose best path or ECMP set changed.
The list is kept by the operation, not by a flag on every entry of the table (a fifth slot:
16 bytes a prefix), and is not a set (a dict by ``id`` costs some 80 bytes a touched entry
while it lives: 8 MB when a peer's 100,000 routes go at once).  The walks over a whole source
(:meth:`LocRib.remove_source`, :meth:`LocRib.mark_stale`) change lone paths in place and list
the old lone path instead of an entry, so a peer's 100,000 routes going at once make no entry
each.  An entry touched again right after itself (the path ids of one prefix) is listed once;
one touched again later is listed twice, which settling tolerates: it is idempotent.  A prefix
with a single path skips selection entirely.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Iterator, Sequence

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
from speaker.wire.nlri import V6_FLAG, Prefix

_V6 = V6_FLAG  # a prefix at or above it is IPv6 (an int compare, not Prefix.afi)
_NO_PATH = BestPathReason.NO_PATH  # module globals: an enum member's lookup is slow on 3.11
_ONLY_PATH = BestPathReason.ONLY_PATH


class LocEntry:
    """One prefix: its paths (from every source), best path and ECMP set.

    The table holds one only where a prefix has more than a lone best path (see the module
    docstring), or while it is being changed.  A single path is still held inline, not in a
    list, and an ECMP set that is just the best path is not stored but derived (``_ecmp``
    None): no per-prefix list or 1-tuple.  A list appears with the second path and goes with
    the last but one.  Four slots: 64 bytes an entry (a fifth would cost 16 more).
    """

    __slots__ = ("_ecmp", "_paths", "best", "prefix")

    def __init__(self, prefix: Prefix, path: Path | None = None, best: Path | None = None) -> None:
        self.prefix = prefix
        self._paths: Path | list[Path] | None = path
        """None, the only path, or a list of two or more paths."""
        self.best: Path | None = best
        self._ecmp: tuple[Path, ...] | None = None
        """The ECMP set when it is more than ``(best,)`` (or ``()`` without a best path)."""

    @property
    def paths(self) -> Sequence[Path]:
        """Every path of the prefix (a tuple for one path; do not modify)."""
        p = self._paths
        if p is None:
            return ()
        return p if isinstance(p, list) else (p,)

    @property
    def ecmp(self) -> tuple[Path, ...]:
        """The ECMP set, best first (``(best,)`` unless selection merged more paths)."""
        e = self._ecmp
        if e is not None:
            return e
        best = self.best
        return () if best is None else (best,)

    def __len__(self) -> int:
        p = self._paths
        return 0 if p is None else len(p) if isinstance(p, list) else 1

    def find(self, source: str, path_id: int | None) -> Path | None:
        """The path from the source of this name with this path id, if any."""
        return find(self, source, path_id)

    def add(self, path: Path) -> None:
        """Add a path (from a source or path id the entry does not have yet)."""
        p = self._paths
        if p is None:
            self._paths = path
        elif isinstance(p, list):
            p.append(path)
        else:
            self._paths = [p, path]

    def replace(self, old: Path, new: Path) -> None:
        """Put ``new`` where ``old`` is (found by identity)."""
        p = self._paths
        if p is old:
            self._paths = new
            return
        if isinstance(p, list):
            for i, q in enumerate(p):
                if q is old:
                    p[i] = new
                    return
        raise KeyError(f"path {old.describe()} is not in the Loc-RIB")

    def remove(self, old: Path) -> None:
        """Remove ``old`` (found by identity); the last path but one goes back inline."""
        p = self._paths
        if p is old:
            self._paths = None
            return
        if isinstance(p, list):
            for i, q in enumerate(p):
                if q is old:
                    del p[i]
                    if len(p) == 1:
                        self._paths = p[0]
                    return
        raise KeyError(f"path {old.describe()} is not in the Loc-RIB")

    def __repr__(self) -> str:
        return f"LocEntry({self.prefix}, {len(self)} paths)"


Slot = LocEntry | Path
"""What the table holds for a prefix: a lone path (its only one, and its best) or an entry."""


def held(slot: Slot) -> Path | list[Path] | None:
    """A slot's paths as an entry holds them: None, one path, or a list of two or more (a
    walk of the table reads them so, without a tuple or an entry per prefix)."""
    return slot._paths if isinstance(slot, LocEntry) else slot


def find(slot: Slot, source: str, path_id: int | None) -> Path | None:
    """The slot's path from the source of this name with this path id, if any."""
    p = slot._paths if isinstance(slot, LocEntry) else slot  # held(), without the call
    if p is None:
        return None
    if isinstance(p, list):
        for q in p:
            if q.path_id == path_id and q.peer.name == source:
                return q
        return None
    return p if p.path_id == path_id and p.peer.name == source else None


def lone(path: Path) -> LocEntry:
    """An entry for a lone path: its prefix's only path and best."""
    return LocEntry(path.prefix, path, path)


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
        self.entries: dict[Prefix, Slot] = {}
        """Per prefix, its lone path or its entry (see the module docstring)."""
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
        """Every prefix's entry (a detached one for a lone path: read it, do not change it)."""
        for s in self.entries.values():
            yield s if isinstance(s, LocEntry) else lone(s)

    def get(self, prefix: Prefix) -> LocEntry | None:
        """The entry for exactly this prefix (a detached one for a lone path: read only)."""
        s = self.entries.get(prefix)
        return s if s is None or isinstance(s, LocEntry) else lone(s)

    def entry(self, prefix: Prefix) -> LocEntry:
        """The table's entry for this prefix, to change: created if missing, made of the lone
        path if there is one (:meth:`settle` makes it lone again)."""
        s = self.entries.get(prefix)
        if isinstance(s, LocEntry):
            return s
        if s is None:
            if prefix >= _V6:
                self.ipv6 += 1
            e = self.entries[prefix] = LocEntry(prefix)
        else:
            e = self.entries[prefix] = lone(s)
        return e

    def ipv4_count(self) -> int:
        """How many IPv4 prefixes the table holds (O(1))."""
        return len(self.entries) - self.ipv6

    def remove_source(
        self, name: str, *, stale: bool | None = None, afis: Container[Afi] | None = None
    ) -> tuple[list[Slot], int, int]:
        """Take the paths of one source out of the table (those ``stale`` or not, those of
        ``afis``; None: all) in one walk: a peer's every route going at once (session down,
        the end of a graceful restart) costs no list of its paths and no lookup per path.

        Returns the touched entries and removed lone paths, to :meth:`settle` (which drops
        the entries left empty), and how many paths went, and how many of them IPv6.
        """
        dirty: list[Slot] = []
        removed = removed6 = 0
        entries = self.entries
        for e in entries.values():
            if not isinstance(e, LocEntry):
                if e.peer.name != name or not _chosen(e, name, stale, afis):
                    continue
                n = 1  # the prefix goes, after the walk
            elif isinstance(p := e._paths, list):
                keep = [q for q in p if not _chosen(q, name, stale, afis)]
                n = len(p) - len(keep)
                if not n:
                    continue
                e._paths = keep if len(keep) > 1 else keep[0] if keep else None
            elif p is not None and p.peer.name == name and _chosen(p, name, stale, afis):
                e._paths = None
                n = 1
            else:
                continue
            removed += n
            if e.prefix >= _V6:
                removed6 += n
            dirty.append(e)
        if removed:  # the lone paths' prefixes (a dict cannot shrink while walked)
            for e in dirty:
                if not isinstance(e, LocEntry):
                    del entries[prefix := e.prefix]
                    if prefix >= _V6:
                        self.ipv6 -= 1
        return dirty, removed, removed6

    def dropped(self, dirty: Iterable[Slot]) -> bool:
        """Whether the operation of this dirty list dropped a lone path (it lists one that
        the table no longer holds): it may then add no lone path (see the module
        docstring)."""
        entries = self.entries
        return any(not isinstance(e, LocEntry) and entries.get(e.prefix) is not e
                   for e in dirty)

    def mark_stale(self, name: str, afis: Container[Afi] | None = None) -> list[Slot]:
        """Replace the source's fresh paths (of ``afis``; None: all) by stale copies, in one
        walk (graceful restart: a peer's every route at once).  The touched entries, and the
        lone paths replaced (their copies are lone in their place), to :meth:`settle`."""
        dirty: list[Slot] = []
        entries = self.entries
        for prefix, e in entries.items():
            if not isinstance(e, LocEntry):
                if e.peer.name != name or not _chosen(e, name, False, afis):
                    continue
                entries[prefix] = e.marked_stale()  # a new value, not a new key: walk goes on
            elif isinstance(p := e._paths, list):
                touched = False
                for i, q in enumerate(p):
                    if _chosen(q, name, False, afis):
                        p[i] = q.marked_stale()
                        touched = True
                if not touched:
                    continue
            elif p is not None and p.peer.name == name and _chosen(p, name, False, afis):
                e._paths = p.marked_stale()
            else:
                continue
            dirty.append(e)
        return dirty

    def settle(self, dirty: Iterable[Slot]) -> list[RouteChange]:
        """Recompute each dirty entry; return the changes of best path or ECMP set (one per
        entry: an entry listed twice has nothing left to report the second time).

        Entries left without paths are removed from the table, those left with one path
        (their best) are replaced by it.  A lone path listed is settled against what the
        table holds now: it is new if the table holds it (a prefix's first path, added),
        else the prefix's previous best, dropped or replaced by a whole-source walk (see the
        module docstring).
        """
        changes: list[RouteChange] = []
        append = changes.append
        entries = self.entries
        policy = self.policy
        limit = self.merge_limit
        by_source = self.best_by_source
        by_source6 = self.best_by_source6
        for e in dirty:
            if not isinstance(e, LocEntry):  # a lone path (inlined: a feed or a walk lists
                prefix = e.prefix  # a peer's every route so)
                now = entries.get(prefix)
                if now is e:  # new: the prefix's first path (_count_best, the change inlined)
                    counts = by_source if prefix < _V6 else by_source6
                    name = e.peer.name
                    counts[name] = counts.get(name, 0) + 1
                    append(RouteChange(prefix, None, e, (), (e,), _ONLY_PATH))
                elif now is None:  # dropped
                    _uncount(by_source if prefix < _V6 else by_source6, e.peer.name)
                    append(RouteChange(prefix, e, None, (e,), (), _NO_PATH))
                elif isinstance(now, LocEntry):  # an entry made for the prefix since, listed
                    # after: it reports the change, from the previous best: this dropped
                    # path, or none for a new one the entry was made of
                    now.best = None if now.best is e else e
                    now._ecmp = None
                else:  # replaced by a walk
                    if now.peer is not e.peer:
                        _count_best(by_source, by_source6, e, now)
                    if not now.same_route(e):
                        append(RouteChange(prefix, e, now, (e,), (now,), _ONLY_PATH))
                continue
            paths = e._paths
            old_best = e.best
            old_ecmp = e._ecmp  # None: (old_best,), or () without one
            if paths is None:  # the prefix goes (a peer's every route, at session down)
                prefix = e.prefix
                v4 = prefix < _V6
                if entries.get(prefix) is e:
                    del entries[prefix]
                    if not v4:
                        self.ipv6 -= 1
                if old_best is not None:
                    e.best = None
                    e._ecmp = None
                    _uncount(by_source if v4 else by_source6, old_best.peer.name)
                    was = (old_best,) if old_ecmp is None else old_ecmp
                    append(RouteChange(prefix, old_best, None, was, (), _NO_PATH))
            elif not isinstance(paths, list):
                only = paths
                e.best = only
                e._ecmp = None
                # lone again (the table's entry, or one this settle already made lone)
                entries[e.prefix] = only
                if old_best is None:  # a new prefix (a feed): _count_best and the change inlined
                    counts = by_source if e.prefix < _V6 else by_source6
                    name = only.peer.name
                    counts[name] = counts.get(name, 0) + 1
                    append(RouteChange(e.prefix, None, only, (), (only,), _ONLY_PATH))
                    continue
                if old_best.peer is not only.peer:
                    _count_best(by_source, by_source6, old_best, only)
                if old_ecmp is None and only.same_route(old_best):
                    continue
                was = () if old_best is None else (old_best,) if old_ecmp is None else old_ecmp
                append(
                    RouteChange(e.prefix, old_best, only, was, (only,), _ONLY_PATH)
                )
            else:
                many = paths
                d = decide(many, policy)
                best = d.best
                assert best is not None
                ecmp = ecmp_set(best, many, policy, limit)
                e.best = best
                e._ecmp = None if len(ecmp) == 1 else ecmp  # (best,) is derived
                if old_best is None or old_best.peer is not best.peer:
                    _count_best(by_source, by_source6, old_best, best)
                was = () if old_best is None else (old_best,) if old_ecmp is None else old_ecmp
                if best.same_route(old_best) and same_paths(ecmp, was):
                    continue
                append(
                    RouteChange(
                        e.prefix, old_best, best, was, ecmp, d.reason, d.runner_up, policy
                    )
                )
        return changes


def _chosen(path: Path, name: str, stale: bool | None, afis: Container[Afi] | None) -> bool:
    """Whether a path is the named source's, ``stale`` or not (None: either), of ``afis``
    (None: any family): what the walks over a whole source pick."""
    return (
        path.peer.name == name
        and (stale is None or path.stale == stale)
        and (afis is None or path.prefix.afi in afis)
    )


def _count_best(by_source: dict[str, int], by_source6: dict[str, int], old: Path | None,
                new: Path | None) -> None:
    """A prefix's best path moved from ``old``'s source to ``new``'s (IPv4 and IPv6 are
    counted apart, as BIRD 1.6's two daemons count them)."""
    path = old if old is not None else new
    if path is None:
        return
    if path.prefix >= _V6:
        by_source = by_source6
    if old is not None:
        _uncount(by_source, old.peer.name)
    if new is not None:
        name = new.peer.name
        by_source[name] = by_source.get(name, 0) + 1


def _uncount(counts: dict[str, int], name: str) -> None:
    """One best path fewer for the source ``name`` (its key goes with its last)."""
    left = counts[name] - 1
    if left:
        counts[name] = left
    else:
        del counts[name]
