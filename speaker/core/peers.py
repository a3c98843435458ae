"""Per-peer bookkeeping of the core: the session and what the core tracks beyond it."""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address

from speaker.config import Config, PeerConfig
from speaker.core.limits import LimitState, limit_states
from speaker.session import PeerSession, SessionConfig
from speaker.wire.context import IPV4_UNICAST, IPV6_UNICAST, Family

FAMILY_OF: dict[str, Family] = {"ipv4": IPV4_UNICAST, "ipv6": IPV6_UNICAST}
"""A peer's ``families`` (config words) as (AFI, SAFI)."""


def peer_families(peer: PeerConfig) -> tuple[Family, ...]:
    """The families we offer the peer in our OPEN (RFC 4760 multiprotocol capability)."""
    return tuple(FAMILY_OF[f] for f in peer.families)


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
        send_hold_time=peer.send_hold_time,
        families=peer_families(peer),
    )


@dataclass(slots=True)
class PeerRecord:
    """One configured peer: its session and the core's state about it."""

    config: PeerConfig
    session: PeerSession
    since: float
    """When the session last changed state (the core's clock)."""
    enabled: bool = True
    eor_received: bool = False
    """End-of-RIB seen for every negotiated family since the session came up (convergence,
    recovery)."""
    eor_waiting: set[Family] = field(default_factory=set)
    """The negotiated families whose End-of-RIB has not come yet."""
    feed_sent: bool = False
    """Our initial feed went out: from then on changes flush to the peer."""
    local_addresses: dict[int, IPv4Address | IPv6Address] = field(default_factory=dict)
    """Our address per open connection (the NEXT_HOP we announce), from the transport."""
    limits: tuple[LimitState, ...] = ()
    """The peer's route limits and their state (receive first), see :mod:`speaker.core.limits`."""

    def __post_init__(self) -> None:
        if not self.limits:
            self.limits = limit_states(self.config)

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def awaited(self) -> bool:
        """We wait for this peer's End-of-RIB before converging (RFC 4724 4.1)."""
        return self.enabled and not self.eor_received
