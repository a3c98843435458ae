"""Fields that used to be shown as hex or misnamed, built by hand from the RFCs' layouts.

Each expected value is worked out here from the RFC (or the IANA registry), the way Wireshark
shows it, never copied from our own output.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

from speaker.decode import EXIT_OK, decode_main

MARKER = b"\xff" * 16


def message(kind: int, body: bytes) -> bytes:
    """Header (RFC 4271 4.1): marker, 2-octet length, type."""
    return MARKER + (19 + len(body)).to_bytes(2, "big") + bytes((kind,)) + body


def open_message(asn: int, bgp_id: bytes, caps: bytes) -> bytes:
    """OPEN (RFC 4271 4.2): version 4, My AS, hold 90, id, one Capabilities parameter."""
    params = bytes((2, len(caps))) + caps
    return message(
        1,
        bytes((4,))
        + asn.to_bytes(2, "big")
        + (90).to_bytes(2, "big")
        + bgp_id
        + bytes((len(params),))
        + params,
    )


def attribute(flags: int, code: int, value: bytes) -> bytes:
    return bytes((flags, code, len(value))) + value


def update(attrs: bytes, nlri: bytes = bytes((24, 10, 1, 2))) -> bytes:
    """UPDATE (RFC 4271 4.3): no withdrawn routes, the attributes, one IPv4 prefix."""
    return message(2, b"\x00\x00" + len(attrs).to_bytes(2, "big") + attrs + nlri)


ORIGIN_IGP = attribute(0x40, 1, b"\x00")
NEXT_HOP = attribute(0x40, 3, bytes((10, 0, 0, 1)))


def run(tmp_path: Path, *messages: bytes, as_json: bool = False) -> tuple[int, str]:
    path = tmp_path / "m.hex"
    path.write_text("\n".join(m.hex() for m in messages) + "\n")
    out = io.StringIO()
    status = decode_main(str(path), as_json=as_json, force_hex=False, out=out, width=0)
    return status, out.getvalue()


def records(tmp_path: Path, *messages: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in run(tmp_path, *messages, as_json=True)[1].splitlines()]


# ------------------------------------------------------------------------------ NOTIFICATION


def test_hold_timer_expired_subcode_0_is_the_normal_value(tmp_path: Path) -> None:
    # RFC 4271 4.5: "If no appropriate Error Subcode is defined, then a zero (Unspecific)
    # value is used"; code 4 (6.5) defines no subcodes
    status, text = run(tmp_path, message(3, b"\x04\x00"), message(3, b"\x04\x01"))
    assert status == EXIT_OK
    first, second = [b for b in text.split("\n\n") if b.startswith("#")]
    assert re.search(r"error code +4 Hold Timer Expired", first)
    assert re.search(r"error subcode +0 Unspecific +— the normal value", first)
    assert "unknown" not in first and "not defined" not in first
    assert re.search(r"error subcode +1 \(unknown\) +— not defined for Hold Timer Expired", second)
    recs = records(tmp_path, message(3, b"\x04\x00"))
    assert (recs[0]["code_name"], recs[0]["subcode_name"]) == ("Hold Timer Expired", "Unspecific")


def test_subcode_0_of_every_code_is_named(tmp_path: Path) -> None:
    # 1-3 and 6: Unspecific (RFC 4271 4.5); 5: Unspecified Error (RFC 6608 4);
    # 7: Reserved (RFC 7313 5); and OPEN subcode 11, Role Mismatch (RFC 9234 4.2)
    expected = {
        1: "Unspecific",
        2: "Unspecific",
        3: "Unspecific",
        4: "Unspecific",
        5: "Unspecified Error",
        6: "Unspecific",
        7: "Reserved",
    }
    recs = records(tmp_path, *(message(3, bytes((code, 0))) for code in expected))
    assert {r["code"]: r["subcode_name"] for r in recs} == expected
    assert records(tmp_path, message(3, b"\x02\x0b"))[0]["subcode_name"] == "Role Mismatch"


# ------------------------------------------------------------------------------ capabilities


def test_role_fqdn_and_extended_next_hop_capabilities(tmp_path: Path) -> None:
    role = bytes((9, 1, 3))  # RFC 9234 4.1: 3 = Customer
    host, domain = b"r1", b"example.net"
    fqdn = bytes((73, 2 + len(host) + len(domain))) + bytes((len(host),)) + host
    fqdn += bytes((len(domain),)) + domain
    # RFC 8950 3: NLRI AFI 1 (2 octets), NLRI SAFI 1 (2 octets), next hop AFI 2
    enh = bytes((5, 6)) + bytes.fromhex("000100010002")
    msg = open_message(65001, bytes((10, 0, 0, 1)), role + fqdn + enh)
    status, text = run(tmp_path, msg)
    assert status == EXIT_OK
    assert re.search(r"BGP role \(9\) +Customer \(3\): .*the peer must announce Provider", text)
    assert re.search(r'FQDN \(73\) +host name "r1", domain name "example.net"', text)
    assert re.search(
        r"extended next hop \(5\) +IPv4/unicast \(AFI 1, SAFI 1\) may use an IPv6 next hop "
        r"\(next hop AFI 2\)",
        text,
    )
    caps = records(tmp_path, msg)[0]["capabilities"]
    assert caps[0]["role"] == 3 and caps[0]["role_name"] == "Customer"
    assert (caps[1]["hostname"], caps[1]["domain_name"]) == ("r1", "example.net")
    assert caps[2]["entries"][0]["next_hop_afi"] == 2


def test_a_malformed_fqdn_is_shown_as_bytes_not_refused(tmp_path: Path) -> None:
    fqdn = bytes((73, 3, 5, ord("r"), ord("1")))  # claims a 5-octet host name, has 2
    status, text = run(tmp_path, open_message(65001, bytes((10, 0, 0, 1)), fqdn))
    assert status == EXIT_OK
    assert re.search(r"FQDN \(73\) +value 057231: does not parse as this capability", text)


# ------------------------------------------------------------------------------ attributes


def test_extended_communities_by_type_and_subtype(tmp_path: Path) -> None:
    values = [
        # RFC 4360 3.1/4: transitive two-octet AS (0x00), route target (0x02), 64512:10
        bytes((0x00, 0x02)) + (64512).to_bytes(2, "big") + (10).to_bytes(4, "big"),
        # RFC 4360 3.2/5: IPv4-address-specific (0x01) route origin (0x03), 192.0.2.1:7
        bytes((0x01, 0x03, 192, 0, 2, 1)) + (7).to_bytes(2, "big"),
        # RFC 5668 2: four-octet AS-specific (0x02) route target, 4200000000:10
        bytes((0x02, 0x02)) + (4200000000).to_bytes(4, "big") + (10).to_bytes(2, "big"),
        # RFC 9012 4.3: transitive opaque (0x03) color (0x0b): 2 flag octets, color 100
        bytes((0x03, 0x0B, 0, 0)) + (100).to_bytes(4, "big"),
        # RFC 8097 2: non-transitive opaque (0x43) subtype 0, state 2 = invalid
        bytes((0x43, 0x00, 0, 0, 0, 0, 0, 2)),
        # unassigned: type 0x8a subtype 0x99, shown by numbers and hex
        bytes((0x8A, 0x99, 1, 2, 3, 4, 5, 6)),
    ]
    ext = attribute(0xC0, 16, b"".join(values))
    as_path = attribute(0x40, 2, bytes((2, 1)) + (65001).to_bytes(4, "big"))
    msg = update(ORIGIN_IGP + as_path + NEXT_HOP + ext)
    status, text = run(tmp_path, msg)
    assert status == EXIT_OK
    for pattern in (
        r"route target +64512:10 +— .*transitive two-octet AS-specific \(type 0x00, "
        r"subtype 0x02\) +\[RFC 4360 4\]",
        r"route origin +192\.0\.2\.1:7 .*transitive IPv4-address-specific",
        r"route target +4200000000:10 .*transitive four-octet AS-specific",
        r"color +color 100 \(flags 0x0000\)",
        r"origin validation state +invalid .*non-transitive opaque",
        r"type 0x8a subtype 0x99 +010203040506",
    ):
        assert re.search(pattern, text), pattern
    attrs = records(tmp_path, msg)[0]["attributes"]
    decoded = attrs[3]["value"]
    assert [(c["type"], c["subtype"], c["value"]) for c in decoded[:3]] == [
        (0, 2, "64512:10"),
        (1, 3, "192.0.2.1:7"),
        (2, 2, "4200000000:10"),
    ]
    assert [c["transitive"] for c in decoded] == [True, True, True, True, False, True]


def test_otc_attribute(tmp_path: Path) -> None:
    # RFC 9234 5: optional transitive (0xc0), type 35, a 4-octet AS
    otc = attribute(0xC0, 35, (65001).to_bytes(4, "big"))
    as_path = attribute(0x40, 2, bytes((2, 1)) + (65001).to_bytes(4, "big"))
    msg = update(ORIGIN_IGP + as_path + NEXT_HOP + otc)
    status, text = run(tmp_path, msg)
    assert status == EXIT_OK
    assert re.search(
        r"OTC \(35\) flags 0xc0 optional transitive +AS 65001 +— Only to Customer", text
    )
    assert (
        records(tmp_path, msg)[0]["attributes"][3] | {"value": 65001}
        == records(tmp_path, msg)[0]["attributes"][3]
    )
    # RFC 9234 5: a length other than 4 is malformed: treat-as-withdraw
    bad = update(ORIGIN_IGP + as_path + NEXT_HOP + attribute(0xC0, 35, b"\x00\x01"))
    assert "TREAT-AS-WITHDRAW" in run(tmp_path, bad)[1]


def _session(asn_a: int, asn_b: int, four_octet: bool) -> list[bytes]:
    caps_a = bytes((65, 4)) + asn_a.to_bytes(4, "big") if four_octet else b""
    caps_b = bytes((65, 4)) + asn_b.to_bytes(4, "big") if four_octet else b""
    caps_a += bytes((1, 4, 0, 1, 0, 1))
    caps_b += bytes((1, 4, 0, 1, 0, 1))
    return [
        open_message(asn_a, bytes((10, 0, 0, 1)), caps_a),
        open_message(asn_b, bytes((10, 0, 0, 2)), caps_b),
    ]


def test_an_as_path_with_the_receivers_as_is_a_loop(tmp_path: Path) -> None:
    # A (65001) sends to B (65002) a route whose path already went through 65002
    path = bytes((2, 3)) + b"".join(a.to_bytes(4, "big") for a in (65001, 65002, 65010))
    looped = update(ORIGIN_IGP + attribute(0x40, 2, path) + NEXT_HOP)
    clean_path = bytes((2, 2)) + b"".join(a.to_bytes(4, "big") for a in (65001, 65010))
    clean = update(ORIGIN_IGP + attribute(0x40, 2, clean_path) + NEXT_HOP)
    status, text = run(tmp_path, *_session(65001, 65002, True), looped, clean)
    assert status == EXIT_OK
    blocks = [b for b in text.split("\n\n") if b.startswith("#")]
    assert re.search(
        r"AS loop +contains 65002, the receiver's own AS .*\[RFC 4271 9\.1\.2\]", blocks[2]
    )
    assert "AS loop" not in blocks[3]
    recs = records(tmp_path, *_session(65001, 65002, True), looped, clean)
    assert [r["as_loop"] for r in recs[2:]] == [True, False]
    # without the OPENs the receiver's AS is unknown: no verdict
    assert records(tmp_path, looped)[0]["as_loop"] is None


def test_as4_path_is_merged_with_an_as_path_holding_as_trans(tmp_path: Path) -> None:
    # a 2-octet session (no capability 65): AS_PATH 65001 23456 65010 (2 octets each),
    # AS4_PATH 4200000000 65010; RFC 6793 4.2.3: AS_PATH has 3 ASes, AS4_PATH 2, so one
    # leading AS of AS_PATH is put before AS4_PATH: 65001 4200000000 65010
    as_path = bytes((2, 3)) + b"".join(a.to_bytes(2, "big") for a in (65001, 23456, 65010))
    as4 = bytes((2, 2)) + b"".join(a.to_bytes(4, "big") for a in (4200000000, 65010))
    msg = update(ORIGIN_IGP + attribute(0x40, 2, as_path) + NEXT_HOP + attribute(0xC0, 17, as4))
    status, text = run(tmp_path, *_session(65001, 65002, False), msg)
    assert status == EXIT_OK
    assert re.search(
        r"AS path \(merged\) +AS_SEQUENCE 65001 4200000000 65010 .*\[RFC 6793 4\.2\.3\]", text
    )
    rec = records(tmp_path, *_session(65001, 65002, False), msg)[2]
    assert rec["merged_as_path"] == [
        {"type": "AS_SEQUENCE", "type_code": 2, "asns": [65001, 4200000000, 65010]}
    ]
    # AS4_PATH longer than AS_PATH: it is ignored, the path stays AS_PATH
    long4 = bytes((2, 4)) + b"".join(a.to_bytes(4, "big") for a in (1, 2, 3, 4))
    msg = update(ORIGIN_IGP + attribute(0x40, 2, as_path) + NEXT_HOP + attribute(0xC0, 17, long4))
    text = run(tmp_path, *_session(65001, 65002, False), msg)[1]
    assert re.search(r"AS path \(merged\) +AS_SEQUENCE 65001 23456 65010 .*ignored", text)
