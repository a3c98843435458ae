"""The control socket's view of the running speaker (implements ``ControlBackend``).

Queries read the core through :mod:`speaker.core.status` (snapshots taken on the event loop);
actions are the core's commands.  Nothing here decides anything: a command the core refuses
(:class:`~speaker.core.CoreError`) becomes ``CommandFailed`` for the operator.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from ipaddress import IPv4Network, IPv6Network
from typing import TYPE_CHECKING

from speaker.control.commands import CommandFailed
from speaker.control.views import (
    ActionOutcome,
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
from speaker.history import EventHistory
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
        self._offset = time.time() - clock()
        self._graceful_restart = graceful_restart

    def _wall(self, t: float) -> datetime:
        """A time of the core's (monotonic) clock as wall-clock time, with one offset taken
        at start: the same instant always shows the same second (two reads a microsecond
        apart must not disagree across a second boundary)."""
        return datetime.fromtimestamp(self._offset + t)

    # -- explain ---------------------------------------------------------------------------

    def explain(self, target: str, peer: str | None) -> ExplainView:
        def kernel_entry(prefix: IPv4Network | IPv6Network) -> KernelSnapshotEntry | None:
            return self.kernel_reader.snapshot().by_prefix().get(prefix)

        try:
            # the RIB stamps paths with the wall clock (Rib's clock is time.time)
            return explain.explain(self.core, target, peer, kernel_entry, datetime.fromtimestamp)
        except explain.ExplainError as exc:
            raise CommandFailed(str(exc)) from None

    # -- events ----------------------------------------------------------------------------

    def events(self, name: str | None, since: datetime | None) -> Sequence[EventView]:
        return self.history.views(self.core.config.peers, name, since)

    def watch(self, name: str | None, callback: Callable[[EventView], None]) -> Callable[[], None]:
        return self.history.watch_views(self.core.config.peers, name, callback)

    # -- queries ---------------------------------------------------------------------------

    def protocols(self) -> Sequence[ProtocolStatus]:
        return status.protocols(self.core, self.clock(), self._wall)

    def routes(self, for_addr: IPv4Network | IPv6Network | None = None) -> Sequence[RouteView]:
        return status.routes(self.core, self.kernel_reader, for_addr)

    def route_count(self, protocol: str | None = None, primary: bool = False,
                    family: int | None = None) -> tuple[int, int, int]:
        return status.route_count(self.core, protocol, primary, family)

    def status(self) -> StatusView:
        return status.status(self.core, self.clock(), self._wall)

    def kernel(self) -> KernelView:
        return status.kernel_view(self.core, self.kernel_reader)

    def datastore(self) -> DatastoreView | None:
        return None if self.feed is None else self.feed.view()

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
