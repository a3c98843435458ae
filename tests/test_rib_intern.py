"""AttributeSet interning: the fast paths give the same sets as the definition says.

The definition: one set per (attributes by value, their flags octets, next hops), MP_REACH and
MP_UNREACH left out; every derived field read from the attributes.
"""

from __future__ import annotations

import gc
import ipaddress
from dataclasses import dataclass, fields
from typing import Any

import pytest

from speaker.rib.attrs import AS_PATH_MAXLEN, AttributeSet, intern_count
from speaker.wire.attributes import (
    AggregatorAttr,
    AsPathAttr,
    AsPathSegment,
    AtomicAggregateAttr,
    ClusterListAttr,
    CommunitiesAttr,
    ExtendedCommunitiesAttr,
    LargeCommunitiesAttr,
    LocalPrefAttr,
    MedAttr,
    MpReachAttr,
    MpUnreachAttr,
    NextHopAttr,
    OriginatorIdAttr,
    OriginAttr,
    PathAttribute,
    UnknownAttr,
)
from speaker.wire.enums import Afi, AsPathSegmentType, Origin, Safi
from speaker.wire.nlri import Nlri, Prefix

V4 = ipaddress.IPv4Address
SEQ = AsPathSegmentType.AS_SEQUENCE


def _base(med: int = 10, hop: str = "192.168.0.80") -> tuple[PathAttribute, ...]:
    return (
        OriginAttr(Origin.IGP),
        AsPathAttr((AsPathSegment(SEQ, (65001, 65002)),)),
        NextHopAttr(V4(hop)),
        MedAttr(med),
        LocalPrefAttr(100),
    )


def test_equal_attributes_from_different_objects_are_one_set() -> None:
    a = AttributeSet.intern(_base())
    b = AttributeSet.intern(list(_base()))  # a list, and new attribute objects
    assert a is b
    assert a.next_hops == (V4("192.168.0.80"),)
    assert AttributeSet.intern(_base(med=11)) is not a


def test_next_hops_equal_to_the_next_hop_attribute_give_the_same_set() -> None:
    plain = AttributeSet.intern(_base())
    assert AttributeSet.intern(_base(), [V4("192.168.0.80")]) is plain
    other = AttributeSet.intern(_base(), (V4("192.168.0.99"),))
    assert other is not plain and other.next_hops == (V4("192.168.0.99"),)
    assert other.attributes == plain.attributes
    none = AttributeSet.intern(_base(), ())
    assert none is not plain and none.next_hops == ()
    assert AttributeSet.intern(_base(), ()) is none


def test_flags_keep_sets_apart_although_attributes_compare_equal() -> None:
    plain = _base()
    partial = (*plain[:3], MedAttr(10, flags=0x80 | 0x20), plain[4])
    assert plain == partial  # PathAttribute equality ignores flags
    a, b = AttributeSet.intern(plain), AttributeSet.intern(partial)
    assert a is not b
    assert b.attributes[3].flags == 0xA0


def test_order_keeps_sets_apart() -> None:
    plain = _base()
    swapped = (plain[0], plain[1], plain[2], plain[4], plain[3])
    assert AttributeSet.intern(swapped) is not AttributeSet.intern(plain)


def test_mp_attributes_are_left_out() -> None:
    hop = ipaddress.IPv6Address("2001:db8::1")
    reach = MpReachAttr(Afi.IPV6, Safi.UNICAST, (hop,), (Nlri(Prefix.parse("2001:db8:1::/48")),))
    unreach = MpUnreachAttr(Afi.IPV6, Safi.UNICAST, ())
    attrs = (OriginAttr(Origin.IGP), AsPathAttr(()), reach, unreach, LocalPrefAttr(100))
    made = AttributeSet.intern(attrs, (hop,))
    assert made.attributes == (OriginAttr(Origin.IGP), AsPathAttr(()), LocalPrefAttr(100))
    assert made.next_hops == (hop,)
    assert AttributeSet.intern(made.attributes, (hop,)) is made


def test_derived_fields_are_read_from_every_attribute() -> None:
    attrs = (
        OriginAttr(Origin.EGP),
        AsPathAttr(
            (AsPathSegment(SEQ, (65001, 65002)), AsPathSegment(AsPathSegmentType.AS_SET, (1, 2)))
        ),
        NextHopAttr(V4("10.0.0.1")),
        MedAttr(7),
        LocalPrefAttr(200),
        AtomicAggregateAttr(),
        AggregatorAttr(65001, V4("10.0.0.2")),
        CommunitiesAttr((1, 2)),
        OriginatorIdAttr(V4("10.0.0.3")),
        ClusterListAttr((V4("10.0.0.4"),)),
        ExtendedCommunitiesAttr((5,)),
        LargeCommunitiesAttr(((1, 2, 3),)),
    )
    s = AttributeSet.intern(attrs)
    assert (s.origin, s.med, s.local_pref, s.first_as, s.as_path_length) == (
        Origin.EGP, 7, 200, 65001, 3)
    assert s.atomic_aggregate and s.aggregator == (65001, V4("10.0.0.2"))
    assert (s.communities, s.extended_communities) == ((1, 2), (5,))
    assert s.large_communities == ((1, 2, 3),)
    assert (s.originator_id, s.cluster_list) == (V4("10.0.0.3"), (V4("10.0.0.4"),))
    empty = AttributeSet.intern(())
    assert (empty.origin, empty.as_path, empty.as_path_length, empty.next_hops) == (
        None, None, AS_PATH_MAXLEN, ())
    # every field is set (the fast constructor sets the slots one by one)
    for made in (s, empty):
        for f in fields(AttributeSet):
            getattr(made, f.name)


def test_sweep_drops_exactly_the_sets_nothing_holds() -> None:
    gc.collect()
    AttributeSet.sweep()
    before = intern_count()
    held = [AttributeSet.intern(_base(med=1_000_000 + i)) for i in range(50)]
    for i in range(50):
        AttributeSet.intern(_base(med=2_000_000 + i))
    gc.collect()
    assert intern_count() == before + 100
    assert AttributeSet.sweep() == 50
    assert intern_count() == before + 50
    assert all(AttributeSet.intern(_base(med=1_000_000 + i)) is s for i, s in enumerate(held))


def test_sweep_of_a_mostly_dead_table_keeps_the_live_sets_interned() -> None:
    gc.collect()
    AttributeSet.sweep()
    before = intern_count()
    held = [AttributeSet.intern(_base(med=3_000_000 + i)) for i in range(10)]
    for i in range(5000):  # a feed withdrawn: most sets die (and the table sweeps itself)
        AttributeSet.intern(_base(med=4_000_000 + i))
    gc.collect()
    AttributeSet.sweep()
    assert intern_count() == before + 10
    assert all(AttributeSet.intern(_base(med=3_000_000 + i)) is s for i, s in enumerate(held))
    again = AttributeSet.intern(_base(med=4_000_000))
    assert AttributeSet.intern(_base(med=4_000_000)) is again


def test_sets_of_one_next_hop_share_their_next_hops_and_flags_tuples() -> None:
    a = AttributeSet.intern(_base(med=5_000_001))
    shared_hop = a.attributes[2]
    b = AttributeSet.intern((*_base(med=5_000_002)[:2], shared_hop, *_base(med=5_000_002)[3:]))
    assert a is not b
    assert a.next_hops == b.next_hops == (V4("192.168.0.80"),)
    # the same NEXT_HOP object (the codec interns attributes by their octets): one tuple
    assert a.next_hops is b.next_hops
    # canonical flags: each set is keyed by its own attributes tuple, no key object
    assert [k for k, s in AttributeSet._table.items() if s is a] == [a.attributes]
    partial = [OriginAttr(Origin.IGP, flags=0x60), *_base()[1:]]
    c = AttributeSet.intern((*partial[:3], MedAttr(5_000_003), LocalPrefAttr(100)))
    d = AttributeSet.intern((*partial[:3], MedAttr(5_000_004), LocalPrefAttr(100)))
    keys = {id(k[1]) for k, s in AttributeSet._table.items() if s is c or s is d}
    assert len(keys) == 1  # one flags tuple for both keys


def test_explicit_next_hops_with_a_next_hop_attribute() -> None:
    hop = V4("192.168.0.80")
    with_attr = AttributeSet.intern(_base(med=6_000_000), (hop,))
    assert with_attr is AttributeSet.intern(_base(med=6_000_000))
    other = AttributeSet.intern(_base(med=6_000_000), (hop, hop))
    assert other is not with_attr and other.next_hops == (hop, hop)


def test_equal_attributes_hash_equal_whatever_the_path_or_origin_object() -> None:
    """The hand-written hashes (no Enum.__hash__ per intern) agree with equality."""
    segments = (AsPathSegment(SEQ, (65001, 65002)), AsPathSegment(AsPathSegmentType.AS_SET, (7,)))
    copy = tuple(AsPathSegment(AsPathSegmentType(int(s.type)), tuple(s.asns)) for s in segments)
    assert AsPathAttr(segments) == AsPathAttr(copy)
    assert hash(AsPathAttr(segments)) == hash(AsPathAttr(copy))
    assert hash(segments[0]) != hash(AsPathSegment(AsPathSegmentType.AS_SET, (65001, 65002)))
    assert hash(OriginAttr(Origin.EGP)) == hash(OriginAttr(Origin(1), flags=0x50))
    assert hash(OriginAttr(Origin.IGP)) != hash(OriginAttr(Origin.INCOMPLETE))
    with_path = AttributeSet.intern((OriginAttr(Origin.IGP), AsPathAttr(segments)))
    assert AttributeSet.intern((OriginAttr(Origin(0)), AsPathAttr(copy))) is with_path
    assert with_path.next_hops == ()


def test_a_set_made_on_a_miss_takes_its_next_hop_from_the_attribute() -> None:
    made = AttributeSet.intern(_base(med=4242, hop="192.168.0.42"))
    assert made.next_hops == (V4("192.168.0.42"),)
    assert made.next_hop == V4("192.168.0.42")
    assert AttributeSet.intern(_base(med=4242, hop="192.168.0.42")) is made


def test_flags_none_and_flags_zero_stay_apart() -> None:
    """The bare key is for canonical flags only: an explicit flags octet, even 0, is kept."""
    plain = AttributeSet.intern(_base(med=7_000_000))
    zero = AttributeSet.intern((OriginAttr(Origin.IGP, flags=0), *_base(med=7_000_000)[1:]))
    assert zero is not plain
    assert zero.attributes[0].flags == 0
    hop = V4("192.168.0.7")
    assert AttributeSet.intern(_base(med=7_000_000), (hop,)) is not plain
    assert AttributeSet.intern(_base(med=7_000_000), (hop,)).next_hops == (hop,)
    assert AttributeSet.intern(_base(med=7_000_000), (V4("192.168.0.80"),)) is plain


_HASHES: list[int] = []


@dataclass(frozen=True, slots=True)
class _Counted(UnknownAttr):
    """An unknown attribute that counts how often it is hashed."""

    def __hash__(self) -> int:
        _HASHES.append(self.unknown_type)
        return hash(self.value)


def test_a_new_set_hashes_its_key_once_and_a_found_one_once() -> None:
    attrs = (*_base(med=4242), _Counted(unknown_type=99, value=b"once", flags=0xC0))
    _HASHES.clear()
    made = AttributeSet.intern(attrs)
    assert _HASHES == [99]  # found or not, one lookup
    assert AttributeSet.intern(attrs) is made and _HASHES == [99, 99]
    assert made.med == 4242 and made.attributes == attrs  # filled in after it went in


def test_a_set_that_fails_to_fill_is_not_left_in_the_table(monkeypatch: Any) -> None:
    attrs = _base(med=4343)
    before = intern_count()

    def broken(*_args: object) -> None:
        raise RuntimeError("fill failed")

    monkeypatch.setattr(AttributeSet, "_fill", staticmethod(broken))
    with pytest.raises(RuntimeError, match="fill failed"):
        AttributeSet.intern(attrs)
    assert intern_count() == before  # no empty set behind
    monkeypatch.undo()
    assert AttributeSet.intern(attrs).med == 4343


def test_plain_attributes_give_the_same_set_without_the_mp_test() -> None:
    """``plain=True`` is the caller's word that there is no MP_REACH/MP_UNREACH (the RIB's
    per-UPDATE test found none): the same set, and the attributes are not looked at again."""
    attrs = _base(med=4444)
    assert AttributeSet.intern(attrs, plain=True) is AttributeSet.intern(attrs)
    reach = MpReachAttr(Afi.IPV6, Safi.UNICAST, (ipaddress.IPv6Address("2001:db8::1"),), ())
    with_mp = (*attrs, reach)
    assert reach not in AttributeSet.intern(with_mp).attributes
    assert reach in AttributeSet.intern(with_mp, plain=True).attributes  # trusted, not tested
