"""The hot path's shortcuts build the same values as the validating constructors."""

from __future__ import annotations

import ipaddress

import pytest

from speaker.kernel.model import KernelRoute
from speaker.wire.nlri import ipv4_network


@pytest.mark.parametrize(
    ("addr", "length"),
    [(0x0A000000, 26), (0, 0), (0xC0A80000, 16), (0x0A000040, 26), (0x0A000001, 32),
     (0x0A000000, 31), (0x0A000000, 8), (0xFFFFFFC0, 26)],
)
def test_ipv4_network_is_the_constructors_network(addr: int, length: int) -> None:
    fast, slow = ipv4_network(addr, length), ipaddress.IPv4Network((addr, length))
    assert fast == slow and hash(fast) == hash(slow)
    assert (str(fast), repr(fast), fast.prefixlen, fast.netmask, fast.hostmask) == (
        str(slow), repr(slow), slow.prefixlen, slow.netmask, slow.hostmask)
    assert fast.network_address.packed == slow.network_address.packed
    assert fast.broadcast_address == slow.broadcast_address
    assert fast.subnet_of(ipaddress.IPv4Network("0.0.0.0/0"))
    assert list(fast.subnets(1)) == list(slow.subnets(1)) if length < 32 else True


def test_ipv4_network_refuses_what_the_constructor_refuses() -> None:
    with pytest.raises(ValueError):
        ipv4_network(0x0A000001, 26)  # host bits set


def test_trusted_kernel_route_equals_the_checked_one() -> None:
    net = ipaddress.IPv4Network("10.0.0.0/26")
    hops = (ipaddress.IPv4Address("192.168.0.80"),)
    assert KernelRoute.trusted(net, hops) == KernelRoute(net, hops)
    assert KernelRoute.trusted(net, (), True) == KernelRoute(net, (), True)
    assert hash(KernelRoute.trusted(net, hops)) == hash(KernelRoute(net, hops))


def test_hand_written_attribute_hashes_agree_with_equality() -> None:
    from speaker.wire.attributes import LocalPrefAttr, MedAttr, NextHopAttr

    a = NextHopAttr(ipaddress.IPv4Address("192.168.0.80"))
    b = NextHopAttr(ipaddress.IPv4Address(0xC0A80050), flags=0x50)
    assert a == b and hash(a) == hash(b)
    assert a != NextHopAttr(ipaddress.IPv4Address("192.168.0.81"))
    for cls in (MedAttr, LocalPrefAttr):
        x, y = cls(2**32 - 1), cls(2**32 - 1, flags=0xA0)
        assert x == y and hash(x) == hash(y) and x != cls(7)
    assert MedAttr(5) != LocalPrefAttr(5)
    assert len({MedAttr(5), LocalPrefAttr(5), MedAttr(5)}) == 2
