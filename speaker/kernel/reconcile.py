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
"""

from __future__ import annotations

import errno
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from enum import IntEnum, StrEnum
from ipaddress import IPv4Network, IPv6Network
from itertools import islice
from typing import NamedTuple

from speaker.kernel.codec import FibRoute, Interner, NextHop, addr_key, net_key, sort_nexthops
from speaker.kernel.model import (
    LEARNABLE_TYPES,
    RTPROT_KERNEL,
    RTPROT_REDIRECT,
    InstalledRoute,
    IPAddress,
    IPNetwork,
    KernelConfig,
    KernelEvent,
    KernelEventKind,
    KernelRoute,
    KernelSnapshot,
    KernelSnapshotEntry,
    LearnedRoute,
    RouteState,
    RouteType,
)
from speaker.kernel.resolve import Resolver

#: OpResult.error for a request the kernel never answered (socket overrun): outcome unknown.
UNKNOWN_OUTCOME = -1

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
    """One planned change; ``route`` is the full route for ADD/REPLACE, the victim for DELETE."""

    kind: OpKind
    route: FibRoute
    cause: KernelEventKind
    reason: str


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


class Reconciler:
    """State of one kernel table as the bridge sees it, and what to change in it.

    Internally every prefix is an int key (:func:`~speaker.kernel.codec.net_key`) and every
    prefix/address object is interned, which keeps a 100k-route scan cheap."""

    def __init__(self, config: KernelConfig, ifnames: Mapping[int, str] | None = None) -> None:
        self.config = config
        self.phase = Phase.ADOPTING
        self.loaded = False
        self.interner = Interner()
        self.ifnames: Mapping[int, str] = ifnames if ifnames is not None else {}
        self.unknown_ifindex = False  # a learned route names a device we have no name for
        self.needs_scan = False  # an outcome surprised us (EEXIST, no answer): re-dump soon
        self.counters: Counter[str] = Counter()
        self.route_events = True
        """Publish an event per routine route write (installed, deleted...).  The daemon
        turns this off unless its log shows DEBUG or events go to JSON or metrics: a
        100,000-route feed would build and drop 100,000 events; the counters still count."""
        self._limit = config.merge_limit if config.merge_paths else 1
        self._wanted: dict[int, KernelRoute] = {}
        self._desired: dict[int, FibRoute | None] = {}
        self._why: dict[int, str] = {}  # why desired is None, or partial resolution
        self._ours: dict[int, FibRoute] = {}  # kernel: ours at the primary key
        self._extra: dict[int, list[FibRoute]] = {}  # kernel: ours at other keys
        self._others: dict[int, OthersSlot] = {}  # kernel: everything not ours
        self._learned: dict[int, LearnedRoute] = {}
        # prefixes to look at, oldest first (a plain dict: an OrderedDict allocates a list
        # node per entry, and marking 100,000 prefixes dirty was a quarter of unwant())
        self._dirty: dict[int, None] = {}
        self._inflight: dict[int, int] = {}
        self._redo: set[int] = set()
        self._errors: dict[int, str] = {}
        self._blocked: dict[int, str] = {}
        self._lost: dict[int, str] = {}
        self._withdrawn: set[int] = set()
        self._adopted: set[int] = set()  # found at start-up, not yet written by us
        # found at start-up and not yet confirmed (wanted, programmable) by the RIB in this
        # run: the only routes of ours kept, though unwanted, until convergence
        self._unconfirmed: set[int] = set()
        self._unconfirmed_extra: set[tuple[int, int, int]] = set()  # (key, tos, metric)
        self._event_fix: dict[int, float] = {}
        self._resolver = Resolver()
        # BGP next hop -> how many wanted prefixes use it (a count, not a set of 100,000
        # keys: a next hop whose resolution changes is rare, and then one walk finds them)
        self._nh_users: dict[int, int] = {}
        self._nh_addr: dict[int, IPAddress] = {}
        self._nh_cache: dict[int, NextHop | str] = {}
        self._hopsets: dict[tuple[int, ...], tuple[tuple[NextHop, ...], str]] = {}
        self._nh_keys: dict[int, tuple[tuple[IPAddress, ...], tuple[int, ...]]] = {}
        self._events: list[KernelEvent] = []
        self._learn_changes: list[LearnedRoute | IPNetwork] = []

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
        key = net_key(route.prefix)
        old = self._wanted.get(key)
        hops = route.nexthops
        if old is not None and old.nexthops is hops and old.blackhole == route.blackhole:
            return  # the same wanted route (the core shares one tuple per next-hop set)
        if old == route:
            return
        self._wanted[key] = route
        nh_keys = self._nh_keys_of(hops)
        if old is None or old.nexthops is not hops:
            self._track_nexthops(key, old, route, nh_keys)
        self._withdrawn.discard(key)
        self._recompute(key, nh_keys)
        self._dirty[key] = None

    def unwant(self, prefix: IPNetwork) -> None:
        """No route wanted for ``prefix`` any more: deleted at once, unless it is an adopted
        route no peer has confirmed yet (then it waits for convergence)."""
        if not isinstance(prefix, (IPv4Network, IPv6Network)):
            raise TypeError(f"unwant() takes an ipaddress network, got {prefix!r}")
        key = net_key(prefix)
        old = self._wanted.pop(key, None)
        if old is None:
            return
        self._track_nexthops(key, old, None)
        self._desired.pop(key, None)
        for notes in (self._why, self._lost, self._blocked, self._errors):
            if notes:  # usually empty
                notes.pop(key, None)
        if key in self._ours or key in self._inflight:
            self._withdrawn.add(key)
        self._dirty[key] = None

    def converge(self, reason: str) -> None:
        """The RIB has converged: from now on unwanted routes of ours are deleted."""
        if self.phase is Phase.CONVERGED:
            return
        self.phase = Phase.CONVERGED
        self._emit(KernelEventKind.CONVERGED, None, reason)
        for key in self._ours:
            if self._desired.get(key) is None:
                self._dirty[key] = None
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

    def _track_nexthops(
        self,
        key: int,
        old: KernelRoute | None,
        new: KernelRoute | None,
        nh_keys: tuple[int, ...] = (),
    ) -> None:
        users = self._nh_users
        if old is not None:
            for akey in self._nh_keys_of(old.nexthops):
                count = users.get(akey)
                if count is not None:
                    if count > 1:
                        users[akey] = count - 1
                    else:
                        del users[akey]
                        self._nh_cache.pop(akey, None)
                        self._hopsets.clear()
                        self._nh_addr.pop(akey, None)
        if new is not None:
            for addr, akey in zip(new.nexthops, nh_keys, strict=True):
                count = users.get(akey)
                if count is None:
                    users[akey] = 1
                    self._nh_addr[akey] = self.interner.addr(addr)
                else:
                    users[akey] = count + 1

    def _nh_keys_of(self, hops: tuple[IPAddress, ...]) -> tuple[int, ...]:
        """The address keys of a next-hop tuple, memoised on the (shared) tuple object."""
        hit = self._nh_keys.get(id(hops))
        if hit is not None and hit[0] is hops:
            return hit[1]
        keys = tuple(addr_key(addr) for addr in hops)
        if len(self._nh_keys) > 4096:
            self._nh_keys.clear()
        self._nh_keys[id(hops)] = (hops, keys)  # holds hops: the id cannot be reused meanwhile
        return keys

    def _resolve(self, akey: int) -> NextHop | str:
        hop = self._nh_cache.get(akey)
        if hop is None:
            hop = self._nh_cache[akey] = self._resolver.resolve(self._nh_addr[akey])
        return hop

    def _recompute(self, key: int, nh_keys: tuple[int, ...] | None = None) -> None:
        """Desired kernel route for a wanted prefix: reject_cidrs, blackhole, or resolved
        next hops (deduplicated, at most merge_limit, or 1 when merge paths is off)."""
        cfg = self.config
        route = self._wanted[key]
        if cfg.reject_cidrs and cfg.rejects(route.prefix):
            self._desired[key] = None
            self._why[key] = "inside reject_cidrs: never programmed"
            return
        prefix = self.interner.net_for(key, route.prefix)
        metric = 1024 if prefix.version == 6 else 0
        if route.blackhole:
            self._desired[key] = FibRoute(
                key, prefix, cfg.table, cfg.protocol, RouteType.BLACKHOLE, 0, metric
            )
            self._why.pop(key, None)
            return
        if nh_keys is None:
            nh_keys = tuple(addr_key(addr) for addr in route.nexthops)
        resolved = self._hopsets.get(nh_keys)
        if resolved is None:
            resolved = self._hopsets[nh_keys] = self._resolve_set(nh_keys)
        hops, problems = resolved
        if not hops:
            self._desired[key] = None
            self._why[key] = problems or "no usable next hop"
            return
        self._desired[key] = FibRoute(
            key, prefix, cfg.table, cfg.protocol, RouteType.UNICAST, 0, metric, hops
        )
        if problems:
            self._why[key] = problems
        else:
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
        return sort_nexthops(hops), "; ".join(problems)

    # -- the kernel side -------------------------------------------------------------------

    def load(self, routes: Iterable[FibRoute], now: float, *, initial: bool = False) -> None:
        """A full, consistent dump of the table (start-up or scan): the authoritative view."""
        cfg = self.config
        table, proto = cfg.table, cfg.protocol
        new_ours: dict[int, FibRoute] = {}
        new_extra: dict[int, list[FibRoute]] = {}
        new_others: dict[int, OthersSlot] = {}
        for route in routes:
            if route.table != table:
                continue
            if route.proto == proto:
                if route.is_primary:
                    new_ours[route.key] = route
                else:
                    new_extra.setdefault(route.key, []).append(route)
            else:
                new_others.setdefault(route.key, {})[(route.tos, route.priority)] = route
        self.counters["scans"] += 1
        self._event_fix.clear()
        self.needs_scan = False
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
            self._ours = new_ours
            self._extra = new_extra
            if self.phase is Phase.ADOPTING:
                self._adopted = set(new_ours)
                self._unconfirmed = set(new_ours)
                self._unconfirmed_extra = {
                    (r.key, r.tos, r.priority) for rs in new_extra.values() for r in rs
                }
            for route in new_ours.values():
                self._emit(
                    KernelEventKind.ADOPTED,
                    route.prefix,
                    "route of ours found at start-up: kept until convergence",
                    _gateways(route),
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
        old = self._ours
        desired = self._desired
        inflight = self._inflight
        dirty = self._dirty
        for key, route in new_ours.items():
            before = old.get(key)
            if before != route and key not in inflight:
                if before is not None and before == desired.get(key):
                    self._lost[key] = "altered outside the speaker"
                dirty[key] = None
        for key in old.keys() - new_ours.keys():
            if key not in inflight:
                if old[key] == desired.get(key):
                    self._lost[key] = "deleted outside the speaker"
                dirty[key] = None
        self._ours = new_ours
        if self._unconfirmed:  # an adopted route gone from the kernel is adopted no more
            self._unconfirmed.intersection_update(new_ours)
        if new_extra != self._extra:
            for key in new_extra.keys() | self._extra.keys():
                dirty[key] = None
            self._extra = new_extra
        for key, want in desired.items():  # retry what failed or is still off
            if want is not None and new_ours.get(key) != want:
                dirty[key] = None
        # the safety net: every unwanted route of ours that may go is (re)tried at each scan
        keeps = self._keeps
        for key in new_ours:
            if desired.get(key) is None and not keeps(key):
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
        current = self._ours.get(key)
        if deleted:
            if current is None:
                return
            del self._ours[key]
            self._unconfirmed.discard(key)
        else:
            if current == route:
                return
            self._ours[key] = route
        if key in self._inflight:
            return
        if current is not None and current == self._desired.get(key):
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
                self._hopsets.clear()
                self._nh_cache[akey] = hop
                moved.add(akey)
        if moved:
            for key, route in self._wanted.items():
                if not moved.isdisjoint(self._nh_keys_of(route.nexthops)):
                    self._recompute(key)
                    self._dirty[key] = None
        for key in keys:
            if key in self._wanted or key in self._ours:
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
        return self.loaded and bool(self._dirty)

    def plan(self, limit: int) -> list[Op]:
        """Up to ``limit`` changes for dirty prefixes (each prefix at most once in flight)."""
        ops: list[Op] = []
        if not self.loaded:
            return ops
        dirty = self._dirty
        inflight = self._inflight
        while dirty and len(ops) < limit:
            # oldest first, in slices: a key marked dirty again while waiting keeps its place
            for key in list(islice(dirty, limit - len(ops))):
                del dirty[key]
                if key in inflight:
                    self._redo.add(key)
                    continue
                self._plan_key(key, ops)
        return ops

    def _start(self, op: Op, ops: list[Op]) -> None:
        ops.append(op)
        key = op.route.key
        self._inflight[key] = self._inflight.get(key, 0) + 1

    def _plan_key(self, key: int, ops: list[Op]) -> None:
        want = self._desired.get(key)
        current = self._ours.get(key)
        converged = self.phase is Phase.CONVERGED
        if want is not None:
            if self._unconfirmed:
                self._unconfirmed.discard(key)  # a peer wants this prefix: confirmed
            blocker = self._blocker(key, want.priority) if self._others else None
            if blocker is not None:
                text = (
                    f"proto {proto_name(blocker.proto)} route {blocker.describe()} holds this "
                    "prefix at our metric; alien routes are never overwritten"
                )
                if self._blocked.get(key) != text:
                    self._blocked[key] = text
                    self._emit(KernelEventKind.BLOCKED, want.prefix, text, _gateways(want))
            else:
                self._blocked.pop(key, None)
                if current is not None and current != want and self._held(key, want, current):
                    pass  # adopted multipath kept whole until convergence
                elif current is None or current != want:
                    lost = self._lost.get(key)
                    if current is None:
                        kind = OpKind.ADD
                        cause = KernelEventKind.REINSTALLED if lost else KernelEventKind.INSTALLED
                        reason = lost or self._why.get(key) or "wanted"
                    else:
                        kind = OpKind.REPLACE
                        cause = KernelEventKind.REINSTALLED if lost else KernelEventKind.REPLACED
                        reason = lost or f"was {current.describe()}"
                    self._start(Op(kind, want, cause, reason), ops)
                else:
                    self._lost.pop(key, None)
                    self._errors.pop(key, None)
        elif current is not None and not self._keeps(key):
            if key in self._wanted:
                cause, reason = KernelEventKind.DELETED, self._why.get(key, "not programmable")
            elif key in self._withdrawn:
                cause, reason = KernelEventKind.DELETED, "withdrawn"
            elif converged:
                cause, reason = KernelEventKind.SWEPT, "not wanted after convergence"
            else:
                cause, reason = KernelEventKind.SWEPT, "not wanted, not found at start-up"
            self._start(Op(OpKind.DELETE, current, cause, reason), ops)
        if key in self._extra:
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

    def _blocker(self, key: int, metric: int) -> FibRoute | None:
        slot = self._others.get(key)
        if not slot:
            return None
        return slot.get((0, metric))

    def apply(self, results: Iterable[OpResult], now: float) -> None:
        """Fold the kernel's answers into the view; failures are kept and retried per scan."""
        inflight = self._inflight
        ours = self._ours
        writes = 0
        for op, error, message in results:
            route = op.route
            key = route.key
            left = inflight.get(key, 1) - 1
            if left > 0:
                inflight[key] = left
            else:
                inflight.pop(key, None)
            kind = op.kind
            ok = error == 0 or (kind is _DELETE and error in (errno.ESRCH, errno.ENOENT))
            if ok:
                writes += 1
                # the sets below are empty but around a restart or a failure: test first
                if kind is _DELETE:
                    if route.is_primary:
                        ours.pop(key, None)
                        self._withdrawn.discard(key)
                        if self._adopted:
                            self._adopted.discard(key)
                        if self._unconfirmed:
                            self._unconfirmed.discard(key)
                    else:
                        self._drop_extra(route)
                else:
                    ours[key] = route
                    if self._lost:
                        self._lost.pop(key, None)
                    if self._adopted:
                        self._adopted.discard(key)
                    if self._unconfirmed:
                        self._unconfirmed.discard(key)
                if self._errors:
                    self._errors.pop(key, None)
                cause = op.cause
                if self.route_events or cause not in _ROUTINE:
                    self._emit(cause, route.prefix, op.reason, _gateways(route))
                else:
                    self.counters[_KIND_NAME[cause]] += 1
            else:
                self.counters["write_errors"] += 1
                if error == UNKNOWN_OUTCOME:
                    text = message or "no answer from the kernel"
                    self.needs_scan = True
                else:
                    text = os.strerror(error) + (f": {message}" if message else "")
                    if op.kind is OpKind.ADD and error == errno.EEXIST:
                        self.needs_scan = True  # someone holds the key; the scan tells who
                if self._errors.get(key) != text:
                    self._errors[key] = text
                    self._emit(
                        KernelEventKind.FAILED,
                        route.prefix,
                        f"{op.kind.name.lower()} {route.describe()}: {text}",
                        _gateways(route),
                        max(error, 0),
                    )
            if self._redo and key in self._redo and key not in inflight:
                self._redo.discard(key)
                self._dirty[key] = None
        if writes:
            self.counters["writes"] += writes

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
        key = net_key(prefix)
        current = self._ours.get(key)
        return current is not None and current == self._desired.get(key)

    def ours(self) -> dict[IPNetwork, FibRoute]:
        """Routes of ours at the primary key, as last seen."""
        return {r.prefix: r for r in self._ours.values()}

    def all_ours(self) -> list[FibRoute]:
        """Every route of ours we know of, including ones at other metrics."""
        return list(self._ours.values()) + [r for rs in self._extra.values() for r in rs]

    def learned(self) -> dict[IPNetwork, LearnedRoute]:
        """Alien routes currently learned."""
        return {r.prefix: r for r in self._learned.values()}

    def desired(self, prefix: IPNetwork) -> FibRoute | None:
        """The kernel route we aim at for a wanted prefix (None: not programmable)."""
        return self._desired.get(net_key(prefix))

    def pending(self) -> int:
        """Prefixes queued or in flight."""
        return len(self._dirty) + len(self._inflight)

    def stats(self) -> dict[str, int]:
        """Counters plus sizes (cheap, unlike :meth:`snapshot`)."""
        out = dict(self.counters)
        out["wanted"] = len(self._wanted)
        out["ours"] = len(self._ours) + sum(len(v) for v in self._extra.values())
        out["learned"] = len(self._learned)
        out["pending"] = self.pending()
        return out

    def snapshot(self) -> KernelSnapshot:
        """Wanted vs installed per prefix, with state and reason."""
        entries = [
            self._entry(key) for key in self._wanted.keys() | self._ours.keys() | self._extra.keys()
        ]
        entries.sort(
            key=lambda e: (e.prefix.version, int(e.prefix.network_address), e.prefix.prefixlen)
        )
        return KernelSnapshot(self.converged, tuple(entries), self.stats())

    def _entry(self, key: int) -> KernelSnapshotEntry:
        wanted = self._wanted.get(key)
        want = self._desired.get(key)
        current = self._ours.get(key)
        extras = self._extra.get(key)
        if wanted is not None:
            prefix = wanted.prefix
        elif current is not None:
            prefix = current.prefix
        else:
            assert extras
            prefix = extras[0].prefix
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
        busy = key in self._dirty or key in self._inflight
        problem = self._blocked.get(key) or self._errors.get(key) or ""
        state: RouteState
        if want is not None and current == want and not (self.converged and extras):
            state, reason = RouteState.INSTALLED, self._why.get(key, "")
        elif want is not None and current is not None and self._held(key, want, current):
            state = RouteState.PENDING
            reason = "found at start-up with more next hops: kept whole until convergence"
        elif busy:
            state = RouteState.PENDING
            reason = "change queued" if key in self._dirty else "in flight"
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
