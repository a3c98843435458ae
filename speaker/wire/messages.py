"""BGP messages (RFC 4271 4, RFC 2918, RFC 7313): one frozen dataclass each, and the framing.

``decode_message(data, ctx)`` reads one whole message (header included) and ``msg.encode(ctx)``
writes it back byte for byte.  Message types are found through a registry.  Malformed input
raises :class:`~speaker.wire.errors.BgpError` with the NOTIFICATION RFC 4271 section 6
prescribes; an UPDATE whose attributes RFC 7606 lets us survive decodes with its ``errors``
recorded (treat-as-withdraw, attribute-discard) instead.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import ClassVar, TypeVar

from speaker.wire.attributes import (
    MpReachAttr,
    MpUnreachAttr,
    NextHopAttr,
    PathAttribute,
    decode_attribute,
)
from speaker.wire.capabilities import Capability, decode_capabilities
from speaker.wire.context import IPV4_UNICAST, MAX_MESSAGE_SIZE, Family, Negotiated
from speaker.wire.enums import (
    Afi,
    AttrFlag,
    AttrType,
    CeaseSubcode,
    ErrorCode,
    HeaderSubcode,
    MessageType,
    OpenSubcode,
    OptParamType,
    RouteRefreshSubcode,
    RouteRefreshSubtype,
    Safi,
    UpdateSubcode,
    code_name,
    subcode_name,
)
from speaker.wire.errors import (
    BgpError,
    ErrorAction,
    header_error,
    open_error,
    update_error,
)
from speaker.wire.nlri import Nlri, decode_prefixes, encode_prefix, encode_prefixes

MARKER = b"\xff" * 16
HEADER_SIZE = 19
_HEADER = struct.Struct("!16sHB")

# Smallest legal length of each message (RFC 4271 6.1, RFC 2918 3)
MIN_LENGTH = {
    MessageType.OPEN: 29,
    MessageType.UPDATE: 23,
    MessageType.NOTIFICATION: 21,
    MessageType.KEEPALIVE: 19,
    MessageType.ROUTE_REFRESH: 23,
}


@dataclass(frozen=True, slots=True)
class Message:
    """Base of all messages: ``TYPE`` is the header's type code."""

    TYPE: ClassVar[MessageType]

    @classmethod
    def decode_body(cls, body: bytes, ctx: Negotiated) -> Message:
        """Build from the octets after the 19-octet header."""
        raise NotImplementedError

    def encode_body(self, ctx: Negotiated) -> bytes:
        """The octets after the header."""
        raise NotImplementedError

    def encode(self, ctx: Negotiated) -> bytes:
        """The whole message: marker, length, type, body (RFC 4271 4.1)."""
        body = self.encode_body(ctx)
        return _HEADER.pack(MARKER, HEADER_SIZE + len(body), self.TYPE) + body


_REGISTRY: dict[int, type[Message]] = {}
MESSAGES = MappingProxyType(_REGISTRY)
"""Message type code -> class (read-only)."""

M = TypeVar("M", bound=type[Message])


def register(cls: M) -> M:
    """Class decorator: enter a message class into the registry (once per type)."""
    if cls.TYPE in _REGISTRY:
        raise RuntimeError(f"message type {cls.TYPE} registered twice")
    _REGISTRY[cls.TYPE] = cls
    return cls


# ---------------------------------------------------------------------------- OPEN


@dataclass(frozen=True, slots=True)
class CapabilitiesParameter:
    """Optional parameter 2: a list of capabilities (RFC 5492 4)."""

    capabilities: tuple[Capability, ...]

    type_code: ClassVar[int] = OptParamType.CAPABILITIES

    def encode_value(self) -> bytes:
        return b"".join(c.encode() for c in self.capabilities)


@dataclass(frozen=True, slots=True)
class UnknownParameter:
    """An optional parameter other than capabilities, kept as bytes."""

    type_code: int
    value: bytes

    def encode_value(self) -> bytes:
        return self.value


OptionalParameter = CapabilitiesParameter | UnknownParameter


@register
@dataclass(frozen=True, slots=True)
class Open(Message):
    """OPEN: version, AS, hold time, BGP identifier and capabilities (RFC 4271 4.2).

    ``my_as`` is the 2-octet field (AS_TRANS when the real AS needs 4 octets, RFC 6793);
    :attr:`asn` gives the real AS from the 4-octet AS capability when present.
    ``extended_parameters`` records RFC 9072's long form of the parameter list.
    """

    TYPE = MessageType.OPEN
    version: int
    my_as: int
    hold_time: int
    bgp_id: ipaddress.IPv4Address
    parameters: tuple[OptionalParameter, ...] = ()
    extended_parameters: bool = False

    @classmethod
    def build(
        cls, asn: int, hold_time: int, bgp_id: ipaddress.IPv4Address, caps: Iterable[Capability]
    ) -> Open:
        """An OPEN with all capabilities in one parameter, as BIRD sends them."""
        caps = tuple(caps)
        params: tuple[OptionalParameter, ...] = (CapabilitiesParameter(caps),) if caps else ()
        return cls(4, asn if asn <= 0xFFFF else 23456, hold_time, bgp_id, params)

    @property
    def capabilities(self) -> tuple[Capability, ...]:
        """Every capability, in order, from every Capabilities parameter."""
        out: list[Capability] = []
        for p in self.parameters:
            if isinstance(p, CapabilitiesParameter):
                out.extend(p.capabilities)
        return tuple(out)

    def capability(self, code: int) -> Capability | None:
        """The first capability with this code, if any."""
        for cap in self.capabilities:
            if cap.code == code:
                return cap
        return None

    @property
    def asn(self) -> int:
        """The sender's AS: the 4-octet AS capability's, else the My AS field (RFC 6793 4.1)."""
        from speaker.wire.capabilities import FourOctetAsCapability

        cap = self.capability(FourOctetAsCapability.CODE)
        return cap.asn if isinstance(cap, FourOctetAsCapability) else self.my_as

    @classmethod
    def decode_body(cls, body: bytes, ctx: Negotiated) -> Message:
        if len(body) < 10:
            raise header_error(
                HeaderSubcode.BAD_MESSAGE_LENGTH,
                (len(body) + HEADER_SIZE).to_bytes(2, "big"),
                "OPEN shorter than 29 octets",
            )
        version, my_as, hold, bgp_id, plen = struct.unpack_from("!BHHIB", body)
        if version != 4:
            # Data: the largest version we support (RFC 4271 6.2)
            raise open_error(
                OpenSubcode.UNSUPPORTED_VERSION_NUMBER, b"\x00\x04", f"version {version}"
            )
        extended = False
        start = 10
        # RFC 9072: a length of 255 followed by type 255 marks 2-octet lengths
        if plen == 255 and len(body) >= 13 and body[10] == OptParamType.EXTENDED_LENGTH:
            extended = True
            plen = int.from_bytes(body[11:13], "big")
            start = 13
        if start + plen != len(body):
            raise open_error(
                OpenSubcode.UNSPECIFIC,
                reason=f"optional parameters length {plen} disagrees with the message length",
            )
        params: list[OptionalParameter] = []
        i = start
        end = start + plen
        head = 3 if extended else 2
        while i < end:
            if i + head > end:
                raise open_error(OpenSubcode.UNSPECIFIC, reason="optional parameter truncated")
            ptype = body[i]
            plength = int.from_bytes(body[i + 1 : i + head], "big")
            value = body[i + head : i + head + plength]
            if i + head + plength > end:
                raise open_error(
                    OpenSubcode.UNSPECIFIC,
                    reason=f"optional parameter {ptype} length {plength} overruns the OPEN",
                )
            if ptype == OptParamType.CAPABILITIES:
                params.append(CapabilitiesParameter(decode_capabilities(value)))
            else:
                # RFC 4271 6.2: unrecognised optional parameter
                raise open_error(
                    OpenSubcode.UNSUPPORTED_OPTIONAL_PARAMETER,
                    reason=f"optional parameter type {ptype} is not supported",
                )
            i += head + plength
        return cls(
            version, my_as, hold, ipaddress.IPv4Address(bgp_id), tuple(params), extended
        )

    def encode_body(self, ctx: Negotiated) -> bytes:
        head = struct.pack("!BHHI", self.version, self.my_as, self.hold_time, int(self.bgp_id))
        if self.extended_parameters:
            params = b"".join(
                bytes((p.type_code,)) + len(v).to_bytes(2, "big") + v
                for p in self.parameters
                for v in (p.encode_value(),)
            )
            return head + b"\xff\xff" + len(params).to_bytes(2, "big") + params
        params = b"".join(
            bytes((p.type_code, len(v))) + v for p in self.parameters for v in (p.encode_value(),)
        )
        return head + bytes((len(params),)) + params


# ---------------------------------------------------------------------------- UPDATE


@register
@dataclass(frozen=True, slots=True)
class Update(Message):
    """UPDATE: withdrawn routes, path attributes, NLRI (RFC 4271 4.3).

    ``errors`` holds the RFC 7606 outcomes met while decoding (treat-as-withdraw or
    attribute-discard); a discarded attribute is left out of ``attributes``.  When
    :attr:`treat_as_withdraw` is true the receiver must withdraw every NLRI of the message.
    """

    TYPE = MessageType.UPDATE
    withdrawn: tuple[Nlri, ...] = ()
    attributes: tuple[PathAttribute, ...] = ()
    nlri: tuple[Nlri, ...] = ()
    errors: tuple[BgpError, ...] = field(default=(), compare=False, repr=False)

    def attribute(self, type_code: int) -> PathAttribute | None:
        """The attribute with this type code, if present."""
        for attr in self.attributes:
            if attr.type_code == type_code:
                return attr
        return None

    @property
    def treat_as_withdraw(self) -> bool:
        """RFC 7606 2: the NLRI of this UPDATE are to be withdrawn, not announced."""
        return any(e.action is ErrorAction.TREAT_AS_WITHDRAW for e in self.errors)

    def end_of_rib(self) -> Family | None:
        """The family this UPDATE ends the initial feed of, if it is End-of-RIB (RFC 4724 2)."""
        if not self.withdrawn and not self.nlri:
            if not self.attributes:
                return IPV4_UNICAST
            if len(self.attributes) == 1:
                attr = self.attributes[0]
                if isinstance(attr, MpUnreachAttr) and not attr.withdrawn:
                    return (attr.afi, attr.safi)
        return None

    def families(self) -> tuple[Family, ...]:
        """The families whose routes this UPDATE announces or withdraws."""
        fams: list[Family] = []
        if self.withdrawn or self.nlri:
            fams.append(IPV4_UNICAST)
        for attr in self.attributes:
            if isinstance(attr, (MpReachAttr, MpUnreachAttr)):
                fam = (attr.afi, attr.safi)
                if fam not in fams:
                    fams.append(fam)
        return tuple(fams)

    @classmethod
    def end_of_rib_marker(cls, family: Family) -> Update:
        """End-of-RIB: an empty UPDATE for IPv4 unicast, else an empty MP_UNREACH_NLRI."""
        if family == IPV4_UNICAST:
            return cls()
        return cls(attributes=(MpUnreachAttr(Afi(family[0]), Safi(family[1]), ()),))

    @classmethod
    def decode_body(cls, body: bytes, ctx: Negotiated) -> Message:
        n = len(body)
        wlen = int.from_bytes(body[0:2], "big")
        if 2 + wlen + 2 > n:
            raise update_error(
                UpdateSubcode.MALFORMED_ATTRIBUTE_LIST,
                reason=f"withdrawn routes length {wlen} overruns the UPDATE",
            )
        alen = int.from_bytes(body[2 + wlen : 4 + wlen], "big")
        astart = 4 + wlen
        aend = astart + alen
        if aend > n:
            raise update_error(
                UpdateSubcode.MALFORMED_ATTRIBUTE_LIST,
                reason=f"total path attribute length {alen} overruns the UPDATE",
            )
        addpath = IPV4_UNICAST in ctx.addpath_receive
        withdrawn = decode_prefixes(body[2 : 2 + wlen], Afi.IPV4, addpath) if wlen else ()
        nlri = decode_prefixes(body[aend:], Afi.IPV4, addpath) if aend < n else ()
        attributes, errors = _decode_attributes(body[astart:aend], ctx)
        if nlri or (attributes and not withdrawn and not _only_unreach(attributes)):
            errors = _check_mandatory(attributes, bool(nlri), errors)
        return cls(withdrawn, attributes, nlri, errors)

    def encode_body(self, ctx: Negotiated) -> bytes:
        addpath = IPV4_UNICAST in ctx.addpath_send
        withdrawn = encode_prefixes(self.withdrawn, addpath)
        attrs = b"".join([a.encode(ctx) for a in self.attributes])
        return (
            len(withdrawn).to_bytes(2, "big")
            + withdrawn
            + len(attrs).to_bytes(2, "big")
            + attrs
            + encode_prefixes(self.nlri, addpath)
        )


def _only_unreach(attributes: tuple[PathAttribute, ...]) -> bool:
    return all(isinstance(a, MpUnreachAttr) for a in attributes)


def _decode_attributes(
    data: bytes, ctx: Negotiated
) -> tuple[tuple[PathAttribute, ...], tuple[BgpError, ...]]:
    """Decode the path attribute list, applying RFC 7606's outcomes."""
    attrs: list[PathAttribute] = []
    errors: list[BgpError] = []
    seen: set[int] = set()
    i = 0
    n = len(data)
    while i < n:
        if i + 3 > n:
            errors.append(_list_error(f"attribute header truncated at offset {i}"))
            break
        flags = data[i]
        type_code = data[i + 1]
        if flags & AttrFlag.EXTENDED_LENGTH:
            if i + 4 > n:
                errors.append(_list_error(f"attribute header truncated at offset {i}"))
                break
            length = (data[i + 2] << 8) | data[i + 3]
            start = i + 4
        else:
            length = data[i + 2]
            start = i + 3
        end = start + length
        if end > n:
            # RFC 7606 4: the NLRI can still be located, so the UPDATE is treat-as-withdraw
            # unless it carries MP_REACH/MP_UNREACH, whose NLRI are then lost (session reset).
            if type_code in (AttrType.MP_REACH_NLRI, AttrType.MP_UNREACH_NLRI):
                raise update_error(
                    UpdateSubcode.ATTRIBUTE_LENGTH_ERROR,
                    data[i:],
                    f"attribute {type_code} length {length} overruns the attribute list",
                )
            errors.append(
                _list_error(f"attribute {type_code} length {length} overruns the attribute list")
            )
            break
        if type_code in seen:
            if type_code in (AttrType.MP_REACH_NLRI, AttrType.MP_UNREACH_NLRI):
                raise update_error(
                    UpdateSubcode.MALFORMED_ATTRIBUTE_LIST,
                    reason=f"attribute {type_code} appears twice (RFC 7606 3g)",
                )
            # RFC 7606 3(g): keep the first, discard the repeats
            errors.append(
                update_error(
                    UpdateSubcode.MALFORMED_ATTRIBUTE_LIST,
                    reason=f"attribute {type_code} repeated; later copies discarded",
                    action=ErrorAction.ATTRIBUTE_DISCARD,
                )
            )
            i = end
            continue
        seen.add(type_code)
        try:
            attrs.append(decode_attribute(flags, type_code, data[start:end], ctx))
        except BgpError as exc:
            if exc.action is ErrorAction.SESSION_RESET:
                raise
            errors.append(exc)
        i = end
    return tuple(attrs), tuple(errors)


def _list_error(reason: str) -> BgpError:
    return update_error(
        UpdateSubcode.MALFORMED_ATTRIBUTE_LIST, reason=reason, action=ErrorAction.TREAT_AS_WITHDRAW
    )


def _check_mandatory(
    attrs: tuple[PathAttribute, ...], ipv4_nlri: bool, errors: tuple[BgpError, ...]
) -> tuple[BgpError, ...]:
    """Missing well-known attributes (RFC 4271 6.3) become treat-as-withdraw (RFC 7606 3d)."""
    present = {a.type_code for a in attrs}
    reach = AttrType.MP_REACH_NLRI in present
    if not ipv4_nlri and not reach:
        return errors
    required = [AttrType.ORIGIN, AttrType.AS_PATH]
    if ipv4_nlri:
        required.append(AttrType.NEXT_HOP)
    missing = [t for t in required if t not in present]
    if not missing:
        return errors
    # Do not report a missing attribute that was present but malformed (already reported).
    already = {e.data[1] for e in errors if len(e.data) >= 2}
    out = list(errors)
    for t in missing:
        if t in already:
            continue
        out.append(
            update_error(
                UpdateSubcode.MISSING_WELL_KNOWN_ATTRIBUTE,
                bytes((t,)),
                f"missing well-known attribute {t.name}",
                ErrorAction.TREAT_AS_WITHDRAW,
            )
        )
    return tuple(out)


# ---------------------------------------------------------------------------- NOTIFICATION


@register
@dataclass(frozen=True, slots=True)
class Notification(Message):
    """NOTIFICATION: error code, subcode and data; the connection closes after it (RFC 4271 4.5)."""

    TYPE = MessageType.NOTIFICATION
    code: int
    subcode: int = 0
    data: bytes = b""

    @classmethod
    def from_error(cls, error: BgpError) -> Notification:
        """The NOTIFICATION a codec error prescribes."""
        return cls(error.code, error.subcode, error.data)

    @classmethod
    def cease(cls, subcode: CeaseSubcode, message: str = "") -> Notification:
        """A Cease, with an RFC 9003 shutdown communication for shutdown and reset."""
        data = b""
        if message and subcode in (
            CeaseSubcode.ADMINISTRATIVE_SHUTDOWN,
            CeaseSubcode.ADMINISTRATIVE_RESET,
        ):
            text = message.encode()[:255]
            data = bytes((len(text),)) + text
        return cls(ErrorCode.CEASE, subcode, data)

    @property
    def shutdown_message(self) -> str | None:
        """The RFC 9003 shutdown communication, if this Cease carries one."""
        if self.code != ErrorCode.CEASE or self.subcode not in (
            CeaseSubcode.ADMINISTRATIVE_SHUTDOWN,
            CeaseSubcode.ADMINISTRATIVE_RESET,
        ):
            return None
        if not self.data or self.data[0] + 1 > len(self.data):
            return None
        return self.data[1 : 1 + self.data[0]].decode("utf-8", "replace")

    def describe(self) -> str:
        """e.g. ``Cease/ADMINISTRATIVE_SHUTDOWN (6/2) "maintenance"``."""
        text = (
            f"{code_name(self.code)}/{subcode_name(self.code, self.subcode)} "
            f"({self.code}/{self.subcode})"
        )
        msg = self.shutdown_message
        if msg:
            text += f' "{msg}"'
        elif self.data:
            text += f" data {self.data.hex()}"
        return text

    @classmethod
    def decode_body(cls, body: bytes, ctx: Negotiated) -> Message:
        return cls(body[0], body[1], bytes(body[2:]))

    def encode_body(self, ctx: Negotiated) -> bytes:
        return bytes((self.code, self.subcode)) + self.data


# ---------------------------------------------------------------------------- KEEPALIVE


@register
@dataclass(frozen=True, slots=True)
class Keepalive(Message):
    """KEEPALIVE: the header alone, keeping the hold timer from expiring (RFC 4271 4.4)."""

    TYPE = MessageType.KEEPALIVE

    @classmethod
    def decode_body(cls, body: bytes, ctx: Negotiated) -> Message:
        return cls()

    def encode_body(self, ctx: Negotiated) -> bytes:
        return b""


# ---------------------------------------------------------------------------- ROUTE-REFRESH


@register
@dataclass(frozen=True, slots=True)
class RouteRefresh(Message):
    """ROUTE-REFRESH: ask for (or demarcate, RFC 7313) a family's routes again (RFC 2918 3)."""

    TYPE = MessageType.ROUTE_REFRESH
    afi: Afi | int = Afi.IPV4
    safi: Safi | int = Safi.UNICAST
    subtype: RouteRefreshSubtype | int = RouteRefreshSubtype.NORMAL

    @classmethod
    def decode_body(cls, body: bytes, ctx: Negotiated) -> Message:
        if len(body) != 4:
            # RFC 7313 5: Data carries the whole message
            message = _HEADER.pack(MARKER, HEADER_SIZE + len(body), MessageType.ROUTE_REFRESH)
            raise BgpError(
                ErrorCode.ROUTE_REFRESH_MESSAGE,
                RouteRefreshSubcode.INVALID_MESSAGE_LENGTH,
                message + body,
                f"ROUTE-REFRESH length {HEADER_SIZE + len(body)}, must be 23",
            )
        afi_raw = int.from_bytes(body[:2], "big")
        try:
            afi: Afi | int = Afi(afi_raw)
        except ValueError:
            afi = afi_raw
        try:
            safi: Safi | int = Safi(body[3])
        except ValueError:
            safi = body[3]
        try:
            subtype: RouteRefreshSubtype | int = RouteRefreshSubtype(body[2])
        except ValueError:
            subtype = body[2]  # RFC 7313 5: unknown subtypes are ignored by the receiver
        return cls(afi, safi, subtype)

    def encode_body(self, ctx: Negotiated) -> bytes:
        return int(self.afi).to_bytes(2, "big") + bytes((int(self.subtype), int(self.safi)))


# ---------------------------------------------------------------------------- framing


def check_header(data: bytes, ctx: Negotiated) -> tuple[int, int]:
    """Validate a 19-octet header; return (message length, type) (RFC 4271 6.1)."""
    marker, length, mtype = _HEADER.unpack_from(data)
    if marker != MARKER:
        raise header_error(HeaderSubcode.CONNECTION_NOT_SYNCHRONIZED, reason="marker not all ones")
    # RFC 8654 4: OPEN and KEEPALIVE stay within 4096 octets even with extended messages
    small = mtype in (MessageType.OPEN, MessageType.KEEPALIVE)
    limit = MAX_MESSAGE_SIZE if small else ctx.max_message_size
    if mtype not in _REGISTRY:
        raise header_error(
            HeaderSubcode.BAD_MESSAGE_TYPE, bytes((mtype,)), f"message type {mtype} unknown"
        )
    minimum = MIN_LENGTH[MessageType(mtype)]
    bad = length < minimum or length > limit
    if mtype == MessageType.KEEPALIVE:
        bad = length != HEADER_SIZE
    if bad:
        raise header_error(
            HeaderSubcode.BAD_MESSAGE_LENGTH,
            length.to_bytes(2, "big"),
            f"{MessageType(mtype).name} length {length} outside {minimum}..{limit}",
        )
    return length, mtype


def decode_message(data: bytes, ctx: Negotiated) -> Message:
    """Decode one whole message, header included; raise BgpError if malformed."""
    if len(data) < HEADER_SIZE:
        raise header_error(
            HeaderSubcode.BAD_MESSAGE_LENGTH,
            len(data).to_bytes(2, "big"),
            f"message of {len(data)} octets is shorter than the header",
        )
    length, mtype = check_header(data, ctx)
    if length != len(data):
        raise header_error(
            HeaderSubcode.BAD_MESSAGE_LENGTH,
            length.to_bytes(2, "big"),
            f"header says {length} octets, message has {len(data)}",
        )
    return _REGISTRY[mtype].decode_body(data[HEADER_SIZE:], ctx)


def split_messages(buffer: bytes | bytearray, ctx: Negotiated) -> Iterator[tuple[int, bytes]]:
    """Yield (offset, message bytes) for each whole message at the start of ``buffer``.

    Stops at the first incomplete message; raises BgpError on a bad header.
    """
    i = 0
    n = len(buffer)
    while n - i >= HEADER_SIZE:
        length, _ = check_header(bytes(buffer[i : i + HEADER_SIZE]), ctx)
        if n - i < length:
            return
        yield i, bytes(buffer[i : i + length])
        i += length


def pack_updates(
    attributes: tuple[PathAttribute, ...],
    nlri: list[Nlri],
    ctx: Negotiated,
) -> list[bytes]:
    """IPv4 announcements sharing one attribute set, packed into as few UPDATEs as fit."""
    addpath = IPV4_UNICAST in ctx.addpath_send
    attrs = b"".join([a.encode(ctx) for a in attributes])
    room = ctx.max_message_size - HEADER_SIZE - 4 - len(attrs)
    return _pack(nlri, addpath, room, lambda chunk: b"\x00\x00" + _len2(attrs) + attrs + chunk)


def pack_withdrawals(withdrawn: list[Nlri], ctx: Negotiated) -> list[bytes]:
    """IPv4 withdrawals packed into as few UPDATEs as fit."""
    addpath = IPV4_UNICAST in ctx.addpath_send
    room = ctx.max_message_size - HEADER_SIZE - 4
    return _pack(withdrawn, addpath, room, lambda chunk: _len2(chunk) + chunk + b"\x00\x00")


def _len2(data: bytes) -> bytes:
    return len(data).to_bytes(2, "big")


def _pack(
    items: list[Nlri], addpath: bool, room: int, body: Callable[[bytes], bytes]
) -> list[bytes]:
    out: list[bytes] = []
    chunk = bytearray()
    for item in items:
        enc = encode_prefix(item, addpath)
        if len(chunk) + len(enc) > room:
            out.append(_frame(body(bytes(chunk))))
            chunk = bytearray()
        chunk += enc
    if chunk:
        out.append(_frame(body(bytes(chunk))))
    return out


def _frame(body: bytes) -> bytes:
    return _HEADER.pack(MARKER, HEADER_SIZE + len(body), MessageType.UPDATE) + body


__all__ = [
    "HEADER_SIZE",
    "MARKER",
    "MESSAGES",
    "CapabilitiesParameter",
    "Keepalive",
    "Message",
    "NextHopAttr",
    "Notification",
    "Open",
    "RouteRefresh",
    "UnknownParameter",
    "Update",
    "check_header",
    "decode_message",
    "pack_updates",
    "pack_withdrawals",
    "split_messages",
]
