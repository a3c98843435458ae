"""Messages as annotated trees: every field with its value, its meaning and its RFC section.

Formatting of a capability or attribute value is chosen by its class (``singledispatch``);
what a code *means* comes from :mod:`speaker.annotate.tables`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import singledispatch

from speaker.annotate.layout import RawAttribute, raw_attributes
from speaker.annotate.session import Context, Negotiation, describe_context
from speaker.annotate.tables import (
    ADDPATH_MODES,
    AFI_NAMES,
    ATTRIBUTES,
    BGP_ROLES,
    CAPABILITIES,
    END_OF_RIB,
    ERROR_ACTIONS,
    ERROR_CODES,
    ERROR_DATA,
    EXT_COMMUNITIES,
    EXT_COMMUNITY_SPECIFIC,
    EXT_COMMUNITY_TYPES,
    GR_FLAGS,
    GR_FORWARDING,
    MESSAGE_TYPES,
    OPEN_FIELDS,
    OPT_PARAMS,
    ORIGINS,
    ROLE_PAIRS,
    ROUTE_REFRESH_SUBTYPES,
    SEGMENT_TYPES,
    SHUTDOWN_COMMUNICATION,
    WELL_KNOWN_COMMUNITIES,
    Meaning,
    family_name,
    flag_words,
    subcode_meaning,
)
from speaker.annotate.tree import Node
from speaker.wire.attributes import (
    AS_TRANS,
    AggregatorAttr,
    As4AggregatorAttr,
    As4PathAttr,
    AsPathAttr,
    AsPathSegment,
    AtomicAggregateAttr,
    ClusterListAttr,
    CommunitiesAttr,
    ExtendedCommunitiesAttr,
    LargeCommunitiesAttr,
    LocalPrefAttr,
    MedAttr,
    MpReachAttr,
    MpUnreachAttr,
    NextHopAttr,
    OriginatorIdAttr,
    OriginAttr,
    OtcAttr,
    PathAttribute,
    UndecodedMpAttr,
    UnknownAttr,
    merge_as4_path,
)
from speaker.wire.capabilities import CAPABILITIES as CODEC_CAPABILITIES
from speaker.wire.capabilities import (
    AddPathCapability,
    BgpRoleCapability,
    Capability,
    ExtendedNextHopCapability,
    FourOctetAsCapability,
    FqdnCapability,
    GracefulRestartCapability,
    GracefulRestartFlags,
    LongLivedGracefulRestartCapability,
    MultiprotocolCapability,
    UnknownCapability,
)
from speaker.wire.context import IPV4_UNICAST, Negotiated
from speaker.wire.enums import AttrFlag, CeaseSubcode, ErrorCode, MessageType
from speaker.wire.errors import BgpError, ErrorAction
from speaker.wire.extcommunities import ExtendedCommunity
from speaker.wire.messages import (
    HEADER_SIZE,
    CapabilitiesParameter,
    Keepalive,
    Message,
    Notification,
    Open,
    RouteRefresh,
    Update,
)
from speaker.wire.nlri import Nlri

# ------------------------------------------------------------------------------ one message


@dataclass(slots=True)
class Decoded:
    """One message as the decode tool saw it: where it came from, how it was read, and what
    it turned out to be (a message, or the error that makes it malformed).

    Not frozen: one is built per message, and a frozen dataclass's ``__init__`` (every field
    set through ``object.__setattr__``) was a tenth of the decode time of a route feed.
    Treat it as read-only.
    """

    index: int
    data: bytes
    source: str | None
    destination: str | None
    context: Context
    message: Message | None = None
    error: BgpError | None = None
    negotiation: Negotiation | None = None
    first_keepalive: bool = False
    hint: str | None = None
    timestamp: float | None = None
    relative: float | None = None
    frame: int | None = None
    offset: int | None = None
    line: int | None = None
    source_endpoint: tuple[str, int] | None = None
    destination_endpoint: tuple[str, int] | None = None

    @property
    def type_code(self) -> int | None:
        """The header's type octet, if the message is long enough to have one."""
        return self.data[18] if len(self.data) >= HEADER_SIZE else None

    @property
    def malformed(self) -> bool:
        """The message raised an error, or decoded with RFC 7606 errors."""
        return self.error is not None or bool(
            isinstance(self.message, Update) and self.message.errors
        )


def where_parts(item: Decoded) -> list[str]:
    """Where a message sits: ``#5``, frame, time, offset or line, ``A:179 -> B:4567`` (the
    start of both the full header and the ``--brief`` line)."""
    parts = [f"#{item.index}"]
    if item.frame is not None:
        parts.append(f"frame {item.frame}")
    if item.relative is not None:
        parts.append(f"{item.relative:.6f}")
    if item.offset is not None:
        parts.append(f"offset {item.offset}")
    if item.line is not None:
        parts.append(f"line {item.line}")
    if item.source is not None and item.destination is not None:
        parts.append(direction(item.source, item.destination))
    return parts


def direction(source: str, destination: str) -> str:
    """``A:179 -> B:4567``."""
    return f"{source} -> {destination}"


def kind_parts(code: int | None, length: int) -> list[str]:
    """``UPDATE (2), 53 octets`` and ``[RFC 4271 4.3]``: the end of a message's header line."""
    meaning = MESSAGE_TYPES.get(code) if code is not None else None
    if code is None:
        kind = "truncated message"
    elif meaning is None:
        kind = f"unknown type ({code})"
    else:
        kind = f"{meaning.name} ({code})"
    parts = [f"{kind}, {length} octets"]
    if meaning is not None:
        parts.append(f"[{meaning.rfc}]")
    return parts


def header_line(item: Decoded) -> str:
    """``#5  frame 14  0.001234  A:179 -> B:4567  UPDATE (2), 53 octets  [RFC 4271 4.3]``."""
    return "  ".join(where_parts(item) + kind_parts(item.type_code, len(item.data)))


def about(code: int) -> Node | None:
    """A one-line reminder of what a message type is for (shown at its first occurrence)."""
    meaning = MESSAGE_TYPES.get(code)
    if meaning is None:
        return None
    return Node(f"({meaning.name}: {meaning.text})")


def body(item: Decoded) -> list[Node]:
    """The annotated fields of a message (or of its failure)."""
    if item.error is not None:
        return malformed(item, item.error)
    message = item.message
    if isinstance(message, Open):
        return explain_open(message, item.data)
    if isinstance(message, Update):
        return explain_update(message, item)
    if isinstance(message, Notification):
        return explain_notification(message)
    if isinstance(message, RouteRefresh):
        return explain_route_refresh(message)
    if isinstance(message, Keepalive):
        return explain_keepalive(item)
    return []


# ------------------------------------------------------------------------------ errors


def notification_nodes(code: int, subcode: int, data: bytes) -> list[Node]:
    """Error code, subcode and data of a NOTIFICATION (sent or prescribed)."""
    nodes: list[Node] = []
    info = ERROR_CODES.get(code)
    nodes.append(
        Node(
            "error code",
            f"{code} {info.name if info else '(unknown)'}",
            info.text if info else "not defined",
            info.rfc if info else "",
        )
    )
    sub = subcode_meaning(code, subcode)
    if sub is not None:
        nodes.append(Node("error subcode", f"{subcode} {sub.name}", sub.text, sub.rfc))
    else:
        nodes.append(
            Node(
                "error subcode",
                f"{subcode} (unknown)",
                f"not defined for {info.name}" if info else "the error code is not known either",
                info.rfc if info else "",
            )
        )
    if code == ErrorCode.CEASE and subcode in (
        CeaseSubcode.ADMINISTRATIVE_SHUTDOWN,
        CeaseSubcode.ADMINISTRATIVE_RESET,
    ):
        nodes.extend(_shutdown_nodes(data))
        return nodes
    if data:
        what = ERROR_DATA.get((code, subcode), "diagnostic data")
        node = Node("data", f"{len(data)} octets: {data.hex()}", what)
        if code == ErrorCode.CEASE and subcode == CeaseSubcode.HARD_RESET and len(data) >= 2:
            node.children.extend(
                n for n in notification_nodes(data[0], data[1], data[2:]) if n.label != "data"
            )
        nodes.append(node)
    return nodes


def _shutdown_nodes(data: bytes) -> list[Node]:
    info = SHUTDOWN_COMMUNICATION
    if not data:
        return [Node(info.name, "(none)", "the operator gave no message", info.rfc)]
    size = data[0]
    text = data[1 : 1 + size].decode("utf-8", "replace")
    nodes = [Node(info.name, f'"{text}" ({size} octets)', info.text, info.rfc)]
    if size + 1 != len(data):
        nodes.append(
            Node(
                "warning",
                f"length octet says {size}, {len(data) - 1} octets follow",
                "a malformed shutdown communication; the receiver should ignore the text",
                "RFC 9003 4",
            )
        )
    return nodes


def error_nodes(error: BgpError) -> list[Node]:
    """What a receiver does about an error: the RFC 7606 action and the NOTIFICATION."""
    action = ERROR_ACTIONS[error.action]
    nodes = [
        Node("problem", error.reason or "(no detail)"),
        Node("receiver's action", action.name, action.text, action.rfc),
    ]
    code_info = ERROR_CODES.get(error.code)
    sub = subcode_meaning(error.code, error.subcode)
    prescribed = Node(
        "NOTIFICATION it causes"
        if error.action is ErrorAction.SESSION_RESET
        else "NOTIFICATION without RFC 7606",
        f"{error.code}/{error.subcode} {code_info.name if code_info else '?'} / "
        f"{sub.name if sub else '?'}",
        "sent before closing the session"
        if error.action is ErrorAction.SESSION_RESET
        else "what a pre-RFC 7606 speaker would send (and reset the session)",
        sub.rfc if sub else "RFC 4271 6",
    )
    if error.data:
        what = ERROR_DATA.get((error.code, error.subcode), "diagnostic data")
        prescribed.add("data", error.data.hex(), what)
    nodes.append(prescribed)
    return nodes


def malformed(item: Decoded, error: BgpError) -> list[Node]:
    """A message the codec refused: the reason, and what the receiver must do."""
    nodes = [Node("MALFORMED", error.reason or "(no detail)")]
    nodes.extend(error_nodes(error)[1:])
    if item.type_code == MessageType.UPDATE:
        nodes.append(context_node(item))
    if item.hint:
        nodes.append(Node("hint", item.hint, "a guess: the OPEN exchange was not seen"))
    return nodes


# ------------------------------------------------------------------------------ OPEN


@singledispatch
def capability_value(cap: Capability) -> str:
    """The value of a capability, in words (empty for capabilities without a value)."""
    value = cap.encode_value()
    return f"value {value.hex()}" if value else ""


@capability_value.register
def _(cap: MultiprotocolCapability) -> str:
    return f"{family_name(cap.afi, cap.safi)} (AFI {int(cap.afi)}, SAFI {int(cap.safi)})"


@capability_value.register
def _(cap: FourOctetAsCapability) -> str:
    return f"AS {cap.asn}"


@capability_value.register
def _(cap: GracefulRestartCapability) -> str:
    parts = [f"restart time {cap.restart_time} s"]
    for bit in (GracefulRestartFlags.RESTART, GracefulRestartFlags.NOTIFICATION):
        on, off = GR_FLAGS[bit]
        parts.append(on if cap.flags & bit else off)
    for afi, safi, flags in cap.families:
        forwarding = GR_FORWARDING[0] if flags else GR_FORWARDING[1]
        parts.append(f"{family_name(afi, safi)} {forwarding}")
    if not cap.families:
        parts.append(
            "no families: the sender helps a restarting peer but keeps no forwarding "
            "state of its own"
        )
    return ", ".join(parts)


@capability_value.register
def _(cap: AddPathCapability) -> str:
    parts = []
    for afi, safi, mode in cap.entries:
        words = ADDPATH_MODES.get(mode, "no send or receive bit")
        parts.append(f"{family_name(afi, safi)}: {words} ({int(mode)})")
    return "; ".join(parts) or "no families"


@capability_value.register
def _(cap: LongLivedGracefulRestartCapability) -> str:
    parts = [
        f"{family_name(afi, safi)}: F flag {'set' if flags & 0x80 else 'clear'}, "
        f"long-lived stale time {stale} s"
        for afi, safi, flags, stale in cap.entries
    ]
    return "; ".join(parts) or "no families listed: no long-lived stale routes are kept"


@capability_value.register
def _(cap: ExtendedNextHopCapability) -> str:
    return (
        "; ".join(
            f"{family_name(afi, safi)} (AFI {int(afi)}, SAFI {int(safi)}) may use an "
            f"{AFI_NAMES.get(nh, f'AFI {nh}')} next hop (next hop AFI {int(nh)})"
            for afi, safi, nh in cap.entries
        )
        or "no families"
    )


@capability_value.register
def _(cap: BgpRoleCapability) -> str:
    info = BGP_ROLES.get(cap.role)
    if info is None:
        return f"role {int(cap.role)} (undefined: a role-checking peer refuses the OPEN)"
    pair = BGP_ROLES[ROLE_PAIRS[cap.role]].name
    return f"{info.name} ({int(cap.role)}): {info.text}; the peer must announce {pair}"


@capability_value.register
def _(cap: FqdnCapability) -> str:
    host = cap.hostname.decode("utf-8", "replace")
    domain = cap.domain.decode("utf-8", "replace")
    return f'host name "{host}", domain name "{domain}"' if domain else f'host name "{host}"'


def _unparsed(cap: UnknownCapability) -> str:
    """A known code whose value did not parse (kept as bytes)."""
    value = cap.value.hex() or "(empty)"
    return f"value {value}: does not parse as this capability (ignored)"


@capability_value.register
def _(cap: UnknownCapability) -> str:
    if cap.code in CODEC_CAPABILITIES:
        return _unparsed(cap)
    return f"value {cap.value.hex()}" if cap.value else "(empty)"


def capability_node(cap: Capability) -> Node:
    """One capability: name and code, value, meaning, RFC."""
    info = CAPABILITIES.get(cap.code)
    name = info.name if info else "unknown capability"
    return Node(
        f"{name} ({cap.code})",
        capability_value(cap) or "(no value)",
        info.text if info else "not known to this decoder; a peer ignores what it does not know",
        info.rfc if info else "RFC 5492 3",
    )


def explain_open(message: Open, data: bytes) -> list[Node]:
    """Fields and capabilities of an OPEN (RFC 4271 4.2, RFC 5492)."""
    f = OPEN_FIELDS
    my_as = str(message.my_as)
    if message.my_as == AS_TRANS:
        my_as += " (AS_TRANS: the real AS is in the 4-octet AS capability)"
    hold = f"{message.hold_time} s" if message.hold_time else "0 (no hold timer, no KEEPALIVEs)"
    nodes = [
        _field(f["version"], message.version),
        _field(f["my_as"], my_as),
        _field(f["hold_time"], hold),
        _field(f["bgp_id"], message.bgp_id),
    ]
    if len(data) > 28:
        nodes.append(_field(f["opt_len"], data[28]))
    if message.extended_parameters:
        nodes.append(_field(f["extended"], "yes"))
    for param in message.parameters:
        info = OPT_PARAMS.get(param.type_code, Meaning("parameter", "unknown parameter"))
        if isinstance(param, CapabilitiesParameter):
            node = Node(
                f"optional parameter {param.type_code}: {info.name} "
                f"({len(param.capabilities)} capabilities)",
                meaning=info.text,
                rfc=info.rfc,
            )
            node.children.extend(capability_node(c) for c in param.capabilities)
        else:
            node = Node(
                f"optional parameter {param.type_code}",
                param.value.hex() or "(empty)",
                info.text,
                info.rfc,
            )
        nodes.append(node)
    return nodes


def _field(info: Meaning, value: object) -> Node:
    return Node(info.name, str(value), info.text, info.rfc)


def negotiation_block(neg: Negotiation) -> Node:
    """The summary printed once both OPENs of a stream are seen."""
    node = Node(
        f"capability negotiation: {neg.a} <-> {neg.b} (both OPENs seen)",
        meaning="what the two OPENs agree on; it fixes how every later message is read",
        rfc="RFC 5492 3",
    )
    for fact in neg.facts:
        node.add(fact.label, fact.value, fact.meaning, fact.rfc)
    return node


# ------------------------------------------------------------------------------ UPDATE


def _communities(values: tuple[int, ...]) -> str:
    out = []
    for v in values:
        known = WELL_KNOWN_COMMUNITIES.get(v)
        text = f"{v >> 16}:{v & 0xFFFF}"
        out.append(f"{text} ({known.name}: {known.text}, {known.rfc})" if known else text)
    return " ".join(out)


def _segments(segments: tuple[AsPathSegment, ...]) -> str:
    parts = []
    for seg in segments:
        asns = " ".join(str(a) for a in seg.asns)
        name = SEGMENT_TYPES[seg.type].name
        parts.append(f"{name} {{{asns}}}" if "SET" in name else f"{name} {asns}")
    return "; ".join(parts)


@singledispatch
def attribute_value(attr: PathAttribute, ctx: Negotiated) -> tuple[str, str]:
    """(value, extra meaning) of an attribute."""
    return attr.encode_value(ctx).hex() or "(empty)", ""


@attribute_value.register
def _(attr: OriginAttr, ctx: Negotiated) -> tuple[str, str]:
    info = ORIGINS[attr.value]
    return f"{info.name} ({int(attr.value)})", info.text


@attribute_value.register
def _(attr: AsPathAttr, ctx: Negotiated) -> tuple[str, str]:
    width = "4-octet" if ctx.asn4 else "2-octet"
    if not attr.segments:
        return "(empty)", "empty: the route starts in this AS (iBGP peers do not prepend)"
    return _segments(attr.segments), f"{width} AS numbers; path length {attr.length}"


@attribute_value.register
def _(attr: As4PathAttr, ctx: Negotiated) -> tuple[str, str]:
    return _segments(attr.segments) or "(empty)", ""


@attribute_value.register
def _(attr: NextHopAttr, ctx: Negotiated) -> tuple[str, str]:
    return str(attr.address), ""


@attribute_value.register
def _(attr: MedAttr, ctx: Negotiated) -> tuple[str, str]:
    return str(attr.value), ""


@attribute_value.register
def _(attr: LocalPrefAttr, ctx: Negotiated) -> tuple[str, str]:
    return str(attr.value), ""


@attribute_value.register
def _(attr: AtomicAggregateAttr, ctx: Negotiated) -> tuple[str, str]:
    return "(no value)", ""


@attribute_value.register
def _(attr: AggregatorAttr, ctx: Negotiated) -> tuple[str, str]:
    return f"AS {attr.asn}, router {attr.address}", ""


@attribute_value.register
def _(attr: As4AggregatorAttr, ctx: Negotiated) -> tuple[str, str]:
    return f"AS {attr.asn}, router {attr.address}", ""


@attribute_value.register
def _(attr: CommunitiesAttr, ctx: Negotiated) -> tuple[str, str]:
    return _communities(attr.values), ""


@attribute_value.register
def _(attr: LargeCommunitiesAttr, ctx: Negotiated) -> tuple[str, str]:
    return " ".join(f"{g}:{a}:{b}" for g, a, b in attr.values), ""


@attribute_value.register
def _(attr: ExtendedCommunitiesAttr, ctx: Negotiated) -> tuple[str, str]:
    return ", ".join(str(c) for c in attr.communities), ""


@attribute_value.register
def _(attr: OtcAttr, ctx: Negotiated) -> tuple[str, str]:
    return f"AS {attr.asn}", ""


def ext_community_node(community: ExtendedCommunity) -> Node:
    """One extended community: name and value, type and subtype octets, meaning."""
    info = EXT_COMMUNITY_SPECIFIC.get((community.type, community.subtype))
    if info is None and community.known:
        info = EXT_COMMUNITIES.get(community.subtype)
    kind = f"{community.type_name} (type 0x{community.type:02x}, subtype 0x{community.subtype:02x})"
    meaning = f"{info.text}; {kind}" if info else kind
    rfc = info.rfc if info else EXT_COMMUNITY_TYPES.get(community.type, "RFC 4360 2")
    return Node(community.name, community.text, meaning, rfc)


def as_path_nodes(attr: AsPathAttr, item: Decoded) -> list[Node]:
    """An AS loop: the receiver's own AS in the path (known once both OPENs were seen)."""
    mine = item.context.receiver_as
    if mine is None or not any(mine in seg.asns for seg in attr.segments):
        return []
    return [
        Node(
            "AS loop",
            f"contains {mine}, the receiver's own AS",
            "the route went through the receiver's AS already: the receiver drops it "
            "(it is not a candidate for the decision process)",
            "RFC 4271 9.1.2",
        )
    ]


def merged_path_node(message: Update) -> Node | None:
    """AS_PATH with AS_TRANS plus AS4_PATH: the path a 4-octet speaker reconstructs."""
    as_path = next((a for a in message.attributes if isinstance(a, AsPathAttr)), None)
    as4 = next((a for a in message.attributes if isinstance(a, As4PathAttr)), None)
    if as_path is None or as4 is None:
        return None
    if not any(AS_TRANS in seg.asns for seg in as_path.segments):
        return None
    merged = merge_as4_path(as_path.segments, as4.segments)
    if merged == as_path.segments:
        why = "AS4_PATH counts more ASes than AS_PATH, so it is ignored"
    else:
        why = (
            "the leading ASes of AS_PATH, then AS4_PATH, which holds the real ASes where "
            "AS_PATH has AS_TRANS (23456)"
        )
    return Node(
        "AS path (merged)",
        _segments(merged),
        f"what a 4-octet speaker takes as the path; {why}",
        "RFC 6793 4.2.3",
    )


@attribute_value.register
def _(attr: OriginatorIdAttr, ctx: Negotiated) -> tuple[str, str]:
    return str(attr.address), ""


@attribute_value.register
def _(attr: ClusterListAttr, ctx: Negotiated) -> tuple[str, str]:
    return " ".join(str(a) for a in attr.ids), ""


_NOT_NEGOTIATED = (
    "family not negotiated: its routes are ignored and the session is kept (RFC 4760 7)"
)


def _negotiation_note(family: tuple[int, int], ctx: Negotiated) -> str:
    return "" if family in ctx.families else _NOT_NEGOTIATED


@attribute_value.register
def _(attr: MpReachAttr, ctx: Negotiated) -> tuple[str, str]:
    hops = ", ".join(str(a) for a in attr.next_hops)
    count = _count(len(attr.nlri), "prefix", "prefixes")
    text = f"{family_name(attr.afi, attr.safi)}, next hop {hops}, {count}"
    return text, _negotiation_note((attr.afi, attr.safi), ctx)


@attribute_value.register
def _(attr: MpUnreachAttr, ctx: Negotiated) -> tuple[str, str]:
    count = _count(len(attr.withdrawn), "prefix", "prefixes")
    text = f"{family_name(attr.afi, attr.safi)}, {count} withdrawn"
    return text, _negotiation_note((attr.afi, attr.safi), ctx)


@attribute_value.register
def _(attr: UndecodedMpAttr, ctx: Negotiated) -> tuple[str, str]:
    return (
        f"{family_name(attr.afi, attr.safi)}: {attr.value[3:].hex() or '(empty)'}",
        "not negotiated / not decoded here: a valid attribute of a family this decoder does "
        "not read; its routes are ignored and the session is kept (RFC 4760 7)",
    )


@attribute_value.register
def _(attr: UnknownAttr, ctx: Negotiated) -> tuple[str, str]:
    passed = (
        "kept and passed on with the Partial bit set"
        if attr.wire_flags() & AttrFlag.TRANSITIVE
        else "ignored and not passed on (optional non-transitive)"
    )
    return attr.value.hex() or "(empty)", f"unknown optional attribute: {passed}"


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def prefixes_node(
    title: str, nlri: tuple[Nlri, ...], addpath: bool, negotiated: bool, rfc: str
) -> Node:
    """A list of prefixes, saying whether path identifiers were expected and why."""
    if addpath:
        label = f"{title} (add-path: path ids present, negotiated in OPEN)"
        rfc = "RFC 7911 3"
    elif negotiated:
        label = f"{title} (no path ids: add-path not negotiated for this family)"
    else:
        label = f"{title} (no path ids assumed: OPENs not seen)"
    node = Node(f"{label}, {_count(len(nlri), 'prefix', 'prefixes')}", rfc=rfc)
    for entry in nlri:
        node.add(str(entry.prefix), f"path-id {entry.path_id}" if entry.path_id is not None else "")
    return node


def attr_label(attr_type: int, flags: int) -> str:
    info = ATTRIBUTES.get(attr_type)
    name = info.name if info else "unknown attribute"
    words = " ".join(w for w in flag_words(flags) if w != "complete")
    return f"{name} ({attr_type}) flags 0x{flags:02x} {words}"


def attribute_node(attr: PathAttribute, raw: RawAttribute | None, item: Decoded) -> Node:
    """One attribute: type, flags as sent, value, meaning, RFC; MP attributes list prefixes."""
    ctx = item.context.negotiated
    flags = raw.flags if raw is not None else attr.wire_flags()
    info = ATTRIBUTES.get(attr.type_code)
    value, extra = attribute_value(attr, ctx)
    meaning = info.text if info else "not known to this decoder"
    if extra:
        meaning += f"; {extra}"
    node = Node(attr_label(attr.type_code, flags), value, meaning, info.rfc if info else "")
    if isinstance(attr, ExtendedCommunitiesAttr):
        node.children.extend(ext_community_node(c) for c in attr.communities)
    elif isinstance(attr, AsPathAttr):
        node.children.extend(as_path_nodes(attr, item))
    fam = None
    if isinstance(attr, MpReachAttr):
        fam = (attr.afi, attr.safi)
        node.children.append(
            prefixes_node(
                "NLRI", attr.nlri, fam in ctx.addpath_receive, item.context.from_opens, "RFC 4760 3"
            )
        )
    elif isinstance(attr, MpUnreachAttr):
        fam = (attr.afi, attr.safi)
        if attr.withdrawn:
            node.children.append(
                prefixes_node(
                    "withdrawn",
                    attr.withdrawn,
                    fam in ctx.addpath_receive,
                    item.context.from_opens,
                    "RFC 4760 4",
                )
            )
    return node


def context_node(item: Decoded) -> Node:
    ctx = item.context
    if ctx.from_opens:
        return Node(
            "read with",
            describe_context(ctx.negotiated),
            "the receiver's context, negotiated in the OPENs of this stream",
            "RFC 5492",
        )
    missing = ", ".join(ctx.missing) or "this stream"
    return Node(
        "read with",
        f"default context: {describe_context(ctx.negotiated)}",
        f"the OPEN exchange was not seen (no OPEN from {missing}): the AS_PATH width "
        "and the presence of path ids are assumptions, not negotiated facts",
        "RFC 6793 4, RFC 7911 4",
    )


def explain_update(message: Update, item: Decoded) -> list[Node]:
    """Withdrawn routes, attributes (as sent), NLRI, End-of-RIB and RFC 7606 outcomes."""
    ctx = item.context.negotiated
    data = item.data
    nodes = [context_node(item)]
    if item.hint:
        nodes.append(Node("hint", item.hint, "a guess: the OPEN exchange was not seen"))
    ipv4_addpath = IPV4_UNICAST in ctx.addpath_receive
    wlen = int.from_bytes(data[19:21], "big")
    nodes.append(
        Node(
            "withdrawn routes length",
            str(wlen),
            "octets of IPv4 prefixes withdrawn",
            "RFC 4271 4.3",
        )
    )
    if message.withdrawn:
        nodes.append(
            prefixes_node(
                "withdrawn routes",
                message.withdrawn,
                ipv4_addpath,
                item.context.from_opens,
                "RFC 4271 4.3",
            )
        )
    alen = int.from_bytes(data[21 + wlen : 23 + wlen], "big")
    nodes.append(
        Node(
            "total path attribute length",
            str(alen),
            "octets of path attributes",
            "RFC 4271 4.3",
        )
    )
    raws = raw_attributes(data)
    if raws or message.attributes:
        attrs = Node(
            f"path attributes ({len(raws)})",
            meaning="shared by every prefix announced in this UPDATE",
            rfc="RFC 4271 4.3",
        )
        unused = list(message.attributes)
        for raw in raws:
            match = next((a for a in unused if a.type_code == raw.type_code), None)
            if match is not None:
                unused.remove(match)
                attrs.children.append(attribute_node(match, raw, item))
            else:
                attrs.add(
                    attr_label(raw.type_code, raw.flags),
                    raw.value.hex() or "(empty)",
                    "NOT USED: discarded or malformed, see the RFC 7606 outcome below",
                    "RFC 7606",
                )
        attrs.children.extend(attribute_node(a, None, item) for a in unused)
        merged = merged_path_node(message)
        if merged is not None:
            attrs.children.append(merged)
        nodes.append(attrs)
    if message.nlri:
        nodes.append(
            prefixes_node(
                "NLRI", message.nlri, ipv4_addpath, item.context.from_opens, "RFC 4271 4.3"
            )
        )
    eor = message.end_of_rib()
    if eor is not None:
        nodes.append(Node(END_OF_RIB.name, family_name(*eor), END_OF_RIB.text, END_OF_RIB.rfc))
    elif not message.withdrawn and not message.nlri and not message.families():
        nodes.append(Node("note", "announces and withdraws nothing"))
    if message.errors:
        outcome = Node(
            "RFC 7606 outcome",
            "TREAT-AS-WITHDRAW" if message.treat_as_withdraw else "attribute(s) discarded",
            "the UPDATE is malformed but the session survives",
            "RFC 7606 2",
        )
        for error in message.errors:
            child = Node("error", error.reason)
            child.children.extend(error_nodes(error)[1:])
            outcome.children.append(child)
        nodes.append(outcome)
    return nodes


# ------------------------------------------------------------------------------ others


def explain_notification(message: Notification) -> list[Node]:
    """Code, subcode and data, with the RFC 9003 shutdown communication."""
    return notification_nodes(message.code, message.subcode, message.data)


def explain_route_refresh(message: RouteRefresh) -> list[Node]:
    """Family and RFC 7313 subtype."""
    info = ROUTE_REFRESH_SUBTYPES.get(int(message.subtype))
    return [
        Node(
            "AFI / SAFI",
            f"{family_name(message.afi, message.safi)} ({int(message.afi)}/{int(message.safi)})",
            "the address family to refresh",
            "RFC 2918 3",
        ),
        Node(
            "subtype",
            f"{int(message.subtype)} {info.name if info else '(unknown)'}",
            info.text if info else "unknown subtype: the receiver ignores the message",
            info.rfc if info else "RFC 7313 5",
        ),
    ]


def explain_keepalive(item: Decoded) -> list[Node]:
    """A KEEPALIVE has no fields; the first one after the OPENs matters."""
    if not item.first_keepalive:
        return []
    return [
        Node(
            "accepts the OPEN",
            f"first KEEPALIVE from {item.source} since its OPEN",
            f"{item.source} accepted {item.destination}'s OPEN; the session is Established "
            "once both sides have sent this",
            "RFC 4271 8.2.2",
        )
    ]
