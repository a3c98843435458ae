"""The control socket's view of the running daemon (implements ``ControlBackend``).

It turns session, RIB and kernel state into the view dataclasses of
:mod:`speaker.control.views`, which the control server prints as BIRD 1.6.8 does.  Queries
are snapshots taken on the event loop; actions call into :class:`speaker.daemon.Speaker`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from ipaddress import IPv4Address, IPv4Network, IPv6Network
from typing import TYPE_CHECKING

from speaker.control.commands import CommandFailed
from speaker.control.views import (
    ActionOutcome,
    BgpAttrs,
    BgpDetails,
    BgpState,
    GracefulRestartStatus,
    KernelRouteView,
    KernelView,
    NextHop,
    ProtocolStatus,
    ProtoState,
    RouteCounts,
    RouteKind,
    RouteView,
    StatusView,
    TimerView,
)
from speaker.kernel import InstalledRoute, LearnedRoute, RouteState, RouteType
from speaker.rib.path import SourceKind
from speaker.session import State
from speaker.wire.capabilities import (
    AddPathCapability,
    AddPathMode,
    EnhancedRouteRefreshCapability,
    FourOctetAsCapability,
    GracefulRestartCapability,
    LongLivedGracefulRestartCapability,
    RouteRefreshCapability,
)
from speaker.wire.context import IPV4_UNICAST
from speaker.wire.enums import CeaseSubcode
from speaker.wire.nlri import Prefix

if TYPE_CHECKING:
    from speaker.daemon import PeerState, Speaker
    from speaker.rib.query import PathView

_BGP_STATE = {
    State.IDLE: BgpState.IDLE,
    State.CONNECT: BgpState.CONNECT,
    State.ACTIVE: BgpState.ACTIVE,
    State.OPENSENT: BgpState.OPEN_SENT,
    State.OPENCONFIRM: BgpState.OPEN_CONFIRM,
    State.ESTABLISHED: BgpState.ESTABLISHED,
}

_ORIGIN = {0: "IGP", 1: "EGP", 2: "Incomplete"}


def neighbor_caps(caps: Sequence[object]) -> tuple[str, ...]:
    """BIRD's "Neighbor caps" words for the capabilities of a peer's OPEN."""
    words: list[str] = []
    for cap in caps:
        if isinstance(cap, RouteRefreshCapability):
            words.append("refresh")
        elif isinstance(cap, EnhancedRouteRefreshCapability):
            words.append("enhanced-refresh")
        elif isinstance(cap, GracefulRestartCapability):
            words.append("restart-able" if cap.families else "restart-aware")
        elif isinstance(cap, LongLivedGracefulRestartCapability):
            words.append("llgr-able" if cap.entries else "llgr-aware")
        elif isinstance(cap, FourOctetAsCapability):
            words.append("AS4")
        elif isinstance(cap, AddPathCapability):
            mode = cap.mode(IPV4_UNICAST)
            if mode & AddPathMode.RECEIVE:
                words.append("add-path-rx")
            if mode & AddPathMode.SEND:
                words.append("add-path-tx")
    order = [
        "refresh",
        "enhanced-refresh",
        "restart-able",
        "restart-aware",
        "llgr-able",
        "llgr-aware",
        "AS4",
        "add-path-rx",
        "add-path-tx",
    ]
    return tuple(w for w in order if w in words)


_KIND_OF_TYPE = {
    RouteType.BLACKHOLE: RouteKind.BLACKHOLE,
    RouteType.UNREACHABLE: RouteKind.UNREACHABLE,
    RouteType.PROHIBIT: RouteKind.PROHIBIT,
}


def _dest_text(kind: RouteKind, hops: Sequence[NextHop]) -> str:
    """``via 192.168.0.80 dev eth0[, via ...]`` or the route type, as ``show kernel`` shows it."""
    if kind in (RouteKind.ROUTER, RouteKind.MULTIPATH):
        return ", ".join(f"via {nh.gateway} dev {nh.iface}" for nh in hops) or "???"
    return kind.value


def _learned_order(route: LearnedRoute) -> tuple[int, int, int]:
    net = route.prefix
    return net.version, int(net.network_address), net.prefixlen


class SpeakerBackend:
    """``ControlBackend`` over a running :class:`Speaker`."""

    def __init__(self, speaker: Speaker) -> None:
        self.speaker = speaker
        self._learned: dict[IPv4Network | IPv6Network, LearnedRoute] = {}

    # -- queries ---------------------------------------------------------------------------

    def protocols(self) -> Sequence[ProtocolStatus]:
        sp = self.speaker
        rows: list[ProtocolStatus] = [
            ProtocolStatus(
                name="static1",
                proto="Static",
                state=ProtoState.UP,
                since=sp.started_at,
                preference=200,
                routes=RouteCounts(imported=len(sp.config.originate.blocks)),
            ),
            ProtocolStatus(
                name="kernel1",
                proto="Kernel",
                state=ProtoState.UP,
                since=sp.started_at,
                preference=10,
            ),
        ]
        rows.extend(self._bgp_status(state) for state in sp.peers.values())
        return rows

    def _bgp_status(self, state: PeerState) -> ProtocolStatus:
        sp = self.speaker
        session = state.transport.session
        info = session.negotiated
        now = state.transport.now
        bgp_state = _BGP_STATE.get(session.state, BgpState.IDLE)
        if not state.enabled:
            proto_state = ProtoState.DOWN
        elif session.state is State.ESTABLISHED:
            proto_state = ProtoState.UP
        else:
            proto_state = ProtoState.START
        if state.config.passive and bgp_state is BgpState.ACTIVE:
            bgp_state = BgpState.PASSIVE
        error = session.last_error or ""
        info_text = ""
        if proto_state is not ProtoState.DOWN:
            # the state alone: the renderer appends last_error (BIRD's bgp_get_status)
            info_text = bgp_state.value
        hold = keep = None
        caps: tuple[str, ...] = ()
        flags: tuple[str, ...] = ()
        neighbor_id: IPv4Address | None = None
        if info is not None and session.state is State.ESTABLISHED:
            neighbor_id = info.peer_id
            caps = neighbor_caps(info.remote_open.capabilities)
            flags_l = ["internal" if info.internal else "external"]
            if state.config.multihop:
                flags_l.append("multihop")
            if info.asn4:
                flags_l.append("AS4")
            if IPV4_UNICAST in info.addpath_receive:
                flags_l.append("add-path-rx")
            if IPV4_UNICAST in info.addpath_send:
                flags_l.append("add-path-tx")
            flags = tuple(flags_l)
            hold = TimerView(info.hold_time, info.hold_time)
            keep = TimerView(info.keepalive_time, info.keepalive_time)
        routes = RouteCounts()
        name = state.config.name
        gr_active = False
        restart_timer: TimerView | None = None
        if state.config.name in {p.name for p in sp.rib.peers()}:
            adj = sp.rib.adj_in(state.config.name)
            best = sum(
                1 for e in sp.rib.loc if e.best is not None and e.best.peer.name == name
            )
            exported = len(sp.rib.adj_out(name)) if name in sp.rib.out_peers() else 0
            routes = RouteCounts(imported=len(adj.paths), exported=exported, preferred=best)
            # BIRD's gr_active: the peer's routes are stale until its End-of-RIB or timer
            gr_active = adj.gr_active
            deadline = session.restart_deadline
            if gr_active and deadline is not None:
                restart_timer = TimerView(max(0, int(deadline - now)))
        return ProtocolStatus(
            name=state.config.name,
            proto="BGP",
            state=proto_state,
            since=datetime.fromtimestamp(state.since),
            info=info_text,
            last_error=error,
            description=state.config.description,
            routes=routes,
            bgp=BgpDetails(
                neighbor_address=state.config.address,
                neighbor_as=state.config.asn,
                neighbor_id=neighbor_id,
                neighbor_caps=caps,
                session_flags=flags,
                source_address=state.config.source_address,
                hold_timer=hold,
                keepalive_timer=keep,
                restart_timer=restart_timer,
                graceful_restart_active=gr_active,
                passive=state.config.passive,
                local_as=sp.config.asn,
                peer_port=state.config.port,
            ),
        )

    def routes(self, for_addr: IPv4Network | None = None) -> Sequence[RouteView]:
        sp = self.speaker
        if for_addr is not None:
            views = sp.rib.show_route(for_address=Prefix.from_network(for_addr))
        else:
            views = sp.rib.show_route()
        kernel = sp.bridge.snapshot().by_prefix()
        self._learned = sp.bridge.learned()
        out: list[RouteView] = []
        for view in views:
            net = view.prefix.network
            if not isinstance(net, IPv4Network):
                continue
            entry = kernel.get(net)
            in_kernel = entry is not None and entry.state is RouteState.INSTALLED
            # BIRD's KRF_SYNC_ERROR (`!`): wanted, not being changed, yet not in the kernel
            refused = (
                entry is not None
                and entry.wanted is not None
                and entry.state in (RouteState.MISSING, RouteState.DIFFERS)
            )
            for pv in view.paths:
                # the best path and its ECMP siblings (next hops of one kernel route); never
                # the routes learned from the kernel or a device
                programmed = (pv.best or pv.ecmp) and pv.path.source in (
                    SourceKind.BGP,
                    SourceKind.LOCAL,
                )
                sync_error = programmed and pv.best and refused
                out.append(self._route(net, pv, in_kernel if programmed else None, sync_error))
        return out

    def _route(
        self, net: IPv4Network, pv: PathView, in_kernel: bool | None, sync_error: bool = False
    ) -> RouteView:
        path = pv.path
        attrs = path.attrs
        kind = RouteKind.ROUTER
        hops: tuple[NextHop, ...] = ()
        iface: str | None = None
        nh = path.next_hop
        if path.source is SourceKind.LOCAL:
            kind = RouteKind.BLACKHOLE
        elif isinstance(nh, IPv4Address):
            iface = self._iface_for(nh)
            hops = (NextHop(nh, iface or "?"),)
        else:
            kind = RouteKind.DEVICE
            learned = self._learned.get(net)
            iface = learned.ifname if learned is not None else None
        bgp = None
        if path.source is SourceKind.BGP:
            as_path: list[int] = []
            for seg in attrs.as_path or ():
                as_path.extend(seg.asns)
            bgp = BgpAttrs(
                origin=_ORIGIN.get(int(attrs.origin), "?") if attrs.origin is not None else "IGP",
                as_path=tuple(as_path),
                next_hop=nh if isinstance(nh, IPv4Address) else None,
                med=attrs.med,
                local_pref=attrs.local_pref,
                atomic_aggregate=attrs.atomic_aggregate,
                aggregator=attrs.aggregator,
                communities=tuple((c >> 16, c & 0xFFFF) for c in attrs.communities),
                originator_id=attrs.originator_id,
                cluster_list=attrs.cluster_list,
                large_communities=attrs.large_communities,
            )
        source = {
            SourceKind.BGP: "BGP",
            SourceKind.LOCAL: "static",
            SourceKind.KERNEL: "inherit",
            SourceKind.DIRECT: "device",
        }[path.source]
        from_address = path.peer.address if path.source is SourceKind.BGP else None
        return RouteView(
            prefix=net,
            protocol=path.peer.name,
            since=datetime.fromtimestamp(path.since),
            kind=kind,
            nexthops=hops,
            iface=iface,
            primary=pv.best,
            preference=pv.preference,
            source=source,
            bgp=bgp,
            stale=path.stale,
            from_address=from_address if isinstance(from_address, IPv4Address) else None,
            path_id=path.path_id,
            in_kernel=in_kernel,
            sync_error=sync_error,
        )

    def _iface_for(self, gateway: IPv4Address) -> str | None:
        return self.speaker.bridge.interface_for(gateway)

    def status(self) -> StatusView:
        sp = self.speaker
        gr = sp.recovery_status()
        return StatusView(
            router_id=sp.config.router_id,
            server_time=datetime.now(),
            last_reboot=sp.started_at,
            last_reconfiguration=sp.reconfigured_at,
            graceful_restart=GracefulRestartStatus(*gr) if gr is not None else None,
            shutting_down=sp.shutting_down,
        )

    def kernel(self) -> KernelView:
        sp = self.speaker
        snap = sp.bridge.snapshot()
        k = sp.config.kernel
        rows: list[KernelRouteView] = []
        for entry in snap.entries:
            if not isinstance(entry.prefix, IPv4Network):
                continue
            wanted = entry.wanted
            installed = entry.installed
            held_kind, held_hops = self._installed_dest(installed)
            held = ""
            if wanted is None:  # ours in the kernel, not wanted: show what it holds
                kind, hops = held_kind, held_hops
            else:
                if wanted.blackhole:
                    kind = RouteKind.BLACKHOLE
                else:
                    many = len(wanted.nexthops) > 1
                    kind = RouteKind.MULTIPATH if many else RouteKind.ROUTER
                hops = tuple(
                    NextHop(h, self._iface_for(h) or "?")
                    for h in wanted.nexthops
                    if isinstance(h, IPv4Address)
                )
                if entry.state is not RouteState.INSTALLED:
                    held = "none" if installed is None else _dest_text(held_kind, held_hops)
            rows.append(
                KernelRouteView(
                    prefix=entry.prefix,
                    kind=kind,
                    nexthops=hops,
                    protocol=k.protocol,
                    state=str(entry.state),
                    error=entry.reason,
                    kernel=held,
                )
            )
        for route in sorted(sp.bridge.learned().values(), key=_learned_order):
            if isinstance(route.prefix, IPv4Network):
                rows.append(self._learned_row(route.prefix, route))
        last_scan = sp.bridge.last_scan
        return KernelView(
            protocol=k.protocol,
            table=k.table,
            learn=k.learn,
            persist=k.persist,
            scan_time=int(k.scan_time),
            merge_paths=k.merge_paths,
            merge_limit=k.merge_limit,
            last_scan=datetime.fromtimestamp(last_scan) if last_scan is not None else None,
            routes=tuple(rows),
            synced=snap.converged,
        )

    def _installed_dest(
        self, installed: InstalledRoute | None
    ) -> tuple[RouteKind, tuple[NextHop, ...]]:
        """Kind and next hops of our route as the kernel holds it."""
        if installed is None:
            return RouteKind.ROUTER, ()
        if installed.type is not RouteType.UNICAST:
            return _KIND_OF_TYPE.get(installed.type, RouteKind.UNREACHABLE), ()
        hops = tuple(
            NextHop(gw, self.speaker.bridge.interface_name(index) or f"if{index}")
            for gw, index in zip(installed.nexthops, installed.ifindexes, strict=False)
            if isinstance(gw, IPv4Address)
        )
        return (RouteKind.MULTIPATH if len(hops) > 1 else RouteKind.ROUTER), hops

    def _learned_row(self, prefix: IPv4Network, route: LearnedRoute) -> KernelRouteView:
        """An alien route the bridge learned (``learn``), as a ``show kernel`` row."""
        hops = tuple(
            NextHop(gw, route.ifname or self._iface_for(gw) or "?")
            for gw in route.nexthops
            if isinstance(gw, IPv4Address)
        )
        if route.type is not RouteType.UNICAST:
            kind = _KIND_OF_TYPE.get(route.type, RouteKind.UNREACHABLE)
        elif hops:
            kind = RouteKind.MULTIPATH if len(hops) > 1 else RouteKind.ROUTER
        else:
            kind = RouteKind.DEVICE
        return KernelRouteView(
            prefix=prefix,
            kind=kind,
            nexthops=hops,
            iface=route.ifname,
            protocol=route.protocol,
            ours=False,
            state="learned",
        )

    # -- actions ---------------------------------------------------------------------------

    def _peer(self, name: str) -> PeerState:
        state = self.speaker.peers.get(name)
        if state is None:
            raise CommandFailed(f"{name} is not a BGP peer")
        return state

    async def enable(self, name: str) -> ActionOutcome:
        state = self._peer(name)
        if state.enabled:
            return ActionOutcome.ALREADY
        state.enabled = True
        state.transport.start()
        return ActionOutcome.DONE

    async def disable(self, name: str) -> ActionOutcome:
        state = self._peer(name)
        if not state.enabled:
            return ActionOutcome.ALREADY
        state.enabled = False
        state.transport.session.stop(state.transport.now, CeaseSubcode.ADMINISTRATIVE_SHUTDOWN)
        state.transport.pump()
        return ActionOutcome.DONE

    async def restart(self, name: str) -> ActionOutcome:
        state = self._peer(name)
        state.transport.session.stop(state.transport.now, CeaseSubcode.ADMINISTRATIVE_RESET)
        state.transport.pump()
        state.enabled = True
        state.transport.start()
        return ActionOutcome.DONE

    async def refresh(self, name: str) -> ActionOutcome:
        state = self._peer(name)
        if state.transport.session.state is not State.ESTABLISHED:
            raise CommandFailed(f"{name}: session is not established")
        try:
            self.speaker.route_refresh_request(name)
        except Exception as exc:  # LocalProtocolError: refresh not negotiated
            raise CommandFailed(f"{name}: {exc}") from None
        return ActionOutcome.DONE

    async def graceful_restart(self) -> str:
        return await self.speaker.graceful_restart()
