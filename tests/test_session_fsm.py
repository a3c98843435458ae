"""The RFC 4271 section 8 state machine: establishment, the transition table, FSM errors,
NOTIFICATION handling, the send API, passive mode and connection attempts."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from speaker.events import Event
from speaker.session import (
    FSM_ERROR_SUBCODES,
    TRANSITIONS,
    CloseConnection,
    ConnectRequest,
    DownReason,
    EndOfRib,
    Input,
    MalformedUpdateReceived,
    MessageIn,
    PeerSession,
    RouteRefreshReceived,
    RoutineMessageIn,
    RoutineMessageOut,
    SessionConfig,
    SessionDown,
    SessionUp,
    State,
    StateChange,
    UpdateReceived,
    build_open,
)
from speaker.wire.attributes import AsPathAttr, LocalPrefAttr, NextHopAttr, OriginAttr
from speaker.wire.context import IPV4_UNICAST, IPV6_UNICAST
from speaker.wire.enums import CeaseSubcode, MessageType, RouteRefreshSubtype
from speaker.wire.errors import ErrorAction, LocalProtocolError
from speaker.wire.messages import Keepalive, Notification, RouteRefresh, Update, pack_updates
from speaker.wire.nlri import Nlri, Prefix
from tests.sessiontesting import SessionPair, drain, frames, handshake, mirror, wire

A80 = IPv4Address("192.168.0.80")
A81 = IPv4Address("192.168.0.81")
MARKER = "ff" * 16
ATTRS = (OriginAttr(), AsPathAttr(), NextHopAttr(A80), LocalPrefAttr(100))


def cfg(**kw: object) -> SessionConfig:
    base: dict[str, object] = {
        "local_as": 64512,
        "router_id": A80,
        "peer_as": 64512,
        "peer_address": A81,
    }
    base.update(kw)
    return SessionConfig(**base)  # type: ignore[arg-type]


def calico_pair(**kw: object) -> SessionPair:
    """.80 is passive toward .81 ("192.168.0.81" > "192.168.0.80"); .81 dials."""
    a = cfg(passive=True, **kw)
    return SessionPair(a, mirror(a))


def kinds(events: list[Event], cls: type[Event]) -> list[Event]:
    return [e for e in events if isinstance(e, cls)]


def opensent() -> tuple[PeerSession, int]:
    session = PeerSession(cfg())
    session.start(0)
    session.handle_timer(2)
    (conn,) = session.connections()
    session.connection_made(conn, 2, outgoing=True)
    session.data_to_send(conn)  # our OPEN
    return session, conn


def openconfirm() -> tuple[PeerSession, int]:
    session = PeerSession(cfg())
    conn = handshake(session, establish=False)
    session.data_to_send(conn)
    return session, conn


def established() -> tuple[PeerSession, int]:
    session = PeerSession(cfg())
    conn = handshake(session)
    session.data_to_send(conn)
    return session, conn


# ---------------------------------------------------------------------------- two sessions


def test_pair_reaches_established_with_the_expected_state_sequence() -> None:
    pair = calico_pair()
    pair.start()
    pair.advance(3_000)
    assert pair.a.state is State.ESTABLISHED and pair.b.state is State.ESTABLISHED
    dialer = [(e.old, e.new) for e in pair.of("b", StateChange)]
    assert dialer == [
        (State.IDLE, State.ACTIVE),
        (State.ACTIVE, State.CONNECT),
        (State.CONNECT, State.OPENSENT),
        (State.OPENSENT, State.OPENCONFIRM),
        (State.OPENCONFIRM, State.ESTABLISHED),
    ]
    passive = [(e.old, e.new) for e in pair.of("a", StateChange)]
    assert passive[0] == (State.IDLE, State.ACTIVE)
    assert passive[-1] == (State.OPENCONFIRM, State.ESTABLISHED)
    # the dialer waited its connect delay (2 s) before asking for a connection
    assert [e.conn_id for e in pair.of("b", ConnectRequest)] == [1]
    assert pair.of("a", SessionUp)[0].info.peer_id == A81
    assert pair.a.established_since == pytest.approx(2.0)


def test_state_change_describes_the_cause_and_rfc_section() -> None:
    pair = calico_pair()
    pair.start()
    pair.advance(3_000)
    line = next(e.describe() for e in pair.of("a", StateChange) if e.new is State.OPENCONFIRM)
    assert line.startswith("192.168.0.81: OpenSent -> OpenConfirm: OPEN from 192.168.0.81")
    assert "accepted" in line and "(RFC 4271 8.2.2" in line


def test_updates_and_end_of_rib_flow_between_the_pair() -> None:
    pair = calico_pair()
    pair.start()
    pair.advance(3_000)
    nlri = (Nlri(Prefix.parse("10.244.1.0/26"), 1), Nlri(Prefix.parse("10.244.1.64/26"), 2))
    pair.a.send_update(Update(attributes=ATTRS, nlri=nlri))
    ctx = pair.a.negotiated.context if pair.a.negotiated else None
    assert ctx is not None and IPV4_UNICAST in ctx.addpath_send
    for raw in pack_updates(ATTRS, [Nlri(Prefix.parse("10.244.2.0/26"), 7)], ctx):
        pair.a.send_update(raw)
    pair.a.send_end_of_rib(IPV4_UNICAST)
    pair.pump()
    received = pair.of("b", UpdateReceived)
    assert [u.update.nlri for u in received] == [nlri, (Nlri(Prefix.parse("10.244.2.0/26"), 7),)]
    assert received[0].update.attribute(3) == NextHopAttr(A80)
    eor = pair.of("b", EndOfRib)
    assert len(eor) == 1 and eor[0].family == IPV4_UNICAST
    assert "RFC 4724" in eor[0].describe()


def test_route_refresh_request_and_demarcation() -> None:
    pair = calico_pair()
    pair.start()
    pair.advance(3_000)
    pair.b.send_route_refresh(IPV4_UNICAST)
    pair.a.send_route_refresh(IPV4_UNICAST, RouteRefreshSubtype.BORR)
    pair.a.send_update(Update(attributes=ATTRS, nlri=(Nlri(Prefix.parse("10.1.0.0/16"), 1),)))
    pair.a.send_route_refresh(IPV4_UNICAST, RouteRefreshSubtype.EORR)
    pair.pump()
    assert [r.subtype for r in pair.of("a", RouteRefreshReceived)] == [RouteRefreshSubtype.NORMAL]
    b_events = [
        e for e in pair.events["b"] if isinstance(e, (RouteRefreshReceived, UpdateReceived))
    ]
    assert [type(e).__name__ for e in b_events] == [
        "RouteRefreshReceived",
        "UpdateReceived",
        "RouteRefreshReceived",
    ]
    assert [e.subtype for e in kinds(b_events, RouteRefreshReceived)] == [  # type: ignore[attr-defined]
        RouteRefreshSubtype.BORR,
        RouteRefreshSubtype.EORR,
    ]


# ---------------------------------------------------------------------------- the table


@pytest.mark.parametrize("state", [State.OPENSENT, State.OPENCONFIRM, State.ESTABLISHED])
@pytest.mark.parametrize(
    "inp",
    [
        Input.BGP_OPEN,
        Input.UPDATE_MSG,
        Input.NOTIF_MSG,
        Input.KEEPALIVE_MSG,
        Input.ROUTE_REFRESH_MSG,
    ],
)
def test_every_message_in_every_connected_state_is_handled_or_an_fsm_error(
    state: State, inp: Input
) -> None:
    entry = TRANSITIONS.get((state, inp))
    if entry is None:
        assert state in FSM_ERROR_SUBCODES
    else:
        # the table holds the session's own methods, not names looked up at run time
        assert getattr(PeerSession, entry.handler.__name__) is entry.handler
        assert entry.after is None or getattr(PeerSession, entry.after.__name__) is entry.after
        assert entry.rfc.startswith("RFC")


def test_the_update_entry_is_what_the_receive_fast_path_does() -> None:
    """A received UPDATE on an Established connection skips the table's lookup and dispatch
    (``Handlers._receive_update``): that is right only while the entry runs ``_on_update``,
    stays Established and has no ``after`` hook."""
    entry = TRANSITIONS[(State.ESTABLISHED, Input.UPDATE_MSG)]
    assert entry.handler is PeerSession._on_update
    assert entry.next is State.ESTABLISHED
    assert entry.after is None
    assert [s for s, i in TRANSITIONS if i is Input.UPDATE_MSG] == [State.ESTABLISHED]


def test_notifications_are_accepted_in_every_connected_state() -> None:
    for state in (State.OPENSENT, State.OPENCONFIRM, State.ESTABLISHED):
        assert (state, Input.NOTIF_MSG) in TRANSITIONS


# ---------------------------------------------------------------------------- FSM errors


def fsm_error(subcode: int) -> bytes:
    return bytes.fromhex(MARKER + "0015" + "03" + "05" + f"{subcode:02x}")


UPDATE = wire(Update(attributes=ATTRS, nlri=(Nlri(Prefix.parse("10.0.0.0/8")),)))
OPEN_81 = wire(build_open(mirror(cfg())))


@pytest.mark.parametrize(
    ("where", "message", "subcode"),
    [
        (opensent, UPDATE, 1),
        (opensent, wire(Keepalive()), 1),
        (opensent, wire(RouteRefresh()), 1),
        (openconfirm, OPEN_81, 2),
        (openconfirm, UPDATE, 2),
        (openconfirm, wire(RouteRefresh()), 2),
        (established, OPEN_81, 3),
    ],
    ids=[
        "update-in-opensent",
        "keepalive-in-opensent",
        "refresh-in-opensent",
        "open-in-openconfirm",
        "update-in-openconfirm",
        "refresh-in-openconfirm",
        "open-in-established",
    ],
)
def test_unexpected_message_gets_fsm_error_with_rfc6608_subcode(
    where: object, message: bytes, subcode: int
) -> None:
    session, conn = where()  # type: ignore[operator]
    drain(session)
    session.receive_data(conn, message, 10)
    assert session.data_to_send(conn) == fsm_error(subcode)
    events = drain(session)
    close = kinds(events, CloseConnection)
    assert len(close) == 1 and close[0].notification == Notification(5, subcode)


def test_fsm_error_in_established_takes_the_session_down_not_gracefully() -> None:
    session, conn = established()
    session.receive_data(conn, OPEN_81, 10)
    (down,) = kinds(drain(session), SessionDown)
    assert not down.graceful and down.reason is DownReason.NOTIFICATION_SENT
    assert down.notification == Notification(5, 3) and down.notification_sent


# ---------------------------------------------------------------------------- NOTIFICATION


@pytest.mark.parametrize("where", [opensent, openconfirm, established])
def test_received_notification_is_never_answered(where: object) -> None:
    session, conn = where()  # type: ignore[operator]
    drain(session)
    session.receive_data(conn, wire(Notification(3, 1)) + wire(Keepalive()), 10)
    assert session.data_to_send(conn) == b""
    events = drain(session)
    (close,) = kinds(events, CloseConnection)
    assert close.notification is None
    assert session.last_error is not None and session.last_error.startswith("Received:")
    assert session.connections() == {}


def test_malformed_notification_is_not_answered_either() -> None:
    session, conn = established()
    bad = bytes.fromhex(MARKER + "0014" + "03" + "06")  # 20 octets: shorter than 21
    session.receive_data(conn, bad, 10)
    assert session.data_to_send(conn) == b""
    (down,) = kinds(drain(session), SessionDown)
    assert down.reason is DownReason.NOTIFICATION_RECEIVED and not down.graceful


def test_codec_error_sends_its_notification() -> None:
    session, conn = established()
    # an NLRI prefix length of 33 bits: 3/10 Invalid Network Field, session reset (RFC 7606 5.3)
    body = bytes.fromhex("0000" + "0000") + bytes((33, 10, 0, 0, 0, 0))
    bad = bytes.fromhex(MARKER) + (19 + len(body)).to_bytes(2, "big") + b"\x02" + body
    session.receive_data(conn, bad, 10)
    note = frames(session.data_to_send(conn))[-1]
    assert note[18] == MessageType.NOTIFICATION and note[19:21] == bytes((3, 10))
    assert session.state is State.IDLE


def test_header_error_bad_marker_sends_1_1() -> None:
    session, conn = established()
    session.receive_data(conn, b"\x00" * 16 + bytes.fromhex("001304"), 10)
    assert session.data_to_send(conn) == bytes.fromhex(MARKER + "0015" + "03" + "0101")


def test_rfc7606_error_keeps_the_session_and_reports_the_action() -> None:
    session, conn = established()
    # NLRI without NEXT_HOP: missing well-known attribute -> treat-as-withdraw (RFC 7606 3d)
    attrs = (OriginAttr(), AsPathAttr())
    session.receive_data(
        conn,
        wire(
            Update(attributes=attrs, nlri=(Nlri(Prefix.parse("10.0.0.0/8"), 1),)),
            session.negotiated.context,  # type: ignore[union-attr]
        ),
        10,
    )
    assert session.state is State.ESTABLISHED
    (bad,) = kinds(drain(session), MalformedUpdateReceived)
    assert bad.action is ErrorAction.TREAT_AS_WITHDRAW and bad.errors
    assert bad.LEVEL == 30 and "treat-as-withdraw" in bad.describe()


def test_message_event_levels() -> None:
    session = PeerSession(cfg())
    handshake(session)
    events = drain(session)
    ins = kinds(events, MessageIn)
    by_type = {e.type: e for e in ins}  # type: ignore[attr-defined]
    assert by_type[MessageType.OPEN].LEVEL == 20
    assert isinstance(by_type[MessageType.KEEPALIVE], RoutineMessageIn)
    assert by_type[MessageType.KEEPALIVE].LEVEL == 10
    outs = kinds(events, RoutineMessageOut)
    assert [e.type for e in outs] == [MessageType.KEEPALIVE]  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------- API misuse


def test_send_api_is_only_valid_when_established() -> None:
    session, _ = openconfirm()
    with pytest.raises(LocalProtocolError, match="OpenConfirm"):
        session.send_update(Update())
    with pytest.raises(LocalProtocolError):
        session.send_end_of_rib(IPV4_UNICAST)
    with pytest.raises(LocalProtocolError):
        session.send_route_refresh(IPV4_UNICAST)
    idle = PeerSession(cfg())
    with pytest.raises(LocalProtocolError, match="Idle"):
        idle.send_update(UPDATE)


def test_send_api_refuses_what_was_not_negotiated() -> None:
    session, _ = established()
    with pytest.raises(LocalProtocolError, match="IPv6/unicast"):
        session.send_end_of_rib(IPV6_UNICAST)
    with pytest.raises(LocalProtocolError, match="whole UPDATE"):
        session.send_update(b"\xff" * 16 + b"\x00\x13\x04")
    plain = PeerSession(cfg(route_refresh=False))
    handshake(plain)
    with pytest.raises(LocalProtocolError, match="enhanced"):
        plain.send_route_refresh(IPV4_UNICAST, RouteRefreshSubtype.BORR)


def test_transport_misuse_raises() -> None:
    session, conn = established()
    with pytest.raises(LocalProtocolError, match="already in use"):
        session.connection_made(conn, 10, outgoing=False)
    with pytest.raises(LocalProtocolError):
        session.connection_failed(conn, 10, "refused")


# ---------------------------------------------------------------------------- stop


def test_stop_sends_cease_with_shutdown_communication() -> None:
    pair = calico_pair()
    pair.start()
    pair.advance(3_000)
    (conn,) = pair.a.connections()
    pair.paused.add("a")  # look at the bytes before they are delivered
    pair.a.stop(pair.now, CeaseSubcode.ADMINISTRATIVE_SHUTDOWN, "bye")
    assert (
        pair.a.data_to_send(conn) == bytes.fromhex(MARKER + "0019" + "03" + "0602" + "03") + b"bye"
    )
    assert pair.a.state is State.IDLE
    pair.paused.clear()
    (down,) = kinds(drain(pair.a), SessionDown)
    assert down.reason is DownReason.ADMIN_STOP and not down.graceful


def test_stopped_peer_sees_cease_and_reconnects_without_error_wait() -> None:
    pair = calico_pair()
    pair.start()
    pair.advance(3_000)
    pair.a.stop(pair.now, CeaseSubcode.ADMINISTRATIVE_RESET)
    pair.pump()
    (down,) = pair.of("b", SessionDown)
    assert down.reason is DownReason.NOTIFICATION_RECEIVED
    assert down.notification == Notification(6, 4)
    # Cease is not an error (BIRD): no error wait, the dialer goes back to Active
    assert pair.b.state is State.ACTIVE and pair.b.error_wait == 0
    pair.a.start(pair.now)
    pair.advance(3_000)
    assert pair.a.state is State.ESTABLISHED and pair.b.state is State.ESTABLISHED


# ---------------------------------------------------------------------------- passive, connecting


def test_passive_session_never_asks_for_a_connection() -> None:
    pair = calico_pair()
    pair.a.start(0)  # b is never started
    pair.advance(600_000)
    assert pair.of("a", ConnectRequest) == []
    assert pair.a.state is State.ACTIVE
    assert pair.a.get_timer() is None


def test_passive_session_accepts_and_comes_up_over_one_connection() -> None:
    pair = calico_pair()
    pair.start()
    pair.advance(30_000)
    assert pair.of("a", ConnectRequest) == []
    assert len(pair.of("b", ConnectRequest)) == 1
    assert pair.a.negotiated is not None and not pair.a.negotiated.outgoing


def test_failed_attempts_are_retried_after_connect_retry() -> None:
    pair = calico_pair()
    pair.reachable["a"] = False
    pair.start()
    pair.advance(13_000)
    times = [e for e in pair.events["b"] if isinstance(e, ConnectRequest)]
    assert len(times) == 3  # at 2 s, 7 s, 12 s: connect delay, then connect retry (5 s)
    states = [e.new for e in pair.of("b", StateChange)]
    assert states[:4] == [State.ACTIVE, State.CONNECT, State.ACTIVE, State.CONNECT]
    assert pair.b.last_error == "Socket: Connection refused"
    pair.reachable["a"] = True
    pair.advance(5_000)
    assert pair.b.state is State.ESTABLISHED


def test_connect_timeout_abandons_the_attempt_and_retries() -> None:
    session = PeerSession(cfg())
    session.start(0)
    session.handle_timer(2)
    (first,) = [e.conn_id for e in drain(session) if isinstance(e, ConnectRequest)]
    assert session.get_timer() == pytest.approx(7)
    session.handle_timer(7)
    events = drain(session)
    assert [e.conn_id for e in kinds(events, CloseConnection)] == [first]  # type: ignore[attr-defined]
    (second,) = [e.conn_id for e in events if isinstance(e, ConnectRequest)]
    assert second != first and session.state is State.CONNECT
    # the abandoned attempt completing late is closed again
    session.connection_made(first, 7.5, outgoing=True)
    assert [e.conn_id for e in kinds(drain(session), CloseConnection)] == [first]  # type: ignore[attr-defined]


def test_connect_request_carries_addresses() -> None:
    session = PeerSession(cfg(source_address="192.168.0.80", connect_delay=0))
    session.start(0)
    (req,) = [e for e in drain(session) if isinstance(e, ConnectRequest)]
    assert (req.address, req.port, req.source_address) == (A81, 179, A80)
    assert session.state is State.CONNECT


def test_every_event_describes_itself_and_serialises_to_json() -> None:
    import json

    pair = calico_pair()
    pair.start()
    pair.advance(3_000)
    pair.a.send_update(Update(attributes=ATTRS, nlri=(Nlri(Prefix.parse("10.1.0.0/16"), 1),)))
    pair.a.send_end_of_rib(IPV4_UNICAST)
    pair.b.send_route_refresh(IPV4_UNICAST)
    pair.pump()
    pair.crash("b", peer_notices=True)
    pair.advance(200_000)  # the restart timer expires: graceful-restart event
    pair.replace("b", pair.b.config).start(pair.now)
    pair.advance(5_000)
    assert pair.a.state is State.ESTABLISHED
    pair.a.stop(pair.now, CeaseSubcode.ADMINISTRATIVE_SHUTDOWN, "maintenance")
    pair.pump()
    kinds_seen = set()
    for side in "ab":
        for event in pair.events[side]:
            line = event.describe()
            assert line.startswith(event.peer) and "=" not in line.split(":")[0]  # type: ignore[attr-defined]
            json.dumps(event.to_dict())
            kinds_seen.add(event.KIND)
    assert {
        "state",
        "message-in",
        "message-out",
        "session-up",
        "session-down",
        "update",
        "end-of-rib",
        "route-refresh",
        "connect",
        "close",
        "timer",
        "graceful-restart",
    } <= kinds_seen


def test_send_update_refuses_a_message_over_the_negotiated_size() -> None:
    session, _ = established()
    body = b"\x00\x00\x00\x00" + b"\x00" * 5000
    big = bytes.fromhex(MARKER) + (19 + len(body)).to_bytes(2, "big") + b"\x02" + body
    with pytest.raises(LocalProtocolError, match="4096"):
        session.send_update(big)
