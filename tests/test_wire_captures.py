"""Every message of every real BIRD 1.6.8 capture decodes, re-encodes byte for byte, and reads
the same as Wireshark's dissection saved beside the capture.

Each TCP stream's OPEN exchange gives the context per direction (speaker.wire.negotiate on the
receiver's and the sender's OPEN), as a real receiver would have it.  tests/data/synthetic.pcap
(made by tests/data/make_synthetic.py, dissected by tshark) adds what BIRD never sends.
"""

from __future__ import annotations

import ipaddress
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from speaker.pcap import Endpoint, RawMessage, read_capture
from speaker.wire import (
    DEFAULT_CONTEXT,
    IPV4_UNICAST,
    IPV6_UNICAST,
    AddPathCapability,
    AggregatorAttr,
    As4AggregatorAttr,
    As4PathAttr,
    AsPathAttr,
    ClusterListAttr,
    CommunitiesAttr,
    ExtendedCommunitiesAttr,
    FourOctetAsCapability,
    GracefulRestartCapability,
    Keepalive,
    LargeCommunitiesAttr,
    LocalPrefAttr,
    MedAttr,
    Message,
    MpReachAttr,
    MpUnreachAttr,
    MultiprotocolCapability,
    Negotiated,
    NextHopAttr,
    Nlri,
    Notification,
    Open,
    OriginatorIdAttr,
    OriginAttr,
    Prefix,
    RouteRefresh,
    Update,
    decode_message,
    negotiate,
)
from speaker.wire.enums import Afi, AttrType, CeaseSubcode, RouteRefreshSubtype, Safi
from speaker.wire.messages import CapabilitiesParameter
from speaker.wire.nlri import encode_prefixes

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
BIRD_CAPTURES = [
    "lifecycle.pcap",
    "mesh-restart.pcap",
    "bench-100k-packed.pcap",
    "bench-100k-distinct.pcap",
]
DISSECTED = ["lifecycle.pcap", "mesh-restart.pcap", "synthetic.pcap"]


# ---------------------------------------------------------------------------- decoding


@dataclass(frozen=True)
class Decoded:
    raw: RawMessage
    ctx: Negotiated
    message: Message


def with_contexts(raws: Iterable[RawMessage]) -> Iterator[tuple[RawMessage, Negotiated]]:
    """Each message with the context its receiver had: the stream's two OPENs negotiated."""
    opens: dict[tuple[Endpoint, Endpoint], Open] = {}
    contexts: dict[tuple[Endpoint, Endpoint], Negotiated] = {}
    for raw in raws:
        direction = (raw.source, raw.destination)
        if raw.data[18] == 1:
            sent = decode_message(raw.data, DEFAULT_CONTEXT)
            assert isinstance(sent, Open)
            opens[direction] = sent
            reverse = (raw.destination, raw.source)
            if reverse in opens:
                # receiver's own OPEN first: negotiate(local, remote)
                contexts[direction] = negotiate(opens[reverse], sent)
                contexts[reverse] = negotiate(sent, opens[reverse])
            yield raw, DEFAULT_CONTEXT
            continue
        yield raw, contexts.get(direction, DEFAULT_CONTEXT)


def _capture_path(name: str, testdata: Path) -> Path:
    return DATA / name if name == "synthetic.pcap" else testdata / name


@cache
def decode_capture(path: Path) -> tuple[Decoded, ...]:
    return tuple(
        Decoded(raw, ctx, decode_message(raw.data, ctx))
        for raw, ctx in with_contexts(read_capture(path))
    )


@pytest.mark.parametrize("name", [*BIRD_CAPTURES, "synthetic.pcap"])
def test_every_message_decodes_and_encodes_back_byte_for_byte(name: str, testdata: Path) -> None:
    decoded = decode_capture(_capture_path(name, testdata))
    assert decoded, f"{name}: no BGP message found"
    mismatched = [d.raw.frame for d in decoded if d.message.encode(d.ctx) != d.raw.data]
    assert not mismatched, f"{name}: frames re-encoded differently: {mismatched[:10]}"
    # BIRD's traffic is well formed: nothing may have been treated as withdrawn or discarded
    flagged = [
        (d.raw.frame, d.message.errors)
        for d in decoded
        if isinstance(d.message, Update) and d.message.errors
    ]
    assert not flagged


def _updates(name: str, testdata: Path, sender: str) -> list[Decoded]:
    return [
        d
        for d in decode_capture(_capture_path(name, testdata))
        if isinstance(d.message, Update) and d.raw.source.address == sender
    ]


@pytest.mark.parametrize(
    ("name", "per_update"), [("bench-100k-packed.pcap", 300), ("bench-100k-distinct.pcap", 1)]
)
def test_bench_captures_carry_100k_distinct_prefixes_with_path_ids(
    name: str, per_update: int, testdata: Path
) -> None:
    updates = _updates(name, testdata, "192.168.0.80")
    announced = [n for d in updates for n in d.message.nlri]  # type: ignore[attr-defined]
    assert len(announced) == 100_000
    assert len({n.prefix for n in announced}) == 100_000
    assert all(n.path_id is not None for n in announced)
    eight = Prefix.parse("10.0.0.0/8")
    assert all(n.prefix.length == 26 and eight.contains(n.prefix) for n in announced)
    carrying = [d for d in updates if d.message.nlri]  # type: ignore[attr-defined]
    assert max(len(d.message.nlri) for d in carrying) >= per_update  # type: ignore[attr-defined]
    # the IPv4 End-of-RIB closes the feed
    assert updates[-1].message.end_of_rib() == IPV4_UNICAST  # type: ignore[attr-defined]
    if per_update == 1:
        meds = {d.message.attribute(AttrType.MULTI_EXIT_DISC) for d in carrying}  # type: ignore[attr-defined]
        assert len(meds) == 100_000  # a different MED per prefix


def test_lifecycle_routes_match_the_readme(testdata: Path) -> None:
    decoded = decode_capture(testdata / "lifecycle.pcap")
    v4 = [d for d in decoded if d.raw.source.address == "192.168.0.80"]
    updates = [d.message for d in v4 if isinstance(d.message, Update)]
    # two add-path paths of 10.244.200.0/26 with distinct path ids and next hops
    block = Prefix.parse("10.244.200.0/26")
    paths = {
        (n.path_id, u.attribute(AttrType.NEXT_HOP).address)  # type: ignore[union-attr]
        for u in updates
        for n in u.nlri
        if n.prefix == block
    }
    assert {pid for pid, _ in paths} == {5, 6}
    assert len({hop for _, hop in paths}) == 2
    # 10.244.77.7/32 with COMMUNITIES (64512,100), MED 50 and LARGE_COMMUNITY (64512,1,2)
    host = next(u for u in updates if Prefix.parse("10.244.77.7/32") in [n.prefix for n in u.nlri])
    communities = host.attribute(AttrType.COMMUNITIES)
    assert isinstance(communities, CommunitiesAttr) and communities.pairs() == ((64512, 100),)
    assert host.attribute(AttrType.MULTI_EXIT_DISC) == MedAttr(50)
    assert host.attribute(AttrType.LARGE_COMMUNITY) == LargeCommunitiesAttr(((64512, 1, 2),))
    # the withdrawal of one add-path path (step 3)
    withdrawn = [n for u in updates for n in u.withdrawn]
    assert Nlri(block, 6) in withdrawn
    # ROUTE-REFRESH, BoRR, EoRR (step 4); Cease/Administrative Shutdown (step 5)
    refreshes = [d.message for d in decoded if isinstance(d.message, RouteRefresh)]
    assert [r.subtype for r in refreshes] == [
        RouteRefreshSubtype.NORMAL,
        RouteRefreshSubtype.BORR,
        RouteRefreshSubtype.EORR,
    ]
    notes = [d.message for d in decoded if isinstance(d.message, Notification)]
    assert [(n.code, n.subcode) for n in notes] == [(6, CeaseSubcode.ADMINISTRATIVE_SHUTDOWN)]
    # End-of-RIB for IPv4 and for IPv6 (MP_UNREACH_NLRI without NLRI)
    eors = {d.message.end_of_rib() for d in decoded if isinstance(d.message, Update)}
    assert {IPV4_UNICAST, IPV6_UNICAST} <= eors
    # the IPv6 session carries add-path too: MP_REACH_NLRI /122 blocks with path ids
    reach = [
        a
        for d in decoded
        if isinstance(d.message, Update)
        for a in d.message.attributes
        if isinstance(a, MpReachAttr)
    ]
    assert {str(n.prefix) for a in reach for n in a.nlri} == {
        "fd00:10:244:98::/122",
        "fd00:10:244:99::/122",
        "fd00:10:244:42::/122",
    }
    assert all(n.path_id == 3 for a in reach for n in a.nlri)
    assert {str(a.next_hops[0]) for a in reach} == {"fd00::80", "fd00::81"}
    # step 7: .80 restarted with `bird -R`: Restart State bit and forwarding preserved
    opens = [d.message for d in v4 if isinstance(d.message, Open)]
    restarted = opens[-1].capability(GracefulRestartCapability.CODE)
    assert isinstance(restarted, GracefulRestartCapability)
    assert restarted.restarting and restarted.forwarding_preserved(IPV4_UNICAST)
    first = opens[0].capability(GracefulRestartCapability.CODE)
    assert isinstance(first, GracefulRestartCapability) and not first.restarting


def test_every_stream_negotiates_addpath_and_asn4(testdata: Path) -> None:
    """The OPENs of every BIRD stream agree on add-path both ways and 4-octet AS."""
    for name in ("lifecycle.pcap", "mesh-restart.pcap"):
        decoded = decode_capture(testdata / name)
        routes = [
            (d, d.message.families())
            for d in decoded
            if isinstance(d.message, Update) and d.message.families()
        ]
        assert routes
        for d, families in routes:
            assert d.ctx.asn4
            for family in families:
                assert family in d.ctx.addpath_receive, (name, d.raw.frame, family)


# ---------------------------------------------------------------------------- tshark

Pairs = list[tuple[str, Any]]


def _pairs(value: Any) -> Pairs:
    return value if isinstance(value, list) else []


def _first(pairs: Pairs, key: str, default: Any = None) -> Any:
    for k, v in pairs:
        if k == key:
            return v
    return default


def _all(pairs: Pairs, key: str) -> list[Any]:
    return [v for k, v in pairs if k == key]


def _starting(pairs: Pairs, prefix: str) -> Any:
    return next((v for k, v in pairs if k.startswith(prefix)), None)


def tshark_messages(path: Path) -> dict[int, list[Pairs]]:
    """Frame number -> the BGP layers tshark dissected in it, in order (duplicate keys kept)."""
    packets = json.loads(path.read_text(), object_pairs_hook=lambda p: p)
    out: dict[int, list[Pairs]] = defaultdict(list)
    for packet in packets:
        layers = _first(_first(packet, "_source"), "layers")
        frame = int(_first(_first(layers, "frame"), "frame.number"))
        out[frame].extend(v for k, v in layers if k == "bgp")
    return out


def _ts_nlri(field: Any) -> list[tuple[int | None, str]]:
    out = []
    for _, entry in _pairs(field):
        path_id = _first(entry, "bgp.nlri_path_id")
        address = next(v for k, v in entry if k.endswith("_prefix"))
        length = int(_first(entry, "bgp.prefix_length"))
        out.append((None if path_id is None else int(path_id), f"{address}/{length}"))
    return out


def _ts_cap(cap: Pairs) -> dict[str, Any]:
    code = int(_first(cap, "bgp.cap.type"))
    view: dict[str, Any] = {"code": code, "length": int(_first(cap, "bgp.cap.length"))}
    if code == 1:
        view["family"] = (int(_first(cap, "bgp.cap.mp.afi")), int(_first(cap, "bgp.cap.mp.safi")))
    elif code == 64:
        timers = _first(cap, "bgp.cap.gr.timers_tree")
        view["restart"] = (
            int(_first(timers, "bgp.cap.gr.timers.restart_flag")),
            int(_first(timers, "bgp.cap.gr.timers.notification_flag")),
            int(_first(timers, "bgp.cap.gr.timers.restart_time")),
        )
        view["families"] = list(
            zip(
                [int(x) for x in _all(cap, "bgp.cap.gr.afi")],
                [int(x) for x in _all(cap, "bgp.cap.gr.safi")],
                [int(x, 16) for x in _all(cap, "bgp.cap.gr.flag")],
                strict=True,
            )
        )
    elif code == 65:
        view["asn"] = int(_first(cap, "bgp.cap.4as"))
    elif code == 69:
        view["addpath"] = list(
            zip(
                [int(x) for x in _all(cap, "bgp.cap.ap.afi")],
                [int(x) for x in _all(cap, "bgp.cap.ap.safi")],
                [int(x) for x in _all(cap, "bgp.cap.ap.sendreceive")],
                strict=True,
            )
        )
    return view


def _ts_attribute(attr: Pairs) -> dict[str, Any]:
    prefix = "bgp.update.path_attribute."
    code = int(_first(attr, prefix + "type_code"))
    view: dict[str, Any] = {
        "flags": int(_first(attr, prefix + "flags"), 16),
        "type": code,
        "length": int(_first(attr, prefix + "length")),
    }
    if code == AttrType.ORIGIN:
        view["origin"] = int(_first(attr, prefix + "origin"))
    elif code in (AttrType.AS_PATH, AttrType.AS4_PATH):
        view["segments"] = [
            (
                int(_first(seg, prefix + "as_path_segment.type")),
                [int(v) for k, v in seg if k.endswith((".as2", ".as4"))],
            )
            for seg in _all(attr, prefix + "as_path_segment")
        ]
    elif code == AttrType.NEXT_HOP:
        view["next_hop"] = _first(attr, prefix + "next_hop")
    elif code == AttrType.MULTI_EXIT_DISC:
        view["med"] = int(_first(attr, prefix + "multi_exit_disc"))
    elif code == AttrType.LOCAL_PREF:
        view["local_pref"] = int(_first(attr, prefix + "local_pref"))
    elif code in (AttrType.AGGREGATOR, AttrType.AS4_AGGREGATOR):
        view["aggregator"] = (
            int(_first(attr, prefix + "aggregator_as")),
            _first(attr, prefix + "aggregator_origin"),
        )
    elif code == AttrType.COMMUNITIES:
        values = []
        for key, value in _pairs(_first(attr, prefix + "communities")):
            if key.endswith("community"):
                asn = int(_first(value, prefix + "community_as"))
                values.append((asn << 16) | int(_first(value, prefix + "community_value")))
            else:
                values.append(int(value, 16))
        view["communities"] = values
    elif code == AttrType.ORIGINATOR_ID:
        view["originator_id"] = _first(attr, prefix + "originator_id")
    elif code == AttrType.CLUSTER_LIST:
        ids = _first(attr, "bgp.path_attribute.cluster_list")
        view["cluster_list"] = _all(ids, "bgp.path_attribute.cluster_id")
    elif code == AttrType.EXTENDED_COMMUNITIES:
        view["ext_types"] = [
            (int(_first(ec, "bgp.ext_com.type"), 16), int(_starting(ec, "bgp.ext_com.stype"), 16))
            for ec in _all(_first(attr, "bgp.ext_communities"), "bgp.ext_community")
        ]
    elif code == AttrType.LARGE_COMMUNITY:
        view["large"] = [
            (
                int(_first(t, "bgp.large_communities.ga")),
                int(_first(t, "bgp.large_communities.ldp1")),
                int(_first(t, "bgp.large_communities.ldp2")),
            )
            for t in _all(attr, "bgp.large_communities_tree")
        ]
    elif code == AttrType.MP_REACH_NLRI:
        hops = _first(attr, prefix + "mp_reach_nlri.next_hop_tree")
        view["mp_reach"] = (
            int(_first(attr, prefix + "mp_reach_nlri.afi")),
            int(_first(attr, prefix + "mp_reach_nlri.safi")),
            [v for _, v in _pairs(hops)],
            _ts_nlri(_first(attr, prefix + "mp_reach_nlri")),
        )
    elif code == AttrType.MP_UNREACH_NLRI:
        view["mp_unreach"] = (
            int(_first(attr, prefix + "mp_unreach_nlri.afi")),
            int(_first(attr, prefix + "mp_unreach_nlri.safi")),
            _ts_nlri(_first(attr, prefix + "mp_unreach_nlri")),
        )
    return view


def tshark_view(bgp: Pairs) -> dict[str, Any]:
    """Our normalised reading of one tshark BGP layer."""
    mtype = int(_first(bgp, "bgp.type"))
    view: dict[str, Any] = {"type": mtype, "length": int(_first(bgp, "bgp.length"))}
    if mtype == 1:
        view["open"] = (
            int(_first(bgp, "bgp.open.version")),
            int(_first(bgp, "bgp.open.myas")),
            int(_first(bgp, "bgp.open.holdtime")),
            _first(bgp, "bgp.open.identifier"),
            int(_first(bgp, "bgp.open.opt.len")),
        )
        view["params"] = [
            (
                int(_first(param, "bgp.open.opt.param.type")),
                int(_first(param, "bgp.open.opt.param.len")),
                [_ts_cap(cap) for cap in _all(param, "bgp.cap")],
            )
            for param in _all(_first(bgp, "bgp.open.opt", []), "bgp.open.opt.param")
        ]
    elif mtype == 2:
        view["lengths"] = (
            int(_first(bgp, "bgp.update.withdrawn_routes.length")),
            int(_first(bgp, "bgp.update.path_attributes.length")),
        )
        view["withdrawn"] = _ts_nlri(_first(bgp, "bgp.update.withdrawn_routes"))
        attrs = _first(bgp, "bgp.update.path_attributes", [])
        view["attributes"] = [_ts_attribute(a) for a in _all(attrs, "bgp.update.path_attribute")]
        view["nlri"] = _ts_nlri(_first(bgp, "bgp.update.nlri"))
    elif mtype == 3:
        view["notification"] = (
            int(_first(bgp, "bgp.notify.major_error")),
            int(_starting(bgp, "bgp.notify.minor_error")),
            _first(bgp, "bgp.notify.communication"),
        )
    elif mtype == 5:
        view["refresh"] = (
            int(_first(bgp, "bgp.route_refresh.afi")),
            int(_first(bgp, "bgp.route_refresh.subtype")),
            int(_first(bgp, "bgp.route_refresh.safi")),
        )
    return view


# ---------------------------------------------------------------------------- our view


def _our_nlri(nlris: Iterable[Nlri]) -> list[tuple[int | None, str]]:
    return [(n.path_id, str(n.prefix)) for n in nlris]


def _our_cap(cap: Any) -> dict[str, Any]:
    view: dict[str, Any] = {"code": cap.code, "length": len(cap.encode_value())}
    if isinstance(cap, MultiprotocolCapability):
        view["family"] = (int(cap.afi), int(cap.safi))
    elif isinstance(cap, GracefulRestartCapability):
        view["restart"] = (
            int(cap.restarting),
            int(bool(cap.flags & 0x4)),
            cap.restart_time,
        )
        view["families"] = [(int(a), int(s), int(f)) for a, s, f in cap.families]
    elif isinstance(cap, FourOctetAsCapability):
        view["asn"] = cap.asn
    elif isinstance(cap, AddPathCapability):
        view["addpath"] = [(int(a), int(s), int(m)) for a, s, m in cap.entries]
    return view


def _our_attribute(attr: Any, ctx: Negotiated) -> dict[str, Any]:
    wire = attr.encode(ctx)
    header = 4 if wire[0] & 0x10 else 3
    view: dict[str, Any] = {"flags": wire[0], "type": wire[1], "length": len(wire) - header}
    if isinstance(attr, OriginAttr):
        view["origin"] = int(attr.value)
    elif isinstance(attr, (AsPathAttr, As4PathAttr)):
        view["segments"] = [(int(s.type), list(s.asns)) for s in attr.segments]
    elif isinstance(attr, NextHopAttr):
        view["next_hop"] = str(attr.address)
    elif isinstance(attr, MedAttr):
        view["med"] = attr.value
    elif isinstance(attr, LocalPrefAttr):
        view["local_pref"] = attr.value
    elif isinstance(attr, (AggregatorAttr, As4AggregatorAttr)):
        view["aggregator"] = (attr.asn, str(attr.address))
    elif isinstance(attr, CommunitiesAttr):
        view["communities"] = list(attr.values)
    elif isinstance(attr, OriginatorIdAttr):
        view["originator_id"] = str(attr.address)
    elif isinstance(attr, ClusterListAttr):
        view["cluster_list"] = [str(a) for a in attr.ids]
    elif isinstance(attr, ExtendedCommunitiesAttr):
        view["ext_types"] = [(v >> 56, (v >> 48) & 0xFF) for v in attr.values]
    elif isinstance(attr, LargeCommunitiesAttr):
        view["large"] = [tuple(t) for t in attr.values]
    elif isinstance(attr, MpReachAttr):
        view["mp_reach"] = (
            int(attr.afi),
            int(attr.safi),
            [str(a) for a in attr.next_hops],
            _our_nlri(attr.nlri),
        )
    elif isinstance(attr, MpUnreachAttr):
        view["mp_unreach"] = (int(attr.afi), int(attr.safi), _our_nlri(attr.withdrawn))
    return view


def our_view(message: Message, ctx: Negotiated, raw: bytes) -> dict[str, Any]:
    """Our decoded message in tshark_view's shape."""
    view: dict[str, Any] = {"type": int(message.TYPE), "length": len(raw)}
    if isinstance(message, Open):
        params = [p for p in message.parameters if isinstance(p, CapabilitiesParameter)]
        view["open"] = (
            message.version,
            message.my_as,
            message.hold_time,
            str(message.bgp_id),
            sum(2 + len(p.encode_value()) for p in message.parameters),
        )
        view["params"] = [
            (int(p.type_code), len(p.encode_value()), [_our_cap(c) for c in p.capabilities])
            for p in params
        ]
    elif isinstance(message, Update):
        addpath = IPV4_UNICAST in ctx.addpath_receive
        attrs = b"".join(a.encode(ctx) for a in message.attributes)
        view["lengths"] = (len(encode_prefixes(message.withdrawn, addpath)), len(attrs))
        view["withdrawn"] = _our_nlri(message.withdrawn)
        view["attributes"] = [_our_attribute(a, ctx) for a in message.attributes]
        view["nlri"] = _our_nlri(message.nlri)
    elif isinstance(message, Notification):
        view["notification"] = (message.code, message.subcode, message.shutdown_message)
    elif isinstance(message, RouteRefresh):
        view["refresh"] = (int(message.afi), int(message.subtype), int(message.safi))
    else:
        assert isinstance(message, Keepalive)
    return view


@pytest.mark.parametrize("name", DISSECTED)
def test_our_reading_agrees_with_tshark_message_by_message(name: str, testdata: Path) -> None:
    path = _capture_path(name, testdata)
    theirs = tshark_messages(path.with_suffix(".tshark.json"))
    ours: dict[int, list[Decoded]] = defaultdict(list)
    for d in decode_capture(path):
        ours[d.raw.frame].append(d)
    assert sorted(ours) == sorted(theirs), "BGP messages found in different frames"
    compared: Counter[str] = Counter()
    for frame, layers in theirs.items():
        assert len(ours[frame]) == len(layers), f"frame {frame}: message count differs"
        for position, (d, layer) in enumerate(zip(ours[frame], layers, strict=True)):
            expected = tshark_view(layer)
            got = our_view(d.message, d.ctx, d.raw.data)
            assert got == expected, f"frame {frame} message {position}"
            compared[type(d.message).__name__] += 1
    # the comparison covered every kind of message the capture holds
    kinds = {type(d.message).__name__ for d in decode_capture(path)}
    assert set(compared) == kinds


def test_tshark_views_are_not_vacuous(testdata: Path) -> None:
    """The normalised tshark reading really extracts values (so the comparison can fail)."""
    theirs = tshark_messages(DATA / "synthetic.tshark.json")
    views = [tshark_view(layer) for layers in theirs.values() for layer in layers]
    attributes: dict[int, dict[str, Any]] = {}
    for v in views:
        for a in v.get("attributes", []):
            attributes.setdefault(a["type"], a)  # the first of each type
    assert attributes[AttrType.AS_PATH]["segments"][0] == (3, [65010, 65011])
    assert attributes[AttrType.COMMUNITIES]["communities"] == [0xFDE80064, 0xFFFFFF01, 0xFFFF029A]
    assert attributes[AttrType.MP_REACH_NLRI]["mp_reach"][2] == ["2001:db8::1", "fe80::1"]
    assert attributes[AttrType.AS4_AGGREGATOR]["aggregator"] == (4200000009, "10.0.1.9")
    assert attributes[200]["flags"] == 0xE0
    notes = [v["notification"] for v in views if "notification" in v]
    assert (6, 2, "maintenance \u2014 back at 14:00") in notes
    first = next(v for v in views if v["type"] == 2)
    assert first["nlri"][0] == (1, "0.0.0.0/0")
    # and a wrong reading (the 2-octet session read as 4-octet) is told apart
    d = next(
        d
        for d in decode_capture(DATA / "synthetic.pcap")
        if isinstance(d.message, Update) and not d.ctx.asn4
    )
    right = tshark_view(theirs[d.raw.frame][-1])
    assert our_view(d.message, d.ctx, d.raw.data) == right
    wrong = decode_message(d.raw.data, Negotiated(asn4=True))
    assert our_view(wrong, Negotiated(asn4=True), d.raw.data) != right


def test_link_local_next_hop_is_exposed() -> None:
    reach = next(
        a
        for d in decode_capture(DATA / "synthetic.pcap")
        if isinstance(d.message, Update)
        for a in d.message.attributes
        if isinstance(a, MpReachAttr)
    )
    assert reach.global_next_hop == ipaddress.IPv6Address("2001:db8::1")
    assert reach.link_local_next_hop == ipaddress.IPv6Address("fe80::1")
    assert (reach.afi, reach.safi) == (Afi.IPV6, Safi.UNICAST)
