"""The BGP-4 wire codec: bytes in, frozen dataclasses out, and back.

Modules: ``enums`` (code points), ``errors`` (BgpError and RFC 7606 actions), ``context``
(the negotiated session), ``nlri`` (prefixes, add-path), ``capabilities``, ``attributes`` and
``messages`` (one class per wire object, with registries), ``negotiate`` (two OPENs to a
context).  No I/O happens here.
"""

from speaker.wire.context import DEFAULT_CONTEXT, IPV4_UNICAST, IPV6_UNICAST, Family, Negotiated
from speaker.wire.errors import BgpError, ErrorAction, LocalProtocolError
from speaker.wire.messages import (
    Keepalive,
    Message,
    Notification,
    Open,
    RouteRefresh,
    Update,
    decode_message,
    split_messages,
)
from speaker.wire.negotiate import negotiate
from speaker.wire.nlri import Nlri, Prefix

__all__ = [
    "DEFAULT_CONTEXT",
    "IPV4_UNICAST",
    "IPV6_UNICAST",
    "BgpError",
    "ErrorAction",
    "Family",
    "Keepalive",
    "LocalProtocolError",
    "Message",
    "Negotiated",
    "Nlri",
    "Notification",
    "Open",
    "Prefix",
    "RouteRefresh",
    "Update",
    "decode_message",
    "negotiate",
    "split_messages",
]
