"""The pure reconciler: wanted routes + the kernel's table + the phase -> changes to make.

No sockets, no clock (``now`` is passed in), no callbacks: it fills two outboxes (events and
learned-route changes) that the asyncio bridge drains, so every rule of BIRD's ``protocol
kernel`` can be unit-tested against a fake FIB.  The rules (``sysdep/unix/krt.c``):

* only routes carrying our protocol number are ever written or deleted; routes of other
  protocols are "alien": learned (when ``learn``), never touched, and if one holds the very
  key we would write (same prefix, tos 0, default metric) we do not overwrite it (BLOCKED);
* ``proto kernel`` and ``proto redirect`` routes are never learned;
* at start-up our routes found in the kernel are adopted; an adopted route that no peer has
  confirmed yet (the RIB has not wanted it in this run) is not deleted before
  :meth:`Reconciler.converge` (BIRD's graceful-restart wait for the RIB to fill), after
  which routes of ours that are not wanted are swept;
* every other route of ours that is not wanted is deleted at once, before convergence too: a
  route we installed in this run and a peer then withdrew, an adopted route a peer confirmed
  and then withdrew (BIRD 1.6.8 does the same: ``krt_rt_notify`` deletes whatever it has
  exported, ``KRF_INSTALLED``, at once; only never-exported routes wait for ``krt_prune``),
  and a route of ours that appeared after start-up without being asked for;
* a wanted route already identical in the kernel is not rewritten (no churn on restart);
* before convergence an adopted route is not replaced by one with a strict subset of its
  next hops: while the RIB refills, a multipath route must not shrink to the paths of the
  peers that happened to come back first (BIRD holds all kernel writes until then);
* a scan (:meth:`Reconciler.load`) is authoritative: routes of ours deleted or altered outside
  the speaker are restored ("reinstalled"), failed writes are retried once per scan;
* changes are coalesced per prefix: ``want``/``unwant`` only mark the prefix dirty, and
  :meth:`Reconciler.plan` computes the change from the latest state when it gets there.

Every prefix is an int key (:func:`~speaker.kernel.model.prefix_key`) from the core's intents
to the packed request and back from the monitor and the dumps; ``ipaddress`` networks are
built only for events and ``show kernel``.
"""

from __future__ import annotations

import errno
import os
import sys
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from enum import IntEnum, StrEnum
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from itertools import islice
from typing import NamedTuple

from speaker.kernel.codec import (
    FibRoute,
    Interner,
    NextHop,
    RouteDump,
    addr_key,
    sort_nexthops,
    with_key,
)
from speaker.kernel.model import (
    BLACKHOLE,
    LEARNABLE_TYPES,
    RTPROT_KERNEL,
    RTPROT_REDIRECT,
    V6_FLAG,
    InstalledRoute,
    IPAddress,
    IPNetwork,
    KernelConfig,
    KernelEvent,
    KernelEventKind,
    KernelIntent,
    KernelRoute,
    KernelSnapshot,
    KernelSnapshotEntry,
    LearnedRoute,
    RouteState,
    RouteType,
    key_network,
    key_order,
    network_key,
)
from speaker.kernel.resolve import Resolver

#: OpResult.error for a request the kernel never answered (socket overrun): outcome unknown.
UNKNOWN_OUTCOME = -1
#: Routes folded in per step of :meth:`Reconciler.load_steps` (a few ms each).
LOAD_STEP = 8192
#: ``_ours`` is copied into a dict of its size when its table is larger than this many
#: bytes and holds fewer entries than one per this many bytes (see :meth:`Reconciler.apply`)
_OURS_ROOM = 1 << 16
_OURS_SPARSE = 256

_PROTO_NAMES = {1: "redirect", 2: "kernel", 3: "boot", 4: "static", 12: "bird", 186: "bgp"}


def proto_name(proto: int) -> str:
    """``static``, ``boot``... as ``ip route`` prints them, else the number."""
    return _PROTO_NAMES.get(proto, str(proto))


class Phase(StrEnum):
    """Before convergence our unwanted routes are kept; after it they are swept."""

    ADOPTING = "adopting"
    CONVERGED = "converged"


class OpKind(IntEnum):
    """What a planned change does in the kernel."""

    ADD = 1  # NLM_F_CREATE|NLM_F_EXCL: fails rather than overwrite an unknown route
    REPLACE = 2  # NLM_F_CREATE|NLM_F_REPLACE: only where our own route is known present
    DELETE = 3


class Op(NamedTuple):
    """One planned change; ``route`` is the full route for ADD/REPLACE, the victim for DELETE.
    ``body`` is the route's interned body (:func:`~speaker.kernel.codec.body`) when the
    planner has it: what the reconciler keeps of a route once it is written."""

    kind: OpKind
    route: FibRoute
    cause: KernelEventKind
    reason: str
    body: FibRoute | None = None


class OpResult(NamedTuple):
    """The kernel's answer to one Op: errno 0 = done."""

    op: Op
    error: int
    message: str = ""


OthersSlot = dict[tuple[int, int], FibRoute]  # (tos, metric) -> route

_KIND_NAME = {kind: kind.value for kind in KernelEventKind}  # .value is slow on 3.11
#: Routine per-route outcomes (logged at DEBUG): counted always, published as events only
#: when someone reads them (``Reconciler.route_events``).
_ROUTINE = frozenset({
    KernelEventKind.ADOPTED, KernelEventKind.INSTALLED, KernelEventKind.REPLACED,
    KernelEventKind.DELETED, KernelEventKind.SWEPT,
})
_DELETE = OpKind.DELETE
_ADD = OpKind.ADD
_UNICAST = RouteType.UNICAST
_BLACKHOLE = RouteType.BLACKHOLE
_INSTALLED = KernelEventKind.INSTALLED
_DELETED = KernelEventKind.DELETED
_WITHDRAWN = "withdrawn"
_new_tuple = tuple.__new__
#: ``Reconciler._ours.get(key, _SETTLED)``: no entry, our route is the wanted one
_SETTLED = FibRoute(-1, 0, 0, RouteType.UNSPEC)


class _HopSet:
    """One next-hop tuple as the core shares it among the prefixes of a next-hop set: its
    address keys and family (checked once, when first seen), how many wanted prefixes use
    it, and its resolution into kernel next hops (cached until the table's routes move)."""

    __slots__ = ("akeys", "hops", "resolved", "users", "v6")

    def __init__(self, hops: tuple[IPAddress, ...], akeys: tuple[int, ...], v6: bool) -> None:
        self.hops = hops  # held: the set is found by id(hops), which cannot be reused meanwhile
        self.akeys = akeys
        self.v6 = v6
        self.users = 0
        # the desired route's body (None: no usable next hop) and the resolution problems
        self.resolved: tuple[FibRoute | None, str] | None = None


class Reconciler:
    """State of one kernel table as the bridge sees it, and what to change in it.

    Internally every prefix is an int key (:func:`~speaker.kernel.model.prefix_key`), gateway
    addresses are interned, and a wanted route is its key and the core's shared next-hop
    tuple.  The desired route is that set's *body* (:func:`~speaker.kernel.codec.body`: the
    route without its prefix), found through the set (:meth:`_desired_of`), and our route
    in the kernel is kept as a body too, the key being the dict's: one body per next-hop
    set, shared by every prefix using it, and a route read back by a scan is the same body
    again.

    Our route in the kernel is kept only where it differs from the desired one (``_ours``:
    the kernel's body, or None for no route of ours); a prefix without an entry holds
    exactly its desired route, or none if nothing programmable is wanted there
    (:meth:`_current`).  So a settled route, the steady state of nearly every route, costs
    one dict slot (``_wanted``) and no object.  Whatever changes a prefix's desired route
    (:meth:`want_all`, a next hop resolving elsewhere) first records what the kernel holds
    in ``_ours``, and :meth:`_settle` drops the entry again once the two agree."""

    def __init__(self, config: KernelConfig, ifnames: Mapping[int, str] | None = None) -> None:
        self.config = config
        self.phase = Phase.ADOPTING
        self.loaded = False
        self.interner = Interner()
        self.ifnames: Mapping[int, str] = ifnames if ifnames is not None else {}
        self.unknown_ifindex = False  # a learned route names a device we have no name for
        self.needs_scan = False  # an outcome surprised us (EEXIST, no answer): re-dump soon
        self._keep_all_keys = False  # the next scan must keep every key (see scan_expected)
        self.counters: Counter[str] = Counter()
        self.route_events = True
        """Publish an event per routine route write (installed, deleted...).  The daemon
        turns this off unless its log shows DEBUG or events go to JSON or metrics: a
        100,000-route feed would build and drop 100,000 events; the counters still count."""
        self._limit = config.merge_limit if config.merge_paths else 1
        # the next hops wanted (BLACKHOLE: ()), or, for a prefix no longer wanted whose route
        # of ours is still in the kernel ("leaving"), that route's body
        self._wanted: dict[int, tuple[IPAddress, ...] | FibRoute] = {}
        self._rejected: set[int] = set()  # wanted prefixes inside reject_cidrs
        self._why: dict[int, str] = {}  # why desired is None, or partial resolution
        # kernel: ours at the primary key where it differs from the desired route (a body;
        # None: no route of ours), see _current()
        self._ours: dict[int, FibRoute | None] = {}
        self._extra: dict[int, list[FibRoute]] = {}  # kernel: ours at other keys
        self._others: dict[int, OthersSlot] = {}  # kernel: everything not ours
        self._learned: dict[int, LearnedRoute] = {}
        # prefixes to look at, oldest first (a plain dict: an OrderedDict allocates a list
        # node per entry, and marking 100,000 prefixes dirty was a quarter of unwant())
        self._dirty: dict[int, None] = {}
        # prefixes no longer wanted whose route of ours may have to go, oldest first:
        # planned as :meth:`plan` gets to them, a slice at a time, like ``_dirty`` but 8
        # bytes a key (a whole peer's withdrawal marked 100,000 keys in ``_dirty`` and a set
        # beside it: 9 MiB, 90 at a million; these are freed as they are planned).  A key
        # may be in it twice, or in ``_dirty`` too: planning works from the latest state.
        self._unwanted: deque[int] = deque()
        self._inflight: dict[int, int] = {}
        self._redo: set[int] = set()
        self._errors: dict[int, str] = {}
        self._blocked: dict[int, str] = {}
        self._lost: dict[int, str] = {}
        # routes of ours the RIB has not wanted in this run though they are not (or no
        # longer) adopted: appeared after start-up unasked, or adopted and left unconfirmed
        # at convergence; every other unwanted route of ours is a withdrawn one (the
        # complement: few keys, where a set of the withdrawn held a whole peer's)
        self._unasked: set[int] = set()
        self._adopted: set[int] = set()  # found at start-up, not yet written by us
        # found at start-up and not yet confirmed (wanted, programmable) by the RIB in this
        # run: the only routes of ours kept, though unwanted, until convergence
        self._unconfirmed: set[int] = set()
        self._unconfirmed_extra: set[tuple[int, int, int]] = set()  # (key, tos, metric)
        self._event_fix: dict[int, float] = {}
        self._resolver = Resolver()
        # next-hop tuples in use, by id(); each counts its wanted prefixes (not a set of
        # 100,000 keys: a next hop whose resolution changes is rare, and then one walk
        # finds them)
        self._sets: dict[int, _HopSet] = {}
        # BGP next hop (address key) -> how many next-hop sets in use hold it
        self._nh_users: dict[int, int] = {}
        self._nh_addr: dict[int, IPAddress] = {}
        self._nh_cache: dict[int, NextHop | str] = {}
        self._events: list[KernelEvent] = []
        self._learn_changes: list[LearnedRoute | IPNetwork] = []
        # the blackhole bodies: IPv4 (metric 0), IPv6 (metric 1024)
        self._holes = tuple(
            self.interner.body(
                FibRoute(0, config.table, config.protocol, _BLACKHOLE, 0, metric)
            )
            for metric in (0, 1024)
        )

    # -- outboxes --------------------------------------------------------------------------

    def take_events(self) -> list[KernelEvent]:
        """Events produced since the last call."""
        out, self._events = self._events, []
        return out

    def take_learn_changes(self) -> list[LearnedRoute | IPNetwork]:
        """Learned routes (new or changed) and unlearned prefixes, in order."""
        out, self._learn_changes = self._learn_changes, []
        return out

    def _emit(
        self,
        kind: KernelEventKind,
        prefix: IPNetwork | None,
        reason: str,
        nexthops: tuple[IPAddress, ...] = (),
        error: int = 0,
    ) -> None:
        self.counters[_KIND_NAME[kind]] += 1
        self._events.append(KernelEvent(kind, prefix, reason, nexthops, error))

    # -- the RIB side ----------------------------------------------------------------------

    def want(self, route: KernelRoute) -> None:
        """Desired state for ``route.prefix`` (replaces any earlier one)."""
        if not isinstance(route, KernelRoute):
            raise TypeError(f"want() takes a KernelRoute, got {route!r}")
        if route.blackhole:
            self.want_all(((network_key(route.prefix), BLACKHOLE),))
        elif route.nexthops:
            self.want_all(((network_key(route.prefix), route.nexthops),))
        else:
            raise ValueError(f"KernelRoute {route.prefix}: needs next hops, or blackhole=True")

    def unwant(self, prefix: IPNetwork) -> None:
        """No route wanted for ``prefix`` any more: deleted at once, unless it is an adopted
        route no peer has confirmed yet (then it waits for convergence)."""
        if not isinstance(prefix, (IPv4Network, IPv6Network)):
            raise TypeError(f"unwant() takes an ipaddress network, got {prefix!r}")
        self.want_all(((network_key(prefix), None),))

    def want_all(self, intents: Iterable[KernelIntent]) -> None:
        """What :meth:`want` and :meth:`unwant` do, for a batch of intents in order, in one
        loop: ``(key, hops)`` wants the prefix ``key`` via ``hops`` (:data:`BLACKHOLE`: a
        blackhole), ``(key, None)`` wants nothing there.  Keys and next hops come from the
        core, which decoded and checked them; a next-hop tuple is checked once, the first
        time it is seen (:meth:`_hop_set`), and the core shares one tuple per set."""
        wanted = self._wanted
        sets = self._sets
        dirty = self._dirty
        unwanted = self._unwanted.append
        rejected = self._rejected
        rejects = self.config.reject_cidrs
        ours = self._ours
        for key, hops in intents:
            old = wanted.get(key)
            if hops is None:  # unwanted
                if old is None or isinstance(old, FibRoute):
                    continue  # not wanted, or leaving already
                # our route in the kernel (the one wanted until now, unless it differs) is
                # kept in the prefix's own slot until it is deleted: "leaving"; so a whole
                # peer's withdrawal grows no dict
                have = ours.pop(key, _SETTLED)
                if have is _SETTLED:
                    have = self._desired(key, old)
                if have is None:
                    del wanted[key]
                else:
                    wanted[key] = have
                if old:
                    self._release(old)
                if rejected:
                    rejected.discard(key)
                if self._why or self._lost or self._blocked or self._errors:  # usually empty
                    for notes in (self._why, self._lost, self._blocked, self._errors):
                        notes.pop(key, None)
                unwanted(key)
                continue
            if old is hops or (old is not None and old == hops):
                continue  # the same wanted route (the core shares one tuple per set)
            if old is not None and isinstance(old, FibRoute):  # leaving: wanted again
                have, old = old, None
            else:
                have = ours.get(key, _SETTLED)
                if have is _SETTLED:  # the old desired route (none for a new prefix)
                    have = None if old is None else self._desired(key, old)
            hset: _HopSet | None = None
            if hops:
                hset = sets.get(id(hops))
                if hset is None:
                    hset = self._hop_set(hops)
                if hset.v6 is not (key >= V6_FLAG):
                    if not hset.users:
                        self._drop_set(hset)
                    raise ValueError(
                        f"kernel intent for {key_network(key)}: next hops "
                        f"{', '.join(map(str, hops))} are of another family"
                    )
                hset.users += 1
            if old:
                self._release(old)
            wanted[key] = hops
            if self._unasked:
                self._unasked.discard(key)
            # nothing to note (a set resolved whole, no reject_cidrs, no notes): no call
            if (
                rejects
                or hset is None
                or (resolved := hset.resolved) is None
                or resolved[0] is None
                or resolved[1]
                or self._why
            ):
                self._recompute(key, hset)
                self._settle(key, have)
            elif have is None or (have is not resolved[0] and have != resolved[0]):
                ours[key] = have  # usually a new prefix: no route of ours there yet
            elif key in ours:
                del ours[key]
            dirty[key] = None

    def _hop_set(self, hops: tuple[IPAddress, ...]) -> _HopSet:
        """A next-hop tuple seen for the first time: checked (as :class:`KernelRoute` checks
        its next hops) and registered, with no prefix using it yet."""
        if not isinstance(hops, tuple):
            raise TypeError(f"kernel intent: next hops must be a tuple, got {hops!r}")
        versions = set()
        for nh in hops:
            if not isinstance(nh, (IPv4Address, IPv6Address)):
                raise TypeError(f"kernel intent: next hop {nh!r} is not an ip address")
            if nh.is_unspecified or nh.is_multicast:
                raise ValueError(f"kernel intent: next hop {nh} is not a unicast address")
            versions.add(nh.version)
        if len(versions) != 1:
            raise ValueError(f"kernel intent: next hops {hops} are of two families")
        akeys = tuple(addr_key(addr) for addr in hops)
        hset = self._sets[id(hops)] = _HopSet(hops, akeys, 6 in versions)
        users = self._nh_users
        for addr, akey in zip(hops, akeys, strict=True):
            count = users.get(akey)
            if count is None:
                users[akey] = 1
                self._nh_addr[akey] = self.interner.addr(addr)
            else:
                users[akey] = count + 1
        return hset

    def _release(self, hops: tuple[IPAddress, ...]) -> None:
        """One wanted prefix fewer uses ``hops``; the last one takes its set away."""
        hset = self._sets[id(hops)]
        hset.users -= 1
        if not hset.users:
            self._drop_set(hset)

    def _drop_set(self, hset: _HopSet) -> None:
        del self._sets[id(hset.hops)]
        users = self._nh_users
        for akey in hset.akeys:
            count = users[akey]
            if count > 1:
                users[akey] = count - 1
            else:
                del users[akey]
                self._nh_cache.pop(akey, None)
                self._nh_addr.pop(akey, None)

    def converge(self, reason: str) -> None:
        """The RIB has converged: from now on unwanted routes of ours are deleted."""
        if self.phase is Phase.CONVERGED:
            return
        self.phase = Phase.CONVERGED
        self._emit(KernelEventKind.CONVERGED, None, reason)
        # adopted routes no peer asked for: swept as "not wanted after convergence"
        self._unasked.update(k for k in self._unconfirmed if self._wanted_hops(k) is None)
        desired_of = self._desired_of
        self._unwanted.extend(  # a settled prefix holds its desired route: not for this
            key for key, have in self._ours.items()
            if have is not None and desired_of(key) is None
        )
        self._unwanted.extend(k for k, v in self._wanted.items() if isinstance(v, FibRoute))
        for key in self._extra:
            self._dirty[key] = None
        for key in self._adopted:  # replacements held until now
            self._dirty[key] = None
        self._adopted.clear()
        self._unconfirmed.clear()
        self._unconfirmed_extra.clear()

    @property
    def converged(self) -> bool:
        """Whether unwanted routes of ours are being swept."""
        return self.phase is Phase.CONVERGED

    def _keeps(self, key: int) -> bool:
        """An unwanted route of ours at the primary key is kept: only an adopted route that
        no peer has confirmed yet, and only until convergence."""
        return key in self._unconfirmed and self.phase is not Phase.CONVERGED

    def _keeps_extra(self, route: FibRoute) -> bool:
        """Same rule for a route of ours at another (tos, metric)."""
        return (
            self.phase is not Phase.CONVERGED
            and (route.key, route.tos, route.priority) in self._unconfirmed_extra
        )

    def _resolve(self, akey: int) -> NextHop | str:
        hop = self._nh_cache.get(akey)
        if hop is None:
            hop = self._nh_cache[akey] = self._resolver.resolve(self._nh_addr[akey])
        return hop

    def _desired_of(self, key: int) -> FibRoute | None:
        """The body of the kernel route wanted for ``key``: None if nothing is wanted there or
        it cannot be programmed (reject_cidrs, no usable next hop); the blackhole body for our
        blocks; else the body of its next-hop set, resolved once per set."""
        return self._desired(key, self._wanted_hops(key))

    def _wanted_hops(self, key: int) -> tuple[IPAddress, ...] | None:
        """The next hops wanted for ``key`` (None: nothing wanted, or leaving)."""
        hops = self._wanted.get(key)
        return None if hops is None or isinstance(hops, FibRoute) else hops

    def _current(self, key: int) -> FibRoute | None:
        """The body of our route in the kernel at ``key``'s primary slot (None: none): the
        entry of ``_ours`` if there is one, a leaving route's, else the desired route."""
        have = self._ours.get(key, _SETTLED)
        if have is not _SETTLED:
            return have
        hops = self._wanted.get(key)
        return hops if isinstance(hops, FibRoute) else self._desired(key, hops)

    def _settle(self, key: int, have: FibRoute | None) -> None:
        """Record ``have`` as our route in the kernel at ``key`` (None: none): an entry only
        if it differs from the desired route (a leaving route's slot holds it, or goes)."""
        hops = self._wanted.get(key)
        if isinstance(hops, FibRoute):  # leaving
            if have is None:
                del self._wanted[key]
            else:
                self._wanted[key] = have
            return
        if hops and not self._rejected and (done := self._sets[id(hops)].resolved):
            want = done[0]  # _desired's usual case, inlined: a set already resolved
        else:
            want = self._desired(key, hops)
        if have is want or (have is not None and want is not None and have == want):
            self._ours.pop(key, None)
        else:
            self._ours[key] = have

    def _routes_of_ours(self) -> Iterator[tuple[int, FibRoute]]:
        """(key, body) of every route of ours at a primary key: the settled and leaving ones,
        then the entries of ``_ours``."""
        ours = self._ours
        desired = self._desired
        for key, hops in self._wanted.items():
            if isinstance(hops, FibRoute):
                yield key, hops
            elif key not in ours and (body := desired(key, hops)) is not None:
                yield key, body
        for key, have in ours.items():
            if have is not None:
                yield key, have

    def _desired(self, key: int, hops: tuple[IPAddress, ...] | None) -> FibRoute | None:
        """:meth:`_desired_of` with the wanted next hops (``_wanted[key]``) at hand."""
        if hops is None:
            return None
        if not hops:
            return None if self._rejected and key in self._rejected else self._holes[
                key >= V6_FLAG
            ]
        if self._rejected and key in self._rejected:
            return None
        hset = self._sets[id(hops)]
        resolved = hset.resolved
        if resolved is None:
            resolved = self._resolve_hset(hset)
        return resolved[0]

    def _resolve_hset(self, hset: _HopSet) -> tuple[FibRoute | None, str]:
        """Resolve a next-hop set into its desired body (cached in the set)."""
        hops, problems = self._resolve_set(hset.akeys)
        route = None
        if hops:
            cfg = self.config
            route = self.interner.body(
                FibRoute(0, cfg.table, cfg.protocol, _UNICAST, 0, 1024 if hset.v6 else 0, hops)
            )
        resolved = hset.resolved = (route, problems)
        return resolved

    def _recompute(self, key: int, hset: _HopSet | None) -> None:
        """A wanted prefix's notes: inside reject_cidrs, or why its next-hop set (``hset``;
        None: a blackhole) gives no route or only part of one (deduplicated, at most
        merge_limit next hops, or 1 when merge paths is off; resolved once per set)."""
        cfg = self.config
        if cfg.reject_cidrs and cfg.rejects_key(key):
            self._rejected.add(key)
            self._why[key] = "inside reject_cidrs: never programmed"
            return
        if hset is None:
            if self._why:
                self._why.pop(key, None)
            return
        resolved = hset.resolved
        if resolved is None:
            resolved = self._resolve_hset(hset)
        route, problems = resolved
        if route is None:
            self._why[key] = problems or "no usable next hop"
        elif problems:
            self._why[key] = problems
        elif self._why:
            self._why.pop(key, None)

    def _resolve_set(self, nh_keys: tuple[int, ...]) -> tuple[tuple[NextHop, ...], str]:
        """Resolved, deduplicated, limited and sorted kernel next hops for a BGP next-hop
        set (cached per set: a mesh has few distinct sets for many prefixes)."""
        hops: list[NextHop] = []
        seen: set[tuple[IPAddress | None, int]] = set()
        problems: list[str] = []
        for akey in nh_keys:
            if len(hops) >= self._limit:
                break
            hop = self._resolve(akey)
            if isinstance(hop, str):
                problems.append(hop)
                continue
            if (hop.gateway, hop.oif) in seen:
                continue
            seen.add((hop.gateway, hop.oif))
            hops.append(hop)
        return self.interner.hops(sort_nexthops(hops)), "; ".join(problems)

    # -- the kernel side -------------------------------------------------------------------

    def scan_expected(self) -> Callable[[int], FibRoute | None] | None:
        """What a scan's dump may count instead of keeping (``RouteDump.same``): our route
        at a key as we hold it, once loaded; None when the dump must keep every key
        (start-up, and the scan after one that found a route of ours missing without
        saying which)."""
        return None if self._keep_all_keys or not self.loaded else self._current

    def load(
        self, routes: RouteDump | Iterable[FibRoute], now: float, *, initial: bool = False
    ) -> None:
        """A full, consistent dump of the table (start-up or scan): the authoritative view.

        A scan's dump (:class:`~speaker.kernel.codec.RouteDump`) holds the kernel's routes as
        prefix keys and interned bodies, so a route of ours the kernel holds as we wrote it is
        the very body we keep, and nothing of the dump stays once it is folded in: ``_ours``
        is updated in place, its entries replaced only where the kernel differs."""
        for _ in self.load_steps(routes, now, initial=initial):
            pass

    def load_steps(
        self,
        routes: RouteDump | Iterable[FibRoute],
        now: float,
        *,
        initial: bool = False,
        step: int = LOAD_STEP,
    ) -> Iterator[None]:
        """:meth:`load` in steps of about ``step`` routes: the bridge yields to the event loop
        after each (100,000 routes in one go held it for 50-250 ms).  Between two steps the
        RIB side may change (:meth:`want_all`); nothing else may (no :meth:`observe`,
        :meth:`plan` or :meth:`apply` until the last step is done)."""
        cfg = self.config
        table, proto = cfg.table, cfg.protocol
        if not isinstance(routes, RouteDump):
            dump = RouteDump()
            for route in routes:
                dump.keys.append(route.key)
                dump.bodies.append(self.interner.body(route))
            routes = dump
        new_ours: dict[int, FibRoute] = {}
        new_extra: dict[int, list[FibRoute]] = {}
        new_others: dict[int, OthersSlot] = {}
        last: FibRoute | None = None
        mine = other = False
        metric = -1  # the body's metric if it may be a primary route (tos 0), else -1
        keys, bodies = routes.keys, routes.bodies
        for start in range(0, len(keys), step):
            if start:
                yield
            stop = start + step
            for key, body in zip(keys[start:stop], bodies[start:stop], strict=True):
                if body is not last:  # classified once per body: a scan has a handful
                    last = body
                    mine = body.table == table and body.proto == proto
                    other = body.table == table and body.proto != proto
                    metric = -1 if body.tos else body.priority
                if mine:
                    if metric == (1024 if key >= V6_FLAG else 0):
                        new_ours[key] = body
                    else:
                        new_extra.setdefault(key, []).append(with_key(key, body))
                elif other:
                    new_others.setdefault(key, {})[(body.tos, body.priority)] = with_key(
                        key, body
                    )
        yield
        self.counters["scans"] += 1
        self._event_fix.clear()
        self.needs_scan = self._keep_all_keys = False
        if new_others != self._others:
            old_others = self._others
            changed = {
                k
                for k in new_others.keys() | old_others.keys()
                if new_others.get(k) != old_others.get(k)
            }
            self._others = new_others
            self._others_changed(changed)
        if initial or not self.loaded:
            self.loaded = True
            self._ours = {}
            for key, body in new_ours.items():
                self._settle(key, body)
            for key in list(self._wanted):  # wanted (before the first dump), not there
                if key not in new_ours:
                    self._settle(key, None)
            self._extra = new_extra
            if self.phase is Phase.ADOPTING:
                self._adopted = set(new_ours)
                self._unconfirmed = set(new_ours)
                self._unconfirmed_extra = {
                    (r.key, r.tos, r.priority) for rs in new_extra.values() for r in rs
                }
                self._unasked = set()
            else:  # found after convergence: none adopted, the unwanted ones were not asked for
                self._unasked = {k for k in new_ours if self._wanted_hops(k) is None}
            if not self.route_events:  # routine: counted, not published (100,000 at restart)
                adopted = len(new_ours) + sum(len(extras) for extras in new_extra.values())
                if adopted:
                    self.counters[_KIND_NAME[KernelEventKind.ADOPTED]] += adopted
            else:
                for key, body in new_ours.items():
                    self._emit(
                        KernelEventKind.ADOPTED,
                        key_network(key),
                        "route of ours found at start-up: kept until convergence",
                        _gateways(body),
                    )
                for extras in new_extra.values():
                    for route in extras:
                        self._emit(
                            KernelEventKind.ADOPTED,
                            route.prefix,
                            f"route of ours at metric {route.priority}, tos {route.tos}: "
                            "removed after convergence",
                            _gateways(route),
                        )
            for key in self._wanted:
                self._dirty[key] = None
            return
        ours = self._ours
        desired_of = self._desired_of
        settle = self._settle
        inflight = self._inflight
        dirty = self._dirty
        wanted_hops, sets, rejected = self._wanted, self._sets, self._rejected
        # in place: the dump's key ints go with it (the kept ones are the core's)
        count = 0
        for key, body in new_ours.items():
            count += 1
            if count == step:
                count = 0
                yield
            before = ours.get(key, _SETTLED)
            if before is _SETTLED:  # _current, inlined: a settled route, the usual case
                hops = wanted_hops.get(key)
                if hops and hops.__class__ is not FibRoute and not rejected and (
                    done := sets[id(hops)].resolved
                ):
                    before = done[0]
                else:
                    before = self._current(key)
            if before is body or before == body:
                continue
            if key not in inflight:
                if before is None:
                    if self._wanted_hops(key) is None:
                        self._unasked.add(key)
                elif before == desired_of(key):
                    self._lost[key] = "altered outside the speaker"
                dirty[key] = None
            settle(key, body)
        yield
        counted = routes.same  # routes found as we hold them: counted by the dump, not kept

        def vanished(key: int, before: FibRoute) -> None:
            if key not in inflight:
                if before == desired_of(key):
                    self._lost[key] = "deleted outside the speaker"
                dirty[key] = None
            settle(key, None)

        # routes of ours gone from the kernel: entries of _ours, then settled and leaving
        # prefixes; a leaving route still there is (re)deleted (the safety net, see below).
        # After a dump that only counted the routes it found as we hold them, a route not in
        # new_ours may be one of those: such routes are only counted here, and if the dump
        # found fewer than we hold, the next scan, at once, keeps every key to tell which.
        expected = 0
        for key, gone in [(k, v) for k, v in ours.items() if v is not None and k not in new_ours]:
            if counted:
                expected += 1
            else:
                vanished(key, gone)
        keeps = self._keeps
        wanted = list(wanted_hops)  # the RIB side may change it between steps
        for start in range(0, len(wanted), step):
            yield
            for key in wanted[start : start + step]:
                if key not in new_ours:
                    if not counted:
                        if (left := self._current(key)) is not None:
                            vanished(key, left)
                    elif key not in ours and self._current(key) is not None:
                        expected += 1  # found as held, or gone
                        if isinstance(wanted_hops.get(key), FibRoute) and not keeps(key):
                            dirty[key] = None
                elif isinstance(wanted_hops.get(key), FibRoute) and not keeps(key):
                    dirty[key] = None
        if expected > counted:
            self._keep_all_keys = self.needs_scan = True
        if self._unconfirmed:  # an adopted route gone from the kernel is adopted no more
            self._unconfirmed = {k for k in self._unconfirmed if self._current(k) is not None}
        if self._unasked:
            self._unasked = {k for k in self._unasked if self._current(k) is not None}
        if new_extra != self._extra:
            for key in new_extra.keys() | self._extra.keys():
                dirty[key] = None
            self._extra = new_extra
        # only the entries of _ours can differ from the desired routes: retry what failed or
        # is still off, and (the safety net) every unwanted route of ours that may go
        held = list(ours)
        for start in range(0, len(held), step):
            yield
            for key in held[start : start + step]:
                have = ours.get(key, _SETTLED)
                if have is _SETTLED:
                    continue  # settled meanwhile
                want = desired_of(key)
                if want is not None:
                    if have is not want and have != want:
                        dirty[key] = None
                elif have is not None and not keeps(key):
                    dirty[key] = None
        for key, extras in new_extra.items():
            if not all(self._keeps_extra(r) for r in extras):
                dirty[key] = None

    def observe(self, route: FibRoute, deleted: bool, now: float) -> None:
        """One RTM_NEWROUTE/RTM_DELROUTE notification from the monitor socket.

        The bridge's monitor socket filters out our own protocol's routes (their echoes), so
        these are mostly aliens; should a note of ours arrive (an unfiltered socket), one that
        matches the view is no action, anything else on a route of ours is a change made
        outside the speaker; it is fixed at once, at most
        once per prefix per scan interval (the scan catches the rest, and a kernel that
        normalises a route differently from us cannot make us loop)."""
        cfg = self.config
        if route.table != cfg.table:
            return
        key = route.key
        if route.proto != cfg.protocol:
            slot_key = (route.tos, route.priority)
            slot = self._others.get(key)
            if deleted:
                if slot is None or slot_key not in slot:
                    return
                del slot[slot_key]
                if not slot:
                    del self._others[key]
            else:
                if slot is not None and slot.get(slot_key) == route:
                    return
                self._others.setdefault(key, {})[slot_key] = route
            self._others_changed({key})
            return
        if not route.is_primary:
            extras = [
                r
                for r in self._extra.get(key, [])
                if (r.tos, r.priority) != (route.tos, route.priority)
            ]
            if not deleted:
                extras.append(route)
            if extras:
                self._extra[key] = extras
            else:
                self._extra.pop(key, None)
            if not self._keeps_extra(route):
                self._dirty[key] = None
            return
        current = self._current(key)
        if deleted:
            if current is None:
                return
            self._settle(key, None)
            self._unconfirmed.discard(key)
            self._unasked.discard(key)
        else:
            body = self.interner.body(route)
            if current == body:
                return
            self._settle(key, body)
        if key in self._inflight:
            return
        if current is None and not deleted and self._wanted_hops(key) is None:
            self._unasked.add(key)
        if current is not None and current == self._desired_of(key):
            self._lost[key] = (
                "deleted outside the speaker" if deleted else "altered outside the speaker"
            )
        last = self._event_fix.get(key)
        if last is not None and now - last < cfg.scan_time:
            return
        self._event_fix[key] = now
        self._dirty[key] = None

    def _others_changed(self, keys: set[int]) -> None:
        """Alien/kernel routes changed: re-resolve next hops, recheck blocking, relearn."""
        if not keys:
            return
        self._resolver.rebuild(r for slot in self._others.values() for r in slot.values())
        moved: set[int] = set()
        for akey, old_hop in list(self._nh_cache.items()):
            hop = self._resolver.resolve(self._nh_addr[akey])
            if hop != old_hop:
                self._nh_cache[akey] = hop
                moved.add(akey)
        if moved:
            touched = {
                ident for ident, hset in self._sets.items() if not moved.isdisjoint(hset.akeys)
            }
            # what the kernel holds there, taken before their desired routes change
            held = [
                (key, self._current(key))
                for key, hops in self._wanted.items()
                if id(hops) in touched
            ]
            for ident in touched:
                self._sets[ident].resolved = None
            for key, have in held:
                self._recompute(key, self._sets[id(self._wanted_hops(key))])
                self._settle(key, have)
                self._dirty[key] = None
        for key in keys:
            if key in self._wanted or self._ours.get(key) is not None:
                self._dirty[key] = None
        self.relearn(keys)

    def relearn(self, keys: Iterable[int] | None = None) -> None:
        """Recompute the learned (alien) route of these prefix keys (all when None)."""
        todo = (self._others.keys() | self._learned.keys()) if keys is None else keys
        for key in todo:
            best: FibRoute | None = None
            if self.config.learn:
                for route in self._others.get(key, {}).values():
                    if _learnable(route) and (best is None or route.priority < best.priority):
                        best = route
            new = self._learned_from(best) if best is not None else None
            old = self._learned.get(key)
            if new == old:
                continue
            if new is None:
                assert old is not None
                del self._learned[key]
                self._learn_changes.append(old.prefix)
                self._emit(KernelEventKind.UNLEARNED, old.prefix, "alien route gone")
            else:
                self._learned[key] = new
                self._learn_changes.append(new)
                self._emit(
                    KernelEventKind.LEARNED,
                    new.prefix,
                    f"alien route, proto {proto_name(new.protocol)}"
                    + (f" dev {new.ifname}" if new.ifname else ""),
                    new.nexthops,
                )

    def _learned_from(self, route: FibRoute) -> LearnedRoute:
        ifname: str | None = None
        if route.nexthops and route.nexthops[0].oif:
            ifname = self.ifnames.get(route.nexthops[0].oif)
            if ifname is None:
                self.unknown_ifindex = True
        return LearnedRoute(
            route.prefix,
            tuple(nh.gateway for nh in route.nexthops if nh.gateway is not None),
            ifname,
            route.proto,
            route.type,
            route.priority,
        )

    # -- planning and results ----------------------------------------------------------------

    def has_work(self) -> bool:
        """Whether :meth:`plan` may return something."""
        return self.loaded and bool(self._dirty or self._unwanted)

    def plan(self, limit: int) -> list[Op]:
        """Up to ``limit`` changes for dirty prefixes, then for unwanted ones (each prefix at
        most once in flight): a withdrawal of 100,000 routes is planned ``limit`` at a time,
        as the writer drains, never as a whole.  Every change is an Op (folded in by
        :meth:`apply`); the bridge plans with :meth:`plan_batch`."""
        return self._plan(limit, None)[0]

    def plan_batch(self, limit: int) -> tuple[list[Op], list[int]]:
        """:meth:`plan`, the deletes of withdrawn routes given as their prefix keys: each is
        our route at the primary key of its prefix, in our table, so the key says all the
        writer needs (:meth:`~speaker.kernel.netlink.RouteWriter.delete`), and a withdrawal
        makes no Op, route or result object per route.  The answers to those are folded in
        by :meth:`apply_deletes`."""
        return self._plan(limit, [])

    def _plan(self, limit: int, keys: list[int] | None) -> tuple[list[Op], list[int]]:
        ops: list[Op] = []
        batch = keys if keys is not None else []
        if not self.loaded:
            return ops, batch
        dirty = self._dirty
        inflight = self._inflight
        plan_key = self._plan_key
        while dirty and len(ops) + len(batch) < limit:
            # oldest first, in slices: a key marked dirty again while waiting keeps its place
            for key in list(islice(dirty, limit - len(ops) - len(batch))):
                del dirty[key]
                if key in inflight:
                    self._redo.add(key)
                    continue
                plan_key(key, ops, keys)
        unwanted = self._unwanted
        next_key = unwanted.popleft
        while unwanted and len(ops) + len(batch) < limit:
            for _ in range(min(limit - len(ops) - len(batch), len(unwanted))):
                key = next_key()
                if key in inflight:
                    self._redo.add(key)
                    continue
                plan_key(key, ops, keys)
        return ops, batch

    def _start(self, op: Op, ops: list[Op]) -> None:
        ops.append(op)
        key = op.route.key
        self._inflight[key] = self._inflight.get(key, 0) + 1

    def _plan_key(self, key: int, ops: list[Op], keys: list[int] | None = None) -> None:
        """The change for one prefix, appended to ``ops``; with ``keys``, the delete of a
        withdrawn (leaving) route goes there as its key instead (:meth:`plan_batch`)."""
        slot = self._wanted.get(key)
        hops: tuple[IPAddress, ...] | None = None
        want: FibRoute | None = None
        current: FibRoute | None
        if slot is None:
            current = self._ours.get(key)
        elif isinstance(slot, FibRoute):  # a withdrawal: the leaving route is its slot's
            current = slot
        else:
            hops = slot
            if hops and not self._rejected and (done := self._sets[id(hops)].resolved):
                want = done[0]  # _desired's usual case, inlined: a set already resolved
            else:
                want = self._desired(key, hops)
            current = self._ours.get(key, _SETTLED)
            if current is _SETTLED:  # settled: the desired route is in the kernel
                current = want
        if want is not None:
            if self._unconfirmed:
                self._unconfirmed.discard(key)  # a peer wants this prefix: confirmed
            others = self._others.get(key) if self._others else None
            blocker = others.get((0, want.priority)) if others else None
            if blocker is not None:
                text = (
                    f"proto {proto_name(blocker.proto)} route {blocker.describe()} holds this "
                    "prefix at our metric; alien routes are never overwritten"
                )
                if self._blocked.get(key) != text:
                    self._blocked[key] = text
                    self._emit(KernelEventKind.BLOCKED, key_network(key), text, _gateways(want))
            else:
                if self._blocked:
                    self._blocked.pop(key, None)
                if current is None:  # the usual case in a feed: a new route
                    lost = self._lost.get(key) if self._lost else None
                    route = with_key(key, want)
                    if lost:
                        op = _new_tuple(
                            Op, (_ADD, route, KernelEventKind.REINSTALLED, lost, want)
                        )
                    else:
                        why = self._why.get(key) if self._why else None
                        op = _new_tuple(Op, (_ADD, route, _INSTALLED, why or "wanted", want))
                    ops.append(op)
                    self._inflight[key] = self._inflight.get(key, 0) + 1
                elif current is not want and current != want:
                    if not self._held(key, want, current):
                        lost = self._lost.get(key)
                        cause = KernelEventKind.REINSTALLED if lost else KernelEventKind.REPLACED
                        reason = lost or f"was {with_key(key, current).describe()}"
                        self._start(
                            Op(OpKind.REPLACE, with_key(key, want), cause, reason, want), ops
                        )
                    # else: an adopted multipath route kept whole until convergence
                else:
                    self._lost.pop(key, None)
                    self._errors.pop(key, None)
        elif current is not None and not (self._unconfirmed and self._keeps(key)):
            if hops is not None:
                cause, reason = KernelEventKind.DELETED, self._why.get(key, "not programmable")
            elif not self._unasked or key not in self._unasked:
                if keys is not None and current is slot:  # leaving: deleted by its key
                    keys.append(key)
                    self._inflight[key] = self._inflight.get(key, 0) + 1
                    if self._extra and key in self._extra:
                        self._plan_extra(key, ops)
                    return
                cause, reason = KernelEventKind.DELETED, _WITHDRAWN
            elif self.phase is Phase.CONVERGED:
                cause, reason = KernelEventKind.SWEPT, "not wanted after convergence"
            else:
                cause, reason = KernelEventKind.SWEPT, "not wanted, not found at start-up"
            ops.append(_new_tuple(Op, (_DELETE, with_key(key, current), cause, reason, None)))
            self._inflight[key] = self._inflight.get(key, 0) + 1
        if self._extra and key in self._extra:
            self._plan_extra(key, ops)

    def _plan_extra(self, key: int, ops: list[Op]) -> None:
        """Deletes of our routes at other (tos, metric) keys of the prefix (no longer kept)."""
        for route in self._extra[key]:
            if self._keeps_extra(route):
                continue
            reason = (
                f"route of ours at metric {route.priority}, tos {route.tos}: "
                "not a key we program"
            )
            self._start(Op(OpKind.DELETE, route, KernelEventKind.SWEPT, reason), ops)

    def _held(self, key: int, want: FibRoute, current: FibRoute) -> bool:
        """Before convergence, an adopted route is not replaced by a route with a strict
        subset of its next hops (the RIB is still refilling: the other paths are coming)."""
        if self.phase is Phase.CONVERGED or key not in self._adopted:
            return False
        if want.type != RouteType.UNICAST or current.type != RouteType.UNICAST:
            return False
        wanted = {(nh.gateway, nh.oif) for nh in want.nexthops}
        return wanted < {(nh.gateway, nh.oif) for nh in current.nexthops}

    def apply(self, results: Iterable[OpResult], now: float) -> None:
        """Fold the kernel's answers into the view; failures are kept and retried per scan."""
        inflight = self._inflight
        settle = self._settle
        wanted, sets, ours = self._wanted, self._sets, self._ours
        route_events = self.route_events
        routine: dict[KernelEventKind, int] = {}  # counted, not published
        writes = 0
        answered = self._answered
        for op, error, message in results:
            route = op.route
            key = route.key
            left = inflight.pop(key, 1) - 1
            if left > 0:
                inflight[key] = left
            elif self._redo:
                answered(key)
            kind = op.kind
            if error == 0 or (kind is _DELETE and error in (errno.ESRCH, errno.ENOENT)):
                writes += 1
                # the sets below are empty but around a restart or a failure: test first
                if kind is _DELETE:
                    if route.is_primary:
                        self._gone(key)
                    else:
                        self._drop_extra(route)
                else:
                    body = op.body
                    if body is None:
                        body = self.interner.body(route)
                    hops = wanted.get(key)
                    if (  # _settle's usual case, inlined: the route written is the desired one
                        hops
                        and hops.__class__ is not FibRoute
                        and not self._rejected
                        and (done := sets[id(hops)].resolved)
                        and done[0] is body
                    ):
                        ours.pop(key, None)
                    else:
                        settle(key, body)
                    if self._lost:
                        self._lost.pop(key, None)
                    if self._adopted:
                        self._adopted.discard(key)
                    if self._unconfirmed:
                        self._unconfirmed.discard(key)
                if self._errors:
                    self._errors.pop(key, None)
                cause = op.cause
                if route_events or cause not in _ROUTINE:
                    self._emit(cause, route.prefix, op.reason, _gateways(route))
                else:
                    routine[cause] = routine.get(cause, 0) + 1
            else:
                self._failed(kind, route, error, message)
        for cause, count in routine.items():
            self.counters[_KIND_NAME[cause]] += count
        self._written(writes)

    def apply_deletes(
        self, keys: Sequence[int], failures: Iterable[tuple[int, int, str]], now: float
    ) -> None:
        """Fold in the kernel's answers to the deletes of :meth:`plan_batch`'s ``keys``:
        ``failures`` are (index in ``keys``, errno, message), matched by the writer by
        sequence number; every other delete was done (so was one of a route already gone)."""
        failed = {
            index: (error, message)
            for index, error, message in failures
            if error not in (errno.ESRCH, errno.ENOENT)
        }
        inflight = self._inflight
        answered = self._answered
        gone = self._gone
        route_events = self.route_events
        for index, key in enumerate(keys):
            left = inflight.pop(key, 1) - 1
            if left > 0:
                inflight[key] = left
            problem = failed.get(index) if failed else None
            if problem is not None:
                self._failed(_DELETE, self._deleted_route(key), *problem)
            else:
                if route_events:
                    route = self._deleted_route(key)
                    self._emit(_DELETED, route.prefix, _WITHDRAWN, _gateways(route))
                gone(key)
                if self._errors:
                    self._errors.pop(key, None)
            if left <= 0 and self._redo:
                answered(key)
        done = len(keys) - len(failed)
        if not route_events and done:
            self.counters[_KIND_NAME[_DELETED]] += done
        self._written(done)

    def _deleted_route(self, key: int) -> FibRoute:
        """The route a delete by key (:meth:`plan_batch`) removes, for events: the leaving
        route (or whatever is ours there now), else our route's key as the writer packs it."""
        body = self._current(key)
        if body is None:
            cfg = self.config
            body = FibRoute(0, cfg.table, cfg.protocol, _UNICAST, 0, 1024 if key >= V6_FLAG else 0)
        return with_key(key, body)

    def _answered(self, key: int) -> None:
        """No write of ``key`` in flight any more: a change that waited for it is planned."""
        if key in self._redo:
            self._redo.discard(key)
            self._dirty[key] = None

    def _gone(self, key: int) -> None:
        """Our route at ``key``'s primary slot was deleted."""
        self._settle(key, None)
        # the sets below are empty but around a restart or a failure: test first
        if self._unasked:
            self._unasked.discard(key)
        if self._adopted:
            self._adopted.discard(key)
        if self._unconfirmed:
            self._unconfirmed.discard(key)

    def _failed(self, kind: OpKind, route: FibRoute, error: int, message: str) -> None:
        """A write the kernel refused (or did not answer): kept, reported once, and retried
        at the next scan."""
        key = route.key
        self.counters["write_errors"] += 1
        if error == UNKNOWN_OUTCOME:
            text = message or "no answer from the kernel"
            self.needs_scan = True
        else:
            text = os.strerror(error) + (f": {message}" if message else "")
            if kind is OpKind.ADD and error == errno.EEXIST:
                self.needs_scan = True  # someone holds the key; the scan tells who
        if self._errors.get(key) != text:
            self._errors[key] = text
            self._emit(
                KernelEventKind.FAILED,
                route.prefix,
                f"{kind.name.lower()} {route.describe()}: {text}",
                _gateways(route),
                max(error, 0),
            )

    def _written(self, writes: int) -> None:
        """Count the writes done; give back the table of an ``_ours`` that grew for a while
        (a dict keeps the table it grew to: a feed's backlog of prefixes not yet written, an
        entry each, would keep its size once they are all settled)."""
        if writes:
            self.counters["writes"] += writes
            ours = self._ours
            size = sys.getsizeof(ours)
            if size > _OURS_ROOM and len(ours) * _OURS_SPARSE < size:
                self._ours = dict(ours)

    def _drop_extra(self, route: FibRoute) -> None:
        rest = [
            r
            for r in self._extra.get(route.key, [])
            if (r.tos, r.priority) != (route.tos, route.priority)
        ]
        if rest:
            self._extra[route.key] = rest
        else:
            self._extra.pop(route.key, None)

    def note_resync(self, reason: str) -> None:
        """Record a forced full re-dump (netlink overrun or unknown outcome)."""
        self.counters["resyncs"] += 1
        self._emit(KernelEventKind.RESYNC, None, reason)

    # -- queries ---------------------------------------------------------------------------

    def resolve_gateway(self, addr: IPAddress) -> NextHop | str:
        """How a BGP next hop resolves in the kernel now (for display: ``via X on eth0``)."""
        return self._resolver.resolve(addr)

    def installed(self, prefix: IPNetwork) -> bool:
        """The kernel holds a route of ours for ``prefix`` equal to the wanted one."""
        key = network_key(prefix)
        current = self._current(key)
        return current is not None and current == self._desired_of(key)

    def ours(self) -> dict[IPNetwork, FibRoute]:
        """Routes of ours at the primary key, as last seen."""
        return {key_network(key): with_key(key, body) for key, body in self._routes_of_ours()}

    def all_ours(self) -> list[FibRoute]:
        """Every route of ours we know of, including ones at other metrics."""
        return [with_key(key, body) for key, body in self._routes_of_ours()] + [
            r for rs in self._extra.values() for r in rs
        ]

    def learned(self) -> dict[IPNetwork, LearnedRoute]:
        """Alien routes currently learned."""
        return {r.prefix: r for r in self._learned.values()}

    def desired(self, prefix: IPNetwork) -> FibRoute | None:
        """The kernel route we aim at for a wanted prefix (None: not programmable)."""
        key = network_key(prefix)
        body = self._desired_of(key)
        return None if body is None else with_key(key, body)

    def pending(self) -> int:
        """Prefixes queued or in flight."""
        return len(self._dirty) + len(self._unwanted) + len(self._inflight)

    def stats(self) -> dict[str, int]:
        """Counters plus sizes (cheaper than :meth:`snapshot`: the routes of ours are counted
        by a walk of the wanted prefixes, which builds nothing)."""
        out = dict(self.counters)
        out["wanted"] = sum(1 for v in self._wanted.values() if not isinstance(v, FibRoute))
        out["ours"] = sum(1 for _ in self._routes_of_ours()) + sum(
            len(v) for v in self._extra.values()
        )
        out["learned"] = len(self._learned)
        out["pending"] = self.pending()
        return out

    def snapshot(self) -> KernelSnapshot:
        """Wanted vs installed per prefix, with state and reason."""
        keys = sorted(self._wanted.keys() | self._ours.keys() | self._extra.keys(), key=key_order)
        unwanted = set(self._unwanted)
        entries = tuple(self._entry(key, unwanted) for key in keys)
        return KernelSnapshot(self.converged, entries, self.stats())

    def _entry(self, key: int, unwanted: set[int]) -> KernelSnapshotEntry:
        hops = self._wanted_hops(key)
        want = self._desired_of(key)
        current = self._current(key)
        extras = self._extra.get(key)
        prefix = key_network(key)
        wanted = None if hops is None else KernelRoute.trusted(prefix, hops, not hops)
        installed = (
            InstalledRoute(
                current.type,
                tuple(nh.gateway for nh in current.nexthops),
                tuple(nh.oif for nh in current.nexthops),
                current.priority,
            )
            if current is not None
            else None
        )
        queued = key in self._dirty or key in unwanted
        busy = queued or key in self._inflight
        problem = self._blocked.get(key) or self._errors.get(key) or ""
        state: RouteState
        if want is not None and current == want and not (self.converged and extras):
            state, reason = RouteState.INSTALLED, self._why.get(key, "")
        elif want is not None and current is not None and self._held(key, want, current):
            state = RouteState.PENDING
            reason = "found at start-up with more next hops: kept whole until convergence"
        elif busy:
            state = RouteState.PENDING
            reason = "change queued" if queued else "in flight"
        elif want is not None:
            state = RouteState.MISSING if current is None else RouteState.DIFFERS
            reason = problem or self._lost.get(key, "") or "retried at next scan"
        elif current is not None or extras:
            if (current is not None and self._keeps(key)) or (
                extras and any(self._keeps_extra(r) for r in extras)
            ):
                state = RouteState.PENDING
                reason = "found at start-up: kept until convergence, then deleted unless wanted"
            else:
                state, reason = RouteState.DIFFERS, problem or "delete retried at next scan"
            if wanted is not None:
                reason = f"{self._why.get(key, '')}; {reason}"
        else:
            state, reason = RouteState.MISSING, self._why.get(key, "not programmable")
        return KernelSnapshotEntry(prefix, state, wanted, installed, reason)


def _learnable(route: FibRoute) -> bool:
    """BIRD's krt learn filter: not kernel/redirect, a forwarding type, and on something."""
    if route.proto in (RTPROT_KERNEL, RTPROT_REDIRECT):
        return False
    if route.type not in LEARNABLE_TYPES:
        return False
    if route.type == RouteType.UNICAST:
        return any(nh.gateway is not None or nh.oif for nh in route.nexthops)
    return True


_GATEWAYS: dict[int, tuple[tuple[NextHop, ...], tuple[IPAddress, ...]]] = {}


def _gateways(route: FibRoute) -> tuple[IPAddress, ...]:
    """The gateways of a route, for events (memoised on the shared next-hop tuple)."""
    hops = route.nexthops
    if not hops:
        return ()
    hit = _GATEWAYS.get(id(hops))
    if hit is not None and hit[0] is hops:
        return hit[1]
    out = tuple(nh.gateway for nh in hops if nh.gateway is not None)
    if len(_GATEWAYS) > 4096:
        _GATEWAYS.clear()
    _GATEWAYS[id(hops)] = (hops, out)  # holds hops: the id cannot be reused meanwhile
    return out
