"""One address family's view of the daemon, for a socket that answers as BIRD 1.6's did.

BIRD 1.6 runs two daemons per Calico node: ``bird`` (IPv4, ``bird.ctl``) and ``bird6`` (IPv6,
``bird6.ctl``).  calicoctl asks each socket for ``show protocols`` and prints the first as the
"IPv4 BGP status" table, the second as "IPv6 BGP status".  One speaker serves both families;
with ``control_socket6`` configured it opens two sockets, each wrapping the backend in a
:class:`FamilyBackend` that shows only its family's BGP protocols, routes, counts and kernel
routes (the static and kernel protocols appear in both, as each BIRD daemon has its own).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import datetime

from speaker.control.views import (
    ActionOutcome,
    ControlBackend,
    DatastoreView,
    EventView,
    ExplainView,
    IpNetwork,
    KernelView,
    ProtocolStatus,
    RouteView,
    StatusView,
)

__all__ = ["FamilyBackend"]


class FamilyBackend:
    """``backend`` as one family's daemon sees it (``version`` 4 or 6)."""

    def __init__(self, backend: ControlBackend, version: int) -> None:
        if version not in (4, 6):
            raise ValueError(f"address family version must be 4 or 6, not {version}")
        self.backend = backend
        self.version = version

    def _ours(self, protocol: ProtocolStatus) -> bool:
        return protocol.bgp is None or protocol.bgp.neighbor_address.version == self.version

    def protocols(self) -> Sequence[ProtocolStatus]:
        return [p for p in self.backend.protocols() if self._ours(p)]

    def routes(self, for_addr: IpNetwork | None = None) -> Sequence[RouteView]:
        if for_addr is not None and for_addr.version != self.version:
            return []
        return [r for r in self.backend.routes(for_addr) if r.prefix.version == self.version]

    def route_count(self, protocol: str | None = None, primary: bool = False,
                    family: int | None = None) -> tuple[int, int, int]:
        if family not in (None, self.version):
            return 0, 0, 0
        return self.backend.route_count(protocol, primary, self.version)

    def status(self) -> StatusView:
        return self.backend.status()

    def kernel(self) -> KernelView:
        view = self.backend.kernel()
        rows = tuple(r for r in view.routes if r.prefix.version == self.version)
        return dataclasses.replace(view, routes=rows)

    def datastore(self) -> DatastoreView | None:
        return self.backend.datastore()

    def explain(self, target: str, peer: str | None) -> ExplainView:
        return self.backend.explain(target, peer)

    def events(self, name: str | None, since: datetime | None) -> Sequence[EventView]:
        return self.backend.events(name, since)

    def watch(self, name: str | None, callback: Callable[[EventView], None]) -> Callable[[], None]:
        return self.backend.watch(name, callback)

    async def enable(self, name: str) -> ActionOutcome:
        return await self.backend.enable(name)

    async def disable(self, name: str) -> ActionOutcome:
        return await self.backend.disable(name)

    async def restart(self, name: str) -> ActionOutcome:
        return await self.backend.restart(name)

    async def refresh(self, name: str) -> ActionOutcome:
        return await self.backend.refresh(name)

    async def graceful_restart(self) -> str:
        """``graceful restart`` restarts the whole speaker, whichever socket is asked."""
        restart = getattr(self.backend, "graceful_restart", None)
        if restart is None:
            raise AttributeError("graceful_restart")
        message: str = await restart()
        return message
