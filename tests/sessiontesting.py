"""Two sessions back to back in memory, with a fake clock: for tests and experiments.

h11's ``ConnectionPair`` and aioquic's ``transfer()`` idea for BGP: :class:`SessionPair`
plays the transport for two :class:`~speaker.session.PeerSession` objects (sides ``"a"``
and ``"b"``): it turns ConnectRequest into a connection on the other side, moves
``data_to_send`` into the other side's ``receive_data``, carries out CloseConnection (the
NOTIFICATION still reaches the peer, then the peer sees the connection lost), and moves a
millisecond clock from deadline to deadline.  No sockets, no sleeping: a 240 s hold timer
expires in microseconds.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

from speaker.events import Event
from speaker.session.config import SessionConfig, build_open
from speaker.session.events import CloseConnection, ConnectRequest
from speaker.session.peer import PeerSession
from speaker.session.state import State
from speaker.wire.context import DEFAULT_CONTEXT, Negotiated
from speaker.wire.messages import HEADER_SIZE, Keepalive, Message, Open

__all__ = ["SessionPair", "drain", "frames", "handshake", "mirror", "wire"]

E = TypeVar("E", bound=Event)
_SIDES = ("a", "b")


class SessionPair:
    """Sessions ``a`` and ``b`` wired to each other; time in integer milliseconds."""

    def __init__(self, a: SessionConfig, b: SessionConfig, *, start_ms: int = 0) -> None:
        self.sessions = {"a": PeerSession(a), "b": PeerSession(b)}
        self.ms = start_ms
        self.links: dict[tuple[str, int], tuple[str, int]] = {}
        self.events: dict[str, list[Event]] = {"a": [], "b": []}
        self.wire: list[tuple[str, int, bytes]] = []
        """Every chunk delivered: (sending side, its conn id, bytes)."""
        self.reachable = {"a": True, "b": True}
        """False: connecting to that side fails (Connection refused)."""
        self.paused: set[str] = set()
        """Sides whose output is held back (to let the other side's hold timer expire)."""
        self.limit: int | None = None
        """Passed to data_to_send: how many octets of UPDATEs one write may take."""

    @property
    def a(self) -> PeerSession:
        return self.sessions["a"]

    @property
    def b(self) -> PeerSession:
        return self.sessions["b"]

    @property
    def now(self) -> float:
        """The fake clock in seconds, as the sessions see it."""
        return self.ms / 1000

    @staticmethod
    def other(side: str) -> str:
        return "b" if side == "a" else "a"

    def of(self, side: str, cls: type[E]) -> list[E]:
        """The events of one class a side has emitted so far."""
        return [e for e in self.events[side] if isinstance(e, cls)]

    def start(self) -> None:
        """Start both sessions and exchange whatever follows at once."""
        for side in _SIDES:
            self.sessions[side].start(self.now)
        self.pump()

    def pump(self) -> None:
        """Carry out actions and move bytes until nothing more happens at this instant."""
        # Actions first, then bytes: a TCP connection is up (one round trip) before any OPEN
        # sent over it arrives, so two sessions dialing at once really collide.
        for _ in range(100_000):
            if self._act():
                continue
            progressed = False
            for side in _SIDES:
                if side in self.paused:
                    continue
                session = self.sessions[side]
                for cid in session.pending_connections():
                    data = session.data_to_send(cid, self.limit)
                    if data:
                        progressed = True
                        self._deliver(side, cid, data)
            if not progressed:
                return
        raise RuntimeError("SessionPair.pump: the sessions never settled")

    def advance(self, ms: int) -> None:
        """Let ``ms`` milliseconds pass, firing every timer on the way."""
        target = self.ms + ms
        while True:
            deadlines = [t for s in self.sessions.values() if (t := s.get_timer()) is not None]
            due = [d for d in deadlines if math.ceil(d * 1000 - 1e-6) <= target]
            if not due:
                break
            self.ms = max(self.ms, math.ceil(min(due) * 1000 - 1e-6))
            for session in self.sessions.values():
                timer = session.get_timer()
                if timer is not None and timer <= self.now + 1e-9:
                    session.handle_timer(self.now + 1e-9)
            self.pump()
        self.ms = target
        self.pump()

    def run_until(
        self, predicate: Callable[[], bool], max_ms: int = 600_000, step: int = 100
    ) -> None:
        """Advance in steps until ``predicate()`` holds; fail after ``max_ms``."""
        self.pump()
        waited = 0
        while not predicate():
            if waited >= max_ms:
                raise AssertionError(f"condition not met within {max_ms} ms")
            self.advance(step)
            waited += step

    def crash(self, side: str, *, peer_notices: bool) -> None:
        """The side's process dies: its connections vanish without NOTIFICATION.

        ``peer_notices``: the other side sees the TCP connections close (FIN/RST); when
        False it does not (a silent death), and only a new connection or its hold timer
        tells it.
        """
        for (s, cid), (o, ocid) in list(self.links.items()):
            if s != side:
                continue
            del self.links[(s, cid)]
            self.links.pop((o, ocid), None)
            if peer_notices:
                self.sessions[o].connection_lost(ocid, self.now, "Connection reset by peer")
        self.pump()

    def replace(self, side: str, config: SessionConfig) -> PeerSession:
        """A new process on ``side`` (after :meth:`crash`), e.g. restarting gracefully."""
        session = PeerSession(config)
        self.sessions[side] = session
        return session

    # ------------------------------------------------------------------ transport

    def _act(self) -> bool:
        """Record every queued event and carry out the actions; True if there were any."""
        progressed = False
        for side in _SIDES:
            session = self.sessions[side]
            while (event := session.next_event()) is not None:
                progressed = True
                self.events[side].append(event)
                if isinstance(event, ConnectRequest):
                    self._connect(side, event.conn_id)
                elif isinstance(event, CloseConnection):
                    self._close(side, event.conn_id)
        return progressed

    def _connect(self, side: str, cid: int) -> None:
        session = self.sessions[side]
        other = self.other(side)
        if not self.reachable[other]:
            session.connection_failed(cid, self.now, "Connection refused")
            return
        peer = self.sessions[other]
        ocid = peer.next_conn_id()
        self.links[(side, cid)] = (other, ocid)
        self.links[(other, ocid)] = (side, cid)
        session.connection_made(cid, self.now, outgoing=True)
        peer.connection_made(ocid, self.now, outgoing=False)

    def _close(self, side: str, cid: int) -> None:
        data = self.sessions[side].data_to_send(cid)
        link = self.links.pop((side, cid), None)
        if link is None:
            return
        other, ocid = link
        self.links.pop(link, None)
        if data and side not in self.paused:
            self.wire.append((side, cid, data))
            self.sessions[other].receive_data(ocid, data, self.now)
        self.sessions[other].connection_lost(ocid, self.now, "Connection closed by peer")

    def _deliver(self, side: str, cid: int, data: bytes) -> None:
        link = self.links.get((side, cid))
        if link is None:
            return
        self.wire.append((side, cid, data))
        other, ocid = link
        self.sessions[other].receive_data(ocid, data, self.now)


# ---------------------------------------------------------------------- driving one session


def mirror(config: SessionConfig, **changes: Any) -> SessionConfig:
    """The peer's configuration for the same session: addresses and ASes swapped."""
    swapped: dict[str, Any] = {
        "local_as": config.peer_as,
        "peer_as": config.local_as,
        "router_id": config.peer_address,
        "peer_address": config.router_id,
        "passive": False,
    }
    return replace(config, **{**swapped, **changes})


def wire(msg: Message, ctx: Negotiated = DEFAULT_CONTEXT) -> bytes:
    """A message as bytes on the wire."""
    return msg.encode(ctx)


def frames(data: bytes) -> list[bytes]:
    """Cut a byte stream into whole messages (by the header's length field)."""
    out = []
    i = 0
    while i + HEADER_SIZE <= len(data):
        length = int.from_bytes(data[i + 16 : i + 18], "big")
        out.append(data[i : i + length])
        i += length
    if i != len(data):
        raise AssertionError(f"trailing {len(data) - i} octets are not a whole message")
    return out


def drain(session: PeerSession) -> list[Event]:
    """Every event the session has queued."""
    out = []
    while (event := session.next_event()) is not None:
        out.append(event)
    return out


def handshake(
    session: PeerSession,
    peer_open: Open | None = None,
    *,
    now: float = 0.0,
    outgoing: bool = True,
    establish: bool = True,
) -> int:
    """Bring a lone session to OpenConfirm (or Established) against a scripted peer.

    Outgoing: start, let the connect delay pass, report the connection made.  Incoming:
    start, report a connection from the peer.  Then feed the peer's OPEN (default: what
    :func:`mirror` of the session's configuration would send) and, with ``establish``, its
    KEEPALIVE.  Returns the connection id; the events and bytes so far are left queued.
    """
    cfg = session.config
    if peer_open is None:
        peer_open = build_open(mirror(cfg))
    session.start(now)
    if outgoing:
        session.handle_timer(now + cfg.connect_delay)
        attempts = [cid for cid, st in session.connections().items() if st is State.CONNECT]
        if not attempts:
            raise AssertionError("the session asked for no connection")
        conn_id = attempts[-1]
        session.connection_made(conn_id, now + cfg.connect_delay, outgoing=True)
    else:
        conn_id = session.next_conn_id()
        session.connection_made(conn_id, now, outgoing=False)
    t = now + (cfg.connect_delay if outgoing else 0)
    session.receive_data(conn_id, wire(peer_open), t)
    if establish:
        session.receive_data(conn_id, wire(Keepalive()), t)
    return conn_id
