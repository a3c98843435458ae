"""Route limits per peer (BIRD 1.6 ``receive limit`` / ``import limit``) through the core.

A scripted BIRD peer (:mod:`tests.corenet`) announces more routes than the limit allows; each
action is checked end to end: what the RIB and the kernel hold, the NOTIFICATION the peer
receives (Cease 6/1 with the RFC 4486 data), and what the session does next.
"""

from __future__ import annotations

from speaker.config import parse_config
from speaker.core.limits import RouteLimitHit
from speaker.session import SessionDown, State
from speaker.wire.enums import Afi, CeaseSubcode, ErrorCode, Safi
from tests.corenet import CoreNet, update

A = "192.168.0.80"


def limit_net(*peer_lines: str) -> tuple[CoreNet, str]:
    text = (
        'router_id = "192.168.0.81"\nasn = 64512\n'
        '[originate]\nblocks = ["10.244.81.0/26"]\n[pools]\ncidrs = ["10.244.0.0/16"]\n'
        f'[[peer]]\naddress = "{A}"\n' + "".join(f"{line}\n" for line in peer_lines)
    )
    net = CoreNet(parse_config(text, "node81.toml"))
    name = net.config.peers[0].name
    net.start()
    net.run_until(lambda: net.established(name))
    return net, name


def routes(first: int, n: int) -> list[str]:
    return [f"10.244.{i // 64}.{(i % 64) * 4}/30" for i in range(first, first + n)]


def announce(net: CoreNet, name: str, prefixes: list[str]) -> None:
    net.remotes[name].send_update(update(*prefixes, via=A))
    net.pump()


def held(net: CoreNet, name: str) -> int:
    return len(net.core.rib.adj_in(name))


def test_warn_keeps_every_route_and_reports_once_per_crossing() -> None:
    net, a = limit_net("receive_limit = 5", 'receive_limit_action = "warn"')
    announce(net, a, routes(0, 8))
    assert held(net, a) == 8
    assert net.kernel.hops("10.244.0.28/30") == (A,)
    (hit,) = net.of(RouteLimitHit)
    assert (hit.direction, hit.limit, hit.action, hit.count) == ("receive", 5, "warn", 5)
    assert "Protocol Mesh_192_168_0_80 hits route receive limit (5), action: warn" in (
        hit.describe()
    )
    announce(net, a, routes(8, 2))  # beyond the limit already: no new report
    assert len(net.of(RouteLimitHit)) == 1
    assert net.established(a)


def test_block_ignores_new_routes_but_updates_of_held_ones_pass() -> None:
    net, a = limit_net("import_limit = 3", 'import_limit_action = "block"')
    announce(net, a, routes(0, 5))
    assert held(net, a) == 3
    assert net.kernel.hops(routes(3, 1)[0]) is None  # the 4th never reached the RIB
    # a held route with new attributes still passes; a withdrawal makes room, but the block
    # stays until the session restarts (BIRD)
    net.remotes[a].send_update(update(routes(0, 1)[0], via="192.168.0.82"))
    net.pump()
    assert net.kernel.hops(routes(0, 1)[0]) == ("192.168.0.82",)
    net.remotes[a].send_update(update(via=A, withdraw=tuple(routes(1, 1))))
    net.pump()
    announce(net, a, routes(10, 1))
    assert held(net, a) == 2
    assert net.established(a)
    (hit,) = net.of(RouteLimitHit)
    assert hit.direction == "import" and hit.action == "block"


def test_restart_sends_cease_6_1_with_afi_safi_and_limit_then_comes_back() -> None:
    net, a = limit_net("receive_limit = 4", 'receive_limit_action = "restart"')
    announce(net, a, routes(0, 6))
    # the peer received Cease / Maximum Number of Prefixes Reached with RFC 4486 data
    downs = [e for e in net.remote_of(a, SessionDown) if e.notification is not None]
    note = downs[-1].notification
    assert note is not None
    assert (note.code, note.subcode) == (ErrorCode.CEASE, CeaseSubcode.MAXIMUM_PREFIXES_REACHED)
    assert note.max_prefixes == (Afi.IPV4, Safi.UNICAST, 4)
    assert note.data == bytes.fromhex("0001" "01" "00000004")
    session = net.core.peer(a).session
    assert session.last_error == "Automatic shutdown: Route limit exceeded"
    assert session.state is State.IDLE  # error wait first
    assert net.kernel.hops(routes(0, 1)[0]) is None  # the peer's routes went with it
    assert net.core.peer(a).enabled
    # after the error wait (5 s) and the connect delay, the session is back, limits reset
    net.run_until(lambda: net.established(a), max_ms=60_000)
    assert not any(s.hit for s in net.core.peer(a).limits)
    announce(net, a, routes(0, 3))
    assert held(net, a) == 3


def test_disable_sends_cease_and_stays_down_until_enable() -> None:
    net, a = limit_net("import_limit = 2")  # BIRD's default action: disable
    announce(net, a, routes(0, 3))
    record = net.core.peer(a)
    assert not record.enabled
    note = [e for e in net.remote_of(a, SessionDown) if e.notification is not None][-1].notification
    assert note is not None and note.max_prefixes == (Afi.IPV4, Safi.UNICAST, 2)
    net.advance(120_000)
    assert record.session.state is State.IDLE  # no automatic restart
    assert net.core.enable(a, net.now)
    net.run_until(lambda: net.established(a), max_ms=60_000)


def test_receive_limit_is_checked_before_import_limit() -> None:
    net, a = limit_net(
        "receive_limit = 3", 'receive_limit_action = "block"',
        "import_limit = 5", 'import_limit_action = "disable"',
    )
    announce(net, a, routes(0, 8))
    assert held(net, a) == 3
    assert net.core.peer(a).enabled  # the import limit never saw a route beyond 3
    assert [h.direction for h in net.of(RouteLimitHit)] == ["receive"]


def test_withdrawals_in_the_same_update_make_room_first() -> None:
    net, a = limit_net("receive_limit = 3", 'receive_limit_action = "disable"')
    announce(net, a, routes(0, 3))
    net.remotes[a].send_update(update(*routes(3, 2), via=A, withdraw=tuple(routes(0, 2))))
    net.pump()
    assert net.core.peer(a).enabled and held(net, a) == 3
