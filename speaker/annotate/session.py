"""The OPEN exchange of each stream, and what it makes the two ends agree on.

Add-path is negotiated per family *and per direction* (RFC 7911 4) and 4-octet AS per session
(RFC 6793), so the same UPDATE bytes mean different things on different sessions.  A decoder
that guesses (Wireshark's ``asn_len`` auto-detection, scapy's add-path heuristic) is wrong
some of the time; this one follows the OPENs.  A message from A to B is read with B's
receiving context, ``negotiate(B's OPEN, A's OPEN)``.

:func:`summarise` turns two OPENs into a list of :class:`Fact` s that both the text and the
JSON output use.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

from speaker.annotate.tables import CAPABILITIES, family_name
from speaker.wire.capabilities import (
    Capability,
    GracefulRestartCapability,
    LongLivedGracefulRestartCapability,
    MultiprotocolCapability,
)
from speaker.wire.context import DEFAULT_CONTEXT, IPV4_UNICAST, Negotiated
from speaker.wire.enums import CapabilityCode
from speaker.wire.messages import Open
from speaker.wire.negotiate import negotiate, negotiate_hold

JsonValue = object
"""Anything ``json.dumps`` accepts (kept loose on purpose: records are built by hand)."""


@dataclass(frozen=True, slots=True)
class Fact:
    """One line of the negotiation summary: a name, a value, why, and where it is defined."""

    key: str
    label: str
    value: str
    meaning: str
    rfc: str
    data: JsonValue


@dataclass(frozen=True, slots=True)
class Negotiation:
    """Both OPENs of a session and the receiving context each end derives from them."""

    a: str
    b: str
    open_a: Open
    open_b: Open
    receive_a: Negotiated  # how A reads what B sends
    receive_b: Negotiated  # how B reads what A sends
    facts: tuple[Fact, ...]


@dataclass(slots=True)
class _Side:
    open: Open | None = None
    keepalives: int = 0


@dataclass(slots=True)
class _Stream:
    sides: dict[str, _Side] = field(default_factory=dict)
    negotiation: Negotiation | None = None
    receiving: dict[str, Context] = field(default_factory=dict)  # per receiving end, once known

    def side(self, name: str) -> _Side:
        return self.sides.setdefault(name, _Side())


@dataclass(frozen=True, slots=True)
class Context:
    """The context a message was read with, and why."""

    negotiated: Negotiated
    from_opens: bool
    missing: tuple[str, ...]  # ends whose OPEN was not seen (when not from_opens)
    receiver_as: int | None = None  # the receiving end's AS, from its OPEN (AS loops)


class Tracker:
    """Follows the OPENs and KEEPALIVEs of every stream in a capture or hex file."""

    def __init__(self) -> None:
        self._streams: dict[Hashable, _Stream] = {}

    def context(self, stream: Hashable, source: str, destination: str) -> Context:
        """How ``destination`` reads a message from ``source`` on this stream."""
        state = self._streams.get(stream)
        if state is not None and state.negotiation is not None:
            # one Context per receiving end and negotiation: the hot path of a long capture
            known = state.receiving.get(destination)
            if known is not None:
                return known
            neg = state.negotiation
            if destination == neg.a:
                made = Context(neg.receive_a, True, (), neg.open_a.asn)
            else:
                made = Context(neg.receive_b, True, (), neg.open_b.asn)
            state.receiving[destination] = made
            return made
        missing = tuple(
            name for name in (source, destination) if state is None or state.side(name).open is None
        )
        return Context(DEFAULT_CONTEXT, False, missing)

    def opened(
        self, stream: Hashable, source: str, destination: str, message: Open
    ) -> Negotiation | None:
        """Record ``source``'s OPEN; return the negotiation once both ends have sent one."""
        state = self._streams.setdefault(stream, _Stream())
        peer = state.side(destination)
        if state.negotiation is not None:
            # a new OPEN after a complete exchange starts a new session: wait for both again
            peer.open = None
        sender = state.side(source)
        sender.open = message
        sender.keepalives = 0
        state.receiving.clear()
        if peer.open is None:
            state.negotiation = None
            return None
        state.negotiation = summarise(destination, peer.open, source, message)
        return state.negotiation

    def keepalive(self, stream: Hashable, source: str) -> bool:
        """Count a KEEPALIVE; True if it is the first since the sender's OPEN (it accepts the
        peer's OPEN, RFC 4271 8.2.2)."""
        state = self._streams.setdefault(stream, _Stream())
        side = state.side(source)
        side.keepalives += 1
        return side.keepalives == 1 and state.negotiation is not None


def families_of(message: Open) -> list[tuple[int, int]]:
    """The families an OPEN offers; IPv4 unicast when it has no multiprotocol capability
    (a speaker without one carries IPv4 unicast only, as plain RFC 4271 does)."""
    found = [
        (int(c.afi), int(c.safi))
        for c in message.capabilities
        if isinstance(c, MultiprotocolCapability)
    ]
    return found or [(int(IPV4_UNICAST[0]), int(IPV4_UNICAST[1]))]


def _has(message: Open, code: int) -> bool:
    return message.capability(code) is not None


def _fam_list(families: Iterable[tuple[int, int]]) -> list[str]:
    return sorted(family_name(a, s) for a, s in families)


def _gr_text(cap: Capability | None) -> str:
    if not isinstance(cap, GracefulRestartCapability):
        return "not supported"
    text = f"restart time {cap.restart_time} s"
    if cap.restarting:
        text += ", restarting (R set)"
    parts = [f"{family_name(int(a), int(s))} F={'1' if f else '0'}" for a, s, f in cap.families]
    return text + (f", {', '.join(parts)}" if parts else ", helper only (no families)")


def _gr_data(cap: Capability | None) -> JsonValue:
    if not isinstance(cap, GracefulRestartCapability):
        return None
    return {
        "restart_time": cap.restart_time,
        "restarting": cap.restarting,
        "families": {family_name(int(a), int(s)).lower(): bool(f) for a, s, f in cap.families},
    }


def _llgr_families(open_a: Open, open_b: Open) -> str:
    lists = [
        c.entries
        for o in (open_a, open_b)
        for c in o.capabilities
        if isinstance(c, LongLivedGracefulRestartCapability)
    ]
    if not any(lists):
        return ", with no families: no route is kept long-lived"
    common = {(int(a), int(s)) for a, s, _, _ in lists[0]} & {
        (int(a), int(s)) for entries in lists[1:] for a, s, _, _ in entries
    }
    return f", for {', '.join(_fam_list(common)) or 'no common family'}"


def summarise(a: str, open_a: Open, b: str, open_b: Open) -> Negotiation:
    """What two OPENs agree on, as facts a student can check one by one."""
    receive_a = negotiate(open_a, open_b)
    receive_b = negotiate(open_b, open_a)
    facts: list[Fact] = []

    same_as = open_a.asn == open_b.asn
    facts.append(
        Fact(
            "session_type",
            "session type",
            f"iBGP (both in AS {open_a.asn})"
            if same_as
            else f"eBGP (AS {open_a.asn} and AS {open_b.asn})",
            "iBGP peers share an AS: no AS is prepended and LOCAL_PREF is carried"
            if same_as
            else "eBGP peers are in different ASes: each prepends its AS to AS_PATH",
            "RFC 4271 5.1.2",
            {"ibgp": same_as, "as": {a: open_a.asn, b: open_b.asn}},
        )
    )

    fams_a, fams_b = families_of(open_a), families_of(open_b)
    common = [f for f in fams_a if f in fams_b]
    only = [f for f in fams_a + fams_b if f not in common]
    fam_text = ", ".join(family_name(*f) for f in common) or "none"
    if only:
        fam_text += (
            f"; offered by one side only (unused): {', '.join(family_name(*f) for f in only)}"
        )
    facts.append(
        Fact(
            "families",
            "address families",
            fam_text,
            "routes of a family are exchanged only if both OPENs list it",
            "RFC 4760 8",
            [family_name(*f).lower() for f in common],
        )
    )

    facts.append(
        Fact(
            "four_octet_as",
            "4-octet AS",
            "yes: AS numbers are 4 octets on the wire"
            if receive_a.asn4
            else "no: AS_PATH uses 2 octets, large ASes travel in AS4_PATH",
            "both sides must send capability 65",
            "RFC 6793 4",
            receive_a.asn4,
        )
    )

    for sender, receiver, ctx in ((a, b, receive_b), (b, a, receive_a)):
        fams = _fam_list(ctx.addpath_receive)
        facts.append(
            Fact(
                "add_path",
                f"add-path {sender} -> {receiver}",
                f"path ids on {', '.join(fams)}"
                if fams
                else "none: one path per prefix, NLRI without path ids",
                "NLRI carry a 4-octet path identifier when the sender said 'send' and the "
                "receiver said 'receive' for the family",
                "RFC 7911 4",
                {"from": sender, "to": receiver, "families": [f.lower() for f in fams]},
            )
        )

    gr_a = open_a.capability(CapabilityCode.GRACEFUL_RESTART)
    gr_b = open_b.capability(CapabilityCode.GRACEFUL_RESTART)
    both_gr = gr_a is not None and gr_b is not None
    restarting = [
        name
        for name, cap in ((a, gr_a), (b, gr_b))
        if isinstance(cap, GracefulRestartCapability) and cap.restarting
    ]
    meaning = (
        "if the session drops, each side keeps the other's routes as stale for the "
        "restart time the other announced"
        if both_gr
        else "graceful restart needs the capability on both sides"
    )
    if restarting:
        meaning += (
            f"; {' and '.join(restarting)} has just restarted (R flag): the peer sends its "
            "routes without waiting for the restarting side's End-of-RIB"
        )
    facts.append(
        Fact(
            "graceful_restart",
            "graceful restart",
            f"{a}: {_gr_text(gr_a)}; {b}: {_gr_text(gr_b)}",
            meaning,
            "RFC 4724 4",
            {"negotiated": both_gr, a: _gr_data(gr_a), b: _gr_data(gr_b)},
        )
    )

    hold, keepalive = negotiate_hold(open_a.hold_time, open_b.hold_time)
    invalid = [h for h in (open_a.hold_time, open_b.hold_time) if h in (1, 2)]
    if hold == 0:
        hold_text = f"min({open_a.hold_time}, {open_b.hold_time}) = 0: no hold timer, no KEEPALIVEs"
    else:
        hold_text = (
            f"min({open_a.hold_time}, {open_b.hold_time}) = {hold} s; "
            f"KEEPALIVE every {keepalive} s (one third of it)"
        )
    if invalid:
        hold_text += "; INVALID: 1 or 2 s is refused with NOTIFICATION 2/6"
    facts.append(
        Fact(
            "hold_time",
            "hold time",
            hold_text,
            "each side drops the session after this long without a message",
            "RFC 4271 4.2, 10",
            {
                "hold_time": hold,
                "keepalive": hold // 3,
                "offered": {a: open_a.hold_time, b: open_b.hold_time},
            },
        )
    )

    for key, code in (
        ("route_refresh", CapabilityCode.ROUTE_REFRESH),
        ("enhanced_route_refresh", CapabilityCode.ENHANCED_ROUTE_REFRESH),
        ("long_lived_graceful_restart", CapabilityCode.LONG_LIVED_GRACEFUL_RESTART),
        ("extended_message", CapabilityCode.EXTENDED_MESSAGE),
    ):
        has_a, has_b = _has(open_a, code), _has(open_b, code)
        info = CAPABILITIES[code]
        if has_a and has_b:
            value = "both sides announced it: in use"
            if code == CapabilityCode.LONG_LIVED_GRACEFUL_RESTART:
                value = "both sides announced it" + _llgr_families(open_a, open_b)
        elif has_a or has_b:
            value = f"only {a if has_a else b}: not in use"
        else:
            value = "neither side"
        facts.append(Fact(key, info.name, value, info.text, info.rfc, has_a and has_b))

    facts.append(
        Fact(
            "max_message_size",
            "largest message",
            f"{receive_a.max_message_size} octets",
            "4096 unless both sides sent the extended message capability",
            "RFC 4271 4.1, RFC 8654",
            receive_a.max_message_size,
        )
    )
    return Negotiation(a, b, open_a, open_b, receive_a, receive_b, tuple(facts))


def describe_context(ctx: Negotiated) -> str:
    """``4-octet AS, path ids on IPv4/unicast`` for a receiving context."""
    fams = _fam_list(ctx.addpath_receive)
    text = "4-octet AS" if ctx.asn4 else "2-octet AS"
    text += f", path ids on {', '.join(fams)}" if fams else ", no path ids"
    if ctx.max_message_size != 4096:
        text += f", messages up to {ctx.max_message_size} octets"
    return text
