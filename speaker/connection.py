"""One TCP connection of a BGP session, as asyncio sees it (the listener's or a dial's).

It forwards what happens to its owner, :class:`speaker.transport.SessionTransport`, and owns
the connection-level mechanics: reads handed over in slices (:data:`READ_SLICE`), the send
backlog the send hold timer watches, our local address, and the graceful close.

A connection the session closes is not simply closed: its last data (the NOTIFICATION) is
written, then it is half-closed (FIN after that data) and whatever the peer still sends is read
and dropped until the peer closes too or :data:`CLOSE_LINGER` passes.  Closing a socket whose
receive queue holds unread data, or that receives data after the close, makes the kernel send
a RST, and a RST makes the peer's kernel discard what its application has not read yet: our
NOTIFICATION.  BIRD likewise keeps a connection open until its NOTIFICATION has gone.
"""

from __future__ import annotations

import asyncio
import fcntl
import socket
import struct
import termios
from collections.abc import Callable, Iterable
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Protocol

Key = tuple[str, int]
"""(peer name, connection id)."""


class ConnectionOwner(Protocol):
    """What a connection reports to (the transport; a stand-in in tests)."""

    @property
    def reading_paused(self) -> bool: ...

    def connection_made(self, conn: BgpConnection) -> None: ...

    def data_received(self, conn: BgpConnection, data: bytes) -> None: ...

    def connection_lost(self, conn: BgpConnection, exc: Exception | None) -> None: ...

    def service(self) -> None: ...

READ_SLICE = 4096
"""Octets of received data handed to the core per event-loop turn.  One socket read can hold
256 KiB: 90 packed UPDATEs, 27,000 routes, close to a second of work in one callback, during
which no KEEPALIVE, timer or control query runs.  Larger reads are fed a slice per turn, with
reading paused until the last slice is in (BIRD likewise bounds the work of one rx event).
4 KiB (about 1,200 packed routes, 5-15 ms): with 8 KiB the slowest control answer during a
100,000-route feed was 57-63 ms, with 4 KiB 32-34 ms, at the same kernel-full time."""

CLOSE_LINGER = 2.0
"""Seconds a closed connection keeps draining the peer's data after our half-close, waiting
for the peer's own close, before it is dropped (bounds what a silent peer can hold)."""


class BgpConnection(asyncio.Protocol):
    """One TCP connection; forwards everything to its :class:`SessionTransport`."""

    def __init__(
        self, owner: ConnectionOwner | None, key: Key = ("", -1), *, outgoing: bool = False
    ) -> None:
        self.owner = owner
        self.key = key
        self.outgoing = outgoing
        self.transport: asyncio.Transport | None = None
        self.paused = False
        self.closed: asyncio.Future[None] | None = None  # set by close_gracefully()
        self.lost = False
        self._linger: asyncio.TimerHandle | None = None
        self._unread = bytearray()  # received, not yet given to the core (READ_SLICE)
        self._slicing: asyncio.Handle | None = None
        self.held = False  # slices left, held by back-pressure (ReadThrottle)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # BGP messages are small and latency matters more than packet count.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.owner is not None:
            # Tell the core now: the peer's OPEN may arrive in the very next callback,
            # before create_connection() returns to the dialling task.
            self.owner.connection_made(self)

    def data_received(self, data: bytes) -> None:
        if self.owner is None:
            return
        if self._unread or len(data) > READ_SLICE:
            self._unread += data
            if self._slicing is None and not self.held:
                if self.transport is not None:
                    self.transport.pause_reading()
                self._next_slice()
            return
        self.owner.data_received(self, data)

    def _next_slice(self) -> None:
        """Give the core one READ_SLICE of the backlog; the rest on the next loop turn."""
        self._slicing = None
        owner = self.owner
        if owner is None:
            self._unread.clear()
            return
        chunk = bytes(self._unread[:READ_SLICE])
        del self._unread[:READ_SLICE]
        owner.data_received(self, chunk)
        if self._unread:
            if owner.reading_paused:
                # back-pressure: the rest of the read waits too (a 256 KiB read is 27,000
                # packed routes: slicing on took the kernel's backlog 50% over the high
                # mark); the throttle calls resume_slicing() when the backlog is down
                self.held = True
            else:
                self._slicing = asyncio.get_running_loop().call_soon(self._next_slice)
        elif self.transport is not None and not self.lost and not owner.reading_paused:
            self.transport.resume_reading()  # (back-pressure resumes it later otherwise)

    def resume_slicing(self) -> None:
        """Back-pressure is off: hand over the rest of a read held by it (see _next_slice)."""
        if self.held:
            self.held = False
            if self._slicing is None and not self.lost:
                self._slicing = asyncio.get_running_loop().call_soon(self._next_slice)

    @property
    def slicing(self) -> bool:
        """True while a large read is still being handed to the core slice by slice (or
        waits for back-pressure to end)."""
        return self._slicing is not None or self.held

    def _drain_backlog(self) -> None:
        """Everything still held, at once (the connection is going: keep the order)."""
        self.held = False
        if self._slicing is not None:
            self._slicing.cancel()
            self._slicing = None
        data, self._unread = bytes(self._unread), bytearray()
        if data and self.owner is not None:
            self.owner.data_received(self, data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._drain_backlog()
        self.lost = True
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        if self.closed is not None and not self.closed.done():
            self.closed.set_result(None)
        if self.owner is not None:
            self.owner.connection_lost(self, exc)

    def close_gracefully(self, linger: float = CLOSE_LINGER) -> asyncio.Future[None]:
        """Detach from the owner, half-close after what was written, drain the peer's data
        until it closes too (or ``linger`` seconds), then drop the connection.

        Why not ``close()``: it stops reading, so data the peer sends meanwhile stays unread,
        and closing a socket with unread data sends a RST that can destroy our NOTIFICATION
        in the peer's receive queue before the peer has read it."""
        self.owner = None  # from now on data_received() drops what arrives
        self._unread.clear()
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
            self.owner.service()

    def backlog(self) -> int:
        """Octets written and not yet sent: the transport's buffer plus the socket's send
        queue (``SIOCOUTQ``: unsent and unacknowledged).  A peer that stops reading closes
        its TCP window, and this stops shrinking (RFC 9687)."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return 0
        octets = transport.get_write_buffer_size()
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                raw = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
                octets += struct.unpack("i", raw)[0]
            except OSError:
                pass
        return octets

    @property
    def local_address(self) -> IPv4Address | IPv6Address | None:
        """Our address on this connection (the NEXT_HOP we announce)."""
        if self.transport is None:
            return None
        name = self.transport.get_extra_info("sockname")
        return ip_address(name[0]) if name else None


READ_PAUSE_HIGH = 8_000
"""Kernel writes queued above which we stop reading from peers (back-pressure)."""
READ_PAUSE_LOW = 2_000
"""... and below which we read again."""
READ_PAUSE_POLL = 0.02
"""Seconds between looks at the backlog while reading is paused."""


class ReadThrottle:
    """Back-pressure: a peer can send UPDATEs faster than the kernel takes the routes.

    Decoding and the RIB keep up (they run in ``data_received``), so what would grow is the
    kernel writer's queue.  When ``backlog()`` passes :data:`READ_PAUSE_HIGH` every connection
    stops reading (``pause_reading``: the socket's receive window fills and TCP slows the
    sender down, as BIRD's event loop does by not polling the socket) until the backlog is
    under :data:`READ_PAUSE_LOW`.  The backlog drains at tens of thousands of routes a second,
    so a pause is far shorter than any hold time."""

    def __init__(
        self, backlog: Callable[[], int] | None, connections: Callable[[], Iterable[BgpConnection]]
    ) -> None:
        self._backlog = backlog
        self._connections = connections
        self.paused = False
        self.pauses = 0
        """How many times reading was paused (for tests and ``show``)."""
        self.stopped = False

    def check(self) -> None:
        """After a read: pause every connection if the backlog is over the high mark."""
        if self._backlog is None or self.paused or self._backlog() <= READ_PAUSE_HIGH:
            return
        self.paused = True
        self.pauses += 1
        for conn in self._connections():
            if conn.transport is not None and conn.transport.is_reading():
                conn.transport.pause_reading()
        asyncio.get_running_loop().call_later(READ_PAUSE_POLL, self._maybe_resume)

    def hold(self, conn: BgpConnection) -> None:
        """A new connection while paused does not read either."""
        if self.paused and conn.transport is not None:
            conn.transport.pause_reading()

    def _maybe_resume(self) -> None:
        if self.stopped:
            return
        assert self._backlog is not None
        if self._backlog() > READ_PAUSE_LOW:
            asyncio.get_running_loop().call_later(READ_PAUSE_POLL, self._maybe_resume)
            return
        self.paused = False
        for conn in self._connections():
            transport = conn.transport
            if conn.held:
                conn.resume_slicing()  # its read's last slice resumes reading
            elif transport is not None and not transport.is_closing() and not conn.slicing:
                transport.resume_reading()  # a connection still slicing resumes itself
