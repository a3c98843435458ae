"""Hardening #3: MP_REACH/MP_UNREACH_NLRI of a family not negotiated keeps the session.

RFC 4760 section 7: the routes of that family are ignored (ending the session is only a
"may"); BIRD and GoBGP keep the session.  Hand-built UPDATE bytes, sessions negotiating IPv4
unicast only."""

from __future__ import annotations

from ipaddress import IPv4Address

from speaker.session import PeerSession, SessionConfig
from speaker.session.events import (
    CloseConnection,
    EndOfRib,
    UnnegotiatedFamilyIgnored,
    UpdateReceived,
)
from speaker.session.state import State
from tests.sessiontesting import drain, frames, handshake


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def update(attrs: str = "", nlri: str = "") -> bytes:
    a = h(attrs)
    body = (0).to_bytes(2, "big") + len(a).to_bytes(2, "big") + a + h(nlri)
    return b"\xff" * 16 + (19 + len(body)).to_bytes(2, "big") + b"\x02" + body


ORIGIN_AS_PATH = "40 01 01 00 40 02 00"
NEXT_HOP = "40 03 04 c0a80051"
NLRI = "00000001 1a 0af42a40"  # path id 1 (add-path is negotiated), 10.244.42.64/26
MP_REACH_V6 = "80 0e 1e 0002 01 10 fd000000000000000000000000000080 00 40 fd00001002440042"
MP_UNREACH_V6 = "80 0f 0c 0002 01 40 fd00001002440042"
MP_REACH_VPNV4 = "80 0e 09 0001 80 04 c0a80050 00"
EOR_V6 = "80 0f 03 0002 01"


def established() -> tuple[PeerSession, int]:
    session = PeerSession(
        SessionConfig(
            local_as=64512,
            router_id=IPv4Address("192.168.0.80"),
            peer_as=64512,
            peer_address=IPv4Address("192.168.0.81"),
        )
    )
    conn = handshake(session)
    drain(session)
    session.data_to_send(conn)
    assert session.state is State.ESTABLISHED
    return session, conn


def receive(session: PeerSession, conn: int, message: bytes) -> list[object]:
    session.receive_data(conn, message, 1.0)
    return list(drain(session))


def test_mp_reach_of_an_unnegotiated_family_is_ignored_session_kept() -> None:
    session, conn = established()
    for n, attrs in enumerate((MP_REACH_V6, MP_REACH_VPNV4, MP_UNREACH_V6), start=1):
        events = receive(session, conn, update(attrs + ORIGIN_AS_PATH))
        ignored = [e for e in events if isinstance(e, UnnegotiatedFamilyIgnored)]
        assert len(ignored) == 1 and ignored[0].count == n, events
        assert "not negotiated" in ignored[0].describe()
        assert not any(isinstance(e, (UpdateReceived, CloseConnection, EndOfRib)) for e in events)
        assert frames(session.data_to_send(conn)) == []  # no NOTIFICATION
        assert session.state is State.ESTABLISHED
    assert session.unnegotiated_family_updates == 3


def test_ipv4_routes_beside_an_unnegotiated_family_are_kept() -> None:
    session, conn = established()
    events = receive(session, conn, update(MP_REACH_V6 + ORIGIN_AS_PATH + NEXT_HOP, NLRI))
    (got,) = [e for e in events if isinstance(e, UpdateReceived)]
    assert [str(n.prefix) for n in got.update.nlri] == ["10.244.42.64/26"]
    assert not any(a.type_code == 14 for a in got.update.attributes)  # IPv6 part left out
    assert session.unnegotiated_family_updates == 1
    assert session.state is State.ESTABLISHED


def test_end_of_rib_of_an_unnegotiated_family_is_not_taken_for_ipv4() -> None:
    session, conn = established()
    events = receive(session, conn, update(EOR_V6))
    assert not any(isinstance(e, EndOfRib) for e in events), events
    assert any(isinstance(e, UnnegotiatedFamilyIgnored) for e in events)
    events = receive(session, conn, update())
    assert [e.family for e in events if isinstance(e, EndOfRib)] == [(1, 1)]
