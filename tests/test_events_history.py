"""``show events`` and ``speaker watch``: the bounded per-peer history (speaker/history.py),
its commands on the control socket, and the streamed watch over a real Unix socket."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import pytest

from speaker.control.commands import (
    CommandError,
    ShowEvents,
    Watch,
    parse_command,
    parse_since,
)
from speaker.control.server import ControlServer
from speaker.control.static import StaticBackend
from speaker.control.views import EventView
from speaker.events import Event
from speaker.history import SPEAKER, EventHistory
from tests.test_control_server import NOW, ask, seed_node81, sock_dir  # noqa: F401


@dataclass(frozen=True, slots=True)
class PeerNote(Event):
    KIND: ClassVar[str] = "note"
    peer: str
    n: int

    def describe(self) -> str:
        return f"note {self.n}"


@dataclass(frozen=True, slots=True)
class Chatter(Event):
    KIND: ClassVar[str] = "chatter"
    LEVEL: ClassVar[int] = logging.DEBUG
    peer: str


@dataclass(frozen=True, slots=True)
class SpeakerNote(Event):
    KIND: ClassVar[str] = "speaker-note"
    what: str


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        self.t += 1
        return self.t


# --------------------------------------------------------------------------- the sink


def test_history_is_bounded_per_peer_and_ordered() -> None:
    history = EventHistory(per_peer=5, clock=Clock())
    for n in range(12):
        history(PeerNote("192.168.0.80", n))
        history(PeerNote("192.168.0.82", 100 + n))
    mine = history.entries(["192.168.0.80"])
    assert [e.fields["n"] for e in mine] == [7, 8, 9, 10, 11]  # the last five only
    both = history.entries()
    assert len(both) == 10 and [e.time for e in both] == sorted(e.time for e in both)


def test_history_keeps_notable_events_only_and_the_speakers_own() -> None:
    history = EventHistory(clock=Clock())
    history(Chatter("192.168.0.80"))  # DEBUG: what the log would not show either
    history(SpeakerNote("reloaded"))
    history(PeerNote("192.168.0.80", 1))
    assert [e.kind for e in history.entries()] == ["speaker-note", "note"]
    (own,) = history.entries([SPEAKER])
    assert own.text == "speaker-note: what=reloaded" and own.peer == SPEAKER


def test_since_and_watchers_and_the_bound_on_keys() -> None:
    history = EventHistory(max_peers=3, clock=Clock())
    seen: list[str] = []
    stop = history.watch(lambda e: seen.append(e.peer))
    for i in range(5):
        history(PeerNote(f"10.0.0.{i}", i))
    assert len(history.entries()) == 3  # new keys beyond max_peers are not remembered...
    assert seen == ["10.0.0.0", "10.0.0.1", "10.0.0.2"]
    stop()
    history(PeerNote("10.0.0.0", 9))
    assert len(seen) == 3  # ...and an unsubscribed watcher hears nothing
    t = history.entries(["10.0.0.0"])[-1].time
    assert [e.fields["n"] for e in history.entries(["10.0.0.0"], since=t)] == [9]


# --------------------------------------------------------------------------- commands


def test_show_events_and_watch_parse() -> None:
    assert parse_command("show events").command == ShowEvents(None, None)
    assert parse_command("show events Mesh_192_168_0_80 since 5m").command == ShowEvents(
        "Mesh_192_168_0_80", "5m"
    )
    assert parse_command("show events since 06:58").command == ShowEvents(None, "06:58")
    assert parse_command("watch").command == Watch(None)
    assert parse_command("json watch Mesh_192_168_0_82").json
    for bad in ("show events since", "show events since yesterday", "watch x since 5m"):
        with pytest.raises(CommandError, match=r"since|syntax"):
            parse_command(bad)


def test_parse_since_forms() -> None:
    now = datetime(2026, 12, 3, 7, 0, 0, tzinfo=UTC)
    assert parse_since("90s", now, UTC) == now - timedelta(seconds=90)
    assert parse_since("2h", now, UTC) == now - timedelta(hours=2)
    assert parse_since("06:58", now, UTC) == datetime(2026, 12, 3, 6, 58, tzinfo=UTC)
    assert parse_since("2026-12-02T23:00", now, UTC) == datetime(2026, 12, 2, 23, tzinfo=UTC)
    assert parse_since("soon", now, UTC) is None


def event(peer: str, text: str, minutes: int) -> EventView:
    return EventView(NOW - timedelta(minutes=minutes), peer, "state", "info", text, {})


@pytest.fixture
async def served_events(sock_dir: Path) -> AsyncIterator[tuple[Path, StaticBackend]]:  # noqa: F811
    backend = seed_node81()
    backend.emit(event("Mesh_192_168_0_80", "Active -> Connect: connect delay elapsed", 10))
    backend.emit(event("Mesh_192_168_0_82", "Connect -> OpenSent", 3))
    async with ControlServer(backend, sock_dir / "ctl", clock=lambda: NOW):
        yield sock_dir / "ctl", backend


async def test_show_events_over_the_socket(served_events: tuple[Path, StaticBackend]) -> None:
    path, _ = served_events
    everything, one, recent, unknown = await ask(
        path, "show events", "show events Mesh_192_168_0_80", "show events since 5m",
        "show events Mesh_9",
    )
    assert len(everything.texts()) == 2
    (line,) = one.texts()
    assert "Mesh_192_168_0_80" in line and "connect delay elapsed" in line
    assert [t for t in recent.texts() if "OpenSent" in t] and len(recent.texts()) == 1
    assert unknown.error == "No protocols match"


async def test_watch_streams_each_event_until_the_client_leaves(
    served_events: tuple[Path, StaticBackend],
) -> None:
    path, backend = served_events
    reader, writer = await asyncio.open_unix_connection(str(path))
    await reader.readuntil(b"ready.\n")
    writer.write(b"json watch Mesh_192_168_0_82\n")
    await writer.drain()
    assert b"Watching Mesh_192_168_0_82" in await asyncio.wait_for(reader.readline(), 5)
    assert backend.watchers == 1
    backend.emit(event("Mesh_192_168_0_80", "not for this watcher", 0))
    backend.emit(event("Mesh_192_168_0_82", "OpenSent -> OpenConfirm", 0))
    line = await asyncio.wait_for(reader.readline(), 5)
    assert line.startswith(b"1103-")
    doc = json.loads(line[5:])
    assert doc["peer"] == "Mesh_192_168_0_82" and doc["text"] == "OpenSent -> OpenConfirm"
    writer.close()
    await writer.wait_closed()
    for _ in range(100):  # the server notices and stops watching
        if backend.watchers == 0:
            break
        await asyncio.sleep(0.01)
    assert backend.watchers == 0
