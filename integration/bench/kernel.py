"""Kernel route install rates: our bridge vs ``ip -batch`` vs pyroute2 one call per route.

Run as root: ``python3 -m integration.bench.kernel [--routes 100000] [--pyroute2 10000]``.
Every measurement runs in its own fresh namespace (``kbb<pid><random>``, a veth pair with
192.168.0.81/24, routes ``10.x.y.z/26 via 192.168.0.80``), deleted afterwards.  Prints figures
and ratios measured in the same run; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

from pyroute2 import AsyncIPRoute

from speaker.kernel import KernelBridge, KernelConfig, KernelEventKind
from speaker.kernel.codec import FibRoute, NextHop, RouteParser, net_key
from speaker.kernel.model import KernelIntent, RouteType, network_key
from speaker.kernel.netlink import (
    CHANGE_RCVBUF,
    CHANGE_SNDBUF,
    NetlinkChannel,
    RouteWriter,
    dump_routes,
)
from speaker.kernel.reconcile import Op, OpKind

GATEWAY = "192.168.0.80"
PER_UPDATE = 330  # prefixes per UPDATE as BIRD packs a 100k-route feed: one batch each


def prefixes(count: int) -> list[ipaddress.IPv4Network]:
    """``count`` distinct /26s from 10.0.0.0 up."""
    return [ipaddress.IPv4Network((0x0A000000 + i * 64, 26)) for i in range(count)]


@contextlib.contextmanager
def namespace() -> Iterator[str]:
    """A fresh namespace with a connected 192.168.0.0/24; always deleted."""
    name = f"kbb{os.getpid()}{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        for args in (
            ["link", "set", "lo", "up"],
            ["link", "add", "v0", "type", "veth", "peer", "name", "v1"],
            ["addr", "add", "192.168.0.81/24", "dev", "v0"],
            ["link", "set", "v0", "up"],
            ["link", "set", "v1", "up"],
        ):
            subprocess.run(["ip", "-n", name, *args], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def count_ours(ns: str) -> int:
    out = subprocess.run(
        ["ip", "-n", ns, "-4", "route", "show", "table", "main", "proto", "186"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return len(out.splitlines())


async def bench_bridge(count: int) -> dict[str, float]:
    """Our bridge: every route wanted as the core asks (``apply``, one batch per UPDATE of
    BIRD's packing), then wait until the kernel holds it all."""
    out: dict[str, float] = {}
    nets = prefixes(count)
    hop = (ipaddress.ip_address(GATEWAY),)
    intents: list[KernelIntent] = [(network_key(net), hop) for net in nets]
    batches = [intents[i : i + PER_UPDATE] for i in range(0, len(intents), PER_UPDATE)]
    with namespace() as ns:
        bridge = KernelBridge(KernelConfig(netns=ns), lambda r: None, lambda p: None)
        await bridge.start()
        t0 = time.perf_counter()
        for batch in batches:
            bridge.apply(batch)
        t1 = time.perf_counter()
        await bridge.settled(600)
        t2 = time.perf_counter()
        assert count_ours(ns) == count, "not every route landed"
        out["want_s"] = t1 - t0
        out["install_s"] = t2 - t0
        t3 = time.perf_counter()
        await bridge.scan_now()
        out["scan_s"] = time.perf_counter() - t3
        t3 = time.perf_counter()
        await bridge.scan_now()
        out["scan_warm_s"] = time.perf_counter() - t3
        await bridge.stop()  # persist: routes stay
        # restart: adopt 100k identical routes, want them again -> no writes expected
        again = KernelBridge(KernelConfig(netns=ns), lambda r: None, lambda p: None)
        t4 = time.perf_counter()
        await again.start()
        for batch in batches:
            again.apply(batch)
        await again.settled(600)
        out["restart_s"] = time.perf_counter() - t4
        out["restart_writes"] = again.stats().get("writes", 0)
        await again.stop()
    return out


async def bench_writer(count: int) -> float:
    """The batched packer alone (no reconciler): pack, send, collect ACKs."""
    nets = prefixes(count)
    with namespace() as ns:
        link = subprocess.run(
            ["ip", "-n", ns, "-o", "link", "show", "v0"], capture_output=True, text=True, check=True
        )
        oif = int(link.stdout.split(":")[0])
        hop = (NextHop(ipaddress.ip_address(GATEWAY), oif),)
        ops = [
            Op(
                OpKind.ADD,
                FibRoute(net_key(n), 254, 186, RouteType.UNICAST, 0, 0, hop),
                KernelEventKind.INSTALLED,
                "bench",
            )
            for n in nets
        ]
        channel = NetlinkChannel.open(ns, groups=0, rcvbuf=CHANGE_RCVBUF, sndbuf=CHANGE_SNDBUF)
        writer = RouteWriter(channel)
        t0 = time.perf_counter()
        results = await writer.execute(ops)
        took = time.perf_counter() - t0
        assert all(r.error == 0 for r in results), "writer errors"
        channel.close()
        assert count_ours(ns) == count
    return took


def bench_ip_batch(count: int) -> float:
    """iproute2 reading a batch file: ``ip -batch``."""
    with namespace() as ns, tempfile.NamedTemporaryFile("w", suffix=".batch") as batch:
        for net in prefixes(count):
            batch.write(f"route add {net} via {GATEWAY} proto 186\n")
        batch.flush()
        t0 = time.perf_counter()
        subprocess.run(["ip", "-n", ns, "-batch", batch.name], check=True)
        took = time.perf_counter() - t0
        assert count_ours(ns) == count
    return took


async def bench_pyroute2(count: int) -> float:
    """pyroute2's asyncio API, one awaited ``route('add')`` per route."""
    with namespace() as ns:
        ipr = AsyncIPRoute(netns=ns, flags=0)
        try:
            t0 = time.perf_counter()
            for net in prefixes(count):
                await ipr.route("add", dst=str(net), gateway=GATEWAY, proto=186, table=254)
            took = time.perf_counter() - t0
        finally:
            ipr.close()
        assert count_ours(ns) == count
    return took


async def bench_dumps(count: int) -> tuple[float, float]:
    """Full dump of a ``count``-route table: our parser vs pyroute2's."""
    with namespace() as ns, tempfile.NamedTemporaryFile("w", suffix=".batch") as batch:
        for net in prefixes(count):
            batch.write(f"route add {net} via {GATEWAY} proto 186\n")
        batch.flush()
        subprocess.run(["ip", "-n", ns, "-batch", batch.name], check=True)
        channel = NetlinkChannel.open(ns, groups=0, rcvbuf=CHANGE_RCVBUF, sndbuf=CHANGE_SNDBUF)
        t0 = time.perf_counter()
        ours = await dump_routes(channel, RouteParser(), socket.AF_INET, 254)
        t_ours = time.perf_counter() - t0
        channel.close()
        ipr = AsyncIPRoute(netns=ns, flags=0)
        try:
            t1 = time.perf_counter()
            theirs = [m async for m in await ipr.route("dump", family=socket.AF_INET, table=254)]
            t_theirs = time.perf_counter() - t1
        finally:
            ipr.close()
        assert len(ours) == len(theirs) == count + 1
    return t_ours, t_theirs


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routes", type=int, default=100_000)
    parser.add_argument("--pyroute2", type=int, default=10_000, help="routes for per-call add")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("kernel bench needs root (network namespaces)", file=sys.stderr)
        return 2
    n, m = args.routes, args.pyroute2
    print(
        f"kernel install benchmark: {n} x /26 via {GATEWAY}, "
        f"fresh namespace each; {os.cpu_count()} CPUs"
    )
    bridge = await bench_bridge(n)
    writer = await bench_writer(n)
    ipb = bench_ip_batch(n)
    pyr = await bench_pyroute2(m)
    dump_ours, dump_pyr = await bench_dumps(n)
    rate_bridge = n / bridge["install_s"]
    rate_writer = n / writer
    rate_ip = n / ipb
    rate_pyr = m / pyr
    rows = [
        ("speaker KernelBridge (apply -> all in kernel)", n, bridge["install_s"], rate_bridge),
        (f"  of which apply() calls ({PER_UPDATE}/batch)", n, bridge["want_s"],
         n / bridge["want_s"]),
        ("speaker batched packer alone (RouteWriter)", n, writer, rate_writer),
        ("ip -batch (iproute2)", n, ipb, rate_ip),
        ("pyroute2 AsyncIPRoute.route('add') per route", m, pyr, rate_pyr),
    ]
    print(f"{'method':48} {'routes':>8} {'seconds':>9} {'routes/s':>10}")
    for name, count, secs, rate in rows:
        print(f"{name:48} {count:>8} {secs:>9.3f} {rate:>10.0f}")
    print("ratios:")
    print(f"  bridge / ip -batch          {rate_bridge / rate_ip:6.2f}x")
    print(f"  bridge / pyroute2 per-route {rate_bridge / rate_pyr:6.1f}x")
    print(f"  packer / ip -batch          {rate_writer / rate_ip:6.2f}x")
    print(f"  packer / pyroute2 per-route {rate_writer / rate_pyr:6.1f}x")
    print("scans and restarts:")
    print(
        f"  full scan of {n} routes (dump + reconcile): first {bridge['scan_s']:.3f}s, "
        f"steady state {bridge['scan_warm_s']:.3f}s (scan time is 2 s)"
    )
    print(f"  dump+parse {n} routes, cold caches: speaker {dump_ours:.3f}s, "
          f"pyroute2 {dump_pyr:.3f}s ({dump_pyr / dump_ours:.1f}x)")  # fmt: skip
    print(f"  restart with {n} identical routes: {bridge['restart_s']:.3f}s, "
          f"{bridge['restart_writes']:.0f} writes")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
