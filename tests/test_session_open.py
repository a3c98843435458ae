"""OPEN handling of the session: our OPEN's bytes, the peer's OPEN checks, negotiation.

Every refused OPEN is checked against the exact NOTIFICATION bytes (RFC 4271 6.2).
"""

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
)
from speaker.wire.capabilities import (
    FourOctetAsCapability,
    GracefulRestartCapability,
    GracefulRestartFlags,
    MultiprotocolCapability,
)
from speaker.wire.enums import Afi, Safi
from speaker.wire.messages import Open
from tests.sessiontesting import drain, frames, handshake, mirror, wire

A80 = IPv4Address("192.168.0.80")
A81 = IPv4Address("192.168.0.81")
A82 = IPv4Address("192.168.0.82")
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


def peer_open(asn: int = 64512, hold: int = 240, bgp_id: IPv4Address = A81) -> Open:
    caps = [MultiprotocolCapability(Afi.IPV4, Safi.UNICAST), FourOctetAsCapability(asn)]
    return Open.build(asn, hold, bgp_id, caps)


def notification_after(session: PeerSession, conn: int) -> bytes:
    """The last message queued on a connection (our OPEN and KEEPALIVEs come before it)."""
    return frames(session.data_to_send(conn))[-1]


# ---------------------------------------------------------------------------- our OPEN

BIRD_82_OPEN = bytes.fromhex(
    MARKER + "003f0104fc0000f0c0a800522202200104000100010200400600780001010041040000fc00"
    "45040001010346004700"
)
"""Node 192.168.0.82's OPEN in mesh-restart.pcap (frame 10), BIRD 1.6.8."""


def test_our_open_is_birds_open_without_llgr() -> None:
    ours = wire(build_open(cfg(router_id=A82, peer_address=A81)))
    expected = bytes.fromhex(
        MARKER
        + "003d"  # 61 octets: BIRD's 63 less the empty LLGR capability (71)
        + "01"  # OPEN
        + "04fc0000f0c0a80052"  # version 4, AS 64512, hold 240, id 192.168.0.82
        + "20"  # optional parameters: 32 octets
        + "021e"  # one Capabilities parameter of 30 octets
        + "010400010001"  # MP IPv4/unicast
        + "0200"  # route refresh
        + "4006007800010100"  # graceful restart 120 s, IPv4/unicast, F=0
        + "41040000fc00"  # 4-octet AS 64512
        + "4504000101"
        + "03"  # add-path IPv4/unicast send+receive
        + "4600"  # enhanced route refresh
    )
    assert ours == expected
    # and the same as BIRD's with its LLGR capability cut out and the lengths fixed up
    bird = bytearray(BIRD_82_OPEN[:-2])
    bird[17] -= 2
    bird[28] -= 2
    bird[30] -= 2
    assert ours == bytes(bird)


def test_our_open_when_restarting_with_forwarding_preserved_matches_bird_r() -> None:
    open_ = build_open(cfg(restarting=True, forwarding_preserved=True))
    gr = open_.capability(GracefulRestartCapability.CODE)
    assert isinstance(gr, GracefulRestartCapability)
    # BIRD started with -R sends exactly this capability (lifecycle.pcap frame 79)
    assert gr.encode() == bytes.fromhex("400680780001" + "0180")
    assert gr.flags == GracefulRestartFlags.RESTART


@pytest.mark.parametrize(
    ("changes", "absent", "present"),
    [
        ({"add_paths": "off"}, {69}, {1, 2, 64, 65, 70}),
        ({"route_refresh": False}, {2, 70}, {1, 64, 65, 69}),
        ({"graceful_restart": False}, {64}, {1, 2, 65, 69, 70}),
    ],
)
def test_capabilities_follow_the_config(
    changes: dict[str, object], absent: set[int], present: set[int]
) -> None:
    codes = {c.code for c in build_open(cfg(**changes)).capabilities}
    assert not codes & absent
    assert present <= codes


def test_add_path_modes() -> None:
    for mode, value in (("receive", 1), ("send", 2), ("both", 3)):
        data = wire(build_open(cfg(add_paths=mode)))
        assert bytes.fromhex("45040001010" + str(value)) in data


def test_four_octet_local_as_uses_as_trans() -> None:
    open_ = build_open(cfg(local_as=4_200_000_000, peer_as=64512))
    assert open_.my_as == 23456
    assert open_.asn == 4_200_000_000


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"hold_time": 1}, "hold_time"),
        ({"hold_time": 2}, "hold_time"),
        ({"router_id": "0.0.0.0"}, "router_id"),
        ({"peer_address": "not-an-address"}, "peer_address"),
        ({"add_paths": "sometimes"}, "add_paths"),
        ({"error_wait": (30, 5)}, "error_wait"),
        ({"restart_time": 5000}, "restart_time"),
        ({"peer_as": 0}, "peer_as"),
        ({"families": ()}, "families"),
        ({"connect_retry": 0}, "connect_retry"),
    ],
)
def test_config_refuses_bad_values_naming_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=f"SessionConfig.{field}"):
        cfg(**changes)


def test_config_accepts_addresses_as_text() -> None:
    c = cfg(router_id="192.168.0.80", peer_address="192.168.0.81", source_address="10.0.0.1")
    assert c.router_id == A80 and c.peer_address == A81
    assert c.source_address == IPv4Address("10.0.0.1")


# ---------------------------------------------------------------------------- bad OPENs


def refused(open_bytes: bytes, config: SessionConfig | None = None) -> tuple[PeerSession, bytes]:
    """Connect, feed the OPEN bytes, return the session and the NOTIFICATION it queued."""
    session = PeerSession(config or cfg())
    session.start(0)
    session.handle_timer(2)
    (conn,) = session.connections()
    session.connection_made(conn, 2, outgoing=True)
    session.receive_data(conn, open_bytes, 2.5)
    return session, notification_after(session, conn)


def test_unsupported_version_gets_2_1_with_our_version() -> None:
    data = bytearray(wire(peer_open()))
    data[19] = 3
    session, note = refused(bytes(data))
    assert note == bytes.fromhex(MARKER + "0017" + "03" + "0201" + "0004")
    assert session.state is State.IDLE  # error wait after an error (BIRD)


def test_bad_peer_as_gets_2_2_with_the_my_as_field() -> None:
    _, note = refused(wire(peer_open(asn=65000)))
    assert note == bytes.fromhex(MARKER + "0017" + "03" + "0202" + "fde8")


def test_bad_four_octet_peer_as_is_checked_on_the_capability() -> None:
    # My AS is AS_TRANS; the real AS is in the 4-octet AS capability (RFC 6793 4.1)
    _, note = refused(wire(peer_open(asn=4_200_000_000)))
    assert note == bytes.fromhex(MARKER + "0017" + "03" + "0202" + "5ba0")


def test_four_octet_peer_as_is_accepted_when_it_matches() -> None:
    config = cfg(peer_as=4_200_000_000)
    session = PeerSession(config)
    handshake(session, peer_open(asn=4_200_000_000), establish=False)
    assert session.state is State.OPENCONFIRM


def test_bgp_identifier_zero_gets_2_3() -> None:
    _, note = refused(wire(peer_open(bgp_id=IPv4Address("0.0.0.0"))))
    assert note == bytes.fromhex(MARKER + "0015" + "03" + "0203")


def test_internal_peer_with_our_identifier_gets_2_3() -> None:
    _, note = refused(wire(peer_open(bgp_id=A80)))
    assert note == bytes.fromhex(MARKER + "0015" + "03" + "0203")


def test_external_peer_may_share_our_identifier() -> None:
    # RFC 6286 2.2 asks for uniqueness within an AS only
    session = PeerSession(cfg(peer_as=65000))
    handshake(session, peer_open(asn=65000, bgp_id=A80), establish=False)
    assert session.state is State.OPENCONFIRM


@pytest.mark.parametrize("hold", [1, 2])
def test_hold_time_1_or_2_gets_2_6(hold: int) -> None:
    _, note = refused(wire(peer_open(hold=hold)))
    assert note == bytes.fromhex(MARKER + "0015" + "03" + "0206")


def test_unsupported_optional_parameter_gets_2_4() -> None:
    data = bytearray(wire(Open(4, 64512, 240, A81)))  # no optional parameters
    data += bytes((1, 2, 0xAB, 0xCD))  # parameter type 1 (authentication, deprecated)
    data[28] = 4
    data[16:18] = len(data).to_bytes(2, "big")
    _, note = refused(bytes(data))
    assert note == bytes.fromhex(MARKER + "0015" + "03" + "0204")


def test_malformed_capability_gets_2_0() -> None:
    data = bytearray(wire(Open(4, 64512, 240, A81)))
    data += bytes.fromhex("0206" + "4104" + "0000")  # 4-octet AS capability cut short
    data[28] = 6
    data[16:18] = len(data).to_bytes(2, "big")
    _, note = refused(bytes(data))
    assert note[:21] == bytes.fromhex(MARKER + "0015" + "03" + "0200")


def test_refused_open_closes_without_session_down() -> None:
    session, _ = refused(wire(peer_open(asn=65000)))
    events = drain(session)
    closes = [e for e in events if isinstance(e, CloseConnection)]
    assert closes and closes[-1].notification is not None
    assert closes[-1].notification.code == 2 and closes[-1].notification.subcode == 2
    assert not [e for e in events if isinstance(e, SessionDown)]
    assert session.last_error == "BGP Error: Bad peer AS"  # BIRD's words (packets.c)


# ---------------------------------------------------------------------------- negotiation


@pytest.mark.parametrize(
    ("ours", "theirs", "keepalive_cfg", "hold", "keepalive"),
    [
        (240, 240, None, 240, 80),
        (240, 90, None, 90, 30),
        (90, 240, None, 90, 30),
        (240, 3, None, 3, 1),
        (240, 4, None, 4, 1),
        (240, 240, 10, 240, 10),
        (240, 9, 100, 9, 3),  # configured keepalive capped at a third of the hold time
        (240, 0, None, 0, 0),
        (0, 240, None, 0, 0),
    ],
)
def test_hold_time_is_the_smaller_and_keepalive_a_third(
    ours: int, theirs: int, keepalive_cfg: int | None, hold: int, keepalive: int
) -> None:
    session = PeerSession(cfg(hold_time=ours, keepalive_time=keepalive_cfg))
    handshake(session, peer_open(hold=theirs))
    assert session.state is State.ESTABLISHED
    info = session.negotiated
    assert info is not None
    assert (info.hold_time, info.keepalive_time) == (hold, keepalive)


def test_hold_time_zero_runs_no_timers() -> None:
    session = PeerSession(cfg())
    conn = handshake(session, peer_open(hold=0))
    assert session.state is State.ESTABLISHED
    session.data_to_send(conn)  # queued data would run the send hold timer (RFC 9687)
    assert session.get_timer() is None  # no hold timer, no keepalive timer (RFC 4271 4.4)


def test_negotiation_records_the_peer_capabilities() -> None:
    session = PeerSession(cfg())
    handshake(session, build_open(mirror(cfg(), restart_time=90, forwarding_preserved=True)))
    info = session.negotiated
    assert info is not None
    assert info.route_refresh and info.enhanced_route_refresh and info.asn4
    assert info.addpath_receive == info.addpath_send == frozenset({(Afi.IPV4, Safi.UNICAST)})
    gr = info.peer_graceful_restart
    assert gr is not None and gr.restart_time == 90 and not gr.restarting
    assert gr.forwarding((Afi.IPV4, Safi.UNICAST)) is True
    assert info.gr_helper
    assert info.peer_id == A81 and info.internal
    assert info.remote_open.bgp_id == A81 and info.local_open == session.local_open


def test_add_path_is_negotiated_per_direction() -> None:
    session = PeerSession(cfg(add_paths="receive"))
    handshake(session, build_open(mirror(cfg(), add_paths="both")))
    info = session.negotiated
    assert info is not None
    assert info.addpath_receive == frozenset({(Afi.IPV4, Safi.UNICAST)})
    assert info.addpath_send == frozenset()


def test_peer_without_mp_capability_gets_ipv4_unicast() -> None:
    session = PeerSession(cfg())
    handshake(session, Open.build(64512, 240, A81, [FourOctetAsCapability(64512)]))
    info = session.negotiated
    assert info is not None
    assert info.families == ((Afi.IPV4, Safi.UNICAST),)
    assert not info.route_refresh and not info.gr_helper and not info.addpath_send
