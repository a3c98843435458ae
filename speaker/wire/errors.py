"""The codec's one error type, and what the RFCs say to do about each error.

Every malformed input is reported as a :class:`BgpError` that carries the NOTIFICATION
(code, subcode, data) RFC 4271 section 6 prescribes, and the RFC 7606 outcome
(:class:`ErrorAction`).  The session turns it into bytes on the wire; the decode tool prints it.
"""

from __future__ import annotations

from enum import IntEnum

from speaker.wire.enums import (
    ErrorCode,
    HeaderSubcode,
    OpenSubcode,
    UpdateSubcode,
    code_name,
    subcode_name,
)


class ErrorAction(IntEnum):
    """RFC 7606 error-handling outcomes, ordered weakest to strongest (section 3)."""

    ATTRIBUTE_DISCARD = 1  # drop the attribute, keep the route (RFC 7606 2)
    TREAT_AS_WITHDRAW = 2  # the UPDATE's NLRI are withdrawn (RFC 7606 2)
    AFISAFI_DISABLE = 3  # stop the address family (RFC 4760 7)
    SESSION_RESET = 4  # NOTIFICATION and close (RFC 4271 6)


class BgpError(Exception):
    """A protocol error found in bytes received from a peer.

    ``code``/``subcode``/``data`` are the NOTIFICATION to send (RFC 4271 4.5, section 6);
    ``action`` says whether the session must be reset or RFC 7606 allows a softer outcome.
    """

    def __init__(
        self,
        code: int,
        subcode: int,
        data: bytes = b"",
        reason: str = "",
        action: ErrorAction = ErrorAction.SESSION_RESET,
    ) -> None:
        self.code = int(code)
        self.subcode = int(subcode)
        self.data = bytes(data)
        self.reason = reason
        self.action = action
        super().__init__(self.describe())

    def __reduce__(self) -> tuple[type[BgpError], tuple[int, int, bytes, str, ErrorAction]]:
        return (type(self), (self.code, self.subcode, self.data, self.reason, self.action))

    def with_action(self, action: ErrorAction) -> BgpError:
        """A fresh copy of this error with another RFC 7606 outcome (e.g. escalated to reset)."""
        return BgpError(self.code, self.subcode, self.data, self.reason, action)

    @property
    def resets_session(self) -> bool:
        """True when the session must be closed with this error's NOTIFICATION."""
        return self.action is ErrorAction.SESSION_RESET

    def describe(self) -> str:
        """One line: what is wrong and which NOTIFICATION it causes."""
        note = f"NOTIFICATION {self.code}/{self.subcode} "
        note += f"({code_name(self.code)}/{subcode_name(self.code, self.subcode)})"
        if self.action is not ErrorAction.SESSION_RESET:
            note = f"{self.action.name.lower().replace('_', '-')} (RFC 7606), else {note}"
        return f"{self.reason}: {note}" if self.reason else note


def header_error(subcode: HeaderSubcode, data: bytes = b"", reason: str = "") -> BgpError:
    """Message Header Error (RFC 4271 6.1)."""
    return BgpError(ErrorCode.MESSAGE_HEADER, subcode, data, reason)


def open_error(subcode: OpenSubcode, data: bytes = b"", reason: str = "") -> BgpError:
    """OPEN Message Error (RFC 4271 6.2)."""
    return BgpError(ErrorCode.OPEN_MESSAGE, subcode, data, reason)


def update_error(
    subcode: UpdateSubcode,
    data: bytes = b"",
    reason: str = "",
    action: ErrorAction = ErrorAction.SESSION_RESET,
) -> BgpError:
    """UPDATE Message Error (RFC 4271 6.3), with its RFC 7606 outcome."""
    return BgpError(ErrorCode.UPDATE_MESSAGE, subcode, data, reason, action)


class LocalProtocolError(Exception):
    """The caller misused the API (a bug on our side, never the peer's): no NOTIFICATION."""
