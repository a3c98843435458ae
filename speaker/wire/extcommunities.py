"""Extended communities (RFC 4360): the 8 octets of each, by type and subtype.

The first octet is the type (its 0x40 bit: non-transitive, RFC 4360 2), the second, for the
types that have one, the subtype; the other six octets are laid out by the type: a 2-octet AS
and a 4-octet number (RFC 4360 3.1), an IPv4 address and a 2-octet number (3.2), a 4-octet AS
and a 2-octet number (RFC 5668 2), or six opaque octets (3.3).  Names follow the IANA "BGP
Extended Communities" registry, as Wireshark shows them.  Values stay plain integers in
:class:`speaker.wire.attributes.ExtendedCommunitiesAttr`; this module reads one for display.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from types import MappingProxyType
from typing import Final


class ExtCommunityType(IntEnum):
    """High-order type octets (IANA "BGP Transitive/Non-Transitive Extended Community Types")."""

    TWO_OCTET_AS = 0x00
    IPV4_ADDRESS = 0x01
    FOUR_OCTET_AS = 0x02
    OPAQUE = 0x03
    EVPN = 0x06
    NON_TRANSITIVE_TWO_OCTET_AS = 0x40
    NON_TRANSITIVE_IPV4_ADDRESS = 0x41
    NON_TRANSITIVE_FOUR_OCTET_AS = 0x42
    NON_TRANSITIVE_OPAQUE = 0x43
    EXPERIMENTAL = 0x80  # generic transitive experimental use (flow spec actions)
    EXPERIMENTAL_2 = 0x81
    EXPERIMENTAL_3 = 0x82


class ExtSubtype(IntEnum):
    """Sub-types shared by the AS- and address-specific types (RFC 4360 4, 5, RFC 5668)."""

    ROUTE_TARGET = 0x02
    ROUTE_ORIGIN = 0x03


TYPE_NAMES: Final[Mapping[int, str]] = MappingProxyType(
    {
        ExtCommunityType.TWO_OCTET_AS: "transitive two-octet AS-specific",
        ExtCommunityType.IPV4_ADDRESS: "transitive IPv4-address-specific",
        ExtCommunityType.FOUR_OCTET_AS: "transitive four-octet AS-specific",
        ExtCommunityType.OPAQUE: "transitive opaque",
        ExtCommunityType.EVPN: "EVPN",
        ExtCommunityType.NON_TRANSITIVE_TWO_OCTET_AS: "non-transitive two-octet AS-specific",
        ExtCommunityType.NON_TRANSITIVE_IPV4_ADDRESS: "non-transitive IPv4-address-specific",
        ExtCommunityType.NON_TRANSITIVE_FOUR_OCTET_AS: "non-transitive four-octet AS-specific",
        ExtCommunityType.NON_TRANSITIVE_OPAQUE: "non-transitive opaque",
        ExtCommunityType.EXPERIMENTAL: "generic transitive experimental",
        ExtCommunityType.EXPERIMENTAL_2: "generic transitive experimental part 2",
        ExtCommunityType.EXPERIMENTAL_3: "generic transitive experimental part 3",
    }
)

T = ExtCommunityType
SUBTYPE_NAMES: Final[Mapping[tuple[int, int], str]] = MappingProxyType(
    {
        **{
            (t, s): n
            for t in (T.TWO_OCTET_AS, T.IPV4_ADDRESS, T.FOUR_OCTET_AS)
            for s, n in (
                (ExtSubtype.ROUTE_TARGET, "route target"),
                (ExtSubtype.ROUTE_ORIGIN, "route origin"),
                (0x05, "OSPF domain identifier"),
                (0x10, "Cisco VPN distinguisher"),
            )
        },
        (T.TWO_OCTET_AS, 0x08): "BGP data collection",
        (T.TWO_OCTET_AS, 0x09): "source AS",
        (T.TWO_OCTET_AS, 0x0A): "L2VPN identifier",
        (T.FOUR_OCTET_AS, 0x08): "BGP data collection",
        (T.FOUR_OCTET_AS, 0x09): "source AS",
        (T.IPV4_ADDRESS, 0x07): "OSPF router ID",
        (T.IPV4_ADDRESS, 0x0A): "L2VPN identifier",
        (T.IPV4_ADDRESS, 0x0B): "VRF route import",
        (T.OPAQUE, 0x06): "OSPF route type",
        (T.OPAQUE, 0x0B): "color",
        (T.OPAQUE, 0x0C): "encapsulation",
        (T.OPAQUE, 0x0D): "default gateway",
        (T.EVPN, 0x00): "MAC mobility",
        (T.EVPN, 0x01): "ESI label",
        (T.EVPN, 0x02): "ES-import route target",
        (T.EVPN, 0x03): "EVPN router's MAC",
        (T.NON_TRANSITIVE_TWO_OCTET_AS, 0x04): "link bandwidth",
        (T.NON_TRANSITIVE_OPAQUE, 0x00): "origin validation state",
        (T.EXPERIMENTAL, 0x06): "flow spec traffic-rate",
        (T.EXPERIMENTAL, 0x07): "flow spec traffic-action",
        (T.EXPERIMENTAL, 0x08): "flow spec redirect (two-octet AS)",
        (T.EXPERIMENTAL, 0x09): "flow spec traffic-marking",
        (T.EXPERIMENTAL_2, 0x08): "flow spec redirect (IPv4)",
        (T.EXPERIMENTAL_3, 0x08): "flow spec redirect (four-octet AS)",
    }
)
"""(type, subtype) -> name."""

ORIGIN_VALIDATION_STATES: Final[Mapping[int, str]] = MappingProxyType(
    {0: "valid", 1: "not found", 2: "invalid"}
)


def _as2(v: bytes) -> str:
    return f"{int.from_bytes(v[:2], 'big')}:{int.from_bytes(v[2:], 'big')}"


def _ipv4(v: bytes) -> str:
    return f"{ipaddress.IPv4Address(v[:4])}:{int.from_bytes(v[4:], 'big')}"


def _as4(v: bytes) -> str:
    return f"{int.from_bytes(v[:4], 'big')}:{int.from_bytes(v[4:], 'big')}"


def _rate(v: bytes) -> str:
    rate = struct.unpack(">f", v[2:])[0]
    return f"AS {int.from_bytes(v[:2], 'big')}, {rate:g} bytes/s"


_LAYOUTS: dict[tuple[int, int] | int, Callable[[bytes], str]] = {
    T.TWO_OCTET_AS: _as2,
    T.NON_TRANSITIVE_TWO_OCTET_AS: _as2,
    T.IPV4_ADDRESS: _ipv4,
    T.NON_TRANSITIVE_IPV4_ADDRESS: _ipv4,
    T.FOUR_OCTET_AS: _as4,
    T.NON_TRANSITIVE_FOUR_OCTET_AS: _as4,
    (T.NON_TRANSITIVE_TWO_OCTET_AS, 0x04): _rate,
    (T.OPAQUE, 0x0B): lambda v: f"color {int.from_bytes(v[2:], 'big')} (flags 0x{v[:2].hex()})",
    (T.OPAQUE, 0x0C): lambda v: f"tunnel type {int.from_bytes(v[4:], 'big')}",
    (T.NON_TRANSITIVE_OPAQUE, 0x00): lambda v: ORIGIN_VALIDATION_STATES.get(
        v[5], f"state {v[5]} (undefined)"
    ),
    (T.EVPN, 0x00): lambda v: (
        f"sequence {int.from_bytes(v[2:], 'big')}, {'sticky' if v[0] & 1 else 'not sticky'}"
    ),
    (T.EVPN, 0x03): lambda v: ":".join(f"{b:02x}" for b in v),
    (T.EXPERIMENTAL, 0x06): _rate,
    (T.EXPERIMENTAL, 0x07): lambda v: (
        f"sample {'on' if v[5] & 2 else 'off'}, terminal {'on' if v[5] & 1 else 'off'}"
    ),
    (T.EXPERIMENTAL, 0x08): _as2,
    (T.EXPERIMENTAL, 0x09): lambda v: f"DSCP {v[5] & 0x3F}",
    (T.EXPERIMENTAL_2, 0x08): _ipv4,
    (T.EXPERIMENTAL_3, 0x08): _as4,
}
"""How the six value octets read, by (type, subtype), else by type; else they are hex."""


@dataclass(frozen=True, slots=True)
class ExtendedCommunity:
    """One extended community, read from its 8 octets (RFC 4360 2)."""

    type: int
    subtype: int
    value: bytes  # the six octets after type and subtype

    @classmethod
    def from_int(cls, raw: int) -> ExtendedCommunity:
        """Split the 64-bit value as it sits in the attribute."""
        octets = raw.to_bytes(8, "big")
        return cls(octets[0], octets[1], octets[2:])

    @property
    def transitive(self) -> bool:
        """The T bit (0x40 of the type) is clear: passed on across ASes (RFC 4360 2)."""
        return not self.type & 0x40

    @property
    def type_name(self) -> str:
        """The type's registry name, or its number."""
        return TYPE_NAMES.get(self.type, f"type 0x{self.type:02x}")

    @property
    def name(self) -> str:
        """The subtype's registry name (``route target``), or type and subtype numbers."""
        known = SUBTYPE_NAMES.get((self.type, self.subtype))
        return known if known else f"type 0x{self.type:02x} subtype 0x{self.subtype:02x}"

    @property
    def known(self) -> bool:
        """The (type, subtype) is in the registry as we know it."""
        return (self.type, self.subtype) in SUBTYPE_NAMES

    @property
    def text(self) -> str:
        """The value as Wireshark writes it: ``64512:10``, ``192.0.2.1:7``, or hex."""
        layout = _LAYOUTS.get((self.type, self.subtype)) or _LAYOUTS.get(self.type)
        return layout(self.value) if layout is not None else self.value.hex()

    def __str__(self) -> str:
        return f"{self.name} {self.text}"


__all__ = [
    "ORIGIN_VALIDATION_STATES",
    "SUBTYPE_NAMES",
    "TYPE_NAMES",
    "ExtCommunityType",
    "ExtSubtype",
    "ExtendedCommunity",
]
