"""What each entry of the transition table does, and the path from bytes to table inputs.

Received bytes are cut into messages at the header (RFC 4271 4.1); the message type is
checked against the state *before* the body is decoded, as BIRD does, so an UPDATE in
OpenSent is an FSM error (RFC 6608) and not an UPDATE error.  A codec :class:`BgpError`
becomes its NOTIFICATION; an error in a NOTIFICATION is never answered (RFC 4271 6.4).

Handlers have one signature, ``(conn, now, payload, transition) -> bool``: True lets the
dispatcher move the connection to the table's next state.
"""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

from speaker.session.connection import Connection
from speaker.session.core import Cause, SessionCore
from speaker.session.events import (
    EndOfRib,
    MalformedUpdateReceived,
    RouteRefreshReceived,
    SessionUp,
    UnnegotiatedFamilyIgnored,
    routine_message_in,
    update_received,
)
from speaker.session.negotiated import negotiate_session, validate_open, we_are_dominant
from speaker.session.state import (
    FSM_ERROR_SUBCODES,
    MESSAGE_INPUTS,
    Closing,
    DownReason,
    GracefulRestartOutcome,
    Input,
    State,
    TimerKind,
    Transition,
)
from speaker.session.summary import summarize
from speaker.wire.attributes import (
    MP_ATTRIBUTE_TYPES,
    MpReachAttr,
    MpUnreachAttr,
    UndecodedMpAttr,
)
from speaker.wire.context import Family
from speaker.wire.enums import (
    CeaseSubcode,
    ErrorCode,
    MessageType,
    RouteRefreshSubtype,
    bird_error_text,
)
from speaker.wire.errors import BgpError
from speaker.wire.messages import (
    HEADER_SIZE,
    Keepalive,
    Notification,
    Open,
    RouteRefresh,
    Update,
    check_header,
    decode_checked_update,
    decode_message,
    update_length,
)

__all__ = ["Handlers"]

_ERROR_INPUTS: dict[int, Input] = {
    MessageType.OPEN: Input.BGP_OPEN_MSG_ERR,
    MessageType.UPDATE: Input.UPDATE_MSG_ERR,
    MessageType.ROUTE_REFRESH: Input.ROUTE_REFRESH_MSG,
}
_ERROR_RFC = {
    Input.BGP_HEADER_ERR: "RFC 4271 6.1",
    Input.BGP_OPEN_MSG_ERR: "RFC 4271 6.2",
    Input.UPDATE_MSG_ERR: "RFC 4271 6.3, RFC 7606",
    Input.ROUTE_REFRESH_MSG: "RFC 7313 5",
}


_ESTABLISHED = State.ESTABLISHED  # module globals: an enum member's lookup is slow on 3.11
_UPDATE = MessageType.UPDATE


def _expect(payload: object, cls: type) -> None:
    if not isinstance(payload, cls):
        raise TypeError(f"expected {cls.__name__}, got {type(payload).__name__}")


class Handlers(SessionCore):
    """The receive path and the transition handlers."""

    # ------------------------------------------------------------------ bytes -> inputs

    def _process(self, conn: Connection, now: float) -> None:
        """Handle every whole message in the connection's buffer, in order."""
        buf = conn.inbuf
        while not conn.closing and len(buf) >= HEADER_SIZE:
            try:
                length, mtype = check_header(bytes(buf[:HEADER_SIZE]), conn.ctx)
            except BgpError as exc:
                self._receive_error(conn, now, exc, buf[18], Input.BGP_HEADER_ERR)
                return
            if len(buf) < length:
                return
            frame = bytes(buf[:length])
            del buf[:length]
            conn.last_received = now
            self._on_message(conn, now, mtype, frame)

    def _process_received(self, conn: Connection, now: float, data: bytes) -> None:
        """:meth:`_process` for bytes that arrived while nothing was buffered: whole messages
        are cut straight out of ``data`` (a segment holding one UPDATE is that UPDATE, with
        no copy into the buffer and out again); what is left of a partial one is buffered."""
        i = 0
        n = len(data)
        while not conn.closing and n - i >= HEADER_SIZE:
            # conn.ctx each time: an OPEN in this segment changes it for what follows
            length = update_length(data, i, conn.ctx)  # the usual message: no (length, type)
            if length:
                mtype = 2
            else:
                head = data if i == 0 else data[i : i + HEADER_SIZE]  # it reads 19 octets only
                try:
                    length, mtype = check_header(head, conn.ctx)
                except BgpError as exc:
                    self._receive_error(conn, now, exc, data[i + 18], Input.BGP_HEADER_ERR)
                    return
            if n - i < length:
                break
            frame = data if i == 0 and length == n else data[i : i + length]
            i += length
            conn.last_received = now
            self._on_message(conn, now, mtype, frame)
        if i < n and not conn.closing:  # a closed connection's input is dropped (close())
            conn.inbuf += data[i:] if i else data

    def _on_message(self, conn: Connection, now: float, mtype: int, frame: bytes) -> None:
        if mtype == 2 and conn.state is _ESTABLISHED:
            self._receive_update(conn, now, frame)
            return
        inp = MESSAGE_INPUTS[mtype]
        t = TRANSITIONS.get((conn.state, inp))
        if t is None:
            name = MessageType(mtype).name
            self._emit_in(conn, mtype, len(frame), f"{name} (unexpected in {conn.state})")
            self._fsm_error(conn, now, inp)
            return
        try:
            msg = decode_message(frame, conn.ctx)
        except BgpError as exc:
            self._emit_in(conn, mtype, len(frame), f"malformed {MessageType(mtype).name}")
            self._receive_error(
                conn, now, exc, mtype, _ERROR_INPUTS.get(mtype, Input.BGP_HEADER_ERR)
            )
            return
        self._emit_in(conn, mtype, len(frame), summarize(msg))
        self._run(conn, t, now, msg)  # the entry looked up above: no second lookup

    def _receive_update(self, conn: Connection, now: float, frame: bytes) -> None:
        """An UPDATE on an Established connection (the framing checked its header): what the
        table's entry for it says (:meth:`_on_update`, stay Established, no ``after``), without
        the generic lookup and dispatch that would run once per received UPDATE."""
        try:
            update, multiprotocol = decode_checked_update(frame, conn.ctx)
        except BgpError as exc:
            self._emit_in(conn, 2, len(frame), "malformed UPDATE")
            self._receive_error(conn, now, exc, 2, Input.UPDATE_MSG_ERR)
            return
        if update.nlri:  # summarize(update), without its End-of-RIB test
            summary = f"UPDATE (+{len(update.nlri)} -{len(update.withdrawn)})"
        else:
            summary = summarize(update)
        self._events.append(
            routine_message_in(self.peer, conn.conn_id, _UPDATE, len(frame), summary)
        )
        self._update_in(conn, now, update, multiprotocol)

    def _receive_error(
        self, conn: Connection, now: float, exc: BgpError, mtype: int, inp: Input
    ) -> None:
        if mtype == MessageType.NOTIFICATION:
            # RFC 4271 6.4: an error in a NOTIFICATION cannot be reported with a NOTIFICATION
            text = f"malformed NOTIFICATION received ({exc.reason}); not answered (RFC 4271 6.4)"
            self.last_error = f"Received: {text}"
            self._cause = Cause(text, "RFC 4271 6.4", Input.NOTIF_MSG, conn.conn_id)
            self._close(conn, now, Closing.notification_received(None, text))
            return
        self._send_error(conn, now, exc, inp, _ERROR_RFC.get(inp, "RFC 4271 6"))

    def _fsm_error(self, conn: Connection, now: float, inp: Input) -> None:
        """RFC 6608 4: an unexpected message is answered with 5/<subcode of the state>."""
        subcode = FSM_ERROR_SUBCODES[conn.state]
        exc = BgpError(ErrorCode.FSM, subcode, b"", f"{inp} is unexpected in {conn.state}")
        self._send_error(conn, now, exc, inp, "RFC 6608 4")

    # ------------------------------------------------------------------ connection set-up

    def _on_connected(self, conn: Connection, now: float, payload: object, t: Transition) -> bool:
        """TCP up (either direction): send our OPEN, large hold timer (RFC 4271 8.2.2)."""
        conn.connect_deadline = None
        self._queue(conn, self.local_open, control=True)
        conn.hold_deadline = now + self.config.initial_hold_time
        if conn.outgoing:
            inp = Input.TCP_CR_ACKED
            text = f"TCP connection to {self.peer}:{self.config.port} up ({inp}); OPEN sent"
        else:
            inp = Input.TCP_CONFIRMED
            text = f"connection from {self.peer} accepted ({inp}); OPEN sent"
        self._cause = Cause(text, t.rfc, inp, conn.conn_id)
        return True

    def _on_connect_failed(
        self, conn: Connection, now: float, payload: object, t: Transition
    ) -> bool:
        """Our attempt failed: back to Active, retry after ConnectRetryTime."""
        reason = str(payload or "connection failed")
        conn.close()
        self._conns.pop(conn.conn_id, None)
        self.last_error = f"Socket: {reason}"
        retry = self.config.connect_retry
        self._cause = Cause(
            f"connection to {self.peer}:{self.config.port} failed: {reason}; "
            f"next attempt in {retry:g} s",
            t.rfc,
            Input.TCP_FAILS,
            conn.conn_id,
        )
        if self._idle_until is None and self._connect_at is None:
            self._schedule_connect(now, retry, TimerKind.CONNECT_RETRY)
        return False

    def _on_connect_timeout(
        self, conn: Connection, now: float, payload: object, t: Transition
    ) -> bool:
        """ConnectRetryTimer in Connect: drop the attempt and try again at once."""
        retry = self.config.connect_retry
        self._abandon(conn, f"no answer within {retry:g} s ({Input.CONNECT_RETRY_TIMER})")
        self._connect_kind = TimerKind.CONNECT_RETRY
        self._connect(now)
        return False

    def _on_stop(self, conn: Connection, now: float, payload: object, t: Transition) -> bool:
        """ManualStop: Cease on a connection that exchanged anything, else just drop it."""
        if conn.state is State.CONNECT:
            self._abandon(conn, str(Input.MANUAL_STOP))
            return False
        _expect(payload, Notification)
        assert isinstance(payload, Notification)
        text = f"{Input.MANUAL_STOP}: NOTIFICATION {payload.describe()} sent"
        self._close(conn, now, Closing.notification_sent(payload, text, DownReason.ADMIN_STOP))
        return False

    # ------------------------------------------------------------------ OPEN and collision

    def _on_open(self, conn: Connection, now: float, payload: object, t: Transition) -> bool:
        """Validate the OPEN, resolve a collision, negotiate, answer with KEEPALIVE."""
        _expect(payload, Open)
        assert isinstance(payload, Open)
        msg = payload
        try:
            validate_open(self.config, msg)
        except BgpError as exc:
            self._send_error(conn, now, exc, Input.BGP_OPEN_MSG_ERR, "RFC 4271 6.2")
            return False
        conn.remote_open = msg
        if not self._resolve_collision(conn, now, msg):
            return False
        info = negotiate_session(
            self.config, self.local_open, msg, conn_id=conn.conn_id, outgoing=conn.outgoing
        )
        conn.info = info
        conn.ctx = info.context
        conn.hold_time = info.hold_time
        conn.keepalive_time = info.keepalive_time
        self._queue(conn, Keepalive(), control=True)
        if info.hold_time:
            conn.hold_deadline = now + info.hold_time
            conn.keepalive_deadline = now + self._jitter(info.keepalive_time)
        else:  # RFC 4271 4.4: hold time 0, no KEEPALIVEs and no hold timer
            conn.hold_deadline = conn.keepalive_deadline = None
        self._connect_at = None  # BIRD: no new attempt while a connection is in OpenConfirm
        self._cause = Cause(
            f"OPEN from {self.peer} accepted (AS {msg.asn}, id {msg.bgp_id}, hold "
            f"{msg.hold_time} s -> {info.hold_time} s); KEEPALIVE sent",
            t.rfc,
            Input.BGP_OPEN,
            conn.conn_id,
        )
        return True

    def _resolve_collision(self, conn: Connection, now: float, msg: Open) -> bool:
        """RFC 4271 6.8 (as BIRD): True if ``conn`` survives its peer's other connections."""
        for other in self._live():
            if other is conn or other.state is State.ACTIVE:
                continue
            if other.state is State.CONNECT:
                # the peer's OPEN arrived here first: stop our own attempt (BIRD)
                self._abandon(other, "the peer's connection got its OPEN through first")
                continue
            if other.state is State.ESTABLISHED:
                loser = conn
                why = f"a session is already Established on conn {other.conn_id}"
            else:
                ours = we_are_dominant(
                    self.config.router_id, self.config.local_as, msg.bgp_id, msg.asn
                )
                loser = conn if conn.outgoing != ours else other
                winner = self.config.router_id if ours else msg.bgp_id
                rule = (
                    "higher AS, equal ids"
                    if msg.bgp_id == self.config.router_id
                    else ("higher BGP Identifier")
                )
                why = (
                    f"connection collision: the connection initiated by {winner} ({rule}) "
                    f"is kept, conn {loser.conn_id} ({loser.direction}) is closed"
                )
            note = Notification.cease(CeaseSubcode.CONNECTION_COLLISION_RESOLUTION)
            self._cause = Cause(
                f"{why} (RFC 4271 6.8)", "RFC 4271 6.8", Input.OPEN_COLLISION_DUMP, loser.conn_id
            )
            self._close(loser, now, Closing.notification_sent(note, f"{why} (RFC 4271 6.8)"))
            if loser is conn:
                return False
        return True

    # ------------------------------------------------------------------ OpenConfirm, Established

    def _restart_hold(self, conn: Connection, now: float) -> None:
        if conn.hold_time:
            conn.hold_deadline = now + conn.hold_time

    def _on_first_keepalive(
        self, conn: Connection, now: float, payload: object, t: Transition
    ) -> bool:
        """KEEPALIVE in OpenConfirm: the session is Established (RFC 4271 8.2.2)."""
        self._restart_hold(conn, now)
        self._cause = Cause(
            f"KEEPALIVE from {self.peer} received ({Input.KEEPALIVE_MSG})",
            t.rfc,
            Input.KEEPALIVE_MSG,
            conn.conn_id,
        )
        return True

    def _session_up(self, conn: Connection, now: float) -> None:
        """After OpenConfirm -> Established: report, and settle a pending graceful restart."""
        info = conn.info
        assert info is not None
        self.negotiated = info
        self.established_since = now
        self.last_error = None
        self._connect_at = None
        self._gr_until = None  # RFC 4724 4.2: the restart timer stops when the peer is back
        self._emit(SessionUp(self.peer, conn.conn_id, info))
        if self._gr_families:
            gr = info.peer_graceful_restart
            # RFC 4724 4.2: families without the F bit in the new OPEN are flushed now; the
            # others stay stale until the peer's End-of-RIB
            self._gr_families = tuple(
                f for f in self._gr_families if gr is None or not gr.forwarding(f)
            )
            self._end_graceful_restart(
                GracefulRestartOutcome.ABORTED,
                "the peer's new OPEN does not keep forwarding state (F bit) for them "
                "(RFC 4724 4.2)",
            )

    def _on_keepalive_timer(
        self, conn: Connection, now: float, payload: object, t: Transition
    ) -> bool:
        """KeepaliveTimer: queue a KEEPALIVE ahead of any UPDATE backlog (RFC 4271 4.4).

        Sent every KeepaliveTime even while UPDATEs flow: RFC 4271 8.2.2 lets an UPDATE
        restart the timer, but a queued UPDATE may not have left yet, and an extra
        KEEPALIVE is harmless where a late one can cost the session.
        """
        self._queue(conn, Keepalive(), control=True)
        ka = conn.keepalive_time
        conn.keepalive_deadline = now + self._jitter(ka) if ka else None
        return True

    def _on_keepalive(self, conn: Connection, now: float, payload: object, t: Transition) -> bool:
        self._restart_hold(conn, now)
        return True

    def _on_update(self, conn: Connection, now: float, payload: object, t: Transition) -> bool:
        """An UPDATE for the RIB (the table's entry; received ones take
        :meth:`_receive_update`)."""
        _expect(payload, Update)
        assert isinstance(payload, Update)
        multiprotocol = not MP_ATTRIBUTE_TYPES.isdisjoint(map(type, payload.attributes))
        self._update_in(conn, now, payload, multiprotocol)
        return True

    def _update_in(
        self, conn: Connection, now: float, payload: Update, multiprotocol: bool
    ) -> None:
        """An UPDATE for the RIB; End-of-RIB (RFC 4724 2); RFC 7606 outcomes reported.

        ``multiprotocol``: it carries MP_REACH/MP_UNREACH_NLRI (else there is nothing to
        drop for a family not negotiated)."""
        if conn.hold_time:  # _restart_hold, inlined: once per UPDATE
            conn.hold_deadline = now + conn.hold_time
        if multiprotocol:
            kept = self._negotiated_part(conn, payload)
            if kept is None:
                return
            payload = kept
        if payload.errors:
            # RFC 7606 2: treat-as-withdraw withdraws the UPDATE's NLRI (the RIB does it, from
            # ``Update.treat_as_withdraw``), attribute-discard keeps the routes without the
            # attribute (the codec left it out); the session stays up either way
            action = max(e.action for e in payload.errors)
            details = tuple(e.describe() for e in payload.errors)
            count = self.malformed_updates[action] = self.malformed_updates.get(action, 0) + 1
            self._emit(
                MalformedUpdateReceived(
                    self.peer, conn.conn_id, payload, action, details, count=count
                )
            )
            return
        family = None if payload.nlri else payload.end_of_rib()
        if family is not None:
            self._emit(EndOfRib(self.peer, family))
        else:
            self._events.append(update_received(self.peer, conn.conn_id, payload))

    def _negotiated_part(self, conn: Connection, update: Update) -> Update | None:
        """The UPDATE without MP_REACH/MP_UNREACH_NLRI of families not negotiated (reported
        and counted), None when nothing of ours is left (and it is not an End-of-RIB)."""
        kept, dropped = _negotiated_only(update, conn.ctx.families)
        if not dropped:
            return update
        self.unnegotiated_family_updates += 1
        ignored = tuple(dict.fromkeys((int(a.afi), int(a.safi)) for a in dropped))
        self._emit(
            UnnegotiatedFamilyIgnored(
                self.peer, conn.conn_id, ignored, self.unnegotiated_family_updates
            )
        )
        has_mp = any(isinstance(a, (MpReachAttr, MpUnreachAttr)) for a in kept.attributes)
        if not kept.nlri and not kept.withdrawn and not has_mp:
            return None
        return kept

    def _on_route_refresh(
        self, conn: Connection, now: float, payload: object, t: Transition
    ) -> bool:
        """ROUTE-REFRESH: reported for our families; unknown subtype/family ignored."""
        _expect(payload, RouteRefresh)
        assert isinstance(payload, RouteRefresh)
        self._restart_hold(conn, now)
        info = conn.info
        family = next(
            (f for f in (info.families if info else ()) if f == (payload.afi, payload.safi)),
            None,
        )
        # RFC 2918 4 / RFC 7313 5: other families and unknown subtypes are ignored
        if (
            family is not None
            and self.config.route_refresh
            and isinstance(payload.subtype, RouteRefreshSubtype)
        ):
            self._emit(RouteRefreshReceived(self.peer, family, payload.subtype))
        return True

    # ------------------------------------------------------------------ going down

    def _on_notification(
        self, conn: Connection, now: float, payload: object, t: Transition
    ) -> bool:
        """A NOTIFICATION closes the connection and is never answered (RFC 4271 6.4)."""
        _expect(payload, Notification)
        assert isinstance(payload, Notification)
        # BIRD's wording, which calicoctl's INFO column shows ("Received: Administrative
        # shutdown"); the RFC 9003 message, if any, follows as BIRD 1.6.8 logs it.
        self.last_error = f"Received: {bird_error_text(payload.code, payload.subcode)}"
        if payload.shutdown_message:
            self.last_error += f' "{payload.shutdown_message}"'
        text = f"NOTIFICATION {payload.describe()} received, not answered (RFC 4271 6.4)"
        self._cause = Cause(text, t.rfc, Input.NOTIF_MSG, conn.conn_id)
        self._close(conn, now, Closing.notification_received(payload, text))
        return False

    def _on_hold_expired(
        self, conn: Connection, now: float, payload: object, t: Transition
    ) -> bool:
        """Nothing heard for the hold time: NOTIFICATION 4/0 (RFC 4271 6.5)."""
        hold = conn.hold_time if conn.state is not State.OPENSENT else self.config.initial_hold_time
        exc = BgpError(ErrorCode.HOLD_TIMER_EXPIRED, 0, b"", f"nothing received for {hold} s")
        self._send_error(
            conn, now, exc, Input.HOLD_TIMER, t.rfc, reason=DownReason.HOLD_TIMER_EXPIRED
        )
        return False

    def _on_send_hold_expired(self, conn: Connection, now: float) -> None:
        """Data waited and none could be sent for the send hold time: NOTIFICATION 8/0 and
        close (RFC 9687 3).  A peer that stops reading but still sends KEEPALIVEs would
        otherwise keep the session, and our growing backlog, forever."""
        hold = self.config.send_hold_time
        exc = BgpError(
            ErrorCode.SEND_HOLD_TIMER_EXPIRED, 0, b"", f"nothing could be sent for {hold:g} s"
        )
        self._send_error(
            conn, now, exc, Input.SEND_HOLD_TIMER, "RFC 9687 3",
            reason=DownReason.SEND_HOLD_TIMER_EXPIRED,
        )

    def _on_tcp_fails(self, conn: Connection, now: float, payload: object, t: Transition) -> bool:
        """The connection went without NOTIFICATION: a peer restart if it can restart."""
        reason = str(payload or "closed by the peer")
        graceful = conn.state is State.ESTABLISHED and self._gr_ready(conn)
        self.last_error = f"Socket: {reason}"
        text = f"connection lost without NOTIFICATION ({reason}, {Input.TCP_FAILS})"
        if graceful:
            text += ": the peer may be restarting (RFC 4724 4.2)"
        self._cause = Cause(text, t.rfc, Input.TCP_FAILS, conn.conn_id)
        closing = Closing.silent(
            DownReason.CONNECTION_LOST, text, graceful=graceful, announce=False
        )
        self._close(conn, now, closing)
        return False


def _negotiated_only(
    update: Update, families: frozenset[Family]
) -> tuple[Update, tuple[MpReachAttr | MpUnreachAttr | UndecodedMpAttr, ...]]:
    """The UPDATE without its MP_REACH/MP_UNREACH_NLRI of families not negotiated (RFC 4760
    7: their routes are ignored), and those attributes; the same UPDATE when there is none."""
    if MP_ATTRIBUTE_TYPES.isdisjoint(map(type, update.attributes)):  # the usual case, in C
        return update, ()
    drop = tuple(
        a
        for a in update.attributes
        if isinstance(a, UndecodedMpAttr)
        or (isinstance(a, (MpReachAttr, MpUnreachAttr)) and (a.afi, a.safi) not in families)
    )
    if not drop:
        return update, ()
    rest = tuple(a for a in update.attributes if not any(a is d for d in drop))
    return replace(update, attributes=rest), drop


_S = State
_I = Input
_8 = "RFC 4271 8.2.2"

TRANSITIONS = MappingProxyType(
    {
        # Connect: our TCP connection attempt is in progress.
        (_S.CONNECT, _I.TCP_CR_ACKED): Transition(
            Handlers._on_connected, _S.OPENSENT, _8 + " Connect"),
        (_S.CONNECT, _I.TCP_FAILS): Transition(
            Handlers._on_connect_failed, None, _8 + " Connect"),
        (_S.CONNECT, _I.CONNECT_RETRY_TIMER): Transition(
            Handlers._on_connect_timeout, None, _8 + " Connect"
        ),
        (_S.CONNECT, _I.MANUAL_STOP): Transition(
            Handlers._on_stop, None, _8 + " Connect"),
        # Active: a connection from the peer was accepted; we answer with our OPEN.
        (_S.ACTIVE, _I.TCP_CONFIRMED): Transition(
            Handlers._on_connected, _S.OPENSENT, _8 + " Active"),
        # OpenSent: our OPEN is out, theirs is awaited.
        (_S.OPENSENT, _I.BGP_OPEN): Transition(
            Handlers._on_open, _S.OPENCONFIRM, _8 + " OpenSent"),
        (_S.OPENSENT, _I.NOTIF_MSG): Transition(
            Handlers._on_notification, None, _8 + " OpenSent"),
        (_S.OPENSENT, _I.HOLD_TIMER): Transition(
            Handlers._on_hold_expired, None, "RFC 4271 6.5"),
        (_S.OPENSENT, _I.TCP_FAILS): Transition(
            Handlers._on_tcp_fails, None, _8 + " OpenSent"),
        (_S.OPENSENT, _I.MANUAL_STOP): Transition(
            Handlers._on_stop, None, _8 + " OpenSent"),
        # OpenConfirm: OPENs exchanged, our KEEPALIVE sent, theirs awaited.
        (_S.OPENCONFIRM, _I.KEEPALIVE_MSG): Transition(
            Handlers._on_first_keepalive,
            _S.ESTABLISHED,
            _8 + " OpenConfirm",
            after=Handlers._session_up,
        ),
        (_S.OPENCONFIRM, _I.NOTIF_MSG): Transition(
            Handlers._on_notification, None, _8 + " OpenConfirm"),
        (_S.OPENCONFIRM, _I.HOLD_TIMER): Transition(
            Handlers._on_hold_expired, None, "RFC 4271 6.5"),
        (_S.OPENCONFIRM, _I.KEEPALIVE_TIMER): Transition(
            Handlers._on_keepalive_timer, _S.OPENCONFIRM, _8 + " OpenConfirm"
        ),
        (_S.OPENCONFIRM, _I.TCP_FAILS): Transition(
            Handlers._on_tcp_fails, None, _8 + " OpenConfirm"),
        (_S.OPENCONFIRM, _I.MANUAL_STOP): Transition(
            Handlers._on_stop, None, _8 + " OpenConfirm"),
        # Established: routes flow.
        (_S.ESTABLISHED, _I.KEEPALIVE_MSG): Transition(
            Handlers._on_keepalive, _S.ESTABLISHED, _8 + " Established"
        ),
        (_S.ESTABLISHED, _I.UPDATE_MSG): Transition(
            Handlers._on_update, _S.ESTABLISHED, _8 + " Established"
        ),
        (_S.ESTABLISHED, _I.ROUTE_REFRESH_MSG): Transition(
            Handlers._on_route_refresh, _S.ESTABLISHED, "RFC 2918 4, RFC 7313 4"
        ),
        (_S.ESTABLISHED, _I.NOTIF_MSG): Transition(
            Handlers._on_notification, None, _8 + " Established"),
        (_S.ESTABLISHED, _I.HOLD_TIMER): Transition(
            Handlers._on_hold_expired, None, "RFC 4271 6.5"),
        (_S.ESTABLISHED, _I.KEEPALIVE_TIMER): Transition(
            Handlers._on_keepalive_timer, _S.ESTABLISHED, _8 + " Established"
        ),
        (_S.ESTABLISHED, _I.TCP_FAILS): Transition(
            Handlers._on_tcp_fails, None, _8 + " Established"),
        (_S.ESTABLISHED, _I.MANUAL_STOP): Transition(
            Handlers._on_stop, None, _8 + " Established"),
    }
)
"""``(connection state, input) -> Transition``; see the module docstring."""
Handlers._transitions = TRANSITIONS
