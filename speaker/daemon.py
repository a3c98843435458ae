"""The daemon: wires config, sessions, RIB, kernel bridge and control socket together.

How a route flows: a peer's bytes reach :class:`speaker.transport.PeerTransport`, whose
sans-IO session decodes them into an ``UpdateReceived`` event; :class:`Speaker` hands the
UPDATE to the RIB (Adj-RIB-In, then best path and ECMP set in the Loc-RIB), which answers with
``RouteChange`` records; each change goes to the kernel bridge (``want``/``unwant``, through
Calico's kernel filter) and marks the peers' Adj-RIB-Out, flushed once per loop iteration as
packed UPDATEs.  Everything that happens is published on one :class:`EventBus`.

Graceful restart (RFC 4724), restarting side: the daemon is *restarting* when started with
``--graceful-restart`` or when it finds routes of its own protocol in the kernel (a crash, a
planned restart, or ``kill -9``: the forwarding state survived).  It then sends OPENs with the
Restart State and Forwarding flags, defers its own announcements and the kernel sweep until
every graceful-restart-capable peer has sent End-of-RIB (or ``graceful_restart_wait`` passes,
BIRD's ``graceful restart wait``), then sends its routes and End-of-RIB.  From then on OPENs
carry neither flag (as BIRD): a later session flap is not a restart.  See docs/graceful-restart.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import os
import signal
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from ipaddress import IPv4Address, IPv4Network, IPv6Network
from typing import ClassVar

from speaker.config import Config, ConfigError, PeerConfig, load_config
from speaker.events import Event, EventBus
from speaker.kernel import KernelBridge, KernelRoute, LearnedRoute
from speaker.kernel import KernelConfig as BridgeConfig
from speaker.logs import LogFormat, configure_logging, event_log
from speaker.rib import CalicoExportPolicy, CalicoKernelPolicy, PeerInfo, Rib, RouteChange
from speaker.rib.attrs import IpAddress
from speaker.rib.path import SourceKind
from speaker.session import (
    EndOfRib,
    GracefulRestartEnded,
    RouteRefreshReceived,
    SessionConfig,
    SessionDown,
    SessionUp,
    StateChange,
    UpdateReceived,
)
from speaker.sinks import CounterSink, JsonSink
from speaker.systemd import Notifier
from speaker.transport import BgpConnection, PeerTransport
from speaker.wire.context import IPV4_UNICAST
from speaker.wire.enums import CeaseSubcode, MessageType, RouteRefreshSubtype
from speaker.wire.nlri import Prefix

log = logging.getLogger(__name__)


# -- events of the daemon itself ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DaemonEvent(Event):
    """Something the daemon did or saw, outside any one session."""

    KIND: ClassVar[str] = "daemon"
    what: str

    def describe(self) -> str:
        return self.what


@dataclass(frozen=True, slots=True)
class ConnectionRefused(Event):
    """A TCP connection to port 179 from an address that is not a configured peer."""

    KIND: ClassVar[str] = "refused"
    LEVEL: ClassVar[int] = logging.WARNING
    address: str
    port: int

    def describe(self) -> str:
        return (
            f"connection from {self.address}:{self.port} refused: not a configured peer "
            "(closed at once, no state created)"
        )


@dataclass(frozen=True, slots=True)
class RecoveryEvent(Event):
    """Graceful-restart recovery of our own restart began or ended (RFC 4724 4.1)."""

    KIND: ClassVar[str] = "recovery"
    active: bool
    cause: str

    def describe(self) -> str:
        state = "started" if self.active else "ended"
        return f"graceful restart recovery {state}: {self.cause} (RFC 4724 4.1)"


# -- per-peer bookkeeping ----------------------------------------------------------------------


@dataclass(slots=True)
class PeerState:
    """What the daemon tracks about a peer beyond its session."""

    config: PeerConfig
    transport: PeerTransport
    since: float = dataclasses.field(default_factory=time.time)
    enabled: bool = True
    eor_received: bool = False
    feed_sent: bool = False
    imported: int = 0
    exported: int = 0


def _prefixes(nets: Iterable[IPv4Network | IPv6Network]) -> list[Prefix]:
    return [Prefix.from_network(n) for n in nets]


def session_config(config: Config, peer: PeerConfig, *, restarting: bool) -> SessionConfig:
    """The session parameters of one configured peer."""
    return SessionConfig(
        local_as=config.asn,
        router_id=config.router_id,
        peer_as=peer.asn,
        peer_address=peer.address,
        hold_time=peer.hold_time,
        keepalive_time=peer.keepalive_time,
        passive=peer.passive,
        connect_delay=peer.connect_delay,
        connect_retry=peer.connect_retry,
        error_wait=(peer.error_wait_min, peer.error_wait_max),
        graceful_restart=peer.graceful_restart,
        restart_time=peer.restart_time,
        restarting=restarting,
        forwarding_preserved=restarting,
        add_paths=str(peer.add_paths),
        source_address=peer.source_address,
        port=peer.port,
    )


def bridge_config(config: Config) -> BridgeConfig:
    """The kernel bridge's options from the ``[kernel]`` table."""
    k = config.kernel
    return BridgeConfig(
        protocol=k.protocol,
        learn=k.learn,
        persist=k.persist,
        scan_time=k.scan_time,
        merge_paths=k.merge_paths,
        merge_limit=k.merge_limit,
        table=k.table,
        reject_cidrs=tuple(k.reject_cidrs),
        convergence_wait=k.convergence_wait,
    )


class Speaker:
    """The running daemon."""

    def __init__(self, config: Config, bus: EventBus, *, restarting: bool = False,
                 notifier: Notifier | None = None) -> None:
        self.config = config
        self.notifier = notifier or Notifier()  # systemd sd_notify; a no-op outside systemd
        self.bus = bus
        self.counters = CounterSink()
        bus.subscribe(self.counters)
        self.started_at = datetime.now()
        self.reconfigured_at = self.started_at
        self.restart_requested = restarting
        self.recovering = False
        self.recovery_deadline: float | None = None
        self._recovery_timer: asyncio.TimerHandle | None = None
        self.rib = Rib(
            asn=config.asn,
            router_id=config.router_id,
            export_policy=CalicoExportPolicy(
                _prefixes(config.originate.blocks), _prefixes(config.pools.cidrs)
            ),
            merge_paths=config.kernel.merge_paths,
            merge_limit=config.kernel.merge_limit,
        )
        self.kernel_policy = CalicoKernelPolicy(
            _prefixes(config.kernel.reject_cidrs), _prefixes(config.originate.blocks)
        )
        self.bridge = KernelBridge(
            bridge_config(config), self._kernel_learned, self._kernel_unlearned, bus.publish
        )
        self.peers: dict[str, PeerState] = {}
        self._by_address: dict[IPv4Address, str] = {}
        self._hop_sets: dict[tuple[IpAddress, ...], tuple[IpAddress, ...]] = {}
        self._server: asyncio.Server | None = None
        self._control: object | None = None
        self._flush_scheduled = False
        self._stopping = asyncio.Event()
        self.exit_code = 0
        self.shutting_down = False

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Kernel first (adopt our routes), then the RIB's own routes, listener, sessions."""
        from speaker.backend import SpeakerBackend
        from speaker.control.server import ControlServer

        await self.bridge.start()
        adopted = [e for e in self.bridge.snapshot().entries if e.installed is not None]
        self.recovering = self.restart_requested or bool(adopted)
        if self.recovering:
            cause = (
                "started with --graceful-restart"
                if self.restart_requested
                else f"{len(adopted)} routes of protocol {self.config.kernel.protocol} "
                "survived in the kernel"
            )
            self.bus.publish(RecoveryEvent(True, cause))
            wait = float(self.config.graceful_restart_wait)
            loop = asyncio.get_running_loop()
            self.recovery_deadline = loop.time() + wait
            self._recovery_timer = loop.call_later(
                wait, self._end_recovery, f"graceful restart wait of {wait:g} s elapsed"
            )
        blocks = _prefixes(self.config.originate.blocks)
        self._apply(self.rib.set_origins(blocks, kind=SourceKind.LOCAL))
        self._server = await asyncio.get_running_loop().create_server(
            lambda: _Incoming(self),
            host=str(self.config.listen),
            port=self.config.port,
            reuse_address=True,
        )
        backend = SpeakerBackend(self)
        control = ControlServer(backend, self.config.control_socket)
        await control.start()
        self._control = control
        for peer in self.config.peers:
            self._add_peer(peer)
        self.bus.publish(
            DaemonEvent(
                f"speaker {self.config.router_id} AS{self.config.asn} listening on "
                f"{self.config.listen}:{self.config.port}, {len(self.config.peers)} peers, "
                f"control socket {self.config.control_socket}"
            )
        )
        if not self.recovering:
            self._check_converged()

    def _add_peer(self, peer: PeerConfig) -> None:
        transport = PeerTransport(
            session_config(self.config, peer, restarting=self.recovering), self._session_event
        )
        self.peers[peer.name] = PeerState(peer, transport)
        self._by_address[peer.address] = peer.name
        transport.start()

    async def _remove_peer(self, name: str, subcode: CeaseSubcode) -> None:
        state = self.peers.pop(name)
        self._by_address.pop(state.config.address, None)
        state.transport.session.stop(state.transport.now, subcode)
        state.transport.pump()
        self.rib.remove_out_peer(name)
        with contextlib.suppress(KeyError):
            self._apply(self.rib.remove_peer(name))
        await asyncio.sleep(0)
        state.transport.abort()

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
        self.bus.publish(DaemonEvent(f"stopping ({why}): Cease/Administrative Shutdown to peers"))
        self.notifier.stopping(f"stopping ({why})")
        self.shutting_down = True  # before the sessions drop: their withdrawals skip the kernel
        now_peers = list(self.peers.values())
        for state in now_peers:
            state.transport.session.stop(
                state.transport.now, CeaseSubcode.ADMINISTRATIVE_SHUTDOWN, "speaker shutting down"
            )
            state.transport.pump()
        self.shutting_down = True
        self._stopping.set()

    async def graceful_restart(self) -> str:
        """A planned restart: close sessions without NOTIFICATION, keep kernel routes, exit.

        Peers keep our routes stale (RFC 4724 4.2); the next start finds our routes in the
        kernel and recovers (restarting side)."""
        for state in self.peers.values():
            state.transport.session.graceful_shutdown(state.transport.now)
            state.transport.pump()
        self.bridge.config = dataclasses.replace(self.bridge.config, persist=True)
        self.bus.publish(
            DaemonEvent("planned graceful restart: sessions closed without NOTIFICATION")
        )
        self.shutting_down = True
        self.notifier.stopping("planned graceful restart")
        asyncio.get_running_loop().call_later(0.2, self._stopping.set)
        return "Graceful restart initiated"

    async def shutdown(self) -> None:
        """Let the NOTIFICATIONs leave, close everything; the kernel keeps routes (persist)."""
        await asyncio.sleep(0.2)
        if self._recovery_timer is not None:
            self._recovery_timer.cancel()
        # connections closed with a NOTIFICATION drain until the peer has read it (bounded)
        await asyncio.gather(*(s.transport.wait_closed() for s in self.peers.values()))
        for state in self.peers.values():
            state.transport.abort()
        if self._server is not None:
            self._server.close()
        control = self._control
        if control is not None:
            with contextlib.suppress(Exception):
                await control.close()  # type: ignore[attr-defined]
        await self.bridge.stop()
        self.bus.publish(DaemonEvent("stopped"))

    async def reload(self) -> None:
        """SIGHUP: apply a new config; an invalid one is refused and the running one kept."""
        try:
            new = load_config(self.config.source)
        except (ConfigError, OSError) as exc:
            self.bus.publish(DaemonEvent(f"reload refused, keeping the running config: {exc}"))
            return
        changed = [
            (k, getattr(self.config, k), getattr(new, k))
            for k in ("router_id", "asn", "listen", "port", "control_socket", "kernel")
            if getattr(self.config, k) != getattr(new, k)
        ]
        if changed:
            names = ", ".join(k for k, _, _ in changed)
            self.bus.publish(
                DaemonEvent(f"reload refused: {names} cannot change without a restart")
            )
            return
        old_peers = {p.name: p for p in self.config.peers}
        new_peers = {p.name: p for p in new.peers}
        self.config = new
        for name, peer in old_peers.items():
            if name not in new_peers:
                await self._remove_peer(name, CeaseSubcode.PEER_DECONFIGURED)
            elif new_peers[name] != peer:
                await self._remove_peer(name, CeaseSubcode.OTHER_CONFIGURATION_CHANGE)
        for name, peer in new_peers.items():
            if name not in self.peers:
                self._add_peer(peer)
        self.rib.export_policy = CalicoExportPolicy(
            _prefixes(new.originate.blocks), _prefixes(new.pools.cidrs)
        )
        self.kernel_policy = CalicoKernelPolicy(
            _prefixes(new.kernel.reject_cidrs), _prefixes(new.originate.blocks)
        )
        self._apply(self.rib.set_origins(_prefixes(new.originate.blocks), kind=SourceKind.LOCAL))
        self.reconfigured_at = datetime.now()
        added = sorted(set(new_peers) - set(old_peers))
        removed = sorted(set(old_peers) - set(new_peers))
        self.bus.publish(
            DaemonEvent(
                f"reloaded {new.source}: peers added {added or '-'}, removed {removed or '-'}"
            )
        )

    # -- session events -----------------------------------------------------------------------

    def _session_event(self, transport: PeerTransport, event: Event) -> None:
        self.bus.publish(event)
        name = self._name_of(transport)
        if name is None:
            return
        state = self.peers[name]
        if isinstance(event, StateChange):
            state.since = time.time()
        elif isinstance(event, UpdateReceived):
            self._apply(self.rib.apply_update(name, event.update))
        elif isinstance(event, SessionUp):
            self._session_up(state, event)
        elif isinstance(event, EndOfRib):
            state.eor_received = True
            self._apply(self.rib.end_of_rib(name, event.family))
            if self.recovering:
                self._check_recovery()
            else:
                self._check_converged()
        elif isinstance(event, RouteRefreshReceived):
            self._route_refresh(state, event)
        elif isinstance(event, SessionDown):
            self._session_down(state, event)
        elif isinstance(event, GracefulRestartEnded):
            for family in event.families:  # only the families whose restart ended
                self._apply(self.rib.sweep_stale(name, family))

    def _name_of(self, transport: PeerTransport) -> str | None:
        name = self._by_address.get(transport.config.peer_address)
        if name is None or self.peers[name].transport is not transport:
            return None
        return name

    def _session_up(self, state: PeerState, event: SessionUp) -> None:
        info = event.info
        name = state.config.name
        state.eor_received = False
        state.feed_sent = False
        self.rib.add_peer(
            PeerInfo(
                name=name,
                address=info.peer_address,
                router_id=info.peer_id,
                asn=info.peer_as,
                internal=info.internal,
            )
        )
        local = state.transport.local_address(event.conn_id)
        if local is None:
            local = state.config.source_address or self.config.router_id
        self.rib.add_out_peer(name, info.context, local_address=local)
        if not self.recovering:
            self._send_feed(state)

    def _send_feed(self, state: PeerState) -> None:
        session = state.transport.session
        for message in self.rib.initial_feed(state.config.name):
            session.send_update(message)
        state.feed_sent = True
        state.transport.pump()

    def _route_refresh(self, state: PeerState, event: RouteRefreshReceived) -> None:
        name = state.config.name
        if event.subtype == RouteRefreshSubtype.NORMAL:
            if state.feed_sent:
                session = state.transport.session
                for message in self.rib.route_refresh(name, event.family):
                    if message[18] == MessageType.ROUTE_REFRESH:
                        # BoRR/EoRR around the re-sent routes (RFC 7313 4)
                        subtype = RouteRefreshSubtype(message[21])
                        session.send_route_refresh(event.family, subtype)
                    else:
                        session.send_update(message)
                state.transport.pump()
        elif event.subtype == RouteRefreshSubtype.BORR:
            self.rib.begin_refresh(name, event.family)
        elif event.subtype == RouteRefreshSubtype.EORR:
            self._apply(self.rib.end_refresh(name, event.family))

    def _session_down(self, state: PeerState, event: SessionDown) -> None:
        name = state.config.name
        self.rib.remove_out_peer(name)
        state.feed_sent = False
        if name not in {p.name for p in self.rib.peers()}:
            return
        if event.graceful:
            self._apply(self.rib.mark_stale(name))
        else:
            self._apply(self.rib.drop_peer(name))

    # -- convergence and recovery -------------------------------------------------------------

    def _gr_peers_pending(self) -> list[str]:
        pending = []
        for name, state in self.peers.items():
            if not state.enabled or not state.config.graceful_restart:
                continue
            if not state.eor_received:
                pending.append(name)
        return pending

    def _check_recovery(self) -> None:
        pending = self._gr_peers_pending()
        if not pending:
            self._end_recovery("End-of-RIB received from every graceful-restart peer")

    def _end_recovery(self, cause: str) -> None:
        if not self.recovering:
            return
        self.recovering = False
        self.recovery_deadline = None
        if self._recovery_timer is not None:
            self._recovery_timer.cancel()
            self._recovery_timer = None
        self.bus.publish(RecoveryEvent(False, cause))
        for state in self.peers.values():
            # RFC 4724 3 (as BIRD): R and F only while recovering; a later flap reopens plain
            state.transport.session.set_restart_flags(restarting=False, forwarding_preserved=False)
            if state.transport.session.negotiated is not None and not state.feed_sent:
                with contextlib.suppress(Exception):
                    self._send_feed(state)
        self.bridge.converged()

    def _check_converged(self) -> None:
        """Outside recovery: let the kernel sweep once every enabled peer sent End-of-RIB
        (or the bridge's own convergence wait passes)."""
        if all(s.eor_received for s in self.peers.values() if s.enabled):
            self.bridge.converged()

    def recovery_status(self) -> tuple[int, int, int] | None:
        """(peers still awaited, seconds left, seconds total) while recovering."""
        if not self.recovering or self.recovery_deadline is None:
            return None
        left = max(0, int(self.recovery_deadline - asyncio.get_running_loop().time()))
        return len(self._gr_peers_pending()), left, int(self.config.graceful_restart_wait)

    # -- routes ---------------------------------------------------------------------------------

    def _apply(self, changes: Iterable[RouteChange]) -> None:
        """Follow RIB changes into the kernel and mark the peers' feeds for a flush."""
        any_change = False
        for change in changes:
            any_change = True
            self.bus.publish(change)
            self._program(change)
        if any_change:
            self._schedule_flush()

    def _program(self, change: RouteChange) -> None:
        if self.shutting_down:
            # As BIRD's krt_rt_notify during shutdown: the kernel keeps what it has (persist;
            # without persist, bridge.stop() removes our routes itself).
            return
        net = change.prefix.network
        best = change.new_best
        if best is None:
            self.bridge.unwant(net)
            return
        decision = self.kernel_policy.explain(change.prefix, best)
        if not decision.accepted:
            self.bridge.unwant(net)
        elif decision.blackhole:
            self.bridge.want(KernelRoute(net, (), True))
        else:
            members = change.new_ecmp or (best,)
            hops: tuple[IpAddress, ...]
            if len(members) == 1:  # one path (the usual case): no generator, no dict
                hop = members[0].next_hop
                hops = () if hop is None else (hop,)
            else:
                hops = tuple(dict.fromkeys(p.next_hop for p in members if p.next_hop is not None))
            if hops:
                # A feed has a handful of next-hop sets: share one tuple per set
                # (integration/bench/convergence.py: 100,000 routes, 4.6 MiB of 1-tuples).
                if len(self._hop_sets) > 4096:
                    self._hop_sets.clear()
                hops = self._hop_sets.setdefault(hops, hops)
                self.bridge.want(KernelRoute(net, hops))
            else:
                self.bridge.unwant(net)

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        for name, messages in self.rib.flush_all().items():
            state = self.peers.get(name)
            if state is None or not state.feed_sent or not messages:
                continue
            for message in messages:
                state.transport.session.send_update(message)
            state.transport.pump()

    def _kernel_learned(self, route: LearnedRoute) -> None:
        hop = route.nexthops[0] if route.nexthops else None
        prefix = Prefix.from_network(route.prefix)
        self._apply(self.rib.originate(prefix, kind=SourceKind.KERNEL, next_hop=hop))

    def _kernel_unlearned(self, prefix: IPv4Network | IPv6Network) -> None:
        self._apply(self.rib.withdraw_origin(Prefix.from_network(prefix), kind=SourceKind.KERNEL))

    # -- incoming connections --------------------------------------------------------------------

    def accept(self, connection: BgpConnection, address: str, port: int) -> bool:
        """Hand an incoming connection to its peer; refuse unknown sources."""
        try:
            name = self._by_address.get(IPv4Address(address))
        except ValueError:
            name = None
        if name is None or self.shutting_down:
            self.bus.publish(ConnectionRefused(address, port))
            return False
        self.peers[name].transport.accept(connection)
        return True

    def route_refresh_request(self, name: str) -> None:
        """Ask a peer to send its routes again (``refresh NAME``)."""
        state = self.peers[name]
        state.transport.session.send_route_refresh(IPV4_UNICAST)
        state.transport.pump()


class _Incoming(BgpConnection):
    """A connection accepted on port 179, not yet matched to a peer."""

    def __init__(self, speaker: Speaker) -> None:
        super().__init__(None)
        self._speaker = speaker

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        peer = transport.get_extra_info("peername")
        address, port = (peer[0], peer[1]) if peer else ("?", 0)
        if not self._speaker.accept(self, address, port) and self.transport is not None:
            self.transport.abort()


def run_daemon(
    config_path: str,
    *,
    json_events: bool = False,
    log_level: str = "INFO",
    restarting: bool = False,
    metrics_listen: str | None = None,
    log_format: str = LogFormat.TEXT,
) -> int:
    """``speaker run``: load the config (refusing a bad one), run until SIGTERM."""
    style = configure_logging(log_level, LogFormat(log_format))
    # The log format (setup_logging) shows neither thread, process nor caller, so don't collect
    # them for every record (the logging HOWTO's "Optimization"): 22% less CPU per record, and
    # a 100,000-route feed logs a line per kernel route.
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        print(f"speaker: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"speaker: cannot read {config_path}: {exc.strerror}", file=sys.stderr)
        return 2
    # A 100,000-route feed keeps many small objects alive; the default GC threshold (700)
    # rescans them over and over.  Measured on the 100k distinct capture, decode + RIB:
    # 2.9 s with the default, 2.1 s with 20,000.
    gc.set_threshold(20_000, 20, 20)
    bus = EventBus()
    bus.subscribe(event_log(style, log_level))
    if json_events:
        bus.subscribe(JsonSink(sys.stdout))
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
    os.makedirs(os.path.dirname(os.path.abspath(config.control_socket)), exist_ok=True)
    speaker = Speaker(config, bus, restarting=restarting, notifier=Notifier.from_environ())
    try:
        return asyncio.run(speaker.run())
    except OSError as exc:
        log.error("speaker: %s", exc)
        return 1
