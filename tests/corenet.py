"""A :class:`SpeakerCore` and its peers in memory, with a fake clock: for the core's tests.

The peers are plain :class:`PeerSession` objects playing BIRD (the mirror of each configured
session); :class:`CoreNet` is the transport between them: it carries out the core's actions
(Dial, Close, Forget) and the peers' (ConnectRequest, CloseConnection), moves bytes both ways
and moves a millisecond clock from deadline to deadline.  The kernel is a recording
:class:`FakeKernel`.  No sockets, no sleeping.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Network, ip_network
from typing import TYPE_CHECKING, TypeVar

from speaker.config import Config
from speaker.core import Close, Dial, Forget, SpeakerCore, session_config
from speaker.events import Event
from speaker.kernel.model import KernelIntent, KernelRoute, key_network
from speaker.rib import AttributeSet
from speaker.session import (
    CloseConnection,
    ConnectRequest,
    Jitter,
    PeerSession,
    SessionConfig,
    State,
    UpdateReceived,
    no_jitter,
)
from speaker.wire.attributes import MpReachAttr, MpUnreachAttr
from speaker.wire.messages import Update
from speaker.wire.nlri import Nlri, Prefix
from tests.sessiontesting import mirror

if TYPE_CHECKING:
    from speaker.transport import SessionTransport

E = TypeVar("E", bound=Event)
Net = IPv4Network | IPv6Network


@dataclass
class FakeKernel:
    """The kernel intents the core made: what is wanted now, and whether it converged."""

    wanted: dict[Net, KernelRoute] = field(default_factory=dict)
    converged_calls: int = 0
    log: list[tuple[str, Net]] = field(default_factory=list)
    batches: list[int] = field(default_factory=list)  # intents per apply() call
    converged_at: list[int] = field(default_factory=list)  # len(log) at each converged()

    def apply(self, intents: Sequence[KernelIntent]) -> None:
        """The core's batch, one intent at a time, each checked as a KernelRoute."""
        self.batches.append(len(intents))
        for key, hops in intents:
            prefix = key_network(key)
            if hops is None:
                self.wanted.pop(prefix, None)
                self.log.append(("unwant", prefix))
            else:
                self.wanted[prefix] = KernelRoute(prefix, hops, blackhole=not hops)
                self.log.append(("want", prefix))

    def converged(self) -> None:
        self.converged_calls += 1
        self.converged_at.append(len(self.log))

    def hops(self, prefix: str) -> tuple[str, ...] | None:
        """The next hops wanted for ``prefix`` ("blackhole" for one), None if not wanted."""
        route = self.wanted.get(ip_network(prefix))
        if route is None:
            return None
        if route.blackhole:
            return ("blackhole",)
        return tuple(str(h) for h in route.nexthops)


def update(*prefixes: str, via: str, withdraw: tuple[str, ...] = ()) -> Update:
    """An UPDATE announcing ``prefixes`` with NEXT_HOP ``via`` (and withdrawing some)."""
    attrs = AttributeSet.build(next_hop=IPv4Address(via), local_pref=100)
    return Update(
        withdrawn=tuple(Nlri(Prefix.parse(p)) for p in withdraw),
        attributes=attrs.attributes if prefixes else (),
        nlri=tuple(Nlri(Prefix.parse(p)) for p in prefixes),
    )


class CoreNet:
    """One core and a scripted BIRD per configured peer, wired in memory."""

    def __init__(
        self, config: Config, *, restarting: bool = False, jitter: Jitter = no_jitter
    ) -> None:
        self.config = config
        self.kernel = FakeKernel()
        self.events: list[Event] = []
        self.core = SpeakerCore(
            config, self.kernel, self.events.append, restarting=restarting, jitter=jitter
        )
        self.ms = 0
        self.remotes: dict[str, PeerSession] = {}
        self.remote_events: dict[str, list[Event]] = {}
        self.reachable: dict[str, bool] = {}
        # ("core" | "remote", peer name, conn id) <-> the other end
        self.links: dict[tuple[str, str, int], tuple[str, str, int]] = {}
        for peer in config.peers:
            self.add_remote(peer.name)

    # -- setup -------------------------------------------------------------------------------

    def remote_config(self, name: str, **changes: object) -> SessionConfig:
        peer = self.core.config.peer(name)
        mine = session_config(self.core.config, peer, restarting=False)
        if peer.address.version == 6:  # a bird6: IPv4 router id, our IPv6 address as its peer
            changes.setdefault("router_id", IPv4Address(f"192.0.2.{int(peer.address) % 250 + 1}"))
            changes.setdefault("peer_address", peer.local_address)
            changes.setdefault("source_address", peer.address)
        return mirror(mine, **changes)

    def add_remote(self, name: str, **changes: object) -> PeerSession:
        """A (new) process playing the peer ``name``; not started."""
        session = PeerSession(self.remote_config(name, **changes))
        self.remotes[name] = session
        self.remote_events[name] = []
        self.reachable[name] = True
        return session

    @property
    def now(self) -> float:
        return self.ms / 1000

    def start(self, *, adopted: int = 0, remotes: bool = True) -> None:
        self.core.start(self.now, adopted=adopted)
        if remotes:
            for session in self.remotes.values():
                session.start(self.now)
        self.pump()

    # -- queries -----------------------------------------------------------------------------

    def of(self, cls: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, cls)]

    def remote_of(self, name: str, cls: type[E]) -> list[E]:
        return [e for e in self.remote_events[name] if isinstance(e, cls)]

    def received(self, name: str) -> set[str]:
        """Prefixes the peer ``name`` holds from us (announced and not withdrawn)."""
        held: set[str] = set()
        for e in self.remote_of(name, UpdateReceived):
            u = e.update
            reach = [a for a in u.attributes if isinstance(a, MpReachAttr)]
            unreach = [a for a in u.attributes if isinstance(a, MpUnreachAttr)]
            for n in (*u.withdrawn, *(x for a in unreach for x in a.withdrawn)):
                held.discard(str(n.prefix))
            for n in (*u.nlri, *(x for a in reach for x in a.nlri)):
                held.add(str(n.prefix))
        return held

    def established(self, *names: str) -> bool:
        return all(
            self.core.peer(n).session.state is State.ESTABLISHED
            and self.remotes[n].state is State.ESTABLISHED
            for n in names
        )

    # -- the transport -------------------------------------------------------------------------

    def pump(self) -> None:
        """Carry out actions and move bytes until nothing more happens at this instant."""
        for _ in range(100_000):
            if self._act():
                continue
            if self.core.flush_due:
                self.core.flush()
            if not self._move_bytes():
                return
        raise RuntimeError("CoreNet.pump: never settled")

    def _act(self) -> bool:
        progressed = False
        while (action := self.core.next_action()) is not None:
            progressed = True
            if isinstance(action, Dial):
                self._dial(action)
            elif isinstance(action, Close):
                self._close("core", action.peer, action.conn_id, action.data)
            elif isinstance(action, Forget):
                for key in [k for k in self.links if k[0] == "core" and k[1] == action.peer]:
                    self._close(*key)
        for name, session in self.remotes.items():
            while (event := session.next_event()) is not None:
                progressed = True
                self.remote_events[name].append(event)
                if isinstance(event, ConnectRequest):
                    self._remote_dial(name, event.conn_id)
                elif isinstance(event, CloseConnection):
                    self._close("remote", name, event.conn_id)
        return progressed

    def _dial(self, action: Dial) -> None:
        remote = self.remotes.get(action.peer)
        if remote is None or not self.reachable[action.peer] or not remote.started:
            self.core.connection_failed(action.peer, action.conn_id, self.now, "refused")
            return
        rcid = remote.next_conn_id()
        self.links[("core", action.peer, action.conn_id)] = ("remote", action.peer, rcid)
        self.links[("remote", action.peer, rcid)] = ("core", action.peer, action.conn_id)
        self.core.connection_made(
            action.peer, action.conn_id, self.now, outgoing=True,
            local_address=self.core.config.peer(action.peer).local_address,
        )
        remote.connection_made(rcid, self.now, outgoing=False)

    def _remote_dial(self, name: str, rcid: int) -> None:
        remote = self.remotes[name]
        peer = self.core.config.peer(name) if name in {p.name for p in self.core.peers()} else None
        accepted = (
            None if peer is None else self.core.accept(str(peer.address), 40000 + rcid, self.now)
        )
        if accepted is None:
            remote.connection_failed(rcid, self.now, "refused")
            return
        _, cid = accepted
        self.links[("remote", name, rcid)] = ("core", name, cid)
        self.links[("core", name, cid)] = ("remote", name, rcid)
        remote.connection_made(rcid, self.now, outgoing=True)
        self.core.connection_made(
            name, cid, self.now, outgoing=False, local_address=peer.local_address
        )

    def _data(self, side: str, name: str, cid: int, limit: int | None = None) -> bytes:
        if side == "core":
            return self.core.data_to_send(name, cid, limit)
        return self.remotes[name].data_to_send(cid, limit)

    def _deliver(self, side: str, name: str, cid: int, data: bytes) -> None:
        if side == "core":
            self.core.receive_data(name, cid, data, self.now)
        else:
            self.remotes[name].receive_data(cid, data, self.now)

    def _lost(self, side: str, name: str, cid: int) -> None:
        if side == "core":
            self.core.connection_lost(name, cid, self.now, "Connection closed by peer")
        else:
            self.remotes[name].connection_lost(cid, self.now, "Connection closed by peer")

    def _close(self, side: str, name: str, cid: int, data: bytes | None = None) -> None:
        if data is None:
            data = self._data(side, name, cid)
        other = self.links.pop((side, name, cid), None)
        if other is None:
            return
        self.links.pop(other, None)
        if data:
            self._deliver(*other, data)
        self._lost(*other)

    def _move_bytes(self) -> bool:
        moved = False
        for name, cid in self.core.pending_connections():
            data = self.core.data_to_send(name, cid)
            other = self.links.get(("core", name, cid))
            if data and other is not None:
                moved = True
                self._deliver(*other, data)
        for name, session in self.remotes.items():
            for rcid in session.pending_connections():
                data = session.data_to_send(rcid)
                other = self.links.get(("remote", name, rcid))
                if data and other is not None:
                    moved = True
                    self._deliver(*other, data)
        return moved

    def crash_remote(self, name: str) -> None:
        """The peer's process dies; we see its TCP connections close without NOTIFICATION."""
        for key in [k for k in self.links if k[0] == "remote" and k[1] == name]:
            other = self.links.pop(key)
            self.links.pop(other, None)
            self._lost(*other)
        self.pump()

    # -- time ----------------------------------------------------------------------------------

    def _deadlines(self) -> list[float]:
        out = [t for s in self.remotes.values() if (t := s.get_timer()) is not None]
        if (t := self.core.get_timer()) is not None:
            out.append(t)
        return out

    def advance(self, ms: int) -> None:
        """Let ``ms`` milliseconds pass, firing every timer on the way."""
        target = self.ms + ms
        while True:
            due = [d for d in self._deadlines() if math.ceil(d * 1000 - 1e-6) <= target]
            if not due:
                break
            self.ms = max(self.ms, math.ceil(min(due) * 1000 - 1e-6))
            now = self.now + 1e-9
            if (t := self.core.get_timer()) is not None and t <= now:
                self.core.handle_timer(now)
            for session in self.remotes.values():
                if (t := session.get_timer()) is not None and t <= now:
                    session.handle_timer(now)
            self.pump()
        self.ms = target
        self.pump()

    def run_until(self, predicate: Callable[[], bool], max_ms: int = 600_000) -> None:
        self.pump()
        waited = 0
        while not predicate():
            if waited >= max_ms:
                raise AssertionError(f"condition not met within {max_ms} ms")
            self.advance(100)
            waited += 100


def live_transport(
    config: Config, events: list[Event], backlog: Callable[[], int] | None = None
) -> SessionTransport:
    """A started core with the real asyncio transport around it (inside a running loop):
    for tests over loopback sockets."""
    from speaker.transport import SessionTransport  # asyncio: only the socket tests need it

    holder: list[SessionTransport] = []
    core = SpeakerCore(config, FakeKernel(), events.append, wake=lambda: holder[0].wake())
    transport = SessionTransport(core, backlog)
    holder.append(transport)
    core.start(transport.now)
    transport.service()
    return transport
