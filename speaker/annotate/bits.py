"""Flag octets drawn bit by bit: which bit is which flag, and what its value means.

A flag octet is where a byte-level dump stops teaching: ``0x90`` says nothing until it is
seen as ``1001 0000``, Optional and Extended Length set.  This module draws such fields the
way Wireshark does (``1... .... = Optional: Set``), with bit 0 the most significant bit as the
RFCs number them, and each bit's meaning.  It is used by ``--bytes`` and the HTML page only,
never by the text fast path; bitstring does the slicing (imported at the first drawing: a
text decode without ``--bytes`` never loads it), and each drawing is cached per (kind, value):
a capture has few distinct flag values and many messages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bitstring import Bits


@dataclass(frozen=True, slots=True)
class BitField:
    """One field of a flag octet (or word): its bits drawn in place, its value, its meaning.

    ``first`` is the position of its first bit, 0 being the most significant (RFC drawings).
    """

    first: int
    width: int
    name: str
    value: int
    drawing: str
    meaning: str

    def line(self) -> str:
        """``1... .... = Optional: 1, optional: ...`` (Wireshark's layout, our words)."""
        return f"{self.drawing} = {self.name}: {self.value} — {self.meaning}"


_Meaning = Callable[[int], str]


@dataclass(frozen=True, slots=True)
class BitLayout:
    """How a kind of flag field divides into bits, and where it is defined."""

    title: str
    width: int
    rfc: str
    fields: tuple[tuple[str, int, _Meaning], ...]


def _flag(on: str, off: str) -> _Meaning:
    return lambda v: on if v else off


def _reserved(v: int) -> str:
    return "reserved: sent as 0, ignored on receipt" if v == 0 else "reserved, but not 0"


def _marker(v: int) -> str:
    if v == 255:
        return (
            "Non-Ext OP Type 255: the optional parameters use the extended format "
            "(2-octet lengths) that follows"
        )
    return f"an optional parameter type ({v}): the classic format (1-octet lengths)"


ATTRIBUTE_FLAGS = "attribute flags"
GRACEFUL_RESTART_FLAGS = "graceful restart flags"
GRACEFUL_RESTART_FAMILY_FLAGS = "graceful restart family flags"
ADD_PATH_MODE = "add-path send/receive"
EXTENDED_PARAMETERS_MARKER = "extended optional parameters marker"

LAYOUTS: dict[str, BitLayout] = {
    ATTRIBUTE_FLAGS: BitLayout(
        "path attribute flags",
        8,
        "RFC 4271 4.3",
        (
            ("Optional", 1, _flag("optional: a speaker may not know it", "well-known")),
            ("Transitive", 1, _flag("transitive: passed on even if unknown", "non-transitive")),
            (
                "Partial",
                1,
                _flag(
                    "partial: a speaker passed it on without knowing it",
                    "complete",
                ),
            ),
            (
                "Extended Length",
                1,
                _flag("the length field is 2 octets", "the length field is 1 octet"),
            ),
            ("Unused", 4, _reserved),
        ),
    ),
    GRACEFUL_RESTART_FLAGS: BitLayout(
        "graceful restart flags and time",
        16,
        "RFC 4724 3, RFC 8538 2",
        (
            (
                "Restart State (R)",
                1,
                _flag(
                    "restarting: the peer must not wait for its End-of-RIB",
                    "not restarting",
                ),
            ),
            (
                "Graceful Notification (N)",
                1,
                _flag(
                    "graceful restart applies after a NOTIFICATION too",
                    "a NOTIFICATION ends graceful restart",
                ),
            ),
            ("Reserved", 2, _reserved),
            ("Restart Time", 12, lambda v: f"{v} s to come back before stale routes go"),
        ),
    ),
    GRACEFUL_RESTART_FAMILY_FLAGS: BitLayout(
        "graceful restart flags for address family",
        8,
        "RFC 4724 3",
        (
            (
                "Forwarding State (F)",
                1,
                _flag(
                    "forwarding state was preserved across the restart",
                    "forwarding state not preserved",
                ),
            ),
            ("Reserved", 7, _reserved),
        ),
    ),
    ADD_PATH_MODE: BitLayout(
        "add-path Send/Receive",
        8,
        "RFC 7911 4",
        (
            ("Reserved", 6, _reserved),
            ("Send", 1, _flag("would like to send several paths", "will not send several paths")),
            ("Receive", 1, _flag("can receive several paths", "will not receive several paths")),
        ),
    ),
    EXTENDED_PARAMETERS_MARKER: BitLayout(
        "Non-Ext OP Type", 8, "RFC 9072 2", (("Non-Ext OP Type", 8, _marker),)
    ),
}


def _drawing(bits: Bits, first: int, width: int) -> str:
    """The field's bits in place, every other bit a dot, in groups of 4 (as Wireshark)."""
    chars = ["."] * len(bits)
    chars[first : first + width] = bits[first : first + width].bin
    return " ".join("".join(chars[i : i + 4]) for i in range(0, len(chars), 4))


@lru_cache(maxsize=256)
def bit_fields(kind: str, value: int) -> tuple[BitField, ...]:
    """The fields of a ``kind`` value (a key of :data:`LAYOUTS`), most significant first."""
    from bitstring import Bits

    layout = LAYOUTS[kind]
    bits = Bits(uint=value, length=layout.width)
    out = []
    first = 0
    for name, width, meaning in layout.fields:
        field_value = bits[first : first + width].uint
        out.append(
            BitField(
                first, width, name, field_value, _drawing(bits, first, width), meaning(field_value)
            )
        )
        first += width
    return tuple(out)


@lru_cache(maxsize=256)
def bit_lines(kind: str, value: int) -> tuple[str, ...]:
    """A heading (``1001 0000 = 0x90: path attribute flags  [RFC 4271 4.3]``) and a line per
    field."""
    from bitstring import Bits

    layout = LAYOUTS[kind]
    bits = Bits(uint=value, length=layout.width)
    digits = " ".join(bits.bin[i : i + 4] for i in range(0, layout.width, 4))
    hex_width = layout.width // 4
    head = f"{digits} = 0x{value:0{hex_width}x}: {layout.title}  [{layout.rfc}]"
    return (head, *(f.line() for f in bit_fields(kind, value)))


__all__ = [
    "ADD_PATH_MODE",
    "ATTRIBUTE_FLAGS",
    "EXTENDED_PARAMETERS_MARKER",
    "GRACEFUL_RESTART_FAMILY_FLAGS",
    "GRACEFUL_RESTART_FLAGS",
    "LAYOUTS",
    "BitField",
    "BitLayout",
    "bit_fields",
    "bit_lines",
]
