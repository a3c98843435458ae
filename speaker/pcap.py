"""Read BGP messages out of packet captures and hex files, one TCP stream at a time.

pcap and pcapng are read with dpkt (Ethernet, Linux cooked v1/v2, raw IP and loopback link
layers); each TCP direction is reassembled by sequence number, out-of-order and retransmitted
segments included, so a message split over segments, or several messages in one segment, come
out whole, tagged with the frame number that completed them (as Wireshark numbers frames).
This is the input side of ``speaker decode`` and of the tests that compare our reading with
Wireshark's.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import dpkt
import dpkt.loopback
import dpkt.sll2

from speaker.wire.messages import HEADER_SIZE, MARKER

BGP_PORT = 179


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One end of a TCP connection."""

    address: str
    port: int

    def __str__(self) -> str:
        return f"{self.address}:{self.port}"


@dataclass(frozen=True, slots=True)
class RawMessage:
    """One BGP message as it crossed the wire: who sent it, when, and its bytes."""

    source: Endpoint
    destination: Endpoint
    timestamp: float
    data: bytes
    frame: int = 0  # capture frame number of the segment that completed the message

    @property
    def stream(self) -> tuple[Endpoint, Endpoint]:
        """The connection, independent of direction (lower endpoint first)."""
        a, b = self.source, self.destination
        return (a, b) if (a.address, a.port) <= (b.address, b.port) else (b, a)


@dataclass(slots=True)
class _Direction:
    next_seq: int | None = None
    buffer: bytearray = field(default_factory=bytearray)
    pending: dict[int, tuple[bytes, float, int]] = field(default_factory=dict)


class CaptureError(Exception):
    """The file is not a capture or hex dump we can read."""


def _open_reader(fh: BinaryIO) -> tuple[Iterator[tuple[float, bytes]], int]:
    """A packet iterator and the link type, for pcap or pcapng."""
    try:
        reader = dpkt.pcap.Reader(fh)
    except (ValueError, dpkt.UnpackError):
        fh.seek(0)
        try:
            reader = dpkt.pcapng.Reader(fh)
        except (ValueError, dpkt.UnpackError) as exc:
            raise CaptureError(f"not a pcap or pcapng file: {exc}") from None
    linktype = int(reader.datalink())
    if linktype not in _LINK_TYPES:
        raise CaptureError(f"unsupported link type {linktype} (Ethernet, SLL, SLL2, raw IP, null)")
    return iter(reader), linktype


def _raw_ip(buf: bytes) -> dpkt.Packet:
    return dpkt.ip.IP(buf) if buf and buf[0] >> 4 == 4 else dpkt.ip6.IP6(buf)


# link type -> how to reach the IP layer (pcap-linktype(7) numbers)
_LINK_TYPES = {
    dpkt.pcap.DLT_EN10MB: dpkt.ethernet.Ethernet,
    dpkt.pcap.DLT_LINUX_SLL: dpkt.sll.SLL,
    276: dpkt.sll2.SLL2,  # LINUX_SLL2, what "tcpdump -i any" writes nowadays
    dpkt.pcap.DLT_NULL: dpkt.loopback.Loopback,
    dpkt.pcap.DLT_LOOP: dpkt.loopback.Loopback,
    dpkt.pcap.DLT_RAW: _raw_ip,
    101: _raw_ip,  # LINKTYPE_RAW
    228: dpkt.ip.IP,  # LINKTYPE_IPV4
    229: dpkt.ip6.IP6,  # LINKTYPE_IPV6
}


def _ip_layer(buf: bytes, linktype: int) -> dpkt.Packet | None:
    pkt = _LINK_TYPES[linktype](buf)
    while not isinstance(pkt, (dpkt.ip.IP, dpkt.ip6.IP6)):
        pkt = getattr(pkt, "data", None)
        if not isinstance(pkt, dpkt.Packet):
            return None
    return pkt


def read_capture(path: str | Path) -> Iterator[RawMessage]:
    """Yield the BGP messages of a pcap/pcapng file in the order they were completed."""
    directions: dict[tuple[Endpoint, Endpoint], _Direction] = {}
    with open(path, "rb") as fh:
        reader, linktype = _open_reader(fh)
        for frame, (ts, buf) in _frames(reader):
            try:
                ip = _ip_layer(buf, linktype)
            except (dpkt.UnpackError, IndexError, ValueError):
                continue
            if ip is None or not isinstance(ip.data, dpkt.tcp.TCP):
                continue
            tcp = ip.data
            if BGP_PORT not in (tcp.sport, tcp.dport):
                continue
            src = Endpoint(str(ipaddress.ip_address(ip.src)), tcp.sport)
            dst = Endpoint(str(ipaddress.ip_address(ip.dst)), tcp.dport)
            state = directions.setdefault((src, dst), _Direction())
            if tcp.flags & dpkt.tcp.TH_SYN:
                state.next_seq = (tcp.seq + 1) & 0xFFFFFFFF
                state.buffer.clear()
                state.pending.clear()
                continue
            payload = bytes(tcp.data)
            if not payload:
                continue
            if state.next_seq is None:  # capture started mid-stream
                state.next_seq = tcp.seq
            known = state.pending.get(tcp.seq)
            if known is None or len(known[0]) < len(payload):
                state.pending[tcp.seq] = (payload, ts, frame)
            yield from _drain(state, src, dst, ts, frame)


def _frames(reader: Iterator[tuple[float, bytes]]) -> Iterator[tuple[int, tuple[float, bytes]]]:
    """Number the frames from 1 as Wireshark does; a capture cut short ends quietly."""
    frame = 0
    while True:
        try:
            item = next(reader)
        except StopIteration:
            return
        except dpkt.UnpackError:  # NeedData: the last record is truncated
            return
        frame += 1
        yield frame, item


def _drain(
    state: _Direction, src: Endpoint, dst: Endpoint, ts: float, frame: int
) -> Iterator[RawMessage]:
    """Append what is now contiguous; yield the messages this frame completed."""
    seq = state.next_seq if state.next_seq is not None else 0
    pending = state.pending
    while True:
        while seq in pending:
            payload = pending.pop(seq)[0]
            state.buffer += payload
            seq = (seq + len(payload)) & 0xFFFFFFFF
        # retransmissions and overlaps: keep only the part beyond what we already have
        for old in [s for s in pending if _before(s, seq)]:
            data, t, f = pending.pop(old)
            overlap = (seq - old) & 0xFFFFFFFF
            if overlap < len(data) and len(data) - overlap > len(pending.get(seq, (b"",))[0]):
                pending[seq] = (data[overlap:], t, f)
        if seq not in pending:
            break
    state.next_seq = seq
    buf = state.buffer
    while len(buf) >= HEADER_SIZE:
        length = int.from_bytes(buf[16:18], "big")
        if buf[:16] != MARKER or length < HEADER_SIZE:
            # not synchronised: hand the rest over as one message so the decoder reports it
            length = len(buf)
        if len(buf) < length:
            break
        yield RawMessage(src, dst, ts, bytes(buf[:length]), frame)
        del buf[:length]


def _before(a: int, b: int) -> bool:
    return a != b and ((b - a) & 0xFFFFFFFF) < 0x80000000


_HEX = re.compile(r"[0-9a-fA-F]{2}")


def read_hex(text: str) -> Iterator[bytes]:
    """Messages from hex text: one message per line, or a stream split on the marker.

    Spaces, colons and ``0x`` prefixes are ignored; ``#`` starts a comment.
    """
    cleaned = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].replace("0x", "").replace(":", "").replace(" ", "")
        if line.strip():
            cleaned.append(line.strip())
    try:
        blob = bytes.fromhex("".join(cleaned))
    except ValueError as exc:
        raise CaptureError(f"not hexadecimal text: {exc}") from None
    i = 0
    while i < len(blob):
        if len(blob) - i >= HEADER_SIZE and blob[i : i + 16] == MARKER:
            length = int.from_bytes(blob[i + 16 : i + 18], "big")
            if length >= HEADER_SIZE:
                yield blob[i : i + length]
                i += length
                continue
        yield blob[i:]
        return
