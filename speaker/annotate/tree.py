"""The indented tree a student reads: field, value, meaning, RFC section.

Each line is ``label  value  — meaning  [RFC n s]``; siblings share one label column so the
values line up.
"""

from __future__ import annotations

from dataclasses import dataclass, field

LABEL_WIDTH_CAP = 56
INDENT = "  "


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


def _line(node: Node, width: int) -> str:
    text = node.label
    if node.value:
        text = f"{node.label.ljust(width)}  {node.value}"
    if node.meaning:
        text += f"  — {node.meaning}"
    if node.rfc:
        text += f"  [{node.rfc}]"
    return text


def render(nodes: list[Node], depth: int = 0) -> list[str]:
    """The lines of a list of sibling nodes and their descendants."""
    width = min(
        max((len(n.label) for n in nodes if n.value), default=0),
        LABEL_WIDTH_CAP,
    )
    lines: list[str] = []
    for node in nodes:
        lines.append(INDENT * depth + _line(node, width))
        if node.children:
            lines.extend(render(node.children, depth + 1))
    return lines
