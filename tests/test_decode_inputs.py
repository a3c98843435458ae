"""``speaker decode`` inputs: captures built here with dpkt, hex files, and unreadable files.

The captures are built packet by packet so that TCP segmentation is known: one message split
across two segments, several messages in one segment, pcap and pcapng.  The hex files carry
malformed messages between good ones: each must be reported with the NOTIFICATION it causes
and decoding must go on.
"""

from __future__ import annotations

import io
import ipaddress
import json
import re
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dpkt
import pytest

from speaker.decode import EXIT_MALFORMED, EXIT_OK, EXIT_UNREADABLE, decode_main
from speaker.wire import Keepalive, Negotiated, Notification, Open, Update, negotiate
from speaker.wire.attributes import (
    AsPathAttr,
    AsPathSegment,
    NextHopAttr,
    OriginAttr,
)
from speaker.wire.capabilities import (
    AddPathCapability,
    AddPathMode,
    FourOctetAsCapability,
    GracefulRestartCapability,
    GracefulRestartFlags,
    MultiprotocolCapability,
    RouteRefreshCapability,
)
from speaker.wire.enums import Afi, AsPathSegmentType, CeaseSubcode, Origin, Safi
from speaker.wire.nlri import Nlri, Prefix

V4 = (Afi.IPV4, Safi.UNICAST)


def make_open(asn: int, bgp_id: str, mode: AddPathMode | None, hold: int = 90) -> Open:
    caps: list[Any] = [
        MultiprotocolCapability(*V4),
        RouteRefreshCapability(),
        GracefulRestartCapability(GracefulRestartFlags(0), 120, ()),
        FourOctetAsCapability(asn),
    ]
    if mode is not None:
        caps.append(AddPathCapability(((*V4, mode),)))
    return Open.build(asn, hold, ipaddress.IPv4Address(bgp_id), caps)


def make_update(prefix: str, path_id: int | None, asns: tuple[int, ...] = (65001,)) -> Update:
    return Update(
        attributes=(
            OriginAttr(Origin.IGP),
            AsPathAttr((AsPathSegment(AsPathSegmentType.AS_SEQUENCE, asns),)),
            NextHopAttr(ipaddress.IPv4Address("10.0.0.1")),
        ),
        nlri=(Nlri(Prefix.parse(prefix), path_id),),
    )


def run(path: Path, *, as_json: bool = False, force_hex: bool = False) -> tuple[int, str]:
    out = io.StringIO()
    status = decode_main(str(path), as_json=as_json, force_hex=force_hex, out=out, width=0)
    return status, out.getvalue()


def blocks(text: str) -> list[str]:
    return [b for b in text.split("\n\n") if b.startswith("#")]


# ------------------------------------------------------------------------------ captures


A = ("10.0.0.1", 40000)
B = ("10.0.0.2", 179)


class Capture:
    """Builds Ethernet/IPv4/TCP frames of one BGP connection, tracking sequence numbers."""

    def __init__(self) -> None:
        self.frames: list[tuple[float, bytes]] = []
        self.seq = {A: 1000, B: 5000}

    def packet(self, src: tuple[str, int], payload: bytes, flags: int = dpkt.tcp.TH_ACK) -> None:
        dst = B if src == A else A
        tcp = dpkt.tcp.TCP(sport=src[1], dport=dst[1], seq=self.seq[src], flags=flags, data=payload)
        ip = dpkt.ip.IP(src=socket.inet_aton(src[0]), dst=socket.inet_aton(dst[0]), p=6, data=tcp)
        eth = dpkt.ethernet.Ethernet(
            src=b"\x02" * 6, dst=b"\x04" * 6, type=dpkt.ethernet.ETH_TYPE_IP, data=ip
        )
        self.frames.append((1700000000.0 + len(self.frames) * 0.001, bytes(eth)))
        self.seq[src] = (self.seq[src] + len(payload) + (1 if flags & dpkt.tcp.TH_SYN else 0)) & (
            0xFFFFFFFF
        )

    def write_pcap(self, path: Path) -> None:
        with path.open("wb") as fh:
            writer = dpkt.pcap.Writer(fh)
            for ts, buf in self.frames:
                writer.writepkt(buf, ts)

    def write_pcapng(self, path: Path) -> None:
        with path.open("wb") as fh:
            writer = dpkt.pcapng.Writer(fh)
            for ts, buf in self.frames:
                writer.writepkt(buf, ts)


def segmented_session() -> tuple[Capture, Negotiated]:
    """A session with add-path both ways; frames 1-2 SYNs, then:

    3, 4   A's OPEN split in two segments (completed by frame 4)
    5      B's OPEN and B's KEEPALIVE in one segment
    6      A's KEEPALIVE, A's UPDATE (path id 7) and the first 10 octets of the next UPDATE
    7      the rest of that UPDATE (path id 8) and A's End-of-RIB
    """
    open_a = make_open(65001, "10.0.0.1", AddPathMode.BOTH)
    open_b = make_open(65001, "10.0.0.2", AddPathMode.BOTH)
    ctx_a = negotiate(open_a, open_b)  # how A writes (and B reads: add-path both ways)
    ctx = Negotiated()
    cap = Capture()
    cap.packet(A, b"", dpkt.tcp.TH_SYN)
    cap.packet(B, b"", dpkt.tcp.TH_SYN | dpkt.tcp.TH_ACK)
    wire_a = open_a.encode(ctx)
    cap.packet(A, wire_a[:30])
    cap.packet(A, wire_a[30:])
    cap.packet(B, open_b.encode(ctx) + Keepalive().encode(ctx))
    second = make_update("10.244.2.0/26", 8).encode(ctx_a)
    cap.packet(
        A,
        Keepalive().encode(ctx) + make_update("10.244.1.0/26", 7).encode(ctx_a) + second[:10],
    )
    cap.packet(A, second[10:] + Update().encode(ctx_a))
    return cap, ctx_a


@pytest.mark.parametrize("kind", ["pcap", "pcapng"])
def test_reassembles_split_and_packed_segments(tmp_path: Path, kind: str) -> None:
    cap, _ = segmented_session()
    path = tmp_path / f"session.{kind}"
    (cap.write_pcap if kind == "pcap" else cap.write_pcapng)(path)
    status, out = run(path, as_json=True)
    assert status == EXIT_OK
    records = [json.loads(line) for line in out.splitlines()]
    assert [(r["frame"], r["type"]) for r in records] == [
        (4, "OPEN"),
        (5, "OPEN"),
        (5, "KEEPALIVE"),
        (6, "KEEPALIVE"),
        (6, "UPDATE"),
        (7, "UPDATE"),
        (7, "UPDATE"),
    ]
    assert records[0]["source"] == {"address": "10.0.0.1", "port": 40000}
    assert records[0]["length"] == 29 + 2 + sum(2 + c["length"] for c in records[0]["capabilities"])
    assert "negotiation" in records[1]
    assert records[3]["first_after_open"] is True
    assert [r["nlri"] for r in records[4:6]] == [
        [{"prefix": "10.244.1.0/26", "path_id": 7}],
        [{"prefix": "10.244.2.0/26", "path_id": 8}],
    ]
    assert records[6]["end_of_rib"] == "ipv4/unicast"
    assert all(r["context"]["negotiated"] for r in records[4:])
    assert records[4]["attributes"][1]["value"] == [
        {"type": "AS_SEQUENCE", "type_code": 2, "asns": [65001]}
    ]


def test_text_of_the_segmented_capture(tmp_path: Path) -> None:
    cap, _ = segmented_session()
    path = tmp_path / "session.pcap"
    cap.write_pcap(path)
    status, out = run(path)
    assert status == EXIT_OK
    got = blocks(out)
    assert got[0].startswith("#1  frame 4  0.000000  10.0.0.1:40000 -> 10.0.0.2:179  OPEN (1)")
    assert "capability negotiation: 10.0.0.1:40000 <-> 10.0.0.2:179" in got[1]
    assert re.search(r"10\.244\.2\.0/26 +path-id 8", got[5])
    assert re.search(r"AS_PATH \(2\) .* +AS_SEQUENCE 65001 .*4-octet AS numbers", got[4])


def test_add_path_is_read_per_direction(tmp_path: Path) -> None:
    # A can only send, B can only receive: path ids flow A -> B only
    open_a = make_open(65001, "10.0.0.1", AddPathMode.SEND)
    open_b = make_open(65001, "10.0.0.2", AddPathMode.RECEIVE)
    ctx_a = negotiate(open_a, open_b)  # A's side: writes path ids, reads none
    ctx_b = negotiate(open_b, open_a)  # B's side: reads path ids, writes none
    assert ctx_a.addpath_send == ctx_b.addpath_receive == {V4}
    assert not ctx_a.addpath_receive and not ctx_b.addpath_send
    cap = Capture()
    plain = Negotiated()
    cap.packet(A, open_a.encode(plain))
    cap.packet(B, open_b.encode(plain))
    cap.packet(A, make_update("10.244.1.0/26", 3).encode(ctx_a))
    cap.packet(B, make_update("10.244.9.0/26", None).encode(ctx_b))
    path = tmp_path / "oneway.pcap"
    cap.write_pcap(path)
    status, out = run(path, as_json=True)
    assert status == EXIT_OK
    records = [json.loads(line) for line in out.splitlines()]
    assert records[2]["nlri"] == [{"prefix": "10.244.1.0/26", "path_id": 3}]
    assert records[3]["nlri"] == [{"prefix": "10.244.9.0/26", "path_id": None}]
    assert [d["families"] for d in records[1]["negotiation"]["add_path"]] == [["ipv4/unicast"], []]
    status, text = run(path)
    assert "add-path 10.0.0.1:40000 -> 10.0.0.2:179  path ids on IPv4/unicast" in text
    assert re.search(r"add-path 10\.0\.0\.2:179 -> 10\.0\.0\.1:40000 +none", text)
    assert "NLRI (no path ids: add-path not negotiated for this family), 1 prefix" in text


def test_capture_without_bgp(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "empty.pcap"
    Capture().write_pcap(path)
    status, out = run(path)
    assert (status, out) == (EXIT_OK, "")
    assert "no BGP messages found" in capsys.readouterr().err


# ------------------------------------------------------------------------------ hex


def hex_session() -> list[bytes]:
    """OPEN A, OPEN B, a good UPDATE, an UPDATE with a 33-bit prefix (3/10, session reset),
    an UPDATE with ORIGIN 5 (3/6, treat-as-withdraw), a shutdown NOTIFICATION, a KEEPALIVE."""
    open_a = make_open(4200000001, "10.0.0.1", AddPathMode.BOTH)
    open_b = make_open(4200000001, "10.0.0.2", AddPathMode.BOTH, hold=180)
    ctx = negotiate(open_b, open_a)
    good = make_update("10.1.0.0/16", 7, (4200000001, 65001)).encode(ctx)
    bad_prefix = bytearray(make_update("10.3.0.0/16", 9).encode(ctx))
    bad_prefix[-3] = 33  # the prefix length octet after the path id
    bad_origin = bytearray(make_update("10.2.0.0/16", 8).encode(ctx))
    at = bad_origin.index(bytes((0x40, 1, 1)))
    bad_origin[at + 3] = 5
    shutdown = Notification.cease(CeaseSubcode.ADMINISTRATIVE_SHUTDOWN, "maintenance 22:00")
    plain = Negotiated()
    return [
        open_a.encode(plain),
        open_b.encode(plain),
        good,
        bytes(bad_prefix),
        bytes(bad_origin),
        shutdown.encode(plain),
        Keepalive().encode(plain),
    ]


def write_hex(path: Path, messages: list[bytes], per_line: bool = True) -> Path:
    if per_line:
        path.write_text(
            "# a session, one message per line\n" + "\n".join(m.hex() for m in messages) + "\n"
        )
    else:  # one stream, wrapped at 32 octets and spaced like a hex dump
        blob = b"".join(messages).hex(" ")
        path.write_text("\n".join(blob[i : i + 96] for i in range(0, len(blob), 96)) + "\n")
    return path


@pytest.mark.parametrize("per_line", [True, False])
def test_hex_malformed_messages_are_reported_and_decoding_goes_on(
    tmp_path: Path, per_line: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_hex(tmp_path / "session.hex", hex_session(), per_line)
    status, out = run(path)
    assert status == EXIT_MALFORMED
    assert "2 of 7 messages malformed" in capsys.readouterr().err
    got = blocks(out)
    assert len(got) == 7
    assert ("line 2  A -> B  OPEN" if per_line else "offset 0  A -> B  OPEN") in got[0]
    assert "B -> A  OPEN (1)" in got[1] and "capability negotiation: A <-> B" in got[1]
    assert ("line 4  A -> B  UPDATE" if per_line else "A -> B  UPDATE") in got[2]
    assert re.search(r"AS_SEQUENCE 4200000001 65001", got[2])
    assert re.search(r"10\.1\.0\.0/16 +path-id 7", got[2])
    # session reset: prefix length 33
    assert re.search(r"MALFORMED +prefix length 33 exceeds 32 bits", got[3])
    assert re.search(
        r"NOTIFICATION it causes +3/10 UPDATE Message Error / Invalid Network Field", got[3]
    )
    assert "session reset" in got[3] and "bytes (offset, octets, field):" in got[3]
    # RFC 7606: treat-as-withdraw, the session survives
    assert re.search(r"RFC 7606 outcome +TREAT-AS-WITHDRAW", got[4])
    assert re.search(r"ORIGIN \(1\) flags 0x40 well-known transitive +05 +— NOT USED", got[4])
    assert re.search(
        r"NOTIFICATION without RFC 7606 +3/6 UPDATE Message Error / Invalid ORIGIN Attribute",
        got[4],
    )
    assert re.search(r"data +40010105", got[4])
    # and the next messages are decoded
    assert re.search(r'shutdown communication +"maintenance 22:00" \(17 octets\)', got[5])
    assert "KEEPALIVE (4)" in got[6]


def test_hex_json_reports_the_notification(tmp_path: Path) -> None:
    path = write_hex(tmp_path / "session.hex", hex_session())
    status, out = run(path, as_json=True)
    assert status == EXIT_MALFORMED
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["line"] for r in records] == [2, 3, 4, 5, 6, 7, 8]
    assert records[0]["source"] == {"side": "A"} and records[1]["source"] == {"side": "B"}
    assert records[3]["malformed"] is True
    assert records[3]["error"] == {
        "code": 3,
        "code_name": "UPDATE Message Error",
        "subcode": 10,
        "subcode_name": "Invalid Network Field",
        "data": "",
        "reason": "prefix length 33 exceeds 32 bits",
        "action": "session reset",
    }
    soft = records[4]
    assert soft["malformed"] is True and soft["error"] is None
    assert soft["treat_as_withdraw"] is True
    assert [(e["code"], e["subcode"], e["action"]) for e in soft["errors"]] == [
        (3, 6, "treat-as-withdraw")
    ]
    assert soft["attributes"][0] == {
        "type_code": 1,
        "name": "ORIGIN",
        "flags": 0x40,
        "flag_names": ["well-known", "transitive", "complete"],
        "optional": False,
        "transitive": True,
        "partial": False,
        "extended_length": False,
        "length": 1,
        "discarded": True,
        "raw": "05",
    }
    assert soft["nlri"] == [{"prefix": "10.2.0.0/16", "path_id": 8}]
    notif = records[5]
    assert (notif["code"], notif["subcode"], notif["shutdown_message"]) == (
        6,
        2,
        "maintenance 22:00",
    )
    assert records[1]["negotiation"]["hold_time"]["hold_time"] == 90


def test_hex_bad_length_field_is_reported_per_line(tmp_path: Path) -> None:
    messages = hex_session()
    broken = bytearray(messages[2])
    broken[17] += 4  # the header claims 4 more octets than the line holds
    messages[2] = bytes(broken)
    path = write_hex(tmp_path / "bad-length.hex", messages)
    status, out = run(path)
    assert status == EXIT_MALFORMED
    got = blocks(out)
    assert len(got) == 7
    assert re.search(
        r"NOTIFICATION it causes +1/2 Message Header Error / Bad Message Length", got[2]
    )
    assert re.search(r"header says \d+ octets, message has \d+", got[2])
    assert "OPEN" not in got[3] and "MALFORMED" in got[3]  # the 33-bit prefix, still found


def test_hex_without_both_opens_says_the_context_is_assumed(tmp_path: Path) -> None:
    messages = hex_session()
    path = write_hex(tmp_path / "one-open.hex", [messages[0], messages[2]])
    status, out = run(path)
    got = blocks(out)
    assert status == EXIT_MALFORMED  # add-path NLRI without the negotiated context
    assert "default context: 4-octet AS, no path ids" in got[1]
    assert "no OPEN from B" in got[1]
    assert "it decodes cleanly if add-path (receive) had been negotiated" in got[1]


def test_hex_a_new_open_starts_a_new_negotiation(tmp_path: Path) -> None:
    m = hex_session()
    no_addpath = make_open(4200000001, "10.0.0.1", None)
    plain_update = make_update("10.5.0.0/16", None).encode(Negotiated())
    # session 1 (add-path), then A re-opens without add-path; B answers with add-path
    path = write_hex(
        tmp_path / "two.hex",
        [m[0], m[1], m[2], no_addpath.encode(Negotiated()), plain_update, m[1], plain_update],
    )
    status, out = run(path, as_json=True)
    assert status == EXIT_OK
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["source"]["side"] for r in records] == ["A", "B", "A", "A", "A", "B", "A"]
    assert "negotiation" in records[1] and "negotiation" not in records[3]
    assert records[4]["context"]["negotiated"] is False
    assert records[4]["context"]["missing_open_from"] == ["B"]
    assert records[5]["negotiation"]["add_path"][0]["families"] == []
    assert records[6]["context"] == {
        "negotiated": True,
        "missing_open_from": [],
        "asn4": True,
        "addpath_receive": [],
        "max_message_size": 4096,
    }
    assert records[6]["nlri"] == [{"prefix": "10.5.0.0/16", "path_id": None}]


def test_hex_input_is_detected_and_forced(tmp_path: Path) -> None:
    path = write_hex(tmp_path / "x.txt", [Keepalive().encode(Negotiated())])
    assert run(path)[0] == EXIT_OK
    assert run(path, force_hex=True)[0] == EXIT_OK


# ------------------------------------------------------------------------------ errors


def _expect_unreadable(
    capsys: pytest.CaptureFixture[str], path: Path, why: str, force_hex: bool = False
) -> None:
    status, out = run(path, force_hex=force_hex)
    err = capsys.readouterr().err
    assert status == EXIT_UNREADABLE
    assert out == ""
    assert err.startswith(f"speaker decode: {path}: ")
    assert re.search(why, err), err


Maker = Callable[[Path], Path]


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda d: d / "missing.pcap", "cannot read: No such file or directory"),
        (lambda d: d, "cannot read: Is a directory"),
        (lambda d: _write(d / "empty", b""), "the file is empty"),
        (
            lambda d: _write(d / "binary", b"\x7fELF\x02\x01\x01\x00\xff\xfe"),
            r"not a pcap/pcapng capture \(starts with 7f454c46.*binary octet 0xff at offset 8",
        ),
        (
            lambda d: _write(d / "words.txt", b"ffff\nhello world\n"),
            r"not hex text: line 2: 'h' is not a hex digit",
        ),
        (lambda d: _write(d / "odd.hex", b"fff\n"), r"odd number of hex digits \(3\)"),
        (
            lambda d: _write(d / "odd-line.hex", (b"ff" * 16 + b"0013041\n") * 2),
            r"line 1: odd number of hex digits: the message is cut short",
        ),
        (
            lambda d: _write(d / "upper.hex", b"0Xff\n"),
            r"line 1: 'X' is not a hex digit",
        ),
        (
            lambda d: _write(d / "short.pcap", b"\xd4\xc3\xb2\xa1\x02\x00"),
            "not a readable capture",
        ),
    ],
)
def test_unreadable_files_exit_2_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: Maker, why: str
) -> None:
    _expect_unreadable(capsys, make(tmp_path), why)


def test_forced_hex_on_a_capture(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cap, _ = segmented_session()
    path = tmp_path / "session.pcap"
    cap.write_pcap(path)
    _expect_unreadable(capsys, path, r"^speaker decode: .*: not hex text \(binary octet", True)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
