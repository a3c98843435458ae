"""Connections from addresses that are not peers: refused at once, logged without flooding.

An unconfigured source is refused before anything is read from it (no OPEN is parsed, no
session state is made); only the log line costs anything, and a flood of thousands of
attempts a second must not turn into thousands of log lines.  So, as BIRD logs "Incoming
connection from ... rejected" once per attempt but syslog rate-limits it: at most ``burst``
refusals are reported one by one per ``window`` seconds; the rest are counted and reported
as one summary event when the next window begins.  The total is always counted.
"""

from __future__ import annotations

from speaker.core.events import ConnectionRefused, RefusalsSuppressed
from speaker.events import Event


class RefusalLog:
    """Decides which refusals become events."""

    def __init__(self, burst: int = 10, window: float = 10.0) -> None:
        self.burst = burst
        self.window = window
        self.total = 0
        """Every refusal since start (for metrics and ``show``)."""
        self._window_start: float | None = None
        self._reported = 0
        self._suppressed = 0
        self._sources: set[str] = set()

    def refuse(self, address: str, port: int, now: float) -> list[Event]:
        """The events for one refusal at ``now`` (none while the burst is used up)."""
        self.total += 1
        events: list[Event] = []
        if self._window_start is None or now - self._window_start >= self.window:
            if self._suppressed:
                events.append(
                    RefusalsSuppressed(self._suppressed, len(self._sources), self.window)
                )
            self._window_start = now
            self._reported = 0
            self._suppressed = 0
            self._sources = set()
        if self._reported < self.burst:
            self._reported += 1
            events.append(ConnectionRefused(address, port))
        else:
            self._suppressed += 1
            if len(self._sources) < 4096:  # a bound on what a flood can make us remember
                self._sources.add(address)
        return events
