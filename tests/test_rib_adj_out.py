"""Adj-RIB-Out: what we send, in which UPDATEs, under which path identifiers."""

from __future__ import annotations

import ipaddress

import pytest

from speaker.rib import (
    AttributeSet,
    CalicoExportPolicy,
    ExportStep,
    PeerInfo,
    Rib,
    SourceKind,
    Verdict,
)
from speaker.rib.rib import UnknownPeerError
from speaker.wire import (
    DEFAULT_CONTEXT,
    IPV4_UNICAST,
    IPV6_UNICAST,
    Negotiated,
    RouteRefresh,
    Update,
    decode_message,
)
from speaker.wire.attributes import AsPathAttr, LocalPrefAttr, MpReachAttr, NextHopAttr
from speaker.wire.enums import AsPathSegmentType, AttrType, RouteRefreshSubtype
from speaker.wire.nlri import Nlri, Prefix

ASN = 64512
ME = "192.168.0.81"
A80 = PeerInfo.mesh("192.168.0.80", ASN)
A82 = PeerInfo.mesh("192.168.0.82", ASN)


def ebgp(addr: str, asn: int) -> PeerInfo:
    ip = ipaddress.IPv4Address(addr)
    return PeerInfo("Global_" + addr.replace(".", "_"), ip, ip, asn, False)


E1, E2, E3 = ebgp("172.16.0.1", 65001), ebgp("172.16.0.2", 65002), ebgp("172.16.0.3", 65003)
ADDPATH = Negotiated(
    addpath_receive=frozenset({IPV4_UNICAST}), addpath_send=frozenset({IPV4_UNICAST})
)
ADDPATH6 = Negotiated(
    addpath_receive=frozenset({IPV6_UNICAST}), addpath_send=frozenset({IPV6_UNICAST})
)

# What BIRD 1.6.8 (node .81) sent node .82 for its block (mesh-restart.pcap frame 14):
# ORIGIN IGP, empty AS_PATH, NEXT_HOP 192.168.0.81, LOCAL_PREF 100, 10.244.42.64/26 path id 4.
BIRD_BLOCK = bytes.fromhex(
    "ffffffffffffffffffffffffffffffff0035020000001540010100400200400304c0a8005140050400000064"
    "000000041a0af42a40"
)
BIRD_EOR = bytes.fromhex("ffffffffffffffffffffffffffffffff00170200000000")  # frame 16
BIRD_BORR = bytes.fromhex("ffffffffffffffffffffffffffffffff00170500010101")  # lifecycle 34
BIRD_EORR = bytes.fromhex("ffffffffffffffffffffffffffffffff00170500010201")  # lifecycle 42
# bird6 on .81 to .80 (lifecycle.pcap frame 12): ORIGIN, AS_PATH, LOCAL_PREF, MP_REACH
# (next hop fd00::81, fd00:10:244:42::/122 path id 3), then its End-of-RIB (MP_UNREACH).
BIRD6_BLOCK = bytes.fromhex(
    "ffffffffffffffffffffffffffffffff0052020000003b4001010040020040050400000064800e2a00020110"
    "fd00000000000000000000000000008100000000037afd000010024400420000000000000000"
)
BIRD6_EOR = bytes.fromhex("ffffffffffffffffffffffffffffffff001d0200000006800f03000201")


def pfx(text: str) -> Prefix:
    return Prefix.parse(text)


def node_rib(*, calico: bool = True) -> Rib:
    policy = CalicoExportPolicy(["10.244.42.64/26", "fd00:10:244:42::/122"], ["10.244.0.0/16"])
    rib = Rib(asn=ASN, router_id=ME, export_policy=policy if calico else None, clock=lambda: 5.0)
    for p in (A80, A82, E1, E2, E3):
        rib.add_peer(p)
    return rib


def decode_all(msgs: list[bytes], ctx: Negotiated) -> list[Update]:
    """Read our UPDATEs the way the peer does (its context is ours reversed)."""
    out = []
    for raw in msgs:
        msg = decode_message(raw, ctx.reversed())
        assert isinstance(msg, Update), msg
        assert not msg.errors
        out.append(msg)
    return out


def ebgp_attrs(peer: PeerInfo, med: int | None = None) -> AttributeSet:
    from speaker.wire.attributes import AsPathSegment

    seg = AsPathSegment(AsPathSegmentType.AS_SEQUENCE, (peer.asn,))
    return AttributeSet.build(as_path=(seg,), next_hop=peer.address, med=med)


# ---------------------------------------------------------------------------- BIRD's shape


def test_our_block_is_sent_exactly_as_bird_sends_it() -> None:
    rib = node_rib()
    rib.originate("10.244.42.64/26")
    rib.add_out_peer(A82, ADDPATH, local_address=ME)
    update, eor = rib.initial_feed(A82)
    # identical to BIRD's bytes but for the path identifier, which is ours to choose
    assert update == BIRD_BLOCK.replace(bytes.fromhex("000000041a"), bytes.fromhex("000000011a"))
    assert eor == BIRD_EOR


def test_without_addpath_no_path_identifier() -> None:
    rib = node_rib()
    rib.originate("10.244.42.64/26")
    rib.add_out_peer(A82, DEFAULT_CONTEXT, local_address=ME)
    update, eor = rib.initial_feed(A82)
    assert update == BIRD_BLOCK[:-9].replace(b"\x00\x35", b"\x00\x31", 1) + bytes.fromhex(
        "1a0af42a40"
    )
    assert eor == BIRD_EOR


def test_ipv6_block_as_bird6_sends_it() -> None:
    rib = node_rib()
    rib.originate("fd00:10:244:42::/122")
    rib.add_out_peer(A80, ADDPATH6, local_address="fd00::81", families=[IPV6_UNICAST])
    update, eor = rib.initial_feed(A80)
    assert update == BIRD6_BLOCK.replace(bytes.fromhex("000000037a"), bytes.fromhex("000000017a"))
    assert eor == BIRD6_EOR


def test_ebgp_peer_gets_our_as_and_no_local_pref() -> None:
    rib = node_rib()
    rib.originate("10.244.42.64/26")
    rib.add_out_peer(E1, DEFAULT_CONTEXT, local_address="172.16.0.254")
    (update,) = decode_all(rib.initial_feed(E1)[:-1], DEFAULT_CONTEXT)
    path = update.attribute(AttrType.AS_PATH)
    assert isinstance(path, AsPathAttr) and path.segments[0].asns == (ASN,)
    assert update.attribute(AttrType.LOCAL_PREF) is None
    nh = update.attribute(AttrType.NEXT_HOP)
    assert isinstance(nh, NextHopAttr) and str(nh.address) == "172.16.0.254"


# ---------------------------------------------------------------------------- what is exported


def test_initial_feed_sends_only_what_passes_export_and_ends_with_eor() -> None:
    rib = node_rib()
    rib.originate("10.244.42.64/26")  # own block: accept
    rib.originate("10.244.42.65/32", kind=SourceKind.KERNEL)  # own workload: reject
    rib.originate("10.244.103.70/32", kind=SourceKind.KERNEL)  # borrowed IP: accept
    rib.originate("0.0.0.0/0", kind=SourceKind.KERNEL)  # default route: reject
    rib.announce(A80, [Nlri(pfx("10.244.152.128/26"), 4)], AttributeSet.build(next_hop=A80.address))
    rib.add_out_peer(A82, ADDPATH, local_address=ME)
    msgs = rib.initial_feed(A82)
    assert msgs[-1] == BIRD_EOR
    updates = decode_all(msgs, ADDPATH)
    assert updates[-1].end_of_rib() == IPV4_UNICAST
    sent = sorted(str(n.prefix) for u in updates for n in u.nlri)
    assert sent == ["10.244.103.70/32", "10.244.42.64/26"]  # one UPDATE: same attributes
    assert len(updates) == 2
    explained = {str(p.peer.name): d for p, d in rib.explain_export(A82, "10.244.42.65/32")}
    assert explained["kernel1"].step is ExportStep.INSIDE_OWN_BLOCK
    (mesh,) = rib.explain_export(A82, "10.244.152.128/26")
    assert mesh[1].step is ExportStep.SPLIT_HORIZON
    rib.add_out_peer(A80, ADDPATH, local_address=ME)
    ((_, back),) = rib.explain_export(A80, "10.244.152.128/26")
    assert back.step is ExportStep.SOURCE_PEER


def test_route_is_never_sent_back_to_its_peer() -> None:
    rib = node_rib()
    rib.announce(E1, [Nlri(pfx("198.51.100.0/24"))], ebgp_attrs(E1))
    rib.add_out_peer(E1, DEFAULT_CONTEXT, local_address="172.16.0.254")
    rib.add_out_peer(E2, DEFAULT_CONTEXT, local_address="172.16.0.254")
    assert rib.initial_feed(E1) == [BIRD_EOR]
    ((_, decision),) = rib.explain_export(E1, "198.51.100.0/24")
    assert decision.step is ExportStep.SOURCE_PEER and decision.verdict is Verdict.REJECT
    # towards another eBGP peer it meets the Calico filter: outside the pools, rejected
    assert rib.initial_feed(E2) == [BIRD_EOR]


def test_flush_before_initial_feed_sends_nothing() -> None:
    rib = node_rib()
    rib.add_out_peer(A82, ADDPATH, local_address=ME)
    rib.originate("10.244.42.64/26")
    assert rib.flush(A82) == []
    assert len(rib.initial_feed(A82)) == 2
    assert rib.flush(A82) == []


def test_packing_many_prefixes_with_one_attribute_set() -> None:
    rib = node_rib()
    hosts = [f"10.244.{i // 200}.{i % 200}/32" for i in range(300)]
    for h in hosts:
        rib.originate(h, kind=SourceKind.KERNEL)  # borrowed /32s, all in the pool
    rib.add_out_peer(A82, ADDPATH, local_address=ME)
    msgs = rib.initial_feed(A82)
    assert len(msgs) == 2  # 300 * 9 octets fit one 4096-octet UPDATE, then End-of-RIB
    (update, _) = decode_all(msgs, ADDPATH)
    assert sorted(str(n.prefix) for n in update.nlri) == sorted(hosts)
    assert [n.path_id for n in update.nlri] == [1] * 300
    # many more: several UPDATEs, each within the limit, nothing lost or repeated
    more = [f"10.244.{100 + i // 250}.{i % 250}/32" for i in range(2000)]
    for h in more:
        rib.originate(h, kind=SourceKind.KERNEL)
    msgs = rib.flush(A82)
    assert len(msgs) > 1 and all(len(m) <= 4096 for m in msgs)
    got = [str(n.prefix) for u in decode_all(msgs, ADDPATH) for n in u.nlri]
    assert sorted(got) == sorted(more)


# ---------------------------------------------------------------------------- path identifiers


Sent = list[tuple[str, int | None]]


def _nlris(msgs: list[bytes], ctx: Negotiated) -> tuple[Sent, Sent]:
    ups = decode_all(msgs, ctx)
    ann = [(str(n.prefix), n.path_id) for u in ups for n in u.nlri]
    wd = [(str(n.prefix), n.path_id) for u in ups for n in u.withdrawn]
    return ann, wd


def test_addpath_ids_stable_reused_by_withdrawal_and_not_recycled_within_a_flush() -> None:
    rib = node_rib(calico=False)
    net = "198.51.100.0/24"
    rib.add_out_peer(A82, ADDPATH, local_address=ME)
    rib.announce(E1, [Nlri(pfx(net))], ebgp_attrs(E1))
    rib.announce(E2, [Nlri(pfx(net))], ebgp_attrs(E2))
    ann, wd = _nlris(rib.initial_feed(A82)[:-1], ADDPATH)
    assert sorted(ann) == [(net, 1), (net, 2)] and wd == []
    out = rib.adj_out(A82)
    assert out.path_id(pfx(net), (E1.name, None)) == 1
    assert out.path_id(pfx(net), (E2.name, None)) == 2
    # E2's attributes change: re-announced under the same id
    rib.announce(E2, [Nlri(pfx(net))], ebgp_attrs(E2, med=9))
    assert _nlris(rib.flush(A82), ADDPATH) == ([(net, 2)], [])
    # E1 withdraws and E3 arrives in the same flush: id 1 is withdrawn, E3 must not take it
    rib.withdraw(E1, [Nlri(pfx(net))])
    rib.announce(E3, [Nlri(pfx(net))], ebgp_attrs(E3))
    msgs = rib.flush(A82)
    assert _nlris(msgs, ADDPATH) == ([(net, 3)], [(net, 1)])
    assert decode_all(msgs, ADDPATH)[0].withdrawn  # withdrawals go first
    # a later newcomer may have the freed id
    rib.withdraw_origin(net)  # nothing to withdraw: no change, no message
    assert rib.flush(A82) == []
    rib.originate(net)
    assert _nlris(rib.flush(A82), ADDPATH) == ([(net, 1)], [])
    assert [(str(r.prefix), r.path_id) for r in out.advertised()] == [(net, 1), (net, 2), (net, 3)]


def test_without_addpath_only_the_best_and_implicit_replace() -> None:
    rib = node_rib(calico=False)
    net = "198.51.100.0/24"
    rib.add_out_peer(A82, DEFAULT_CONTEXT, local_address=ME)
    rib.announce(E2, [Nlri(pfx(net))], ebgp_attrs(E2))
    ann, _ = _nlris(rib.initial_feed(A82)[:-1], DEFAULT_CONTEXT)
    assert ann == [(net, None)]
    rib.announce(E1, [Nlri(pfx(net))], ebgp_attrs(E1))  # E1 wins on router id
    msgs = rib.flush(A82)
    assert _nlris(msgs, DEFAULT_CONTEXT) == ([(net, None)], [])
    (update,) = decode_all(msgs, DEFAULT_CONTEXT)
    nh = update.attribute(AttrType.NEXT_HOP)
    assert isinstance(nh, NextHopAttr) and str(nh.address) == "172.16.0.1"  # iBGP: kept
    lp = update.attribute(AttrType.LOCAL_PREF)
    assert isinstance(lp, LocalPrefAttr) and lp.value == 100
    rib.drop_peer(E1)
    rib.drop_peer(E2)
    assert _nlris(rib.flush(A82), DEFAULT_CONTEXT) == ([], [(net, None)])
    assert len(rib.adj_out(A82)) == 0


def test_changes_are_coalesced_per_prefix() -> None:
    rib = node_rib()
    rib.add_out_peer(A82, ADDPATH, local_address=ME)
    rib.initial_feed(A82)
    rib.originate("10.244.42.64/26")
    rib.withdraw_origin("10.244.42.64/26")
    assert rib.flush(A82) == []  # appeared and went between flushes: nothing to say
    rib.originate("10.244.42.64/26")
    rib.originate("10.244.103.70/32", kind=SourceKind.KERNEL)
    msgs = rib.flush_all()[A82.name]
    assert len(msgs) == 1  # both share the attribute set
    rib.withdraw_origin("10.244.42.64/26")
    rib.originate("10.244.42.64/26")
    assert rib.flush(A82) == []  # back to what was advertised


# ---------------------------------------------------------------------------- route refresh


@pytest.mark.parametrize("enhanced", [True, False])
def test_route_refresh_resends_everything(enhanced: bool) -> None:
    rib = node_rib()
    rib.originate("10.244.42.64/26")
    rib.add_out_peer(A82, ADDPATH, local_address=ME, enhanced_refresh=enhanced)
    first = rib.initial_feed(A82)
    msgs = rib.route_refresh(A82, IPV4_UNICAST)
    if enhanced:
        assert msgs[0] == BIRD_BORR and msgs[-1] == BIRD_EORR
        assert msgs[1:-1] == first[:-1]
        borr = decode_message(msgs[0], ADDPATH)
        assert isinstance(borr, RouteRefresh) and borr.subtype is RouteRefreshSubtype.BORR
    else:
        assert msgs == first[:-1]


def test_out_peer_errors_are_clear() -> None:
    rib = node_rib()
    with pytest.raises(UnknownPeerError, match="session not up"):
        rib.flush(A82)
    with pytest.raises(ValueError, match="only unicast"):
        rib.add_out_peer(A82, ADDPATH, local_address=ME, families=[(IPV4_UNICAST[0], 2)])  # type: ignore[list-item]


def test_no_address_of_the_family_means_not_exported() -> None:
    rib = node_rib()
    rib.originate("fd00:10:244:42::/122")
    rib.add_out_peer(A82, ADDPATH, local_address=ME, families=[IPV4_UNICAST, IPV6_UNICAST])
    msgs = rib.initial_feed(A82)
    assert len(msgs) == 2  # two End-of-RIBs, no IPv6 UPDATE without an IPv6 next hop
    assert all(isinstance(decode_message(m, ADDPATH), Update) for m in msgs)
    reach = [
        a
        for m in msgs
        for a in decode_all([m], ADDPATH)[0].attributes
        if isinstance(a, MpReachAttr)
    ]
    assert reach == []


def test_families_and_enhanced_refresh_default_to_the_negotiated_session() -> None:
    rib = node_rib()
    rib.originate("10.244.42.64/26")
    rib.originate("fd00:10:244:42::/122")
    ctx = Negotiated(
        addpath_receive=frozenset({IPV4_UNICAST, IPV6_UNICAST}),
        addpath_send=frozenset({IPV4_UNICAST, IPV6_UNICAST}),
        families=frozenset({IPV4_UNICAST, IPV6_UNICAST}),
        enhanced_route_refresh=True,
    )
    out = rib.add_out_peer(A82, ctx, local_address=[ME, "fd00::81"])
    assert out.families == (IPV4_UNICAST, IPV6_UNICAST) and out.enhanced_refresh
    msgs = rib.initial_feed(A82)
    eors = [u.end_of_rib() for u in decode_all(msgs, ctx)]
    assert eors == [None, None, IPV4_UNICAST, IPV6_UNICAST]
    assert msgs[0] == BIRD_BLOCK.replace(bytes.fromhex("000000041a"), bytes.fromhex("000000011a"))
    assert msgs[1] == BIRD6_BLOCK.replace(bytes.fromhex("000000037a"), bytes.fromhex("000000017a"))
    refresh = rib.route_refresh(A82, IPV6_UNICAST)
    assert len(refresh) == 3 and refresh[1] == msgs[1]
    first = decode_message(refresh[0], ctx)
    assert isinstance(first, RouteRefresh) and first.subtype is RouteRefreshSubtype.BORR


def test_unknown_attributes_partial_when_passed_on_dropped_when_non_transitive() -> None:
    """RFC 4271 5 / 9.1.3: an unrecognised optional transitive attribute goes on with the
    Partial bit; an unrecognised optional non-transitive one is not passed on."""
    from speaker.wire.attributes import UnknownAttr
    from speaker.wire.enums import AttrFlag

    rib = node_rib(calico=False)
    transitive = UnknownAttr(unknown_type=99, value=b"\x01\x02", flags=0xC0)
    non_transitive = UnknownAttr(unknown_type=98, value=b"\x03", flags=0x80)
    base = ebgp_attrs(E1)
    attrs = base.replace(put=[transitive, non_transitive])
    rib.announce(E1, [Nlri(pfx("10.9.0.0/24"))], attrs)
    rib.add_out_peer(E2, DEFAULT_CONTEXT, local_address="172.16.0.254")
    (update,) = decode_all(rib.initial_feed(E2)[:-1], DEFAULT_CONTEXT)
    passed = update.attribute(99)
    assert isinstance(passed, UnknownAttr) and passed.value == b"\x01\x02"
    assert passed.wire_flags() & AttrFlag.PARTIAL
    assert update.attribute(98) is None
