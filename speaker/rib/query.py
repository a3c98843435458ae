"""Read-only views of the Loc-RIB for the control socket: ``show route [all] [for ADDR]``,
``show route count``.

Views are plain frozen values built on request, so the control socket never holds a
reference into the live tables.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from speaker.rib.attrs import AttributeSet
from speaker.rib.decision import DEFAULT_POLICY, BestPathReason, SelectionPolicy, decide
from speaker.rib.loc_rib import LocEntry, LocRib
from speaker.rib.path import Path, SourceKind
from speaker.wire.enums import Afi
from speaker.wire.nlri import Prefix

_BITS = {Afi.IPV4: 32, Afi.IPV6: 128}


@dataclass(frozen=True, slots=True)
class PathView:
    """One path as ``show route`` lists it, with its marks.

    ``reason``: for the best path, the step that made it best; for the others, the step that
    eliminated them.  ``preference`` is BIRD's protocol preference (the ``(100)`` column).
    """

    path: Path
    best: bool
    ecmp: bool
    reason: BestPathReason
    preference: int

    @property
    def source_name(self) -> str:
        """The source's name, as in ``[Mesh_192_168_0_82 13:34:33]``."""
        return self.path.peer.name

    @property
    def since(self) -> float:
        """When the path arrived."""
        return self.path.since

    @property
    def attrs(self) -> AttributeSet:
        """The path's attributes."""
        return self.path.attrs

    def bird_line(self) -> str:
        """``via 192.168.0.82 [Mesh_192_168_0_82 from 192.168.0.82] * (100/0) [i]``-like."""
        p = self.path
        star = " *" if self.best else ""
        frm = "" if p.peer.address is None else f" from {p.peer.address}"
        stale = " (stale)" if p.stale else ""
        pid = "" if p.path_id is None else f" path-id {p.path_id}"
        if p.source is SourceKind.BGP:
            med = p.attrs.med if p.attrs.med is not None else 0
            origin = "?" if p.attrs.origin is None else "ie?"[int(p.attrs.origin)]
            tail = f" ({self.preference}/{med}) [{origin}]"
        else:
            tail = f" ({self.preference})"
        return f"{p.via} [{p.peer.name}{frm}{pid}]{star}{tail}{stale}"


@dataclass(frozen=True, slots=True)
class RouteView:
    """One prefix: every path, best first, then the others, closest competitor first."""

    prefix: Prefix
    paths: tuple[PathView, ...]

    @property
    def best(self) -> PathView | None:
        """The best path, if any."""
        for v in self.paths:
            if v.best:
                return v
        return None

    @property
    def ecmp(self) -> tuple[PathView, ...]:
        """The paths in the ECMP set."""
        return tuple(v for v in self.paths if v.ecmp)


@dataclass(frozen=True, slots=True)
class RouteCount:
    """``show route count``: paths, prefixes, and how the paths divide among sources."""

    paths: int
    networks: int
    by_source: Mapping[str, int]

    def describe(self) -> str:
        """``5 of 5 routes for 4 networks`` (BIRD's wording)."""
        return f"{self.paths} of {self.paths} routes for {self.networks} networks"


@dataclass(frozen=True, slots=True)
class TableCounts:
    """The IPv4 table's counters, kept as the RIB changes (O(sources) to read, no walk):
    prefixes, paths per source, prefixes whose best path is each source's."""

    networks: int
    paths_by_source: Mapping[str, int]
    best_by_source: Mapping[str, int]

    @property
    def paths(self) -> int:
        """Every path of every prefix."""
        return sum(self.paths_by_source.values())

    def route_count(
        self, protocol: str | None = None, primary: bool = False
    ) -> tuple[int, int, int]:
        """``show route [primary] count [protocol P]``: (shown, examined, networks), as
        BIRD counts them: the routes examined are every path (only the best one per prefix
        with ``primary``), the shown ones those of ``protocol`` among them."""
        per_source = self.best_by_source if primary else self.paths_by_source
        examined = self.networks if primary else self.paths
        shown = examined if protocol is None else per_source.get(protocol, 0)
        return shown, examined, self.networks


def route_view(entry: LocEntry, policy: SelectionPolicy = DEFAULT_POLICY) -> RouteView:
    """The view of one Loc-RIB entry."""
    best = entry.best
    ecmp = set(map(id, entry.ecmp))
    decision = decide(entry.paths, policy)
    lost = {id(p): r for p, r in decision.losers}
    order: list[Path] = []
    if best is not None:
        order.append(best)
    order += [p for p, _ in reversed(decision.losers) if p is not best]  # runner-up first
    order += [p for p in entry.paths if p is not best and id(p) not in lost]
    views = tuple(
        PathView(
            path=p,
            best=p is best,
            ecmp=id(p) in ecmp,
            reason=decision.reason if p is best else lost.get(id(p), decision.reason),
            preference=policy.preference(p),
        )
        for p in order
    )
    return RouteView(entry.prefix, views)


def parse_target(target: str | Prefix | ipaddress.IPv4Address | ipaddress.IPv6Address) -> Prefix:
    """An address (as a host prefix) or a prefix, from text or objects."""
    if isinstance(target, Prefix):
        return target
    if isinstance(target, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return Prefix.from_network(ipaddress.ip_network(target))
    try:
        if "/" in target:
            return Prefix.parse(target)
        return Prefix.from_network(ipaddress.ip_network(target))
    except ValueError as exc:
        raise ValueError(f"not an address or prefix: {target!r} ({exc})") from None


def longest_match(loc: LocRib, target: Prefix) -> LocEntry | None:
    """The most specific entry covering ``target`` (BIRD's ``show route for``)."""
    afi, addr, most = target.parts
    bits = _BITS[afi]
    for length in range(most, -1, -1):
        mask = ((1 << length) - 1) << (bits - length)
        e = loc.get(Prefix(afi, addr & mask, length))
        if e is not None:
            return e
    return None


def count(entries: Iterable[LocEntry]) -> RouteCount:
    """Paths and prefixes in the table."""
    paths = 0
    networks = 0
    by_source: dict[str, int] = {}
    for e in entries:
        networks += 1
        paths += len(e.paths)
        for p in e.paths:
            by_source[p.peer.name] = by_source.get(p.peer.name, 0) + 1
    return RouteCount(paths, networks, dict(sorted(by_source.items())))
