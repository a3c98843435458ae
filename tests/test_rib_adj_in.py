"""Adj-RIB-In: add-path keys, UPDATE application, graceful restart and route refresh."""

from __future__ import annotations

import ipaddress

import pytest

from speaker.rib import AttributeSet, BestPathReason, PeerInfo, Rib, RouteChange, SourceKind
from speaker.rib.rib import UnknownPeerError
from speaker.wire import IPV4_UNICAST, IPV6_UNICAST, Negotiated, decode_message, split_messages
from speaker.wire.attributes import MpReachAttr, MpUnreachAttr
from speaker.wire.enums import Afi, Safi, UpdateSubcode
from speaker.wire.errors import ErrorAction, update_error
from speaker.wire.messages import Update
from speaker.wire.nlri import Nlri, Prefix

ASN = 64512
A80 = PeerInfo.mesh("192.168.0.80", ASN)
A82 = PeerInfo.mesh("192.168.0.82", ASN)
ADDPATH = Negotiated(
    addpath_receive=frozenset({IPV4_UNICAST}), addpath_send=frozenset({IPV4_UNICAST})
)

# Real UPDATEs from BIRD 1.6.8 (lifecycle.pcap, node .80 to .81, add-path negotiated)
FRAME25 = bytes.fromhex(  # 10.244.200.0/26 id 5, .152.192/26 id 4, .152.128/26 id 4 via .80
    "ffffffffffffffffffffffffffffffff0047020000001540010100400200400304c0a80050400504000000"
    "64000000051a0af4c800000000041a0af498c0000000041a0af49880"
)
FRAME27 = bytes.fromhex(  # 10.244.200.0/26 id 6 via .82; 10.244.77.7/32 with MED etc.; EoR
    "ffffffffffffffffffffffffffffffff0035020000001540010100400200400304c0a80052400504000000"
    "64000000061a0af4c800ffffffffffffffffffffffffffffffff0052020000003240010100400200400304"
    "c0a800508004040000003240050400000064c00804fc000064c0200c0000fc000000000100000002000000"
    "04200af44d07ffffffffffffffffffffffffffffffff00170200000000"
)
FRAME30 = bytes.fromhex(  # withdraws 10.244.200.0/26 path id 6
    "ffffffffffffffffffffffffffffffff0020020009000000061a0af4c8000000"
)


def ip(text: str) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(text)


def pfx(text: str) -> Prefix:
    return Prefix.parse(text)


def make_rib() -> Rib:
    rib = Rib(asn=ASN, router_id="192.168.0.81", clock=lambda: 1000.0)
    rib.add_peer(A80)
    rib.add_peer(A82)
    return rib


def attrs_via(addr: str, **kw: int) -> AttributeSet:
    return AttributeSet.build(next_hop=ip(addr), local_pref=100, **kw)  # type: ignore[arg-type]


def announce(rib: Rib, src: PeerInfo, *prefixes: str, via: str | None = None) -> list[RouteChange]:
    hop = via or str(src.address)
    return rib.announce(src, [Nlri(pfx(p)) for p in prefixes], attrs_via(hop))


def messages(data: bytes, ctx: Negotiated) -> list[Update]:
    out = []
    for _, raw in split_messages(data, ctx):
        msg = decode_message(raw, ctx)
        assert isinstance(msg, Update)
        out.append(msg)
    return out


# ---------------------------------------------------------------------------- add-path


def test_two_paths_from_one_peer_are_both_held_and_withdrawn_separately() -> None:
    rib = make_rib()
    p = pfx("10.244.200.0/26")
    rib.announce(A80, [Nlri(p, 1)], attrs_via("192.168.0.80"))
    rib.announce(A80, [Nlri(p, 2)], attrs_via("192.168.0.82"))
    assert sorted(x.path_id or 0 for x in rib.paths(p)) == [1, 2]
    assert len(rib.adj_in(A80)) == 2
    assert len(rib.ecmp(p)) == 2  # distinct next hops, equal attributes
    (change,) = rib.withdraw(A80, [Nlri(p, 1)])
    assert [x.path_id for x in rib.paths(p)] == [2]
    assert change.new_best is not None and change.new_best.path_id == 2
    assert change.reason is BestPathReason.ONLY_PATH
    assert rib.withdraw(A80, [Nlri(p, 1)]) == []  # withdrawing it again changes nothing


def test_real_bird_updates_with_path_ids() -> None:
    rib = make_rib()
    block = pfx("10.244.200.0/26")
    changes = []
    for data in (FRAME25, FRAME27):
        for update in messages(data, ADDPATH):
            changes += rib.apply_update(A80, update)
    assert sorted(str(p) for p in rib.loc.entries) == [
        "10.244.152.128/26",
        "10.244.152.192/26",
        "10.244.200.0/26",
        "10.244.77.7/32",
    ]
    assert sorted((p.path_id, p.via) for p in rib.paths(block)) == [
        (5, "192.168.0.80"),
        (6, "192.168.0.82"),
    ]
    assert [p.via for p in rib.ecmp(block)] == ["192.168.0.80", "192.168.0.82"]
    host = rib.best("10.244.77.7/32")
    assert host is not None
    assert host.attrs.med == 50
    assert host.attrs.communities == ((64512 << 16) | 100,)
    assert host.attrs.large_communities == ((64512, 1, 2),)
    (update,) = messages(FRAME30, ADDPATH)
    (change,) = rib.apply_update(A80, update)
    assert [p.path_id for p in rib.paths(block)] == [5]
    assert [p.via for p in change.new_ecmp] == ["192.168.0.80"]


def test_same_announcement_twice_is_not_a_change() -> None:
    rib = make_rib()
    assert len(announce(rib, A80, "10.244.152.128/26")) == 1
    assert announce(rib, A80, "10.244.152.128/26") == []
    changes = rib.announce(A80, [Nlri(pfx("10.244.152.128/26"))], attrs_via("192.168.0.80", med=5))
    assert len(changes) == 1 and changes[0].new_best is not None
    assert changes[0].new_best.attrs.med == 5


def test_apply_update_withdrawals_and_announcements() -> None:
    rib = make_rib()
    attrs = attrs_via("192.168.0.80")
    up = Update(attributes=attrs.attributes, nlri=(Nlri(pfx("10.244.1.0/26")),))
    assert len(rib.apply_update(A80, up)) == 1
    both = Update(
        withdrawn=(Nlri(pfx("10.244.1.0/26")),),
        attributes=attrs.attributes,
        nlri=(Nlri(pfx("10.244.2.0/26")),),
    )
    changes = rib.apply_update(A80, both)
    assert {(str(c.prefix), c.withdrawn) for c in changes} == {
        ("10.244.1.0/26", True),
        ("10.244.2.0/26", False),
    }
    assert rib.best("10.244.1.0/26") is None


def test_treat_as_withdraw() -> None:
    rib = make_rib()
    announce(rib, A80, "10.244.1.0/26")
    err = update_error(
        UpdateSubcode.ATTRIBUTE_LENGTH_ERROR,
        reason="MED length 3",
        action=ErrorAction.TREAT_AS_WITHDRAW,
    )
    bad = Update(
        attributes=attrs_via("192.168.0.80").attributes,
        nlri=(Nlri(pfx("10.244.1.0/26")), Nlri(pfx("10.244.9.0/26"))),
        errors=(err,),
    )
    assert bad.treat_as_withdraw
    (change,) = rib.apply_update(A80, bad)
    assert change.withdrawn and str(change.prefix) == "10.244.1.0/26"
    assert rib.best("10.244.9.0/26") is None  # never installed


def test_ipv6_mp_reach_and_unreach() -> None:
    rib = make_rib()
    p6 = pfx("fd00:10:244:98::/122")
    reach = MpReachAttr(Afi.IPV6, Safi.UNICAST, (ipaddress.IPv6Address("fd00::80"),), (Nlri(p6),))
    base = AttributeSet.build(local_pref=100).attributes
    (change,) = rib.apply_update(A80, Update(attributes=(*base, reach)))
    assert change.new_best is not None and change.new_best.via == "fd00::80"
    unreach = MpUnreachAttr(Afi.IPV6, Safi.UNICAST, (Nlri(p6),))
    (gone,) = rib.apply_update(A80, Update(attributes=(unreach,)))
    assert gone.withdrawn


def test_unknown_peer_is_a_clear_error() -> None:
    rib = make_rib()
    with pytest.raises(UnknownPeerError, match="Mesh_10_0_0_1"):
        rib.apply_update("Mesh_10_0_0_1", Update())
    with pytest.raises(ValueError, match="reserved"):
        rib.add_peer(PeerInfo("static1", None, ip("1.1.1.1"), ASN, True))


# ---------------------------------------------------------------------------- graceful restart


def test_stale_mark_refresh_and_sweep() -> None:
    rib = make_rib()
    announce(rib, A80, "10.244.1.0/26", "10.244.2.0/26")
    changes = rib.mark_stale(A80)
    assert len(changes) == 2 and all(c.new_best is not None and c.new_best.stale for c in changes)
    assert rib.adj_in(A80).stale_count() == 2 and rib.adj_in(A80).gr_active
    assert "(stale)" in changes[0].describe()
    # the restarted peer announces one of them again: it loses the stale mark
    (refreshed,) = announce(rib, A80, "10.244.1.0/26")
    assert refreshed.new_best is not None and not refreshed.new_best.stale
    # End-of-RIB: the one still stale goes
    (swept,) = rib.sweep_stale(A80)
    assert str(swept.prefix) == "10.244.2.0/26" and swept.withdrawn
    assert rib.best("10.244.1.0/26") is not None
    assert not rib.adj_in(A80).gr_active


def test_consecutive_restart_deletes_what_is_still_stale() -> None:
    rib = make_rib()
    announce(rib, A80, "10.244.1.0/26", "10.244.2.0/26")
    rib.mark_stale(A80)
    announce(rib, A80, "10.244.1.0/26")  # refreshed before the second drop
    changes = rib.mark_stale(A80)  # restarts again before its End-of-RIB
    by_prefix = {str(c.prefix): c for c in changes}
    assert by_prefix["10.244.2.0/26"].withdrawn  # still stale from the first restart: deleted
    first = by_prefix["10.244.1.0/26"].new_best
    assert first is not None and first.stale  # refreshed one: stale again
    assert rib.best("10.244.2.0/26") is None
    assert [str(p.prefix) for p in rib.adj_in(A80)] == ["10.244.1.0/26"]


def test_stale_path_loses_to_fresh_one_and_leaves_the_ecmp_set() -> None:
    rib = make_rib()
    announce(rib, A80, "10.244.5.0/26")
    announce(rib, A82, "10.244.5.0/26")
    assert len(rib.ecmp("10.244.5.0/26")) == 2
    best = rib.best("10.244.5.0/26")
    assert best is not None and best.peer is A80  # lower router id
    (change,) = rib.mark_stale(A80)
    assert change.new_best is not None and change.new_best.peer is A82
    assert change.reason is BestPathReason.STALE
    assert len(change.new_ecmp) == 1  # stale and non-stale paths do not merge
    assert rib.sweep_stale(A80) == []  # best and ECMP set stay as they are
    assert [p.peer for p in rib.paths("10.244.5.0/26")] == [A82]


def test_restart_timer_expiry_sweeps_everything_stale() -> None:
    rib = make_rib()
    announce(rib, A80, "10.244.1.0/26", "10.244.2.0/26")
    rib.mark_stale(A80)
    changes = rib.sweep_stale(A80)
    assert {c.withdrawn for c in changes} == {True} and len(changes) == 2
    assert len(rib) == 0


def test_drop_peer_removes_all() -> None:
    rib = make_rib()
    announce(rib, A80, "10.244.1.0/26", "10.244.2.0/26")
    announce(rib, A82, "10.244.2.0/26")
    changes = rib.drop_peer(A80)
    assert {str(c.prefix): c.withdrawn for c in changes} == {
        "10.244.1.0/26": True,
        "10.244.2.0/26": False,
    }
    assert len(rib.adj_in(A80)) == 0
    best = rib.best("10.244.2.0/26")
    assert best is not None and best.peer is A82


# ---------------------------------------------------------------------------- route refresh


def test_enhanced_route_refresh_sweeps_what_was_not_repeated() -> None:
    rib = make_rib()
    announce(rib, A80, "10.244.1.0/26", "10.244.2.0/26", "10.244.3.0/26")
    assert rib.begin_refresh(A80, IPV4_UNICAST) == 3
    announce(rib, A80, "10.244.1.0/26")  # same attributes: kept, no change event
    rib.announce(A80, [Nlri(pfx("10.244.2.0/26"))], attrs_via("192.168.0.80", med=7))
    assert rib.adj_in(A80).refresh_pending() == 1
    changes = rib.end_refresh(A80, IPV4_UNICAST)
    assert [(str(c.prefix), c.withdrawn) for c in changes] == [("10.244.3.0/26", True)]
    assert rib.best("10.244.1.0/26") is not None
    assert rib.end_refresh(A80, IPV4_UNICAST) == []  # no refresh running any more


def test_refresh_of_one_family_leaves_the_other() -> None:
    rib = make_rib()
    announce(rib, A80, "10.244.1.0/26")
    p6 = pfx("fd00:10:244:98::/122")
    rib.announce(A80, [Nlri(p6)], AttributeSet.build(next_hop=ipaddress.IPv6Address("fd00::80")))
    rib.begin_refresh(A80, IPV6_UNICAST)
    (change,) = rib.end_refresh(A80, IPV6_UNICAST)
    assert change.prefix == p6
    assert rib.best("10.244.1.0/26") is not None


def test_withdrawal_during_refresh() -> None:
    rib = make_rib()
    announce(rib, A80, "10.244.1.0/26")
    rib.begin_refresh(A80)
    (change,) = rib.withdraw(A80, [Nlri(pfx("10.244.1.0/26"))])
    assert change.withdrawn
    assert rib.end_refresh(A80) == []


# ---------------------------------------------------------------------------- local routes


def test_local_origination_and_kernel_routes() -> None:
    rib = make_rib()
    (block,) = rib.originate("10.244.42.64/26")
    assert block.new_best is not None and block.new_best.via == "blackhole"
    assert block.describe() == "10.244.42.64/26: best via blackhole [static1] (only path)"
    (host,) = rib.originate("10.244.42.65/32", kind=SourceKind.KERNEL)
    assert host.new_best is not None and host.new_best.peer.name == "kernel1"
    changes = rib.set_origins(["10.244.7.0/26"])
    assert {(str(c.prefix), c.withdrawn) for c in changes} == {
        ("10.244.42.64/26", True),
        ("10.244.7.0/26", False),
    }
    assert rib.withdraw_origin("10.244.42.65/32", kind=SourceKind.KERNEL)[0].withdrawn
    with pytest.raises(ValueError, match="use apply_update"):
        rib.originate("10.0.0.0/8", kind=SourceKind.BGP)
    with pytest.raises(ValueError, match="not an address or prefix"):
        rib.originate("10.0.0.1/8")


def test_end_of_rib_ends_the_restart_per_family() -> None:
    rib = make_rib()
    announce(rib, A80, "10.244.1.0/26")
    p6 = pfx("fd00:10:244:98::/122")
    rib.announce(A80, [Nlri(p6)], AttributeSet.build(next_hop=ipaddress.IPv6Address("fd00::80")))
    assert rib.end_of_rib(A80) == []  # not restarting: End-of-RIB is just the end of the feed
    rib.mark_stale(A80)
    (v4,) = rib.end_of_rib(A80, IPV4_UNICAST)
    assert str(v4.prefix) == "10.244.1.0/26" and v4.withdrawn
    assert rib.adj_in(A80).gr_active  # the IPv6 paths are still waiting
    (v6,) = rib.end_of_rib(A80, IPV6_UNICAST)
    assert v6.prefix == p6 and not rib.adj_in(A80).gr_active


def test_remove_peer_and_local_sources_stay() -> None:
    rib = make_rib()
    rib.originate("10.244.42.64/26")
    announce(rib, A80, "10.244.1.0/26")
    (gone,) = rib.remove_peer(A80)
    assert gone.withdrawn
    with pytest.raises(UnknownPeerError):
        rib.adj_in(A80)
    with pytest.raises(ValueError, match="local source"):
        rib.remove_peer("static1")
    assert rib.best("10.244.42.64/26") is not None  # untouched by the refused removal
