"""``speaker decode`` on the real BIRD 1.6.8 captures, checked against Wireshark's dissection.

The facts come from the ``*.tshark.txt`` files saved beside the captures (``tshark -O bgp``):
every BGP message of every frame, its type and length, OPEN fields and capability codes,
prefixes with their add-path path ids, NOTIFICATION codes and ROUTE-REFRESH subtypes.  Our
JSON output must agree with all of them, message by message.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dpkt
import pytest

from speaker.decode import decode_main

CAPTURES = ("mesh-restart", "lifecycle")


@dataclass
class TsharkMessage:
    """One BGP message as Wireshark dissected it."""

    frame: int
    type: str
    length: int = 0
    fields: dict[str, str] = field(default_factory=dict)
    capabilities: list[int] = field(default_factory=list)
    attributes: list[int] = field(default_factory=list)
    announced: list[tuple[str, int]] = field(default_factory=list)
    withdrawn: list[tuple[str, int]] = field(default_factory=list)
    restart_state: list[bool] = field(default_factory=list)
    addpath_modes: list[int] = field(default_factory=list)


_TYPES = {
    "OPEN": "OPEN",
    "UPDATE": "UPDATE",
    "NOTIFICATION": "NOTIFICATION",
    "KEEPALIVE": "KEEPALIVE",
    "ROUTE-REFRESH": "ROUTE-REFRESH",
}
_PREFIX = re.compile(r"^\s+(\S+/\d+) PathId (\d+)\s*$")
_FIELD = re.compile(r"^    (My AS|Hold Time|BGP Identifier|Length): (\S+)")
_CODED = re.compile(r"^\s+(Major error Code|Minor error Code|Subtype)\b.*\((\d+)\)\s*$")


def parse_tshark(path: Path) -> list[TsharkMessage]:
    """The BGP messages of a ``tshark -O bgp`` text dissection, in order."""
    messages: list[TsharkMessage] = []
    frame = 0
    section = ""
    for line in path.read_text().splitlines():
        if m := re.match(r"Frame (\d+):", line):
            frame = int(m.group(1))
            continue
        if m := re.match(r"Border Gateway Protocol - (\S+) Message", line):
            messages.append(TsharkMessage(frame, _TYPES[m.group(1)]))
            section = ""
            continue
        if not messages:
            continue
        msg = messages[-1]
        stripped = line.strip()
        if m := _FIELD.match(line):
            msg.fields.setdefault(m.group(1), m.group(2))
        elif m := _CODED.match(line):
            msg.fields[m.group(1)] = m.group(2)
        elif m := re.match(r"^ {16}Type: .*\((\d+)\)$", line):
            msg.capabilities.append(int(m.group(1)))
        elif m := re.match(r"^\s+Type Code: \S+ \((\d+)\)$", line):
            msg.attributes.append(int(m.group(1)))
        elif m := re.search(r"= Restart state: (Yes|No)$", line):
            msg.restart_state.append(m.group(1) == "Yes")
        elif m := re.match(r"^\s+Send/Receive: .*\((\d+)\)$", line):
            msg.addpath_modes.append(int(m.group(1)))
        elif stripped == "Withdrawn Routes":
            section = "withdrawn"
        elif stripped.startswith("Network Layer Reachability Information"):
            section = "announced"
        elif m := _PREFIX.match(line):
            entry = (m.group(1), int(m.group(2)))
            (msg.withdrawn if section == "withdrawn" else msg.announced).append(entry)
    for msg in messages:
        msg.length = int(msg.fields["Length"])
    return messages


def decode_json(path: Path) -> tuple[int, list[dict[str, Any]]]:
    out = io.StringIO()
    status = decode_main(str(path), as_json=True, force_hex=False, out=out)
    return status, [json.loads(line) for line in out.getvalue().splitlines()]


def decode_text(path: Path, **kwargs: Any) -> tuple[int, str]:
    out = io.StringIO()
    kwargs.setdefault("width", 0)
    status = decode_main(str(path), as_json=False, force_hex=False, out=out, **kwargs)
    return status, out.getvalue()


def _announced(rec: dict[str, Any]) -> list[tuple[str, int]]:
    found = [(n["prefix"], n["path_id"]) for n in rec["nlri"]]
    for attr in rec["attributes"]:
        if attr["type_code"] == 14:
            found += [(n["prefix"], n["path_id"]) for n in attr["value"]["nlri"]]
    return found


def _withdrawn(rec: dict[str, Any]) -> list[tuple[str, int]]:
    found = [(n["prefix"], n["path_id"]) for n in rec["withdrawn"]]
    for attr in rec["attributes"]:
        if attr["type_code"] == 15:
            found += [(n["prefix"], n["path_id"]) for n in attr["value"]["withdrawn"]]
    return found


@pytest.mark.parametrize("name", CAPTURES)
def test_every_message_agrees_with_wireshark(testdata: Path, name: str) -> None:
    expected = parse_tshark(testdata / f"{name}.tshark.txt")
    status, records = decode_json(testdata / f"{name}.pcap")
    assert status == 0
    assert len(expected) > 5
    assert [(r["frame"], r["type"]) for r in records] == [(m.frame, m.type) for m in expected]
    for rec, msg in zip(records, expected, strict=True):
        where = f"{name} frame {msg.frame}"
        assert rec["malformed"] is False, where
        assert rec["length"] == msg.length == len(bytes.fromhex(rec["raw"])), where
        if msg.type == "OPEN":
            assert rec["my_as"] == int(msg.fields["My AS"]), where
            assert rec["hold_time"] == int(msg.fields["Hold Time"]), where
            assert rec["bgp_id"] == msg.fields["BGP Identifier"], where
            assert [c["code"] for c in rec["capabilities"]] == msg.capabilities, where
            gr = [c for c in rec["capabilities"] if c["code"] == 64]
            assert [c["restart_state"] for c in gr] == msg.restart_state, where
            addpath = [
                f["mode"] for c in rec["capabilities"] if c["code"] == 69 for f in c["families"]
            ]
            assert addpath == msg.addpath_modes, where
        elif msg.type == "UPDATE":
            assert [a["type_code"] for a in rec["attributes"]] == msg.attributes, where
            assert _announced(rec) == msg.announced, where
            assert _withdrawn(rec) == msg.withdrawn, where
        elif msg.type == "NOTIFICATION":
            assert rec["code"] == int(msg.fields["Major error Code"]), where
            assert rec["subcode"] == int(msg.fields["Minor error Code"]), where
        elif msg.type == "ROUTE-REFRESH":
            assert rec["subtype"] == int(msg.fields["Subtype"]), where


def test_path_ids_are_read_from_the_negotiated_context(testdata: Path) -> None:
    _, records = decode_json(testdata / "mesh-restart.pcap")
    updates = [r for r in records if r["type"] == "UPDATE" and r["nlri"]]
    assert updates
    for rec in updates:
        assert rec["context"]["negotiated"] is True
        assert rec["context"]["addpath_receive"] == ["ipv4/unicast"]
    assert {(n["prefix"], n["path_id"]) for r in updates for n in r["nlri"]} == {
        ("10.244.42.64/26", 4),
        ("10.244.103.64/26", 4),
    }


def test_negotiation_summary_after_both_opens(testdata: Path) -> None:
    _, records = decode_json(testdata / "mesh-restart.pcap")
    opens = [r for r in records if r["type"] == "OPEN"]
    assert "negotiation" not in opens[0]
    neg = opens[1]["negotiation"]
    assert neg["sides"] == ["192.168.0.81:179", "192.168.0.82:35609"]
    assert neg["four_octet_as"] is True
    assert neg["hold_time"] == {
        "hold_time": 240,
        "keepalive": 80,
        "offered": {"192.168.0.81:179": 240, "192.168.0.82:35609": 240},
    }
    assert neg["families"] == ["ipv4/unicast"]
    assert [(d["from"], d["to"], d["families"]) for d in neg["add_path"]] == [
        ("192.168.0.81:179", "192.168.0.82:35609", ["ipv4/unicast"]),
        ("192.168.0.82:35609", "192.168.0.81:179", ["ipv4/unicast"]),
    ]
    assert neg["graceful_restart"]["negotiated"] is True
    assert neg["session_type"]["ibgp"] is True
    assert neg["enhanced_route_refresh"] is True


def test_text_explains_the_mesh_restart(testdata: Path) -> None:
    status, text = decode_text(testdata / "mesh-restart.pcap")
    assert status == 0
    # the stale session's NOTIFICATION, without any OPEN seen
    assert "#1  frame 1  0.000000  192.168.0.81:179 -> 192.168.0.82:42221  NOTIFICATION (3)" in text
    assert re.search(r"error code +6 Cease", text)
    assert re.search(r"error subcode +4 Administrative Reset", text)
    # capabilities with code, name, value and RFC section
    assert re.search(
        r"graceful restart \(64\) +restart time 120 s, R flag clear \(not restarting\), "
        r"N flag clear, IPv4/unicast F flag clear .*\[RFC 4724 3\]",
        text,
    )
    assert re.search(r"add-path \(69\) +IPv4/unicast: can send and receive", text)
    assert re.search(r"4-octet AS \(65\) +AS 64512", text)
    # the negotiation block and the first KEEPALIVEs
    assert "capability negotiation: 192.168.0.81:179 <-> 192.168.0.82:35609" in text
    assert re.search(r"hold time +min\(240, 240\) = 240 s; KEEPALIVE every 80 s", text)
    assert "first KEEPALIVE from 192.168.0.81:179 since its OPEN" in text
    # UPDATEs with path ids, End-of-RIB
    assert "NLRI (add-path: path ids present, negotiated in OPEN), 1 prefix  [RFC 7911 3]" in text
    assert re.search(r"10\.244\.42\.64/26 +path-id 4", text)
    assert re.search(r"ORIGIN \(1\) flags 0x40 well-known transitive +IGP \(0\)", text)
    assert len(re.findall(r"End-of-RIB +IPv4/unicast", text)) == 2


def test_text_explains_the_lifecycle(testdata: Path) -> None:
    status, text = decode_text(testdata / "lifecycle.pcap")
    assert status == 0
    assert re.search(r"subtype +0 normal route refresh", text)
    assert re.search(r"subtype +1 BoRR \(Beginning of Route Refresh\)", text)
    assert re.search(r"subtype +2 EoRR \(End of Route Refresh\)", text)
    assert re.search(r"error subcode +2 Administrative Shutdown", text)
    assert "R flag set (restarting" in text  # node .80 after `bird -R`
    assert "IPv4/unicast F flag set (forwarding state preserved" in text
    assert re.search(r"End-of-RIB +IPv6/unicast", text)
    assert re.search(r"MP_REACH_NLRI \(14\) flags 0x80 optional non-transitive +IPv6/unicast", text)
    assert re.search(r"fd00:10:244:98::/122 +path-id 3", text)
    assert re.search(r"COMMUNITIES \(8\) flags 0xc0 optional transitive +64512:100", text)
    assert re.search(r"LARGE_COMMUNITY \(32\) .* +64512:1:2", text)
    assert re.search(r"MULTI_EXIT_DISC \(4\) .* +50", text)
    assert "[fd00::81]:44621 -> [fd00::80]:179" in text


def test_json_lines_have_the_envelope(testdata: Path) -> None:
    status, records = decode_json(testdata / "lifecycle.pcap")
    assert status == 0
    first = records[0]
    for key in (
        "index",
        "frame",
        "timestamp",
        "time",
        "source",
        "destination",
        "type",
        "type_code",
        "length",
        "context",
        "malformed",
        "error",
        "raw",
    ):
        assert key in first, key
    assert first["source"] == {"address": "fd00::81", "port": 44621}
    assert first["time"] == 0.0
    assert [r["index"] for r in records] == list(range(1, len(records) + 1))
    notif = next(r for r in records if r["type"] == "NOTIFICATION")
    assert (notif["code_name"], notif["subcode_name"]) == ("Cease", "Administrative Shutdown")
    rr = [r for r in records if r["type"] == "ROUTE-REFRESH"]
    assert [(r["subtype"], r["family"]) for r in rr] == [
        (0, "ipv4/unicast"),
        (1, "ipv4/unicast"),
        (2, "ipv4/unicast"),
    ]
    assert [r["subtype_name"].split()[0] for r in rr] == ["normal", "BoRR", "EoRR"]
    eor = [r["end_of_rib"] for r in records if r["type"] == "UPDATE" and r["end_of_rib"]]
    assert eor.count("ipv6/unicast") == 2 and "ipv4/unicast" in eor
    med = next(
        a for r in records if r["type"] == "UPDATE" for a in r["attributes"] if a["type_code"] == 4
    )
    assert med == {
        "type_code": 4,
        "name": "MULTI_EXIT_DISC",
        "flags": 0x80,
        "flag_names": ["optional", "non-transitive", "complete"],
        "optional": True,
        "transitive": False,
        "partial": False,
        "extended_length": False,
        "length": 4,
        "value": 50,
    }


def _cut_before(src: Path, dst: Path, first: int) -> None:
    """Copy a capture from frame ``first`` on, as if tcpdump had started late."""
    with src.open("rb") as fh, dst.open("wb") as out:
        reader = dpkt.pcap.Reader(fh)
        writer = dpkt.pcap.Writer(out, linktype=reader.datalink())
        for number, (ts, buf) in enumerate(reader, start=1):
            if number >= first:
                writer.writepkt(buf, ts)


def test_without_the_opens_the_context_is_a_labelled_guess(testdata: Path, tmp_path: Path) -> None:
    # lifecycle.pcap from frame 22 on: the IPv4 session after its OPENs (frames 18 and 20)
    late = tmp_path / "late.pcap"
    _cut_before(testdata / "lifecycle.pcap", late, 22)
    status, text = decode_text(late)
    assert status == 1  # add-path NLRI cannot be read right without the negotiated context
    blocks = text.split("\n\n")
    bad = [b for b in blocks if "MALFORMED" in b]
    assert bad
    first = bad[0]
    assert "192.168.0.80:179 -> 192.168.0.81:60897  UPDATE (2), 71 octets" in first
    assert "default context: 4-octet AS, no path ids" in first
    assert (
        "the OPEN exchange was not seen (no OPEN from 192.168.0.80:179, 192.168.0.81:60897)"
        in first
    )
    assert "add-path (receive) had been negotiated" in first
    # an UPDATE that happens to parse without path ids is flagged as ambiguous
    ambiguous = [b for b in blocks if "ambiguous: it also decodes if add-path" in b]
    assert ambiguous and "MALFORMED" not in ambiguous[0]
    assert "then as 10.244.200.0/26 (path-id 6)" in ambiguous[0]
    assert "3/10 UPDATE Message Error / Invalid Network Field" in first
    # decoding went on: the ROUTE-REFRESHes and the NOTIFICATION are read
    assert re.search(r"subtype +1 BoRR", text)
    assert re.search(r"error subcode +2 Administrative Shutdown", text)
    # and the next session, whose OPENs are in the capture, is read with its context
    later = [b for b in blocks if "41025" in b and "UPDATE (2), 71 octets" in b]
    assert later and "MALFORMED" not in later[0]
    assert re.search(r"10\.244\.200\.0/26 +path-id 5", later[0])


def test_bytes_dump_marks_field_boundaries(testdata: Path) -> None:
    status, text = decode_text(testdata / "mesh-restart.pcap", show_bytes=True)
    assert status == 0
    update = text.split("#6  frame 14 ")[1].split("\n\n")[0]
    dump = update.split("bytes (offset, octets, field):")[1].splitlines()
    assert dump[1].split() == ["0000"] + ["ff"] * 16 + ["marker"]
    assert "0010  00 35" in dump[2] and "length = 53" in dump[2]
    assert "type = 2 (UPDATE)" in dump[3]
    assert any(
        "40 01 01" in line and "ORIGIN: flags 0x40, type 1, length 1" in line for line in dump
    )
    assert any(
        "00 00 00 04 1a 0a f4 2a 40" in line and "NLRI 10.244.42.64/26 path-id 4" in line
        for line in dump
    )
    # the octets shown add up to the message (bit-view lines draw octets already shown)
    rows = [line.strip() for line in dump[1:] if not line.strip().startswith("bits")]
    octets = [t for row in rows for t in row[6:53].split()]
    _, records = decode_json(testdata / "mesh-restart.pcap")
    assert "".join(octets) == records[5]["raw"]
