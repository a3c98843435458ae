"""The negotiated session context that changes how bytes are read and written.

Add-path (RFC 7911) is negotiated per family and per direction, 4-octet AS (RFC 6793) per
session, and the maximum message size by RFC 8654.  Encode and decode take this object as an
explicit argument; nothing here is global.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

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
    """

    asn4: bool = True
    addpath_receive: frozenset[Family] = frozenset()
    addpath_send: frozenset[Family] = frozenset()
    max_message_size: int = MAX_MESSAGE_SIZE

    def reversed(self) -> Negotiated:
        """The same session seen from the other end (send and receive swapped)."""
        return replace(self, addpath_receive=self.addpath_send, addpath_send=self.addpath_receive)


DEFAULT_CONTEXT = Negotiated()
"""Before OPENs are exchanged: 4-octet AS (our default), no add-path, 4096 octets."""
