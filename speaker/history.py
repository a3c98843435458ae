"""A bounded, per-peer memory of what happened: ``show events`` and ``speaker watch`` read it.

A log scrolls away and lives only where stderr went; a student asking "why did this session
go down at 06:58?" wants the speaker itself to answer.  This sink keeps the last
``per_peer`` notable events of each peer (FSM transitions with their cause, OPEN and
NOTIFICATION summaries, graceful-restart phases, refreshes, limits, resets) and of the
speaker itself (start, reloads, recovery), and hands every notable event to live watchers.

"Notable" is the log's own rule: events at INFO or above (routine UPDATEs, KEEPALIVEs and
per-route kernel writes are DEBUG), so the history is what a default log would have shown,
kept in memory and addressable by peer.  Memory is bounded: ``per_peer`` entries for each of
at most ``max_peers`` keys.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from speaker.config import PeerConfig
from speaker.control.views import EventView
from speaker.events import Event, fixed_level

SPEAKER = ""
"""The key of the speaker's own events (not about one peer)."""


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One remembered event: when (wall clock), whose, what kind, what it said."""

    time: float
    peer: str
    """The neighbour's address or protocol name as the event gave it ("" for the speaker)."""
    kind: str
    level: int
    text: str
    fields: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"time": self.time, "peer": self.peer or None, "kind": self.kind,
                "level": logging.getLevelName(self.level).lower(), "text": self.text,
                "fields": self.fields}


Watcher = Callable[[HistoryEntry], None]


class EventHistory:
    """Event-bus subscriber keeping the last events per peer; also the fan-out for watchers."""

    def __init__(
        self,
        per_peer: int = 256,
        max_peers: int = 4096,
        level: int = logging.INFO,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.per_peer = per_peer
        self.max_peers = max_peers
        self.level = level
        self._clock = clock
        self._by_peer: dict[str, deque[HistoryEntry]] = {}
        self._watchers: list[Watcher] = []

    def wants(self, cls: type[Event]) -> bool:
        """For the bus: not the events of a fixed level below :attr:`level` (set it before
        the first events, or call :meth:`EventBus.refresh`)."""
        fixed = fixed_level(cls)
        return fixed is None or fixed >= self.level

    def __call__(self, event: Event) -> None:
        level = event.level()
        if level < self.level:
            return
        peer = str(getattr(event, "peer", "") or "")
        fields = event.to_dict()
        fields.pop("event", None)
        entry = HistoryEntry(self._clock(), peer, event.KIND, level, event.describe(), fields)
        kept = self._by_peer.get(peer)
        if kept is None:
            if len(self._by_peer) >= self.max_peers:
                return  # bounded: a flood of new keys does not grow memory
            kept = self._by_peer[peer] = deque(maxlen=self.per_peer)
        kept.append(entry)
        for watcher in list(self._watchers):
            watcher(entry)

    def entries(
        self, peers: Iterable[str] | None = None, since: float | None = None
    ) -> list[HistoryEntry]:
        """Remembered events of ``peers`` (keys as events give them; None: everyone and the
        speaker), at or after ``since`` (wall clock), oldest first."""
        keys = self._by_peer.keys() if peers is None else [p for p in peers if p in self._by_peer]
        out = [e for k in keys for e in self._by_peer[k] if since is None or e.time >= since]
        out.sort(key=lambda e: e.time)
        return out

    def watch(self, watcher: Watcher) -> Callable[[], None]:
        """Call ``watcher`` with every notable event from now on; returns the unsubscribe."""
        self._watchers.append(watcher)
        return lambda: self._watchers.remove(watcher)

    # -- as the control socket shows them ---------------------------------------------------

    def views(
        self, peers: Iterable[PeerConfig], name: str | None, since: datetime | None
    ) -> list[EventView]:
        """``show events [NAME] [since T]``: protocol names instead of addresses."""
        names = _names(peers)
        start = None if since is None else since.timestamp()
        return [_view(e, names) for e in self.entries(_keys(names, name), start)]

    def watch_views(
        self, peers: Iterable[PeerConfig], name: str | None, callback: Callable[[EventView], None]
    ) -> Callable[[], None]:
        """``watch [NAME]``: each new event of ``name`` (or all) as a view."""
        names = _names(peers)
        keys = _keys(names, name)

        def deliver(entry: HistoryEntry) -> None:
            if keys is None or entry.peer in keys:
                callback(_view(entry, names))

        return self.watch(deliver)


def _names(peers: Iterable[PeerConfig]) -> dict[str, str]:
    """Protocol name by neighbour address (session events carry the address)."""
    return {str(p.address): p.name for p in peers}


def _keys(names: dict[str, str], name: str | None) -> set[str] | None:
    """The history keys of protocol ``name``: its name and its address."""
    if name is None:
        return None
    return {name, *(address for address, n in names.items() if n == name)}


def _view(entry: HistoryEntry, names: dict[str, str]) -> EventView:
    text = entry.text
    if entry.peer and text.startswith(f"{entry.peer}: "):
        text = text[len(entry.peer) + 2:]  # the protocol column already says whose
    return EventView(
        time=datetime.fromtimestamp(entry.time).astimezone(),
        peer=names.get(entry.peer, entry.peer),
        kind=entry.kind,
        level=logging.getLevelName(entry.level).lower(),
        text=text,
        fields=entry.fields,
    )
