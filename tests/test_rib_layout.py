"""The RIB's per-route layout (issue #12, memory): a prefix with one path holds it inline with
a derived ECMP set, one prefix object is shared by the Loc-RIB entry and its paths, and the
Adj-RIB-In is a view of the Loc-RIB (a source's paths are found there, by name and path id).
Every change must read the same through the public API."""

from __future__ import annotations

import sys

from speaker.rib import AttributeSet, BestPathReason, PeerInfo, Rib
from speaker.rib.loc_rib import LocEntry
from speaker.rib.path import Path, StalePath
from speaker.wire.enums import Afi
from speaker.wire.messages import Update
from speaker.wire.nlri import Nlri, Prefix

ASN = 64512
A80 = PeerInfo.mesh("192.168.0.80", ASN)
A82 = PeerInfo.mesh("192.168.0.82", ASN)
VIA80 = AttributeSet.build(next_hop=A80.address, local_pref=100)
VIA82 = AttributeSet.build(next_hop=A82.address, local_pref=100)


def make_rib() -> Rib:
    rib = Rib(asn=ASN, router_id="192.168.0.81", clock=lambda: 5.0)
    rib.add_peer(A80)
    rib.add_peer(A82)
    return rib


def pfx() -> Prefix:
    """A new prefix object each call (equal, not identical), as each UPDATE decodes one."""
    return Prefix(Afi.IPV4, (10 << 24) | (244 << 16) | (1 << 8), 26)


def test_a_lone_path_is_the_tables_value_then_an_entry_then_lone_again() -> None:
    rib = make_rib()
    rib.announce(A80, [Nlri(pfx(), 1)], VIA80)
    only = rib.loc.entries[pfx()]
    assert isinstance(only, Path)  # no entry object for a prefix's lone best path
    view = rib.loc.get(pfx())
    assert view is not None and view.best is only and view.ecmp == (only,) and len(view) == 1
    assert isinstance(view._paths, Path) and view._ecmp is None  # no list, no 1-tuple

    (grew,) = rib.announce(A82, [Nlri(pfx(), 1)], VIA82)  # same MED etc.: ECMP of two
    entry = rib.loc.entries[pfx()]
    assert isinstance(entry, LocEntry) and isinstance(entry._paths, list) and len(entry) == 2
    assert entry._ecmp is not None and len(entry.ecmp) == 2 and entry.ecmp[0] is entry.best
    assert grew.old_ecmp == (only,) and len(grew.new_ecmp) == 2

    (shrank,) = rib.withdraw(A82, [Nlri(pfx(), 1)])
    assert rib.loc.entries[pfx()] is only  # lone again: the entry is gone
    assert rib.ecmp(pfx()) == (only,) and rib.best(pfx()) is only
    assert len(shrank.old_ecmp) == 2 and shrank.new_ecmp == (only,)
    assert shrank.reason is BestPathReason.ONLY_PATH
    assert rib.counts().best_by_source == {A80.name: 1}

    (gone,) = rib.withdraw(A80, [Nlri(pfx(), 1)])
    assert gone.withdrawn and gone.old_ecmp == (only,) and gone.new_ecmp == ()
    assert rib.loc.get(pfx()) is None and pfx() not in rib.loc.entries
    assert rib.counts().best_by_source == {} and len(rib.adj_in(A80)) == 0


def test_a_feed_of_one_path_per_prefix_makes_no_entry() -> None:
    rib = make_rib()
    six = Prefix.parse("fd00:10::/64")
    rib.announce(A80, [Nlri(pfx(), None), Nlri(Prefix.parse("10.9.0.0/26"), None)], VIA80)
    rib.announce(A82, [Nlri(six, None)], VIA82)
    assert all(isinstance(v, Path) for v in rib.loc.entries.values())
    assert len(rib) == 3 and rib.loc.ipv6 == 1 and rib.count().paths == 3
    assert [v.prefix for v in rib.show_route()] == sorted(rib.loc.entries)
    assert rib.lookup("10.244.1.7") == pfx()


def test_a_lone_path_withdrawn_and_announced_again_in_one_update_reports_once() -> None:
    rib = make_rib()
    rib.announce(A80, [Nlri(pfx(), None)], VIA80)
    old = rib.best(pfx())
    other = AttributeSet.build(next_hop=A80.address, local_pref=100, med=5)
    update = Update(withdrawn=(Nlri(pfx(), None),), attributes=other.attributes,
                    nlri=(Nlri(pfx(), None),))
    (change,) = rib.apply_update(A80, update)
    assert change.old_best is old and change.new_best is not None
    assert change.new_best.attrs.med == 5 and not change.withdrawn
    assert isinstance(rib.loc.entries[pfx()], Path)
    assert rib.counts().best_by_source == {A80.name: 1} and len(rib.adj_in(A80)) == 1


def test_graceful_restart_marks_and_sweeps_lone_paths() -> None:
    rib = make_rib()
    kept, swept = pfx(), Prefix.parse("10.9.0.0/26")
    rib.announce(A80, [Nlri(kept, None), Nlri(swept, None)], VIA80)
    fresh = rib.loc.entries[kept]
    changes = rib.mark_stale(A80)
    assert len(changes) == 2 and all(c.new_best is not None and c.new_best.stale for c in changes)
    stale = rib.loc.entries[kept]
    assert isinstance(stale, Path) and stale.stale and stale.same_route(fresh) is False
    assert rib.adj_in(A80).stale_count() == 2 and rib.counts().best_by_source == {A80.name: 2}
    rib.announce(A80, [Nlri(kept, None)], VIA80)  # refreshed after the restart
    assert isinstance(rib.loc.entries[kept], Path) and not rib.loc.entries[kept].stale
    (gone,) = rib.sweep_stale(A80)
    assert gone.prefix == swept and gone.withdrawn and swept not in rib.loc.entries
    assert rib.counts().best_by_source == {A80.name: 1} and len(rib.adj_in(A80)) == 1


def test_removing_a_source_drops_its_lone_paths_and_leaves_others_lone() -> None:
    rib = make_rib()
    six = Prefix.parse("fd00:10::/64")
    rib.announce(A80, [Nlri(pfx(), None), Nlri(six, None)], VIA80)
    rib.announce(A82, [Nlri(pfx(), None)], VIA82)
    assert isinstance(rib.loc.entries[pfx()], LocEntry)
    changes = rib.drop_peer(A80)
    assert sorted(str(c.prefix) for c in changes) == ["10.244.1.0/26", "fd00:10::/64"]
    left = rib.loc.entries[pfx()]
    assert isinstance(left, Path) and left.peer == A82 and six not in rib.loc.entries
    assert rib.loc.ipv6 == 0 and len(rib) == 1 and len(rib.adj_in(A80)) == 0
    assert rib.counts(None).best_by_source == {A82.name: 1}


def test_an_unchanged_single_path_reports_nothing_and_a_new_one_reports_one_path() -> None:
    rib = make_rib()
    assert len(rib.announce(A80, [Nlri(pfx(), 1)], VIA80)) == 1
    assert rib.announce(A80, [Nlri(pfx(), 1)], VIA80) == []  # the same route again
    other = AttributeSet.build(next_hop=A80.address, local_pref=100, med=5)
    (change,) = rib.announce(A80, [Nlri(pfx(), 1)], other)  # implicit withdraw
    assert change.old_best is not None and change.new_best is not None
    assert change.old_ecmp == (change.old_best,) and change.new_ecmp == (change.new_best,)
    assert len(rib.paths(pfx())) == 1


def test_one_prefix_object_per_prefix() -> None:
    rib = make_rib()
    rib.announce(A80, [Nlri(pfx(), 1)], VIA80)
    rib.announce(A82, [Nlri(pfx(), 7)], VIA82)
    rib.originate(pfx())
    entry = rib.loc.get(pfx())
    assert entry is not None
    key = next(k for k in rib.loc.entries if k == pfx())
    assert key is entry.prefix
    assert all(p.prefix is key for p in entry.paths) and len(entry) == 3
    for source in (A80.name, A82.name, "static1"):
        (path,) = rib.adj_in(source)
        assert path.prefix is key and rib.adj_in(source).lookup(pfx(), path.path_id) is path


def test_a_second_path_id_from_one_source_and_back() -> None:
    """Two path ids of one prefix from one source: two paths, found and withdrawn apart."""
    rib = make_rib()
    rib.announce(A80, [Nlri(pfx(), 1)], VIA80)
    adj = rib.adj_in(A80)
    rib.announce(A80, [Nlri(pfx(), 2)], VIA82)
    assert len(adj) == 2
    assert Nlri(pfx(), 1) in adj and Nlri(pfx(), 2) in adj and Nlri(pfx(), 3) not in adj
    assert Nlri(pfx(), None) not in adj
    got = adj.get(Nlri(pfx(), 2))
    assert got is not None and got.attrs is VIA82
    assert {p.path_id for p in adj} == {1, 2} and len(rib.paths(pfx())) == 2

    rib.withdraw(A80, [Nlri(pfx(), 3)])  # an unknown path id: nothing
    assert len(adj) == 2
    rib.withdraw(A80, [Nlri(pfx(), 1)])
    (slot,) = adj
    assert slot.path_id == 2 and len(adj) == 1 and adj.lookup(pfx(), 1) is None
    rib.withdraw(A80, [Nlri(pfx(), 1)])  # withdrawn already: nothing
    assert len(adj) == 1 and rib.paths(pfx()) == (slot,)


def test_graceful_restart_and_refresh_with_two_path_ids() -> None:
    rib = make_rib()
    rib.announce(A80, [Nlri(pfx(), 1), Nlri(pfx(), 2)], VIA80)
    rib.announce(A80, [Nlri(Prefix.parse("10.9.0.0/26"), 4)], VIA80)
    adj = rib.adj_in(A80)
    rib.mark_stale(A80)
    assert adj.stale_count() == 3 and all(p.stale for p in rib.paths(pfx()))
    rib.announce(A80, [Nlri(pfx(), 2)], VIA80)  # refreshed after the restart
    rib.sweep_stale(A80)
    (kept,) = rib.paths(pfx())
    assert kept.path_id == 2 and not kept.stale and len(adj) == 1 and not adj.gr_active
    assert rib.loc.get(Prefix.parse("10.9.0.0/26")) is None

    rib.announce(A80, [Nlri(pfx(), 1)], VIA80)
    assert rib.begin_refresh(A80) == 2
    rib.announce(A80, [Nlri(pfx(), 1)], VIA80)  # seen again
    assert adj.refresh_pending() == 1
    rib.end_refresh(A80)
    assert [p.path_id for p in adj] == [1] and len(adj) == 1


def test_drop_peer_with_a_dict_slot_counts_down_to_nothing() -> None:
    rib = make_rib()
    six = Prefix.parse("fd00:10::/64")
    rib.announce(A80, [Nlri(pfx(), 1), Nlri(pfx(), 2), Nlri(six, 1)], VIA80)
    adj = rib.adj_in(A80)
    assert (len(adj), adj.ipv6, adj.ipv4_count()) == (3, 1, 2)
    assert rib.counts(None).paths_by_source == {A80.name: 3}
    changes = rib.drop_peer(A80)
    assert len(changes) == 2 and all(c.withdrawn for c in changes)
    assert (len(adj), adj.ipv6, list(adj)) == (0, 0, [])
    assert len(rib) == 0 and rib.loc.ipv6 == 0


def test_an_entry_touched_twice_in_one_operation_reports_once() -> None:
    rib = make_rib()
    other = Prefix.parse("10.9.0.0/26")
    both = [Nlri(pfx(), 1), Nlri(other, 1), Nlri(pfx(), 2)]  # pfx() listed dirty twice
    changes = rib.announce(A80, both, VIA80)
    assert sorted(str(c.prefix) for c in changes) == ["10.244.1.0/26", "10.9.0.0/26"]
    assert rib.counts().best_by_source == {A80.name: 2}
    assert rib.counts().paths_by_source == {A80.name: 3}
    changes = rib.withdraw(A80, both)
    assert len(changes) == 2 and all(c.withdrawn for c in changes)
    assert rib.counts().best_by_source == {} and len(rib) == 0


def test_a_source_sees_only_its_own_paths_and_a_re_registered_peer_keeps_them() -> None:
    rib = make_rib()
    rib.announce(A80, [Nlri(pfx(), 1)], VIA80)
    rib.announce(A82, [Nlri(pfx(), 1)], VIA82)  # same prefix and path id, other source
    a80, a82 = rib.adj_in(A80), rib.adj_in(A82)
    assert [p.peer for p in a80] == [A80] and [p.peer for p in a82] == [A82]
    assert a80.get(Nlri(pfx(), 1)) is not a82.get(Nlri(pfx(), 1))
    renamed = PeerInfo.mesh("192.168.0.80", ASN, router_id="10.0.0.80")  # same name
    rib.add_peer(renamed)
    assert len(rib.adj_in(A80)) == 1 and Nlri(pfx(), 1) in rib.adj_in(renamed)
    (change,) = rib.withdraw(renamed, [Nlri(pfx(), 1)])
    assert change.old_best is not None and change.new_best is not None
    assert [p.peer for p in rib.paths(pfx())] == [A82] and len(a80) == 0


def test_set_origins_keeps_adds_and_removes_blocks() -> None:
    rib = make_rib()
    rib.announce(A80, [Nlri(pfx(), 1)], VIA80)
    assert {str(c.prefix) for c in rib.set_origins(["10.1.0.0/26", "10.2.0.0/26"])} == {
        "10.1.0.0/26", "10.2.0.0/26"}
    assert rib.set_origins(["10.2.0.0/26", "10.1.0.0/26"]) == []  # the same blocks: no change
    changes = rib.set_origins(["10.2.0.0/26", "10.3.0.0/26", str(pfx())])
    assert sorted((str(c.prefix), c.withdrawn) for c in changes) == [
        ("10.1.0.0/26", True), ("10.244.1.0/26", False), ("10.3.0.0/26", False)]
    assert len(rib.adj_in("static1")) == 3 and len(rib.paths(pfx())) == 2
    rib.set_origins([])
    assert len(rib.adj_in("static1")) == 0 and len(rib) == 1


def test_a_path_is_six_fields_and_stale_is_its_class() -> None:
    """Issue #12: a path is a 6-field tuple (getsizeof 88; its allocation 96 bytes: 112 with a
    seventh field); a stale one is a :class:`StalePath` with the same
    fields, equal as a tuple but not the same route, and marking it again changes nothing."""
    rib = make_rib()
    rib.announce(A80, [Nlri(pfx(), None)], VIA80)
    fresh = rib.loc.entries[pfx()]
    assert isinstance(fresh, Path) and type(fresh) is Path and not fresh.stale
    assert len(fresh) == 6 and sys.getsizeof(fresh) <= 88
    stale = fresh.marked_stale()
    assert type(stale) is StalePath and stale.stale and tuple(stale) == tuple(fresh)
    assert not stale.same_route(fresh) and not fresh.same_route(stale)
    assert stale.same_route(stale.marked_stale()) and stale.marked_stale() is stale
    assert stale.describe().endswith("(stale)") and stale.to_dict()["stale"] is True
