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
"""

from __future__ import annotations

from collections.abc import Hashable
from socket import inet_ntoa

from speaker.annotate.explain import (
    Decoded,
    attr_label,
    attribute_node,
    attribute_value,
    context_node,
    header_line,
    prefixes_node,
)
from speaker.annotate.layout import RawAttribute
from speaker.annotate.tables import ATTRIBUTES
from speaker.annotate.tree import INDENT, LABEL_WIDTH_CAP, Node, node_lines, render, wrap
from speaker.wire.attributes import (
    As4PathAttr,
    AsPathAttr,
    ExtendedCommunitiesAttr,
    MpReachAttr,
    MpUnreachAttr,
    PathAttribute,
)
from speaker.wire.context import IPV4_UNICAST
from speaker.wire.enums import Afi
from speaker.wire.messages import Update
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
        """The body lines of a common UPDATE, or None when it must go the general way."""
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
            out.extend(got)
        # the NLRI
        ctx = item.context
        nlri = message.nlri
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
            out.extend(
                f"{_PREFIX}{t.ljust(pad)}  path-id {n.path_id}"
                for t, n in zip(texts, nlri, strict=True)
            )
        else:
            out.extend(_PREFIX + t for t in texts)
        return out


def _prefix_text(prefix: Prefix) -> str:
    """``10.0.0.0/26`` without building an ipaddress network (IPv4, the common case)."""
    if prefix.afi is Afi.IPV4:
        return f"{inet_ntoa(prefix.addr.to_bytes(4, 'big'))}/{prefix.length}"
    return str(prefix)


def _count(n: int) -> str:
    return f"{n} prefix" if n == 1 else f"{n} prefixes"


__all__ = ["SteadyUpdates"]
