"""Configuration and route validation (clear errors for bad input) and the resolver's LPM."""

from __future__ import annotations

import ipaddress

import pytest

from speaker.kernel.codec import FibRoute, NextHop, net_key
from speaker.kernel.model import (
    KernelConfig,
    KernelEvent,
    KernelEventKind,
    KernelRoute,
    RouteType,
    network_key,
)
from speaker.kernel.resolve import Resolver

A = ipaddress.ip_address
N = ipaddress.ip_network


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"protocol": 2}, "reserved"),
        ({"protocol": 4}, "reserved"),
        ({"protocol": 300}, "out of range"),
        ({"protocol": 12}, "BIRD"),
        ({"protocol": True}, "int"),
        ({"table": 255}, "local"),
        ({"table": 0}, "table"),
        ({"scan_time": 0}, "scan_time"),
        ({"scan_time": float("nan")}, "scan_time"),
        ({"merge_limit": 0}, "merge_limit"),
        ({"convergence_wait": -1}, "convergence_wait"),
        ({"reject_cidrs": ("10.96.0.0/12",)}, "reject_cidrs"),
        ({"netns": ""}, "netns"),
    ],
)
def test_config_rejects_bad_values(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        KernelConfig(**kwargs)  # type: ignore[arg-type]


def test_config_defaults_are_calicos() -> None:
    cfg = KernelConfig()
    assert (cfg.protocol, cfg.learn, cfg.persist, cfg.scan_time) == (186, True, True, 2.0)
    assert (cfg.merge_paths, cfg.merge_limit, cfg.table) == (True, 16, 254)
    assert cfg.convergence_wait == 240.0 and cfg.netns is None


def test_reject_cidrs_match_subnets_only() -> None:
    cfg = KernelConfig(reject_cidrs=(N("10.96.0.0/12"), N("fd00::/8")))
    assert cfg.rejects(N("10.96.0.0/12"))
    assert cfg.rejects(N("10.100.1.0/24"))
    assert not cfg.rejects(N("10.0.0.0/8"))  # a supernet is not "net ~ cidr"
    assert not cfg.rejects(N("10.244.0.0/26"))
    assert cfg.rejects(N("fd00:1::/64"))
    for text in ("10.96.0.0/12", "10.100.1.0/24", "10.0.0.0/8", "10.244.0.0/26", "10.111.0.0/16",
                 "10.112.0.0/16", "fd00:1::/64", "fd00::/8", "fc00::/7", "::/0", "0.0.0.0/0",
                 "::a60:0/108"):  # the last: IPv4's 10.96.0.0/12 bits in an IPv6 prefix
        assert cfg.rejects_key(network_key(N(text))) is cfg.rejects(N(text)), text


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("10.0.0.0/8",), "IPv4Network"),
        ((N("10.0.0.0/8"),), "next hops, or blackhole"),
        ((N("10.0.0.0/8"), (A("2001:db8::1"),)), "another family"),
        ((N("10.0.0.0/8"), (A("192.168.0.1"),), True), "blackhole route has no next hops"),
        ((N("10.0.0.0/8"), ["192.168.0.1"]), "tuple"),
        ((N("10.0.0.0/8"), ("192.168.0.1",)), "not an ip address"),
        ((N("10.0.0.0/8"), (A("0.0.0.0"),)), "not a unicast"),
    ],
)
def test_kernel_route_rejects_bad_input(args: tuple[object, ...], match: str) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        KernelRoute(*args)  # type: ignore[arg-type]


def test_event_describe_and_json() -> None:
    ev = KernelEvent(KernelEventKind.INSTALLED, N("10.0.0.0/26"), "wanted", (A("192.168.0.80"),))
    assert ev.describe() == "kernel installed 10.0.0.0/26 via 192.168.0.80: wanted"
    assert ev.to_dict()["kind"] == "INSTALLED"
    assert ev.to_dict()["prefix"] == "10.0.0.0/26"


def r(
    prefix: str,
    gw: str | None,
    oif: int,
    proto: int = 2,
    metric: int = 0,
    rtype: RouteType = RouteType.UNICAST,
) -> FibRoute:
    net = N(prefix)
    hops = (NextHop(A(gw) if gw else None, oif),) if rtype == RouteType.UNICAST else ()
    return FibRoute(net_key(net), 254, proto, rtype, 0, metric, hops)


def test_resolver_longest_prefix_and_lowest_metric() -> None:
    res = Resolver()
    res.rebuild(
        [
            r("0.0.0.0/0", "192.168.0.1", 2, proto=3),
            r("192.168.0.0/24", None, 2),
            r("10.0.0.0/8", "192.168.0.2", 2, proto=4, metric=20),
            r("10.0.0.0/8", "192.168.0.3", 2, proto=4, metric=10),
            r("10.9.0.0/16", None, 0, proto=4, rtype=RouteType.UNREACHABLE),
        ]
    )
    assert res.resolve(A("192.168.0.80")) == NextHop(A("192.168.0.80"), 2)
    assert res.resolve(A("10.1.2.3")) == NextHop(A("192.168.0.3"), 2)
    assert res.resolve(A("8.8.8.8")) == NextHop(A("192.168.0.1"), 2)
    assert "unreachable" in str(res.resolve(A("10.9.1.1")))
    empty = Resolver()
    assert "no route covers" in str(empty.resolve(A("10.1.1.1")))
    assert "no route covers" in str(empty.resolve(A("2001:db8::1")))
