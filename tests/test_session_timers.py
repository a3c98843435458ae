"""Timers as deadlines: hold, keepalive, the initial hold, error wait; and output priority."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from speaker.session import (
    CloseConnection,
    ConnectRequest,
    DownReason,
    ErrorWait,
    PeerSession,
    SessionConfig,
    SessionDown,
    State,
    StateChange,
    TimerFired,
    TimerKind,
)
from speaker.wire.capabilities import FourOctetAsCapability
from speaker.wire.context import IPV4_UNICAST
from speaker.wire.enums import CeaseSubcode
from speaker.wire.messages import Keepalive, Notification, Open
from tests.sessiontesting import SessionPair, drain, frames, handshake, mirror, wire

A80 = IPv4Address("192.168.0.80")
A81 = IPv4Address("192.168.0.81")
MARKER = "ff" * 16
KEEPALIVE = bytes.fromhex(MARKER + "0013" + "04")
HOLD_EXPIRED = bytes.fromhex(MARKER + "0015" + "03" + "0400")


def cfg(**kw: object) -> SessionConfig:
    base: dict[str, object] = {
        "local_as": 64512,
        "router_id": A80,
        "peer_as": 64512,
        "peer_address": A81,
    }
    base.update(kw)
    return SessionConfig(**base)  # type: ignore[arg-type]


def established(**kw: object) -> tuple[PeerSession, int]:
    """Established at t = 2 s (connect delay), our OPEN and KEEPALIVE already taken."""
    session = PeerSession(cfg(**kw))
    conn = handshake(session)
    session.data_to_send(conn)
    drain(session)
    return session, conn


# ---------------------------------------------------------------------------- hold timer


def test_hold_timer_expiry_sends_4_0_and_ends_the_session() -> None:
    session, conn = established()
    sent = b""
    # keepalives at 82, 162, 242 s; the peer stays silent, so hold expires at 242 s
    for t in (82.0, 162.0):
        assert session.get_timer() == pytest.approx(t)
        session.handle_timer(t)
        sent += session.data_to_send(conn)
    assert sent == KEEPALIVE * 2
    assert session.get_timer() == pytest.approx(242)
    session.handle_timer(242)
    out = frames(session.data_to_send(conn))
    assert out[-1] == HOLD_EXPIRED
    events = drain(session)
    (close,) = [e for e in events if isinstance(e, CloseConnection)]
    assert close.notification == Notification(4, 0)
    (down,) = [e for e in events if isinstance(e, SessionDown)]
    # hold expiry is never a graceful restart (BIRD: only with LLGR), though GR was offered
    assert down.reason is DownReason.HOLD_TIMER_EXPIRED and not down.graceful
    assert down.established_for == pytest.approx(240)
    assert session.state is State.IDLE
    assert session.last_error == "BGP Error: Hold timer expired"  # BIRD's words
    assert session.get_timer() == pytest.approx(242 + 5)  # error wait


def test_every_received_message_restarts_the_hold_timer() -> None:
    session, conn = established()
    session.handle_timer(82)
    session.handle_timer(162)
    session.receive_data(conn, wire(Keepalive()), 200)
    session.handle_timer(242)
    assert session.data_to_send(conn) == KEEPALIVE * 3  # no NOTIFICATION
    assert session.state is State.ESTABLISHED
    assert session.get_timer() == pytest.approx(322)  # the next keepalive; hold is at 440
    session.handle_timer(439.9)
    assert session.state is State.ESTABLISHED
    session.handle_timer(440)
    assert frames(session.data_to_send(conn))[-1] == HOLD_EXPIRED


def test_initial_hold_time_while_waiting_for_the_open() -> None:
    session = PeerSession(cfg())
    session.start(0)
    session.handle_timer(2)
    (conn,) = session.connections()
    session.connection_made(conn, 2, outgoing=True)
    session.data_to_send(conn)
    assert session.get_timer() == pytest.approx(2 + 240)  # RFC 4271 8: four minutes
    session.handle_timer(242)
    assert session.data_to_send(conn) == HOLD_EXPIRED


def test_hold_timer_in_openconfirm_uses_the_negotiated_value() -> None:
    session = PeerSession(cfg())
    peer = Open.build(64512, 9, A81, [FourOctetAsCapability(64512)])
    conn = handshake(session, peer, establish=False)
    session.data_to_send(conn)
    assert session.get_timer() == pytest.approx(2 + 3)  # keepalive 9 / 3
    session.handle_timer(5)
    assert session.data_to_send(conn) == KEEPALIVE  # keepalives run in OpenConfirm too
    session.handle_timer(11)
    assert frames(session.data_to_send(conn))[-1] == HOLD_EXPIRED


# ---------------------------------------------------------------------------- keepalives


@pytest.mark.parametrize(("hold", "interval"), [(240, 80), (90, 30), (3, 1)])
def test_keepalives_every_third_of_the_hold_time(hold: int, interval: int) -> None:
    a = cfg(passive=True, hold_time=hold)
    pair = SessionPair(a, mirror(a))
    pair.start()
    pair.advance(3_000)
    assert pair.a.state is State.ESTABLISHED
    start, seen = len(pair.wire), len(pair.events["a"])
    pair.advance(interval * 10 * 1000)
    keepalives = [w for w in pair.wire[start:] if w[0] == "a" and w[2] == KEEPALIVE]
    assert len(keepalives) == 10
    fired = [
        e
        for e in pair.events["a"][seen:]
        if isinstance(e, TimerFired) and e.timer is TimerKind.KEEPALIVE
    ]
    assert len(fired) == 10
    assert pair.a.state is State.ESTABLISHED and pair.b.state is State.ESTABLISHED


def test_configured_keepalive_is_used() -> None:
    session, _ = established(keepalive_time=10)
    assert session.get_timer() == pytest.approx(12)


def test_silent_peer_in_pair_expires_the_hold_timer() -> None:
    a = cfg(passive=True, hold_time=9)
    pair = SessionPair(a, mirror(a))
    pair.start()
    pair.advance(3_000)
    pair.paused.add("b")  # b's KEEPALIVEs no longer reach a
    pair.advance(9_000)
    (down,) = pair.of("a", SessionDown)
    assert down.reason is DownReason.HOLD_TIMER_EXPIRED
    assert any(w[2] == HOLD_EXPIRED for w in pair.wire if w[0] == "a")


# ---------------------------------------------------------------------------- priority


def test_keepalive_goes_out_before_queued_updates() -> None:
    session, conn = established()
    update = bytes.fromhex(MARKER + "0017" + "02" + "00000000")  # an empty UPDATE, 23 octets
    for _ in range(100):
        session.send_update(update)
    session.handle_timer(82)  # keepalive due while 2300 octets of UPDATEs wait
    first = session.data_to_send(conn, limit=100)
    assert first.startswith(KEEPALIVE)
    assert len(first) <= 100 and frames(first)[1:] == [update] * 3
    rest = b""
    while chunk := session.data_to_send(conn, limit=100):
        assert len(chunk) <= 100
        rest += chunk
    assert frames(rest) == [update] * 97


def test_a_message_larger_than_the_limit_still_goes_out_alone() -> None:
    session, conn = established()
    update = bytes.fromhex(MARKER + "0017" + "02" + "00000000")
    session.send_update(update)
    session.send_update(update)
    assert session.data_to_send(conn, limit=5) == update
    assert session.data_to_send(conn, limit=5) == update
    assert session.data_to_send(conn, limit=5) == b""


def test_notification_replaces_queued_updates() -> None:
    session, conn = established()
    update = bytes.fromhex(MARKER + "0017" + "02" + "00000000")
    for _ in range(10):
        session.send_update(update)
    session.stop(10, CeaseSubcode.PEER_DECONFIGURED)
    assert session.data_to_send(conn) == bytes.fromhex(MARKER + "0015" + "03" + "0603")
    assert session.pending_connections() == ()


# ---------------------------------------------------------------------------- error wait


def bad_open_cycle(session: PeerSession, now: float) -> tuple[float, float]:
    """From Idle/Active: run timers until we dial, connect, get a bad OPEN.

    Returns (time of the error, the error wait that followed it).
    """
    for _ in range(10):
        timer = session.get_timer()
        assert timer is not None
        now = max(now, timer)
        session.handle_timer(now)
        requests = [e for e in drain(session) if isinstance(e, ConnectRequest)]
        if requests:
            break
    else:
        raise AssertionError("no connection attempt")
    conn = requests[-1].conn_id
    session.connection_made(conn, now, outgoing=True)
    bad = Open.build(65000, 240, A81, [FourOctetAsCapability(65000)])
    session.receive_data(conn, wire(bad), now)
    assert frames(session.data_to_send(conn))[-1][19:21] == bytes((2, 2))
    assert session.state is State.IDLE
    timer = session.get_timer()
    assert timer is not None
    return now, timer - now


def test_error_wait_doubles_up_to_the_maximum() -> None:
    session = PeerSession(cfg())
    session.start(0)
    now, waits = 0.0, []
    for _ in range(5):
        now, wait = bad_open_cycle(session, now)
        waits.append(wait)
    assert waits == pytest.approx([5, 10, 20, 30, 30])
    assert session.error_wait == 30


def test_entering_error_wait_says_how_long() -> None:
    session = PeerSession(cfg())
    session.start(0)
    bad_open_cycle(session, 0.0)
    (idle,) = [e for e in drain(session) if isinstance(e, StateChange) and e.new is State.IDLE]
    assert idle.old is State.OPENSENT
    assert "BAD_PEER_AS" in idle.cause and idle.cause.endswith("error wait 5 s")
    assert idle.describe().endswith("(RFC 4271 6.2)")


def test_error_wait_is_forgotten_after_a_long_established_session() -> None:
    session = PeerSession(cfg())
    session.start(0)
    now, wait = bad_open_cycle(session, 0.0)
    now, wait = bad_open_cycle(session, now)
    assert wait == pytest.approx(10)
    # now a good session that stays up for 10 minutes, then ends in an error
    timer = session.get_timer()
    assert timer is not None
    session.handle_timer(timer)  # error wait over
    timer = session.get_timer()
    assert timer is not None
    session.handle_timer(timer)  # connect delay over
    (conn,) = session.connections()
    now = timer
    session.connection_made(conn, now, outgoing=True)
    session.receive_data(conn, wire(Open.build(64512, 0, A81, [FourOctetAsCapability(64512)])), now)
    session.receive_data(conn, wire(Keepalive()), now)
    assert session.state is State.ESTABLISHED
    session.receive_data(conn, wire(Notification(3, 1)), now + 600)  # the peer reports an error
    assert session.state is State.IDLE
    assert session.get_timer() == pytest.approx(now + 600 + 5)


def test_cease_and_connection_loss_do_not_grow_the_error_wait() -> None:
    session, conn = established(graceful_restart=False)
    session.receive_data(conn, wire(Notification(6, 2)), 10)
    assert session.error_wait == 0 and session.state is State.ACTIVE
    assert session.get_timer() == pytest.approx(10 + 2)  # connect delay, no error wait


def test_incoming_connections_are_refused_during_error_wait() -> None:
    session = PeerSession(cfg(passive=True))
    session.start(0)
    conn = session.next_conn_id()
    session.connection_made(conn, 1, outgoing=False)
    session.receive_data(conn, wire(Notification(2, 2)), 1)
    assert session.state is State.IDLE
    drain(session)
    second = session.next_conn_id()
    session.connection_made(second, 2, outgoing=False)
    assert session.data_to_send(second) == bytes.fromhex(MARKER + "0015" + "03" + "0605")
    session.handle_timer(6)  # 5 s error wait over; passive: back to Active, no dialing
    assert session.state is State.ACTIVE
    assert not [e for e in drain(session) if isinstance(e, ConnectRequest)]


def test_error_wait_unit() -> None:
    wait = ErrorWait(5, 30, 300)
    assert [wait.record_error(t) for t in (0, 10, 20, 30, 40)] == [5, 10, 20, 30, 30]
    assert wait.current(100) == 30 and wait.current(340) == 0
    assert wait.record_error(340) == 5
    wait.reset()
    assert wait.current(341) == 0 and wait.record_error(341) == 5


def test_restart_timer_deadline_is_reported_by_get_timer() -> None:
    session, conn = established()
    session.connection_lost(conn, 50, "reset")
    (down,) = [e for e in drain(session) if isinstance(e, SessionDown)]
    assert down.graceful and down.restart_time == 120
    assert down.forwarding == ((IPV4_UNICAST, False),)
    deadlines = []
    while (timer := session.get_timer()) is not None and timer < 200:
        deadlines.append(timer)
        session.handle_timer(timer)
        for e in drain(session):
            if isinstance(e, ConnectRequest):
                session.connection_failed(e.conn_id, timer, "refused")
    assert 170 in [round(d) for d in deadlines]  # 50 + the peer's restart time of 120 s
