"""Every malformed input gets the NOTIFICATION RFC 4271 section 6 prescribes, byte for byte,
and the outcome RFC 7606 allows for UPDATE attribute errors.

The expected NOTIFICATIONs are hex literals written from the RFC text: after the 16-octet
marker come the length, type 3, the error code, the subcode and the Data field.  Inputs are
assembled from raw octets here, never with our encoder.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from speaker.wire import (
    DEFAULT_CONTEXT,
    IPV4_UNICAST,
    IPV6_UNICAST,
    BgpError,
    ErrorAction,
    LocalPrefAttr,
    MpReachAttr,
    Negotiated,
    Notification,
    Open,
    OriginAttr,
    RouteRefresh,
    UnknownAttr,
    UnknownCapability,
    Update,
    decode_message,
)
from speaker.wire.attributes import UndecodedMpAttr
from speaker.wire.enums import CeaseSubcode, Origin
from speaker.wire.messages import (
    MAX_NOTIFICATION_DATA,
    CapabilitiesParameter,
    check_header,
    update_length,
)

MARKER = "ff" * 16
ADDPATH = Negotiated(addpath_receive=frozenset({IPV4_UNICAST, IPV6_UNICAST}))
OLD = Negotiated(asn4=False)
EXTENDED = Negotiated(max_message_size=65535)
EBGP = Negotiated(ebgp=True)

T = ErrorAction.TREAT_AS_WITHDRAW
D = ErrorAction.ATTRIBUTE_DISCARD
R = ErrorAction.SESSION_RESET


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def frame(mtype: int, body: bytes) -> bytes:
    return h(MARKER) + (19 + len(body)).to_bytes(2, "big") + bytes((mtype,)) + body


def update(withdrawn: str = "", attrs: str = "", nlri: str = "") -> bytes:
    w, a = h(withdrawn), h(attrs)
    body = len(w).to_bytes(2, "big") + w + len(a).to_bytes(2, "big") + a + h(nlri)
    return frame(2, body)


def open_message(
    version: int = 4, asn: int = 64512, hold: int = 90, ident: str = "c0a80051", params: str = ""
) -> bytes:
    p = h(params)
    body = bytes((version,)) + asn.to_bytes(2, "big") + hold.to_bytes(2, "big") + h(ident)
    return frame(1, body + bytes((len(p),)) + p)


# well-formed attributes, as BIRD sends them
ORIGIN = "40 01 01 00"
AS_PATH = "40 02 00"
AS_PATH_64512 = "40 02 06 02 01 0000fc00"
NEXT_HOP = "40 03 04 c0a80050"
LOCAL_PREF = "40 05 04 00000064"
BASE = ORIGIN + AS_PATH + NEXT_HOP + LOCAL_PREF
NLRI = "1a 0af42a40"  # 10.244.42.64/26
# IPv6 fd00:10:244:42::/64 via fd00::80
MP_REACH = "80 0e 1e 0002 01 10 fd000000000000000000000000000080 00 40 fd00001002440042"
CAPS = "02 06 01 04 0001 0001"  # capabilities parameter: MP IPv4 unicast


@dataclass(frozen=True)
class Case:
    """A malformed input and the NOTIFICATION (after the marker) it must produce."""

    name: str
    message: bytes
    notification: str
    action: ErrorAction = R
    ctx: Negotiated = DEFAULT_CONTEXT


CASES = [
    # ------------------------------------------------------------ 6.1 Message Header Error
    Case("1/1 marker not all ones", h("ff" * 15 + "fe" + "0013 04"), "0015 03 01 01"),
    Case("1/2 length below 19", h(MARKER + "0012 04"), "0017 03 01 02 0012"),
    Case("1/2 length above 4096", h(MARKER + "1001 02"), "0017 03 01 02 1001"),
    Case("1/2 KEEPALIVE not 19", frame(4, b"\x00"), "0017 03 01 02 0014"),
    Case("1/2 OPEN below 29", frame(1, h("04 fc00 005a c0a80051")), "0017 03 01 02 001c"),
    Case("1/2 UPDATE below 23", frame(2, h("0000 00")), "0017 03 01 02 0016"),
    Case("1/2 NOTIFICATION below 21", frame(3, h("06")), "0017 03 01 02 0014"),
    Case("1/2 ROUTE-REFRESH below 23", frame(5, h("0001 00")), "0017 03 01 02 0016"),
    Case(
        "1/2 OPEN above 4096 despite extended messages (RFC 8654 4)",
        h(MARKER + "1001 01"),
        "0017 03 01 02 1001",
        ctx=EXTENDED,
    ),
    Case("1/2 header disagrees with the octets", h(MARKER + "001e 02"), "0017 03 01 02 001e"),
    Case("1/3 type 6", frame(6, b""), "0016 03 01 03 06"),
    Case("1/3 type 0", frame(0, b""), "0016 03 01 03 00"),
    # ------------------------------------------------------------ 6.2 OPEN Message Error
    Case("2/1 version 3", open_message(version=3), "0017 03 02 01 0004"),
    Case("2/1 version 5", open_message(version=5), "0017 03 02 01 0004"),
    Case("2/2 My AS 0 (RFC 7607)", open_message(asn=0), "0015 03 02 02"),
    Case(
        "2/2 4-octet AS 0 (RFC 7607)",
        open_message(asn=23456, params="02 06 41 04 00000000"),
        "0015 03 02 02",
    ),
    Case("2/3 BGP identifier 0", open_message(ident="00000000"), "0015 03 02 03"),
    Case("2/4 authentication parameter", open_message(params="01 02 0000"), "0015 03 02 04"),
    Case("2/6 hold time 1", open_message(hold=1), "0015 03 02 06"),
    Case("2/6 hold time 2", open_message(hold=2), "0015 03 02 06"),
    Case(
        "2/0 optional parameters overrun the OPEN",
        frame(1, h("04 fc00 005a c0a80051 09") + h(CAPS)),
        "0015 03 02 00",
    ),
    Case("2/0 parameter header truncated", open_message(params="02"), "0015 03 02 00"),
    Case(
        "2/0 capability overruns its parameter",
        open_message(params="02 03 01 04 00"),
        "0015 03 02 00",
    ),
    Case(
        "2/0 multiprotocol capability of 3 octets",
        open_message(params="02 05 01 03 000101"),
        "0015 03 02 00",
    ),
    Case(
        "2/0 4-octet AS capability of 2 octets",
        open_message(params="02 04 41 02 fc00"),
        "0015 03 02 00",
    ),
    Case(
        "2/0 add-path entry truncated", open_message(params="02 05 45 03 000101"), "0015 03 02 00"
    ),
    Case(
        "2/0 graceful restart of 3 octets",
        open_message(params="02 05 40 03 007800"),
        "0015 03 02 00",
    ),
    Case(
        "2/0 RFC 9072 extended length truncated",
        frame(1, h("04 fc00 005a c0a80051 ff ff 00")),
        "0015 03 02 00",
    ),
    # ------------------------------------------------------------ 6.3 UPDATE Message Error
    Case(
        "3/1 withdrawn routes length overruns",
        frame(2, h("0010 0000")),
        "0015 03 03 01",
    ),
    Case(
        "3/1 total attribute length overruns",
        frame(2, h("0000 0010") + h(ORIGIN)),
        "0015 03 03 01",
    ),
    Case(
        "3/2 unrecognized well-known attribute",
        update(attrs=BASE + "40 63 01 aa", nlri=NLRI),
        "0019 03 03 02 406301aa",
    ),
    Case(
        "3/3 ORIGIN missing (data: its type code)",
        update(attrs=AS_PATH + NEXT_HOP, nlri=NLRI),
        "0016 03 03 03 01",
        T,
    ),
    Case(
        "3/3 AS_PATH missing",
        update(attrs=ORIGIN + NEXT_HOP, nlri=NLRI),
        "0016 03 03 03 02",
        T,
    ),
    Case(
        "3/3 NEXT_HOP missing with IPv4 NLRI",
        update(attrs=ORIGIN + AS_PATH, nlri=NLRI),
        "0016 03 03 03 03",
        T,
    ),
    Case(
        "3/3 AS_PATH missing beside MP_REACH_NLRI",
        update(attrs=MP_REACH + ORIGIN),
        "0016 03 03 03 02",
        T,
    ),
    Case(
        "3/4 ORIGIN flagged optional",
        update(attrs="c0 01 01 00" + AS_PATH + NEXT_HOP, nlri=NLRI),
        "0019 03 03 04 c0010100",
        T,
    ),
    Case(
        "3/4 MED flagged transitive",
        update(attrs=BASE + "c0 04 04 00000032", nlri=NLRI),
        "001c 03 03 04 c004040000 0032",
        T,
    ),
    Case(
        "3/4 NEXT_HOP flagged optional, extended length kept in the data",
        update(attrs=ORIGIN + AS_PATH + "90 03 0004 c0a80050", nlri=NLRI),
        "001d 03 03 04 90030004c0a80050",
        T,
    ),
    Case(
        "3/5 ORIGIN of 2 octets",
        update(attrs="40 01 02 0000" + AS_PATH + NEXT_HOP, nlri=NLRI),
        "001a 03 03 05 4001020000",
        T,
    ),
    Case(
        "3/5 NEXT_HOP of 5 octets",
        update(attrs=ORIGIN + AS_PATH + "40 03 05 c0a8005000", nlri=NLRI),
        "001d 03 03 05 400305c0a8005000",
        T,
    ),
    Case(
        "3/5 MED of 3 octets",
        update(attrs=BASE + "80 04 03 000032", nlri=NLRI),
        "001b 03 03 05 80040300 0032",
        T,
    ),
    Case(
        "3/5 LOCAL_PREF of 5 octets",
        update(attrs=ORIGIN + AS_PATH + NEXT_HOP + "40 05 05 0000006400", nlri=NLRI),
        "001d 03 03 05 4005050000006400",
        T,
    ),
    Case(
        "3/5 COMMUNITIES of 3 octets (RFC 7606 7.8)",
        update(attrs=BASE + "c0 08 03 fc0000", nlri=NLRI),
        "001b 03 03 05 c00803fc0000",
        T,
    ),
    Case(
        "3/5 COMMUNITIES of 0 octets (RFC 7606 7.8)",
        update(attrs=BASE + "c0 08 00", nlri=NLRI),
        "0018 03 03 05 c00800",
        T,
    ),
    Case(
        "3/5 LARGE_COMMUNITY of 13 octets (RFC 8092 6)",
        update(attrs=BASE + "c0 20 0d 0000fc00000000010000000200", nlri=NLRI),
        "0025 03 03 05 c0200d 0000fc00000000010000000200",
        T,
    ),
    Case(
        "3/5 EXTENDED_COMMUNITIES of 7 octets (RFC 7606 7.14)",
        update(attrs=BASE + "c0 10 07 00020000000001", nlri=NLRI),
        "001f 03 03 05 c01007 00020000000001",
        T,
    ),
    Case(
        "3/5 ORIGINATOR_ID of 3 octets (RFC 7606 7.9)",
        update(attrs=BASE + "80 09 03 010203", nlri=NLRI),
        "001b 03 03 05 800903010203",
        T,
    ),
    Case(
        "3/5 CLUSTER_LIST of 0 octets (RFC 7606 7.10)",
        update(attrs=BASE + "80 0a 00", nlri=NLRI),
        "0018 03 03 05 800a00",
        T,
    ),
    Case(
        "3/5 ATOMIC_AGGREGATE of 1 octet: attribute discard (RFC 7606 7.6)",
        update(attrs=BASE + "40 06 01 00", nlri=NLRI),
        "0019 03 03 05 40060100",
        D,
    ),
    Case(
        "3/5 AGGREGATOR of 7 octets: attribute discard (RFC 7606 7.7)",
        update(attrs=BASE + "c0 07 07 0000fc00c0a800", nlri=NLRI),
        "001f 03 03 05 c00707 0000fc00c0a800",
        D,
    ),
    Case(
        "3/5 AGGREGATOR of 8 octets on a 2-octet session: attribute discard",
        update(attrs=ORIGIN + AS_PATH + NEXT_HOP + "c0 07 08 0000fc00c0a80050", nlri=NLRI),
        "0020 03 03 05 c00708 0000fc00c0a80050",
        D,
        OLD,
    ),
    Case(
        "3/5 AS4_AGGREGATOR of 6 octets: attribute discard (RFC 6793 6)",
        update(attrs=BASE + "c0 12 06 fc00c0a80050", nlri=NLRI),
        "001e 03 03 05 c01206 fc00c0a80050",
        D,
        OLD,
    ),
    Case(
        "3/6 ORIGIN value 3",
        update(attrs="40 01 01 03" + AS_PATH + NEXT_HOP, nlri=NLRI),
        "0019 03 03 06 40010103",
        T,
    ),
    Case(
        "3/8 NEXT_HOP 0.0.0.0",
        update(attrs=ORIGIN + AS_PATH + "40 03 04 00000000", nlri=NLRI),
        "001c 03 03 08 40030400000000",
        T,
    ),
    Case(
        "3/8 NEXT_HOP multicast",
        update(attrs=ORIGIN + AS_PATH + "40 03 04 e0000001", nlri=NLRI),
        "001c 03 03 08 400304e0000001",
        T,
    ),
    Case(
        "3/9 AGGREGATOR AS 0: attribute discard (RFC 7607)",
        update(attrs=BASE + "c0 07 08 00000000c0a80050", nlri=NLRI),
        "0020 03 03 09 c00708 00000000c0a80050",
        D,
    ),
    Case(
        "3/9 AS4_PATH with an empty segment: attribute discard (RFC 6793 6)",
        update(attrs=BASE + "c0 11 02 0200", nlri=NLRI),
        "001a 03 03 09 c0110202 00",
        D,
        OLD,
    ),
    Case(
        "3/9 MP_REACH_NLRI next hop of 8 octets: reset (RFC 7606 7.11)",
        update(attrs="80 0e 0e 0002 01 08 fd00000000000080 00 00" + ORIGIN + AS_PATH),
        "0026 03 03 09 800e0e 000201 08 fd00000000000080 00 00",
    ),
    Case(
        "3/9 MP_REACH_NLRI prefix longer than 128 bits: reset (RFC 7606 5.3)",
        update(
            attrs="80 0e 17 0002 01 10 fd000000000000000000000000000080 00 81 ff" + ORIGIN + AS_PATH
        ),
        "002f 03 03 09 800e17 000201 10 fd000000000000000000000000000080 00 81ff",
    ),
    Case(
        "3/9 MP_UNREACH_NLRI add-path entry truncated: reset",
        update(attrs="80 0f 05 0002 01 0000"),
        "001d 03 03 09 800f05 0002010000",
        ctx=ADDPATH,
    ),
    Case(
        "3/10 NLRI prefix length 33",
        update(attrs=BASE, nlri="21 0a000000 00"),
        "0015 03 03 0a",
    ),
    Case(
        "3/10 NLRI prefix runs past the message",
        update(attrs=BASE, nlri="1a 0af4"),
        "0015 03 03 0a",
    ),
    Case(
        "3/10 withdrawn prefix length 33 (RFC 7606 3i)",
        update(withdrawn="21 0a000000 00"),
        "0015 03 03 0a",
    ),
    Case(
        "3/10 add-path NLRI truncated",
        update(attrs=BASE, nlri="000000"),
        "0015 03 03 0a",
        ctx=ADDPATH,
    ),
    Case(
        "3/11 AS_PATH segment type 5",
        update(attrs=ORIGIN + "40 02 06 05 01 0000fc00" + NEXT_HOP, nlri=NLRI),
        "001e 03 03 0b 400206 0501 0000fc00",
        T,
    ),
    Case(
        "3/11 AS_PATH empty segment",
        update(attrs=ORIGIN + "40 02 02 0200" + NEXT_HOP, nlri=NLRI),
        "001a 03 03 0b 4002020200",
        T,
    ),
    Case(
        "3/11 AS_PATH segment overruns",
        update(attrs=ORIGIN + "40 02 06 02 02 0000fc00" + NEXT_HOP, nlri=NLRI),
        "001e 03 03 0b 400206 0202 0000fc00",
        T,
    ),
    Case(
        "3/11 AS_PATH segment underrun",
        update(attrs=ORIGIN + "40 02 07 02 01 0000fc00 02" + NEXT_HOP, nlri=NLRI),
        "001f 03 03 0b 400207 0201 0000fc00 02",
        T,
    ),
    Case(
        "3/11 AS_PATH 2-octet read on a 2-octet session",
        update(attrs=ORIGIN + "40 02 04 02 02 fc00" + NEXT_HOP, nlri=NLRI),
        "001c 03 03 0b 400204 0202 fc00",
        T,
        OLD,
    ),
    Case(
        "3/11 AS_PATH containing AS 0 (RFC 7607)",
        update(attrs=ORIGIN + "40 02 06 02 01 00000000" + NEXT_HOP, nlri=NLRI),
        "001e 03 03 0b 400206 0201 00000000",
        T,
    ),
    # ------------------------------------------------ RFC 7606 structural outcomes
    Case(
        "attribute overruns the list: treat-as-withdraw (RFC 7606 4)",
        update(attrs=BASE + "c0 08 08 fc000064", nlri=NLRI),
        "0015 03 03 01",
        T,
    ),
    Case(
        "attribute header truncated: treat-as-withdraw (RFC 7606 4)",
        update(attrs=BASE + "c0 08", nlri=NLRI),
        "0015 03 03 01",
        T,
    ),
    Case(
        "MP_REACH_NLRI overruns the list: reset (RFC 7606 3j)",
        update(attrs=ORIGIN + AS_PATH + "80 0e 30 0002 01 10"),
        "0015 03 03 01",
    ),
    Case(
        "MP_UNREACH_NLRI twice: reset (RFC 7606 3g)",
        update(attrs="80 0f 03 000201 80 0f 03 000201"),
        "0015 03 03 01",
    ),
    Case(
        "ORIGIN twice: later copy discarded (RFC 7606 3g)",
        update(attrs=BASE + "40 01 01 02", nlri=NLRI),
        "0015 03 03 01",
        D,
    ),
    Case(
        "treat-as-withdraw without reachable NLRI becomes a reset (RFC 7606 5.2)",
        update(withdrawn=NLRI, attrs="40 01 01 07" + AS_PATH),
        "0019 03 03 06 40010107",
    ),
    Case(
        "LOCAL_PREF from an external peer discarded (RFC 7606 7.5)",
        update(attrs=BASE, nlri=NLRI),
        "001c 03 03 00 40050400000064",
        D,
        EBGP,
    ),
    # ------------------------------------------------------------ RFC 7313 5
    Case(
        "7/1 ROUTE-REFRESH of 24 octets: data is the whole message",
        frame(5, h("0001 00 01 00")),
        "002d 03 07 01" + MARKER + "0018 05 0001000100",
    ),
]


def error_of(case: Case) -> BgpError:
    """The error the input raises, else the first RFC 7606 error recorded on the UPDATE."""
    try:
        message = decode_message(case.message, case.ctx)
    except BgpError as exc:
        return exc
    assert isinstance(message, Update), f"{case.name}: decoded without error"
    assert message.errors, f"{case.name}: decoded without error"
    return message.errors[0]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_notification_bytes(case: Case) -> None:
    error = error_of(case)
    got = Notification.from_error(error).encode(case.ctx)
    assert got.hex() == h(MARKER + case.notification).hex(), error.describe()
    assert error.action is case.action
    assert error.reason  # a clear word on what is wrong
    # the NOTIFICATION itself decodes again
    again = decode_message(got, case.ctx)
    assert isinstance(again, Notification) and (again.code, again.subcode) == (
        error.code,
        error.subcode,
    )


@pytest.mark.parametrize("case", [c for c in CASES if c.action is not R], ids=lambda c: c.name)
def test_soft_errors_leave_a_usable_update(case: Case) -> None:
    """RFC 7606: treat-as-withdraw keeps the NLRI known, attribute-discard keeps the route."""
    message = decode_message(case.message, case.ctx)
    assert isinstance(message, Update)
    assert message.treat_as_withdraw is (case.action is T)
    assert message.nlri or message.attribute(14), "the NLRI must be known to withdraw them"
    assert message.end_of_rib() is None


def test_discarded_attributes_are_left_out_and_the_rest_kept() -> None:
    message = decode_message(
        update(attrs=BASE + "40 06 01 00" + "40 01 01 02", nlri=NLRI), DEFAULT_CONTEXT
    )
    assert isinstance(message, Update)
    assert [a.type_code for a in message.attributes] == [1, 2, 3, 5]
    assert message.attribute(1) == OriginAttr(Origin.IGP)  # the first ORIGIN wins
    assert {e.action for e in message.errors} == {D}
    assert not message.treat_as_withdraw


def test_treat_as_withdraw_keeps_mp_reach_nlri_to_withdraw() -> None:
    message = decode_message(update(attrs=MP_REACH + "40 01 01 09" + AS_PATH), DEFAULT_CONTEXT)
    assert isinstance(message, Update) and message.treat_as_withdraw
    mp = message.attribute(14)
    assert isinstance(mp, MpReachAttr) and [str(n.prefix) for n in mp.nlri] == [
        "fd00:10:244:42::/64"
    ]


def test_external_peer_local_pref_is_dropped_internal_kept() -> None:
    data = update(attrs=BASE, nlri=NLRI)
    internal = decode_message(data, DEFAULT_CONTEXT)
    external = decode_message(data, EBGP)
    assert isinstance(internal, Update) and isinstance(external, Update)
    assert internal.attribute(5) == LocalPrefAttr(100) and not internal.errors
    assert external.attribute(5) is None and not external.treat_as_withdraw


def test_notification_shorter_than_two_octets_is_a_length_error() -> None:
    with pytest.raises(BgpError) as caught:
        Notification.decode_body(b"\x06", DEFAULT_CONTEXT)
    assert (caught.value.code, caught.value.subcode, caught.value.data) == (1, 2, h("0014"))


def test_update_body_shorter_than_four_octets_is_malformed() -> None:
    for body in (b"", b"\x00", b"\x00\x00\x00"):
        with pytest.raises(BgpError) as caught:
            Update.decode_body(body, DEFAULT_CONTEXT)
        assert (caught.value.code, caught.value.subcode) == (3, 1)


def test_route_refresh_data_is_cut_to_fit_a_notification() -> None:
    long = frame(5, h("0001 00 01") + bytes(5000))
    with pytest.raises(BgpError) as caught:
        decode_message(long, EXTENDED)
    assert caught.value.data == long  # the error keeps the whole message
    note = Notification.from_error(caught.value)
    assert len(note.encode(DEFAULT_CONTEXT)) == 4096
    assert note.data == long[:MAX_NOTIFICATION_DATA]


def test_extended_messages_admit_long_updates_only_when_negotiated() -> None:
    attrs = BASE + "d0 08 1040" + "fc000001" * 1040  # COMMUNITIES, extended length
    long = update(attrs=attrs, nlri=NLRI)
    assert len(long) > 4096
    message = decode_message(long, EXTENDED)
    assert isinstance(message, Update) and message.encode(EXTENDED) == long
    with pytest.raises(BgpError) as caught:
        decode_message(long, DEFAULT_CONTEXT)
    assert (caught.value.code, caught.value.subcode) == (1, 2)
    assert caught.value.data == long[16:18]


# ------------------------------------------------------------ RFC 9003, Cease


def test_cease_with_shutdown_communication_bytes() -> None:
    note = Notification.cease(CeaseSubcode.ADMINISTRATIVE_SHUTDOWN, "maintenance")
    assert (
        note.encode(DEFAULT_CONTEXT).hex()
        == h(MARKER + "0021 03 06 02 0b" + b"maintenance".hex()).hex()
    )
    assert note.shutdown_message == "maintenance"
    reset = Notification.cease(CeaseSubcode.ADMINISTRATIVE_RESET, "r\u00e9")
    assert reset.encode(DEFAULT_CONTEXT).hex() == h(MARKER + "0019 03 06 04 03 72c3a9").hex()
    # other Cease subcodes carry no communication
    assert Notification.cease(CeaseSubcode.PEER_DECONFIGURED, "x").data == b""


def test_shutdown_communication_is_cut_to_255_octets_on_a_character_boundary() -> None:
    note = Notification.cease(CeaseSubcode.ADMINISTRATIVE_SHUTDOWN, "\u20ac" * 100)  # 3 octets each
    assert note.data[0] == 255 and len(note.data) == 256
    assert note.shutdown_message == "\u20ac" * 85
    two = Notification.cease(CeaseSubcode.ADMINISTRATIVE_SHUTDOWN, "a" + "\u00e9" * 200)
    assert two.data[0] == 255 and two.shutdown_message == "a" + "\u00e9" * 127


def test_received_shutdown_communications() -> None:
    decoded = decode_message(h(MARKER + "0019 03 06 02 03 627965"), DEFAULT_CONTEXT)
    assert isinstance(decoded, Notification) and decoded.shutdown_message == "bye"
    overrun = decode_message(h(MARKER + "0019 03 06 02 09 627965"), DEFAULT_CONTEXT)
    assert isinstance(overrun, Notification) and overrun.shutdown_message is None
    plain = decode_message(h(MARKER + "0015 03 06 02"), DEFAULT_CONTEXT)
    assert isinstance(plain, Notification) and plain.shutdown_message is None
    assert "bye" in decoded.describe()


def test_cease_maximum_prefixes_data() -> None:
    from speaker.wire.enums import Afi, Safi

    note = Notification.cease_max_prefixes(Afi.IPV4, Safi.UNICAST, 1000)
    assert note.encode(DEFAULT_CONTEXT).hex() == h(MARKER + "001c 03 06 01 0001 01 000003e8").hex()
    again = decode_message(note.encode(DEFAULT_CONTEXT), DEFAULT_CONTEXT)
    assert isinstance(again, Notification) and again.max_prefixes == (Afi.IPV4, Safi.UNICAST, 1000)


# ------------------------------------------------------------ good inputs near the edges


def test_hold_times_zero_and_three_are_accepted() -> None:
    for hold in (0, 3):
        message = decode_message(open_message(hold=hold), DEFAULT_CONTEXT)
        assert isinstance(message, Open) and message.hold_time == hold


def test_rfc9072_extended_optional_parameters() -> None:
    # Non-Ext OP Len 255, Non-Ext OP Type 255, Extended Opt. Parm. Length, then params with
    # 2-octet lengths (RFC 9072 2)
    data = frame(1, h("04 fc00 005a c0a80051 ff ff 0009 02 0006 01 04 0001 0001"))
    message = decode_message(data, DEFAULT_CONTEXT)
    assert isinstance(message, Open) and message.extended_parameters
    assert [c.code for c in message.capabilities] == [1]
    assert message.encode(DEFAULT_CONTEXT) == data
    # parameters that do not fit the short form switch to the long one when encoding
    many = tuple(CapabilitiesParameter((UnknownCapability(0x80 + i, b""),)) for i in range(70))
    big = Open(4, 64512, 90, message.bgp_id, many)
    encoded = big.encode(DEFAULT_CONTEXT)
    assert encoded[28:32] == h("ff ff 015e")  # 70 parameters of 3 + 2 octets
    assert decode_message(encoded, DEFAULT_CONTEXT) == Open(
        4, 64512, 90, message.bgp_id, many, extended_parameters=True
    )


def test_unknown_optional_attributes_are_kept_and_propagated_with_partial() -> None:
    transitive = "c0 c8 02 abcd"
    non_transitive = "80 c9 01 ef"
    message = decode_message(
        update(attrs=BASE + transitive + non_transitive, nlri=NLRI), DEFAULT_CONTEXT
    )
    assert isinstance(message, Update) and not message.errors
    kept = [a for a in message.attributes if isinstance(a, UnknownAttr)]
    assert [(a.type_code, a.value, a.flags) for a in kept] == [
        (200, h("abcd"), 0xC0),
        (201, h("ef"), 0x80),
    ]
    passed = kept[0].for_propagation()
    assert passed is not None and passed.partial and passed.value == h("abcd")
    assert passed.encode(DEFAULT_CONTEXT) == h("e0 c8 02 abcd")
    assert not kept[0].partial  # the received one is unchanged
    assert kept[1].for_propagation() is None  # non-transitive: not passed on (RFC 4271 5)
    already = UnknownAttr(unknown_type=200, value=b"", flags=0xE0)
    assert already.for_propagation() is already
    assert message.encode(DEFAULT_CONTEXT) == update(
        attrs=BASE + transitive + non_transitive, nlri=NLRI
    )


def test_route_refresh_unknown_subtype_is_kept() -> None:
    message = decode_message(frame(5, h("0001 07 01")), DEFAULT_CONTEXT)
    assert isinstance(message, RouteRefresh) and message.subtype == 7
    assert message.encode(DEFAULT_CONTEXT) == frame(5, h("0001 07 01"))


def test_cached_errors_are_fresh_each_time() -> None:
    """An interned malformed attribute must not hand out one exception object forever."""
    data = update(attrs="40 01 01 03" + AS_PATH + NEXT_HOP, nlri=NLRI)
    first = decode_message(data, DEFAULT_CONTEXT)
    second = decode_message(data, DEFAULT_CONTEXT)
    assert isinstance(first, Update) and isinstance(second, Update)
    assert first.errors[0] is not second.errors[0]
    assert first.errors[0].__traceback__ is None
    bad = update(attrs=BASE + "40 63 01 aa", nlri=NLRI)
    errors = []
    for _ in range(3):
        with pytest.raises(BgpError) as caught:
            decode_message(bad, DEFAULT_CONTEXT)
        errors.append(caught.value)
    assert len({id(e) for e in errors}) == 3


@pytest.mark.parametrize(
    ("attr", "mp_type", "family"),
    [
        ("80 0e 09 0001 80 04 c0a80050 00", 14, (1, 128)),  # VPNv4 MP_REACH
        ("80 0e 09 4001 01 04 c0a80050 00", 14, (0x4001, 1)),  # an AFI nobody assigned
        ("80 0f 03 0001 80", 15, (1, 128)),  # VPNv4 MP_UNREACH (its End-of-RIB)
    ],
)
def test_mp_attribute_of_a_family_we_do_not_decode_is_valid(
    attr: str, mp_type: int, family: tuple[int, int]
) -> None:
    """Hardening #3: valid BGP (RFC 4760), not a 3/9: kept undecoded, no error."""
    message = decode_message(update(attrs=attr + ORIGIN + AS_PATH), DEFAULT_CONTEXT)
    assert isinstance(message, Update)
    assert message.errors == ()
    (mp,) = [a for a in message.attributes if a.type_code == mp_type]
    assert isinstance(mp, UndecodedMpAttr)
    assert (mp.afi, mp.safi) == family
    assert mp.encode(DEFAULT_CONTEXT) == h(attr)  # kept as received
    assert message.end_of_rib() is None


def test_the_framings_update_header_test_accepts_exactly_what_check_header_does() -> None:
    """``update_length`` lets the session skip :func:`check_header` for an UPDATE: it must
    give the length only where check_header returns (length, 2), at any offset, for any
    context, and 0 elsewhere."""
    rng = random.Random(7)
    contexts = (Negotiated(), Negotiated(max_message_size=65535))
    lengths = (0, 18, 19, 22, 23, 24, 60, 4096, 4097, 65535)
    for _ in range(3000):
        marker = bytes.fromhex(MARKER)
        if rng.random() < 0.2:
            marker = rng.randbytes(16)
        length = rng.choice(lengths) if rng.random() < 0.7 else rng.randrange(65536)
        mtype = rng.choice((2, 2, 2, 1, 3, 4, 5, 0, 6, 255))
        pad = rng.randbytes(rng.randrange(3))
        data = pad + marker + length.to_bytes(2, "big") + bytes((mtype,)) + b"\0" * 4
        ctx = rng.choice(contexts)
        try:
            accepted = check_header(data[len(pad) : len(pad) + 19], ctx) == (length, 2)
        except BgpError:
            accepted = False
        expected = length if accepted else 0
        assert update_length(data, len(pad), ctx) == expected, (data.hex(), ctx)
