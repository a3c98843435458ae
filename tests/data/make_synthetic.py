#!/usr/bin/env python3
"""Regenerate synthetic.pcap and its tshark dissection synthetic.tshark.json.

The BIRD captures exercise what BIRD 1.6.8 sends; this capture adds what it never does, so
that our reading can be checked against Wireshark's on it too: AS_SET and confederation
segments, 2-octet sessions with AS4_PATH/AS4_AGGREGATOR, AGGREGATOR, ATOMIC_AGGREGATE,
ORIGINATOR_ID, CLUSTER_LIST, extended and large communities, an unknown optional transitive
attribute with the Partial bit, IPv6 MP_REACH with a global and a link-local next hop, add-path
NLRI of every length class, MP End-of-RIB, ROUTE-REFRESH BoRR/EoRR, an RFC 9072 extended
optional parameter OPEN, an RFC 9003 shutdown communication, several messages in one TCP
segment and one message split over two segments.

The messages are built with our encoder, then dissected by tshark (the independent reading).
Run from the repository root: ``python3 tests/data/make_synthetic.py`` (needs tshark).
"""

from __future__ import annotations

import ipaddress
import subprocess
import sys
from pathlib import Path

import dpkt

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from speaker.wire import (  # noqa: E402
    IPV4_UNICAST,
    IPV6_UNICAST,
    AddPathCapability,
    AddPathMode,
    AggregatorAttr,
    As4AggregatorAttr,
    As4PathAttr,
    AsPathAttr,
    AsPathSegment,
    AtomicAggregateAttr,
    ClusterListAttr,
    CommunitiesAttr,
    EnhancedRouteRefreshCapability,
    ExtendedCommunitiesAttr,
    ExtendedMessageCapability,
    FourOctetAsCapability,
    GracefulRestartCapability,
    Keepalive,
    LargeCommunitiesAttr,
    LocalPrefAttr,
    LongLivedGracefulRestartCapability,
    MedAttr,
    MpReachAttr,
    MpUnreachAttr,
    MultiprotocolCapability,
    Negotiated,
    NextHopAttr,
    Nlri,
    Notification,
    Open,
    OriginatorIdAttr,
    OriginAttr,
    Prefix,
    RouteRefresh,
    RouteRefreshCapability,
    UnknownAttr,
    UnknownCapability,
    Update,
)
from speaker.wire.capabilities import FamilyFlags, GracefulRestartFlags  # noqa: E402
from speaker.wire.enums import (  # noqa: E402
    Afi,
    AsPathSegmentType,
    CeaseSubcode,
    Origin,
    RouteRefreshSubtype,
    Safi,
)

SEQ = AsPathSegmentType.AS_SEQUENCE
SET = AsPathSegmentType.AS_SET
CONFED_SEQ = AsPathSegmentType.AS_CONFED_SEQUENCE
CONFED_SET = AsPathSegmentType.AS_CONFED_SET
IP = ipaddress.ip_address


def v4(text: str, path_id: int | None = None) -> Nlri:
    return Nlri(Prefix.parse(text), path_id)


def open_4octet(router_id: str, asn: int) -> Open:
    caps = [
        MultiprotocolCapability(Afi.IPV4, Safi.UNICAST),
        MultiprotocolCapability(Afi.IPV6, Safi.UNICAST),
        RouteRefreshCapability(),
        EnhancedRouteRefreshCapability(),
        GracefulRestartCapability(
            GracefulRestartFlags.RESTART,
            90,
            (
                (Afi.IPV4, Safi.UNICAST, FamilyFlags.FORWARDING),
                (Afi.IPV6, Safi.UNICAST, FamilyFlags(0)),
            ),
        ),
        FourOctetAsCapability(asn),
        AddPathCapability(
            ((Afi.IPV4, Safi.UNICAST, AddPathMode.BOTH), (Afi.IPV6, Safi.UNICAST, AddPathMode.BOTH))
        ),
        ExtendedMessageCapability(),
        LongLivedGracefulRestartCapability(((Afi.IPV4, Safi.UNICAST, 0x80, 3600),)),
        UnknownCapability(unknown_code=73, value=b"\x04node\x00"),
    ]
    return Open.build(asn, 90, ipaddress.IPv4Address(router_id), caps)


def session_a() -> list[tuple[str, list[bytes]]]:
    """A 4-octet AS iBGP session with add-path both ways: (direction, segment payloads)."""
    a = open_4octet("10.0.0.1", 4200000001)
    b = open_4octet("10.0.0.2", 4200000001)
    ctx = Negotiated(
        asn4=True,
        addpath_receive=frozenset({IPV4_UNICAST, IPV6_UNICAST}),
        addpath_send=frozenset({IPV4_UNICAST, IPV6_UNICAST}),
        max_message_size=65535,
    )
    path = AsPathAttr(
        (
            AsPathSegment(CONFED_SEQ, (65010, 65011)),
            AsPathSegment(CONFED_SET, (65012,)),
            AsPathSegment(SEQ, (4200000001, 65002)),
            AsPathSegment(SET, (65003, 65004)),
        )
    )
    ipv4 = Update(
        attributes=(
            OriginAttr(Origin.EGP),
            path,
            NextHopAttr(ipaddress.IPv4Address("10.0.0.1")),
            MedAttr(7),
            LocalPrefAttr(200),
            AtomicAggregateAttr(),
            AggregatorAttr(4200000001, ipaddress.IPv4Address("10.0.0.9")),
            CommunitiesAttr((0xFDE80064, 0xFFFFFF01, 0xFFFF029A)),
            OriginatorIdAttr(ipaddress.IPv4Address("10.0.0.7")),
            ClusterListAttr((ipaddress.IPv4Address("1.1.1.1"), ipaddress.IPv4Address("2.2.2.2"))),
            ExtendedCommunitiesAttr((0x0002FDE800000064, 0x010300000000000A)),
            LargeCommunitiesAttr(((4200000001, 1, 2), (65002, 3, 4))),
            UnknownAttr(unknown_type=200, value=b"\xde\xad\xbe\xef", flags=0xE0),
        ),
        nlri=(
            v4("0.0.0.0/0", 1),
            v4("10.0.0.0/8", 2),
            v4("172.16.128.0/17", 3),
            v4("192.0.2.0/24", 4),
            v4("198.51.100.77/32", 5),
        ),
    )
    ipv6 = Update(
        attributes=(
            MpReachAttr(
                Afi.IPV6,
                Safi.UNICAST,
                (IP("2001:db8::1"), IP("fe80::1")),
                (
                    Nlri(Prefix.parse("::/0"), 10),
                    Nlri(Prefix.parse("2001:db8::/48"), 11),
                    Nlri(Prefix.parse("2001:db8:1:2::/64"), 12),
                    Nlri(Prefix.parse("fd00:10:244:42::/122"), 13),
                    Nlri(Prefix.parse("2001:db8::dead:beef/128"), 14),
                ),
            ),
            OriginAttr(Origin.INCOMPLETE),
            AsPathAttr((AsPathSegment(SEQ, (4200000001,)),)),
        ),
    )
    unreach6 = Update(
        attributes=(
            MpUnreachAttr(
                Afi.IPV6,
                Safi.UNICAST,
                (Nlri(Prefix.parse("2001:db8::/48"), 11), Nlri(Prefix.parse("::/0"), 10)),
            ),
        )
    )
    withdraw4 = Update(withdrawn=(v4("10.0.0.0/8", 2), v4("198.51.100.77/32", 5)))
    eor4 = Update.end_of_rib_marker(IPV4_UNICAST)
    eor6 = Update.end_of_rib_marker(IPV6_UNICAST)
    borr = RouteRefresh(Afi.IPV6, Safi.UNICAST, RouteRefreshSubtype.BORR)
    eorr = RouteRefresh(Afi.IPV6, Safi.UNICAST, RouteRefreshSubtype.EORR)
    ask = RouteRefresh(Afi.IPV4, Safi.UNICAST, RouteRefreshSubtype.NORMAL)
    bye = Notification.cease(
        CeaseSubcode.ADMINISTRATIVE_SHUTDOWN, "maintenance \u2014 back at 14:00"
    )
    big = ipv4.encode(ctx)
    return [
        ("a", [a.encode(ctx)]),
        ("b", [b.encode(ctx)]),
        ("a", [Keepalive().encode(ctx)]),
        ("b", [Keepalive().encode(ctx)]),
        # one UPDATE split over two segments, the second also carrying the IPv6 one
        ("a", [big[:40]]),
        ("a", [big[40:] + ipv6.encode(ctx)]),
        ("a", [unreach6.encode(ctx) + withdraw4.encode(ctx) + eor4.encode(ctx) + eor6.encode(ctx)]),
        ("b", [ask.encode(ctx)]),
        ("a", [borr.encode(ctx) + eorr.encode(ctx)]),
        ("a", [bye.encode(ctx)]),
    ]


def session_b() -> list[tuple[str, list[bytes]]]:
    """A 2-octet AS session (one side lacks the 4-octet AS capability): AS4_PATH and friends."""
    a = Open.build(
        65001,
        180,
        ipaddress.IPv4Address("10.0.1.1"),
        [MultiprotocolCapability(Afi.IPV4, Safi.UNICAST), RouteRefreshCapability()],
    )
    b = Open.build(
        65002,
        180,
        ipaddress.IPv4Address("10.0.1.2"),
        [MultiprotocolCapability(Afi.IPV4, Safi.UNICAST), FourOctetAsCapability(65002)],
    )
    ctx = Negotiated(asn4=False)
    update = Update(
        attributes=(
            OriginAttr(Origin.IGP),
            AsPathAttr((AsPathSegment(SEQ, (65001, 23456, 65005)),)),
            NextHopAttr(ipaddress.IPv4Address("10.0.1.1")),
            AggregatorAttr(23456, ipaddress.IPv4Address("10.0.1.9")),
            As4PathAttr((AsPathSegment(SEQ, (65001, 4200000009, 65005)),)),
            As4AggregatorAttr(4200000009, ipaddress.IPv4Address("10.0.1.9")),
        ),
        nlri=(v4("203.0.113.0/24"), v4("198.18.0.0/15")),
    )
    return [
        ("a", [a.encode(ctx)]),
        ("b", [b.encode(ctx)]),
        ("a", [Keepalive().encode(ctx) + update.encode(ctx)]),
        ("b", [Notification(6, 4).encode(ctx)]),
    ]


MAC_A = b"\x02\x00\x00\x00\x00\x01"
MAC_B = b"\x02\x00\x00\x00\x00\x02"


class _Conversation:
    """Writes the Ethernet frames of one TCP connection, keeping both sequence numbers."""

    def __init__(self, writer: dpkt.pcap.Writer, a: tuple[str, int], b: tuple[str, int]) -> None:
        self.writer = writer
        self.ends = {"a": (a, b, MAC_A, MAC_B), "b": (b, a, MAC_B, MAC_A)}
        self.seq = {"a": 1000, "b": 5000}

    def send(self, side: str, flags: int, payload: bytes, ts: float) -> None:
        (src, sport), (dst, dport), smac, dmac = self.ends[side]
        other = "b" if side == "a" else "a"
        tcp = dpkt.tcp.TCP(
            sport=sport,
            dport=dport,
            seq=self.seq[side],
            ack=self.seq[other],
            flags=flags,
            win=65535,
            data=payload,
        )
        ip = dpkt.ip.IP(
            src=ipaddress.IPv4Address(src).packed,
            dst=ipaddress.IPv4Address(dst).packed,
            p=dpkt.ip.IP_PROTO_TCP,
            ttl=64,
            data=tcp,
        )
        ip.len = len(bytes(ip))
        eth = dpkt.ethernet.Ethernet(src=smac, dst=dmac, type=dpkt.ethernet.ETH_TYPE_IP, data=ip)
        self.writer.writepkt(bytes(eth), ts=ts)
        self.seq[side] += len(payload) + (1 if flags & dpkt.tcp.TH_SYN else 0)


def write(path: Path) -> None:
    sessions = [
        (("10.0.0.1", 40001), ("10.0.0.2", 179), session_a()),
        (("10.0.1.1", 179), ("10.0.1.2", 40002), session_b()),
    ]
    ts = 1_700_000_000.0
    with open(path, "wb") as fh:
        writer = dpkt.pcap.Writer(fh, linktype=dpkt.pcap.DLT_EN10MB)
        for a, b, segments in sessions:
            tcp = _Conversation(writer, a, b)
            steps = [
                ("a", dpkt.tcp.TH_SYN, b""),
                ("b", dpkt.tcp.TH_SYN | dpkt.tcp.TH_ACK, b""),
                ("a", dpkt.tcp.TH_ACK, b""),
            ]
            steps += [
                (side, dpkt.tcp.TH_ACK | dpkt.tcp.TH_PUSH, payload)
                for side, payloads in segments
                for payload in payloads
            ]
            for side, flags, payload in steps:
                tcp.send(side, flags, payload, ts)
                ts += 0.001


def main() -> int:
    pcap = HERE / "synthetic.pcap"
    write(pcap)
    dissection = subprocess.run(
        ["tshark", "-r", str(pcap), "-Y", "bgp", "-T", "json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (HERE / "synthetic.tshark.json").write_text(dissection)
    print(f"wrote {pcap} and its dissection")
    return 0


if __name__ == "__main__":
    sys.exit(main())
