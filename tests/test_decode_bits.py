"""The bit view of flag octets (``--bytes``): each bit where the RFC draws it, and its meaning."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from speaker.annotate.bits import (
    ADD_PATH_MODE,
    ATTRIBUTE_FLAGS,
    EXTENDED_PARAMETERS_MARKER,
    GRACEFUL_RESTART_FAMILY_FLAGS,
    GRACEFUL_RESTART_FLAGS,
    LAYOUTS,
    bit_fields,
    bit_lines,
)
from speaker.annotate.layout import BITS_COLUMN, hexdump, spans
from speaker.decode import decode_main
from speaker.wire import Negotiated
from speaker.wire.enums import AttrFlag


def _values(kind: str, value: int) -> dict[str, int]:
    return {f.name: f.value for f in bit_fields(kind, value)}


@pytest.mark.parametrize("flags", range(256))
def test_attribute_flag_bits_follow_rfc_4271_positions(flags: int) -> None:
    # RFC 4271 4.3: bit 0 (high-order) Optional, bit 1 Transitive, bit 2 Partial,
    # bit 3 Extended Length, bits 4-7 unused; the codec's AttrFlag says the same in masks
    got = _values(ATTRIBUTE_FLAGS, flags)
    assert got["Optional"] == bool(flags & AttrFlag.OPTIONAL)
    assert got["Transitive"] == bool(flags & AttrFlag.TRANSITIVE)
    assert got["Partial"] == bool(flags & AttrFlag.PARTIAL)
    assert got["Extended Length"] == bool(flags & AttrFlag.EXTENDED_LENGTH)
    assert got["Unused"] == flags & 0x0F


def test_transitive_well_known_0x40_is_drawn_like_wireshark() -> None:
    lines = bit_lines(ATTRIBUTE_FLAGS, 0x40)
    assert lines[0].startswith("0100 0000 = 0x40: path attribute flags")
    assert "[RFC 4271 4.3]" in lines[0]
    # the lines tshark prints for these flags (lifecycle.tshark.txt), then our meaning
    assert lines[1].startswith("0... .... = Optional: 0 — well-known")
    assert lines[2].startswith(".1.. .... = Transitive: 1 — transitive")
    assert lines[3].startswith("..0. .... = Partial: 0 — complete")
    assert lines[4].startswith("...0 .... = Extended Length: 0 — the length field is 1 octet")
    assert lines[5].startswith(".... 0000 = Unused: 0")


def test_optional_extended_length_0x90() -> None:
    fields = bit_fields(ATTRIBUTE_FLAGS, 0x90)
    assert [(f.first, f.width) for f in fields] == [(0, 1), (1, 1), (2, 1), (3, 1), (4, 4)]
    assert [f.value for f in fields] == [1, 0, 0, 1, 0]
    assert fields[0].drawing == "1... ...." and fields[3].drawing == "...1 ...."
    assert "2 octets" in fields[3].meaning and fields[1].meaning == "non-transitive"


def test_graceful_restart_word_r_n_bits_and_time() -> None:
    # RFC 4724 3: Restart Flags (4 bits: R, then N from RFC 8538, 2 reserved), Restart Time
    # (12 bits, seconds)
    for restarting in (0, 1):
        for notification in (0, 1):
            for seconds in (0, 120, 4095):
                word = restarting << 15 | notification << 14 | seconds
                got = _values(GRACEFUL_RESTART_FLAGS, word)
                assert got["Restart State (R)"] == restarting
                assert got["Graceful Notification (N)"] == notification
                assert got["Restart Time"] == seconds
    assert bit_fields(GRACEFUL_RESTART_FLAGS, 0x0078)[3].drawing == ".... 0000 0111 1000"
    family = bit_fields(GRACEFUL_RESTART_FAMILY_FLAGS, 0x80)
    assert family[0].value == 1 and "preserved" in family[0].meaning
    assert bit_fields(GRACEFUL_RESTART_FAMILY_FLAGS, 0x00)[0].value == 0


@pytest.mark.parametrize(("mode", "send", "receive"), [(1, 0, 1), (2, 1, 0), (3, 1, 1)])
def test_add_path_send_receive(mode: int, send: int, receive: int) -> None:
    # RFC 7911 4: 1 receive, 2 send, 3 both
    got = _values(ADD_PATH_MODE, mode)
    assert (got["Send"], got["Receive"]) == (send, receive)


def test_extended_parameters_marker() -> None:
    (field,) = bit_fields(EXTENDED_PARAMETERS_MARKER, 255)
    assert field.drawing == "1111 1111" and "extended format" in field.meaning
    (other,) = bit_fields(EXTENDED_PARAMETERS_MARKER, 2)
    assert "classic" in other.meaning


def test_drawings_are_cached_per_kind_and_value() -> None:
    bit_lines.cache_clear()
    first = bit_lines(ATTRIBUTE_FLAGS, 0xC0)
    assert bit_lines(ATTRIBUTE_FLAGS, 0xC0) is first
    assert bit_lines.cache_info().hits == 1
    assert bit_lines(GRACEFUL_RESTART_FAMILY_FLAGS, 0xC0) != first


def test_every_layout_covers_its_width() -> None:
    for kind, layout in LAYOUTS.items():
        assert sum(w for _, w, _ in layout.fields) == layout.width, kind


def _open_with_extended_parameters() -> bytes:
    # RFC 9072: Non-Ext OP Len 255, Non-Ext OP Type 255, 2-octet length, 3-octet parameter
    # headers; one capability: 4-octet AS 64512
    caps = bytes([2]) + (6).to_bytes(2, "big") + bytes([65, 4]) + (64512).to_bytes(4, "big")
    body = bytes([4]) + (23456).to_bytes(2, "big") + (90).to_bytes(2, "big")
    body += bytes([192, 0, 2, 1, 255, 255]) + len(caps).to_bytes(2, "big") + caps
    return b"\xff" * 16 + (19 + len(body)).to_bytes(2, "big") + bytes([1]) + body


def test_dump_draws_the_rfc_9072_marker() -> None:
    data = _open_with_extended_parameters()
    lines = hexdump(data, spans(data, Negotiated()))
    at = next(i for i, line in enumerate(lines) if "extended parameters marker" in line)
    assert lines[at + 1].startswith(f"{BITS_COLUMN}  1111 1111 = 0xff")
    assert "RFC 9072 2" in lines[at + 1]


def test_bytes_output_draws_flags_of_the_real_captures(testdata: Path) -> None:
    out = io.StringIO()
    assert decode_main(
        str(testdata / "lifecycle.pcap"), as_json=False, force_hex=False, out=out,
        show_bytes=True,
    ) == 0
    text = out.getvalue()
    # every attribute header is followed by the drawing of its own flags octet
    lines = text.splitlines()
    headers = [i for i, line in enumerate(lines) if re.search(r": flags 0x[0-9a-f]{2}, type", line)]
    assert headers
    for i in headers:
        flags = int(re.search(r"flags 0x([0-9a-f]{2})", lines[i]).group(1), 16)  # type: ignore[union-attr]
        assert lines[i + 1].strip() == f"{BITS_COLUMN}  {bit_lines(ATTRIBUTE_FLAGS, flags)[0]}"
    # the MED attribute of 10.244.77.7/32 is optional non-transitive (0x80)
    assert any("1... .... = Optional: 1" in line for line in lines)
    # the restarted BIRD's OPEN: R bit set, and F set for IPv4 unicast
    assert "1... .... .... .... = Restart State (R): 1" in text
    assert "1... .... = Forwarding State (F): 1" in text
    assert ".... ..1. = Send: 1" in text and ".... ...1 = Receive: 1" in text
