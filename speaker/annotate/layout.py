"""Where each field of a message lies: byte ranges for ``--bytes``, and raw attribute headers.

The codec turns bytes into values and forgets the offsets; a student also wants to see which
octets are which field, and where a malformed message stops making sense.  This module walks
the same structure as the codec, but only to find boundaries: it never raises, and a field
that runs past the end is shown as truncated ("show me where parsing died").
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

from speaker.annotate.bits import (
    ADD_PATH_MODE,
    ATTRIBUTE_FLAGS,
    EXTENDED_PARAMETERS_MARKER,
    GRACEFUL_RESTART_FAMILY_FLAGS,
    GRACEFUL_RESTART_FLAGS,
    LAYOUTS,
    bit_lines,
)
from speaker.annotate.tables import ATTRIBUTES, CAPABILITIES, MESSAGE_TYPES, family_name
from speaker.wire.context import IPV4_UNICAST, Negotiated
from speaker.wire.enums import (
    Afi,
    AttrFlag,
    AttrType,
    CapabilityCode,
    CeaseSubcode,
    ErrorCode,
    MessageType,
    OptParamType,
)
from speaker.wire.messages import HEADER_SIZE

_BITS = {int(Afi.IPV4): 32, int(Afi.IPV6): 128}


@dataclass(frozen=True, slots=True)
class Span:
    """Octets ``[start, end)`` of a message hold the field ``label`` (nested ``depth`` deep).

    ``bits``: the kind of flag field that starts there (a key of
    :data:`speaker.annotate.bits.LAYOUTS`), drawn bit by bit under the octets; "" for none.
    """

    start: int
    end: int
    label: str
    depth: int = 0
    bits: str = ""

    def bit_value(self, data: bytes) -> int | None:
        """The flag field's value, read from the message (None: no flag field here)."""
        if not self.bits:
            return None
        size = LAYOUTS[self.bits].width // 8
        return int.from_bytes(data[self.start : self.start + size], "big")


@dataclass(frozen=True, slots=True)
class RawAttribute:
    """One path attribute exactly as it was on the wire (offsets within the message)."""

    offset: int
    flags: int
    type_code: int
    length: int
    header_size: int
    value: bytes

    @property
    def complete(self) -> bool:
        """False when the declared length runs past the attribute list."""
        return len(self.value) == self.length


class _Stop(Exception):
    """The structure runs past the available octets: stop walking."""


class _Walker:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.spans: list[Span] = []

    def left(self, end: int | None = None) -> int:
        return (len(self.data) if end is None else end) - self.pos

    def take(
        self, size: int, label: str, depth: int, end: int | None = None, bits: str = ""
    ) -> bytes:
        limit = len(self.data) if end is None else min(end, len(self.data))
        if self.pos + size > limit:
            if self.pos < limit:
                self.spans.append(
                    Span(
                        self.pos,
                        limit,
                        f"{label}: truncated, needs {size} octets, {limit - self.pos} left",
                        depth,
                    )
                )
                self.pos = limit
            raise _Stop
        chunk = self.data[self.pos : self.pos + size]
        if size:
            self.spans.append(Span(self.pos, self.pos + size, label, depth, bits))
        self.pos += size
        return chunk


def _u(data: bytes) -> int:
    return int.from_bytes(data, "big")


def _prefix_text(afi: int, plen: int, octets: bytes) -> str:
    bits = _BITS.get(afi, 0)
    raw = int.from_bytes(octets.ljust(bits // 8, b"\0")[: bits // 8], "big")
    if plen & 7:
        raw &= ~((1 << (bits - plen)) - 1)
    address = ipaddress.IPv4Address(raw) if bits == 32 else ipaddress.IPv6Address(raw)
    return f"{address}/{plen}"


def _nlri(w: _Walker, end: int, afi: int, addpath: bool, what: str, depth: int) -> None:
    """Prefix entries up to ``end`` (RFC 4271 4.3, RFC 7911 3)."""
    bits = _BITS.get(afi)
    while w.pos < end:
        start, first = w.pos, len(w.spans)
        path_id = _u(w.take(4, "path identifier", depth, end)) if addpath else None
        plen = w.take(1, "prefix length", depth, end)[0]
        if bits is None or plen > bits:
            w.spans.append(Span(w.pos, end, f"{what}: prefix length {plen} is invalid", depth))
            w.pos = end
            raise _Stop
        octets = w.take((plen + 7) // 8, "prefix", depth, end)
        # one span per entry reads better than three
        del w.spans[first:]
        text = _prefix_text(afi, plen, octets)
        if path_id is not None:
            text += f" path-id {path_id}"
        w.spans.append(Span(start, w.pos, f"{what} {text}", depth))


def _open(w: _Walker, depth: int) -> None:
    w.take(1, "version", depth)
    w.take(2, "my AS", depth)
    w.take(2, "hold time", depth)
    w.take(4, "BGP identifier", depth)
    plen = w.take(1, "optional parameters length", depth)[0]
    head = 2
    if plen == 255 and w.left() >= 3 and w.data[w.pos] == OptParamType.EXTENDED_LENGTH:
        w.take(1, "extended parameters marker (RFC 9072)", depth, bits=EXTENDED_PARAMETERS_MARKER)
        plen = _u(w.take(2, "extended optional parameters length", depth))
        head = 3
    end = w.pos + plen
    while w.pos < end:
        ptype = w.take(1, "parameter type", depth + 1, end)[0]
        length = _u(w.take(head - 1, "parameter length", depth + 1, end))
        pend = w.pos + length
        if ptype != OptParamType.CAPABILITIES:
            w.take(length, f"parameter {ptype} value", depth + 1, end)
            continue
        while w.pos < min(pend, end):
            code = w.take(1, "capability code", depth + 2, pend)[0]
            clen = w.take(1, "capability length", depth + 2, pend)[0]
            meaning = CAPABILITIES.get(code)
            name = meaning.name if meaning else "unknown"
            del w.spans[-2:]
            w.spans.append(
                Span(w.pos - 2, w.pos, f"capability {code} ({name}), length {clen}", depth + 2)
            )
            if clen:
                cend = w.pos + clen
                handler = _CAPABILITY_LAYOUT.get(code)
                if handler is None or cend > pend:
                    w.take(clen, "capability value", depth + 3, pend)
                else:
                    handler(w, cend, depth + 3)
                    if w.pos < cend:
                        w.take(cend - w.pos, "rest of value", depth + 3, cend)


def _graceful_restart(w: _Walker, end: int, depth: int) -> None:
    """Restart flags and time, then (AFI, SAFI, flags) per family (RFC 4724 3)."""
    w.take(2, "restart flags and restart time", depth, end, bits=GRACEFUL_RESTART_FLAGS)
    while end - w.pos >= 4:
        _mp_family(w, end, depth)
        w.take(1, "flags for address family", depth, end, bits=GRACEFUL_RESTART_FAMILY_FLAGS)


def _add_path(w: _Walker, end: int, depth: int) -> None:
    """(AFI, SAFI, Send/Receive) per family (RFC 7911 4)."""
    while end - w.pos >= 4:
        _mp_family(w, end, depth)
        w.take(1, "send/receive", depth, end, bits=ADD_PATH_MODE)


_CAPABILITY_LAYOUT: dict[int, Callable[[_Walker, int, int], None]] = {
    CapabilityCode.GRACEFUL_RESTART: _graceful_restart,
    CapabilityCode.ADD_PATH: _add_path,
}


def raw_attributes(data: bytes) -> list[RawAttribute]:
    """The attributes of an UPDATE message (header included), exactly as sent.

    Used to show each attribute's real flags, and the attributes RFC 7606 made the codec
    discard.  Stops quietly where the list stops making sense.
    """
    body = HEADER_SIZE
    if len(data) < body + 4:
        return []
    wlen = _u(data[body : body + 2])
    astart = body + 4 + wlen
    if astart > len(data):
        return []
    alen = _u(data[astart - 2 : astart])
    aend = min(astart + alen, len(data))
    out: list[RawAttribute] = []
    i = astart
    while i + 3 <= aend:
        flags, type_code = data[i], data[i + 1]
        if flags & AttrFlag.EXTENDED_LENGTH:
            if i + 4 > aend:
                break
            length, head = _u(data[i + 2 : i + 4]), 4
        else:
            length, head = data[i + 2], 3
        value = data[i + head : min(i + head + length, aend)]
        out.append(RawAttribute(i, flags, type_code, length, head, value))
        i += head + length
    return out


def _update(w: _Walker, ctx: Negotiated, depth: int) -> None:
    ipv4_addpath = IPV4_UNICAST in ctx.addpath_receive
    wlen = _u(w.take(2, "withdrawn routes length", depth))
    _nlri(w, min(w.pos + wlen, len(w.data)), Afi.IPV4, ipv4_addpath, "withdrawn", depth + 1)
    alen = _u(w.take(2, "total path attribute length", depth))
    aend = min(w.pos + alen, len(w.data))
    while w.pos < aend:
        start = w.pos
        flags = w.take(1, "attribute flags", depth + 1, aend)[0]
        code = w.take(1, "attribute type", depth + 1, aend)[0]
        size = 2 if flags & AttrFlag.EXTENDED_LENGTH else 1
        length = _u(w.take(size, "attribute length", depth + 1, aend))
        del w.spans[-3:]
        meaning = ATTRIBUTES.get(code)
        name = meaning.name if meaning else f"attribute {code}"
        w.spans.append(
            Span(
                start,
                w.pos,
                f"{name}: flags 0x{flags:02x}, type {code}, length {length}",
                depth + 1,
                ATTRIBUTE_FLAGS,
            )
        )
        vend = w.pos + length
        handler = _ATTRIBUTE_LAYOUT.get(code)
        if handler is None or vend > aend:
            w.take(length, "value", depth + 2, aend)
        else:
            handler(w, vend, ctx, depth + 2)
            if w.pos < vend:
                w.take(vend - w.pos, "rest of value", depth + 2, vend)
    _nlri(w, len(w.data), Afi.IPV4, ipv4_addpath, "NLRI", depth)


def _mp_family(w: _Walker, end: int, depth: int) -> tuple[int, int]:
    afi = _u(w.take(2, "AFI", depth, end))
    safi = w.take(1, "SAFI", depth, end)[0]
    del w.spans[-2:]
    w.spans.append(
        Span(w.pos - 3, w.pos, f"AFI {afi} / SAFI {safi} ({family_name(afi, safi)})", depth)
    )
    return afi, safi


def _addpath(ctx: Negotiated, afi: int, safi: int) -> bool:
    return any(int(a) == afi and int(s) == safi for a, s in ctx.addpath_receive)


def _mp_reach(w: _Walker, end: int, ctx: Negotiated, depth: int) -> None:
    afi, safi = _mp_family(w, end, depth)
    nh_len = w.take(1, "next hop length", depth, end)[0]
    w.take(nh_len, "next hop", depth, end)
    w.take(1, "reserved (was SNPA count)", depth, end)
    _nlri(w, end, afi, _addpath(ctx, afi, safi), "NLRI", depth)


def _mp_unreach(w: _Walker, end: int, ctx: Negotiated, depth: int) -> None:
    afi, safi = _mp_family(w, end, depth)
    _nlri(w, end, afi, _addpath(ctx, afi, safi), "withdrawn", depth)


_ATTRIBUTE_LAYOUT: dict[int, Callable[[_Walker, int, Negotiated, int], None]] = {
    AttrType.MP_REACH_NLRI: _mp_reach,
    AttrType.MP_UNREACH_NLRI: _mp_unreach,
}


def _notification(w: _Walker, depth: int) -> None:
    code = w.take(1, "error code", depth)[0]
    subcode = w.take(1, "error subcode", depth)[0]
    if w.left() <= 0:
        return
    shutdown = code == ErrorCode.CEASE and subcode in (
        CeaseSubcode.ADMINISTRATIVE_SHUTDOWN,
        CeaseSubcode.ADMINISTRATIVE_RESET,
    )
    if shutdown:
        size = w.take(1, "shutdown communication length (RFC 9003)", depth)[0]
        w.take(size, "shutdown communication (UTF-8)", depth)
    if w.left() > 0:
        w.take(w.left(), "data", depth)


def _route_refresh(w: _Walker, depth: int) -> None:
    w.take(2, "AFI", depth)
    w.take(1, "subtype (RFC 7313; reserved in RFC 2918)", depth)
    w.take(1, "SAFI", depth)


def spans(data: bytes, ctx: Negotiated) -> list[Span]:
    """Every field of one message with its byte range, in order; never raises."""
    w = _Walker(data)
    try:
        w.take(16, "marker", 0)
        length = _u(w.take(2, "length", 0))
        mtype = w.take(1, "type", 0)[0]
        meaning = MESSAGE_TYPES.get(mtype)
        w.spans[-2] = Span(16, 18, f"length = {length}", 0)
        w.spans[-1] = Span(18, 19, f"type = {mtype} ({meaning.name if meaning else 'unknown'})", 0)
        body = _BODY_LAYOUT.get(mtype)
        if body is not None:
            body(w, ctx, 0)
    except _Stop:
        pass
    if w.pos < len(data):
        w.spans.append(Span(w.pos, len(data), "not part of any field", 0))
    return w.spans


_BODY_LAYOUT: dict[int, Callable[[_Walker, Negotiated, int], None]] = {
    MessageType.OPEN: lambda w, ctx, d: _open(w, d),
    MessageType.UPDATE: _update,
    MessageType.NOTIFICATION: lambda w, ctx, d: _notification(w, d),
    MessageType.ROUTE_REFRESH: lambda w, ctx, d: _route_refresh(w, d),
}


BITS_COLUMN = "bits"
"""What a bit-view line of :func:`hexdump` shows in the offset column: its bits stand under
the octets they draw."""


def hexdump(
    data: bytes, fields: list[Span], limit: int | None = None, show_bits: bool = True
) -> list[str]:
    """Hex lines, one field per line (long fields wrap at 16 octets), labelled.

    ``limit`` stops after that many octets (the rest is summarised in one line);
    ``show_bits`` draws each flag field bit by bit under its octets
    (:mod:`speaker.annotate.bits`).
    """
    lines: list[str] = []
    for span in fields:
        if limit is not None and span.start >= limit:
            lines.append(f"{span.start:04x}  ... {len(data) - span.start} more octets")
            break
        label = "  " * span.depth + span.label
        for offset in range(span.start, max(span.end, span.start + 1), 16):
            chunk = data[offset : min(offset + 16, span.end)]
            text = " ".join(f"{b:02x}" for b in chunk)
            lines.append(f"{offset:04x}  {text:<47}  {label}")
            label = ""
        value = span.bit_value(data) if show_bits else None
        if value is not None:
            lines.extend(f"{BITS_COLUMN}  {b}" for b in bit_lines(span.bits, value))
    return lines


__all__ = ["BITS_COLUMN", "RawAttribute", "Span", "hexdump", "raw_attributes", "spans"]
