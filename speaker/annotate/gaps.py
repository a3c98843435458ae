"""Octets a capture does not hold: what was lost, what was skipped, and where reading resumed.

A lost TCP segment used to stall its direction silently; now the reader (speaker.pcap) skips
the hole, resynchronises on the next 16-octet marker and reports a :class:`speaker.pcap.Gap`.
This module says it to the student, in the text and in JSON, where it happened.
"""

from __future__ import annotations

from dataclasses import dataclass

from speaker.annotate.tree import LINE_WIDTH, wrap
from speaker.pcap import Gap

GAP_RFC = "RFC 4271 4.1, RFC 9293 3.4"
"""The marker and length frame messages (4.1); TCP sequence numbers say what is missing."""


@dataclass(frozen=True, slots=True)
class Lost:
    """A gap as the decode tool shows it: with the endpoints as text and the relative time."""

    gap: Gap
    source: str
    destination: str
    relative: float | None


def gap_summary(gap: Gap) -> str:
    """One sentence: how many octets were lost and skipped, and why messages are missing."""
    if gap.at_end and gap.lost is None and gap.message_length is not None:
        return (
            f"the capture ends inside a message: {gap.skipped} of its {gap.message_length} "
            "octets captured; it is not shown"
        )
    if gap.at_end and gap.lost is None:
        return f"the capture ends inside a message: {gap.skipped} octets of it captured"
    if gap.lost is None:
        lost = "the capture started in the middle of the stream"
    else:
        seq = f", TCP sequence {gap.seq} onwards" if gap.seq is not None else ""
        lost = f"{gap.lost} octets not captured before this frame{seq}"
    if gap.at_end:
        return f"{lost}; no marker found after it: {gap.skipped} octets skipped to the end"
    return (
        f"{lost}; {gap.skipped} octets skipped to resynchronise on the next marker; "
        "the messages in them are missing"
    )


def gap_line(item: Lost, width: int = LINE_WIDTH) -> str:
    """``-- gap  frame 27  0.000123  A -> B  71 octets not captured ...  [RFC ...]`` (wrapped
    at the text width onto indented lines)."""
    parts = ["-- gap", f"frame {item.gap.frame}"]
    if item.relative is not None:
        parts.append(f"{item.relative:.6f}")
    parts.append(f"{item.source} -> {item.destination}")
    return "\n".join(wrap("  ".join(parts), f"{gap_summary(item.gap)}  [{GAP_RFC}]", "", width))


def gap_record(item: Lost, source: object, destination: object) -> dict[str, object]:
    """The JSON object for a gap (``"type": "GAP"``, so ``select(.type=="UPDATE")`` skips it)."""
    gap = item.gap
    return {
        "schema": 1,
        "type": "GAP",
        "frame": gap.frame,
        "timestamp": gap.timestamp,
        "time": item.relative,
        "source": source,
        "destination": destination,
        "lost_octets": gap.lost,
        "skipped_octets": gap.skipped,
        "sequence": gap.seq,
        "at_end": gap.at_end,
        "message_length": gap.message_length,
        "summary": gap_summary(gap),
    }


__all__ = ["GAP_RFC", "Lost", "gap_line", "gap_record", "gap_summary"]
