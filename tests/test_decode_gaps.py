"""Damaged, cut and incomplete captures: a clear message, the right exit status, and after a
lost TCP segment, resynchronisation on the next marker (only the lost messages are missing).

Every damaged file is made here, in tmp_path, from the real captures.
"""

from __future__ import annotations

import io
import itertools
import json
import socket
from pathlib import Path
from typing import Any

import dpkt
import pytest

from speaker.decode import EXIT_GAPS, EXIT_OK, EXIT_UNREADABLE, decode_main
from speaker.pcap import Gap, RawMessage, read_stream
from speaker.wire import Keepalive, Negotiated, Notification

KEEPALIVE = Keepalive().encode(Negotiated())
CEASE = Notification(6, 2, b"\x05maint").encode(Negotiated())


def records(path: Path) -> list[tuple[int, bytes]]:
    """(offset, record octets) of each record of a little-endian pcap file."""
    data = path.read_bytes()
    out, offset = [], 24
    while offset < len(data):
        size = 16 + int.from_bytes(data[offset + 8 : offset + 12], "little")
        out.append((offset, data[offset : offset + size]))
        offset += size
    return out


def without_frames(src: Path, dst: Path, drop: set[int]) -> Path:
    data = src.read_bytes()
    kept = [rec for n, (_, rec) in enumerate(records(src), start=1) if n not in drop]
    dst.write_bytes(data[:24] + b"".join(kept))
    return dst


def run(path: Path, **kwargs: Any) -> tuple[int, str]:
    out = io.StringIO()
    status = decode_main(
        str(path), as_json=kwargs.pop("as_json", False), force_hex=False, out=out, **kwargs
    )
    return status, out.getvalue()


def tcp_payload(frame: bytes) -> bytes:
    return bytes(dpkt.ethernet.Ethernet(frame).data.data.data)


# ------------------------------------------------------------------------------ damaged files


def test_a_record_claiming_a_huge_length_exits_2_naming_frame_and_offset(
    testdata: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = testdata / "mesh-restart.pcap"
    data = bytearray(src.read_bytes())
    offset = records(src)[4][0]  # frame 5
    data[offset + 8 : offset + 12] = (10**9).to_bytes(4, "little")
    bad = tmp_path / "huge.pcap"
    bad.write_bytes(bytes(data))
    status, out = run(bad)
    err = capsys.readouterr().err
    assert status == EXIT_UNREADABLE
    assert f"frame 5, offset {offset}: the file is damaged" in err
    assert str(10**9) in err
    # what came before the damage is still shown: the messages of frames 1 to 4
    full = [m.frame for m in read_stream(src) if isinstance(m, RawMessage)]
    before = [f for f in full if f < 5]
    assert [b.split()[2] for b in out.split("\n\n") if b.startswith("#")] == [
        str(f) for f in before
    ]


def test_a_file_cut_mid_record_exits_2_naming_frame_and_offset(
    testdata: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = testdata / "lifecycle.pcap"
    recs = records(src)
    offset, rec = recs[30]  # frame 31, cut in its middle
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(src.read_bytes()[: offset + len(rec) // 2])
    status, _ = run(cut)
    err = capsys.readouterr().err
    assert status == EXIT_UNREADABLE
    assert f"frame 31, offset {offset}: the file is cut" in err
    assert "decoding stops there" in err


# ------------------------------------------------------------------------------ lost segments


def _messages(path: Path) -> list[tuple[str, str, float, bytes]]:
    return [
        (str(m.source), str(m.destination), m.timestamp, m.data)
        for m in read_stream(path)
        if isinstance(m, RawMessage)
    ]


def test_a_lost_segment_loses_only_its_messages(testdata: Path, tmp_path: Path) -> None:
    src = testdata / "lifecycle.pcap"
    lost_frame = 25
    payload = tcp_payload(records(src)[lost_frame - 1][1][16:])
    assert payload  # the frame carries BGP octets
    full = _messages(src)
    # the messages whose octets were in that frame: those it completed (one segment, whole
    # messages in the real capture)
    in_frame = [
        (str(m.source), str(m.destination), m.timestamp, m.data)
        for m in read_stream(src)
        if isinstance(m, RawMessage) and m.frame == lost_frame
    ]
    assert sum(len(m[3]) for m in in_frame) == len(payload)
    cut = without_frames(src, tmp_path / "lost.pcap", {lost_frame})
    got = _messages(cut)
    assert sorted(got) == sorted(m for m in full if m not in in_frame)
    gaps = [g for g in read_stream(cut) if isinstance(g, Gap)]
    assert len(gaps) == 1
    assert (gaps[0].lost, gaps[0].skipped, gaps[0].at_end) == (len(payload), 0, False)
    # Wireshark's relative sequence number of the lost segment
    seq = dpkt.ethernet.Ethernet(records(src)[lost_frame - 1][1][16:]).data.data.seq
    syn = next(
        dpkt.ethernet.Ethernet(r[16:]).data.data.seq
        for _, r in records(src)
        if dpkt.ethernet.Ethernet(r[16:]).data.data.flags & dpkt.tcp.TH_SYN
        and dpkt.ethernet.Ethernet(r[16:]).data.data.sport == gaps[0].source.port
        and dpkt.ethernet.Ethernet(r[16:]).data.data.dport == gaps[0].destination.port
    )
    assert gaps[0].seq == seq - syn


def test_decode_reports_the_gap_in_text_and_json_and_exits_3(
    testdata: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = testdata / "lifecycle.pcap"
    cut = without_frames(src, tmp_path / "lost.pcap", {25})
    full_status, full_text = run(src)
    status, text = run(cut)
    assert (full_status, status) == (EXIT_OK, EXIT_GAPS)
    assert "gap" in capsys.readouterr().err
    assert text.count("\n#") == full_text.count("\n#") - 1
    gap = [b for b in text.split("\n\n") if b.startswith("-- gap")]
    assert len(gap) == 1
    assert "71 octets not captured" in " ".join(gap[0].split())
    assert all(len(line) <= 120 for line in gap[0].splitlines())
    status, out = run(cut, as_json=True)
    recs = [json.loads(line) for line in out.splitlines()]
    gaps = [r for r in recs if r["type"] == "GAP"]
    assert [(g["lost_octets"], g["skipped_octets"]) for g in gaps] == [(71, 0)]
    assert gaps[0]["source"] == {"address": "192.168.0.80", "port": 179}
    # it sits between the last message before the hole and the first after it
    index = recs.index(gaps[0])
    assert recs[index - 1]["frame"] < gaps[0]["frame"] <= recs[index + 1]["frame"]


A = ("10.0.0.1", 40000)
B = ("10.0.0.2", 179)


def _frame(
    src: tuple[str, int], dst: tuple[str, int], seq: int, data: bytes, flags: int, ack: int = 0
) -> bytes:
    tcp = dpkt.tcp.TCP(sport=src[1], dport=dst[1], seq=seq, ack=ack, flags=flags, data=data)
    ip = dpkt.ip.IP(src=socket.inet_aton(src[0]), dst=socket.inet_aton(dst[0]), p=6, data=tcp)
    return bytes(dpkt.ethernet.Ethernet(type=dpkt.ethernet.ETH_TYPE_IP, data=ip))


def _write(path: Path, frames: list[bytes]) -> Path:
    with path.open("wb") as fh:
        writer = dpkt.pcap.Writer(fh)
        for i, buf in enumerate(frames):
            writer.writepkt(buf, 1.0 + i * 0.01)
    return path


def test_a_hole_inside_a_message_skips_to_the_next_marker(tmp_path: Path) -> None:
    stream = KEEPALIVE + CEASE + KEEPALIVE + KEEPALIVE
    cuts = [0, 10, 30, len(KEEPALIVE) + len(CEASE) + 5, len(stream)]
    pieces = [stream[a:b] for a, b in itertools.pairwise(cuts)]
    frames = [_frame(A, B, 999, b"", dpkt.tcp.TH_SYN)]
    seq = 1000
    for i, piece in enumerate(pieces):
        if i != 1:  # octets 10-30 are lost: the end of KEEPALIVE 1 and the start of CEASE
            frames.append(_frame(A, B, seq, piece, dpkt.tcp.TH_ACK))
        seq += len(piece)
    # B acknowledges everything: the hole was sent, the capture missed it
    frames.append(_frame(B, A, 5000, b"", dpkt.tcp.TH_ACK, ack=seq))
    items = list(read_stream(_write(tmp_path / "hole.pcap", frames)))
    gaps = [g for g in items if isinstance(g, Gap)]
    messages = [m.data for m in items if isinstance(m, RawMessage)]
    assert messages == [KEEPALIVE, KEEPALIVE]
    # skipped: the 10 octets of KEEPALIVE 1 before the hole, and what follows the hole up to
    # the next marker (the rest of CEASE)
    assert len(gaps) == 1
    assert gaps[0].lost == 20
    assert gaps[0].skipped == 10 + (len(KEEPALIVE) + len(CEASE) - 30)


def test_out_of_order_segments_are_not_a_gap(tmp_path: Path) -> None:
    stream = CEASE + KEEPALIVE
    frames = [
        _frame(A, B, 99, b"", dpkt.tcp.TH_SYN),
        _frame(A, B, 100 + 21, stream[21:], dpkt.tcp.TH_ACK),  # early, no ACK covers the hole
        _frame(A, B, 100, stream[:21], dpkt.tcp.TH_ACK),
    ]
    items = list(read_stream(_write(tmp_path / "ooo.pcap", frames)))
    assert [i.data for i in items if isinstance(i, RawMessage)] == [CEASE, KEEPALIVE]
    assert not [i for i in items if isinstance(i, Gap)]


def test_a_message_cut_by_the_end_of_the_capture(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frames = [
        _frame(A, B, 999, b"", dpkt.tcp.TH_SYN),
        _frame(A, B, 1000, KEEPALIVE + CEASE[:12], dpkt.tcp.TH_ACK),
    ]
    path = _write(tmp_path / "end.pcap", frames)
    status, text = run(path, width=0)
    assert status == EXIT_GAPS
    assert text.count("\n#") + text.startswith("#") == 1
    assert "the capture ends inside a message: 12 octets of it captured" in text
    frames[1] = _frame(A, B, 1000, KEEPALIVE + CEASE[:20], dpkt.tcp.TH_ACK)
    status, text = run(_write(tmp_path / "end2.pcap", frames), width=0)
    assert f"20 of its {len(CEASE)} octets captured" in text


def test_a_capture_started_mid_message_resynchronises(tmp_path: Path) -> None:
    frames = [_frame(A, B, 5000, CEASE[7:] + KEEPALIVE, dpkt.tcp.TH_ACK)]
    items = list(read_stream(_write(tmp_path / "mid.pcap", frames)))
    assert isinstance(items[0], Gap)
    assert (items[0].lost, items[0].skipped) == (None, len(CEASE) - 7)
    assert [i.data for i in items[1:] if isinstance(i, RawMessage)] == [KEEPALIVE]
