"""The core's state as the control socket shows it (BIRD 1.6.8's ``show`` views).

Read-only: these functions build the view dataclasses of :mod:`speaker.control.views` from the
core's query methods (:meth:`SpeakerCore.peers`, its RIB) and the kernel bridge's read side
(:class:`KernelReader`).  Times of the core's monotonic clock become wall-clock ``datetime``
through ``wall``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from ipaddress import IPv4Address
from typing import Protocol

from speaker.control.views import (
    BgpAttrs,
    BgpDetails,
    BgpState,
    GracefulRestartStatus,
    KernelRouteView,
    KernelView,
    LimitView,
    NextHop,
    ProtocolStatus,
    ProtoState,
    RouteCounts,
    RouteKind,
    RouteView,
    StatusView,
    TimerView,
)
from speaker.core.peers import PeerRecord, peer_families
from speaker.core.speaker import SpeakerCore
from speaker.kernel.model import (
    InstalledRoute,
    IPAddress,
    IPNetwork,
    KernelSnapshot,
    LearnedRoute,
    RouteState,
    RouteType,
)
from speaker.rib.path import SourceKind
from speaker.rib.query import PathView
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
from speaker.wire.context import IPV4_UNICAST, Family
from speaker.wire.enums import Afi
from speaker.wire.nlri import Prefix

Wall = Callable[[float], datetime]


class KernelReader(Protocol):
    """The read side of the kernel bridge."""

    last_scan: float | None

    def snapshot(self) -> KernelSnapshot: ...

    def learned(self) -> dict[IPNetwork, LearnedRoute]: ...

    def interface_for(self, gateway: IPAddress) -> str | None: ...

    def interface_name(self, ifindex: int) -> str | None: ...


_BGP_STATE = {
    State.IDLE: BgpState.IDLE,
    State.CONNECT: BgpState.CONNECT,
    State.ACTIVE: BgpState.ACTIVE,
    State.OPENSENT: BgpState.OPEN_SENT,
    State.OPENCONFIRM: BgpState.OPEN_CONFIRM,
    State.ESTABLISHED: BgpState.ESTABLISHED,
}

_ORIGIN = {0: "IGP", 1: "EGP", 2: "Incomplete"}


def neighbor_caps(caps: Sequence[object], family: Family = IPV4_UNICAST) -> tuple[str, ...]:
    """BIRD's "Neighbor caps" words for the capabilities of a peer's OPEN (add-path as
    offered for ``family``: bird6 shows its IPv6 unicast entry)."""
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
            mode = cap.mode(family)
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



def protocols(core: SpeakerCore, now: float, wall: Wall) -> list[ProtocolStatus]:
    """``show protocols``: static1, kernel1 and one row per BGP peer."""
    started = wall(core.started_at if core.started_at is not None else now)
    rows: list[ProtocolStatus] = [
        ProtocolStatus(
            name="static1",
            proto="Static",
            state=ProtoState.UP,
            since=started,
            preference=200,
            routes=RouteCounts(imported=len(core.config.originate.blocks)),
        ),
        ProtocolStatus(
            name="kernel1", proto="Kernel", state=ProtoState.UP, since=started, preference=10
        ),
    ]
    rows.extend(bgp_status(core, record, now, wall) for record in core.peers())
    return rows


def bgp_status(core: SpeakerCore, record: PeerRecord, now: float, wall: Wall) -> ProtocolStatus:
    """One BGP peer's ``show protocols all`` row."""
    session = record.session
    cfg = record.config
    info = session.negotiated
    bgp_state = _BGP_STATE.get(session.state, BgpState.IDLE)
    if not record.enabled:
        proto_state = ProtoState.DOWN
    elif session.state is State.ESTABLISHED:
        proto_state = ProtoState.UP
    else:
        proto_state = ProtoState.START
    if cfg.passive and bgp_state is BgpState.ACTIVE:
        bgp_state = BgpState.PASSIVE
    # the state alone: the renderer appends last_error (BIRD's bgp_get_status)
    info_text = bgp_state.value if proto_state is not ProtoState.DOWN else ""
    hold = keep = None
    caps: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    neighbor_id: IPv4Address | None = None
    if info is not None and session.state is State.ESTABLISHED:
        neighbor_id = info.peer_id
        family = peer_families(cfg)[0]
        caps = neighbor_caps(info.remote_open.capabilities, family)
        flags_l = ["internal" if info.internal else "external"]
        if cfg.multihop:
            flags_l.append("multihop")
        if info.asn4:
            flags_l.append("AS4")
        if family in info.addpath_receive:
            flags_l.append("add-path-rx")
        if family in info.addpath_send:
            flags_l.append("add-path-tx")
        flags = tuple(flags_l)
        hold = TimerView(info.hold_time, info.hold_time)
        keep = TimerView(info.keepalive_time, info.keepalive_time)
    routes = RouteCounts()
    name = cfg.name
    gr_active = False
    restart_timer: TimerView | None = None
    rib = core.rib
    if name in {p.name for p in rib.peers()}:
        adj = rib.adj_in(name)
        # kept by the Loc-RIB: no walk
        best = rib.loc.best_by_source.get(name, 0) + rib.loc.best_by_source6.get(name, 0)
        exported = len(rib.adj_out(name)) if name in rib.out_peers() else 0
        routes = RouteCounts(imported=len(adj), exported=exported, preferred=best)
        # BIRD's gr_active: the peer's routes are stale until its End-of-RIB or timer
        gr_active = adj.gr_active
        deadline = session.restart_deadline
        if gr_active and deadline is not None:
            restart_timer = TimerView(max(0, int(deadline - now)))
    return ProtocolStatus(
        name=name,
        proto="BGP",
        state=proto_state,
        since=wall(record.since),
        info=info_text,
        last_error=session.last_error or "",
        description=cfg.description,
        routes=routes,
        limits=tuple(
            LimitView(f"{s.direction.capitalize()} limit:", s.limit, s.action.value, s.hit)
            for s in record.limits
        ),
        bgp=BgpDetails(
            neighbor_address=cfg.address,
            neighbor_as=cfg.asn,
            neighbor_id=neighbor_id,
            neighbor_caps=caps,
            session_flags=flags,
            source_address=cfg.source_address,
            hold_timer=hold,
            keepalive_timer=keep,
            restart_timer=restart_timer,
            graceful_restart_active=gr_active,
            passive=cfg.passive,
            local_as=core.config.asn,
            peer_port=cfg.port,
        ),
    )


def route_count(
    core: SpeakerCore, protocol: str | None = None, primary: bool = False,
    family: int | None = None,
) -> tuple[int, int, int]:
    """``show route [primary] count [protocol P]``: (shown, routes, networks) from the RIB's
    counters, O(peers): the same figures as counting :func:`routes`' rows.  ``family`` 4 or 6
    counts one family (BIRD 1.6's bird and bird6 each count their own), None both."""
    afi = None if family is None else (Afi.IPV4 if family == 4 else Afi.IPV6)
    return core.rib.counts(afi).route_count(protocol, primary)


def status(core: SpeakerCore, now: float, wall: Wall) -> StatusView:
    """``show status``."""
    gr = core.recovery_status(now)
    started = core.started_at if core.started_at is not None else now
    reconfigured = core.reconfigured_at if core.reconfigured_at is not None else started
    return StatusView(
        router_id=core.config.router_id,
        server_time=wall(now),
        last_reboot=wall(started),
        last_reconfiguration=wall(reconfigured),
        graceful_restart=GracefulRestartStatus(*gr) if gr is not None else None,
        shutting_down=core.shutting_down,
        control_socket6=core.config.control_socket6,
    )


def routes(
    core: SpeakerCore, kernel: KernelReader, for_addr: IPNetwork | None = None
) -> list[RouteView]:
    """``show route [for ADDR]``, with each programmed route's kernel state."""
    if for_addr is not None:
        views = core.rib.show_route(for_address=Prefix.from_network(for_addr))
    else:
        views = core.rib.show_route()
    in_table = kernel.snapshot().by_prefix()
    learned = kernel.learned()
    out: list[RouteView] = []
    for view in views:
        net = view.prefix.network
        entry = in_table.get(net)
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
            sync_error = bool(programmed and pv.best and refused)
            shown = in_kernel if programmed else None
            reason = None
            if programmed and pv.best and not in_kernel:
                decision = core.intents.policy.explain(view.prefix, pv.path)
                if not decision.accepted:
                    reason = decision.describe()
            route = _route(kernel, learned, net, pv, shown, sync_error)
            out.append(replace(route, kernel_reason=reason) if reason else route)
    return out


_SOURCE_NAME = {
    SourceKind.BGP: "BGP",
    SourceKind.LOCAL: "static",
    SourceKind.KERNEL: "inherit",
    SourceKind.DIRECT: "device",
}


def _route(
    kernel: KernelReader,
    learned: dict[IPNetwork, LearnedRoute],
    net: IPNetwork,
    pv: PathView,
    in_kernel: bool | None,
    sync_error: bool,
) -> RouteView:
    path = pv.path
    attrs = path.attrs
    kind = RouteKind.ROUTER
    hops: tuple[NextHop, ...] = ()
    iface: str | None = None
    nh = path.next_hop
    if path.source is SourceKind.LOCAL:
        kind = RouteKind.BLACKHOLE
    elif nh is not None:
        iface = kernel.interface_for(nh)
        hops = (NextHop(nh, iface or "?"),)
    else:
        kind = RouteKind.DEVICE
        alien = learned.get(net)
        iface = alien.ifname if alien is not None else None
    bgp = None
    if path.source is SourceKind.BGP:
        as_path: list[int] = []
        for seg in attrs.as_path or ():
            as_path.extend(seg.asns)
        bgp = BgpAttrs(
            origin=_ORIGIN.get(int(attrs.origin), "?") if attrs.origin is not None else "IGP",
            as_path=tuple(as_path),
            next_hop=nh,
            med=attrs.med,
            local_pref=attrs.local_pref,
            atomic_aggregate=attrs.atomic_aggregate,
            aggregator=attrs.aggregator,
            communities=tuple((c >> 16, c & 0xFFFF) for c in attrs.communities),
            originator_id=attrs.originator_id,
            cluster_list=attrs.cluster_list,
            large_communities=attrs.large_communities,
        )
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
        source=_SOURCE_NAME[path.source],
        bgp=bgp,
        stale=path.stale,
        from_address=from_address,
        path_id=path.path_id,
        in_kernel=in_kernel,
        sync_error=sync_error,
    )


def kernel_view(core: SpeakerCore, kernel: KernelReader) -> KernelView:
    """``show kernel``: our routes (wanted vs held) and the alien routes learned."""
    snap = kernel.snapshot()
    k = core.config.kernel
    rows: list[KernelRouteView] = []
    for entry in snap.entries:
        wanted = entry.wanted
        held_kind, held_hops = _installed_dest(kernel, entry.installed)
        held = ""
        if wanted is None:  # ours in the kernel, not wanted: show what it holds
            kind, hops = held_kind, held_hops
        else:
            if wanted.blackhole:
                kind = RouteKind.BLACKHOLE
            else:
                kind = RouteKind.MULTIPATH if len(wanted.nexthops) > 1 else RouteKind.ROUTER
            hops = tuple(
                NextHop(h, kernel.interface_for(h) or "?")
                for h in wanted.nexthops
            )
            if entry.state is not RouteState.INSTALLED:
                held = "none" if entry.installed is None else _dest_text(held_kind, held_hops)
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
    for route in sorted(kernel.learned().values(), key=_learned_order):
        rows.append(_learned_row(kernel, route.prefix, route))
    last_scan = kernel.last_scan
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
    kernel: KernelReader, installed: InstalledRoute | None
) -> tuple[RouteKind, tuple[NextHop, ...]]:
    """Kind and next hops of our route as the kernel holds it."""
    if installed is None:
        return RouteKind.ROUTER, ()
    if installed.type is not RouteType.UNICAST:
        return _KIND_OF_TYPE.get(installed.type, RouteKind.UNREACHABLE), ()
    hops = tuple(
        NextHop(gw, kernel.interface_name(index) or f"if{index}")
        for gw, index in zip(installed.nexthops, installed.ifindexes, strict=False)
        if gw is not None
    )
    return (RouteKind.MULTIPATH if len(hops) > 1 else RouteKind.ROUTER), hops


def _learned_row(kernel: KernelReader, prefix: IPNetwork, route: LearnedRoute) -> KernelRouteView:
    """An alien route the bridge learned (``learn``), as a ``show kernel`` row."""
    hops = tuple(
        NextHop(gw, route.ifname or kernel.interface_for(gw) or "?")
        for gw in route.nexthops
        if gw is not None
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
