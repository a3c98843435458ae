"""Graceful restart classification of a session going down (RFC 4724 4.2, as BIRD)."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address

import pytest

from speaker.session import (
    CloseConnection,
    ConnectRequest,
    DownReason,
    EndOfRib,
    GracefulRestartEnded,
    GracefulRestartOutcome,
    PeerSession,
    SessionConfig,
    SessionDown,
    SessionUp,
    State,
    build_open,
)
from speaker.wire.context import IPV4_UNICAST
from speaker.wire.enums import CeaseSubcode
from speaker.wire.messages import Keepalive, Notification, Update
from tests.sessiontesting import SessionPair, drain, frames, handshake, mirror, wire

A80 = IPv4Address("192.168.0.80")
A81 = IPv4Address("192.168.0.81")
MARKER = "ff" * 16


def cfg(**kw: object) -> SessionConfig:
    base: dict[str, object] = {
        "local_as": 64512,
        "router_id": A80,
        "peer_as": 64512,
        "peer_address": A81,
    }
    base.update(kw)
    return SessionConfig(**base)  # type: ignore[arg-type]


def up(config: SessionConfig | None = None, **peer: object) -> tuple[PeerSession, int]:
    """Established at t = 2 s with a peer whose OPEN is mirror(config, **peer)."""
    config = config or cfg()
    session = PeerSession(config)
    conn = handshake(session, build_open(mirror(config, **peer)))
    session.data_to_send(conn)
    drain(session)
    return session, conn


def down_event(session: PeerSession) -> SessionDown:
    (down,) = [e for e in drain(session) if isinstance(e, SessionDown)]
    return down


# ---------------------------------------------------------------------------- classification


def test_connection_lost_with_gr_peer_is_graceful() -> None:
    session, conn = up(restart_time=90, forwarding_preserved=True)
    session.connection_lost(conn, 50, "Connection reset by peer")
    down = down_event(session)
    assert down.graceful and down.reason is DownReason.CONNECTION_LOST
    assert down.restart_time == 90
    assert down.forwarding == ((IPV4_UNICAST, True),)
    assert down.notification is None
    assert "keeping its routes stale for 90 s" in down.describe()
    assert session.negotiated is None and session.established_since is None
    assert session.last_error == "Socket: Connection reset by peer"


def test_connection_lost_without_peer_gr_capability_is_not_graceful() -> None:
    session, conn = up(graceful_restart=False)
    session.connection_lost(conn, 50)
    down = down_event(session)
    assert not down.graceful and down.restart_time == 0 and down.forwarding == ()
    assert "withdrawing its routes now" in down.describe()


def test_connection_lost_when_we_do_not_offer_gr_is_not_graceful() -> None:
    session, conn = up(cfg(graceful_restart=False), graceful_restart=True)
    session.connection_lost(conn, 50)
    assert not down_event(session).graceful


def test_peer_restart_time_zero_is_not_graceful() -> None:
    session, conn = up(restart_time=0)
    session.connection_lost(conn, 50)
    assert not down_event(session).graceful


def test_notification_received_is_not_graceful() -> None:
    session, conn = up()
    session.receive_data(conn, wire(Notification.cease(CeaseSubcode.ADMINISTRATIVE_RESET)), 50)
    down = down_event(session)
    assert not down.graceful and down.reason is DownReason.NOTIFICATION_RECEIVED
    assert down.notification == Notification(6, 4) and not down.notification_sent


def test_notification_sent_is_not_graceful() -> None:
    session, _conn = up()
    session.stop(50)
    down = down_event(session)
    assert not down.graceful and down.reason is DownReason.ADMIN_STOP and down.notification_sent


def test_hold_timer_expiry_is_not_graceful() -> None:
    session, _conn = up()
    session.handle_timer(242)
    down = down_event(session)
    assert not down.graceful and down.reason is DownReason.HOLD_TIMER_EXPIRED


def test_new_connection_while_established_is_the_peer_restarting() -> None:
    session, old = up(restart_time=120)
    new = session.next_conn_id()
    session.connection_made(new, 50, outgoing=False)
    events = drain(session)
    (close,) = [e for e in events if isinstance(e, CloseConnection)]
    assert close.conn_id == old and close.notification is None  # no NOTIFICATION (BIRD)
    assert session.data_to_send(old) == b""
    (down,) = [e for e in events if isinstance(e, SessionDown)]
    assert down.graceful and down.reason is DownReason.PEER_RESTARTED
    assert down.restart_time == 120
    # the new connection proceeds: our OPEN is queued on it
    assert session.connections() == {new: State.OPENSENT}
    assert frames(session.data_to_send(new))[0][18] == 1
    assert session.last_error == "Error: Graceful restart"


# ---------------------------------------------------------------------------- after a graceful down


def restarted_peer_open(**changes: object) -> bytes:
    return wire(build_open(mirror(cfg(), restarting=True, **changes)))


def test_peer_back_with_forwarding_preserved_keeps_stale_routes_until_end_of_rib() -> None:
    session, _old = up()
    new = session.next_conn_id()
    session.connection_made(new, 50, outgoing=False)
    session.receive_data(new, restarted_peer_open(forwarding_preserved=True), 51)
    session.receive_data(new, wire(Keepalive()), 51)
    events = drain(session)
    assert [e for e in events if isinstance(e, GracefulRestartEnded)] == []
    (up_,) = [e for e in events if isinstance(e, SessionUp)]
    gr = up_.info.peer_graceful_restart
    assert gr is not None and gr.restarting and gr.forwarding(IPV4_UNICAST)
    assert session.get_timer() == pytest.approx(51 + 80)  # restart timer stopped
    session.receive_data(new, wire(Update()), 60)
    assert [e.family for e in drain(session) if isinstance(e, EndOfRib)] == [IPV4_UNICAST]


def test_peer_back_without_forwarding_preserved_flushes_stale_routes_at_once() -> None:
    session, old = up()
    session.connection_lost(old, 50)
    drain(session)
    session.handle_timer(52)  # connect delay
    (attempt,) = session.connections()
    session.connection_made(attempt, 52, outgoing=True)
    session.receive_data(attempt, restarted_peer_open(forwarding_preserved=False), 53)
    session.receive_data(attempt, wire(Keepalive()), 53)
    (ended,) = [e for e in drain(session) if isinstance(e, GracefulRestartEnded)]
    assert ended.outcome is GracefulRestartOutcome.ABORTED
    assert ended.families == (IPV4_UNICAST,)
    assert "RFC 4724 4.2" in ended.describe()


def test_peer_back_without_gr_capability_flushes_stale_routes() -> None:
    session, old = up()
    session.connection_lost(old, 50)
    drain(session)
    new = session.next_conn_id()
    session.connection_made(new, 51, outgoing=False)
    session.receive_data(new, wire(build_open(mirror(cfg(), graceful_restart=False))), 51)
    session.receive_data(new, wire(Keepalive()), 51)
    (ended,) = [e for e in drain(session) if isinstance(e, GracefulRestartEnded)]
    assert ended.outcome is GracefulRestartOutcome.ABORTED


def test_restart_timer_expiry_flushes_stale_routes() -> None:
    session, old = up(restart_time=30)
    session.connection_lost(old, 50)
    drain(session)
    t = 50.0
    while (timer := session.get_timer()) is not None and timer <= 80:
        t = timer
        session.handle_timer(t)
        for e in drain(session):
            if isinstance(e, GracefulRestartEnded):
                assert e.outcome is GracefulRestartOutcome.EXPIRED
                assert t == pytest.approx(80)  # 50 + the peer's restart time
                return
            if isinstance(e, ConnectRequest):  # the peer is still away
                session.connection_failed(e.conn_id, t, "refused")
    raise AssertionError("the restart timer never fired")


def test_stop_while_helping_flushes_stale_routes() -> None:
    session, old = up()
    session.connection_lost(old, 50)
    drain(session)
    session.stop(60)
    (ended,) = [e for e in drain(session) if isinstance(e, GracefulRestartEnded)]
    assert ended.outcome is GracefulRestartOutcome.STOPPED


# ---------------------------------------------------------------------------- two sessions


def calico_pair() -> SessionPair:
    a = cfg(passive=True)
    return SessionPair(a, mirror(a))


def test_peer_killed_and_restarted_gracefully_in_a_pair() -> None:
    pair = calico_pair()
    pair.start()
    pair.advance(3_000)
    pair.crash("b", peer_notices=True)  # kill -9: the kernel closes b's sockets
    (down,) = pair.of("a", SessionDown)
    assert down.graceful and down.reason is DownReason.CONNECTION_LOST
    restarted = pair.replace(
        "b", replace(pair.b.config, restarting=True, forwarding_preserved=True)
    )
    restarted.start(pair.now)
    pair.advance(3_000)
    assert pair.a.state is State.ESTABLISHED
    info = pair.a.negotiated
    assert info is not None and info.peer_graceful_restart is not None
    assert info.peer_graceful_restart.restarting
    assert pair.of("a", GracefulRestartEnded) == []
    restarted.send_end_of_rib(IPV4_UNICAST)
    pair.pump()
    assert [e.family for e in pair.of("a", EndOfRib)] == [IPV4_UNICAST]


def test_silent_restart_is_noticed_by_the_new_connection() -> None:
    pair = calico_pair()
    pair.start()
    pair.advance(3_000)
    pair.crash("b", peer_notices=False)  # a believes the old session is still up
    assert pair.a.state is State.ESTABLISHED
    pair.replace("b", pair.b.config).start(pair.now)
    pair.advance(3_000)
    (down,) = pair.of("a", SessionDown)
    assert down.graceful and down.reason is DownReason.PEER_RESTARTED
    assert pair.a.state is State.ESTABLISHED and pair.b.state is State.ESTABLISHED


def test_our_graceful_shutdown_closes_without_notification() -> None:
    pair = calico_pair()
    pair.start()
    pair.advance(3_000)
    (conn,) = pair.b.connections()
    pair.b.graceful_shutdown(pair.now)
    assert pair.b.data_to_send(conn) == b""
    pair.pump()
    (closed,) = pair.of("b", CloseConnection)
    assert closed.notification is None
    (peer_down,) = pair.of("a", SessionDown)
    assert peer_down.graceful and peer_down.reason is DownReason.CONNECTION_LOST
    assert pair.b.state is State.IDLE and not pair.b.started
    assert not any(chunk[18] == 3 for _, _, chunk in pair.wire)  # no NOTIFICATION at all
