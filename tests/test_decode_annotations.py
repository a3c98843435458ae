"""The annotation tables and the less common fields ``speaker decode`` explains.

The tables must name every code point the codec knows (a new enum member without a meaning
fails here), and rare things must still be explained: unknown capabilities and attributes,
extended-length attributes, hard reset data, AS_TRANS, unknown message types and subtypes,
a lost marker.
"""

from __future__ import annotations

import io
import ipaddress
import json
import re
from enum import IntEnum
from pathlib import Path

import pytest

from speaker.annotate import tables
from speaker.annotate.layout import hexdump, raw_attributes, spans
from speaker.annotate.records import jsonable
from speaker.annotate.tree import Node, render
from speaker.decode import EXIT_MALFORMED, EXIT_OK, decode_main
from speaker.wire import Negotiated, Notification, Open, RouteRefresh, Update
from speaker.wire.attributes import (
    ATTRIBUTES,
    AsPathAttr,
    CommunitiesAttr,
    NextHopAttr,
    OriginAttr,
    UnknownAttr,
)
from speaker.wire.capabilities import CAPABILITIES, FourOctetAsCapability, UnknownCapability
from speaker.wire.enums import (
    SUBCODES,
    AsPathSegmentType,
    AttrType,
    CapabilityCode,
    ErrorCode,
    MessageType,
    Origin,
    RouteRefreshSubtype,
)
from speaker.wire.errors import ErrorAction
from speaker.wire.nlri import Nlri, Prefix

PLAIN = Negotiated()


@pytest.mark.parametrize(
    ("enum", "table"),
    [
        (MessageType, tables.MESSAGE_TYPES),
        (CapabilityCode, tables.CAPABILITIES),
        (AttrType, tables.ATTRIBUTES),
        (ErrorCode, tables.ERROR_CODES),
        (RouteRefreshSubtype, tables.ROUTE_REFRESH_SUBTYPES),
        (ErrorAction, tables.ERROR_ACTIONS),
        (Origin, tables.ORIGINS),
        (AsPathSegmentType, tables.SEGMENT_TYPES),
    ],
)
def test_every_code_point_has_a_meaning(enum: type[IntEnum], table: dict[int, object]) -> None:
    missing = [m.name for m in enum if m not in table]
    assert missing == []


def test_every_subcode_has_a_meaning_with_an_rfc() -> None:
    for code, subcodes in SUBCODES.items():
        for member in subcodes:
            meaning = tables.subcode_meaning(code, member)
            assert meaning is not None, (code, member)
            assert meaning.rfc.startswith("RFC"), (code, member)
    assert set(tables.SUBCODES) == set(SUBCODES)


def test_every_registered_codec_class_is_annotated() -> None:
    assert set(CAPABILITIES) <= set(tables.CAPABILITIES)
    assert set(ATTRIBUTES) <= set(tables.ATTRIBUTES)


def test_flag_words() -> None:
    assert tables.flag_words(0x40) == ["well-known", "transitive", "complete"]
    assert tables.flag_words(0xD0) == ["optional", "transitive", "complete", "extended length"]
    assert tables.flag_words(0xE0) == ["optional", "transitive", "partial"]


def test_tree_aligns_values_of_siblings() -> None:
    root = Node("parent", meaning="why", rfc="RFC 1")
    root.add("a", 1, "first")
    root.add("longer", "x")
    lines = render([root])
    assert lines == ["parent  — why  [RFC 1]", "  a       1  — first", "  longer  x"]


def test_layout_never_raises_on_garbage() -> None:
    for data in (b"", b"\xff" * 10, b"\xff" * 16 + b"\x00\x30\x02" + b"\x00\x05\x01", b"\x00" * 40):
        fields = spans(data, PLAIN)
        covered = sum(s.end - s.start for s in fields)
        assert covered == len(data)
        assert len(hexdump(data, fields)) >= (1 if data else 0)
    assert raw_attributes(b"\xff" * 16 + b"\x00\x17\x02\x00\x00\x00\x09\x40") == []


def hex_run(tmp_path: Path, *messages: bytes, as_json: bool = False) -> tuple[int, str]:
    path = tmp_path / "m.hex"
    path.write_text("\n".join(m.hex() for m in messages) + "\n")
    out = io.StringIO()
    status = decode_main(str(path), as_json=as_json, force_hex=False, out=out, width=0)
    return status, out.getvalue()


def test_unknown_capabilities_and_as_trans(tmp_path: Path) -> None:
    message = Open.build(
        4200000000,
        0,
        ipaddress.IPv4Address("10.0.0.9"),
        [
            FourOctetAsCapability(4200000000),
            UnknownCapability(73, b"\x02r1\x00"),
            UnknownCapability(200, b""),
        ],
    )
    status, text = hex_run(tmp_path, message.encode(PLAIN))
    assert status == EXIT_OK
    assert re.search(
        r"my AS +23456 \(AS_TRANS: the real AS is in the 4-octet AS capability\)", text
    )
    assert re.search(r"hold time +0 \(no hold timer, no KEEPALIVEs\)", text)
    # host name length 2, "r1", domain name length 0 (draft-walton-bgp-hostname-capability 3)
    assert re.search(
        r'FQDN \(73\) +host name "r1" .*\[draft-walton-bgp-hostname-capability\]', text
    )
    assert re.search(r"unknown capability \(200\) +\(empty\) +— not known to this decoder", text)
    _, out = hex_run(tmp_path, message.encode(PLAIN), as_json=True)
    caps = json.loads(out)["capabilities"]
    assert caps[1] == {
        "code": 73,
        "name": "FQDN",
        "length": 4,
        "value": "02723100",
        "hostname": "r1",
        "domain_name": "",
    }
    assert caps[2] == {"code": 200, "name": None, "length": 0, "value": ""}


def test_unknown_and_extended_length_attributes(tmp_path: Path) -> None:
    update = Update(
        attributes=(
            OriginAttr(Origin.INCOMPLETE),
            AsPathAttr(()),
            NextHopAttr(ipaddress.IPv4Address("10.0.0.1")),
            CommunitiesAttr((*range(0xFC000000, 0xFC000000 + 70), 0xFFFFFF01)),
            UnknownAttr(unknown_type=99, value=b"\x01\x02", flags=0xE0),
        ),
        nlri=(Nlri(Prefix.parse("10.9.0.0/16")),),
    )
    status, text = hex_run(tmp_path, update.encode(PLAIN))
    assert status == EXIT_OK
    assert re.search(r"ORIGIN \(1\) .* +INCOMPLETE \(2\)", text)
    assert re.search(
        r"COMMUNITIES \(8\) flags 0xd0 optional transitive extended length +64512:0 64512:1 ",
        text,
    )
    assert "65535:65281 (NO_EXPORT: do not send outside the AS, RFC 1997)" in text
    assert re.search(
        r"unknown attribute \(99\) flags 0xe0 optional transitive partial +0102 .*"
        r"kept and passed on with the Partial bit set",
        text,
    )
    assert "NLRI (no path ids assumed: OPENs not seen), 1 prefix" in text


def test_notifications_hard_reset_and_unknown_codes(tmp_path: Path) -> None:
    hard = Notification(6, 9, bytes((6, 2)))
    odd = Notification(9, 9, b"\xab")
    status, text = hex_run(tmp_path, hard.encode(PLAIN), odd.encode(PLAIN))
    assert status == EXIT_OK
    assert re.search(r"error subcode +9 Hard Reset", text)
    assert re.search(r"data +2 octets: 0602 +— the code and subcode of the NOTIFICATION", text)
    assert re.search(
        r"\n {6}error code +6 Cease[^\n]*\n {6}error subcode +2 Administrative Shutdown", text
    )
    assert re.search(r"error code +9 \(unknown\)", text)


def test_header_errors_and_unknown_subtypes(tmp_path: Path) -> None:
    good = RouteRefresh(1, 1, 7).encode(PLAIN)  # subtype 7: undefined
    unknown_type = b"\xff" * 16 + b"\x00\x13\x09"
    lost_marker = b"\xff" * 15 + b"\x00" + b"\x00\x13\x04"
    status, text = hex_run(tmp_path, good, unknown_type, lost_marker)
    assert status == EXIT_MALFORMED
    assert re.search(r"subtype +7 \(unknown\) +— unknown subtype: the receiver ignores", text)
    assert "unknown type (9), 19 octets" in text
    assert re.search(r"NOTIFICATION it causes +1/3 Message Header Error / Bad Message Type", text)
    assert re.search(r"data +09 +— the erroneous type", text)
    assert re.search(
        r"NOTIFICATION it causes +1/1 Message Header Error / Connection Not Synchronized", text
    )


def test_mp_reach_of_a_family_not_decoded_reads_not_negotiated_not_malformed() -> None:
    """Hardening #3: VPNv4 (AFI 1 SAFI 128) MP_REACH_NLRI is valid BGP: no MALFORMED, no
    session reset, but "not negotiated / not decoded here"."""
    import subprocess
    import sys
    from pathlib import Path

    attrs = bytes.fromhex("800e0900018004c0a8005000" + "40010100" + "400200")
    body = (0).to_bytes(2, "big") + len(attrs).to_bytes(2, "big") + attrs
    message = b"\xff" * 16 + (19 + len(body)).to_bytes(2, "big") + b"\x02" + body
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-m", "speaker", "decode", "--hex", "/dev/stdin"],
        input=message.hex(),
        capture_output=True,
        text=True,
        cwd=root,
        check=True,
    ).stdout
    assert "not negotiated / not decoded here" in out, out
    assert "MALFORMED" not in out and "session reset" not in out, out


def test_json_writes_a_prefix_as_text_though_it_is_an_int() -> None:
    prefix = Prefix.parse("10.244.42.64/26")
    assert jsonable(prefix) == "10.244.42.64/26"
    assert json.loads(json.dumps(jsonable([prefix]))) == ["10.244.42.64/26"]
