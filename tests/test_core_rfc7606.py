"""RFC 7606 through the whole core: a malformed UPDATE from a peer, session kept.

The peer (:mod:`tests.corenet`) first announces a prefix cleanly, then sends an UPDATE for it
whose attribute RFC 7606 says to treat as withdraw (an ORIGIN of 5, section 7.1; an AS_PATH
segment overrunning the attribute, section 7.2): the prefix must leave the Loc-RIB, the
kernel and every other peer's Adj-RIB-Out (an eBGP peer is told), while the session stays
Established and the peer's counter and event record it.  An attribute-discard error
(AGGREGATOR of the wrong length, section 7.7) keeps the route without the attribute.
Errors that RFC 7606 still answers with a reset (a bad NLRI length) reset.
"""

from __future__ import annotations

from ipaddress import IPv4Address

from speaker.config import parse_config
from speaker.session import MalformedUpdateReceived, SessionDown, State
from speaker.wire.enums import ErrorCode, UpdateSubcode
from speaker.wire.errors import ErrorAction
from speaker.wire.messages import HEADER_SIZE, MARKER
from speaker.wire.nlri import Nlri, Prefix, encode_prefixes
from tests.corenet import CoreNet, update

A = "192.168.0.80"  # iBGP mesh peer that misbehaves
E = "192.168.0.90"  # an eBGP peer: iBGP-learned routes are exported to it
ROUTE = "10.244.80.0/26"


def make() -> tuple[CoreNet, str, str]:
    text = (
        'router_id = "192.168.0.81"\nasn = 64512\n'
        '[originate]\nblocks = ["10.244.81.0/26"]\n[pools]\ncidrs = ["10.244.0.0/16"]\n'
        f'[[peer]]\naddress = "{A}"\n[[peer]]\naddress = "{E}"\nasn = 64999\n'
    )
    net = CoreNet(parse_config(text, "node81.toml"))
    a, e = (p.name for p in net.config.peers)
    net.start()
    net.run_until(lambda: net.established(a, e))
    return net, a, e


def attr(flags: int, code: int, value: bytes) -> bytes:
    return bytes((flags, code, len(value))) + value


def raw_update(net: CoreNet, name: str, attrs: bytes, prefix: str = ROUTE) -> bytes:
    """One UPDATE announcing ``prefix`` with these attribute octets, as the peer encodes NLRI."""
    ctx = net.remotes[name].negotiated.context  # type: ignore[union-attr]
    nlri = encode_prefixes((Nlri(Prefix.parse(prefix)),), ctx.ipv4_addpath_send)
    body = b"\x00\x00" + len(attrs).to_bytes(2, "big") + attrs + nlri
    return MARKER + (HEADER_SIZE + len(body)).to_bytes(2, "big") + b"\x02" + body


NEXT_HOP = attr(0x40, 3, IPv4Address(A).packed)
LOCAL_PREF = attr(0x40, 5, (100).to_bytes(4, "big"))
GOOD_PATH = attr(0x40, 2, b"")


def announced_then(net: CoreNet, a: str, e: str, bad: bytes) -> None:
    net.remotes[a].send_update(update(ROUTE, via=A))
    net.pump()
    assert net.kernel.hops(ROUTE) == (A,)
    assert ROUTE in net.received(e)
    net.remotes[a].send_update(bad)
    net.pump()


def test_invalid_origin_is_treat_as_withdraw_end_to_end() -> None:
    net, a, e = make()
    bad = raw_update(net, a, attr(0x40, 1, b"\x05") + GOOD_PATH + NEXT_HOP + LOCAL_PREF)
    announced_then(net, a, e, bad)
    assert all(str(v.prefix) != ROUTE for v in net.core.rib.show_route())  # Loc-RIB
    assert net.kernel.hops(ROUTE) is None  # left the kernel
    assert ROUTE not in net.received(e)  # the eBGP peer got the withdrawal
    session = net.core.peer(a).session
    assert session.state is State.ESTABLISHED and net.established(a)
    assert session.malformed_updates == {ErrorAction.TREAT_AS_WITHDRAW: 1}
    (event,) = net.of(MalformedUpdateReceived)
    assert event.action is ErrorAction.TREAT_AS_WITHDRAW and event.count == 1
    assert "ORIGIN" in " ".join(event.errors)
    assert "its routes are withdrawn, the session stays up" in event.describe()
    assert not net.of(SessionDown)


def test_as_path_segment_overrun_is_treat_as_withdraw() -> None:
    net, a, e = make()
    # AS_SEQUENCE claiming 3 ASNs, carrying one (RFC 7606 7.2: treat-as-withdraw)
    path = attr(0x40, 2, b"\x02\x03" + (64512).to_bytes(4, "big"))
    bad = raw_update(net, a, attr(0x40, 1, b"\x00") + path + NEXT_HOP + LOCAL_PREF)
    announced_then(net, a, e, bad)
    assert net.kernel.hops(ROUTE) is None
    assert ROUTE not in net.received(e)
    assert net.established(a)
    assert net.core.peer(a).session.malformed_updates[ErrorAction.TREAT_AS_WITHDRAW] == 1


def test_attribute_discard_keeps_the_route_without_the_attribute() -> None:
    net, a, e = make()
    aggregator = attr(0xC0, 7, b"\x00" * 7)  # 7 octets: neither 6 nor 8 (RFC 7606 7.7)
    bad = raw_update(
        net, a, attr(0x40, 1, b"\x00") + GOOD_PATH + NEXT_HOP + LOCAL_PREF + aggregator
    )
    net.remotes[a].send_update(bad)
    net.pump()
    assert net.kernel.hops(ROUTE) == (A,)
    assert ROUTE in net.received(e)
    (view,) = [v for v in net.core.rib.show_route() if str(v.prefix) == ROUTE]
    assert view.paths[0].path.attrs.aggregator is None
    assert net.core.peer(a).session.malformed_updates == {ErrorAction.ATTRIBUTE_DISCARD: 1}
    assert net.established(a)


def test_an_error_rfc_7606_still_resets_resets() -> None:
    net, a, _ = make()
    net.remotes[a].send_update(update(ROUTE, via=A))
    net.pump()
    good = raw_update(net, a, attr(0x40, 1, b"\x00") + GOOD_PATH + NEXT_HOP + LOCAL_PREF)
    # the NLRI's prefix length byte says 33 bits: 3/10, the NLRI cannot be parsed (5.3)
    at = len(good) - 5  # a /26: the length octet, then 4 octets of prefix
    broken = good[:at] + b"\x21" + good[at + 1 :]
    net.remotes[a].send_update(broken)
    net.pump()
    downs = net.of(SessionDown)
    assert downs and downs[-1].notification is not None
    assert (downs[-1].notification.code, downs[-1].notification.subcode) == (
        ErrorCode.UPDATE_MESSAGE,
        UpdateSubcode.INVALID_NETWORK_FIELD,
    )
    assert net.kernel.hops(ROUTE) is None
