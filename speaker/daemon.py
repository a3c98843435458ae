"""The daemon: the asyncio adapter around the speaker core.

It owns the I/O and nothing else: the port-179 listener and the session transport
(:mod:`speaker.transport`), the kernel bridge (netlink), the control socket, signals and the
config file.  Every decision (peers, graceful restart, convergence, route refresh, what goes
into the kernel) is :class:`speaker.core.SpeakerCore`'s; see docs/architecture.md.

Graceful restart, restarting side (:mod:`speaker.core.restart`): the speaker recovers when
started with ``--graceful-restart`` or when the bridge finds routes of our protocol in the
kernel at start-up; a planned restart (``graceful restart`` on the control socket) closes the
sessions without NOTIFICATION and keeps the kernel's routes.  See docs/graceful-restart.md.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import os
import signal
import sys
from typing import TYPE_CHECKING

from speaker.backend import SpeakerBackend
from speaker.config import Config, ConfigError, load_config
from speaker.control.family import FamilyBackend
from speaker.control.server import ControlServer
from speaker.core import DaemonEvent, SpeakerCore
from speaker.events import EventBus
from speaker.gcpolicy import THRESHOLDS as GC_THRESHOLDS
from speaker.gcpolicy import GcPolicy
from speaker.history import EventHistory
from speaker.kernel import KernelBridge
from speaker.kernel import KernelConfig as BridgeConfig
from speaker.logs import LogFormat, configure_logging, event_log
from speaker.sinks import CounterSink, JsonSink
from speaker.systemd import Notifier
from speaker.tcp_security import ListenerKeys
from speaker.transport import SessionTransport

if TYPE_CHECKING:
    from speaker.datastore.feed import DatastoreFeed
    from speaker.metrics import MetricsSink

log = logging.getLogger(__name__)


def bridge_config(config: Config) -> BridgeConfig:
    """The kernel bridge's options from the ``[kernel]`` table.

    What goes into the kernel is the core's decision alone: Calico's kernel filter (reject
    CIDRs, the import guard) in ``CalicoKernelPolicy`` and the ECMP merge limit in the RIB.
    The bridge, which can filter and cap by itself when used alone (benchmarks), is given
    no filter and the widest cap here, so no second owner can disagree."""
    k = config.kernel
    return BridgeConfig(
        protocol=k.protocol,
        learn=k.learn,
        persist=k.persist,
        scan_time=k.scan_time,
        merge_paths=True,
        merge_limit=255,
        table=k.table,
        convergence_wait=k.convergence_wait,
    )


class Speaker:
    """The running daemon: I/O around a :class:`SpeakerCore`."""

    def __init__(self, config: Config, bus: EventBus, *, restarting: bool = False,
                 notifier: Notifier | None = None, datastore: DatastoreFeed | None = None,
                 config_path: str | None = None, route_events: bool = True) -> None:
        self.config = config
        self.config_path = config_path or config.source
        self.datastore = datastore
        """With ``[datastore]``: the feed of derived configurations (docs/datastore.md)."""
        self.notifier = notifier or Notifier()  # systemd sd_notify; a no-op outside systemd
        self.bus = bus
        self.counters = CounterSink()
        bus.subscribe(self.counters)
        self.history = EventHistory()  # `show events`, `watch`
        bus.subscribe(self.history)
        self.bridge = KernelBridge(
            bridge_config(config),
            lambda route: self.core.kernel_learned(route),
            lambda prefix: self.core.kernel_unlearned(prefix),
            bus.publish,
        )
        self.bridge.route_events = route_events
        self.core = SpeakerCore(
            config, self.bridge, bus.publish, restarting=restarting, wake=self._wake
        )
        self.transport: SessionTransport | None = None
        self._server: asyncio.Server | None = None
        self._server6: asyncio.Server | None = None
        self._listener_keys: ListenerKeys | None = None
        self._control: ControlServer | None = None
        self._control6: ControlServer | None = None
        self._stopping = asyncio.Event()
        self.exit_code = 0
        self.gc_policy = GcPolicy()
        """The collector's thresholds and freezes (speaker/gcpolicy.py), ticked every 0.25 s."""
        self._gc_task: asyncio.Task[None] | None = None

    def _wake(self) -> None:
        if self.transport is not None:
            self.transport.wake()

    @property
    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Kernel first (adopt our routes), listener and control socket, then the core."""
        loop = asyncio.get_running_loop()
        self.gc_policy.install(loop.time())
        self._gc_task = loop.create_task(self._gc_ticks(), name="gc-policy")
        await self.bridge.start()
        adopted = sum(1 for e in self.bridge.snapshot().entries if e.installed is not None)
        transport = self.transport = SessionTransport(self.core, self.bridge.backlog)
        self._server = await loop.create_server(
            transport.incoming, host=str(self.config.listen), port=self.config.port,
            reuse_address=True,
        )
        self._listener_keys = ListenerKeys(self._server.sockets)
        self._listener_keys.apply(self.config.peers)
        if needs_ipv6_listener(self.config):
            await self._open_listener6()
        backend = SpeakerBackend(self.core, self.bridge, loop.time, self.graceful_restart,
                                 datastore=self.datastore, history=self.history)
        if self.config.control_socket6 is None:
            self._control = ControlServer(backend, self.config.control_socket)
        else:  # bird.ctl and bird6.ctl, as BIRD 1.6's two daemons (speaker/control/family.py)
            self._control = ControlServer(FamilyBackend(backend, 4), self.config.control_socket)
            self._control6 = ControlServer(FamilyBackend(backend, 6), self.config.control_socket6)
            await self._control6.start()
        await self._control.start()
        self.core.start(self._now, adopted=adopted)
        if self.datastore is not None:
            self.datastore.start(self.apply_config)
        self.bus.publish(
            DaemonEvent(
                f"speaker {self.config.router_id} AS{self.config.asn} listening on "
                f"{self.config.listen}:{self.config.port}, {len(self.config.peers)} peers, "
                f"control socket {self.config.control_socket}"
            )
        )

    async def _gc_ticks(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(0.25)
            self.gc_policy.tick(loop.time())

    async def _open_listener6(self) -> None:
        """The IPv6 listener (IPV6_V6ONLY, as asyncio sets it), opened when the first IPv6
        peer is configured.  If the host has no IPv6 it is said and the IPv4 side goes on."""
        if self._server6 is not None or self.transport is None:
            return
        try:
            self._server6 = await asyncio.get_running_loop().create_server(
                self.transport.incoming, host=str(self.config.listen6), port=self.config.port,
                reuse_address=True,
            )
        except OSError as exc:
            self.bus.publish(DaemonEvent(
                f"cannot listen on [{self.config.listen6}]:{self.config.port}: "
                f"{exc.strerror or exc}; IPv6 peers must dial out from our side"))
            return
        if self._listener_keys is not None:
            self._listener_keys.add_sockets(self._server6.sockets)
        self.bus.publish(DaemonEvent(
            f"listening on [{self.config.listen6}]:{self.config.port} for IPv6 peers"))

    async def run(self) -> int:
        """Start, then wait until asked to stop."""
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.request_stop, "SIGTERM")
        loop.add_signal_handler(signal.SIGINT, self.request_stop, "SIGINT")
        loop.add_signal_handler(
            signal.SIGHUP, lambda: loop.create_task(self.notifier.around_reload(self.reload))
        )
        try:
            await self.start()
            self.notifier.started(
                f"AS{self.config.asn} on {self.config.listen}:{self.config.port}, "
                f"{len(self.config.peers)} peers"
            )
            await self._stopping.wait()
        finally:
            await self.shutdown()
        return self.exit_code

    def request_stop(self, why: str = "") -> None:
        """SIGTERM/SIGINT: Cease (Administrative Shutdown) to every peer, then exit."""
        self.notifier.stopping(f"stopping ({why})")
        self.core.stop(self._now, why)
        self._stopping.set()

    async def graceful_restart(self) -> str:
        """A planned restart: the core closes the sessions silently; we keep the kernel's
        routes and exit shortly after."""
        message = self.core.graceful_shutdown(self._now)
        self.notifier.stopping("planned graceful restart")
        asyncio.get_running_loop().call_later(0.2, self._stopping.set)
        return message

    async def shutdown(self) -> None:
        """Let the NOTIFICATIONs leave, close everything; the kernel keeps routes (persist)."""
        if self._gc_task is not None:
            self._gc_task.cancel()
        if self.datastore is not None:
            await self.datastore.close()
        await asyncio.sleep(0.2)
        if self.transport is not None:
            # connections closed with a NOTIFICATION drain until the peer has read it (bounded)
            await self.transport.wait_closed()
            self.transport.abort()
        for server in (self._server, self._server6):
            if server is not None:
                server.close()
        for control in (self._control, self._control6):
            if control is not None:
                await control.close()
        if self.core.keep_kernel_routes:
            self.bridge.config = dataclasses.replace(self.bridge.config, persist=True)
        await self.bridge.stop()
        self.bus.publish(DaemonEvent("stopped"))

    async def reload(self) -> None:
        """SIGHUP: read the config file again and apply it; a bad one is refused.  With a
        datastore the file is the template (local settings): re-derive with it."""
        try:
            new = load_config(self.config_path)
        except (ConfigError, OSError) as exc:
            self.bus.publish(DaemonEvent(f"reload refused, keeping the running config: {exc}"))
            return
        if self.datastore is None:
            if new.datastore is not None:
                self.bus.publish(DaemonEvent("reload refused: [datastore] was added; restart "
                                             "the speaker to read the datastore"))
                return
            self.apply_config(new)
            return
        refused = self.datastore.reload(new, self.apply_config)
        if refused is not None:
            self.bus.publish(DaemonEvent(f"reload refused: {refused}"))

    def apply_config(self, new: Config) -> bool:
        """Hand a new configuration to the core (SIGHUP, or the datastore); listener MD5 keys
        follow.  False when the core refused it (the running one stays)."""
        if self._listener_keys is not None:
            # keys first: a peer whose key changed reconnects under the new one
            self._listener_keys.apply(new.peers)
        if self.core.reconfigure(new, self._now):
            self.config = new
            if self._server6 is None and needs_ipv6_listener(new):
                asyncio.get_running_loop().create_task(self._open_listener6())
            return True
        if self._listener_keys is not None:
            self._listener_keys.apply(self.config.peers)
        return False


def needs_ipv6_listener(config: Config) -> bool:
    """Listen on IPv6 too: an IPv6 peer is configured, or the node has an IPv6 address."""
    return config.address6 is not None or any(p.address.version == 6 for p in config.peers)


async def serve(config: Config, bus: EventBus, *, restarting: bool = False,
                notifier: Notifier | None = None, metrics: MetricsSink | None = None,
                route_events: bool = True) -> int:
    """Run the speaker for ``config``; with ``[datastore]``, first wait for the datastore's
    configuration (systemd hears READY only once the speaker has started)."""
    notifier = notifier or Notifier()
    feed: DatastoreFeed | None = None
    path = config.source
    if config.datastore is not None:
        from speaker.datastore.feed import first_config  # only with [datastore] (start-up RSS)

        first = await first_config(config, notifier, metrics)
        if first is None:
            return 0  # stopped while waiting
        config, feed = first
    speaker = Speaker(config, bus, restarting=restarting, notifier=notifier, datastore=feed,
                      config_path=path, route_events=route_events)
    return await speaker.run()


def run_daemon(
    config_path: str,
    *,
    config: Config | None = None,
    json_events: bool = False,
    log_level: str = "INFO",
    restarting: bool = False,
    metrics_listen: str | None = None,
    log_format: str = LogFormat.TEXT,
) -> int:
    """``speaker run``: load the config (refusing a bad one), run until SIGTERM.

    ``config``: the file already loaded by the command line (read once, not twice)."""
    style = configure_logging(log_level, LogFormat(log_format))
    # The log format (setup_logging) shows neither thread, process nor caller, so don't collect
    # them for every record (the logging HOWTO's "Optimization"): 22% less CPU per record, and
    # a 100,000-route feed logs a line per kernel route.
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None
    try:
        if config is None:
            config = load_config(config_path)
    except ConfigError as exc:
        print(f"speaker: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"speaker: cannot read {config_path}: {exc.strerror}", file=sys.stderr)
        return 2
    # A 100,000-route feed keeps many small objects alive; the default GC threshold (700)
    # rescans them over and over (decode + RIB of the 100k distinct capture: 2.9 s with the
    # default, 2.1 s with 20,000).  Speaker.start installs the whole policy (gcpolicy.py).
    gc.set_threshold(*GC_THRESHOLDS)
    bus = EventBus()
    bus.subscribe(event_log(style, log_level))
    if json_events:
        bus.subscribe(JsonSink(sys.stdout))
    metrics = None
    if metrics_listen is not None:
        from speaker.metrics import MetricsSink

        address, _, port = metrics_listen.rpartition(":")
        if not port.isdigit() or not address:
            print(f"speaker: --metrics-listen {metrics_listen!r}: expected ADDR:PORT",
                  file=sys.stderr)
            return 2
        metrics = MetricsSink()
        bus.subscribe(metrics)
        metrics.serve(address.strip("[]"), int(port))
    for path in filter(None, (config.control_socket, config.control_socket6)):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    # an event per routine kernel write only if something reads them: the DEBUG log,
    # --json, metrics (a 100,000-route feed: 100,000 events built and dropped otherwise)
    route_events = (
        getattr(logging, log_level.upper(), logging.INFO) <= logging.DEBUG
        or json_events
        or metrics_listen is not None
    )
    try:
        return asyncio.run(serve(config, bus, restarting=restarting,
                                 notifier=Notifier.from_environ(), metrics=metrics,
                                 route_events=route_events))
    except OSError as exc:
        log.error("speaker: %s", exc)
        return 1
