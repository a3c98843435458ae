"""Route limits per peer with BIRD 1.6's semantics: ``receive limit`` and ``import limit``.

BIRD (nest/rt-table.c ``rte_recalculate``, nest/proto.c ``proto_notify_limit``) checks a limit
each time a *new* route (a key not held yet) arrives: when the count already held is at the
limit, the limit is hit.  ``warn`` logs (once per crossing) and keeps the route; ``block``
ignores this and every later new route until the protocol restarts (updates of routes held
still pass); ``restart`` and ``disable`` also ignore it and take the protocol down: BGP sends
Cease / Maximum Number of Prefixes Reached (RFC 4486 4), ``restart`` comes back after the
error wait, ``disable`` stays down until ``enable``.  The receive limit is checked before the
import limit; a route the receive limit ignores never reaches the import limit.

What is counted: BIRD's receive limit counts the routes received and remembered (imported
plus filtered-and-kept), the import limit the routes accepted by the import filter.  The
speaker has no import filter (Calico's mesh imports all), so both count the peer's routes in
its Adj-RIB-In (one per prefix and path id); they differ in order and in the words shown.
Limit state is reset when the session comes up again (BIRD resets it at protocol start).

Why at the core and not in the RIB: the check needs the session (Cease, restart, disable) and
the config; it runs only for peers with a limit, so the RIB's hot path is untouched.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import ClassVar

from speaker.config import LimitAction, PeerConfig, RouteLimit
from speaker.events import Event
from speaker.rib.adj_in import AdjRibIn
from speaker.wire.attributes import MpReachAttr, MpUnreachAttr, PathAttribute
from speaker.wire.messages import Update
from speaker.wire.nlri import Nlri

#: BIRD's word for each limit, as ``show protocols all`` and its log print it.
RECEIVE = "receive"
IMPORT = "import"


@dataclass(slots=True)
class LimitState:
    """One limit of one peer and where it stands (BIRD ``struct proto_limit``)."""

    direction: str
    """``receive`` or ``import``."""
    config: RouteLimit
    hit: bool = False
    """The limit was reached (BIRD PLS_ACTIVE / PLS_BLOCKED: ``[HIT]`` in the show output)."""
    blocked: bool = False
    """New routes are ignored (block, restart, disable: BIRD PLS_BLOCKED)."""

    @property
    def limit(self) -> int:
        return self.config.limit

    @property
    def action(self) -> LimitAction:
        return self.config.action

    def reset(self) -> None:
        self.hit = self.blocked = False


def limit_states(peer: PeerConfig) -> tuple[LimitState, ...]:
    """The peer's limits, receive first (the order BIRD checks them in)."""
    out: list[LimitState] = []
    if peer.receive_limit is not None:
        out.append(LimitState(RECEIVE, peer.receive_limit))
    if peer.import_limit is not None:
        out.append(LimitState(IMPORT, peer.import_limit))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class RouteLimitHit(Event):
    """A peer reached a route limit; what happens next is the limit's action."""

    KIND: ClassVar[str] = "route-limit"
    LEVEL: ClassVar[int] = logging.WARNING
    peer: str
    direction: str
    limit: int
    action: str
    count: int
    """Routes held from the peer when the limit was hit."""

    def describe(self) -> str:
        # BIRD's own words (proto_notify_limit), then what follows
        text = (
            f"Protocol {self.peer} hits route {self.direction} limit ({self.limit}), "
            f"action: {self.action}"
        )
        consequence = {
            "warn": "routes kept",
            "block": "new routes ignored until the session restarts",
            "restart": "Cease 6/1 (Maximum Number of Prefixes Reached) sent; restart after "
            "the error wait",
            "disable": "Cease 6/1 (Maximum Number of Prefixes Reached) sent; down until enable",
        }[self.action]
        return f"{text}: {consequence}"


@dataclass(frozen=True, slots=True)
class LimitOutcome:
    """What checking one UPDATE against a peer's limits gave."""

    update: Update
    """The UPDATE without the new routes the limits ignore."""
    hits: tuple[RouteLimitHit, ...] = ()
    down: LimitState | None = None
    """The limit whose action (restart, disable) takes the session down, if one did."""


def check_update(
    update: Update, adj: AdjRibIn, limits: tuple[LimitState, ...], peer: str
) -> LimitOutcome:
    """Check the new routes of ``update`` against ``limits`` as BIRD does, in order.

    ``adj`` is the peer's Adj-RIB-In before the UPDATE.  Withdrawals of the UPDATE count
    first (the RIB applies them before the announcements)."""
    reach: MpReachAttr | None = None
    gone: set[Nlri] = set(update.withdrawn)
    for a in update.attributes:
        if isinstance(a, MpReachAttr):
            reach = a
        elif isinstance(a, MpUnreachAttr):
            gone.update(a.withdrawn)
    count = len(adj) - sum(1 for n in gone if n in adj)
    seen: set[Nlri] = set()
    hits: list[RouteLimitHit] = []
    down: LimitState | None = None

    def admit(nlri: Nlri) -> bool:
        nonlocal count, down
        if (nlri in adj and nlri not in gone) or nlri in seen:
            return True  # an update of a route held: never limited (BIRD: ``old`` is set)
        for state in limits:
            if state.blocked:
                return False
            if count >= state.limit:
                # BIRD logs on the first hit, and for warn every time the count is the limit
                if not state.hit or (state.action is LimitAction.WARN and count == state.limit):
                    hits.append(
                        RouteLimitHit(peer, state.direction, state.limit, state.action.value, count)
                    )
                state.hit = True
                if state.action is not LimitAction.WARN:
                    state.blocked = True
                    if state.action in (LimitAction.RESTART, LimitAction.DISABLE) and down is None:
                        down = state
                    return False
        seen.add(nlri)
        count += 1
        return True

    nlri = tuple(n for n in update.nlri if admit(n))
    attributes: tuple[PathAttribute, ...] = update.attributes
    if reach is not None:
        kept = tuple(n for n in reach.nlri if admit(n))
        if len(kept) != len(reach.nlri):
            attributes = tuple(replace(a, nlri=kept) if a is reach else a for a in attributes)
    if len(nlri) != len(update.nlri) or attributes is not update.attributes:
        update = replace(update, nlri=nlri, attributes=attributes)
    return LimitOutcome(update, tuple(hits), down)
