"""Adj-RIB-In: the paths one peer (or local source) gave us, keyed by (prefix, path id).

The key is the codec's :class:`~speaker.wire.nlri.Nlri` itself (prefix and add-path
identifier), so storing a decoded UPDATE allocates nothing but the paths.  Two paths for one
prefix with different path identifiers are two entries (RFC 7911; BIRD with ``add paths``
sends one per route that passes its export filter).

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
from speaker.wire.nlri import Nlri


class AdjRibIn:
    """The paths of one source, and its graceful-restart and route-refresh state."""

    __slots__ = ("gr_active", "info", "ipv6", "kind", "paths", "refresh")

    def __init__(self, info: PeerInfo, kind: SourceKind = SourceKind.BGP) -> None:
        self.info = info
        self.kind = kind
        self.paths: dict[Nlri, Path] = {}
        self.ipv6 = 0
        """How many of ``paths`` are IPv6 (kept by the Rib as paths come and go; only IPv4
        and IPv6 are decoded): the IPv4 count the views show is ``len(paths) - ipv6``,
        without a walk."""
        self.gr_active = False
        """True between mark_stale and the sweep that ends the restart (RFC 4724 4.2)."""
        self.refresh: dict[Afi, set[Nlri]] = {}
        """Per family, the keys announced before BoRR and not re-announced since (RFC 7313)."""

    def __len__(self) -> int:
        return len(self.paths)

    def __iter__(self) -> Iterator[Path]:
        return iter(self.paths.values())

    def __contains__(self, nlri: object) -> bool:
        return nlri in self.paths

    def get(self, nlri: Nlri) -> Path | None:
        """The path stored under this (prefix, path id), if any."""
        return self.paths.get(nlri)

    @property
    def name(self) -> str:
        """The source's name (``Mesh_192_168_0_82``, ``static1``)."""
        return self.info.name

    def ipv4_count(self) -> int:
        """How many paths are IPv4 (O(1))."""
        return len(self.paths) - self.ipv6

    def stale_count(self) -> int:
        """How many paths are stale (graceful restart)."""
        return sum(1 for p in self.paths.values() if p.stale)

    def refresh_pending(self, afi: Afi = Afi.IPV4) -> int:
        """How many paths a running enhanced route refresh has not yet seen again."""
        return len(self.refresh.get(afi, ()))

    def __repr__(self) -> str:
        return f"AdjRibIn({self.info.name}, {len(self.paths)} paths)"
