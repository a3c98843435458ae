"""KernelBridge: BIRD's ``protocol kernel`` for the daemon, on asyncio.

The bridge is thin: the :class:`~speaker.kernel.reconcile.Reconciler` decides, this class does
the I/O and keeps the timers:

* start-up: bind the monitor first (nothing is missed between dump and subscription), dump the
  table, adopt our routes, learn aliens; delete nothing;
* a flush task turns dirty prefixes into batched writes (coalesced: ``want`` only records the
  latest state; the write happens when the task gets to it);
* a scan task re-dumps every ``scan_time`` seconds (or at once after an overrun or a surprise)
  and lets the reconciler restore what was changed behind our back;
* the monitor socket is drained by a loop reader *and* right before every batch and scan; a
  socket filter keeps the notifications of our own routes out of it (the echoes of our
  writes: ``speaker.kernel.netlink.own_echo_filter``), as BIRD ignores them;
* ``converged()`` (or ``convergence_wait``) enables sweeping of unwanted routes of ours.

All I/O to the kernel is serialised by one lock: a dump never races our own writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import struct
import time
from collections.abc import Callable, Sequence
from typing import Any

from speaker.kernel.codec import (
    RTM_DELROUTE,
    RTM_NEWROUTE,
    FibRoute,
    RouteDump,
    RouteParser,
)
from speaker.kernel.model import (
    IPAddress,
    IPNetwork,
    KernelConfig,
    KernelEvent,
    KernelEventKind,
    KernelIntent,
    KernelRoute,
    KernelSnapshot,
    LearnedRoute,
)
from speaker.kernel.netlink import (
    CHANGE_RCVBUF,
    CHANGE_SNDBUF,
    CHUNK_MESSAGES,
    MONITOR_RCVBUF,
    RTMGRP_IPV4_ROUTE,
    RTMGRP_IPV6_ROUTE,
    DumpInterrupted,
    KernelError,
    NetlinkChannel,
    RouteWriter,
    dump_routes,
)
from speaker.kernel.reconcile import UNKNOWN_OUTCOME, Op, OpKind, OpResult, Reconciler

log = logging.getLogger(__name__)

LearnedCallback = Callable[[LearnedRoute], None]
UnlearnedCallback = Callable[[IPNetwork], None]
EventCallback = Callable[[KernelEvent], None]

_NL_HEAD = struct.Struct("=IH")
_DUMP_RETRIES = 5
_MONITOR_BURST = 256  # datagrams handled per loop wake-up before yielding
_QUIET = 0.5  # seconds without a write before a periodic scan runs
#: Routes planned, written and folded in per step of the flush loop (one datagram's worth):
#: a step is a few ms, so control queries and keepalives are answered in between (4,096 a
#: step held the loop for 20-50 ms).
_FLUSH_BATCH = CHUNK_MESSAGES // 2
_QUIET_WAIT_SCANS = 4  # ... waiting for that at most this many scan_times


class KernelBridge:
    """Programs the RIB's routes into one kernel table, BIRD ``protocol kernel`` style."""

    def __init__(
        self,
        config: KernelConfig,
        on_learned: LearnedCallback,
        on_unlearned: UnlearnedCallback,
        on_event: EventCallback | None = None,
    ) -> None:
        if not isinstance(config, KernelConfig):
            raise TypeError(f"KernelBridge needs a KernelConfig, got {config!r}")
        self.config = config
        self._on_learned = on_learned
        self._on_unlearned = on_unlearned
        self._on_event = on_event
        self._ifnames: dict[int, str] = {}
        self._rec = Reconciler(config, self._ifnames)
        self._parser = RouteParser(self._rec.interner)
        self._change: NetlinkChannel | None = None
        self._monitor: NetlinkChannel | None = None
        self._links: Any = None  # pyroute2 AsyncIPRoute, for interface names
        self._writer: RouteWriter | None = None
        self._io = asyncio.Lock()
        self._wake = asyncio.Event()
        self._scan_now = asyncio.Event()
        self._idle = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._converge_timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._state = "new"
        self._resync_reason = ""
        self._reading = False  # monitor reader registered with the loop
        self._last_write = 0.0  # time.monotonic() of the last batch sent
        self._batches = 0  # batches written (see _gather)
        self.last_scan: float | None = None
        """Wall-clock time (``time.time()``) of the last full dump folded in, for display."""

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the sockets, dump the table, adopt our routes, learn aliens; delete nothing."""
        if self._state != "new":
            raise RuntimeError(f"KernelBridge.start() called in state {self._state}")
        self._state = "starting"
        self._loop = asyncio.get_running_loop()
        netns = self.config.netns
        try:
            self._monitor = NetlinkChannel.open(
                netns,
                groups=RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE,
                rcvbuf=MONITOR_RCVBUF,
                sndbuf=1 << 16,
                drop_protocol=self.config.protocol,
            )
            self._change = NetlinkChannel.open(
                netns, groups=0, rcvbuf=CHANGE_RCVBUF, sndbuf=CHANGE_SNDBUF
            )
            self._writer = RouteWriter(self._change, send_in_thread=True)
            if netns:  # pyroute2 enters the namespace; imported only then (about 22 MiB)
                from pyroute2 import AsyncIPRoute

                self._links = AsyncIPRoute(netns=netns, flags=0)
            await self._refresh_links()
            async with self._io:
                # subscribed before the dump: changes made meanwhile wait in the monitor
                # socket and are applied after the dump, in order
                routes = await self._dump_all()
                self._rec.load(routes, time.monotonic(), initial=True)
                self.last_scan = time.time()
                self._drain_monitor()
            self._monitor_reading(True)
        except BaseException:
            self._close_sockets()
            self._state = "stopped"
            raise
        self._dispatch()
        self._state = "running"
        self._tasks = [
            asyncio.create_task(self._flush_loop(), name="kernel-flush"),
            asyncio.create_task(self._scan_loop(), name="kernel-scan"),
        ]
        self._converge_timer = self._loop.call_later(
            self.config.convergence_wait, self._converge_timeout
        )
        self._wake.set()

    async def stop(self) -> None:
        """Stop; with ``persist`` our routes stay in the kernel, without it they are removed."""
        if self._state in ("new", "stopped"):
            self._state = "stopped"
            return
        self._state = "stopping"
        if self._converge_timer is not None:
            self._converge_timer.cancel()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        try:
            if not self.config.persist:
                await self._flush_all_ours()
        finally:
            self._close_sockets()
            self._state = "stopped"
            self._dispatch()

    async def _flush_all_ours(self) -> None:
        """persist off: delete every route of ours in the table (re-dumped first)."""
        async with self._io:
            self._drain_monitor()
            try:
                routes = await self._dump_all()
                self._rec.load(routes, time.monotonic())
            except KernelError as exc:
                log.warning("kernel: final dump failed (%s); deleting what we know", exc)
            victims = self._rec.all_ours()
            ops = [
                Op(OpKind.DELETE, r, KernelEventKind.DELETED, "shutdown without persist")
                for r in victims
            ]
            if ops and self._writer is not None:
                self._rec.apply(await self._writer.execute(ops), time.monotonic())

    def _monitor_reading(self, on: bool) -> None:
        """(Un)register the monitor reader with the loop."""
        if self._loop is None or self._monitor is None or self._monitor.closed:
            return
        if on and not self._reading:
            self._loop.add_reader(self._monitor.fileno(), self._on_monitor_readable)
        elif not on and self._reading:
            self._loop.remove_reader(self._monitor.fileno())
        self._reading = on

    def _close_sockets(self) -> None:
        with contextlib.suppress(Exception):
            self._monitor_reading(False)
        if self._writer is not None:
            self._writer.close()
        for channel in (self._monitor, self._change):
            if channel is not None:
                channel.close()
        if self._links is not None:
            with contextlib.suppress(Exception):
                self._links.close()
            self._links = None

    # -- the RIB side ----------------------------------------------------------------------

    def apply(self, intents: Sequence[KernelIntent]) -> None:
        """A batch of intents from the core, in order (one RIB delta: an UPDATE's prefixes),
        in one loop of the reconciler; coalesced per prefix, latest wins."""
        self._rec.want_all(intents)
        self._wake.set()

    def want(self, route: KernelRoute) -> None:
        """Desired state for a prefix (replaces the previous one; coalesced, latest wins)."""
        self._rec.want(route)
        self._wake.set()

    def unwant(self, prefix: IPNetwork) -> None:
        """No route wanted for ``prefix`` (deleted once converged)."""
        self._rec.unwant(prefix)
        self._wake.set()

    def converged(self) -> None:
        """The RIB has converged (End-of-RIB from all peers, or the wait elapsed): routes of
        ours that are not wanted are deleted from now on."""
        self._converge("converged() called by the daemon")

    def _converge_timeout(self) -> None:
        self._converge(f"convergence_wait {self.config.convergence_wait:g}s elapsed")

    def _converge(self, reason: str) -> None:
        if self._converge_timer is not None:
            self._converge_timer.cancel()
            self._converge_timer = None
        self._rec.converge(reason)
        self._dispatch()
        self._wake.set()

    @property
    def route_events(self) -> bool:
        """Whether routine per-route writes are published as events (see
        :attr:`Reconciler.route_events`); counted either way."""
        return self._rec.route_events

    @route_events.setter
    def route_events(self, on: bool) -> None:
        self._rec.route_events = on

    def snapshot(self) -> KernelSnapshot:
        """Wanted vs installed per prefix with state, for ``speaker show kernel``."""
        return self._rec.snapshot()

    def interface_for(self, gateway: IPAddress) -> str | None:
        """The interface a BGP next hop leaves by (BIRD's ``via X on IFACE``), if resolvable."""
        hop = self._rec.resolve_gateway(gateway)
        if isinstance(hop, str):
            return None
        return self._ifnames.get(hop.oif)

    def interface_name(self, ifindex: int) -> str | None:
        """The name of interface ``ifindex`` as of the last link dump (None: unknown)."""
        return self._ifnames.get(ifindex)

    def installed(self, prefix: IPNetwork) -> bool:
        """The kernel holds a route of ours for ``prefix`` equal to the wanted one."""
        return self._rec.installed(prefix)

    def backlog(self) -> int:
        """Kernel writes queued and not yet sent (the transport's back-pressure signal)."""
        return self._rec.pending()

    def stats(self) -> dict[str, int]:
        """Counters (writes, errors, scans, events by kind, batches written) and table sizes;
        cheap."""
        return {**self._rec.stats(), "batches": self._batches}

    def learned(self) -> dict[IPNetwork, LearnedRoute]:
        """Alien routes currently learned."""
        return self._rec.learned()

    async def settled(self, timeout: float | None = None) -> None:
        """Wait until nothing is queued or in flight (tests, benchmarks, CLI ``--wait``)."""

        async def wait() -> None:
            while True:
                self._idle.clear()
                if self._rec.pending() == 0 and not self._rec.needs_scan:
                    return
                await self._idle.wait()

        await asyncio.wait_for(wait(), timeout)

    async def scan_now(self) -> None:
        """Run one full scan immediately (tests and ``speaker kernel rescan``)."""
        await self._scan()

    # -- tasks -----------------------------------------------------------------------------

    async def _flush_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                while self._rec.has_work():
                    await self._gather()
                    async with self._io:
                        self._drain_monitor()
                        ops, keys = self._rec.plan_batch(_FLUSH_BATCH)
                        if ops or keys:
                            self._batches += 1
                            self._last_write = time.monotonic()
                            await self._write(ops, keys)
                    self._dispatch()
                    if self._rec.needs_scan:
                        self._scan_now.set()
                    await asyncio.sleep(0)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("kernel: flush failed; retrying at the next scan")
                self._scan_now.set()
            self._idle.set()

    async def _gather(self) -> None:
        """Let a batch grow while a feed is coming in: a feed reaches the core a READ_SLICE
        at a time, one loop turn each (60 routes when each UPDATE carries one), and each
        write is a round trip to the writer's thread.  So wait one loop turn at a time, as
        long as the queue keeps growing and is under a batch: the writes follow the feed a
        few turns later, in batches ten times larger."""
        queued = self._rec.pending()
        while queued < _FLUSH_BATCH:
            await asyncio.sleep(0)
            now = self._rec.pending()
            if now <= queued:
                return
            queued = now

    async def _write(self, ops: list[Op], keys: list[int]) -> None:
        """Run a planned batch (:meth:`Reconciler.plan_batch`: changes, and deletes by key)
        and fold the answers in; whatever goes wrong, every write gets an outcome (none
        stays in flight)."""
        assert self._writer is not None
        rec = self._rec
        results: list[OpResult] = []
        failures: list[tuple[int, int, str]] = []
        try:
            if ops:
                results = await self._writer.execute(ops)
            if keys:
                failures = await self._writer.delete(keys, self.config.table, self.config.protocol)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("kernel: batch failed")
            text = f"batch failed: {exc}"
            if len(results) != len(ops):
                results = [OpResult(op, UNKNOWN_OUTCOME, text) for op in ops]
            failures = [(index, UNKNOWN_OUTCOME, text) for index in range(len(keys))]
        rec.apply(results, time.monotonic())
        rec.apply_deletes(keys, failures, time.monotonic())

    async def _scan_loop(self) -> None:
        """Every scan_time: a full re-dump.  A periodic scan that falls in a bulk install or
        removal waits until the writer is idle (nothing queued, no batch written for
        ``_QUIET`` s), at most ``_QUIET_WAIT_SCANS`` more scan_times: re-reading 100,000
        routes while we are still writing them only delays the writes (and a scan during a
        feed was 9-12% of its CPU).  Forced scans (overrun, surprising answers) never wait."""
        while True:
            forced = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._scan_now.wait(), self.config.scan_time)
                forced = True
            if not forced:
                await self._writer_quiet(self.config.scan_time * _QUIET_WAIT_SCANS)
            self._scan_now.clear()
            try:
                await self._scan()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("kernel: scan failed; retrying")

    async def _writer_quiet(self, timeout: float) -> None:
        """Wait until no write is queued and none was made for ``_QUIET`` s, a forced scan
        is asked for, or ``timeout``."""
        deadline = time.monotonic() + timeout
        while not self._scan_now.is_set():
            now = time.monotonic()
            if now >= deadline:
                return
            if self._rec.pending():
                self._idle.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._idle.wait(), deadline - now)
                continue
            quiet_for = now - self._last_write
            if quiet_for >= _QUIET:
                return
            await asyncio.sleep(min(_QUIET - quiet_for, deadline - now))

    async def _scan(self) -> None:
        async with self._io:
            self._drain_monitor()
            if self._resync_reason:
                self._rec.note_resync(self._resync_reason)
                self._resync_reason = ""
                await self._refresh_links()
            # monitor paused from the dump until its last route is folded in (as _dump_all);
            # the fold yields to the loop between steps, the dump between datagrams
            reading = self._reading
            self._monitor_reading(False)
            try:
                routes = await self._dump_both(self._rec.scan_expected())
                for _ in self._rec.load_steps(routes, time.monotonic()):
                    await asyncio.sleep(0)
                del routes
            finally:
                if reading:
                    self._monitor_reading(True)
            self.last_scan = time.time()
            if self._rec.unknown_ifindex:
                self._rec.unknown_ifindex = False
                await self._refresh_links()
                self._rec.relearn()
        if self._rec.needs_scan:  # e.g. a route of ours gone, not yet named: again at once
            self._scan_now.set()
        self._dispatch()
        if self._rec.has_work():
            self._wake.set()
        else:
            self._idle.set()

    async def _dump_all(self) -> RouteDump:
        """Both families of our table.  The monitor reader is paused meanwhile: an event
        applied before an older dump result would be overwritten by it.  Callers fold the
        result in (``load``) before awaiting anything, then the queued events follow."""
        reading = self._reading
        self._monitor_reading(False)
        try:
            return await self._dump_both()
        finally:
            if reading:
                self._monitor_reading(True)

    async def _dump_both(
        self, expected: Callable[[int], FibRoute | None] | None = None
    ) -> RouteDump:
        """Both families; the routes found as ``expected`` gives them only counted."""
        assert self._change is not None
        for attempt in range(_DUMP_RETRIES):
            try:
                routes = await dump_routes(
                    self._change, self._parser, socket.AF_INET, self.config.table, expected
                )
                routes.extend(await dump_routes(
                    self._change, self._parser, socket.AF_INET6, self.config.table, expected
                ))
                return routes
            except DumpInterrupted as exc:
                log.info("kernel: dump interrupted (%s), attempt %d", exc, attempt + 1)
                await asyncio.sleep(0.01 * (attempt + 1))
        raise KernelError(f"route dump inconsistent {_DUMP_RETRIES} times in a row")

    async def _refresh_links(self) -> None:
        """ifindex -> name, for learned routes (few, small): ``if_nameindex(3)`` in our own
        namespace, pyroute2's asyncio API in a named one."""
        if self._state not in ("starting", "running"):
            return
        names: dict[int, str] = {}
        try:
            if self._links is None:
                names = dict(socket.if_nameindex())
            else:
                async for link in await self._links.link("dump"):
                    name = link.get("ifname")
                    if name:
                        names[int(link["index"])] = str(name)
        except Exception as exc:  # names are cosmetic; never fail the bridge for them
            log.warning("kernel: interface dump failed: %s", exc)
            return
        self._ifnames.clear()
        self._ifnames.update(names)

    # -- monitor ---------------------------------------------------------------------------

    def _on_monitor_readable(self) -> None:
        self._drain_monitor(_MONITOR_BURST)
        self._dispatch()
        if self._rec.has_work():
            self._wake.set()

    def _drain_monitor(self, limit: int | None = None) -> None:
        """Fold queued route notifications into the view (all of them, or ``limit``)."""
        monitor = self._monitor
        if monitor is None or monitor.closed:
            return
        now = time.monotonic()
        parse = self._parser.parse
        observe = self._rec.observe
        count = 0
        while limit is None or count < limit:
            try:
                data = monitor.recv_nowait()
            except OSError as exc:
                self._resync_reason = (
                    "netlink monitor overrun (ENOBUFS): full re-dump"
                    if exc.errno == errno.ENOBUFS
                    else f"netlink monitor error ({exc}): full re-dump"
                )
                self._scan_now.set()
                if exc.errno != errno.ENOBUFS:
                    return
                continue
            if data is None:
                return
            count += 1
            off = 0
            size = len(data)
            while off + 16 <= size:
                length, mtype = _NL_HEAD.unpack_from(data, off)
                if length < 16 or off + length > size:
                    break
                if mtype in (RTM_NEWROUTE, RTM_DELROUTE):
                    route = parse(data, off + 16, off + length)
                    if route is not None:
                        observe(route, mtype == RTM_DELROUTE, now)
                off += (length + 3) & ~3

    # -- callbacks -------------------------------------------------------------------------

    def _dispatch(self) -> None:
        """Deliver outboxed events and learned-route changes; a failing callback is logged,
        never allowed to break the bridge."""
        for change in self._rec.take_learn_changes():
            try:
                if isinstance(change, LearnedRoute):
                    self._on_learned(change)
                else:
                    self._on_unlearned(change)
            except Exception:
                log.exception("kernel: learned-route callback failed")
        events = self._rec.take_events()
        if self._on_event is not None:
            for event in events:
                try:
                    self._on_event(event)
                except Exception:
                    log.exception("kernel: event callback failed")
