"""The daemon's side of the datastore: wait for the first Config, then feed every change.

:class:`DatastoreFeed` owns an :class:`~speaker.datastore.etcd.EtcdSource` and one task.  The
daemon awaits :meth:`DatastoreFeed.first` before it builds the speaker (router id and AS come
from the datastore, so nothing can start before), then :meth:`DatastoreFeed.start` with the
speaker's ``apply_config``: each later Config is handed to it as it arrives.  The feed decides
nothing about BGP: applying a Config (which peers to add, remove or restart) is the core's.

If the task fails unexpectedly (a bug, not etcd being away: the source handles that itself),
the traceback is logged at ERROR, ``feed_error`` says so on the control socket, and the task
starts again after a pause with a full re-read; meanwhile the last configuration stays in
force and sessions and routes are untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import TYPE_CHECKING

from speaker.config import Config
from speaker.control.views import DatastorePeerView, DatastoreView
from speaker.datastore.etcd import EtcdSource
from speaker.systemd import Notifier

if TYPE_CHECKING:
    from speaker.metrics import MetricsSink

__all__ = ["DatastoreFeed"]

log = logging.getLogger("speaker.datastore")


class DatastoreFeed:
    """This node's configurations from the datastore, handed to ``apply`` one by one."""

    def __init__(self, source: EtcdSource, *, restart_delay: float = 5.0) -> None:
        self.source = source
        self.restart_delay = restart_delay
        self.applied: Config | None = None
        """The configuration in force (the last one ``apply`` accepted)."""
        self.applied_revision = 0
        self.feed_error = ""
        self.failures = 0
        self._stream: AsyncIterator[Config] = source.configs()
        self._task: asyncio.Task[None] | None = None

    @property
    def description(self) -> str:
        s = self.source.settings
        return f"{s.type} {', '.join(s.endpoints)} (node {s.node_name})"

    async def first(self) -> Config:
        """The first derived Config; waits (the source retrying with backoff) until etcd can
        be read and holds this node."""
        log.info("waiting for this node's configuration from the datastore %s: router id, AS, "
                 "peers and blocks come from there, so BGP starts once it has been read "
                 "(retrying with backoff while etcd cannot be reached)", self.description)
        config = await anext(self._stream)
        self.applied = config
        self.applied_revision = self.source.status.revision
        log.info("datastore: configuration read at revision %d: router id %s, AS %d, IPv6 "
                 "address %s, %d peers, %d blocks", self.applied_revision, config.router_id,
                 config.asn, config.address6 or "none", len(config.peers),
                 len(config.originate.blocks))
        return config

    def start(self, apply: Callable[[Config], bool]) -> None:
        """Feed every later Config to ``apply`` (True: applied; False: refused)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._follow(apply),
                                                                name="datastore-feed")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(Exception):
            await self._close_stream()

    async def _close_stream(self) -> None:
        aclose = getattr(self._stream, "aclose", None)
        if aclose is not None:
            await aclose()

    async def _follow(self, apply: Callable[[Config], bool]) -> None:
        while True:
            try:
                async for config in self._stream:
                    self.apply(apply, config)
            except Exception as exc:
                self.failures += 1
                self.feed_error = (f"{type(exc).__name__}: {exc} (failure {self.failures}; "
                                   f"the last configuration stays in force)")
                log.error("datastore: the task feeding configurations to the speaker failed; "
                          "running on with the last configuration (revision %d), reading the "
                          "datastore again in %g s", self.applied_revision,
                          self.restart_delay, exc_info=True)
            else:  # pragma: no cover - the source's stream never ends
                log.error("datastore: the configuration stream ended; reading again")
            with contextlib.suppress(Exception):
                await self._close_stream()
            await asyncio.sleep(self.restart_delay)
            self.source.last = None  # re-yield what the re-read derives, applied or not
            self._stream = self.source.configs()

    def apply(self, apply: Callable[[Config], bool], config: Config) -> bool:
        """Hand ``config`` to ``apply`` and record the outcome."""
        revision = self.source.status.revision
        if apply(config):
            self.applied = config
            self.applied_revision = revision
            self.feed_error = ""
            return True
        self.feed_error = (f"the configuration of revision {revision} was refused (see the "
                           f"log); the one of revision {self.applied_revision} stays")
        log.warning("datastore: %s", self.feed_error)
        return False

    def retemplate(self, template: Config) -> Config | None:
        """SIGHUP: the file's local settings again; the current snapshot derived with them
        (None when it derives nothing)."""
        if template.datastore != self.source.settings:
            log.warning("datastore: the [datastore] settings in %s changed; the running "
                        "speaker keeps reading %s (restart it to use the new ones)",
                        template.source, self.description)
        self.source.template = template
        config = self.source.derive().config
        if config is not None:
            self.source.last = config
        return config

    def reload(self, new: Config, apply: Callable[[Config], bool]) -> str | None:
        """SIGHUP with a datastore: the file is the template (local settings); derive again
        and apply.  Returns why the reload was refused, or None."""
        if new.datastore is None:
            return "[datastore] was removed; restart the speaker to run from the file alone"
        derived = self.retemplate(new)
        if derived is None:
            return "the datastore derives no configuration for this node (see show datastore)"
        self.apply(apply, derived)
        return None

    def view(self) -> DatastoreView:
        """``show datastore``: the source's status and the configuration in force."""
        st = self.source.status
        settings = self.source.settings
        config = self.applied
        return DatastoreView(
            type=settings.type, endpoint=st.endpoint, node_name=settings.node_name,
            connected=st.connected, revision=st.revision, last_error=st.last_error,
            last_change=datetime.fromtimestamp(st.last_change) if st.last_change else None,
            reads=st.reads, keys=len(self.source.snapshot), problems=st.problems,
            router_id=None if config is None else config.router_id,
            asn=0 if config is None else config.asn,
            address6=None if config is None else config.address6,
            peers=() if config is None else tuple(
                DatastorePeerView(p.name, p.address, p.asn, p.passive) for p in config.peers),
            blocks=() if config is None else tuple(config.originate.blocks),
            pools=() if config is None else tuple(config.pools.cidrs),
            applied_revision=self.applied_revision, feed_error=self.feed_error,
        )


async def first_config(
    config: Config, notifier: Notifier, metrics: MetricsSink | None
) -> tuple[Config, DatastoreFeed] | None:
    """With ``[datastore]``: the feed and this node's first derived configuration, waited for
    (retrying while etcd cannot be reached); None if SIGTERM/SIGINT came meanwhile."""
    assert config.datastore is not None
    source = EtcdSource(config.datastore, template=config)
    feed = DatastoreFeed(source)
    if metrics is not None:
        metrics.watch_datastore(lambda: source.status.connected, lambda: source.status.revision)
    notifier.status(f"waiting for the datastore {feed.description}")
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        return await feed.first(), feed
    except asyncio.CancelledError:
        log.info("stopped while waiting for the datastore")
        await feed.close()
        return None
