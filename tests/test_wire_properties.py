"""Property tests: generated messages round-trip under random contexts, and any byte string
decodes to a message or to a BgpError carrying a well-formed NOTIFICATION, never anything else.
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from speaker.kernel.model import network_key, prefix_key
from speaker.pcap import read_capture
from speaker.wire import (
    IPV4_UNICAST,
    IPV6_UNICAST,
    AddPathCapability,
    AggregatorAttr,
    As4AggregatorAttr,
    As4PathAttr,
    AsPathAttr,
    AsPathSegment,
    AtomicAggregateAttr,
    BgpError,
    Capability,
    ClusterListAttr,
    CommunitiesAttr,
    EnhancedRouteRefreshCapability,
    ExtendedCommunitiesAttr,
    ExtendedMessageCapability,
    ExtendedNextHopCapability,
    FourOctetAsCapability,
    GracefulRestartCapability,
    Keepalive,
    LargeCommunitiesAttr,
    LocalPrefAttr,
    LocalProtocolError,
    LongLivedGracefulRestartCapability,
    MedAttr,
    Message,
    MpReachAttr,
    MpUnreachAttr,
    MultiprotocolCapability,
    Negotiated,
    NextHopAttr,
    Nlri,
    Notification,
    Open,
    OriginatorIdAttr,
    OriginAttr,
    PathAttribute,
    Prefix,
    RouteRefresh,
    RouteRefreshCapability,
    UnknownAttr,
    UnknownCapability,
    Update,
    decode_message,
    split_messages,
)
from speaker.wire.attributes import ATTRIBUTES
from speaker.wire.capabilities import CAPABILITIES, FamilyFlags, GracefulRestartFlags
from speaker.wire.enums import SUBCODES, Afi, AsPathSegmentType, Origin, Safi
from speaker.wire.messages import MARKER, CapabilitiesParameter
from speaker.wire.nlri import (
    V6_FLAG,
    decode_prefixes,
    encode_prefix,
    encode_prefixes,
    prefix_order,
)

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---------------------------------------------------------------------------- contexts

families = st.sampled_from([IPV4_UNICAST, IPV6_UNICAST])
contexts = st.builds(
    Negotiated,
    asn4=st.booleans(),
    addpath_receive=st.frozensets(families),
    addpath_send=st.frozensets(families),
    max_message_size=st.sampled_from([4096, 65535]),
)


def mirror(ctx: Negotiated) -> Negotiated:
    """The receiver's context for what ``ctx``'s holder sends."""
    return ctx.reversed()


# ---------------------------------------------------------------------------- capabilities

u8 = st.integers(0, 255)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
afis = st.one_of(st.sampled_from(list(Afi)), u16)
safis = st.one_of(st.sampled_from(list(Safi)), u8)

capabilities: st.SearchStrategy[Capability] = st.one_of(
    st.builds(MultiprotocolCapability, afis, safis, u8),
    st.builds(RouteRefreshCapability),
    st.builds(ExtendedMessageCapability),
    st.builds(EnhancedRouteRefreshCapability),
    st.builds(
        ExtendedNextHopCapability, st.lists(st.tuples(afis, u16, afis), max_size=5).map(tuple)
    ),
    st.builds(
        GracefulRestartCapability,
        st.integers(0, 15).map(GracefulRestartFlags),
        st.integers(0, 0x0FFF),
        st.lists(st.tuples(afis, safis, u8.map(FamilyFlags)), max_size=5).map(tuple),
    ),
    st.builds(FourOctetAsCapability, st.integers(1, 0xFFFFFFFF)),
    st.builds(
        AddPathCapability,
        st.lists(st.tuples(afis, safis, st.integers(0, 3).map(int)), max_size=5).map(tuple),
    ),
    st.builds(
        LongLivedGracefulRestartCapability,
        st.lists(st.tuples(afis, safis, u8, st.integers(0, 0xFFFFFF)), max_size=5).map(tuple),
    ),
    st.builds(
        UnknownCapability,
        u8.filter(lambda c: c not in CAPABILITIES),
        st.binary(max_size=40),
    ),
)

opens = st.builds(
    Open,
    st.just(4),
    st.integers(1, 0xFFFF),
    st.one_of(st.just(0), st.integers(3, 0xFFFF)),
    st.integers(1, 0xFFFFFFFF).map(ipaddress.IPv4Address),
    st.lists(
        st.lists(capabilities, max_size=6).map(lambda c: CapabilitiesParameter(tuple(c))),
        max_size=3,
    ).map(tuple),
    st.booleans(),
)


@SETTINGS
@given(opens)
def test_open_round_trips(message: Open) -> None:
    ctx = Negotiated()
    data = message.encode(ctx)
    decoded = decode_message(data, ctx)
    assert isinstance(decoded, Open)
    # the long RFC 9072 form is also used when the parameters need it
    assert decoded == replace(message, extended_parameters=decoded.extended_parameters)
    assert decoded.extended_parameters >= message.extended_parameters
    assert decoded.encode(ctx) == data


# ---------------------------------------------------------------------------- NLRI


def prefixes(afi: Afi) -> st.SearchStrategy[Prefix]:
    bits = 32 if afi is Afi.IPV4 else 128
    return st.integers(0, bits).flatmap(
        lambda length: st.integers(0, (1 << bits) - 1).map(
            lambda addr: Prefix(afi, addr >> (bits - length) << (bits - length), length)
        )
    )


@SETTINGS
@given(st.sampled_from([Afi.IPV4, Afi.IPV6]).flatmap(prefixes))
def test_a_prefix_is_the_int_of_its_kernel_key_and_reads_back_its_fields(prefix: Prefix) -> None:
    """A Prefix is one int: its value is the kernel bridge's key (prefix_key), it hashes
    and compares as that int, and its family, address and length read back unchanged."""
    afi, addr, length = prefix.parts
    assert (prefix.afi, prefix.addr, prefix.length) == (afi, addr, length)
    assert Prefix(afi, addr, length) == prefix
    v6 = afi is Afi.IPV6
    key = prefix_key(addr, length, v6)
    assert int(prefix) == key and hash(prefix) == hash(key)
    assert network_key(prefix.network) == key
    assert {key: "route"}[prefix] == "route"
    assert Prefix.parse(str(prefix)) == prefix and Prefix.from_value(key) == prefix
    assert (prefix >= V6_FLAG) is v6
    assert type(Prefix.from_value(key)) is Prefix


@SETTINGS
@given(st.lists(st.sampled_from([Afi.IPV4, Afi.IPV6]).flatmap(prefixes), max_size=20))
def test_prefix_order_is_family_address_length(items: list[Prefix]) -> None:
    ordered = sorted(items, key=prefix_order)
    as_tuples = sorted((p.afi, p.addr, p.length) for p in items)
    assert [(p.afi, p.addr, p.length) for p in ordered] == as_tuples


@pytest.mark.parametrize("value", [0, -5, 1 << 33, V6_FLAG, V6_FLAG | 1 << 129 | 1 << 200])
def test_an_int_that_is_no_prefix_value_is_refused(value: int) -> None:
    with pytest.raises(ValueError, match="not a prefix value"):
        Prefix.from_value(value)


def nlris(afi: Afi, addpath: bool, max_size: int = 12) -> st.SearchStrategy[tuple[Nlri, ...]]:
    path_ids = u32 if addpath else st.none()
    return st.lists(st.builds(Nlri, prefixes(afi), path_ids), max_size=max_size).map(tuple)


@st.composite
def uniform_runs(draw: st.DrawFn) -> tuple[Afi, bool, tuple[Nlri, ...]]:
    """Many prefixes of one length: a packed UPDATE's NLRI (the decoder's fast path)."""
    afi = draw(st.sampled_from([Afi.IPV4, Afi.IPV6]))
    bits = 32 if afi is Afi.IPV4 else 128
    length = draw(st.integers(0, bits))
    addpath = draw(st.booleans())
    prefix = st.integers(0, (1 << bits) - 1).map(
        lambda a: Prefix(afi, a >> (bits - length) << (bits - length), length)
    )
    path_ids = u32 if addpath else st.none()
    items = draw(st.lists(st.builds(Nlri, prefix, path_ids), min_size=1, max_size=60))
    return afi, addpath, tuple(items)


@SETTINGS
@given(uniform_runs(), st.booleans())
def test_prefix_runs_round_trip(case: tuple[Afi, bool, tuple[Nlri, ...]], dirty: bool) -> None:
    afi, addpath, items = case
    data = encode_prefixes(items, addpath)
    if dirty:
        # trailing bits past the prefix length are irrelevant (RFC 4271 4.3): set them all
        head = 5 if addpath else 1
        size = (items[0].prefix.length + 7) >> 3
        step = head - 1 + 1 + size
        spare = (8 - items[0].prefix.length % 8) % 8
        raw = bytearray(data)
        for start in range(head + size - 1, len(raw), step):
            if size:
                raw[start] |= (1 << spare) - 1
        data = bytes(raw)
    assert decode_prefixes(data, afi, addpath) == items
    # the same entries one by one (the general loop) read the same
    singles = tuple(
        n for item in items for n in decode_prefixes(encode_prefix(item, addpath), afi, addpath)
    )
    assert singles == items


# ---------------------------------------------------------------------------- attributes

ipv4_hosts = (
    st.integers(1, 0xFFFFFFFE).map(ipaddress.IPv4Address).filter(lambda a: not a.is_multicast)
)
ipv4s = u32.map(ipaddress.IPv4Address)
ipv6s = st.integers(0, (1 << 128) - 1).map(ipaddress.IPv6Address)


def segments(width: int) -> st.SearchStrategy[tuple[AsPathSegment, ...]]:
    asn = st.integers(1, (1 << (8 * width)) - 1)
    return st.lists(
        st.builds(
            AsPathSegment,
            st.sampled_from(list(AsPathSegmentType)),
            st.lists(asn, min_size=1, max_size=20).map(tuple),
        ),
        max_size=4,
    ).map(tuple)


def partial_or_not(attr: PathAttribute) -> st.SearchStrategy[PathAttribute]:
    """The canonical flags, or with the Partial or Extended Length bit as a speaker may send."""
    canonical = int(attr.FLAGS)
    options = [None, canonical | 0x10]
    if canonical == 0xC0:
        options.append(canonical | 0x20)
    return st.sampled_from(options).map(lambda f: replace(attr, flags=f))


def attribute_strategies(ctx: Negotiated) -> list[st.SearchStrategy[PathAttribute]]:
    width = 4 if ctx.asn4 else 2
    v6_addpath = IPV6_UNICAST in ctx.addpath_send
    return [
        st.builds(OriginAttr, st.sampled_from(list(Origin))),
        st.builds(AsPathAttr, segments(width)),
        st.builds(NextHopAttr, ipv4_hosts),
        st.builds(MedAttr, u32),
        st.builds(LocalPrefAttr, u32),
        st.builds(AtomicAggregateAttr),
        st.builds(AggregatorAttr, st.integers(1, (1 << (8 * width)) - 1), ipv4s),
        st.builds(CommunitiesAttr, st.lists(u32, min_size=1, max_size=10).map(tuple)),
        st.builds(OriginatorIdAttr, ipv4s),
        st.builds(ClusterListAttr, st.lists(ipv4s, min_size=1, max_size=5).map(tuple)),
        st.builds(
            ExtendedCommunitiesAttr,
            st.lists(st.integers(0, (1 << 64) - 1), min_size=1, max_size=5).map(tuple),
        ),
        st.builds(
            LargeCommunitiesAttr,
            st.lists(st.tuples(u32, u32, u32), min_size=1, max_size=5).map(tuple),
        ),
        st.builds(As4PathAttr, segments(4).filter(bool)),
        st.builds(As4AggregatorAttr, st.integers(1, 0xFFFFFFFF), ipv4s),
        st.builds(
            MpReachAttr,
            st.just(Afi.IPV6),
            st.just(Safi.UNICAST),
            st.lists(ipv6s, min_size=1, max_size=2).map(tuple),
            nlris(Afi.IPV6, v6_addpath),
        ),
        st.builds(
            MpUnreachAttr,
            st.just(Afi.IPV6),
            st.just(Safi.UNICAST),
            nlris(Afi.IPV6, v6_addpath),
        ),
        st.builds(
            UnknownAttr,
            unknown_type=u8.filter(lambda t: t not in ATTRIBUTES),
            value=st.binary(max_size=300),
            flags=st.integers(0, 0xFF).map(lambda f: (f | 0x80) & 0xEF),
        ),
    ]


@st.composite
def updates(draw: st.DrawFn) -> tuple[Negotiated, Update]:
    ctx = draw(contexts)
    v4_addpath = IPV4_UNICAST in ctx.addpath_send
    chosen = draw(st.lists(st.sampled_from(attribute_strategies(ctx)), unique_by=id, max_size=17))
    attrs = []
    for strategy in chosen:
        attr = draw(strategy)
        if not isinstance(attr, (MpReachAttr, MpUnreachAttr, UnknownAttr)):
            attr = draw(partial_or_not(attr))
        attrs.append(attr)
    message = Update(
        withdrawn=draw(nlris(Afi.IPV4, v4_addpath)),
        attributes=tuple(attrs),
        nlri=draw(nlris(Afi.IPV4, v4_addpath)),
    )
    return ctx, message


@SETTINGS
@given(updates())
def test_update_round_trips(case: tuple[Negotiated, Update]) -> None:
    ctx, message = case
    try:
        data = message.encode(ctx)
    except LocalProtocolError:
        assume(False)  # larger than the context allows
    receiver = mirror(ctx)
    try:
        decoded = decode_message(data, receiver)
    except BgpError as exc:
        # only RFC 7606 5.2 may refuse a well-formed UPDATE: missing attributes without NLRI
        # cannot happen, so nothing should be raised here
        raise AssertionError(exc.describe()) from exc
    assert isinstance(decoded, Update)
    assert decoded == message
    assert decoded.encode(ctx) == data
    # flags as sent are kept (Partial, Extended Length).  The octet on the wire is the
    # attribute's flags plus Extended Length when its value needs it; a decoded attribute whose
    # flags are exactly that keeps None (the default), so compare what each side would send.
    def sent(a: PathAttribute) -> int:
        return a.wire_flags() | (0x10 if len(a.encode_value(ctx)) > 255 else 0)

    assert [sent(a) for a in decoded.attributes] == [sent(a) for a in message.attributes]
    # the only errors possible on well-formed attributes: missing mandatory ones
    for error in decoded.errors:
        assert (error.code, error.subcode) == (3, 3)


# ---------------------------------------------------------------------------- other messages

notifications = st.builds(Notification, u8, u8, st.binary(max_size=100))
refreshes = st.builds(RouteRefresh, afis, safis, u8)


@SETTINGS
@given(st.one_of(notifications, refreshes, st.builds(Keepalive)), contexts)
def test_notification_refresh_keepalive_round_trip(message: Message, ctx: Negotiated) -> None:
    data = message.encode(ctx)
    assert decode_message(data, ctx) == message
    assert [m for _, m in split_messages(data + data[:7], ctx)] == [data]


# ---------------------------------------------------------------------------- robustness


def assert_well_formed(error: BgpError) -> None:
    """Code 1..7, a subcode of that code's enum, and a NOTIFICATION that decodes again."""
    assert 1 <= error.code <= 7
    subcodes = SUBCODES[error.code]
    subcodes(error.subcode)  # raises ValueError if the subcode is not in the right enum
    note = Notification.from_error(error)
    for ctx in (Negotiated(), Negotiated(max_message_size=65535)):
        again = decode_message(note.encode(ctx), ctx)
        assert again == note
    assert error.reason


def decode_anything(data: bytes, ctx: Negotiated) -> None:
    try:
        message = decode_message(data, ctx)
    except BgpError as exc:
        assert_well_formed(exc)
        return
    for error in getattr(message, "errors", ()):
        assert_well_formed(error)
    # whatever decoded encodes again
    message.encode(ctx)


@FUZZ
@given(st.binary(max_size=120), contexts)
def test_random_bytes_raise_only_bgp_errors(data: bytes, ctx: Negotiated) -> None:
    decode_anything(data, ctx)


@FUZZ
@given(st.integers(1, 5), st.binary(max_size=200), contexts)
def test_random_bodies_raise_only_bgp_errors(mtype: int, body: bytes, ctx: Negotiated) -> None:
    data = MARKER + (19 + len(body)).to_bytes(2, "big") + bytes((mtype,)) + body
    decode_anything(data, ctx)


@cache
def real_messages() -> tuple[bytes, ...]:
    data = Path(__file__).resolve().parent / "data"
    paths = [
        data / "captures" / "lifecycle.pcap",
        data / "captures" / "mesh-restart.pcap",
        data / "synthetic.pcap",
    ]
    return tuple(m.data for p in paths for m in read_capture(p))


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    messages = real_messages()
    assume(messages)
    data = bytearray(draw(st.sampled_from(messages)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        where = draw(st.integers(19, max(19, len(data))))
        if kind == "flip" and where < len(data):
            data[where] = draw(u8)
        elif kind == "cut":
            del data[where:]
        elif kind == "insert":
            data[where:where] = draw(st.binary(min_size=1, max_size=6))
        elif where < len(data):
            del data[where : where + draw(st.integers(1, 6))]
    if draw(st.booleans()) and len(data) >= 18:  # keep the header's length consistent
        data[16:18] = len(data).to_bytes(2, "big")
    return bytes(data)


@FUZZ
@given(mutated(), contexts)
def test_mutated_real_messages_raise_only_bgp_errors(data: bytes, ctx: Negotiated) -> None:
    decode_anything(data, ctx)


def test_real_messages_are_available_for_mutation() -> None:
    assert len(real_messages()) > 50


@pytest.mark.parametrize("ctx", [Negotiated(), Negotiated(asn4=False, max_message_size=65535)])
def test_every_one_octet_change_of_a_real_update_is_handled(ctx: Negotiated) -> None:
    """Exhaustive over one message: each octet after the header set to a few values."""
    update = next(m for m in real_messages() if m[18] == 2 and len(m) > 60)
    for i in range(19, len(update)):
        for value in (0x00, 0x01, 0x7F, 0x80, 0xFF, update[i] ^ 0x10):
            changed = bytearray(update)
            changed[i] = value
            decode_anything(bytes(changed), ctx)


def test_a_long_as_path_round_trips_with_extended_length_as_its_only_flag() -> None:
    """The example Hypothesis found: an AS_PATH longer than 255 octets only with 4-octet AS
    numbers goes out as 0x50 (Transitive + Extended Length) and comes back as the default
    flags, which send the same octet again."""
    ctx = Negotiated(asn4=True)
    segment = AsPathSegment(AsPathSegmentType.AS_SEQUENCE, tuple(range(1, 71)))
    message = Update(attributes=(AsPathAttr((segment,)),))
    data = message.encode(ctx)
    assert data[19 + 4:19 + 6] == bytes((0x50, 2))  # after header and lengths; 2 + 70 * 4 > 255
    decoded = decode_message(data, mirror(ctx))
    assert isinstance(decoded, Update) and decoded == message
    assert decoded.attributes[0].wire_flags() == 0x40 and decoded.encode(ctx) == data
