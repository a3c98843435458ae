"""The speaker core, whole scenarios with a fake clock: no sockets, no netlink, no sleeps.

Each test runs a :class:`SpeakerCore` against scripted BIRD peers (:mod:`tests.corenet`):
start-up and convergence, graceful restart on both sides, route refresh, commands and
reconfiguration.
"""

from __future__ import annotations

from ipaddress import IPv4Network

import pytest

from speaker.config import parse_config
from speaker.core import CoreError, DaemonEvent, RecoveryEvent
from speaker.core.events import ConnectionRefused, RefusalsSuppressed
from speaker.rib import RouteChange
from speaker.session import (
    EndOfRib,
    RouteRefreshReceived,
    SessionDown,
    SessionUp,
    UpdateReceived,
)
from speaker.wire.capabilities import GracefulRestartCapability, GracefulRestartFlags
from speaker.wire.context import IPV4_UNICAST
from speaker.wire.enums import CeaseSubcode, RouteRefreshSubtype
from speaker.wire.messages import Open
from speaker.wire.nlri import Prefix
from tests.corenet import CoreNet, update

A = "192.168.0.80"
B = "192.168.0.82"
BLOCK = "10.244.81.0/26"


def config_text(*peers: str, extra: str = "", wait: int = 30) -> str:
    text = (
        f'router_id = "192.168.0.81"\nasn = 64512\ngraceful_restart_wait = {wait}\n{extra}\n'
        f'[originate]\nblocks = ["{BLOCK}"]\n[pools]\ncidrs = ["10.244.0.0/16"]\n'
        '[kernel]\nreject_cidrs = ["10.96.0.0/12"]\n'
    )
    for p in peers:
        text += f'[[peer]]\naddress = "{p}"\n'
    return text


def make_net(*peers: str, restarting: bool = False, **kw: int) -> CoreNet:
    return CoreNet(parse_config(config_text(*peers, **kw), "node81.toml"), restarting=restarting)


def name_of(net: CoreNet, address: str) -> str:
    return next(p.name for p in net.config.peers if str(p.address) == address)


def feed(net: CoreNet, name: str, *prefixes: str, via: str, eor: bool = True) -> None:
    """The peer sends routes (and End-of-RIB)."""
    remote = net.remotes[name]
    if prefixes:
        remote.send_update(update(*prefixes, via=via))
    if eor:
        remote.send_end_of_rib(IPV4_UNICAST)
    net.pump()


def restart_flag(open_msg: Open) -> bool:
    caps = [c for c in open_msg.capabilities if isinstance(c, GracefulRestartCapability)]
    return bool(caps and caps[0].flags & GracefulRestartFlags.RESTART)


# -------------------------------------------------------------- start-up and convergence


def test_cold_start_programs_routes_and_converges_after_every_end_of_rib() -> None:
    net = make_net(A, B)
    a, b = name_of(net, A), name_of(net, B)
    net.start()
    net.run_until(lambda: net.established(a, b))
    assert net.kernel.hops(BLOCK) == ("blackhole",)  # our own block (Calico's bird_aggr)
    # not recovering: our routes go out at once, with End-of-RIB
    assert net.received(a) == {BLOCK}
    assert net.remote_of(a, EndOfRib)
    feed(net, a, "10.244.80.0/26", via=A)
    assert net.kernel.hops("10.244.80.0/26") == (A,)
    assert net.kernel.converged_calls == 0  # b has not sent End-of-RIB yet
    assert net.received(b) == {BLOCK}  # a's iBGP route is not reflected to b
    feed(net, b, "10.244.82.0/26", "10.244.80.0/26", via=B)
    assert net.kernel.converged_calls >= 1
    # ECMP: two iBGP paths for one prefix become one multipath kernel route
    assert set(net.kernel.hops("10.244.80.0/26") or ()) == {A, B}


def test_a_reads_worth_of_updates_reaches_the_kernel_in_one_batch_before_convergence() -> None:
    """UPDATEs that arrive together become one KernelPort.apply; an End-of-RIB in the same
    read is handled after their routes reached the kernel, so convergence (which sweeps what
    is not wanted) sees them all."""
    net = make_net(A)
    a = name_of(net, A)
    net.start()
    net.run_until(lambda: net.established(a))
    remote = net.remotes[a]
    blocks = [f"10.244.{i}.0/26" for i in range(90, 95)]
    for prefix in blocks:  # one UPDATE each, all in one read
        remote.send_update(update(prefix, via=A))
    remote.send_end_of_rib(IPV4_UNICAST)
    before = len(net.kernel.batches)
    net.pump()
    assert net.kernel.batches[before:] == [len(blocks)]
    assert all(net.kernel.hops(p) == (A,) for p in blocks)
    assert net.kernel.converged_calls == 1
    assert net.kernel.converged_at == [len(net.kernel.log)]  # after every want
    assert [e.prefix for e in net.events if isinstance(e, RouteChange)][-len(blocks):] == [
        Prefix.parse(p) for p in blocks
    ]


def test_reject_cidr_never_reaches_the_kernel_and_a_withdrawal_unwants() -> None:
    net = make_net(A)
    a = name_of(net, A)
    net.start()
    net.run_until(lambda: net.established(a))
    feed(net, a, "10.96.0.10/32", "10.244.80.0/26", via=A)
    assert net.kernel.hops("10.96.0.10/32") is None  # Calico's kernel filter
    assert ("want", IPv4Network("10.96.0.10/32")) not in net.kernel.log
    net.remotes[a].send_update(update(via=A, withdraw=("10.244.80.0/26",)))
    net.pump()
    assert net.kernel.hops("10.244.80.0/26") is None


def test_disabling_a_silent_peer_lets_the_kernel_converge() -> None:
    net = make_net(A, B)
    a, b = name_of(net, A), name_of(net, B)
    net.start()
    net.run_until(lambda: net.established(a, b))
    feed(net, a, via=A)
    assert net.kernel.converged_calls == 0
    assert net.core.disable(b, net.now) is True
    net.pump()
    assert net.kernel.converged_calls == 1
    assert net.core.disable(b, net.now) is False  # already
    ceases = [e for e in net.remote_of(b, SessionDown) if e.notification is not None]
    assert ceases and ceases[-1].notification.subcode == CeaseSubcode.ADMINISTRATIVE_SHUTDOWN
    assert net.core.enable(b, net.now) is True
    net.run_until(lambda: net.established(a, b))


# -------------------------------------------------------------- graceful restart, our side


def test_we_restart_and_wait_for_end_of_rib_before_announcing() -> None:
    net = make_net(A, B, restarting=True)
    a, b = name_of(net, A), name_of(net, B)
    net.start(adopted=3)
    assert [e.active for e in net.of(RecoveryEvent)] == [True]
    net.run_until(lambda: net.established(a, b))
    ups = net.remote_of(a, SessionUp)
    assert restart_flag(ups[-1].info.remote_open)  # our OPEN carried the R flag
    assert net.received(a) == set()  # deferred while recovering
    awaited, left, total = net.core.recovery_status(net.now) or (0, 0, 0)
    assert (awaited, total) == (2, 30) and 25 <= left < 30
    feed(net, a, "10.244.80.0/26", via=A)
    assert net.received(b) == set()
    assert net.kernel.converged_calls == 0  # no sweep while we recover
    feed(net, b, via=B)
    assert [e.active for e in net.of(RecoveryEvent)] == [True, False]
    assert net.received(a) == {BLOCK} and net.received(b) == {BLOCK}
    assert net.remote_of(a, EndOfRib) and net.remote_of(b, EndOfRib)
    assert net.kernel.converged_calls == 1
    assert net.core.recovery_status(net.now) is None
    # a later flap is not a restart: the next OPEN has no R flag
    net.crash_remote(a)
    net.remotes[a].stop(net.now)
    net.add_remote(a).start(net.now)
    net.run_until(lambda: net.established(a))
    assert not restart_flag(net.remote_of(a, SessionUp)[-1].info.remote_open)


def test_we_restart_and_the_wait_ends_recovery_when_a_peer_stays_silent() -> None:
    net = make_net(A, B, restarting=True, wait=20)
    a, b = name_of(net, A), name_of(net, B)
    net.start()
    net.run_until(lambda: net.established(a, b))
    feed(net, a, via=A)
    assert net.core.recovery_status(net.now) is not None
    net.run_until(lambda: not net.core.recovery.active, max_ms=25_000)
    assert net.ms >= 20_000
    ended = net.of(RecoveryEvent)[-1]
    assert not ended.active and "wait of 20 s elapsed" in ended.cause
    assert net.received(a) == {BLOCK} and net.received(b) == {BLOCK}
    assert net.kernel.converged_calls == 1


def test_cold_start_is_not_a_restart() -> None:
    net = make_net(A)
    net.start(adopted=0)
    assert net.of(RecoveryEvent) == []
    assert net.core.recovery_status(net.now) is None


# -------------------------------------------------------------- graceful restart, the peer's


def test_peer_restart_keeps_its_routes_stale_then_sweeps_at_end_of_rib() -> None:
    net = make_net(A, B)
    a, b = name_of(net, A), name_of(net, B)
    net.start()
    net.run_until(lambda: net.established(a, b))
    feed(net, a, "10.244.80.0/26", "10.244.80.64/26", via=A)
    feed(net, b, via=B)
    net.crash_remote(a)  # TCP gone, no NOTIFICATION: a graceful restart (RFC 4724 4.2)
    down = [e for e in net.of(SessionDown) if e.graceful]
    assert down
    # forwarding survives: the routes stay in the kernel, stale
    assert net.kernel.hops("10.244.80.0/26") == (A,)
    assert net.kernel.hops("10.244.80.64/26") == (A,)
    net.add_remote(a, restarting=True, forwarding_preserved=True).start(net.now)
    net.run_until(lambda: net.established(a))
    assert net.kernel.hops("10.244.80.64/26") == (A,)  # still stale before its End-of-RIB
    feed(net, a, "10.244.80.0/26", via=A)  # one route back, then End-of-RIB
    assert net.kernel.hops("10.244.80.0/26") == (A,)
    assert net.kernel.hops("10.244.80.64/26") is None  # swept
    # the restarted peer got our routes again
    assert net.received(a) == {BLOCK}


def test_peer_that_never_comes_back_is_swept_when_its_restart_timer_ends() -> None:
    net = make_net(A)
    a = name_of(net, A)
    net.start()
    net.run_until(lambda: net.established(a))
    feed(net, a, "10.244.80.0/26", via=A)
    net.crash_remote(a)
    net.reachable[a] = False
    net.remotes[a].stop(net.now)
    net.pump()
    assert net.kernel.hops("10.244.80.0/26") == (A,)
    net.advance(121_000)  # restart time 120 s
    assert net.kernel.hops("10.244.80.0/26") is None


# -------------------------------------------------------------- route refresh


def test_route_refresh_is_answered_between_borr_and_eorr() -> None:
    net = make_net(A)
    a = name_of(net, A)
    net.start()
    net.run_until(lambda: net.established(a))
    before = len(net.remote_of(a, UpdateReceived))
    net.remotes[a].send_route_refresh(IPV4_UNICAST)
    net.pump()
    subtypes = [e.subtype for e in net.remote_of(a, RouteRefreshReceived)]
    assert subtypes == [RouteRefreshSubtype.BORR, RouteRefreshSubtype.EORR]
    again = net.remote_of(a, UpdateReceived)[before:]
    assert {str(n.prefix) for e in again for n in e.update.nlri} == {BLOCK}


def test_refresh_during_our_recovery_waits_for_the_feed() -> None:
    net = make_net(A, B, restarting=True)
    a, b = name_of(net, A), name_of(net, B)
    net.start()
    net.run_until(lambda: net.established(a, b))
    net.remotes[a].send_route_refresh(IPV4_UNICAST)
    net.pump()
    assert net.remote_of(a, RouteRefreshReceived) == []  # no feed yet: nothing to repeat
    assert net.received(a) == set()
    feed(net, a, via=A)
    feed(net, b, via=B)
    assert net.received(a) == {BLOCK}  # the initial feed answers it


def test_peer_enhanced_refresh_sweeps_what_it_did_not_repeat() -> None:
    net = make_net(A)
    a = name_of(net, A)
    net.start()
    net.run_until(lambda: net.established(a))
    feed(net, a, "10.244.80.0/26", "10.244.80.64/26", via=A)
    remote = net.remotes[a]
    remote.send_route_refresh(IPV4_UNICAST, RouteRefreshSubtype.BORR)
    remote.send_update(update("10.244.80.0/26", via=A))
    remote.send_route_refresh(IPV4_UNICAST, RouteRefreshSubtype.EORR)
    net.pump()
    assert net.kernel.hops("10.244.80.0/26") == (A,)
    assert net.kernel.hops("10.244.80.64/26") is None


def test_refresh_command_needs_an_established_session() -> None:
    net = make_net(A)
    a = name_of(net, A)
    net.start(remotes=False)
    with pytest.raises(CoreError, match="not established"):
        net.core.request_refresh(a, net.now)
    with pytest.raises(CoreError, match="not a BGP peer"):
        net.core.request_refresh("nobody", net.now)
    net.remotes[a].start(net.now)
    net.run_until(lambda: net.established(a))
    net.core.request_refresh(a, net.now)
    net.pump()
    assert [e.subtype for e in net.of(RouteRefreshReceived)] == []
    assert any(
        e.subtype is RouteRefreshSubtype.NORMAL for e in net.remote_of(a, RouteRefreshReceived)
    )


# -------------------------------------------------------------- reconfiguration and stop


def test_reload_adds_and_removes_peers() -> None:
    net = make_net(A)
    a = name_of(net, A)
    net.start()
    net.run_until(lambda: net.established(a))
    feed(net, a, "10.244.80.0/26", via=A)
    new = parse_config(config_text(B), "node81.toml")
    assert net.core.reconfigure(new, net.now) is True
    b = name_of(CoreNet(new), B)
    net.config = new
    net.add_remote(b).start(net.now)
    net.pump()
    # a was deconfigured: Cease 3, its routes leave the kernel
    cease = [e for e in net.remote_of(a, SessionDown) if e.notification is not None]
    assert cease and cease[-1].notification.subcode == CeaseSubcode.PEER_DECONFIGURED
    assert net.kernel.hops("10.244.80.0/26") is None
    assert [p.name for p in net.core.peers()] == [b]
    net.run_until(lambda: net.established(b))
    assert net.received(b) == {BLOCK}
    assert any("peers added" in e.what for e in net.of(DaemonEvent))


def test_reload_that_changes_the_asn_is_refused() -> None:
    net = make_net(A)
    net.start()
    new = parse_config(config_text(A).replace("asn = 64512", "asn = 64513"), "node81.toml")
    assert net.core.reconfigure(new, net.now) is False
    assert net.core.config.asn == 64512
    assert "reload refused: asn" in net.of(DaemonEvent)[-1].what


def test_stop_sends_cease_and_leaves_the_kernel_alone() -> None:
    net = make_net(A)
    a = name_of(net, A)
    net.start()
    net.run_until(lambda: net.established(a))
    feed(net, a, "10.244.80.0/26", via=A)
    log_len = len(net.kernel.log)
    net.core.stop(net.now, "SIGTERM")
    net.pump()
    cease = [e for e in net.remote_of(a, SessionDown) if e.notification is not None]
    assert cease[-1].notification.subcode == CeaseSubcode.ADMINISTRATIVE_SHUTDOWN
    assert net.of(RouteChange)  # the RIB let the routes go...
    assert len(net.kernel.log) == log_len  # ...but the kernel keeps them (persist)
    assert net.core.accept(A, 1234, net.now) is None  # no new connections while shutting down


def test_planned_graceful_restart_closes_silently_and_keeps_kernel_routes() -> None:
    net = make_net(A)
    a = name_of(net, A)
    net.start()
    net.run_until(lambda: net.established(a))
    assert net.core.graceful_shutdown(net.now) == "Graceful restart initiated"
    net.pump()
    down = net.remote_of(a, SessionDown)[-1]
    assert down.notification is None and down.graceful  # the peer keeps our routes stale
    assert net.core.keep_kernel_routes


def test_unknown_address_is_refused() -> None:
    net = make_net(A)
    net.start()
    assert net.core.accept("192.168.0.99", 5555, net.now) is None
    assert net.core.accept("not-an-address", 1, net.now) is None
    refused = [e for e in net.events if isinstance(e, ConnectionRefused)]
    assert [e.address for e in refused] == ["192.168.0.99", "not-an-address"]


def test_a_flood_of_refusals_is_logged_in_bursts_and_summaries() -> None:
    net = make_net(A)
    net.start()
    for i in range(5000):  # 5,000 attempts in 20 s from 50 sources
        assert net.core.accept(f"10.9.0.{i % 50}", 30000 + i, net.now + i * 0.004) is None
    refused = [e for e in net.events if isinstance(e, ConnectionRefused)]
    summaries = [e for e in net.events if isinstance(e, RefusalsSuppressed)]
    assert len(refused) == 20  # 10 per 10 s window, two windows
    assert [s.count for s in summaries] == [2490]  # the first window's rest, told at the 2nd
    assert summaries[0].sources == 50
    assert net.core.refusals.total == 5000
