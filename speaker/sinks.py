"""Readers of the event stream: the log, ``--json`` output, counters.

Each sink is a callable subscribed to :class:`speaker.events.EventBus`; none of them reaches
into the core.  The log writes ``describe()`` lines at the event's level; the JSON sink writes
one object per line (NDJSON) with a small envelope (time, counter); the counter sink keeps
per-kind totals for ``show status`` and metrics.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from typing import Any, TextIO

from speaker.events import Event, fixed_level

log = logging.getLogger("speaker")


class LogSink:
    """Log each event's human line at its level, under the ``speaker.<kind>`` logger."""

    def __init__(self) -> None:
        self._by_class: dict[type[Event], tuple[logging.Logger, int | None]] = {}

    def wants(self, cls: type[Event]) -> bool:
        """For the bus (:meth:`EventBus.refresh` after a level change): not the events of a
        fixed level its logger drops (the debug-level ones of every UPDATE and route)."""
        known = self._by_class.get(cls)
        if known is None:
            known = self._by_class[cls] = _logger_of(cls)
        logger, level = known
        return level is None or logger.isEnabledFor(level)

    def __call__(self, event: Event) -> None:
        # several events per route in a feed: getLogger (a lock and a dict) was 3.5% of the
        # CPU; so the logger is kept per event class, with the level when the class does not
        # vary it (no level() call for the routine ones)
        known = self._by_class.get(type(event))
        if known is None:
            known = self._by_class[type(event)] = _logger_of(type(event))
        logger, level = known
        if level is None:
            level = event.level()
        if logger.isEnabledFor(level):
            logger.log(level, event.describe())


def _logger_of(cls: type[Event]) -> tuple[logging.Logger, int | None]:
    """The ``speaker.<kind>`` logger of an event class, and its fixed level (None: varies)."""
    return logging.getLogger(f"speaker.{cls.KIND}"), fixed_level(cls)


class JsonSink:
    """Write every event as one JSON object per line, with time and a running counter.

    With ``min_level`` (``--log-format json``, the log itself) events below that logging level
    are skipped and each object also names its ``level``."""

    def __init__(self, out: TextIO, min_level: int | None = None) -> None:
        self._out = out
        self._counter = 0
        self._min_level = min_level

    def wants(self, cls: type[Event]) -> bool:
        """For the bus: with ``min_level``, not the events of a fixed level below it."""
        fixed = fixed_level(cls)
        return self._min_level is None or fixed is None or fixed >= self._min_level

    def __call__(self, event: Event) -> None:
        if self._min_level is not None and event.level() < self._min_level:
            return
        self._counter += 1
        record: dict[str, Any] = {"time": round(time.time(), 6), "counter": self._counter}
        if self._min_level is not None:
            record["level"] = logging.getLevelName(event.level()).lower()
        record.update(event.to_dict())
        self._out.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._out.flush()


class CounterSink:
    """Count events by kind (for ``show status`` and metrics)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def __call__(self, event: Event) -> None:
        self.counts[event.KIND] += 1


def setup_logging(level: str = "INFO") -> None:
    """Configure stderr logging with a timestamp and the logger name (called by the CLI only)."""
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
