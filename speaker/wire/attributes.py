"""Path attributes (RFC 4271 4.3, 5), one class per attribute, found through a registry.

Each class declares its wire flags, and what RFC 7606 says to do when it is malformed
(``ON_ERROR``).  The decoder checks flags against the declaration (RFC 7606 3c), keeps unknown
attributes with their flags and bytes, and interns decoded attributes by their bytes: a feed
of 100,000 routes repeats the same few ORIGIN/AS_PATH/NEXT_HOP values, so they are decoded
once (BIRD interns attribute sets for the same reason).  Whole attribute lists are interned
the same way, so a stream of UPDATEs sharing one attribute set decodes it once.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import ClassVar, TypeVar

from speaker.wire.context import Negotiated
from speaker.wire.enums import (
    Afi,
    AsPathSegmentType,
    AttrFlag,
    AttrType,
    Origin,
    Safi,
    UpdateSubcode,
)
from speaker.wire.errors import BgpError, ErrorAction, LocalProtocolError, update_error
from speaker.wire.extcommunities import ExtendedCommunity
from speaker.wire.nlri import Nlri, decode_prefixes, encode_prefixes

AS_TRANS = 23456  # RFC 6793 9
_ZERO = ipaddress.IPv4Address(0)

WELL_KNOWN = AttrFlag.TRANSITIVE
OPTIONAL_TRANSITIVE = AttrFlag.OPTIONAL | AttrFlag.TRANSITIVE
OPTIONAL_NON_TRANSITIVE = AttrFlag.OPTIONAL
_FLAG_MASK = AttrFlag.OPTIONAL | AttrFlag.TRANSITIVE

# plain ints for the hot path (IntFlag arithmetic runs Python code)
_OPTIONAL = 0x80
_TRANSITIVE = 0x40
_PARTIAL = 0x20
_EXTENDED = 0x10


class AttributeValueError(Exception):
    """Raised inside a value decoder; the caller wraps it with the attribute's bytes."""

    def __init__(self, subcode: UpdateSubcode, reason: str) -> None:
        super().__init__(reason)
        self.subcode = subcode
        self.reason = reason


@dataclass(frozen=True, slots=True)
class PathAttribute:
    """Base of all path attributes.

    ``flags`` is None when the attribute carried (or should carry) its canonical flags; a
    decoded attribute whose flags differ (Partial set, Extended Length on a short value)
    keeps them, so that it encodes back to the same bytes.
    """

    TYPE: ClassVar[int] = -1
    FLAGS: ClassVar[AttrFlag] = WELL_KNOWN
    ON_ERROR: ClassVar[ErrorAction] = ErrorAction.TREAT_AS_WITHDRAW
    RFC: ClassVar[str] = ""
    INTERN: ClassVar[bool] = True  # decoded once per distinct (bytes, asn4)

    flags: int | None = field(default=None, kw_only=True, compare=False)

    @property
    def type_code(self) -> int:
        """The attribute type code on the wire."""
        return self.TYPE

    @classmethod
    def decode_value(cls, value: bytes, ctx: Negotiated) -> PathAttribute:
        """Build from the attribute value octets; raise AttributeValueError if malformed."""
        raise NotImplementedError

    def encode_value(self, ctx: Negotiated) -> bytes:
        """The attribute value octets."""
        raise NotImplementedError

    def wire_flags(self) -> int:
        """The flags octet to send (before the Extended Length bit is decided)."""
        return int(self.FLAGS) if self.flags is None else self.flags

    @property
    def partial(self) -> bool:
        """The Partial bit: some AS on the way did not recognise this attribute (RFC 4271 4.3)."""
        return bool(self.wire_flags() & _PARTIAL)

    def for_propagation(self) -> PathAttribute | None:
        """This attribute as it may be passed on to another peer (RFC 4271 5, 9.1.3).

        Recognised attributes go unchanged (whether a peer gets them at all, e.g. MED or
        LOCAL_PREF across an AS border, is routing policy).  :class:`UnknownAttr` overrides
        this: it sets the Partial bit, or returns None when it must not be passed on.
        """
        return self

    def encode(self, ctx: Negotiated) -> bytes:
        """Flags, type, length and value (RFC 4271 4.3)."""
        value = self.encode_value(ctx)
        flags = self.wire_flags() & 0xFF
        size = len(value)
        if size > 255:
            if size > 0xFFFF:
                raise LocalProtocolError(
                    f"attribute {self.type_code} value of {size} octets exceeds 65535"
                )
            flags |= _EXTENDED
        if flags & _EXTENDED:
            return bytes((flags, self.type_code, size >> 8, size & 0xFF)) + value
        return bytes((flags, self.type_code, size)) + value


_REGISTRY: dict[int, type[PathAttribute]] = {}
ATTRIBUTES = MappingProxyType(_REGISTRY)
"""Attribute type code -> class (read-only)."""

A = TypeVar("A", bound=type[PathAttribute])


def register(cls: A) -> A:
    """Class decorator: enter an attribute class into the registry (once per type code)."""
    if cls.TYPE in _REGISTRY:
        raise RuntimeError(f"attribute {cls.TYPE} registered twice")
    _REGISTRY[cls.TYPE] = cls
    _EXPECTED_FLAGS[cls.TYPE] = int(cls.FLAGS)
    return cls


_EXPECTED_FLAGS: dict[int, int] = {}


def _fixed_length(value: bytes, size: int, what: str) -> None:
    if len(value) != size:
        raise AttributeValueError(
            UpdateSubcode.ATTRIBUTE_LENGTH_ERROR, f"{what} length {len(value)}, must be {size}"
        )


def _multiple_length(value: bytes, size: int, what: str) -> None:
    # RFC 7606 4: a zero length is malformed unless the attribute allows it; 7.8, 7.10, 7.14
    if not value or len(value) % size:
        raise AttributeValueError(
            UpdateSubcode.ATTRIBUTE_LENGTH_ERROR,
            f"{what} length {len(value)} is not a non-zero multiple of {size}",
        )


@register
@dataclass(frozen=True, slots=True)
class OriginAttr(PathAttribute):
    """ORIGIN: how the route entered BGP (RFC 4271 5.1.1)."""

    TYPE = AttrType.ORIGIN
    RFC = "RFC 4271 section 5.1.1"
    value: Origin = Origin.IGP

    @classmethod
    def decode_value(cls, value: bytes, ctx: Negotiated) -> PathAttribute:
        _fixed_length(value, 1, "ORIGIN")
        try:
            return cls(Origin(value[0]))
        except ValueError:
            raise AttributeValueError(
                UpdateSubcode.INVALID_ORIGIN_ATTRIBUTE, f"ORIGIN value {value[0]} undefined"
            ) from None

    def encode_value(self, ctx: Negotiated) -> bytes:
        return bytes((self.value,))

    def __hash__(self) -> int:
        # not the dataclass's hash((self.value,)): it calls Enum.__hash__, Python code, each
        # time an attribute set is interned
        return int.__hash__(self.value)


@dataclass(frozen=True, slots=True)
class AsPathSegment:
    """One AS_PATH segment: its type and AS numbers (RFC 4271 4.3, RFC 5065 5)."""

    type: AsPathSegmentType
    asns: tuple[int, ...]

    def __str__(self) -> str:
        text = " ".join(str(a) for a in self.asns)
        return _SEGMENT_FORMAT.get(self.type, "{}").format(text)

    def __hash__(self) -> int:
        # without the dataclass's tuple and Enum.__hash__ (Python code) per segment
        return hash(self.asns) + int.__hash__(self.type)


# BIRD's notation: sets in braces, confederation sequences in parentheses, confed sets in brackets
_SEGMENT_FORMAT = {
    AsPathSegmentType.AS_SEQUENCE: "{}",
    AsPathSegmentType.AS_SET: "{{{}}}",
    AsPathSegmentType.AS_CONFED_SEQUENCE: "({})",
    AsPathSegmentType.AS_CONFED_SET: "[{}]",
}


def _decode_segments(
    value: bytes, width: int, what: str, subcode: UpdateSubcode
) -> tuple[AsPathSegment, ...]:
    """RFC 7606 7.2: unknown segment type, overrun, underrun or empty segment is malformed."""
    segments: list[AsPathSegment] = []
    i = 0
    n = len(value)
    while i < n:
        if i + 2 > n:
            raise AttributeValueError(subcode, f"{what} segment header truncated at offset {i}")
        kind, count = value[i], value[i + 1]
        if count == 0:
            raise AttributeValueError(subcode, f"{what} segment at offset {i} is empty")
        try:
            seg_type = AsPathSegmentType(kind)
        except ValueError:
            raise AttributeValueError(subcode, f"{what} segment type {kind} undefined") from None
        end = i + 2 + count * width
        if end > n:
            raise AttributeValueError(
                subcode, f"{what} segment of {count} AS numbers overruns the attribute"
            )
        asns = tuple(int.from_bytes(value[j : j + width], "big") for j in range(i + 2, end, width))
        if 0 in asns:
            # RFC 7607 2: AS 0 in a path makes the attribute malformed
            raise AttributeValueError(subcode, f"{what} contains AS 0 (RFC 7607)")
        segments.append(AsPathSegment(seg_type, asns))
        i = end
    return tuple(segments)


def _encode_segments(segments: tuple[AsPathSegment, ...], width: int) -> bytes:
    out = bytearray()
    for seg in segments:
        if not seg.asns:
            raise LocalProtocolError(f"{AsPathSegmentType(seg.type).name} segment is empty")
        # RFC 4271 5.1.2: a segment holds at most 255 ASes; longer ones are split
        for start in range(0, len(seg.asns), 255):
            chunk = seg.asns[start : start + 255]
            out += bytes((seg.type, len(chunk)))
            for asn in chunk:
                if width == 2 and asn > 0xFFFF:
                    asn = AS_TRANS  # RFC 6793 4.2.2
                out += asn.to_bytes(width, "big")
    return bytes(out)


def path_length(segments: tuple[AsPathSegment, ...]) -> int:
    """AS path length for route selection: a set counts 1, confederation segments 0."""
    total = 0
    for seg in segments:
        kind = seg.type
        if kind is _AS_SEQUENCE:
            total += len(seg.asns)
        elif kind is _AS_SET:
            total += 1
    return total


# module globals: an enum member's lookup on its class is slow on 3.11
_AS_SEQUENCE = AsPathSegmentType.AS_SEQUENCE
_AS_SET = AsPathSegmentType.AS_SET


@register
@dataclass(frozen=True, slots=True)
class AsPathAttr(PathAttribute):
    """AS_PATH: the ASes the route crossed; 2 or 4 octets each per RFC 6793 (RFC 4271 5.1.2)."""

    TYPE = AttrType.AS_PATH
    RFC = "RFC 4271 section 5.1.2, RFC 6793"
    segments: tuple[AsPathSegment, ...] = ()

    @classmethod
    def decode_value(cls, value: bytes, ctx: Negotiated) -> PathAttribute:
        return cls(
            _decode_segments(
                value, 4 if ctx.asn4 else 2, "AS_PATH", UpdateSubcode.MALFORMED_AS_PATH
            )
        )

    def encode_value(self, ctx: Negotiated) -> bytes:
        return _encode_segments(self.segments, 4 if ctx.asn4 else 2)

    @property
    def length(self) -> int:
        """Length used by route selection (RFC 4271 9.1.2.2 a)."""
        return path_length(self.segments)

    def __hash__(self) -> int:
        return hash(self.segments)  # not hash((self.segments,)), the dataclass's: no tuple

    def __str__(self) -> str:
        return " ".join(str(seg) for seg in self.segments)


@register
@dataclass(frozen=True, slots=True)
class As4PathAttr(PathAttribute):
    """AS4_PATH: the 4-octet path beside a 2-octet AS_PATH (RFC 6793 3)."""

    TYPE = AttrType.AS4_PATH
    FLAGS = OPTIONAL_TRANSITIVE
    ON_ERROR = ErrorAction.ATTRIBUTE_DISCARD  # RFC 6793 6
    RFC = "RFC 6793 section 3"
    segments: tuple[AsPathSegment, ...] = ()

    @classmethod
    def decode_value(cls, value: bytes, ctx: Negotiated) -> PathAttribute:
        if not value:
            raise AttributeValueError(UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, "AS4_PATH is empty")
        return cls(_decode_segments(value, 4, "AS4_PATH", UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR))

    def encode_value(self, ctx: Negotiated) -> bytes:
        return _encode_segments(self.segments, 4)

    def __str__(self) -> str:
        return " ".join(str(seg) for seg in self.segments)


def merge_as4_path(
    as_path: tuple[AsPathSegment, ...], as4_path: tuple[AsPathSegment, ...]
) -> tuple[AsPathSegment, ...]:
    """The AS path a 4-octet speaker reconstructs from AS_PATH and AS4_PATH (RFC 6793 4.2.3).

    If AS_PATH counts fewer ASes than AS4_PATH, AS4_PATH is ignored; otherwise the leading
    ASes of AS_PATH (as many as it has more than AS4_PATH) are put in front of AS4_PATH.  ASes
    are counted as for route selection: a set counts one, confederation segments none; a
    confederation segment is kept when it leads or touches a kept segment.
    """
    extra = path_length(as_path) - path_length(as4_path)
    if extra < 0:
        return as_path
    lead: list[AsPathSegment] = []
    for seg in as_path:
        if seg.type is AsPathSegmentType.AS_SEQUENCE:
            if extra <= 0:
                break
            take = seg.asns[:extra]
            lead.append(AsPathSegment(seg.type, take))
            extra -= len(take)
        elif seg.type is AsPathSegmentType.AS_SET:
            if extra <= 0:
                break
            lead.append(seg)
            extra -= 1
        elif extra > 0 or not lead:
            lead.append(seg)  # confederation segment: leading, or adjacent to a kept one
        else:
            break
    if lead and as4_path and lead[-1].type is as4_path[0].type is AsPathSegmentType.AS_SEQUENCE:
        # one sequence, as a speaker would print it (64512 4200000000, not two segments)
        joined = AsPathSegment(AsPathSegmentType.AS_SEQUENCE, lead[-1].asns + as4_path[0].asns)
        return (*lead[:-1], joined, *as4_path[1:])
    return (*lead, *as4_path)


def _ipv4(value: bytes) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(value)


_BROADCAST = ipaddress.IPv4Address("255.255.255.255")


@register
@dataclass(frozen=True, slots=True)
class NextHopAttr(PathAttribute):
    """NEXT_HOP: the IPv4 router to forward to (RFC 4271 5.1.3)."""

    TYPE = AttrType.NEXT_HOP
    RFC = "RFC 4271 section 5.1.3"
    address: ipaddress.IPv4Address = _ZERO

    @classmethod
    def decode_value(cls, value: bytes, ctx: Negotiated) -> PathAttribute:
        _fixed_length(value, 4, "NEXT_HOP")
        address = _ipv4(value)
        if address.is_unspecified or address.is_multicast or address == _BROADCAST:
            # syntactically incorrect: not a host address (RFC 4271 6.3), RFC 7606 7.3
            raise AttributeValueError(
                UpdateSubcode.INVALID_NEXT_HOP_ATTRIBUTE, f"NEXT_HOP {address} is not a host"
            )
        return cls(address)

    def encode_value(self, ctx: Negotiated) -> bytes:
        return self.address.packed

    def __hash__(self) -> int:
        # equal addresses have equal ints: no IPv4Address.__hash__ (Python code, hashing a
        # hex string) when an attribute set is interned
        return hash(self.address._ip)  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class _U32Attr(PathAttribute):
    value: int = 0

    @classmethod
    def decode_value(cls, value: bytes, ctx: Negotiated) -> PathAttribute:
        if len(value) != 4:
            _fixed_length(value, 4, AttrType(cls.TYPE).name)
        # a distinct MED per route is common: build without the frozen __init__'s overhead
        attr: _U32Attr = _new_object(cls)
        _set_u32(attr, int.from_bytes(value, "big"))
        _set_flags(attr, None)
        return attr

    def encode_value(self, ctx: Negotiated) -> bytes:
        return self.value.to_bytes(4, "big")

    def __hash__(self) -> int:
        return hash(self.value)  # not hash((self.value,)), dataclass's: no tuple


_new_object = object.__new__
_set_u32 = _U32Attr.__dict__["value"].__set__
_set_flags = PathAttribute.__dict__["flags"].__set__


@register
@dataclass(frozen=True, slots=True)
class MedAttr(_U32Attr):
    """MULTI_EXIT_DISC: preference among exits to a neighbouring AS (RFC 4271 5.1.4)."""

    TYPE = AttrType.MULTI_EXIT_DISC
    FLAGS = OPTIONAL_NON_TRANSITIVE
    RFC = "RFC 4271 section 5.1.4"


@register
@dataclass(frozen=True, slots=True)
class LocalPrefAttr(_U32Attr):
    """LOCAL_PREF: the AS-internal preference of a route (RFC 4271 5.1.5)."""

    TYPE = AttrType.LOCAL_PREF
    RFC = "RFC 4271 section 5.1.5"


# dataclass() gave each subclass its own field-tuple __hash__: keep _U32Attr's
MedAttr.__hash__ = LocalPrefAttr.__hash__ = _U32Attr.__hash__  # type: ignore[method-assign]

# Header octets (flags, type, length 4) of the 4-octet attributes the list decoder builds
# inline: a feed of one MED per route meets a new MED in every UPDATE, and interning values
# that do not repeat only fills the cache.  Other flags (Partial, Extended Length) or lengths
# take the general path, which checks and reports them.
_U32_HEADERS: dict[bytes, type[_U32Attr]] = {
    bytes((cls.FLAGS, cls.TYPE, 4)): cls for cls in (MedAttr, LocalPrefAttr)
}


@register
@dataclass(frozen=True, slots=True)
class AtomicAggregateAttr(PathAttribute):
    """ATOMIC_AGGREGATE: a less specific route was chosen (RFC 4271 5.1.6)."""

    TYPE = AttrType.ATOMIC_AGGREGATE
    ON_ERROR = ErrorAction.ATTRIBUTE_DISCARD  # RFC 7606 7.6
    RFC = "RFC 4271 section 5.1.6"

    @classmethod
    def decode_value(cls, value: bytes, ctx: Negotiated) -> PathAttribute:
        _fixed_length(value, 0, "ATOMIC_AGGREGATE")
        return cls()

    def encode_value(self, ctx: Negotiated) -> bytes:
        return b""


@register
@dataclass(frozen=True, slots=True)
class AggregatorAttr(PathAttribute):
    """AGGREGATOR: the AS and router that aggregated the route (RFC 4271 5.1.7, RFC 6793)."""

    TYPE = AttrType.AGGREGATOR
    FLAGS = OPTIONAL_TRANSITIVE
    ON_ERROR = ErrorAction.ATTRIBUTE_DISCARD  # RFC 7606 7.7
    RFC = "RFC 4271 section 5.1.7"
    asn: int = 0
    address: ipaddress.IPv4Address = _ZERO

    @classmethod
    def decode_value(cls, value: bytes, ctx: Negotiated) -> PathAttribute:
        width = 4 if ctx.asn4 else 2
        _fixed_length(value, width + 4, "AGGREGATOR")
        asn = int.from_bytes(value[:width], "big")
        if asn == 0:
            raise AttributeValueError(
                UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, "AGGREGATOR AS 0 (RFC 7607)"
            )
        return cls(asn, _ipv4(value[width:]))

    def encode_value(self, ctx: Negotiated) -> bytes:
        if ctx.asn4:
            return self.asn.to_bytes(4, "big") + self.address.packed
        asn = self.asn if self.asn <= 0xFFFF else AS_TRANS
        return asn.to_bytes(2, "big") + self.address.packed


@register
@dataclass(frozen=True, slots=True)
class As4AggregatorAttr(PathAttribute):
    """AS4_AGGREGATOR: the 4-octet aggregator AS beside a 2-octet one (RFC 6793 3)."""

    TYPE = AttrType.AS4_AGGREGATOR
    FLAGS = OPTIONAL_TRANSITIVE
    ON_ERROR = ErrorAction.ATTRIBUTE_DISCARD  # RFC 6793 6
    RFC = "RFC 6793 section 3"
    asn: int = 0
    address: ipaddress.IPv4Address = _ZERO

    @classmethod
    def decode_value(cls, value: bytes, ctx: Negotiated) -> PathAttribute:
        _fixed_length(value, 8, "AS4_AGGREGATOR")
        asn = int.from_bytes(value[:4], "big")
        if asn == 0:
            raise AttributeValueError(
                UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, "AS4_AGGREGATOR AS 0 (RFC 7607)"
            )
        return cls(asn, _ipv4(value[4:]))

    def encode_value(self, ctx: Negotiated) -> bytes:
        return self.asn.to_bytes(4, "big") + self.address.packed


@register
@dataclass(frozen=True, slots=True)
class CommunitiesAttr(PathAttribute):
    """COMMUNITIES: 32-bit tags, shown as ASN:value (RFC 1997)."""

    TYPE = AttrType.COMMUNITIES
    FLAGS = OPTIONAL_TRANSITIVE
    RFC = "RFC 1997"
    values: tuple[int, ...] = ()

    @classmethod
    def decode_value(cls, value: bytes, ctx: Negotiated) -> PathAttribute:
        _multiple_length(value, 4, "COMMUNITIES")
        return cls(tuple(int.from_bytes(value[i : i + 4], "big") for i in range(0, len(value), 4)))

    def encode_value(self, ctx: Negotiated) -> bytes:
        return b"".join(v.to_bytes(4, "big") for v in self.values)

    def pairs(self) -> tuple[tuple[int, int], ...]:
        """The communities as (ASN, value) pairs, as BIRD prints them."""
        return tuple((v >> 16, v & 0xFFFF) for v in self.values)


@register
@dataclass(frozen=True, slots=True)
class OriginatorIdAttr(PathAttribute):
    """ORIGINATOR_ID: the router id that originated an iBGP route (RFC 4456 8)."""

    TYPE = AttrType.ORIGINATOR_ID
    FLAGS = OPTIONAL_NON_TRANSITIVE
    RFC = "RFC 4456 section 8"
    address: ipaddress.IPv4Address = _ZERO

    @classmethod
    def decode_value(cls, value: bytes, ctx: Negotiated) -> PathAttribute:
        _fixed_length(value, 4, "ORIGINATOR_ID")
        return cls(_ipv4(value))

    def encode_value(self, ctx: Negotiated) -> bytes:
        return self.address.packed


@register
@dataclass(frozen=True, slots=True)
class ClusterListAttr(PathAttribute):
    """CLUSTER_LIST: the reflection clusters the route crossed (RFC 4456 8)."""

    TYPE = AttrType.CLUSTER_LIST
    FLAGS = OPTIONAL_NON_TRANSITIVE
    RFC = "RFC 4456 section 8"
    ids: tuple[ipaddress.IPv4Address, ...] = ()

    @classmethod
    def decode_value(cls, value: bytes, ctx: Negotiated) -> PathAttribute:
        _multiple_length(value, 4, "CLUSTER_LIST")
        return cls(tuple(_ipv4(value[i : i + 4]) for i in range(0, len(value), 4)))

    def encode_value(self, ctx: Negotiated) -> bytes:
        return b"".join(a.packed for a in self.ids)


@register
@dataclass(frozen=True, slots=True)
class ExtendedCommunitiesAttr(PathAttribute):
    """EXTENDED_COMMUNITIES: 8-octet typed tags (RFC 4360)."""

    TYPE = AttrType.EXTENDED_COMMUNITIES
    FLAGS = OPTIONAL_TRANSITIVE
    RFC = "RFC 4360"
    values: tuple[int, ...] = ()

    @classmethod
    def decode_value(cls, value: bytes, ctx: Negotiated) -> PathAttribute:
        _multiple_length(value, 8, "EXTENDED_COMMUNITIES")
        return cls(tuple(int.from_bytes(value[i : i + 8], "big") for i in range(0, len(value), 8)))

    def encode_value(self, ctx: Negotiated) -> bytes:
        return b"".join(v.to_bytes(8, "big") for v in self.values)

    @property
    def communities(self) -> tuple[ExtendedCommunity, ...]:
        """Each value split into type, subtype and value octets (RFC 4360 2)."""
        return tuple(ExtendedCommunity.from_int(v) for v in self.values)


@register
@dataclass(frozen=True, slots=True)
class OtcAttr(PathAttribute):
    """OTC (Only to Customer): the AS that first sent the route to a customer, peer or RS
    client; a route carrying it must not go up to a provider or across to a peer again
    (RFC 9234 5)."""

    TYPE = AttrType.OTC
    FLAGS = OPTIONAL_TRANSITIVE
    ON_ERROR = ErrorAction.TREAT_AS_WITHDRAW  # RFC 9234 5: a length other than 4
    RFC = "RFC 9234 section 5"
    asn: int = 0

    @classmethod
    def decode_value(cls, value: bytes, ctx: Negotiated) -> PathAttribute:
        _fixed_length(value, 4, "OTC")
        return cls(int.from_bytes(value, "big"))

    def encode_value(self, ctx: Negotiated) -> bytes:
        return self.asn.to_bytes(4, "big")


@register
@dataclass(frozen=True, slots=True)
class LargeCommunitiesAttr(PathAttribute):
    """LARGE_COMMUNITY: (global admin, local 1, local 2) 32-bit triples (RFC 8092)."""

    TYPE = AttrType.LARGE_COMMUNITY
    FLAGS = OPTIONAL_TRANSITIVE
    RFC = "RFC 8092"
    values: tuple[tuple[int, int, int], ...] = ()

    @classmethod
    def decode_value(cls, value: bytes, ctx: Negotiated) -> PathAttribute:
        _multiple_length(value, 12, "LARGE_COMMUNITY")
        return cls(
            tuple(
                (
                    int.from_bytes(value[i : i + 4], "big"),
                    int.from_bytes(value[i + 4 : i + 8], "big"),
                    int.from_bytes(value[i + 8 : i + 12], "big"),
                )
                for i in range(0, len(value), 12)
            )
        )

    def encode_value(self, ctx: Negotiated) -> bytes:
        return b"".join(
            g.to_bytes(4, "big") + a.to_bytes(4, "big") + b.to_bytes(4, "big")
            for g, a, b in self.values
        )


def _known_family(afi: int, safi: int) -> tuple[Afi, Safi] | None:
    """The family as enums, or None for one this codec does not decode (VPNv4, flowspec...):
    valid BGP all the same (RFC 4760), so not an error."""
    try:
        return Afi(afi), Safi(safi)
    except ValueError:
        return None


def _raw_family(value: bytes) -> tuple[int, int]:
    return int.from_bytes(value[:2], "big"), value[2]


IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Next hop lengths each AFI allows: IPv6 global (+ link-local, RFC 2545 3); IPv4, or IPv6
# global (+ link-local) for IPv4 NLRI over an IPv6 next hop (RFC 8950 3)
_NEXT_HOP_LENGTHS = {Afi.IPV4: (4, 16, 32), Afi.IPV6: (16, 32)}
_next_hops: dict[bytes, tuple[IpAddress, ...]] = {}


def _decode_next_hops(raw: bytes) -> tuple[IpAddress, ...]:
    hit = _next_hops.get(raw)
    if hit is None:
        if len(raw) == 4:
            hit = (ipaddress.IPv4Address(raw),)
        else:
            hit = tuple(ipaddress.IPv6Address(raw[i : i + 16]) for i in range(0, len(raw), 16))
        if len(_next_hops) >= 4096:
            _next_hops.clear()
        _next_hops[raw] = hit
    return hit


@register
@dataclass(frozen=True, slots=True)
class MpReachAttr(PathAttribute):
    """MP_REACH_NLRI: reachable prefixes of another family with their next hop (RFC 4760 3).

    For IPv6 the next hop is a global address, optionally followed by a link-local one
    (RFC 2545 3).
    """

    TYPE = AttrType.MP_REACH_NLRI
    FLAGS = OPTIONAL_NON_TRANSITIVE
    ON_ERROR = ErrorAction.SESSION_RESET  # RFC 7606 7.11 / RFC 4760 7
    RFC = "RFC 4760 section 3"
    INTERN = False  # carries NLRI, read with the session's add-path setting
    afi: Afi = Afi.IPV6
    safi: Safi = Safi.UNICAST
    next_hops: tuple[IpAddress, ...] = ()
    nlri: tuple[Nlri, ...] = ()
    reserved: int = 0

    @classmethod
    def decode_value(cls, value: bytes, ctx: Negotiated) -> PathAttribute:
        if len(value) < 5:
            raise AttributeValueError(
                UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, "MP_REACH_NLRI shorter than 5 octets"
            )
        family = _known_family(int.from_bytes(value[:2], "big"), value[2])
        if family is None:
            return UndecodedMpAttr(AttrType.MP_REACH_NLRI, *_raw_family(value), value)
        afi, safi = family
        nh_len = value[3]
        if 4 + nh_len + 1 > len(value):
            raise AttributeValueError(
                UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR,
                f"MP_REACH_NLRI next hop length {nh_len} overruns the attribute",
            )
        if nh_len not in _NEXT_HOP_LENGTHS[afi]:
            # RFC 7606 7.11: the NLRI cannot be located reliably, so the session is reset
            raise AttributeValueError(
                UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR,
                f"MP_REACH_NLRI next hop length {nh_len} invalid for {afi.name}",
            )
        next_hops = _decode_next_hops(value[4 : 4 + nh_len])
        reserved = value[4 + nh_len]
        try:
            nlri = decode_prefixes(value[5 + nh_len :], afi, (afi, safi) in ctx.addpath_receive)
        except BgpError as exc:
            raise AttributeValueError(
                UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, f"MP_REACH_NLRI: {exc.reason}"
            ) from None
        return cls(afi, safi, next_hops, nlri, reserved)

    def encode_value(self, ctx: Negotiated) -> bytes:
        nh = b"".join(a.packed for a in self.next_hops)
        addpath = (self.afi, self.safi) in ctx.addpath_send
        return (
            int(self.afi).to_bytes(2, "big")
            + bytes((self.safi, len(nh)))
            + nh
            + bytes((self.reserved,))
            + encode_prefixes(self.nlri, addpath)
        )

    @property
    def global_next_hop(self) -> IpAddress | None:
        """The first (global) next hop address."""
        return self.next_hops[0] if self.next_hops else None

    @property
    def link_local_next_hop(self) -> ipaddress.IPv6Address | None:
        """The IPv6 link-local next hop that may follow the global one (RFC 2545 3)."""
        if len(self.next_hops) > 1 and isinstance(self.next_hops[1], ipaddress.IPv6Address):
            return self.next_hops[1]
        return None


@register
@dataclass(frozen=True, slots=True)
class MpUnreachAttr(PathAttribute):
    """MP_UNREACH_NLRI: withdrawn prefixes of another family (RFC 4760 4)."""

    TYPE = AttrType.MP_UNREACH_NLRI
    FLAGS = OPTIONAL_NON_TRANSITIVE
    ON_ERROR = ErrorAction.SESSION_RESET
    RFC = "RFC 4760 section 4"
    INTERN = False  # carries NLRI, read with the session's add-path setting
    afi: Afi = Afi.IPV6
    safi: Safi = Safi.UNICAST
    withdrawn: tuple[Nlri, ...] = ()

    @classmethod
    def decode_value(cls, value: bytes, ctx: Negotiated) -> PathAttribute:
        if len(value) < 3:
            raise AttributeValueError(
                UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, "MP_UNREACH_NLRI shorter than 3 octets"
            )
        family = _known_family(int.from_bytes(value[:2], "big"), value[2])
        if family is None:
            return UndecodedMpAttr(AttrType.MP_UNREACH_NLRI, *_raw_family(value), value)
        afi, safi = family
        try:
            withdrawn = decode_prefixes(value[3:], afi, (afi, safi) in ctx.addpath_receive)
        except BgpError as exc:
            raise AttributeValueError(
                UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, f"MP_UNREACH_NLRI: {exc.reason}"
            ) from None
        return cls(afi, safi, withdrawn)

    def encode_value(self, ctx: Negotiated) -> bytes:
        addpath = (self.afi, self.safi) in ctx.addpath_send
        return (
            int(self.afi).to_bytes(2, "big")
            + bytes((self.safi,))
            + encode_prefixes(self.withdrawn, addpath)
        )


@dataclass(frozen=True, slots=True)
class UndecodedMpAttr(PathAttribute):
    """MP_REACH_NLRI or MP_UNREACH_NLRI of an address family this codec does not decode
    (e.g. VPNv4, AFI 1 SAFI 128), kept as received.

    Such an attribute is valid BGP (RFC 4760); it can only arrive for a family that was not
    negotiated (we announce only families we decode), and RFC 4760 section 7 says to ignore
    its routes.  Decoding it into an error would reset the session over routes we would
    ignore anyway; the session ignores it and counts it instead."""

    FLAGS = OPTIONAL_NON_TRANSITIVE
    RFC = "RFC 4760 section 7"
    INTERN = False
    mp_type: int = AttrType.MP_REACH_NLRI
    afi: int = 0
    safi: int = 0
    value: bytes = b""

    @property
    def type_code(self) -> int:
        return self.mp_type

    def encode_value(self, ctx: Negotiated) -> bytes:
        return self.value

    def for_propagation(self) -> PathAttribute | None:
        """Never passed on: it is non-transitive and its routes are ignored."""
        return None


MP_ATTRIBUTE_TYPES: frozenset[type[PathAttribute]] = frozenset(
    {MpReachAttr, MpUnreachAttr, UndecodedMpAttr}
)
"""The classes of MP_REACH_NLRI and MP_UNREACH_NLRI, decoded or not (none is subclassed): an
UPDATE whose attribute types are disjoint from these has no multiprotocol part, a test that
runs in C (``MP_ATTRIBUTE_TYPES.isdisjoint(map(type, update.attributes))``), once per UPDATE
in the session and the RIB."""


@dataclass(frozen=True, slots=True)
class UnknownAttr(PathAttribute):
    """An attribute we do not implement: type code, flags and value kept as received.

    Only optional attributes can be unknown (an unrecognised well-known one is an error,
    RFC 4271 6.3).  When passing one on, use :meth:`for_propagation`.
    """

    FLAGS = OPTIONAL_TRANSITIVE
    unknown_type: int = 0
    value: bytes = b""

    @property
    def type_code(self) -> int:
        return self.unknown_type

    def encode_value(self, ctx: Negotiated) -> bytes:
        return self.value

    @property
    def transitive(self) -> bool:
        """The Transitive bit: the attribute is passed on even by speakers that ignore it."""
        return bool(self.wire_flags() & _TRANSITIVE)

    def for_propagation(self) -> UnknownAttr | None:
        """The attribute to pass on to other peers, or None when it must be dropped.

        RFC 4271 5 and 9.1.3: an unrecognised optional transitive attribute is passed on with
        the Partial bit set; an unrecognised optional non-transitive one is quietly ignored
        and not passed on.
        """
        flags = self.wire_flags()
        if not flags & _TRANSITIVE:
            return None
        if flags & _PARTIAL:
            return self
        return replace(self, flags=flags | _PARTIAL)


def _attribute_bytes(flags: int, type_code: int, value: bytes) -> bytes:
    """Re-create an attribute's octets for a NOTIFICATION's Data field (RFC 4271 6.3)."""
    if flags & _EXTENDED or len(value) > 255:
        return bytes((flags | _EXTENDED, type_code)) + len(value).to_bytes(2, "big") + value
    return bytes((flags, type_code, len(value))) + value


# ---------------------------------------------------------------------------- decoding

# Interned attributes by their octets (flags, type, length, value), per 2- or 4-octet AS.
_attr_caches: tuple[dict[bytes, PathAttribute], dict[bytes, PathAttribute]] = ({}, {})
_ATTR_CACHE_LIMIT = 65536

DecodedAttributes = tuple[tuple[PathAttribute, ...], tuple[BgpError, ...], int, int]
"""(attributes, RFC 7606 errors, bit mask of the type codes decoded, mask of those dropped)."""

# Interned attribute lists by their octets, per (asn4, ebgp): the attributes, and the bit mask
# of their type codes in a parallel dict (no extra tuple per list: fewer objects for the GC).
# Only lists that decoded cleanly and carry no MP_REACH/MP_UNREACH_NLRI are interned.
_list_caches: tuple[dict[bytes, tuple[PathAttribute, ...]], ...] = ({}, {}, {}, {})
_mask_caches: tuple[dict[bytes, int], ...] = ({}, {}, {}, {})
LIST_CACHES = _list_caches  # for the UPDATE decoder's inlined lookup
MASK_CACHES = _mask_caches
_LIST_CACHE_LIMIT = 16384

_Lead = tuple[bytes, tuple[PathAttribute, ...], int]
# Per (asn4, ebgp): the attributes leading the last list that was not interned whole, up to its
# first attribute not interned by itself: their octets, the attributes and their type bits.  A
# feed of one MED per route repeats ORIGIN, AS_PATH and NEXT_HOP before it in every UPDATE: a
# list starting with those octets takes them from here instead of walking them again.
_leads: list[_Lead | None] = [None, None, None, None]

_MP_BITS = (1 << AttrType.MP_REACH_NLRI) | (1 << AttrType.MP_UNREACH_NLRI)
# RFC 7606 7.5, 7.9, 7.10: from an external peer these are discarded
_IBGP_ONLY = {
    AttrType.LOCAL_PREF: "7.5",
    AttrType.ORIGINATOR_ID: "7.9",
    AttrType.CLUSTER_LIST: "7.10",
}
_IBGP_ONLY_BITS = sum(1 << t for t in _IBGP_ONLY)


def clear_caches() -> None:
    """Forget interned attributes (tests; memory)."""
    for attrs in _attr_caches:
        attrs.clear()
    for lists in _list_caches:
        lists.clear()
    for masks in _mask_caches:
        masks.clear()
    _leads[:] = [None] * len(_leads)
    _next_hops.clear()


def decode_attribute(flags: int, type_code: int, value: bytes, ctx: Negotiated) -> PathAttribute:
    """Decode one attribute; raise BgpError (with its RFC 7606 action) if it is malformed."""
    value = bytes(value)
    raw = _attribute_bytes(flags, type_code, value)
    hit = _attr_caches[ctx.asn4].get(raw)
    if hit is not None:
        return hit
    return _decode_new(flags, type_code, value, raw, ctx)


def _decode_new(
    flags: int, type_code: int, value: bytes, raw: bytes, ctx: Negotiated
) -> PathAttribute:
    """Decode an attribute not yet interned; malformed ones are never interned."""
    cls = _REGISTRY.get(type_code)
    attr: PathAttribute
    if cls is None:
        if not flags & _OPTIONAL:
            raise update_error(
                UpdateSubcode.UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE,
                raw,
                f"unrecognized well-known attribute {type_code}",
            )
        attr = UnknownAttr(unknown_type=type_code, value=value, flags=flags)
    else:
        expected = _EXPECTED_FLAGS[type_code]
        if (flags & 0xC0) != expected:
            # RFC 4271 6.3 Attribute Flags Error; RFC 7606 3(c): the attribute is malformed
            raise update_error(
                UpdateSubcode.ATTRIBUTE_FLAGS_ERROR,
                raw,
                f"{AttrType(type_code).name} flags 0x{flags:02x}, expected 0x{int(cls.FLAGS):02x}",
                cls.ON_ERROR,
            )
        try:
            attr = cls.decode_value(value, ctx)
        except AttributeValueError as exc:
            raise update_error(exc.subcode, raw, exc.reason, cls.ON_ERROR) from None
        if flags != (expected | _EXTENDED if len(value) > 255 else expected):
            object.__setattr__(attr, "flags", flags)
        if not cls.INTERN:
            return attr
    cache = _attr_caches[ctx.asn4]
    if len(cache) >= _ATTR_CACHE_LIMIT:
        cache.clear()
    cache[raw] = attr
    return attr


def decode_attributes(data: bytes, ctx: Negotiated) -> DecodedAttributes:
    """Decode a path attribute list, applying RFC 7606's outcomes.

    Returns the attributes (malformed ones that RFC 7606 lets us survive, and repeats, left
    out), the errors met (each with its action), and bit masks (bit ``1 << type``) of the type
    codes decoded and of those dropped.  Errors that require a session reset are raised.
    """
    if type(data) is not bytes:
        data = bytes(data)
    hit = _list_caches[ctx.attribute_cache].get(data)
    if hit is not None:
        return hit, (), _mask_caches[ctx.attribute_cache][data], 0
    return decode_new_attributes(data, ctx)


def decode_new_attributes(data: bytes, ctx: Negotiated) -> DecodedAttributes:
    """:func:`decode_attributes` for a list not interned yet (it is interned if clean)."""
    cache = _attr_caches[ctx.asn4]
    get = cache.get
    ebgp = ctx.ebgp
    lead = _leads[ctx.attribute_cache]
    if lead is not None and data.startswith(lead[0]):
        # decoding reads the octets in order, so the same leading octets decode the same
        i = start = len(lead[0])
        attrs = list(lead[1])
        seen = lead[2]
    else:
        i = start = seen = 0
        attrs = []
    append = attrs.append
    errors: list[BgpError] = []
    dropped = 0
    n = len(data)
    while i < n:
        if data[i] & 0x10:  # Extended Length
            if i + 4 > n:
                errors.append(_framing_error(f"attribute header truncated at offset {i}"))
                break
            end = i + 4 + ((data[i + 2] << 8) | data[i + 3])
        else:
            if i + 3 > n:
                errors.append(_framing_error(f"attribute header truncated at offset {i}"))
                break
            end = i + 3 + data[i + 2]
        if end > n:
            _overrun(data, i, end, errors)
            break
        bit = 1 << data[i + 1]
        if seen & bit:
            _repeated(data[i + 1], errors)
            i = end
            continue
        seen |= bit
        raw = data[i:end]
        if ebgp and bit & _IBGP_ONLY_BITS:
            errors.append(_external(raw))
            dropped |= bit
            i = end
            continue
        attr = get(raw)
        if attr is None:
            if i > start and not errors:
                # the first attribute not interned, after more interned ones than the lead
                # holds: these are the lead now (only interned attributes, so never an MP
                # one, which is read with the session's add-path setting)
                _leads[ctx.attribute_cache] = (data[:i], tuple(attrs), seen & ~bit)
            start = n  # at the first only
            u32 = _U32_HEADERS.get(raw[:3])
            if u32 is not None:  # MED, LOCAL_PREF with their flags: built here
                attr = _new_object(u32)
                _set_u32(attr, int.from_bytes(raw[3:], "big"))
                _set_flags(attr, None)
                if u32 is LocalPrefAttr and len(cache) < _ATTR_CACHE_LIMIT:
                    # one LOCAL_PREF for most routes of an AS: interned (found above from
                    # now on, one object for all sets), a MED is not (it may differ per route)
                    cache[raw] = attr
                append(attr)
                i = end
                continue
            flags = data[i]
            try:
                attr = _decode_new(
                    flags, data[i + 1], raw[4:] if flags & 0x10 else raw[3:], raw, ctx
                )
            except BgpError as exc:
                if exc.action is ErrorAction.SESSION_RESET:
                    raise
                # recorded, not raised: drop the traceback, which would keep frames alive
                errors.append(exc.with_traceback(None))
                dropped |= bit
                i = end
                continue
        append(attr)
        i = end
    decoded = tuple(attrs)
    if errors or dropped:  # rare: not interned
        return decoded, tuple(errors), seen & ~dropped, dropped
    if not seen & _MP_BITS:  # MP attributes carry per-UPDATE NLRI: not interned
        lists = _list_caches[ctx.attribute_cache]
        masks = _mask_caches[ctx.attribute_cache]
        if len(lists) >= _LIST_CACHE_LIMIT:
            lists.clear()
            masks.clear()
        lists[data] = decoded
        masks[data] = seen
    return decoded, (), seen, 0


def _overrun(data: bytes, i: int, end: int, errors: list[BgpError]) -> None:
    type_code = data[i + 1]
    size = end - i - (4 if data[i] & 0x10 else 3)
    reason = f"attribute {type_code} length {size} overruns the attribute list"
    if type_code in (AttrType.MP_REACH_NLRI, AttrType.MP_UNREACH_NLRI):
        # RFC 7606 3(j), 5.3: its NLRI cannot be parsed, so treat-as-withdraw is impossible
        # and the session is reset
        raise update_error(UpdateSubcode.MALFORMED_ATTRIBUTE_LIST, reason=reason)
    # RFC 7606 4: the Total Attribute Length still locates the NLRI
    errors.append(_framing_error(reason))


def _external(raw: bytes) -> BgpError:
    type_code = AttrType(raw[1])
    return update_error(
        UpdateSubcode.UNSPECIFIC,
        raw,
        f"{type_code.name} from an external peer discarded (RFC 7606 {_IBGP_ONLY[type_code]})",
        ErrorAction.ATTRIBUTE_DISCARD,
    )


def _repeated(type_code: int, errors: list[BgpError]) -> None:
    if type_code in (AttrType.MP_REACH_NLRI, AttrType.MP_UNREACH_NLRI):
        # RFC 7606 3(g)
        raise update_error(
            UpdateSubcode.MALFORMED_ATTRIBUTE_LIST,
            reason=f"attribute {type_code} appears more than once (RFC 7606 3g)",
        )
    # RFC 7606 3(g): keep the first, discard the repeats
    errors.append(
        update_error(
            UpdateSubcode.MALFORMED_ATTRIBUTE_LIST,
            reason=f"attribute {type_code} repeated; later copies discarded (RFC 7606 3g)",
            action=ErrorAction.ATTRIBUTE_DISCARD,
        )
    )


def _framing_error(reason: str) -> BgpError:
    # RFC 7606 4: treat-as-withdraw (escalated to a reset when no NLRI is reachable, 5.2)
    return update_error(
        UpdateSubcode.MALFORMED_ATTRIBUTE_LIST, reason=reason, action=ErrorAction.TREAT_AS_WITHDRAW
    )
