"""What the control socket shows, as frozen values, and the backend the daemon implements.

The daemon implements ControlBackend; the server turns the views into BIRD 1.6.8's exact
text (speaker/control/render.py) or into JSON (speaker/control/jsonview.py).  The fields
follow what BIRD prints in ``show protocols all`` / ``show route all`` / ``show status``,
so a field here is a line there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "ActionOutcome",
    "BgpAttrs",
    "BgpDetails",
    "BgpState",
    "ChangeStats",
    "ControlBackend",
    "DatastorePeerView",
    "DatastoreView",
    "GracefulRestartStatus",
    "KernelRouteView",
    "KernelView",
    "NextHop",
    "ProtoState",
    "ProtocolStatus",
    "RouteChangeStats",
    "RouteCounts",
    "RouteKind",
    "RouteView",
    "StatusView",
    "TimerView",
    "longest_match",
]

IpAddress = IPv4Address | IPv6Address
IpNetwork = IPv4Network | IPv6Network


class ProtoState(StrEnum):
    """BIRD's protocol state column (nest/proto.c proto_state_name)."""

    UP = "up"
    START = "start"
    DOWN = "down"
    WAIT = "wait"  # up, but held back by graceful-restart recovery
    FEED = "feed"
    STOP = "stop"
    FLUSH = "flush"


class BgpState(StrEnum):
    """BGP's info word (bgp_state_dsc): RFC 4271 states plus BIRD's Passive and Down."""

    IDLE = "Idle"
    CONNECT = "Connect"
    ACTIVE = "Active"
    OPEN_SENT = "OpenSent"
    OPEN_CONFIRM = "OpenConfirm"
    ESTABLISHED = "Established"
    CLOSE = "Close"
    PASSIVE = "Passive"
    DOWN = "Down"


@dataclass(frozen=True)
class RouteCounts:
    """``Routes: N imported, N exported, N preferred``."""

    imported: int = 0
    exported: int = 0
    preferred: int = 0


@dataclass(frozen=True)
class ChangeStats:
    """One row of BIRD's ``Route change stats`` table."""

    received: int = 0
    rejected: int = 0
    filtered: int = 0
    ignored: int = 0
    accepted: int = 0


@dataclass(frozen=True)
class RouteChangeStats:
    """BIRD's four rows; columns BIRD prints as ``---`` are ignored when rendering."""

    import_updates: ChangeStats = ChangeStats()
    import_withdraws: ChangeStats = ChangeStats()
    export_updates: ChangeStats = ChangeStats()
    export_withdraws: ChangeStats = ChangeStats()


@dataclass(frozen=True)
class TimerView:
    """A running timer: ``remaining/configured`` (``117/-`` when configured is None)."""

    remaining: int
    configured: int | None = None


@dataclass(frozen=True)
class BgpDetails:
    """The BGP part of ``show protocols all NAME``."""

    neighbor_address: IpAddress
    neighbor_as: int
    neighbor_id: IPv4Address | None = None
    """Shown (with caps, session, source, timers) only while the protocol is up."""
    neighbor_caps: tuple[str, ...] = ()
    """BIRD words, in BIRD's order: refresh enhanced-refresh restart-able|restart-aware
    llgr-able|llgr-aware AS4 add-path-rx add-path-tx."""
    session_flags: tuple[str, ...] = ()
    """internal|external multihop route-reflector AS4 add-path-rx add-path-tx."""
    source_address: IpAddress | None = None
    hold_timer: TimerView | None = None
    keepalive_timer: TimerView | None = None
    error_wait: TimerView | None = None
    connect_delay: TimerView | None = None
    restart_timer: TimerView | None = None
    """Peer's restart timer while we keep its routes as stale (we are GR helper)."""
    graceful_restart_active: bool = False
    """``Neighbor graceful restart active``: the peer restarts, its routes are stale."""
    passive: bool = False
    local_as: int | None = None
    peer_port: int = 179


@dataclass(frozen=True)
class LimitView:
    """A route limit of a protocol, as BIRD's ``proto_show_limit`` prints it."""

    label: str
    """``Receive limit:`` or ``Import limit:``."""
    limit: int
    action: str
    hit: bool = False


@dataclass(frozen=True)
class ProtocolStatus:
    """One row of ``show protocols`` and its ``all`` details."""

    name: str
    proto: str
    """``BGP``, ``Kernel``, ``Static``, ``Device`` or ``Direct``."""
    state: ProtoState
    since: datetime
    info: str = ""
    """For BGP the state word (a BgpState value); for other protocols free text."""
    last_error: str = ""
    """With BIRD's class prefix: ``Socket: Connection refused``, ``Received: Hold timer
    expired``, ``BGP Error: ...``, ``Error: ...``.  Empty after a manual disable."""
    table: str = "master"
    description: str | None = None
    preference: int = 100
    input_filter: str = "ACCEPT"
    output_filter: str = "ACCEPT"
    routes: RouteCounts = RouteCounts()
    change_stats: RouteChangeStats = RouteChangeStats()
    gr_recovery: tuple[str, ...] = ()
    """While we recover from our own restart: ``pending`` and/or ``waiting``."""
    bgp: BgpDetails | None = None
    limits: tuple[LimitView, ...] = ()
    """Receive and import limits (shown after the filters, as BIRD does)."""


class RouteKind(StrEnum):
    """Where a route leads (BIRD's rta dest)."""

    ROUTER = "router"  # via one gateway
    DEVICE = "device"
    BLACKHOLE = "blackhole"
    UNREACHABLE = "unreachable"
    PROHIBIT = "prohibited"
    MULTIPATH = "multipath"


@dataclass(frozen=True)
class NextHop:
    """A gateway and the interface it is reached through."""

    gateway: IpAddress
    iface: str
    weight: int = 1


@dataclass(frozen=True)
class BgpAttrs:
    """Path attributes shown by ``show route all`` (``BGP.origin: IGP``...)."""

    origin: str = "IGP"
    """``IGP``, ``EGP`` or ``Incomplete``."""
    as_path: tuple[int, ...] = ()
    next_hop: IpAddress | None = None
    med: int | None = None
    local_pref: int | None = None
    atomic_aggregate: bool = False
    aggregator: tuple[int, IPv4Address] | None = None
    communities: tuple[tuple[int, int], ...] = ()
    originator_id: IPv4Address | None = None
    cluster_list: tuple[IPv4Address, ...] = ()
    large_communities: tuple[tuple[int, int, int], ...] = ()


@dataclass(frozen=True)
class RouteView:
    """One route of the routing table (BGP-learned, originated or kernel-learned)."""

    prefix: IpNetwork
    protocol: str
    """Name of the protocol it came from (``Mesh_192_168_0_80``, ``static1``...)."""
    since: datetime
    kind: RouteKind = RouteKind.ROUTER
    nexthops: tuple[NextHop, ...] = ()
    """One for ROUTER, several for MULTIPATH, none otherwise."""
    iface: str | None = None
    """The device of a DEVICE route."""
    primary: bool = False
    """The best route of its prefix (``*``)."""
    preference: int = 100
    source: str = "BGP"
    """The ``Type:`` word: ``BGP``, ``static``, ``inherit`` (kernel), ``device``."""
    bgp: BgpAttrs | None = None
    igp_metric: int | None = 0
    """Shown as ``(100/0)`` for BGP routes with a recursive gateway; None hides it."""
    stale: bool = False
    """Kept through the peer's graceful restart (``(100s)``)."""
    from_address: IpAddress | None = None
    """The BGP neighbor, shown as ``from X`` when it differs from the gateway."""
    path_id: int | None = None
    in_kernel: bool | None = None
    kernel_reason: str | None = None
    """Why a route the bridge would program is not in the kernel (Calico's kernel filter or
    the import guard, in the policy's words)."""
    sync_error: bool = False
    """Primary but the kernel refused it: BIRD marks it ``!`` instead of ``*``."""


@dataclass(frozen=True)
class GracefulRestartStatus:
    """``Graceful restart recovery in progress`` (we restarted with --graceful-restart)."""

    waiting_for: int
    wait_remaining: int
    wait_total: int


@dataclass(frozen=True)
class StatusView:
    """``show status``."""

    router_id: IPv4Address
    server_time: datetime
    last_reboot: datetime
    last_reconfiguration: datetime
    graceful_restart: GracefulRestartStatus | None = None
    shutting_down: bool = False
    control_socket6: str | None = None
    """The bird6.ctl-style socket, when there is one (``speaker status`` reads its IPv6
    table there)."""

    @property
    def graceful_restart_recovery(self) -> bool:
        return self.graceful_restart is not None


@dataclass(frozen=True)
class KernelRouteView:
    """One route in the kernel table as the kernel bridge sees it."""

    prefix: IpNetwork
    kind: RouteKind
    nexthops: tuple[NextHop, ...] = ()
    iface: str | None = None
    """The device of a DEVICE route (``dev cali123``)."""
    protocol: int = 186
    ours: bool = True
    """True for routes we install; False for alien routes we learned (``learn``)."""
    state: str = "installed"
    """Ours: ``installed``, ``pending``, ``differs`` or ``missing``; aliens: ``learned``."""
    error: str = ""
    kernel: str = ""
    """What the kernel holds for a route of ours when it is not what is wanted
    (``via 192.168.0.82 dev eth0``, ``blackhole``, ``none``); empty when they agree.
    ``nexthops``/``kind`` are the wanted route, or the kernel's when nothing is wanted."""


@dataclass(frozen=True)
class KernelView:
    """``show kernel``: the kernel bridge (our extension, BIRD has no such command)."""

    protocol: int
    table: int = 254
    learn: bool = True
    persist: bool = True
    scan_time: int = 2
    merge_paths: bool = True
    merge_limit: int = 16
    last_scan: datetime | None = None
    routes: tuple[KernelRouteView, ...] = ()
    synced: bool = True
    """False while the bridge still waits (convergence_wait / graceful restart)."""


@dataclass(frozen=True)
class DatastorePeerView:
    """One peer derived from the datastore."""

    name: str
    address: IpAddress
    asn: int
    passive: bool


@dataclass(frozen=True)
class EventView:
    """One remembered event (``show events``, ``watch``): when, whose, what it said."""

    time: datetime
    peer: str
    """The protocol name (``Mesh_192_168_0_80``), or "" for the speaker's own events."""
    kind: str
    level: str
    text: str
    fields: dict[str, Any]


@dataclass(frozen=True)
class ExplainPath:
    """One path we hold for the prefix, where and when it came from."""

    peer: str
    address: str
    path_id: int | None
    next_hop: str
    since: datetime
    stale: bool
    attributes: str
    best: bool
    ecmp: bool


@dataclass(frozen=True)
class ExplainStep:
    """One best-path step: each path's value (None: already out) and who it eliminated."""

    step: str
    rule: str
    values: tuple[str | None, ...]
    eliminated: tuple[int, ...]


@dataclass(frozen=True)
class ExplainView:
    """``speaker explain PREFIX``: every decision the speaker makes about one prefix."""

    query: str
    prefix: str | None
    """The prefix held for the query (exact, or longest match of an address); None if none."""
    paths: tuple[ExplainPath, ...]
    steps: tuple[ExplainStep, ...]
    decision: str
    ecmp: tuple[tuple[int, str | None], ...]
    """Each non-best path: None if it joins the kernel's ECMP set, else why not."""
    kernel_verdict: str
    kernel_now: str
    exports: tuple[tuple[str, str], ...]
    """(peer, verdict and the filter rule that gave it) for each established peer."""


@dataclass(frozen=True)
class DatastoreView:
    """``show datastore`` (our extension): what was read from Calico's datastore and what it
    became.  ``peers``/``blocks``/``pools`` are the configuration in force."""

    type: str
    endpoint: str
    node_name: str
    connected: bool
    revision: int
    last_error: str = ""
    last_change: datetime | None = None
    reads: int = 0
    keys: int = 0
    problems: tuple[str, ...] = ()
    router_id: IPv4Address | None = None
    asn: int = 0
    address6: IPv6Address | None = None
    """The node's IPv6 address (spec.bgp.ipv6Address): None when it has none (no IPv6 peers)."""
    peers: tuple[DatastorePeerView, ...] = ()
    blocks: tuple[IpNetwork, ...] = ()
    pools: tuple[IpNetwork, ...] = ()
    applied_revision: int = 0
    """The store revision of the configuration in force."""
    feed_error: str = ""
    """The last unexpected failure of the task feeding the configurations (logged with its
    traceback); empty when none."""

    @property
    def summary(self) -> str:
        """The one line ``speaker status`` prints."""
        state = "connected" if self.connected else "disconnected"
        text = f"Datastore: {self.type} {self.endpoint}, {state}, revision {self.revision}"
        if not self.connected and self.last_error:
            text += f" (last error: {self.last_error})"
        return text


class ActionOutcome(StrEnum):
    """Result of enable/disable/restart/refresh; ALREADY maps to BIRD's "already ..."."""

    DONE = "done"
    ALREADY = "already"


@runtime_checkable
class ControlBackend(Protocol):
    """What the control server needs from the daemon.

    Query methods are synchronous (a snapshot of state owned by the event loop); actions
    are coroutines.  The server checks protocol names against ``protocols()`` before it
    calls an action, so actions only see names that exist.  An action that cannot be
    done raises ``CommandFailed`` (speaker/control/commands.py) with a message for the
    operator.
    """

    def protocols(self) -> Sequence[ProtocolStatus]: ...

    def routes(self, for_addr: IpNetwork | None = None) -> Sequence[RouteView]:
        """All routes, or only those of the longest prefix covering ``for_addr``.

        Filtering is optional (the server filters again with ``longest_match``); a backend
        with many routes does it to avoid copying the whole table.
        """
        ...

    def route_count(self, protocol: str | None = None, primary: bool = False,
                    family: int | None = None) -> tuple[int, int, int]:
        """``show route [primary] count [protocol P]``: (shown, routes, networks), the same
        figures as counting ``routes()``' rows (:func:`count_routes`), from counters where
        the backend keeps them: it answers at once however large the table.  ``family``
        (4 or 6) counts one address family only, None both."""
        ...

    def status(self) -> StatusView: ...

    def kernel(self) -> KernelView: ...

    def datastore(self) -> DatastoreView | None:
        """The datastore's state, or None when the speaker runs from its file alone."""
        ...

    def explain(self, target: str, peer: str | None) -> ExplainView:
        """Why the speaker holds, installs and exports ``target`` (a prefix or address) as it
        does; with ``peer``, only that peer's paths and export."""
        ...

    def events(self, name: str | None, since: datetime | None) -> Sequence[EventView]:
        """Remembered events of protocol ``name`` (None: all, the speaker's own included)
        at or after ``since``, oldest first."""
        ...

    def watch(self, name: str | None, callback: Callable[[EventView], None]) -> Callable[[], None]:
        """Call ``callback`` with each new event (of ``name`` only, if given); returns the
        function that stops it."""
        ...

    async def enable(self, name: str) -> ActionOutcome: ...

    async def disable(self, name: str) -> ActionOutcome: ...

    async def restart(self, name: str) -> ActionOutcome: ...

    async def refresh(self, name: str) -> ActionOutcome:
        """Ask the peer to resend its routes (ROUTE-REFRESH, RFC 2918/7313)."""
        ...

    async def graceful_restart(self) -> str:
        """Start a planned graceful restart; returns a one-line message for the operator."""
        ...


def count_routes(routes: Iterable[RouteView], protocol: str | None = None,
                 primary: bool = False) -> tuple[int, int, int]:
    """(shown, routes, networks) of ``show route [primary] count [protocol P]`` by walking
    rows: every row is a route, or only each prefix's primary one with ``primary``; the
    shown ones are ``protocol``'s."""
    networks: set[IpNetwork] = set()
    examined = shown = 0
    for route in routes:
        networks.add(route.prefix)
        if primary and not route.primary:
            continue
        examined += 1
        if protocol is None or route.protocol == protocol:
            shown += 1
    return shown, examined, len(networks)


def longest_match(routes: Iterable[RouteView], addr: IpNetwork) -> list[RouteView]:
    """The routes of the longest prefix that covers ``addr`` (BIRD's ``show route for``)."""
    best: IpNetwork | None = None
    chosen: list[RouteView] = []
    for route in routes:
        if not (route.prefix.version == addr.version and route.prefix.prefixlen <= addr.prefixlen
                and addr.subnet_of(route.prefix)):  # type: ignore[arg-type]
            continue
        if best is None or route.prefix.prefixlen > best.prefixlen:
            best = route.prefix
            chosen = [route]
        elif route.prefix == best:
            chosen.append(route)
    return chosen
