"""Read BGP messages out of packet captures and hex files, one TCP stream at a time.

pcap and pcapng are read with dpkt; each TCP direction is reassembled by sequence number, so a
message split over segments, or several messages in one segment, come out whole.  This is the
input side of ``speaker decode`` and of the tests that compare our reading with Wireshark's.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dpkt

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


def _open_reader(fh: object) -> Iterator[tuple[float, bytes]]:
    try:
        return iter(dpkt.pcap.Reader(fh))
    except ValueError:
        pass
    fh.seek(0)  # type: ignore[attr-defined]
    try:
        return iter(dpkt.pcapng.Reader(fh))
    except ValueError as exc:
        raise CaptureError(f"not a pcap or pcapng file: {exc}") from None


def _ip_layer(buf: bytes, linktype: int) -> dpkt.Packet | None:
    if linktype == dpkt.pcap.DLT_LINUX_SLL:
        pkt = dpkt.sll.SLL(buf)
    elif linktype in (dpkt.pcap.DLT_RAW, 101):
        return dpkt.ip.IP(buf) if buf and buf[0] >> 4 == 4 else dpkt.ip6.IP6(buf)
    else:
        pkt = dpkt.ethernet.Ethernet(buf)
    data = pkt.data
    return data if isinstance(data, (dpkt.ip.IP, dpkt.ip6.IP6)) else None


def read_capture(path: str | Path) -> Iterator[RawMessage]:
    """Yield the BGP messages of a pcap/pcapng file in the order they were completed."""
    directions: dict[tuple[Endpoint, Endpoint], _Direction] = {}
    with open(path, "rb") as fh:
        reader = _open_reader(fh)
        linktype = getattr(reader, "datalink", lambda: dpkt.pcap.DLT_EN10MB)()
        for frame, (ts, buf) in enumerate(reader, start=1):
            try:
                ip = _ip_layer(buf, linktype)
            except (dpkt.UnpackError, IndexError):
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
            state.pending[tcp.seq] = (payload, ts, frame)
            yield from _drain(state, src, dst)


def _drain(state: _Direction, src: Endpoint, dst: Endpoint) -> Iterator[RawMessage]:
    ts, frame = 0.0, 0
    seq = state.next_seq if state.next_seq is not None else 0
    while seq in state.pending:
        payload, ts, frame = state.pending.pop(seq)
        state.buffer += payload
        seq = (seq + len(payload)) & 0xFFFFFFFF
    # retransmissions: keep only the part beyond what we already have
    for old in [s for s in state.pending if _before(s, seq)]:
        data, t, f = state.pending.pop(old)
        overlap = (seq - old) & 0xFFFFFFFF
        if overlap < len(data):
            state.pending[seq] = (data[overlap:], t, f)
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
    blob = bytes.fromhex("".join(cleaned))
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
