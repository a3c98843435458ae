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
    LIST_CACHES as _LIST_CACHES,
)
from speaker.wire.attributes import (
    MASK_CACHES as _MASK_CACHES,
)
from speaker.wire.attributes import (
    MpReachAttr,
    MpUnreachAttr,
    NextHopAttr,
    PathAttribute,
    decode_new_attributes,
)
from speaker.wire.capabilities import Capability, FourOctetAsCapability, decode_capabilities
from speaker.wire.context import IPV4_UNICAST, MAX_MESSAGE_SIZE, Family, Negotiated
from speaker.wire.enums import (
    Afi,
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
    LocalProtocolError,
    header_error,
    open_error,
    update_error,
)
from speaker.wire.nlri import Nlri, decode_prefixes, encode_prefix, encode_prefixes

MARKER = b"\xff" * 16
HEADER_SIZE = 19
_HEADER = struct.Struct("!16sHB")
AS_TRANS = 23456  # RFC 6793 9

# Smallest legal length of each message (RFC 4271 6.1, RFC 2918 3)
MIN_LENGTH = {
    MessageType.OPEN: 29,
    MessageType.UPDATE: 23,
    MessageType.NOTIFICATION: 21,
    MessageType.KEEPALIVE: 19,
    MessageType.ROUTE_REFRESH: 23,
}
_MIN_LENGTH = {int(k): v for k, v in MIN_LENGTH.items()}
# RFC 8654 4: OPEN and KEEPALIVE stay within 4096 octets even with extended messages
_ALWAYS_SMALL = (MessageType.OPEN, MessageType.KEEPALIVE)
# The longest NOTIFICATION Data that fits a 4096-octet message (RFC 4271 4.5)
MAX_NOTIFICATION_DATA = MAX_MESSAGE_SIZE - HEADER_SIZE - 2


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
        """The whole message: marker, length, type, body (RFC 4271 4.1).

        Raises LocalProtocolError when the message would exceed the negotiated size or a
        field does not fit its octets.
        """
        try:
            body = self.encode_body(ctx)
        except (ValueError, OverflowError, struct.error) as exc:
            raise LocalProtocolError(f"cannot encode {type(self).__name__}: {exc}") from exc
        length = HEADER_SIZE + len(body)
        limit = MAX_MESSAGE_SIZE if self.TYPE in _ALWAYS_SMALL else ctx.max_message_size
        if length > limit:
            raise LocalProtocolError(
                f"{self.TYPE.name} of {length} octets exceeds the {limit}-octet limit"
            )
        return _HEADER.pack(MARKER, length, self.TYPE) + body


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
    """An optional parameter other than capabilities, kept as bytes (encoding only: a
    received one is refused with 2/4, RFC 4271 6.2)."""

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
    ``extended_parameters`` records RFC 9072's long form of the parameter list; it is also
    used when the parameters do not fit the short form.
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
        return cls(4, asn if asn <= 0xFFFF else AS_TRANS, hold_time, bgp_id, params)

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
            # Data: the largest supported version below the bid, else the smallest (6.2)
            raise open_error(
                OpenSubcode.UNSUPPORTED_VERSION_NUMBER, b"\x00\x04", f"version {version}"
            )
        extended = False
        start = 10
        # RFC 9072 2: a non-zero length followed by type 255 marks 2-octet lengths
        if plen and len(body) > 10 and body[10] == OptParamType.EXTENDED_LENGTH:
            if len(body) < 13:
                raise open_error(
                    OpenSubcode.UNSPECIFIC, reason="extended optional parameters length truncated"
                )
            extended = True
            plen = int.from_bytes(body[11:13], "big")
            start = 13
        if start + plen != len(body):
            raise open_error(
                OpenSubcode.UNSPECIFIC,
                reason=f"optional parameters length {plen} disagrees with the message length",
            )
        params = _decode_parameters(body, start, start + plen, 3 if extended else 2)
        message = cls(version, my_as, hold, ipaddress.IPv4Address(bgp_id), params, extended)
        if hold in (1, 2):
            # RFC 4271 4.2, 6.2: hold time must be 0 or at least 3 seconds
            raise open_error(OpenSubcode.UNACCEPTABLE_HOLD_TIME, reason=f"hold time {hold}")
        if bgp_id == 0:
            # RFC 6286 2.2: the BGP Identifier is a non-zero 32-bit value
            raise open_error(OpenSubcode.BAD_BGP_IDENTIFIER, reason="BGP identifier 0.0.0.0")
        if my_as == 0 or message.asn == 0:
            # RFC 7607 2
            raise open_error(OpenSubcode.BAD_PEER_AS, reason="peer AS 0 (RFC 7607)")
        return message

    def encode_body(self, ctx: Negotiated) -> bytes:
        head = struct.pack("!BHHI", self.version, self.my_as, self.hold_time, int(self.bgp_id))
        values = [(p.type_code, p.encode_value()) for p in self.parameters]
        short = sum(2 + len(v) for _, v in values)
        if self.extended_parameters or short > 255 or any(len(v) > 255 for _, v in values):
            params = b"".join(bytes((t,)) + len(v).to_bytes(2, "big") + v for t, v in values)
            if len(params) > 0xFFFF:
                raise LocalProtocolError(f"optional parameters of {len(params)} octets")
            return head + b"\xff\xff" + len(params).to_bytes(2, "big") + params
        return head + bytes((short,)) + b"".join(bytes((t, len(v))) + v for t, v in values)


def _decode_parameters(body: bytes, i: int, end: int, head: int) -> tuple[OptionalParameter, ...]:
    """The optional parameters (RFC 4271 4.2; RFC 9072 when ``head`` is 3)."""
    params: list[OptionalParameter] = []
    while i < end:
        if i + head > end:
            raise open_error(OpenSubcode.UNSPECIFIC, reason="optional parameter header truncated")
        ptype = body[i]
        plength = int.from_bytes(body[i + 1 : i + head], "big")
        if i + head + plength > end:
            raise open_error(
                OpenSubcode.UNSPECIFIC,
                reason=f"optional parameter {ptype} length {plength} overruns the OPEN",
            )
        value = body[i + head : i + head + plength]
        if ptype != OptParamType.CAPABILITIES:
            # RFC 4271 6.2 (type 1, authentication, is deprecated by RFC 5492)
            raise open_error(
                OpenSubcode.UNSUPPORTED_OPTIONAL_PARAMETER,
                reason=f"optional parameter type {ptype} is not supported",
            )
        params.append(CapabilitiesParameter(decode_capabilities(value)))
        i += head + plength
    return tuple(params)


# ---------------------------------------------------------------------------- UPDATE


@register
@dataclass(frozen=True, slots=True)
class Update(Message):
    """UPDATE: withdrawn routes, path attributes, NLRI (RFC 4271 4.3).

    ``errors`` holds the RFC 7606 outcomes met while decoding (treat-as-withdraw or
    attribute-discard); a discarded attribute is left out of ``attributes``.  When
    :attr:`treat_as_withdraw` is true the receiver must withdraw every NLRI of the message,
    the IPv4 ones and those in MP_REACH_NLRI alike (RFC 7606 2).
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
        errors = self.errors
        if not errors:  # asked of every UPDATE: no generator for the usual clean one
            return False
        return any(e.action is ErrorAction.TREAT_AS_WITHDRAW for e in errors)

    @property
    def error_action(self) -> ErrorAction | None:
        """The strongest RFC 7606 outcome among ``errors`` (section 3h), None when clean."""
        return max((e.action for e in self.errors), default=None)

    def end_of_rib(self) -> Family | None:
        """The family this UPDATE ends the initial feed of, if it is End-of-RIB (RFC 4724 2)."""
        if not self.withdrawn and not self.nlri and not self.errors:
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
        return _decode_update(bytes(body), ctx)[0]

    def encode_body(self, ctx: Negotiated) -> bytes:
        addpath = ctx.ipv4_addpath_send
        withdrawn = encode_prefixes(self.withdrawn, addpath)
        attrs = b"".join([a.encode(ctx) for a in self.attributes])
        return (
            len(withdrawn).to_bytes(2, "big")
            + withdrawn
            + len(attrs).to_bytes(2, "big")
            + attrs
            + encode_prefixes(self.nlri, addpath)
        )


# Frozen dataclasses set each field through object.__setattr__; the UPDATE hot path sets the
# slots directly, which halves the cost of building an Update.
_new_object = object.__new__
_set_withdrawn = Update.__dict__["withdrawn"].__set__
_set_attributes = Update.__dict__["attributes"].__set__
_set_nlri = Update.__dict__["nlri"].__set__
_set_errors = Update.__dict__["errors"].__set__

_REACH = 1 << AttrType.MP_REACH_NLRI
_MP = _REACH | (1 << AttrType.MP_UNREACH_NLRI)
_ORIGIN_AS_PATH = (1 << AttrType.ORIGIN) | (1 << AttrType.AS_PATH)
_NEEDED_WITH_IPV4 = _ORIGIN_AS_PATH | (1 << AttrType.NEXT_HOP)
_IPV4 = Afi.IPV4


def _decode_update(data: bytes, ctx: Negotiated, start: int = 0) -> tuple[Update, int]:
    """The UPDATE body decoder (the hot path of a route feed); the body begins at ``start``.

    Returns the UPDATE and the bit mask (``1 << type``) of the attribute types it kept."""
    n = len(data)
    if n - start < 4:
        raise update_error(UpdateSubcode.MALFORMED_ATTRIBUTE_LIST, reason="UPDATE body truncated")
    astart = start + 4 + ((data[start] << 8) | data[start + 1])
    if astart > n:
        # RFC 4271 6.3: lengths exceed the message
        raise update_error(
            UpdateSubcode.MALFORMED_ATTRIBUTE_LIST,
            reason=f"withdrawn routes length {astart - start - 4} overruns the UPDATE",
        )
    aend = astart + ((data[astart - 2] << 8) | data[astart - 1])
    if aend > n:
        raise update_error(
            UpdateSubcode.MALFORMED_ATTRIBUTE_LIST,
            reason=f"total path attribute length {aend - astart} overruns the UPDATE",
        )
    addpath = ctx.ipv4_addpath_receive
    # RFC 7606 3(i): withdrawn routes are checked like the NLRI field
    if astart > start + 4:
        withdrawn = decode_prefixes(data[start + 2 : astart - 2], _IPV4, addpath)
    else:
        withdrawn = ()
    errors: tuple[BgpError, ...] = ()
    present = dropped = 0
    if aend > astart:
        block = data[astart:aend]
        attributes = _LIST_CACHES[ctx.attribute_cache].get(block)
        if attributes is None:
            attributes, errors, present, dropped = decode_new_attributes(block, ctx)
        else:
            present = _MASK_CACHES[ctx.attribute_cache][block]
    else:
        attributes = ()
    if aend < n:
        nlri = decode_prefixes(data[aend:], _IPV4, addpath)
        missing = _NEEDED_WITH_IPV4 & ~(present | dropped)
    else:
        nlri = ()
        missing = _ORIGIN_AS_PATH & ~(present | dropped) if present & _REACH else 0
    if missing:
        errors = errors + _missing(missing)
    if errors and not nlri and not present & _REACH:
        for error in errors:
            if error.action is ErrorAction.TREAT_AS_WITHDRAW:
                # RFC 7606 5.2: no reachable NLRI to withdraw, so the session is reset
                raise error.with_action(ErrorAction.SESSION_RESET)
    update: Update = _new_object(Update)
    _set_withdrawn(update, withdrawn)
    _set_attributes(update, attributes)
    _set_nlri(update, nlri)
    _set_errors(update, errors)
    return update, present


def _missing(mask: int) -> tuple[BgpError, ...]:
    """Missing well-known attributes: 3/3, Data the type code (RFC 4271 6.3), RFC 7606 3(d)."""
    return tuple(
        update_error(
            UpdateSubcode.MISSING_WELL_KNOWN_ATTRIBUTE,
            bytes((t,)),
            f"missing well-known attribute {t.name}",
            ErrorAction.TREAT_AS_WITHDRAW,
        )
        for t in (AttrType.ORIGIN, AttrType.AS_PATH, AttrType.NEXT_HOP)
        if mask & (1 << t)
    )


# ---------------------------------------------------------------------------- NOTIFICATION

_SHUTDOWN_SUBCODES = (CeaseSubcode.ADMINISTRATIVE_SHUTDOWN, CeaseSubcode.ADMINISTRATIVE_RESET)
MAX_SHUTDOWN_MESSAGE = 255  # RFC 9003 2


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
        """The NOTIFICATION a codec error prescribes (Data cut to fit 4096 octets)."""
        return cls(error.code, error.subcode, error.data[:MAX_NOTIFICATION_DATA])

    @classmethod
    def cease(cls, subcode: CeaseSubcode, message: str = "") -> Notification:
        """A Cease, with an RFC 9003 shutdown communication for shutdown and reset.

        The message is cut to 255 octets of UTF-8 without splitting a character.
        """
        data = b""
        if message and subcode in _SHUTDOWN_SUBCODES:
            text = message.encode()[:MAX_SHUTDOWN_MESSAGE]
            text = text.decode("utf-8", "ignore").encode()  # drop a split last character
            data = bytes((len(text),)) + text
        return cls(ErrorCode.CEASE, subcode, data)

    @classmethod
    def cease_max_prefixes(cls, afi: Afi, safi: Safi, limit: int) -> Notification:
        """Cease / Maximum Number of Prefixes Reached with AFI, SAFI and the limit (RFC 4486 4)."""
        data = int(afi).to_bytes(2, "big") + bytes((int(safi),)) + limit.to_bytes(4, "big")
        return cls(ErrorCode.CEASE, CeaseSubcode.MAXIMUM_PREFIXES_REACHED, data)

    @property
    def max_prefixes(self) -> tuple[Afi | int, Safi | int, int] | None:
        """(AFI, SAFI, limit) of a Maximum Number of Prefixes Reached Cease (RFC 4486 4)."""
        if (
            self.code != ErrorCode.CEASE
            or self.subcode != CeaseSubcode.MAXIMUM_PREFIXES_REACHED
            or len(self.data) != 7
        ):
            return None
        afi_raw = int.from_bytes(self.data[:2], "big")
        afi: Afi | int = Afi(afi_raw) if afi_raw in Afi._value2member_map_ else afi_raw
        safi: Safi | int = (
            Safi(self.data[2]) if self.data[2] in Safi._value2member_map_ else self.data[2]
        )
        return afi, safi, int.from_bytes(self.data[3:], "big")

    @property
    def shutdown_message(self) -> str | None:
        """The RFC 9003 shutdown communication, if this Cease carries a well-formed one."""
        if self.code != ErrorCode.CEASE or self.subcode not in _SHUTDOWN_SUBCODES:
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
        if len(body) < 2:
            raise header_error(
                HeaderSubcode.BAD_MESSAGE_LENGTH,
                (len(body) + HEADER_SIZE).to_bytes(2, "big"),
                "NOTIFICATION shorter than 21 octets",
            )
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
        if body:
            raise header_error(
                HeaderSubcode.BAD_MESSAGE_LENGTH,
                (len(body) + HEADER_SIZE).to_bytes(2, "big"),
                "KEEPALIVE longer than 19 octets",
            )
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
        if len(body) < 4:
            # RFC 4271 6.1: shorter than the minimum (RFC 2918 3: 23 octets)
            raise header_error(
                HeaderSubcode.BAD_MESSAGE_LENGTH,
                (len(body) + HEADER_SIZE).to_bytes(2, "big"),
                "ROUTE-REFRESH shorter than 23 octets",
            )
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
        afi: Afi | int = Afi(afi_raw) if afi_raw in Afi._value2member_map_ else afi_raw
        safi: Safi | int = Safi(body[3]) if body[3] in Safi._value2member_map_ else body[3]
        subtype: RouteRefreshSubtype | int = body[2]
        if body[2] in RouteRefreshSubtype._value2member_map_:
            subtype = RouteRefreshSubtype(body[2])
        # RFC 7313 5: the receiver ignores unknown subtypes; the value is kept as an int
        return cls(afi, safi, subtype)

    def encode_body(self, ctx: Negotiated) -> bytes:
        return int(self.afi).to_bytes(2, "big") + bytes((int(self.subtype), int(self.safi)))


# ---------------------------------------------------------------------------- framing


def check_header(data: bytes | bytearray, ctx: Negotiated) -> tuple[int, int]:
    """Validate a 19-octet header; return (message length, type) (RFC 4271 6.1)."""
    if len(data) < HEADER_SIZE:
        raise header_error(
            HeaderSubcode.BAD_MESSAGE_LENGTH,
            len(data).to_bytes(2, "big"),
            f"message of {len(data)} octets is shorter than the header",
        )
    if data[:16] != MARKER:
        raise header_error(HeaderSubcode.CONNECTION_NOT_SYNCHRONIZED, reason="marker not all ones")
    length = (data[16] << 8) | data[17]
    mtype = data[18]
    limit = MAX_MESSAGE_SIZE if mtype in _ALWAYS_SMALL else ctx.max_message_size
    if length < HEADER_SIZE or length > limit:
        raise header_error(
            HeaderSubcode.BAD_MESSAGE_LENGTH,
            bytes(data[16:18]),
            f"message length {length} outside {HEADER_SIZE}..{limit}",
        )
    minimum = _MIN_LENGTH.get(mtype)
    if minimum is None:
        raise header_error(
            HeaderSubcode.BAD_MESSAGE_TYPE, bytes((mtype,)), f"message type {mtype} unknown"
        )
    if length < minimum or (mtype == MessageType.KEEPALIVE and length != HEADER_SIZE):
        raise header_error(
            HeaderSubcode.BAD_MESSAGE_LENGTH,
            bytes(data[16:18]),
            f"{MessageType(mtype).name} length {length}, minimum {minimum}",
        )
    return length, mtype


def decode_message(data: bytes, ctx: Negotiated) -> Message:
    """Decode one whole message, header included; raise BgpError if malformed."""
    if type(data) is not bytes:
        data = bytes(data)
    n = len(data)
    if (
        n >= 23
        and data[18] == 2
        and (data[16] << 8) | data[17] == n
        and n <= ctx.max_message_size
        and data[:16] == MARKER
    ):
        return _decode_update(data, ctx, HEADER_SIZE)[0]  # fast path: a well-framed UPDATE
    length, mtype = check_header(data, ctx)
    if length != len(data):
        raise header_error(
            HeaderSubcode.BAD_MESSAGE_LENGTH,
            data[16:18],
            f"header says {length} octets, message has {len(data)}",
        )
    if mtype == 2:
        return _decode_update(data, ctx, HEADER_SIZE)[0]
    return _REGISTRY[mtype].decode_body(data[HEADER_SIZE:], ctx)


def update_length(data: bytes, start: int, ctx: Negotiated) -> int:
    """The length of the message whose 19-octet header is at ``start`` when
    :func:`check_header` accepts that header as an UPDATE's, else 0: the framing's test for
    the usual message, which reads the length once and builds no (length, type) pair."""
    length = (data[start + 16] << 8) | data[start + 17]
    if (
        data[start + 18] == 2
        and 23 <= length <= ctx.max_message_size
        and data.startswith(MARKER, start)
    ):
        return length
    return 0


def decode_checked_update(data: bytes, ctx: Negotiated) -> tuple[Update, bool]:
    """A whole UPDATE message whose header was checked (by :func:`check_header` or
    :func:`update_length`, its length that of ``data``): :func:`decode_message` without
    the header tests a session framing messages has already made.

    With it, whether the UPDATE carries MP_REACH_NLRI or MP_UNREACH_NLRI (decoded or not),
    which the decoder knows from the type codes: the session does not scan the attributes'
    types again."""
    update, present = _decode_update(data, ctx, HEADER_SIZE)
    return update, bool(present & _MP)


def split_messages(buffer: bytes | bytearray, ctx: Negotiated) -> Iterator[tuple[int, bytes]]:
    """Yield (offset, message bytes) for each whole message at the start of ``buffer``.

    Stops at the first incomplete message; raises BgpError on a bad header.
    """
    i = 0
    n = len(buffer)
    while n - i >= HEADER_SIZE:
        length, _ = check_header(buffer[i : i + HEADER_SIZE], ctx)
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
    addpath = ctx.ipv4_addpath_send
    attrs = b"".join([a.encode(ctx) for a in attributes])
    room = ctx.max_message_size - HEADER_SIZE - 4 - len(attrs)
    return _pack(nlri, addpath, room, lambda chunk: b"\x00\x00" + _len2(attrs) + attrs + chunk)


def pack_withdrawals(withdrawn: list[Nlri], ctx: Negotiated) -> list[bytes]:
    """IPv4 withdrawals packed into as few UPDATEs as fit."""
    addpath = ctx.ipv4_addpath_send
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
        if len(enc) > room:
            raise LocalProtocolError(f"no room for {item} in a {room}-octet UPDATE field")
        if chunk and len(chunk) + len(enc) > room:
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
    "MAX_NOTIFICATION_DATA",
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
    "decode_checked_update",
    "decode_message",
    "pack_updates",
    "pack_withdrawals",
    "split_messages",
]
