"""Events out of a :class:`~speaker.session.PeerSession`: actions and information.

Two of them are *actions* the transport layer must carry out: :class:`ConnectRequest` (open
TCP to the peer) and :class:`CloseConnection` (write what ``data_to_send`` still holds for
that connection, typically a NOTIFICATION, then close it).  All the others inform: state
changes with their cause, messages in and out, the session coming up and going down (with
the graceful restart classification the RIB needs), routes, End-of-RIB, route refresh.

Every event names its peer and says in ``describe()`` what happened and which RFC section
made it happen, so the log teaches the protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from speaker.events import Event
from speaker.session.config import family_name
from speaker.session.negotiated import SessionInfo
from speaker.session.state import DownReason, GracefulRestartOutcome, Input, State, TimerKind
from speaker.wire.context import IPV4_UNICAST, Family
from speaker.wire.enums import MessageType, RouteRefreshSubtype
from speaker.wire.errors import ErrorAction
from speaker.wire.messages import Notification, Update

__all__ = [
    "CloseConnection",
    "ConnectRequest",
    "EndOfRib",
    "GracefulRestartEnded",
    "MalformedUpdateReceived",
    "MessageIn",
    "MessageOut",
    "RouteRefreshReceived",
    "RoutineMessageIn",
    "RoutineMessageOut",
    "SessionDown",
    "SessionEvent",
    "SessionUp",
    "StateChange",
    "TimerFired",
    "UpdateReceived",
]

DEBUG = 10
INFO = 20
WARNING = 30


@dataclass(frozen=True, slots=True)
class SessionEvent(Event):
    """Base of the session's events: ``peer`` is the neighbour's address."""

    peer: str


@dataclass(frozen=True, slots=True)
class StateChange(SessionEvent):
    """The peer's FSM state changed (RFC 4271 8.2.2), with the input and why."""

    KIND = "state"
    old: State
    new: State
    cause: str
    rfc: str = ""
    input: Input | None = None
    conn_id: int | None = None

    def describe(self) -> str:
        rfc = f" ({self.rfc})" if self.rfc else ""
        return f"{self.peer}: {self.old} -> {self.new}: {self.cause}{rfc}"


@dataclass(frozen=True, slots=True)
class MessageIn(SessionEvent):
    """A whole message arrived on a connection (OPEN, NOTIFICATION, ROUTE-REFRESH)."""

    KIND = "message-in"
    conn_id: int
    type: MessageType
    length: int
    summary: str

    def describe(self) -> str:
        return f"{self.peer}: received {self.summary} ({self.length} octets, conn {self.conn_id})"


@dataclass(frozen=True, slots=True)
class RoutineMessageIn(MessageIn):
    """A received UPDATE or KEEPALIVE: the same event at DEBUG level (they are frequent)."""

    LEVEL = DEBUG


@dataclass(frozen=True, slots=True)
class MessageOut(SessionEvent):
    """A message was queued for a connection (OPEN, NOTIFICATION, ROUTE-REFRESH)."""

    KIND = "message-out"
    conn_id: int
    type: MessageType
    length: int
    summary: str

    def describe(self) -> str:
        return f"{self.peer}: sending {self.summary} ({self.length} octets, conn {self.conn_id})"


@dataclass(frozen=True, slots=True)
class RoutineMessageOut(MessageOut):
    """A queued UPDATE or KEEPALIVE, at DEBUG level."""

    LEVEL = DEBUG


@dataclass(frozen=True, slots=True)
class SessionUp(SessionEvent):
    """The session is Established: routes may flow (RFC 4271 8.2.2 OpenConfirm)."""

    KIND = "session-up"
    conn_id: int
    info: SessionInfo

    def describe(self) -> str:
        return (
            f"{self.peer}: session Established ({self.info.describe()}) (RFC 4271 8.2.2, RFC 5492)"
        )


@dataclass(frozen=True, slots=True)
class SessionDown(SessionEvent):
    """An Established session ended.

    ``graceful`` tells the RIB what to do with the peer's routes (RFC 4724 4.2, as BIRD):
    True -> keep them, marked stale, for ``restart_time`` seconds (the families in
    ``forwarding``, with the F flags of the peer's last OPEN) until its End-of-RIB; False ->
    withdraw them at once.  A graceful down while routes are still stale from a previous
    restart means a consecutive restart: the routes already stale should go now.
    """

    KIND = "session-down"
    conn_id: int
    reason: DownReason
    graceful: bool
    cause: str
    notification: Notification | None = None
    notification_sent: bool = False
    restart_time: int = 0
    forwarding: tuple[tuple[Family, bool], ...] = ()
    established_for: float = 0.0

    def describe(self) -> str:
        if self.graceful:
            fams = ", ".join(
                f"{family_name(f)} (F={'1' if fwd else '0'})" for f, fwd in self.forwarding
            )
            fate = f"keeping its routes stale for {self.restart_time} s: {fams} (RFC 4724 4.2)"
        else:
            fate = "withdrawing its routes now"
        return (
            f"{self.peer}: session down after {self.established_for:.0f} s, {self.reason}: "
            f"{self.cause}; {fate}"
        )


@dataclass(frozen=True, slots=True)
class UpdateReceived(SessionEvent):
    """An UPDATE for the RIB.  ``action`` is the RFC 7606 outcome if it had errors."""

    KIND = "update"
    LEVEL = DEBUG
    conn_id: int
    update: Update
    action: ErrorAction | None = None
    errors: tuple[str, ...] = ()

    def describe(self) -> str:
        u = self.update
        text = f"{self.peer}: UPDATE, {len(u.nlri)} announced, {len(u.withdrawn)} withdrawn"
        fams = u.families()
        if fams and fams != (IPV4_UNICAST,):
            text += f" ({', '.join(family_name(f) for f in fams)})"
        if self.action is not None:
            action = self.action.name.lower().replace("_", "-")
            text += f"; {action} (RFC 7606): {'; '.join(self.errors)}"
        return text


@dataclass(frozen=True, slots=True)
class MalformedUpdateReceived(UpdateReceived):
    """An UPDATE that RFC 7606 lets the session survive (treat-as-withdraw, discard).

    It is still an :class:`UpdateReceived`: the RIB applies it (treat-as-withdraw as
    withdrawals of every NLRI, attribute-discard without the attribute)."""

    LEVEL = WARNING
    count: int = 0
    """UPDATEs of this session with the same outcome so far (this one included)."""

    def describe(self) -> str:
        text = UpdateReceived.describe(self)
        if self.action is ErrorAction.TREAT_AS_WITHDRAW:
            text += "; its routes are withdrawn, the session stays up"
        elif self.action is ErrorAction.ATTRIBUTE_DISCARD:
            text += "; its routes are kept without the attribute, the session stays up"
        return f"{text} ({self.count} such so far)"


@dataclass(frozen=True, slots=True)
class UnnegotiatedFamilyIgnored(SessionEvent):
    """MP_REACH_NLRI/MP_UNREACH_NLRI of a family not negotiated on this session: its routes
    are ignored and the session stays up (RFC 4760 7; BIRD and GoBGP do the same).  Ending
    the session is only a "may" in the RFC, and would drop every good route of the peer."""

    KIND = "unnegotiated-family"
    LEVEL = WARNING
    conn_id: int
    families: tuple[tuple[int, int], ...]
    count: int
    """How many UPDATEs of this session had such attributes so far (this one included)."""

    def describe(self) -> str:
        names = ", ".join(family_name(f) for f in self.families)
        return (
            f"{self.peer}: UPDATE with MP_REACH/MP_UNREACH_NLRI of {names}, not negotiated: "
            f"those routes ignored, session kept (RFC 4760 7); {self.count} such so far"
        )


@dataclass(frozen=True, slots=True)
class EndOfRib(SessionEvent):
    """The peer finished its initial routes of a family (RFC 4724 2): sweep stale routes."""

    KIND = "end-of-rib"
    family: Family

    def describe(self) -> str:
        return (
            f"{self.peer}: End-of-RIB for {family_name(self.family)} received: its initial "
            "routing update is complete (RFC 4724 2)"
        )


_REFRESH_MEANING = {
    RouteRefreshSubtype.NORMAL: "the peer asks for our routes again (RFC 2918 4)",
    RouteRefreshSubtype.BORR: (
        "beginning of the peer's route refresh: mark its routes stale (RFC 7313 4)"
    ),
    RouteRefreshSubtype.EORR: (
        "end of the peer's route refresh: drop its routes still stale (RFC 7313 4)"
    ),
}


@dataclass(frozen=True, slots=True)
class RouteRefreshReceived(SessionEvent):
    """A ROUTE-REFRESH for one of our families: a request, or BoRR/EoRR (RFC 7313)."""

    KIND = "route-refresh"
    family: Family
    subtype: RouteRefreshSubtype

    def describe(self) -> str:
        return (
            f"{self.peer}: ROUTE-REFRESH {self.subtype.name} for {family_name(self.family)}: "
            f"{_REFRESH_MEANING[self.subtype]}"
        )


@dataclass(frozen=True, slots=True)
class ConnectRequest(SessionEvent):
    """Action: open TCP from ``source_address`` to ``address``:``port``; report the outcome
    with ``connection_made(conn_id, outgoing=True)`` or ``connection_failed(conn_id)``."""

    KIND = "connect"
    conn_id: int
    address: IPv4Address | IPv6Address
    port: int
    source_address: IPv4Address | IPv6Address | None = None

    def describe(self) -> str:
        src = f" from {self.source_address}" if self.source_address else ""
        return (
            f"{self.peer}: connecting to {self.address}:{self.port}{src} (conn {self.conn_id}, "
            "RFC 4271 8.2.2)"
        )


@dataclass(frozen=True, slots=True)
class CloseConnection(SessionEvent):
    """Action: write ``data_to_send(conn_id)`` (the NOTIFICATION, if any), then close it.

    For a connection still in progress (Connect) it means: abandon the attempt.
    """

    KIND = "close"
    conn_id: int
    reason: str
    notification: Notification | None = None

    def describe(self) -> str:
        how = (
            f"after NOTIFICATION {self.notification.describe()}"
            if self.notification is not None
            else "without NOTIFICATION"
        )
        return f"{self.peer}: closing conn {self.conn_id} {how}: {self.reason}"


@dataclass(frozen=True, slots=True)
class TimerFired(SessionEvent):
    """A deadline passed (RFC 4271 10 timers, BIRD delays, RFC 4724 restart timer)."""

    KIND = "timer"
    LEVEL = DEBUG
    timer: TimerKind
    conn_id: int | None = None

    def describe(self) -> str:
        conn = f" (conn {self.conn_id})" if self.conn_id is not None else ""
        return f"{self.peer}: {self.timer} expired{conn}"


@dataclass(frozen=True, slots=True)
class GracefulRestartEnded(SessionEvent):
    """Stop keeping the peer's stale routes before its End-of-RIB: flush them now."""

    KIND = "graceful-restart"
    outcome: GracefulRestartOutcome
    families: tuple[Family, ...]
    cause: str

    def describe(self) -> str:
        fams = ", ".join(family_name(f) for f in self.families)
        return f"{self.peer}: flushing stale routes ({fams}): {self.cause}"


# The two events of every received UPDATE, built without the frozen __init__ (which sets
# each field through object.__setattr__): same classes, same field values.
_new_object = object.__new__
_set_peer = SessionEvent.__dict__["peer"].__set__
_set_in_conn = MessageIn.__dict__["conn_id"].__set__
_set_in_type = MessageIn.__dict__["type"].__set__
_set_in_length = MessageIn.__dict__["length"].__set__
_set_in_summary = MessageIn.__dict__["summary"].__set__
_set_up_conn = UpdateReceived.__dict__["conn_id"].__set__
_set_up_update = UpdateReceived.__dict__["update"].__set__
_set_up_action = UpdateReceived.__dict__["action"].__set__
_set_up_errors = UpdateReceived.__dict__["errors"].__set__


def routine_message_in(
    peer: str, conn_id: int, mtype: MessageType, length: int, summary: str
) -> RoutineMessageIn:
    """``RoutineMessageIn(peer, conn_id, mtype, length, summary)``, faster."""
    event: RoutineMessageIn = _new_object(RoutineMessageIn)
    _set_peer(event, peer)
    _set_in_conn(event, conn_id)
    _set_in_type(event, mtype)
    _set_in_length(event, length)
    _set_in_summary(event, summary)
    return event


def update_received(peer: str, conn_id: int, update: Update) -> UpdateReceived:
    """``UpdateReceived(peer, conn_id, update)``, faster."""
    event: UpdateReceived = _new_object(UpdateReceived)
    _set_peer(event, peer)
    _set_up_conn(event, conn_id)
    _set_up_update(event, update)
    _set_up_action(event, None)
    _set_up_errors(event, ())
    return event
