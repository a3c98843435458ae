"""``--brief``: one line per message, for reading a long capture as a trace.

``#6  frame 14  2.004129  192.168.0.81:179 -> 192.168.0.82:35609  UPDATE  announce 1:
10.244.42.64/26 (path-id 4)`` (one line): where, when, who, what type, and the gist: prefix
counts and the first prefixes of an UPDATE, code and subcode names of a NOTIFICATION.
"""

from __future__ import annotations

from speaker.annotate.explain import Decoded, where_parts
from speaker.annotate.tables import (
    ERROR_CODES,
    MESSAGE_TYPES,
    ROUTE_REFRESH_SUBTYPES,
    family_name,
    subcode_meaning,
)
from speaker.wire.attributes import MpReachAttr, MpUnreachAttr
from speaker.wire.messages import Keepalive, Notification, Open, RouteRefresh, Update
from speaker.wire.nlri import Nlri

FIRST_PREFIXES = 3
"""Prefixes named in a brief UPDATE line; the rest are counted."""


def _prefixes(verb: str, entries: list[Nlri]) -> str:
    shown = [
        f"{n.prefix} (path-id {n.path_id})" if n.path_id is not None else str(n.prefix)
        for n in entries[:FIRST_PREFIXES]
    ]
    more = f", +{len(entries) - FIRST_PREFIXES} more" if len(entries) > FIRST_PREFIXES else ""
    return f"{verb} {len(entries)}: {', '.join(shown)}{more}"


def code_names(code: int, subcode: int) -> str:
    """``6/2 Cease / Administrative Shutdown``."""
    info = ERROR_CODES.get(code)
    sub = subcode_meaning(code, subcode)
    return (
        f"{code}/{subcode} {info.name if info else 'unknown code'} / "
        f"{sub.name if sub else 'unknown subcode'}"
    )


def _update(message: Update) -> str:
    announced = list(message.nlri)
    withdrawn = list(message.withdrawn)
    for attr in message.attributes:
        if isinstance(attr, MpReachAttr):
            announced.extend(attr.nlri)
        elif isinstance(attr, MpUnreachAttr):
            withdrawn.extend(attr.withdrawn)
    parts = []
    eor = message.end_of_rib()
    if eor is not None:
        parts.append(f"End-of-RIB {family_name(*eor)}")
    if announced:
        parts.append(_prefixes("announce", announced))
    if withdrawn:
        parts.append(_prefixes("withdraw", withdrawn))
    if message.errors:
        parts.append(f"RFC 7606: {len(message.errors)} error(s), first: {message.errors[0].reason}")
    return "; ".join(parts) or "nothing announced or withdrawn"


def summary(item: Decoded) -> str:
    """The gist of one message, after its type."""
    message = item.message
    if item.error is not None:
        error = item.error
        return f"MALFORMED: {error.reason} -> {code_names(error.code, error.subcode)}"
    if isinstance(message, Update):
        return _update(message)
    if isinstance(message, Notification):
        text = code_names(message.code, message.subcode)
        if message.shutdown_message:
            text += f' "{message.shutdown_message}"'
        return text
    if isinstance(message, Open):
        return (
            f"AS {message.asn}, hold {message.hold_time} s, id {message.bgp_id}, "
            f"{len(message.capabilities)} capabilities"
        )
    if isinstance(message, RouteRefresh):
        info = ROUTE_REFRESH_SUBTYPES.get(int(message.subtype))
        return f"{family_name(message.afi, message.safi)} {info.name if info else message.subtype}"
    if isinstance(message, Keepalive):
        return "accepts the OPEN" if item.first_keepalive else ""
    return ""


def brief_line(item: Decoded) -> str:
    """Frame, time, direction, type and summary on one line."""
    parts = where_parts(item)
    code = item.type_code
    meaning = MESSAGE_TYPES.get(code) if code is not None else None
    parts.append(meaning.name if meaning else f"type {code}")
    text = summary(item)
    if text:
        parts.append(text)
    return "  ".join(parts)


__all__ = ["brief_line", "code_names", "summary"]
