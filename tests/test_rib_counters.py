"""The RIB's counters (paths per source, best per source, prefixes) match a full walk after
every kind of change, so ``show route count`` and ``show protocols all`` need no walk."""

from __future__ import annotations

from collections import Counter

from speaker.control.views import count_routes
from speaker.rib import AttributeSet, PeerInfo, Rib, SourceKind
from speaker.rib.query import TableCounts
from speaker.wire.nlri import Nlri, Prefix

ASN = 64512
A80 = PeerInfo.mesh("192.168.0.80", ASN)
A82 = PeerInfo.mesh("192.168.0.82", ASN)


def walked(rib: Rib) -> TableCounts:
    """The counters by walking every IPv4 prefix's paths (what the views used to do)."""
    paths: Counter[str] = Counter()
    best: Counter[str] = Counter()
    networks = 0
    for view in rib.show_route():
        if view.prefix.afi.value != 1:
            continue
        networks += 1
        for pv in view.paths:
            paths[pv.source_name] += 1
            if pv.best:
                best[pv.source_name] += 1
    return TableCounts(networks, dict(paths), dict(best))


def check(rib: Rib) -> None:
    got, want = rib.counts(), walked(rib)
    assert (got.networks, dict(got.paths_by_source), dict(got.best_by_source)) == (
        want.networks, dict(want.paths_by_source), dict(want.best_by_source)
    )
    for peer in (A80.name, A82.name, "static1", None):
        for primary in (False, True):
            assert got.route_count(peer, primary) == want.route_count(peer, primary)


def blocks(first: int, n: int, path_id: int | None = 1) -> list[Nlri]:
    return [Nlri(Prefix.parse(f"10.{first}.{i // 4}.{(i % 4) * 64}/26"), path_id)
            for i in range(n)]


def test_counters_follow_every_kind_of_change() -> None:
    rib = Rib(asn=ASN, router_id="192.168.0.81", clock=lambda: 1.0)
    rib.add_peer(A80)
    rib.add_peer(A82)
    check(rib)
    rib.originate("10.244.42.64/26")
    rib.originate("fd00:10::/64", kind=SourceKind.KERNEL)  # IPv6: not in the IPv4 views
    rib.originate("fd00:11::/64", kind=SourceKind.KERNEL, next_hop="fd00::1")
    check(rib)
    via80 = AttributeSet.build(next_hop=A80.address, local_pref=100)
    via82 = AttributeSet.build(next_hop=A82.address, local_pref=100)
    better82 = AttributeSet.build(next_hop=A82.address, local_pref=200)
    rib.announce(A80, blocks(1, 300), via80)
    rib.announce(A82, blocks(1, 100) + blocks(2, 50), via82)  # overlapping: ECMP, one best
    check(rib)
    rib.announce(A82, blocks(1, 40), better82)  # best moves to .82 for 40 prefixes
    check(rib)
    rib.announce(A80, blocks(1, 10, path_id=2), via80)  # a second add-path path
    check(rib)
    rib.withdraw(A82, blocks(1, 20))
    check(rib)
    rib.mark_stale(A80)
    check(rib)
    rib.announce(A80, blocks(1, 150), via80)
    rib.end_of_rib(A80)  # sweeps the 150 not refreshed
    check(rib)
    rib.withdraw_origin("fd00:10::/64", kind=SourceKind.KERNEL)
    rib.drop_peer(A82)
    check(rib)
    rib.remove_peer(A80)
    check(rib)
    assert rib.counts().route_count() == (1, 1, 1)  # our block is left


def test_counters_are_what_show_route_count_prints() -> None:
    rib = Rib(asn=ASN, router_id="192.168.0.81", clock=lambda: 1.0)
    rib.add_peer(A80)
    rib.add_peer(A82)
    rib.announce(A80, blocks(3, 30), AttributeSet.build(next_hop=A80.address))
    rib.announce(A82, blocks(3, 10), AttributeSet.build(next_hop=A82.address))

    class Row:  # the fields count_routes reads of a control RouteView
        def __init__(self, prefix: object, protocol: str, primary: bool) -> None:
            self.prefix, self.protocol, self.primary = prefix, protocol, primary

    rows = [Row(v.prefix, pv.source_name, pv.best) for v in rib.show_route() for pv in v.paths]
    counts = rib.counts()
    for protocol in (None, A80.name, A82.name, "kernel1"):
        for primary in (False, True):
            assert counts.route_count(protocol, primary) == count_routes(
                rows, protocol, primary  # type: ignore[arg-type]
            )


def test_attribute_sets_of_withdrawn_routes_are_swept_when_the_table_is_down_to_a_quarter() -> None:
    """Interned sets are held by a plain dict (speed); the RIB sweeps the dead ones once its
    table has shrunk to a quarter, so a withdrawn feed of one set per route gives its memory
    back (a sweep per halving hashed the sets three times as often in a whole withdrawal)."""
    import ipaddress

    from speaker.rib import AttributeSet, PeerInfo, Rib
    from speaker.rib.attrs import intern_count
    from speaker.wire.nlri import Nlri, Prefix

    AttributeSet.sweep()
    before = intern_count()
    rib = Rib(asn=64512, router_id="192.168.0.81")
    rib.add_peer(PeerInfo("p", ipaddress.IPv4Address("192.168.0.80"),
                          ipaddress.IPv4Address("192.168.0.80"), 64512, True))
    nets = [Nlri(Prefix.parse(f"10.7.{i}.0/24")) for i in range(200)]
    for i, nlri in enumerate(nets):  # one set per route (a MED each), as the distinct feed
        attrs = AttributeSet.build(med=10_000 + i, next_hop=ipaddress.IPv4Address("192.168.0.80"))
        rib.announce("p", [nlri], attrs)
    assert intern_count() >= before + 200
    rib.withdraw("p", nets[:100])
    rib.flush_all()
    assert intern_count() >= before + 200  # half the table: not yet
    rib.withdraw("p", nets[100:160])
    rib.flush_all()  # the next RIB step sweeps (the withdrawal's changes are gone by then)
    assert intern_count() <= before + 40
