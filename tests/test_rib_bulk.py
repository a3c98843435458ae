"""A whole source's paths at once (session down, the end of a graceful restart): one walk of
the Loc-RIB, with the same changes, counters and Adj-RIB-Out withdrawals as withdrawing the
paths one by one."""

from __future__ import annotations

import ipaddress
from dataclasses import FrozenInstanceError

import pytest

from speaker.rib import AttributeSet, BestPathReason, PeerInfo, Rib, RouteChange, SourceKind
from speaker.rib.decision import DEFAULT_POLICY
from speaker.rib.path import Path
from speaker.wire import IPV4_UNICAST, IPV6_UNICAST, Negotiated, Update, decode_message
from speaker.wire.attributes import AsPathSegment
from speaker.wire.enums import AsPathSegmentType
from speaker.wire.nlri import Nlri, Prefix

ASN = 64512
ME = "192.168.0.81"
A82 = PeerInfo.mesh("192.168.0.82", ASN)
BOTH = Negotiated(families=frozenset({IPV4_UNICAST, IPV6_UNICAST}))


def ebgp(addr: str, asn: int) -> PeerInfo:
    ip = ipaddress.IPv4Address(addr)
    return PeerInfo("Global_" + addr.replace(".", "_"), ip, ip, asn, False)


E1, E2 = ebgp("172.16.0.1", 65001), ebgp("172.16.0.2", 65002)


def attrs(peer: PeerInfo, v6: bool = False) -> AttributeSet:
    seg = AsPathSegment(AsPathSegmentType.AS_SEQUENCE, (peer.asn,))
    assert peer.address is not None
    hop = ipaddress.IPv6Address(f"fd00::{peer.asn:x}") if v6 else peer.address
    return AttributeSet.build(as_path=(seg,), next_hop=hop)


def v4(i: int) -> Prefix:
    return Prefix.parse(f"10.244.{i}.0/26")


def v6(i: int) -> Prefix:
    return Prefix.parse(f"fd00:10:244:{i:x}::/122")


def table() -> Rib:
    """E1 alone on most prefixes, sharing some with E2 (where E1 is best: lower router id,
    and the two merge into an ECMP set), with two path ids on some (alone or not), in both
    families; A82 (iBGP) has an Adj-RIB-Out that got the initial feed."""
    rib = Rib(asn=ASN, router_id=ME, clock=lambda: 7.0)
    for p in (E1, E2, A82):
        rib.add_peer(p)
    for afi_prefix, six in ((v4, False), (v6, True)):
        rib.announce(E1, [Nlri(afi_prefix(i), None) for i in range(20)], attrs(E1, six))
        rib.announce(E1, [Nlri(afi_prefix(i), 9) for i in range(5, 20)], attrs(E1, six))
        rib.announce(E2, [Nlri(afi_prefix(i), None) for i in range(10, 30)], attrs(E2, six))
    rib.add_out_peer(A82, BOTH, local_address=[ME, "fd00::81"])
    rib.initial_feed(A82)
    return rib


def one_by_one(rib: Rib, peer: PeerInfo, stale_only: bool = False) -> list[RouteChange]:
    """The reference: the source's paths withdrawn by their keys."""
    keys = [Nlri(p.prefix, p.path_id) for p in rib.adj_in(peer) if p.stale or not stale_only]
    return rib.withdraw(peer, keys)


def sent(rib: Rib) -> list[Update]:
    out = []
    for raw in rib.flush(A82):
        msg = decode_message(raw, BOTH.reversed())
        assert isinstance(msg, Update)
        out.append(msg)
    return out


def state(rib: Rib) -> object:
    loc = rib.loc
    return (
        rib.counts(None),
        {a.name: (len(a), a.ipv6) for a in (rib.adj_in(p) for p in (E1, E2))},
        dict(loc.best_by_source), dict(loc.best_by_source6), loc.ipv6, len(loc),
        [(e.prefix, tuple(e.paths), e.best, e.ecmp) for e in loc],
    )


def test_drop_peer_is_the_withdrawal_of_each_of_its_paths() -> None:
    bulk, ref = table(), table()
    changes = bulk.drop_peer(E1)
    assert changes == one_by_one(ref, E1)
    assert state(bulk) == state(ref)
    assert len(changes) == 40  # per family 10 gone, 10 moved to E2 alone
    assert sent(bulk) == sent(ref)


def test_drop_peer_moves_best_to_the_other_peer_and_withdraws_what_it_alone_had() -> None:
    rib = table()
    assert rib.counts(None).best_by_source == {E1.name: 40, E2.name: 20}
    changes = rib.drop_peer(E1)
    by_prefix = {c.prefix: c for c in changes}
    gone, moved = by_prefix[v4(3)], by_prefix[v4(17)]
    assert gone.withdrawn and gone.reason is BestPathReason.NO_PATH
    assert gone.old_best is not None and gone.old_best.peer is E1
    assert moved.new_best is not None and moved.new_best.peer is E2
    assert moved.reason is BestPathReason.ONLY_PATH
    assert {p.peer for p in moved.old_ecmp} == {E1, E2}  # the ECMP set shrank to E2
    assert [p.peer for p in rib.paths(v6(12))] == [E2]
    assert rib.best(v4(3)) is None and v4(3) not in rib.loc.entries
    counts = rib.counts(None)
    assert counts.networks == 40 and counts.paths_by_source == {E2.name: 40}
    assert counts.best_by_source == {E2.name: 40}
    assert len(rib.adj_in(E1)) == 0 and rib.adj_in(E1).ipv6 == 0
    assert list(rib.adj_in(E1)) == []
    # A82 hears of the prefixes gone, and of the new next hop where E2 took over
    ups = sent(rib)
    withdrawn = {n.prefix for u in ups for n in u.withdrawn}
    withdrawn |= {n.prefix for u in ups for a in u.attributes
                  if hasattr(a, "withdrawn") for n in a.withdrawn}
    assert withdrawn == {f(i) for f in (v4, v6) for i in range(10)}
    assert any(n.prefix == v4(17) for u in ups for n in u.nlri)
    assert rib.drop_peer(E1) == []  # nothing left


def test_sweep_of_stale_paths_is_the_withdrawal_of_each_of_them() -> None:
    bulk, ref = table(), table()
    for rib in (bulk, ref):
        rib.mark_stale(E1)
        rib.announce(E1, [Nlri(v4(i), None) for i in range(5)], attrs(E1))  # fresh again
    changes = bulk.sweep_stale(E1)
    expected = one_by_one(ref, E1, stale_only=True)
    ref.adj_in(E1).gr_active = False
    assert changes == expected
    assert state(bulk) == state(ref)
    assert all(not p.stale for p in bulk.adj_in(E1)) and len(bulk.adj_in(E1)) == 5
    assert not bulk.adj_in(E1).gr_active


def test_mark_stale_of_one_family_marks_every_path_of_the_peer_there() -> None:
    rib = table()
    changes = rib.mark_stale(E1, [IPV4_UNICAST])
    assert {c.prefix for c in changes} == {v4(i) for i in range(20)}
    for i in range(30):
        for path in rib.paths(v4(i)):
            assert path.stale is (path.peer is E1)
        assert not any(p.stale for p in rib.paths(v6(i)))
    assert len([p for p in rib.adj_in(E1) if p.stale]) == 35  # with the second path ids
    assert rib.adj_in(E1).gr_active
    # E1 was best on the shared prefixes; its stale paths lose to E2's
    best = rib.best(v4(12))
    assert best is not None and best.peer is E2


def test_sweep_of_one_family_keeps_the_other() -> None:
    rib = table()
    rib.mark_stale(E1)
    changes = rib.sweep_stale(E1, IPV6_UNICAST)
    assert {c.prefix.afi for c in changes} == {v6(0).afi}
    assert len(rib.adj_in(E1)) == 35 and rib.adj_in(E1).ipv6 == 0
    assert all(p.stale for p in rib.adj_in(E1)) and rib.adj_in(E1).gr_active


def test_sweep_during_a_route_refresh_forgets_what_went() -> None:
    rib = table()
    rib.mark_stale(E1)
    rib.begin_refresh(E1, IPV4_UNICAST)
    rib.announce(E1, [Nlri(v4(0), None)], attrs(E1))
    rib.sweep_stale(E1)
    assert rib.adj_in(E1).refresh_pending() == 0  # the swept paths are no longer awaited
    assert [str(c.prefix) for c in rib.end_refresh(E1, IPV4_UNICAST)] == []


def test_route_change_is_built_whole_and_frozen() -> None:
    path = Path(v4(1), None, attrs(E1), E1, SourceKind.BGP, 1.0)
    change = RouteChange(v4(1), None, path, (), (path,), BestPathReason.ONLY_PATH)
    assert (change.prefix, change.old_best, change.new_best) == (v4(1), None, path)
    assert (change.old_ecmp, change.new_ecmp) == ((), (path,))
    assert change.reason is BestPathReason.ONLY_PATH and change.runner_up is None
    assert change.policy is DEFAULT_POLICY
    again = RouteChange(v4(1), None, path, (), (path,), BestPathReason.ONLY_PATH)
    assert change == again and hash(change) == hash(again)
    with pytest.raises(FrozenInstanceError):
        change.prefix = v4(2)  # type: ignore[misc]


@pytest.mark.parametrize("op", ["drop", "mark", "sweep"])
def test_whole_peer_changes_go_a_slice_at_a_time_to_each(
    op: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``each`` the changes arrive in slices of at most SETTLE_SLICE entries, in the
    order and with the content of the list returned without it, and the tables end the same."""
    monkeypatch.setattr("speaker.rib.rib.SETTLE_SLICE", 7)
    sliced, whole = table(), table()
    if op == "sweep":
        for rib in (sliced, whole):
            rib.mark_stale(E1)
    slices: list[list[RouteChange]] = []

    def run(rib: Rib, each: object = None) -> list[RouteChange]:
        if op == "drop":
            return rib.drop_peer(E1, each)  # type: ignore[arg-type]
        if op == "mark":
            return rib.mark_stale(E1, each=each)  # type: ignore[arg-type]
        return rib.sweep_stale(E1, each=each)  # type: ignore[arg-type]

    assert run(sliced, slices.append) == []
    expected = run(whole)
    assert [c for part in slices for c in part] == expected
    assert len(slices) > 1 and all(0 < len(part) <= 7 for part in slices)
    assert state(sliced) == state(whole)
    assert sent(sliced) == sent(whole)
