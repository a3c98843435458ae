"""The pure reconciler against a fake FIB: BIRD ``protocol kernel`` rules, no root needed."""

from __future__ import annotations

import errno
import ipaddress
import sys
import tracemalloc
from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from speaker.kernel.codec import FibRoute, NextHop, RouteDump, net_key
from speaker.kernel.model import (
    KernelConfig,
    KernelEventKind,
    KernelRoute,
    LearnedRoute,
    RouteState,
    RouteType,
    default_metric,
    key_network,
)
from speaker.kernel.reconcile import UNKNOWN_OUTCOME, Op, OpKind, OpResult, Reconciler

A = ipaddress.ip_address
N = ipaddress.ip_network
OIF = 2  # the fake node's eth0
OURS = 186


def fib_route(
    prefix: str,
    *hops: tuple[str | None, int],
    proto: int = OURS,
    rtype: RouteType = RouteType.UNICAST,
    metric: int | None = None,
    table: int = 254,
) -> FibRoute:
    net = N(prefix)
    return FibRoute(
        net_key(net),
        table,
        proto,
        rtype,
        0,
        default_metric(net) if metric is None else metric,
        tuple(NextHop(A(g) if g else None, oif) for g, oif in hops),
    )


CONNECTED = fib_route("192.168.0.0/24", (None, OIF), proto=2)
CONNECTED6 = fib_route("2001:db8::/64", (None, OIF), proto=2, metric=1024)


class FakeFib:
    """A kernel table with the kernel's key semantics: (prefix, tos, metric) holds one route
    whatever its protocol; ADD is exclusive, REPLACE overwrites, DELETE matches protocol."""

    def __init__(self, routes: Iterable[FibRoute] = (CONNECTED,)) -> None:
        self.table: dict[tuple[int, int, int], FibRoute] = {}
        self.fail: dict[str, int] = {}  # prefix -> errno for its next write
        self.log: list[Op] = []
        for r in routes:
            self.put(r)

    def put(self, route: FibRoute) -> None:
        self.table[(route.key, route.tos, route.priority)] = route

    def remove(self, prefix: str, proto: int | None = None) -> None:
        for k, r in list(self.table.items()):
            if r.prefix == N(prefix) and (proto is None or r.proto == proto):
                del self.table[k]

    def dump(self) -> list[FibRoute]:
        return list(self.table.values())

    def get(self, prefix: str) -> list[FibRoute]:
        return [r for r in self.table.values() if r.prefix == N(prefix)]

    def execute(self, ops: list[Op]) -> list[OpResult]:
        out = []
        for op in ops:
            self.log.append(op)
            r = op.route
            k = (r.key, r.tos, r.priority)
            code = self.fail.pop(str(r.prefix), 0)
            if code:
                out.append(OpResult(op, code, "injected"))
                continue
            assert r.proto == OURS, f"wrote a route of protocol {r.proto}: {op}"
            if op.kind is OpKind.ADD:
                if k in self.table:
                    out.append(OpResult(op, errno.EEXIST))
                    continue
                self.table[k] = r
            elif op.kind is OpKind.REPLACE:
                holder = self.table.get(k)
                assert holder is None or holder.proto == OURS, f"overwrote alien {holder}"
                self.table[k] = r
            else:
                holder = self.table.get(k)
                if holder is None or holder.proto != r.proto:
                    out.append(OpResult(op, errno.ESRCH))
                    continue
                del self.table[k]
            out.append(OpResult(op, 0))
        return out

    def delete(self, keys: list[int], proto: int = OURS) -> list[tuple[int, int, str]]:
        """What ``RouteWriter.delete`` does: the routes of ``proto`` at the primary keys of
        these prefixes deleted; the failures, as (index, errno, message)."""
        out = []
        for index, key in enumerate(keys):
            prefix = key_network(key)
            slot = (key, 0, default_metric(prefix))
            code = self.fail.pop(str(prefix), 0)
            if code:
                out.append((index, code, "injected"))
                continue
            holder = self.table.get(slot)
            if holder is None or holder.proto != proto:
                out.append((index, errno.ESRCH, ""))
                continue
            del self.table[slot]
        return out


def run(rec: Reconciler, fib: FakeFib, now: float = 0.0, limit: int = 1000) -> list[Op]:
    """Plan and apply until the reconciler has nothing left to do, as the bridge does
    (:meth:`Reconciler.plan_batch`: withdrawn routes deleted by key); returns the changes
    sent, a delete by key as the Op it stands for."""
    done: list[Op] = []
    for _ in range(100):
        ops, keys = rec.plan_batch(limit)
        if not ops and not keys:
            return done
        done += ops
        done += [
            Op(OpKind.DELETE, rec._deleted_route(k), KernelEventKind.DELETED, "withdrawn")
            for k in keys
        ]
        rec.apply(fib.execute(ops), now)
        rec.apply_deletes(keys, fib.delete(keys), now)
    raise AssertionError("reconciler did not settle")


def start(fib: FakeFib, config: KernelConfig | None = None) -> Reconciler:
    rec = Reconciler(config or KernelConfig(), {OIF: "eth0"})
    rec.load(fib.dump(), 0.0, initial=True)
    return rec


def want(rec: Reconciler, prefix: str, *hops: str) -> None:
    rec.want(KernelRoute(N(prefix), tuple(A(h) for h in hops)))


def kinds(rec: Reconciler) -> list[tuple[KernelEventKind, str]]:
    return [(e.kind, str(e.prefix)) for e in rec.take_events()]


def test_install_then_scans_are_idle() -> None:
    fib = FakeFib()
    rec = start(fib)
    want(rec, "10.244.1.0/26", "192.168.0.80")
    rec.want(KernelRoute(N("10.244.9.0/26"), blackhole=True))
    ops = run(rec, fib)
    assert [(o.kind, str(o.route.prefix)) for o in ops] == [
        (OpKind.ADD, "10.244.1.0/26"),
        (OpKind.ADD, "10.244.9.0/26"),
    ]
    assert fib.get("10.244.1.0/26") == [fib_route("10.244.1.0/26", ("192.168.0.80", OIF))]
    assert fib.get("10.244.9.0/26")[0].type == RouteType.BLACKHOLE
    assert rec.installed(N("10.244.1.0/26"))
    for t in (2.0, 4.0, 6.0):  # scans of an unchanged table write nothing
        rec.load(fib.dump(), t)
        assert run(rec, fib, t) == []
    assert (KernelEventKind.INSTALLED, "10.244.1.0/26") in kinds(rec)


def test_adoption_no_churn_and_no_delete_before_convergence() -> None:
    identical = fib_route("10.244.1.0/26", ("192.168.0.80", OIF))
    different = fib_route("10.244.2.0/26", ("192.168.0.80", OIF))
    stale = fib_route("10.244.3.0/26", ("192.168.0.82", OIF))
    fib = FakeFib([CONNECTED, identical, different, stale])
    rec = start(fib)
    assert sorted(p for k, p in kinds(rec) if k is KernelEventKind.ADOPTED) == [
        "10.244.1.0/26",
        "10.244.2.0/26",
        "10.244.3.0/26",
    ]
    want(rec, "10.244.1.0/26", "192.168.0.80")
    want(rec, "10.244.2.0/26", "192.168.0.82")
    ops = run(rec, fib)
    assert [(o.kind, str(o.route.prefix)) for o in ops] == [(OpKind.REPLACE, "10.244.2.0/26")]
    for t in (2.0, 4.0, 300.0):
        rec.load(fib.dump(), t)
        assert run(rec, fib, t) == []  # stale route kept: not converged
    entry = rec.snapshot().by_prefix()[N("10.244.3.0/26")]
    assert entry.state is RouteState.PENDING and "convergence" in entry.reason
    rec.converge("test")
    ops = run(rec, fib)
    assert [(o.kind, str(o.route.prefix), o.cause) for o in ops] == [
        (OpKind.DELETE, "10.244.3.0/26", KernelEventKind.SWEPT)
    ]
    assert fib.get("10.244.1.0/26") == [identical]  # never rewritten
    assert N("10.244.3.0/26") not in rec.snapshot().by_prefix()


def test_adopted_multipath_does_not_shrink_before_convergence() -> None:
    """After our restart the RIB refills peer by peer: an adopted ECMP route must not be
    replaced by the paths of the first peer back; after convergence the wanted set goes in."""
    both = fib_route("10.244.250.0/26", ("192.168.0.80", OIF), ("192.168.0.82", OIF))
    fib = FakeFib([CONNECTED, both])
    rec = start(fib)
    want(rec, "10.244.250.0/26", "192.168.0.82")  # only .82 has sent its routes so far
    assert run(rec, fib) == []
    assert fib.get("10.244.250.0/26") == [both]
    want(rec, "10.244.250.0/26", "192.168.0.80", "192.168.0.82")  # .80 is back too
    assert run(rec, fib) == []
    assert rec.installed(N("10.244.250.0/26"))
    want(rec, "10.244.250.0/26", "192.168.0.82")  # .80 really withdrew it
    rec.converge("test")
    ops = run(rec, fib)
    assert [(o.kind, str(o.route.prefix)) for o in ops] == [(OpKind.REPLACE, "10.244.250.0/26")]
    assert fib.get("10.244.250.0/26") == [fib_route("10.244.250.0/26", ("192.168.0.82", OIF))]


def test_coalescing_latest_wins() -> None:
    fib = FakeFib()
    rec = start(fib)
    want(rec, "10.1.0.0/24", "192.168.0.80")
    want(rec, "10.1.0.0/24", "192.168.0.82")
    rec.unwant(N("10.1.0.0/24"))
    want(rec, "10.1.0.0/24", "192.168.0.83")
    want(rec, "10.2.0.0/24", "192.168.0.80")
    rec.unwant(N("10.2.0.0/24"))
    ops = run(rec, fib)
    assert len(ops) == 1
    assert ops[0].route.nexthops == (NextHop(A("192.168.0.83"), OIF),)


def test_withdraw_of_a_route_installed_in_this_run_deletes_at_once() -> None:
    """Hardening #1: a route we installed and a peer withdrew leaves the kernel at once, long
    before convergence (End-of-RIB may never come); BIRD removes it at once too."""
    fib = FakeFib()
    rec = start(fib)
    assert not rec.converged
    want(rec, "10.1.0.0/24", "192.168.0.80")
    run(rec, fib)
    rec.unwant(N("10.1.0.0/24"))
    ops = run(rec, fib)
    assert [(o.kind, o.cause, o.reason) for o in ops] == [
        (OpKind.DELETE, KernelEventKind.DELETED, "withdrawn")
    ]
    assert fib.get("10.1.0.0/24") == []
    assert N("10.1.0.0/24") not in rec.snapshot().by_prefix()


def test_withdraw_while_the_add_is_in_flight_deletes_after_it() -> None:
    fib = FakeFib()
    rec = start(fib)
    want(rec, "10.1.0.0/24", "192.168.0.80")
    ops = rec.plan(10)  # the ADD is on its way to the kernel
    rec.unwant(N("10.1.0.0/24"))
    rec.apply(fib.execute(ops), 0.0)
    assert [(o.kind, o.reason) for o in run(rec, fib)] == [(OpKind.DELETE, "withdrawn")]
    assert fib.get("10.1.0.0/24") == []


def test_adopted_route_confirmed_then_withdrawn_is_deleted_at_once() -> None:
    """The start-up protection is for adopted routes no peer has confirmed yet.  Once a peer
    announced the prefix (even with the identical route: nothing rewritten) and withdrew it,
    the route goes at once, as BIRD's ``krt_rt_notify`` deletes what it exported."""
    adopted = fib_route("10.244.1.0/26", ("192.168.0.80", OIF))
    unconfirmed = fib_route("10.244.3.0/26", ("192.168.0.82", OIF))
    fib = FakeFib([CONNECTED, adopted, unconfirmed])
    rec = start(fib)
    want(rec, "10.244.1.0/26", "192.168.0.80")
    assert run(rec, fib) == []  # identical: not rewritten
    rec.unwant(N("10.244.1.0/26"))
    ops = run(rec, fib)
    assert [(o.kind, str(o.route.prefix), o.reason) for o in ops] == [
        (OpKind.DELETE, "10.244.1.0/26", "withdrawn")
    ]
    assert fib.get("10.244.3.0/26") == [unconfirmed]  # never confirmed: kept
    rec.load(fib.dump(), 2.0)
    assert run(rec, fib, 2.0) == []
    entry = rec.snapshot().by_prefix()[N("10.244.3.0/26")]
    assert entry.state is RouteState.PENDING and "start-up" in entry.reason


def test_adopted_route_wanted_but_unresolvable_is_kept_until_convergence() -> None:
    """Confirmation needs a programmable route: an adopted route whose next hop does not
    resolve yet is not deleted before convergence."""
    adopted = fib_route("10.244.1.0/26", ("192.168.0.80", OIF))
    fib = FakeFib([CONNECTED, adopted])
    rec = start(fib)
    want(rec, "10.244.1.0/26", "172.16.9.9")
    assert run(rec, fib) == []
    assert fib.get("10.244.1.0/26") == [adopted]
    rec.converge("t")
    assert [o.kind for o in run(rec, fib)] == [OpKind.DELETE]


def test_scan_is_the_safety_net_before_convergence() -> None:
    """A failed delete is retried by the next scan, and a route of ours that appears behind
    our back (not found at start-up, not wanted) is deleted: after one scan the kernel holds
    exactly what the RIB wants, adopted-and-unconfirmed routes aside."""
    adopted = fib_route("10.244.3.0/26", ("192.168.0.82", OIF))
    adopted_extra = fib_route("10.244.3.0/26", ("192.168.0.82", OIF), metric=9)
    fib = FakeFib([CONNECTED, adopted, adopted_extra])
    rec = start(fib)
    want(rec, "10.1.0.0/24", "192.168.0.80")
    run(rec, fib)
    fib.fail["10.1.0.0/24"] = errno.EBUSY
    rec.unwant(N("10.1.0.0/24"))
    run(rec, fib)
    assert fib.get("10.1.0.0/24")  # the delete failed
    assert rec.snapshot().by_prefix()[N("10.1.0.0/24")].state is RouteState.DIFFERS
    stray = fib_route("10.9.0.0/24", ("192.168.0.80", OIF))
    stray_extra = fib_route("10.1.0.0/24", ("192.168.0.80", OIF), metric=5)
    fib.put(stray)
    fib.put(stray_extra)
    rec.load(fib.dump(), 2.0)
    ops = run(rec, fib, 2.0)
    assert sorted((str(o.route.prefix), o.route.priority) for o in ops) == [
        ("10.1.0.0/24", 0),
        ("10.1.0.0/24", 5),
        ("10.9.0.0/24", 0),
    ]
    assert {o.kind for o in ops} == {OpKind.DELETE}
    assert sorted((str(r.prefix), r.priority) for r in fib.table.values() if r.proto == OURS) == [
        ("10.244.3.0/26", 0),
        ("10.244.3.0/26", 9),
    ]


def test_route_of_ours_added_behind_our_back_is_deleted_by_the_monitor() -> None:
    fib = FakeFib()
    rec = start(fib)
    stray = fib_route("10.9.0.0/24", ("192.168.0.80", OIF))
    fib.put(stray)
    rec.observe(stray, False, 1.0)
    assert [(o.kind, o.cause) for o in run(rec, fib)] == [(OpKind.DELETE, KernelEventKind.SWEPT)]
    assert fib.get("10.9.0.0/24") == []


class TestMultipath:
    def test_merge_paths_one_multipath_route_sorted(self) -> None:
        fib = FakeFib()
        rec = start(fib)
        want(rec, "10.1.0.0/24", "192.168.0.82", "192.168.0.80")
        run(rec, fib)
        (r,) = fib.get("10.1.0.0/24")
        assert [str(h.gateway) for h in r.nexthops] == ["192.168.0.80", "192.168.0.82"]
        want(rec, "10.1.0.0/24", "192.168.0.80")  # one path withdrawn
        ops = run(rec, fib)
        assert [o.kind for o in ops] == [OpKind.REPLACE]
        assert fib.get("10.1.0.0/24")[0].nexthops == (NextHop(A("192.168.0.80"), OIF),)

    def test_merge_limit(self) -> None:
        fib = FakeFib()
        rec = start(fib, KernelConfig(merge_limit=2))
        want(rec, "10.1.0.0/24", "192.168.0.83", "192.168.0.82", "192.168.0.80")
        run(rec, fib)
        hops = [str(h.gateway) for h in fib.get("10.1.0.0/24")[0].nexthops]
        assert hops == ["192.168.0.82", "192.168.0.83"]  # the first two, best first

    def test_merge_paths_off_first_only(self) -> None:
        fib = FakeFib()
        rec = start(fib, KernelConfig(merge_paths=False))
        want(rec, "10.1.0.0/24", "192.168.0.83", "192.168.0.80")
        run(rec, fib)
        assert fib.get("10.1.0.0/24")[0].nexthops == (NextHop(A("192.168.0.83"), OIF),)

    def test_next_hops_resolving_to_one_gateway_are_merged(self) -> None:
        fib = FakeFib([CONNECTED, fib_route("172.16.0.0/16", ("192.168.0.1", OIF), proto=4)])
        rec = start(fib)
        want(rec, "10.1.0.0/24", "172.16.0.5", "172.16.0.6")
        run(rec, fib)
        assert fib.get("10.1.0.0/24")[0].nexthops == (NextHop(A("192.168.0.1"), OIF),)


class TestGatewayRecursive:
    def test_connected_is_direct_and_covering_route_gives_its_gateway(self) -> None:
        other = fib_route("172.16.0.0/16", ("192.168.0.1", 3), proto=4)
        fib = FakeFib([CONNECTED, other])
        rec = start(fib)
        want(rec, "10.1.0.0/24", "192.168.0.80")
        want(rec, "10.2.0.0/24", "172.16.9.9")
        run(rec, fib)
        assert fib.get("10.1.0.0/24")[0].nexthops == (NextHop(A("192.168.0.80"), OIF),)
        assert fib.get("10.2.0.0/24")[0].nexthops == (NextHop(A("192.168.0.1"), 3),)

    def test_unresolvable_is_not_programmed_until_a_route_appears(self) -> None:
        fib = FakeFib()
        rec = start(fib)
        want(rec, "10.2.0.0/24", "172.16.9.9")
        assert run(rec, fib) == []
        entry = rec.snapshot().by_prefix()[N("10.2.0.0/24")]
        assert entry.state is RouteState.MISSING and "unreachable" in entry.reason
        covering = fib_route("172.16.0.0/16", ("192.168.0.1", OIF), proto=3)
        fib.put(covering)
        rec.observe(covering, False, 1.0)  # the monitor sees it
        ops = run(rec, fib)
        assert [o.kind for o in ops] == [OpKind.ADD]
        assert rec.installed(N("10.2.0.0/24"))
        # the covering route goes: the route of ours is deleted (at once: not adopted)
        fib.remove("172.16.0.0/16")
        rec.observe(covering, True, 2.0)
        ops = run(rec, fib)
        assert [(o.kind, o.cause) for o in ops] == [(OpKind.DELETE, KernelEventKind.DELETED)]

    def test_our_own_routes_and_blackholes_do_not_resolve(self) -> None:
        fib = FakeFib([CONNECTED, fib_route("172.17.0.0/16", rtype=RouteType.BLACKHOLE, proto=4)])
        rec = start(fib)
        want(rec, "172.16.0.0/16", "192.168.0.80")
        want(rec, "10.3.0.0/24", "172.16.1.1")  # only covered by a route of ours
        want(rec, "10.4.0.0/24", "172.17.1.1")  # covered by a blackhole
        ops = run(rec, fib)
        assert [str(o.route.prefix) for o in ops] == ["172.16.0.0/16"]
        snap = rec.snapshot().by_prefix()
        assert "no route covers" in snap[N("10.3.0.0/24")].reason
        assert "blackhole" in snap[N("10.4.0.0/24")].reason


def test_reject_cidrs_never_programmed() -> None:
    old = fib_route("10.96.0.0/12", rtype=RouteType.BLACKHOLE)
    fib = FakeFib([CONNECTED, old])
    rec = start(fib, KernelConfig(reject_cidrs=(N("10.96.0.0/12"),)))
    rec.want(KernelRoute(N("10.96.0.0/12"), blackhole=True))
    rec.want(KernelRoute(N("10.96.4.0/24"), blackhole=True))
    assert run(rec, fib) == []
    assert rec.snapshot().by_prefix()[N("10.96.4.0/24")].state is RouteState.MISSING
    rec.converge("t")
    ops = run(rec, fib)
    assert [(o.kind, str(o.route.prefix)) for o in ops] == [(OpKind.DELETE, "10.96.0.0/12")]


class TestRestore:
    def setup_method(self) -> None:
        self.fib = FakeFib()
        self.rec = start(self.fib)
        want(self.rec, "10.1.0.0/24", "192.168.0.80")
        run(self.rec, self.fib)
        self.rec.take_events()

    def test_deleted_by_hand_is_reinstalled_by_the_scan(self) -> None:
        self.fib.remove("10.1.0.0/24")
        self.rec.load(self.fib.dump(), 2.0)
        ops = run(self.rec, self.fib)
        assert [(o.kind, o.cause, o.reason) for o in ops] == [
            (OpKind.ADD, KernelEventKind.REINSTALLED, "deleted outside the speaker")
        ]
        assert self.rec.installed(N("10.1.0.0/24"))

    def test_altered_by_hand_is_restored_by_the_scan(self) -> None:
        altered = fib_route("10.1.0.0/24", ("192.168.0.99", OIF))
        self.fib.put(altered)
        self.rec.load(self.fib.dump(), 2.0)
        ops = run(self.rec, self.fib)
        assert [(o.kind, o.cause) for o in ops] == [(OpKind.REPLACE, KernelEventKind.REINSTALLED)]
        assert self.fib.get("10.1.0.0/24")[0].nexthops[0].gateway == A("192.168.0.80")

    def test_monitor_event_restores_at_once_but_rate_limited(self) -> None:
        route = self.fib.get("10.1.0.0/24")[0]
        self.fib.remove("10.1.0.0/24")
        self.rec.observe(route, True, 10.0)
        assert [o.cause for o in run(self.rec, self.fib, 10.0)] == [KernelEventKind.REINSTALLED]
        # echo of our own re-add: equal to the view, nothing to do
        self.rec.observe(self.fib.get("10.1.0.0/24")[0], False, 10.1)
        assert run(self.rec, self.fib, 10.1) == []
        # deleted again within the same scan interval: left to the scan
        self.fib.remove("10.1.0.0/24")
        self.rec.observe(route, True, 10.5)
        assert run(self.rec, self.fib, 10.5) == []
        self.rec.load(self.fib.dump(), 11.0)
        assert [o.cause for o in run(self.rec, self.fib, 11.0)] == [KernelEventKind.REINSTALLED]

    def test_missed_events_overrun_resync(self) -> None:
        """After ENOBUFS events are lost; the re-dump alone must bring everything back."""
        self.fib.remove("10.1.0.0/24")
        static = fib_route("10.50.0.0/16", ("192.168.0.1", OIF), proto=4)
        self.fib.put(static)
        self.rec.note_resync("overrun")
        self.rec.load(self.fib.dump(), 3.0)
        ops = run(self.rec, self.fib)
        assert [o.cause for o in ops] == [KernelEventKind.REINSTALLED]
        assert N("10.50.0.0/16") in self.rec.learned()
        assert (KernelEventKind.RESYNC, "None") in kinds(self.rec)


class TestAliens:
    def test_learned_and_unlearned_with_filters(self) -> None:
        routes = [
            CONNECTED,
            fib_route("10.50.0.0/16", ("192.168.0.1", OIF), proto=4),  # static: learned
            fib_route("10.51.0.0/16", ("192.168.0.1", OIF), proto=3),  # boot: learned
            fib_route("10.52.0.0/16", ("192.168.0.1", OIF), proto=1),  # redirect: ignored
            fib_route("10.53.0.0/16", proto=4, rtype=RouteType.BLACKHOLE),  # learned
            fib_route("10.54.0.0/16", ("192.168.0.1", OIF), proto=4, rtype=RouteType.LOCAL),
            fib_route("10.55.0.0/16", proto=4),  # unicast on nothing: ignored
            fib_route("10.56.0.0/16", ("192.168.0.1", OIF), proto=4, table=100),  # other table
        ]
        fib = FakeFib(routes)
        rec = start(fib)
        changes = rec.take_learn_changes()
        learned = {str(c.prefix): c for c in changes if isinstance(c, LearnedRoute)}
        assert sorted(learned) == ["10.50.0.0/16", "10.51.0.0/16", "10.53.0.0/16"]
        assert learned["10.50.0.0/16"] == LearnedRoute(
            N("10.50.0.0/16"), (A("192.168.0.1"),), "eth0", 4, RouteType.UNICAST, 0
        )
        assert learned["10.53.0.0/16"].type is RouteType.BLACKHOLE
        gone = routes[1]
        fib.remove("10.50.0.0/16")
        rec.observe(gone, True, 1.0)
        assert rec.take_learn_changes() == [N("10.50.0.0/16")]
        rec.converge("t")
        assert run(rec, fib) == []  # aliens are never deleted
        assert len(fib.dump()) == len(routes) - 1

    def test_lowest_metric_alien_is_the_learned_one(self) -> None:
        fib = FakeFib(
            [
                CONNECTED,
                fib_route("10.50.0.0/16", ("192.168.0.2", OIF), proto=4, metric=100),
                fib_route("10.50.0.0/16", ("192.168.0.1", OIF), proto=4, metric=10),
            ]
        )
        rec = start(fib)
        assert rec.learned()[N("10.50.0.0/16")].nexthops == (A("192.168.0.1"),)

    def test_learn_off(self) -> None:
        fib = FakeFib([CONNECTED, fib_route("10.50.0.0/16", ("192.168.0.1", OIF), proto=4)])
        rec = start(fib, KernelConfig(learn=False))
        assert rec.take_learn_changes() == []

    def test_alien_at_our_key_blocks_and_is_never_overwritten(self) -> None:
        alien = fib_route("10.1.0.0/24", ("192.168.0.1", OIF), proto=4)
        fib = FakeFib([CONNECTED, alien])
        rec = start(fib)
        rec.take_events()
        want(rec, "10.1.0.0/24", "192.168.0.80")
        assert run(rec, fib) == []
        assert [e.kind for e in rec.take_events()] == [KernelEventKind.BLOCKED]
        rec.load(fib.dump(), 2.0)
        assert run(rec, fib) == []
        assert rec.take_events() == []  # reported once, not every scan
        assert rec.snapshot().by_prefix()[N("10.1.0.0/24")].state is RouteState.MISSING
        assert fib.get("10.1.0.0/24") == [alien]
        fib.remove("10.1.0.0/24")
        rec.observe(alien, True, 3.0)
        assert [o.kind for o in run(rec, fib)] == [OpKind.ADD]

    def test_alien_at_another_metric_does_not_block(self) -> None:
        fib = FakeFib(
            [CONNECTED, fib_route("10.1.0.0/24", ("192.168.0.1", OIF), proto=4, metric=50)]
        )
        rec = start(fib)
        want(rec, "10.1.0.0/24", "192.168.0.80")
        assert [o.kind for o in run(rec, fib)] == [OpKind.ADD]
        assert len(fib.get("10.1.0.0/24")) == 2


class TestFailures:
    def test_failure_reported_once_and_retried_each_scan(self) -> None:
        fib = FakeFib()
        rec = start(fib)
        rec.take_events()
        fib.fail["10.1.0.0/24"] = errno.ENETUNREACH
        want(rec, "10.1.0.0/24", "192.168.0.80")
        run(rec, fib)
        (event,) = rec.take_events()
        assert event.kind is KernelEventKind.FAILED and event.error == errno.ENETUNREACH
        assert "Network is unreachable" in event.reason
        entry = rec.snapshot().by_prefix()[N("10.1.0.0/24")]
        assert entry.state is RouteState.MISSING and "unreachable" in entry.reason
        fib.fail["10.1.0.0/24"] = errno.ENETUNREACH
        rec.load(fib.dump(), 2.0)
        assert len(run(rec, fib)) == 1  # retried at the scan
        assert rec.take_events() == []  # same error: no new event
        rec.load(fib.dump(), 4.0)
        run(rec, fib)
        assert rec.installed(N("10.1.0.0/24"))

    def test_eexist_and_unknown_outcome_ask_for_a_scan(self) -> None:
        fib = FakeFib()
        rec = start(fib)
        want(rec, "10.1.0.0/24", "192.168.0.80")
        (op,) = rec.plan(10)
        rec.apply([OpResult(op, errno.EEXIST)], 0.0)
        assert rec.needs_scan
        rec.load(fib.dump(), 1.0)
        assert not rec.needs_scan
        (op,) = rec.plan(10)
        rec.apply([OpResult(op, UNKNOWN_OUTCOME, "answers lost")], 1.0)
        assert rec.needs_scan

    def test_change_while_in_flight_is_replanned(self) -> None:
        fib = FakeFib()
        rec = start(fib)
        want(rec, "10.1.0.0/24", "192.168.0.80")
        ops = rec.plan(10)
        want(rec, "10.1.0.0/24", "192.168.0.82")  # arrives while the add is in flight
        assert rec.plan(10) == []
        rec.apply(fib.execute(ops), 0.0)
        (replace,) = rec.plan(10)
        assert replace.kind is OpKind.REPLACE
        assert replace.route.nexthops[0].gateway == A("192.168.0.82")


def test_routes_of_ours_at_other_metrics_swept_after_convergence() -> None:
    extra = fib_route("10.1.0.0/24", ("192.168.0.80", OIF), metric=7)
    fib = FakeFib([CONNECTED, extra])
    rec = start(fib)
    want(rec, "10.1.0.0/24", "192.168.0.80")
    assert [o.kind for o in run(rec, fib)] == [OpKind.ADD]
    assert len(fib.get("10.1.0.0/24")) == 2
    rec.converge("t")
    ops = run(rec, fib)
    assert [(o.kind, o.route.priority) for o in ops] == [(OpKind.DELETE, 7)]
    assert fib.get("10.1.0.0/24")[0].priority == 0


def test_ipv6_uses_the_kernel_default_metric() -> None:
    fib = FakeFib([CONNECTED, CONNECTED6])
    rec = start(fib)
    want(rec, "2001:db8:1::/64", "2001:db8::80")
    (op,) = run(rec, fib)
    assert op.route.priority == 1024 and op.route.is_primary
    rec.load(fib.dump(), 2.0)
    assert run(rec, fib) == []


def test_want_rejects_bad_input() -> None:
    rec = Reconciler(KernelConfig())
    with pytest.raises(TypeError, match="KernelRoute"):
        rec.want("10.0.0.0/8")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="network"):
        rec.unwant("10.0.0.0/8")  # type: ignore[arg-type]


# -- property: whatever happens, aliens are untouched and the table converges ----------------

PREFIXES = [f"10.{i}.0.0/24" for i in range(6)]
GATEWAYS = ["192.168.0.80", "192.168.0.82", "192.168.0.83", "172.16.0.9"]

action = st.one_of(
    st.tuples(
        st.just("want"),
        st.sampled_from(PREFIXES),
        st.lists(st.sampled_from(GATEWAYS), min_size=0, max_size=3, unique=True),
    ),
    st.tuples(st.just("unwant"), st.sampled_from(PREFIXES), st.just([])),
    st.tuples(st.just("alien"), st.sampled_from([*PREFIXES, "172.16.0.0/16"]), st.just([])),
    st.tuples(st.just("unalien"), st.sampled_from([*PREFIXES, "172.16.0.0/16"]), st.just([])),
    st.tuples(st.just("manual_delete"), st.sampled_from(PREFIXES), st.just([])),
    st.tuples(st.just("flush"), st.just(""), st.just([])),
    st.tuples(st.just("scan"), st.just(""), st.just([])),
    st.tuples(st.just("converge"), st.just(""), st.just([])),
)


@settings(max_examples=300, deadline=None)
@given(
    initial=st.lists(st.sampled_from(PREFIXES), unique=True),
    actions=st.lists(action, max_size=25),
)
def test_property_aliens_untouched_and_converges(
    initial: list[str], actions: list[tuple[str, str, list[str]]]
) -> None:
    fib = FakeFib([CONNECTED, *(fib_route(p, ("192.168.0.80", OIF)) for p in initial)])
    rec = start(fib)
    now = 0.0
    for name, prefix, hops in actions:
        now += 0.5
        if name == "want":
            if hops:
                want(rec, prefix, *hops)
            else:
                rec.want(KernelRoute(N(prefix), blackhole=True))
        elif name == "unwant":
            rec.unwant(N(prefix))
        elif name == "alien":
            alien = fib_route(prefix, ("192.168.0.1", OIF), proto=4)
            if not fib.get(prefix):
                fib.put(alien)
                rec.observe(alien, False, now)
        elif name == "unalien":
            for r in fib.get(prefix):
                if r.proto == 4:
                    fib.remove(prefix, 4)
                    rec.observe(r, True, now)
        elif name == "manual_delete":
            fib.remove(prefix, OURS)  # no event: only the scan can tell
        elif name == "flush":
            run(rec, fib, now)
        elif name == "scan":
            rec.load(fib.dump(), now)
        else:
            rec.converge("t")
    aliens_before = {k: r for k, r in fib.table.items() if r.proto != OURS}
    rec.converge("end")
    for _ in range(3):
        now += 5.0
        rec.load(fib.dump(), now)
        run(rec, fib, now)
    assert {k: r for k, r in fib.table.items() if r.proto != OURS} == aliens_before
    # fixpoint: exactly the programmable wanted routes of ours, nothing else of ours
    now += 5.0
    rec.load(fib.dump(), now)
    assert run(rec, fib, now) == []
    ours = {str(r.prefix): r for r in fib.table.values() if r.proto == OURS}
    for prefix in PREFIXES:
        target = rec.desired(N(prefix))
        blocked = any(r.proto != OURS and r.priority == 0 for r in fib.get(prefix))
        if target is None or blocked:
            assert prefix not in ours
        else:
            assert ours[prefix] == target
            assert rec.installed(N(prefix))


@settings(max_examples=300, deadline=None)
@given(
    initial=st.lists(st.sampled_from(PREFIXES), unique=True),
    actions=st.lists(action.filter(lambda a: a[0] != "converge"), max_size=25),
)
def test_property_one_scan_before_convergence_leaves_only_unconfirmed_adopted_extra(
    initial: list[str], actions: list[tuple[str, str, list[str]]]
) -> None:
    """Hardening #1: without convergence, after one scan every route of ours in the kernel is
    wanted or is an adopted route exactly as found at start-up, and every programmable wanted
    route is installed (an adopted multipath route held whole aside)."""
    found = {p: fib_route(p, ("192.168.0.80", OIF)) for p in initial}
    fib = FakeFib([CONNECTED, *found.values()])
    rec = start(fib)
    now = 0.0
    for name, prefix, hops in actions:
        now += 0.5
        if name == "want":
            if hops:
                want(rec, prefix, *hops)
            else:
                rec.want(KernelRoute(N(prefix), blackhole=True))
        elif name == "unwant":
            rec.unwant(N(prefix))
        elif name == "alien":
            if not fib.get(prefix):
                alien = fib_route(prefix, ("192.168.0.1", OIF), proto=4)
                fib.put(alien)
                rec.observe(alien, False, now)
        elif name == "unalien":
            for r in fib.get(prefix):
                if r.proto == 4:
                    fib.remove(prefix, 4)
                    rec.observe(r, True, now)
        elif name == "manual_delete":
            fib.remove(prefix, OURS)
        elif name == "flush":
            run(rec, fib, now)
        elif name == "scan":
            rec.load(fib.dump(), now)
    run(rec, fib, now)
    now += 5.0
    rec.load(fib.dump(), now)
    run(rec, fib, now)
    assert not rec.converged
    ours = {str(r.prefix): r for r in fib.table.values() if r.proto == OURS}
    for prefix in PREFIXES:
        target = rec.desired(N(prefix))
        blocked = any(r.proto != OURS and r.priority == 0 for r in fib.get(prefix))
        have = ours.get(prefix)
        if target is None or blocked:
            assert have is None or have == found.get(prefix), (prefix, have)
        elif have != target:
            assert have is not None and prefix in found, (prefix, have, target)
            held = {(h.gateway, h.oif) for h in target.nexthops}
            assert held < {(h.gateway, h.oif) for h in have.nexthops}, (prefix, have, target)


# -- property: a batch of intents is the same as one call per intent -------------------------

BATCH_PREFIXES = [*PREFIXES[:4], "10.96.1.0/24", "2001:db8:1::/64", "2001:db8:2::/64"]
HOP_SETS = {
    4: [(A("192.168.0.80"),), (A("192.168.0.80"), A("192.168.0.82")), (A("172.16.0.9"),), ()],
    6: [(A("2001:db8::80"),), ()],
}

intent = st.tuples(st.sampled_from(BATCH_PREFIXES), st.integers(0, 4))


@settings(max_examples=200, deadline=None)
@given(
    initial=st.lists(st.sampled_from(BATCH_PREFIXES), unique=True),
    batches=st.lists(st.lists(intent, max_size=8), max_size=6),
)
def test_property_a_batch_is_one_call_per_intent(
    initial: list[str], batches: list[list[tuple[str, int]]]
) -> None:
    """``want_all`` (the core's batches, shared next-hop tuples) leaves the reconciler
    exactly as ``want``/``unwant`` one intent at a time (fresh tuples each call) do: same
    view, same writes, same events, IPv4 and IPv6, blackholes, rejected and unresolvable."""
    config = KernelConfig(reject_cidrs=(N("10.96.0.0/12"),))
    found = [fib_route(p, ("192.168.0.80" if ":" not in p else "2001:db8::80", OIF))
             for p in initial]
    one_fib, batch_fib = (FakeFib([CONNECTED, CONNECTED6, *found]) for _ in range(2))
    one, batch = start(one_fib, config), start(batch_fib, config)
    for number, intents in enumerate(batches):
        shared: list[tuple[int, tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...] | None]]
        shared = []
        for prefix, pick in intents:
            net = N(prefix)
            sets = HOP_SETS[net.version]
            hops = sets[pick] if pick < len(sets) else None
            shared.append((net_key(net), hops))
            if hops is None:
                one.unwant(net)
            elif hops:
                one.want(KernelRoute(net, tuple(A(str(h)) for h in hops)))  # a fresh tuple
            else:
                one.want(KernelRoute(net, blackhole=True))
        batch.want_all(shared)
        assert batch.snapshot() == one.snapshot()
        if number % 2:
            assert run(batch, batch_fib) == run(one, one_fib)
        if number == 3:
            batch.converge("t")
            one.converge("t")
        if number in (1, 4):  # next hop 172.16.0.9 becomes resolvable, then not again
            alien = fib_route("172.16.0.0/16", ("192.168.0.1", OIF), proto=4)
            for rec, fib in ((one, one_fib), (batch, batch_fib)):
                if number == 1:
                    fib.put(alien)
                else:
                    fib.remove("172.16.0.0/16", 4)
                rec.observe(alien, number == 4, float(number))
            assert batch.snapshot() == one.snapshot()
    assert run(batch, batch_fib) == run(one, one_fib)
    assert batch.take_events() == one.take_events()
    assert batch.stats() == one.stats() and batch_fib.table == one_fib.table


def test_want_all_checks_each_next_hop_set_once_and_refuses_bad_ones() -> None:
    rec = start(FakeFib())
    v4 = net_key(N("10.0.0.0/26"))
    with pytest.raises(TypeError, match="tuple"):
        rec.want_all([(v4, [A("192.168.0.80")])])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="not an ip address"):
        rec.want_all([(v4, ("192.168.0.80",))])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="not a unicast"):
        rec.want_all([(v4, (A("224.0.0.1"),))])
    with pytest.raises(ValueError, match="two families"):
        rec.want_all([(v4, (A("192.168.0.80"), A("2001:db8::80")))])
    with pytest.raises(ValueError, match="another family"):
        rec.want_all([(net_key(N("2001:db8:1::/64")), (A("192.168.0.80"),))])
    assert rec.stats()["wanted"] == 0 and rec.pending() == 0
    hops = (A("192.168.0.80"),)
    rec.want_all([(net_key(N(f"10.0.{i}.0/24")), hops) for i in range(3)])
    assert rec.stats()["wanted"] == 3 and rec.pending() == 3
    with pytest.raises(ValueError, match="another family"):  # a known set, the wrong family
        rec.want_all([(net_key(N("2001:db8:1::/64")), hops)])
    rec.want_all([(net_key(N(f"10.0.{i}.0/24")), None) for i in range(3)])
    assert rec.stats()["wanted"] == 0


def test_routine_events_are_counted_not_published_when_nobody_reads_them() -> None:
    """``route_events`` off (the daemon at info): installed, replaced, deleted, swept and
    adopted routes are counted as with it on, and only the other events are published."""

    def scenario(route_events: bool) -> tuple[dict[str, int], list[tuple[KernelEventKind, str]]]:
        fib = FakeFib([CONNECTED, fib_route("10.244.3.0/26", ("192.168.0.82", OIF)),
                       fib_route("10.244.4.0/26", ("192.168.0.82", OIF), metric=7)])
        rec = Reconciler(KernelConfig(), {OIF: "eth0"})
        rec.route_events = route_events
        rec.load(fib.dump(), 0.0, initial=True)  # adopts two routes
        want(rec, "10.244.1.0/26", "192.168.0.80")
        want(rec, "10.244.2.0/26", "192.168.0.80")
        want(rec, "2001:db8:1::/64", "2001:db8::80")  # unresolvable: no IPv6 route
        fib.fail["10.244.2.0/26"] = errno.EINVAL
        run(rec, fib)
        want(rec, "10.244.1.0/26", "192.168.0.82")  # replaced
        run(rec, fib)
        rec.converge("t")  # sweeps the adopted routes
        rec.unwant(N("10.244.1.0/26"))  # deleted
        run(rec, fib)
        return rec.stats(), kinds(rec)

    on_stats, on_events = scenario(True)
    off_stats, off_events = scenario(False)
    assert off_stats == on_stats
    assert {on_stats[k] for k in ("adopted", "installed", "replaced", "deleted", "swept")} == {1, 2}
    routine = {"adopted", "installed", "replaced", "deleted", "swept"}
    assert off_events == [(k, p) for k, p in on_events if k.value not in routine]
    assert {k.value for k, _ in off_events} == {"failed", "converged"}


def test_one_body_per_next_hop_set_and_none_kept_from_a_scan() -> None:
    """Prefixes wanted via one next-hop set share one desired body, the routes written keep
    it, and a scan that reads them back as we wrote them keeps it too: no object per route
    (nor the dump's own) stays in the reconciler: a settled route has no entry of its own in
    ``_ours`` at all.  A route altered by hand is not the body any more, is kept as an entry
    until restored, and the entry goes with the restoration."""
    fib = FakeFib()
    rec = start(fib)
    rec.converge("test")
    prefixes = [f"10.0.{i}.0/26" for i in range(5)]
    for prefix in prefixes:
        want(rec, prefix, "192.168.0.80")
    run(rec, fib)
    keys = [net_key(N(p)) for p in prefixes]
    bodies = {id(rec._desired_of(k)) for k in keys} | {id(rec._current(k)) for k in keys}
    assert len(bodies) == 1 and rec._ours == {}
    body = rec._desired_of(keys[0])
    assert body is not None and body.key == 0
    rec.load(fib.dump(), 2.0)  # FakeFib's dump: the written routes, whole
    assert all(rec._current(k) is body for k in keys) and rec._ours == {}
    assert rec.plan(100) == []
    fib.put(fib_route(prefixes[2], ("192.168.0.80", OIF), metric=0)._replace(extras=b"mtu"))
    rec.load(fib.dump(), 4.0)
    assert list(rec._ours) == [keys[2]] and rec._ours[keys[2]] is not body
    ops = run(rec, fib, 4.0)
    assert [(o.kind, str(o.route.prefix), o.reason) for o in ops] == [
        (OpKind.REPLACE, prefixes[2], "altered outside the speaker")
    ]
    assert rec._current(keys[2]) is body and rec._ours == {}
    assert rec.ours()[N(prefixes[2])] == fib_route(prefixes[2], ("192.168.0.80", OIF))


def test_load_in_steps_lets_the_rib_change_between_steps() -> None:
    """A scan folded in steps (the bridge yields to the loop between them) gives what one
    load gives, with the RIB wanting and unwanting prefixes between the steps."""
    fib = FakeFib()
    rec = start(fib)
    rec.converge("test")
    for i in range(40):
        want(rec, f"10.0.{i}.0/26", "192.168.0.80")
    run(rec, fib)
    fib.remove("10.0.3.0/26")  # deleted by hand: restored by the scan
    fib.put(fib_route("10.0.99.0/26", ("192.168.0.80", OIF)))  # ours, not wanted: deleted
    steps = rec.load_steps(fib.dump(), 2.0, step=4)
    next(steps)
    rec.unwant(N("10.0.5.0/26"))
    want(rec, "10.0.50.0/26", "192.168.0.80")
    taken = sum(1 for _ in steps)
    assert taken > 5  # really in steps
    ops = run(rec, fib, 2.0)
    assert sorted((o.kind, str(o.route.prefix), o.reason) for o in ops) == [
        (OpKind.ADD, "10.0.3.0/26", "deleted outside the speaker"),
        (OpKind.ADD, "10.0.50.0/26", "wanted"),
        (OpKind.DELETE, "10.0.5.0/26", "withdrawn"),
        (OpKind.DELETE, "10.0.99.0/26", "not wanted after convergence"),
    ]
    rec.load(fib.dump(), 4.0)
    assert rec.plan(100) == []


def _feed(rec: Reconciler, fib: FakeFib, count: int) -> list[int]:
    """``count`` /26 routes via .80 installed, in one batch; their keys."""
    hops = (A("192.168.0.80"),)
    keys = [net_key(N(f"10.{i >> 10}.{(i >> 2) & 255}.{(i & 3) * 64}/26")) for i in range(count)]
    rec.want_all((key, hops) for key in keys)
    run(rec, fib, limit=4096)
    return keys


def _ours_left(fib: FakeFib) -> int:
    return sum(r.proto == OURS for r in fib.table.values())


def test_whole_peer_withdrawal_is_planned_a_slice_at_a_time() -> None:
    """Issue #12: a peer's 3,000 routes withdrawn at once are planned ``limit`` deletes at a
    time, the next slice when the last one is applied, and the kernel ends empty."""
    fib = FakeFib()
    rec = start(fib)
    keys = _feed(rec, fib, 3000)
    assert _ours_left(fib) == 3000
    rec.want_all([(key, None) for key in keys])
    assert rec.pending() == 3000 and rec.has_work()
    entry = rec.snapshot().by_prefix()[N("10.0.0.0/26")]
    assert entry.state is RouteState.PENDING and entry.reason == "change queued"
    sizes = []
    while ops := rec.plan(256):
        sizes.append(len(ops))
        assert rec.pending() == 3000 - 256 * (len(sizes) - 1)  # the rest is queued
        assert {(o.kind, o.reason) for o in ops} == {(OpKind.DELETE, "withdrawn")}
        rec.apply(fib.execute(ops), 0.0)
    assert sizes == [256] * 11 + [184]
    assert _ours_left(fib) == 0 and rec.pending() == 0 and rec.stats()["ours"] == 0


def test_withdrawal_keeps_no_table_entry_per_route() -> None:
    """The pending deletes of a whole-peer withdrawal cost a queue slot per route (8 bytes),
    not a dict and a set entry (90 bytes: +9 MiB of RSS at 100,000 routes, +128 MiB at a
    million)."""
    fib = FakeFib()
    rec = start(fib)
    keys = _feed(rec, fib, 20_000)
    intents = [(key, None) for key in keys]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        rec.want_all(intents)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 12 * len(keys), f"{grown / len(keys):.0f} bytes a withdrawn route"
    run(rec, fib, limit=512)
    assert _ours_left(fib) == 0


def test_failed_deletes_of_a_slice_are_matched_and_retried_at_the_scan() -> None:
    """Errors in one slice of a withdrawal are matched to their routes (and only theirs);
    the rest of the withdrawal goes on, and the next scan retries the failures."""
    fib = FakeFib()
    rec = start(fib)
    keys = _feed(rec, fib, 600)
    rec.take_events()
    failing = ["10.0.75.0/26", "10.0.75.64/26", "10.0.100.192/26"]  # 300, 301, 403: slice 2
    for prefix in failing:
        fib.fail[prefix] = errno.EBUSY
    rec.want_all([(key, None) for key in keys])
    run(rec, fib, limit=256)
    assert sorted(str(r.prefix) for r in fib.table.values() if r.proto == OURS) == sorted(failing)
    failed = [e for e in rec.take_events() if e.kind is KernelEventKind.FAILED]
    assert sorted(str(e.prefix) for e in failed) == sorted(failing)
    assert all(e.error == errno.EBUSY and e.reason.startswith("delete ") for e in failed)
    for prefix in failing:
        entry = rec.snapshot().by_prefix()[N(prefix)]
        assert entry.state is RouteState.DIFFERS and "busy" in entry.reason
    rec.load(fib.dump(), 2.0)
    ops = run(rec, fib, 2.0)
    assert sorted(str(o.route.prefix) for o in ops) == sorted(failing)
    assert {(o.kind, o.reason) for o in ops} == {(OpKind.DELETE, "withdrawn")}
    assert _ours_left(fib) == 0 and rec.pending() == 0


def test_delete_reasons_withdrawn_unasked_and_swept() -> None:
    """Why an unwanted route of ours goes: withdrawn (the RIB wanted it in this run), not
    found at start-up (appeared unasked), or not wanted after convergence (adopted, never
    confirmed; or appeared unasked once converged)."""
    adopted = fib_route("10.244.3.0/26", ("192.168.0.82", OIF))
    readopted = fib_route("10.244.4.0/26", ("192.168.0.82", OIF))
    fib = FakeFib([CONNECTED, adopted, readopted])
    rec = start(fib)
    stray = fib_route("10.9.0.0/24", ("192.168.0.80", OIF))
    fib.put(stray)
    rec.load(fib.dump(), 1.0)
    assert [(str(o.route.prefix), o.reason) for o in run(rec, fib)] == [
        ("10.9.0.0/24", "not wanted, not found at start-up")
    ]
    want(rec, "10.9.1.0/24", "192.168.0.80")
    run(rec, fib)
    rec.unwant(N("10.9.1.0/24"))
    assert [(str(o.route.prefix), o.reason) for o in run(rec, fib)] == [
        ("10.9.1.0/24", "withdrawn")
    ]
    rec.converge("t")
    assert sorted((str(o.route.prefix), o.reason) for o in run(rec, fib)) == [
        ("10.244.3.0/26", "not wanted after convergence"),
        ("10.244.4.0/26", "not wanted after convergence"),
    ]
    fib.put(readopted)  # back by hand, then wanted and withdrawn: a withdrawal
    rec.load(fib.dump(), 2.0)
    want(rec, "10.244.4.0/26", "192.168.0.82")
    rec.unwant(N("10.244.4.0/26"))
    assert [(str(o.route.prefix), o.reason) for o in run(rec, fib)] == [
        ("10.244.4.0/26", "withdrawn")
    ]
    fib.put(stray)
    rec.observe(stray, False, 3.0)
    assert [(str(o.route.prefix), o.reason) for o in run(rec, fib)] == [
        ("10.9.0.0/24", "not wanted after convergence")
    ]


def test_settled_routes_keep_no_entry_of_their_own() -> None:
    """Issue #12: a route of ours in the kernel that is the wanted one costs no slot beside
    the wanted prefix's: ``_ours`` holds only what differs (here: the 5,000 routes wanted and
    not yet written), and once they are written its table is given back."""
    fib = FakeFib()
    rec = start(fib)
    hops = (A("192.168.0.80"),)
    keys = [net_key(N(f"10.{i >> 8}.{i & 255}.0/24")) for i in range(5000)]
    rec.want_all((key, hops) for key in keys)
    assert len(rec._ours) == 5000 and all(rec._ours[k] is None for k in keys)
    assert rec.stats()["ours"] == 0 and not rec.installed(N("10.0.1.0/24"))
    run(rec, fib, limit=4096)
    assert rec._ours == {} and sys.getsizeof(rec._ours) < 1024
    assert rec.stats()["ours"] == 5000 == len(rec.ours()) == len(rec.all_ours())
    assert rec.installed(N("10.0.1.0/24"))
    entry = rec.snapshot().by_prefix()[N("10.0.1.0/24")]
    assert entry.state is RouteState.INSTALLED and entry.installed is not None
    assert entry.installed.nexthops == (A("192.168.0.80"),)


def test_a_leaving_route_is_kept_in_its_slot_until_deleted() -> None:
    """A withdrawn route whose delete is not done yet stays in its prefix's slot: it is
    still shown installed, a scan meanwhile neither loses it nor takes it for a route that
    appeared unasked, wanting it again before the delete needs no write, and one deleted
    by someone else meanwhile needs no delete."""
    fib = FakeFib()
    rec = start(fib)
    rec.converge("t")
    for prefix in ("10.1.0.0/24", "10.2.0.0/24", "10.3.0.0/24"):
        want(rec, prefix, "192.168.0.80")
    run(rec, fib)
    for prefix in ("10.1.0.0/24", "10.2.0.0/24", "10.3.0.0/24"):
        rec.unwant(N(prefix))
    assert rec._ours == {} and rec.stats()["ours"] == 3 and rec.stats()["wanted"] == 0
    entry = rec.snapshot().by_prefix()[N("10.1.0.0/24")]
    assert entry.state is RouteState.PENDING and entry.wanted is None
    assert entry.installed is not None and entry.installed.nexthops == (A("192.168.0.80"),)
    fib.remove("10.3.0.0/24")
    rec.load(fib.dump(), 1.0)  # a scan before the deletes are planned
    want(rec, "10.2.0.0/24", "192.168.0.80")  # wanted again: it is still there
    ops = run(rec, fib, 1.0)
    assert [(o.kind, str(o.route.prefix), o.reason) for o in ops] == [
        (OpKind.DELETE, "10.1.0.0/24", "withdrawn")
    ]
    assert rec.installed(N("10.2.0.0/24")) and rec._ours == {}
    assert sorted(str(r.prefix) for r in rec.all_ours()) == ["10.2.0.0/24"]


def test_a_next_hop_moving_replaces_settled_routes() -> None:
    """Settled routes hold no copy of their body: when their next hop resolves elsewhere,
    what the kernel holds is recorded first, so the replacement says what it was."""
    fib = FakeFib()
    rec = start(fib)
    rec.converge("t")
    want(rec, "10.1.0.0/24", "192.168.0.80")
    run(rec, fib)
    moved = fib_route("192.168.0.0/24", (None, 3), proto=2)
    fib.remove("192.168.0.0/24")
    fib.put(moved)
    rec.observe(moved, False, 1.0)
    held = fib_route("10.1.0.0/24", ("192.168.0.80", OIF))._replace(key=0)
    assert rec._ours == {net_key(N("10.1.0.0/24")): held}
    (op,) = run(rec, fib, 1.0)
    assert op.kind is OpKind.REPLACE
    assert op.reason.startswith("was 10.1.0.0/24 via 192.168.0.80 ifindex 2 ")
    assert op.route.nexthops[0].oif == 3 and rec._ours == {}


def test_a_withdrawal_is_planned_as_keys_and_its_failures_matched_by_index() -> None:
    """``plan_batch`` gives a withdrawal's deletes as bare prefix keys (no Op, route or
    result each); ``apply_deletes`` takes failures by index, every other key done: counted
    (or, with route events, an event each, with the route's gateways).  ``plan`` still gives
    the same deletes as Ops."""
    fib = FakeFib([CONNECTED, CONNECTED6])
    rec = start(fib)
    rec.converge("t")
    prefixes = ["10.1.0.0/24", "10.2.0.0/24", "2001:db8:5::/64"]
    for prefix in prefixes:
        want(rec, prefix, "2001:db8::80" if ":" in prefix else "192.168.0.80")
    run(rec, fib)
    for prefix in prefixes:
        rec.unwant(N(prefix))
    ops, keys = rec.plan_batch(100)
    assert ops == [] and keys == [net_key(N(p)) for p in prefixes] and rec.pending() == 3
    rec.route_events = False
    rec.take_events()
    fib.remove("10.1.0.0/24")  # done; 2001:db8:5::/64 was gone already (ESRCH): done too
    fib.remove("2001:db8:5::/64")
    rec.apply_deletes(keys, [(1, errno.EBUSY, "held"), (2, errno.ESRCH, "")], 1.0)
    assert rec.pending() == 0 and rec.stats()["ours"] == 1
    assert rec.counters["deleted"] == 2 and rec.counters["write_errors"] == 1
    (failed,) = rec.take_events()
    assert failed.kind is KernelEventKind.FAILED and str(failed.prefix) == "10.2.0.0/24"
    assert failed.reason == "delete 10.2.0.0/24 via 192.168.0.80 ifindex 2 proto 186 " \
        "metric 0: Device or resource busy: held"
    rec.route_events = True
    rec.load(fib.dump(), 2.0)  # the failed one is retried at the scan; as an Op by plan()
    (op,) = rec.plan(100)
    assert (op.kind, str(op.route.prefix), op.reason) == (OpKind.DELETE, "10.2.0.0/24",
                                                          "withdrawn")
    rec.apply(fib.execute([op]), 2.0)
    want(rec, "10.3.0.0/24", "192.168.0.80")
    run(rec, fib, 3.0)
    rec.take_events()
    rec.unwant(N("10.3.0.0/24"))
    _, keys = rec.plan_batch(100)
    rec.apply_deletes(keys, fib.delete(keys), 3.0)
    (event,) = rec.take_events()
    assert (event.kind, str(event.prefix), event.reason, event.nexthops) == (
        KernelEventKind.DELETED, "10.3.0.0/24", "withdrawn", (A("192.168.0.80"),)
    )
    assert _ours_left(fib) == 0 and rec.stats()["ours"] == 0


def _counted_dump(rec: Reconciler, fib: FakeFib) -> RouteDump:
    """The scan's dump as the bridge takes it once loaded: routes found exactly as the
    reconciler holds them (``scan_expected``) are counted, the rest kept."""
    expected = rec.scan_expected()
    out = RouteDump()
    for route in fib.dump():
        held = rec.interner.body(route)
        if expected is not None and expected(route.key) is held:
            out.same += 1
        else:
            out.keys.append(route.key)
            out.bodies.append(held)
    return out


class TestCountedScan:
    """A periodic scan that only counts the routes it finds as we hold them (no key list
    nor dict of 100,000) still restores what was altered, and a route deleted by hand,
    which a count cannot name, is found by a scan keeping every key, asked for at once."""

    def setup_method(self) -> None:
        self.fib = FakeFib()
        self.rec = start(self.fib)
        self.rec.converge("test")
        for i in range(6):
            want(self.rec, f"10.0.{i}.0/26", "192.168.0.80")
        run(self.rec, self.fib)
        self.rec.take_events()

    def test_steady_state_is_counted_not_kept(self) -> None:
        assert self.rec.scan_expected() is not None
        dump = _counted_dump(self.rec, self.fib)
        assert dump.same == 6 and len(dump) == 1  # the connected route is not ours
        self.rec.load(dump, 2.0)
        assert not self.rec.needs_scan and self.rec.scan_expected() is not None
        assert run(self.rec, self.fib, 2.0) == []

    def test_altered_route_is_kept_and_restored(self) -> None:
        self.fib.put(fib_route("10.0.2.0/26", ("192.168.0.99", OIF)))
        dump = _counted_dump(self.rec, self.fib)
        assert dump.same == 5
        self.rec.load(dump, 2.0)
        assert not self.rec.needs_scan
        ops = run(self.rec, self.fib, 2.0)
        assert [(o.kind, str(o.route.prefix), o.reason) for o in ops] == [
            (OpKind.REPLACE, "10.0.2.0/26", "altered outside the speaker")
        ]

    def test_deleted_route_asks_for_a_scan_keeping_every_key(self) -> None:
        self.fib.remove("10.0.4.0/26")
        self.rec.load(_counted_dump(self.rec, self.fib), 2.0)
        assert self.rec.needs_scan and self.rec.scan_expected() is None
        assert run(self.rec, self.fib, 2.0) == []  # cannot say which one yet
        full = _counted_dump(self.rec, self.fib)
        assert full.same == 0 and len(full) == 6
        self.rec.load(full, 3.0)
        assert not self.rec.needs_scan and self.rec.scan_expected() is not None
        ops = run(self.rec, self.fib, 3.0)
        assert [(o.kind, str(o.route.prefix), o.reason) for o in ops] == [
            (OpKind.ADD, "10.0.4.0/26", "deleted outside the speaker")
        ]

    def test_a_leaving_route_gone_meanwhile_needs_no_delete(self) -> None:
        """A withdrawn route not yet deleted is held too: found, it is counted; deleted by
        someone else, the count falls short, and the scan keeping every key settles it."""
        self.rec.unwant(N("10.0.1.0/26"))
        dump = _counted_dump(self.rec, self.fib)
        assert dump.same == 6
        self.rec.load(dump, 2.0)
        assert not self.rec.needs_scan
        self.fib.remove("10.0.1.0/26")
        self.rec.load(_counted_dump(self.rec, self.fib), 3.0)
        assert self.rec.needs_scan
        self.rec.load(_counted_dump(self.rec, self.fib), 4.0)
        assert not self.rec.needs_scan and not self.rec.installed(N("10.0.1.0/26"))
        assert run(self.rec, self.fib, 4.0) == []
