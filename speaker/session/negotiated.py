"""Checking the peer's OPEN and recording what the two OPENs agreed (RFC 4271 4.2, 6.2, 6.8).

:func:`validate_open` applies the checks of RFC 4271 6.2 in BIRD 1.6.8's order (the codec
has already checked the version and the optional parameters): hold time 1 or 2 -> 2/6,
BGP Identifier zero or, for iBGP, ours -> 2/3 (RFC 6286 2.2), AS other than configured
-> 2/2 (the AS from the 4-octet AS capability when present, RFC 6793 4.1).

:func:`negotiate_session` builds :class:`SessionInfo`: the codec's
:class:`~speaker.wire.context.Negotiated` plus what the session and the RIB need (timers,
route refresh, the peer's graceful restart capability, both OPENs).

:func:`we_are_dominant` is the collision rule (RFC 4271 6.8, RFC 6286 2.3, BIRD).
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from speaker.session.config import SessionConfig, family_name
from speaker.wire.capabilities import (
    EnhancedRouteRefreshCapability,
    FamilyFlags,
    GracefulRestartCapability,
    GracefulRestartFlags,
    MultiprotocolCapability,
    RouteRefreshCapability,
)
from speaker.wire.context import IPV4_UNICAST, Family, Negotiated
from speaker.wire.enums import Afi, OpenSubcode, Safi
from speaker.wire.errors import open_error
from speaker.wire.messages import Open
from speaker.wire.negotiate import negotiate, negotiate_hold

__all__ = [
    "PeerGracefulRestart",
    "SessionInfo",
    "negotiate_session",
    "validate_open",
    "we_are_dominant",
]


@dataclass(frozen=True, slots=True)
class PeerGracefulRestart:
    """The peer's graceful restart capability (RFC 4724 3), as received."""

    restart_time: int
    """Seconds we keep its routes stale after it goes away (RFC 4724 4.2)."""
    restarting: bool
    """R flag: the peer has just restarted (its OPEN after a restart)."""
    notification: bool
    """N flag (RFC 8538); we do not offer it, so a NOTIFICATION still flushes routes."""
    families: tuple[tuple[Family, bool], ...]
    """Families the peer can restart for, with their F (forwarding preserved) flag."""

    @classmethod
    def from_capability(cls, cap: GracefulRestartCapability) -> PeerGracefulRestart:
        families = tuple(
            ((afi, safi), bool(flags & FamilyFlags.FORWARDING))
            for afi, safi, flags in cap.families
            if isinstance(afi, Afi) and isinstance(safi, Safi)
        )
        return cls(
            restart_time=cap.restart_time,
            restarting=cap.restarting,
            notification=bool(cap.flags & GracefulRestartFlags.NOTIFICATION),
            families=families,
        )

    def forwarding(self, family: Family) -> bool | None:
        """The F flag of a family, or None if the peer did not list it."""
        for fam, flag in self.families:
            if fam == family:
                return flag
        return None


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """What one Established session agreed (BIRD's "Neighbor caps" and "Session" lines)."""

    peer_address: IPv4Address | IPv6Address
    peer_as: int
    peer_id: IPv4Address
    local_as: int
    local_id: IPv4Address
    internal: bool
    hold_time: int
    """min(ours, theirs) (RFC 4271 4.2); 0 means no hold timer and no KEEPALIVEs."""
    keepalive_time: int
    context: Negotiated
    """The codec context: 4-octet AS, add-path per direction, message size."""
    families: tuple[Family, ...]
    """Our families the peer also announced in MP capabilities (IPv4 unicast if it sent none)."""
    route_refresh: bool
    """The peer accepts ROUTE-REFRESH from us (RFC 2918 3)."""
    enhanced_route_refresh: bool
    """Both sides announced enhanced route refresh: BoRR/EoRR may be used (RFC 7313 3)."""
    peer_graceful_restart: PeerGracefulRestart | None
    gr_helper: bool
    """We keep the peer's routes stale when it restarts: we offer graceful restart and its
    capability lists one of our families (BIRD's ``gr_ready``)."""
    local_open: Open
    remote_open: Open
    conn_id: int
    outgoing: bool

    @property
    def asn4(self) -> bool:
        """Both sides speak 4-octet AS numbers (RFC 6793)."""
        return self.context.asn4

    @property
    def addpath_receive(self) -> frozenset[Family]:
        """Families whose NLRI we read with path identifiers (RFC 7911)."""
        return self.context.addpath_receive

    @property
    def addpath_send(self) -> frozenset[Family]:
        """Families whose NLRI we write with path identifiers (RFC 7911)."""
        return self.context.addpath_send

    def describe(self) -> str:
        """One line: AS, id, timers and capabilities, like BIRD's ``show protocols all``."""
        parts = [
            f"AS {self.peer_as} id {self.peer_id}",
            "internal" if self.internal else "external",
            f"hold {self.hold_time} s",
            f"keepalive {self.keepalive_time} s",
        ]
        caps = []
        if self.asn4:
            caps.append("AS4")
        if self.route_refresh:
            caps.append("refresh")
        if self.enhanced_route_refresh:
            caps.append("enhanced-refresh")
        for fam in self.families:
            rx = fam in self.addpath_receive
            tx = fam in self.addpath_send
            if rx or tx:
                dirs = "+".join(d for d, on in (("rx", rx), ("tx", tx)) if on)
                caps.append(f"add-path-{dirs} {family_name(fam)}")
        gr = self.peer_graceful_restart
        if gr is not None:
            flags = "R" if gr.restarting else ""
            fams = ", ".join(f"{family_name(f)}{' F' if fwd else ''}" for f, fwd in gr.families)
            caps.append(f"restart {gr.restart_time} s{' ' + flags if flags else ''} ({fams})")
        return ", ".join(parts) + "; " + ", ".join(caps)


def validate_open(config: SessionConfig, message: Open) -> None:
    """Raise the BgpError RFC 4271 6.2 prescribes if the peer's OPEN is unacceptable."""
    hold = message.hold_time
    if hold in (1, 2):
        # RFC 4271 4.2/6.2: 0 or at least 3 (the codec refuses it first, without Data)
        raise open_error(
            OpenSubcode.UNACCEPTABLE_HOLD_TIME,
            reason=f"hold time {hold} s is neither 0 nor at least 3 s",
        )
    if int(message.bgp_id) == 0:
        raise open_error(OpenSubcode.BAD_BGP_IDENTIFIER, reason="BGP Identifier 0.0.0.0")
    if config.internal and message.bgp_id == config.router_id:
        # RFC 6286 2.2: unique within the AS, so an internal peer may not share ours
        raise open_error(
            OpenSubcode.BAD_BGP_IDENTIFIER,
            reason=f"internal peer uses our own BGP Identifier {message.bgp_id}",
        )
    if message.asn != config.peer_as:
        raise open_error(
            OpenSubcode.BAD_PEER_AS,
            message.my_as.to_bytes(2, "big"),
            f"peer says AS {message.asn}, configured AS {config.peer_as}",
        )


def _mp_families(message: Open) -> set[Family]:
    return {
        (c.afi, c.safi)
        for c in message.capabilities
        if isinstance(c, MultiprotocolCapability)
        and isinstance(c.afi, Afi)
        and isinstance(c.safi, Safi)
    }


def _has(message: Open, cls: type) -> bool:
    return any(isinstance(c, cls) for c in message.capabilities)


def negotiate_session(
    config: SessionConfig, local: Open, remote: Open, *, conn_id: int, outgoing: bool
) -> SessionInfo:
    """Combine our OPEN and the (validated) peer OPEN into a :class:`SessionInfo`."""
    hold, keepalive = negotiate_hold(config.hold_time, remote.hold_time, config.keepalive_time)
    peer_mp = _mp_families(remote)
    # RFC 4760 8: a speaker that sends no MP capability supports IPv4 unicast only
    offered = peer_mp or {IPV4_UNICAST}
    families = tuple(f for f in config.families if f in offered)
    grc = remote.capability(GracefulRestartCapability.CODE)
    peer_gr = (
        PeerGracefulRestart.from_capability(grc)
        if isinstance(grc, GracefulRestartCapability)
        else None
    )
    gr_helper = (
        config.graceful_restart
        and peer_gr is not None
        and any(f in config.families for f, _ in peer_gr.families)
    )
    return SessionInfo(
        peer_address=config.peer_address,
        peer_as=remote.asn,
        peer_id=remote.bgp_id,
        local_as=config.local_as,
        local_id=config.router_id,
        internal=config.internal,
        hold_time=hold,
        keepalive_time=keepalive,
        context=negotiate(local, remote),
        families=families,
        route_refresh=_has(remote, RouteRefreshCapability),
        enhanced_route_refresh=_has(local, EnhancedRouteRefreshCapability)
        and _has(remote, EnhancedRouteRefreshCapability),
        peer_graceful_restart=peer_gr,
        gr_helper=gr_helper,
        local_open=local,
        remote_open=remote,
        conn_id=conn_id,
        outgoing=outgoing,
    )


def we_are_dominant(
    local_id: IPv4Address, local_as: int, remote_id: IPv4Address, remote_as: int
) -> bool:
    """True if the connection *we* initiated survives a collision.

    RFC 4271 6.8: the connection initiated by the speaker with the higher BGP Identifier is
    kept; RFC 6286 2.3: with equal identifiers, the one with the larger AS number.
    BIRD 1.6.8 ``bgp_rx_open`` applies the same rule.
    """
    if local_id != remote_id:
        return int(local_id) > int(remote_id)
    return local_as > remote_as
