"""Public value types of the kernel bridge: configuration, wanted routes, learned routes,
events and the ``show kernel`` snapshot; and the integer prefix keys of the route path.

These are what the daemon sees; the netlink details live in :mod:`speaker.kernel.codec`.
Everything here is immutable so it can cross the event stream and the control socket as is.

Inside the bridge a prefix is an ``int`` key (:func:`prefix_key`): the core hands the kernel
its intents keyed so (:data:`KernelIntent`), the reconciler, the writer and the monitor keep
them so, and an ``ipaddress`` network is built only for display (:func:`key_network`): an
``IPv4Network`` and its address are 128 bytes and 2 us a route, and hash slowly.
"""

from __future__ import annotations

import ipaddress
import logging
import math
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import ClassVar

from speaker.events import Event
from speaker.wire.enums import Afi
from speaker.wire.nlri import V6_FLAG as V6_FLAG  # re-exported: the kernel's name for it
from speaker.wire.nlri import ipv4_network, prefix_parts, prefix_value

IPNetwork = IPv4Network | IPv6Network
IPAddress = IPv4Address | IPv6Address


#: The next hops of a blackhole intent (a wanted route always has next hops otherwise).
BLACKHOLE: tuple[IPAddress, ...] = ()

#: One kernel intent as the core hands them to :meth:`KernelBridge.apply`, a batch at a time:
#: ``(key, hops)`` wants a route for prefix ``key`` via the BGP next hops ``hops`` (one
#: shared tuple per next-hop set; :data:`BLACKHOLE` for a blackhole), ``(key, None)`` wants
#: none.  What :class:`KernelRoute` says, without an object per route.
KernelIntent = tuple[int, tuple[IPAddress, ...] | None]


prefix_key = prefix_value
"""The int key of a prefix (``prefix_key(addr, length, v6=False)``): the value of the
codec's :class:`~speaker.wire.nlri.Prefix` (:func:`~speaker.wire.nlri.prefix_value`), so a
prefix from the RIB is its own key.  :data:`V6_FLAG` is the codec's."""


def network_key(prefix: IPNetwork) -> int:
    """:func:`prefix_key` of an ``ipaddress`` network (the API edge: config, CLI, tests)."""
    return prefix_value(int(prefix.network_address), prefix.prefixlen, prefix.version == 6)


def key_parts(key: int) -> tuple[bool, int, int]:
    """(IPv6?, network address, length) of a prefix key (:func:`prefix_parts`)."""
    afi, addr, length = prefix_parts(key)
    return afi is Afi.IPV6, addr, length


def key_network(key: int) -> IPNetwork:
    """The ``ipaddress`` network of a key, for display (events, ``show kernel``)."""
    v6, addr, length = key_parts(key)
    if v6:
        return IPv6Network((addr, length))
    return ipv4_network(addr, length)


def key_is_v6(key: int) -> bool:
    """Whether a key is an IPv6 prefix's."""
    return key >= V6_FLAG


def key_order(key: int) -> tuple[bool, int, int]:
    """Sort key for prefix keys: family, address, length (``show kernel``'s order)."""
    return key_parts(key)


# rtm_protocol values from <linux/rtnetlink.h>.
RTPROT_UNSPEC = 0
RTPROT_REDIRECT = 1
RTPROT_KERNEL = 2
RTPROT_BOOT = 3
RTPROT_STATIC = 4
RTPROT_BIRD = 12
RTPROT_BGP = 186

RT_TABLE_MAIN = 254
RT_TABLE_LOCAL = 255


class RouteType(IntEnum):
    """rtm_type (<linux/rtnetlink.h> RTN_*)."""

    UNSPEC = 0
    UNICAST = 1
    LOCAL = 2
    BROADCAST = 3
    ANYCAST = 4
    MULTICAST = 5
    BLACKHOLE = 6
    UNREACHABLE = 7
    PROHIBIT = 8
    THROW = 9
    NAT = 10
    XRESOLVE = 11


#: Route types BIRD's kernel protocol imports (krt ``learn``); everything else is not a
#: forwarding entry of the unicast table (local, broadcast, multicast, throw, nat...).
LEARNABLE_TYPES = frozenset(
    {RouteType.UNICAST, RouteType.BLACKHOLE, RouteType.UNREACHABLE, RouteType.PROHIBIT}
)


def default_metric(prefix: IPNetwork) -> int:
    """The metric the kernel gives a route written without RTA_PRIORITY (IPv6: 1024)."""
    return 1024 if prefix.version == 6 else 0


@dataclass(frozen=True, slots=True)
class KernelConfig:
    """BIRD ``protocol kernel`` options as Calico sets them (``learn; persist; scan time 2;
    graceful restart; merge paths on``), plus Calico's ``reject_cidrs`` filter step.

    ``convergence_wait`` is BIRD's ``graceful restart wait`` (240 s): if the daemon never
    calls :meth:`KernelBridge.converged`, stale routes are swept after this long anyway.
    ``netns`` names a namespace (``ip netns`` name or a path) to program instead of ours.
    """

    protocol: int = RTPROT_BGP
    learn: bool = True
    persist: bool = True
    scan_time: float = 2.0
    merge_paths: bool = True
    merge_limit: int = 16
    table: int = RT_TABLE_MAIN
    reject_cidrs: tuple[IPNetwork, ...] = ()
    convergence_wait: float = 240.0
    netns: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.protocol, bool) or not isinstance(self.protocol, int):
            raise TypeError(f"KernelConfig.protocol must be an int, got {self.protocol!r}")
        if not 5 <= self.protocol <= 255:
            raise ValueError(
                f"KernelConfig.protocol {self.protocol} is reserved or out of range: use 5..255 "
                "(0-4 are unspec/redirect/kernel/boot/static; 186 is RTPROT_BGP)"
            )
        if self.protocol == RTPROT_BIRD:
            raise ValueError(
                "KernelConfig.protocol 12 is BIRD's: a BIRD on this host would delete our routes"
            )
        if not isinstance(self.table, int) or not 1 <= self.table <= 0xFFFFFFFF:
            raise ValueError(f"KernelConfig.table {self.table!r} must be an int in 1..2**32-1")
        if self.table == RT_TABLE_LOCAL:
            raise ValueError("KernelConfig.table 255 is the kernel's local table")
        if not (isinstance(self.scan_time, (int, float)) and math.isfinite(self.scan_time)):
            raise ValueError(f"KernelConfig.scan_time {self.scan_time!r} must be a number")
        if self.scan_time <= 0:
            raise ValueError(f"KernelConfig.scan_time must be > 0, got {self.scan_time}")
        if not isinstance(self.merge_limit, int) or not 1 <= self.merge_limit <= 255:
            raise ValueError(f"KernelConfig.merge_limit {self.merge_limit!r} must be in 1..255")
        if not isinstance(self.convergence_wait, (int, float)) or self.convergence_wait < 0:
            raise ValueError(
                f"KernelConfig.convergence_wait must be >= 0, got {self.convergence_wait!r}"
            )
        for cidr in self.reject_cidrs:
            if not isinstance(cidr, (IPv4Network, IPv6Network)):
                raise TypeError(
                    f"KernelConfig.reject_cidrs entries must be ipaddress networks, got {cidr!r}"
                )
        if self.netns is not None and (not isinstance(self.netns, str) or not self.netns):
            raise ValueError(f"KernelConfig.netns must be a non-empty string, got {self.netns!r}")

    def rejects(self, prefix: IPNetwork) -> bool:
        """Calico's ``if net ~ <cidr> then reject``: the prefix lies inside a reject CIDR."""
        return any(
            prefix.version == cidr.version and prefix.subnet_of(cidr)  # type: ignore[arg-type]
            for cidr in self.reject_cidrs
        )

    def rejects_key(self, key: int) -> bool:
        """:meth:`rejects` for a prefix key, without building its network."""
        v6, addr, length = key_parts(key)
        bits = 128 if v6 else 32
        for cidr in self.reject_cidrs:
            if (cidr.version == 6) != v6 or length < cidr.prefixlen:
                continue
            shift = bits - cidr.prefixlen
            if addr >> shift == int(cidr.network_address) >> shift:
                return True
        return False


def _check_prefix(prefix: object, what: str) -> IPNetwork:
    if not isinstance(prefix, (IPv4Network, IPv6Network)):
        raise TypeError(f"{what}: prefix must be an IPv4Network or IPv6Network, got {prefix!r}")
    return prefix


@dataclass(frozen=True, slots=True)
class KernelRoute:
    """What the RIB wants in the kernel for one prefix: BGP next hops (best first, before
    ``gateway recursive`` resolution), or a blackhole (Calico's local /26 block)."""

    prefix: IPNetwork
    nexthops: tuple[IPAddress, ...] = ()
    blackhole: bool = False

    def __post_init__(self) -> None:
        prefix = _check_prefix(self.prefix, "KernelRoute")
        if not isinstance(self.nexthops, tuple):
            raise TypeError(f"KernelRoute {prefix}: nexthops must be a tuple")
        for nh in self.nexthops:
            if not isinstance(nh, (IPv4Address, IPv6Address)):
                raise TypeError(f"KernelRoute {prefix}: next hop {nh!r} is not an ip address")
            if nh.version != prefix.version:
                raise ValueError(f"KernelRoute {prefix}: next hop {nh} is of another family")
            if nh.is_unspecified or nh.is_multicast:
                raise ValueError(f"KernelRoute {prefix}: next hop {nh} is not a unicast address")
        if self.blackhole and self.nexthops:
            raise ValueError(f"KernelRoute {prefix}: a blackhole route has no next hops")
        if not self.blackhole and not self.nexthops:
            raise ValueError(f"KernelRoute {prefix}: needs next hops, or blackhole=True")

    @classmethod
    def trusted(
        cls, prefix: IPNetwork, nexthops: tuple[IPAddress, ...] = (), blackhole: bool = False
    ) -> KernelRoute:
        """A route built by the speaker core from values already checked (decoded NEXT_HOPs
        of the prefix's family, one shared tuple per next-hop set): no per-route
        validation, which cost more than the rest of the kernel intent (100,000 per feed)."""
        route = _new_route(cls)
        _set(route, "prefix", prefix)
        _set(route, "nexthops", nexthops)
        _set(route, "blackhole", blackhole)
        return route

    def describe(self) -> str:
        """``10.0.0.0/26 via a, b`` or ``blackhole 10.0.0.0/26``."""
        if self.blackhole:
            return f"blackhole {self.prefix}"
        return f"{self.prefix} via {', '.join(map(str, self.nexthops))}"


_new_route = object.__new__
_set = object.__setattr__


@dataclass(frozen=True, slots=True)
class LearnedRoute:
    """An alien kernel route (``learn``): not ours, not ``proto kernel``/``redirect``."""

    prefix: IPNetwork
    nexthops: tuple[IPAddress, ...]
    ifname: str | None
    protocol: int
    type: RouteType = RouteType.UNICAST
    metric: int = 0


class KernelEventKind(StrEnum):
    """What the bridge did or saw (BIRD's krt trace words where it has them)."""

    ADOPTED = "adopted"  # a route of ours found at start-up, kept
    INSTALLED = "installed"  # new route written
    REPLACED = "replaced"  # wanted route changed (next hops)
    DELETED = "deleted"  # route withdrawn by the RIB, removed
    REINSTALLED = "reinstalled"  # ours deleted/altered outside the speaker, restored
    SWEPT = "swept"  # stale route of ours (not wanted after convergence) removed
    FAILED = "failed"  # the kernel refused a change (reason carries errno text)
    BLOCKED = "blocked"  # an alien route holds the same key; we never overwrite it
    LEARNED = "learned"  # alien route imported (learn)
    UNLEARNED = "unlearned"  # alien route gone
    RESYNC = "resync"  # netlink overrun (ENOBUFS) or unknown outcome: full re-dump
    CONVERGED = "converged"  # sweeping of unwanted routes enabled


@dataclass(frozen=True, slots=True)
class KernelEvent(Event):
    """One thing the kernel bridge did or observed, for the project's event stream."""

    KIND: ClassVar[str] = "kernel"

    kind: KernelEventKind
    prefix: IPNetwork | None
    reason: str
    nexthops: tuple[IPAddress, ...] = ()
    error: int = 0  # errno for FAILED

    def level(self) -> int:
        """Routine per-route work is DEBUG (a 100,000-route feed would spend a third of its
        time logging it, and BIRD logs none of it by default); what an operator must see
        (a route restored after a hand change, a refused write, a resync, convergence) is
        INFO or WARNING."""
        return _KERNEL_EVENT_LEVEL.get(self.kind, logging.DEBUG)

    def describe(self) -> str:
        """``kernel installed 10.0.0.0/26 via 192.168.0.80: wanted``."""
        what = "" if self.prefix is None else f" {self.prefix}"
        via = f" via {', '.join(map(str, self.nexthops))}" if self.nexthops else ""
        return f"kernel {self.kind.value}{what}{via}: {self.reason}"


_KERNEL_EVENT_LEVEL = {
    KernelEventKind.REINSTALLED: logging.INFO,
    KernelEventKind.FAILED: logging.WARNING,
    KernelEventKind.BLOCKED: logging.WARNING,
    KernelEventKind.RESYNC: logging.INFO,
    KernelEventKind.CONVERGED: logging.INFO,
}


class RouteState(StrEnum):
    """Per-prefix state in ``speaker show kernel``."""

    INSTALLED = "installed"  # the kernel holds exactly what is wanted
    PENDING = "pending"  # a change is queued/in flight, or waits for convergence
    DIFFERS = "differs"  # the kernel holds a route of ours that is not what is wanted
    MISSING = "missing"  # wanted but absent (refused, unresolvable, blocked, rejected)


@dataclass(frozen=True, slots=True)
class InstalledRoute:
    """Our route as the kernel holds it."""

    type: RouteType
    nexthops: tuple[IPAddress | None, ...]
    ifindexes: tuple[int, ...]
    metric: int


@dataclass(frozen=True, slots=True)
class KernelSnapshotEntry:
    """Wanted vs installed for one prefix."""

    prefix: IPNetwork
    state: RouteState
    wanted: KernelRoute | None
    installed: InstalledRoute | None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class KernelSnapshot:
    """Everything ``speaker show kernel`` prints."""

    converged: bool
    entries: tuple[KernelSnapshotEntry, ...]
    counters: dict[str, int] = field(default_factory=dict)

    def by_prefix(self) -> dict[IPNetwork, KernelSnapshotEntry]:
        """Entries keyed by prefix."""
        return {e.prefix: e for e in self.entries}


def parse_network(text: str) -> IPNetwork:
    """``ipaddress.ip_network`` with a clear error (for config and CLI input)."""
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise ValueError(f"not a network prefix: {text!r} ({exc})") from None
