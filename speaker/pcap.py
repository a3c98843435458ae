"""Read BGP messages out of packet captures and hex files, one TCP stream at a time.

pcap and pcapng records are read here (not by dpkt's readers) so that a damaged or cut file is
reported with the frame and byte offset where it breaks, instead of ending quietly; dpkt parses
the link, IP and TCP layers (Ethernet, Linux cooked v1/v2, raw IP and loopback).  Each TCP
direction is reassembled by sequence number, out-of-order and retransmitted segments included,
so a message split over segments, or several messages in one segment, come out whole, tagged
with the frame number that completed them (as Wireshark numbers frames).

A segment missing from the capture (a TCP sequence gap) does not stall the direction: once the
peer's ACK shows the missing octets were sent (or too much waits behind the hole), the hole is
declared lost, reading resynchronises on the next 16-octet marker and a :class:`Gap` says how
many octets were lost and skipped.  A message still incomplete when the capture ends is
reported as a :class:`Gap` too.  This is the input side of ``speaker decode`` and of the tests
that compare our reading with Wireshark's.
"""

from __future__ import annotations

import ipaddress
import re
import struct
from collections import deque
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dpkt
import dpkt.loopback
import dpkt.sll2

from speaker.wire.messages import HEADER_SIZE, MARKER

BGP_PORT = 179
MAX_RECORD = 262144
"""Largest record we accept, as Wireshark (WTAP_MAX_PACKET_SIZE_STANDARD): more is damage."""
MAX_PENDING = 64
"""Segments kept waiting behind a sequence hole before the hole is declared lost."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One end of a TCP connection."""

    address: str
    port: int

    def __str__(self) -> str:
        return f"{self.address}:{self.port}"


def _stream_of(a: Endpoint, b: Endpoint) -> tuple[Endpoint, Endpoint]:
    return (a, b) if (a.address, a.port) <= (b.address, b.port) else (b, a)


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
        return _stream_of(self.source, self.destination)


@dataclass(frozen=True, slots=True)
class Gap:
    """Octets of one direction that the capture does not hold, and what reading skipped.

    ``lost``: octets missing from the TCP sequence (None when unknown: the capture started
    mid-stream); ``skipped``: octets captured but thrown away to find the next marker (the
    pieces of messages the hole cut); ``at_end``: the capture ends inside a message.
    """

    source: Endpoint
    destination: Endpoint
    timestamp: float
    frame: int
    lost: int | None
    skipped: int
    at_end: bool = False
    seq: int | None = None  # where the hole starts; relative to the SYN (as Wireshark) if seen
    message_length: int | None = None  # at_end: the length field of the incomplete message

    @property
    def stream(self) -> tuple[Endpoint, Endpoint]:
        """The connection, independent of direction (lower endpoint first)."""
        return _stream_of(self.source, self.destination)


class CaptureError(Exception):
    """The file is not a capture we can read, or it is damaged; ``frame``/``offset`` say where."""

    def __init__(self, reason: str, frame: int | None = None, offset: int | None = None) -> None:
        where = []
        if frame is not None:
            where.append(f"frame {frame}")
        if offset is not None:
            where.append(f"offset {offset}")
        super().__init__(f"{', '.join(where)}: {reason}" if where else reason)
        self.reason = reason
        self.frame = frame
        self.offset = offset


@dataclass(frozen=True, slots=True)
class Record:
    """One captured frame: number, where it starts in the file, time, link type, octets."""

    frame: int
    offset: int
    timestamp: float
    linktype: int
    data: bytes


# ---------------------------------------------------------------------------- records

_PCAP_MAGICS = {
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
}
_PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"


def read_records(data: bytes) -> Iterator[Record]:
    """The frames of a pcap or pcapng file; raise CaptureError where the file breaks."""
    magic = data[:4]
    if magic in _PCAP_MAGICS:
        return _pcap_records(data)
    if magic == _PCAPNG_SHB:
        return _pcapng_records(data)
    raise CaptureError("not a pcap or pcapng file (no capture magic number)")


def _pcap_records(data: bytes) -> Iterator[Record]:
    order, unit = _PCAP_MAGICS[data[:4]]
    if len(data) < 24:
        raise CaptureError(f"not a pcap or pcapng file: header of {len(data)} octets, needs 24")
    linktype = struct.unpack_from(order + "I", data, 20)[0] & 0x0FFFFFFF
    _check_link(linktype)
    head = struct.Struct(order + "IIII")
    offset, frame, n = 24, 0, len(data)
    while offset < n:
        frame += 1
        if n - offset < 16:
            raise CaptureError(
                f"the file is cut: record header needs 16 octets, {n - offset} left",
                frame,
                offset,
            )
        sec, frac, incl, _orig = head.unpack_from(data, offset)
        if incl > MAX_RECORD:
            raise CaptureError(
                f"the file is damaged: the record claims {incl} octets (at most {MAX_RECORD})",
                frame,
                offset,
            )
        start = offset + 16
        if start + incl > n:
            raise CaptureError(
                f"the file is cut: the record claims {incl} octets, {n - start} left",
                frame,
                offset,
            )
        yield Record(frame, offset, sec + frac * unit, linktype, data[start : start + incl])
        offset = start + incl


def _pcapng_records(data: bytes) -> Iterator[Record]:
    order = "<"
    links: list[tuple[int, float]] = []  # per interface: link type, time unit
    offset, frame, n = 0, 0, len(data)
    while offset < n:
        if n - offset < 12:
            raise CaptureError(
                f"the file is cut: block header needs 12 octets, {n - offset} left",
                frame + 1,
                offset,
            )
        if data[offset : offset + 4] == _PCAPNG_SHB:
            bom = data[offset + 8 : offset + 12]
            order = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">"
            links = []
        btype, blen = struct.unpack_from(order + "II", data, offset)
        if blen < 12 or blen % 4 or blen > MAX_RECORD + 64:
            raise CaptureError(
                f"the file is damaged: block type {btype} claims {blen} octets", frame + 1, offset
            )
        if offset + blen > n:
            raise CaptureError(
                f"the file is cut: block type {btype} claims {blen} octets, {n - offset} left",
                frame + 1,
                offset,
            )
        body = data[offset + 8 : offset + blen - 4]
        if btype == 1:  # interface description
            linktype = struct.unpack_from(order + "H", body, 0)[0]
            _check_link(linktype)
            links.append((linktype, _tsresol(body[8:], order)))
        elif btype in (2, 3, 6):  # obsolete packet, simple packet, enhanced packet
            frame += 1
            if btype == 6:
                iface, high, low, incl = struct.unpack_from(order + "IIII", body, 0)
                start = 20
            elif btype == 2:
                iface, _drops, high, low, incl = struct.unpack_from(order + "HHIII", body, 0)
                start = 20
            else:
                iface, high, low = 0, 0, 0
                incl = min(struct.unpack_from(order + "I", body, 0)[0], len(body) - 4)
                start = 4
            if iface >= len(links):
                raise CaptureError(
                    f"the file is damaged: packet on undeclared interface {iface}", frame, offset
                )
            if start + incl > len(body):
                raise CaptureError(
                    f"the file is damaged: the packet claims {incl} octets, the block holds "
                    f"{len(body) - start}",
                    frame,
                    offset,
                )
            linktype, unit = links[iface]
            yield Record(
                frame, offset, ((high << 32) | low) * unit, linktype, body[start : start + incl]
            )
        offset += blen


def _tsresol(options: bytes, order: str) -> float:
    """The if_tsresol option of an interface description block (default microseconds)."""
    i = 0
    while i + 4 <= len(options):
        code, size = struct.unpack_from(order + "HH", options, i)
        if code == 0:
            break
        if code == 9 and size >= 1:
            v = options[i + 4]
            return 2.0 ** -(v & 0x7F) if v & 0x80 else 10.0**-v
        i += 4 + size + (-size % 4)
    return 1e-6


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


def _check_link(linktype: int) -> None:
    if linktype not in _LINK_TYPES:
        raise CaptureError(f"unsupported link type {linktype} (Ethernet, SLL, SLL2, raw IP, null)")


def _ip_layer(buf: bytes, linktype: int) -> dpkt.Packet | None:
    pkt = _LINK_TYPES[linktype](buf)
    while not isinstance(pkt, (dpkt.ip.IP, dpkt.ip6.IP6)):
        pkt = getattr(pkt, "data", None)
        if not isinstance(pkt, dpkt.Packet):
            return None
    return pkt


# ---------------------------------------------------------------------------- TCP


@dataclass(slots=True)
class _Direction:
    next_seq: int | None = None
    buffer: bytearray = field(default_factory=bytearray)
    # per contiguous piece of the buffer: [octets left in the buffer, frame, timestamp]
    pieces: deque[list[float]] = field(default_factory=deque)
    pending: dict[int, tuple[bytes, float, int]] = field(default_factory=dict)
    isn: int = 0  # sequence number of the first payload octet after the SYN (else 0)
    peer_ack: int | None = None  # highest ACK the other end sent: what it has received
    resync: bool = False  # after a gap: look for the next marker
    lost: int | None = 0  # octets lost in the current gap (None: unknown)
    skipped: int = 0  # octets thrown away while resynchronising
    gap_seq: int | None = None
    gap_frame: int = 0
    gap_time: float = 0.0


def _bgp_segments(
    data: bytes, wanted: frozenset[int]
) -> Iterator[tuple[Record, dpkt.Packet, dpkt.tcp.TCP]]:
    """Each TCP segment to or from one of the ``wanted`` ports, with its record and IP layer;
    unreadable frames are skipped (a damaged file raises CaptureError)."""
    for rec in read_records(data):
        try:
            ip = _ip_layer(rec.data, rec.linktype)
        except (dpkt.UnpackError, IndexError, ValueError, struct.error):
            continue
        if ip is None or not isinstance(ip.data, dpkt.tcp.TCP):
            continue
        tcp = ip.data
        if tcp.sport in wanted or tcp.dport in wanted:
            yield rec, ip, tcp


def read_capture(
    source: str | Path | bytes, ports: Collection[int] = (BGP_PORT,)
) -> Iterator[RawMessage]:
    """The BGP messages of a pcap/pcapng file (its path or its octets), in completion order.

    Gaps are skipped (see :func:`read_stream` to see them); a damaged or cut file raises
    CaptureError after the messages before the damage.
    """
    for item in read_stream(source, ports):
        if isinstance(item, RawMessage):
            yield item


def read_stream(
    source: str | Path | bytes, ports: Collection[int] = (BGP_PORT,)
) -> Iterator[RawMessage | Gap]:
    """Messages and gaps of a capture, in the order reassembly produces them.

    ``ports``: TCP ports that carry BGP (179 unless told).  Raises CaptureError, naming the
    frame and offset, where the file is damaged or cut.
    """
    for item in read_segments(source, ports):
        if isinstance(item, Gap):
            yield item
        else:
            (src, dst), data, ts, frame = item
            yield RawMessage(src, dst, ts, data, frame)


Direction = tuple[Endpoint, Endpoint]
"""A direction of a connection: (source, destination); one tuple per direction and capture."""

Reassembled = tuple[Direction, bytes, float, int]
"""One message of :func:`read_segments`: its direction, octets, time and completing frame."""


def read_segments(
    source: str | Path | bytes, ports: Collection[int] = (BGP_PORT,)
) -> Iterator[Reassembled | Gap]:
    """:func:`read_stream` without a :class:`RawMessage` per message: plain tuples, whose
    direction is the same tuple object for every message of that direction (a reader of a
    100,000-message feed keys its per-direction state by it: ``id()``, no hashing)."""
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    wanted = frozenset(ports)
    # keyed by raw addresses and ports (cheap to hash); endpoints are made once per direction
    directions: dict[tuple[bytes, int, bytes, int], _Direction] = {}
    ends: dict[tuple[bytes, int, bytes, int], Direction] = {}
    for rec, ip, tcp in _bgp_segments(data, wanted):
        key = (ip.src, tcp.sport, ip.dst, tcp.dport)
        pair = ends.get(key)
        back_key = (ip.dst, tcp.dport, ip.src, tcp.sport)
        if pair is None:
            src = Endpoint(str(ipaddress.ip_address(ip.src)), tcp.sport)
            dst = Endpoint(str(ipaddress.ip_address(ip.dst)), tcp.dport)
            pair = ends[key] = (src, dst)
            ends[back_key] = (dst, src)
        state = directions.get(key)
        if state is None:
            state = directions[key] = _Direction()
        ts, frame = rec.timestamp, rec.frame
        if tcp.flags & dpkt.tcp.TH_ACK:
            back = directions.get(back_key)
            if back is None:
                back = directions[back_key] = _Direction()
            if back.peer_ack is None or _before(back.peer_ack, tcp.ack):
                back.peer_ack = tcp.ack
                if back.pending:
                    yield from _drain(back, ends[back_key])
        if tcp.flags & dpkt.tcp.TH_SYN:
            state.next_seq = state.isn = (tcp.seq + 1) & 0xFFFFFFFF
            state.buffer.clear()
            state.pieces.clear()
            state.pending.clear()
            state.resync = False
            continue
        payload = bytes(tcp.data)
        if not payload:
            continue
        if state.next_seq is None:  # capture started mid-stream
            state.next_seq = tcp.seq
            if payload[:16] != MARKER[: len(payload)]:
                state.resync, state.lost, state.gap_seq = True, None, None
                state.gap_frame, state.gap_time = frame, ts
        known = state.pending.get(tcp.seq)
        if known is None or len(known[0]) < len(payload):
            state.pending[tcp.seq] = (payload, ts, frame)
        yield from _drain(state, pair, (frame, ts))
    for key, state in directions.items():
        yield from _finish(state, ends[key])


@dataclass(frozen=True, slots=True)
class TcpEvent:
    """A TCP segment that opens or closes a BGP connection: ``kind`` is SYN, SYN-ACK, FIN or
    RST (a segment with both FIN and RST counts as RST)."""

    source: Endpoint
    destination: Endpoint
    timestamp: float
    frame: int
    kind: str

    @property
    def stream(self) -> tuple[Endpoint, Endpoint]:
        """The connection, independent of direction (lower endpoint first)."""
        return _stream_of(self.source, self.destination)


def tcp_events(
    source: str | Path | bytes, ports: Collection[int] = (BGP_PORT,)
) -> Iterator[TcpEvent]:
    """The SYN, SYN-ACK, FIN and RST segments of the BGP connections of a capture.

    A separate pass, for the views that draw connections (``--html``) or need to know that
    one ended without a NOTIFICATION (``--rib``: graceful restart); the message reader does
    not pay for it.  Unreadable frames are skipped; a damaged file raises CaptureError.
    """
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    wanted = frozenset(ports)
    for rec, ip, tcp in _bgp_segments(data, wanted):
        flags = tcp.flags
        if flags & dpkt.tcp.TH_RST:
            kind = "RST"
        elif flags & dpkt.tcp.TH_FIN:
            kind = "FIN"
        elif flags & dpkt.tcp.TH_SYN:
            kind = "SYN-ACK" if flags & dpkt.tcp.TH_ACK else "SYN"
        else:
            continue
        yield TcpEvent(
            Endpoint(str(ipaddress.ip_address(ip.src)), tcp.sport),
            Endpoint(str(ipaddress.ip_address(ip.dst)), tcp.dport),
            rec.timestamp,
            rec.frame,
            kind,
        )


def _drain(
    state: _Direction, pair: Direction, now: tuple[int, float] = (0, 0.0)
) -> Iterator[Reassembled | Gap]:
    """Append what is now contiguous (declaring a hole lost when it must be); yield messages.

    ``now``: the frame of this direction being read, which completes what it makes contiguous
    (a segment that arrived early is shown at the frame that filled the hole before it).
    """
    seq = state.next_seq if state.next_seq is not None else 0
    pending = state.pending
    while True:
        while seq in pending:
            payload, t, f = pending.pop(seq)
            if now[0] > f:
                f, t = now
            _append(state, payload, t, f)
            seq = (seq + len(payload)) & 0xFFFFFFFF
        # retransmissions and overlaps: keep only the part beyond what we already have
        for old in [s for s in pending if _before(s, seq)]:
            data, t, f = pending.pop(old)
            overlap = (seq - old) & 0xFFFFFFFF
            if overlap < len(data) and len(data) - overlap > len(pending.get(seq, (b"",))[0]):
                pending[seq] = (data[overlap:], t, f)
        if seq in pending:
            continue
        if not pending or not _hole_is_lost(state, seq):
            break
        seq = _skip_hole(state, seq)
    state.next_seq = seq
    yield from _messages(state, pair)


def _hole_is_lost(state: _Direction, seq: int) -> bool:
    """The peer acknowledged octets we never saw, or too much waits behind the hole."""
    ack = state.peer_ack
    return (ack is not None and _before(seq, ack)) or len(state.pending) > MAX_PENDING


def _skip_hole(state: _Direction, seq: int) -> int:
    """Jump over a hole to the first segment after it; the cut message is dropped."""
    after = min(state.pending, key=lambda s: (s - seq) & 0xFFFFFFFF)
    _, t, f = state.pending[after]
    if not state.resync:
        state.resync, state.lost, state.skipped = True, 0, 0
        state.gap_seq = (seq - state.isn + 1) & 0xFFFFFFFF if state.isn else seq
        state.gap_frame, state.gap_time = f, t
    if state.lost is not None:
        state.lost += (after - seq) & 0xFFFFFFFF
    state.skipped += len(state.buffer)
    state.buffer.clear()
    state.pieces.clear()
    return after


def _append(state: _Direction, payload: bytes, ts: float, frame: int) -> None:
    state.buffer += payload
    state.pieces.append([len(payload), frame, ts])


def _consume(state: _Direction, size: int) -> tuple[int, float]:
    """Remove ``size`` octets from the buffer; the frame (and time) that completed them."""
    del state.buffer[:size]
    return _take(state.pieces, size)


def _take(pieces: deque[list[float]], size: int) -> tuple[int, float]:
    """Account for the next ``size`` octets of the buffer; the frame (and time) that completed
    them: the latest of the frames they came in, as Wireshark shows a reassembled message."""
    frame, ts = 0, 0.0
    while size > 0 and pieces:
        piece = pieces[0]
        if piece[1] > frame:
            frame, ts = int(piece[1]), piece[2]
        if piece[0] > size:
            piece[0] -= size
            break
        size -= int(piece[0])
        pieces.popleft()
    return frame, ts


_TYPES = frozenset(range(1, 6))


def _find_marker(buf: bytearray) -> int:
    """Where the next plausible message starts (marker, sane length, known type), or -1."""
    start = 0
    while True:
        i = buf.find(MARKER, start)
        if i < 0 or len(buf) - i < HEADER_SIZE:
            return i
        length = (buf[i + 16] << 8) | buf[i + 17]
        if length >= HEADER_SIZE and buf[i + 18] in _TYPES:
            return i
        start = i + 1


def _messages(state: _Direction, pair: Direction) -> Iterator[Reassembled | Gap]:
    """The whole messages at the start of the buffer (after a gap: from the next marker)."""
    buf = state.buffer
    if state.resync:
        i = _find_marker(buf)
        if i < 0:
            keep = min(len(buf), 15)  # a marker may start in the last octets
            state.skipped += len(buf) - keep
            _consume(state, len(buf) - keep)
            return
        state.skipped += i
        _consume(state, i)
        state.resync = False
        src, dst = pair
        yield Gap(
            src, dst, state.gap_time, state.gap_frame, state.lost, state.skipped, seq=state.gap_seq
        )
    n = len(buf)
    if n < HEADER_SIZE or (((buf[16] << 8) | buf[17]) > n and buf[:16] == MARKER):
        return  # the first message is not complete yet: nothing to copy
    # one copy of the buffer, messages sliced out of it, the buffer cut once at the end (a
    # segment of a route feed holds dozens of messages)
    blob = bytes(buf)
    pieces = state.pieces
    take = _take
    i = 0
    while n - i >= HEADER_SIZE:
        length = (blob[i + 16] << 8) | blob[i + 17]
        if length < HEADER_SIZE or blob[i : i + 16] != MARKER:
            # not synchronised: hand the rest over as one message so the decoder reports it
            length = n - i
        elif n - i < length:
            break
        piece = pieces[0]
        if piece[0] > length:  # the common case: the message lies in one piece
            piece[0] -= length
            frame, ts = int(piece[1]), piece[2]
        else:
            frame, ts = take(pieces, length)
        yield pair, blob[i : i + length], ts, frame
        i += length
    del buf[:i]


def _finish(state: _Direction, pair: Direction) -> Iterator[Reassembled | Gap]:
    """At the end of the capture: holes that never filled, and a message left incomplete."""
    seq = state.next_seq
    while state.pending and seq is not None:
        seq = _skip_hole(state, seq)
        state.next_seq = seq
        yield from _drain(state, pair)
        seq = state.next_seq
    src, dst = pair
    if state.resync:
        skipped = state.skipped + len(state.buffer)
        if skipped or state.lost:
            yield Gap(
                src, dst, state.gap_time, state.gap_frame, state.lost, skipped, True, state.gap_seq
            )
    elif state.buffer:
        buf = state.buffer
        frame, ts = int(state.pieces[-1][1]), state.pieces[-1][2]
        length = (buf[16] << 8) | buf[17] if len(buf) >= HEADER_SIZE else None
        yield Gap(src, dst, ts, frame, None, len(buf), True, None, length)


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
