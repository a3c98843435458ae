"""OPEN capabilities (RFC 5492), one class per capability, found through a registry.

A capability decodes from its value octets and encodes back to exactly them.  Unknown codes
keep their bytes (:class:`UnknownCapability`), so an OPEN round-trips and the decode tool can
still show them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntFlag
from types import MappingProxyType
from typing import ClassVar, TypeVar

from speaker.wire.context import Family
from speaker.wire.enums import Afi, BgpRole, CapabilityCode, ErrorCode, OpenSubcode, Safi
from speaker.wire.errors import BgpError, LocalProtocolError


def _afi(value: int) -> Afi | int:
    try:
        return Afi(value)
    except ValueError:
        return value


def _safi(value: int) -> Safi | int:
    try:
        return Safi(value)
    except ValueError:
        return value


def _malformed(code: int, value: bytes, why: str) -> BgpError:
    # BIRD 1.6.8 answers malformed capability lengths with 2/0; RFC 5492 leaves it open.
    return BgpError(
        ErrorCode.OPEN_MESSAGE,
        OpenSubcode.UNSPECIFIC,
        b"",
        f"capability {code}: {why} (value {value.hex() or 'empty'})",
    )


@dataclass(frozen=True, slots=True)
class Capability:
    """Base of all capabilities: ``CODE`` names the wire code."""

    CODE: ClassVar[int] = -1
    RFC: ClassVar[str] = ""

    @classmethod
    def decode(cls, value: bytes) -> Capability:
        """Build from the capability value octets."""
        raise NotImplementedError

    def encode_value(self) -> bytes:
        """The capability value octets."""
        raise NotImplementedError

    @property
    def code(self) -> int:
        """The capability code on the wire."""
        return self.CODE

    def encode(self) -> bytes:
        """Code, length and value (RFC 5492 4)."""
        value = self.encode_value()
        if len(value) > 255:
            raise LocalProtocolError(f"capability {self.code} value of {len(value)} octets > 255")
        return bytes((self.code, len(value))) + value


_REGISTRY: dict[int, type[Capability]] = {}
CAPABILITIES = MappingProxyType(_REGISTRY)
"""Capability code -> class (read-only)."""

C = TypeVar("C", bound=type[Capability])


def register(cls: C) -> C:
    """Class decorator: enter a capability class into the registry (once per code)."""
    if cls.CODE in _REGISTRY:
        raise RuntimeError(f"capability {cls.CODE} registered twice")
    _REGISTRY[cls.CODE] = cls
    return cls


@register
@dataclass(frozen=True, slots=True)
class MultiprotocolCapability(Capability):
    """Multiprotocol extensions: one AFI/SAFI the speaker supports (RFC 4760 8)."""

    CODE = CapabilityCode.MULTIPROTOCOL
    RFC = "RFC 4760 section 8"
    afi: Afi | int
    safi: Safi | int
    reserved: int = 0

    @classmethod
    def decode(cls, value: bytes) -> Capability:
        if len(value) != 4:
            raise _malformed(cls.CODE, value, "length must be 4")
        return cls(_afi(int.from_bytes(value[:2], "big")), _safi(value[3]), value[2])

    def encode_value(self) -> bytes:
        return int(self.afi).to_bytes(2, "big") + bytes((self.reserved, int(self.safi)))


@dataclass(frozen=True, slots=True)
class _EmptyCapability(Capability):
    """A capability with no value."""

    @classmethod
    def decode(cls, value: bytes) -> Capability:
        if value:
            raise _malformed(cls.CODE, value, "length must be 0")
        return cls()

    def encode_value(self) -> bytes:
        return b""


@register
@dataclass(frozen=True, slots=True)
class RouteRefreshCapability(_EmptyCapability):
    """The speaker accepts ROUTE-REFRESH messages (RFC 2918 3)."""

    CODE = CapabilityCode.ROUTE_REFRESH
    RFC = "RFC 2918 section 3"


@register
@dataclass(frozen=True, slots=True)
class ExtendedMessageCapability(_EmptyCapability):
    """Messages up to 65535 octets (RFC 8654 3)."""

    CODE = CapabilityCode.EXTENDED_MESSAGE
    RFC = "RFC 8654 section 3"


@register
@dataclass(frozen=True, slots=True)
class EnhancedRouteRefreshCapability(_EmptyCapability):
    """BoRR/EoRR demarcation of route refreshes (RFC 7313 3)."""

    CODE = CapabilityCode.ENHANCED_ROUTE_REFRESH
    RFC = "RFC 7313 section 3"


@register
@dataclass(frozen=True, slots=True)
class ExtendedNextHopCapability(Capability):
    """NLRI of one family with next hops of another (RFC 8950 3)."""

    CODE = CapabilityCode.EXTENDED_NEXT_HOP
    RFC = "RFC 8950 section 3"
    entries: tuple[tuple[Afi | int, Safi | int, Afi | int], ...]

    @classmethod
    def decode(cls, value: bytes) -> Capability:
        if len(value) % 6:
            raise _malformed(cls.CODE, value, "length must be a multiple of 6")
        entries = tuple(
            (
                _afi(int.from_bytes(value[i : i + 2], "big")),
                _safi(int.from_bytes(value[i + 2 : i + 4], "big")),
                _afi(int.from_bytes(value[i + 4 : i + 6], "big")),
            )
            for i in range(0, len(value), 6)
        )
        return cls(entries)

    def encode_value(self) -> bytes:
        return b"".join(
            int(a).to_bytes(2, "big") + int(s).to_bytes(2, "big") + int(n).to_bytes(2, "big")
            for a, s, n in self.entries
        )


class GracefulRestartFlags(IntFlag):
    """The 4-bit Restart Flags field (RFC 4724 3, RFC 8538 for N)."""

    RESTART = 0x8  # R: the sender has restarted
    NOTIFICATION = 0x4  # N: graceful restart also after NOTIFICATION (RFC 8538)


class FamilyFlags(IntFlag):
    """Per-family flags of the graceful restart capability (RFC 4724 3)."""

    FORWARDING = 0x80  # F: forwarding state was preserved across the restart


@register
@dataclass(frozen=True, slots=True)
class GracefulRestartCapability(Capability):
    """Graceful restart (RFC 4724 3): restart flags and time, families with the F flag."""

    CODE = CapabilityCode.GRACEFUL_RESTART
    RFC = "RFC 4724 section 3"
    flags: GracefulRestartFlags
    restart_time: int
    families: tuple[tuple[Afi | int, Safi | int, FamilyFlags], ...] = ()

    @classmethod
    def decode(cls, value: bytes) -> Capability:
        if len(value) < 2 or (len(value) - 2) % 4:
            raise _malformed(cls.CODE, value, "length must be 2 + 4n")
        head = int.from_bytes(value[:2], "big")
        families = tuple(
            (
                _afi(int.from_bytes(value[i : i + 2], "big")),
                _safi(value[i + 2]),
                FamilyFlags(value[i + 3]),
            )
            for i in range(2, len(value), 4)
        )
        return cls(GracefulRestartFlags(head >> 12), head & 0x0FFF, families)

    def encode_value(self) -> bytes:
        if not 0 <= self.restart_time <= 0x0FFF:
            raise LocalProtocolError(f"restart time {self.restart_time} does not fit 12 bits")
        head = ((int(self.flags) & 0xF) << 12) | self.restart_time
        return head.to_bytes(2, "big") + b"".join(
            int(a).to_bytes(2, "big") + bytes((int(s), int(f))) for a, s, f in self.families
        )

    @property
    def restarting(self) -> bool:
        """The R bit: the sender is restarting (RFC 4724 3)."""
        return bool(self.flags & GracefulRestartFlags.RESTART)

    def forwarding_preserved(self, family: Family) -> bool | None:
        """The F bit for a family, or None if the family is not listed."""
        for afi, safi, flags in self.families:
            if (afi, safi) == family:
                return bool(flags & FamilyFlags.FORWARDING)
        return None


@register
@dataclass(frozen=True, slots=True)
class FourOctetAsCapability(Capability):
    """Support for 4-octet AS numbers, carrying the full AS (RFC 6793 3)."""

    CODE = CapabilityCode.FOUR_OCTET_AS
    RFC = "RFC 6793 section 3"
    asn: int

    @classmethod
    def decode(cls, value: bytes) -> Capability:
        if len(value) != 4:
            raise _malformed(cls.CODE, value, "length must be 4")
        return cls(int.from_bytes(value, "big"))

    def encode_value(self) -> bytes:
        return self.asn.to_bytes(4, "big")


class AddPathMode(IntFlag):
    """Send/Receive field of the add-path capability (RFC 7911 4)."""

    RECEIVE = 1
    SEND = 2
    BOTH = 3


@register
@dataclass(frozen=True, slots=True)
class AddPathCapability(Capability):
    """Add-path: per family, whether the sender receives and/or sends path ids (RFC 7911 4)."""

    CODE = CapabilityCode.ADD_PATH
    RFC = "RFC 7911 section 4"
    entries: tuple[tuple[Afi | int, Safi | int, AddPathMode], ...]

    @classmethod
    def decode(cls, value: bytes) -> Capability:
        if len(value) % 4:
            raise _malformed(cls.CODE, value, "length must be a multiple of 4")
        entries = tuple(
            (
                _afi(int.from_bytes(value[i : i + 2], "big")),
                _safi(value[i + 2]),
                AddPathMode(value[i + 3]),
            )
            for i in range(0, len(value), 4)
        )
        return cls(entries)

    def encode_value(self) -> bytes:
        return b"".join(
            int(a).to_bytes(2, "big") + bytes((int(s), int(m))) for a, s, m in self.entries
        )

    def mode(self, family: Family) -> AddPathMode:
        """What the sender said for a family (0 when absent)."""
        for afi, safi, mode in self.entries:
            if (afi, safi) == family:
                return mode
        return AddPathMode(0)


@register
@dataclass(frozen=True, slots=True)
class LongLivedGracefulRestartCapability(Capability):
    """Long-lived graceful restart: per family flags and stale time (RFC 9494 3)."""

    CODE = CapabilityCode.LONG_LIVED_GRACEFUL_RESTART
    RFC = "RFC 9494 section 3"
    entries: tuple[tuple[Afi | int, Safi | int, int, int], ...] = ()

    @classmethod
    def decode(cls, value: bytes) -> Capability:
        if len(value) % 7:
            raise _malformed(cls.CODE, value, "length must be a multiple of 7")
        entries = tuple(
            (
                _afi(int.from_bytes(value[i : i + 2], "big")),
                _safi(value[i + 2]),
                value[i + 3],
                int.from_bytes(value[i + 4 : i + 7], "big"),
            )
            for i in range(0, len(value), 7)
        )
        return cls(entries)

    def encode_value(self) -> bytes:
        return b"".join(
            int(a).to_bytes(2, "big") + bytes((int(s), f)) + t.to_bytes(3, "big")
            for a, s, f, t in self.entries
        )


@register
@dataclass(frozen=True, slots=True)
class BgpRoleCapability(Capability):
    """BGP role: the sender's relationship to the peer, for route leak prevention (RFC 9234 4.1).

    A value that is not one octet does not parse and is kept as an :class:`UnknownCapability`
    (a speaker that does not check roles ignores it, as BIRD 1.6.8 does).
    """

    CODE = CapabilityCode.BGP_ROLE
    RFC = "RFC 9234 section 4.1"
    role: BgpRole | int

    @classmethod
    def decode(cls, value: bytes) -> Capability:
        if len(value) != 1:
            return UnknownCapability(cls.CODE, value)
        try:
            return cls(BgpRole(value[0]))
        except ValueError:
            return cls(value[0])

    def encode_value(self) -> bytes:
        return bytes((int(self.role),))


@register
@dataclass(frozen=True, slots=True)
class FqdnCapability(Capability):
    """The sender's host and domain name (draft-walton-bgp-hostname-capability 3).

    Each is a length octet and that many octets of text; a value whose lengths do not add up
    is kept as an :class:`UnknownCapability` (the capability is informational only).
    """

    CODE = CapabilityCode.FQDN
    RFC = "draft-walton-bgp-hostname-capability section 3"
    hostname: bytes
    domain: bytes

    @classmethod
    def decode(cls, value: bytes) -> Capability:
        host_end = 1 + value[0] if value else 0
        if not value or host_end >= len(value) or host_end + 1 + value[host_end] != len(value):
            return UnknownCapability(cls.CODE, value)
        return cls(value[1:host_end], value[host_end + 1 :])

    def encode_value(self) -> bytes:
        host, domain = self.hostname, self.domain
        return bytes((len(host),)) + host + bytes((len(domain),)) + domain


@dataclass(frozen=True, slots=True)
class UnknownCapability(Capability):
    """A capability we do not implement: its code and value bytes are kept as received."""

    unknown_code: int
    value: bytes

    @property
    def code(self) -> int:
        return self.unknown_code

    def encode_value(self) -> bytes:
        return self.value


def decode_capability(code: int, value: bytes) -> Capability:
    """Decode one capability by its code, keeping unknown ones as bytes."""
    cls = _REGISTRY.get(code)
    if cls is None:
        return UnknownCapability(code, bytes(value))
    return cls.decode(bytes(value))


def decode_capabilities(data: bytes) -> tuple[Capability, ...]:
    """Decode the value of a Capabilities optional parameter (RFC 5492 4)."""
    caps: list[Capability] = []
    i = 0
    while i < len(data):
        if i + 2 > len(data):
            raise _malformed(data[i], data[i:], "truncated capability header")
        code, length = data[i], data[i + 1]
        if i + 2 + length > len(data):
            raise _malformed(code, data[i + 2 :], f"length {length} runs past the parameter")
        caps.append(decode_capability(code, data[i + 2 : i + 2 + length]))
        i += 2 + length
    return tuple(caps)
