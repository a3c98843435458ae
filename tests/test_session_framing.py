"""Framing: however the peer's bytes are cut into reads, the session sees the same messages.

A read that arrives with nothing buffered is framed straight out of the bytes received (one
UPDATE per segment is the common case of a per-prefix feed); one that arrives after a partial
message goes through the connection's buffer.  Both must give the same events, and a bad
header must get the same NOTIFICATION either way.
"""

from __future__ import annotations

import random
from functools import cache

import pytest

from integration.bench.replay import CONFIG, sender_stream
from speaker.config import parse_config
from speaker.core.peers import session_config
from speaker.events import Event
from speaker.session import PeerSession, UpdateReceived
from speaker.session.connection import Connection

MESSAGES = 400  # the OPEN, KEEPALIVEs and a few hundred one-prefix UPDATEs


@cache
def _stream() -> bytes:
    return b"".join(sender_stream("distinct")[:MESSAGES])


def _session() -> tuple[PeerSession, int]:
    config = parse_config(CONFIG)
    session = PeerSession(session_config(config, config.peers[0], restarting=False))
    session.start(0.0)
    session.handle_timer(10.0)
    (conn,) = session.connections()
    session.connection_made(conn, 10.0, outgoing=True)
    return session, conn


def _feed(chunks: list[bytes] | list[bytearray]) -> tuple[list[str], PeerSession, int]:
    session, conn = _session()
    seen: list[str] = []
    for chunk in chunks:
        session.receive_data(conn, chunk, 11.0)
        while (event := session.next_event()) is not None:
            seen.append(_key(event))
    return seen, session, conn


def _key(event: Event) -> str:
    if isinstance(event, UpdateReceived):
        return repr((event.update, event.update.errors))
    return repr(event)


def _cut(data: bytes, sizes: list[int]) -> list[bytes]:
    out, i = [], 0
    for size in sizes:
        out.append(data[i : i + size])
        i += size
    return out


def _count_framed_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of the reads framed in place (``PeerSession._process_received``), as they come."""
    fresh = PeerSession._process_received
    calls: list[int] = []

    def spy(self: PeerSession, conn: Connection, now: float, data: bytes) -> None:
        calls.append(len(data))
        fresh(self, conn, now, data)

    monkeypatch.setattr(PeerSession, "_process_received", spy)
    return calls


def test_every_cut_of_the_stream_gives_the_same_events(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _stream()
    reference, _, _ = _feed([bytearray(data)])  # buffered path: one read of everything
    assert sum(k.startswith("(Update(") for k in reference) > 300
    calls = _count_framed_reads(monkeypatch)
    as_captured, _, _ = _feed(sender_stream("distinct")[:MESSAGES])
    assert as_captured == reference
    assert len(calls) == MESSAGES  # every captured segment starts a message: framed in place
    rng = random.Random(12)
    for top in (1, 7, 19, 23, 64, 500, 5000):
        sizes = [rng.randint(1, top) for _ in range(len(data))]
        assert _feed(_cut(data, sizes))[0] == reference, top
    # every cut point in the first messages, as one read then the rest
    for at in range(1, 300):
        assert _feed([data[:at], data[at:]])[0] == reference, at


def _bad_marker_after_one_update(data: bytes) -> tuple[bytes, bytes]:
    """The handshake, then (one good UPDATE + a message with a broken marker)."""
    i = 0
    while data[i + 18] != 2:  # to the first UPDATE
        i += (data[i + 16] << 8) | data[i + 17]
    length = (data[i + 16] << 8) | data[i + 17]
    update = data[i : i + length]
    broken = b"\xfe" + update[1:]
    return data[:i], update + broken


def test_a_bad_header_inside_a_read_gets_the_same_notification() -> None:
    head, tail = _bad_marker_after_one_update(_stream())
    fresh, s1, c1 = _feed([head, tail])  # framed out of the read
    buffered, s2, c2 = _feed([bytearray(head), bytearray(tail)])
    assert fresh == buffered
    closes = [k for k in fresh if k.startswith("CloseConnection(")]
    assert len(closes) == 1
    assert s1.last_error == s2.last_error == "BGP Error: Connection not synchronized"
    assert s1.data_to_send(c1) == s2.data_to_send(c2)
    assert s1.state == s2.state


def test_reads_of_8_kib_are_framed_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    """The daemon's reads cut messages anywhere; the read that completes a buffered message
    frames the rest of itself in place too."""
    data = _stream()
    reference, _, _ = _feed([bytearray(data)])
    calls = _count_framed_reads(monkeypatch)
    reads = _cut(data, [8192] * (len(data) // 8192 + 1))
    assert _feed(reads)[0] == reference
    assert len(calls) == len(reads) > 2


def test_bytes_on_a_connection_not_connected_yet_are_refused() -> None:
    """A transport bug, not the peer's: data for an attempt still in Connect is refused."""
    from speaker.wire.errors import LocalProtocolError

    config = parse_config(CONFIG)
    session = PeerSession(session_config(config, config.peers[0], restarting=False))
    session.start(0.0)
    session.handle_timer(10.0)
    (conn,) = session.connections()  # dialled, not connected
    with pytest.raises(LocalProtocolError, match="not connected yet"):
        session.receive_data(conn, _stream()[:19], 11.0)


def test_take_from_empty_queues_is_empty_bytes_and_queued_messages_come_in_order() -> None:
    from speaker.session.state import State

    conn = Connection(1, True, State.ESTABLISHED, 0.0)
    assert type(conn.take(None)) is bytes and conn.take(10) == b""  # nothing queued
    conn.routes.extend((b"r1", b"r2"))
    conn.control.append(b"c")
    assert conn.take(3) == b"cr1" and conn.take(None) == b"r2" and conn.take(None) == b""
