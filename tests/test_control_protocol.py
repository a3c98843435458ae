# ruff: noqa: E501  (expected tables are wider than 100 columns)
"""The line protocol, the command grammar, and the calicoctl table, without sockets."""

from __future__ import annotations

from datetime import UTC, datetime
from ipaddress import IPv4Address as A
from ipaddress import IPv4Network as N

import pytest
from hypothesis import given
from hypothesis import strategies as st

from speaker.control.calicoctl import (
    CalicoParseError,
    CalicoPeer,
    parse_bird_protocols,
    render_node_status,
    render_table,
)
from speaker.control.commands import (
    Action,
    CommandError,
    GracefulRestart,
    ShowKernel,
    ShowProtocols,
    ShowRoute,
    ShowStatus,
    Target,
    parse_command,
)
from speaker.control.protocol import Reply, ReplyLine, ReplyParser, encode_reply
from speaker.control.render import BirdRenderer, bgp_attr_lines, group_routes
from speaker.control.views import BgpAttrs, NextHop, RouteKind, RouteView, longest_match

# --------------------------------------------------------------------------- line protocol


def test_encoding_collapses_repeated_codes_and_ends_with_a_space() -> None:
    lines = [
        ReplyLine(2002, "head"),
        ReplyLine(1002, "a"),
        ReplyLine(1002, "b"),
        ReplyLine(1006, "x"),
        ReplyLine(1002, "c"),
        ReplyLine(0, ""),
    ]
    assert encode_reply(lines) == b"2002-head\n1002-a\n b\n1006-x\n1002-c\n0000 \n"
    assert encode_reply([ReplyLine(14, "6 of 6 routes for 5 networks")]) == (
        b"0014 6 of 6 routes for 5 networks\n"
    )
    # A final line never collapses, even with the code of the line before.
    assert encode_reply([ReplyLine(13, "a"), ReplyLine(13, "b")]) == b"0013-a\n0013 b\n"
    # Newlines inside a text become lines of the same code.
    assert encode_reply([ReplyLine(1006, "a\nb"), ReplyLine(0, "")]) == b"1006-a\n b\n0000 \n"
    with pytest.raises(ValueError):
        encode_reply([])
    with pytest.raises(ValueError):
        encode_reply([ReplyLine(10000, "x")])


texts = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\n\r"), max_size=20)
codes = st.sampled_from([0, 1, 8, 13, 14, 24, 1002, 1006, 1007, 1008, 1012, 2002, 8001, 9001])


@given(st.lists(st.tuples(codes, texts), min_size=1, max_size=12))
def test_parser_reads_back_what_the_encoder_wrote(pairs: list[tuple[int, str]]) -> None:
    lines = [ReplyLine(c, t) for c, t in pairs]
    data = encode_reply(lines)
    parser = ReplyParser()
    replies: list[Reply] = []
    for i in range(0, len(data), 7):  # in arbitrary chunks
        replies.extend(parser.feed(data[i : i + 7]))
    assert len(replies) == 1
    assert list(replies[0].lines) == lines
    assert "\n".join(replies[0].raw) + "\n" == data.decode()


def test_parser_keeps_async_messages_apart_and_refuses_garbage() -> None:
    parser = ReplyParser()
    (reply,) = parser.feed(b"+0023 async\n1002-x\n y\n0000 \n")
    assert parser.async_messages == ["0023 async"]
    assert reply.texts() == ["x", "y"]
    assert reply.ok and reply.error == ""
    with pytest.raises(ValueError, match="continuation"):
        ReplyParser().feed(b" orphan\n")
    with pytest.raises(ValueError, match="not a BIRD reply line"):
        ReplyParser().feed(b"hello\n")
    failed = ReplyParser().feed(b"8006-X: reload failed\n0000 \n")[0]
    assert not failed.ok and failed.error == "X: reload failed" and failed.code == 0


# --------------------------------------------------------------------------- grammar


@pytest.mark.parametrize(
    ("line", "command", "as_json"),
    [
        ("show protocols", ShowProtocols(False, None), False),
        ("show protocols all", ShowProtocols(True, None), False),
        ("show protocols all Mesh_1", ShowProtocols(True, Target(name="Mesh_1")), False),
        ('show protocols "Mesh*"', ShowProtocols(False, Target(pattern="Mesh*")), False),
        ("  show   status  ", ShowStatus(), False),
        ("show kernel", ShowKernel(), False),
        ("json show kernel", ShowKernel(), True),
        ("show route", ShowRoute(), False),
        ("show route all for 10.0.0.1", ShowRoute(verbose=True, for_addr=N("10.0.0.1/32")), False),
        ("show route for 10.0.0.0/8 all", ShowRoute(verbose=True, for_addr=N("10.0.0.0/8")), False),
        ("show route 10.0.0.0/8 count", ShowRoute(count=True, exact=N("10.0.0.0/8")), False),
        ("show route primary protocol Mesh_1", ShowRoute(primary=True, protocol="Mesh_1"), False),
        ("enable Mesh_1", Action("enable", Target(name="Mesh_1")), False),
        ("disable all", Action("disable", Target(every=True)), False),
        ('restart "M?sh_*"', Action("restart", Target(pattern="M?sh_*")), False),
        ("refresh Mesh_1", Action("refresh", Target(name="Mesh_1")), False),
        ("reload in Mesh_1", Action("refresh", Target(name="Mesh_1")), False),
        ("graceful restart", GracefulRestart(), False),
        ("graceful-restart", GracefulRestart(), False),
        ("json enable Mesh_1", Action("enable", Target(name="Mesh_1")), True),
    ],
)
def test_commands_parse(line: str, command: object, as_json: bool) -> None:
    request = parse_command(line)
    assert request.command == command
    assert request.json is as_json


@pytest.mark.parametrize(
    ("line", "code", "text"),
    [
        ("show", 9001, "syntax error"),
        ("show routes", 9001, "syntax error"),
        ("enable", 9001, "syntax error"),
        ("enable a b", 9001, "syntax error"),
        ("enable Mesh-1", 9001, "syntax error"),
        ('show protocols "unterminated', 9001, "Unterminated string"),
        ("show route for", 9001, "syntax error"),
        ("show route for x.y", 9001, "IP address expected"),
        ("show route for 1.2.3.256", 9001, "Invalid IPv4 address 1.2.3.256"),
        ("show route protocol", 9001, "syntax error"),
        ("show status now", 9001, "syntax error"),
        ("reload Mesh_1", 8006, "only `reload in NAME`"),
        ("reload out Mesh_1", 8006, "reload out is not supported"),
        ("graceful", 9001, "syntax error"),
        ("json", 9001, "syntax error"),
        ('"show" status', 9001, "syntax error"),
    ],
)
def test_bad_commands_get_bird_errors(line: str, code: int, text: str) -> None:
    with pytest.raises(CommandError) as info:
        parse_command(line)
    assert info.value.code == code
    assert text in info.value.text


def test_patterns_are_bird_patmatch() -> None:
    t = Target(pattern="Mesh_192_168_0_8?")
    assert t.matches("Mesh_192_168_0_81") and not t.matches("Mesh_192_168_0_8")
    assert Target(pattern="*").matches("anything")
    assert not Target(pattern="Mesh.1").matches("Mesh_1")  # "." is not special
    assert Target(every=True).matches("x") and Target(name="x").matches("x")


# --------------------------------------------------------------------------- routes


def route(prefix: str, proto: str = "p", primary: bool = False, **kw: object) -> RouteView:
    return RouteView(N(prefix), proto, datetime(2026, 1, 1, tzinfo=UTC), primary=primary, **kw)  # type: ignore[arg-type]


def test_longest_match_and_grouping() -> None:
    routes = [
        route("10.0.0.0/8"),
        route("10.244.0.0/16"),
        route("10.244.42.64/26", "a"),
        route("10.244.42.64/26", "b", primary=True),
        route("0.0.0.0/0"),
    ]
    best = longest_match(routes, N("10.244.42.65/32"))
    assert [r.protocol for r in best] == ["a", "b"]
    assert [r.prefix for r in longest_match(routes, N("10.1.0.0/16"))] == [N("10.0.0.0/8")]
    assert [r.prefix for r in longest_match(routes, N("11.0.0.0/8"))] == [N("0.0.0.0/0")]
    assert longest_match(routes[:3], N("11.0.0.0/8")) == []
    grouped = group_routes([routes[2], routes[0], routes[3]])
    assert [(str(r.prefix), r.protocol) for r in grouped] == [
        ("10.244.42.64/26", "b"),
        ("10.244.42.64/26", "a"),
        ("10.0.0.0/8", "p"),
    ]


def test_route_rendering_details() -> None:
    r = BirdRenderer(datetime(2026, 1, 1, 0, 5, tzinfo=UTC), UTC)
    attrs = BgpAttrs(
        "Incomplete",
        (65001, 65002),
        A("10.0.0.2"),
        None,
        None,
        atomic_aggregate=True,
        aggregator=(65002, A("10.0.0.9")),
        originator_id=A("1.1.1.1"),
        cluster_list=(A("2.2.2.2"), A("3.3.3.3")),
    )
    multi = route(
        "10.9.0.0/16",
        "Mesh_x",
        primary=True,
        kind=RouteKind.MULTIPATH,
        nexthops=(NextHop(A("10.0.0.2"), "eth0"), NextHop(A("10.0.0.3"), "eth1", 2)),
        bgp=attrs,
        from_address=A("10.0.0.7"),
        sync_error=True,
        igp_metric=None,
    )
    lines = r.route_lines([multi], verbose=True)
    assert [ln.text for ln in lines] == [
        "10.9.0.0/16        multipath [Mesh_x 00:00:00 from 10.0.0.7] ! (100) [AS65002?]",
        "\tvia 10.0.0.2 on eth0 weight 1",
        "\tvia 10.0.0.3 on eth1 weight 2",
        "\tType: BGP unicast univ",
        "\tBGP.origin: Incomplete",
        "\tBGP.as_path: 65001 65002",
        "\tBGP.next_hop: 10.0.0.2",
        "\tBGP.atomic_aggr: ",
        "\tBGP.aggregator: 10.0.0.9 AS65002",
        "\tBGP.originator_id: 1.1.1.1",
        "\tBGP.cluster_list: 2.2.2.2 3.3.3.3",
    ]
    assert [ln.code for ln in lines][:4] == [1007, 1007, 1007, 1008]
    plain = route("10.1.0.0/16", "static1", kind=RouteKind.UNREACHABLE, preference=200)
    assert r.route_line(plain, "10.1.0.0/16") == (
        "10.1.0.0/16        unreachable [static1 00:00:00] (200)"
    )
    assert bgp_attr_lines(BgpAttrs(communities=((1, 2), (3, 4))))[-1] == (
        "BGP.community: (1,2) (3,4)"
    )


# --------------------------------------------------------------------------- calicoctl

SEED_TABLE = """\
Calico process is running.

IPv4 BGP status
+--------------+-------------------+-------+----------+-------------+
| PEER ADDRESS |     PEER TYPE     | STATE |  SINCE   |    INFO     |
+--------------+-------------------+-------+----------+-------------+
| 192.168.0.81 | node-to-node mesh | up    | 13:17:26 | Established |
| 192.168.0.82 | node-to-node mesh | up    | 13:17:26 | Established |
+--------------+-------------------+-------+----------+-------------+

IPv6 BGP status
No IPv6 peers found.

"""


def test_seed_calicoctl_output_is_reproduced() -> None:
    """The seed article's `calicoctl node status` on 192.168.0.80, from BIRD's bytes."""
    bird = [
        "0001 BIRD v0.3.3+birdv1.6.8 ready.",
        "2002-name     proto    table    state  since       info",
        "1002-static1  Static   master   up     13:17:25    ",
        " kernel1  Kernel   master   up     13:17:25    ",
        " Mesh_192_168_0_81 BGP      master   up     13:17:26    Established   ",
        " Mesh_192_168_0_82 BGP      master   up     13:17:26    Established   ",
        "0000 ",
    ]
    assert render_node_status(parse_bird_protocols(bird)) == SEED_TABLE


def test_long_info_wraps_like_tablewriter() -> None:
    """Real calicoctl output (public troubleshooting notes): INFO wraps at 30 columns."""
    table = render_table(
        ["Peer address", "Peer type", "State", "Since", "Info"],
        [
            [
                "192.168.13.220",
                "node-to-node mesh",
                "start",
                "08:57:08",
                "Active Socket: Connection refused",
            ],
            ["192.168.13.221", "node-to-node mesh", "up", "2023-09-21", "Established"],
            [
                "10.2.7.200",
                "node-to-node mesh",
                "start",
                "02:04:22",
                "Idle Socket: Connection closed",
            ],
        ],
    )
    assert table == (
        "+----------------+-------------------+-------+------------+--------------------------------+\n"
        "|  PEER ADDRESS  |     PEER TYPE     | STATE |   SINCE    |              INFO              |\n"
        "+----------------+-------------------+-------+------------+--------------------------------+\n"
        "| 192.168.13.220 | node-to-node mesh | start | 08:57:08   | Active Socket: Connection      |\n"
        "|                |                   |       |            | refused                        |\n"
        "| 192.168.13.221 | node-to-node mesh | up    | 2023-09-21 | Established                    |\n"
        "| 10.2.7.200     | node-to-node mesh | start | 02:04:22   | Idle Socket: Connection closed |\n"
        "+----------------+-------------------+-------+------------+--------------------------------+\n"
    )


def test_numbers_are_right_aligned_like_tablewriter() -> None:
    table = render_table(["a", "b"], [["1", "x"], ["12345", "yy"]])
    assert table.splitlines()[3] == "|     1 | x  |"


def test_calicoctl_parse_rules() -> None:
    lines = [
        "2002-name     proto    table    state  since       info",
        "1002-Node_10_1_1_1 BGP master up 2026-01-01 Established",
        " Global_10_2_2_2 BGP master start 10:00:00 Connect Socket: No route to host",
        " Mesh_fd00__1 BGP master start 10:00:00 Idle",
        " Mesh_10_3_3_3 Static master up 10:00:00",
        " Meshy_10_4_4_4 BGP master up 10:00:00 Established",
        " Mesh_10_5_5_5 BGP master up",
        "0000 ",
    ]
    peers = parse_bird_protocols(lines)
    assert peers == [
        CalicoPeer("10.1.1.1", "node specific", "up", "2026-01-01", "Established"),
        CalicoPeer(
            "10.2.2.2", "global", "start", "10:00:00", "Connect", "Socket: No route to host"
        ),
        CalicoPeer("fd00..1", "node-to-node mesh", "start", "10:00:00", "Idle"),
    ]
    assert parse_bird_protocols(lines, ip_version=6)[2].peer_address == "fd00::1"
    with pytest.raises(CalicoParseError, match="unknown BIRD table output format"):
        parse_bird_protocols(["2002-name proto table state since"])
    with pytest.raises(CalicoParseError, match="unexpected output line"):
        parse_bird_protocols(["9001 syntax error"])
    assert render_node_status([]).splitlines()[3] == "No IPv4 peers found."
