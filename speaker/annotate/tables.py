"""What every code point means, in words a student can follow, with the RFC section.

Tables are dicts keyed by the codec's enums (``speaker.wire.enums``), never if-chains, so a new
code point is one new row.  Subcode tables are nested under their error code because the
subcode enums are ``IntEnum`` s: ``HeaderSubcode(1) == OpenSubcode(1)``, so they cannot share
one dict.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from types import MappingProxyType
from typing import Final

from speaker.wire.capabilities import AddPathMode, GracefulRestartFlags
from speaker.wire.enums import (
    Afi,
    AsPathSegmentType,
    AttrFlag,
    AttrType,
    BgpRole,
    CapabilityCode,
    CeaseSubcode,
    ErrorCode,
    FsmSubcode,
    HeaderSubcode,
    HoldTimerSubcode,
    MessageType,
    OpenSubcode,
    OptParamType,
    Origin,
    RouteRefreshSubcode,
    RouteRefreshSubtype,
    Safi,
    UpdateSubcode,
)
from speaker.wire.errors import ErrorAction
from speaker.wire.extcommunities import ExtCommunityType, ExtSubtype


@dataclass(frozen=True, slots=True)
class Meaning:
    """A code point's name, what it means, and where the RFCs define it."""

    name: str
    text: str
    rfc: str = ""


MESSAGE_TYPES: Final[Mapping[int, Meaning]] = MappingProxyType(
    {
        MessageType.OPEN: Meaning(
            "OPEN",
            "first message of a session: version, AS, hold time, BGP identifier and the "
            "capabilities the sender offers",
            "RFC 4271 4.2",
        ),
        MessageType.UPDATE: Meaning(
            "UPDATE",
            "announces routes that share one set of path attributes and/or withdraws routes",
            "RFC 4271 4.3",
        ),
        MessageType.NOTIFICATION: Meaning(
            "NOTIFICATION",
            "reports an error or a shutdown; the sender closes the TCP connection right after",
            "RFC 4271 4.5",
        ),
        MessageType.KEEPALIVE: Meaning(
            "KEEPALIVE",
            "header only: restarts the receiver's hold timer; the first one after an OPEN "
            "accepts that OPEN",
            "RFC 4271 4.4",
        ),
        MessageType.ROUTE_REFRESH: Meaning(
            "ROUTE-REFRESH",
            "asks the peer to send its routes of one address family again, or (RFC 7313) "
            "marks the start and end of such a re-send",
            "RFC 2918 3",
        ),
    }
)

HEADER: Final[Mapping[str, Meaning]] = MappingProxyType(
    {
        "marker": Meaning(
            "marker", "16 octets of all ones: where a message starts", "RFC 4271 4.1"
        ),
        "length": Meaning("length", "octets in the whole message, header included", "RFC 4271 4.1"),
        "type": Meaning("type", "which message this is", "RFC 4271 4.1"),
    }
)

OPEN_FIELDS: Final[Mapping[str, Meaning]] = MappingProxyType(
    {
        "version": Meaning("version", "BGP version; 4 is the only one in use", "RFC 4271 4.2"),
        "my_as": Meaning(
            "my AS",
            "the sender's AS in 2 octets; 23456 (AS_TRANS) means 'see the 4-octet AS capability'",
            "RFC 4271 4.2, RFC 6793 4.1",
        ),
        "hold_time": Meaning(
            "hold time",
            "seconds without a message before the sender gives up on the peer; the session "
            "uses the smaller of the two OPENs' values (0 = no hold timer)",
            "RFC 4271 4.2",
        ),
        "bgp_id": Meaning(
            "BGP identifier",
            "the sender's router id, unique within the AS",
            "RFC 4271 4.2, RFC 6286",
        ),
        "opt_len": Meaning(
            "optional parameters length",
            "octets of optional parameters that follow",
            "RFC 4271 4.2",
        ),
        "extended": Meaning(
            "extended parameters",
            "the parameter list uses RFC 9072's 2-octet lengths",
            "RFC 9072",
        ),
    }
)

OPT_PARAMS: Final[Mapping[int, Meaning]] = MappingProxyType(
    {
        OptParamType.AUTHENTICATION: Meaning(
            "authentication", "deprecated authentication parameter", "RFC 5492"
        ),
        OptParamType.CAPABILITIES: Meaning(
            "capabilities",
            "the features the sender supports; a feature is used only if both sides announce it",
            "RFC 5492 4",
        ),
        OptParamType.EXTENDED_LENGTH: Meaning(
            "extended length", "marks RFC 9072's extended optional parameters", "RFC 9072"
        ),
    }
)

CAPABILITIES: Final[Mapping[int, Meaning]] = MappingProxyType(
    {
        CapabilityCode.MULTIPROTOCOL: Meaning(
            "multiprotocol extensions",
            "the sender can exchange routes of this address family",
            "RFC 4760 8",
        ),
        CapabilityCode.ROUTE_REFRESH: Meaning(
            "route refresh",
            "the sender accepts ROUTE-REFRESH: the peer may ask for its routes again "
            "without resetting the session",
            "RFC 2918 2",
        ),
        CapabilityCode.EXTENDED_NEXT_HOP: Meaning(
            "extended next hop",
            "routes of one family may carry a next hop of another (IPv4 routes via IPv6)",
            "RFC 8950",
        ),
        CapabilityCode.EXTENDED_MESSAGE: Meaning(
            "extended message",
            "the sender accepts messages up to 65535 octets instead of 4096",
            "RFC 8654",
        ),
        CapabilityCode.GRACEFUL_RESTART: Meaning(
            "graceful restart",
            "when the session drops, the peer keeps this sender's routes (marked stale) "
            "for the restart time instead of withdrawing them",
            "RFC 4724 3",
        ),
        CapabilityCode.FOUR_OCTET_AS: Meaning(
            "4-octet AS",
            "the sender reads and writes AS numbers as 4 octets; carries its real AS",
            "RFC 6793 3",
        ),
        CapabilityCode.ADD_PATH: Meaning(
            "add-path",
            "per family, whether the sender can send and/or receive several paths for one "
            "prefix, each NLRI then starting with a 4-octet path identifier",
            "RFC 7911 4",
        ),
        CapabilityCode.ENHANCED_ROUTE_REFRESH: Meaning(
            "enhanced route refresh",
            "a re-send of routes is framed by BoRR and EoRR, so the receiver can drop routes "
            "that were not re-sent",
            "RFC 7313 3.1",
        ),
        CapabilityCode.LONG_LIVED_GRACEFUL_RESTART: Meaning(
            "long-lived graceful restart",
            "stale routes may be kept much longer than the graceful restart time, as least "
            "preferred",
            "RFC 9494",
        ),
        # Code points the codec keeps as bytes (IANA "Capability Codes" registry)
        3: Meaning("outbound route filtering", "the sender accepts ORF entries", "RFC 5291"),
        7: Meaning("BGPsec", "the sender can send/receive BGPsec_PATH", "RFC 8205"),
        8: Meaning("multiple labels", "several MPLS labels per route", "RFC 8277"),
        CapabilityCode.BGP_ROLE: Meaning(
            "BGP role",
            "the sender's role on this session; the two roles must pair (provider with "
            "customer, RS with RS-client, peer with peer) and set up route leak prevention",
            "RFC 9234 4.1",
        ),
        CapabilityCode.FQDN: Meaning(
            "FQDN",
            "the sender's host and domain name, for the operator's eyes only",
            "draft-walton-bgp-hostname-capability",
        ),
        128: Meaning(
            "route refresh (pre-standard)", "Cisco's code for route refresh before RFC 2918", ""
        ),
    }
)

ADDPATH_MODES: Final[Mapping[int, str]] = MappingProxyType(
    {
        AddPathMode.RECEIVE: "can receive several paths",
        AddPathMode.SEND: "can send several paths",
        AddPathMode.BOTH: "can send and receive several paths",
    }
)

GR_FLAGS: Final[Mapping[int, tuple[str, str]]] = MappingProxyType(
    {
        GracefulRestartFlags.RESTART: (
            "R flag set (restarting: the sender has just restarted; the peer must not wait "
            "for its End-of-RIB before sending its own routes)",
            "R flag clear (not restarting)",
        ),
        GracefulRestartFlags.NOTIFICATION: (
            "N flag set (graceful restart applies after a NOTIFICATION too, RFC 8538)",
            "N flag clear",
        ),
    }
)

GR_FORWARDING: Final = (
    "F flag set (forwarding state preserved across the restart)",
    "F flag clear (forwarding state not preserved)",
)

ATTRIBUTES: Final[Mapping[int, Meaning]] = MappingProxyType(
    {
        AttrType.ORIGIN: Meaning("ORIGIN", "how the route entered BGP", "RFC 4271 5.1.1"),
        AttrType.AS_PATH: Meaning(
            "AS_PATH", "the ASes the route crossed, nearest first", "RFC 4271 5.1.2"
        ),
        AttrType.NEXT_HOP: Meaning(
            "NEXT_HOP", "the router to forward packets to for these prefixes", "RFC 4271 5.1.3"
        ),
        AttrType.MULTI_EXIT_DISC: Meaning(
            "MULTI_EXIT_DISC",
            "MED: lower is better, among routes from the same neighbouring AS",
            "RFC 4271 5.1.4",
        ),
        AttrType.LOCAL_PREF: Meaning(
            "LOCAL_PREF",
            "preference inside the AS, higher wins (sent to iBGP peers only)",
            "RFC 4271 5.1.5",
        ),
        AttrType.ATOMIC_AGGREGATE: Meaning(
            "ATOMIC_AGGREGATE",
            "a less specific route was chosen over more specific ones",
            "RFC 4271 5.1.6",
        ),
        AttrType.AGGREGATOR: Meaning(
            "AGGREGATOR", "the AS and router that formed this aggregate", "RFC 4271 5.1.7"
        ),
        AttrType.COMMUNITIES: Meaning(
            "COMMUNITIES", "32-bit tags for routing policy, written AS:value", "RFC 1997"
        ),
        AttrType.ORIGINATOR_ID: Meaning(
            "ORIGINATOR_ID",
            "router id of the route's originator inside the AS (route reflection)",
            "RFC 4456 8",
        ),
        AttrType.CLUSTER_LIST: Meaning(
            "CLUSTER_LIST", "route-reflection clusters the route crossed", "RFC 4456 8"
        ),
        AttrType.MP_REACH_NLRI: Meaning(
            "MP_REACH_NLRI",
            "announces routes of another address family, with their next hop",
            "RFC 4760 3",
        ),
        AttrType.MP_UNREACH_NLRI: Meaning(
            "MP_UNREACH_NLRI", "withdraws routes of another address family", "RFC 4760 4"
        ),
        AttrType.EXTENDED_COMMUNITIES: Meaning(
            "EXTENDED_COMMUNITIES", "8-octet typed tags (route targets...)", "RFC 4360"
        ),
        AttrType.AS4_PATH: Meaning(
            "AS4_PATH",
            "the real 4-octet AS path, beside an AS_PATH written for a 2-octet speaker",
            "RFC 6793 3",
        ),
        AttrType.AS4_AGGREGATOR: Meaning(
            "AS4_AGGREGATOR", "the real 4-octet aggregator AS", "RFC 6793 3"
        ),
        AttrType.LARGE_COMMUNITY: Meaning(
            "LARGE_COMMUNITY", "12-octet tags, written global:local1:local2", "RFC 8092"
        ),
        AttrType.OTC: Meaning(
            "OTC",
            "Only to Customer: the AS that sent the route down to a customer, peer or RS "
            "client; it must not be sent up to a provider or to another peer (a route leak)",
            "RFC 9234 5",
        ),
    }
)

BGP_ROLES: Final[Mapping[int, Meaning]] = MappingProxyType(
    {
        BgpRole.PROVIDER: Meaning(
            "Provider", "the sender sells transit to the peer", "RFC 9234 4.1"
        ),
        BgpRole.RS: Meaning("RS", "the sender is a route server of an exchange", "RFC 9234 4.1"),
        BgpRole.RS_CLIENT: Meaning(
            "RS-Client", "the sender is a client of the peer route server", "RFC 9234 4.1"
        ),
        BgpRole.CUSTOMER: Meaning(
            "Customer", "the sender buys transit from the peer", "RFC 9234 4.1"
        ),
        BgpRole.PEER: Meaning(
            "Peer", "the sender and the peer exchange their customers' routes", "RFC 9234 4.1"
        ),
    }
)
"""BGP role capability values (RFC 9234 4.1, IANA "BGP Role" registry)."""

ROLE_PAIRS: Final[Mapping[int, int]] = MappingProxyType(
    {
        BgpRole.PROVIDER: BgpRole.CUSTOMER,
        BgpRole.CUSTOMER: BgpRole.PROVIDER,
        BgpRole.RS: BgpRole.RS_CLIENT,
        BgpRole.RS_CLIENT: BgpRole.RS,
        BgpRole.PEER: BgpRole.PEER,
    }
)
"""The role the other side must announce (RFC 9234 4.2, Table 2)."""

EXT_COMMUNITY_TYPES: Final[Mapping[int, str]] = MappingProxyType(
    {
        ExtCommunityType.TWO_OCTET_AS: "RFC 4360 3.1",
        ExtCommunityType.NON_TRANSITIVE_TWO_OCTET_AS: "RFC 4360 3.1",
        ExtCommunityType.IPV4_ADDRESS: "RFC 4360 3.2",
        ExtCommunityType.NON_TRANSITIVE_IPV4_ADDRESS: "RFC 4360 3.2",
        ExtCommunityType.FOUR_OCTET_AS: "RFC 5668 2",
        ExtCommunityType.NON_TRANSITIVE_FOUR_OCTET_AS: "RFC 5668 2",
        ExtCommunityType.OPAQUE: "RFC 4360 3.3",
        ExtCommunityType.NON_TRANSITIVE_OPAQUE: "RFC 4360 3.3",
        ExtCommunityType.EVPN: "RFC 7153",
        ExtCommunityType.EXPERIMENTAL: "RFC 7153",
        ExtCommunityType.EXPERIMENTAL_2: "RFC 7153",
        ExtCommunityType.EXPERIMENTAL_3: "RFC 7153",
    }
)
"""Where each extended community type's layout is defined."""

EXT_COMMUNITIES: Final[Mapping[int, Meaning]] = MappingProxyType(
    {
        ExtSubtype.ROUTE_TARGET: Meaning(
            "route target",
            "which VRFs import the route: the VPN (or EVPN instance) it belongs to",
            "RFC 4360 4",
        ),
        ExtSubtype.ROUTE_ORIGIN: Meaning(
            "route origin",
            "the site the route came from (avoids loops between sites)",
            "RFC 4360 5",
        ),
    }
)
"""Meanings of the subtypes shared by the AS- and address-specific types."""

EXT_COMMUNITY_SPECIFIC: Final[Mapping[tuple[int, int], Meaning]] = MappingProxyType(
    {
        (ExtCommunityType.OPAQUE, 0x0B): Meaning(
            "color", "steers the route onto an SR policy of that color", "RFC 9012 4.3"
        ),
        (ExtCommunityType.OPAQUE, 0x0C): Meaning(
            "encapsulation", "the tunnel type to reach the next hop", "RFC 9012 4.1"
        ),
        (ExtCommunityType.NON_TRANSITIVE_OPAQUE, 0x00): Meaning(
            "origin validation state", "the RPKI validation result inside the AS", "RFC 8097 2"
        ),
        (ExtCommunityType.NON_TRANSITIVE_TWO_OCTET_AS, 0x04): Meaning(
            "link bandwidth",
            "bandwidth of the exit link, for unequal-cost multipath",
            "draft-ietf-idr-link-bandwidth",
        ),
        (ExtCommunityType.EXPERIMENTAL, 0x06): Meaning(
            "flow spec traffic-rate", "rate-limit the matching traffic (0: drop)", "RFC 8955 7.3"
        ),
        (ExtCommunityType.EXPERIMENTAL, 0x08): Meaning(
            "flow spec redirect", "redirect the matching traffic to this VRF", "RFC 8955 7.4"
        ),
    }
)
"""Meanings of other (type, subtype) pairs; the rest are named by the codec only."""

ATTR_FLAGS: Final[Mapping[int, tuple[str, str]]] = MappingProxyType(
    {
        AttrFlag.OPTIONAL: ("optional", "well-known"),
        AttrFlag.TRANSITIVE: ("transitive", "non-transitive"),
        AttrFlag.PARTIAL: ("partial", "complete"),
        AttrFlag.EXTENDED_LENGTH: ("extended length", ""),
    }
)
"""Flag bit -> (word when set, word when clear) (RFC 4271 4.3)."""

ORIGINS: Final[Mapping[int, Meaning]] = MappingProxyType(
    {
        Origin.IGP: Meaning("IGP", "originated inside the AS (e.g. a static or network route)"),
        Origin.EGP: Meaning("EGP", "learned through the historic EGP protocol"),
        Origin.INCOMPLETE: Meaning("INCOMPLETE", "learned some other way, e.g. redistributed"),
    }
)

SEGMENT_TYPES: Final[Mapping[int, Meaning]] = MappingProxyType(
    {
        AsPathSegmentType.AS_SET: Meaning(
            "AS_SET", "unordered ASes of an aggregate", "RFC 4271 4.3"
        ),
        AsPathSegmentType.AS_SEQUENCE: Meaning(
            "AS_SEQUENCE", "ASes in the order the route crossed them", "RFC 4271 4.3"
        ),
        AsPathSegmentType.AS_CONFED_SEQUENCE: Meaning(
            "AS_CONFED_SEQUENCE", "member ASes of a confederation, in order", "RFC 5065"
        ),
        AsPathSegmentType.AS_CONFED_SET: Meaning(
            "AS_CONFED_SET", "unordered member ASes of a confederation", "RFC 5065"
        ),
    }
)

WELL_KNOWN_COMMUNITIES: Final[Mapping[int, Meaning]] = MappingProxyType(
    {
        0xFFFF0000: Meaning("GRACEFUL_SHUTDOWN", "the path is about to go away", "RFC 8326"),
        0xFFFF0006: Meaning("LLGR_STALE", "a long-lived stale route", "RFC 9494"),
        0xFFFF0007: Meaning("NO_LLGR", "do not keep as long-lived stale", "RFC 9494"),
        0xFFFF029A: Meaning("BLACKHOLE", "drop traffic to this prefix", "RFC 7999"),
        0xFFFFFF01: Meaning("NO_EXPORT", "do not send outside the AS", "RFC 1997"),
        0xFFFFFF02: Meaning("NO_ADVERTISE", "do not send to any peer", "RFC 1997"),
        0xFFFFFF03: Meaning("NO_EXPORT_SUBCONFED", "do not send outside the member AS", "RFC 1997"),
        0xFFFFFF04: Meaning("NOPEER", "do not send to bilateral peers", "RFC 3765"),
    }
)

AFI_NAMES: Final[Mapping[int, str]] = MappingProxyType({Afi.IPV4: "IPv4", Afi.IPV6: "IPv6"})
SAFI_NAMES: Final[Mapping[int, str]] = MappingProxyType(
    {Safi.UNICAST: "unicast", Safi.MULTICAST: "multicast"}
)

ROUTE_REFRESH_SUBTYPES: Final[Mapping[int, Meaning]] = MappingProxyType(
    {
        RouteRefreshSubtype.NORMAL: Meaning(
            "normal route refresh",
            "a request: please send all your routes of this family again",
            "RFC 2918 3, RFC 7313 3.2",
        ),
        RouteRefreshSubtype.BORR: Meaning(
            "BoRR (Beginning of Route Refresh)",
            "the sender starts re-sending this family; the receiver marks its current "
            "routes from the sender as stale",
            "RFC 7313 4",
        ),
        RouteRefreshSubtype.EORR: Meaning(
            "EoRR (End of Route Refresh)",
            "the re-send is complete; routes still stale since BoRR are removed",
            "RFC 7313 4",
        ),
    }
)

ERROR_CODES: Final[Mapping[int, Meaning]] = MappingProxyType(
    {
        ErrorCode.MESSAGE_HEADER: Meaning(
            "Message Header Error", "the 19-octet header is wrong", "RFC 4271 6.1"
        ),
        ErrorCode.OPEN_MESSAGE: Meaning(
            "OPEN Message Error", "the OPEN was refused", "RFC 4271 6.2"
        ),
        ErrorCode.UPDATE_MESSAGE: Meaning(
            "UPDATE Message Error", "an UPDATE could not be accepted", "RFC 4271 6.3"
        ),
        ErrorCode.HOLD_TIMER_EXPIRED: Meaning(
            "Hold Timer Expired",
            "nothing arrived from the peer within the hold time",
            "RFC 4271 6.5",
        ),
        ErrorCode.FSM: Meaning(
            "Finite State Machine Error",
            "a message arrived that the session state does not allow",
            "RFC 4271 6.6",
        ),
        ErrorCode.CEASE: Meaning(
            "Cease",
            "the sender closes the session on purpose (not a protocol error)",
            "RFC 4271 6.7",
        ),
        ErrorCode.ROUTE_REFRESH_MESSAGE: Meaning(
            "ROUTE-REFRESH Message Error", "a ROUTE-REFRESH was malformed", "RFC 7313 5"
        ),
        ErrorCode.SEND_HOLD_TIMER_EXPIRED: Meaning(
            "Send Hold Timer Expired",
            "the sender could send nothing to the peer for its send hold time",
            "RFC 9687 3",
        ),
    }
)


def _m(enum: IntEnum, name: str, text: str, rfc: str) -> tuple[int, Meaning]:
    return int(enum), Meaning(name, text, rfc)


SUBCODES: Final[Mapping[int, dict[int, Meaning]]] = MappingProxyType(
    {
        ErrorCode.MESSAGE_HEADER: dict(
            [
                _m(
                    HeaderSubcode.UNSPECIFIC,
                    "Unspecific",
                    "no more specific subcode applies",
                    "RFC 4271 4.5",
                ),
                _m(
                    HeaderSubcode.CONNECTION_NOT_SYNCHRONIZED,
                    "Connection Not Synchronized",
                    "the marker is not all ones: the stream lost message framing",
                    "RFC 4271 6.1",
                ),
                _m(
                    HeaderSubcode.BAD_MESSAGE_LENGTH,
                    "Bad Message Length",
                    "the length field is impossible for this message type",
                    "RFC 4271 6.1",
                ),
                _m(
                    HeaderSubcode.BAD_MESSAGE_TYPE,
                    "Bad Message Type",
                    "the type code is not a known message",
                    "RFC 4271 6.1",
                ),
            ]
        ),
        ErrorCode.OPEN_MESSAGE: dict(
            [
                _m(
                    OpenSubcode.UNSPECIFIC,
                    "Unspecific",
                    "no more specific subcode applies (BIRD sends it for a malformed capability)",
                    "RFC 4271 4.5",
                ),
                _m(
                    OpenSubcode.UNSUPPORTED_VERSION_NUMBER,
                    "Unsupported Version Number",
                    "the peer does not speak this BGP version",
                    "RFC 4271 6.2",
                ),
                _m(
                    OpenSubcode.BAD_PEER_AS,
                    "Bad Peer AS",
                    "the AS in the OPEN is not the one configured for this peer",
                    "RFC 4271 6.2",
                ),
                _m(
                    OpenSubcode.BAD_BGP_IDENTIFIER,
                    "Bad BGP Identifier",
                    "the BGP identifier is invalid or equals the receiver's",
                    "RFC 4271 6.2, RFC 6286",
                ),
                _m(
                    OpenSubcode.UNSUPPORTED_OPTIONAL_PARAMETER,
                    "Unsupported Optional Parameter",
                    "an optional parameter type is not understood",
                    "RFC 4271 6.2",
                ),
                _m(
                    OpenSubcode.UNACCEPTABLE_HOLD_TIME,
                    "Unacceptable Hold Time",
                    "hold time 1 or 2 seconds (must be 0 or at least 3), or refused by policy",
                    "RFC 4271 6.2",
                ),
                _m(
                    OpenSubcode.UNSUPPORTED_CAPABILITY,
                    "Unsupported Capability",
                    "the receiver requires a capability the sender lacks",
                    "RFC 5492 3",
                ),
                _m(
                    OpenSubcode.ROLE_MISMATCH,
                    "Role Mismatch",
                    "the two BGP roles do not pair (provider with customer, RS with RS-client, "
                    "peer with peer), or a strict role was missing",
                    "RFC 9234 4.2",
                ),
            ]
        ),
        ErrorCode.UPDATE_MESSAGE: dict(
            [
                _m(
                    UpdateSubcode.UNSPECIFIC,
                    "Unspecific",
                    "no more specific subcode applies",
                    "RFC 4271 4.5",
                ),
                _m(
                    UpdateSubcode.MALFORMED_ATTRIBUTE_LIST,
                    "Malformed Attribute List",
                    "the attribute list cannot be parsed, or an attribute repeats",
                    "RFC 4271 6.3",
                ),
                _m(
                    UpdateSubcode.UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE,
                    "Unrecognized Well-known Attribute",
                    "a well-known attribute the receiver does not know",
                    "RFC 4271 6.3",
                ),
                _m(
                    UpdateSubcode.MISSING_WELL_KNOWN_ATTRIBUTE,
                    "Missing Well-known Attribute",
                    "ORIGIN, AS_PATH or NEXT_HOP is missing from an UPDATE announcing routes",
                    "RFC 4271 6.3",
                ),
                _m(
                    UpdateSubcode.ATTRIBUTE_FLAGS_ERROR,
                    "Attribute Flags Error",
                    "an attribute's optional/transitive flags contradict its type",
                    "RFC 4271 6.3",
                ),
                _m(
                    UpdateSubcode.ATTRIBUTE_LENGTH_ERROR,
                    "Attribute Length Error",
                    "an attribute's length is wrong for its type",
                    "RFC 4271 6.3",
                ),
                _m(
                    UpdateSubcode.INVALID_ORIGIN_ATTRIBUTE,
                    "Invalid ORIGIN Attribute",
                    "ORIGIN is not 0, 1 or 2",
                    "RFC 4271 6.3",
                ),
                _m(
                    UpdateSubcode.INVALID_NEXT_HOP_ATTRIBUTE,
                    "Invalid NEXT_HOP Attribute",
                    "the next hop is not a usable host address",
                    "RFC 4271 6.3",
                ),
                _m(
                    UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR,
                    "Optional Attribute Error",
                    "a recognised optional attribute has a bad value",
                    "RFC 4271 6.3",
                ),
                _m(
                    UpdateSubcode.INVALID_NETWORK_FIELD,
                    "Invalid Network Field",
                    "the NLRI or withdrawn routes field cannot be parsed",
                    "RFC 4271 6.3",
                ),
                _m(
                    UpdateSubcode.MALFORMED_AS_PATH,
                    "Malformed AS_PATH",
                    "the AS_PATH segments cannot be parsed",
                    "RFC 4271 6.3",
                ),
            ]
        ),
        ErrorCode.HOLD_TIMER_EXPIRED: dict(
            [
                _m(
                    HoldTimerSubcode.UNSPECIFIC,
                    "Unspecific",
                    "the normal value: Hold Timer Expired defines no subcodes",
                    "RFC 4271 4.5, 6.5",
                ),
            ]
        ),
        ErrorCode.FSM: dict(
            [
                _m(
                    FsmSubcode.UNSPECIFIED,
                    "Unspecified Error",
                    "no more specific subcode applies (what a pre-RFC 6608 speaker sends)",
                    "RFC 6608 4",
                ),
                _m(
                    FsmSubcode.UNEXPECTED_IN_OPENSENT,
                    "Receive Unexpected Message in OpenSent State",
                    "something other than an OPEN arrived after we sent our OPEN",
                    "RFC 6608",
                ),
                _m(
                    FsmSubcode.UNEXPECTED_IN_OPENCONFIRM,
                    "Receive Unexpected Message in OpenConfirm State",
                    "something other than a KEEPALIVE arrived while waiting for one",
                    "RFC 6608",
                ),
                _m(
                    FsmSubcode.UNEXPECTED_IN_ESTABLISHED,
                    "Receive Unexpected Message in Established State",
                    "an OPEN arrived on an established session",
                    "RFC 6608",
                ),
            ]
        ),
        ErrorCode.CEASE: dict(
            [
                _m(
                    CeaseSubcode.UNSPECIFIC,
                    "Unspecific",
                    "no reason given (RFC 4486 lists the reasons; 0 is none of them)",
                    "RFC 4271 4.5, 6.7",
                ),
                _m(
                    CeaseSubcode.MAXIMUM_PREFIXES_REACHED,
                    "Maximum Number of Prefixes Reached",
                    "the peer sent more routes than the configured limit",
                    "RFC 4486",
                ),
                _m(
                    CeaseSubcode.ADMINISTRATIVE_SHUTDOWN,
                    "Administrative Shutdown",
                    "an operator disabled the session",
                    "RFC 4486, RFC 9003",
                ),
                _m(
                    CeaseSubcode.PEER_DECONFIGURED,
                    "Peer De-configured",
                    "the peer was removed from the configuration",
                    "RFC 4486",
                ),
                _m(
                    CeaseSubcode.ADMINISTRATIVE_RESET,
                    "Administrative Reset",
                    "an operator restarted the session",
                    "RFC 4486, RFC 9003",
                ),
                _m(
                    CeaseSubcode.CONNECTION_REJECTED,
                    "Connection Rejected",
                    "the connection was refused (e.g. not configured, or passive)",
                    "RFC 4486",
                ),
                _m(
                    CeaseSubcode.OTHER_CONFIGURATION_CHANGE,
                    "Other Configuration Change",
                    "a configuration change requires a new session",
                    "RFC 4486",
                ),
                _m(
                    CeaseSubcode.CONNECTION_COLLISION_RESOLUTION,
                    "Connection Collision Resolution",
                    "both sides connected at once; this connection loses (higher BGP "
                    "identifier keeps the one it opened)",
                    "RFC 4486, RFC 4271 6.8",
                ),
                _m(
                    CeaseSubcode.OUT_OF_RESOURCES,
                    "Out of Resources",
                    "the sender ran out of memory or similar",
                    "RFC 4486",
                ),
                _m(
                    CeaseSubcode.HARD_RESET,
                    "Hard Reset",
                    "end the session without graceful restart, even if N was negotiated",
                    "RFC 8538 3",
                ),
                _m(
                    CeaseSubcode.BFD_DOWN,
                    "BFD Down",
                    "BFD saw the forwarding path fail",
                    "RFC 9384",
                ),
            ]
        ),
        ErrorCode.ROUTE_REFRESH_MESSAGE: dict(
            [
                _m(
                    RouteRefreshSubcode.RESERVED,
                    "Reserved",
                    "reserved in the ROUTE-REFRESH Message Error subcode registry: a sender "
                    "should use 1",
                    "RFC 7313 5",
                ),
                _m(
                    RouteRefreshSubcode.INVALID_MESSAGE_LENGTH,
                    "Invalid Message Length",
                    "a ROUTE-REFRESH must be exactly 23 octets",
                    "RFC 7313 5",
                ),
            ]
        ),
    }
)

ERROR_DATA: Final[Mapping[tuple[int, int], str]] = MappingProxyType(
    {
        (ErrorCode.MESSAGE_HEADER, int(HeaderSubcode.BAD_MESSAGE_LENGTH)): (
            "the erroneous length field"
        ),
        (ErrorCode.MESSAGE_HEADER, int(HeaderSubcode.BAD_MESSAGE_TYPE)): "the erroneous type",
        (ErrorCode.OPEN_MESSAGE, int(OpenSubcode.UNSUPPORTED_VERSION_NUMBER)): (
            "the largest version the sender supports"
        ),
        (ErrorCode.OPEN_MESSAGE, int(OpenSubcode.UNSUPPORTED_CAPABILITY)): (
            "the capabilities the sender requires"
        ),
        (ErrorCode.UPDATE_MESSAGE, int(UpdateSubcode.UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE)): (
            "the unrecognised attribute (flags, type, length, value)"
        ),
        (ErrorCode.UPDATE_MESSAGE, int(UpdateSubcode.MISSING_WELL_KNOWN_ATTRIBUTE)): (
            "the type code of the missing attribute"
        ),
        (ErrorCode.UPDATE_MESSAGE, int(UpdateSubcode.ATTRIBUTE_FLAGS_ERROR)): (
            "the erroneous attribute (flags, type, length, value)"
        ),
        (ErrorCode.UPDATE_MESSAGE, int(UpdateSubcode.ATTRIBUTE_LENGTH_ERROR)): (
            "the erroneous attribute (flags, type, length, value)"
        ),
        (ErrorCode.UPDATE_MESSAGE, int(UpdateSubcode.INVALID_ORIGIN_ATTRIBUTE)): (
            "the erroneous attribute (flags, type, length, value)"
        ),
        (ErrorCode.UPDATE_MESSAGE, int(UpdateSubcode.INVALID_NEXT_HOP_ATTRIBUTE)): (
            "the erroneous attribute (flags, type, length, value)"
        ),
        (ErrorCode.UPDATE_MESSAGE, int(UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR)): (
            "the erroneous attribute (flags, type, length, value)"
        ),
        (ErrorCode.CEASE, int(CeaseSubcode.MAXIMUM_PREFIXES_REACHED)): (
            "AFI (2 octets), SAFI (1 octet) and the prefix limit (4 octets)"
        ),
        (ErrorCode.CEASE, int(CeaseSubcode.HARD_RESET)): (
            "the code and subcode of the NOTIFICATION that caused the hard reset"
        ),
        (ErrorCode.ROUTE_REFRESH_MESSAGE, int(RouteRefreshSubcode.INVALID_MESSAGE_LENGTH)): (
            "the whole malformed ROUTE-REFRESH message"
        ),
    }
)
"""(error code, subcode) -> what the NOTIFICATION's data field holds (RFC 4271 6)."""

SHUTDOWN_COMMUNICATION: Final = Meaning(
    "shutdown communication",
    "a UTF-8 note from the operator, length-prefixed, at most 255 octets",
    "RFC 9003 2",
)

ERROR_ACTIONS: Final[Mapping[int, Meaning]] = MappingProxyType(
    {
        ErrorAction.ATTRIBUTE_DISCARD: Meaning(
            "attribute-discard",
            "the bad attribute is ignored, the routes are kept",
            "RFC 7606 2",
        ),
        ErrorAction.TREAT_AS_WITHDRAW: Meaning(
            "treat-as-withdraw",
            "the session stays up but every prefix of this UPDATE is withdrawn",
            "RFC 7606 2",
        ),
        ErrorAction.AFISAFI_DISABLE: Meaning(
            "AFI/SAFI disable",
            "the address family is switched off for this session",
            "RFC 4760 7",
        ),
        ErrorAction.SESSION_RESET: Meaning(
            "session reset",
            "the receiver sends this NOTIFICATION and closes the session",
            "RFC 4271 6",
        ),
    }
)

END_OF_RIB: Final = Meaning(
    "End-of-RIB",
    "the sender has sent its whole initial table for this family: an UPDATE with nothing "
    "in it (IPv4 unicast) or with only an empty MP_UNREACH_NLRI (other families); a "
    "restarted peer waits for it before removing stale routes",
    "RFC 4724 2",
)


def family_name(afi: int, safi: int) -> str:
    """``IPv4/unicast`` for known families, ``AFI 25/SAFI 70`` otherwise."""
    afi_text = AFI_NAMES.get(afi)
    safi_text = SAFI_NAMES.get(safi)
    return f"{afi_text or f'AFI {afi}'}/{safi_text or f'SAFI {safi}'}"


def flag_words(flags: int) -> list[str]:
    """Attribute flags as words: ``well-known, transitive, complete``."""
    words = []
    for bit, (on, off) in ATTR_FLAGS.items():
        word = on if flags & bit else off
        if word:
            words.append(word)
    return words


def subcode_meaning(code: int, subcode: int) -> Meaning | None:
    """The meaning of a NOTIFICATION subcode, if the code and subcode are known."""
    table = SUBCODES.get(code)
    if table is None:
        return None
    return table.get(subcode)
