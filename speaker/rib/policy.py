"""Calico's export filters, as BIRD evaluates them, with the step that decided each verdict.

``calico_export_to_bgp_peers`` (bird_ipam.cfg, bird_aggr.cfg) decides which routes a node
advertises to its mesh peers; ``calico_kernel_programming`` which routes go into the kernel.
Both are small objects built from the node's blocks and the IP pools, and both can
``explain`` a verdict step by step, for the ``explain`` command and for teaching.

Before any filter runs, BIRD's BGP protocol refuses two things itself
(``bgp_import_control``, proto/bgp/attrs.c): sending a route back to the peer it came from,
and passing a route learned from an iBGP peer to another iBGP peer (split horizon; route
reflection aside).  The Adj-RIB-Out applies those; the export policy repeats the split
horizon so that its explanation is complete for a mesh peer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple, Protocol

from speaker.rib.path import Path, SourceKind
from speaker.wire.enums import Afi
from speaker.wire.nlri import Prefix


class Verdict(Enum):
    """What a filter does with a route."""

    ACCEPT = "accept"
    REJECT = "reject"


class ExportStep(Enum):
    """The step of BGP export that decided (in BIRD's evaluation order)."""

    FAMILY = "address family not negotiated with the peer"
    SOURCE_PEER = "never sent back to the peer it came from (bgp_import_control)"
    SPLIT_HORIZON = "iBGP split horizon: routes learned over iBGP are not sent to iBGP peers"
    DISABLED_POOL = "reject_disabled_pools(): inside a pool with BGP export disabled"
    OWN_BLOCK = "calico_aggr(): net = one of this node's blocks"
    INSIDE_OWN_BLOCK = "calico_aggr(): net ~ one of this node's blocks (more specific)"
    STATIC_CIDR = "net ~ a static route CIDR (service IPs)"
    IN_POOL = "net ~ an IP pool with BGP export enabled"
    NO_MATCH = "no statement matched: final reject"
    ACCEPT_ALL = "no export filter: everything is exported"


class ExportDecision(NamedTuple):
    """An export verdict, the step that gave it, and the prefix that step matched."""

    verdict: Verdict
    step: ExportStep
    matched: Prefix | None = None

    @property
    def accepted(self) -> bool:
        """True if the route is exported."""
        return self.verdict is Verdict.ACCEPT

    def describe(self) -> str:
        """``accept: calico_aggr(): net = one of this node's blocks (10.244.42.64/26)``."""
        where = "" if self.matched is None else f" ({self.matched})"
        return f"{self.verdict.value}: {self.step.value}{where}"


class ExportPolicy(Protocol):
    """What the Adj-RIB-Out asks of an export filter."""

    def explain(
        self, prefix: Prefix, source: Path | SourceKind, *, internal_peer: bool = True
    ) -> ExportDecision:
        """The verdict for ``prefix`` learned from ``source``, sent to an (i)BGP peer."""
        ...


def _prefixes(items: Iterable[Prefix | str]) -> tuple[Prefix, ...]:
    out: list[Prefix] = []
    for item in items:
        try:
            out.append(item if isinstance(item, Prefix) else Prefix.parse(item))
        except ValueError as exc:
            raise ValueError(f"bad prefix {item!r}: {exc}") from None
    return tuple(out)


def _from_ibgp(source: Path | SourceKind) -> bool:
    """Was the route learned from an iBGP peer?  A bare ``SourceKind.BGP`` means a mesh peer."""
    if isinstance(source, SourceKind):
        return source is SourceKind.BGP
    return source.source is SourceKind.BGP and source.peer.internal and not source.peer.rr_client


_WIDTH = {Afi.IPV4: 32, Afi.IPV6: 128}


class NetIndex:
    """A few networks, ready for the per-route checks of the kernel filter: each as its
    family, its top bits and length, so that "covers" and "overlaps" are one shift and one
    comparison (100,000 routes pass the import guard in a full feed)."""

    __slots__ = ("_by_afi",)

    def __init__(self, nets: Iterable[Prefix]) -> None:
        by_afi: dict[Afi, list[tuple[int, int, int, Prefix]]] = {}
        for net in nets:
            shift = _WIDTH[net.afi] - net.length
            by_afi.setdefault(net.afi, []).append((net.addr >> shift, net.length, shift, net))
        self._by_afi = {afi: tuple(entries) for afi, entries in by_afi.items()}

    def __bool__(self) -> bool:
        return bool(self._by_afi)

    def covering(self, prefix: Prefix) -> Prefix | None:
        """The first network that contains ``prefix`` (or is it)."""
        length, addr = prefix.length, prefix.addr
        for top, net_length, shift, net in self._by_afi.get(prefix.afi, ()):
            if length >= net_length and addr >> shift == top:
                return net
        return None

    def overlapping(self, prefix: Prefix) -> Prefix | None:
        """The first network that contains ``prefix`` or lies inside it."""
        length, addr = prefix.length, prefix.addr
        for top, net_length, shift, net in self._by_afi.get(prefix.afi, ()):
            if length >= net_length:
                if addr >> shift == top:
                    return net
            else:
                cut = _WIDTH[prefix.afi] - length
                if net.addr >> cut == addr >> cut:
                    return net
        return None


@dataclass(frozen=True)
class AcceptAllPolicy:
    """No export filter (BIRD's ``export all``): only split horizon applies."""

    def explain(
        self, prefix: Prefix, source: Path | SourceKind, *, internal_peer: bool = True
    ) -> ExportDecision:
        """Accept, except iBGP-learned routes towards an iBGP peer."""
        if internal_peer and _from_ibgp(source):
            return ExportDecision(Verdict.REJECT, ExportStep.SPLIT_HORIZON)
        return ExportDecision(Verdict.ACCEPT, ExportStep.ACCEPT_ALL)


class CalicoExportPolicy:
    """``calico_export_to_bgp_peers`` for one node: its blocks, the pools, and the extras.

    Evaluation order (bird-calico-facts b.4/b.5): disabled pools reject; ``calico_aggr()``
    accepts each own block exactly and rejects anything more specific inside it (the node's
    own /32 workload routes); static route CIDRs accept; pools accept (a borrowed /32 inside a
    pool but outside our blocks); anything else is rejected.
    """

    def __init__(
        self,
        blocks: Iterable[Prefix | str],
        pools: Iterable[Prefix | str],
        *,
        disabled_pools: Iterable[Prefix | str] = (),
        static_cidrs: Iterable[Prefix | str] = (),
    ) -> None:
        self.blocks = _prefixes(blocks)
        self.pools = _prefixes(pools)
        self.disabled_pools = _prefixes(disabled_pools)
        self.static_cidrs = _prefixes(static_cidrs)
        self._block_set = frozenset(self.blocks)
        self._disabled_index = NetIndex(self.disabled_pools)
        self._block_index = NetIndex(self.blocks)
        self._static_index = NetIndex(self.static_cidrs)
        self._pool_index = NetIndex(self.pools)

    def explain(
        self, prefix: Prefix, source: Path | SourceKind, *, internal_peer: bool = True
    ) -> ExportDecision:
        """The verdict and the deciding step for ``prefix`` learned from ``source``."""
        if internal_peer and _from_ibgp(source):
            return ExportDecision(Verdict.REJECT, ExportStep.SPLIT_HORIZON)
        hit = self._disabled_index.covering(prefix)
        if hit is not None:
            return ExportDecision(Verdict.REJECT, ExportStep.DISABLED_POOL, hit)
        if prefix in self._block_set:
            return ExportDecision(Verdict.ACCEPT, ExportStep.OWN_BLOCK, prefix)
        hit = self._block_index.covering(prefix)
        if hit is not None:
            return ExportDecision(Verdict.REJECT, ExportStep.INSIDE_OWN_BLOCK, hit)
        hit = self._static_index.covering(prefix)
        if hit is not None:
            return ExportDecision(Verdict.ACCEPT, ExportStep.STATIC_CIDR, hit)
        hit = self._pool_index.covering(prefix)
        if hit is not None:
            return ExportDecision(Verdict.ACCEPT, ExportStep.IN_POOL, hit)
        return ExportDecision(Verdict.REJECT, ExportStep.NO_MATCH)

    def accepts(self, prefix: Prefix, source: Path | SourceKind) -> bool:
        """True if the route is exported to a mesh peer."""
        return self.explain(prefix, source).accepted


# ---------------------------------------------------------------------------- kernel


class KernelStep(Enum):
    """The step of kernel export that decided."""

    FROM_KERNEL = "learned from the kernel: never written back (BIRD krt_import_control)"
    DEVICE_ROUTE = "a connected network: BIRD writes device routes only with `device routes`"
    GUARD_DEFAULT = "import guard: a default route from a peer is never programmed"
    GUARD_OWN_BLOCK = "import guard: one of this node's own blocks, announced by a peer"
    GUARD_PROTECTED = "import guard: overlaps a protected network ([kernel] protect, own addresses)"
    GUARD_OUTSIDE_POOLS = "import guard: outside every IP pool"
    GUARD_NEXT_HOP_SELF = "import guard: the next hop is one of this node's own addresses"
    REJECT_CIDR = "net ~ a reject CIDR: not programmed (service-IP blackholes)"
    OWN_BLOCK = "one of this node's blocks: programmed as a blackhole"
    ACCEPT = "final accept: programmed"

    @property
    def guard(self) -> bool:
        """A step of the import guard (a refusal worth an event), not Calico's filter."""
        return self.name.startswith("GUARD_")


class KernelDecision(NamedTuple):
    """A kernel-export verdict, its step, and whether the route is a blackhole."""

    verdict: Verdict
    step: KernelStep
    blackhole: bool = False
    matched: Prefix | None = None

    @property
    def accepted(self) -> bool:
        """True if the route goes into the kernel."""
        return self.verdict is Verdict.ACCEPT

    def describe(self) -> str:
        """``reject: net ~ a reject CIDR: ... (10.96.0.0/12)``."""
        where = "" if self.matched is None else f" ({self.matched})"
        return f"{self.verdict.value}: {self.step.value}{where}"


_ACCEPT = KernelDecision(Verdict.ACCEPT, KernelStep.ACCEPT, False)
_ACCEPT_BLACKHOLE = KernelDecision(Verdict.ACCEPT, KernelStep.ACCEPT, True)
_BGP = SourceKind.BGP  # module globals: an enum member's class lookup is slow on 3.11
_IPV4 = Afi.IPV4
_V6_SCREEN = 256  # a screen key: the prefix length, plus this for IPv6
_NEXT_HOP_SELF_MAX = 4096
_Checks = tuple[tuple[int, frozenset[int]], ...]
"""(shift, tops) pairs: ``addr >> shift in tops`` for each, in one loop."""
_Screen = tuple[_Checks, _Checks | None]
_UNBUILT: _Screen = ((), ())


def _checks(tops_by_shift: dict[int, set[int]]) -> _Checks:
    return tuple((shift, frozenset(tops)) for shift, tops in sorted(tops_by_shift.items()))


class CalicoKernelPolicy:
    """``calico_kernel_programming``: reject the reject CIDRs, accept everything else; in
    front of it, for routes learned from peers, the import guard.

    Our own blocks are accepted as blackholes (their best path is the local blackhole
    static); routes the kernel itself gave us are never written back.

    The import guard holds whatever a peer sends (docs/security.md): a BGP route is never
    programmed if it is a default route, one of our own blocks (a peer's /32 *inside* one is
    a borrowed address and passes), overlaps a protected network (``protect``: the node's own
    addresses as /32s and whatever the operator adds, e.g. the node's subnet), lies outside
    every pool (when pools are known), or leads to one of our own addresses (``own``).
    """

    def __init__(
        self,
        reject_cidrs: Iterable[Prefix | str] = (),
        blocks: Iterable[Prefix | str] = (),
        *,
        pools: Iterable[Prefix | str] = (),
        protect: Iterable[Prefix | str] = (),
        own: Iterable[object] = (),
    ) -> None:
        self.reject_cidrs = _prefixes(reject_cidrs)
        self.blocks = frozenset(_prefixes(blocks))
        self.pools = _prefixes(pools)
        self.protect = _prefixes(protect)
        self.own = frozenset(own)
        """Our own addresses: a next hop among them is refused."""
        self._reject_index = NetIndex(self.reject_cidrs)
        self._pool_index = NetIndex(self.pools)
        self._protect_index = NetIndex(self.protect)
        self._next_hop_self: dict[int, tuple[tuple[object, ...], bool]] = {}
        """Per next-hop tuple (by identity: attribute sets of one NEXT_HOP share theirs, so a
        feed of one set per route has a handful): does it lead to us?  One answer per tuple
        instead of an address hashed per route."""
        self._screens: dict[int, _Screen | None] = {}
        """Per family and prefix length (the length, plus ``_V6_SCREEN`` for IPv6): the checks
        that tell at once that a peer's route of that length is accepted, built on first use."""

    def _to_ourselves(self, path: Path) -> bool:
        hops = path.attrs.next_hops
        hit = self._next_hop_self.get(id(hops))
        if hit is not None and hit[0] is hops:
            return hit[1]
        if len(self._next_hop_self) >= _NEXT_HOP_SELF_MAX:
            self._next_hop_self.clear()
        known = bool(hops) and hops[0] in self.own
        self._next_hop_self[id(hops)] = (hops, known)  # holds hops: its id is not reused
        return known

    def explain(self, prefix: Prefix, best: Path | SourceKind) -> KernelDecision:
        """The verdict for ``prefix`` whose best path is ``best``."""
        if type(best) is Path and best.source is _BGP:
            # the usual case (a peer's route inside a pool, clear of every listed network):
            # a few shifts and int set tests, then the next hop; anything else, step by step
            afi, addr, length = prefix.parts
            key = length if afi is _IPV4 else length | _V6_SCREEN
            screen = self._screens.get(key, _UNBUILT)
            if screen is _UNBUILT:
                screen = self._screens[key] = self._screen(afi, length)
            if screen is not None:
                stops, pools = screen
                for shift, tops in stops:
                    if addr >> shift in tops:
                        break
                else:
                    covered = pools is None
                    for shift, tops in pools or ():
                        if addr >> shift in tops:
                            covered = True
                            break
                    if covered and not (self.own and self._to_ourselves(best)):
                        return _ACCEPT
        kind = best if isinstance(best, SourceKind) else best.source
        if kind is SourceKind.KERNEL:
            return KernelDecision(Verdict.REJECT, KernelStep.FROM_KERNEL)
        if kind is SourceKind.DIRECT:
            return KernelDecision(Verdict.REJECT, KernelStep.DEVICE_ROUTE)
        if kind is SourceKind.BGP:
            refused = self.guard(prefix, best if isinstance(best, Path) else None)
            if refused is not None:
                return refused
        hit = self._reject_index.covering(prefix) if self._reject_index else None
        if hit is not None:
            return KernelDecision(Verdict.REJECT, KernelStep.REJECT_CIDR, matched=hit)
        blackhole = kind is SourceKind.LOCAL
        if prefix in self.blocks:
            return KernelDecision(Verdict.ACCEPT, KernelStep.OWN_BLOCK, blackhole, prefix)
        return _ACCEPT_BLACKHOLE if blackhole else _ACCEPT

    def guard(self, prefix: Prefix, path: Path | None) -> KernelDecision | None:
        """The import guard's refusal of a route learned from a peer, or None (it passes)."""
        if prefix.length == 0:
            return KernelDecision(Verdict.REJECT, KernelStep.GUARD_DEFAULT)
        if prefix in self.blocks:
            return KernelDecision(Verdict.REJECT, KernelStep.GUARD_OWN_BLOCK, matched=prefix)
        net = self._protect_index.overlapping(prefix) if self._protect_index else None
        if net is not None:
            return KernelDecision(Verdict.REJECT, KernelStep.GUARD_PROTECTED, matched=net)
        if self._pool_index and self._pool_index.covering(prefix) is None:
            return KernelDecision(Verdict.REJECT, KernelStep.GUARD_OUTSIDE_POOLS)
        if path is not None and self.own and self._to_ourselves(path):
            return KernelDecision(Verdict.REJECT, KernelStep.GUARD_NEXT_HOP_SELF)
        return None

    def _screen(self, afi: Afi, length: int) -> _Screen | None:
        """For a peer's routes of this family and length: the (shift, tops) pairs any of which
        matching makes a step other than the final accept decide (an own block, an overlapping
        protected network, a covering reject CIDR), and those of the pools (one must match;
        None: no pools known).  None for the default route (always refused)."""
        if length == 0:
            return None
        width = _WIDTH[afi]
        stops: dict[int, set[int]] = {}
        for net in self.blocks:
            if net.afi is afi and net.length == length:
                stops.setdefault(width - length, set()).add(net.addr >> (width - length))
        for net in self.protect:  # overlapping: the shorter of the two lengths decides
            if net.afi is afi:
                shift = width - min(length, net.length)
                stops.setdefault(shift, set()).add(net.addr >> shift)
        for net in self.reject_cidrs:  # covering
            if net.afi is afi and net.length <= length:
                shift = width - net.length
                stops.setdefault(shift, set()).add(net.addr >> shift)
        pools: _Checks | None = None
        if self._pool_index:
            covering: dict[int, set[int]] = {}
            for net in self.pools:
                if net.afi is afi and net.length <= length:
                    shift = width - net.length
                    covering.setdefault(shift, set()).add(net.addr >> shift)
            pools = _checks(covering)
        return _checks(stops), pools
