"""From two OPENs to the session context (RFC 5492, RFC 6793, RFC 7911 4, RFC 8654, RFC 4760).

Add-path is directional: we *receive* path ids for a family iff we said we can receive and the
peer said it will send, and the converse for sending (RFC 7911 4).
"""

from __future__ import annotations

from speaker.wire.capabilities import (
    AddPathCapability,
    AddPathMode,
    Capability,
    EnhancedRouteRefreshCapability,
    ExtendedMessageCapability,
    FourOctetAsCapability,
    MultiprotocolCapability,
    RouteRefreshCapability,
)
from speaker.wire.context import (
    EXTENDED_MAX_MESSAGE_SIZE,
    IPV4_UNICAST,
    MAX_MESSAGE_SIZE,
    Family,
    Negotiated,
)
from speaker.wire.enums import Afi, Safi
from speaker.wire.messages import Open

_NONE = AddPathMode(0)


def _addpath_modes(message: Open) -> dict[Family, AddPathMode]:
    """Per family, the add-path mode the OPEN announced (the last entry wins)."""
    modes: dict[Family, AddPathMode] = {}
    for cap in message.capabilities:
        if isinstance(cap, AddPathCapability):
            for afi, safi, mode in cap.entries:
                if isinstance(afi, Afi) and isinstance(safi, Safi) and 1 <= mode <= 3:
                    modes[(afi, safi)] = mode  # other Send/Receive values are ignored
    return modes


def _families(message: Open) -> frozenset[Family]:
    """The families an OPEN announced; IPv4 unicast without any MP capability (RFC 4760 8)."""
    caps = [c for c in message.capabilities if isinstance(c, MultiprotocolCapability)]
    if not caps:
        return frozenset({IPV4_UNICAST})
    return frozenset(
        (c.afi, c.safi) for c in caps if isinstance(c.afi, Afi) and isinstance(c.safi, Safi)
    )


def _has(message: Open, cls: type[Capability]) -> bool:
    return any(isinstance(c, cls) for c in message.capabilities)


def negotiate(local: Open, remote: Open) -> Negotiated:
    """The context for the side that sent ``local`` and received ``remote``."""
    ours = _addpath_modes(local)
    theirs = _addpath_modes(remote)
    receive = frozenset(
        f
        for f, m in ours.items()
        if m & AddPathMode.RECEIVE and theirs.get(f, _NONE) & AddPathMode.SEND
    )
    send = frozenset(
        f
        for f, m in ours.items()
        if m & AddPathMode.SEND and theirs.get(f, _NONE) & AddPathMode.RECEIVE
    )
    extended = _has(local, ExtendedMessageCapability) and _has(remote, ExtendedMessageCapability)
    return Negotiated(
        asn4=_has(local, FourOctetAsCapability) and _has(remote, FourOctetAsCapability),
        addpath_receive=receive,
        addpath_send=send,
        max_message_size=EXTENDED_MAX_MESSAGE_SIZE if extended else MAX_MESSAGE_SIZE,
        ebgp=local.asn != remote.asn,
        families=_families(local) & _families(remote),
        route_refresh=_has(local, RouteRefreshCapability) and _has(remote, RouteRefreshCapability),
        enhanced_route_refresh=_has(local, EnhancedRouteRefreshCapability)
        and _has(remote, EnhancedRouteRefreshCapability),
    )


def negotiate_hold(
    ours: int, theirs: int, keepalive: int | None = None
) -> tuple[int, int]:
    """(hold time, keepalive time) of a session: the smaller hold time (RFC 4271 4.2), and a
    KEEPALIVE every third of it unless ``keepalive`` asks for less (RFC 4271 10); 0 means no
    hold timer and no KEEPALIVEs."""
    hold = min(ours, theirs)
    if hold == 0:
        return 0, 0
    cap = max(1, hold // 3)
    return hold, min(keepalive, cap) if keepalive else cap
