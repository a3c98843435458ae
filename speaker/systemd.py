"""systemd's sd_notify protocol, without libsystemd: readiness, status, watchdog, stopping.

Under ``Type=notify`` systemd passes ``NOTIFY_SOCKET`` (a path, or ``@name`` for an abstract
socket) and waits for ``READY=1`` before it calls the unit started; with ``WatchdogSec=`` it
also passes ``WATCHDOG_USEC`` and kills a daemon that stops sending ``WATCHDOG=1``.  Each
notification is one datagram of ``KEY=VALUE`` lines on an AF_UNIX SOCK_DGRAM socket
(sd_notify(3)).  The watchdog is fed from the asyncio event loop, so a wedged loop (the thing
that would stop BGP keepalives) is what systemd notices.  Without ``NOTIFY_SOCKET`` every
method is a no-op, so the daemon calls them unconditionally.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from enum import StrEnum

__all__ = ["Notifier", "NotifyKey", "notify_address", "watchdog_interval"]

log = logging.getLogger(__name__)


class NotifyKey(StrEnum):
    """The sd_notify(3) variables we send."""

    READY = "READY"
    RELOADING = "RELOADING"
    STOPPING = "STOPPING"
    STATUS = "STATUS"
    WATCHDOG = "WATCHDOG"
    MONOTONIC_USEC = "MONOTONIC_USEC"


def notify_address(value: str | None) -> str | bytes | None:
    """The socket address in ``NOTIFY_SOCKET``: a path, or ``@name`` for the abstract
    namespace (a leading NUL byte); None when unset or unusable."""
    if not value:
        return None
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    return None  # sd_notify(3) accepts only absolute paths, abstract names (and vsock)


def watchdog_interval(env: Mapping[str, str], pid: int) -> float | None:
    """Seconds between ``WATCHDOG=1`` pings (half of ``WATCHDOG_USEC``, as sd_watchdog_enabled(3)
    advises), or None when no watchdog is asked of this process (``WATCHDOG_PID`` of another)."""
    usec = env.get("WATCHDOG_USEC", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    owner = env.get("WATCHDOG_PID", "")
    if owner and (not owner.isdigit() or int(owner) != pid):
        return None
    return int(usec) / 2 / 1_000_000


class Notifier:
    """Sends sd_notify datagrams to systemd; does nothing when there is no notify socket."""

    def __init__(self, address: str | bytes | None = None,
                 watchdog: float | None = None) -> None:
        self.address = address
        self.watchdog = watchdog if address is not None else None
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_environ(cls, env: Mapping[str, str] | None = None) -> Notifier:
        """The notifier systemd asked for through the environment (``os.environ`` by default)."""
        env = os.environ if env is None else env
        return cls(notify_address(env.get("NOTIFY_SOCKET")), watchdog_interval(env, os.getpid()))

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, **fields: str | int) -> bool:
        """Send one datagram of ``KEY=VALUE`` lines (keys are :class:`NotifyKey` names);
        True if it was sent.  Failures are logged, never raised: systemd going away must not
        take BGP sessions down."""
        if self.address is None:
            return False
        for key in fields:
            NotifyKey(key)  # ValueError on a typo: a misspelt key is silently ignored by systemd
        payload = "".join(f"{key}={value}\n" for key, value in fields.items()).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(payload, self.address)
        except OSError as exc:
            log.warning("sd_notify to %r failed: %s", self.address, exc)
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        """Startup (or a reload) is complete: the config is loaded and the sockets listen."""
        if status is None:
            return self.send(READY=1)
        return self.send(READY=1, STATUS=status)

    def status(self, text: str) -> bool:
        """A one-line state shown by ``systemctl status``."""
        return self.send(STATUS=text)

    def stopping(self, status: str | None = None) -> bool:
        """Shutdown began (systemd then expects the exit within ``TimeoutStopSec``)."""
        if status is None:
            return self.send(STOPPING=1)
        return self.send(STOPPING=1, STATUS=status)

    def reloading(self) -> bool:
        """A reload began; ``MONOTONIC_USEC`` lets systemd match it to its ``reload`` job
        (``Type=notify-reload``, systemd 253); older systemd ignores the extra keys."""
        return self.send(RELOADING=1, MONOTONIC_USEC=time.clock_gettime_ns(time.CLOCK_MONOTONIC)
                         // 1000)

    async def around_reload(self, reload: Callable[[], Awaitable[None]],
                            status: str | None = None) -> None:
        """``RELOADING=1``, run ``reload``, then ``READY=1`` (even when the reload was refused:
        the daemon keeps running on its previous configuration)."""
        self.reloading()
        try:
            await reload()
        finally:
            self.ready(status)

    # -- watchdog -------------------------------------------------------------------------------

    def start_watchdog(self) -> None:
        """Ping ``WATCHDOG=1`` from the running event loop every half ``WATCHDOG_USEC``."""
        if self.watchdog is None or self._task is not None:
            return
        self._task = asyncio.get_running_loop().create_task(self._ping(self.watchdog),
                                                            name="sd-watchdog")

    async def stop_watchdog(self) -> None:
        """Stop pinging (on exit; systemd stops watching once the main process is gone)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _ping(self, interval: float) -> None:
        while True:
            self.send(WATCHDOG=1)
            await asyncio.sleep(interval)

    def started(self, status: str) -> None:
        """The daemon is up: ``READY=1`` with a status line, then start the watchdog."""
        self.ready(status)
        self.start_watchdog()
