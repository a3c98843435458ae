"""The control socket's view of the running speaker (implements ``ControlBackend``).

Queries read the core through :mod:`speaker.core.status` (snapshots taken on the event loop);
actions are the core's commands.  Nothing here decides anything: a command the core refuses
(:class:`~speaker.core.CoreError`) becomes ``CommandFailed`` for the operator.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from ipaddress import IPv4Network
from typing import TYPE_CHECKING

from speaker.control.commands import CommandFailed
from speaker.control.views import (
    ActionOutcome,
    DatastorePeerView,
    DatastoreView,
    EventView,
    ExplainView,
    KernelView,
    ProtocolStatus,
    RouteView,
    StatusView,
)
from speaker.core import CoreError, SpeakerCore, explain, status
from speaker.core.status import KernelReader
from speaker.history import EventHistory, HistoryEntry
from speaker.kernel.model import KernelSnapshotEntry

if TYPE_CHECKING:
    from speaker.datastore.feed import DatastoreFeed

class SpeakerBackend:
    """``ControlBackend`` over a :class:`SpeakerCore` and the kernel bridge's read side."""

    def __init__(
        self,
        core: SpeakerCore,
        kernel: KernelReader,
        clock: Callable[[], float],
        graceful_restart: Callable[[], Awaitable[str]],
        *,
        datastore: DatastoreFeed | None = None,
        history: EventHistory | None = None,
    ) -> None:
        self.core = core
        self.feed = datastore
        self.history = history or EventHistory()
        self.kernel_reader = kernel
        self.clock = clock
        self._graceful_restart = graceful_restart

    def _wall(self, t: float) -> datetime:
        """A time of the core's (monotonic) clock as wall-clock time."""
        return datetime.fromtimestamp(time.time() - (self.clock() - t))

    # -- explain ---------------------------------------------------------------------------

    def explain(self, target: str, peer: str | None) -> ExplainView:
        def kernel_entry(prefix: IPv4Network) -> KernelSnapshotEntry | None:
            return self.kernel_reader.snapshot().by_prefix().get(prefix)

        try:
            # the RIB stamps paths with the wall clock (Rib's clock is time.time)
            return explain.explain(self.core, target, peer, kernel_entry, datetime.fromtimestamp)
        except explain.ExplainError as exc:
            raise CommandFailed(str(exc)) from None

    # -- events ----------------------------------------------------------------------------

    def _keys(self, name: str | None) -> set[str] | None:
        """The history keys of protocol ``name``: its name and its address (session events
        carry the neighbour's address)."""
        if name is None:
            return None
        try:
            return {name, str(self.core.config.peer(name).address)}
        except KeyError:
            return {name}

    def _view(self, entry: HistoryEntry) -> EventView:
        names = {str(p.address): p.name for p in self.core.config.peers}
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

    def events(self, name: str | None, since: datetime | None) -> Sequence[EventView]:
        start = None if since is None else since.timestamp()
        return [self._view(e) for e in self.history.entries(self._keys(name), start)]

    def watch(self, name: str | None, callback: Callable[[EventView], None]) -> Callable[[], None]:
        keys = self._keys(name)

        def deliver(entry: HistoryEntry) -> None:
            if keys is None or entry.peer in keys:
                callback(self._view(entry))

        return self.history.watch(deliver)

    # -- queries ---------------------------------------------------------------------------

    def protocols(self) -> Sequence[ProtocolStatus]:
        return status.protocols(self.core, self.clock(), self._wall)

    def routes(self, for_addr: IPv4Network | None = None) -> Sequence[RouteView]:
        return status.routes(self.core, self.kernel_reader, for_addr)

    def route_count(self, protocol: str | None = None, primary: bool = False
                    ) -> tuple[int, int, int]:
        return status.route_count(self.core, protocol, primary)

    def status(self) -> StatusView:
        return status.status(self.core, self.clock(), self._wall)

    def kernel(self) -> KernelView:
        return status.kernel_view(self.core, self.kernel_reader)

    def datastore(self) -> DatastoreView | None:
        return None if self.feed is None else datastore_view(self.feed)

    # -- actions ---------------------------------------------------------------------------

    async def enable(self, name: str) -> ActionOutcome:
        return self._outcome(lambda: self.core.enable(name, self.clock()))

    async def disable(self, name: str) -> ActionOutcome:
        return self._outcome(lambda: self.core.disable(name, self.clock()))

    async def restart(self, name: str) -> ActionOutcome:
        return self._outcome(lambda: self.core.restart_peer(name, self.clock()))

    async def refresh(self, name: str) -> ActionOutcome:
        return self._outcome(lambda: self.core.request_refresh(name, self.clock()))

    async def graceful_restart(self) -> str:
        return await self._graceful_restart()

    @staticmethod
    def _outcome(command: Callable[[], bool | None]) -> ActionOutcome:
        """False: nothing to do (already so); True or None: done."""
        try:
            done = command()
        except CoreError as exc:
            raise CommandFailed(str(exc)) from None
        return ActionOutcome.ALREADY if done is False else ActionOutcome.DONE


def datastore_view(feed: DatastoreFeed) -> DatastoreView:
    """``show datastore``: the source's status and the configuration in force."""
    st = feed.source.status
    settings = feed.source.settings
    config = feed.applied
    return DatastoreView(
        type=settings.type, endpoint=st.endpoint, node_name=settings.node_name,
        connected=st.connected, revision=st.revision, last_error=st.last_error,
        last_change=datetime.fromtimestamp(st.last_change) if st.last_change else None,
        reads=st.reads, keys=len(feed.source.snapshot), problems=st.problems,
        router_id=None if config is None else config.router_id,
        asn=0 if config is None else config.asn,
        peers=() if config is None else tuple(
            DatastorePeerView(p.name, p.address, p.asn, p.passive) for p in config.peers),
        blocks=() if config is None else tuple(config.originate.blocks),
        pools=() if config is None else tuple(config.pools.cidrs),
        applied_revision=feed.applied_revision, feed_error=feed.feed_error,
    )
