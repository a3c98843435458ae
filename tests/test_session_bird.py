"""Real BIRD 1.6.8 traffic replayed into a session (captures in tests/data/captures)."""

from __future__ import annotations

from collections.abc import Iterator
from ipaddress import IPv4Address
from pathlib import Path

from speaker.pcap import RawMessage, read_capture
from speaker.session import (
    CloseConnection,
    DownReason,
    EndOfRib,
    GracefulRestartEnded,
    PeerSession,
    RouteRefreshReceived,
    SessionConfig,
    SessionDown,
    SessionUp,
    State,
    UpdateReceived,
    build_open,
)
from speaker.wire.context import IPV4_UNICAST
from speaker.wire.enums import RouteRefreshSubtype
from tests.sessiontesting import drain, frames

CAPTURES = Path(__file__).resolve().parent / "data" / "captures"
MESH = CAPTURES / "mesh-restart.pcap"
LIFECYCLE = CAPTURES / "lifecycle.pcap"



def stream(path: Path, src: str, dst: str) -> list[RawMessage]:
    """The messages one end sent on one TCP connection ("addr:port")."""
    return [m for m in read_capture(path) if str(m.source) == src and str(m.destination) == dst]


def connect(config: SessionConfig) -> tuple[PeerSession, int]:
    """Start a session and let it dial: the BIRD side accepted (we are the active side)."""
    session = PeerSession(config)
    session.start(0)
    session.handle_timer(config.connect_delay)
    (conn,) = session.connections()
    session.connection_made(conn, 2, outgoing=True)
    return session, conn


def feed(session: PeerSession, conn: int, messages: list[RawMessage]) -> Iterator[str]:
    """Feed each message at its capture time offset; yield the state after each."""
    t0 = messages[0].timestamp
    for m in messages:
        session.receive_data(conn, m.data, 2 + m.timestamp - t0)
        yield str(session.state)


def test_replay_birds_session_from_mesh_restart() -> None:
    # we play node .82 dialing node .81 (192.168.0.82:35609 -> 192.168.0.81:179)
    msgs = stream(MESH, "192.168.0.81:179", "192.168.0.82:35609")
    assert [m.data[18] for m in msgs] == [1, 4, 2, 2]  # OPEN, KEEPALIVE, UPDATE, End-of-RIB
    config = SessionConfig(64512, IPv4Address("192.168.0.82"), 64512, IPv4Address("192.168.0.81"))
    session, conn = connect(config)
    states = list(feed(session, conn, msgs))
    assert states == ["OpenConfirm", "Established", "Established", "Established"]
    events = drain(session)
    (up,) = [e for e in events if isinstance(e, SessionUp)]
    info = up.info
    assert (info.hold_time, info.keepalive_time) == (240, 80)
    assert info.peer_id == IPv4Address("192.168.0.81") and info.peer_as == 64512
    assert info.addpath_receive == info.addpath_send == frozenset({IPV4_UNICAST})
    assert info.route_refresh and info.enhanced_route_refresh and info.asn4
    gr = info.peer_graceful_restart
    assert gr is not None and gr.restart_time == 120 and not gr.restarting
    assert gr.families == ((IPV4_UNICAST, False),) and info.gr_helper
    (update,) = [e for e in events if isinstance(e, UpdateReceived)]
    assert update.update.nlri and all(n.path_id is not None for n in update.update.nlri)
    assert [e.family for e in events if isinstance(e, EndOfRib)] == [IPV4_UNICAST]
    # what we sent: our OPEN then KEEPALIVE, as node .82's BIRD did (frames 10 and 13)
    ours = frames(session.data_to_send(conn))
    theirs = stream(MESH, "192.168.0.82:35609", "192.168.0.81:179")
    assert ours[0] == build_open(config).encode(info.context)
    bird_open = theirs[0].data
    assert ours[0][19:28] == bird_open[19:28]  # version, AS, hold time, identifier
    assert ours[0][31:] == bird_open[31:-2]  # the capabilities, less BIRD's empty LLGR
    assert ours[1] == theirs[1].data  # KEEPALIVE


def test_replay_lifecycle_refresh_and_shutdown() -> None:
    # we play node .81 (192.168.0.81:60897 -> 192.168.0.80:179); .80 talks
    msgs = stream(LIFECYCLE, "192.168.0.80:179", "192.168.0.81:60897")
    config = SessionConfig(64512, IPv4Address("192.168.0.81"), 64512, IPv4Address("192.168.0.80"))
    session, conn = connect(config)
    states = list(feed(session, conn, msgs))
    assert states[:2] == ["OpenConfirm", "Established"]
    assert states[-1] == "Active"  # Cease is not an error: reconnect after the connect delay
    events = drain(session)
    refreshes = [e.subtype for e in events if isinstance(e, RouteRefreshReceived)]
    assert refreshes == [RouteRefreshSubtype.BORR, RouteRefreshSubtype.EORR]
    assert len([e for e in events if isinstance(e, EndOfRib)]) == 1
    updates = [e for e in events if isinstance(e, UpdateReceived)]
    assert any(e.update.withdrawn for e in updates)
    (down,) = [e for e in events if isinstance(e, SessionDown)]
    assert down.reason is DownReason.NOTIFICATION_RECEIVED and not down.graceful
    assert down.notification is not None and down.notification.subcode == 2
    (close,) = [e for e in events if isinstance(e, CloseConnection)]
    assert close.notification is None  # a NOTIFICATION is not answered
    sent = frames(session.data_to_send(conn))
    assert all(m[18] != 3 for m in sent)
    assert session.error_wait == 0


def test_our_route_refresh_request_matches_birds() -> None:
    msgs = stream(LIFECYCLE, "192.168.0.80:179", "192.168.0.81:60897")
    config = SessionConfig(64512, IPv4Address("192.168.0.81"), 64512, IPv4Address("192.168.0.80"))
    session, conn = connect(config)
    list(feed(session, conn, msgs[:2]))
    session.data_to_send(conn)
    session.send_route_refresh(IPV4_UNICAST)
    birds = [m.data for m in stream(LIFECYCLE, "192.168.0.81:60897", "192.168.0.80:179")]
    assert session.data_to_send(conn) == next(d for d in birds if d[18] == 5)


def test_replay_bird_restart_with_restart_flag() -> None:
    # .80 is killed (no NOTIFICATION) then restarted with `bird -R` (new OPEN with R and F)
    config = SessionConfig(64512, IPv4Address("192.168.0.81"), 64512, IPv4Address("192.168.0.80"))
    before = stream(LIFECYCLE, "192.168.0.80:179", "192.168.0.81:41025")
    after = stream(LIFECYCLE, "192.168.0.80:179", "192.168.0.81:56397")
    session, conn = connect(config)
    list(feed(session, conn, before))
    assert session.state is State.ESTABLISHED
    drain(session)
    session.connection_lost(conn, 100, "Connection reset by peer")
    (down,) = [e for e in drain(session) if isinstance(e, SessionDown)]
    assert down.graceful and down.restart_time == 120
    assert down.forwarding == ((IPV4_UNICAST, False),)
    session.handle_timer(102)  # connect delay
    (conn2,) = session.connections()
    session.connection_made(conn2, 102, outgoing=True)
    states = list(feed(session, conn2, after))
    assert states[:2] == ["OpenConfirm", "Established"]
    events = drain(session)
    assert [e for e in events if isinstance(e, GracefulRestartEnded)] == []
    (up,) = [e for e in events if isinstance(e, SessionUp)]
    gr = up.info.peer_graceful_restart
    assert gr is not None and gr.restarting and gr.forwarding(IPV4_UNICAST) is True
    assert [e.family for e in events if isinstance(e, EndOfRib)] == [IPV4_UNICAST]
