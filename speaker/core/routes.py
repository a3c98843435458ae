"""The one step from RIB changes to kernel intents.

A :class:`~speaker.rib.RouteChange` (a new best path and ECMP set, or none) becomes a kernel
intent here and nowhere else: ``(key, next hops)`` or ``(key, None)`` (no route), the key
being the prefix itself (a :class:`~speaker.wire.nlri.Prefix` is an int whose value is the
kernel's key for it; :data:`~speaker.kernel.model.KernelIntent`).  Calico's kernel filter
(``calico_kernel_programming``: the reject CIDRs, blackholes for our own blocks) is
:class:`~speaker.rib.CalicoKernelPolicy`; the ECMP set is already capped at the merge limit by
the Loc-RIB; this module turns the members into a deduplicated next-hop tuple, one shared
tuple per set.  A RIB delta (an UPDATE's prefixes, a peer's withdrawal) goes to the
:class:`KernelPort` as one batch.

The import guard (the policy's ``GUARD_*`` steps) is part of the same filter, so one place
owns "what goes into the kernel": each refusal is published as an :class:`ImportRefused`, and
an ECMP member whose next hop is one of our own addresses is left out of the route.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from speaker.core.events import ImportRefused
from speaker.core.io import KernelPort
from speaker.events import Event
from speaker.kernel.model import BLACKHOLE, KernelIntent
from speaker.rib import CalicoKernelPolicy, RouteChange, Verdict
from speaker.rib.attrs import IpAddress

_HOP_SETS_MAX = 4096
_ACCEPT = Verdict.ACCEPT  # module globals: an enum member's class lookup is slow on 3.11


class KernelIntents:
    """Follows RIB changes into a :class:`KernelPort`."""

    def __init__(
        self,
        kernel: KernelPort,
        policy: CalicoKernelPolicy,
        publish: Callable[[Event], None] | None = None,
    ) -> None:
        self.kernel = kernel
        self._policy = policy
        self._publish = publish or (lambda _: None)
        self.frozen = False
        """Shutting down: as BIRD's krt_rt_notify then, the kernel keeps what it has (with
        persist; without it the bridge removes our routes itself when it stops)."""
        # next-hop set -> the shared tuple the kernel gets (the guard and the usability
        # checks applied once per set), and the same for a single next hop by identity
        self._hop_sets: dict[tuple[IpAddress, ...], tuple[IpAddress, ...]] = {}
        self._one_hop: dict[int, tuple[IpAddress, tuple[IpAddress, ...]]] = {}
        # while held (the core handles a read's worth of UPDATEs): the intents gathered for
        # one KernelPort.apply at release, instead of one call per UPDATE (the kernel is
        # written only after the core returns to the loop, so nothing sees the difference)
        self._held = 0
        self._pending: list[KernelIntent] = []

    def hold(self) -> None:
        """Gather intents until the matching :meth:`release` (calls nest)."""
        self._held += 1

    def release(self) -> None:
        """End a :meth:`hold`; the outermost one hands what was gathered to the kernel."""
        self._held -= 1
        if not self._held:
            self.flush()

    def flush(self) -> None:
        """Hand the intents gathered so far to the kernel now, in one batch (before anything
        else reaches the kernel: convergence must see every route wanted until then)."""
        if self._pending:
            pending, self._pending = self._pending, []
            self.kernel.apply(pending)

    @property
    def policy(self) -> CalicoKernelPolicy:
        """Calico's kernel filter (replaced on reconfiguration)."""
        return self._policy

    @policy.setter
    def policy(self, policy: CalicoKernelPolicy) -> None:
        self._policy = policy
        self._hop_sets.clear()  # the guard's own addresses may have changed
        self._one_hop.clear()

    def follow(self, changes: Iterable[RouteChange]) -> bool:
        """Publish each change and tell the kernel what it should hold for its prefix: one
        :meth:`KernelPort.apply` for the whole batch (while held: for all of them, at
        :meth:`release` or :meth:`flush`).  A change's import refusal is published right
        after it, as with one call per change.  Whether there was any."""
        publish = self._publish
        if self.frozen:
            seen = False
            for change in changes:
                seen = True
                publish(change)
            return seen
        intents: list[KernelIntent] = self._pending if self._held else []
        size = len(intents)
        add = intents.append
        explain = self._policy.explain
        one_hop = self._one_hop
        for change in changes:
            publish(change)
            # the bridge keys its table by this very object: one int per route for both
            key = prefix = change.prefix
            best = change.new_best
            if best is None:
                add((key, None))
                continue
            decision = explain(prefix, best)
            if decision.verdict is not _ACCEPT:  # not decision.accepted, without a call
                if decision.step.guard:
                    publish(ImportRefused(str(prefix), best.peer.name, decision.describe()))
                add((key, None))
            elif decision.blackhole:
                add((key, BLACKHOLE))
            elif (
                len(ecmp := change.new_ecmp) == 1
                and (hop := ecmp[0].next_hop) is not None
                and (hit := one_hop.get(id(hop))) is not None
                and hit[0] is hop
            ):
                add((key, hit[1] or None))  # next_hops(change)'s one-path case, inlined
            else:
                add((key, self.next_hops(change) or None))
        if self._held:
            return len(intents) > size
        if intents:
            self.kernel.apply(intents)
        return bool(intents)

    def next_hops(self, change: RouteChange) -> tuple[IpAddress, ...]:
        """The ECMP set's next hops, deduplicated, best first, one shared tuple per set;
        empty when none is usable."""
        best = change.new_best
        members = change.new_ecmp or ((best,) if best is not None else ())
        if len(members) == 1:  # one path (the usual case): no generator, no address hash
            hop = members[0].next_hop
            if hop is None:
                return ()
            hit = self._one_hop.get(id(hop))
            if hit is not None and hit[0] is hop:
                return hit[1]
            shared = self._shared((hop,))
            if len(self._one_hop) > _HOP_SETS_MAX:
                self._one_hop.clear()
            self._one_hop[id(hop)] = (hop, shared)  # holds hop: its id is not reused meanwhile
            return shared
        return self._shared(
            tuple(dict.fromkeys(p.next_hop for p in members if p.next_hop is not None))
        )

    def _shared(self, hops: tuple[IpAddress, ...]) -> tuple[IpAddress, ...]:
        """The tuple the kernel gets for a next-hop set, computed once per set.  A feed has
        a handful of sets (integration/bench/convergence.py: 100,000 routes, 4.6 MiB of
        1-tuples when each route had its own)."""
        shared = self._hop_sets.get(hops)
        if shared is None:
            if len(self._hop_sets) > _HOP_SETS_MAX:
                self._hop_sets.clear()
            own = self._policy.own
            # the guard: never a hop to ourselves.  A link-local next hop (RFC 2545 3:
            # meaningful only on the link it came from) needs that interface; the kernel
            # route uses the global one.  Checked once per set, not per route.
            shared = self._hop_sets[hops] = tuple(
                h for h in hops
                if not (h in own or h.is_unspecified or h.is_multicast or h.is_link_local)
            )
        return shared
