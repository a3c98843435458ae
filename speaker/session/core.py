"""The session's bookkeeping: derived state, queues, table dispatch, connecting and closing.

Split from :mod:`speaker.session.peer` (public API) and :mod:`speaker.session.handlers`
(what each table entry does) to keep each module readable.  Everything here is about *one
place* per concern: the peer's state is derived in one property (as BIRD's
``bgp_state_dsc``), state changes are reported from one method with the cause recorded by
whoever changed something, and every connection closes through :meth:`SessionCore._close`,
which is where the graceful restart classification and the error wait are applied.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Mapping
from typing import ClassVar, NamedTuple

from speaker.events import Event
from speaker.session.config import SessionConfig, build_open
from speaker.session.connection import Connection, ErrorWait
from speaker.session.events import (
    CloseConnection,
    ConnectRequest,
    GracefulRestartEnded,
    MessageIn,
    MessageOut,
    RoutineMessageOut,
    SessionDown,
    StateChange,
    routine_message_in,
)
from speaker.session.jitter import Jitter, no_jitter
from speaker.session.negotiated import SessionInfo
from speaker.session.state import (
    STATE_RANK,
    Closing,
    DownReason,
    GracefulRestartOutcome,
    Input,
    State,
    TimerKind,
    Transition,
)
from speaker.session.summary import summarize
from speaker.wire.context import DEFAULT_CONTEXT, Family
from speaker.wire.enums import MessageType, bird_error_text
from speaker.wire.errors import BgpError, ErrorAction, LocalProtocolError
from speaker.wire.messages import Keepalive, Message, Notification

__all__ = ["Cause", "SessionCore"]

_ROUTINE = (MessageType.UPDATE, MessageType.KEEPALIVE)
_MESSAGE_TYPES = {int(t): t for t in MessageType}
_HANDSHAKING = (State.OPENSENT, State.OPENCONFIRM, State.ESTABLISHED)


class Cause(NamedTuple):
    """Why the next state change happens: shown in its :class:`StateChange` event."""

    text: str
    rfc: str = ""
    input: Input | None = None
    conn_id: int | None = None


class SessionCore:
    """State, plumbing and the connect/close paths shared by handlers and the public API."""

    _transitions: ClassVar[Mapping[tuple[State, Input], Transition]] = {}
    """The transition table (``speaker.session.handlers.TRANSITIONS``, set on the class that
    has the handlers)."""

    def __init__(self, config: SessionConfig, *, jitter: Jitter | None = None) -> None:
        self.config = config
        self._jitter: Jitter = jitter if jitter is not None else no_jitter
        """Applied to the connect delay, connect retry and keepalive timers each time they
        are set (RFC 4271 10); the default keeps the configured values exactly."""
        self.peer = str(config.peer_address)
        self.local_open = build_open(config)
        """Our OPEN (RFC 4271 4.2), built once from the configuration."""
        self._keepalive_bytes = Keepalive().encode(DEFAULT_CONTEXT)
        self._conns: dict[int, Connection] = {}
        self._events: deque[Event] = deque()
        self._started = False
        self._idle_until: float | None = None
        self._connect_at: float | None = None
        self._connect_kind = TimerKind.CONNECT_DELAY
        self._gr_until: float | None = None
        self._gr_families: tuple[Family, ...] = ()
        low, high = config.error_wait
        self._error_wait = ErrorWait(low, high, config.error_forget)
        self._next_id = 1
        self._reported = State.IDLE
        self._cause = Cause("")
        self.negotiated: SessionInfo | None = None
        """What the Established session agreed; None when not Established."""
        self.last_error: str | None = None
        """BIRD-style last error ("BGP Error: ...", "Received: ...", "Socket: ...")."""
        self.established_since: float | None = None
        """``now`` of the transition to Established; None when not Established."""
        self.unnegotiated_family_updates = 0
        """UPDATEs whose MP_REACH/MP_UNREACH_NLRI named a family not negotiated (ignored)."""
        self.malformed_updates: dict[ErrorAction, int] = {}
        """UPDATEs with an RFC 7606 error the session survived, per outcome (the strongest
        of the UPDATE's errors): treat-as-withdraw, attribute-discard."""

    @property
    def state(self) -> State:
        """The most advanced connection's state, else Idle (stopped, error wait) or Active."""
        conns = self._conns
        if len(conns) == 1:  # the steady case, asked twice per received segment: no scan
            for only in conns.values():
                if only.state is State.ESTABLISHED and not only.closing:
                    return State.ESTABLISHED
        best = max((c.state for c in self._live()), key=STATE_RANK.__getitem__, default=None)
        if best is not None and STATE_RANK[best] >= STATE_RANK[State.CONNECT]:
            return best
        if not self._started or self._idle_until is not None:
            return State.IDLE
        return State.ACTIVE

    def next_conn_id(self) -> int:
        """An id not in use, for the caller to give an incoming connection."""
        while self._next_id in self._conns:
            self._next_id += 1
        self._next_id += 1
        return self._next_id - 1

    @property
    def restart_deadline(self) -> float | None:
        """When the peer's restart timer fires (we hold its routes stale meanwhile), or None."""
        return self._gr_until

    def set_restart_flags(self, *, restarting: bool, forwarding_preserved: bool) -> None:
        """Set the R flag and the families' F flag of the OPENs sent from now on.

        RFC 4724 3: the Restart State bit belongs to the OPENs of a restart, the Forwarding
        State bit says whether forwarding survived *that* restart.  BIRD sets both only while
        its recovery lasts, so once ours ends a session that flaps must reopen without them.
        """
        cfg = self.config
        if (cfg.restarting, cfg.forwarding_preserved) == (restarting, forwarding_preserved):
            return
        self.config = dataclasses.replace(
            cfg, restarting=restarting, forwarding_preserved=forwarding_preserved
        )
        self.local_open = build_open(self.config)

    # ------------------------------------------------------------------ plumbing

    def _emit(self, event: Event) -> None:
        self._events.append(event)

    def _live(self) -> list[Connection]:
        return [c for c in self._conns.values() if not c.closing]

    def _established(self) -> Connection | None:
        for conn in self._live():
            if conn.state is State.ESTABLISHED:
                return conn
        return None

    def _update_state(self) -> None:
        """Report the peer's state if it changed, with the cause recorded last."""
        new = self.state
        if new is not self._reported:
            c = self._cause
            self._emit(
                StateChange(self.peer, self._reported, new, c.text, c.rfc, c.input, c.conn_id)
            )
            self._reported = new

    def _queue(self, conn: Connection, msg: Message, *, control: bool) -> None:
        """Encode a message for a connection: control queue or route queue."""
        data = self._keepalive_bytes if isinstance(msg, Keepalive) else msg.encode(conn.ctx)
        (conn.control if control else conn.routes).append(data)
        cls = RoutineMessageOut if msg.TYPE in _ROUTINE else MessageOut
        self._emit(cls(self.peer, conn.conn_id, msg.TYPE, len(data), summarize(msg)))

    def _emit_in(self, conn: Connection, mtype: int, length: int, summary: str) -> None:
        kind = _MESSAGE_TYPES[mtype]  # not MessageType(mtype): the enum's call is Python code
        if mtype in _ROUTINE:
            self._events.append(routine_message_in(self.peer, conn.conn_id, kind, length, summary))
        else:
            self._emit(MessageIn(self.peer, conn.conn_id, kind, length, summary))

    def _dispatch(self, conn: Connection, inp: Input, now: float, payload: object) -> None:
        """Look ``(state, input)`` up in the transition table and run its handler.

        The handler returns False when it closed the connection or kept its state; else
        the connection moves to the entry's next state and its ``after`` hook runs.
        """
        t = self._transitions.get((conn.state, inp))
        if t is None:
            raise LocalProtocolError(f"{inp} is not valid for a connection in {conn.state}")
        self._run(conn, t, now, payload)

    def _run(self, conn: Connection, t: Transition, now: float, payload: object) -> None:
        """:meth:`_dispatch` with the entry already looked up (a received message's)."""
        if not t.handler(self, conn, now, payload, t) or t.next is None or conn.closing:
            return
        if conn.state is not t.next:
            conn.state = t.next
            self._update_state()
        # else the connection stays where it was (an UPDATE, a KEEPALIVE in Established):
        # those handlers touch no other connection, so the peer's state is what it was
        if t.after is not None:
            t.after(self, conn, now)

    # ------------------------------------------------------------------ connecting

    def _outgoing(self) -> Connection | None:
        for conn in self._live():
            if conn.outgoing:
                return conn
        return None

    def _schedule_connect(self, now: float, delay: float, kind: TimerKind) -> None:
        """Dial after ``delay`` (a configured timer value, jittered here; 0: at once)."""
        self._connect_kind = kind
        delay = self._jitter(delay) if delay > 0 else delay
        if delay <= 0:
            self._connect(now)
        else:
            self._connect_at = now + delay

    def _connect(self, now: float) -> None:
        """Initiate a connection (RFC 4271 8.2.2 Active: ConnectRetryTimer_Expires).

        Not while passive, waiting out an error, or when a connection is already in
        OpenConfirm or Established (BIRD ``bgp_decision``).
        """
        if (
            not self._started
            or self.config.passive
            or self._idle_until is not None
            or self._outgoing() is not None
            or any(c.state in (State.OPENCONFIRM, State.ESTABLISHED) for c in self._live())
        ):
            return
        cid = self.next_conn_id()
        conn = Connection(cid, True, State.CONNECT, now)
        conn.connect_deadline = now + self._jitter(self.config.connect_retry)
        self._conns[cid] = conn
        self._connect_at = None
        cfg = self.config
        self._cause = Cause(
            f"connecting to {self.peer}:{cfg.port} ({self._connect_kind} over)",
            "RFC 4271 8.2.2 Active",
            Input.CONNECT_RETRY_TIMER,
            cid,
        )
        self._emit(ConnectRequest(self.peer, cid, cfg.peer_address, cfg.port, cfg.source_address))
        self._update_state()

    def _abandon(self, conn: Connection, reason: str) -> None:
        """Give up a connection attempt (no NOTIFICATION: nothing was exchanged)."""
        conn.close()
        self._conns.pop(conn.conn_id, None)
        self._emit(CloseConnection(self.peer, conn.conn_id, reason))

    # ------------------------------------------------------------------ closing

    def _gr_ready(self, conn: Connection) -> bool:
        """We keep this peer's routes if its connection goes (BIRD ``gr_ready``)."""
        info = conn.info
        gr = info.peer_graceful_restart if info is not None else None
        return info is not None and info.gr_helper and gr is not None and gr.restart_time > 0

    def _send_error(
        self,
        conn: Connection,
        now: float,
        exc: BgpError,
        inp: Input,
        rfc: str,
        reason: DownReason = DownReason.NOTIFICATION_SENT,
    ) -> None:
        """Answer a protocol error with its NOTIFICATION and close (RFC 4271 6)."""
        note = Notification.from_error(exc)
        self.last_error = f"BGP Error: {bird_error_text(note.code, note.subcode)}"
        text = f"{inp}: {exc.reason or 'error'}; NOTIFICATION {note.describe()} sent"
        self._cause = Cause(text, rfc, inp, conn.conn_id)
        self._close(conn, now, Closing.notification_sent(note, text, reason))

    def _close(self, conn: Connection, now: float, how: Closing) -> None:
        """Close one connection; if it carried the session, the session goes down."""
        was_established = conn.state is State.ESTABLISHED
        note, sent = how.note, how.sent
        if note is not None and sent:
            self._queue(conn, note, control=True)
        conn.close()
        if how.announce:
            self._emit(CloseConnection(self.peer, conn.conn_id, how.cause, note if sent else None))
        if not conn.pending():
            self._conns.pop(conn.conn_id, None)
        if how.error:
            self._error_wait.record_error(now)
        self._after_loss(now, error=how.error, ended=was_established, graceful=how.graceful)
        if was_established and conn.info is not None:
            self._session_down(
                conn, conn.info, now, how.reason, how.graceful, note, sent, how.cause
            )

    def _after_loss(self, now: float, *, error: bool, ended: bool, graceful: bool) -> None:
        """What comes after a connection went: keep handshaking, wait out an error, or dial."""
        if not self._started or any(c.state in _HANDSHAKING for c in self._live()):
            self._update_state()
            return
        # BIRD restarts the protocol after an error or a non-graceful session end, waiting
        # its error wait first; a graceful restart or a failed handshake just reconnects.
        wait = self._error_wait.current(now) if error or (ended and not graceful) else 0.0
        if wait > 0:
            self._idle_until = now + wait
            self._connect_at = None
            attempt = self._outgoing()
            if attempt is not None:
                self._abandon(attempt, "error wait")
            self._cause = self._cause._replace(text=f"{self._cause.text}; error wait {wait:g} s")
        elif not self.config.passive and self._outgoing() is None and self._connect_at is None:
            if ended:  # BIRD restarts the protocol: connect delay again
                self._schedule_connect(now, self.config.connect_delay, TimerKind.CONNECT_DELAY)
            else:  # RFC 4271 8.2.2 OpenSent/OpenConfirm: back to Active, ConnectRetryTimer
                self._schedule_connect(now, self.config.connect_retry, TimerKind.CONNECT_RETRY)
        self._update_state()

    def _session_down(
        self,
        conn: Connection,
        info: SessionInfo,
        now: float,
        reason: DownReason,
        graceful: bool,
        note: Notification | None,
        sent: bool,
        cause: str,
    ) -> None:
        """Report the end of an Established session; start the restart timer if graceful."""
        gr = info.peer_graceful_restart
        forwarding = tuple((f, fwd) for f, fwd in gr.families if f in info.families) if gr else ()
        since = self.established_since
        if graceful and gr is not None:
            self._gr_until = now + gr.restart_time
            self._gr_families = tuple(f for f, _ in forwarding)
        else:
            self._gr_until = None
            self._gr_families = ()
        self.negotiated = None
        self.established_since = None
        self._emit(
            SessionDown(
                self.peer,
                conn.conn_id,
                reason,
                graceful,
                cause,
                note,
                sent,
                gr.restart_time if gr is not None and graceful else 0,
                forwarding if graceful else (),
                now - since if since is not None else 0.0,
            )
        )

    def _end_graceful_restart(self, outcome: GracefulRestartOutcome, why: str) -> None:
        """Stop holding stale routes of ``_gr_families``; tell the RIB to flush them."""
        if self._gr_families:
            self._emit(GracefulRestartEnded(self.peer, outcome, self._gr_families, why))
        self._gr_until = None
        self._gr_families = ()
