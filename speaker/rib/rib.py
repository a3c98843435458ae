"""The RIB: Adj-RIBs-In, the Loc-RIB and Adj-RIBs-Out in one object, with no I/O.

Every operation takes decoded messages or values and returns what changed: a list of
:class:`~speaker.rib.events.RouteChange` for the Loc-RIB (what the kernel must follow), and,
on request, UPDATE bytes per peer (:meth:`Rib.flush`).  Time comes from an injected clock,
read once per operation.

Hot path (a 100,000-prefix feed in 306 UPDATEs): per UPDATE the attributes are interned once;
per prefix the work is one path tuple, one Loc-RIB slot looked up (where the peer's previous
path is: the Adj-RIB-In is a view of the Loc-RIB, see :mod:`~speaker.rib.adj_in`), an entry
touched (or created holding its first path inline, lone again once settled: see
:mod:`~speaker.rib.loc_rib`) and put on the dirty list, and one RouteChange when the best path
changes.  A lone path withdrawn just goes, with no entry made.  Selection runs once per
touched prefix per operation, and only where a prefix has more than one path.  A peer's
every path (session down, a graceful restart's mark and sweep) is handled in one walk of the
Loc-RIB (:meth:`~speaker.rib.loc_rib.LocRib.remove_source`, ``mark_stale``), not a lookup per
path; a prefix it alone had just goes, without selection.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from speaker.rib.adj_in import AdjRibIn, PathKey
from speaker.rib.adj_out import AdjRibOut, RefreshAnswer
from speaker.rib.attrs import AttributeSet, IpAddress
from speaker.rib.decision import (
    DEFAULT_MERGE_LIMIT,
    Decision,
    SelectionPolicy,
    decide,
    explain_ecmp,
)
from speaker.rib.events import RouteChange
from speaker.rib.loc_rib import LocEntry, LocRib, Slot, find
from speaker.rib.path import LOCAL_SOURCE_NAMES, Path, PeerInfo, SourceKind
from speaker.rib.policy import ExportDecision, ExportPolicy
from speaker.rib.query import (
    RouteCount,
    RouteView,
    TableCounts,
    count,
    longest_match,
    parse_target,
    route_view,
)
from speaker.wire.attributes import MP_ATTRIBUTE_TYPES, MpReachAttr, MpUnreachAttr
from speaker.wire.context import IPV4_UNICAST, Family, Negotiated
from speaker.wire.enums import Afi
from speaker.wire.messages import Update
from speaker.wire.nlri import V6_FLAG, Nlri, Prefix
from speaker.wire.nlri import prefix_order as _prefix_order

PeerRef = PeerInfo | str
ChangeSink = Callable[[list[RouteChange]], object]
"""Takes a whole-peer operation's changes a slice at a time (the core's kernel follower)."""
SETTLE_SLICE = 4096
_new: Any = tuple.__new__  # builds NamedTuples without their Python-level __new__
_BGP = SourceKind.BGP
_V6 = V6_FLAG  # a prefix at or above it is IPv6 (an int compare, not Prefix.afi)


"""The attribute classes that carry routes of their own (RFC 4760); an UPDATE without any
of them (the IPv4 case) skips the scan for them, by a set test in C."""

class UnknownPeerError(KeyError):
    """An operation named a peer the RIB does not know."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown peer"


class Rib:
    """All routing tables of the speaker.

    ``asn`` and ``router_id`` are ours (used for local sources and eBGP export);
    ``export_policy`` is the default export filter for peers (None: export everything that
    passes split horizon); ``merge_paths``/``merge_limit`` are BIRD's kernel ``merge paths on
    limit N``; ``always_compare_med`` is BIRD's ``med metric``; ``preferences`` overrides
    BIRD's protocol preferences; ``clock`` gives the arrival time of paths.
    """

    def __init__(
        self,
        *,
        asn: int,
        router_id: ipaddress.IPv4Address | str,
        export_policy: ExportPolicy | None = None,
        merge_paths: bool = True,
        merge_limit: int = DEFAULT_MERGE_LIMIT,
        always_compare_med: bool = False,
        preferences: Mapping[SourceKind, int] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.asn = asn
        self.router_id = ipaddress.IPv4Address(router_id)
        self.export_policy = export_policy
        self.selection = SelectionPolicy(
            preferences=dict(preferences) if preferences is not None else None,
            always_compare_med=always_compare_med,
        )
        self.loc = LocRib(self.selection, merge_paths=merge_paths, merge_limit=merge_limit)
        self._clock = clock
        self._in: dict[str, AdjRibIn] = {}
        self._high_water = 0
        """The Loc-RIB's largest size since the last sweep of the attribute sets."""
        self._sweep_due = False
        self._out: dict[str, AdjRibOut] = {}
        self._local: dict[SourceKind, AdjRibIn] = {}
        for kind in (SourceKind.LOCAL, SourceKind.KERNEL, SourceKind.DIRECT):
            info = PeerInfo.local(kind, self.router_id, asn)
            self._local[kind] = self._in[info.name] = AdjRibIn(info, kind, self.loc.entries)

    # ------------------------------------------------------------------ peers

    def add_peer(self, peer: PeerInfo) -> AdjRibIn:
        """Register a BGP peer's Adj-RIB-In (kept if already there, e.g. across a restart).

        A re-registration with changed details (a new router id after a restart) updates
        the peer; its old paths keep the old details until they are refreshed or swept.
        """
        if peer.name in LOCAL_SOURCE_NAMES.values():
            raise ValueError(f"peer name {peer.name!r} is reserved for a local source")
        adj = self._in.get(peer.name)
        if adj is None:
            adj = self._in[peer.name] = AdjRibIn(peer, entries=self.loc.entries)
        else:
            adj.info = peer
        return adj

    def remove_peer(self, peer: PeerRef, each: ChangeSink | None = None) -> list[RouteChange]:
        """Forget a peer: its paths, its Adj-RIB-In and its Adj-RIB-Out."""
        name = self.adj_in(peer).name
        if self._in[name].kind is not _BGP:
            raise ValueError(f"{name} is a local source; it cannot be removed")
        changes = self.drop_peer(peer, each)
        del self._in[name]
        self._out.pop(name, None)
        return changes

    def adj_in(self, peer: PeerRef) -> AdjRibIn:
        """A peer's (or local source's) Adj-RIB-In."""
        name = self._name(peer)
        try:
            return self._in[name]
        except KeyError:
            raise UnknownPeerError(f"no peer named {name!r} in the RIB") from None

    def peers(self) -> list[PeerInfo]:
        """The registered BGP peers."""
        return [a.info for a in self._in.values() if a.kind is _BGP]

    @staticmethod
    def _name(peer: PeerRef) -> str:
        return peer if isinstance(peer, str) else peer.name

    # ------------------------------------------------------------------ Adj-RIB-In

    def apply_update(self, peer: PeerRef, update: Update) -> list[RouteChange]:
        """Apply a decoded UPDATE from ``peer``: withdrawals, then announcements.

        RFC 7606 treat-as-withdraw turns every announced prefix into a withdrawal.
        End-of-RIB carries nothing to apply: the caller sees ``update.end_of_rib()`` and
        calls :meth:`end_of_rib`.
        """
        adj = self._in.get(peer if isinstance(peer, str) else peer.name)  # adj_in(), no calls
        if adj is None:
            adj = self.adj_in(peer)  # raises UnknownPeerError
        reach: MpReachAttr | None = None
        unreach: MpUnreachAttr | None = None
        plain = MP_ATTRIBUTE_TYPES.isdisjoint(map(type, update.attributes))
        if not plain:  # else no MP scan, here or in intern()
            for a in update.attributes:
                if isinstance(a, MpReachAttr):
                    reach = a
                elif isinstance(a, MpUnreachAttr):
                    unreach = a
        dirty: list[Slot] = []
        if update.withdrawn:
            self._withdraw(adj, update.withdrawn, dirty)
        if unreach is not None and unreach.withdrawn:
            self._withdraw(adj, unreach.withdrawn, dirty)
        if update.treat_as_withdraw:
            self._withdraw(adj, update.nlri, dirty)
            if reach is not None:
                self._withdraw(adj, reach.nlri, dirty)
        else:
            now = self._clock()
            if update.nlri:
                attrs = AttributeSet.intern(update.attributes, plain=plain)
                self._announce(adj, update.nlri, attrs, now, dirty)
            if reach is not None and reach.nlri:
                attrs = AttributeSet.intern(update.attributes, reach.next_hops)
                self._announce(adj, reach.nlri, attrs, now, dirty)
        return self._settle_now(dirty)  # _settle(dirty), one call fewer

    def announce(
        self, peer: PeerRef, nlri: Iterable[Nlri], attrs: AttributeSet
    ) -> list[RouteChange]:
        """Store paths for these (prefix, path id) keys with one attribute set."""
        dirty: list[Slot] = []
        self._announce(self.adj_in(peer), nlri, attrs, self._clock(), dirty)
        return self._settle(dirty)

    def withdraw(self, peer: PeerRef, nlri: Iterable[Nlri]) -> list[RouteChange]:
        """Remove the paths stored under these (prefix, path id) keys."""
        dirty: list[Slot] = []
        self._withdraw(self.adj_in(peer), nlri, dirty)
        return self._settle(dirty)

    def _announce(
        self,
        adj: AdjRibIn,
        nlris: Iterable[Nlri],
        attrs: AttributeSet,
        now: float,
        dirty: list[Slot],
    ) -> None:
        loc = self.loc
        entries = loc.entries
        peer = adj.info
        name = peer.name
        kind = adj.kind
        refresh = adj.refresh
        added = added6 = 0
        lone = not loc.dropped(dirty)  # a new prefix's first path goes in lone (see loc_rib)
        for nlri in nlris:
            prefix, path_id = nlri
            slot = entries.get(prefix)
            old: Path | None = None
            if slot is not None:
                prefix = slot.prefix  # one prefix object per prefix: the Loc-RIB's key
                old = find(slot, name, path_id)
            if refresh:
                pending = refresh.get(prefix.afi)
                if pending:
                    pending.discard(nlri)
            if old is not None and old.attrs is attrs and not old.stale and old.peer is peer:
                continue  # the same route again (BIRD ignores it too: rte_same)
            path = _new(Path, (prefix, path_id, attrs, peer, kind, now))
            entry: Slot
            if slot is None:
                entry = entries[prefix] = path if lone else LocEntry(prefix, path)
                if prefix >= _V6:
                    loc.ipv6 += 1
            else:
                entry = slot if isinstance(slot, LocEntry) else loc.entry(prefix)
                if old is None:
                    entry.add(path)
                else:
                    entry.replace(old, path)
            if old is None:
                added += 1
                if prefix >= _V6:
                    added6 += 1
            if not dirty or dirty[-1] is not entry:
                dirty.append(entry)
        adj.count += added
        adj.ipv6 += added6

    def _withdraw(
        self, adj: AdjRibIn, keys: Iterable[PathKey | Path], dirty: list[Slot]
    ) -> None:
        """Remove the source's paths of these (prefix, path id), those it has: NLRI, or its
        paths themselves (no key tuple built per path).  Never after an :meth:`_announce` of
        the same operation: a lone path found is then a settled one, which it may drop."""
        loc = self.loc
        entries = loc.entries
        name = adj.info.name
        refresh = adj.refresh
        for key in keys:
            prefix = key[0]
            path_id = key[1]
            slot = entries.get(prefix)
            if slot is None:
                continue  # withdrawing what was never announced is not an error (RFC 4271 9)
            old = find(slot, name, path_id)
            if old is None:
                continue
            entry: Slot
            if isinstance(slot, LocEntry):
                entry = slot
                slot.remove(old)
            else:  # the prefix's lone path: it goes now, listed to settle, with no entry made
                entry = old  # (dropped: see loc_rib; the table's IPv6 count below)
                del entries[prefix]
            if refresh:
                pending = refresh.get(prefix.afi)
                if pending:
                    pending.discard((prefix, path_id))
            adj.count -= 1
            if prefix >= _V6:
                adj.ipv6 -= 1
                if entry is old:
                    loc.ipv6 -= 1
            if not dirty or dirty[-1] is not entry:
                dirty.append(entry)

    def _settle(self, dirty: list[Slot], each: ChangeSink | None = None) -> list[RouteChange]:
        """The dirty entries' changes; with ``each``, handed to it a slice of at most
        :data:`SETTLE_SLICE` entries at a time as they are settled (``dirty`` emptied as it
        goes), and nothing returned.  A whole peer going thus never holds a change, an old
        path and a kernel intent for each of its routes at once: each slice's are freed
        before the next is made (100,000 routes: the withdrawal's peak was 18 MiB above the
        table's)."""
        if each is None:
            return self._settle_now(dirty)
        while dirty:
            part = dirty[:SETTLE_SLICE]
            del dirty[:SETTLE_SLICE]
            changes = self._settle_now(part)
            if changes:
                each(changes)
        return []

    def _settle_now(self, dirty: list[Slot]) -> list[RouteChange]:
        if not dirty:
            return []
        if self._sweep_due:
            self._sweep_attributes()
        changes = self.loc.settle(dirty)
        for out in self._out.values():
            out.note(dirty, self.loc.entries)
        # the interned attribute sets of routes gone are swept once the table is down to a
        # quarter, at the next RIB step (the caller still holds this step's changes and their
        # paths).  A quarter, not a half: a sweep hashes the sets it keeps (or drops), Python
        # code per attribute, and a whole feed's withdrawal then sweeps a third as much
        size = len(self.loc.entries)
        if size > self._high_water:
            self._high_water = size
        elif size < self._high_water >> 2:
            self._sweep_due = True
        return changes

    def _sweep_attributes(self) -> None:
        AttributeSet.sweep()
        self._sweep_due = False
        self._high_water = len(self.loc.entries)

    # ------------------------------------------------------------------ graceful restart

    def mark_stale(
        self,
        peer: PeerRef,
        families: Iterable[Family] | None = None,
        each: ChangeSink | None = None,
    ) -> list[RouteChange]:
        """The peer's session dropped and it may be restarting (RFC 4724 4.2): keep its paths,
        marked stale.

        If it was already restarting (its paths from the previous restart were never swept:
        a consecutive restart), the paths still stale are deleted first and only the
        refreshed ones are marked, as RFC 4724 and BIRD's ``bgp_handle_graceful_restart`` do.
        """
        adj = self.adj_in(peer)
        afis = None if families is None else {Afi(f[0]) for f in families}
        dirty: list[Slot] = []
        if adj.gr_active:
            self._sweep(adj, afis, dirty)
        if adj.count:  # else no walk of the table
            dirty += self.loc.mark_stale(adj.info.name, afis)
        adj.gr_active = True
        return self._settle(dirty, each)

    def sweep_stale(
        self, peer: PeerRef, family: Family | None = None, each: ChangeSink | None = None
    ) -> list[RouteChange]:
        """End of the restart (End-of-RIB arrived, or the restart timer ran out): delete the
        paths still stale (of ``family``, else of every family)."""
        adj = self.adj_in(peer)
        dirty: list[Slot] = []
        self._sweep(adj, None if family is None else {Afi(family[0])}, dirty)
        if not any(p.stale for p in adj):
            adj.gr_active = False
        return self._settle(dirty, each)

    def end_of_rib(
        self, peer: PeerRef, family: Family = IPV4_UNICAST, each: ChangeSink | None = None
    ) -> list[RouteChange]:
        """The peer's End-of-RIB for a family: ends its graceful restart there (RFC 4724 4.2),
        deleting what it did not announce again.  Nothing happens when it was not restarting."""
        if not self.adj_in(peer).gr_active:
            return []
        return self.sweep_stale(peer, family, each)

    def _sweep(self, adj: AdjRibIn, afis: set[Afi] | None, dirty: list[Slot]) -> None:
        dirty += self._remove_source(adj, stale=True, afis=afis)
        if afis is None:
            adj.gr_active = False

    def drop_peer(self, peer: PeerRef, each: ChangeSink | None = None) -> list[RouteChange]:
        """Remove every path of the peer (session down without graceful restart); with
        ``each``, the changes go to it a slice at a time (:meth:`_settle`)."""
        adj = self.adj_in(peer)
        adj.refresh.clear()
        dirty = self._remove_source(adj)
        adj.gr_active = False
        return self._settle(dirty, each)

    def _remove_source(
        self, adj: AdjRibIn, *, stale: bool | None = None, afis: set[Afi] | None = None
    ) -> list[Slot]:
        """:meth:`_withdraw` for a whole source (its paths ``stale`` or not, those of
        ``afis``) by one walk of the Loc-RIB (:meth:`LocRib.remove_source`); the touched
        entries, to settle."""
        if not adj.count:
            return []
        dirty, removed, removed6 = self.loc.remove_source(
            adj.info.name, stale=stale, afis=afis
        )
        adj.count -= removed
        adj.ipv6 -= removed6
        for afi, pending in adj.refresh.items():  # a route refresh under way: what went
            if pending:  # is no longer awaited
                adj.refresh[afi] = {k for k in pending if adj.lookup(*k) is not None}
        return dirty

    # ------------------------------------------------------------------ route refresh

    def begin_refresh(self, peer: PeerRef, family: Family = IPV4_UNICAST) -> int:
        """BoRR from the peer (RFC 7313 4): its current paths of the family must be announced
        again before EoRR, or they go.  Returns how many paths are awaiting refresh."""
        adj = self.adj_in(peer)
        afi = Afi(family[0])
        adj.refresh[afi] = {(p.prefix, p.path_id) for p in adj if p.prefix.afi is afi}
        return len(adj.refresh[afi])

    def end_refresh(self, peer: PeerRef, family: Family = IPV4_UNICAST) -> list[RouteChange]:
        """EoRR from the peer: remove the paths it did not announce again since BoRR."""
        adj = self.adj_in(peer)
        leftover = adj.refresh.pop(Afi(family[0]), set())
        dirty: list[Slot] = []
        self._withdraw(adj, list(leftover), dirty)
        return self._settle(dirty)

    # ------------------------------------------------------------------ local routes

    def originate(
        self,
        prefix: Prefix | str,
        *,
        kind: SourceKind = SourceKind.LOCAL,
        attrs: AttributeSet | None = None,
        next_hop: IpAddress | str | None = None,
    ) -> list[RouteChange]:
        """Add a local route: one of our blocks (LOCAL, a blackhole), a route learned from the
        kernel (KERNEL) or a connected network (DIRECT)."""
        adj = self._local_source(kind)
        if attrs is None:
            hops = () if next_hop is None else (ipaddress.ip_address(next_hop),)
            attrs = AttributeSet.intern((), hops)
        return self.announce(adj.info, [Nlri(parse_target(prefix), None)], attrs)

    def withdraw_origin(
        self, prefix: Prefix | str, *, kind: SourceKind = SourceKind.LOCAL
    ) -> list[RouteChange]:
        """Remove a local route."""
        adj = self._local_source(kind)
        return self.withdraw(adj.info, [Nlri(parse_target(prefix), None)])

    def set_origins(
        self, prefixes: Iterable[Prefix | str], *, kind: SourceKind = SourceKind.LOCAL
    ) -> list[RouteChange]:
        """Make the local routes of ``kind`` exactly ``prefixes`` (e.g. the node's blocks)."""
        adj = self._local_source(kind)
        want = {parse_target(p) for p in prefixes}
        dirty: list[Slot] = []
        held = sum(1 for p in want if adj.lookup(p, None) is not None)
        if held < len(adj):  # some are no longer wanted: find them (a walk of the table)
            self._withdraw(adj, [p for p in adj if p.prefix not in want], dirty)
        ordered = sorted(want, key=_prefix_order)
        new = [Nlri(p, None) for p in ordered if adj.lookup(p, None) is None]
        self._announce(adj, new, AttributeSet.intern(()), self._clock(), dirty)
        return self._settle(dirty)

    def _local_source(self, kind: SourceKind) -> AdjRibIn:
        if kind is _BGP:
            raise ValueError("BGP routes come from peers: use apply_update or announce")
        return self._local[kind]

    # ------------------------------------------------------------------ Adj-RIB-Out

    def add_out_peer(
        self,
        peer: PeerRef,
        ctx: Negotiated,
        *,
        local_address: IpAddress | str | Iterable[IpAddress | str],
        families: Iterable[Family] | None = None,
        enhanced_refresh: bool | None = None,
        policy: ExportPolicy | None = None,
        next_hop_self: bool = False,
    ) -> AdjRibOut:
        """Start an Adj-RIB-Out for an Established session (replacing any previous one).

        ``ctx`` is the session's negotiated context (add-path send, AS4, message size, and
        by default the families and enhanced route refresh); ``local_address`` our address
        on the session (NEXT_HOP for our routes; give one per family for IPv4 and IPv6).
        """
        info = self.adj_in(peer).info
        out = AdjRibOut(
            info,
            ctx,
            asn=self.asn,
            local_address=local_address,
            families=families,
            policy=policy if policy is not None else self.export_policy,
            enhanced_refresh=enhanced_refresh,
            next_hop_self=next_hop_self,
        )
        self._out[info.name] = out
        return out

    def out_peers(self) -> list[str]:
        """The peers with an Adj-RIB-Out (an Established session)."""
        return list(self._out)

    def remove_out_peer(self, peer: PeerRef) -> None:
        """The session ended: forget what was advertised on it."""
        self._out.pop(self._name(peer), None)

    def adj_out(self, peer: PeerRef) -> AdjRibOut:
        """A peer's Adj-RIB-Out."""
        name = self._name(peer)
        try:
            return self._out[name]
        except KeyError:
            raise UnknownPeerError(f"no Adj-RIB-Out for {name!r}: session not up") from None

    def initial_feed(self, peer: PeerRef) -> list[bytes]:
        """Every route we export to the peer as UPDATEs, ending with End-of-RIB."""
        return self.adj_out(peer).initial_feed(self.loc.entries)

    def flush(self, peer: PeerRef) -> list[bytes]:
        """The pending changes for the peer as UPDATEs (empty before the initial feed)."""
        return self.adj_out(peer).flush(self.loc.entries)

    def flush_all(self) -> dict[str, list[bytes]]:
        """Pending changes of every peer that has some."""
        if self._sweep_due:
            self._sweep_attributes()
        out: dict[str, list[bytes]] = {}
        for name, rib_out in self._out.items():
            msgs = rib_out.flush(self.loc.entries)
            if msgs:
                out[name] = msgs
        return out

    def route_refresh(self, peer: PeerRef, family: Family = IPV4_UNICAST) -> list[bytes]:
        """Answer the peer's ROUTE-REFRESH: the family's routes again (BoRR/EoRR around them
        when enhanced route refresh was negotiated)."""
        return self.adj_out(peer).route_refresh(self.loc.entries, family)

    def refresh(self, peer: PeerRef, family: Family = IPV4_UNICAST) -> RefreshAnswer:
        """:meth:`route_refresh` in parts: pending UPDATEs, the routes, whether to demarcate."""
        return self.adj_out(peer).refresh(self.loc.entries, family)

    def explain_export(
        self, peer: PeerRef, prefix: Prefix | str
    ) -> list[tuple[Path, ExportDecision]]:
        """For each path of ``prefix``: whether it is exported to ``peer``, and why."""
        out = self.adj_out(peer)
        entry = self.loc.get(parse_target(prefix))
        if entry is None:
            return []
        return [(p, out.explain(p)) for p in entry.paths]

    # ------------------------------------------------------------------ queries

    def __len__(self) -> int:
        return len(self.loc)

    def best(self, prefix: Prefix | str) -> Path | None:
        """The best path for exactly this prefix."""
        e = self.loc.get(parse_target(prefix))
        return None if e is None else e.best

    def ecmp(self, prefix: Prefix | str) -> tuple[Path, ...]:
        """The ECMP set (best first) for exactly this prefix."""
        e = self.loc.get(parse_target(prefix))
        return () if e is None else e.ecmp

    def paths(self, prefix: Prefix | str) -> tuple[Path, ...]:
        """Every path for exactly this prefix."""
        e = self.loc.get(parse_target(prefix))
        return () if e is None else tuple(e.paths)

    def decision(self, prefix: Prefix | str) -> Decision:
        """The full selection outcome for a prefix: best, reason, and why each other lost."""
        e = self.loc.get(parse_target(prefix))
        return decide(e.paths if e is not None else (), self.selection)

    def explain_ecmp(self, prefix: Prefix | str) -> list[tuple[Path, str | None]]:
        """For each non-best path: None if it joins the ECMP set, else why not."""
        e = self.loc.get(parse_target(prefix))
        if e is None or e.best is None:
            return []
        return explain_ecmp(e.best, e.paths, self.selection)

    def lookup(self, target: str | Prefix | IpAddress) -> Prefix | None:
        """The longest prefix covering an address or prefix (``show route for``)."""
        e = longest_match(self.loc, parse_target(target))
        return None if e is None else e.prefix

    def show_route(
        self,
        *,
        for_address: str | Prefix | IpAddress | None = None,
        prefix: Prefix | str | None = None,
        source: str | None = None,
    ) -> list[RouteView]:
        """``show route [for ADDR | PREFIX]`` with every path, best and ECMP marked.

        ``for_address`` uses longest-prefix match, ``prefix`` an exact match, ``source``
        keeps prefixes with a path from that peer or local source.
        """
        if for_address is not None:
            e = longest_match(self.loc, parse_target(for_address))
            entries = [] if e is None else [e]
        elif prefix is not None:
            e = self.loc.get(parse_target(prefix))
            entries = [] if e is None else [e]
        else:
            entries = sorted(self.loc, key=lambda x: _prefix_order(x.prefix))
        if source is not None:
            entries = [e for e in entries if any(p.peer.name == source for p in e.paths)]
        return [route_view(e, self.selection) for e in entries]

    def count(self) -> RouteCount:
        """``show route count`` by a walk of the table (every AFI)."""
        return count(self.loc)

    def counts(self, afi: Afi | None = Afi.IPV4) -> TableCounts:
        """One family's table counters (None: both), read in O(sources): what the control
        views show."""
        loc = self.loc
        if afi is None:
            v4, v6 = self.counts(Afi.IPV4), self.counts(Afi.IPV6)
            return TableCounts(v4.networks + v6.networks,
                               _add_counts(v4.paths_by_source, v6.paths_by_source),
                               _add_counts(v4.best_by_source, v6.best_by_source))
        if afi is Afi.IPV4:
            paths = {a.name: n for a in self._in.values() if (n := a.ipv4_count())}
            return TableCounts(loc.ipv4_count(), paths, dict(loc.best_by_source))
        paths = {a.name: a.ipv6 for a in self._in.values() if a.ipv6}
        return TableCounts(loc.ipv6, paths, dict(loc.best_by_source6))

    def __repr__(self) -> str:
        return f"Rib(AS{self.asn}, {len(self.loc)} prefixes, {len(self._out)} sessions)"


def _add_counts(a: Mapping[str, int], b: Mapping[str, int]) -> dict[str, int]:
    out = dict(a)
    for name, n in b.items():
        out[name] = out.get(name, 0) + n
    return out
