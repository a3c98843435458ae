"""Connection collisions (RFC 4271 6.8, RFC 6286 2.3, as BIRD 1.6.8 resolves them)."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from speaker.session import (
    CloseConnection,
    PeerSession,
    SessionConfig,
    SessionDown,
    State,
    build_open,
    we_are_dominant,
)
from speaker.wire.messages import Keepalive, Notification
from tests.sessiontesting import SessionPair, drain, frames, handshake, mirror, wire

A80 = IPv4Address("192.168.0.80")
A81 = IPv4Address("192.168.0.81")
MARKER = "ff" * 16
CEASE_COLLISION = bytes.fromhex(MARKER + "0015" + "03" + "0607")
CEASE_REJECTED = bytes.fromhex(MARKER + "0015" + "03" + "0605")


def cfg(**kw: object) -> SessionConfig:
    base: dict[str, object] = {
        "local_as": 64512,
        "router_id": A80,
        "peer_as": 64512,
        "peer_address": A81,
    }
    base.update(kw)
    return SessionConfig(**base)  # type: ignore[arg-type]


def both_dial(a: SessionConfig, b: SessionConfig) -> SessionPair:
    pair = SessionPair(a, b)
    pair.start()
    pair.advance(5_000)
    return pair


@pytest.mark.parametrize(("a_id", "b_id"), [(A80, A81), (A81, A80)])
def test_both_dial_the_connection_of_the_higher_identifier_survives(
    a_id: IPv4Address, b_id: IPv4Address
) -> None:
    a = cfg(router_id=a_id, peer_address=b_id)
    pair = both_dial(a, mirror(a))
    assert pair.a.state is State.ESTABLISHED and pair.b.state is State.ESTABLISHED
    assert len(pair.a.connections()) == 1 and len(pair.b.connections()) == 1
    a_info, b_info = pair.a.negotiated, pair.b.negotiated
    assert a_info is not None and b_info is not None
    a_dominant = int(a_id) > int(b_id)
    # the surviving connection was initiated by the dominant side on both ends
    assert a_info.outgoing is a_dominant and b_info.outgoing is not a_dominant
    # each side closed the connection the non-dominant side initiated, with Cease 7
    loser, winner = ("b", "a") if a_dominant else ("a", "b")
    collisions = {
        side: [
            e.conn_id
            for e in pair.of(side, CloseConnection)
            if e.notification == Notification(6, 7)
        ]
        for side in "ab"
    }
    assert collisions[loser] == [1]  # its own outgoing connection (the first id)
    assert collisions[winner] == [2]  # the incoming connection from the loser
    sent_by_loser = [
        m for side, cid, chunk in pair.wire if (side, cid) == (loser, 1) for m in frames(chunk)
    ]
    assert sent_by_loser[-1] == CEASE_COLLISION  # exact bytes, the last it sent there
    assert all("collision" in e.reason for side in "ab" for e in pair.of(side, CloseConnection))
    assert pair.of("a", SessionDown) == [] and pair.of("b", SessionDown) == []


def test_equal_identifiers_higher_as_wins() -> None:
    # eBGP may share a BGP Identifier (RFC 6286): the higher AS is dominant (RFC 6286 2.3)
    rid = IPv4Address("10.0.0.1")
    a = cfg(local_as=64512, peer_as=65000, router_id=rid, peer_address=A81)
    b = cfg(local_as=65000, peer_as=64512, router_id=rid, peer_address=A80)
    pair = both_dial(a, b)
    assert pair.a.state is State.ESTABLISHED and pair.b.state is State.ESTABLISHED
    assert pair.b.negotiated is not None and pair.b.negotiated.outgoing  # AS 65000 dialed it
    assert pair.a.negotiated is not None and not pair.a.negotiated.outgoing


def test_dominance_rule() -> None:
    assert we_are_dominant(A81, 1, A80, 2)
    assert not we_are_dominant(A80, 2, A81, 1)
    assert we_are_dominant(A80, 65000, A80, 64512)
    assert not we_are_dominant(A80, 64512, A80, 65000)


# ---------------------------------------------------------------------------- scripted


def with_openconfirm_outgoing(router_id: IPv4Address, peer: IPv4Address) -> tuple[PeerSession, int]:
    session = PeerSession(cfg(router_id=router_id, peer_address=peer))
    conn = handshake(session, establish=False)
    session.data_to_send(conn)
    assert session.state is State.OPENCONFIRM
    return session, conn


def test_open_on_incoming_while_outgoing_in_openconfirm_peer_dominant() -> None:
    session, out = with_openconfirm_outgoing(A80, A81)  # the peer (.81) is dominant
    inc = session.next_conn_id()
    session.connection_made(inc, 3, outgoing=False)
    session.data_to_send(inc)
    session.receive_data(inc, wire(build_open(mirror(session.config))), 3)
    # keep the connection the peer initiated (incoming), Cease 7 on ours
    assert frames(session.data_to_send(out)) == [CEASE_COLLISION]
    assert session.connections() == {inc: State.OPENCONFIRM}
    session.receive_data(inc, wire(Keepalive()), 3)
    assert session.state is State.ESTABLISHED
    assert session.negotiated is not None and session.negotiated.conn_id == inc


def test_open_on_incoming_while_outgoing_in_openconfirm_we_dominant() -> None:
    session, out = with_openconfirm_outgoing(A81, A80)  # we (.81) are dominant
    inc = session.next_conn_id()
    session.connection_made(inc, 3, outgoing=False)
    session.data_to_send(inc)
    session.receive_data(inc, wire(build_open(mirror(session.config))), 3)
    assert session.data_to_send(inc) == CEASE_COLLISION
    assert session.connections() == {out: State.OPENCONFIRM}
    (close,) = [e for e in drain(session) if isinstance(e, CloseConnection)]
    assert close.conn_id == inc and "RFC 4271 6.8" in close.reason


def test_open_on_incoming_while_outgoing_in_opensent_resolves_too() -> None:
    session = PeerSession(cfg(router_id=A81, peer_address=A80))  # we are dominant
    session.start(0)
    session.handle_timer(2)
    (out,) = session.connections()
    session.connection_made(out, 2, outgoing=True)
    inc = session.next_conn_id()
    session.connection_made(inc, 2, outgoing=False)
    session.data_to_send(inc)
    session.receive_data(inc, wire(build_open(mirror(session.config))), 3)
    assert session.data_to_send(inc) == CEASE_COLLISION
    assert session.connections() == {out: State.OPENSENT}


def test_the_peers_open_stops_our_pending_attempt() -> None:
    session = PeerSession(cfg())
    session.start(0)
    session.handle_timer(2)
    (attempt,) = session.connections()
    inc = session.next_conn_id()
    session.connection_made(inc, 2.5, outgoing=False)
    session.receive_data(inc, wire(build_open(mirror(session.config))), 2.5)
    assert session.connections() == {inc: State.OPENCONFIRM}
    closes = [e.conn_id for e in drain(session) if isinstance(e, CloseConnection)]
    assert closes == [attempt]
    session.connection_made(attempt, 3, outgoing=True)  # it completes after all
    assert [e.conn_id for e in drain(session) if isinstance(e, CloseConnection)] == [attempt]


def test_incoming_while_established_without_graceful_restart_gets_cease_7() -> None:
    session = PeerSession(cfg(graceful_restart=False))
    est = handshake(session)
    drain(session)
    session.data_to_send(est)
    new = session.next_conn_id()
    session.connection_made(new, 10, outgoing=False)
    assert session.data_to_send(new) == CEASE_COLLISION  # refused at once, no OPEN
    assert session.state is State.ESTABLISHED and session.connections() == {est: State.ESTABLISHED}
    assert [e for e in drain(session) if isinstance(e, SessionDown)] == []


def test_incoming_while_established_peer_without_gr_capability_gets_cease_7() -> None:
    session = PeerSession(cfg())
    peer_open = build_open(mirror(cfg(), graceful_restart=False))
    est = handshake(session, peer_open)
    session.data_to_send(est)
    new = session.next_conn_id()
    session.connection_made(new, 10, outgoing=False)
    assert session.data_to_send(new) == CEASE_COLLISION
    assert session.state is State.ESTABLISHED


def test_second_incoming_connection_is_rejected_with_cease_5() -> None:
    session = PeerSession(cfg(passive=True))
    session.start(0)
    first = session.next_conn_id()
    session.connection_made(first, 1, outgoing=False)
    second = session.next_conn_id()
    session.connection_made(second, 1, outgoing=False)
    assert session.data_to_send(second) == CEASE_REJECTED
    assert session.connections() == {first: State.OPENSENT}


def test_incoming_while_stopped_is_rejected_with_cease_5() -> None:
    session = PeerSession(cfg())
    conn = session.next_conn_id()
    session.connection_made(conn, 0, outgoing=False)
    assert session.data_to_send(conn) == CEASE_REJECTED
    (close,) = [e for e in drain(session) if isinstance(e, CloseConnection)]
    assert "stopped" in close.reason and close.notification == Notification(6, 5)
    assert session.state is State.IDLE
