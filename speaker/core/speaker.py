"""The speaker core: every decision of the running speaker, without I/O.

Inputs are method calls carrying ``now`` (seconds of a monotonic clock): transport inputs per
peer and connection (as a :class:`~speaker.session.PeerSession` takes them), kernel inputs
(routes learned and unlearned), commands (start, stop, enable, disable, refresh, reconfigure)
and the timer.  Outputs are actions for the transport (:meth:`SpeakerCore.next_action`),
bytes per connection (:meth:`SpeakerCore.data_to_send`), one deadline
(:meth:`SpeakerCore.get_timer`), kernel intents (through the :class:`KernelPort`) and events
(through ``publish``).  ``wake`` is called when output is waiting outside a transport input
(after a command, a kernel input, or when Adj-RIB-Out changes are due to be flushed), so an
adapter never has to remember to look.

What it decides: the peers' lifecycle (from the config and its diffs), the restarting side of
graceful restart (:mod:`speaker.core.restart`), End-of-RIB convergence and the kernel sweep,
route refresh (RFC 2918/7313), and what each RIB change means for the kernel
(:mod:`speaker.core.routes`) and for the peers' Adj-RIB-Out.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

from speaker.config import Config, LimitAction, PeerConfig
from speaker.core.events import DaemonEvent, RecoveryEvent
from speaker.core.io import Action, Close, Dial, Forget, KernelPort
from speaker.core.limits import LimitState, check_update
from speaker.core.peers import FAMILY_OF, PeerRecord, peer_families, session_config
from speaker.core.refusals import RefusalLog
from speaker.core.restart import Recovery, restart_cause
from speaker.core.routes import KernelIntents
from speaker.events import Event
from speaker.kernel.model import LearnedRoute
from speaker.rib import CalicoExportPolicy, CalicoKernelPolicy, PeerInfo, Rib, RouteChange
from speaker.rib.path import SourceKind
from speaker.session import (
    CloseConnection,
    ConnectRequest,
    EndOfRib,
    GracefulRestartEnded,
    Jitter,
    PeerSession,
    RouteRefreshReceived,
    RoutineMessageIn,
    SessionDown,
    SessionUp,
    State,
    StateChange,
    UpdateReceived,
    rfc4271_jitter,
)
from speaker.wire.enums import Afi, CeaseSubcode, RouteRefreshSubtype, Safi
from speaker.wire.errors import LocalProtocolError
from speaker.wire.messages import Notification, Update
from speaker.wire.nlri import Prefix

#: Config keys a reload cannot change (they need a restart).
FIXED_KEYS = ("router_id", "asn", "listen", "port", "control_socket", "kernel", "listen6",
              "control_socket6")


class CoreError(Exception):
    """A command that cannot be carried out; the message is for the operator."""


def _prefixes(nets: Iterable[IPv4Network | IPv6Network]) -> list[Prefix]:
    return [Prefix.from_network(n) for n in nets]


def own_addresses(config: Config) -> tuple[IPv4Address | IPv6Address, ...]:
    """The node's own addresses the speaker knows: router_id, listen, address6, listen6,
    source addresses."""
    own: list[IPv4Address | IPv6Address] = [config.router_id]
    if not config.listen.is_unspecified:
        own.append(config.listen)
    if config.address6 is not None:
        own.append(config.address6)
    if not config.listen6.is_unspecified:
        own.append(config.listen6)
    own.extend(p.source_address for p in config.peers if p.source_address is not None)
    return tuple(dict.fromkeys(own))


def _kernel_policy(config: Config) -> CalicoKernelPolicy:
    own = own_addresses(config)
    protect = [*config.kernel.protect, *(ip_network(a) for a in own)]
    return CalicoKernelPolicy(
        _prefixes(config.kernel.reject_cidrs),
        _prefixes(config.originate.blocks),
        pools=_prefixes(config.pools.cidrs),
        protect=_prefixes(protect),
        own=own,
    )


def _export_policy(config: Config) -> CalicoExportPolicy:
    return CalicoExportPolicy(_prefixes(config.originate.blocks), _prefixes(config.pools.cidrs))


class SpeakerCore:
    """The speaker without I/O: peers, RIB, graceful restart, convergence, kernel intents."""

    def __init__(
        self,
        config: Config,
        kernel: KernelPort,
        publish: Callable[[Event], None],
        *,
        restarting: bool = False,
        wake: Callable[[], None] | None = None,
        jitter: Jitter | None = None,
    ) -> None:
        self.config = config
        self._jitter = jitter if jitter is not None else rfc4271_jitter()
        """Timer jitter for every session (RFC 4271 10); tests pass ``no_jitter``."""
        self._publish = publish
        self.refusals = RefusalLog()
        self._wake = wake or (lambda: None)
        self.restart_requested = restarting
        self.recovery = Recovery(float(config.graceful_restart_wait))
        self.rib = Rib(
            asn=config.asn,
            router_id=config.router_id,
            export_policy=_export_policy(config),
            merge_paths=config.kernel.merge_paths,
            merge_limit=config.kernel.merge_limit,
        )
        self.intents = KernelIntents(kernel, _kernel_policy(config), publish)
        self._kernel = kernel
        self._peers: dict[str, PeerRecord] = {}
        self._by_address: dict[IPv4Address | IPv6Address, str] = {}
        self._actions: deque[Action] = deque()
        self.flush_due = False
        self.shutting_down = False
        self.keep_kernel_routes = False
        """A planned graceful restart: the kernel keeps our routes when we exit."""
        self.started_at: float | None = None
        self.reconfigured_at: float | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, now: float, *, adopted: int = 0) -> None:
        """Recovery or not (``adopted``: routes of ours the kernel still held), our own
        routes, then a session per configured peer."""
        self.started_at = self.reconfigured_at = now
        cause = restart_cause(self.restart_requested, adopted, self.config.kernel.protocol)
        if cause is not None:
            self.recovery.begin(now)
            self._publish(RecoveryEvent(True, cause))
        self._apply(self.rib.set_origins(_prefixes(self.config.originate.blocks),
                                         kind=SourceKind.LOCAL))
        for peer in self.config.peers:
            self._add_peer(peer, now)
        if not self.recovery.active:  # recovery ends at End-of-RIB or the wait, not now
            self._progress(now)
        self._wake()

    def stop(self, now: float, why: str = "") -> None:
        """Cease (Administrative Shutdown) to every peer; the kernel keeps what it has."""
        self._publish(DaemonEvent(f"stopping ({why}): Cease/Administrative Shutdown to peers"))
        self.shutting_down = True  # before the sessions drop: their withdrawals skip the kernel
        self.intents.frozen = True
        for record in list(self._peers.values()):
            record.session.stop(now, CeaseSubcode.ADMINISTRATIVE_SHUTDOWN, "speaker shutting down")
            self._drain(record, now)
        self._wake()

    def graceful_shutdown(self, now: float) -> str:
        """A planned restart: close sessions without NOTIFICATION, keep the kernel's routes.

        Peers keep our routes stale (RFC 4724 4.2); the next start finds them in the kernel
        and recovers (:mod:`speaker.core.restart`)."""
        self.shutting_down = True
        self.intents.frozen = True
        self.keep_kernel_routes = True
        for record in list(self._peers.values()):
            record.session.graceful_shutdown(now)
            self._drain(record, now)
        self._publish(DaemonEvent("planned graceful restart: sessions closed without NOTIFICATION"))
        self._wake()
        return "Graceful restart initiated"

    def reconfigure(self, new: Config, now: float) -> bool:
        """SIGHUP: apply a new config (peers added, removed, changed; policies, origins).
        Refused (False, the running config kept) when a key that needs a restart changed."""
        changed = [k for k in FIXED_KEYS if getattr(self.config, k) != getattr(new, k)]
        if changed:
            names = ", ".join(changed)
            self._publish(DaemonEvent(f"reload refused: {names} cannot change without a restart"))
            return False
        old_peers = {p.name: p for p in self.config.peers}
        new_peers = {p.name: p for p in new.peers}
        self.config = new
        for name, peer in old_peers.items():
            if name not in new_peers:
                self._remove_peer(name, CeaseSubcode.PEER_DECONFIGURED, now)
            elif new_peers[name] != peer:
                self._remove_peer(name, CeaseSubcode.OTHER_CONFIGURATION_CHANGE, now)
        for name, peer in new_peers.items():
            if name not in self._peers:
                self._add_peer(peer, now)
        self.rib.export_policy = _export_policy(new)
        self.intents.policy = _kernel_policy(new)
        self._apply(self.rib.set_origins(_prefixes(new.originate.blocks), kind=SourceKind.LOCAL))
        self.reconfigured_at = now
        added = sorted(set(new_peers) - set(old_peers))
        removed = sorted(set(old_peers) - set(new_peers))
        self._publish(
            DaemonEvent(
                f"reloaded {new.source}: peers added {added or '-'}, removed {removed or '-'}"
            )
        )
        self._progress(now)
        self._wake()
        return True

    def _add_peer(self, peer: PeerConfig, now: float) -> None:
        restarting = self.recovery.active
        config = session_config(self.config, peer, restarting=restarting)
        session = PeerSession(config, jitter=self._jitter)
        record = PeerRecord(peer, session, since=now)
        self._peers[peer.name] = record
        self._by_address[peer.address] = peer.name
        session.start(now)
        self._drain(record, now)

    def _remove_peer(self, name: str, subcode: CeaseSubcode, now: float) -> None:
        record = self._peers.pop(name)
        self._by_address.pop(record.config.address, None)
        record.session.stop(now, subcode)
        self._drain(record, now, live=False)
        self._actions.append(Forget(name))
        self.rib.remove_out_peer(name)
        if name in self._rib_peers():
            self.rib.remove_peer(name, self._apply)

    # -- commands on one peer ------------------------------------------------------------------

    def peer(self, name: str) -> PeerRecord:
        record = self._peers.get(name)
        if record is None:
            raise CoreError(f"{name} is not a BGP peer")
        return record

    def enable(self, name: str, now: float) -> bool:
        """Start a disabled peer's session; False if it was enabled."""
        record = self.peer(name)
        if record.enabled:
            return False
        record.enabled = True
        record.session.start(now)
        self._drain(record, now)
        self._wake()
        return True

    def disable(self, name: str, now: float) -> bool:
        """Cease (Administrative Shutdown) and keep the peer down; False if it was disabled.
        Convergence stops waiting for it."""
        record = self.peer(name)
        if not record.enabled:
            return False
        record.enabled = False
        record.session.stop(now, CeaseSubcode.ADMINISTRATIVE_SHUTDOWN)
        self._drain(record, now)
        self._progress(now)
        self._wake()
        return True

    def restart_peer(self, name: str, now: float) -> None:
        """Cease (Administrative Reset), then start again."""
        record = self.peer(name)
        record.session.stop(now, CeaseSubcode.ADMINISTRATIVE_RESET)
        self._drain(record, now)
        record.enabled = True
        record.session.start(now)
        self._drain(record, now)
        self._wake()

    def request_refresh(self, name: str, now: float) -> None:
        """Ask the peer to send its routes again (ROUTE-REFRESH, RFC 2918)."""
        record = self.peer(name)
        if record.session.state is not State.ESTABLISHED:
            raise CoreError(f"{name}: session is not established")
        try:
            for family in peer_families(record.config):
                record.session.send_route_refresh(family)
        except LocalProtocolError as exc:  # the family or route refresh not negotiated
            raise CoreError(f"{name}: {exc}") from None
        self._drain(record, now)
        self._wake()

    # -- transport inputs --------------------------------------------------------------------

    def accept(self, address: str, port: int, now: float) -> tuple[str, int] | None:
        """An incoming connection: (peer, conn id) to give it, or None (refused at once)."""
        try:
            name = self._by_address.get(ip_address(address))
        except ValueError:
            name = None
        if name is None or self.shutting_down:
            for event in self.refusals.refuse(address, port, now):
                self._publish(event)
            return None
        return name, self._peers[name].session.next_conn_id()

    def connection_made(
        self,
        peer: str,
        conn_id: int,
        now: float,
        *,
        outgoing: bool,
        local_address: IPv4Address | IPv6Address | None = None,
    ) -> None:
        record = self._peers.get(peer)
        if record is None:  # the peer was removed while we dialled it
            self._actions.append(Close(peer, conn_id))
            return
        if local_address is not None:
            record.local_addresses[conn_id] = local_address
        record.session.connection_made(conn_id, now, outgoing=outgoing)
        self._drain(record, now)

    def connection_note(self, peer: str, reason: str) -> None:
        """The transport learned why an abandoned attempt to ``peer`` failed."""
        record = self._peers.get(peer)
        if record is not None:
            record.session.note_failure(reason)

    def connection_failed(self, peer: str, conn_id: int, now: float, reason: str) -> None:
        record = self._peers.get(peer)
        if record is not None:
            record.session.connection_failed(conn_id, now, reason)
            self._drain(record, now)

    def connection_lost(self, peer: str, conn_id: int, now: float, reason: str = "") -> None:
        record = self._peers.get(peer)
        if record is not None:
            record.local_addresses.pop(conn_id, None)
            record.session.connection_lost(conn_id, now, reason)
            self._drain(record, now)

    def receive_data(self, peer: str, conn_id: int, data: bytes, now: float) -> None:
        record = self._peers.get(peer)
        if record is not None:
            record.session.receive_data(conn_id, data, now)
            self._drain(record, now)

    def report_send_backlog(self, peer: str, conn_id: int, octets: int, now: float) -> None:
        """The transport's count of octets handed out on a connection and not yet on the wire
        (RFC 9687 send hold timer, :meth:`PeerSession.report_send_backlog`)."""
        record = self._peers.get(peer)
        if record is not None:
            record.session.report_send_backlog(conn_id, octets, now)
            self._drain(record, now)

    def handle_timer(self, now: float) -> None:
        """Fire whatever is due: session timers, the end of our recovery wait."""
        for record in list(self._peers.values()):
            deadline = record.session.get_timer()
            if deadline is not None and deadline <= now:
                record.session.handle_timer(now)
                self._drain(record, now)
        if self.recovery.expired(now):
            self._end_recovery(f"graceful restart wait of {self.recovery.wait:g} s elapsed", now)
        self._wake()

    # -- kernel inputs -------------------------------------------------------------------------

    def kernel_learned(self, route: LearnedRoute) -> None:
        """An alien route the kernel bridge learned: a KERNEL origin in the RIB."""
        hop = route.nexthops[0] if route.nexthops else None
        prefix = Prefix.from_network(route.prefix)
        self._apply(self.rib.originate(prefix, kind=SourceKind.KERNEL, next_hop=hop))

    def kernel_unlearned(self, prefix: IPv4Network | IPv6Network) -> None:
        self._apply(self.rib.withdraw_origin(Prefix.from_network(prefix), kind=SourceKind.KERNEL))

    # -- outputs -------------------------------------------------------------------------------

    def next_action(self) -> Action | None:
        return self._actions.popleft() if self._actions else None

    def pending_connections(self) -> list[tuple[str, int]]:
        """(peer, conn id) of every connection with bytes waiting."""
        return [
            (name, cid)
            for name, record in self._peers.items()
            for cid in record.session.pending_connections()
        ]

    def data_to_send(self, peer: str, conn_id: int, limit: int | None = None) -> bytes:
        record = self._peers.get(peer)
        return b"" if record is None else record.session.data_to_send(conn_id, limit)

    def get_timer(self) -> float | None:
        deadlines = [t for r in self._peers.values() if (t := r.session.get_timer()) is not None]
        if self.recovery.deadline is not None:
            deadlines.append(self.recovery.deadline)
        return min(deadlines, default=None)

    def flush(self) -> None:
        """Turn the Adj-RIB-Out changes gathered since the last flush into UPDATEs."""
        self.flush_due = False
        for name, messages in self.rib.flush_all().items():
            record = self._peers.get(name)
            if record is None or not record.feed_sent:
                continue
            for message in messages:
                record.session.send_update(message)

    # -- session events ------------------------------------------------------------------------

    def _drain(self, record: PeerRecord, now: float, *, live: bool = True) -> None:
        """Handle every event the peer's session has queued: the kernel intents of them all
        (a read's worth of UPDATEs) go to the kernel as one batch."""
        self.intents.hold()
        try:
            self._drain_events(record, now, live)
        finally:
            self.intents.release()

    def _drain_events(self, record: PeerRecord, now: float, live: bool) -> None:
        session = record.session
        next_event = session.next_event
        publish = self._publish
        while (event := next_event()) is not None:
            kind = type(event)  # exact types: the two events of every UPDATE cost least
            if kind is UpdateReceived:
                publish(event)
                if live:
                    self._update(record, event.update, now)  # type: ignore[attr-defined]
                continue
            if kind is RoutineMessageIn:
                publish(event)
                continue
            if isinstance(event, ConnectRequest):
                timeout = max(session.config.connect_retry, 1.0)
                self._actions.append(
                    Dial(record.name, event.conn_id, event.address, event.port,
                         event.source_address, timeout)
                )
            elif isinstance(event, CloseConnection):
                data = session.data_to_send(event.conn_id)
                self._actions.append(Close(record.name, event.conn_id, data))
            publish(event)
            if live:
                self.intents.flush()  # the UPDATEs' routes reach the kernel first
                self._session_event(record, event, now)

    def _session_event(self, record: PeerRecord, event: Event, now: float) -> None:
        name = record.name
        if isinstance(event, StateChange):
            record.since = now
        elif isinstance(event, UpdateReceived):
            self._update(record, event.update, now)
        elif isinstance(event, SessionUp):
            self._session_up(record, event)
        elif isinstance(event, EndOfRib):
            record.eor_waiting.discard(event.family)
            record.eor_received = not record.eor_waiting
            self.rib.end_of_rib(name, event.family, self._apply)
            self._progress(now)
        elif isinstance(event, RouteRefreshReceived):
            self._route_refresh(record, event)
        elif isinstance(event, SessionDown):
            self._session_down(record, event)
        elif isinstance(event, GracefulRestartEnded):
            for family in event.families:  # only the families whose restart ended
                self.rib.sweep_stale(name, family, self._apply)

    def _update(self, record: PeerRecord, update: Update, now: float) -> None:
        """An UPDATE into the RIB, through the peer's route limits if it has any."""
        down: LimitState | None = None
        if record.limits and not update.treat_as_withdraw:
            outcome = check_update(
                update, self.rib.adj_in(record.name), record.limits, record.name
            )
            update = outcome.update
            for hit in outcome.hits:
                self._publish(hit)
            down = outcome.down
        self._apply(self.rib.apply_update(record.name, update))
        if down is not None:
            self._limit_down(record, down, now)

    def _limit_down(self, record: PeerRecord, state: LimitState, now: float) -> None:
        """A limit's restart or disable: Cease 6/1 with AFI, SAFI and the limit (RFC 4486 4).

        The session's events are handled by the ``_drain`` that is running."""
        afi, safi = peer_families(record.config)[0]
        note = Notification.cease_max_prefixes(Afi(afi), Safi(safi), state.limit)
        session = record.session
        why = f"route {state.direction} limit ({state.limit}) exceeded"
        if state.action is LimitAction.DISABLE:
            record.enabled = False
            session.stop(now, notification=note)
            self._progress(now)
        else:
            session.reset(now, note, why)
        # BIRD: bgp_store_error(BE_AUTO_DOWN, BEA_ROUTE_LIMIT_EXCEEDED)
        session.last_error = "Automatic shutdown: Route limit exceeded"
        self._wake()

    def _session_up(self, record: PeerRecord, event: SessionUp) -> None:
        info = event.info
        name = record.name
        for limit in record.limits:  # BIRD resets its limits when the protocol starts
            limit.reset()
        record.eor_received = False
        record.eor_waiting = {f for f in info.context.families if f in FAMILY_OF.values()}
        record.feed_sent = False
        self.rib.add_peer(
            PeerInfo(
                name=name,
                address=info.peer_address,
                router_id=info.peer_id,
                asn=info.peer_as,
                internal=info.internal,
            )
        )
        self.rib.add_out_peer(name, info.context,
                              local_address=self._next_hops(record, event.conn_id))
        if not self.recovery.active:
            self._send_feed(record)

    def _next_hops(self, record: PeerRecord, conn_id: int) -> list[IPv4Address | IPv6Address]:
        """Our addresses for the NEXT_HOP we announce on a session, per family: the
        connection's local address first (what BIRD announces: the session's own address),
        then, for the other family, router_id (IPv4) or address6 (IPv6)."""
        local = record.local_addresses.get(conn_id) or record.config.local_address
        out: list[IPv4Address | IPv6Address] = [local]
        if local.version == 6:
            out.append(self.config.router_id)
        elif self.config.address6 is not None:
            out.append(self.config.address6)
        return out

    def _send_feed(self, record: PeerRecord) -> None:
        for message in self.rib.initial_feed(record.name):
            record.session.send_update(message)
        record.feed_sent = True

    def _route_refresh(self, record: PeerRecord, event: RouteRefreshReceived) -> None:
        name = record.name
        if event.subtype == RouteRefreshSubtype.NORMAL:
            if not record.feed_sent:
                return  # the initial feed (after our recovery) answers it
            session = record.session
            answer = self.rib.refresh(name, event.family)
            for message in answer.pending:
                session.send_update(message)
            if answer.demarcate:  # BoRR/EoRR around the re-sent routes (RFC 7313 4)
                session.send_route_refresh(event.family, RouteRefreshSubtype.BORR)
            for message in answer.routes:
                session.send_update(message)
            if answer.demarcate:
                session.send_route_refresh(event.family, RouteRefreshSubtype.EORR)
        elif event.subtype == RouteRefreshSubtype.BORR:
            self.rib.begin_refresh(name, event.family)
        elif event.subtype == RouteRefreshSubtype.EORR:
            self._apply(self.rib.end_refresh(name, event.family))

    def _session_down(self, record: PeerRecord, event: SessionDown) -> None:
        name = record.name
        self.rib.remove_out_peer(name)
        record.feed_sent = False
        if name not in self._rib_peers():
            return
        if event.graceful:
            self.rib.mark_stale(name, each=self._apply)
        else:
            self.rib.drop_peer(name, self._apply)

    def _rib_peers(self) -> set[str]:
        return {p.name for p in self.rib.peers()}

    # -- convergence and recovery --------------------------------------------------------------

    def awaited_peers(self) -> list[str]:
        """The peers whose End-of-RIB we wait for: while recovering only the graceful-restart
        capable ones (RFC 4724 4.1), else every enabled one."""
        recovering = self.recovery.active
        return [
            name
            for name, r in self._peers.items()
            if r.awaited and (r.config.graceful_restart or not recovering)
        ]

    def _progress(self, now: float) -> None:
        """End recovery, or let the kernel sweep, once no End-of-RIB is awaited."""
        if self.awaited_peers():
            return
        if self.recovery.active:
            self._end_recovery("End-of-RIB received from every graceful-restart peer", now)
        else:
            self._kernel.converged()

    def _end_recovery(self, cause: str, now: float) -> None:
        if not self.recovery.end():
            return
        self._publish(RecoveryEvent(False, cause))
        for record in self._peers.values():
            # RFC 4724 3 (as BIRD): R and F only while recovering; a later flap reopens plain
            record.session.set_restart_flags(restarting=False, forwarding_preserved=False)
            established = record.session.state is State.ESTABLISHED
            if established and not record.feed_sent and record.name in self.rib.out_peers():
                self._send_feed(record)
        self._kernel.converged()

    def recovery_status(self, now: float) -> tuple[int, int, int] | None:
        """(peers still awaited, seconds left, seconds total) while recovering."""
        if not self.recovery.active:
            return None
        return len(self.awaited_peers()), self.recovery.left(now), int(self.recovery.wait)

    # -- routes --------------------------------------------------------------------------------

    def _apply(self, changes: Iterable[RouteChange]) -> None:
        """Publish RIB changes and follow them into the kernel, one batch per RIB delta (a
        whole peer's going: one per slice, see ``Rib._settle``); the peers' Adj-RIB-Out
        flush is due."""
        if self.intents.follow(changes) and not self.flush_due:
            self.flush_due = True
            self._wake()

    # -- queries -------------------------------------------------------------------------------

    def peers(self) -> list[PeerRecord]:
        """The configured peers, in config order (read them, do not change them)."""
        return list(self._peers.values())
