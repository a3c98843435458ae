"""RFC 9687 send hold timer in the sans-IO session, with a fake clock.

A peer that stops reading while it still sends KEEPALIVEs keeps our hold timer happy and our
output growing forever.  The session closes such a connection with NOTIFICATION 8/0 once data
has waited for ``send_hold_time`` without any of it leaving.  What "leaving" means comes from
the transport (``report_send_backlog``: octets handed out but not yet on the wire); a transport
that never reports is taken to send what it is handed, so only our own queue can stall.
"""

from __future__ import annotations

from speaker.session import CloseConnection, PeerSession, SessionConfig, SessionDown, State
from speaker.session.state import DownReason
from speaker.wire.context import DEFAULT_CONTEXT
from speaker.wire.enums import ErrorCode
from speaker.wire.messages import Keepalive, Notification, decode_message
from tests.sessiontesting import drain, frames, handshake, wire

A80, A81 = "192.168.0.80", "192.168.0.81"


def session(send_hold: float = 10, hold: int = 240) -> tuple[PeerSession, int]:
    s = PeerSession(
        SessionConfig(
            local_as=64512, router_id=A80, peer_as=64512, peer_address=A81,
            hold_time=hold, send_hold_time=send_hold,
        )
    )
    conn = handshake(s)
    s.data_to_send(conn)
    drain(s)
    return s, conn


def keepalive_from_peer(s: PeerSession, conn: int, now: float) -> None:
    s.receive_data(conn, wire(Keepalive()), now)


def run(s: PeerSession, conn: int, until: float, *, backlog: int | None) -> None:
    """Advance second by second: the peer sends KEEPALIVEs (our hold timer never fires); the
    transport reports ``backlog`` octets unsent before each timer (None: never reports, and
    never takes data either)."""
    t = 2.0
    while t <= until and s.state is State.ESTABLISHED:
        keepalive_from_peer(s, conn, t)
        if backlog is not None:
            s.report_send_backlog(conn, backlog, t)
            s.data_to_send(conn)  # the transport takes it, the kernel cannot send it
        deadline = s.get_timer()
        if deadline is not None and deadline <= t:
            s.handle_timer(t)
        t += 1.0


def closing_note(s: PeerSession) -> Notification | None:
    for e in drain(s):
        if isinstance(e, CloseConnection):
            return e.notification
    return None


def test_stuck_backlog_closes_with_8_0_after_the_send_hold_time() -> None:
    s, conn = session(send_hold=10)
    run(s, conn, 30, backlog=4000)
    assert s.state is not State.ESTABLISHED
    events = drain(s)
    (down,) = [e for e in events if isinstance(e, SessionDown)]
    assert down.reason is DownReason.SEND_HOLD_TIMER_EXPIRED
    assert down.notification is not None
    assert (down.notification.code, down.notification.subcode) == (
        ErrorCode.SEND_HOLD_TIMER_EXPIRED, 0
    )
    assert s.last_error == "BGP Error: Send hold timer expired"
    # down 10 s after the stall began (the first report, t=2; established at t=2), not before
    assert 10 <= down.established_for <= 11
    # the NOTIFICATION is queued to go out before the close (the peer may never read it)
    (last,) = frames(s.data_to_send(conn))[-1:]
    expected = Notification(ErrorCode.SEND_HOLD_TIMER_EXPIRED, 0)
    assert decode_message(last, DEFAULT_CONTEXT) == expected


def test_a_backlog_that_shrinks_keeps_the_session() -> None:
    s, conn = session(send_hold=10)
    t, backlog = 2.0, 50_000
    while t < 60:
        keepalive_from_peer(s, conn, t)
        backlog -= 500  # slow, but the peer reads
        s.report_send_backlog(conn, backlog, t)
        if (d := s.get_timer()) is not None and d <= t:
            s.handle_timer(t)
        t += 1.0
    assert s.state is State.ESTABLISHED


def test_an_empty_backlog_stops_the_timer() -> None:
    s, conn = session(send_hold=10)
    s.report_send_backlog(conn, 100, 2.0)
    assert s.get_timer() is not None and s.get_timer() <= 12.0  # type: ignore[operator]
    s.report_send_backlog(conn, 0, 3.0)
    run(s, conn, 40, backlog=0)
    assert s.state is State.ESTABLISHED


def test_zero_turns_it_off() -> None:
    s, conn = session(send_hold=0)
    run(s, conn, 100, backlog=4000)
    assert s.state is State.ESTABLISHED


def test_without_reports_only_our_own_queue_can_stall() -> None:
    s, conn = session(send_hold=10)
    # the transport never takes data: our KEEPALIVEs pile up in the session's queue
    t = 2.0
    while t < 200 and s.state is State.ESTABLISHED:
        keepalive_from_peer(s, conn, t)
        if (d := s.get_timer()) is not None and d <= t:
            s.handle_timer(t)
        t += 1.0
    assert s.state is not State.ESTABLISHED
    note = closing_note(s)
    assert note is not None and note.code == ErrorCode.SEND_HOLD_TIMER_EXPIRED
    # keepalive time 80 s: the first KEEPALIVE waits from t=82, closed at t=92 (the loop
    # stops one step later)
    assert t == 93


def test_without_reports_a_transport_that_takes_data_is_never_stalled() -> None:
    s, conn = session(send_hold=10)
    t = 2.0
    while t < 600:
        keepalive_from_peer(s, conn, t)
        if (d := s.get_timer()) is not None and d <= t:
            s.handle_timer(t)
        s.data_to_send(conn)
        t += 1.0
    assert s.state is State.ESTABLISHED
