"""speaker.wire.negotiate: two OPENs to the context each side decodes and encodes with."""

from __future__ import annotations

import ipaddress
from dataclasses import replace

from speaker.wire import (
    DEFAULT_CONTEXT,
    IPV4_UNICAST,
    IPV6_UNICAST,
    AddPathCapability,
    AddPathMode,
    Capability,
    EnhancedRouteRefreshCapability,
    ExtendedMessageCapability,
    FourOctetAsCapability,
    MultiprotocolCapability,
    Negotiated,
    Open,
    RouteRefreshCapability,
    negotiate,
)
from speaker.wire.enums import Afi, Safi

V4 = (Afi.IPV4, Safi.UNICAST)
V6 = (Afi.IPV6, Safi.UNICAST)


def make_open(asn: int, *caps: Capability) -> Open:
    return Open.build(asn, 90, ipaddress.IPv4Address("192.0.2.1"), caps)


def addpath(*entries: tuple[tuple[Afi, Safi], int]) -> AddPathCapability:
    return AddPathCapability(tuple((f[0], f[1], AddPathMode(m)) for f, m in entries))


def test_add_path_is_directional() -> None:
    # we receive IPv4 path ids and send IPv6 ones; the peer sends IPv4, receives IPv6 (RFC 7911 4)
    ours = make_open(64512, addpath((V4, 1), (V6, 2)))
    theirs = make_open(64512, addpath((V4, 2), (V6, 1)))
    ctx = negotiate(ours, theirs)
    assert ctx.addpath_receive == {IPV4_UNICAST} and ctx.addpath_send == {IPV6_UNICAST}
    assert ctx.ipv4_addpath_receive and not ctx.ipv4_addpath_send
    peer = negotiate(theirs, ours)
    assert peer.addpath_receive == ctx.addpath_send and peer.addpath_send == ctx.addpath_receive
    assert ctx.reversed() == peer
    assert ctx.reversed().ipv4_addpath_send and not ctx.reversed().ipv4_addpath_receive


def test_add_path_needs_both_sides() -> None:
    ours = make_open(64512, addpath((V4, 3)))
    assert negotiate(ours, make_open(64512)).addpath_receive == frozenset()
    assert negotiate(ours, make_open(64512, addpath((V4, 1)))).addpath_receive == frozenset()
    # a Send/Receive value other than 1..3 is ignored
    odd = make_open(64512, AddPathCapability(((Afi.IPV4, Safi.UNICAST, AddPathMode(7)),)))
    assert negotiate(ours, odd).addpath_receive == frozenset()


def test_asn4_extended_messages_and_refresh_need_both_sides() -> None:
    full = make_open(
        64512,
        FourOctetAsCapability(64512),
        ExtendedMessageCapability(),
        RouteRefreshCapability(),
        EnhancedRouteRefreshCapability(),
    )
    bare = make_open(64512)
    both = negotiate(full, full)
    assert both.asn4 and both.max_message_size == 65535
    assert both.route_refresh and both.enhanced_route_refresh
    one = negotiate(full, bare)
    assert not one.asn4 and one.max_message_size == 4096
    assert not one.route_refresh and not one.enhanced_route_refresh


def test_families_are_the_intersection_and_default_to_ipv4() -> None:
    v4v6 = make_open(64512, MultiprotocolCapability(*V4), MultiprotocolCapability(*V6))
    v6 = make_open(64512, MultiprotocolCapability(*V6))
    assert negotiate(v4v6, v6).families == {IPV6_UNICAST}
    # RFC 4760 8: no multiprotocol capability means IPv4 unicast only
    assert negotiate(make_open(64512), make_open(64512)).families == {IPV4_UNICAST}
    assert negotiate(v6, make_open(64512)).families == frozenset()


def test_external_peer_by_the_real_as() -> None:
    ours = make_open(64512, FourOctetAsCapability(64512))
    # My AS says AS_TRANS; the 4-octet capability carries the real AS (RFC 6793)
    same = make_open(4200000000, FourOctetAsCapability(64512))
    assert same.my_as == 23456 and same.asn == 64512
    assert not negotiate(ours, same).ebgp
    other = make_open(4200000000, FourOctetAsCapability(4200000000))
    assert negotiate(ours, other).ebgp


def test_context_defaults_and_derived_fields() -> None:
    assert DEFAULT_CONTEXT.asn4 and DEFAULT_CONTEXT.max_message_size == 4096
    assert DEFAULT_CONTEXT.families == {IPV4_UNICAST}
    ctx = replace(DEFAULT_CONTEXT, asn4=False, ebgp=True)
    assert ctx.attribute_cache == 1
    assert replace(ctx, asn4=True).attribute_cache == 3
    assert Negotiated(addpath_send=frozenset({IPV4_UNICAST})).ipv4_addpath_send
