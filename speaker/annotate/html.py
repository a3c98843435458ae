"""``speaker decode --html OUT``: one self-contained page that shows a capture as a ladder.

One lane per speaker, one arrow per message (and the TCP opens and closes, gaps, long pauses),
each side's FSM state along its lane (:mod:`speaker.annotate.ladder`).  A click on a message
opens its annotated fields (the tree the text output prints, with every meaning) and its
octets, field by field; hovering a field lights up its octets, and flag octets are drawn bit
by bit (:mod:`speaker.annotate.bits`).  Everything is inline (CSS, script, data): the page
works from a file, offline.  Large captures are cut after :data:`DEFAULT_LIMIT` messages or
:data:`OCTET_BUDGET` octets of messages, with a note, so the page stays small.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from importlib import resources

from speaker.annotate.bits import bit_lines
from speaker.annotate.brief import brief_line
from speaker.annotate.explain import Decoded, about, body, header_line, negotiation_block
from speaker.annotate.gaps import Lost
from speaker.annotate.ladder import Ladder, Step, build_ladder
from speaker.annotate.layout import spans
from speaker.annotate.tree import Node, render
from speaker.pcap import TcpEvent

DEFAULT_LIMIT = 300
"""Messages drawn at most; the rest are counted in a note."""

OCTET_BUDGET = 65536
"""Message octets drawn at most (a packed UPDATE of 4096 octets expands to some 40 KB of page,
its prefixes one field each): the ladder stops at whichever limit comes first."""

PAUSE = 2.0
"""Seconds of silence between two steps that the ladder marks as a pause."""


def _tree(item: Decoded) -> list[str]:
    """Every annotated line of the message, meanings included (a page is read out of order)."""
    nodes: list[Node] = []
    code = item.type_code
    if code is not None and item.error is None:
        reminder = about(code)
        if reminder is not None:
            nodes.append(reminder)
    nodes.extend(body(item))
    lines = render(nodes, 0, 0)
    if item.negotiation is not None:
        lines.extend(render([negotiation_block(item.negotiation)], 0, 0))
    return lines


def _fields(item: Decoded) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for span in spans(item.data, item.context.negotiated):
        value = span.bit_value(item.data)
        out.append(
            {
                "s": span.start,
                "e": span.end,
                "l": span.label,
                "d": span.depth,
                "b": list(bit_lines(span.bits, value)) if value is not None else [],
            }
        )
    return out


def _gist(item: Decoded) -> str:
    line = brief_line(item)
    if item.destination is not None:
        line = line.split(f"{item.destination}  ", 1)[-1]
    return line


def _step_json(step: Step) -> dict[str, object]:
    data: dict[str, object] = {
        "k": step.kind,
        "src": step.source,
        "dst": step.destination,
        "t": step.time,
        "f": step.frame,
        "st": [list(s) for s in step.states],
    }
    item = step.item
    if item is not None:
        data.update(
            {
                "i": item.index,
                "type": _type_name(item),
                "g": _gist(item),
                "h": header_line(item),
                "tree": _tree(item),
                "hex": item.data.hex(),
                "fields": _fields(item),
                "bad": item.malformed,
            }
        )
    else:
        data["g"] = step.label
    return data


def _type_name(item: Decoded) -> str:
    message = item.message
    if item.error is not None or message is None:
        return "MALFORMED"
    return type(message).__name__.upper().replace("ROUTEREFRESH", "ROUTE-REFRESH")


def page(ladder: Ladder, title: str) -> str:
    """The whole HTML document."""
    note = ""
    if ladder.shown_messages < ladder.messages:
        note = (
            f"The capture holds {ladder.messages} messages; the first "
            f"{ladder.shown_messages} are drawn (the page would be too large otherwise). "
            f"Use the text output for the rest: speaker decode FILE."
        )
    data = {
        "lanes": ladder.lanes,
        "steps": [_step_json(s) for s in ladder.steps],
        "pause": PAUSE,
        "note": note,
    }
    # "</" may not appear inside a script element
    payload = json.dumps(data, ensure_ascii=False).replace("</", "<\\/")
    return (
        _TEMPLATE.replace("@TITLE@", html.escape(title))
        .replace("@CSS@", _CSS)
        .replace("@JS@", _JS)
        .replace("@DATA@", payload)
    )


def html_page(
    items: Iterable[Decoded | Lost | TcpEvent],
    title: str,
    limit: int = DEFAULT_LIMIT,
    messages: int | None = None,
) -> str:
    """The page of a capture's messages, gaps and TCP events (in capture order).

    ``messages``: how many the capture holds, when ``items`` were already cut at ``limit``.
    """
    ladder = build_ladder(items, limit)
    if messages is not None:
        ladder.messages = max(ladder.messages, messages)
    return page(ladder, title)


_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>@TITLE@</title>
<style>@CSS@</style></head>
<body>
<header><h1>@TITLE@</h1>
<p>One lane per speaker, time going down; one arrow per BGP message. Click a message to
see its fields (the same tree as <code>speaker decode</code>) and its octets: hover a field
to light up its octets. Each side's FSM state (RFC 4271 8.2.2) is written on its lane where
the messages change it.</p>
<p id="note"></p></header>
<div id="lanes"></div>
<div id="ladder"></div>
<script type="application/json" id="data">@DATA@</script>
<script>@JS@</script>
</body></html>
"""

def _asset(name: str) -> str:
    """The page's stylesheet or script, kept beside this module as plain CSS and JavaScript."""
    return resources.files("speaker.annotate").joinpath(name).read_text(encoding="utf-8")


_CSS = _asset("ladder.css")
_JS = _asset("ladder.js")


__all__ = ["DEFAULT_LIMIT", "OCTET_BUDGET", "html_page", "page"]
