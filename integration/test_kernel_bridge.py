"""KernelBridge against a real kernel, in a throw-away network namespace (root only).

Each test gets its own namespace ``kbt<pid><random>`` holding a veth pair (v0 192.168.0.81/24
and 2001:db8::81/64, v1 as the far end); nothing is connected to the root namespace and the
namespace is deleted afterwards, pass or fail.  Routes are checked with ``ip -j route``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import secrets
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from speaker.kernel import (
    KernelBridge,
    KernelConfig,
    KernelError,
    KernelEvent,
    KernelEventKind,
    KernelRoute,
    LearnedRoute,
    RouteState,
)
from speaker.kernel.model import network_key, prefix_key

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)"),
    pytest.mark.skipif(shutil.which("ip") is None, reason="needs iproute2 (ip)"),
]

A = ipaddress.ip_address
N = ipaddress.ip_network
REPO = Path(__file__).resolve().parents[1]


def ip(ns: str, *args: str, check: bool = True) -> str:
    """Run ``ip -n NS ...``; never touches the root namespace."""
    proc = subprocess.run(["ip", "-n", ns, *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"ip -n {ns} {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def routes(ns: str, family: str = "-4") -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = json.loads(
        ip(ns, family, "-j", "-d", "route", "show", "table", "main")
    )
    return out


def route_of(ns: str, prefix: str) -> list[dict[str, Any]]:
    family = "-6" if ":" in prefix else "-4"
    return [r for r in routes(ns, family) if r["dst"] == prefix]


def ours(ns: str, family: str = "-4") -> dict[str, dict[str, Any]]:
    return {r["dst"]: r for r in routes(ns, family) if r.get("protocol") in ("bgp", "186")}


@pytest.fixture
def ns() -> Iterator[str]:
    """A fresh namespace with a veth pair; deleted afterwards whatever happens."""
    name = f"kbt{os.getpid()}{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        ip(name, "link", "set", "lo", "up")
        ip(name, "link", "add", "v0", "type", "veth", "peer", "name", "v1")
        ip(name, "addr", "add", "192.168.0.81/24", "dev", "v0")
        ip(name, "addr", "add", "2001:db8::81/64", "dev", "v0", "nodad")
        ip(name, "link", "set", "v0", "up")
        ip(name, "link", "set", "v1", "up")
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)
        assert not Path(f"/var/run/netns/{name}").exists()


class Recorder:
    """Collects what the bridge reports."""

    def __init__(self) -> None:
        self.events: list[KernelEvent] = []
        self.learned: list[LearnedRoute] = []
        self.unlearned: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []

    def kinds(self, kind: KernelEventKind) -> list[str]:
        return [str(e.prefix) for e in self.events if e.kind is kind]


Factory = Callable[..., Awaitable[tuple[KernelBridge, Recorder]]]


@pytest.fixture
async def bridge(ns: str) -> AsyncIterator[Factory]:
    made: list[KernelBridge] = []

    async def factory(**kwargs: Any) -> tuple[KernelBridge, Recorder]:
        kwargs.setdefault("netns", ns)
        kwargs.setdefault("scan_time", 1.0)
        rec = Recorder()
        b = KernelBridge(
            KernelConfig(**kwargs), rec.learned.append, rec.unlearned.append, rec.events.append
        )
        await b.start()
        made.append(b)
        return b, rec

    yield factory
    for b in made:
        await b.stop()


async def eventually(check: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll until ``check()``; returns the seconds it took."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)
    return time.monotonic() - start


def kroute(prefix: str, *hops: str) -> KernelRoute:
    if not hops:
        return KernelRoute(N(prefix), blackhole=True)
    return KernelRoute(N(prefix), tuple(A(h) for h in hops))


async def test_routes_installed_with_our_protocol(ns: str, bridge: Factory) -> None:
    before = os.readlink("/proc/self/ns/net")
    b, rec = await bridge()
    assert os.readlink("/proc/self/ns/net") == before  # pyroute2 netns= forks; we stay put
    b.want(kroute("10.244.1.0/26", "192.168.0.80"))
    b.want(kroute("10.244.2.0/26", "192.168.0.82"))
    await b.settled(5)
    got = ours(ns)
    assert got["10.244.1.0/26"]["gateway"] == "192.168.0.80"
    assert got["10.244.1.0/26"]["dev"] == "v0"
    assert got["10.244.2.0/26"]["gateway"] == "192.168.0.82"
    numeric = json.loads(ip(ns, "-N", "-j", "route", "show", "10.244.1.0/26"))
    assert numeric[0]["protocol"] == "186"
    assert sorted(rec.kinds(KernelEventKind.INSTALLED)) == ["10.244.1.0/26", "10.244.2.0/26"]
    entry = b.snapshot().by_prefix()[N("10.244.1.0/26")]
    assert entry.state is RouteState.INSTALLED
    assert b.installed(N("10.244.2.0/26"))


async def test_ecmp_is_one_multipath_route_then_single_path(ns: str, bridge: Factory) -> None:
    b, _ = await bridge()
    b.want(kroute("10.244.3.0/26", "192.168.0.82", "192.168.0.80"))
    await b.settled(5)
    (r,) = route_of(ns, "10.244.3.0/26")
    assert r["protocol"] == "bgp"
    assert sorted(h["gateway"] for h in r["nexthops"]) == ["192.168.0.80", "192.168.0.82"]
    b.want(kroute("10.244.3.0/26", "192.168.0.80"))  # one path withdrawn
    await b.settled(5)
    (r,) = route_of(ns, "10.244.3.0/26")
    assert "nexthops" not in r
    assert r["gateway"] == "192.168.0.80"


async def test_blackhole(ns: str, bridge: Factory) -> None:
    b, _ = await bridge()
    b.want(kroute("10.244.4.0/26"))
    await b.settled(5)
    (r,) = route_of(ns, "10.244.4.0/26")
    assert (r["type"], r["protocol"]) == ("blackhole", "bgp")


async def test_deleted_or_altered_by_hand_restored_within_one_scan(
    ns: str, bridge: Factory
) -> None:
    b, rec = await bridge(scan_time=1.0)
    b.want(kroute("10.244.5.0/26", "192.168.0.80"))
    await b.settled(5)
    ip(ns, "route", "del", "10.244.5.0/26", "proto", "186")
    took = await eventually(lambda: bool(route_of(ns, "10.244.5.0/26")), 1.5, "re-install")
    # at once again: the event path is rate-limited, so this one is the scan's job
    ip(ns, "route", "del", "10.244.5.0/26", "proto", "186")
    took2 = await eventually(lambda: bool(route_of(ns, "10.244.5.0/26")), 1.5, "re-install 2")
    ip(ns, "route", "replace", "10.244.5.0/26", "via", "192.168.0.99", "proto", "186")
    await eventually(
        lambda: route_of(ns, "10.244.5.0/26")[0].get("gateway") == "192.168.0.80",
        1.5,
        "restore after alteration",
    )
    reasons = [e.reason for e in rec.events if e.kind is KernelEventKind.REINSTALLED]
    assert "deleted outside the speaker" in reasons
    assert "altered outside the speaker" in reasons
    assert took < 1.5 and took2 < 1.5


async def test_alien_route_left_alone_and_learned(ns: str, bridge: Factory) -> None:
    ip(ns, "route", "add", "10.99.0.0/24", "via", "192.168.0.1", "proto", "static")
    ip(ns, "route", "add", "10.98.0.0/24", "via", "192.168.0.1", "proto", "boot")
    b, rec = await bridge()
    learned = {str(r.prefix): r for r in rec.learned}
    assert learned["10.99.0.0/24"] == LearnedRoute(
        N("10.99.0.0/24"), (A("192.168.0.1"),), "v0", 4, learned["10.99.0.0/24"].type, 0
    )
    assert learned["10.98.0.0/24"].protocol == 3
    assert "192.168.0.0/24" not in learned  # proto kernel: never learned
    # a static route appearing later is learned from the monitor
    ip(ns, "route", "add", "10.97.0.0/24", "dev", "v0", "proto", "static")
    await eventually(lambda: any(str(r.prefix) == "10.97.0.0/24" for r in rec.learned), 3, "learn")
    # wanting the alien's prefix: blocked, never overwritten
    b.want(kroute("10.99.0.0/24", "192.168.0.80"))
    b.converged()
    await b.settled(5)
    await b.scan_now()
    (r,) = route_of(ns, "10.99.0.0/24")
    assert (r["protocol"], r["gateway"]) == ("static", "192.168.0.1")
    assert rec.kinds(KernelEventKind.BLOCKED) == ["10.99.0.0/24"]
    assert route_of(ns, "10.98.0.0/24")[0]["protocol"] == "boot"
    # the alien goes away: unlearned, and our route takes its place
    ip(ns, "route", "del", "10.99.0.0/24", "proto", "static")
    await eventually(lambda: N("10.99.0.0/24") in rec.unlearned, 3, "unlearn")
    await eventually(
        lambda: (
            route_of(ns, "10.99.0.0/24") != []
            and route_of(ns, "10.99.0.0/24")[0]["protocol"] == "bgp"
        ),
        3,
        "our route after the alien left",
    )


async def test_adopted_routes_kept_until_converged_then_swept(ns: str, bridge: Factory) -> None:
    ip(ns, "route", "add", "10.244.10.0/26", "via", "192.168.0.80", "proto", "186")
    ip(ns, "route", "add", "blackhole", "10.244.11.0/26", "proto", "186")
    b, rec = await bridge(scan_time=0.5)
    assert sorted(rec.kinds(KernelEventKind.ADOPTED)) == ["10.244.10.0/26", "10.244.11.0/26"]
    b.want(kroute("10.244.11.0/26"))
    await asyncio.sleep(1.6)  # three scans
    assert set(ours(ns)) == {"10.244.10.0/26", "10.244.11.0/26"}
    assert b.snapshot().by_prefix()[N("10.244.10.0/26")].state is RouteState.PENDING
    b.converged()
    await b.settled(5)
    assert set(ours(ns)) == {"10.244.11.0/26"}
    assert rec.kinds(KernelEventKind.SWEPT) == ["10.244.10.0/26"]


async def test_convergence_wait_elapses(ns: str, bridge: Factory) -> None:
    ip(ns, "route", "add", "10.244.12.0/26", "via", "192.168.0.80", "proto", "186")
    _, rec = await bridge(convergence_wait=0.5)
    await eventually(lambda: "10.244.12.0/26" not in ours(ns), 3, "sweep after the wait")
    assert rec.kinds(KernelEventKind.SWEPT) == ["10.244.12.0/26"]
    (conv,) = [e for e in rec.events if e.kind is KernelEventKind.CONVERGED]
    assert "elapsed" in conv.reason


async def test_identical_adopted_routes_not_rewritten(ns: str, bridge: Factory) -> None:
    ip(ns, "route", "add", "10.244.20.0/26", "via", "192.168.0.80", "dev", "v0", "proto", "186")
    multipath = ["nexthop", "via", "192.168.0.82", "dev", "v0"]
    multipath += ["nexthop", "via", "192.168.0.80", "dev", "v0"]
    ip(ns, "route", "add", "10.244.21.0/26", "proto", "186", *multipath)
    ip(ns, "route", "add", "blackhole", "10.244.22.0/26", "proto", "186")
    ip(ns, "route", "add", "10.244.23.0/26", "via", "192.168.0.80", "proto", "186")
    with tempfile.TemporaryFile("w+") as out:
        monitor = subprocess.Popen(["ip", "-n", ns, "monitor", "route"], stdout=out)
        try:
            await asyncio.sleep(0.3)
            b, rec = await bridge(scan_time=0.5)
            b.want(kroute("10.244.20.0/26", "192.168.0.80"))
            b.want(kroute("10.244.21.0/26", "192.168.0.80", "192.168.0.82"))
            b.want(kroute("10.244.22.0/26"))
            b.want(kroute("10.244.23.0/26", "192.168.0.82"))  # differs: replaced
            b.converged()
            await b.settled(5)
            writes = b.stats()["writes"]
            await asyncio.sleep(1.6)  # idle scans write nothing either
            assert b.stats()["writes"] == writes == 1
        finally:
            monitor.terminate()
            monitor.wait(5)
        out.seek(0)
        seen = out.read()
    assert "10.244.23.0/26" in seen
    for quiet in ("10.244.20.0/26", "10.244.21.0/26", "10.244.22.0/26"):
        assert quiet not in seen, f"{quiet} was rewritten:\n{seen}"
    assert rec.kinds(KernelEventKind.REPLACED) == ["10.244.23.0/26"]


@pytest.mark.parametrize("persist", [True, False])
async def test_persist_on_stop(ns: str, persist: bool) -> None:
    b = KernelBridge(KernelConfig(netns=ns, persist=persist), lambda r: None, lambda p: None, None)
    await b.start()
    b.want(kroute("10.244.30.0/26", "192.168.0.80"))
    b.want(kroute("10.244.31.0/26"))
    await b.settled(5)
    ip(ns, "route", "add", "10.96.0.0/12", "via", "192.168.0.1", "proto", "static")
    await b.stop()
    left = set(ours(ns))
    if persist:
        assert left == {"10.244.30.0/26", "10.244.31.0/26"}
    else:
        assert left == set()
    assert route_of(ns, "10.96.0.0/12")[0]["protocol"] == "static"  # never ours to delete


async def test_ipv6_route_and_no_rewrite_on_scans(ns: str, bridge: Factory) -> None:
    b, _ = await bridge(scan_time=0.5)
    b.want(kroute("2001:db8:1::/64", "2001:db8::80"))
    b.want(kroute("2001:db8:2::/64", "2001:db8::80", "2001:db8::82"))
    b.want(kroute("2001:db8:3::/64"))
    await b.settled(5)
    got = ours(ns, "-6")
    assert got["2001:db8:1::/64"]["gateway"] == "2001:db8::80"
    assert len(got["2001:db8:2::/64"]["nexthops"]) == 2
    assert got["2001:db8:3::/64"]["type"] == "blackhole"
    writes = b.stats()["writes"]
    await asyncio.sleep(1.6)
    assert b.stats()["writes"] == writes == 3


async def test_ipv6_multipath_written_as_bird6_does_is_read_as_one_route(
    ns: str, bridge: Factory
) -> None:
    """bird6 (BIRD 1.6) writes an IPv6 ECMP route as one route plus an NLM_F_APPEND per next
    hop (``ip -6 route append``); the kernel merges them into one multipath route, and we read
    it back as one learned route with both next hops, at start-up (dump) and live (monitor).
    Our own IPv6 ECMP route (RTA_MULTIPATH) reads back the same way."""
    ip(ns, "-6", "route", "add", "2001:db8:40::/64", "via", "2001:db8::80", "proto", "bird")
    ip(ns, "-6", "route", "append", "2001:db8:40::/64", "via", "2001:db8::82", "proto", "bird")
    b, rec = await bridge()
    learned = {str(r.prefix): r for r in rec.learned}
    assert sorted(map(str, learned["2001:db8:40::/64"].nexthops)) == [
        "2001:db8::80", "2001:db8::82"]
    ip(ns, "-6", "route", "add", "2001:db8:41::/64", "via", "2001:db8::80", "proto", "bird")
    ip(ns, "-6", "route", "append", "2001:db8:41::/64", "via", "2001:db8::82", "proto", "bird")

    def both_hops() -> bool:
        last = [r for r in rec.learned if str(r.prefix) == "2001:db8:41::/64"]
        return bool(last) and len(last[-1].nexthops) == 2

    await eventually(both_hops, 3, "the appended next hop learned live")
    b.want(kroute("2001:db8:42::/64", "2001:db8::80", "2001:db8::82"))
    await b.settled(5)
    await b.scan_now()
    entry = next(e for e in b.snapshot().entries if str(e.prefix) == "2001:db8:42::/64")
    assert entry.installed is not None and len(entry.installed.nexthops) == 2
    assert str(entry.state) == "installed"


async def test_monitor_overrun_triggers_full_resync(ns: str, bridge: Factory) -> None:
    b, rec = await bridge(scan_time=30.0)  # no scheduled scan can help: only the resync
    b.want(kroute("10.244.40.0/26", "192.168.0.80"))
    await b.settled(5)
    with tempfile.NamedTemporaryFile("w", suffix=".batch") as batch:
        for i in range(120_000):  # ~1 KiB of monitor buffer each: far beyond 16 MiB
            batch.write(f"route add 172.{16 + i // 65536}.{i // 256 % 256}.{i % 256}/32 "
                        "dev v0 table 100\n")  # fmt: skip
        batch.write("route del 10.244.40.0/26 proto 186\n")
        batch.flush()
        # blocking call on purpose: the loop cannot read the monitor while ip runs
        subprocess.run(["ip", "-n", ns, "-batch", batch.name], check=True)
    assert route_of(ns, "10.244.40.0/26") == []
    await eventually(lambda: bool(route_of(ns, "10.244.40.0/26")), 10, "restore after resync")
    assert rec.kinds(KernelEventKind.RESYNC) != []
    assert "ENOBUFS" in next(e.reason for e in rec.events if e.kind is KernelEventKind.RESYNC)


async def test_missing_namespace_is_a_clear_error() -> None:
    name = f"kbt-missing-{secrets.token_hex(4)}"
    b = KernelBridge(KernelConfig(netns=name), lambda r: None, lambda p: None)
    with pytest.raises(KernelError, match=name):
        await b.start()
    assert not Path(f"/var/run/netns/{name}").exists()  # not created behind our back


def test_runs_inside_the_namespace_without_netns(ns: str) -> None:
    """The daemon normally runs inside the node's namespace: netns=None."""
    script = (
        "import asyncio, ipaddress\n"
        "from speaker.kernel import KernelBridge, KernelConfig, KernelRoute\n"
        "async def main():\n"
        "    b = KernelBridge(KernelConfig(), lambda r: None, lambda p: None)\n"
        "    await b.start()\n"
        "    b.want(KernelRoute(ipaddress.ip_network('10.244.50.0/26'),"
        " (ipaddress.ip_address('192.168.0.80'),)))\n"
        "    await b.settled(5)\n"
        "    print('installed', b.installed(ipaddress.ip_network('10.244.50.0/26')))\n"
        "    await b.stop()\n"
        "asyncio.run(main())\n"
    )
    proc = subprocess.run(
        ["ip", "netns", "exec", ns, sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "installed True"
    assert route_of(ns, "10.244.50.0/26")[0]["protocol"] == "bgp"


async def test_scans_read_our_routes_back_as_the_bodies_we_hold(ns: str, bridge: Factory) -> None:
    """On a real kernel, IPv4 and IPv6 (with its volatile RTA_CACHEINFO) dumps take the
    parser's masked-payload fast path: a handful of cache entries for 200 routes, none parsed
    whole, and after the scans every route of ours is held as the body of its next-hop set
    (no object of its own).  A route altered by hand is still restored."""
    b, rec = await bridge(scan_time=0.3)
    prefixes = [f"10.244.{i}.0/26" for i in range(100)]
    prefixes += [f"2001:db8:{i:x}::/64" for i in range(100, 200)]
    for prefix in prefixes:
        b.want(kroute(prefix, "2001:db8::80" if ":" in prefix else "192.168.0.80"))
    await b.settled(5)
    for _ in range(2):
        await b.scan_now()
    parser, reconciler = b._parser, b._rec
    # the whole-payload cache (full parses) holds no route of ours, only the kernel's own
    ours = [r for r in parser._seen.values() if r is not None and r[1].proto == 186]
    assert ours == []
    assert len(parser._bodies) <= 6
    keys = [network_key(N(p)) for p in prefixes]
    bodies = {id(reconciler._current(k)) for k in keys}
    assert bodies == {id(reconciler._desired_of(k)) for k in keys} and len(bodies) == 2
    assert not reconciler._ours.keys() & set(keys)  # settled: no entry of their own
    ip(ns, "route", "replace", "10.244.7.0/26", "via", "192.168.0.80", "proto", "186",
       "mtu", "1400")
    await eventually(lambda: "mtu" not in ip(ns, "route", "show", "10.244.7.0/26"), 5,
                     "the altered route restored")
    await eventually(lambda: rec.kinds(KernelEventKind.REINSTALLED) == ["10.244.7.0/26"], 5,
                     "a reinstalled event")


async def test_a_feed_arriving_over_many_loop_turns_is_written_in_few_batches(
    ns: str, bridge: Factory
) -> None:
    """The core hands over a slice of a feed per loop turn (60 routes when each UPDATE carries
    one); the flush loop lets the batch grow while it does, instead of a thread round trip
    per slice."""
    b, _ = await bridge()
    hop = (A("192.168.0.80"),)
    batches = b.stats()["batches"]
    for turn in range(30):
        b.apply([(prefix_key(0x0A000000 + (turn * 10 + i) * 64, 26), hop) for i in range(10)])
        time.sleep(0.002)  # the core's work on a slice holds the loop (2 ms: 60 UPDATEs)
        await asyncio.sleep(0)  # the next slice, on the next loop turn
    await b.settled(10)
    assert len(ours(ns)) == 300
    assert b.stats()["batches"] - batches <= 3  # 10-30 (one per slice or two) without gathering


@pytest.mark.slow
async def test_100k_routes_install(ns: str, bridge: Factory) -> None:
    b, _ = await bridge(scan_time=2.0)
    count = 100_000
    hop = (A("192.168.0.80"),)
    for i in range(count):
        b.want(KernelRoute(ipaddress.IPv4Network((0x0A000000 + i * 64, 26)), hop))
    await b.settled(300)
    assert b.stats()["ours"] == count
    listed = ip(ns, "-4", "route", "show", "table", "main", "proto", "186")
    assert len(listed.splitlines()) == count
    assert b.installed(N("10.1.134.0/26"))


def test_monitor_filter_drops_our_protocols_notifications_only(ns: str) -> None:
    """The monitor's socket filter (speaker.kernel.netlink.own_echo_filter) on a real kernel:
    routes of protocol 186 (ours) make no notification, a static route (an alien one, for
    ``learn``) does, in both families, added and deleted."""
    from speaker.kernel.netlink import RTMGRP_IPV4_ROUTE, RTMGRP_IPV6_ROUTE, NetlinkChannel

    channel = NetlinkChannel.open(ns, groups=RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE,
                                  rcvbuf=1 << 20, sndbuf=1 << 16, drop_protocol=186)
    try:
        for prefix in ("10.244.70.0/26", "2001:db8:70::/64"):
            ip(ns, "route", "add", prefix, "dev", "v0", "proto", "186")
            ip(ns, "route", "del", prefix, "dev", "v0", "proto", "186")
        ip(ns, "route", "add", "10.244.71.0/26", "dev", "v0", "proto", "static")
        ip(ns, "route", "add", "2001:db8:71::/64", "dev", "v0", "proto", "static")
        ip(ns, "route", "del", "10.244.71.0/26", "dev", "v0", "proto", "static")
        time.sleep(0.1)
        protocols: list[tuple[int, int]] = []  # (message type, rtm_protocol)
        while (data := channel.recv_nowait()) is not None:
            off = 0
            while off + 16 <= len(data):
                length, mtype = struct.unpack_from("=IH", data, off)
                if mtype in (24, 25):
                    protocols.append((mtype, data[off + 21]))
                off += (length + 3) & ~3
        assert protocols == [(24, 4), (24, 4), (25, 4)]  # static: add v4, add v6, del v4
    finally:
        channel.close()
