"""Keep this node's Config current from Calico's etcd: read, watch, re-read, derive.

The loop: read every key of interest at one revision, derive (speaker.datastore.derive),
then watch from revision+1 applying each batch to the snapshot and deriving again; a new
Config is yielded only when it differs from the last one.  Any failure (etcd down, the
stream cut, a compacted start revision) means a full re-read after a backoff, so a change
made while we were away is never missed: the re-read sees the store as it is.  Until then
the last good Config stays in force (nothing is yielded) and :attr:`EtcdSource.status` says
disconnected, with the error.

The daemon uses it through speaker.datastore.feed.DatastoreFeed (each Config to
Speaker.apply_config, which calls the core's reconfigure).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Mapping, MutableMapping
from dataclasses import dataclass, replace
from typing import Any

from speaker.config import Config, DatastoreConfig
from speaker.datastore.derive import Derivation, derive_config
from speaker.datastore.gateway import Compacted, EtcdError, Gateway, WatchBatch

__all__ = ["RANGE_END", "RANGE_START", "EtcdSource", "SourceStatus", "apply_batch"]

log = logging.getLogger("speaker.datastore")

RANGE_START = "/calico/ipam/v2/host/"
RANGE_END = "/calico/resources/v3/projectcalico.org/nodes0"
"""One key range holds every key the derivation reads (host affinities, then the v3
resources bgpconfigurations..nodes in key order, '0' sorting right after 'nodes/'), so one
revision-consistent read and one watch stream cover them; keys in it that are not used
(e.g. network policies) cost an event but change nothing."""


@dataclass(frozen=True)
class SourceStatus:
    """What ``speaker status`` and the metrics will show about the datastore."""

    connected: bool = False
    endpoint: str = ""
    revision: int = 0
    """The store revision our snapshot reflects."""
    last_error: str = ""
    last_change: float = 0.0
    """time.time() of the last yielded Config."""
    reads: int = 0
    """Full reads done (1 + re-reads after failures)."""
    problems: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"connected": self.connected, "endpoint": self.endpoint,
                "revision": self.revision, "last_error": self.last_error,
                "last_change": self.last_change, "reads": self.reads,
                "problems": list(self.problems)}


def apply_batch(snapshot: MutableMapping[str, bytes], batch: WatchBatch) -> None:
    """Apply a watch batch to the snapshot (a put sets, a delete removes)."""
    for event in batch.events:
        if event.value is None:
            snapshot.pop(event.key, None)
        else:
            snapshot[event.key] = event.value


class EtcdSource:
    """This node's Config from etcd, as an async stream of changes."""

    def __init__(self, settings: DatastoreConfig, template: Config | None = None, *,
                 gateway: Gateway | None = None, backoff: tuple[float, float] = (0.2, 5.0)
                 ) -> None:
        self.settings = settings
        self.template = template
        self.gateway = gateway or Gateway(settings.endpoints, ca_file=settings.ca_file,
                                          cert_file=settings.cert_file,
                                          key_file=settings.key_file)
        self.status = SourceStatus(endpoint=self.gateway.endpoint)
        self.snapshot: dict[str, bytes] = {}
        self.last: Config | None = None
        self._backoff = backoff
        self._problems: tuple[str, ...] = ()

    def derive(self) -> Derivation:
        """The derivation of the current snapshot (pure; no I/O)."""
        return derive_config(self.snapshot, self.settings.node_name, self.template,
                             source=f"etcdv3 (node {self.settings.node_name})")

    async def read_once(self) -> Derivation:
        """One full read and its derivation (``speaker check-config``); EtcdError if etcd
        cannot be read."""
        await self._read()
        return self.derive()

    async def _read(self) -> None:
        revision, snapshot = await self.gateway.range(RANGE_START, RANGE_END)
        self.snapshot = snapshot
        self.status = replace(self.status, connected=True, revision=revision,
                              endpoint=self.gateway.endpoint, reads=self.status.reads + 1)

    def _changed(self) -> Config | None:
        """The new Config if the snapshot derives a different one, else None."""
        derivation = self.derive()
        problems = tuple(str(p) for p in derivation.problems)
        if problems != self._problems:
            for text in problems:
                if text not in self._problems:
                    log.warning("datastore: %s", text)
            self._problems = problems
            self.status = replace(self.status, problems=problems)
        config = derivation.config
        if config is None or config == self.last:
            return None  # no usable config (our node is gone): keep the last good one
        self.last = config
        self.status = replace(self.status, last_change=time.time())
        return config

    async def configs(self) -> AsyncIterator[Config]:
        """Yield a Config at start and on every change; never returns (cancel the task)."""
        delay = self._backoff[0]
        while True:
            try:
                await self._read()
                if (config := self._changed()) is not None:
                    yield config
                delay = self._backoff[0]
                async for batch in self.gateway.watch(RANGE_START, RANGE_END,
                                                      self.status.revision + 1):
                    apply_batch(self.snapshot, batch)
                    self.status = replace(self.status,
                                          revision=max(self.status.revision, batch.revision))
                    if (config := self._changed()) is not None:
                        yield config
            except Compacted as exc:
                log.warning("datastore: %s", exc)
                self.status = replace(self.status, last_error=str(exc))
                continue  # re-read at once: etcd is there, only our history is gone
            except EtcdError as exc:
                if self.status.connected or self.status.last_error != str(exc):
                    log.warning("datastore: %s; keeping the last configuration, retrying",
                                exc)
                self.status = replace(self.status, connected=False, last_error=str(exc))
                self.gateway.rotate()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._backoff[1])


def snapshot_summary(snapshot: Mapping[str, bytes]) -> dict[str, int]:
    """How many keys of each kind a snapshot holds (for logs)."""
    counts: dict[str, int] = {}
    for key in snapshot:
        kind = key.removeprefix("/calico/resources/v3/projectcalico.org/").split("/", 1)[0]
        if key.startswith(RANGE_START):
            kind = "affinities"
        counts[kind] = counts.get(kind, 0) + 1
    return counts
