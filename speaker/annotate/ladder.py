"""The sessions of a capture as a ladder: one lane per speaker, one step per message or event,
and each side's FSM state (RFC 4271 8.2.2) as the message sequence implies it.

The capture does not show a speaker's state, only what crossed the wire; the states drawn are
the ones the messages prove: a SYN starts Connect, a sent OPEN means OpenSent, a received OPEN
(after one's own) OpenConfirm, the peer's KEEPALIVE then Established, a NOTIFICATION or a
FIN/RST back to Idle.  The HTML page (:mod:`speaker.annotate.html`) draws it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from speaker.annotate.explain import Decoded
from speaker.annotate.gaps import Lost
from speaker.pcap import TcpEvent
from speaker.wire.messages import Keepalive, Notification, Open

IDLE = "Idle"
CONNECT = "Connect"
OPEN_SENT = "OpenSent"
OPEN_CONFIRM = "OpenConfirm"
ESTABLISHED = "Established"

Side = tuple[str, int]


@dataclass(slots=True)
class Step:
    """One row of the ladder: a message, a TCP event or a gap, from one lane to another.

    ``states``: the FSM states this step moves a side into, as (lane, state, endpoint text).
    """

    kind: str  # "message", "tcp" or "gap"
    source: str
    destination: str
    time: float | None
    frame: int | None
    label: str
    item: Decoded | None = None
    states: list[tuple[str, str, str]] = field(default_factory=list)


@dataclass(slots=True)
class Ladder:
    """Lanes (speaker addresses, or A/B for hex input) and the steps between them."""

    lanes: list[str]
    steps: list[Step]
    messages: int
    shown_messages: int


def _lane_key(lane: str) -> tuple[int, bytes | str]:
    try:
        return (0, ipaddress.ip_address(lane).packed)
    except ValueError:
        return (1, lane)


def _side(endpoint: tuple[str, int] | None, text: str | None) -> Side:
    return endpoint if endpoint is not None else (text or "?", 0)


def _text(side: Side) -> str:
    address, port = side
    if not port:
        return address
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


class _States:
    """Each side's state per connection, and the changes to report."""

    def __init__(self) -> None:
        self.state: dict[Side, str] = {}
        self.opened: set[Side] = set()

    def move(self, side: Side, new: str, step: Step) -> None:
        if self.state.get(side) != new:
            self.state[side] = new
            step.states.append((side[0], new, _text(side)))

    def message(self, src: Side, dst: Side, item: Decoded, step: Step) -> None:
        message = item.message
        if item.malformed:
            # the receiver sends a NOTIFICATION and closes (RFC 4271 6)
            self.move(dst, IDLE, step)
        elif isinstance(message, Open):
            self.opened.add(src)
            self.move(src, OPEN_SENT if dst not in self.opened else OPEN_CONFIRM, step)
            if self.state.get(dst) == OPEN_SENT:
                self.move(dst, OPEN_CONFIRM, step)
        elif isinstance(message, Keepalive):
            if self.state.get(dst) == OPEN_CONFIRM:
                self.move(dst, ESTABLISHED, step)
        elif isinstance(message, Notification):
            self.move(src, IDLE, step)
            self.move(dst, IDLE, step)
            self.opened.discard(src)
            self.opened.discard(dst)

    def tcp(self, event: TcpEvent, step: Step) -> None:
        src = (event.source.address, event.source.port)
        dst = (event.destination.address, event.destination.port)
        if event.kind in ("SYN", "SYN-ACK"):
            if self.state.get(src, IDLE) == IDLE:
                self.move(src, CONNECT, step)
            if event.kind == "SYN" and self.state.get(dst, IDLE) == IDLE:
                self.move(dst, CONNECT, step)
        else:
            self.move(src, IDLE, step)
            self.move(dst, IDLE, step)
            self.opened.discard(src)
            self.opened.discard(dst)


def build_ladder(items: Iterable[Decoded | Lost | TcpEvent], limit: int | None = None) -> Ladder:
    """The ladder of a capture's messages, TCP events and gaps (in capture order).

    ``limit``: keep only the steps up to the ``limit``-th message (the page stays small);
    every message is still counted.
    """
    states = _States()
    lanes: set[str] = set()
    steps: list[Step] = []
    messages = shown = 0
    for item in items:
        if isinstance(item, Decoded):
            messages += 1
            if limit is not None and messages > limit:
                continue
            shown += 1
            src = _side(item.source_endpoint, item.source)
            dst = _side(item.destination_endpoint, item.destination)
            step = Step("message", src[0], dst[0], item.relative, item.frame, "", item)
            states.message(src, dst, item, step)
        elif limit is not None and messages >= limit:
            continue
        elif isinstance(item, Lost):
            gap = item.gap
            lost = "octets" if gap.lost is None else f"{gap.lost} octets"
            step = Step(
                "gap",
                gap.source.address,
                gap.destination.address,
                item.relative,
                gap.frame,
                f"gap: {lost} missing from the capture",
            )
        else:
            step = Step(
                "tcp",
                item.source.address,
                item.destination.address,
                None,
                item.frame,
                item.kind,
            )
            step.time = item.timestamp
            states.tcp(item, step)
        lanes.update((step.source, step.destination))
        steps.append(step)
    _relative_tcp_times(steps)
    return Ladder(sorted(lanes, key=_lane_key), steps, messages, shown)


def _relative_tcp_times(steps: list[Step]) -> None:
    """TCP events carry capture timestamps; give them the messages' relative clock."""
    origin: float | None = None
    for step in steps:
        if step.item is not None and step.item.timestamp is not None and step.time is not None:
            origin = step.item.timestamp - step.time
            break
    for step in steps:
        if step.kind == "tcp" and step.time is not None:
            step.time = None if origin is None else step.time - origin


__all__ = [
    "CONNECT",
    "ESTABLISHED",
    "IDLE",
    "OPEN_CONFIRM",
    "OPEN_SENT",
    "Ladder",
    "Step",
    "build_ladder",
]
