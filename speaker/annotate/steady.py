"""Fast text for the common UPDATE once its meanings have all been shown (a route feed).

The annotated tree explains a meaning the first time only, so after the first few messages an
UPDATE's text is a pure function of its pieces: the context it was read with, the two length
fields, each attribute's octets, the prefixes.  A 100,000-route feed repeats the same pieces
(the same ORIGIN, NEXT_HOP, LOCAL_PREF octets; the same flag octets) with one value changing,
so each piece's lines are built once and reused; building the node, its flag words and its
meaning again for every message was two thirds of the decode time.

A piece is cached only when rendering it showed no meaning for the first time, so the output
is byte for byte what :func:`speaker.annotate.explain.body` and :func:`render` give; messages
outside the common shape (withdrawals, MP_REACH, AS4_PATH, RFC 7606 errors, a hint, End-of-RIB)
go the general way.

A capture's UPDATEs can skip even the codec: once an UPDATE was rendered from steady pieces,
its octets become a :class:`Template` (the octets from the type to the end of the attributes,
with a hole for each 4-octet MED or LOCAL_PREF value, and the text around the holes).  An
UPDATE of the same direction whose octets match it outside the holes, with NLRI the codec would
read cleanly, is text with the numbers filled in (:meth:`SteadyUpdates.render`): a 100,000-route
feed with a MED per route is then read, decoded and written without a message object.
"""

from __future__ import annotations

import struct
from collections.abc import Hashable
from dataclasses import dataclass, field
from socket import inet_ntoa

from speaker.annotate.explain import (
    Decoded,
    attr_label,
    attribute_node,
    attribute_value,
    context_node,
    direction,
    header_line,
    kind_parts,
    prefixes_node,
)
from speaker.annotate.layout import RawAttribute
from speaker.annotate.tables import ATTRIBUTES
from speaker.annotate.tree import INDENT, LABEL_WIDTH_CAP, Node, fold, node_lines, render, wrap
from speaker.wire.attributes import (
    As4PathAttr,
    AsPathAttr,
    ExtendedCommunitiesAttr,
    MpReachAttr,
    MpUnreachAttr,
    PathAttribute,
)
from speaker.wire.context import IPV4_UNICAST
from speaker.wire.enums import Afi, AttrType
from speaker.wire.messages import MARKER, Update
from speaker.wire.nlri import Prefix

CACHE_LIMIT = 65536
"""Cached pieces before the cache starts over (distinct MED lines would grow it forever)."""

VOLATILE = 1024
"""Distinct values of one attribute type cached before its values are no longer cached."""

_SKIP = (MpReachAttr, MpUnreachAttr, As4PathAttr)
_WITH_CHILDREN = (ExtendedCommunitiesAttr, AsPathAttr)  # communities, an AS loop
_TOP = INDENT * 2
_ATTR = INDENT * 3
_PREFIX = INDENT * 3
_TOP_WIDTH = len("total path attribute length")  # the longest top-level label of an UPDATE

TEMPLATE_LIMIT = 4096
"""Templates kept before they start over (a feed has a handful of attribute sets)."""

HOLES = frozenset({AttrType.MULTI_EXIT_DISC, AttrType.LOCAL_PREF})
"""Attributes whose 4-octet value is a number shown in decimal, with nothing else on its line
(no meaning that depends on it, no children): a template leaves a hole for them."""

_NARROW = len(f"{_PREFIX}255.255.255.255/32  path-id 4294967295")
"""Lines narrower than this may fold an NLRI line: prefix lines are then folded as
:func:`~speaker.annotate.tree.render` folds them."""

_MASKS32 = tuple(((1 << n) - 1) << (32 - n) for n in range(33))
_PAD = bytes(4)
_read_addpath = struct.Struct("!IBI").unpack_from  # path id, length, 4 octets (padded)
_read_plain = struct.Struct("!BI").unpack_from
_read_number = struct.Struct("!I").unpack_from
_address = struct.Struct("!I").pack


@dataclass(frozen=True, slots=True)
class Template:
    """The text of an UPDATE shape: octets that must match, holes, the text around them.

    ``fixed``: (start, end, octets) of the message that must be as here: the type, the two
    length fields and the attributes except the holes.  ``first``: the lines before the first
    hole (or down to the NLRI), each ending in a newline.  ``holes``: per MED/LOCAL_PREF
    value, its offset; its line's text before the number; the text after it, with the lines
    down to the next hole (or the NLRI); the longest number that keeps the line unwrapped;
    and for a longer one, the RFC reference to wrap and those lines alone.  ``nlri``: where
    the NLRI start.
    """

    fixed: tuple[tuple[int, int, bytes], ...]
    first: str
    holes: tuple[tuple[int, str, str, int, str, str], ...]
    nlri: int
    addpath: bool


@dataclass(slots=True)
class Lane:
    """One direction of a capture's stream, read with the context of its OPENs: what
    :meth:`SteadyUpdates.render` needs without a :class:`Decoded` (made by
    :meth:`SteadyUpdates.lane` from one that went the general way)."""

    ckey: int
    addpath: bool
    max_size: int
    source: str
    destination: str
    tails: dict[int, str] = field(default_factory=dict)  # message length -> header tail
    last: Template | None = None
    # the time last shown and its text with its frame's (the messages of one frame follow
    # each other; formatting the float is a sixth of the cost of a message)
    relative: float = float("nan")  # unequal to any time: the first one is formatted
    when: str = ""


def _shape(data: bytes) -> list[tuple[int, int]] | None:
    """The fixed spans of an UPDATE without withdrawn routes: from its type octet to the end
    of its attributes, cut around each 4-octet MED or LOCAL_PREF value; None when it has
    withdrawn routes or its attribute list does not end where its length says."""
    if data[19] or data[20]:
        return None
    end = 23 + ((data[21] << 8) | data[22])
    if end > len(data):
        return None
    spans = []
    start = 18
    i = 23
    while i < end:
        if i + 3 > end:
            return None
        if data[i] & 0x10:
            if i + 4 > end:
                return None
            head, size = 4, (data[i + 2] << 8) | data[i + 3]
        else:
            head, size = 3, data[i + 2]
        if size == 4 and data[i + 1] in HOLES:
            spans.append((start, i + head))
            start = i + head + 4
        i += head + size
    if i != end:
        return None
    spans.append((start, end))
    return spans


class SteadyUpdates:
    """Lines of common UPDATEs from cached pieces; shares the writer's set of shown meanings."""

    def __init__(self, meanings: set[str], line_width: int) -> None:
        self.meanings = meanings
        self.line_width = line_width
        self.pieces: dict[Hashable, list[str]] = {}
        self.labels: dict[int, str] = {}  # (flags << 8 | type) -> attribute label
        self.tails: dict[tuple[str | None, str | None, int, int], str] = {}  # header lines
        self.distinct: dict[int, int] = {}  # (flags << 8 | type) -> values cached so far
        # id -> (context kept alive, key, IPv4 path ids)
        self.contexts: dict[int, tuple[object, int, bool]] = {}
        self.templates: dict[tuple[int, tuple[bytes, ...]], Template] = {}
        self.nlri_heads: dict[tuple[int, bool], str] = {}  # (prefixes, path ids) -> its lines
        self.narrow = 0 < line_width < _NARROW

    def _once(self, nodes: list[Node]) -> bool:
        """Blank meanings already shown, record new ones; True if none was new (cacheable)."""
        before = len(self.meanings)
        stack = list(nodes)
        while stack:
            node = stack.pop(0)
            if node.meaning in self.meanings:
                node.meaning = ""
            elif node.meaning:
                self.meanings.add(node.meaning)
            stack[:0] = node.children
        return len(self.meanings) == before

    def _piece(self, key: Hashable, nodes: list[Node], width: int, indent: str) -> list[str]:
        """Render one piece (a node and its children) and cache it if it is steady."""
        steady = self._once(nodes)
        lines: list[str] = []
        depth = len(indent) // len(INDENT)
        for node in nodes:
            lines.extend(node_lines(node, width, indent, self.line_width))
            if node.children:
                lines.extend(render(node.children, depth + 1, self.line_width))
        if steady:
            if len(self.pieces) >= CACHE_LIMIT:
                self.pieces.clear()
            self.pieces[key] = lines
        return lines

    def _simple(
        self, attr: PathAttribute, label: str, width: int, item: Decoded
    ) -> list[str] | None:
        """The line of an attribute whose value changes from message to message (a MED per
        route) but whose meaning was shown already: label, value and RFC, no node built.

        Not cached (the value is new each time); None when the attribute needs the general
        way (children, or a meaning not shown yet)."""
        if isinstance(attr, _WITH_CHILDREN):
            return None
        info = ATTRIBUTES.get(attr.type_code)
        if info is None:
            return None
        value, extra = attribute_value(attr, item.context.negotiated)
        meaning = f"{info.text}; {extra}" if extra else info.text
        if meaning not in self.meanings:
            return None
        head = f"{_ATTR}{label.ljust(width)}  {value}"
        return wrap(head, f"[{info.rfc}]", _ATTR, self.line_width)

    def header(self, item: Decoded) -> str:
        """:func:`speaker.annotate.explain.header_line`, its direction-type-length tail cached."""
        if item.frame is None or item.relative is None or item.offset is not None:
            return header_line(item)
        key = (item.source, item.destination, item.data[18], len(item.data))
        tail = self.tails.get(key)
        if tail is None:
            full = header_line(item)
            head = f"#{item.index}  frame {item.frame}  {item.relative:.6f}  "
            if not full.startswith(head):  # pragma: no cover - header_line changed shape
                return full
            tail = self.tails[key] = full[len(head) :]
        return f"#{item.index}  frame {item.frame}  {item.relative:.6f}  {tail}"

    def _context_key(self, item: Decoded) -> tuple[int, bool]:
        """A small number for the context (kept alive here, so its id is not reused), and
        whether IPv4 unicast NLRI carry path ids under it."""
        ctx = item.context
        known = self.contexts.get(id(ctx))
        if known is None:
            addpath = IPV4_UNICAST in ctx.negotiated.addpath_receive
            known = self.contexts[id(ctx)] = (ctx, len(self.contexts), addpath)
        return known[1], known[2]

    def _top(self, item: Decoded, key: Hashable, ckey: int, alen: int, count: int) -> list[str]:
        """The context, the two length fields and the attribute list's title."""
        out: list[str] = []
        pieces = self.pieces
        parts: list[tuple[Hashable, Node, int]] = [
            (("ctx", ckey), context_node(item), _TOP_WIDTH),
            (
                ("w", 0),
                Node(
                    "withdrawn routes length",
                    "0",
                    "octets of IPv4 prefixes withdrawn",
                    "RFC 4271 4.3",
                ),
                _TOP_WIDTH,
            ),
            (
                ("a", alen),
                Node(
                    "total path attribute length",
                    str(alen),
                    "octets of path attributes",
                    "RFC 4271 4.3",
                ),
                _TOP_WIDTH,
            ),
            (
                ("h", count),
                Node(
                    f"path attributes ({count})",
                    meaning="shared by every prefix announced in this UPDATE",
                    rfc="RFC 4271 4.3",
                ),
                0,
            ),
        ]
        steady = True
        for part_key, node, width in parts:
            got = pieces.get(part_key)
            if got is None:
                got = self._piece(part_key, [node], width, _TOP)
                steady = steady and part_key in pieces
            out.extend(got)
        if steady:
            pieces[key] = out
        return list(out)

    def lines(self, item: Decoded) -> list[str] | None:
        """The body lines of a common UPDATE, or None when it must go the general way.

        When the UPDATE showed no meaning for the first time, its shape is kept as a
        :class:`Template` for :meth:`render`."""
        message = item.message
        if (
            not isinstance(message, Update)
            or item.error is not None
            or item.hint
            or message.errors
            or message.withdrawn
            or not message.nlri
            or not item.context.from_opens  # a default Context is made per message
        ):
            return None
        attributes = message.attributes
        for attr in attributes:
            if isinstance(attr, _SKIP):
                return None
        data = item.data
        if data[19] or data[20]:
            return None  # withdrawn routes present
        shown = len(self.meanings)
        ckey, addpath = self._context_key(item)
        pieces = self.pieces
        alen = (data[21] << 8) | data[22]
        # the attributes exactly as sent
        raws: list[tuple[int, int, bytes, int]] = []  # flags, type, octets, header size
        i, end = 23, 23 + alen
        labels = self.labels
        width = 0
        while i < end:
            flags, code = data[i], data[i + 1]
            if flags & 0x10:
                head, size = 4, (data[i + 2] << 8) | data[i + 3]
            else:
                head, size = 3, data[i + 2]
            raws.append((flags, code, data[i : i + head + size], head))
            label = labels.get((flags << 8) | code)
            if label is None:
                label = labels[(flags << 8) | code] = attr_label(code, flags)
            if len(label) > width:
                width = len(label)
            i += head + size
        if len(raws) != len(attributes):
            return None
        width = min(width, LABEL_WIDTH_CAP)
        key: Hashable = ("top", ckey, alen, len(raws))
        top = pieces.get(key)
        out = list(top) if top is not None else self._top(item, key, ckey, alen, len(raws))
        spans: list[tuple[int, int]] = []  # the lines of each attribute in out
        for flags, code, octets, head in raws:
            key = (octets, width, ckey)
            got = pieces.get(key)
            if got is None:
                match = next((a for a in attributes if a.type_code == code), None)
                if match is None:
                    return None
                kind = (flags << 8) | code
                got = self._simple(match, labels[kind], width, item)
                if got is None:
                    raw = RawAttribute(0, flags, code, len(octets) - head, head, octets[head:])
                    got = self._piece(key, [attribute_node(match, raw, item)], width, _ATTR)
                else:
                    # cache the values of an attribute type while they repeat; a type whose
                    # every value is new (a MED per route) stops being cached
                    seen = self.distinct.get(kind, 0)
                    if seen < VOLATILE:
                        self.distinct[kind] = seen + 1
                        if len(pieces) >= CACHE_LIMIT:
                            pieces.clear()
                        pieces[key] = got
            spans.append((len(out), len(out) + len(got)))
            out.extend(got)
        # the NLRI
        ctx = item.context
        nlri = message.nlri
        nlri_at = len(out)
        key = ("n", len(nlri), addpath, ctx.from_opens)
        got = pieces.get(key)
        if got is None:
            node = prefixes_node("NLRI", (), addpath, ctx.from_opens, "RFC 4271 4.3")
            node.label = node.label.replace("0 prefixes", _count(len(nlri)))
            got = self._piece(key, [node], 0, _TOP)
        out.extend(got)
        texts = [_prefix_text(n.prefix) for n in nlri]
        if addpath:
            pad = min(max(len(t) for t in texts), LABEL_WIDTH_CAP)
            prefixes = [
                f"{_PREFIX}{t.ljust(pad)}  path-id {n.path_id}"
                for t, n in zip(texts, nlri, strict=True)
            ]
        else:
            prefixes = [_PREFIX + t for t in texts]
        if self.narrow:  # as render() folds a node without meaning or RFC
            prefixes = [part for line in prefixes for part in fold(line, _PREFIX, self.line_width)]
        out.extend(prefixes)
        if len(self.meanings) == shown:
            self.nlri_heads[(len(nlri), addpath)] = "".join(line + "\n" for line in got)
            self._learn(item, out, raws, spans, nlri_at, width, ckey, addpath)
        return out

    # ---------------------------------------------------------------------- templates

    def _learn(
        self,
        item: Decoded,
        out: list[str],
        raws: list[tuple[int, int, bytes, int]],
        spans: list[tuple[int, int]],
        nlri_at: int,
        width: int,
        ckey: int,
        addpath: bool,
    ) -> None:
        """Keep the shape of an UPDATE whose every meaning had been shown before as a
        :class:`Template`, if the template renders it exactly as ``out``."""
        data = item.data
        cuts = _shape(data)
        if cuts is None:
            return
        holes: list[tuple[int, str, str, int]] = []  # offset, lead, tail, room
        texts: list[str] = []
        line = 0  # the next line of out not yet in texts
        offset = 23
        for (flags, code, octets, head), (first, last) in zip(raws, spans, strict=True):
            if code in HOLES and len(octets) == head + 4:
                info = ATTRIBUTES[code]
                lead = f"{_ATTR}{self.labels[(flags << 8) | code].ljust(width)}  "
                tail = f"  [{info.rfc}]"
                room = self.line_width - len(lead) - len(tail) if self.line_width else 10
                texts.append("".join(text + "\n" for text in out[line:first]))
                holes.append((offset + head, lead, tail, room))
                line = last
            offset += len(octets)
        texts.append("".join(text + "\n" for text in out[line:nlri_at]))
        if len(holes) != len(cuts) - 1:  # pragma: no cover - _shape and the walk disagree
            return
        template = Template(
            tuple((a, b, data[a:b]) for a, b in cuts),
            texts[0],
            tuple(
                (at, lead, f"{tail}\n{text}", room, tail[2:], text)
                for (at, lead, tail, room), text in zip(holes, texts[1:], strict=True)
            ),
            cuts[-1][1],
            addpath,
        )
        if self._body(template, data) != "\n".join(out) + "\n\n":
            return  # pragma: no cover - a line the template does not reproduce
        if len(self.templates) >= TEMPLATE_LIMIT:
            self.templates.clear()
        self.templates[(ckey, tuple(fixed for _, _, fixed in template.fixed))] = template

    def lane(self, item: Decoded) -> Lane | None:
        """A direction's :class:`Lane`, from an UPDATE of it that went the general way; None
        unless its context came from the OPENs and it came from a capture."""
        if not item.context.from_opens or item.frame is None or item.offset is not None:
            return None
        ckey, addpath = self._context_key(item)
        if item.source is None or item.destination is None:  # pragma: no cover - captures
            return None
        return Lane(
            ckey, addpath, item.context.negotiated.max_message_size, item.source, item.destination
        )

    def render(
        self, lane: Lane, data: bytes, index: int, frame: int, relative: float
    ) -> str | None:
        """The whole text of an UPDATE of ``lane`` (header, lines, blank line) from a template,
        straight from its octets; None unless it matches a template and its NLRI are IPv4
        prefixes the codec reads cleanly (then it goes the general way)."""
        n = len(data)
        if n > lane.max_size or ((data[16] << 8) | data[17]) != n or data[:16] != MARKER:
            return None
        template = lane.last
        if template is not None:
            for a, b, fixed in template.fixed:
                if data[a:b] != fixed:
                    template = None
                    break
        if template is None:
            cuts = _shape(data)
            if cuts is None:
                return None
            template = self.templates.get((lane.ckey, tuple(data[a:b] for a, b in cuts)))
            if template is None:
                return None
            lane.last = template
        tail = lane.tails.get(n)
        if tail is None:
            parts = [direction(lane.source, lane.destination), *kind_parts(2, n)]
            tail = lane.tails[n] = "  ".join(parts)
        body = self._body(template, data)
        if body is None:
            return None
        if relative != lane.relative:
            lane.relative = relative
            lane.when = f"{relative:.6f}"
        return f"#{index}  frame {frame}  {lane.when}  {tail}\n{body}"

    def _body(self, template: Template, data: bytes) -> str | None:
        """The lines of an UPDATE matching ``template`` (and the blank line after them), its
        numbers and prefixes filled in; None unless its NLRI are IPv4 prefixes the codec reads
        cleanly (a length of at most 32, entries that fill the field exactly)."""
        n = len(data)
        i = template.nlri
        addpath = template.addpath
        rest = n - i
        lines: str | None = None
        count = 1
        # one prefix, as in an UPDATE per route: read as the codec reads it
        if addpath and 5 <= rest <= 9:
            path_id, length, addr = _read_addpath(data + _PAD, i)
            if length <= 32 and 5 + ((length + 7) >> 3) == rest:
                text = f"{inet_ntoa(_address(addr & _MASKS32[length]))}/{length}"
                lines = f"{_PREFIX}{text}  path-id {path_id}"
        elif not addpath and 1 <= rest <= 5:
            length, addr = _read_plain(data + _PAD, i)
            if length <= 32 and 1 + ((length + 7) >> 3) == rest:
                lines = f"{_PREFIX}{inet_ntoa(_address(addr & _MASKS32[length]))}/{length}"
        if lines is None or self.narrow:
            entries = _entries(data, i, addpath)
            if entries is None:
                return None
            count = len(entries)
            if addpath:
                pad = max(len(t) for t, _ in entries)
                texts = [f"{_PREFIX}{t.ljust(pad)}  path-id {p}" for t, p in entries]
            else:
                texts = [_PREFIX + t for t, _ in entries]
            if self.narrow:
                texts = [part for text in texts for part in fold(text, _PREFIX, self.line_width)]
            lines = "\n".join(texts)
        head = self.nlri_heads.get((count, addpath))
        if head is None:
            return None
        body = template.first
        for offset, lead, after, room, rfc, text in template.holes:
            value = str(_read_number(data, offset)[0])
            if len(value) <= room:
                body = f"{body}{lead}{value}{after}"
            else:
                wrapped = "\n".join(wrap(lead + value, rfc, _ATTR, self.line_width))
                body = f"{body}{wrapped}\n{text}"
        return f"{body}{head}{lines}\n\n"


def _entries(data: bytes, i: int, addpath: bool) -> list[tuple[str, int]] | None:
    """(text, path id) of each IPv4 prefix from offset ``i`` to the end; None where the codec
    would fail (a length over 32, an entry running past the end, nothing at all)."""
    n = len(data)
    if i >= n:
        return None
    out: list[tuple[str, int]] = []
    from_bytes = int.from_bytes
    while i < n:
        path_id = 0
        if addpath:
            if i + 5 > n:
                return None
            path_id = from_bytes(data[i : i + 4], "big")
            i += 4
        length = data[i]
        size = (length + 7) >> 3
        if length > 32 or i + 1 + size > n:
            return None
        addr = (from_bytes(data[i + 1 : i + 1 + size], "big") << (32 - 8 * size)) & _MASKS32[length]
        out.append((f"{inet_ntoa(_address(addr))}/{length}", path_id))
        i += 1 + size
    return out


def _prefix_text(prefix: Prefix) -> str:
    """``10.0.0.0/26`` without building an ipaddress network (IPv4, the common case)."""
    if prefix.afi is Afi.IPV4:
        return f"{inet_ntoa(prefix.addr.to_bytes(4, 'big'))}/{prefix.length}"
    return str(prefix)


def _count(n: int) -> str:
    return f"{n} prefix" if n == 1 else f"{n} prefixes"


__all__ = ["HOLES", "Lane", "SteadyUpdates", "Template"]
