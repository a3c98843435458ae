"""BGP next hop -> kernel next hop, the way BIRD's ``gateway recursive`` does it.

BIRD resolves an iBGP NEXT_HOP through its IGP table; Calico's BIRD learns that table from the
kernel (``learn`` plus ``protocol direct``).  We resolve against the kernel table itself, one
level deep:

* the longest-prefix-match route covering the next hop, among routes that are *not* ours
  (BIRD refuses to resolve a recursive route through another recursive route; we skip our own
  routes rather than fail, so a covering default route still works);
* a device route there (``192.168.0.0/24 dev eth0 proto kernel``: a connected subnet) ->
  the next hop itself, out of that device;
* a gateway route there -> that route's (first) gateway and device: one level is enough for
  a node-to-node mesh, where next hops are node addresses on a connected or routed subnet;
* a blackhole/unreachable/prohibit route, or nothing -> unresolvable: the prefix is not
  programmed (BIRD would install it as ``unreachable``; leaving it out lets traffic follow a
  less specific route instead), and is retried whenever the table changes.
"""

from __future__ import annotations

from collections.abc import Iterable

from speaker.kernel.codec import FibRoute, NextHop
from speaker.kernel.model import IPAddress, RouteType, key_parts


class Resolver:
    """Longest-prefix-match index over the non-ours routes of one table."""

    def __init__(self) -> None:
        # version -> prefix length (descending) -> masked network int -> best route
        self._index: dict[int, list[tuple[int, dict[int, FibRoute]]]] = {4: [], 6: []}

    def rebuild(self, routes: Iterable[FibRoute]) -> None:
        """Index these routes (call again whenever they change; they are few)."""
        by_len: dict[int, dict[int, dict[int, FibRoute]]] = {4: {}, 6: {}}
        for route in routes:
            if route.tos:
                continue
            v6, addr, length = key_parts(route.key)
            slot = by_len[6 if v6 else 4].setdefault(length, {})
            best = slot.get(addr)
            if best is None or route.priority < best.priority:
                slot[addr] = route
        for version, lens in by_len.items():
            self._index[version] = sorted(lens.items(), key=lambda kv: -kv[0])

    def covering(self, addr: IPAddress) -> FibRoute | None:
        """The longest-prefix-match route for ``addr`` (lowest metric on ties)."""
        bits = 32 if addr.version == 4 else 128
        value = int(addr)
        for plen, slot in self._index[addr.version]:
            shift = bits - plen
            route = slot.get((value >> shift) << shift if shift < bits else 0)
            if route is not None:
                return route
        return None

    def resolve(self, addr: IPAddress) -> NextHop | str:
        """The kernel next hop for BGP next hop ``addr``, or why there is none."""
        route = self.covering(addr)
        if route is None:
            return f"next hop {addr} unreachable: no route covers it"
        if route.type != RouteType.UNICAST:
            return (
                f"next hop {addr} unreachable: covered by {route.type.name.lower()} {route.prefix}"
            )
        if not route.nexthops:
            return f"next hop {addr} unreachable: {route.prefix} has no device"
        first = route.nexthops[0]
        if first.gateway is None:
            return NextHop(addr, first.oif)  # connected subnet: direct
        if first.gateway == addr:
            return NextHop(addr, first.oif)
        return NextHop(first.gateway, first.oif, 1, first.flags)  # recursive, one level
