"""The RFC 4271 section 8 state machine as data: states, inputs and the transition table.

Like h11's ``_state.py`` and h2's ``_transitions``, every transition a connection may take is
one entry of :data:`speaker.session.handlers.TRANSITIONS` (it names the handlers themselves,
so it sits beside them): ``(state, input) -> (handler, next state, RFC section)``.
The session looks the pair up; a *message* that has no entry is an FSM error answered with
NOTIFICATION 5 and the RFC 6608 subcode of the state (:data:`FSM_ERROR_SUBCODES`).  Any other
missing pair is a bug in the caller (``LocalProtocolError``).

The table is for one TCP connection (RFC 4271 6.8: during a collision a peer has two).  The
peer-wide states Idle, Active and Connect are derived in :class:`~speaker.session.PeerSession`
from its connections and its connect/error-wait timers, as BIRD does (``bgp_state_dsc``).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from speaker.wire.enums import ErrorCode, FsmSubcode, MessageType
from speaker.wire.messages import Notification

__all__ = [
    "FSM_ERROR_SUBCODES",
    "MESSAGE_INPUTS",
    "STATE_RANK",
    "DownReason",
    "GracefulRestartOutcome",
    "Input",
    "State",
    "TimerKind",
    "Transition",
]


class State(enum.Enum):
    """BGP FSM states (RFC 4271 8.2.2)."""

    IDLE = "Idle"
    CONNECT = "Connect"
    ACTIVE = "Active"
    OPENSENT = "OpenSent"
    OPENCONFIRM = "OpenConfirm"
    ESTABLISHED = "Established"

    def __str__(self) -> str:
        return self.value

    # members are singletons compared by identity: hash them in C (Enum's own
    # __hash__ is Python code, and the FSM table is looked up per message)
    __hash__ = object.__hash__


STATE_RANK = {
    State.IDLE: 0,
    State.ACTIVE: 1,
    State.CONNECT: 2,
    State.OPENSENT: 3,
    State.OPENCONFIRM: 4,
    State.ESTABLISHED: 5,
}
"""How far a connection got; the peer shows its most advanced connection (BIRD)."""


class Input(enum.Enum):
    """FSM inputs, named and numbered as the events of RFC 4271 section 8.1."""

    MANUAL_START = "ManualStart (Event 1)"
    MANUAL_STOP = "ManualStop (Event 2)"
    PASSIVE_START = "ManualStart_with_PassiveTcpEstablishment (Event 4)"
    CONNECT_RETRY_TIMER = "ConnectRetryTimer_Expires (Event 9)"
    HOLD_TIMER = "HoldTimer_Expires (Event 10)"
    KEEPALIVE_TIMER = "KeepaliveTimer_Expires (Event 11)"
    IDLE_HOLD_TIMER = "IdleHoldTimer_Expires (Event 13)"
    TCP_CR_ACKED = "Tcp_CR_Acked (Event 16)"
    TCP_CONFIRMED = "TcpConnectionConfirmed (Event 17)"
    TCP_FAILS = "TcpConnectionFails (Event 18)"
    BGP_OPEN = "BGPOpen (Event 19)"
    BGP_HEADER_ERR = "BGPHeaderErr (Event 21)"
    BGP_OPEN_MSG_ERR = "BGPOpenMsgErr (Event 22)"
    OPEN_COLLISION_DUMP = "OpenCollisionDump (Event 23)"
    NOTIF_MSG = "NotifMsg (Event 25)"
    KEEPALIVE_MSG = "KeepAliveMsg (Event 26)"
    UPDATE_MSG = "UpdateMsg (Event 27)"
    UPDATE_MSG_ERR = "UpdateMsgErr (Event 28)"
    ROUTE_REFRESH_MSG = "RouteRefreshMsg (RFC 2918)"
    SEND_HOLD_TIMER = "SendHoldTimer_Expires (RFC 9687)"

    def __str__(self) -> str:
        return self.value

    # members are singletons compared by identity: hash them in C (Enum's own
    # __hash__ is Python code, and the FSM table is looked up per message)
    __hash__ = object.__hash__


MESSAGE_INPUTS: dict[int, Input] = {
    MessageType.OPEN: Input.BGP_OPEN,
    MessageType.UPDATE: Input.UPDATE_MSG,
    MessageType.NOTIFICATION: Input.NOTIF_MSG,
    MessageType.KEEPALIVE: Input.KEEPALIVE_MSG,
    MessageType.ROUTE_REFRESH: Input.ROUTE_REFRESH_MSG,
}
"""The input a received message of each type is (RFC 4271 8.1.5)."""

FSM_ERROR_SUBCODES = {
    State.OPENSENT: FsmSubcode.UNEXPECTED_IN_OPENSENT,
    State.OPENCONFIRM: FsmSubcode.UNEXPECTED_IN_OPENCONFIRM,
    State.ESTABLISHED: FsmSubcode.UNEXPECTED_IN_ESTABLISHED,
}
"""RFC 6608 section 4: the subcode of an unexpected message, per state."""


class Transition(NamedTuple):
    """One table entry: call ``handler``; if it returns True go to ``next`` and call ``after``.

    ``handler`` and ``after`` are the session's methods themselves (called with the session
    first), so a typo is an AttributeError at import and mypy checks their signatures."""

    handler: Callable[[Any, Any, float, object, Transition], bool]
    next: State | None
    rfc: str
    after: Callable[[Any, Any, float], None] | None = None





class TimerKind(enum.Enum):
    """The deadlines a session keeps (RFC 4271 10, BIRD's timers, RFC 4724 restart timer)."""

    CONNECT_DELAY = "connect delay"  # BIRD: start -> first connect attempt
    CONNECT_RETRY = "ConnectRetryTimer"  # RFC 4271: retry after failure / connect timeout
    HOLD = "HoldTimer"
    KEEPALIVE = "KeepaliveTimer"
    ERROR_WAIT = "error wait (IdleHoldTimer)"  # BIRD error wait, RFC 4271 8.1.1 IdleHoldTime
    RESTART = "graceful restart timer"  # the peer's Restart Time (RFC 4724 4.2)
    SEND_HOLD = "SendHoldTimer"  # RFC 9687: nothing could be written for the send hold time

    def __str__(self) -> str:
        return self.value


class DownReason(enum.Enum):
    """Why an Established session ended (GoBGP-style reason codes)."""

    ADMIN_STOP = "administrative stop"
    LOCAL_GRACEFUL_SHUTDOWN = "local graceful shutdown"
    NOTIFICATION_RECEIVED = "NOTIFICATION received"
    NOTIFICATION_SENT = "NOTIFICATION sent"
    HOLD_TIMER_EXPIRED = "hold timer expired"
    SEND_HOLD_TIMER_EXPIRED = "send hold timer expired"
    CONNECTION_LOST = "connection lost"
    PEER_RESTARTED = "new connection from the peer"

    def __str__(self) -> str:
        return self.value


class GracefulRestartOutcome(enum.Enum):
    """How keeping a restarting peer's stale routes ended before its End-of-RIB."""

    EXPIRED = "restart timer expired"  # RFC 4724 4.2: peer not back within Restart Time
    ABORTED = "forwarding state not preserved"  # RFC 4724 4.2: F bit clear / family missing
    STOPPED = "session stopped"  # we stopped the peer while holding its stale routes

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Closing:
    """Why and how a connection closes: one value for ``_close``.

    ``note`` is the NOTIFICATION sent (``sent``) or received; ``error`` says whether it counts
    for the error wait (BIRD: any NOTIFICATION but Cease, and hold timer expiry);
    ``graceful`` is the RFC 4724 classification of a session that ends; ``announce`` False
    when the transport already knows (the TCP connection is gone).
    """

    reason: DownReason
    cause: str
    note: Notification | None = None
    sent: bool = False
    error: bool = False
    graceful: bool = False
    announce: bool = True

    @classmethod
    def notification_sent(
        cls, note: Notification, cause: str, reason: DownReason = DownReason.NOTIFICATION_SENT
    ) -> Closing:
        return cls(reason, cause, note, sent=True, error=note.code != ErrorCode.CEASE)

    @classmethod
    def notification_received(cls, note: Notification | None, cause: str) -> Closing:
        error = note is None or note.code != ErrorCode.CEASE  # a malformed one is an error
        return cls(DownReason.NOTIFICATION_RECEIVED, cause, note, error=error)

    @classmethod
    def silent(
        cls, reason: DownReason, cause: str, *, graceful: bool, announce: bool = True
    ) -> Closing:
        """No NOTIFICATION either way (TCP lost, our graceful shutdown, the peer restarted)."""
        return cls(reason, cause, graceful=graceful, announce=announce)
