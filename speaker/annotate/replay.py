"""``speaker decode --rib``: replay a capture into our RIB, one table per receiving speaker.

A capture shows what each side *sent*; what a student wants to know next is what the other
side *holds*.  Every message is applied where it arrived: one :class:`~speaker.rib.Rib` per
receiving address (BIRD runs one table per daemon: ``bird`` on 192.168.0.81, ``bird6`` on
fd00::81), the sender added as a peer from the OPENs, UPDATEs applied in order, End-of-RIB,
enhanced route refresh (BoRR/EoRR) and withdrawals honoured, and the end of each session
handled as the receiver handles it: a NOTIFICATION (or a malformed message, which causes
one) drops the peer's routes; a connection that closes without one keeps them as stale when
both OPENs announced graceful restart for the family (RFC 4724 4.2), until the peer's
End-of-RIB on the next session (or its new OPEN without the F bit) sweeps what it did not
announce again.  A sender whose OPEN carries the Restart State bit has restarted, so the
table it held is started again empty.  Only the RIB's public API is used; nothing here runs
on the decode fast path.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from speaker.annotate.explain import Decoded
from speaker.annotate.gaps import Lost
from speaker.pcap import TcpEvent
from speaker.rib import BestPathReason, PeerInfo, Rib, RouteView, UnknownPeerError
from speaker.wire.capabilities import FamilyFlags, GracefulRestartCapability
from speaker.wire.context import Family
from speaker.wire.enums import Afi, CapabilityCode, RouteRefreshSubtype, Safi
from speaker.wire.messages import Notification, Open, RouteRefresh, Update

Endpoint = tuple[str, int]
Stream = frozenset[Endpoint]


@dataclass(slots=True)
class _Session:
    """One TCP connection's BGP session: the OPEN of each side, and whether it is over."""

    opens: dict[str, Open] = field(default_factory=dict)
    up: bool = False
    closed: bool = False


@dataclass(slots=True)
class Receiver:
    """One receiving speaker: its table, and what happened to its sessions (for the notes)."""

    address: str
    rib: Rib
    notes: list[str] = field(default_factory=list)


def peer_info(address: str, message: Open, local_asn: int) -> PeerInfo:
    """The sender as the receiver's RIB knows it (named like Calico's BIRD protocols)."""
    addr = ipaddress.ip_address(address)
    internal = message.asn == local_asn
    prefix = "Mesh_" if internal else "Peer_"
    name = prefix + address.replace(".", "_").replace(":", "_")
    return PeerInfo(name, addr, message.bgp_id, message.asn, internal)


def _gr_families(message: Open) -> dict[Family, bool]:
    """The families a side can restart for, with its F (forwarding preserved) bit."""
    cap = message.capability(CapabilityCode.GRACEFUL_RESTART)
    if not isinstance(cap, GracefulRestartCapability):
        return {}
    return {_family(a, s): bool(f & FamilyFlags.FORWARDING) for a, s, f in cap.families}


def _family(afi: int, safi: int) -> Family:
    return (Afi(afi), Safi(safi))


def merge_events(
    items: Iterable[Decoded | Lost], events: Iterable[TcpEvent]
) -> Iterator[Decoded | Lost | TcpEvent]:
    """Messages and connection events in capture order (a frame's messages before its FIN)."""
    pending = iter(events)
    event = next(pending, None)
    for item in items:
        frame = item.gap.frame if isinstance(item, Lost) else item.frame
        while event is not None and frame is not None and event.frame < frame:
            yield event
            event = next(pending, None)
        yield item
    while event is not None:
        yield event
        event = next(pending, None)


def _where(item: Decoded | TcpEvent) -> str:
    frame = item.frame
    return f"frame {frame}" if frame is not None else f"message {getattr(item, 'index', '?')}"


class RibReplay:
    """Feed it a capture's decoded messages and TCP events in order; read :meth:`receivers`."""

    def __init__(self) -> None:
        self._receivers: dict[str, Receiver] = {}
        self._sessions: dict[Stream, _Session] = {}
        self._now = 0.0

    # ------------------------------------------------------------------ input

    def feed(self, item: Decoded | Lost | TcpEvent) -> None:
        """Apply one message (or connection event) where it arrived."""
        if isinstance(item, TcpEvent):
            if item.kind in ("FIN", "RST"):
                stream = frozenset(
                    {
                        (item.source.address, item.source.port),
                        (item.destination.address, item.destination.port),
                    }
                )
                self._closed(stream, f"{_where(item)}: TCP {item.kind} without a NOTIFICATION")
            return
        if isinstance(item, Lost) or item.source_endpoint is None:
            return
        if item.destination_endpoint is None:
            return
        if item.timestamp is not None:
            self._now = item.timestamp
        src, dst = item.source_endpoint, item.destination_endpoint
        stream = frozenset({src, dst})
        message = item.message
        if item.malformed:
            # the receiver answers with a NOTIFICATION and closes: no graceful restart
            self._notified(stream, f"{_where(item)}: malformed message from {src[0]}")
            return
        if isinstance(message, Open):
            self._open(stream, src[0], dst[0], message, item)
        elif isinstance(message, Notification):
            self._notified(stream, f"{_where(item)}: NOTIFICATION from {src[0]}")
        elif isinstance(message, Update):
            self._update(src[0], dst[0], message)
        elif isinstance(message, RouteRefresh):
            self._refresh(src[0], dst[0], message)

    def replay(self, items: Iterable[Decoded | Lost | TcpEvent]) -> RibReplay:
        """Feed every item; return self."""
        for item in items:
            self.feed(item)
        return self

    # ------------------------------------------------------------------ sessions

    def _open(self, stream: Stream, src: str, dst: str, message: Open, item: Decoded) -> None:
        for other_stream, other in self._sessions.items():
            # a new connection between the same speakers ends the old one (the receiver saw
            # it fail, even if the capture missed the FIN)
            ends = other.opens.keys()
            if other_stream != stream and other.up and not other.closed and {src, dst} <= ends:
                self._closed(other_stream, f"{_where(item)}: new OPEN from {src}")
        cap = message.capability(CapabilityCode.GRACEFUL_RESTART)
        if isinstance(cap, GracefulRestartCapability) and cap.restarting:
            old = self._receivers.pop(src, None)
            if old is not None:
                # the sender restarted (R bit): the table it held died with it
                self._receivers[src] = Receiver(
                    src,
                    Rib(asn=old.rib.asn, router_id=old.rib.router_id, clock=lambda: self._now),
                    [
                        *old.notes,
                        f"{_where(item)}: {src} restarted (R bit in its OPEN): "
                        f"its table starts empty",
                    ],
                )
        session = self._sessions.setdefault(stream, _Session())
        session.opens[src] = message
        if len(session.opens) == 2 and not session.up:
            session.up = True
            for sender, receiver in ((src, dst), (dst, src)):
                self._establish(sender, receiver, session, _where(item))

    def _establish(self, sender: str, receiver: str, session: _Session, where: str) -> None:
        local = session.opens[receiver]
        remote = session.opens[sender]
        rx = self._receivers.get(receiver)
        if rx is None:
            rib = Rib(asn=local.asn, router_id=local.bgp_id, clock=lambda: self._now)
            rx = self._receivers[receiver] = Receiver(receiver, rib)
        info = peer_info(sender, remote, local.asn)
        try:
            restarting = rx.rib.adj_in(info.name).gr_active
        except UnknownPeerError:
            restarting = False
        rx.rib.add_peer(info)
        rx.notes.append(f"{where}: session with {sender} ({info.name}, AS {remote.asn}) up")
        if restarting:
            kept = _gr_families(remote)
            stale = {p.prefix.afi for p in rx.rib.adj_in(info.name) if p.stale}
            for afi in stale:
                family = next((f for f in kept if f[0] == int(afi)), None)
                if family is None or not kept[family]:
                    # RFC 4724 4.2: F bit clear (or the family gone) in the new OPEN
                    rx.rib.sweep_stale(info.name, (afi, Safi.UNICAST))
                    rx.notes.append(
                        f"{where}: {sender}'s new OPEN does not keep forwarding state: "
                        f"its stale routes go now (RFC 4724 4.2)"
                    )

    def _sides(self, stream: Stream) -> list[tuple[str, str]]:
        session = self._sessions.get(stream)
        if session is None or not session.up:
            return []
        a, b = list(session.opens)
        return [(a, b), (b, a)]

    def _notified(self, stream: Stream, why: str) -> None:
        for sender, receiver in self._sides(stream):
            rx = self._receivers[receiver]
            name = peer_info(sender, self._sessions[stream].opens[sender], rx.rib.asn).name
            rx.rib.drop_peer(name)
            rx.notes.append(f"{why}: the routes from {sender} are removed")
        session = self._sessions.get(stream)
        if session is not None:
            session.closed = True

    def _closed(self, stream: Stream, why: str) -> None:
        session = self._sessions.get(stream)
        if session is None or session.closed or not session.up:
            return
        session.closed = True
        for sender, receiver in self._sides(stream):
            rx = self._receivers[receiver]
            remote, local = session.opens[sender], session.opens[receiver]
            name = peer_info(sender, remote, rx.rib.asn).name
            families = list(_gr_families(remote)) if _gr_families(local) else []
            if families:
                rx.rib.mark_stale(name, families)
                rx.notes.append(
                    f"{why}: {sender} announced graceful restart, its routes are kept as "
                    f"stale (RFC 4724 4.2)"
                )
            else:
                rx.rib.drop_peer(name)
                rx.notes.append(f"{why}: the routes from {sender} are removed")

    # ------------------------------------------------------------------ routes

    def _peer(self, sender: str, receiver: str) -> tuple[Rib, str] | None:
        rx = self._receivers.get(receiver)
        if rx is None:
            return None  # the OPENs were not seen: no peer to file the routes under
        for session in self._sessions.values():
            if session.up and not session.closed and {sender, receiver} <= session.opens.keys():
                return rx.rib, peer_info(sender, session.opens[sender], rx.rib.asn).name
        return None

    def _update(self, sender: str, receiver: str, message: Update) -> None:
        found = self._peer(sender, receiver)
        if found is None:
            return
        rib, name = found
        family = message.end_of_rib()
        if family is not None:
            rib.end_of_rib(name, family)
            return
        rib.apply_update(name, message)

    def _refresh(self, sender: str, receiver: str, message: RouteRefresh) -> None:
        found = self._peer(sender, receiver)
        if found is None:
            return
        rib, name = found
        family = _family(message.afi, message.safi)
        if message.subtype == RouteRefreshSubtype.BORR:
            rib.begin_refresh(name, family)
        elif message.subtype == RouteRefreshSubtype.EORR:
            rib.end_refresh(name, family)

    # ------------------------------------------------------------------ output

    def receivers(self) -> list[Receiver]:
        """Every receiving speaker seen, in address order (IPv4 first)."""
        return [
            self._receivers[a]
            for a in sorted(self._receivers, key=lambda a: ipaddress.ip_address(a).packed)
        ]


def route_lines(view: RouteView, rib: Rib) -> Iterator[str]:
    """``show route all``-like lines for one prefix, each path with its selection step."""
    decision = rib.decision(view.prefix)
    yield str(view.prefix)
    for path in view.paths:
        if path.best:
            why = decision.describe()
            if decision.reason is not BestPathReason.ONLY_PATH:
                why = f"best: {why}"
        else:
            why = f"not best: lost at the {path.reason.value} step ({path.reason.rule})"
        via = "via " if path.path.next_hop is not None else ""
        yield f"    {via}{path.bird_line()}"
        yield f"        {why}"
        for line in path.attrs.bird_lines():
            yield f"        {line}".rstrip()


def table_lines(receiver: Receiver) -> list[str]:
    """One receiver's table, as BIRD on that side would hold it, with the session notes."""
    rib = receiver.rib
    count = rib.count()
    lines = [
        f"table of {receiver.address} (AS {rib.asn}, router id {rib.router_id}): "
        f"{count.describe()}, what BIRD there holds at the end of the capture",
    ]
    lines.extend(f"  {note}" for note in receiver.notes)
    for view in rib.show_route():
        lines.extend(f"  {line}" for line in route_lines(view, rib))
    return lines


__all__ = ["Receiver", "RibReplay", "merge_events", "peer_info", "route_lines", "table_lines"]
