"""StaticBackend: a ControlBackend over fixed views, with in-memory enable/disable.

For tests, demos and tools that want a BIRD-compatible socket without a daemon (e.g. to
check that calicoctl reads our output).  Actions change the protocol's state the way
BIRD does: disable → ``down``; enable/restart → ``start`` (``Passive`` or ``Connect``);
``since`` becomes the clock's time.  Every action is recorded in ``calls``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv4Network, IPv6Network

from speaker.control.commands import CommandFailed
from speaker.control.views import (
    ActionOutcome,
    BgpState,
    DatastoreView,
    EventView,
    ExplainView,
    KernelView,
    ProtocolStatus,
    ProtoState,
    RouteView,
    StatusView,
    count_routes,
    longest_match,
)

__all__ = ["StaticBackend"]


class StaticBackend:
    """Serve these views; ``clock`` gives "now" for state changes."""

    def __init__(
        self,
        protocols: Iterable[ProtocolStatus],
        routes: Iterable[RouteView] = (),
        status: StatusView | None = None,
        kernel: KernelView | None = None,
        clock: Callable[[], datetime] | None = None,
        datastore: DatastoreView | None = None,
    ) -> None:
        self.clock = clock or (lambda: datetime.now(UTC))
        self._protocols = {p.name: p for p in protocols}
        self._routes = list(routes)
        now = self.clock()
        self._status = status or StatusView(IPv4Address("192.0.2.1"), now, now, now)
        self._kernel = kernel or KernelView(protocol=186)
        self._datastore = datastore
        self._events: list[EventView] = []
        self.explanations: dict[str, ExplainView] = {}
        self._watchers: list[tuple[str | None, Callable[[EventView], None]]] = []
        self.calls: list[tuple[str, str]] = []
        self.graceful_restart_message = "Graceful restart initiated"

    # queries

    def protocols(self) -> Sequence[ProtocolStatus]:
        return list(self._protocols.values())

    def routes(self, for_addr: IPv4Network | IPv6Network | None = None) -> Sequence[RouteView]:
        if for_addr is None:
            return list(self._routes)
        return longest_match(self._routes, for_addr)

    def route_count(self, protocol: str | None = None, primary: bool = False,
                    family: int | None = None) -> tuple[int, int, int]:
        routes = [r for r in self._routes if family in (None, r.prefix.version)]
        return count_routes(routes, protocol, primary)

    def status(self) -> StatusView:
        return dataclasses.replace(self._status, server_time=self.clock())

    def kernel(self) -> KernelView:
        return self._kernel

    def datastore(self) -> DatastoreView | None:
        return self._datastore

    def explain(self, target: str, peer: str | None) -> ExplainView:
        view = self.explanations.get(target)
        if view is None:
            raise CommandFailed(f"{target}: nothing to explain in this static backend")
        return view

    def events(self, name: str | None, since: datetime | None) -> Sequence[EventView]:
        return [e for e in self._events
                if (name is None or e.peer == name) and (since is None or e.time >= since)]

    def watch(self, name: str | None, callback: Callable[[EventView], None]) -> Callable[[], None]:
        entry = (name, callback)
        self._watchers.append(entry)
        return lambda: self._watchers.remove(entry)

    def emit(self, event: EventView) -> None:
        """Remember ``event`` and hand it to the watchers (what the daemon's history does)."""
        self._events.append(event)
        for name, callback in list(self._watchers):
            if name is None or event.peer == name:
                callback(event)

    @property
    def watchers(self) -> int:
        return len(self._watchers)

    # actions

    def _set(self, name: str, state: ProtoState) -> None:
        p = self._protocols[name]
        info = p.info
        if p.proto == "BGP":
            passive = p.bgp is not None and p.bgp.passive
            info = "" if state == ProtoState.DOWN else (
                BgpState.PASSIVE.value if passive else BgpState.CONNECT.value)
        self._protocols[name] = dataclasses.replace(
            p, state=state, since=self.clock(), info=info, last_error="")

    async def enable(self, name: str) -> ActionOutcome:
        self.calls.append(("enable", name))
        if self._protocols[name].state != ProtoState.DOWN:
            return ActionOutcome.ALREADY
        self._set(name, ProtoState.START)
        return ActionOutcome.DONE

    async def disable(self, name: str) -> ActionOutcome:
        self.calls.append(("disable", name))
        if self._protocols[name].state == ProtoState.DOWN:
            return ActionOutcome.ALREADY
        self._set(name, ProtoState.DOWN)
        return ActionOutcome.DONE

    async def restart(self, name: str) -> ActionOutcome:
        self.calls.append(("restart", name))
        if self._protocols[name].state == ProtoState.DOWN:
            return ActionOutcome.ALREADY
        self._set(name, ProtoState.START)
        return ActionOutcome.DONE

    async def refresh(self, name: str) -> ActionOutcome:
        self.calls.append(("refresh", name))
        p = self._protocols[name]
        if p.state == ProtoState.DOWN:
            return ActionOutcome.ALREADY
        if p.proto != "BGP":
            raise CommandFailed("not a BGP protocol")
        if p.info != BgpState.ESTABLISHED.value:
            raise CommandFailed("session is not established")
        return ActionOutcome.DONE

    async def graceful_restart(self) -> str:
        self.calls.append(("graceful_restart", ""))
        return self.graceful_restart_message
