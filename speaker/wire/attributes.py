"""Path attributes (RFC 4271 4.3, 5), one class per attribute, found through a registry.

Each class declares its wire flags, and what RFC 7606 says to do when it is malformed
(``ON_ERROR``).  The decoder checks flags against the declaration (RFC 7606 3c), keeps unknown
attributes with their flags and bytes, and interns decoded attributes by their bytes: a feed
of 100,000 routes repeats the same few ORIGIN/AS_PATH/NEXT_HOP values, so they are decoded
once (BIRD interns attribute sets for the same reason).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
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
from speaker.wire.errors import BgpError, ErrorAction, update_error
from speaker.wire.nlri import Nlri, decode_prefixes, encode_prefixes

AS_TRANS = 23456  # RFC 6793 9
_ZERO = ipaddress.IPv4Address(0)

WELL_KNOWN = AttrFlag.TRANSITIVE
OPTIONAL_TRANSITIVE = AttrFlag.OPTIONAL | AttrFlag.TRANSITIVE
OPTIONAL_NON_TRANSITIVE = AttrFlag.OPTIONAL
_FLAG_MASK = AttrFlag.OPTIONAL | AttrFlag.TRANSITIVE


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
    INTERN: ClassVar[bool] = True  # decoded once per distinct (flags, type, value, asn4)

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

    def encode(self, ctx: Negotiated) -> bytes:
        """Flags, type, length and value (RFC 4271 4.3)."""
        value = self.encode_value(ctx)
        flags = self.wire_flags()
        if len(value) > 255:
            flags |= AttrFlag.EXTENDED_LENGTH
        if flags & AttrFlag.EXTENDED_LENGTH:
            return bytes((flags, self.type_code)) + len(value).to_bytes(2, "big") + value
        return bytes((flags, self.type_code, len(value))) + value


_REGISTRY: dict[int, type[PathAttribute]] = {}
ATTRIBUTES = MappingProxyType(_REGISTRY)
"""Attribute type code -> class (read-only)."""

A = TypeVar("A", bound=type[PathAttribute])


def register(cls: A) -> A:
    """Class decorator: enter an attribute class into the registry (once per type code)."""
    if cls.TYPE in _REGISTRY:
        raise RuntimeError(f"attribute {cls.TYPE} registered twice")
    _REGISTRY[cls.TYPE] = cls
    return cls


def _fixed_length(value: bytes, size: int, what: str) -> None:
    if len(value) != size:
        raise AttributeValueError(
            UpdateSubcode.ATTRIBUTE_LENGTH_ERROR, f"{what} length {len(value)}, must be {size}"
        )


def _multiple_length(value: bytes, size: int, what: str) -> None:
    if len(value) % size:
        raise AttributeValueError(
            UpdateSubcode.ATTRIBUTE_LENGTH_ERROR,
            f"{what} length {len(value)} is not a multiple of {size}",
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


@dataclass(frozen=True, slots=True)
class AsPathSegment:
    """One AS_PATH segment: its type and AS numbers (RFC 4271 4.3)."""

    type: AsPathSegmentType
    asns: tuple[int, ...]


def _decode_segments(value: bytes, width: int, what: str) -> tuple[AsPathSegment, ...]:
    segments: list[AsPathSegment] = []
    i = 0
    n = len(value)
    while i < n:
        if i + 2 > n:
            raise AttributeValueError(UpdateSubcode.MALFORMED_AS_PATH, f"{what} segment truncated")
        kind, count = value[i], value[i + 1]
        if count == 0:
            raise AttributeValueError(UpdateSubcode.MALFORMED_AS_PATH, f"{what} empty segment")
        try:
            seg_type = AsPathSegmentType(kind)
        except ValueError:
            raise AttributeValueError(
                UpdateSubcode.MALFORMED_AS_PATH, f"{what} segment type {kind} undefined"
            ) from None
        end = i + 2 + count * width
        if end > n:
            raise AttributeValueError(
                UpdateSubcode.MALFORMED_AS_PATH,
                f"{what} segment of {count} AS numbers overruns the attribute",
            )
        asns = tuple(
            int.from_bytes(value[j : j + width], "big") for j in range(i + 2, end, width)
        )
        segments.append(AsPathSegment(seg_type, asns))
        i = end
    return tuple(segments)


def _encode_segments(segments: tuple[AsPathSegment, ...], width: int) -> bytes:
    out = bytearray()
    for seg in segments:
        out += bytes((seg.type, len(seg.asns)))
        for asn in seg.asns:
            if width == 2 and asn > 0xFFFF:
                asn = AS_TRANS
            out += asn.to_bytes(width, "big")
    return bytes(out)


def path_length(segments: tuple[AsPathSegment, ...]) -> int:
    """AS path length for route selection: a set counts 1, confederation segments 0."""
    total = 0
    for seg in segments:
        if seg.type is AsPathSegmentType.AS_SEQUENCE:
            total += len(seg.asns)
        elif seg.type is AsPathSegmentType.AS_SET:
            total += 1
    return total


@register
@dataclass(frozen=True, slots=True)
class AsPathAttr(PathAttribute):
    """AS_PATH: the ASes the route crossed; 2 or 4 octets each per RFC 6793 (RFC 4271 5.1.2)."""

    TYPE = AttrType.AS_PATH
    RFC = "RFC 4271 section 5.1.2, RFC 6793"
    segments: tuple[AsPathSegment, ...] = ()

    @classmethod
    def decode_value(cls, value: bytes, ctx: Negotiated) -> PathAttribute:
        return cls(_decode_segments(value, 4 if ctx.asn4 else 2, "AS_PATH"))

    def encode_value(self, ctx: Negotiated) -> bytes:
        return _encode_segments(self.segments, 4 if ctx.asn4 else 2)

    @property
    def length(self) -> int:
        """Length used by route selection (RFC 4271 9.1.2.2 a)."""
        return path_length(self.segments)

    def __str__(self) -> str:
        parts = []
        for seg in self.segments:
            text = " ".join(str(a) for a in seg.asns)
            parts.append(text if seg.type is AsPathSegmentType.AS_SEQUENCE else f"{{{text}}}")
        return " ".join(parts)


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
        return cls(_decode_segments(value, 4, "AS4_PATH"))

    def encode_value(self, ctx: Negotiated) -> bytes:
        return _encode_segments(self.segments, 4)


def _ipv4(value: bytes) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(value)


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
            # semantically incorrect next hop (RFC 4271 6.3), treat-as-withdraw (RFC 7606 7.3)
            raise AttributeValueError(
                UpdateSubcode.INVALID_NEXT_HOP_ATTRIBUTE, f"NEXT_HOP {address} is not a host"
            )
        return cls(address)

    def encode_value(self, ctx: Negotiated) -> bytes:
        return self.address.packed


_BROADCAST = ipaddress.IPv4Address("255.255.255.255")


@dataclass(frozen=True, slots=True)
class _U32Attr(PathAttribute):
    value: int = 0

    @classmethod
    def decode_value(cls, value: bytes, ctx: Negotiated) -> PathAttribute:
        _fixed_length(value, 4, AttrType(cls.TYPE).name)
        return cls(int.from_bytes(value, "big"))

    def encode_value(self, ctx: Negotiated) -> bytes:
        return self.value.to_bytes(4, "big")


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
        return cls(int.from_bytes(value[:width], "big"), _ipv4(value[width:]))

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
    ON_ERROR = ErrorAction.ATTRIBUTE_DISCARD
    RFC = "RFC 6793 section 3"
    asn: int = 0
    address: ipaddress.IPv4Address = _ZERO

    @classmethod
    def decode_value(cls, value: bytes, ctx: Negotiated) -> PathAttribute:
        _fixed_length(value, 8, "AS4_AGGREGATOR")
        return cls(int.from_bytes(value[:4], "big"), _ipv4(value[4:]))

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


def _family(afi: int, safi: int) -> tuple[Afi, Safi]:
    try:
        return Afi(afi), Safi(safi)
    except ValueError:
        raise AttributeValueError(
            UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, f"unsupported AFI/SAFI {afi}/{safi}"
        ) from None


IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


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
        afi, safi = _family(int.from_bytes(value[:2], "big"), value[2])
        nh_len = value[3]
        if 4 + nh_len + 1 > len(value):
            raise AttributeValueError(
                UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR,
                f"MP_REACH_NLRI next hop length {nh_len} overruns the attribute",
            )
        raw = value[4 : 4 + nh_len]
        size = 4 if afi is Afi.IPV4 else 16
        if nh_len == 0 or nh_len % size:
            raise AttributeValueError(
                UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR,
                f"MP_REACH_NLRI next hop length {nh_len} invalid for {afi.name}",
            )
        next_hops: tuple[IpAddress, ...] = tuple(
            ipaddress.ip_address(raw[i : i + size]) for i in range(0, nh_len, size)
        )
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
        afi, safi = _family(int.from_bytes(value[:2], "big"), value[2])
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
class UnknownAttr(PathAttribute):
    """An attribute we do not implement: type code, flags and value kept as received."""

    unknown_type: int = 0
    value: bytes = b""

    @property
    def type_code(self) -> int:
        return self.unknown_type

    def encode_value(self, ctx: Negotiated) -> bytes:
        return self.value


def _attribute_bytes(flags: int, type_code: int, value: bytes) -> bytes:
    """Re-create an attribute's octets for a NOTIFICATION's Data field (RFC 4271 6.3)."""
    if flags & AttrFlag.EXTENDED_LENGTH:
        return bytes((flags, type_code)) + len(value).to_bytes(2, "big") + value
    return bytes((flags, type_code, len(value) & 0xFF)) + value


_cache: dict[tuple[bool, bytes], PathAttribute | BgpError] = {}
_CACHE_LIMIT = 65536


def decode_attribute(flags: int, type_code: int, value: bytes, ctx: Negotiated) -> PathAttribute:
    """Decode one attribute; raise BgpError (with its RFC 7606 action) if it is malformed."""
    cls = _REGISTRY.get(type_code)
    if cls is None:
        if not flags & AttrFlag.OPTIONAL:
            raise update_error(
                UpdateSubcode.UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE,
                _attribute_bytes(flags, type_code, value),
                f"unrecognized well-known attribute {type_code}",
            )
        return UnknownAttr(unknown_type=type_code, value=bytes(value), flags=flags)
    key = (ctx.asn4, bytes((flags, type_code)) + value)
    hit = _cache.get(key)
    if hit is not None:
        if isinstance(hit, BgpError):
            raise hit
        return hit
    try:
        result: PathAttribute | BgpError = _decode_known(cls, flags, type_code, value, ctx)
    except BgpError as exc:
        result = exc
    if cls.INTERN:
        if len(_cache) >= _CACHE_LIMIT:
            _cache.clear()
        _cache[key] = result
    if isinstance(result, BgpError):
        raise result
    return result


def _decode_known(
    cls: type[PathAttribute], flags: int, type_code: int, value: bytes, ctx: Negotiated
) -> PathAttribute:
    if (flags & _FLAG_MASK) != cls.FLAGS:
        # RFC 7606 3(c): conflicting Optional/Transitive bits make the attribute malformed
        raise update_error(
            UpdateSubcode.ATTRIBUTE_FLAGS_ERROR,
            _attribute_bytes(flags, type_code, value),
            f"{AttrType(type_code).name} flags 0x{flags:02x}, expected 0x{int(cls.FLAGS):02x}",
            cls.ON_ERROR,
        )
    try:
        attr = cls.decode_value(value, ctx)
    except AttributeValueError as exc:
        raise update_error(
            exc.subcode, _attribute_bytes(flags, type_code, value), exc.reason, cls.ON_ERROR
        ) from None
    canonical = int(cls.FLAGS) | (AttrFlag.EXTENDED_LENGTH if len(value) > 255 else 0)
    if flags != canonical:
        object.__setattr__(attr, "flags", flags)
    return attr
