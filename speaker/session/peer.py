"""The sans-IO BGP session with one peer: RFC 4271 section 8 with BIRD 1.6's timers.

A :class:`PeerSession` owns up to two TCP connections to its peer (one we initiated, one
the peer initiated: RFC 4271 6.8), each running the transition table of
:mod:`speaker.session.state`.  It never touches a socket or a clock: inputs are method
calls carrying ``now`` (seconds, float), outputs are events (:meth:`PeerSession.next_event`,
including the ConnectRequest / CloseConnection actions), bytes
(:meth:`PeerSession.data_to_send`) and one deadline (:meth:`PeerSession.get_timer`).
See the package docstring for the contract with the transport.
"""

from __future__ import annotations

from speaker.events import Event
from speaker.session.config import family_name
from speaker.session.connection import Connection
from speaker.session.core import Cause
from speaker.session.events import CloseConnection, RoutineMessageOut, TimerFired
from speaker.session.handlers import Handlers
from speaker.session.state import (
    Closing,
    DownReason,
    GracefulRestartOutcome,
    Input,
    State,
    TimerKind,
)
from speaker.session.summary import summarize
from speaker.wire.context import Family
from speaker.wire.enums import CeaseSubcode, MessageType, RouteRefreshSubtype
from speaker.wire.errors import LocalProtocolError
from speaker.wire.messages import HEADER_SIZE, MARKER, Notification, RouteRefresh, Update

__all__ = ["PeerSession"]

_TIMER_ORDER = {
    TimerKind.HOLD: 0,
    TimerKind.KEEPALIVE: 1,
    TimerKind.CONNECT_RETRY: 2,
    TimerKind.ERROR_WAIT: 3,
    TimerKind.CONNECT_DELAY: 4,
    TimerKind.RESTART: 5,
    TimerKind.SEND_HOLD: 6,
}
_SENDING = (State.OPENSENT, State.OPENCONFIRM, State.ESTABLISHED)
_UNCONNECTED = (State.CONNECT, State.ACTIVE)  # once, not two enum lookups per read
_TIMER_INPUTS = {
    TimerKind.CONNECT_RETRY: Input.CONNECT_RETRY_TIMER,
    TimerKind.HOLD: Input.HOLD_TIMER,
    TimerKind.KEEPALIVE: Input.KEEPALIVE_TIMER,
}
_Timer = tuple[float, int, int, TimerKind, Connection | None]


class PeerSession(Handlers):
    """The BGP session with one peer, as a state machine without I/O."""

    # ------------------------------------------------------------------ read-only views

    @property
    def started(self) -> bool:
        """Between start() and stop()/graceful_shutdown()."""
        return self._started

    @property
    def error_wait(self) -> float:
        """The error wait the last error set, in seconds (0 when none yet)."""
        return self._error_wait.delay

    def connections(self) -> dict[int, State]:
        """Open connections (not being closed) and their FSM states."""
        return {c.conn_id: c.state for c in self._live()}

    # ------------------------------------------------------------------ administrative

    def start(self, now: float) -> None:
        """ManualStart, or ManualStart_with_PassiveTcpEstablishment when ``config.passive``."""
        if self._started:
            return
        self._started = True
        self._idle_until = None
        passive = self.config.passive
        inp = Input.PASSIVE_START if passive else Input.MANUAL_START
        if passive:
            text = f"{inp}: waiting for {self.peer} to connect (passive)"
        else:
            self._schedule_connect(now, self.config.connect_delay, TimerKind.CONNECT_DELAY)
            delay = self._connect_at - now if self._connect_at is not None else 0.0
            text = f"{inp}: first connection in {delay:.3g} s (connect delay)"
        self._cause = Cause(text, "RFC 4271 8.2.2 Idle", inp)
        self._update_state()

    def stop(
        self,
        now: float,
        subcode: CeaseSubcode = CeaseSubcode.ADMINISTRATIVE_SHUTDOWN,
        message: str = "",
        *,
        notification: Notification | None = None,
    ) -> None:
        """ManualStop: Cease (RFC 4486; ``message`` per RFC 9003) on every connection; Idle.

        ``notification`` replaces the Cease built from ``subcode`` (one with data, such as
        Maximum Number of Prefixes Reached with its AFI, SAFI and limit)."""
        note = notification if notification is not None else Notification.cease(subcode, message)
        self._started = False
        self._idle_until = self._connect_at = None
        self._error_wait.reset()  # BIRD bgp_shutdown: a manual stop forgets past errors
        self._cause = Cause(
            f"{Input.MANUAL_STOP}: {note.describe()}", "RFC 4271 8.2.2", Input.MANUAL_STOP
        )
        for conn in self._live():
            self._dispatch(conn, Input.MANUAL_STOP, now, note)
        self._end_graceful_restart(GracefulRestartOutcome.STOPPED, "the session was stopped")
        self._update_state()

    def reset(self, now: float, notification: Notification, why: str) -> None:
        """Close every connection with ``notification`` and start again after the error wait.

        BIRD's automatic restart of a protocol (a route limit's ``restart`` action): the
        session stays started, the close counts as an error (``bgp_update_startup_delay``),
        so the next connection waits out the error wait."""
        text = f"{why}: NOTIFICATION {notification.describe()} sent"
        self._cause = Cause(text, "RFC 4486 4", Input.MANUAL_STOP)
        for conn in self._live():
            if conn.state is State.CONNECT:
                self._abandon(conn, why)
                continue
            closing = Closing(
                DownReason.NOTIFICATION_SENT, text, notification, sent=True, error=True
            )
            self._close(conn, now, closing)
        self._update_state()

    def graceful_shutdown(self, now: float) -> None:
        """Close every connection without NOTIFICATION, so peers keep our routes (RFC 4724 4.1).

        For a planned restart of this daemon: the peers see the TCP connection go and,
        having our graceful restart capability, keep our routes stale for our Restart Time.
        """
        self._started = False
        self._idle_until = self._connect_at = None
        text = "graceful shutdown: TCP closed without NOTIFICATION (RFC 4724 4.1)"
        self._cause = Cause(text, "RFC 4724 4.1", Input.MANUAL_STOP)
        for conn in self._live():
            graceful = conn.state is State.ESTABLISHED and self._gr_ready(conn)
            closing = Closing.silent(
                DownReason.LOCAL_GRACEFUL_SHUTDOWN, text, graceful=graceful
            )
            self._close(conn, now, closing)
        self._update_state()

    # ------------------------------------------------------------------ transport inputs

    def connection_made(self, conn_id: int, now: float, *, outgoing: bool) -> None:
        """TCP is up: our attempt ``conn_id`` succeeded, or the peer connected to us."""
        if outgoing:
            conn = self._conns.get(conn_id)
            if conn is None or conn.closing:
                # abandoned meanwhile (connect timeout, collision, stop): close it again
                self._conns.pop(conn_id, None)
                self._emit(CloseConnection(self.peer, conn_id, "the attempt was abandoned"))
                return
            if not conn.outgoing or conn.state is not State.CONNECT:
                raise LocalProtocolError(f"conn {conn_id} is not a connection attempt")
            self._dispatch(conn, Input.TCP_CR_ACKED, now, None)
        else:
            if conn_id in self._conns:
                raise LocalProtocolError(f"connection id {conn_id} is already in use")
            self._next_id = max(self._next_id, conn_id + 1)  # ids are never reused
            self._accept(conn_id, now)
        self._update_state()

    def connection_failed(self, conn_id: int, now: float, reason: str) -> None:
        """Our connection attempt ``conn_id`` failed (refused, unreachable, timed out)."""
        conn = self._conns.get(conn_id)
        if conn is None or conn.closing:
            self._conns.pop(conn_id, None)
            return
        if conn.state is not State.CONNECT:
            raise LocalProtocolError(f"conn {conn_id} is connected; use connection_lost()")
        self._dispatch(conn, Input.TCP_FAILS, now, reason)
        self._update_state()

    def note_failure(self, reason: str) -> None:
        """Why an attempt the session already gave up on failed, found out afterwards (the
        kernel's TCP MD5 drop counters): shown as the last error, no state change."""
        self.last_error = f"Socket: {reason}"

    def connection_lost(self, conn_id: int, now: float, reason: str = "") -> None:
        """The TCP connection closed or was reset (a graceful-restart signal when Established)."""
        conn = self._conns.get(conn_id)
        if conn is None:
            return
        if not conn.closing:
            self._dispatch(conn, Input.TCP_FAILS, now, reason)
        self._conns.pop(conn_id, None)  # the transport is gone: nothing left to flush
        self._update_state()

    def receive_data(self, conn_id: int, data: bytes, now: float) -> None:
        """Bytes from the peer on ``conn_id``; whole messages are processed at once."""
        conn = self._conns.get(conn_id)
        if conn is None or conn.closing or not data:
            return  # data racing our close is discarded
        if conn.state in _UNCONNECTED:
            raise LocalProtocolError(f"conn {conn_id} is not connected yet")
        buf = conn.inbuf
        if type(data) is not bytes:
            buf += data
            self._process(conn, now)
        elif not buf:
            self._process_received(conn, now, data)
        else:
            buf += data
            if len(buf) >= HEADER_SIZE and len(buf) >= ((buf[16] << 8) | buf[17]):
                # the buffered message is whole now: the rest of the read (the daemon reads
                # 8 KiB, some 90 one-prefix UPDATEs) is framed in place like a fresh read
                whole = bytes(buf)
                buf.clear()
                self._process_received(conn, now, whole)
            else:
                self._process(conn, now)  # nothing whole yet (a bad header is still refused)
        self._check_sending(now)
        self._update_state()

    def data_to_send(self, conn_id: int, limit: int | None = None) -> bytes:
        """Bytes to write on ``conn_id``: control messages first, UPDATEs up to ``limit``."""
        conn = self._conns.get(conn_id)
        if conn is None:
            return b""
        data = conn.take(limit)
        conn.handed_out += len(data)
        if conn.send_hold_deadline is not None and not conn.send_stalled():
            conn.send_stalled_since = conn.send_hold_deadline = None  # all gone: no timer
        if conn.closing and not conn.pending():
            del self._conns[conn_id]
        return data

    def report_send_backlog(self, conn_id: int, octets: int, now: float) -> None:
        """The transport's word on ``conn_id``: ``octets`` we handed it are not sent yet
        (its own buffer and the socket's send queue).  Fewer than before plus what was handed
        out since means the peer takes data: the send hold timer starts again (RFC 9687)."""
        conn = self._conns.get(conn_id)
        if conn is None or conn.closing:
            return
        progress = octets < conn.send_backlog + conn.handed_out
        conn.send_backlog = octets
        conn.handed_out = 0
        conn.backlog_reported = True
        if conn.state in _SENDING:
            conn.note_sending(now, self.config.send_hold_time, progress=progress)

    def _check_sending(self, now: float) -> None:
        """Look at every connection's output (RFC 9687).  A transport that never reports its
        backlog is taken to send whatever it was handed: only our own queue can stall."""
        hold = self.config.send_hold_time
        for conn in self._conns.values():  # _live() without its list: once per read
            if conn.closing or conn.state not in _SENDING:
                continue
            if conn.backlog_reported:
                conn.note_sending(now, hold)
            else:
                progress = conn.handed_out > 0
                conn.handed_out = 0
                conn.note_sending(now, hold, progress=progress)

    def pending_connections(self) -> tuple[int, ...]:
        """Connections with bytes waiting in :meth:`data_to_send`."""
        return tuple(cid for cid, c in self._conns.items() if c.pending())

    # ------------------------------------------------------------------ timers and events

    def _timers(self) -> list[_Timer]:
        items: list[_Timer] = []
        for deadline, kind in (
            (self._idle_until, TimerKind.ERROR_WAIT),
            (self._connect_at, self._connect_kind),
            (self._gr_until, TimerKind.RESTART),
        ):
            if deadline is not None:
                items.append((deadline, _TIMER_ORDER[kind], -1, kind, None))
        for conn in self._live():
            for deadline, kind in conn.deadlines():
                items.append((deadline, _TIMER_ORDER[kind], conn.conn_id, kind, conn))
        return items

    def get_timer(self) -> float | None:
        """The earliest deadline: call :meth:`handle_timer` then (None: nothing pending)."""
        return min((t[0] for t in self._timers()), default=None)

    def handle_timer(self, now: float) -> None:
        """Fire every deadline that has passed, earliest first."""
        self._check_sending(now)
        for _ in range(10_000):  # each firing clears or moves its deadline
            due = [t for t in self._timers() if t[0] <= now]
            if not due:
                break
            _, _, _, kind, conn = min(due, key=lambda t: t[:3])
            self._fire(kind, conn, now)
        self._check_sending(now)  # a KEEPALIVE just queued starts the send hold timer now
        self._update_state()

    def _fire(self, kind: TimerKind, conn: Connection | None, now: float) -> None:
        self._emit(TimerFired(self.peer, kind, conn.conn_id if conn is not None else None))
        if conn is not None:
            if kind is TimerKind.HOLD:
                conn.hold_deadline = None
            elif kind is TimerKind.KEEPALIVE:
                conn.keepalive_deadline = None
            elif kind is TimerKind.SEND_HOLD:
                conn.send_hold_deadline = None
                if conn.send_stalled() and conn.state in _SENDING:
                    self._on_send_hold_expired(conn, now)
                else:
                    conn.send_stalled_since = None
                return
            else:
                conn.connect_deadline = None
            self._dispatch(conn, _TIMER_INPUTS[kind], now, None)
        elif kind is TimerKind.ERROR_WAIT:
            self._idle_until = None
            self._cause = Cause(
                f"{Input.IDLE_HOLD_TIMER}: error wait over",
                "RFC 4271 8.1.1",
                Input.IDLE_HOLD_TIMER,
            )
            if self._started and not self.config.passive:
                self._schedule_connect(now, self.config.connect_delay, TimerKind.CONNECT_DELAY)
            self._update_state()
        elif kind is TimerKind.RESTART:
            self._end_graceful_restart(
                GracefulRestartOutcome.EXPIRED,
                "the peer did not come back within its Restart Time (RFC 4724 4.2)",
            )
        else:
            self._connect_at = None
            self._connect(now)

    def next_event(self) -> Event | None:
        """The next event (action or information), or None."""
        return self._events.popleft() if self._events else None

    # ------------------------------------------------------------------ route output

    def _require_established(self, what: str) -> Connection:
        conn = self._established()
        if conn is None:
            raise LocalProtocolError(f"{what}: the session is {self.state}, not Established")
        return conn

    def send_update(self, update: bytes | Update) -> None:
        """Queue an UPDATE (an :class:`Update` or one encoded message) behind earlier ones."""
        conn = self._require_established("send_update")
        if isinstance(update, Update):
            data = update.encode(conn.ctx)
            summary = summarize(update)
        else:
            data = bytes(update)
            if (
                len(data) < HEADER_SIZE + 4
                or data[:16] != MARKER
                or data[18] != MessageType.UPDATE
                or int.from_bytes(data[16:18], "big") != len(data)
            ):
                raise LocalProtocolError("send_update: the bytes are not one whole UPDATE")
            if len(data) > conn.ctx.max_message_size:
                raise LocalProtocolError(
                    f"send_update: {len(data)} octets exceed the negotiated maximum of "
                    f"{conn.ctx.max_message_size} (RFC 4271 4.1, RFC 8654)"
                )
            summary = "UPDATE"
        conn.routes.append(data)
        self._emit(
            RoutineMessageOut(self.peer, conn.conn_id, MessageType.UPDATE, len(data), summary)
        )

    def send_end_of_rib(self, family: Family) -> None:
        """Queue End-of-RIB for a family after its initial routes (RFC 4724 2)."""
        conn = self._require_established("send_end_of_rib")
        if conn.info is None or family not in conn.info.families:
            raise LocalProtocolError(f"send_end_of_rib: {family_name(family)} not negotiated")
        self._queue(conn, Update.end_of_rib_marker(family), control=False)

    def send_route_refresh(
        self, family: Family, subtype: RouteRefreshSubtype = RouteRefreshSubtype.NORMAL
    ) -> None:
        """Queue a ROUTE-REFRESH request (RFC 2918) or BoRR/EoRR demarcation (RFC 7313)."""
        conn = self._require_established("send_route_refresh")
        info = conn.info
        if info is None or family not in info.families:
            raise LocalProtocolError(f"send_route_refresh: {family_name(family)} not negotiated")
        if subtype is RouteRefreshSubtype.NORMAL and not info.route_refresh:
            raise LocalProtocolError("send_route_refresh: the peer did not offer route refresh")
        if subtype is not RouteRefreshSubtype.NORMAL and not info.enhanced_route_refresh:
            raise LocalProtocolError("send_route_refresh: enhanced route refresh not negotiated")
        # a request may overtake UPDATEs; BoRR/EoRR must bracket them, so they queue behind
        self._queue(
            conn,
            RouteRefresh(family[0], family[1], subtype),
            control=subtype is RouteRefreshSubtype.NORMAL,
        )

    # ------------------------------------------------------------------ incoming connections

    def _accept(self, conn_id: int, now: float) -> None:
        """An incoming connection (RFC 4271 8.2.2 Active: TcpConnectionConfirmed).

        While Established, a new connection from a peer that can restart gracefully means
        the peer restarted (RFC 4724 4.2; BIRD ``bgp_incoming_connection``): the old session
        goes down gracefully and the new connection proceeds.  Without graceful restart the
        new connection loses the collision with the Established one (RFC 4271 6.8) and gets
        Cease 7 at once.  While stopped, in error wait, or with another incoming connection
        open, it gets Cease 5 Connection Rejected (RFC 4486 4).
        """
        est = self._established()
        if est is not None and self._gr_ready(est):
            self.last_error = "Error: Graceful restart"
            text = (
                f"new connection from {self.peer} while Established: the peer restarted "
                "(RFC 4724 4.2, as BIRD)"
            )
            self._cause = Cause(text, "RFC 4724 4.2", Input.TCP_CONFIRMED, est.conn_id)
            self._close(est, now, Closing.silent(DownReason.PEER_RESTARTED, text, graceful=True))
            est = None
        refuse: tuple[CeaseSubcode, str] | None = None
        if not self._started:
            refuse = (CeaseSubcode.CONNECTION_REJECTED, "the session is stopped")
        elif self._idle_until is not None:
            refuse = (CeaseSubcode.CONNECTION_REJECTED, "error wait in progress")
        elif est is not None:
            refuse = (
                CeaseSubcode.CONNECTION_COLLISION_RESOLUTION,
                "a session is already Established and the peer cannot restart gracefully: "
                "the new connection loses the collision (RFC 4271 6.8)",
            )
        elif any(not c.outgoing for c in self._live()):
            refuse = (CeaseSubcode.CONNECTION_REJECTED, "another incoming connection is open")
        conn = Connection(conn_id, False, State.ACTIVE, now)
        self._conns[conn_id] = conn
        if refuse is None:
            self._dispatch(conn, Input.TCP_CONFIRMED, now, None)
            return
        subcode, why = refuse
        note = Notification.cease(subcode)
        self._queue(conn, note, control=True)
        conn.close()
        self._emit(CloseConnection(self.peer, conn_id, f"incoming connection refused: {why}", note))
