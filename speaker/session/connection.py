"""One TCP connection of a peer: its FSM state, timers, input buffer and two output queues.

Why two queues: KEEPALIVE and NOTIFICATION must never wait behind a backlog of UPDATEs,
or a busy session would miss the peer's hold timer (the reason FRR sends keepalives from
their own thread).  ``control`` holds OPEN, KEEPALIVE, NOTIFICATION and route refresh
requests; ``routes`` holds UPDATEs, End-of-RIB and BoRR/EoRR (which must stay in order with
the UPDATEs they bracket, RFC 7313 4).  :meth:`Connection.take` hands out all control
messages first, then whole route messages up to a byte limit, so the transport can apply
flow control (write, ``await drain()``, take more).

Also here: :class:`ErrorWait`, BIRD's error wait (``bgp_update_startup_delay``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from speaker.session.negotiated import SessionInfo
from speaker.session.state import State, TimerKind
from speaker.wire.context import DEFAULT_CONTEXT, Negotiated
from speaker.wire.messages import Open

__all__ = ["Connection", "ErrorWait"]


@dataclass(slots=True, eq=False)
class Connection:
    """Everything the session keeps about one TCP connection."""

    conn_id: int
    outgoing: bool
    state: State
    created: float
    ctx: Negotiated = DEFAULT_CONTEXT
    control: deque[bytes] = field(default_factory=deque)
    routes: deque[bytes] = field(default_factory=deque)
    inbuf: bytearray = field(default_factory=bytearray)
    connect_deadline: float | None = None
    hold_deadline: float | None = None
    keepalive_deadline: float | None = None
    hold_time: int = 0
    keepalive_time: int = 0
    remote_open: Open | None = None
    info: SessionInfo | None = None
    closing: bool = False
    """We have closed it (CloseConnection emitted); only queued control bytes remain."""
    last_received: float = 0.0
    send_stalled_since: float | None = None
    """RFC 9687: since when data has been waiting without any of it leaving (None: none
    waits, or some left since the last look)."""
    send_backlog: int = 0
    """Octets the transport last reported as written by us but not yet sent on the wire."""
    handed_out: int = 0
    """Octets handed to the transport since its last report."""
    backlog_reported: bool = False
    """The transport reports its backlog; without reports, handed out counts as sent."""
    send_hold_deadline: float | None = None

    @property
    def direction(self) -> str:
        return "outgoing" if self.outgoing else "incoming"

    def deadlines(self) -> list[tuple[float, TimerKind]]:
        """The running timers of this connection."""
        out: list[tuple[float, TimerKind]] = []
        if self.connect_deadline is not None:
            out.append((self.connect_deadline, TimerKind.CONNECT_RETRY))
        if self.hold_deadline is not None:
            out.append((self.hold_deadline, TimerKind.HOLD))
        if self.keepalive_deadline is not None:
            out.append((self.keepalive_deadline, TimerKind.KEEPALIVE))
        if self.send_hold_deadline is not None:
            out.append((self.send_hold_deadline, TimerKind.SEND_HOLD))
        return out

    def close(self) -> None:
        """Stop timers and drop what may no longer be sent (UPDATEs after a close)."""
        self.closing = True
        self.connect_deadline = self.hold_deadline = self.keepalive_deadline = None
        self.send_hold_deadline = self.send_stalled_since = None
        self.routes.clear()
        self.inbuf.clear()

    def send_stalled(self) -> bool:
        """Something waits to be sent: in our queues, or (as reported) in the transport's."""
        return bool(self.control or self.routes or self.send_backlog)

    def note_sending(self, now: float, hold: float, *, progress: bool = False) -> None:
        """RFC 9687: (re)start, keep or stop the send hold timer at ``now``.

        ``progress``: some of the waiting data left since the last look, so the timer starts
        again.  With nothing waiting it stops."""
        if not hold or not self.send_stalled():
            self.send_stalled_since = self.send_hold_deadline = None
            return
        if progress or self.send_stalled_since is None:
            self.send_stalled_since = now
            self.send_hold_deadline = now + hold

    def pending(self) -> bool:
        """Bytes are waiting to be written."""
        return bool(self.control or self.routes)

    def take(self, limit: int | None) -> bytes:
        """All queued control messages, then route messages up to ``limit`` octets in all.

        Control messages are never held back by the limit (they are small and urgent).
        At least one route message is returned when nothing else is, so a message larger
        than the limit still goes out.
        """
        if not self.control and not self.routes:
            return b""  # the usual answer to the transport's ask after each read
        out = bytearray()
        while self.control:
            out += self.control.popleft()
        routes = self.routes
        while routes:
            size = len(routes[0])
            if limit is not None and out and len(out) + size > limit:
                break
            out += routes.popleft()
            if limit is not None and len(out) >= limit:
                break
        return bytes(out)


@dataclass(slots=True)
class ErrorWait:
    """BIRD 1.6's error wait: how long to stay Idle after a protocol error.

    ``bgp_update_startup_delay``: the first error waits ``minimum``; each further error
    doubles the wait up to ``maximum``; an error more than ``forget`` seconds after the
    previous one (for instance after a session that stayed up that long) starts again at
    ``minimum``.  RFC 4271 8.1.1 calls this DampPeerOscillations / IdleHoldTimer.
    """

    minimum: float
    maximum: float
    forget: float
    delay: float = 0.0
    last_error: float | None = None

    def record_error(self, now: float) -> float:
        """An error happened: return the new wait."""
        if self.last_error is not None and now - self.last_error >= self.forget:
            self.delay = 0.0
        self.last_error = now
        self.delay = self.minimum if not self.delay else min(2 * self.delay, self.maximum)
        return self.delay

    def current(self, now: float) -> float:
        """The wait before an automatic restart now (0 once the errors are forgotten)."""
        if self.last_error is None or now - self.last_error >= self.forget:
            return 0.0
        return self.delay

    def reset(self) -> None:
        """A manual stop forgets past errors (BIRD ``bgp_shutdown``)."""
        self.delay = 0.0
        self.last_error = None
