"""The BGP session state machine, without I/O (RFC 4271 section 8, as BIRD 1.6 runs it).

One :class:`PeerSession` per neighbour.  It has no sockets, no clock and no asyncio: the
transport layer feeds it inputs, each carrying ``now`` (seconds, a float from the event
loop's monotonic clock), and carries out what it asks for.  Modelled on aioquic's
``QuicConnection`` and h11's ``Connection``: bytes and time in, events and bytes out.

API::

    s = PeerSession(SessionConfig(local_as=64512, router_id=IPv4Address("192.168.0.80"),
                                  peer_as=64512, peer_address=IPv4Address("192.168.0.81")))
    s.start(now)                      # ManualStart (or the passive variant: config.passive)
    s.stop(now, subcode=CeaseSubcode.ADMINISTRATIVE_SHUTDOWN, message="")   # Cease, Idle
    s.graceful_shutdown(now)          # close TCP without NOTIFICATION (we restart, RFC 4724)

    s.connection_made(conn_id, now, outgoing=True|False)
    s.connection_failed(conn_id, now, reason)     # our attempt failed
    s.connection_lost(conn_id, now, reason="")    # TCP closed/reset
    s.receive_data(conn_id, data, now)
    s.handle_timer(now);  s.get_timer() -> float | None
    s.next_event() -> Event | None
    s.data_to_send(conn_id, limit=None) -> bytes
    s.pending_connections() -> tuple[int, ...];  s.next_conn_id() -> int
    s.send_update(bytes | Update); s.send_end_of_rib(family)
    s.send_route_refresh(family, subtype=RouteRefreshSubtype.NORMAL)
    s.state, s.negotiated (SessionInfo | None), s.last_error, s.established_since,
    s.local_open, s.connections(), s.error_wait, s.started

Contract with the transport (one asyncio protocol per connection, like aioquic's adapter):

* After every input, drain :meth:`PeerSession.next_event`.  Two events are actions:
  :class:`ConnectRequest` (open TCP from ``source_address`` to ``address:port``, then report
  ``connection_made(conn_id, outgoing=True)`` or ``connection_failed(conn_id, ...)``) and
  :class:`CloseConnection` (write ``data_to_send(conn_id)`` first: it holds the NOTIFICATION
  if one was sent; then close; for a connection still in progress: abandon it).
* Then write ``data_to_send(conn_id, limit)`` for each id in ``pending_connections()``;
  KEEPALIVE/NOTIFICATION come first, UPDATEs follow in chunks of at most ``limit`` octets
  (one oversized message at a time) so the writer can ``await drain()`` in between.
* Re-arm one timer at ``get_timer()`` that calls ``handle_timer(loop.time())``.
* Ids of outgoing connections come with ConnectRequest; give incoming ones an id not in
  use (``next_conn_id()``).  Data or losses for ids the session has closed are ignored.
* ``send_*`` are valid only while Established; otherwise they raise
  :class:`~speaker.wire.errors.LocalProtocolError`.  Peer errors never raise: they become
  NOTIFICATIONs and events.

Design decisions (see the module docstrings for the RFC text behind them):

* Transitions are data: :data:`TRANSITIONS` maps (connection state, input) to a handler
  and next state; a message without an entry gets NOTIFICATION 5/<RFC 6608 subcode>.  The
  peer's state is derived from its connections (BIRD shows the most advanced one).
* Collision (RFC 4271 6.8, RFC 6286, BIRD): when an OPEN arrives while the other connection
  is in OpenSent or OpenConfirm, the connection initiated by the higher BGP Identifier (equal
  identifiers: higher AS) survives; the other gets Cease 7.  An OPEN on one connection stops
  our still-pending attempt.  An incoming connection while Established is the peer
  restarting when it can restart gracefully (the old session goes down, graceful); else it
  is refused at once with Cease 7 (it loses the collision with the Established session).
* Graceful restart (RFC 4724 4.2, as BIRD): a session that ends by TCP loss without
  NOTIFICATION, or by a new connection from the peer, while the peer listed one of our
  families in its capability, goes down with ``graceful=True``, its restart time and F
  flags; NOTIFICATION sent or received and hold timer expiry give ``graceful=False``.  The
  session runs the restart timer and emits :class:`GracefulRestartEnded` when stale routes
  must go (timer expired, F bit missing in the new OPEN, stopped); the RIB sweeps the rest
  at the peer's :class:`EndOfRib`.
* Timers (BIRD 1.6 semantics, Calico values): connect delay before the first attempt and
  after a session ends; connect retry after a failed attempt and as connect timeout; error
  wait after an error (NOTIFICATION other than Cease, sent or received; hold expiry):
  min, doubling per consecutive error up to max, forgotten after ``error_forget`` seconds
  without errors; the initial hold time (240 s) until the peer's OPEN.  Connect delay,
  connect retry and keepalive are jittered each time they are set (RFC 4271 10: a factor in
  [0.75, 1.0]) by the :data:`Jitter` given to the session (none by default; the core gives
  :func:`rfc4271_jitter`), see :mod:`speaker.session.jitter`.
"""

from speaker.session.config import SessionConfig, build_open, family_name
from speaker.session.connection import ErrorWait
from speaker.session.events import (
    CloseConnection,
    ConnectRequest,
    EndOfRib,
    GracefulRestartEnded,
    MalformedUpdateReceived,
    MessageIn,
    MessageOut,
    RouteRefreshReceived,
    RoutineMessageIn,
    RoutineMessageOut,
    SessionDown,
    SessionEvent,
    SessionUp,
    StateChange,
    TimerFired,
    UpdateReceived,
)
from speaker.session.handlers import TRANSITIONS
from speaker.session.jitter import Jitter, no_jitter, rfc4271_jitter
from speaker.session.negotiated import (
    PeerGracefulRestart,
    SessionInfo,
    negotiate_session,
    validate_open,
    we_are_dominant,
)
from speaker.session.peer import PeerSession
from speaker.session.state import (
    FSM_ERROR_SUBCODES,
    DownReason,
    GracefulRestartOutcome,
    Input,
    State,
    TimerKind,
    Transition,
)

__all__ = [
    "FSM_ERROR_SUBCODES",
    "TRANSITIONS",
    "CloseConnection",
    "ConnectRequest",
    "DownReason",
    "EndOfRib",
    "ErrorWait",
    "GracefulRestartEnded",
    "GracefulRestartOutcome",
    "Input",
    "Jitter",
    "MalformedUpdateReceived",
    "MessageIn",
    "MessageOut",
    "PeerGracefulRestart",
    "PeerSession",
    "RouteRefreshReceived",
    "RoutineMessageIn",
    "RoutineMessageOut",
    "SessionConfig",
    "SessionDown",
    "SessionEvent",
    "SessionInfo",
    "SessionUp",
    "State",
    "StateChange",
    "TimerFired",
    "TimerKind",
    "Transition",
    "UpdateReceived",
    "build_open",
    "family_name",
    "negotiate_session",
    "no_jitter",
    "rfc4271_jitter",
    "validate_open",
    "we_are_dominant",
]
