"""Known octets for each wire object this speaker must read and write, and the packers."""

from __future__ import annotations

import ipaddress
from math import ceil

import pytest

from speaker.wire import (
    DEFAULT_CONTEXT,
    IPV4_UNICAST,
    IPV6_UNICAST,
    AggregatorAttr,
    As4AggregatorAttr,
    As4PathAttr,
    AsPathAttr,
    AsPathSegment,
    BgpError,
    ErrorAction,
    GracefulRestartCapability,
    LocalPrefAttr,
    LocalProtocolError,
    MedAttr,
    MpReachAttr,
    MpUnreachAttr,
    Negotiated,
    NextHopAttr,
    Nlri,
    Notification,
    Open,
    OriginAttr,
    Prefix,
    RouteRefresh,
    UnknownCapability,
    Update,
    decode_message,
    pack_updates,
    pack_withdrawals,
    split_messages,
)
from speaker.wire.attributes import decode_attribute, decode_attributes
from speaker.wire.capabilities import GracefulRestartFlags
from speaker.wire.enums import Afi, AsPathSegmentType, Origin, Safi
from speaker.wire.nlri import encode_prefix

MARKER = "ff" * 16
OLD = Negotiated(asn4=False)
ADDPATH = Negotiated(
    addpath_receive=frozenset({IPV4_UNICAST, IPV6_UNICAST}),
    addpath_send=frozenset({IPV4_UNICAST, IPV6_UNICAST}),
)


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def message(mtype: int, body: str) -> bytes:
    raw = h(body)
    return h(MARKER) + (19 + len(raw)).to_bytes(2, "big") + bytes((mtype,)) + raw


def update_message(withdrawn: str = "", attrs: str = "", nlri: str = "") -> bytes:
    w, a = h(withdrawn), h(attrs)
    body = len(w).to_bytes(2, "big") + w + len(a).to_bytes(2, "big") + a + h(nlri)
    return message(2, body.hex())


def roundtrip(data: bytes, ctx: Negotiated = DEFAULT_CONTEXT) -> object:
    decoded = decode_message(data, ctx)
    assert decoded.encode(ctx) == data
    return decoded


# ---------------------------------------------------------------------------- UPDATE contents

BASE = "40 01 01 00" + "40 02 00" + "40 03 04 c0a80050"


def test_confederation_segments() -> None:
    # AS_CONFED_SEQUENCE (65010 65011), AS_CONFED_SET [65012], AS_SEQUENCE 64512, AS_SET {1 2}
    path = "40 02 20 03 02 0000fdf2 0000fdf3 04 01 0000fdf4 02 01 0000fc00 01 02 00000001 00000002"
    update = roundtrip(update_message(attrs="40 01 01 00" + path + "40 03 04 c0a80050"))
    assert isinstance(update, Update)
    attr = update.attribute(2)
    assert isinstance(attr, AsPathAttr)
    assert attr.segments == (
        AsPathSegment(AsPathSegmentType.AS_CONFED_SEQUENCE, (65010, 65011)),
        AsPathSegment(AsPathSegmentType.AS_CONFED_SET, (65012,)),
        AsPathSegment(AsPathSegmentType.AS_SEQUENCE, (64512,)),
        AsPathSegment(AsPathSegmentType.AS_SET, (1, 2)),
    )
    assert attr.length == 2  # confederation segments count 0, a set counts 1 (RFC 5065 5.3)
    assert str(attr) == "(65010 65011) [65012] 64512 {1 2}"


def test_two_octet_session_with_as4_path_and_as4_aggregator() -> None:
    attrs = (
        "40 01 01 00"
        "40 02 08 02 03 fde9 5ba0 fded"  # 65001 AS_TRANS 65005
        "40 03 04 0a000101"
        "c0 07 06 5ba0 0a000109"  # AGGREGATOR AS_TRANS 10.0.1.9
        "c0 11 0e 02 03 0000fde9 fa56ea09 0000fded"  # AS4_PATH 65001 4200000009 65005
        "c0 12 08 fa56ea09 0a000109"  # AS4_AGGREGATOR 4200000009 10.0.1.9
    )
    data = message(2, "0000 003b" + attrs + "18 cb0071")
    update = roundtrip(data, OLD)
    assert isinstance(update, Update)
    assert update.attribute(2) == AsPathAttr(
        (AsPathSegment(AsPathSegmentType.AS_SEQUENCE, (65001, 23456, 65005)),)
    )
    assert update.attribute(7) == AggregatorAttr(23456, ipaddress.IPv4Address("10.0.1.9"))
    assert update.attribute(17) == As4PathAttr(
        (AsPathSegment(AsPathSegmentType.AS_SEQUENCE, (65001, 4200000009, 65005)),)
    )
    assert update.attribute(18) == As4AggregatorAttr(4200000009, ipaddress.IPv4Address("10.0.1.9"))
    # a 4-octet AS written on a 2-octet session becomes AS_TRANS (RFC 6793 4.2.2)
    wide = AsPathAttr((AsPathSegment(AsPathSegmentType.AS_SEQUENCE, (4200000009,)),))
    assert wide.encode(OLD) == h("40 02 04 02 01 5ba0")
    assert AggregatorAttr(4200000009, ipaddress.IPv4Address(1)).encode(OLD) == h(
        "c0 07 06 5ba0 00000001"
    )


def test_ipv6_mp_reach_with_global_and_link_local_next_hop() -> None:
    reach = (
        "80 0e 2e 0002 01 20"
        " 20010db8000000000000000000000001 fe800000000000000000000000000001"  # RFC 2545 3
        " 00 40 20010db800010002"  # 2001:db8:1:2::/64
    )
    data = update_message(attrs=reach + "40 01 01 00" + "40 02 00" + "80 04 04 00000000")
    update = roundtrip(data)
    assert isinstance(update, Update) and not update.errors
    mp = update.attribute(14)
    assert isinstance(mp, MpReachAttr)
    assert mp.global_next_hop == ipaddress.IPv6Address("2001:db8::1")
    assert mp.link_local_next_hop == ipaddress.IPv6Address("fe80::1")
    assert mp.nlri == (Nlri(Prefix.parse("2001:db8:1:2::/64")),)
    assert update.families() == (IPV6_UNICAST,)
    # no IPv4 NLRI, so no NEXT_HOP is needed (RFC 4760 7)
    assert update.attribute(3) is None


def test_ipv4_nlri_over_an_ipv6_next_hop() -> None:
    # RFC 8950: AFI 1 with a 16-octet next hop
    reach = "80 0e 19 0001 01 10 20010db8000000000000000000000001 00 18 c00002"
    data = update_message(attrs=reach + "40 01 01 00" + "40 02 00")
    update = roundtrip(data)
    assert isinstance(update, Update)
    mp = update.attribute(14)
    assert isinstance(mp, MpReachAttr) and mp.afi is Afi.IPV4
    assert mp.next_hops == (ipaddress.IPv6Address("2001:db8::1"),)
    assert mp.link_local_next_hop is None


def test_end_of_rib_markers() -> None:
    ipv4 = message(2, "0000 0000")
    ipv6 = message(2, "0000 0006 800f03 000201")
    for data, family in ((ipv4, IPV4_UNICAST), (ipv6, IPV6_UNICAST)):
        update = roundtrip(data)
        assert isinstance(update, Update) and update.end_of_rib() == family
        assert Update.end_of_rib_marker(family).encode(DEFAULT_CONTEXT) == data
    withdrawal = roundtrip(
        message(
            2,
            "0000 0008 800f05 000201 0800",
        ),
        DEFAULT_CONTEXT,
    )
    assert isinstance(withdrawal, Update) and withdrawal.end_of_rib() is None
    assert withdrawal.families() == (IPV6_UNICAST,)


def test_mp_unreach_with_add_path() -> None:
    data = update_message(attrs="800f10 000201 00000007 40 20010db800000000")
    update = roundtrip(data, ADDPATH)
    assert isinstance(update, Update)
    attr = update.attribute(15)
    assert isinstance(attr, MpUnreachAttr)
    assert attr.withdrawn == (Nlri(Prefix.parse("2001:db8::/64"), 7),)


def test_public_attribute_decoders() -> None:
    assert decode_attribute(0x40, 1, b"\x02", DEFAULT_CONTEXT) == OriginAttr(Origin.INCOMPLETE)
    assert decode_attribute(0x40, 5, b"\x00\x00\x00\x64", DEFAULT_CONTEXT) == LocalPrefAttr(100)
    with pytest.raises(BgpError) as caught:
        decode_attribute(0x40, 3, b"\x00\x00\x00\x00", DEFAULT_CONTEXT)
    assert caught.value.subcode == 8 and caught.value.action is ErrorAction.TREAT_AS_WITHDRAW
    attrs, errors, present, dropped = decode_attributes(bytes(bytearray(h(BASE))), DEFAULT_CONTEXT)
    assert [a.type_code for a in attrs] == [1, 2, 3] and errors == ()
    assert present == 0b1110 and dropped == 0
    assert decode_attributes(h(BASE), DEFAULT_CONTEXT)[0] is attrs  # interned list


def test_med_and_local_pref_are_built_inline_and_only_local_pref_interned() -> None:
    from speaker.wire import attributes

    attributes.clear_caches()
    base = h(BASE)
    med = h("80 04 04 00000457")
    pref = h("40 05 04 00000064")
    attrs, errors, present, _ = decode_attributes(base + med + pref, ADDPATH)
    assert attrs[3:] == (MedAttr(1111), LocalPrefAttr(100)) and errors == ()
    assert attrs[3].flags is None and attrs[4].flags is None and present == 0b111110
    assert med not in attributes._attr_caches[True]  # one value per route: nothing to share
    # one LOCAL_PREF for most routes: the next list (another MED) shares its object
    again = decode_attributes(base + h("80 04 04 00000458") + pref, ADDPATH)[0]
    assert again[4] is attrs[4] and again[3] == MedAttr(1112)
    cache = attributes._attr_caches[True]
    for size in range(attributes._ATTR_CACHE_LIMIT - len(cache)):  # a full cache is not grown
        cache[size.to_bytes(4, "big")] = attrs[0]
    other = decode_attributes(base + med + h("40 05 04 00000065"), ADDPATH)[0]
    assert other[4] == LocalPrefAttr(101) and h("40 05 04 00000065") not in cache
    assert len(cache) == attributes._ATTR_CACHE_LIMIT
    attributes.clear_caches()
    # other flags or lengths take the general path, which keeps or refuses them
    partial = decode_attributes(base + h("a0 04 04 00000457"), ADDPATH)[0][3]
    assert partial == MedAttr(1111) and partial.flags == 0xA0
    _, errors, _, dropped = decode_attributes(base + h("80 04 03 000004"), ADDPATH)
    assert dropped == 1 << 4 and errors[0].subcode == 5  # Attribute Length Error


def test_clean_update_is_not_treat_as_withdraw() -> None:
    update = decode_message(message(2, "0000 000e " + BASE + " 18 0a0000"), DEFAULT_CONTEXT)
    assert isinstance(update, Update) and update.errors == ()
    assert update.treat_as_withdraw is False


def test_update_error_action_is_the_strongest() -> None:
    # a discarded ATOMIC_AGGREGATE and a treat-as-withdraw ORIGIN
    data = message(2, "0000 0012 40 01 01 05 40 02 00 40 03 04 c0a80050 40 06 01 00 18 0a0000")
    update = decode_message(data, DEFAULT_CONTEXT)
    assert isinstance(update, Update)
    assert update.error_action is ErrorAction.TREAT_AS_WITHDRAW
    assert {e.action for e in update.errors} == {
        ErrorAction.TREAT_AS_WITHDRAW,
        ErrorAction.ATTRIBUTE_DISCARD,
    }
    clean = decode_message(update_message(attrs=BASE, nlri="18 0a0000"), DEFAULT_CONTEXT)
    assert isinstance(clean, Update) and clean.error_action is None


# ---------------------------------------------------------------------------- OPEN


def test_bird_open_with_four_octet_as_transition() -> None:
    caps = "02 06 41 04 fa56ea00"  # 4-octet AS 4200000000
    data = message(1, "04 5ba0 00f0 c0a80051 08" + caps)
    open_ = roundtrip(data)
    assert isinstance(open_, Open)
    assert open_.my_as == 23456 and open_.asn == 4200000000
    built = Open.build(4200000000, 240, ipaddress.IPv4Address("192.168.0.81"), open_.capabilities)
    assert built.encode(DEFAULT_CONTEXT) == data


def test_graceful_restart_restart_state_and_forwarding() -> None:
    data = message(1, "04 fc00 00f0 c0a80050 0a 02 08 40 06 8078 0001 01 80")
    open_ = roundtrip(data)
    assert isinstance(open_, Open)
    cap = open_.capability(GracefulRestartCapability.CODE)
    assert isinstance(cap, GracefulRestartCapability)
    assert cap.restarting and cap.restart_time == 120
    assert cap.forwarding_preserved(IPV4_UNICAST) is True
    assert cap.forwarding_preserved(IPV6_UNICAST) is None


# ---------------------------------------------------------------------------- packing


def _nlris(count: int, path_id: int | None = 1) -> list[Nlri]:
    return [Nlri(Prefix(Afi.IPV4, (10 << 24) + (i << 6), 26), path_id) for i in range(count)]


@pytest.mark.parametrize("size", [4096, 65535])
def test_pack_updates_fills_messages_and_reads_back(size: int) -> None:
    ctx = Negotiated(
        addpath_send=frozenset({IPV4_UNICAST}),
        addpath_receive=frozenset({IPV4_UNICAST}),
        max_message_size=size,
    )
    attrs = (
        OriginAttr(Origin.IGP),
        AsPathAttr(),
        NextHopAttr(ipaddress.IPv4Address("192.168.0.80")),
        LocalPrefAttr(100),
    )
    nlri = _nlris(5000)
    messages = pack_updates(attrs, nlri, ctx)
    room = size - 19 - 4 - 21  # header, two length fields, the attributes
    assert len(messages) == ceil(5000 / (room // 9))  # 9 octets per add-path /26
    assert all(len(m) <= size for m in messages)
    decoded = [decode_message(m, ctx) for m in messages]
    assert all(isinstance(u, Update) and u.attributes == attrs for u in decoded)
    assert [n for u in decoded for n in u.nlri] == nlri  # type: ignore[attr-defined]


def test_pack_withdrawals_reads_back_in_order() -> None:
    nlri = _nlris(1000, None)
    messages = pack_withdrawals(nlri, DEFAULT_CONTEXT)
    assert len(messages) == ceil(1000 * 5 / (4096 - 23))
    decoded = [decode_message(m, DEFAULT_CONTEXT) for m in messages]
    assert [n for u in decoded for n in u.withdrawn] == nlri  # type: ignore[attr-defined]
    assert pack_withdrawals([], DEFAULT_CONTEXT) == []


def test_pack_updates_refuses_attributes_that_leave_no_room() -> None:
    huge = (
        OriginAttr(Origin.IGP),
        AsPathAttr((AsPathSegment(AsPathSegmentType.AS_SEQUENCE, tuple(range(1, 1020))),)),
    )
    with pytest.raises(LocalProtocolError, match="no room"):
        pack_updates(huge, _nlris(1, None), DEFAULT_CONTEXT)


def test_split_messages_stops_at_an_incomplete_one() -> None:
    keepalive = message(4, "")
    update = message(2, "0000 0000")
    stream = bytearray(keepalive + update + update[:10])
    assert list(split_messages(stream, DEFAULT_CONTEXT)) == [(0, keepalive), (19, update)]
    with pytest.raises(BgpError):
        list(split_messages(b"\x00" * 19, DEFAULT_CONTEXT))


# ---------------------------------------------------------------------------- encoding errors


@pytest.mark.parametrize(
    "bad",
    [
        Open(4, 70000, 90, ipaddress.IPv4Address(1)),
        Notification(300),
        RouteRefresh(70000, Safi.UNICAST),
        Update(attributes=(AsPathAttr((AsPathSegment(AsPathSegmentType.AS_SEQUENCE, ()),)),)),
        Open.build(
            64512,
            90,
            ipaddress.IPv4Address(1),
            [GracefulRestartCapability(GracefulRestartFlags(0), 5000)],
        ),
        Open.build(64512, 90, ipaddress.IPv4Address(1), [UnknownCapability(200, bytes(300))]),
        Notification(6, 2, bytes(5000)),
    ],
    ids=lambda m: type(m).__name__,
)
def test_unencodable_messages_raise_local_protocol_error(bad: object) -> None:
    with pytest.raises(LocalProtocolError):
        bad.encode(DEFAULT_CONTEXT)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("afi", "addr", "length", "reason"),
    [
        (Afi.IPV4, 0, 33, "length 33 out of range"),
        (Afi.IPV6, 0, 129, "length 129 out of range"),
        (Afi.IPV4, 1 << 32, 8, "out of range for IPV4"),
        (Afi.IPV4, -1, 8, "out of range for IPV4"),
        (Afi.IPV4, 0x0A000001, 24, "host bits set"),
    ],
)
def test_a_prefix_that_cannot_be_encoded_cannot_be_made(
    afi: Afi, addr: int, length: int, reason: str
) -> None:
    with pytest.raises(ValueError, match=reason):
        Prefix(afi, addr, length)


def test_long_as_sequences_are_split_into_segments_of_255() -> None:
    path = AsPathAttr((AsPathSegment(AsPathSegmentType.AS_SEQUENCE, tuple(range(1, 301))),))
    wire = path.encode(DEFAULT_CONTEXT)
    assert wire[:4] == h("50 02 04b4")  # extended length: 2 * 2 + 300 * 4 octets
    again = decode_attribute(wire[0], 2, wire[4:], DEFAULT_CONTEXT)
    assert isinstance(again, AsPathAttr)
    assert [len(s.asns) for s in again.segments] == [255, 45]
    assert again.length == 300


def test_encode_prefix_keeps_only_the_prefix_octets() -> None:
    assert encode_prefix(Nlri(Prefix.parse("10.244.42.64/26"), 4), True) == h(
        "00000004 1a 0af42a40"
    )
    assert encode_prefix(Nlri(Prefix.parse("0.0.0.0/0")), False) == h("00")
    assert encode_prefix(Nlri(Prefix.parse("fd00:10:244:42::/122")), False) == h(
        "7a fd000010024400420000000000000000"
    )


def test_a_checked_update_says_whether_it_carries_mp_attributes() -> None:
    """``decode_checked_update`` tells the session, from the type codes it decoded, what a
    scan of the attributes' types would: MP_REACH/MP_UNREACH_NLRI present, decoded or not."""
    from speaker.wire.attributes import MP_ATTRIBUTE_TYPES, clear_caches
    from speaker.wire.messages import decode_checked_update

    clear_caches()
    v6 = Prefix.parse("2001:db8::/32")
    hop = (ipaddress.IPv6Address("2001:db8::1"),)
    plain = update_message(attrs=BASE + "80 04 04 00000001", nlri="18 0a0000")
    reach = MpReachAttr(Afi.IPV6, Safi.UNICAST, hop, (Nlri(v6),))
    messages = [
        plain,
        plain,  # the same attribute list again, found interned
        update_message(withdrawn="18 0a0000"),
        update_message(),  # End-of-RIB
        Update.end_of_rib_marker(IPV6_UNICAST).encode(DEFAULT_CONTEXT),
        Update(attributes=(OriginAttr(), AsPathAttr(()), reach)).encode(DEFAULT_CONTEXT),
        # VPNv4 (AFI 1 SAFI 128), kept undecoded
        update_message(attrs="80 0e 05 0001 80 00 00" + BASE),
        # an attribute discarded (RFC 7606: ATOMIC_AGGREGATE with a value)
        update_message(attrs=BASE + "40 06 01 00", nlri="18 0a0000"),
    ]
    found = []
    for data in messages:
        update, multiprotocol = decode_checked_update(data, DEFAULT_CONTEXT)
        assert update == decode_message(data, DEFAULT_CONTEXT)
        assert multiprotocol is not MP_ATTRIBUTE_TYPES.isdisjoint(map(type, update.attributes))
        found.append(multiprotocol)
    assert found == [False, False, False, False, True, True, True, False]


def _outcome(data: bytes, ctx: Negotiated) -> tuple[object, ...]:
    from speaker.wire.attributes import decode_new_attributes

    attrs, errors, present, dropped = decode_new_attributes(data, ctx)
    flags = [a.flags for a in attrs]
    found = [(e.code, e.subcode, e.data, e.action, e.reason) for e in errors]
    return attrs, flags, found, present, dropped


def test_a_list_led_by_the_last_lists_interned_attributes_decodes_as_walked() -> None:
    """The interned attributes leading a list not interned whole (ORIGIN, AS_PATH, NEXT_HOP
    before a MED per route) are kept as a lead: a list starting with those octets must decode
    exactly as one walked from its start, whatever follows (repeats, errors, MP attributes)."""
    from speaker.wire import attributes

    attributes.clear_caches()
    tails = [
        "80 04 04 00000001 40 05 04 00000064",
        "80 04 04 00000002 40 05 04 00000064",
        "80 04 04 00000003",
        "40 01 01 02 80 04 04 00000004",  # ORIGIN again: repeated, discarded (RFC 7606 3g)
        "80 04 04 00000005 40 06 01 00",  # ATOMIC_AGGREGATE with a value: discarded
        "80 0f 03 0002 01",  # MP_UNREACH_NLRI (read with the add-path setting)
        "c0 63 02 abcd 80 04 04 00000006",  # an unknown attribute, then interned
        "",
    ]
    ebgp = Negotiated(ebgp=True)
    lead = h(BASE)
    for ctx in (DEFAULT_CONTEXT, ADDPATH, ebgp, OLD):
        for tail in tails * 2:
            data = lead + h(tail)
            led = _outcome(data, ctx)
            attributes._leads[:] = [None] * len(attributes._leads)
            assert led == _outcome(data, ctx), (tail, ctx)
            walked = _outcome(data, ctx)  # and after a walk, led again
            assert led == walked
    # the lead: the interned attributes before the first one that is not
    attributes.clear_caches()
    for _ in range(2):
        _outcome(lead + h(tails[0]), DEFAULT_CONTEXT)
    octets, attrs, bits = attributes._leads[DEFAULT_CONTEXT.attribute_cache] or (b"", (), 0)
    assert octets == lead and [a.type_code for a in attrs] == [1, 2, 3] and bits == 0b1110
    assert attributes._leads.count(None) == len(attributes._leads) - 1
    attributes.clear_caches()
    assert attributes._leads.count(None) == len(attributes._leads)
