"""Views for the control socket: show route [all] [for ADDR], show route count."""

from __future__ import annotations

import ipaddress

import pytest

from speaker.rib import AttributeSet, BestPathReason, PeerInfo, Rib, SourceKind
from speaker.wire.nlri import Nlri, Prefix

ASN = 64512
A80 = PeerInfo.mesh("192.168.0.80", ASN)
A82 = PeerInfo.mesh("192.168.0.82", ASN)


def seed_rib() -> Rib:
    """Node .81 of the seed: its block, a workload, two learned blocks, a default route."""
    rib = Rib(asn=ASN, router_id="192.168.0.81", clock=lambda: 1_662_786_873.0)
    rib.add_peer(A80)
    rib.add_peer(A82)
    rib.originate("10.244.42.64/26")
    rib.originate("10.244.42.65/32", kind=SourceKind.KERNEL)
    rib.originate("0.0.0.0/0", kind=SourceKind.KERNEL, next_hop="192.168.0.1")
    rib.originate("192.168.0.0/24", kind=SourceKind.DIRECT)
    for peer, block in ((A80, "10.244.152.128/26"), (A82, "10.244.103.64/26")):
        attrs = AttributeSet.build(next_hop=peer.address, local_pref=100)
        rib.announce(peer, [Nlri(Prefix.parse(block), 4)], attrs)
    return rib


def test_show_route_lists_every_prefix_in_order_with_marks() -> None:
    views = seed_rib().show_route()
    assert [str(v.prefix) for v in views] == [
        "0.0.0.0/0",
        "10.244.42.64/26",
        "10.244.42.65/32",
        "10.244.103.64/26",
        "10.244.152.128/26",
        "192.168.0.0/24",
    ]
    lines = {str(v.prefix): v.paths[0].bird_line() for v in views}
    assert lines["10.244.103.64/26"] == (
        "192.168.0.82 [Mesh_192_168_0_82 from 192.168.0.82 path-id 4] * (100/0) [i]"
    )
    assert lines["10.244.42.64/26"] == "blackhole [static1] * (200)"
    assert lines["10.244.42.65/32"] == "dev [kernel1] * (10)"
    assert lines["0.0.0.0/0"] == "192.168.0.1 [kernel1] * (10)"
    assert lines["192.168.0.0/24"] == "dev [direct1] * (240)"


def test_show_route_all_attributes_like_bird() -> None:
    (view,) = seed_rib().show_route(prefix="10.244.103.64/26")
    best = view.best
    assert best is not None and best.source_name == "Mesh_192_168_0_82"
    assert best.since == 1_662_786_873.0
    # birdc: BGP.origin: IGP / BGP.as_path: / BGP.next_hop: 192.168.0.82 / BGP.local_pref: 100
    assert best.attrs.bird_lines() == [
        "BGP.origin: IGP",
        "BGP.as_path: ",
        "BGP.next_hop: 192.168.0.82",
        "BGP.local_pref: 100",
    ]


def test_best_ecmp_and_losers_are_marked() -> None:
    rib = seed_rib()
    block = Prefix.parse("10.244.152.128/26")
    # .82 also announces .80's block (equal attributes): ECMP; a third path with MED loses
    rib.announce(A82, [Nlri(block, 9)], AttributeSet.build(next_hop=A82.address, local_pref=100))
    rib.announce(
        A82,
        [Nlri(block, 10)],
        AttributeSet.build(next_hop=ipaddress.IPv4Address("192.168.0.9"), med=5),
    )
    (view,) = rib.show_route(for_address="10.244.152.130")
    marks = [(v.path.via, v.best, v.ecmp, v.reason) for v in view.paths]
    # MED removed the third path first; the router id then decided between the other two
    assert marks[0] == ("192.168.0.80", True, True, BestPathReason.ROUTER_ID)
    assert ("192.168.0.82", False, True, BestPathReason.ROUTER_ID) in marks
    assert ("192.168.0.9", False, False, BestPathReason.MED) in marks
    assert [v.path.via for v in view.ecmp] == ["192.168.0.80", "192.168.0.82"]
    why = dict((p.via, w) for p, w in rib.explain_ecmp(block))
    assert why["192.168.0.82"] is None and "different MED 0 != 5" in (why["192.168.0.9"] or "")
    assert rib.decision(block).reason is BestPathReason.ROUTER_ID


@pytest.mark.parametrize(
    ("target", "found"),
    [
        ("10.244.42.65", "10.244.42.65/32"),
        ("10.244.42.66", "10.244.42.64/26"),
        ("10.244.42.64/27", "10.244.42.64/26"),
        ("10.244.103.64/26", "10.244.103.64/26"),
        ("8.8.8.8", "0.0.0.0/0"),
        ("fd00::1", None),
    ],
)
def test_longest_prefix_match(target: str, found: str | None) -> None:
    rib = seed_rib()
    got = rib.lookup(target)
    assert (None if got is None else str(got)) == found
    views = rib.show_route(for_address=target)
    assert [str(v.prefix) for v in views] == ([] if found is None else [found])


def test_lookup_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="not an address or prefix"):
        seed_rib().lookup("10.244.300.1")


def test_count_and_source_filter() -> None:
    rib = seed_rib()
    c = rib.count()
    assert (c.paths, c.networks) == (6, 6)
    assert c.describe() == "6 of 6 routes for 6 networks"
    assert c.by_source == {
        "Mesh_192_168_0_80": 1,
        "Mesh_192_168_0_82": 1,
        "direct1": 1,
        "kernel1": 2,
        "static1": 1,
    }
    assert [str(v.prefix) for v in rib.show_route(source="kernel1")] == [
        "0.0.0.0/0",
        "10.244.42.65/32",
    ]
    assert rib.show_route(prefix="10.9.9.0/24") == []
