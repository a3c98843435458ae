"""Best-path selection, its reasons, and BIRD's ECMP merge rule (speaker.rib.decision)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from speaker.rib import (
    AttributeSet,
    BestPathReason,
    Path,
    PeerInfo,
    Rib,
    RouteChange,
    SelectionPolicy,
    SourceKind,
    compare,
    decide,
    ecmp_set,
    explain_ecmp,
    merge_obstacle,
)
from speaker.rib.decision import eliminate
from speaker.wire.attributes import (
    AsPathSegment,
    ClusterListAttr,
    OriginatorIdAttr,
    PathAttribute,
)
from speaker.wire.enums import AsPathSegmentType, Origin
from speaker.wire.nlri import Prefix

ASN = 64512
PFX = "10.244.152.128/26"
R = BestPathReason


def ip(text: str) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(text)


def peer(addr: str, *, asn: int = ASN, rid: str | None = None) -> PeerInfo:
    return PeerInfo(f"P_{addr}", ip(addr), ip(rid or addr), asn, internal=asn == ASN)


def local(kind: SourceKind, name: str | None = None) -> PeerInfo:
    return PeerInfo.local(kind, ip("192.168.0.81"), ASN, name)


@dataclass
class P:
    """A path description for tables."""

    src: PeerInfo
    nh: str | None = None
    lp: int | None = None
    path: tuple[int, ...] = ()
    origin: Origin = Origin.IGP
    med: int | None = None
    originator: str | None = None
    clusters: tuple[str, ...] = ()
    stale: bool = False
    path_id: int | None = None
    kind: SourceKind = SourceKind.BGP
    extra: list[object] = field(default_factory=list)

    def build(self) -> Path:
        extra: list[PathAttribute] = []
        if self.originator:
            extra.append(OriginatorIdAttr(ip(self.originator)))
        if self.clusters:
            extra.append(ClusterListAttr(tuple(ip(c) for c in self.clusters)))
        if self.kind is SourceKind.BGP:
            segs = (AsPathSegment(AsPathSegmentType.AS_SEQUENCE, self.path),) if self.path else ()
            nh = ip(self.nh) if self.nh else self.src.address
            attrs = AttributeSet.build(
                origin=self.origin,
                as_path=segs,
                next_hop=nh,
                med=self.med,
                local_pref=self.lp,
                extra=extra,
            )
        else:
            attrs = AttributeSet.intern(())
        path = Path(Prefix.parse(PFX), self.path_id, attrs, self.src, self.kind, 0.0)
        return path.marked_stale() if self.stale else path


A80, A82 = peer("192.168.0.80"), peer("192.168.0.82")
E1 = peer("172.16.0.1", asn=65001)
E2 = peer("172.16.0.2", asn=65002)
E1B = peer("172.16.0.3", asn=65001, rid="10.0.0.99")

# (id, paths, index of the expected winner, reason, words expected in the detail, policy)
STEPS = [
    (
        "static beats BGP on preference",
        [P(A80), P(local(SourceKind.LOCAL), kind=SourceKind.LOCAL)],
        1,
        R.PREFERENCE,
        "higher preference 200 > 100",
        None,
    ),
    (
        "BGP beats a kernel-learned route (BIRD: kernel 10)",
        [P(local(SourceKind.KERNEL), kind=SourceKind.KERNEL), P(A80)],
        1,
        R.PREFERENCE,
        "100 > 10",
        None,
    ),
    (
        "equal preference, different protocols",
        [P(local(SourceKind.KERNEL), kind=SourceKind.KERNEL), P(A80)],
        0,
        R.SOURCE_KIND,
        "source kernel over bgp",
        {SourceKind.KERNEL: 200, SourceKind.BGP: 200},
    ),
    (
        "two local sources",
        [
            P(local(SourceKind.LOCAL, "static2"), kind=SourceKind.LOCAL),
            P(local(SourceKind.LOCAL, "static1"), kind=SourceKind.LOCAL),
        ],
        1,
        R.SOURCE_NAME,
        "static1 < static2",
        None,
    ),
    ("stale loses when otherwise equal", [P(A80, stale=True), P(A82)], 1, R.STALE, "stale", None),
    (
        "stale loses even with a higher LOCAL_PREF (BIRD orders it first)",
        [P(A80, stale=True, lp=300), P(A82, lp=100)],
        1,
        R.STALE,
        "is stale",
        None,
    ),
    ("higher LOCAL_PREF", [P(A80, lp=100), P(A82, lp=200)], 1, R.LOCAL_PREF, "200 > 100", None),
    ("absent LOCAL_PREF counts 100", [P(A80, lp=50), P(A82)], 1, R.LOCAL_PREF, "100 > 50", None),
    (
        "shorter AS_PATH",
        [P(E1, path=(65001, 65010)), P(E1B, path=(65001,))],
        1,
        R.AS_PATH_LENGTH,
        "shorter AS_PATH 1 < 2",
        None,
    ),
    (
        "lower ORIGIN",
        [P(A80, origin=Origin.INCOMPLETE), P(A82, origin=Origin.IGP)],
        1,
        R.ORIGIN,
        "IGP < INCOMPLETE",
        None,
    ),
    ("lower MED, same neighbour AS", [P(A80, med=50), P(A82, med=10)], 1, R.MED, "10 < 50", None),
    (
        "MED not compared across neighbour ASes: router id decides",
        [P(E1, path=(65001,), med=50), P(E2, path=(65002,), med=10)],
        0,
        R.ROUTER_ID,
        "172.16.0.1 < 172.16.0.2",
        None,
    ),
    (
        "always-compare MED (BIRD med metric)",
        [P(E1, path=(65001,), med=50), P(E2, path=(65002,), med=10)],
        1,
        R.MED,
        "lower MED 10 < 50",
        "always",
    ),
    (
        "eBGP over iBGP",
        [P(A80, path=(65001,)), P(E1, path=(65001,))],
        1,
        R.EXTERNAL,
        "eBGP over iBGP",
        None,
    ),
    ("lower router id", [P(A82), P(A80)], 1, R.ROUTER_ID, "192.168.0.80 < 192.168.0.82", None),
    (
        "ORIGINATOR_ID stands in for the router id",
        [P(A80, originator="10.9.9.9"), P(A82, originator="10.1.1.1")],
        1,
        R.ROUTER_ID,
        "ORIGINATOR_ID 10.1.1.1 < 10.9.9.9",
        None,
    ),
    (
        "shorter CLUSTER_LIST",
        [
            P(A80, originator="10.1.1.1", clusters=("1.1.1.1", "2.2.2.2")),
            P(A82, originator="10.1.1.1", clusters=("1.1.1.1",)),
        ],
        1,
        R.CLUSTER_LIST,
        "1 < 2",
        None,
    ),
    (
        "lower peer address",
        [P(peer("192.168.0.90", rid="1.1.1.1")), P(peer("192.168.0.85", rid="1.1.1.1"))],
        1,
        R.PEER_ADDRESS,
        "192.168.0.85 < 192.168.0.90",
        None,
    ),
    (
        "two add-path paths of one peer",
        [P(A80, path_id=7, nh="192.168.0.9"), P(A80, path_id=3, nh="192.168.0.8")],
        1,
        R.PATH_ID,
        "3 < 7",
        None,
    ),
]


@pytest.mark.parametrize(
    ("paths", "winner", "reason", "words", "knob"),
    [case[1:] for case in STEPS],
    ids=[case[0] for case in STEPS],
)
def test_each_step_decides_with_its_reason(
    paths: list[P], winner: int, reason: BestPathReason, words: str, knob: object
) -> None:
    built = [p.build() for p in paths]
    if knob == "always":
        policy = SelectionPolicy(always_compare_med=True)
    elif isinstance(knob, dict):
        policy = SelectionPolicy(preferences=knob)
    else:
        policy = SelectionPolicy()
    for order in (built, built[::-1]):  # the outcome does not depend on arrival order
        d = decide(order, policy)
        assert d.best is built[winner]
        assert d.reason is reason
        assert words in d.detail
        assert d.runner_up is built[1 - winner]
        assert d.losers == ((built[1 - winner], reason),)


def test_only_path_and_no_path() -> None:
    only = P(A80).build()
    assert decide([only]).reason is R.ONLY_PATH
    assert decide([only]).best is only
    none = decide([])
    assert none.best is None and none.reason is R.NO_PATH


def test_med_groups_are_order_independent() -> None:
    # The classic intransitive triple: pairwise "better" cycles, elimination does not.
    a = P(E1, path=(65001,), med=50).build()
    b = P(E2, path=(65002,), med=0).build()
    c = P(E1B, path=(65001,), med=10).build()
    winners = {decide(order).best for order in ([a, b, c], [b, c, a], [c, a, b], [c, b, a])}
    assert len(winners) == 1
    d = decide([a, b, c])
    # MED removes a (same AS as c, higher MED); router id then picks c (10.0.0.99) over b
    assert dict((p, r) for p, r in d.losers)[a] is R.MED
    assert d.best is c and d.reason is R.ROUTER_ID


def test_compare_pairwise_explains() -> None:
    d = compare(P(A80, med=50).build(), P(A82, med=10).build())
    assert d.describe() == "path from 192.168.0.82 wins on lower MED 10 < 50 (RFC 4271 9.1.2.2 c)"


# ---------------------------------------------------------------------------- ECMP

MERGE = [
    ("equal iBGP paths merge", P(A80), P(A82), None),
    ("different MED", P(A80, med=10), P(A82, med=50), "different MED 10 != 50"),
    ("stale vs non-stale", P(A80), P(A82, stale=True), "stale and non-stale"),
    ("different LOCAL_PREF", P(A80, lp=200), P(A82, lp=100), "different LOCAL_PREF"),
    ("different AS_PATH length", P(E1, path=(65001,)), P(E1B, path=(65001, 7)), "AS_PATH length"),
    ("different ORIGIN", P(A80), P(A82, origin=Origin.EGP), "different ORIGIN"),
    ("iBGP and eBGP", P(E1, path=(65001,)), P(A82, path=(65001,)), "iBGP and eBGP"),
    (
        "MED ignored across neighbour ASes",
        P(E1, path=(65001,), med=10),
        P(E2, path=(65002,), med=50),
        None,
    ),
    (
        "static best never merges",
        P(local(SourceKind.LOCAL), kind=SourceKind.LOCAL),
        P(A82),
        "only BGP paths merge",
    ),
]


@pytest.mark.parametrize(
    ("best", "other", "why"), [m[1:] for m in MERGE], ids=[m[0] for m in MERGE]
)
def test_merge_rule(best: P, other: P, why: str | None) -> None:
    b, o = best.build(), other.build()
    obstacle = merge_obstacle(b, o)
    if why is None:
        assert obstacle is None
        assert ecmp_set(b, [b, o]) == (b, o)
    else:
        assert obstacle is not None and why in obstacle
        assert ecmp_set(b, [b, o]) == (b,)


def test_same_next_hop_counts_once() -> None:
    best = P(A80, nh="192.168.0.80").build()
    twin = P(A82, nh="192.168.0.80").build()  # another path via the same router
    third = P(peer("192.168.0.83"), nh="192.168.0.83").build()
    assert ecmp_set(best, [best, twin, third]) == (best, third)
    why = dict(explain_ecmp(best, [best, twin, third]))
    assert why[third] is None
    assert "already in the set" in (why[twin] or "")


def test_merge_limit() -> None:
    paths = [P(peer(f"192.168.1.{i}")).build() for i in range(1, 21)]
    best = decide(paths).best
    assert best is not None
    assert len(ecmp_set(best, paths)) == 16  # BIRD's default limit
    assert len(ecmp_set(best, paths, limit=4)) == 4
    assert ecmp_set(best, paths)[0] is best


# ---------------------------------------------------------------------------- via the Rib


def _rib(**kw: object) -> Rib:
    rib = Rib(asn=ASN, router_id="192.168.0.81", clock=lambda: 1000.0, **kw)  # type: ignore[arg-type]
    rib.add_peer(A80)
    rib.add_peer(A82)
    return rib


def _nh(addr: str, **kw: object) -> AttributeSet:
    return AttributeSet.build(next_hop=ip(addr), local_pref=100, **kw)  # type: ignore[arg-type]


def _announce(rib: Rib, src: PeerInfo, attrs: AttributeSet) -> list[RouteChange]:
    from speaker.wire.nlri import Nlri

    return rib.announce(src, [Nlri(Prefix.parse(PFX), None)], attrs)


def test_route_change_describes_the_decision() -> None:
    rib = _rib()
    (first,) = _announce(rib, A80, _nh("192.168.0.80", med=50))
    assert first.describe() == "10.244.152.128/26: best via 192.168.0.80 (only path)"
    assert first.old_best is None and first.new_ecmp == (first.new_best,)
    (second,) = _announce(rib, A82, _nh("192.168.0.82", med=10))
    assert second.reason is R.MED
    assert second.describe() == (
        "10.244.152.128/26: path from 192.168.0.82 wins on lower MED 10 < 50 (RFC 4271 9.1.2.2 c)"
    )
    assert second.old_best is first.new_best
    assert second.runner_up is first.new_best
    assert second.to_dict()["reason"] == "MED"


def test_ecmp_change_is_reported_and_merge_paths_off() -> None:
    rib = _rib()
    _announce(rib, A80, _nh("192.168.0.80"))
    (change,) = _announce(rib, A82, _nh("192.168.0.82"))
    assert [p.via for p in change.new_ecmp] == ["192.168.0.80", "192.168.0.82"]
    assert change.describe().endswith("ECMP via 192.168.0.80, 192.168.0.82")
    assert change.new_best is change.old_best  # best unchanged, the set grew
    off = _rib(merge_paths=False)
    _announce(off, A80, _nh("192.168.0.80"))
    changes = _announce(off, A82, _nh("192.168.0.82"))
    assert changes == []  # best did not change and there is no ECMP set to grow
    assert len(off.ecmp(PFX)) == 1


def test_local_block_beats_bgp_announcement_of_it() -> None:
    rib = _rib()
    _announce(rib, A80, _nh("192.168.0.80"))
    (change,) = rib.originate(PFX)
    assert change.reason is R.PREFERENCE
    assert change.new_best is not None and change.new_best.source is SourceKind.LOCAL
    assert change.describe().startswith("10.244.152.128/26: path from static1 wins on higher")
    assert rib.ecmp(PFX) == (change.new_best,)


# ---------------------------------------------------------------------------- cross-checks

_PEERS = [A80, A82, E1, E2, E1B, peer("192.168.0.85", rid="192.168.0.80")]


@st.composite
def paths_(draw: st.DrawFn) -> Path:
    kind = draw(st.sampled_from([SourceKind.BGP] * 6 + list(SourceKind)))
    src = draw(st.sampled_from(_PEERS)) if kind is SourceKind.BGP else local(kind)
    return P(
        src,
        nh=draw(st.sampled_from([None, "192.168.0.9", "192.168.0.10"])),
        lp=draw(st.sampled_from([None, 100, 200])),
        path=draw(st.sampled_from([(), (65001,), (65002,), (65001, 65002)])),
        origin=draw(st.sampled_from(list(Origin))),
        med=draw(st.sampled_from([None, 0, 10, 50])),
        originator=draw(st.sampled_from([None, "10.1.1.1", "10.2.2.2"])),
        clusters=draw(st.sampled_from([(), ("1.1.1.1",), ("1.1.1.1", "2.2.2.2")])),
        stale=draw(st.booleans()),
        path_id=draw(st.integers(0, 3)),
        kind=kind,
    ).build()


@given(a=paths_(), b=paths_(), always=st.booleans())
def test_two_path_fast_path_agrees_with_elimination(a: Path, b: Path, always: bool) -> None:
    assume(a.key != b.key)
    policy = SelectionPolicy(always_compare_med=always)
    fast = decide([a, b], policy)
    slow = eliminate([a, b], policy)
    assert (fast.best, fast.reason, fast.runner_up) == (slow.best, slow.reason, slow.runner_up)
    assert decide([b, a], policy).best is fast.best
    assert fast.detail == slow.detail
    # ECMP: the two-path shortcut agrees with the rule and with the general walk, which a
    # third path (the loser's twin under a higher path id, so the same next hop) forces
    best = fast.best
    assert best is not None
    other = b if best is a else a
    short = ecmp_set(best, [a, b], policy)
    assert (len(short) == 2) == (
        merge_obstacle(best, other, policy) is None and other.next_hop != best.next_hop
    )
    twin = other._replace(path_id=(other.path_id or 0) + 100)
    assert eliminate([a, b, twin], policy).best is best
    assert ecmp_set(best, [a, b, twin], policy) == short


def test_attribute_sets_are_interned() -> None:
    one = AttributeSet.build(next_hop=ip("192.168.0.80"), local_pref=100)
    two = AttributeSet.build(next_hop=ip("192.168.0.80"), local_pref=100)
    assert one is two
    assert AttributeSet.intern(one.attributes) is one
    assert AttributeSet.build(next_hop=ip("192.168.0.82"), local_pref=100) is not one
    # the same values with a different flags octet (Partial bit) are a different set
    from speaker.wire.attributes import CommunitiesAttr

    plain = AttributeSet.build(communities=[1])
    partial = AttributeSet.intern(
        [a if a.type_code != 8 else CommunitiesAttr((1,), flags=0xE0) for a in plain.attributes]
    )
    assert partial is not plain
    assert one.bird_lines() == [
        "BGP.origin: IGP",
        "BGP.as_path: ",
        "BGP.next_hop: 192.168.0.80",
        "BGP.local_pref: 100",
    ]
