"""The daemon's datastore feed: first Config, live changes, a failing apply, SIGHUP's
re-template, and ``show datastore`` / the status line on the control socket."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from ipaddress import IPv4Address

import pytest

from speaker.config import Config, DatastoreConfig, KernelConfig
from speaker.control.commands import CommandExecutor
from speaker.control.protocol import ReplyCode
from speaker.control.static import StaticBackend
from speaker.datastore import resources as r
from speaker.datastore.etcd import EtcdSource
from speaker.datastore.feed import DatastoreFeed
from speaker.datastore.gateway import EtcdError, Event, WatchBatch

SETTINGS = DatastoreConfig(type="etcdv3", endpoints=("https://192.0.2.1:2379",),
                           node_name="node81")


class FakeGateway:
    """etcd in memory: range() reads the store, watch() yields what put()/delete() do."""

    endpoint = "https://192.0.2.1:2379"

    def __init__(self, store: dict[str, bytes]) -> None:
        self.store = dict(store)
        self.revision = 10
        self.down = False
        self.queue: asyncio.Queue[WatchBatch] = asyncio.Queue()

    async def range(self, start: str, end: str) -> tuple[int, dict[str, bytes]]:
        if self.down:
            raise EtcdError(f"{self.endpoint}: connection refused")
        return self.revision, dict(self.store)

    async def watch(self, start: str, end: str, start_revision: int
                    ) -> AsyncIterator[WatchBatch]:
        while True:
            yield await self.queue.get()

    def rotate(self) -> None:
        pass

    def put(self, key: str, value: bytes | None) -> None:
        self.revision += 1
        if value is None:
            self.store.pop(key, None)
        else:
            self.store[key] = value
        self.queue.put_nowait(WatchBatch(self.revision, (Event(key, value, self.revision),)))


def template(**kw: object) -> Config:
    return Config(source="speaker.toml", router_id=IPv4Address("0.0.0.0"), asn=0,
                  datastore=SETTINGS, **kw)  # type: ignore[arg-type]


def make_feed(store: dict[str, bytes] | None = None) -> tuple[DatastoreFeed, FakeGateway]:
    gateway = FakeGateway(r.seed_snapshot() if store is None else store)
    source = EtcdSource(SETTINGS, template(), gateway=gateway,  # type: ignore[arg-type]
                        backoff=(0.01, 0.02))
    return DatastoreFeed(source, restart_delay=0.01), gateway


async def until(check: object, timeout: float = 2.0) -> None:
    assert callable(check)
    for _ in range(int(timeout / 0.01)):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met")


async def test_first_config_then_every_change_is_applied() -> None:
    feed, gw = make_feed()
    first = await feed.first()
    assert str(first.router_id) == "192.168.0.81"
    assert [p.name for p in first.peers] == ["Mesh_192_168_0_80", "Mesh_192_168_0_82"]
    applied: list[Config] = []
    feed.start(lambda c: applied.append(c) or True)
    gw.put(*r.node("node83", "192.168.0.83"))
    await until(lambda: applied)
    assert [p.name for p in applied[-1].peers][-1] == "Mesh_192_168_0_83"
    assert feed.applied is applied[-1] and feed.applied_revision == gw.revision
    gw.put(r.node("node80", None)[0], None)
    await until(lambda: len(applied) == 2)
    assert "Mesh_192_168_0_80" not in [p.name for p in applied[-1].peers]
    await feed.close()


async def test_first_waits_while_etcd_is_away(caplog: pytest.LogCaptureFixture) -> None:
    feed, gw = make_feed()
    gw.down = True
    caplog.set_level(logging.INFO, "speaker.datastore")
    waiting = asyncio.ensure_future(feed.first())
    await asyncio.sleep(0.1)
    assert not waiting.done() and not feed.source.status.connected
    assert "waiting for this node's configuration from the datastore" in caplog.text
    assert "connection refused; keeping the last configuration, retrying" in caplog.text
    gw.down = False
    config = await asyncio.wait_for(waiting, 2.0)
    assert str(config.router_id) == "192.168.0.81"
    await feed.close()


async def test_a_failing_apply_is_logged_with_its_traceback_and_the_feed_goes_on(
        caplog: pytest.LogCaptureFixture) -> None:
    feed, gw = make_feed()
    await feed.first()
    calls: list[Config] = []

    def apply(config: Config) -> bool:
        calls.append(config)
        if len(calls) == 1:
            raise ValueError("a bug in apply")
        return True

    feed.start(apply)
    gw.put(*r.node("node83", "192.168.0.83"))
    await until(lambda: len(calls) >= 2)  # restarted: re-read, the same config again
    errors = [rec for rec in caplog.records if rec.levelno == logging.ERROR]
    assert errors and "the task feeding configurations to the speaker failed" in errors[0].message
    assert errors[0].exc_info is not None  # the traceback is in the log
    assert "ValueError: a bug in apply" in caplog.text
    assert calls[1].peers == calls[0].peers
    assert feed.applied is calls[1] and feed.feed_error == ""
    assert feed.failures == 1
    await feed.close()


async def test_a_refused_config_is_reported_and_the_last_stays() -> None:
    feed, gw = make_feed()
    first = await feed.first()
    feed.start(lambda c: False)
    gw.put(*r.node("node81", "192.168.0.81", asn=65000))
    await until(lambda: feed.feed_error != "")
    assert "was refused" in feed.feed_error and feed.applied is first
    await feed.close()


async def test_retemplate_rederives_with_the_files_local_settings() -> None:
    feed, _ = make_feed()
    await feed.first()
    new = template(kernel=KernelConfig(protocol=187))
    derived = feed.retemplate(new)
    assert derived is not None and derived.kernel.protocol == 187
    assert str(derived.router_id) == "192.168.0.81" and len(derived.peers) == 2
    await feed.close()


async def test_show_datastore_and_its_json() -> None:
    feed, gw = make_feed()
    await feed.first()
    view = feed.view()
    assert view.connected and view.revision == 10 and view.keys == len(gw.store)
    assert view.summary == "Datastore: etcdv3 https://192.0.2.1:2379, connected, revision 10"
    executor = CommandExecutor(StaticBackend([], datastore=view))
    lines = await executor.run_line("show datastore")
    text = [line.text for line in lines]
    assert lines[0].code == ReplyCode.DATASTORE
    assert text[0] == "Datastore: etcdv3 https://192.0.2.1:2379, node node81, connected"
    assert "Derived: router id 192.168.0.81, AS 64512" in text
    assert "  blocks: 10.244.42.64/26" in text
    assert any(t.split()[:2] == ["Mesh_192_168_0_82", "192.168.0.82"] and t.endswith("passive")
               for t in text)
    json_lines = await executor.run_line("json show datastore")
    assert json_lines[0].code == ReplyCode.JSON and '"revision":10' in json_lines[0].text
    none = await CommandExecutor(StaticBackend([])).run_line("show datastore")
    assert none[-1].code == ReplyCode.COMMAND_FAILED and "no datastore" in none[-1].text
    await feed.close()
