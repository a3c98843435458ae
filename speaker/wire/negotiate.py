"""From two OPENs to the session context (RFC 5492, RFC 6793, RFC 7911 4, RFC 8654).

Add-path is directional: we *receive* path ids for a family iff we said we can receive and the
peer said it will send, and the converse for sending (RFC 7911 4).
"""

from __future__ import annotations

from speaker.wire.capabilities import (
    AddPathCapability,
    AddPathMode,
    ExtendedMessageCapability,
    FourOctetAsCapability,
)
from speaker.wire.context import (
    EXTENDED_MAX_MESSAGE_SIZE,
    MAX_MESSAGE_SIZE,
    Family,
    Negotiated,
)
from speaker.wire.enums import Afi, Safi
from speaker.wire.messages import Open


def _addpath_modes(message: Open) -> dict[Family, AddPathMode]:
    modes: dict[Family, AddPathMode] = {}
    for cap in message.capabilities:
        if isinstance(cap, AddPathCapability):
            for afi, safi, mode in cap.entries:
                if isinstance(afi, Afi) and isinstance(safi, Safi):
                    modes[(afi, safi)] = modes.get((afi, safi), AddPathMode(0)) | mode
    return modes


def _has(message: Open, cls: type) -> bool:
    return any(isinstance(c, cls) for c in message.capabilities)


def negotiate(local: Open, remote: Open) -> Negotiated:
    """The context for the side that sent ``local`` and received ``remote``."""
    ours = _addpath_modes(local)
    theirs = _addpath_modes(remote)
    receive = frozenset(
        f
        for f, m in ours.items()
        if m & AddPathMode.RECEIVE and theirs.get(f, AddPathMode(0)) & AddPathMode.SEND
    )
    send = frozenset(
        f
        for f, m in ours.items()
        if m & AddPathMode.SEND and theirs.get(f, AddPathMode(0)) & AddPathMode.RECEIVE
    )
    extended = _has(local, ExtendedMessageCapability) and _has(remote, ExtendedMessageCapability)
    return Negotiated(
        asn4=_has(local, FourOctetAsCapability) and _has(remote, FourOctetAsCapability),
        addpath_receive=receive,
        addpath_send=send,
        max_message_size=EXTENDED_MAX_MESSAGE_SIZE if extended else MAX_MESSAGE_SIZE,
    )
