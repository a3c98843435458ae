"""The asyncio side of the sessions: sockets and one timer around the :class:`SpeakerCore`.

Like aioquic's protocol adapter, this module only moves bytes and time: every socket event and
the timer become a core input; then :meth:`SessionTransport.service` carries out the core's
actions (dial, close, forget), writes what the core wants sent and re-arms the one timer.  The
core calls :meth:`SessionTransport.wake` when output waits outside a socket event (a command,
a kernel input, UPDATEs due to be flushed); the flush of the peers' Adj-RIB-Out runs once per
loop iteration.  KEEPALIVE/NOTIFICATION are written before UPDATEs and UPDATEs only while the
socket is not backed up, so a long feed never delays a KEEPALIVE by more than one buffer.
The connections themselves are :class:`speaker.connection.BgpConnection`.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

from speaker.config import PeerConfig
from speaker.connection import CLOSE_LINGER, BgpConnection, Key, ReadThrottle
from speaker.core import Close, Dial, Forget, SpeakerCore
from speaker.tcp_security import MD5_SILENT, SignedAttempt, secure_socket, set_ttl_security

WRITE_CHUNK = 65536
"""Octets of UPDATEs handed to a transport at a time (the transport's high-water mark)."""


class SessionTransport:
    """Owns every peer connection and the core's one timer (reading throttled by the kernel
    writer's backlog: :class:`speaker.connection.ReadThrottle`)."""

    def __init__(self, core: SpeakerCore, backlog: Callable[[], int] | None = None) -> None:
        self.core = core
        self._loop = asyncio.get_running_loop()
        self.throttle = ReadThrottle(backlog, lambda: self.connections.values())
        self.connections: dict[Key, BgpConnection] = {}
        self._connecting: dict[Key, asyncio.Task[None]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._servicing = False
        self._again = False
        self._woken = False
        self.closed = False
        self._closing: set[BgpConnection] = set()  # closed by the session, still draining

    @property
    def now(self) -> float:
        """The core's clock: the event loop's monotonic time."""
        return self._loop.time()

    def incoming(self) -> BgpConnection:
        """Protocol factory of the port-179 listener."""
        return BgpConnection(self)

    def wake(self) -> None:
        """The core has output outside a socket event: service it on the next iteration."""
        if not self._woken and not self.closed:
            self._woken = True
            self._loop.call_soon(self._woken_service)

    # -- inputs ----------------------------------------------------------------------------

    def connection_made(self, conn: BgpConnection) -> None:
        assert conn.transport is not None
        if conn.outgoing:
            self._connecting.pop(conn.key, None)
        else:  # accepted by the listener: match it to a peer, or refuse it
            peer = conn.transport.get_extra_info("peername")
            address, port = (peer[0], peer[1]) if peer else ("?", 0)
            key = self.core.accept(address, port, self.now)
            if key is None:
                conn.owner = None
                conn.transport.abort()
                return
            conn.key = key
            peer = self._peer_config(key[0])
            sock = conn.transport.get_extra_info("socket")
            if peer is not None and peer.ttl_security and sock is not None:
                set_ttl_security(sock)  # GTSM from the next segment on (RFC 5082 3)
        self.connections[conn.key] = conn
        self.throttle.hold(conn)
        peer_name, conn_id = conn.key
        self.core.connection_made(
            peer_name, conn_id, self.now, outgoing=conn.outgoing, local_address=conn.local_address
        )
        self.wake()

    def data_received(self, conn: BgpConnection, data: bytes) -> None:
        # Serviced once after every socket that was ready in this loop iteration has been read:
        # a service looks at every peer's output and timers, so servicing after each read
        # cost O(peers) per message, O(peers^2) to bring a mesh up.
        self.core.receive_data(*conn.key, data, self.now)
        self.wake()
        self.throttle.check()

    @property
    def reading_paused(self) -> bool:
        return self.throttle.paused

    def connection_lost(self, conn: BgpConnection, exc: Exception | None) -> None:
        if self.connections.pop(conn.key, None) is None:
            return
        reason = str(exc) if exc else "connection closed by peer"
        self.core.connection_lost(*conn.key, self.now, reason)
        self.service()

    def _timer_fired(self) -> None:
        self._timer = None
        now = self.now
        if self.core.get_timer() is not None:
            # the send hold timer (RFC 9687) judges by what actually left: tell it first
            for key, conn in list(self.connections.items()):
                self.core.report_send_backlog(*key, conn.backlog(), now)
        self.core.handle_timer(now)
        self.service()

    def _woken_service(self) -> None:
        self._woken = False
        if self.closed:
            return
        if self.core.flush_due:
            self.core.flush()
        self.service()

    # -- outputs ---------------------------------------------------------------------------

    def service(self) -> None:
        """Carry out actions, write data, re-arm the timer (re-entrant safe)."""
        if self._servicing:
            self._again = True
            return
        self._servicing = True
        try:
            while True:
                self._again = False
                self._act()
                self._write()
                if not self._again:
                    break
        finally:
            self._servicing = False
        self._arm_timer()

    def _act(self) -> None:
        while (action := self.core.next_action()) is not None:
            if isinstance(action, Dial):
                key = (action.peer, action.conn_id)
                self._connecting[key] = self._loop.create_task(self._dial(action))
            elif isinstance(action, Close):
                self._close((action.peer, action.conn_id), action.data)
            elif isinstance(action, Forget):
                keys = {*self.connections, *self._connecting}
                for key in [k for k in keys if k[0] == action.peer]:
                    self._close(key)

    def _write(self) -> None:
        for key in self.core.pending_connections():
            conn = self.connections.get(key)
            if conn is None or conn.transport is None or conn.transport.is_closing():
                continue
            if conn.paused:
                # The socket is backed up; resume_writing() services again, and then the
                # session hands out its KEEPALIVE/NOTIFICATION before any further UPDATE.
                continue
            data = self.core.data_to_send(*key, WRITE_CHUNK)
            if data:
                conn.transport.write(data)
                self.core.report_send_backlog(*key, conn.backlog(), self.now)
                self._again = True

    def _arm_timer(self) -> None:
        deadline = self.core.get_timer()
        if self._timer is not None:
            if deadline is not None and abs(self._timer.when() - deadline) < 1e-6:
                return
            self._timer.cancel()
            self._timer = None
        if deadline is not None and not self.closed:
            self._timer = self._loop.call_at(deadline, self._timer_fired)

    def _peer_config(self, name: str) -> PeerConfig | None:
        try:
            return self.core.config.peer(name)
        except KeyError:
            return None

    async def _dial(self, action: Dial) -> None:
        key = (action.peer, action.conn_id)
        peer = self._peer_config(action.peer)
        sock: socket.socket | None = None
        signed: SignedAttempt | None = None
        try:
            # Our own socket, so that the MD5 key and GTSM are set before the SYN leaves.
            family = socket.AF_INET6 if action.address.version == 6 else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setblocking(False)
            if peer is not None:
                secure_socket(sock, peer)
                signed = SignedAttempt() if peer.password is not None else None
            if action.source_address is not None:
                sock.bind((str(action.source_address), 0))
            await asyncio.wait_for(
                self._loop.sock_connect(sock, (str(action.address), action.port)),
                timeout=action.timeout,
            )
            _, protocol = await self._loop.create_connection(
                lambda: BgpConnection(self, key, outgoing=True), sock=sock
            )
            sock = None  # the transport owns it now
        except (OSError, TimeoutError) as exc:
            if sock is not None:
                sock.close()
            self._connecting.pop(key, None)
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            why = None if signed is None else signed.why()
            reason = "; ".join(filter(None, (reason or type(exc).__name__, why)))
            self.core.connection_failed(*key, self.now, reason)
            self.service()
            return
        except asyncio.CancelledError:
            # the session gave up on this attempt (connect retry): if TCP MD5 dropped the
            # peer's answers meanwhile, say so, as BIRD's "Kernel MD5 auth failed"
            self._connecting.pop(key, None)
            if sock is not None:
                sock.close()
            if signed is not None:
                self.core.connection_note(key[0], signed.why() or MD5_SILENT)
            raise
        if self.closed or key not in self.connections:
            # the session gave up on this attempt meanwhile (collision, stop)
            assert isinstance(protocol, BgpConnection)
            protocol.owner = None
            if protocol.transport is not None:
                protocol.transport.close()

    def _close(self, key: Key, data: bytes = b"") -> None:
        task = self._connecting.pop(key, None)
        if task is not None:
            task.cancel()
        conn = self.connections.pop(key, None)
        if conn is None or conn.transport is None:
            return
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
        self.throttle.stopped = True
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
