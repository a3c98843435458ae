"""Dual stack in one speaker: IPv6 peers as bird6 makes them, IPv6 blocks, the bird6.ctl view.

Calico with BIRD 1.6 runs ``bird`` (IPv4) and ``bird6`` (IPv6) per node; one speaker plays both:
IPv4 peers carry IPv4 unicast in the classic UPDATE fields, IPv6 peers IPv6 unicast in
MP_REACH/MP_UNREACH (RFC 4760, RFC 2545), each family with its own End-of-RIB.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from ipaddress import IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

import pytest

from speaker.config import ConfigError, parse_config
from speaker.control.calicoctl import split_families
from speaker.control.commands import CommandError, ShowRoute, parse_command
from speaker.control.family import FamilyBackend
from speaker.control.static import StaticBackend
from speaker.control.views import (
    BgpDetails,
    ProtocolStatus,
    ProtoState,
    RouteKind,
    RouteView,
)
from speaker.rib import AttributeSet
from speaker.session import EndOfRib, UpdateReceived
from speaker.wire.attributes import MpReachAttr, MpUnreachAttr
from speaker.wire.context import IPV4_UNICAST, IPV6_UNICAST
from speaker.wire.enums import Afi, Safi
from speaker.wire.messages import Update
from speaker.wire.nlri import Nlri, Prefix
from tests.corenet import CoreNet, update

V4_PEER = "192.168.0.80"
V6_PEER = "fd00:192:168::80"
V6_OWN = "fd00:192:168::81"
BLOCK4 = "10.244.81.0/26"
BLOCK6 = "fd00:10:244::8100/122"
PEER_BLOCK6 = "fd00:10:244::8000/122"


def dual_config(extra_peer: str = "", top: str = "") -> str:
    return (
        f'router_id = "192.168.0.81"\nasn = 64512\n{top}\n'
        f'[[peer]]\naddress = "{V4_PEER}"\nsource_address = "192.168.0.81"\n'
        f'[[peer]]\naddress = "{V6_PEER}"\nsource_address = "{V6_OWN}"\n{extra_peer}'
        f'[originate]\nblocks = ["{BLOCK4}", "{BLOCK6}"]\n'
        f'[pools]\ncidrs = ["10.244.0.0/16", "fd00:10:244::/64"]\n'
    )


def update6(*prefixes: str, via: str) -> Update:
    """What bird6 sends: ORIGIN, AS_PATH, LOCAL_PREF and MP_REACH_NLRI (IPv6 next hop)."""
    attrs = AttributeSet.build(local_pref=100)
    reach = MpReachAttr(Afi.IPV6, Safi.UNICAST, (IPv6Address(via),),
                        tuple(Nlri(Prefix.parse(p)) for p in prefixes))
    return Update(attributes=(*attrs.attributes, reach))


# ------------------------------------------------------------------------------ config


def test_an_ipv6_peer_is_an_ipv6_unicast_session_named_and_ordered_as_calico_does() -> None:
    config = parse_config(dual_config())
    v4, v6 = config.peers
    assert v4.families == ("ipv4",) and v6.families == ("ipv6",)
    assert v6.name == "Mesh_fd00_192_168__80"  # calico: ':' -> '_'
    # "fd00:192:168::80" < "fd00:192:168::81" as text: we dial (Calico's passive rule)
    assert v6.passive is False and "source_address" in v6.passive_reason
    assert v6.local_address == IPv6Address(V6_OWN)
    assert config.originate.blocks[1] == IPv6Network(BLOCK6)


def test_address6_is_the_own_ipv6_address_of_peers_without_source_address() -> None:
    text = ('router_id = "192.168.0.81"\nasn = 64512\naddress6 = "fd00:192:168::81"\n'
            '[[peer]]\naddress = "fd00:192:168::82"\n')
    peer = parse_config(text).peers[0]
    assert peer.local_address == IPv6Address("fd00:192:168::81")
    assert peer.passive is True and "address6" in peer.passive_reason


@pytest.mark.parametrize(("text", "key", "words"), [
    ('[[peer]]\naddress = "fd00::2"\n', "peer[0].source_address", "set source_address here"),
    ('[[peer]]\naddress = "fd00::2"\nsource_address = "192.168.0.81"\n',
     "peer[0].source_address", "a TCP connection has one family"),
    ('[[peer]]\naddress = "fe80::1"\nsource_address = "fd00::1"\n', "peer[0].address",
     "link-local"),
    ('[[peer]]\naddress = "192.168.0.80"\nfamilies = ["ipv4", "ipv6"]\n', "peer[0].families",
     "set address6"),
    ('[[peer]]\naddress = "192.168.0.80"\nfamilies = ["ipv5"]\n', "peer[0].families[0]",
     "is not one of"),
    ('control_socket6 = "/run/speaker/speaker.ctl"\n', "control_socket6", "same path"),
    ('address6 = "192.168.0.81"\n', "address6", "not a valid IPv6 address"),
    ('[pools]\ncidrs = ["fd00:10:244::1/64"]\n', "pools.cidrs[0]", "did you mean fd00:10:244::/64"),
])
def test_ipv6_mistakes_are_named(text: str, key: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config('router_id = "192.168.0.81"\nasn = 64512\n' + text)
    assert key in str(info.value) and words in str(info.value)


def test_an_ipv6_block_must_lie_in_an_ipv6_pool() -> None:
    with pytest.raises(ConfigError, match="outside every pool"):
        parse_config('router_id = "192.168.0.81"\nasn = 64512\n[originate]\n'
                     'blocks = ["fd00:10:244::8100/122"]\n[pools]\ncidrs = ["10.244.0.0/16"]\n')


# ------------------------------------------------------------------------------- core


def _established_dual() -> tuple[CoreNet, str, str]:
    net = CoreNet(parse_config(dual_config()))
    v4, v6 = (p.name for p in net.config.peers)
    net.start()
    net.run_until(lambda: net.established(v4, v6))
    return net, v4, v6


def test_ipv6_routes_flow_both_ways_in_mp_reach_and_reach_the_kernel() -> None:
    net, v4, v6 = _established_dual()
    # our blocks: each to the peer of its family only, IPv6 in MP_REACH with our IPv6 next hop
    assert net.received(v4) == {BLOCK4}
    assert net.received(v6) == {BLOCK6}
    sent = [e.update for e in _updates(net, v6) if e.update.nlri or e.update.withdrawn]
    assert sent == []  # nothing IPv6 in the classic fields
    hops = {str(h) for e in _updates(net, v6) for a in e.update.attributes
            if isinstance(a, MpReachAttr) for h in a.next_hops}
    assert hops == {V6_OWN}
    assert net.kernel.hops(BLOCK6) == ("blackhole",)
    # bird6 sends its block: it reaches our kernel via its IPv6 address
    net.remotes[v6].send_update(update6(PEER_BLOCK6, via=V6_PEER))
    net.pump()
    assert net.kernel.hops(PEER_BLOCK6) == (V6_PEER,)
    # and its withdrawal (MP_UNREACH) takes it out at once
    net.remotes[v6].send_update(Update(attributes=(
        MpUnreachAttr(Afi.IPV6, Safi.UNICAST, (Nlri(Prefix.parse(PEER_BLOCK6)),)),)))
    net.pump()
    assert net.kernel.hops(PEER_BLOCK6) is None


def _updates(net: CoreNet, name: str) -> list[UpdateReceived]:
    return net.remote_of(name, UpdateReceived)


def test_each_family_sends_its_own_end_of_rib_and_convergence_waits_for_both() -> None:
    net = CoreNet(parse_config(dual_config()))
    v4, v6 = (p.name for p in net.config.peers)
    net.start()
    net.run_until(lambda: net.established(v4, v6))
    assert [e.family for e in net.remote_of(v6, EndOfRib)] == [IPV6_UNICAST]
    assert [e.family for e in net.remote_of(v4, EndOfRib)] == [IPV4_UNICAST]
    before = net.kernel.converged_calls
    net.remotes[v4].send_end_of_rib(IPV4_UNICAST)
    net.pump()
    assert net.kernel.converged_calls == before  # still waiting for bird6's End-of-RIB
    net.remotes[v6].send_end_of_rib(IPV6_UNICAST)
    net.pump()
    assert net.kernel.converged_calls == before + 1


def test_an_ipv6_route_never_goes_to_an_ipv4_only_peer() -> None:
    net, v4, v6 = _established_dual()
    net.remotes[v6].send_update(update6("fd00:10:244::9000/122", via=V6_PEER))
    net.remotes[v4].send_update(update("10.244.90.0/26", via=V4_PEER))
    net.pump()
    assert "fd00:10:244::9000/122" not in net.received(v4)
    assert "10.244.90.0/26" not in net.received(v6)


def test_the_import_guard_protects_our_own_ipv6_address() -> None:
    net, _, v6 = _established_dual()
    net.remotes[v6].send_update(update6("fd00:192:168::/64", via=V6_PEER))
    net.pump()
    assert net.kernel.hops("fd00:192:168::/64") is None


def test_a_session_with_both_families_carries_both_with_our_address_of_each() -> None:
    top = 'address6 = "fd00:192:168::81"'
    text = (f'router_id = "192.168.0.81"\nasn = 64512\n{top}\n'
            f'[[peer]]\naddress = "{V4_PEER}"\nfamilies = ["ipv4", "ipv6"]\n'
            f'[originate]\nblocks = ["{BLOCK4}", "{BLOCK6}"]\n'
            f'[pools]\ncidrs = ["10.244.0.0/16", "fd00:10:244::/64"]\n')
    net = CoreNet(parse_config(text))
    name = net.config.peers[0].name
    net.start()
    net.run_until(lambda: net.established(name))
    assert net.received(name) == {BLOCK4, BLOCK6}
    hops = {str(h) for e in _updates(net, name) for a in e.update.attributes
            if isinstance(a, MpReachAttr) for h in a.next_hops}
    assert hops == {"fd00:192:168::81"}
    assert sorted(e.family for e in net.remote_of(name, EndOfRib)) == [IPV4_UNICAST, IPV6_UNICAST]


# ---------------------------------------------------------------------------- control


def _proto(name: str, address: str) -> ProtocolStatus:
    now = datetime(2026, 12, 3, 9, 0, 0)
    return ProtocolStatus(name=name, proto="BGP", state=ProtoState.UP, since=now,
                          info="Established",
                          bgp=BgpDetails(neighbor_address=ip_address(address), neighbor_as=64512))


def _route(prefix: str) -> RouteView:
    return RouteView(prefix=ip_network(prefix), protocol="static1",
                     since=datetime(2026, 12, 3, 9, 0, 0), kind=RouteKind.BLACKHOLE)


def test_the_bird6_view_shows_only_the_ipv6_protocols_and_routes() -> None:
    static = StaticBackend(
        protocols=[ProtocolStatus(name="static1", proto="Static", state=ProtoState.UP,
                                  since=datetime(2026, 12, 3)),
                   _proto("Mesh_192_168_0_80", V4_PEER),
                   _proto("Mesh_fd00_192_168__80", V6_PEER)],
        routes=[_route(BLOCK4), _route(BLOCK6)],
    )
    v6, v4 = FamilyBackend(static, 6), FamilyBackend(static, 4)
    assert [p.name for p in v6.protocols()] == ["static1", "Mesh_fd00_192_168__80"]
    assert [p.name for p in v4.protocols()] == ["static1", "Mesh_192_168_0_80"]
    assert [str(r.prefix) for r in v6.routes()] == [BLOCK6]
    assert v6.route_count() == (1, 1, 1) and v4.route_count() == (1, 1, 1)
    assert v6.routes(IPv4Network("10.244.81.1/32")) == []
    with pytest.raises(ValueError):
        FamilyBackend(static, 5)
    assert asyncio.run(v6.enable("Mesh_fd00_192_168__80")) is not None


def test_show_route_takes_ipv6_prefixes_and_addresses() -> None:
    cmd = parse_command(f"show route for {V6_PEER}").command
    assert isinstance(cmd, ShowRoute) and cmd.for_addr == ip_network(f"{V6_PEER}/128")
    cmd = parse_command(f"show route {BLOCK6}").command
    assert isinstance(cmd, ShowRoute) and cmd.exact == ip_network(BLOCK6)
    with pytest.raises(CommandError, match="Invalid prefix length 129"):
        parse_command("show route fd00::/129")
    with pytest.raises(CommandError, match="Invalid IPv6 address"):
        parse_command("show route for fd00::1::2")


def test_speaker_status_splits_one_socket_into_calicoctls_two_tables() -> None:
    lines = [
        "0001 BIRD 1.6.8 ready.",
        "2002-name     proto    table    state  since       info",
        "1002-static1  Static   master   up     09:00:00    ",
        " Mesh_192_168_0_80 BGP      master   up     09:00:01    Established   ",
        " Mesh_fd00_192_168__80 BGP      master   up     09:00:02    Established   ",
        "0000 ",
    ]
    v4, v6 = split_families(lines)
    assert [p.peer_address for p in v4] == [V4_PEER]
    assert [p.peer_address for p in v6] == [V6_PEER]


@pytest.mark.parametrize(("hops", "installed"), [
    ((V6_PEER, "fe80::80"), (V6_PEER,)),  # global + link-local (RFC 2545 3): the global one
    (("::", "fe80::80"), None),  # only a link-local: it needs its interface; not installed
    (("fe80::80",), None),
])
def test_the_kernel_route_takes_the_global_next_hop_never_a_bare_link_local(
        hops: tuple[str, ...], installed: tuple[str, ...] | None) -> None:
    net, _, v6 = _established_dual()
    reach = MpReachAttr(Afi.IPV6, Safi.UNICAST, tuple(IPv6Address(h) for h in hops),
                        (Nlri(Prefix.parse(PEER_BLOCK6)),))
    attrs = AttributeSet.build(local_pref=100)
    net.remotes[v6].send_update(Update(attributes=(*attrs.attributes, reach)))
    net.pump()
    assert net.kernel.hops(PEER_BLOCK6) == installed
