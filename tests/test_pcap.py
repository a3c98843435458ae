"""speaker.pcap: BGP messages out of captures, whatever the link layer, however TCP cut them."""

from __future__ import annotations

import ipaddress
import struct
from pathlib import Path

import dpkt
import pytest

from speaker.pcap import CaptureError, Endpoint, RawMessage, read_capture, read_hex
from speaker.wire import DEFAULT_CONTEXT, BgpError, Keepalive, Notification, decode_message
from speaker.wire.enums import HeaderSubcode

KEEPALIVE = Keepalive().encode(DEFAULT_CONTEXT)
CEASE = Notification(6, 2, b"\x03bye").encode(DEFAULT_CONTEXT)


def _frames(path: Path) -> list[tuple[float, bytes]]:
    with open(path, "rb") as fh:
        return list(dpkt.pcap.Reader(fh))


def _summary(path: Path) -> list[tuple[str, str, int, bytes]]:
    return [(str(m.source), str(m.destination), m.frame, m.data) for m in read_capture(path)]


def _write(path: Path, linktype: int, frames: list[tuple[float, bytes]], ng: bool = False) -> Path:
    with open(path, "wb") as fh:
        writer = (dpkt.pcapng.Writer if ng else dpkt.pcap.Writer)(fh, 65535, linktype)
        for ts, buf in frames:
            writer.writepkt(buf, ts=ts)
    return path


def _ip_of(frame: bytes) -> tuple[int, bytes]:
    eth = dpkt.ethernet.Ethernet(frame)
    return eth.type, bytes(eth.data)


def _sll(frame: bytes) -> bytes:
    ethtype, ip = _ip_of(frame)
    return struct.pack("!HHH8sH", 0, 1, 6, b"\x02" * 6 + b"\0\0", ethtype) + ip


def _sll2(frame: bytes) -> bytes:
    ethtype, ip = _ip_of(frame)
    return struct.pack("!HHiHBB8s", ethtype, 0, 2, 1, 0, 6, b"\x02" * 6 + b"\0\0") + ip


def _loopback(frame: bytes) -> bytes:
    ethtype, ip = _ip_of(frame)
    family = 2 if ethtype == dpkt.ethernet.ETH_TYPE_IP else 30
    return struct.pack("<I", family) + ip


def _raw(frame: bytes) -> bytes:
    return _ip_of(frame)[1]


@pytest.mark.parametrize(
    ("linktype", "convert", "ng"),
    [
        (dpkt.pcap.DLT_EN10MB, lambda f: f, True),
        (dpkt.pcap.DLT_LINUX_SLL, _sll, False),
        (276, _sll2, False),
        (dpkt.pcap.DLT_NULL, _loopback, False),
        (101, _raw, False),
        (dpkt.pcap.DLT_RAW, _raw, True),
    ],
    ids=["pcapng", "sll", "sll2", "loopback", "raw", "raw-pcapng"],
)
def test_every_link_layer_gives_the_same_messages(
    linktype: int, convert: object, ng: bool, testdata: Path, tmp_path: Path
) -> None:
    original = testdata / "lifecycle.pcap"
    frames = [(ts, convert(buf)) for ts, buf in _frames(original)]  # type: ignore[operator]
    copy = _write(tmp_path / "copy.pcap", linktype, frames, ng)
    expected = _summary(original)
    assert len(expected) == 45  # both the IPv4 and the IPv6 session
    assert _summary(copy) == expected


def test_frames_are_numbered_like_wireshark(testdata: Path) -> None:
    frames = [m.frame for m in read_capture(testdata / "mesh-restart.pcap")]
    assert frames == [1, 8, 10, 12, 13, 14, 15, 16, 17]


# ---------------------------------------------------------------------------- TCP


A = ("192.0.2.1", 40000)
B = ("192.0.2.2", 179)


def _segment(
    src: tuple[str, int], dst: tuple[str, int], seq: int, data: bytes, syn: bool = False
) -> bytes:
    tcp = dpkt.tcp.TCP(
        sport=src[1],
        dport=dst[1],
        seq=seq,
        flags=dpkt.tcp.TH_SYN if syn else dpkt.tcp.TH_ACK | dpkt.tcp.TH_PUSH,
        data=data,
    )
    ip = dpkt.ip.IP(
        src=ipaddress.IPv4Address(src[0]).packed,
        dst=ipaddress.IPv4Address(dst[0]).packed,
        p=dpkt.ip.IP_PROTO_TCP,
        data=tcp,
    )
    ip.len = len(bytes(ip))
    return bytes(dpkt.ethernet.Ethernet(type=dpkt.ethernet.ETH_TYPE_IP, data=ip))


def _capture(tmp_path: Path, segments: list[bytes]) -> list[RawMessage]:
    path = _write(
        tmp_path / "tcp.pcap", dpkt.pcap.DLT_EN10MB, [(i * 0.1, s) for i, s in enumerate(segments)]
    )
    return list(read_capture(path))


def test_messages_split_across_segments_and_packed_in_one(tmp_path: Path) -> None:
    stream = KEEPALIVE + CEASE + KEEPALIVE
    isn = 0xFFFFFFF0  # sequence numbers wrap around inside the stream
    first = (isn + 1) & 0xFFFFFFFF
    segments = [
        _segment(A, B, isn, b"", syn=True),
        _segment(A, B, first, stream[:10]),  # frame 2: half a header
        _segment(A, B, (first + 10) & 0xFFFFFFFF, stream[10:30]),  # frame 3: KEEPALIVE ends
        _segment(A, B, (first + 30) & 0xFFFFFFFF, stream[30:]),  # frame 4: CEASE + KEEPALIVE
    ]
    messages = _capture(tmp_path, segments)
    assert [(m.data, m.frame) for m in messages] == [(KEEPALIVE, 3), (CEASE, 4), (KEEPALIVE, 4)]
    assert messages[0].source == Endpoint("192.0.2.1", 40000)
    assert messages[0].stream == (Endpoint("192.0.2.1", 40000), Endpoint("192.0.2.2", 179))
    assert messages[1].timestamp == pytest.approx(0.3)


def test_out_of_order_and_retransmitted_segments(tmp_path: Path) -> None:
    stream = CEASE + KEEPALIVE
    segments = [
        _segment(A, B, 99, b"", syn=True),
        _segment(A, B, 100 + 15, stream[15:]),  # arrives first, kept until the gap fills
        _segment(A, B, 100, stream[:10]),
        _segment(A, B, 100, stream[:10]),  # retransmission of what we have
        _segment(A, B, 100 + 5, stream[5:20]),  # overlapping retransmission fills the gap
    ]
    messages = _capture(tmp_path, segments)
    assert [m.data for m in messages] == [CEASE, KEEPALIVE]
    assert [m.frame for m in messages] == [5, 5]


def test_both_directions_and_a_capture_started_mid_stream(tmp_path: Path) -> None:
    segments = [
        _segment(B, A, 5000, KEEPALIVE),  # no SYN seen: starts at the first segment
        _segment(A, B, 7000, CEASE),
    ]
    messages = _capture(tmp_path, segments)
    assert [(m.source.port, m.data) for m in messages] == [(179, KEEPALIVE), (40000, CEASE)]
    assert messages[0].stream == messages[1].stream


def test_unsynchronised_bytes_reach_the_decoder_as_one_message(tmp_path: Path) -> None:
    garbage = b"\x00" * 25
    segments = [_segment(A, B, 0, b"", syn=True), _segment(A, B, 1, garbage + KEEPALIVE)]
    messages = _capture(tmp_path, segments)
    assert [m.data for m in messages] == [garbage + KEEPALIVE]
    with pytest.raises(BgpError) as caught:
        decode_message(messages[0].data, DEFAULT_CONTEXT)
    assert (caught.value.code, caught.value.subcode) == (
        1,
        HeaderSubcode.CONNECTION_NOT_SYNCHRONIZED,
    )


def test_non_bgp_traffic_is_ignored(tmp_path: Path) -> None:
    other = _segment(("192.0.2.1", 40000), ("192.0.2.2", 80), 1, KEEPALIVE)
    arp = bytes(dpkt.ethernet.Ethernet(type=dpkt.ethernet.ETH_TYPE_ARP, data=b"\x00" * 28))
    messages = _capture(tmp_path, [other, arp, _segment(A, B, 1, KEEPALIVE)])
    assert [(m.frame, m.data) for m in messages] == [(3, KEEPALIVE)]


# ---------------------------------------------------------------------------- files


def test_a_capture_cut_short_yields_what_is_complete_then_names_the_cut(
    testdata: Path, tmp_path: Path
) -> None:
    cut = tmp_path / "cut.pcap"
    cut.write_bytes((testdata / "lifecycle.pcap").read_bytes()[:5000])
    messages: list[RawMessage] = []
    with pytest.raises(CaptureError) as caught:
        messages.extend(read_capture(cut))
    assert 0 < len(messages) < 45
    assert messages == list(read_capture(testdata / "lifecycle.pcap"))[: len(messages)]
    # the last record starts before offset 5000 and claims more than is left
    assert caught.value.frame is not None and caught.value.offset is not None
    assert caught.value.offset < 5000 and "the file is cut" in str(caught.value)


def test_a_record_claiming_a_huge_length_is_damage(testdata: Path, tmp_path: Path) -> None:
    data = bytearray((testdata / "mesh-restart.pcap").read_bytes())
    # record 3: walk the record headers (24-octet file header, 16-octet record headers)
    offset = 24
    for _ in range(2):
        offset += 16 + int.from_bytes(data[offset + 8 : offset + 12], "little")
    data[offset + 8 : offset + 12] = (0x7FFFFFF0).to_bytes(4, "little")
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(bytes(data))
    with pytest.raises(CaptureError) as caught:
        list(read_capture(bad))
    assert (caught.value.frame, caught.value.offset) == (3, offset)
    assert "damaged" in str(caught.value) and str(0x7FFFFFF0) in str(caught.value)


@pytest.mark.parametrize("content", [b"", b"\xd4\xc3\xb2", b"not a capture at all, really not"])
def test_a_file_that_is_no_capture_is_refused(content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "bad.pcap"
    path.write_bytes(content)
    with pytest.raises(CaptureError, match="not a pcap or pcapng"):
        list(read_capture(path))


def test_an_unknown_link_type_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "usb.pcap", 189, [(0.0, b"\x00" * 40)])
    with pytest.raises(CaptureError, match="link type 189"):
        list(read_capture(path))


def test_read_hex_accepts_lines_streams_and_decorations() -> None:
    text = f"""
        # two messages, one per line, decorated
        0x{KEEPALIVE.hex(":")}
        {" ".join(f"{b:02x}" for b in CEASE)}   # a Cease
    """
    assert list(read_hex(text)) == [KEEPALIVE, CEASE]
    assert list(read_hex((KEEPALIVE + CEASE).hex())) == [KEEPALIVE, CEASE]
    # a trailing fragment comes out as is, for the decoder to report
    assert list(read_hex((KEEPALIVE + b"\xff\xff").hex())) == [KEEPALIVE, b"\xff\xff"]


def test_read_hex_refuses_non_hex_text() -> None:
    with pytest.raises(CaptureError, match="not hexadecimal"):
        list(read_hex("ffff zz"))
