"""Adj-RIB-In: the paths one peer (or local source) gave us, found by (prefix, path id).

The paths are not stored twice: like BIRD, which keeps no import table unless asked to, a
source's paths are those of the Loc-RIB whose source is that peer (matched by name: a peer
re-registered with new details keeps its old paths).  Looking one up is a Loc-RIB lookup and
a look at the prefix's paths (one, almost always); listing a source's paths walks the
Loc-RIB, which only the operations on a whole peer do (session down, graceful restart, route
refresh).  That saves a dict slot per route (52 bytes at 100,000 routes) and a store per
announced prefix.  Two paths for one prefix with different path identifiers are two paths
(RFC 7911; BIRD with ``add paths`` sends one per route that passes its export filter).

The store also carries the peer's counts and refresh state: graceful restart (RFC 4724: all
paths marked stale when the session drops, swept at End-of-RIB or when the restart timer runs
out) and enhanced route refresh (RFC 7313: the paths present at BoRR are swept at EoRR unless
the peer re-announced them).  The :class:`~speaker.rib.rib.Rib` performs these operations and
keeps the counts.
"""

from __future__ import annotations

from collections.abc import Iterator

from speaker.rib.loc_rib import Slot, find, held
from speaker.rib.path import Path, PeerInfo, SourceKind
from speaker.wire.enums import Afi
from speaker.wire.nlri import Nlri, Prefix

PathKey = tuple[Prefix, int | None]
"""What identifies a path within one source: (prefix, path id), as an ``Nlri`` is."""


class AdjRibIn:
    """The paths of one source (a view of the Loc-RIB), its counts and its graceful-restart
    and route-refresh state."""

    __slots__ = ("count", "entries", "gr_active", "info", "ipv6", "kind", "refresh")

    def __init__(
        self,
        info: PeerInfo,
        kind: SourceKind = SourceKind.BGP,
        entries: dict[Prefix, Slot] | None = None,
    ) -> None:
        self.info = info
        self.kind = kind
        self.entries: dict[Prefix, Slot] = {} if entries is None else entries
        """The Loc-RIB's table, where this source's paths are."""
        self.count = 0
        """How many paths the source has (kept by the Rib as paths come and go)."""
        self.ipv6 = 0
        """How many of the paths are IPv6 (kept by the Rib as paths come and go; only IPv4
        and IPv6 are decoded): the IPv4 count the views show is ``count - ipv6``, without a
        walk."""
        self.gr_active = False
        """True between mark_stale and the sweep that ends the restart (RFC 4724 4.2)."""
        self.refresh: dict[Afi, set[PathKey]] = {}
        """Per family, the (prefix, path id) announced before BoRR and not re-announced since
        (RFC 7313)."""

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[Path]:
        """The source's paths, by a walk of the Loc-RIB: take a list before changing it."""
        if not self.count:
            return
        name = self.info.name
        for e in self.entries.values():
            p = held(e)  # not e.paths: no tuple or entry per prefix on a walk of the table
            if p is None:
                continue
            if isinstance(p, list):
                for q in p:
                    if q.peer.name == name:
                        yield q
            elif p.peer.name == name:
                yield p

    def __contains__(self, nlri: object) -> bool:
        """Whether the source has a path for this NLRI's (prefix, path id)."""
        return isinstance(nlri, Nlri) and self.lookup(nlri.prefix, nlri.path_id) is not None

    def get(self, nlri: Nlri) -> Path | None:
        """The source's path for this (prefix, path id), if any."""
        return self.lookup(nlri.prefix, nlri.path_id)

    def lookup(self, prefix: Prefix, path_id: int | None) -> Path | None:
        """The source's path for (prefix, path id), if any."""
        e = self.entries.get(prefix)
        return None if e is None else find(e, self.info.name, path_id)

    @property
    def name(self) -> str:
        """The source's name (``Mesh_192_168_0_82``, ``static1``)."""
        return self.info.name

    def ipv4_count(self) -> int:
        """How many paths are IPv4 (O(1))."""
        return self.count - self.ipv6

    def stale_count(self) -> int:
        """How many paths are stale (graceful restart)."""
        return sum(1 for p in self if p.stale)

    def refresh_pending(self, afi: Afi = Afi.IPV4) -> int:
        """How many paths a running enhanced route refresh has not yet seen again."""
        return len(self.refresh.get(afi, ()))

    def __repr__(self) -> str:
        return f"AdjRibIn({self.info.name}, {self.count} paths)"
