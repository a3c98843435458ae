"""Protocol code points as enums: every number on the wire has a name here.

Sources: RFC 4271 (messages, attributes, errors), RFC 4760 (AFI/SAFI), RFC 2918/7313
(route refresh), RFC 5492 and the IANA capability registry, RFC 4486/9003 (Cease subcodes),
RFC 6608 (FSM error subcodes), RFC 9687 (send hold timer), RFC 7606 (error handling outcomes).
"""

from __future__ import annotations

from enum import IntEnum, IntFlag


class MessageType(IntEnum):
    """BGP message types (RFC 4271 section 4.1, RFC 2918)."""

    OPEN = 1
    UPDATE = 2
    NOTIFICATION = 3
    KEEPALIVE = 4
    ROUTE_REFRESH = 5


class Afi(IntEnum):
    """Address Family Identifier (RFC 4760, IANA)."""

    IPV4 = 1
    IPV6 = 2


class Safi(IntEnum):
    """Subsequent Address Family Identifier (RFC 4760, IANA)."""

    UNICAST = 1
    MULTICAST = 2


class OptParamType(IntEnum):
    """OPEN optional parameter types (RFC 4271 4.2, RFC 5492; 255 is RFC 9072's marker)."""

    AUTHENTICATION = 1  # deprecated (RFC 5492)
    CAPABILITIES = 2
    EXTENDED_LENGTH = 255


class CapabilityCode(IntEnum):
    """Capability codes (IANA registry)."""

    MULTIPROTOCOL = 1  # RFC 4760
    ROUTE_REFRESH = 2  # RFC 2918
    EXTENDED_NEXT_HOP = 5  # RFC 8950
    EXTENDED_MESSAGE = 6  # RFC 8654
    BGP_ROLE = 9  # RFC 9234
    GRACEFUL_RESTART = 64  # RFC 4724
    FOUR_OCTET_AS = 65  # RFC 6793
    ADD_PATH = 69  # RFC 7911
    ENHANCED_ROUTE_REFRESH = 70  # RFC 7313
    LONG_LIVED_GRACEFUL_RESTART = 71  # RFC 9494
    FQDN = 73  # draft-walton-bgp-hostname-capability


class BgpRole(IntEnum):
    """The BGP role capability's value: the sender's role on this session (RFC 9234 4.1)."""

    PROVIDER = 0
    RS = 1  # route server
    RS_CLIENT = 2
    CUSTOMER = 3
    PEER = 4  # lateral peer


class AttrFlag(IntFlag):
    """Path attribute flag bits (RFC 4271 section 4.3)."""

    OPTIONAL = 0x80
    TRANSITIVE = 0x40
    PARTIAL = 0x20
    EXTENDED_LENGTH = 0x10


class AttrType(IntEnum):
    """Path attribute type codes (IANA registry)."""

    ORIGIN = 1
    AS_PATH = 2
    NEXT_HOP = 3
    MULTI_EXIT_DISC = 4
    LOCAL_PREF = 5
    ATOMIC_AGGREGATE = 6
    AGGREGATOR = 7
    COMMUNITIES = 8  # RFC 1997
    ORIGINATOR_ID = 9  # RFC 4456
    CLUSTER_LIST = 10  # RFC 4456
    MP_REACH_NLRI = 14  # RFC 4760
    MP_UNREACH_NLRI = 15  # RFC 4760
    EXTENDED_COMMUNITIES = 16  # RFC 4360
    AS4_PATH = 17  # RFC 6793
    AS4_AGGREGATOR = 18  # RFC 6793
    LARGE_COMMUNITY = 32  # RFC 8092
    OTC = 35  # Only to Customer, RFC 9234


class Origin(IntEnum):
    """ORIGIN values (RFC 4271 5.1.1)."""

    IGP = 0
    EGP = 1
    INCOMPLETE = 2


class AsPathSegmentType(IntEnum):
    """AS_PATH segment types (RFC 4271 4.3, RFC 5065 for confederations)."""

    AS_SET = 1
    AS_SEQUENCE = 2
    AS_CONFED_SEQUENCE = 3
    AS_CONFED_SET = 4


class RouteRefreshSubtype(IntEnum):
    """ROUTE-REFRESH message subtype, the 'Reserved' octet of RFC 2918 (RFC 7313)."""

    NORMAL = 0
    BORR = 1  # Beginning of Route Refresh
    EORR = 2  # End of Route Refresh


class ErrorCode(IntEnum):
    """NOTIFICATION error codes (RFC 4271 4.5, RFC 7313)."""

    MESSAGE_HEADER = 1
    OPEN_MESSAGE = 2
    UPDATE_MESSAGE = 3
    HOLD_TIMER_EXPIRED = 4
    FSM = 5
    CEASE = 6
    ROUTE_REFRESH_MESSAGE = 7
    SEND_HOLD_TIMER_EXPIRED = 8  # RFC 9687


class HeaderSubcode(IntEnum):
    """Message Header Error subcodes (RFC 4271 6.1)."""

    UNSPECIFIC = 0
    CONNECTION_NOT_SYNCHRONIZED = 1
    BAD_MESSAGE_LENGTH = 2
    BAD_MESSAGE_TYPE = 3


class OpenSubcode(IntEnum):
    """OPEN Message Error subcodes (RFC 4271 6.2, RFC 5492)."""

    UNSPECIFIC = 0
    UNSUPPORTED_VERSION_NUMBER = 1
    BAD_PEER_AS = 2
    BAD_BGP_IDENTIFIER = 3
    UNSUPPORTED_OPTIONAL_PARAMETER = 4
    UNACCEPTABLE_HOLD_TIME = 6
    UNSUPPORTED_CAPABILITY = 7
    ROLE_MISMATCH = 11  # RFC 9234 4.2


class UpdateSubcode(IntEnum):
    """UPDATE Message Error subcodes (RFC 4271 6.3)."""

    UNSPECIFIC = 0
    MALFORMED_ATTRIBUTE_LIST = 1
    UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE = 2
    MISSING_WELL_KNOWN_ATTRIBUTE = 3
    ATTRIBUTE_FLAGS_ERROR = 4
    ATTRIBUTE_LENGTH_ERROR = 5
    INVALID_ORIGIN_ATTRIBUTE = 6
    INVALID_NEXT_HOP_ATTRIBUTE = 8
    OPTIONAL_ATTRIBUTE_ERROR = 9
    INVALID_NETWORK_FIELD = 10
    MALFORMED_AS_PATH = 11


class FsmSubcode(IntEnum):
    """Finite State Machine Error subcodes (RFC 6608)."""

    UNSPECIFIED = 0
    UNEXPECTED_IN_OPENSENT = 1
    UNEXPECTED_IN_OPENCONFIRM = 2
    UNEXPECTED_IN_ESTABLISHED = 3


class CeaseSubcode(IntEnum):
    """Cease subcodes (RFC 4486, RFC 9003 for the shutdown communication)."""

    UNSPECIFIC = 0
    MAXIMUM_PREFIXES_REACHED = 1
    ADMINISTRATIVE_SHUTDOWN = 2
    PEER_DECONFIGURED = 3
    ADMINISTRATIVE_RESET = 4
    CONNECTION_REJECTED = 5
    OTHER_CONFIGURATION_CHANGE = 6
    CONNECTION_COLLISION_RESOLUTION = 7
    OUT_OF_RESOURCES = 8
    HARD_RESET = 9  # RFC 8538
    BFD_DOWN = 10  # RFC 9384


class RouteRefreshSubcode(IntEnum):
    """ROUTE-REFRESH Message Error subcodes (RFC 7313)."""

    RESERVED = 0
    INVALID_MESSAGE_LENGTH = 1


class HoldTimerSubcode(IntEnum):
    """Hold Timer Expired defines no subcodes: 0, Unspecific, is its normal value (RFC 4271 4.5)."""

    UNSPECIFIC = 0


SUBCODES: dict[int, type[IntEnum]] = {
    ErrorCode.MESSAGE_HEADER: HeaderSubcode,
    ErrorCode.OPEN_MESSAGE: OpenSubcode,
    ErrorCode.UPDATE_MESSAGE: UpdateSubcode,
    ErrorCode.HOLD_TIMER_EXPIRED: HoldTimerSubcode,
    ErrorCode.FSM: FsmSubcode,
    ErrorCode.CEASE: CeaseSubcode,
    ErrorCode.ROUTE_REFRESH_MESSAGE: RouteRefreshSubcode,
}
"""Which subcode enum belongs to which error code (used to name a NOTIFICATION)."""


def subcode_name(code: int, subcode: int) -> str:
    """Human name of an error subcode, or its number if unknown."""
    table = SUBCODES.get(code)
    if table is not None:
        try:
            return table(subcode).name
        except ValueError:
            pass
    return str(subcode)


def code_name(code: int) -> str:
    """Human name of an error code, or its number if unknown."""
    try:
        return ErrorCode(code).name
    except ValueError:
        return str(code)


_BIRD_ERROR_TEXT: dict[tuple[int, int], str] = {
    (1, 0): "Invalid message header",
    (1, 1): "Connection not synchronized",
    (1, 2): "Bad message length",
    (1, 3): "Bad message type",
    (2, 0): "Invalid OPEN message",
    (2, 1): "Unsupported version number",
    (2, 2): "Bad peer AS",
    (2, 3): "Bad BGP identifier",
    (2, 4): "Unsupported optional parameter",
    (2, 5): "Authentication failure",
    (2, 6): "Unacceptable hold time",
    (2, 7): "Required capability missing",
    (3, 0): "Invalid UPDATE message",
    (3, 1): "Malformed attribute list",
    (3, 2): "Unrecognized well-known attribute",
    (3, 3): "Missing mandatory attribute",
    (3, 4): "Invalid attribute flags",
    (3, 5): "Invalid attribute length",
    (3, 6): "Invalid ORIGIN attribute",
    (3, 8): "Invalid NEXT_HOP attribute",
    (3, 9): "Optional attribute error",
    (3, 10): "Invalid network field",
    (3, 11): "Malformed AS_PATH",
    (4, 0): "Hold timer expired",
    (5, 0): "Finite state machine error",
    (5, 1): "Unexpected message in OpenSent state",
    (5, 2): "Unexpected message in OpenConfirm state",
    (5, 3): "Unexpected message in Established state",
    (6, 0): "Cease",
    (6, 1): "Maximum number of prefixes reached",
    (6, 2): "Administrative shutdown",
    (6, 3): "Peer de-configured",
    (6, 4): "Administrative reset",
    (6, 5): "Connection rejected",
    (6, 6): "Other configuration change",
    (6, 7): "Connection collision resolution",
    (6, 8): "Out of Resources",
    (7, 0): "Invalid ROUTE-REFRESH message",
    (7, 1): "Invalid ROUTE-REFRESH message length",
    # RFC 9687; BIRD 1.6 has no text for it (it would print "Unknown error 8/0"), this is
    # the wording of BIRD 2.15, which sends it
    (8, 0): "Send hold timer expired",
}


def bird_error_text(code: int, subcode: int) -> str:
    """The words BIRD 1.6 uses for a NOTIFICATION (``show protocols``, calicoctl's INFO).

    BIRD's table (proto/bgp/packets.c ``bgp_msg_table``) falls back to the code's general
    text for an unknown subcode.
    """
    text = _BIRD_ERROR_TEXT.get((code, subcode)) or _BIRD_ERROR_TEXT.get((code, 0))
    return text if text is not None else f"Unknown error {code}/{subcode}"
