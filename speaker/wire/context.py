"""The negotiated session context that changes how bytes are read and written.

Add-path (RFC 7911) is negotiated per family and per direction, 4-octet AS (RFC 6793) per
session, and the maximum message size by RFC 8654.  Encode and decode take this object as an
explicit argument; nothing here is global.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from speaker.wire.enums import Afi, Safi

Family = tuple[Afi, Safi]
IPV4_UNICAST: Family = (Afi.IPV4, Safi.UNICAST)
IPV6_UNICAST: Family = (Afi.IPV6, Safi.UNICAST)

MAX_MESSAGE_SIZE = 4096  # RFC 4271 4.1
EXTENDED_MAX_MESSAGE_SIZE = 65535  # RFC 8654


@dataclass(frozen=True, slots=True)
class Negotiated:
    """What both ends agreed, seen from the side that holds it.

    ``addpath_receive``: families whose NLRI we *read* with a path identifier.
    ``addpath_send``: families whose NLRI we *write* with a path identifier.
    ``ebgp``: the peer is in another AS; LOCAL_PREF, ORIGINATOR_ID and CLUSTER_LIST from it are
    then discarded (RFC 7606 7.5, 7.9, 7.10).
    ``families``: the address families both sides announced (RFC 4760 8; IPv4 unicast when
    neither sent a multiprotocol capability).
    ``route_refresh``/``enhanced_route_refresh``: both sides announced them (RFC 2918, 7313).
    """

    asn4: bool = True
    addpath_receive: frozenset[Family] = frozenset()
    addpath_send: frozenset[Family] = frozenset()
    max_message_size: int = MAX_MESSAGE_SIZE
    ebgp: bool = False
    families: frozenset[Family] = frozenset({IPV4_UNICAST})
    route_refresh: bool = False
    enhanced_route_refresh: bool = False
    # precomputed for the UPDATE hot path (Family tuples of enums hash slowly)
    ipv4_addpath_receive: bool = field(default=False, init=False, repr=False, compare=False)
    ipv4_addpath_send: bool = field(default=False, init=False, repr=False, compare=False)
    attribute_cache: int = field(default=0, init=False, repr=False, compare=False)
    """Which interning table attribute lists decoded in this context go to (asn4, ebgp)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "ipv4_addpath_receive", IPV4_UNICAST in self.addpath_receive)
        object.__setattr__(self, "ipv4_addpath_send", IPV4_UNICAST in self.addpath_send)
        object.__setattr__(self, "attribute_cache", int(self.asn4) * 2 + int(self.ebgp))

    def reversed(self) -> Negotiated:
        """The same session seen from the other end (send and receive swapped)."""
        return replace(self, addpath_receive=self.addpath_send, addpath_send=self.addpath_receive)


DEFAULT_CONTEXT = Negotiated()
"""Before OPENs are exchanged: 4-octet AS (our default), no add-path, 4096 octets."""
