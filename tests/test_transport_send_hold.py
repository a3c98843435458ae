"""RFC 9687 over real loopback TCP: a peer that stops reading is closed with NOTIFICATION 8/0.

The peer is a plain socket with a small receive buffer.  It completes the handshake, then
keeps sending KEEPALIVEs (so our hold timer is happy) but reads nothing more while we send it
a feed of a few thousand routes: its TCP window closes, our socket's send queue stops
shrinking (the transport reports it, ``BgpConnection.backlog``), and after ``send_hold_time``
the session sends 8/0 and closes.  The same peer reading normally keeps the session.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from ipaddress import IPv4Address, IPv4Network

from speaker.config import parse_config
from speaker.events import Event
from speaker.kernel.model import LearnedRoute
from speaker.session import SessionDown, SessionUp
from speaker.session.state import DownReason
from speaker.transport import SessionTransport
from speaker.wire.capabilities import FourOctetAsCapability, MultiprotocolCapability
from speaker.wire.context import DEFAULT_CONTEXT
from speaker.wire.enums import ErrorCode
from speaker.wire.messages import Keepalive, Open
from tests.corenet import live_transport

LOCAL = "127.0.0.1"
SEND_HOLD = 1.5
CONFIG = f"""
router_id = "192.0.2.1"
asn = 64512
listen = "{LOCAL}"
port = 1179
control_socket = "/nonexistent/speaker.ctl"
[pools]
cidrs = ["10.244.0.0/16"]
[[peer]]
address = "{LOCAL}"
passive = true
hold_time = 30
send_hold_time = {SEND_HOLD}
"""
OPEN = Open.build(
    64512,
    30,
    IPv4Address("192.0.2.2"),
    [MultiprotocolCapability(1, 1), FourOctetAsCapability(64512)],
).encode(DEFAULT_CONTEXT)
KEEPALIVE = Keepalive().encode(DEFAULT_CONTEXT)


def speaker(events: list[Event]) -> SessionTransport:
    return live_transport(parse_config(CONFIG), events)


async def messages(loop: asyncio.AbstractEventLoop, sock: socket.socket, n: int) -> None:
    """Read until ``n`` whole messages have arrived (our OPEN and KEEPALIVE)."""
    buf = b""
    count = 0
    while count < n:
        buf += await asyncio.wait_for(loop.sock_recv(sock, 4096), 5.0)
        while len(buf) >= 19 and len(buf) >= struct.unpack("!H", buf[16:18])[0]:
            buf = buf[struct.unpack("!H", buf[16:18])[0]:]
            count += 1


async def run(*, reads: bool, seconds: float) -> tuple[list[Event], float | None]:
    """One session against the peer; returns our events and when it went down after up."""
    loop = asyncio.get_running_loop()
    events: list[Event] = []
    transport = speaker(events)
    server = await loop.create_server(transport.incoming, LOCAL, 0)
    port = server.sockets[0].getsockname()[1]
    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        client.connect((LOCAL, port))
        client.setblocking(False)
        await loop.sock_sendall(client, OPEN + KEEPALIVE)
        await messages(loop, client, 2)
        for _ in range(200):
            if any(isinstance(e, SessionUp) for e in events):
                break
            await asyncio.sleep(0.01)
        up = loop.time()
        for i in range(5000):  # borrowed pod /32s in a pool: exported to the peer
            net = IPv4Network(f"10.244.{i // 250}.{i % 250}/32")
            transport.core.kernel_learned(
                LearnedRoute(net, (IPv4Address("192.0.2.9"),), "eth0", 4)
            )
        end = loop.time() + seconds
        while loop.time() < end:
            if any(isinstance(e, SessionDown) for e in events):
                break
            try:
                await loop.sock_sendall(client, KEEPALIVE)
            except OSError:
                break
            if reads:
                try:
                    while await asyncio.wait_for(loop.sock_recv(client, 65536), 0.05):
                        pass
                except (TimeoutError, OSError):
                    pass
            await asyncio.sleep(0.2)
        downs = [e for e in events if isinstance(e, SessionDown)]
        return events, (loop.time() - up if downs else None)
    finally:
        client.close()
        transport.abort()
        server.close()
        await server.wait_closed()


async def test_a_peer_that_stops_reading_is_closed_with_8_0() -> None:
    events, after = await run(reads=False, seconds=10)
    (down,) = [e for e in events if isinstance(e, SessionDown)]
    assert down.reason is DownReason.SEND_HOLD_TIMER_EXPIRED, down.describe()
    assert down.notification is not None and down.notification.code == (
        ErrorCode.SEND_HOLD_TIMER_EXPIRED
    )
    assert after is not None and SEND_HOLD <= after < SEND_HOLD + 4


async def test_a_peer_that_reads_keeps_the_session() -> None:
    events, after = await run(reads=True, seconds=3 * SEND_HOLD)
    assert after is None, [e.describe() for e in events if isinstance(e, SessionDown)]
