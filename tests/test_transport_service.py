"""Socket reads are serviced once per event-loop iteration, not once per read.

A service of the core looks at every peer's output and timers, so a service after each read
made bringing up N peers cost O(N^2) (integration/bench/mesh.py, docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio

import pytest

from speaker.config import parse_config
from speaker.connection import BgpConnection
from speaker.events import Event
from tests.corenet import live_transport

CONFIG = """
router_id = "192.0.2.1"
asn = 64512
listen = "127.0.0.1"
port = 1179
control_socket = "/nonexistent/speaker.ctl"

[[peer]]
address = "192.0.2.2"
passive = true

[[peer]]
address = "192.0.2.3"
passive = true
"""


def test_reads_in_one_iteration_make_one_service(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> tuple[int, int, int]:
        events: list[Event] = []
        transport = live_transport(parse_config(CONFIG), events)
        core = transport.core
        received: list[tuple[str, int, bytes]] = []
        monkeypatch.setattr(core, "receive_data", lambda p, c, d, now: received.append((p, c, d)))
        services = 0
        real_service = transport.service

        def counting_service() -> None:
            nonlocal services
            services += 1
            real_service()

        monkeypatch.setattr(transport, "service", counting_service)
        names = [p.name for p in core.config.peers]
        conns = [BgpConnection(transport, (name, 1)) for name in names]
        for i in range(10):  # ten reads from two peers, as one select() would hand them over
            transport.data_received(conns[i % 2], b"x")
        during = services
        await asyncio.sleep(0)  # the loop's next iteration
        await asyncio.sleep(0)
        return during, services, len(received)

    during, after, reads = asyncio.run(scenario())
    assert reads == 10  # every read reached the core at once
    assert during == 0  # no service per read
    assert after == 1  # one service for all of them
