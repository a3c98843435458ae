"""One-line summaries of messages for the message-in / message-out events."""

from __future__ import annotations

from speaker.session.config import family_name
from speaker.wire.enums import CapabilityCode, RouteRefreshSubtype
from speaker.wire.messages import Keepalive, Message, Notification, Open, RouteRefresh, Update

__all__ = ["summarize"]


def _cap_name(code: int) -> str:
    try:
        return CapabilityCode(code).name.lower().replace("_", "-")
    except ValueError:
        return str(code)


def summarize(msg: Message) -> str:
    """e.g. ``OPEN (AS 64512, hold 240 s, id 192.168.0.81, capabilities ...)``."""
    if isinstance(msg, Update):
        eor = msg.end_of_rib() if not msg.errors else None
        if eor is not None:
            return f"End-of-RIB {family_name(eor)}"
        return f"UPDATE (+{len(msg.nlri)} -{len(msg.withdrawn)})"
    if isinstance(msg, Keepalive):
        return "KEEPALIVE"
    if isinstance(msg, Notification):
        return f"NOTIFICATION {msg.describe()}"
    if isinstance(msg, Open):
        caps = ", ".join(_cap_name(c.code) for c in msg.capabilities)
        return (
            f"OPEN (AS {msg.asn}, hold {msg.hold_time} s, id {msg.bgp_id}, "
            f"capabilities: {caps or 'none'})"
        )
    if isinstance(msg, RouteRefresh):
        try:
            sub = RouteRefreshSubtype(msg.subtype).name
        except ValueError:
            sub = f"subtype {int(msg.subtype)}"
        return f"ROUTE-REFRESH {sub} {family_name((msg.afi, msg.safi))}"
    return type(msg).__name__
