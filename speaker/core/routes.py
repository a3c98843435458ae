"""The one step from a RIB change to a kernel intent.

A :class:`~speaker.rib.RouteChange` (a new best path and ECMP set, or none) becomes
``want(KernelRoute)`` or ``unwant(prefix)`` here and nowhere else: Calico's kernel filter
(``calico_kernel_programming``: the reject CIDRs, blackholes for our own blocks) is
:class:`~speaker.rib.CalicoKernelPolicy`; the ECMP set is already capped at the merge limit by
the Loc-RIB; this module turns the members into a deduplicated next-hop tuple.

The import guard (the policy's ``GUARD_*`` steps) is part of the same filter, so one place
owns "what goes into the kernel": each refusal is published as an :class:`ImportRefused`, and
an ECMP member whose next hop is one of our own addresses is left out of the route.
"""

from __future__ import annotations

from collections.abc import Callable

from speaker.core.events import ImportRefused
from speaker.core.io import KernelPort
from speaker.events import Event
from speaker.kernel.model import KernelRoute
from speaker.rib import CalicoKernelPolicy, RouteChange
from speaker.rib.attrs import IpAddress

_HOP_SETS_MAX = 4096


class KernelIntents:
    """Follows RIB changes into a :class:`KernelPort`."""

    def __init__(
        self,
        kernel: KernelPort,
        policy: CalicoKernelPolicy,
        publish: Callable[[Event], None] | None = None,
    ) -> None:
        self.kernel = kernel
        self.policy = policy
        self._publish = publish or (lambda _: None)
        self.frozen = False
        """Shutting down: as BIRD's krt_rt_notify then, the kernel keeps what it has (with
        persist; without it the bridge removes our routes itself when it stops)."""
        self._hop_sets: dict[tuple[IpAddress, ...], tuple[IpAddress, ...]] = {}

    def follow(self, change: RouteChange) -> None:
        """Tell the kernel what it should hold for the change's prefix."""
        if self.frozen:
            return
        net = change.prefix.network
        best = change.new_best
        if best is None:
            self.kernel.unwant(net)
            return
        decision = self.policy.explain(change.prefix, best)
        if not decision.accepted:
            if decision.step.guard:
                self._publish(ImportRefused(str(net), best.peer.name, decision.describe()))
            self.kernel.unwant(net)
            return
        if decision.blackhole:
            self.kernel.want(KernelRoute.trusted(net, (), True))
            return
        hops = self.next_hops(change)
        if hops:
            self.kernel.want(KernelRoute.trusted(net, hops))
        else:
            self.kernel.unwant(net)

    def next_hops(self, change: RouteChange) -> tuple[IpAddress, ...]:
        """The ECMP set's next hops, deduplicated, best first, one shared tuple per set."""
        best = change.new_best
        members = change.new_ecmp or ((best,) if best is not None else ())
        hops: tuple[IpAddress, ...]
        if len(members) == 1:  # one path (the usual case): no generator, no dict
            hop = members[0].next_hop
            hops = () if hop is None else (hop,)
        else:
            hops = tuple(dict.fromkeys(p.next_hop for p in members if p.next_hop is not None))
        own = self.policy.own
        if own and any(h in own for h in hops):  # the guard: never a hop to ourselves
            hops = tuple(h for h in hops if h not in own)
        if not hops:
            return hops
        # A feed has a handful of next-hop sets: share one tuple per set
        # (integration/bench/convergence.py: 100,000 routes, 4.6 MiB of 1-tuples).
        shared = self._hop_sets.get(hops)
        if shared is None:
            if len(self._hop_sets) > _HOP_SETS_MAX:
                self._hop_sets.clear()
            # checked once per set, not per route (KernelRoute.trusted does not check).
            # A link-local next hop (RFC 2545 3: meaningful only on the link it came from)
            # needs that interface; the kernel route uses the global one.
            usable = tuple(h for h in hops
                           if not (h.is_unspecified or h.is_multicast or h.is_link_local))
            shared = self._hop_sets[hops] = usable
        return shared
