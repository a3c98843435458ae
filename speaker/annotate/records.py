"""Messages as JSON objects, one per line (NDJSON): every decoded field, with codes and names.

Every value is plain JSON: enums become their names next to their numbers, prefixes become
``{"prefix": "10.0.0.0/26", "path_id": 4}``, bytes become hex.  A record carries the stream
endpoints, the time, the capture frame, the context the message was read with, and the
NOTIFICATION a malformed message causes.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from enum import IntEnum, IntFlag
from functools import singledispatch

from speaker.annotate.explain import Decoded
from speaker.annotate.layout import raw_attributes
from speaker.annotate.session import Negotiation
from speaker.annotate.tables import (
    ATTRIBUTES,
    BGP_ROLES,
    CAPABILITIES,
    ERROR_ACTIONS,
    ERROR_CODES,
    MESSAGE_TYPES,
    ROUTE_REFRESH_SUBTYPES,
    family_name,
    flag_words,
    subcode_meaning,
)
from speaker.wire.attributes import (
    AS_TRANS,
    As4PathAttr,
    AsPathAttr,
    AsPathSegment,
    CommunitiesAttr,
    ExtendedCommunitiesAttr,
    LargeCommunitiesAttr,
    MpReachAttr,
    MpUnreachAttr,
    OtcAttr,
    PathAttribute,
    UnknownAttr,
    merge_as4_path,
)
from speaker.wire.capabilities import (
    AddPathCapability,
    AddPathMode,
    BgpRoleCapability,
    Capability,
    ExtendedNextHopCapability,
    FqdnCapability,
    GracefulRestartCapability,
    GracefulRestartFlags,
    LongLivedGracefulRestartCapability,
    MultiprotocolCapability,
    UnknownCapability,
)
from speaker.wire.enums import AttrFlag
from speaker.wire.errors import BgpError
from speaker.wire.messages import (
    CapabilitiesParameter,
    Keepalive,
    Message,
    Notification,
    Open,
    RouteRefresh,
    Update,
)
from speaker.wire.nlri import Nlri, Prefix

Json = object
"""A value ``json.dumps`` accepts."""

SCHEMA = 1


def jsonable(value: object) -> Json:
    """Plain JSON for codec values (enums by name, bytes as hex, prefixes as text)."""
    if value is None or isinstance(value, (bool, str, float)):
        return value
    if isinstance(value, IntFlag):
        return [m.name for m in type(value) if m.value and m in value and m.name]
    if isinstance(value, IntEnum):
        return value.name
    if isinstance(value, Prefix):  # an int: before the ints
        return str(value)
    if isinstance(value, int):
        return value
    if isinstance(value, Nlri):
        return nlri_json(value)
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return str(value)
    if isinstance(value, (tuple, list, frozenset, set)):
        return [jsonable(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: jsonable(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if f.name != "flags"
        }
    return str(value)


def nlri_json(entry: Nlri) -> dict[str, Json]:
    """``{"prefix": "10.244.42.64/26", "path_id": 4}`` (path_id null without add-path)."""
    return {"prefix": str(entry.prefix), "path_id": entry.path_id}


def _family(afi: int, safi: int) -> dict[str, Json]:
    return {"afi": int(afi), "safi": int(safi), "family": family_name(afi, safi).lower()}


# ------------------------------------------------------------------------------ capabilities


@singledispatch
def capability_fields(cap: Capability) -> dict[str, Json]:
    """The decoded fields of a capability."""
    data = jsonable(cap)
    return data if isinstance(data, dict) else {}


@capability_fields.register
def _(cap: MultiprotocolCapability) -> dict[str, Json]:
    return _family(cap.afi, cap.safi)


@capability_fields.register
def _(cap: GracefulRestartCapability) -> dict[str, Json]:
    return {
        "restart_time": cap.restart_time,
        "restart_state": cap.restarting,
        "notification": bool(cap.flags & GracefulRestartFlags.NOTIFICATION),
        "families": [
            {**_family(a, s), "forwarding_preserved": bool(f)} for a, s, f in cap.families
        ],
    }


@capability_fields.register
def _(cap: AddPathCapability) -> dict[str, Json]:
    return {
        "families": [
            {
                **_family(a, s),
                "mode": int(m),
                "send": bool(m & AddPathMode.SEND),
                "receive": bool(m & AddPathMode.RECEIVE),
            }
            for a, s, m in cap.entries
        ]
    }


@capability_fields.register
def _(cap: LongLivedGracefulRestartCapability) -> dict[str, Json]:
    return {
        "families": [{**_family(a, s), "flags": f, "stale_time": t} for a, s, f, t in cap.entries]
    }


@capability_fields.register
def _(cap: ExtendedNextHopCapability) -> dict[str, Json]:
    return {"entries": [{**_family(a, s), "next_hop_afi": int(n)} for a, s, n in cap.entries]}


@capability_fields.register
def _(cap: BgpRoleCapability) -> dict[str, Json]:
    info = BGP_ROLES.get(cap.role)
    return {"role": int(cap.role), "role_name": info.name if info else None}


@capability_fields.register
def _(cap: FqdnCapability) -> dict[str, Json]:
    return {
        "hostname": cap.hostname.decode("utf-8", "replace"),
        "domain_name": cap.domain.decode("utf-8", "replace"),
    }


@capability_fields.register
def _(cap: UnknownCapability) -> dict[str, Json]:
    return {}


def capability_json(cap: Capability) -> dict[str, Json]:
    """Code, name, raw value and decoded fields."""
    info = CAPABILITIES.get(cap.code)
    value = cap.encode_value()
    return {
        "code": cap.code,
        "name": info.name if info else None,
        "length": len(value),
        "value": value.hex(),
        **capability_fields(cap),
    }


def open_json(message: Open) -> dict[str, Json]:
    """Every field of an OPEN."""
    params: list[Json] = []
    for p in message.parameters:
        if isinstance(p, CapabilitiesParameter):
            params.append(
                {
                    "type": p.type_code,
                    "name": "capabilities",
                    "capability_codes": [c.code for c in p.capabilities],
                }
            )
        else:
            params.append({"type": p.type_code, "value": p.value.hex()})
    return {
        "version": message.version,
        "my_as": message.my_as,
        "asn": message.asn,
        "hold_time": message.hold_time,
        "bgp_id": str(message.bgp_id),
        "extended_parameters": message.extended_parameters,
        "parameters": params,
        "capabilities": [capability_json(c) for c in message.capabilities],
    }


# ------------------------------------------------------------------------------ attributes


def _segments(segments: tuple[AsPathSegment, ...]) -> list[Json]:
    return [{"type": s.type.name, "type_code": int(s.type), "asns": list(s.asns)} for s in segments]


@singledispatch
def attribute_value(attr: PathAttribute) -> Json:
    """The decoded value of an attribute."""
    data = jsonable(attr)
    if isinstance(data, dict) and len(data) == 1:
        return next(iter(data.values()))
    return data


@attribute_value.register
def _(attr: AsPathAttr) -> Json:
    return _segments(attr.segments)


@attribute_value.register
def _(attr: As4PathAttr) -> Json:
    return _segments(attr.segments)


@attribute_value.register
def _(attr: CommunitiesAttr) -> Json:
    return [f"{v >> 16}:{v & 0xFFFF}" for v in attr.values]


@attribute_value.register
def _(attr: LargeCommunitiesAttr) -> Json:
    return [f"{g}:{a}:{b}" for g, a, b in attr.values]


@attribute_value.register
def _(attr: ExtendedCommunitiesAttr) -> Json:
    return [
        {
            "raw": f"{v:016x}",
            "type": c.type,
            "subtype": c.subtype,
            "type_name": c.type_name,
            "name": c.name,
            "transitive": c.transitive,
            "value": c.text,
        }
        for v, c in zip(attr.values, attr.communities, strict=True)
    ]


@attribute_value.register
def _(attr: OtcAttr) -> Json:
    return attr.asn


@attribute_value.register
def _(attr: MpReachAttr) -> Json:
    return {
        **_family(attr.afi, attr.safi),
        "next_hops": [str(a) for a in attr.next_hops],
        "reserved": attr.reserved,
        "nlri": [nlri_json(n) for n in attr.nlri],
    }


@attribute_value.register
def _(attr: MpUnreachAttr) -> Json:
    return {**_family(attr.afi, attr.safi), "withdrawn": [nlri_json(n) for n in attr.withdrawn]}


@attribute_value.register
def _(attr: UnknownAttr) -> Json:
    return attr.value.hex()


def _flags_json(flags: int) -> dict[str, Json]:
    return {
        "flags": flags,
        "flag_names": flag_words(flags),
        "optional": bool(flags & AttrFlag.OPTIONAL),
        "transitive": bool(flags & AttrFlag.TRANSITIVE),
        "partial": bool(flags & AttrFlag.PARTIAL),
        "extended_length": bool(flags & AttrFlag.EXTENDED_LENGTH),
    }


def update_json(message: Update, data: bytes, receiver_as: int | None = None) -> dict[str, Json]:
    """Withdrawn routes, attributes as sent (with flags), NLRI, End-of-RIB, RFC 7606 errors,
    an AS loop (when the receiver's AS is known) and the RFC 6793 merged path."""
    attrs: list[Json] = []
    unused = list(message.attributes)
    for raw in raw_attributes(data):
        info = ATTRIBUTES.get(raw.type_code)
        entry: dict[str, Json] = {
            "type_code": raw.type_code,
            "name": info.name if info else None,
            **_flags_json(raw.flags),
            "length": raw.length,
        }
        match = next((a for a in unused if a.type_code == raw.type_code), None)
        if match is None:
            entry["discarded"] = True
            entry["raw"] = raw.value.hex()
        else:
            unused.remove(match)
            entry["value"] = attribute_value(match)
        attrs.append(entry)
    for attr in unused:  # not found in the raw walk (should not happen)
        attrs.append(
            {
                "type_code": attr.type_code,
                **_flags_json(attr.wire_flags()),
                "value": attribute_value(attr),
            }
        )
    eor = message.end_of_rib()
    as_path = next((a for a in message.attributes if isinstance(a, AsPathAttr)), None)
    as4 = next((a for a in message.attributes if isinstance(a, As4PathAttr)), None)
    merged = None
    trans = as_path is not None and any(AS_TRANS in seg.asns for seg in as_path.segments)
    if as_path is not None and as4 is not None and trans:
        merged = _segments(merge_as4_path(as_path.segments, as4.segments))
    loop = None
    if receiver_as is not None and as_path is not None:
        loop = any(receiver_as in seg.asns for seg in as_path.segments)
    return {
        "withdrawn": [nlri_json(n) for n in message.withdrawn],
        "attributes": attrs,
        "as_loop": loop,
        "merged_as_path": merged,
        "nlri": [nlri_json(n) for n in message.nlri],
        "end_of_rib": family_name(*eor).lower() if eor is not None else None,
        "treat_as_withdraw": message.treat_as_withdraw,
        "errors": [error_json(e) for e in message.errors],
    }


# ------------------------------------------------------------------------------ others


def notification_json(message: Notification) -> dict[str, Json]:
    """Code and subcode with names, data, and the RFC 9003 shutdown communication."""
    code = ERROR_CODES.get(message.code)
    sub = subcode_meaning(message.code, message.subcode)
    return {
        "code": message.code,
        "code_name": code.name if code else None,
        "subcode": message.subcode,
        "subcode_name": sub.name if sub else None,
        "data": message.data.hex(),
        "shutdown_message": message.shutdown_message,
    }


def route_refresh_json(message: RouteRefresh) -> dict[str, Json]:
    """Family and RFC 7313 subtype."""
    info = ROUTE_REFRESH_SUBTYPES.get(int(message.subtype))
    return {
        **_family(message.afi, message.safi),
        "subtype": int(message.subtype),
        "subtype_name": info.name if info else None,
    }


def error_json(error: BgpError) -> dict[str, Json]:
    """The NOTIFICATION an error prescribes, and the RFC 7606 action."""
    code = ERROR_CODES.get(error.code)
    sub = subcode_meaning(error.code, error.subcode)
    return {
        "code": error.code,
        "code_name": code.name if code else None,
        "subcode": error.subcode,
        "subcode_name": sub.name if sub else None,
        "data": error.data.hex(),
        "reason": error.reason,
        "action": ERROR_ACTIONS[error.action].name,
    }


def context_json(item: Decoded) -> dict[str, Json]:
    """The receiving context a message was read with, and whether it was negotiated."""
    ctx = item.context
    return {
        "negotiated": ctx.from_opens,
        "missing_open_from": list(ctx.missing),
        "asn4": ctx.negotiated.asn4,
        "addpath_receive": sorted(
            family_name(a, s).lower() for a, s in ctx.negotiated.addpath_receive
        ),
        "max_message_size": ctx.negotiated.max_message_size,
    }


def negotiation_json(neg: Negotiation) -> dict[str, Json]:
    """The negotiation summary: one key per fact (add-path is per direction)."""
    out: dict[str, Json] = {"sides": [neg.a, neg.b]}
    add_path: list[Json] = []
    for fact in neg.facts:
        if fact.key == "add_path":
            add_path.append(fact.data)
        else:
            out[fact.key] = fact.data
    out["add_path"] = add_path
    return out


def endpoint_json(label: str | None, endpoint: tuple[str, int] | None) -> Json:
    if endpoint is not None:
        return {"address": endpoint[0], "port": endpoint[1]}
    return {"side": label} if label is not None else None


def _body(message: Message | None, item: Decoded) -> dict[str, Json]:
    if isinstance(message, Open):
        return open_json(message)
    if isinstance(message, Update):
        return update_json(message, item.data, item.context.receiver_as)
    if isinstance(message, Notification):
        return notification_json(message)
    if isinstance(message, RouteRefresh):
        return route_refresh_json(message)
    if isinstance(message, Keepalive):
        return {"first_after_open": item.first_keepalive}
    return {}


def record(item: Decoded) -> dict[str, Json]:
    """The JSON object for one message."""
    code = item.type_code
    meaning = MESSAGE_TYPES.get(code) if code is not None else None
    length = int.from_bytes(item.data[16:18], "big") if len(item.data) >= 18 else None
    rec: dict[str, Json] = {
        "schema": SCHEMA,
        "index": item.index,
        "frame": item.frame,
        "offset": item.offset,
        "line": item.line,
        "timestamp": item.timestamp,
        "time": item.relative,
        "source": endpoint_json(item.source, item.source_endpoint),
        "destination": endpoint_json(item.destination, item.destination_endpoint),
        "type": meaning.name if meaning else None,
        "type_code": code,
        "length": length,
        "octets": len(item.data),
        "context": context_json(item),
        "malformed": item.malformed,
        "error": error_json(item.error) if item.error is not None else None,
    }
    if item.hint:
        rec["hint"] = item.hint
    rec.update(_body(item.message, item))
    if item.negotiation is not None:
        rec["negotiation"] = negotiation_json(item.negotiation)
    rec["raw"] = item.data.hex()
    return rec
