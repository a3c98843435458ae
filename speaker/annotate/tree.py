"""The indented tree a student reads: field, value, meaning, RFC section.

Each line is ``label  value  — meaning  [RFC n s]``; siblings share one label column so the
values line up.  A line longer than :data:`LINE_WIDTH` keeps ``label  value`` on its line and
wraps the explanation onto continuation lines indented under it, so a terminal or a diff of
two captures stays readable.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field

LABEL_WIDTH_CAP = 56
INDENT = "  "
LINE_WIDTH = 120
CONTINUATION = "    "
"""Extra indent of the continuation lines of a wrapped explanation."""


@dataclass(slots=True)
class Node:
    """One field of a message, and the fields inside it."""

    label: str
    value: str = ""
    meaning: str = ""
    rfc: str = ""
    children: list[Node] = field(default_factory=list)

    def add(self, label: str, value: object = "", meaning: str = "", rfc: str = "") -> Node:
        """Append a child field and return it."""
        child = Node(label, str(value), meaning, rfc)
        self.children.append(child)
        return child


def wrap(head: str, tail: str, indent: str, width: int = LINE_WIDTH) -> list[str]:
    """``head  tail`` on one line if it fits, else ``head`` then ``tail`` wrapped below it.

    ``width`` 0 never wraps.
    """
    if not tail:
        return fold(head, indent, width)
    line = f"{head}  {tail}"
    if len(line) <= width or not width:
        return [line]
    lines = fold(head, indent, width)
    # an RFC reference ``[RFC 4271 4.2]`` is never split
    glued = _REF.sub(lambda m: m.group().replace(" ", _GLUE), tail)
    wrapped = textwrap.wrap(
        glued,
        width,
        initial_indent=indent + CONTINUATION,
        subsequent_indent=indent + CONTINUATION + "  ",
        break_on_hyphens=False,
    )
    lines.extend(line.replace(_GLUE, " ") for line in wrapped)
    return lines


_REF = re.compile(r"\[[^\]]*\]$")
_GLUE = "\x01"


def fold(text: str, indent: str, width: int = LINE_WIDTH) -> list[str]:
    """A line too long on its own (a long value) is folded at spaces, continuation indented."""
    if len(text) <= width or not width:
        return [text]
    lead = len(text) - len(text.lstrip(" "))
    return textwrap.wrap(
        text[lead:],
        width,
        initial_indent=text[:lead],
        subsequent_indent=indent + CONTINUATION,
        break_on_hyphens=False,
    ) or [text]


def node_lines(node: Node, width: int, indent: str, line_width: int = LINE_WIDTH) -> list[str]:
    """One node's own lines (label padded to the sibling width ``width``), wrapped."""
    head = indent + node.label
    if node.value:
        head = f"{indent}{node.label.ljust(width)}  {node.value}"
    tail = ""
    if node.meaning:
        tail = f"— {node.meaning}"
    if node.rfc:
        tail = f"{tail}  [{node.rfc}]" if tail else f"[{node.rfc}]"
    return wrap(head, tail, indent, line_width)


def render(nodes: list[Node], depth: int = 0, line_width: int = LINE_WIDTH) -> list[str]:
    """The lines of a list of sibling nodes and their descendants (``line_width`` 0: no
    wrapping)."""
    width = min(
        max((len(n.label) for n in nodes if n.value), default=0),
        LABEL_WIDTH_CAP,
    )
    indent = INDENT * depth
    lines: list[str] = []
    for node in nodes:
        lines.extend(node_lines(node, width, indent, line_width))
        if node.children:
            lines.extend(render(node.children, depth + 1, line_width))
    return lines
