"""Adj-RIB-In: the paths one peer (or local source) gave us, found by (prefix, path id).

The table is keyed by the prefix alone, and the key object is the Loc-RIB's own prefix (see
:meth:`~speaker.rib.rib.Rib.apply_update`): one prefix object per prefix, shared by the
Loc-RIB entry, its paths and every Adj-RIB-In, and no per-route key (a decoded ``Nlri`` kept
per route cost 56 bytes).  The value is the path, which carries its add-path identifier; only
a peer that sends two or more paths for one prefix (RFC 7911, different path identifiers)
gets a small dict ``{path id: path}`` for that prefix.  BIRD with ``add paths`` sends one per
route that passes its export filter: in a Calico mesh, one per prefix.

The store also carries the peer's refresh state: graceful restart (RFC 4724: all paths
marked stale when the session drops, swept at End-of-RIB or when the restart timer runs out)
and enhanced route refresh (RFC 7313: the paths present at BoRR are swept at EoRR unless the
peer re-announced them).  The :class:`~speaker.rib.rib.Rib` performs these operations and
keeps the Loc-RIB in step.
"""

from __future__ import annotations

from collections.abc import Iterator

from speaker.rib.path import Path, PeerInfo, SourceKind
from speaker.wire.enums import Afi
from speaker.wire.nlri import Nlri, Prefix

PathKey = tuple[Prefix, int | None]
"""What identifies a path within one source: (prefix, path id), as an ``Nlri`` is."""

Slot = Path | dict[int | None, Path]
"""A prefix's value in the table: its path, or its paths by path id when there are several."""


class AdjRibIn:
    """The paths of one source, and its graceful-restart and route-refresh state."""

    __slots__ = ("count", "gr_active", "info", "ipv6", "kind", "refresh", "table")

    def __init__(self, info: PeerInfo, kind: SourceKind = SourceKind.BGP) -> None:
        self.info = info
        self.kind = kind
        self.table: dict[Prefix, Slot] = {}
        """Per prefix, its path (or its paths by path id): see the module's docstring."""
        self.count = 0
        """How many paths the table holds (kept by the Rib as paths come and go)."""
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
        for slot in self.table.values():
            if isinstance(slot, dict):
                yield from slot.values()
            else:
                yield slot

    def __contains__(self, nlri: object) -> bool:
        """Whether a path is stored under this NLRI's (prefix, path id)."""
        return isinstance(nlri, Nlri) and self.lookup(nlri.prefix, nlri.path_id) is not None

    def get(self, nlri: Nlri) -> Path | None:
        """The path stored under this (prefix, path id), if any."""
        return self.lookup(nlri.prefix, nlri.path_id)

    def lookup(self, prefix: Prefix, path_id: int | None) -> Path | None:
        """The path stored under (prefix, path id), if any."""
        slot = self.table.get(prefix)
        if slot is None:
            return None
        if isinstance(slot, dict):
            return slot.get(path_id)
        return slot if slot.path_id == path_id else None

    def paths(self) -> list[Path]:
        """Every path, as a list (safe to hold while the table changes)."""
        return list(self)

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
