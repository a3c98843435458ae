"""Adj-RIB-Out: what we advertise to one peer, and the UPDATE bytes that get it there.

Changes are not encoded as they happen: the Loc-RIB marks touched prefixes *pending*, and
:meth:`AdjRibOut.flush` recomputes each pending prefix once against the current Loc-RIB, so a
prefix that changes three times between flushes costs one UPDATE entry (coalescing), and
prefixes that end up with the same exported attributes share UPDATEs (BIRD's buckets).

With add-path send negotiated for the family (RFC 7911) every exportable path of a prefix is
advertised, each under a path identifier we allocate per prefix: the smallest number not in
use for that prefix, kept while the path stays advertised, reused by its withdrawal, and not
handed to another path within the flush that withdraws it.  Without add-path only the best
path is considered; if the export filter rejects it, the prefix is withdrawn (BIRD does not
fall back to the second best).

Exported attributes follow BIRD 1.6 (``bgp_create_attrs`` / ``bgp_update_attrs``,
proto/bgp/attrs.c) and its captures: for a route we originate, towards an iBGP peer,
ORIGIN IGP, an empty AS_PATH, NEXT_HOP = our address on the session, LOCAL_PREF 100, in
type-code order (mesh-restart.tshark.txt, frame 14).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from speaker.rib.attrs import AS4_ATTRIBUTES, AttributeSet, IpAddress
from speaker.rib.loc_rib import LocEntry, Slot
from speaker.rib.path import Path, PeerInfo, SourceKind
from speaker.rib.policy import AcceptAllPolicy, ExportDecision, ExportPolicy, ExportStep, Verdict
from speaker.wire.attributes import (
    AsPathAttr,
    AsPathSegment,
    LocalPrefAttr,
    MpReachAttr,
    MpUnreachAttr,
    NextHopAttr,
    OriginAttr,
    PathAttribute,
    UnknownAttr,
)
from speaker.wire.context import IPV4_UNICAST, Family, Negotiated
from speaker.wire.enums import (
    Afi,
    AsPathSegmentType,
    AttrType,
    Origin,
    RouteRefreshSubtype,
    Safi,
)
from speaker.wire.messages import (
    HEADER_SIZE,
    RouteRefresh,
    Update,
    pack_updates,
    pack_withdrawals,
)
from speaker.wire.nlri import V6_FLAG, Nlri, Prefix
from speaker.wire.nlri import prefix_order as _prefix_order

PathKey = tuple[str, int | None]
DEFAULT_LOCAL_PREF = 100
_ATTR_CACHE_LIMIT = 4096
_IPV4, _IPV6 = Afi.IPV4, Afi.IPV6


class Advertised(NamedTuple):
    """One route in the Adj-RIB-Out: prefix, our path identifier (None without add-path),
    and the attributes sent."""

    prefix: Prefix
    path_id: int | None
    attrs: AttributeSet


def _nlri_size(prefix: Prefix, addpath: bool) -> int:
    return (5 if addpath else 1) + ((prefix.length + 7) >> 3)


class RefreshAnswer(NamedTuple):
    """What a ROUTE-REFRESH is answered with (RFC 2918, RFC 7313)."""

    pending: list[bytes]
    """UPDATEs of changes not yet flushed, sent before the refresh."""
    routes: list[bytes]
    """The family's advertised routes again."""
    demarcate: bool
    """Enhanced route refresh: the routes go between BoRR and EoRR."""


class AdjRibOut:
    """The routes advertised to one peer in one session, and the pending changes."""

    def __init__(
        self,
        peer: PeerInfo,
        ctx: Negotiated,
        *,
        asn: int,
        local_address: IpAddress | str | Iterable[IpAddress | str],
        families: Iterable[Family] | None = None,
        policy: ExportPolicy | None = None,
        enhanced_refresh: bool | None = None,
        next_hop_self: bool = False,
    ) -> None:
        self.peer = peer
        self.ctx = ctx
        self.asn = asn
        addresses = (
            [local_address]
            if isinstance(local_address, (str, ipaddress.IPv4Address, ipaddress.IPv6Address))
            else list(local_address)
        )
        self.local_addresses: dict[int, IpAddress] = {}
        for a in addresses:
            ip = ipaddress.ip_address(a)
            self.local_addresses.setdefault(ip.version, ip)
        if families is None:  # what the session negotiated, unicast only
            families = sorted(f for f in ctx.families if f[1] == Safi.UNICAST)
        self.families = tuple(families)
        for fam in self.families:
            if fam[1] != Safi.UNICAST:
                raise ValueError(f"family {fam}: only unicast families are supported")
        self._afis = frozenset(Afi(f[0]) for f in self.families)
        self._addpath = {afi: (afi, Safi.UNICAST) in ctx.addpath_send for afi in self._afis}
        self.policy: ExportPolicy = policy if policy is not None else AcceptAllPolicy()
        self.enhanced_refresh = (
            ctx.enhanced_route_refresh if enhanced_refresh is None else enhanced_refresh
        )
        self.next_hop_self = next_hop_self
        self.internal = peer.internal
        self.pending: dict[Prefix, None] = {}
        self._multi: dict[Prefix, dict[PathKey, tuple[int, AttributeSet]]] = {}
        self._single: dict[Prefix, AttributeSet] = {}
        self._cache: dict[tuple[AttributeSet, bool, Afi], AttributeSet | None] = {}
        self.feed_done = False
        """True once the initial feed (ending with End-of-RIB) was produced."""
        self.updates_sent = 0

    # ------------------------------------------------------------------ export decision

    @property
    def name(self) -> str:
        """The peer's name."""
        return self.peer.name

    def addpath(self, afi: Afi = Afi.IPV4) -> bool:
        """True if we send path identifiers for this family (RFC 7911)."""
        return self._addpath.get(afi, False)

    def candidate(self, path: Path) -> bool:
        """The cheap checks BIRD makes before the export filter: family, not back to the
        source peer, iBGP split horizon."""
        if path.prefix.afi not in self._afis:
            return False
        peer = path.peer
        if peer.name == self.peer.name:
            return False
        return not (
            path.source is SourceKind.BGP
            and peer.internal
            and self.internal
            and not (peer.rr_client or self.peer.rr_client)
        )

    def explain(self, path: Path) -> ExportDecision:
        """Why ``path`` is (not) exported to this peer: the deciding step."""
        if path.peer.name == self.peer.name:
            return ExportDecision(Verdict.REJECT, ExportStep.SOURCE_PEER)
        if path.prefix.afi not in self._afis:
            return ExportDecision(Verdict.REJECT, ExportStep.FAMILY)
        if not self.candidate(path):
            return ExportDecision(Verdict.REJECT, ExportStep.SPLIT_HORIZON)
        return self.policy.explain(path.prefix, path, internal_peer=self.internal)

    def export_attrs(self, path: Path) -> AttributeSet | None:
        """The attributes sent for ``path`` (None if it cannot be sent: no next hop)."""
        bgp = path.source is SourceKind.BGP
        key = (path.attrs, bgp, path.prefix.afi)
        try:
            return self._cache[key]
        except KeyError:
            pass
        made = self._make_attrs(path.attrs, bgp, path.prefix.afi)
        if len(self._cache) >= _ATTR_CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = made
        return made

    def _make_attrs(self, attrs: AttributeSet, bgp: bool, afi: Afi) -> AttributeSet | None:
        v4 = afi is Afi.IPV4
        ours = self.local_addresses.get(4 if v4 else 6)
        drop: list[int] = [*AS4_ATTRIBUTES]
        put: list[PathAttribute] = []
        # Unknown attributes (RFC 4271 5, 9.1.3): non-transitive ones are not passed on,
        # transitive ones go on with the Partial bit set.
        for a in attrs.attributes:
            if isinstance(a, UnknownAttr):
                passed = a.for_propagation()
                if passed is None:
                    drop.append(a.type_code)
                elif passed is not a:
                    put.append(passed)
        hops: tuple[IpAddress, ...] | None = None
        if not bgp or not self.internal or self.next_hop_self:
            if ours is None:
                return None
            hops = (ours,)
            if v4:
                assert isinstance(ours, ipaddress.IPv4Address)
                put.append(NextHopAttr(ours))
        elif not attrs.next_hops:
            return None
        if not v4:
            drop.append(AttrType.NEXT_HOP)  # IPv6 next hops travel in MP_REACH_NLRI
        if not bgp:
            put.append(OriginAttr(attrs.origin if attrs.origin is not None else Origin.IGP))
            segs: tuple[AsPathSegment, ...] = ()
            if not self.internal:
                segs = (AsPathSegment(AsPathSegmentType.AS_SEQUENCE, (self.asn,)),)
            put.append(AsPathAttr(segs))
            drop += [AttrType.ORIGINATOR_ID, AttrType.CLUSTER_LIST]
        elif not self.internal:
            put.append(AsPathAttr(_prepend(attrs.as_path or (), self.asn)))
            # MED is not passed to another AS (RFC 4271 5.1.4); RR attributes stay inside
            drop += [AttrType.MULTI_EXIT_DISC, AttrType.ORIGINATOR_ID, AttrType.CLUSTER_LIST]
        if self.internal:
            if attrs.local_pref is None:
                put.append(LocalPrefAttr(DEFAULT_LOCAL_PREF))
        else:
            drop.append(AttrType.LOCAL_PREF)  # not sent to eBGP peers (RFC 4271 5.1.5)
        return attrs.replace(put=put, drop=drop, next_hops=hops)

    def _desired(self, entry: Slot | None, addpath: bool) -> list[tuple[Path, AttributeSet]]:
        if entry is None:
            return []
        if not isinstance(entry, LocEntry):  # a lone path: the only one, and the best
            cands: Iterable[Path] = (entry,)
        elif addpath:
            cands = entry.paths
        elif entry.best is not None:
            cands = (entry.best,)
        else:
            return []
        out: list[tuple[Path, AttributeSet]] = []
        internal = self.internal
        for p in cands:
            if not self.candidate(p):
                continue
            if not self.policy.explain(p.prefix, p, internal_peer=internal).accepted:
                continue
            attrs = self.export_attrs(p)
            if attrs is not None:
                out.append((p, attrs))
        return out

    # ------------------------------------------------------------------ pending changes

    def note(self, touched: Iterable[Slot], entries: Mapping[Prefix, Slot]) -> None:
        """Mark the touched prefixes that may concern this peer as pending: settled entries,
        or lone paths, which stand for what ``entries``, the table, holds for their prefix
        now (a lone path listed to settle is a previous one)."""
        pending = self.pending
        multi = self._multi
        single = self._single
        afis = self._afis
        addpath = self._addpath  # keyed by every family of _afis
        name = self.peer.name
        for e in touched:
            prefix = e.prefix
            afi = _IPV6 if prefix >= V6_FLAG else _IPV4  # prefix.afi, without the call
            if prefix in pending or afi not in afis:
                continue
            if prefix in single or (multi and prefix in multi):
                pending[prefix] = None
                continue
            if not isinstance(e, LocEntry):  # a lone path listed: the prefix as it is now
                now = entries.get(prefix)
                if now is None:
                    continue
                e = now
            if addpath[afi] and isinstance(e, LocEntry):
                cands: Iterable[Path] = e.paths
            else:
                best = e.best if isinstance(e, LocEntry) else e  # a lone path is the best
                # the peer's own route (a feed from our only peer): never sent back to it,
                # candidate()'s first refusal, without the call
                if best is None or best.peer.name == name:
                    continue
                cands = (best,)
            for p in cands:
                if self.candidate(p):
                    pending[prefix] = None
                    break

    def flush(self, entries: Mapping[Prefix, Slot], *, ordered: bool = False) -> list[bytes]:
        """Encode the pending changes as UPDATE messages (withdrawals first).

        Returns nothing before the initial feed: :meth:`initial_feed` sends everything.
        """
        if not self.pending or not self.feed_done:
            return []
        return self._flush(entries, ordered)

    def _flush(self, entries: Mapping[Prefix, Slot], ordered: bool) -> list[bytes]:
        withdraw: dict[Afi, list[Nlri]] = {}
        announce: dict[tuple[Afi, AttributeSet], list[Nlri]] = {}
        prefixes: Iterable[Prefix] = (
            sorted(self.pending, key=_prefix_order) if ordered else self.pending
        )
        for prefix in prefixes:
            afi = prefix.afi
            addpath = self._addpath.get(afi, False)
            desired = self._desired(entries.get(prefix), addpath)
            if addpath:
                self._diff_multi(prefix, desired, withdraw, announce)
            else:
                self._diff_single(prefix, desired, withdraw, announce)
        self.pending.clear()
        return self._encode(withdraw, announce)

    def _diff_single(
        self,
        prefix: Prefix,
        desired: list[tuple[Path, AttributeSet]],
        withdraw: dict[Afi, list[Nlri]],
        announce: dict[tuple[Afi, AttributeSet], list[Nlri]],
    ) -> None:
        cur = self._single.get(prefix)
        if desired:
            attrs = desired[0][1]
            if attrs is not cur:
                self._single[prefix] = attrs
                announce.setdefault((prefix.afi, attrs), []).append(Nlri(prefix, None))
        elif cur is not None:
            del self._single[prefix]
            withdraw.setdefault(prefix.afi, []).append(Nlri(prefix, None))

    def _diff_multi(
        self,
        prefix: Prefix,
        desired: list[tuple[Path, AttributeSet]],
        withdraw: dict[Afi, list[Nlri]],
        announce: dict[tuple[Afi, AttributeSet], list[Nlri]],
    ) -> None:
        cur = self._multi.get(prefix, {})
        want = {p.key: attrs for p, attrs in desired}
        kept: dict[PathKey, tuple[int, AttributeSet]] = {}
        used: set[int] = set()
        for key, (pid, attrs) in cur.items():
            used.add(pid)  # withdrawn ids are not handed out again in this flush
            new = want.get(key)
            if new is None:
                withdraw.setdefault(prefix.afi, []).append(Nlri(prefix, pid))
                continue
            kept[key] = (pid, new)
            if new is not attrs:
                announce.setdefault((prefix.afi, new), []).append(Nlri(prefix, pid))
        nxt = 1
        for key, attrs in want.items():
            if key in kept:
                continue
            while nxt in used:
                nxt += 1
            used.add(nxt)
            kept[key] = (nxt, attrs)
            announce.setdefault((prefix.afi, attrs), []).append(Nlri(prefix, nxt))
        if kept:
            self._multi[prefix] = kept
        else:
            self._multi.pop(prefix, None)

    # ------------------------------------------------------------------ encoding

    def _encode(
        self,
        withdraw: Mapping[Afi, list[Nlri]],
        announce: Mapping[tuple[Afi, AttributeSet], list[Nlri]],
    ) -> list[bytes]:
        out: list[bytes] = []
        ctx = self.ctx
        for afi, nlris in withdraw.items():
            if afi is Afi.IPV4:
                out += pack_withdrawals(nlris, ctx)
            else:
                out += self._pack_mp(afi, None, nlris)
        for (afi, attrs), nlris in announce.items():
            if afi is Afi.IPV4:
                out += pack_updates(attrs.attributes, nlris, ctx)
            else:
                out += self._pack_mp(afi, attrs, nlris)
        self.updates_sent += len(out)
        return out

    def _pack_mp(self, afi: Afi, attrs: AttributeSet | None, nlris: list[Nlri]) -> list[bytes]:
        """MP_REACH_NLRI / MP_UNREACH_NLRI UPDATEs (RFC 4760), MP_REACH last as bird6 sends it."""
        ctx = self.ctx
        addpath = (afi, Safi.UNICAST) in ctx.addpath_send
        if attrs is None:
            base: tuple[PathAttribute, ...] = ()
            overhead = 4 + 3  # attribute header (extended length) + AFI/SAFI
        else:
            base = attrs.attributes
            overhead = sum(len(a.encode(ctx)) for a in base) + 4 + 5 + 16 * len(attrs.next_hops)
        room = ctx.max_message_size - HEADER_SIZE - 4 - overhead
        out: list[bytes] = []
        chunk: list[Nlri] = []
        size = 0
        for n in nlris:
            s = _nlri_size(n.prefix, addpath)
            if chunk and size + s > room:
                out.append(self._mp_message(afi, attrs, base, chunk))
                chunk = []
                size = 0
            chunk.append(n)
            size += s
        if chunk:
            out.append(self._mp_message(afi, attrs, base, chunk))
        return out

    def _mp_message(
        self,
        afi: Afi,
        attrs: AttributeSet | None,
        base: tuple[PathAttribute, ...],
        chunk: list[Nlri],
    ) -> bytes:
        if attrs is None:
            update = Update(attributes=(MpUnreachAttr(afi, Safi.UNICAST, tuple(chunk)),))
        else:
            reach = MpReachAttr(afi, Safi.UNICAST, attrs.next_hops, tuple(chunk))
            update = Update(attributes=(*base, reach))
        return update.encode(self.ctx)

    def end_of_rib(self, family: Family = IPV4_UNICAST) -> bytes:
        """The End-of-RIB marker for a family (RFC 4724 2)."""
        return Update.end_of_rib_marker(family).encode(self.ctx)

    # ------------------------------------------------------------------ feeds

    def initial_feed(self, entries: Mapping[Prefix, Slot]) -> list[bytes]:
        """Everything we export to this peer, then End-of-RIB for each family."""
        self.note(entries.values(), entries)
        out = self._flush(entries, ordered=True) if self.pending else []
        out += [self.end_of_rib(f) for f in self.families]
        self.updates_sent += len(self.families)
        self.feed_done = True
        return out

    def refresh(
        self, entries: Mapping[Prefix, Slot], family: Family = IPV4_UNICAST
    ) -> RefreshAnswer:
        """The answer to a ROUTE-REFRESH (RFC 2918): pending changes first, then the family's
        routes again; ``demarcate`` says to put them between BoRR and EoRR (RFC 7313)."""
        afi = Afi(family[0])
        pending = self._flush(entries, ordered=False) if self.pending else []
        announce: dict[tuple[Afi, AttributeSet], list[Nlri]] = {}
        for route in self.advertised(afi):
            announce.setdefault((afi, route.attrs), []).append(Nlri(route.prefix, route.path_id))
        self.feed_done = True
        return RefreshAnswer(pending, self._encode({}, announce), self.enhanced_refresh)

    def route_refresh(
        self, entries: Mapping[Prefix, Slot], family: Family = IPV4_UNICAST
    ) -> list[bytes]:
        """:meth:`refresh` as encoded messages, BoRR/EoRR included."""
        answer = self.refresh(entries, family)
        if not answer.demarcate:
            return answer.pending + answer.routes
        afi = Afi(family[0])
        borr = RouteRefresh(afi, Safi.UNICAST, RouteRefreshSubtype.BORR).encode(self.ctx)
        eorr = RouteRefresh(afi, Safi.UNICAST, RouteRefreshSubtype.EORR).encode(self.ctx)
        return [*answer.pending, borr, *answer.routes, eorr]

    # ------------------------------------------------------------------ queries

    def advertised(self, afi: Afi | None = None) -> list[Advertised]:
        """The routes currently advertised, in prefix order."""
        out: list[Advertised] = []
        for prefix, attrs in self._single.items():
            if afi is None or prefix.afi is afi:
                out.append(Advertised(prefix, None, attrs))
        for prefix, paths in self._multi.items():
            if afi is None or prefix.afi is afi:
                out.extend(Advertised(prefix, pid, attrs) for pid, attrs in paths.values())
        out.sort(key=lambda r: (_prefix_order(r.prefix), r.path_id or 0))
        return out

    def path_id(self, prefix: Prefix, key: PathKey) -> int | None:
        """The identifier we advertise a path under (add-path), if advertised."""
        entry = self._multi.get(prefix, {}).get(key)
        return None if entry is None else entry[0]

    def __len__(self) -> int:
        return len(self._single) + sum(len(v) for v in self._multi.values())

    def __repr__(self) -> str:
        return f"AdjRibOut({self.peer.name}, {len(self)} routes, {len(self.pending)} pending)"


def _prepend(segments: tuple[AsPathSegment, ...], asn: int) -> tuple[AsPathSegment, ...]:
    """Our AS in front of the path (RFC 4271 5.1.2), a new segment when the first is full."""
    if segments and segments[0].type is AsPathSegmentType.AS_SEQUENCE:
        first = segments[0]
        if len(first.asns) < 255:
            return (AsPathSegment(AsPathSegmentType.AS_SEQUENCE, (asn, *first.asns)), *segments[1:])
    return (AsPathSegment(AsPathSegmentType.AS_SEQUENCE, (asn,)), *segments)
