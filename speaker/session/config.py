"""What one BGP session is configured with, and the OPEN it makes us send.

:class:`SessionConfig` is a frozen, validated dataclass (a wrong value is refused with a
``ValueError`` naming the field).  Its defaults are those of Calico's generated bird.cfg
(hold 240, connect delay 2 s, connect retry 5 s, error wait 5..30 s, add paths on, graceful
restart) and of BIRD 1.6 (restart time 120 s, startup hold 240 s, error forget 300 s).

:func:`build_open` writes our OPEN with the capabilities in BIRD 1.6.8's order (MP, route
refresh, graceful restart, 4-octet AS, add-path, enhanced route refresh), so a capture of our
OPEN reads like BIRD's, less BIRD's empty LLGR capability (RFC 9494, which we do not offer).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from speaker.wire.capabilities import (
    AddPathCapability,
    AddPathMode,
    Capability,
    EnhancedRouteRefreshCapability,
    FamilyFlags,
    FourOctetAsCapability,
    GracefulRestartCapability,
    GracefulRestartFlags,
    MultiprotocolCapability,
    RouteRefreshCapability,
)
from speaker.wire.context import IPV4_UNICAST, IPV6_UNICAST, Family
from speaker.wire.messages import Open

__all__ = ["ADD_PATH_MODES", "BGP_PORT", "SessionConfig", "build_open", "family_name"]

BGP_PORT = 179
MAX_ASN = 2**32 - 1

ADD_PATH_MODES: dict[str, AddPathMode | None] = {
    "receive": AddPathMode.RECEIVE,
    "send": AddPathMode.SEND,
    "both": AddPathMode.BOTH,
    "off": None,
}
"""BIRD's ``add paths rx|tx|on|off`` as the Send/Receive field of RFC 7911 section 4."""

_SUPPORTED_FAMILIES = (IPV4_UNICAST, IPV6_UNICAST)


def family_name(family: tuple[int, int]) -> str:
    """``IPv4/unicast`` for (AFI 1, SAFI 1); numbers for families without a name."""
    afi, safi = family
    a = {1: "IPv4", 2: "IPv6"}.get(int(afi), f"AFI {int(afi)}")
    s = {1: "unicast", 2: "multicast"}.get(int(safi), f"SAFI {int(safi)}")
    return f"{a}/{s}"


def _address(name: str, value: object) -> IPv4Address:
    try:
        return IPv4Address(value)
    except (ipaddress.AddressValueError, ValueError, TypeError):
        raise ValueError(f"SessionConfig.{name}: {value!r} is not an IPv4 address") from None


def _ip(name: str, value: object) -> IPv4Address | IPv6Address:
    if isinstance(value, IPv4Address | IPv6Address):
        return value
    try:
        return ipaddress.ip_address(value)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        raise ValueError(
            f"SessionConfig.{name}: {value!r} is not an IPv4 or IPv6 address"
        ) from None


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """One neighbour, as the session state machine needs it.

    Addresses may be given as strings; they are stored as ``ipaddress`` objects.  The peer
    may be IPv4 or IPv6 (the TCP connection's family); the BGP Identifier is 4 octets always
    (RFC 6286), also on an IPv6 session.
    """

    local_as: int
    router_id: IPv4Address
    """Our BGP Identifier (RFC 4271 4.2, RFC 6286: non-zero, unique within the AS)."""
    peer_as: int
    peer_address: IPv4Address | IPv6Address
    hold_time: int = 240
    """Hold time we offer; the session uses min(ours, theirs) (RFC 4271 4.2). 0 or >= 3."""
    keepalive_time: int | None = None
    """None: a third of the negotiated hold time (RFC 4271 10); else this, capped to it."""
    passive: bool = False
    """Never connect, only accept (RFC 4271 8.1.1 PassiveTcpEstablishment; Calico's rule)."""
    connect_delay: float = 2
    """Seconds from start (and from a restart) to the first connect (BIRD connect delay)."""
    connect_retry: float = 5
    """ConnectRetryTime: wait after a failed attempt, and connect timeout (RFC 4271 10)."""
    error_wait: tuple[float, float] = (5, 30)
    """Idle time after an error: min, doubled per consecutive error up to max (BIRD)."""
    error_forget: float = 300
    """An error this long after the previous one starts the error wait again at its minimum."""
    initial_hold_time: int = 240
    """Hold timer while waiting for the peer's OPEN (RFC 4271 8: "4 minutes" suggested)."""
    graceful_restart: bool = True
    """Offer graceful restart (RFC 4724) and keep a restarting peer's routes stale."""
    restart_time: int = 120
    """Restart Time we advertise: how long peers keep our routes after we go away."""
    restarting: bool = False
    """Set the R flag: we are restarting gracefully (RFC 4724 3)."""
    forwarding_preserved: bool = False
    """Set the F flag of our families: our kernel kept its routes (RFC 4724 3)."""
    add_paths: str = "both"
    """ADD-PATH for our families: ``receive``, ``send``, ``both`` or ``off`` (RFC 7911)."""
    families: tuple[Family, ...] = (IPV4_UNICAST,)
    route_refresh: bool = True
    """Advertise route refresh (RFC 2918) and enhanced route refresh (RFC 7313), as BIRD."""
    source_address: IPv4Address | IPv6Address | None = None
    """Local address outgoing connections are made from (None: the kernel chooses)."""
    port: int = BGP_PORT
    send_hold_time: float = 480
    """RFC 9687: a connection that has had data waiting and could not send any for this many
    seconds is closed with NOTIFICATION 8/0 (0: off).  8 minutes is the RFC's suggestion (twice
    the usual hold time)."""

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "router_id", _address("router_id", self.router_id))
        set_(self, "peer_address", _ip("peer_address", self.peer_address))
        if self.source_address is not None:
            source = _ip("source_address", self.source_address)
            if source.version != self.peer_address.version:
                raise ValueError(f"SessionConfig.source_address: {source} is not of the peer "
                                 f"address's family ({self.peer_address})")
            set_(self, "source_address", source)
        for name in ("local_as", "peer_as"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 1 <= value <= MAX_ASN:
                raise ValueError(
                    f"SessionConfig.{name}: {value!r} is not an AS number 1..{MAX_ASN}"
                )
        if int(self.router_id) == 0:
            raise ValueError("SessionConfig.router_id: 0.0.0.0 is not a BGP Identifier (RFC 6286)")
        if not 0 <= self.hold_time <= 65535 or self.hold_time in (1, 2):
            raise ValueError(
                f"SessionConfig.hold_time: {self.hold_time} must be 0 or 3..65535 (RFC 4271 4.2)"
            )
        if self.keepalive_time is not None and not 1 <= self.keepalive_time <= 65535:
            raise ValueError(f"SessionConfig.keepalive_time: {self.keepalive_time} must be >= 1")
        if not 3 <= self.initial_hold_time <= 65535:
            raise ValueError(
                f"SessionConfig.initial_hold_time: {self.initial_hold_time} must be 3..65535"
            )
        if self.connect_delay < 0:
            raise ValueError(f"SessionConfig.connect_delay: {self.connect_delay} is negative")
        if self.connect_retry <= 0:
            raise ValueError(f"SessionConfig.connect_retry: {self.connect_retry} must be > 0")
        low, high = self.error_wait
        if not 0 <= low <= high:
            raise ValueError(
                f"SessionConfig.error_wait: {self.error_wait} must be (min, max), 0 <= min <= max"
            )
        if self.error_forget < 0:
            raise ValueError(f"SessionConfig.error_forget: {self.error_forget} is negative")
        if not 0 <= self.restart_time <= 4095:
            raise ValueError(
                f"SessionConfig.restart_time: {self.restart_time} must be 0..4095 (12 bits, "
                "RFC 4724 3)"
            )
        if self.add_paths not in ADD_PATH_MODES:
            raise ValueError(
                f"SessionConfig.add_paths: {self.add_paths!r} is not one of "
                f"{', '.join(ADD_PATH_MODES)}"
            )
        if not self.families:
            raise ValueError("SessionConfig.families: at least one address family is needed")
        for family in self.families:
            if family not in _SUPPORTED_FAMILIES:
                raise ValueError(f"SessionConfig.families: {family!r} is not supported")
        if not 1 <= self.port <= 65535:
            raise ValueError(f"SessionConfig.port: {self.port} is not a TCP port")
        if self.send_hold_time < 0:
            raise ValueError(f"SessionConfig.send_hold_time: {self.send_hold_time} is negative")

    @property
    def internal(self) -> bool:
        """iBGP: the peer is in our AS (RFC 4271 3)."""
        return self.local_as == self.peer_as


def build_open(config: SessionConfig) -> Open:
    """Our OPEN, capabilities in BIRD 1.6.8's order (see the module docstring)."""
    caps: list[Capability] = [MultiprotocolCapability(afi, safi) for afi, safi in config.families]
    if config.route_refresh:
        caps.append(RouteRefreshCapability())
    if config.graceful_restart:
        flags = GracefulRestartFlags.RESTART if config.restarting else GracefulRestartFlags(0)
        fflags = FamilyFlags.FORWARDING if config.forwarding_preserved else FamilyFlags(0)
        caps.append(
            GracefulRestartCapability(
                flags, config.restart_time, tuple((a, s, fflags) for a, s in config.families)
            )
        )
    caps.append(FourOctetAsCapability(config.local_as))
    mode = ADD_PATH_MODES[config.add_paths]
    if mode is not None:
        caps.append(AddPathCapability(tuple((a, s, mode) for a, s in config.families)))
    if config.route_refresh:
        caps.append(EnhancedRouteRefreshCapability())
    return Open.build(config.local_as, config.hold_time, config.router_id, caps)
