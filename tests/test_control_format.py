# ruff: noqa: E501
"""Our control socket's bytes against real BIRD 1.6.8's, byte for byte.

The *_CAPTURES below are the raw replies of a real `bird` 1.6.8 (Debian) captured on
2026-11-25 with a small socket client: two BIRDs in throwaway network namespaces (node A
192.168.0.80 with peers .81 (up), .82 (passive) and .79 (unreachable); node B
192.168.0.81), static blackholes, one prefix with two add-path routes, MED/communities on
10.244.77.7/32, then node A killed (B as graceful-restart helper) and restarted with `-R`.
Each test rebuilds the same state as views and asserts our reply is identical.
"""

from __future__ import annotations

from datetime import UTC, datetime
from ipaddress import IPv4Address as A
from ipaddress import IPv4Network as N

import pytest

from speaker.control.commands import CommandExecutor
from speaker.control.protocol import encode_reply
from speaker.control.static import StaticBackend
from speaker.control.views import (
    BgpAttrs,
    BgpDetails,
    ChangeStats,
    GracefulRestartStatus,
    NextHop,
    ProtocolStatus,
    ProtoState,
    RouteChangeStats,
    RouteCounts,
    RouteKind,
    RouteView,
    StatusView,
    TimerView,
)

CAPS = (
    "refresh",
    "enhanced-refresh",
    "restart-able",
    "llgr-aware",
    "AS4",
    "add-path-rx",
    "add-path-tx",
)
SESSION = ("internal", "multihop", "AS4", "add-path-rx", "add-path-tx")
DESC = "Connection to BGP peer"
EXPORT = "calico_export_to_bgp_peers"


def t(h: int, m: int, s: int) -> datetime:
    return datetime(2026, 11, 25, h, m, s, tzinfo=UTC)


def stats(
    iu: tuple[int, ...] = (0, 0, 0, 0, 0),
    iw: tuple[int, ...] = (0, 0, 0, 0, 0),
    eu: tuple[int, ...] = (0, 0, 0, 0, 0),
    ew: tuple[int, ...] = (0, 0, 0, 0, 0),
) -> RouteChangeStats:
    return RouteChangeStats(ChangeStats(*iu), ChangeStats(*iw), ChangeStats(*eu), ChangeStats(*ew))


def node_a_protocols(hold: int = 224, keepalive: int = 61) -> list[ProtocolStatus]:
    up = t(13, 49, 54)
    return [
        ProtocolStatus(
            "kernel1",
            "Kernel",
            ProtoState.UP,
            up,
            preference=10,
            routes=RouteCounts(0, 6, 0),
            change_stats=stats(eu=(8, 1, 0, 0, 7)),
        ),
        ProtocolStatus(
            "device1", "Device", ProtoState.UP, up, preference=240, output_filter="REJECT"
        ),
        ProtocolStatus(
            "direct1",
            "Direct",
            ProtoState.UP,
            up,
            preference=240,
            output_filter="REJECT",
            routes=RouteCounts(1, 0, 1),
            change_stats=stats(iu=(1, 0, 0, 0, 1)),
        ),
        ProtocolStatus(
            "static1",
            "Static",
            ProtoState.UP,
            up,
            preference=200,
            output_filter="REJECT",
            routes=RouteCounts(2, 0, 2),
            change_stats=stats(iu=(2, 0, 0, 0, 2)),
        ),
        ProtocolStatus(
            "Mesh_192_168_0_81",
            "BGP",
            ProtoState.UP,
            t(13, 49, 56),
            info="Established",
            description=DESC,
            output_filter=EXPORT,
            routes=RouteCounts(3, 2, 2),
            change_stats=stats(iu=(3, 0, 0, 0, 3), eu=(6, 3, 1, 0, 2)),
            bgp=BgpDetails(
                A("192.168.0.81"),
                64512,
                A("192.168.0.81"),
                CAPS,
                SESSION,
                A("192.168.0.80"),
                TimerView(hold, 240),
                TimerView(keepalive, 80),
            ),
        ),
        ProtocolStatus(
            "Mesh_192_168_0_82",
            "BGP",
            ProtoState.START,
            up,
            info="Passive",
            description=DESC,
            output_filter=EXPORT,
            bgp=BgpDetails(A("192.168.0.82"), 64512, passive=True),
        ),
        ProtocolStatus(
            "Mesh_192_168_0_79",
            "BGP",
            ProtoState.START,
            up,
            info="Connect",
            last_error="Socket: No route to host",
            description=DESC,
            output_filter=EXPORT,
            bgp=BgpDetails(A("192.168.0.79"), 64512),
        ),
    ]


def node_a_routes() -> list[RouteView]:
    via81 = (NextHop(A("192.168.0.81"), "va"),)
    bgp = BgpAttrs("IGP", (), A("192.168.0.81"), None, 100)
    mesh = t(13, 49, 56)
    up = t(13, 49, 54)
    return [
        RouteView(
            N("10.244.200.0/26"),
            "Mesh_192_168_0_81",
            mesh,
            nexthops=via81,
            primary=True,
            bgp=bgp,
            path_id=1,
        ),
        RouteView(
            N("10.244.200.0/26"), "Mesh_192_168_0_81", mesh, nexthops=via81, bgp=bgp, path_id=2
        ),
        RouteView(
            N("10.244.152.128/26"),
            "static1",
            up,
            kind=RouteKind.BLACKHOLE,
            primary=True,
            preference=200,
            source="static",
        ),
        RouteView(
            N("192.168.0.0/24"),
            "direct1",
            up,
            kind=RouteKind.DEVICE,
            iface="va",
            primary=True,
            preference=240,
            source="device",
        ),
        RouteView(
            N("10.244.77.7/32"),
            "static1",
            up,
            kind=RouteKind.BLACKHOLE,
            primary=True,
            preference=200,
            source="static",
        ),
        RouteView(
            N("10.244.42.64/26"), "Mesh_192_168_0_81", mesh, nexthops=via81, primary=True, bgp=bgp
        ),
    ]


def node_b_routes(mesh_since: datetime) -> list[RouteView]:
    via80 = (NextHop(A("192.168.0.80"), "vb"),)
    up = t(13, 49, 53)
    plain = BgpAttrs("IGP", (), A("192.168.0.80"), None, 100)
    tagged = BgpAttrs(
        "IGP",
        (),
        A("192.168.0.80"),
        50,
        100,
        communities=((64512, 100),),
        large_communities=((64512, 1, 2),),
    )
    return [
        RouteView(
            N("10.244.200.0/26"),
            "static1",
            up,
            kind=RouteKind.BLACKHOLE,
            primary=True,
            preference=200,
            source="static",
        ),
        RouteView(
            N("10.244.200.0/26"),
            "static_b",
            up,
            nexthops=(NextHop(A("192.168.0.81"), "vb"),),
            preference=200,
            source="static",
        ),
        RouteView(
            N("10.244.152.128/26"),
            "Mesh_192_168_0_80",
            mesh_since,
            nexthops=via80,
            primary=True,
            bgp=plain,
        ),
        RouteView(
            N("192.168.0.0/24"),
            "direct1",
            up,
            kind=RouteKind.DEVICE,
            iface="vb",
            primary=True,
            preference=240,
            source="device",
        ),
        RouteView(
            N("10.244.77.7/32"),
            "Mesh_192_168_0_80",
            mesh_since,
            nexthops=via80,
            primary=True,
            bgp=tagged,
        ),
        RouteView(
            N("10.244.42.64/26"),
            "static1",
            up,
            kind=RouteKind.BLACKHOLE,
            primary=True,
            preference=200,
            source="static",
        ),
    ]


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def reply(backend: StaticBackend, clock: Clock, command: str) -> bytes:
    executor = CommandExecutor(backend, clock=clock, tz=UTC)
    return encode_reply(await executor.run_line(command))


def node_a(now: datetime, **timers: int) -> tuple[StaticBackend, Clock]:
    clock = Clock(now)
    status = StatusView(A("192.168.0.80"), now, t(13, 49, 54), t(13, 49, 54))
    return StaticBackend(node_a_protocols(**timers), node_a_routes(), status, clock=clock), clock


A_CAPTURES: list[tuple[str, bytes]] = [
    (
        "show protocols",
        (
            b"2002-name     proto    table    state  since       info\n"
            b"1002-kernel1  Kernel   master   up     13:49:54    \n"
            b" device1  Device   master   up     13:49:54    \n"
            b" direct1  Direct   master   up     13:49:54    \n"
            b" static1  Static   master   up     13:49:54    \n"
            b" Mesh_192_168_0_81 BGP      master   up     13:49:56    Established   \n"
            b" Mesh_192_168_0_82 BGP      master   start  13:49:54    Passive       \n"
            b" Mesh_192_168_0_79 BGP      master   start  13:49:54    Connect       Socket: No route to host\n"
            b"0000 \n"
        ),
    ),
    (
        "show protocols all Mesh_192_168_0_81",
        (
            b"2002-name     proto    table    state  since       info\n"
            b"1002-Mesh_192_168_0_81 BGP      master   up     13:49:56    Established   \n"
            b"1006-  Description:    Connection to BGP peer\n"
            b"   Preference:     100\n"
            b"   Input filter:   ACCEPT\n"
            b"   Output filter:  calico_export_to_bgp_peers\n"
            b"   Routes:         3 imported, 2 exported, 2 preferred\n"
            b"   Route change stats:     received   rejected   filtered    ignored   accepted\n"
            b"     Import updates:              3          0          0          0          3\n"
            b"     Import withdraws:            0          0        ---          0          0\n"
            b"     Export updates:              6          3          1        ---          2\n"
            b"     Export withdraws:            0        ---        ---        ---          0\n"
            b"   BGP state:          Established\n"
            b"     Neighbor address: 192.168.0.81\n"
            b"     Neighbor AS:      64512\n"
            b"     Neighbor ID:      192.168.0.81\n"
            b"     Neighbor caps:    refresh enhanced-refresh restart-able llgr-aware AS4 add-path-rx add-path-tx\n"
            b"     Session:          internal multihop AS4 add-path-rx add-path-tx\n"
            b"     Source address:   192.168.0.80\n"
            b"     Hold timer:       225/240\n"
            b"     Keepalive timer:  62/80\n"
            b" \n"
            b"0000 \n"
        ),
    ),
    (
        "show protocols all",
        (
            b"2002-name     proto    table    state  since       info\n"
            b"1002-kernel1  Kernel   master   up     13:49:54    \n"
            b"1006-  Preference:     10\n"
            b"   Input filter:   ACCEPT\n"
            b"   Output filter:  ACCEPT\n"
            b"   Routes:         0 imported, 6 exported, 0 preferred\n"
            b"   Route change stats:     received   rejected   filtered    ignored   accepted\n"
            b"     Import updates:              0          0          0          0          0\n"
            b"     Import withdraws:            0          0        ---          0          0\n"
            b"     Export updates:              8          1          0        ---          7\n"
            b"     Export withdraws:            0        ---        ---        ---          0\n"
            b" \n"
            b"1002-device1  Device   master   up     13:49:54    \n"
            b"1006-  Preference:     240\n"
            b"   Input filter:   ACCEPT\n"
            b"   Output filter:  REJECT\n"
            b"   Routes:         0 imported, 0 exported, 0 preferred\n"
            b"   Route change stats:     received   rejected   filtered    ignored   accepted\n"
            b"     Import updates:              0          0          0          0          0\n"
            b"     Import withdraws:            0          0        ---          0          0\n"
            b"     Export updates:              0          0          0        ---          0\n"
            b"     Export withdraws:            0        ---        ---        ---          0\n"
            b" \n"
            b"1002-direct1  Direct   master   up     13:49:54    \n"
            b"1006-  Preference:     240\n"
            b"   Input filter:   ACCEPT\n"
            b"   Output filter:  REJECT\n"
            b"   Routes:         1 imported, 0 exported, 1 preferred\n"
            b"   Route change stats:     received   rejected   filtered    ignored   accepted\n"
            b"     Import updates:              1          0          0          0          1\n"
            b"     Import withdraws:            0          0        ---          0          0\n"
            b"     Export updates:              0          0          0        ---          0\n"
            b"     Export withdraws:            0        ---        ---        ---          0\n"
            b" \n"
            b"1002-static1  Static   master   up     13:49:54    \n"
            b"1006-  Preference:     200\n"
            b"   Input filter:   ACCEPT\n"
            b"   Output filter:  REJECT\n"
            b"   Routes:         2 imported, 0 exported, 2 preferred\n"
            b"   Route change stats:     received   rejected   filtered    ignored   accepted\n"
            b"     Import updates:              2          0          0          0          2\n"
            b"     Import withdraws:            0          0        ---          0          0\n"
            b"     Export updates:              0          0          0        ---          0\n"
            b"     Export withdraws:            0        ---        ---        ---          0\n"
            b" \n"
            b"1002-Mesh_192_168_0_81 BGP      master   up     13:49:56    Established   \n"
            b"1006-  Description:    Connection to BGP peer\n"
            b"   Preference:     100\n"
            b"   Input filter:   ACCEPT\n"
            b"   Output filter:  calico_export_to_bgp_peers\n"
            b"   Routes:         3 imported, 2 exported, 2 preferred\n"
            b"   Route change stats:     received   rejected   filtered    ignored   accepted\n"
            b"     Import updates:              3          0          0          0          3\n"
            b"     Import withdraws:            0          0        ---          0          0\n"
            b"     Export updates:              6          3          1        ---          2\n"
            b"     Export withdraws:            0        ---        ---        ---          0\n"
            b"   BGP state:          Established\n"
            b"     Neighbor address: 192.168.0.81\n"
            b"     Neighbor AS:      64512\n"
            b"     Neighbor ID:      192.168.0.81\n"
            b"     Neighbor caps:    refresh enhanced-refresh restart-able llgr-aware AS4 add-path-rx add-path-tx\n"
            b"     Session:          internal multihop AS4 add-path-rx add-path-tx\n"
            b"     Source address:   192.168.0.80\n"
            b"     Hold timer:       224/240\n"
            b"     Keepalive timer:  61/80\n"
            b" \n"
            b"1002-Mesh_192_168_0_82 BGP      master   start  13:49:54    Passive       \n"
            b"1006-  Description:    Connection to BGP peer\n"
            b"   Preference:     100\n"
            b"   Input filter:   ACCEPT\n"
            b"   Output filter:  calico_export_to_bgp_peers\n"
            b"   Routes:         0 imported, 0 exported, 0 preferred\n"
            b"   Route change stats:     received   rejected   filtered    ignored   accepted\n"
            b"     Import updates:              0          0          0          0          0\n"
            b"     Import withdraws:            0          0        ---          0          0\n"
            b"     Export updates:              0          0          0        ---          0\n"
            b"     Export withdraws:            0        ---        ---        ---          0\n"
            b"   BGP state:          Passive\n"
            b"     Neighbor address: 192.168.0.82\n"
            b"     Neighbor AS:      64512\n"
            b" \n"
            b"1002-Mesh_192_168_0_79 BGP      master   start  13:49:54    Connect       Socket: No route to host\n"
            b"1006-  Description:    Connection to BGP peer\n"
            b"   Preference:     100\n"
            b"   Input filter:   ACCEPT\n"
            b"   Output filter:  calico_export_to_bgp_peers\n"
            b"   Routes:         0 imported, 0 exported, 0 preferred\n"
            b"   Route change stats:     received   rejected   filtered    ignored   accepted\n"
            b"     Import updates:              0          0          0          0          0\n"
            b"     Import withdraws:            0          0        ---          0          0\n"
            b"     Export updates:              0          0          0        ---          0\n"
            b"     Export withdraws:            0        ---        ---        ---          0\n"
            b"   BGP state:          Connect\n"
            b"     Neighbor address: 192.168.0.79\n"
            b"     Neighbor AS:      64512\n"
            b"     Last error:       Socket: No route to host\n"
            b" \n"
            b"0000 \n"
        ),
    ),
    (
        "show route",
        (
            b"1007-10.244.200.0/26    via 192.168.0.81 on va [Mesh_192_168_0_81 13:49:56] * (100/0) [i]\n"
            b"                    via 192.168.0.81 on va [Mesh_192_168_0_81 13:49:56] (100/0) [i]\n"
            b" 10.244.152.128/26  blackhole [static1 13:49:54] * (200)\n"
            b" 192.168.0.0/24     dev va [direct1 13:49:54] * (240)\n"
            b" 10.244.77.7/32     blackhole [static1 13:49:54] * (200)\n"
            b" 10.244.42.64/26    via 192.168.0.81 on va [Mesh_192_168_0_81 13:49:56] * (100/0) [i]\n"
            b"0000 \n"
        ),
    ),
    (
        "show route all",
        (
            b"1007-10.244.200.0/26    via 192.168.0.81 on va [Mesh_192_168_0_81 13:49:56] * (100/0) [i]\n"
            b"1008-\tType: BGP unicast univ\n"
            b"1012-\tBGP.origin: IGP\n"
            b" \tBGP.as_path: \n"
            b" \tBGP.next_hop: 192.168.0.81\n"
            b" \tBGP.local_pref: 100\n"
            b"1007-                   via 192.168.0.81 on va [Mesh_192_168_0_81 13:49:56] (100/0) [i]\n"
            b"1008-\tType: BGP unicast univ\n"
            b"1012-\tBGP.origin: IGP\n"
            b" \tBGP.as_path: \n"
            b" \tBGP.next_hop: 192.168.0.81\n"
            b" \tBGP.local_pref: 100\n"
            b"1007-10.244.152.128/26  blackhole [static1 13:49:54] * (200)\n"
            b"1008-\tType: static unicast univ\n"
            b"1007-192.168.0.0/24     dev va [direct1 13:49:54] * (240)\n"
            b"1008-\tType: device unicast univ\n"
            b"1007-10.244.77.7/32     blackhole [static1 13:49:54] * (200)\n"
            b"1008-\tType: static unicast univ\n"
            b"1007-10.244.42.64/26    via 192.168.0.81 on va [Mesh_192_168_0_81 13:49:56] * (100/0) [i]\n"
            b"1008-\tType: BGP unicast univ\n"
            b"1012-\tBGP.origin: IGP\n"
            b" \tBGP.as_path: \n"
            b" \tBGP.next_hop: 192.168.0.81\n"
            b" \tBGP.local_pref: 100\n"
            b"0000 \n"
        ),
    ),
    (
        "show route for 10.244.42.65",
        (
            b"1007-10.244.42.64/26    via 192.168.0.81 on va [Mesh_192_168_0_81 13:49:56] * (100/0) [i]\n"
            b"0000 \n"
        ),
    ),
    (
        "show route for 10.244.200.0/26 all",
        (
            b"1007-10.244.200.0/26    via 192.168.0.81 on va [Mesh_192_168_0_81 13:49:56] * (100/0) [i]\n"
            b"1008-\tType: BGP unicast univ\n"
            b"1012-\tBGP.origin: IGP\n"
            b" \tBGP.as_path: \n"
            b" \tBGP.next_hop: 192.168.0.81\n"
            b" \tBGP.local_pref: 100\n"
            b"1007-                   via 192.168.0.81 on va [Mesh_192_168_0_81 13:49:56] (100/0) [i]\n"
            b"1008-\tType: BGP unicast univ\n"
            b"1012-\tBGP.origin: IGP\n"
            b" \tBGP.as_path: \n"
            b" \tBGP.next_hop: 192.168.0.81\n"
            b" \tBGP.local_pref: 100\n"
            b"0000 \n"
        ),
    ),
    ("show route count", (b"0014 6 of 6 routes for 5 networks\n")),
    (
        "show status",
        (
            b"1000-BIRD 1.6.8\n"
            b"1011-Router ID is 192.168.0.80\n"
            b" Current server time is 2026-11-25 13:50:12\n"
            b" Last reboot on 2026-11-25 13:49:54\n"
            b" Last reconfiguration on 2026-11-25 13:49:54\n"
            b"0013 Daemon is up and running\n"
        ),
    ),
    ("foo bar", (b"9001 syntax error\n")),
    ("show protocols nosuch", (b"9002 nosuch is not a protocol\n")),
    ("disable nosuch", (b"9002 nosuch is not a protocol\n")),
    ("show route for 1.2.3.4", (b"8001 Network not in table\n")),
    ("show", (b"9001 syntax error\n")),
    ("show route for bogus", (b"9001 IP address expected\n")),
]

A_ACTIONS_CAPTURES: list[tuple[str, bytes]] = [
    ("disable Mesh_192_168_0_82", (b"0009-Mesh_192_168_0_82: disabled\n0000 \n")),
    ("disable Mesh_192_168_0_82", (b"0008-Mesh_192_168_0_82: already disabled\n0000 \n")),
    (
        "show protocols Mesh_192_168_0_82",
        (
            b"2002-name     proto    table    state  since       info\n"
            b"1002-Mesh_192_168_0_82 BGP      master   down   13:50:34    \n"
            b"0000 \n"
        ),
    ),
    (
        "show protocols all Mesh_192_168_0_82",
        (
            b"2002-name     proto    table    state  since       info\n"
            b"1002-Mesh_192_168_0_82 BGP      master   down   13:50:34    \n"
            b"1006-  Description:    Connection to BGP peer\n"
            b"   Preference:     100\n"
            b"   Input filter:   ACCEPT\n"
            b"   Output filter:  calico_export_to_bgp_peers\n"
            b"   BGP state:          Down\n"
            b"     Neighbor address: 192.168.0.82\n"
            b"     Neighbor AS:      64512\n"
            b" \n"
            b"0000 \n"
        ),
    ),
    ("enable Mesh_192_168_0_82", (b"0011-Mesh_192_168_0_82: enabled\n0000 \n")),
    ("enable Mesh_192_168_0_82", (b"0010-Mesh_192_168_0_82: already enabled\n0000 \n")),
    ("restart Mesh_192_168_0_82", (b"0012-Mesh_192_168_0_82: restarted\n0000 \n")),
    ("reload Mesh_192_168_0_81", (b"0015-Mesh_192_168_0_81: reloading\n0000 \n")),
    (
        'show protocols "Mesh*"',
        (
            b"2002-name     proto    table    state  since       info\n"
            b"1002-Mesh_192_168_0_81 BGP      master   up     13:49:56    Established   \n"
            b" Mesh_192_168_0_82 BGP      master   start  13:50:40    Passive       \n"
            b" Mesh_192_168_0_79 BGP      master   start  13:49:54    Connect       Socket: No route to host\n"
            b"0000 \n"
        ),
    ),
    ('show protocols "zz*"', (b"8003 No protocols match\n")),
    (
        "show route protocol Mesh_192_168_0_81",
        (
            b"1007-10.244.200.0/26    via 192.168.0.81 on va [Mesh_192_168_0_81 13:49:56] * (100/0) [i]\n"
            b"                    via 192.168.0.81 on va [Mesh_192_168_0_81 13:49:56] (100/0) [i]\n"
            b" 10.244.42.64/26    via 192.168.0.81 on va [Mesh_192_168_0_81 13:49:56] * (100/0) [i]\n"
            b"0000 \n"
        ),
    ),
    (
        "show route for 10.244.42.64/26",
        (
            b"1007-10.244.42.64/26    via 192.168.0.81 on va [Mesh_192_168_0_81 13:49:56] * (100/0) [i]\n"
            b"0000 \n"
        ),
    ),
    (
        "show route for 10.244.42.64/27",
        (
            b"1007-10.244.42.64/26    via 192.168.0.81 on va [Mesh_192_168_0_81 13:49:56] * (100/0) [i]\n"
            b"0000 \n"
        ),
    ),
    (
        "show route 10.244.42.64/26",
        (
            b"1007-10.244.42.64/26    via 192.168.0.81 on va [Mesh_192_168_0_81 13:49:56] * (100/0) [i]\n"
            b"0000 \n"
        ),
    ),
    ("show route count", (b"0014 6 of 6 routes for 5 networks\n")),
    ("show route for 10.244.42.64/26 count", (b"0000 \n")),
    ("restart", (b"9001 syntax error\n")),
    ("disable", (b"9001 syntax error\n")),
    (
        "show route all for 10.244.42.65",
        (
            b"1007-10.244.42.64/26    via 192.168.0.81 on va [Mesh_192_168_0_81 13:49:56] * (100/0) [i]\n"
            b"1008-\tType: BGP unicast univ\n"
            b"1012-\tBGP.origin: IGP\n"
            b" \tBGP.as_path: \n"
            b" \tBGP.next_hop: 192.168.0.81\n"
            b" \tBGP.local_pref: 100\n"
            b"0000 \n"
        ),
    ),
    ("show protocols all Mesh_192_168_0_81 extra", (b"9001 syntax error\n")),
    ("help", (b"9001 syntax error\n")),
    (
        "show memory",
        (
            b"1018-BIRD memory usage\n"
            b" Routing tables:     35 kB\n"
            b" Route attributes: 9984  B\n"
            b" ROA tables:        192  B\n"
            b" Protocols:          24 kB\n"
            b" Total:             116 kB\n"
            b"0000 \n"
        ),
    ),
    ("quit", (b"9001 syntax error\n")),
]

B_CAPTURES: list[tuple[str, bytes]] = [
    (
        "show route all for 10.244.77.7",
        (
            b"1007-10.244.77.7/32     via 192.168.0.80 on vb [Mesh_192_168_0_80 13:49:56] * (100/0) [i]\n"
            b"1008-\tType: BGP unicast univ\n"
            b"1012-\tBGP.origin: IGP\n"
            b" \tBGP.as_path: \n"
            b" \tBGP.next_hop: 192.168.0.80\n"
            b" \tBGP.med: 50\n"
            b" \tBGP.local_pref: 100\n"
            b" \tBGP.community: (64512,100)\n"
            b" \tBGP.large_community: (64512, 1, 2)\n"
            b"0000 \n"
        ),
    ),
    (
        "show route",
        (
            b"1007-10.244.200.0/26    blackhole [static1 13:49:53] * (200)\n"
            b"                    via 192.168.0.81 on vb [static_b 13:49:53] (200)\n"
            b" 10.244.152.128/26  via 192.168.0.80 on vb [Mesh_192_168_0_80 13:49:55] * (100/0) [i]\n"
            b" 192.168.0.0/24     dev vb [direct1 13:49:53] * (240)\n"
            b" 10.244.77.7/32     via 192.168.0.80 on vb [Mesh_192_168_0_80 13:49:55] * (100/0) [i]\n"
            b" 10.244.42.64/26    blackhole [static1 13:49:53] * (200)\n"
            b"0000 \n"
        ),
    ),
    (
        "show protocols all Mesh_192_168_0_80",
        (
            b"2002-name     proto    table    state  since       info\n"
            b"1002-Mesh_192_168_0_80 BGP      master   up     13:49:55    Established   \n"
            b"1006-  Description:    Connection to BGP peer\n"
            b"   Preference:     100\n"
            b"   Input filter:   ACCEPT\n"
            b"   Output filter:  calico_export_to_bgp_peers\n"
            b"   Routes:         2 imported, 3 exported, 2 preferred\n"
            b"   Route change stats:     received   rejected   filtered    ignored   accepted\n"
            b"     Import updates:              4          0          0          2          2\n"
            b"     Import withdraws:            4          0        ---          4          0\n"
            b"     Export updates:             12          4          2        ---          6\n"
            b"     Export withdraws:            0        ---        ---        ---          3\n"
            b"   BGP state:          Established\n"
            b"     Neighbor address: 192.168.0.80\n"
            b"     Neighbor AS:      64512\n"
            b"     Neighbor ID:      192.168.0.80\n"
            b"     Neighbor caps:    refresh enhanced-refresh restart-able llgr-aware AS4 add-path-rx add-path-tx\n"
            b"     Session:          internal multihop AS4 add-path-rx add-path-tx\n"
            b"     Source address:   192.168.0.81\n"
            b"     Hold timer:       214/240\n"
            b"     Keepalive timer:  5/80\n"
            b" \n"
            b"0000 \n"
        ),
    ),
]

B_HELPER_CAPTURES: list[tuple[str, bytes]] = [
    (
        "show protocols all Mesh_192_168_0_80",
        (
            b"2002-name     proto    table    state  since       info\n"
            b"1002-Mesh_192_168_0_80 BGP      master   start  13:51:07    Active        Socket: Connection refused\n"
            b"1006-  Description:    Connection to BGP peer\n"
            b"   Preference:     100\n"
            b"   Input filter:   ACCEPT\n"
            b"   Output filter:  calico_export_to_bgp_peers\n"
            b"   Routes:         2 imported, 0 exported, 2 preferred\n"
            b"   Route change stats:     received   rejected   filtered    ignored   accepted\n"
            b"     Import updates:              4          0          0          2          2\n"
            b"     Import withdraws:            4          0        ---          4          0\n"
            b"     Export updates:             12          4          2        ---          6\n"
            b"     Export withdraws:            0        ---        ---        ---          3\n"
            b"   BGP state:          Active\n"
            b"     Neighbor address: 192.168.0.80\n"
            b"     Neighbor AS:      64512\n"
            b"     Neighbor graceful restart active\n"
            b"     Restart timer:    117/-\n"
            b"     Connect delay:    1/2\n"
            b"     Last error:       Socket: Connection refused\n"
            b" \n"
            b"0000 \n"
        ),
    ),
]

A_RECOVERING_CAPTURES: list[tuple[str, bytes]] = [
    (
        "show status",
        (
            b"1000-BIRD 1.6.8\n"
            b"1011-Router ID is 192.168.0.80\n"
            b" Current server time is 2026-11-25 13:51:14\n"
            b" Last reboot on 2026-11-25 13:51:13\n"
            b" Last reconfiguration on 2026-11-25 13:51:13\n"
            b"0024-Graceful restart recovery in progress\n"
            b"   Waiting for 3 protocols to recover\n"
            b"   Wait timer is 239/240\n"
            b"0013 Daemon is up and running\n"
        ),
    ),
    (
        "show protocols",
        (
            b"2002-name     proto    table    state  since       info\n"
            b"1002-kernel1  Kernel   master   wait   13:51:13    \n"
            b" device1  Device   master   up     13:51:13    \n"
            b" direct1  Direct   master   up     13:51:13    \n"
            b" static1  Static   master   up     13:51:13    \n"
            b" Mesh_192_168_0_81 BGP      master   wait   13:51:15    Established   \n"
            b" Mesh_192_168_0_82 BGP      master   start  13:51:13    Passive       \n"
            b" Mesh_192_168_0_79 BGP      master   start  13:51:13    Connect       \n"
            b"0000 \n"
        ),
    ),
    (
        "show protocols all Mesh_192_168_0_81",
        (
            b"2002-name     proto    table    state  since       info\n"
            b"1002-Mesh_192_168_0_81 BGP      master   wait   13:51:15    Established   \n"
            b"1006-  Description:    Connection to BGP peer\n"
            b"   Preference:     100\n"
            b"   Input filter:   ACCEPT\n"
            b"   Output filter:  calico_export_to_bgp_peers\n"
            b"   GR recovery:    waiting\n"
            b"   Routes:         3 imported, 0 exported, 2 preferred\n"
            b"   Route change stats:     received   rejected   filtered    ignored   accepted\n"
            b"     Import updates:              3          0          0          0          3\n"
            b"     Import withdraws:            0          0        ---          0          0\n"
            b"     Export updates:              0          0          0        ---          0\n"
            b"     Export withdraws:            0        ---        ---        ---          0\n"
            b"   BGP state:          Established\n"
            b"     Neighbor address: 192.168.0.81\n"
            b"     Neighbor AS:      64512\n"
            b"     Neighbor ID:      192.168.0.81\n"
            b"     Neighbor caps:    refresh enhanced-refresh restart-able llgr-aware AS4 add-path-rx add-path-tx\n"
            b"     Session:          internal multihop AS4 add-path-rx add-path-tx\n"
            b"     Source address:   192.168.0.80\n"
            b"     Hold timer:       225/240\n"
            b"     Keepalive timer:  60/80\n"
            b" \n"
            b"0000 \n"
        ),
    ),
]


@pytest.mark.parametrize(("command", "expected"), A_CAPTURES, ids=[c for c, _ in A_CAPTURES])
async def test_node_a_replies_match_bird(command: str, expected: bytes) -> None:
    # `show protocols all NAME` was captured one second before `show protocols all`.
    timers = {"hold": 225, "keepalive": 62} if command.endswith("_81") else {}
    backend, clock = node_a(t(13, 50, 12), **timers)
    assert await reply(backend, clock, command) == expected


SUPPORTED_ACTIONS = [
    (c, b) for c, b in A_ACTIONS_CAPTURES if c not in ("reload Mesh_192_168_0_81", "show memory")
]


async def test_action_sequence_matches_bird() -> None:
    """The captured sequence replayed in order: disable, enable, restart change state."""
    backend, clock = node_a(t(13, 50, 34))
    times = {"enable Mesh_192_168_0_82": t(13, 50, 38), "restart Mesh_192_168_0_82": t(13, 50, 40)}
    for command, expected in SUPPORTED_ACTIONS:
        clock.now = times.get(command, clock.now)
        assert await reply(backend, clock, command) == expected, command
    assert ("disable", "Mesh_192_168_0_82") in backend.calls
    assert ("restart", "Mesh_192_168_0_82") in backend.calls


async def test_plain_reload_is_refused_but_reload_in_matches_bird() -> None:
    backend, clock = node_a(t(13, 54, 50))
    got = await reply(backend, clock, "reload in Mesh_192_168_0_81")
    assert got == b"0015-Mesh_192_168_0_81: reloading\n0000 \n"  # captured from BIRD
    assert backend.calls == [("refresh", "Mesh_192_168_0_81")]
    refused = await reply(backend, clock, "reload Mesh_192_168_0_81")
    assert refused.startswith(b"8006 ")


@pytest.mark.parametrize(("command", "expected"), B_CAPTURES, ids=[c for c, _ in B_CAPTURES])
async def test_node_b_replies_match_bird(command: str, expected: bytes) -> None:
    clock = Clock(t(13, 50, 20))
    # BIRD derives wall time from its monotonic clock, so the same route printed 13:49:56
    # in one reply and 13:49:55 in the next; the captures keep that.
    mesh_since = t(13, 49, 56) if "all for" in command else t(13, 49, 55)
    protocols = [
        ProtocolStatus(
            "Mesh_192_168_0_80",
            "BGP",
            ProtoState.UP,
            t(13, 49, 55),
            info="Established",
            description=DESC,
            output_filter=EXPORT,
            routes=RouteCounts(2, 3, 2),
            change_stats=stats((4, 0, 0, 2, 2), (4, 0, 0, 4, 0), (12, 4, 2, 0, 6), (0, 0, 0, 0, 3)),
            bgp=BgpDetails(
                A("192.168.0.80"),
                64512,
                A("192.168.0.80"),
                CAPS,
                SESSION,
                A("192.168.0.81"),
                TimerView(214, 240),
                TimerView(5, 80),
            ),
        )
    ]
    backend = StaticBackend(protocols, node_b_routes(mesh_since), clock=clock)
    assert await reply(backend, clock, command) == expected


async def test_graceful_restart_helper_view_matches_bird() -> None:
    """Node B after node A was killed: peer restarting, routes kept, restart timer."""
    ((command, expected),) = B_HELPER_CAPTURES
    clock = Clock(t(13, 51, 8))
    proto = ProtocolStatus(
        "Mesh_192_168_0_80",
        "BGP",
        ProtoState.START,
        t(13, 51, 7),
        info="Active",
        last_error="Socket: Connection refused",
        description=DESC,
        output_filter=EXPORT,
        routes=RouteCounts(2, 0, 2),
        change_stats=stats((4, 0, 0, 2, 2), (4, 0, 0, 4, 0), (12, 4, 2, 0, 6), (0, 0, 0, 0, 3)),
        bgp=BgpDetails(
            A("192.168.0.80"),
            64512,
            graceful_restart_active=True,
            restart_timer=TimerView(117),
            connect_delay=TimerView(1, 2),
        ),
    )
    backend = StaticBackend([proto], clock=clock)
    assert await reply(backend, clock, command) == expected


async def test_graceful_restart_recovery_views_match_bird() -> None:
    """Node A restarted with `bird -R`: `0024` status lines, `wait` state, GR recovery."""
    boot = t(13, 51, 13)
    clock = Clock(t(13, 51, 14))
    mesh81 = ProtocolStatus(
        "Mesh_192_168_0_81",
        "BGP",
        ProtoState.WAIT,
        t(13, 51, 15),
        info="Established",
        description=DESC,
        output_filter=EXPORT,
        gr_recovery=("waiting",),
        routes=RouteCounts(3, 0, 2),
        change_stats=stats(iu=(3, 0, 0, 0, 3)),
        bgp=BgpDetails(
            A("192.168.0.81"),
            64512,
            A("192.168.0.81"),
            CAPS,
            SESSION,
            A("192.168.0.80"),
            TimerView(225, 240),
            TimerView(60, 80),
        ),
    )
    protocols = [
        ProtocolStatus("kernel1", "Kernel", ProtoState.WAIT, boot),
        ProtocolStatus("device1", "Device", ProtoState.UP, boot),
        ProtocolStatus("direct1", "Direct", ProtoState.UP, boot),
        ProtocolStatus("static1", "Static", ProtoState.UP, boot),
        mesh81,
        ProtocolStatus("Mesh_192_168_0_82", "BGP", ProtoState.START, boot, info="Passive"),
        ProtocolStatus("Mesh_192_168_0_79", "BGP", ProtoState.START, boot, info="Connect"),
    ]
    status = StatusView(
        A("192.168.0.80"),
        clock.now,
        boot,
        boot,
        graceful_restart=GracefulRestartStatus(3, 239, 240),
    )
    backend = StaticBackend(protocols, status=status, clock=clock)
    for command, expected in A_RECOVERING_CAPTURES:
        assert await reply(backend, clock, command) == expected, command


# Replies BIRD printed on their own (one final line each), captured in the same session.
ONE_LINE_REPLIES = [
    ("show route for 10.244.42.65/26", b"9001 Invalid prefix\n"),
    ("show route 10.244.42.65/26", b"9001 Invalid prefix\n"),
    ("show route bogus", b"9001 IP address expected\n"),
    ("show route for 10.244.42.64/33", b"9001 Invalid prefix length 33\n"),
    ("show route for 300.1.1.1", b"9001 Invalid IPv4 address 300.1.1.1\n"),
    ("show route for 10.244.42.65 for 10.244.42.66", b"9001 Only one prefix expected\n"),
    ("show route 10.244.42.64", b"9001 syntax error\n"),
    ("show route protocol nosuch", b"9001 nosuch is not a protocol\n"),
    ("enable Mesh_nosuch", b"9002 Mesh_nosuch is not a protocol\n"),
    ('show protocols all "zz*"', b"8003 No protocols match\n"),
    ("show route for 10.244.42.65 count", b"0000 \n"),
    ("show route count protocol Mesh_192_168_0_81", b"0014 3 of 6 routes for 5 networks\n"),
    ("show route primary count", b"0014 5 of 5 routes for 5 networks\n"),
    ("show route count all", b"0014 6 of 6 routes for 5 networks\n"),
    ("SHOW PROTOCOLS", b"9001 syntax error\n"),
    ("sh pro", b"9001 syntax error\n"),
    ("show protocols Mesh_192_168_0_81 all", b"9001 syntax error\n"),
    ("show protocols all all", b"9001 syntax error\n"),
    ("show protocols Mesh_192_168_0_81 Mesh_192_168_0_82", b"9001 syntax error\n"),
    ("", b"9001 syntax error\n"),
    ("graceful restart now", b"9001 syntax error\n"),
]


@pytest.mark.parametrize(("command", "expected"), ONE_LINE_REPLIES)
async def test_one_line_replies_match_bird(command: str, expected: bytes) -> None:
    backend, clock = node_a(t(13, 55, 0))
    assert await reply(backend, clock, command) == expected


async def test_multi_protocol_actions_collapse_codes_like_bird() -> None:
    backend, clock = node_a(t(13, 55, 0))
    assert await reply(backend, clock, "enable all") == (
        b"0010-kernel1: already enabled\n device1: already enabled\n"
        b" direct1: already enabled\n static1: already enabled\n"
        b" Mesh_192_168_0_81: already enabled\n Mesh_192_168_0_82: already enabled\n"
        b" Mesh_192_168_0_79: already enabled\n0000 \n"
    )
    assert await reply(backend, clock, 'restart "Mesh_192_168_0_8*"') == (
        b"0012-Mesh_192_168_0_81: restarted\n Mesh_192_168_0_82: restarted\n0000 \n"
    )
    assert await reply(backend, clock, 'disable "Mesh_192_168_0_8*"') == (
        b"0009-Mesh_192_168_0_81: disabled\n Mesh_192_168_0_82: disabled\n0000 \n"
    )


async def test_times_older_than_twenty_hours_are_dates() -> None:
    # BIRD's default `timeformat protocol`: "%T" below 20 hours, "%F" from then on.
    backend, clock = node_a(datetime(2026, 11, 26, 9, 49, 55, tzinfo=UTC))  # 19h59m59s
    text = (await reply(backend, clock, "show protocols Mesh_192_168_0_81")).decode()
    assert "   up     13:49:56    Established" in text
    clock.now = datetime(2026, 11, 26, 9, 49, 56, tzinfo=UTC)  # exactly 20 hours
    late = (await reply(backend, clock, "show protocols Mesh_192_168_0_81")).decode()
    assert "   up     2026-11-25  Established" in late
