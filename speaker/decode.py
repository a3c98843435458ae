"""``speaker decode FILE``: read BGP messages from a capture or a hex file and explain them.

Every field is printed with its value, its meaning and its RFC section, as an indented tree
(or, with ``--json``, one JSON object per message).  Unlike a dissector working message by
message, the tool follows each TCP stream's OPEN exchange and reads later messages with the
context the two OPENs negotiated, per direction: add-path path identifiers and 4-octet AS
numbers are read as the receiver reads them, not guessed.  Until both OPENs of a stream are
seen it uses the default context (4-octet AS, no path ids) and says so.

Hex input has no TCP stream and no direction: the file is one stream whose OPENs alternate
(the first OPEN is side A's, the second side B's, ...), and every other message is read as
sent by A to B.  See docs/decode.md.

Exit status (see docs/decode.md): 0 every message decoded; 1 some message was malformed (it
is reported with the NOTIFICATION it would cause, and decoding goes on); 2 the input cannot be
read, or the capture is damaged or cut (the frame and byte offset are named); 3 octets are
missing (a lost TCP segment, or a message cut by the end of the capture: each gap is a line of
the output).  When several apply: 2, then 3, then 1.
"""

from __future__ import annotations

import json
import re
import struct
import sys
from collections.abc import Collection, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TextIO

import dpkt

from speaker.annotate.brief import brief_line
from speaker.annotate.explain import (
    Decoded,
    about,
    body,
    header_line,
    negotiation_block,
)
from speaker.annotate.filters import Filter, FilterError, matches_all, parse_filter
from speaker.annotate.gaps import Lost, gap_line, gap_record
from speaker.annotate.layout import hexdump, spans
from speaker.annotate.session import Tracker
from speaker.annotate.steady import Lane, SteadyUpdates
from speaker.annotate.tree import LINE_WIDTH, Node, render
from speaker.pcap import (
    BGP_PORT,
    CaptureError,
    Endpoint,
    Gap,
    Reassembled,
    TcpEvent,
    read_hex,
    read_segments,
    tcp_events,
)
from speaker.wire import (
    IPV4_UNICAST,
    IPV6_UNICAST,
    BgpError,
    Keepalive,
    Message,
    Negotiated,
    Open,
    Update,
    decode_message,
)
from speaker.wire.enums import MessageType
from speaker.wire.messages import HEADER_SIZE, MARKER

# Imported where they are used, not here: the JSON records, the RIB replay (with the RIB) and
# the HTML page, a fifth of the start-up time of a text decode.

PCAP_MAGICS = frozenset(
    {
        b"\xa1\xb2\xc3\xd4",  # pcap, microseconds, big-endian
        b"\xd4\xc3\xb2\xa1",  # pcap, microseconds, little-endian
        b"\xa1\xb2\x3c\x4d",  # pcap, nanoseconds, big-endian
        b"\x4d\x3c\xb2\xa1",  # pcap, nanoseconds, little-endian
        b"\x0a\x0d\x0d\x0a",  # pcapng section header block
    }
)

EXIT_OK = 0
EXIT_MALFORMED = 1
EXIT_UNREADABLE = 2
EXIT_GAPS = 3
"""Some octets are missing from the capture (a lost segment, a message cut by its end)."""

MALFORMED_DUMP_LIMIT = 256
"""Octets of a malformed message dumped without ``--bytes``."""

BATCH = 256
"""Messages of text written at once (about 200 KB for a route feed)."""

HEX_STREAM = "hex"
SIDE_A, SIDE_B = "A", "B"

# Contexts tried when a message fails before its stream's OPENs were seen (labelled a guess).
_GUESSES: tuple[tuple[str, Negotiated], ...] = (
    (
        "add-path (receive) had been negotiated for IPv4 and IPv6 unicast",
        Negotiated(addpath_receive=frozenset({IPV4_UNICAST, IPV6_UNICAST})),
    ),
    ("the session used 2-octet AS numbers", Negotiated(asn4=False)),
    (
        "the session used 2-octet AS numbers and add-path",
        Negotiated(asn4=False, addpath_receive=frozenset({IPV4_UNICAST, IPV6_UNICAST})),
    ),
)


class InputError(Exception):
    """The file cannot be read as a capture or as hex; the message says why."""


@dataclass(slots=True)
class Wire:
    """One message's bytes and where they came from, before decoding.

    Not frozen (one per message: a frozen ``__init__`` costs a tenth of a route feed's
    decode); treat it as read-only.
    """

    data: bytes
    stream: Hashable
    source: str
    destination: str
    timestamp: float | None = None
    frame: int | None = None
    offset: int | None = None
    line: int | None = None
    source_endpoint: tuple[str, int] | None = None
    destination_endpoint: tuple[str, int] | None = None


# ------------------------------------------------------------------------------ input


def is_capture(head: bytes) -> bool:
    """True if the file starts with a pcap or pcapng magic number."""
    return head[:4] in PCAP_MAGICS


def _endpoint_text(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


class _Wires:
    """Makes the :class:`Wire` of each message of a capture: per direction, the stream key,
    the endpoint texts and tuples are made once (a capture has few directions, messages many),
    keyed by the id of the reader's direction tuple (kept alive in the value, so an id cannot
    be reused)."""

    def __init__(self) -> None:
        self.directions: dict[
            int, tuple[str, str, str, tuple[str, int], tuple[str, int], tuple[Endpoint, Endpoint]]
        ] = {}

    def __call__(self, item: Reassembled) -> Wire:
        pair, data, timestamp, frame = item
        known = self.directions.get(id(pair))
        if known is None:
            src, dst = pair
            # the stream as one string: hashed once, where a tuple of Endpoint dataclasses
            # is hashed in Python code at every lookup
            low, high = (
                (src, dst) if (src.address, src.port) <= (dst.address, dst.port) else (dst, src)
            )
            known = self.directions[id(pair)] = (
                f"{low} {high}",
                _endpoint_text(src.address, src.port),
                _endpoint_text(dst.address, dst.port),
                (src.address, src.port),
                (dst.address, dst.port),
                pair,
            )
        stream, source_text, destination_text, source_endpoint, destination_endpoint, _ = known
        return Wire(
            data,
            stream,
            source_text,
            destination_text,
            timestamp=timestamp,
            frame=frame,
            source_endpoint=source_endpoint,
            destination_endpoint=destination_endpoint,
        )


def capture_messages(
    source: str | bytes, ports: Collection[int] = (BGP_PORT,)
) -> Iterator[Wire | Gap]:
    """The BGP messages (and gaps) of a pcap/pcapng file, reassembled per TCP direction."""
    wire = _Wires()
    for item in read_segments(source, ports):
        yield item if isinstance(item, Gap) else wire(item)


_NOT_HEX = re.compile(r"[^0-9a-fA-F]")


def _clean(line: str) -> str:
    """A hex line without comments, spaces, colons and ``0x`` (as speaker.pcap.read_hex)."""
    line = line.split("#", 1)[0]
    return line.replace("0x", "").replace(":", "").replace(" ", "").strip()


def _check_hex(text: str) -> list[tuple[int, str]]:
    """Non-empty cleaned lines with their numbers; raise InputError at the first bad one."""
    lines = []
    for number, line in enumerate(text.splitlines(), start=1):
        cleaned = _clean(line)
        if not cleaned:
            continue
        bad = _NOT_HEX.search(cleaned)
        if bad is not None:
            raise InputError(
                f"line {number}: {bad.group()!r} is not a hex digit ({line.strip()[:40]!r})"
            )
        lines.append((number, cleaned))
    total = sum(len(c) for _, c in lines)
    if total % 2:
        raise InputError(f"odd number of hex digits ({total}): a message is cut short")
    return lines


def hex_messages(text: str) -> Iterator[Wire]:
    """Messages of a hex file: one per line when every line starts with a marker, otherwise
    one continuous stream split on the marker and length (speaker.pcap.read_hex).

    Sides: the first OPEN is A's, the second B's, alternating; other messages go A -> B.
    """
    lines = _check_hex(text)
    marker = MARKER.hex()
    blobs: Iterable[tuple[bytes, int | None, int | None]]
    if len(lines) > 1 and all(c.lower().startswith(marker) for _, c in lines):
        odd = next((number for number, c in lines if len(c) % 2), None)
        if odd is not None:
            raise InputError(f"line {odd}: odd number of hex digits: the message is cut short")
        blobs = [(bytes.fromhex(c), None, number) for number, c in lines]
    else:
        blobs = _with_offsets(read_hex(text))
    return _hex_wires(blobs)


def _hex_wires(blobs: Iterable[tuple[bytes, int | None, int | None]]) -> Iterator[Wire]:
    opens = 0
    for data, offset, line in blobs:
        source, destination = SIDE_A, SIDE_B
        if len(data) > HEADER_SIZE - 1 and data[18] == MessageType.OPEN and data[:16] == MARKER:
            if opens % 2:
                source, destination = SIDE_B, SIDE_A
            opens += 1
        yield Wire(data, HEX_STREAM, source, destination, offset=offset, line=line)


def _with_offsets(blobs: Iterable[bytes]) -> Iterator[tuple[bytes, int | None, int | None]]:
    offset = 0
    for blob in blobs:
        yield blob, offset, None
        offset += len(blob)


# ------------------------------------------------------------------------------ decoding


def _clean_decode(data: bytes, ctx: Negotiated) -> Message | None:
    try:
        message = decode_message(data, ctx)
    except BgpError:
        return None
    if isinstance(message, Update) and message.errors:
        return None
    return message


def _sample(message: Update) -> str:
    entries = [str(n) for n in (*message.withdrawn, *message.nlri)][:3]
    return ", ".join(entries) or "its attributes"


def guess(data: bytes, decoded: Message | None) -> str | None:
    """Without negotiated context: another context under which the message decodes.

    For a message that failed, the first context that reads it cleanly; for an UPDATE that
    decoded, a context that reads it *differently* (the bytes are ambiguous).
    """
    for label, ctx in _GUESSES:
        other = _clean_decode(data, ctx)
        if other is None:
            continue
        if decoded is None:
            return f"it decodes cleanly if {label}"
        if isinstance(decoded, Update) and isinstance(other, Update) and other != decoded:
            return f"ambiguous: it also decodes if {label}, then as {_sample(other)}"
    return None


class Decoder:
    """What decoding keeps from one message to the next: the OPENs of each stream (so each
    message is read with its stream's negotiated context), the message count and the time of
    the first message or gap (times are shown relative to it)."""

    def __init__(self) -> None:
        self.tracker = Tracker()
        self.first: float | None = None
        self.index = 0

    def lost(self, gap: Gap) -> Lost:
        """A gap of the capture, where it happened."""
        if self.first is None:
            self.first = gap.timestamp
        return Lost(
            gap,
            _endpoint_text(gap.source.address, gap.source.port),
            _endpoint_text(gap.destination.address, gap.destination.port),
            gap.timestamp - self.first,
        )

    def decoded(self, wire: Wire) -> Decoded:
        """Decode one message with its stream's context, following the OPENs."""
        tracker = self.tracker
        self.index += 1
        data = wire.data
        context = tracker.context(wire.stream, wire.source, wire.destination)
        message: Message | None = None
        error: BgpError | None = None
        try:
            message = decode_message(data, context.negotiated)
        except BgpError as exc:
            error = exc
        negotiation = None
        first_keepalive = False
        hint = None
        if type(message) is not Update:  # the common case needs none of this
            if isinstance(message, Open):
                negotiation = tracker.opened(wire.stream, wire.source, wire.destination, message)
            elif isinstance(message, Keepalive):
                first_keepalive = tracker.keepalive(wire.stream, wire.source)
        if not context.from_opens and not isinstance(message, (Open, Keepalive)):
            soft = isinstance(message, Update) and bool(message.errors)
            hint = guess(data, None if soft else message)
        timestamp = wire.timestamp
        first = self.first
        if timestamp is not None and first is None:
            first = self.first = timestamp
        # positional: this runs once per message (see Decoded for the field order)
        return Decoded(
            self.index,
            data,
            wire.source,
            wire.destination,
            context,
            message,
            error,
            negotiation,
            first_keepalive,
            hint,
            timestamp,
            None if timestamp is None or first is None else timestamp - first,
            wire.frame,
            wire.offset,
            wire.line,
            wire.source_endpoint,
            wire.destination_endpoint,
        )


def decode_all(wires: Iterable[Wire | Gap]) -> Iterator[Decoded | Lost]:
    """Decode each message with its stream's negotiated context, following the OPENs; gaps
    pass through (as :class:`Lost`) where they happened."""
    decoder = Decoder()
    for wire in wires:
        yield decoder.lost(wire) if isinstance(wire, Gap) else decoder.decoded(wire)


class Shortcut:
    """The text output of a capture with its steady UPDATEs written straight from their
    octets by :meth:`SteadyUpdates.render` (no codec, no :class:`Decoded`); iterating
    yields the rest, decoded, for the caller to write and count, in capture order.

    Once an UPDATE of a direction went the general way (and was written, which teaches the
    writer its template), the direction has a :class:`Lane`; any other message type (an OPEN
    changes the context) drops every lane.  ``written``: the messages written here.
    """

    def __init__(self, raw: bytes, ports: Collection[int], writer: TextWriter) -> None:
        self.raw = raw
        self.ports = ports
        self.writer = writer
        self.written = 0

    def __iter__(self) -> Iterator[Decoded | Lost]:
        decoder = Decoder()
        wire = _Wires()
        writer = self.writer
        steady = writer.steady
        render = steady.render
        pending = writer.pending
        lanes: dict[int, Lane] = {}  # id of the reader's direction tuple -> lane
        first: float | None = None
        index = written = 0  # decoder.index and self.written, kept in locals here
        try:
            for item in read_segments(self.raw, self.ports):
                if isinstance(item, Gap):
                    self.written = written
                    yield decoder.lost(item)
                    first = decoder.first
                    continue
                direction, data, timestamp, frame = item
                if data[18] == 2 and first is not None:  # the reader's messages have a header
                    lane = lanes.get(id(direction))
                    if lane is not None:
                        text = render(lane, data, index + 1, frame, timestamp - first)
                        if text is not None:
                            index += 1
                            written += 1
                            pending.append(text)
                            if len(pending) >= BATCH:
                                writer.flush()
                            continue
                decoder.index = index
                decoded = decoder.decoded(wire(item))
                index = decoder.index
                self.written = written
                yield decoded
                first = decoder.first
                if data[18] != 2:
                    lanes.clear()
                elif id(direction) not in lanes:
                    made = steady.lane(decoded)
                    if made is not None:
                        lanes[id(direction)] = made
        finally:  # also when the capture turns out damaged: the caller counts them
            self.written = written


# ------------------------------------------------------------------------------ output


class TextWriter:
    """The annotated tree, one block per message.

    A meaning is printed the first time it applies and left out afterwards (the RFC section
    stays), so a long capture reads as a lesson first and a trace after.
    """

    def __init__(self, out: TextIO, show_bytes: bool, width: int = LINE_WIDTH) -> None:
        self.out = out
        self.show_bytes = show_bytes
        self.width = width
        self.explained: set[int] = set()
        self.meanings: set[str] = set()
        self.steady = SteadyUpdates(self.meanings, width)
        self.pending: list[str] = []  # texts not yet written: one write per BATCH of them

    def emit(self, text: str) -> None:
        """Write ``text`` (a message's block), batched: one write per :data:`BATCH` texts
        (a write per message was a tenth of the decode time of a route feed)."""
        pending = self.pending
        pending.append(text)
        if len(pending) >= BATCH:
            self.flush()

    def flush(self) -> None:
        """Write what :meth:`emit` holds back (at the end, and before anything on stderr)."""
        if self.pending:
            text = "".join(self.pending)
            self.pending.clear()
            self.out.write(text)

    def _once(self, nodes: list[Node]) -> None:
        for node in nodes:
            if node.meaning in self.meanings:
                node.meaning = ""
            elif node.meaning:
                self.meanings.add(node.meaning)
            self._once(node.children)

    def write(self, item: Decoded | Lost) -> None:
        if isinstance(item, Lost):
            self.emit(gap_line(item, self.width) + "\n\n")
            return
        code = item.type_code
        if code in self.explained and not self.show_bytes:
            fast = self.steady.lines(item)
            if fast is not None:
                self.emit(self.steady.header(item) + "\n" + "\n".join(fast) + "\n\n")
                return
        nodes: list[Node] = []
        if code is not None and code not in self.explained and item.error is None:
            self.explained.add(code)
            reminder = about(code)
            if reminder is not None:
                nodes.append(reminder)
        nodes.extend(body(item))
        self._once(nodes)
        lines = [header_line(item), *render(nodes, 2, self.width)]
        if item.negotiation is not None:
            block = [negotiation_block(item.negotiation)]
            self._once(block)
            lines.extend(render(block, 1, self.width))
        if self.show_bytes or item.malformed:
            limit = None if self.show_bytes else MALFORMED_DUMP_LIMIT
            lines.append("    bytes (offset, octets, field):")
            dump = hexdump(item.data, spans(item.data, item.context.negotiated), limit)
            lines.extend("      " + line for line in dump)
        self.emit("\n".join(lines) + "\n\n")


class BriefWriter:
    """One line per message (``--brief``)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def write(self, item: Decoded | Lost) -> None:
        self.out.write((gap_line(item) if isinstance(item, Lost) else brief_line(item)) + "\n")


class JsonWriter:
    """One JSON object per message (or gap), one per line."""

    def __init__(self, out: TextIO) -> None:
        from speaker.annotate.records import endpoint_json, record

        self.out = out
        self.endpoint_json = endpoint_json
        self.record = record

    def write(self, item: Decoded | Lost) -> None:
        endpoint_json = self.endpoint_json
        if isinstance(item, Lost):
            gap = item.gap
            rec = gap_record(
                item,
                endpoint_json(None, (gap.source.address, gap.source.port)),
                endpoint_json(None, (gap.destination.address, gap.destination.port)),
            )
        else:
            rec = self.record(item)
        self.out.write(json.dumps(rec, ensure_ascii=False) + "\n")


Writer = TextWriter | BriefWriter | JsonWriter


class HtmlWriter:
    """``--html OUT``: keeps the first messages (the page draws at most
    :data:`~speaker.annotate.html.DEFAULT_LIMIT` of them, and
    :data:`~speaker.annotate.html.OCTET_BUDGET` octets), counts the rest, writes the page.
    """

    def __init__(self, out: TextIO, target: str, title: str) -> None:
        from speaker.annotate.html import DEFAULT_LIMIT, OCTET_BUDGET

        self.limit = DEFAULT_LIMIT
        self.budget = OCTET_BUDGET
        self.out = out
        self.target = target
        self.title = title
        self.items: list[Decoded | Lost] = []
        self.messages = 0
        self.kept = 0
        self.octets = 0
        self.full = False
        self.events: Iterable[TcpEvent] = ()

    def write(self, item: Decoded | Lost) -> None:
        if isinstance(item, Decoded):
            self.messages += 1
            self.octets += len(item.data)
            self.full = self.full or self.kept >= self.limit or (
                self.kept > 0 and self.octets > self.budget
            )
            if not self.full:
                self.kept += 1
        if not self.full:
            self.items.append(item)

    def finish(self) -> None:
        from speaker.annotate.html import html_page
        from speaker.annotate.replay import merge_events

        title = f"speaker decode: {Path(self.title).name}"
        text = html_page(merge_events(self.items, self.events), title, self.kept, self.messages)
        Path(self.target).write_text(text, encoding="utf-8")
        self.out.write(
            f"wrote {self.target}: {self.kept} of {self.messages} messages drawn, "
            f"{len(text.encode())} octets\n"
        )


class RibWriter:
    """``--rib``: collects the messages, then replays them (with the capture's TCP opens and
    closes) into one RIB per receiver and prints each table."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.items: list[Decoded | Lost] = []
        self.events: Iterable[TcpEvent] = ()

    def write(self, item: Decoded | Lost) -> None:
        self.items.append(item)

    def finish(self) -> None:
        from speaker.annotate.replay import RibReplay, merge_events, table_lines

        replay = RibReplay().replay(merge_events(self.items, self.events))
        receivers = replay.receivers()
        if not receivers:
            self.out.write("no routing table: no BGP session with both OPENs in the capture\n")
        for receiver in receivers:
            self.out.write("\n".join(table_lines(receiver)) + "\n\n")


def _fail(path: str, why: str) -> int:
    print(f"speaker decode: {path}: {why}", file=sys.stderr)
    return EXIT_UNREADABLE


def _read(path: str, stdin: BinaryIO | None) -> bytes:
    """The input's octets: a file, or standard input for ``-``."""
    if path == "-":
        stream = stdin if stdin is not None else sys.stdin.buffer
        return stream.read()
    return Path(path).read_bytes()


def _open_input(
    raw: bytes, force_hex: bool, ports: Collection[int] = (BGP_PORT,)
) -> Iterator[Wire | Gap]:
    """Pick the reader by content; raise InputError when the octets are unusable."""
    if not raw:
        raise InputError("the file is empty")
    if not force_hex and is_capture(raw):
        return capture_messages(raw, ports)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        binary = f"binary octet 0x{raw[exc.start]:02x} at offset {exc.start}"
        if force_hex:
            raise InputError(f"not hex text ({binary})") from None
        raise InputError(
            f"not a pcap/pcapng capture (starts with {raw[:4].hex()}, no capture magic "
            f"number) and not hex text ({binary})"
        ) from None
    try:
        return hex_messages(text)
    except InputError as exc:
        if force_hex:
            raise
        raise InputError(
            f"not a pcap/pcapng capture (no capture magic number) and not hex text: {exc}"
        ) from None


def decode_main(
    path: str,
    *,
    as_json: bool,
    force_hex: bool,
    out: TextIO | None = None,
    show_bytes: bool = False,
    brief: bool = False,
    filters: Sequence[Filter | str] = (),
    ports: Collection[int] = (BGP_PORT,),
    hex_text: str | None = None,
    stdin: BinaryIO | None = None,
    width: int = LINE_WIDTH,
    rib: bool = False,
    html: str | None = None,
) -> int:
    """Decode every message of ``path`` to ``out``; return the exit status (0, 1, 2 or 3).

    ``path``: a file, or ``-`` for standard input (a capture or hex); ``hex_text``: decode
    these hex octets instead of a file (``--bytes-hex``; ``path`` then only names it in
    errors).  ``as_json``: one JSON object per line; ``brief``: one line per message;
    ``force_hex``: read the file as hex text even if it looks like a capture; ``show_bytes``:
    add a hex dump with field boundaries; ``filters``: show only messages matching all of
    them; ``ports``: TCP ports that carry BGP in a capture; ``width``: wrap explanations
    of the text output at this many characters (0: never); ``rib``: instead of the
    messages, print each receiver's routing table after replaying the capture into our RIB
    (:mod:`speaker.annotate.replay`); ``html``: instead of the messages, write a
    self-contained HTML page (a ladder diagram, :mod:`speaker.annotate.html`) to this path.
    """
    out = out if out is not None else sys.stdout
    try:
        wanted = [f if isinstance(f, Filter) else parse_filter(f) for f in filters]
    except FilterError as exc:
        return _fail("--filter", str(exc))
    try:
        raw = hex_text.encode() if hex_text is not None else _read(path, stdin)
        wires = _open_input(raw, force_hex or hex_text is not None, ports)
    except OSError as exc:
        return _fail(path, f"cannot read: {exc.strerror or exc}")
    except InputError as exc:
        return _fail(path, str(exc))
    writer: Writer | RibWriter | HtmlWriter
    if html is not None:
        writer = HtmlWriter(out, html, path)
        if is_capture(raw) and not force_hex:
            writer.events = tcp_events(raw, ports)
    elif rib:
        writer = RibWriter(out)
        if is_capture(raw) and not force_hex:
            writer.events = tcp_events(raw, ports)
    elif as_json:
        writer = JsonWriter(out)
    elif brief:
        writer = BriefWriter(out)
    else:
        writer = TextWriter(out, show_bytes, width)
    items: Iterable[Decoded | Lost] = decode_all(wires)
    shortcut = None
    if (
        isinstance(writer, TextWriter)
        and not show_bytes
        and not wanted
        and not force_hex
        and hex_text is None
        and is_capture(raw)
    ):
        items = shortcut = Shortcut(raw, ports, writer)
    count = shown = malformed = gaps = 0
    try:
        try:
            for item in items:
                if isinstance(item, Lost):
                    gaps += 1
                else:
                    count += 1
                    malformed += item.malformed
                if not wanted or matches_all(wanted, item):
                    shown += 1
                    writer.write(item)
        finally:  # what was decoded before an error is written before it is reported
            if shortcut is not None:
                count += shortcut.written
                shown += shortcut.written
            if isinstance(writer, TextWriter):
                writer.flush()
    except BrokenPipeError:  # pragma: no cover - e.g. piped into head
        return EXIT_OK

    except CaptureError as exc:
        out.flush()
        if count == 0 and exc.frame is None:
            return _fail(path, f"not a readable capture: {exc}")
        decoded = f"{count} message{'' if count == 1 else 's'} decoded before it"
        return _fail(path, f"{exc}; decoding stops there ({decoded})")
    except (dpkt.Error, struct.error, ValueError, OSError) as exc:
        out.flush()
        if count == 0:
            return _fail(path, f"not a readable capture: {exc}")
        return _fail(path, f"the file is damaged after message {count}: {exc}")
    if isinstance(writer, RibWriter):
        writer.finish()
    elif isinstance(writer, HtmlWriter):
        try:
            writer.finish()
        except OSError as exc:
            return _fail(writer.target, f"cannot write: {exc.strerror or exc}")
    if count == 0 and not gaps:
        where = "no hex messages" if force_hex else "no BGP messages found"
        print(f"speaker decode: {path}: {where}", file=sys.stderr)
    problems = []
    if gaps:
        problems.append(f"{gaps} gap(s): octets missing from the capture")
    if malformed:
        problems.append(f"{malformed} of {count} messages malformed")
    if wanted:
        problems.append(f"{shown} of {count + gaps} shown by --filter")
    if problems:
        print(f"speaker decode: {path}: {'; '.join(problems)}", file=sys.stderr)
    if gaps:
        return EXIT_GAPS
    return EXIT_MALFORMED if malformed else EXIT_OK


__all__ = [
    "EXIT_GAPS",
    "EXIT_MALFORMED",
    "EXIT_OK",
    "EXIT_UNREADABLE",
    "Decoder",
    "Shortcut",
    "Wire",
    "decode_all",
    "decode_main",
    "hex_messages",
    "is_capture",
]
