"""BIRD 1.6.8's control-socket line protocol, both directions, without I/O.

Measured against a real BIRD 1.6.8 (see docs/config.md, "Control socket"):

* the server greets with ``0001 BIRD 1.6.8 ready.``;
* every reply line starts with a 4-digit code; ``NNNN-text`` means more lines follow,
  ``NNNN text`` (a space) is the last line of the reply;
* a line whose code equals the previous line's code is sent as `` text`` (one space, no
  code): BIRD's cli_printf collapses repeated codes into continuation lines;
* data replies end with ``0000 `` (code 0 and an empty text, the space included: birdc
  needs more than 4 characters to recognise the end);
* errors are single final lines: ``8001 Network not in table``, ``8003 No protocols
  match``, ``9001 syntax error``, ``9002 X is not a protocol``;
* the server strips ``\\r`` and refuses command lines of 4094 bytes or more with
  ``9000 Command too long``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum

__all__ = [
    "MAX_COMMAND",
    "Reply",
    "ReplyCode",
    "ReplyLine",
    "ReplyParser",
    "encode_reply",
]

MAX_COMMAND = 4093
"""Longest command BIRD accepts (CLI_RX_BUF_SIZE 4096 minus 2, minus the NUL)."""


class ReplyCode(IntEnum):
    """Reply codes: BIRD 1.6.8's doc/reply_codes, plus our extensions (marked)."""

    OK = 0
    WELCOME = 1
    ALREADY_DISABLED = 8
    DISABLED = 9
    ALREADY_ENABLED = 10
    ENABLED = 11
    RESTARTED = 12
    STATUS = 13
    ROUTE_COUNT = 14
    RELOADING = 15
    GR_STATUS = 24
    GR_INITIATED = 25  # BIRD 2's `graceful restart` command

    VERSION = 1000
    PROTOCOL_LIST = 1002
    PROTOCOL_DETAILS = 1006
    ROUTE_LIST = 1007
    ROUTE_DETAILS = 1008
    UPTIME = 1011
    ROUTE_ATTRS = 1012
    KERNEL_TABLE = 1100  # extension: `show kernel`
    JSON = 1101  # extension: the one-line JSON document of a `json ...` command
    DATASTORE = 1102  # extension: `show datastore`
    EVENTS = 1103  # extension: `show events`, `watch`
    EXPLAIN = 1104  # extension: `explain PREFIX`

    TABLE_HEADING = 2002

    ROUTE_NOT_FOUND = 8001
    NO_PROTOCOLS_MATCH = 8003
    RELOAD_FAILED = 8006
    COMMAND_FAILED = 8100  # extension: the daemon could not do what was asked

    COMMAND_TOO_LONG = 9000
    PARSE_ERROR = 9001
    INVALID_SYMBOL = 9002

    @property
    def is_error(self) -> bool:
        return self >= 8000


@dataclass(frozen=True)
class ReplyLine:
    """One line of a reply: its code and its text (without code or separator)."""

    code: int
    text: str


@dataclass(frozen=True)
class Reply:
    """A whole reply; its last line is the final one and carries the reply's outcome."""

    lines: tuple[ReplyLine, ...]
    raw: tuple[str, ...] = ()
    """The lines as received (codes and continuation spaces included), when parsed."""

    @property
    def code(self) -> int:
        return self.lines[-1].code

    @property
    def ok(self) -> bool:
        """No error line: BIRD also reports per-protocol failures (``8006-X: reload
        failed``) on non-final lines of a reply that ends with ``0000``."""
        return all(line.code < 8000 for line in self.lines)

    @property
    def error(self) -> str:
        """The text of the first error line (empty when ok)."""
        return next((line.text for line in self.lines if line.code >= 8000), "")

    def texts(self) -> list[str]:
        """The lines as birdc prints them: without codes, code-0 lines left out."""
        return [line.text for line in self.lines if line.code != 0]

    def data(self, code: int) -> list[str]:
        """Texts of the lines with one code (e.g. ReplyCode.JSON)."""
        return [line.text for line in self.lines if line.code == code]


def encode_reply(lines: Sequence[ReplyLine]) -> bytes:
    """Serialise a reply the way BIRD's cli_printf does; the last line is final.

    A text holding newlines becomes several lines with the same code.
    """
    if not lines:
        raise ValueError("a reply has at least its final line")
    out: list[str] = []
    last = -1
    flat = [ReplyLine(ln.code, part) for ln in lines for part in ln.text.split("\n")]
    for i, line in enumerate(flat):
        if not 0 <= line.code <= 9999:
            raise ValueError(f"reply code {line.code} is not 4 digits")
        if i == len(flat) - 1:
            out.append(f"{line.code:04d} {line.text}\n")
        elif line.code == last:
            out.append(f" {line.text}\n")
        else:
            out.append(f"{line.code:04d}-{line.text}\n")
            last = line.code
    return "".join(out).encode("utf-8", errors="replace")


def encode_continuation(code: int, text: str) -> bytes:
    """One not-final reply line, ``CODE-text``, for a reply that goes on (``watch``)."""
    return "".join(f"{code:04d}-{part}\n" for part in text.split("\n")).encode(
        "utf-8", errors="replace"
    )


class ReplyParser:
    """Incremental client-side parser: feed bytes, collect complete replies.

    Lines starting with ``+`` are BIRD's asynchronous messages; they are kept apart in
    ``async_messages``.
    """

    def __init__(self) -> None:
        self._buf = b""
        self._lines: list[ReplyLine] = []
        self._raw: list[str] = []
        self._code = -1
        self.async_messages: list[str] = []

    def feed(self, data: bytes) -> list[Reply]:
        self._buf += data
        replies: list[Reply] = []
        while b"\n" in self._buf:
            raw, self._buf = self._buf.split(b"\n", 1)
            reply = self._line(raw.decode("utf-8", errors="replace").rstrip("\r"))
            if reply is not None:
                replies.append(reply)
        return replies

    def _line(self, line: str) -> Reply | None:
        if line.startswith("+"):
            self.async_messages.append(line[1:])
            return None
        self._raw.append(line)
        if line.startswith(" "):
            if self._code < 0:
                raise ValueError(f"continuation line before any code: {line!r}")
            self._lines.append(ReplyLine(self._code, line[1:]))
            return None
        if len(line) >= 5 and line[:4].isdigit() and line[4] in "- ":
            code = int(line[:4])
            self._lines.append(ReplyLine(code, line[5:]))
            if line[4] == " ":
                reply = Reply(tuple(self._lines), tuple(self._raw))
                self._lines = []
                self._raw = []
                self._code = -1
                return reply
            self._code = code
            return None
        raise ValueError(f"not a BIRD reply line: {line!r}")


def lines_of(code: int, texts: Iterable[str]) -> list[ReplyLine]:
    """Helper: several lines with one code."""
    return [ReplyLine(code, t) for t in texts]
