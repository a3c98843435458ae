"""The asyncio side of one BGP peer: sockets and a timer around a sans-IO PeerSession.

Like aioquic's protocol adapter, this module only moves bytes and time: after every input
(bytes, a connection made or lost, the timer) it drains the session's events, carries out the
two that are actions (:class:`ConnectRequest`, :class:`CloseConnection`), hands the rest to
the daemon through a callback, writes what the session wants sent and re-arms the one timer.
KEEPALIVE/NOTIFICATION are written before UPDATEs and UPDATEs only while the socket is not
backed up, so a long feed never delays a KEEPALIVE by more than one socket buffer.

A connection the session closes is not simply closed: its last data (the NOTIFICATION) is
written, then it is half-closed (FIN after that data) and whatever the peer still sends is read
and dropped until the peer closes too or :data:`CLOSE_LINGER` passes.  Closing a socket whose
receive queue holds unread data, or that receives data after the close, makes the kernel send
a RST, and a RST makes the peer's kernel discard what its application has not read yet: our
NOTIFICATION.  BIRD likewise keeps a connection open until its NOTIFICATION has gone.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from ipaddress import IPv4Address

from speaker.events import Event
from speaker.session import CloseConnection, ConnectRequest, PeerSession, SessionConfig

log = logging.getLogger(__name__)

WRITE_CHUNK = 65536
"""Octets of UPDATEs handed to a transport at a time (the transport's high-water mark)."""

CLOSE_LINGER = 2.0
"""Seconds a closed connection keeps draining the peer's data after our half-close, waiting
for the peer's own close, before it is dropped (bounds what a silent peer can hold)."""


class BgpConnection(asyncio.Protocol):
    """One TCP connection of a peer; forwards everything to its :class:`PeerTransport`."""

    def __init__(
        self, owner: PeerTransport | None, conn_id: int = -1, *, outgoing: bool = False
    ) -> None:
        self.owner = owner
        self.conn_id = conn_id
        self.outgoing = outgoing
        self.transport: asyncio.Transport | None = None
        self.paused = False
        self.closed: asyncio.Future[None] | None = None  # set by close_gracefully()
        self.lost = False
        self._linger: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # BGP messages are small and latency matters more than packet count.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.outgoing and self.owner is not None:
            # Tell the session now: the peer's OPEN may arrive in the very next callback,
            # before create_connection() returns to the dialling task.
            self.owner.outgoing_made(self)

    def data_received(self, data: bytes) -> None:
        if self.owner is not None:
            self.owner.data_received(self.conn_id, data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        if self.closed is not None and not self.closed.done():
            self.closed.set_result(None)
        if self.owner is not None:
            self.owner.connection_lost(self.conn_id, exc)

    def close_gracefully(self, linger: float = CLOSE_LINGER) -> asyncio.Future[None]:
        """Detach from the owner, half-close after what was written, drain the peer's data
        until it closes too (or ``linger`` seconds), then drop the connection.

        Why not ``close()``: it stops reading, so data the peer sends meanwhile stays unread,
        and closing a socket with unread data sends a RST that can destroy our NOTIFICATION
        in the peer's receive queue before the peer has read it."""
        self.owner = None  # from now on data_received() drops what arrives
        loop = asyncio.get_running_loop()
        if self.closed is None:
            self.closed = loop.create_future()
        transport = self.transport
        if transport is None or self.lost:
            if not self.closed.done():
                self.closed.set_result(None)
            return self.closed
        if transport.is_closing():
            return self.closed  # already closing: connection_lost() follows
        self._linger = loop.call_later(linger, transport.abort)
        if transport.can_write_eof():
            transport.write_eof()  # FIN once the buffered data (the NOTIFICATION) is out
        else:
            transport.close()
        return self.closed

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if self.owner is not None:
            self.owner.pump()

    @property
    def local_address(self) -> IPv4Address | None:
        """Our address on this connection (the NEXT_HOP we announce)."""
        if self.transport is None:
            return None
        name = self.transport.get_extra_info("sockname")
        return IPv4Address(name[0]) if name else None


EventHandler = Callable[["PeerTransport", Event], None]


class PeerTransport:
    """Owns a peer's session, its connections and its timer."""

    def __init__(self, config: SessionConfig, on_event: EventHandler) -> None:
        self.config = config
        self.session = PeerSession(config)
        self._on_event = on_event
        self._loop = asyncio.get_running_loop()
        self.connections: dict[int, BgpConnection] = {}
        self._connecting: dict[int, asyncio.Task[None]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._pumping = False
        self._again = False
        self.closed = False
        self._closing: set[BgpConnection] = set()  # closed by the session, still draining

    @property
    def now(self) -> float:
        """The session's clock: the event loop's monotonic time."""
        return self._loop.time()

    # -- inputs ----------------------------------------------------------------------------

    def start(self) -> None:
        """Begin: dial or listen as configured."""
        self.session.start(self.now)
        self.pump()

    def accept(self, connection: BgpConnection) -> None:
        """An incoming TCP connection from this peer was accepted by the listener."""
        conn_id = self.session.next_conn_id()
        connection.owner = self
        connection.conn_id = conn_id
        self.connections[conn_id] = connection
        self.session.connection_made(conn_id, self.now, outgoing=False)
        self.pump()

    def outgoing_made(self, connection: BgpConnection) -> None:
        """Our TCP connection to the peer is up."""
        self._connecting.pop(connection.conn_id, None)
        self.connections[connection.conn_id] = connection
        self.session.connection_made(connection.conn_id, self.now, outgoing=True)
        self.pump()

    def data_received(self, conn_id: int, data: bytes) -> None:
        self.session.receive_data(conn_id, data, self.now)
        self.pump()

    def connection_lost(self, conn_id: int, exc: Exception | None) -> None:
        if self.connections.pop(conn_id, None) is None:
            return
        reason = str(exc) if exc else "connection closed by peer"
        self.session.connection_lost(conn_id, self.now, reason)
        self.pump()

    def _timer_fired(self) -> None:
        self._timer = None
        self.session.handle_timer(self.now)
        self.pump()

    # -- outputs ---------------------------------------------------------------------------

    def pump(self) -> None:
        """Drain events, carry out actions, write data, re-arm the timer (re-entrant safe)."""
        if self._pumping:
            self._again = True
            return
        self._pumping = True
        try:
            while True:
                self._again = False
                self._drain_events()
                self._write()
                if not self._again:
                    break
        finally:
            self._pumping = False
        self._arm_timer()

    def _drain_events(self) -> None:
        while (event := self.session.next_event()) is not None:
            if isinstance(event, ConnectRequest):
                self._connect(event)
            elif isinstance(event, CloseConnection):
                self._close(event.conn_id)
            self._on_event(self, event)

    def _write(self) -> None:
        for conn_id in self.session.pending_connections():
            conn = self.connections.get(conn_id)
            if conn is None or conn.transport is None or conn.transport.is_closing():
                continue
            if conn.paused:
                # The socket is backed up; resume_writing() pumps again, and then the
                # session hands out its KEEPALIVE/NOTIFICATION before any further UPDATE.
                continue
            data = self.session.data_to_send(conn_id, WRITE_CHUNK)
            if data:
                conn.transport.write(data)
                self._again = True

    def _arm_timer(self) -> None:
        deadline = self.session.get_timer()
        if self._timer is not None:
            if deadline is not None and abs(self._timer.when() - deadline) < 1e-6:
                return
            self._timer.cancel()
            self._timer = None
        if deadline is not None and not self.closed:
            self._timer = self._loop.call_at(deadline, self._timer_fired)

    def _connect(self, request: ConnectRequest) -> None:
        task = self._loop.create_task(self._dial(request))
        self._connecting[request.conn_id] = task

    async def _dial(self, request: ConnectRequest) -> None:
        conn_id = request.conn_id
        local = (str(request.source_address), 0) if request.source_address else None
        try:
            _, protocol = await asyncio.wait_for(
                self._loop.create_connection(
                    lambda: BgpConnection(self, conn_id, outgoing=True),
                    str(request.address),
                    request.port,
                    local_addr=local,
                ),
                timeout=max(self.config.connect_retry, 1.0),
            )
        except (OSError, TimeoutError) as exc:
            self._connecting.pop(conn_id, None)
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self.session.connection_failed(conn_id, self.now, reason or type(exc).__name__)
            self.pump()
            return
        except asyncio.CancelledError:
            self._connecting.pop(conn_id, None)
            raise
        if self.closed or conn_id not in self.connections:
            # the session gave up on this attempt meanwhile (collision, stop)
            assert isinstance(protocol, BgpConnection)
            protocol.owner = None
            if protocol.transport is not None:
                protocol.transport.close()

    def _close(self, conn_id: int) -> None:
        task = self._connecting.pop(conn_id, None)
        if task is not None:
            task.cancel()
        conn = self.connections.pop(conn_id, None)
        if conn is None or conn.transport is None:
            return
        data = self.session.data_to_send(conn_id)
        if data and not conn.transport.is_closing():
            conn.transport.write(data)  # the NOTIFICATION, if one was sent
        done = conn.close_gracefully(CLOSE_LINGER)  # the module's value, read now
        if not done.done():
            self._closing.add(conn)
            done.add_done_callback(lambda _: self._closing.discard(conn))

    async def wait_closed(self) -> None:
        """Until every connection the session closed has finished closing (each is bounded
        by :data:`CLOSE_LINGER`): lets a NOTIFICATION reach the peer before process exit."""
        waiting = [c.closed for c in self._closing if c.closed is not None]
        if waiting:
            await asyncio.gather(*waiting, return_exceptions=True)

    def abort(self) -> None:
        """Drop every connection and the timer without a word (process exit).

        Connections the session already closed keep draining (see :meth:`wait_closed`)."""
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for task in self._connecting.values():
            task.cancel()
        self._connecting.clear()
        for conn in self.connections.values():
            conn.owner = None
            if conn.transport is not None:
                conn.transport.abort()
        self.connections.clear()

    def local_address(self, conn_id: int) -> IPv4Address | None:
        """Our address on a connection, if it is open."""
        conn = self.connections.get(conn_id)
        return conn.local_address if conn is not None else None
