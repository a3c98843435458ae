"""Best-path selection (RFC 4271 9.1.2.2, as BIRD 1.6 orders it) and ECMP merging.

Selection works the way RFC 4271 9.1.2.2 words it (:func:`pair` is the same for two paths,
written out for speed): start from every path, and at each step
keep only the paths that are best by that step's measure, until one is left.  The step at
which the last competitor fell is the :class:`BestPathReason` the speaker reports, and every
losing path keeps the step that eliminated it, so ``show route`` can say why a path is not
best.  Unlike a pairwise "is better" scan, the outcome does not depend on arrival order
(MED is compared only inside groups of paths from the same neighbouring AS, which makes the
pairwise relation intransitive).

Order (BIRD's ``rte_better`` then ``bgp_rte_better``, proto/bgp/attrs.c):

1. protocol preference (direct 240 > static 200 > BGP 100 > kernel 10; BIRD's ``pref``);
   equal preferences of different kinds, then of two local sources, are settled by a fixed
   order (BIRD compares protocol pointers there: arbitrary but stable);
2. for BGP paths: stale paths lose (BIRD's ``bgp_rte_better`` depreferences stale routes
   before LOCAL_PREF, so a stale path also loses to a fresh one that is otherwise equal);
3. higher LOCAL_PREF (default 100 when absent, BIRD's ``default bgp_local_pref``);
4. shorter AS_PATH (a); 5. lower ORIGIN (b); 6. lower MED between paths from the same
   neighbouring AS, or between all paths with ``always_compare_med`` (BIRD's ``med metric``)
   (c); 7. eBGP over iBGP (d); 8. IGP cost (e: we have none, all equal);
9. lower ORIGINATOR_ID or router id (f, RFC 4456 9 a); 10. shorter CLUSTER_LIST
   (RFC 4456 9 b); 11. lower peer address (g); 12. lower path identifier (our tie-break for
   several add-path paths from one peer, which BIRD settles by arrival order).

ECMP follows BIRD's ``bgp_rte_mergable``: a path merges with the best when both are BGP paths
with equal stale state, LOCAL_PREF, AS_PATH length, ORIGIN, MED (same neighbouring AS or
always-compare), iBGP/eBGP kind and IGP cost; each next hop counts once; at most ``limit``
(BIRD's ``merge paths on limit N``, default 16).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

from speaker.rib.path import PREFERENCE, Path, SourceKind
from speaker.wire.enums import Origin

DEFAULT_LOCAL_PREF = 100  # BIRD 1.6 ``default bgp_local_pref``
DEFAULT_MED = 0  # BIRD 1.6 ``default bgp_med``
DEFAULT_MERGE_LIMIT = 16  # BIRD ``merge paths on`` without ``limit``


class BestPathReason(Enum):
    """The selection step that decided which path is best."""

    NO_PATH = "no path"
    ONLY_PATH = "only path"
    PREFERENCE = "preference"
    SOURCE_KIND = "source kind"
    SOURCE_NAME = "source name"
    STALE = "stale"
    LOCAL_PREF = "local-pref"
    AS_PATH_LENGTH = "as-path length"
    ORIGIN = "origin"
    MED = "med"
    EXTERNAL = "external"
    IGP_COST = "igp cost"
    ROUTER_ID = "router id"
    CLUSTER_LIST = "cluster list"
    PEER_ADDRESS = "peer address"
    PATH_ID = "path id"

    @property
    def rule(self) -> str:
        """The rule this step implements (RFC section, or BIRD's behaviour)."""
        return _RULES[self]


_RULES = {
    BestPathReason.NO_PATH: "no path left",
    BestPathReason.ONLY_PATH: "nothing to compare",
    BestPathReason.PREFERENCE: "BIRD protocol preference",
    BestPathReason.SOURCE_KIND: "BIRD: equal preference, different protocols",
    BestPathReason.SOURCE_NAME: "tie-break between local sources",
    BestPathReason.STALE: "BIRD: stale routes are depreferenced",
    BestPathReason.LOCAL_PREF: "RFC 4271 9.1.1",
    BestPathReason.AS_PATH_LENGTH: "RFC 4271 9.1.2.2 a",
    BestPathReason.ORIGIN: "RFC 4271 9.1.2.2 b",
    BestPathReason.MED: "RFC 4271 9.1.2.2 c",
    BestPathReason.EXTERNAL: "RFC 4271 9.1.2.2 d",
    BestPathReason.IGP_COST: "RFC 4271 9.1.2.2 e",
    BestPathReason.ROUTER_ID: "RFC 4271 9.1.2.2 f, RFC 4456 9",
    BestPathReason.CLUSTER_LIST: "RFC 4456 9",
    BestPathReason.PEER_ADDRESS: "RFC 4271 9.1.2.2 g",
    BestPathReason.PATH_ID: "tie-break between add-path paths of one peer",
}


@dataclass(frozen=True, slots=True)
class SelectionPolicy:
    """The knobs of selection: BIRD's preferences, ``med metric``, defaults."""

    preferences: Mapping[SourceKind, int] | None = None  # None: BIRD's defaults (PREFERENCE)
    always_compare_med: bool = False
    default_local_pref: int = DEFAULT_LOCAL_PREF
    default_med: int = DEFAULT_MED

    def preference(self, path: Path) -> int:
        """The path's protocol preference."""
        prefs = self.preferences if self.preferences is not None else PREFERENCE
        return prefs.get(path.source, 0)

    def local_pref(self, path: Path) -> int:
        """LOCAL_PREF, or the default when absent."""
        lp = path.attrs.local_pref
        return self.default_local_pref if lp is None else lp

    def med(self, path: Path) -> int:
        """MED, or the default when absent."""
        med = path.attrs.med
        return self.default_med if med is None else med

    def neighbor_as(self, path: Path) -> int:
        """The neighbouring AS: first AS of AS_PATH, else the peer's AS (BIRD)."""
        first = path.attrs.first_as
        return path.peer.asn if first is None else first


DEFAULT_POLICY = SelectionPolicy()


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of selection for one prefix.

    ``reason`` is the step at which the last competitor fell, ``runner_up`` that competitor
    (the closest one), ``losers`` every other path with the step that eliminated it;
    :attr:`detail` says the deciding comparison in words ("lower MED 10 < 50").
    """

    best: Path | None
    reason: BestPathReason
    runner_up: Path | None = None
    losers: tuple[tuple[Path, BestPathReason], ...] = ()
    policy: SelectionPolicy = field(default=DEFAULT_POLICY, compare=False, repr=False)

    @property
    def detail(self) -> str:
        """The deciding comparison in words (built on request: most are never read)."""
        return explain_step(self.reason, self.best, self.runner_up, self.policy)

    def describe(self) -> str:
        """``path from 192.168.0.82 wins on lower MED 10 < 50 (RFC 4271 9.1.2.2 c)``."""
        if self.best is None:
            return "no path"
        if self.reason is BestPathReason.ONLY_PATH:
            return f"best via {self.best.via} (only path)"
        return f"path from {self.best.peer} wins on {self.detail} ({self.reason.rule})"


def _origin(path: Path) -> int:
    origin = path.attrs.origin
    return int(Origin.INCOMPLETE) if origin is None else int(origin)


def _router_ip(path: Path) -> ipaddress.IPv4Address:
    oid = path.attrs.originator_id
    return path.peer.router_id if oid is None else oid


def _router_id(path: Path) -> int:
    return int(_router_ip(path))


def _address(path: Path) -> tuple[int, int]:
    addr = path.peer.address
    return (0, 0) if addr is None else (addr.version, int(addr))


_KIND_RANK = {SourceKind.DIRECT: 0, SourceKind.LOCAL: 1, SourceKind.KERNEL: 2, SourceKind.BGP: 3}

Key = Callable[[Path], object]


def _bgp_steps(policy: SelectionPolicy) -> list[tuple[BestPathReason, Key | None]]:
    """The BGP steps, each with a key (lower is better); None marks the grouped MED step."""
    return [
        (BestPathReason.STALE, lambda p: p.stale),
        (BestPathReason.LOCAL_PREF, lambda p: -policy.local_pref(p)),
        (BestPathReason.AS_PATH_LENGTH, lambda p: p.attrs.as_path_length),
        (BestPathReason.ORIGIN, _origin),
        (BestPathReason.MED, None),
        (BestPathReason.EXTERNAL, lambda p: p.peer.internal),
        (BestPathReason.IGP_COST, lambda p: 0),
        (BestPathReason.ROUTER_ID, _router_id),
        (BestPathReason.CLUSTER_LIST, lambda p: len(p.attrs.cluster_list)),
        (BestPathReason.PEER_ADDRESS, _address),
        (BestPathReason.PATH_ID, lambda p: p.path_id or 0),
    ]


def _keep_min(cands: list[Path], key: Key) -> tuple[list[Path], list[Path]]:
    values = [key(p) for p in cands]
    low = min(values)  # type: ignore[type-var]  # keys of one step are mutually comparable
    kept = [p for p, v in zip(cands, values, strict=True) if v == low]
    dropped = [p for p, v in zip(cands, values, strict=True) if v != low]
    return kept, dropped


def _keep_min_med(cands: list[Path], policy: SelectionPolicy) -> tuple[list[Path], list[Path]]:
    if policy.always_compare_med:
        return _keep_min(cands, policy.med)
    low: dict[int, int] = {}
    for p in cands:
        asn = policy.neighbor_as(p)
        med = policy.med(p)
        if asn not in low or med < low[asn]:
            low[asn] = med
    kept = [p for p in cands if policy.med(p) == low[policy.neighbor_as(p)]]
    dropped = [p for p in cands if policy.med(p) != low[policy.neighbor_as(p)]]
    return kept, dropped


def decide(paths: Sequence[Path], policy: SelectionPolicy = DEFAULT_POLICY) -> Decision:
    """Select the best of ``paths`` and say why (see the module docstring for the order)."""
    if not paths:
        return Decision(None, BestPathReason.NO_PATH)
    if len(paths) == 1:
        return Decision(paths[0], BestPathReason.ONLY_PATH)
    if len(paths) == 2:
        win, lose, reason = pair(paths[0], paths[1], policy)
        return Decision(win, reason, lose, ((lose, reason),), policy)
    return eliminate(paths, policy)


Seen = Callable[[BestPathReason, list[Path], list[Path], "Key | None"], None]
"""Told of each step: the step, the candidates it looked at, those it dropped, its key."""


def _select(paths: Sequence[Path], policy: SelectionPolicy, seen: Seen) -> list[Path]:
    """The elimination itself (see the module docstring for the order): run the steps until
    one path is left, telling ``seen`` of each.  :func:`eliminate` and :func:`trace_steps`
    both drive it, so what ``speaker explain`` prints is what selection did."""
    cands = list(paths)

    def run(reason: BestPathReason, key: Key | None) -> bool:
        nonlocal cands
        kept, dropped = _keep_min_med(cands, policy) if key is None else _keep_min(cands, key)
        seen(reason, cands, dropped, key)
        cands = kept
        return len(cands) == 1

    done = run(BestPathReason.PREFERENCE, lambda p: -policy.preference(p)) or run(
        BestPathReason.SOURCE_KIND, lambda p: _KIND_RANK[p.source]
    )
    if not done:
        if cands[0].source is SourceKind.BGP:
            for reason, key in _bgp_steps(policy):
                if run(reason, key):
                    break
        else:
            run(BestPathReason.SOURCE_NAME, lambda p: (p.peer.name, p.path_id or 0))
    return cands


def eliminate(paths: Sequence[Path], policy: SelectionPolicy = DEFAULT_POLICY) -> Decision:
    """Selection by elimination over any number of paths (at least two)."""
    losers: list[tuple[Path, BestPathReason]] = []
    last: tuple[BestPathReason, list[Path], Key | None] | None = None

    def seen(reason: BestPathReason, _looked: list[Path], dropped: list[Path],
             key: Key | None) -> None:
        nonlocal last
        if dropped:
            losers.extend((p, reason) for p in dropped)
            last = (reason, dropped, key)

    best = _select(paths, policy, seen)[0]
    assert last is not None  # paths are distinct, so some step eliminated a competitor
    reason, dropped, key = last
    if key is None:
        key = policy.med
    runner = min(dropped, key=key)  # type: ignore[arg-type]
    return Decision(best, reason, runner, tuple(losers), policy)


def pair(
    a: Path, b: Path, policy: SelectionPolicy = DEFAULT_POLICY
) -> tuple[Path, Path, BestPathReason]:
    """(winner, loser, reason) for two paths: the same steps as :func:`eliminate`, written
    out for the common two-path case (over two paths, elimination is a pairwise test)."""
    R = BestPathReason
    if a.source is not b.source:  # preference depends on the source kind alone
        x, y = policy.preference(a), policy.preference(b)
        if x != y:
            return (a, b, R.PREFERENCE) if x > y else (b, a, R.PREFERENCE)
        x, y = _KIND_RANK[a.source], _KIND_RANK[b.source]
        return (a, b, R.SOURCE_KIND) if x < y else (b, a, R.SOURCE_KIND)
    if a.source is not SourceKind.BGP:
        ka, kb = (a.peer.name, a.path_id or 0), (b.peer.name, b.path_id or 0)
        return (a, b, R.SOURCE_NAME) if ka < kb else (b, a, R.SOURCE_NAME)
    if a.stale != b.stale:
        return (b, a, R.STALE) if a.stale else (a, b, R.STALE)
    x, y = policy.local_pref(a), policy.local_pref(b)
    if x != y:
        return (a, b, R.LOCAL_PREF) if x > y else (b, a, R.LOCAL_PREF)
    aa, ba = a.attrs, b.attrs
    x, y = aa.as_path_length, ba.as_path_length
    if x != y:
        return (a, b, R.AS_PATH_LENGTH) if x < y else (b, a, R.AS_PATH_LENGTH)
    x, y = _origin(a), _origin(b)
    if x != y:
        return (a, b, R.ORIGIN) if x < y else (b, a, R.ORIGIN)
    if policy.always_compare_med or policy.neighbor_as(a) == policy.neighbor_as(b):
        x, y = policy.med(a), policy.med(b)
        if x != y:
            return (a, b, R.MED) if x < y else (b, a, R.MED)
    if a.peer.internal != b.peer.internal:
        return (b, a, R.EXTERNAL) if a.peer.internal else (a, b, R.EXTERNAL)
    x, y = _router_id(a), _router_id(b)
    if x != y:
        return (a, b, R.ROUTER_ID) if x < y else (b, a, R.ROUTER_ID)
    x, y = len(aa.cluster_list), len(ba.cluster_list)
    if x != y:
        return (a, b, R.CLUSTER_LIST) if x < y else (b, a, R.CLUSTER_LIST)
    ta, tb = _address(a), _address(b)
    if ta != tb:
        return (a, b, R.PEER_ADDRESS) if ta < tb else (b, a, R.PEER_ADDRESS)
    return (a, b, R.PATH_ID) if (a.path_id or 0) <= (b.path_id or 0) else (b, a, R.PATH_ID)


def explain_step(
    reason: BestPathReason,
    win: Path | None,
    lose: Path | None,
    policy: SelectionPolicy = DEFAULT_POLICY,
) -> str:
    """The comparison that made ``win`` beat ``lose`` at step ``reason``, in words."""
    R = BestPathReason
    if win is None or lose is None:
        return reason.value
    if reason is R.PREFERENCE:
        return (
            f"higher preference {policy.preference(win)} > {policy.preference(lose)} "
            f"({win.source.value} over {lose.source.value})"
        )
    if reason is R.SOURCE_KIND:
        return f"source {win.source.value} over {lose.source.value} (equal preference)"
    if reason is R.SOURCE_NAME:
        if win.peer.name != lose.peer.name:
            return f"source name {win.peer.name} < {lose.peer.name}"
        return f"lower path id {win.path_id or 0} < {lose.path_id or 0}"
    if reason is R.STALE:
        return f"not being stale (path from {lose.peer} is stale)"
    if reason is R.LOCAL_PREF:
        return f"higher LOCAL_PREF {policy.local_pref(win)} > {policy.local_pref(lose)}"
    if reason is R.AS_PATH_LENGTH:
        return f"shorter AS_PATH {win.attrs.as_path_length} < {lose.attrs.as_path_length}"
    if reason is R.ORIGIN:
        return f"lower ORIGIN {Origin(_origin(win)).name} < {Origin(_origin(lose)).name}"
    if reason is R.MED:
        return f"lower MED {policy.med(win)} < {policy.med(lose)}"
    if reason is R.EXTERNAL:
        return "eBGP over iBGP"
    if reason is R.ROUTER_ID:
        what = "ORIGINATOR_ID" if win.attrs.originator_id is not None else "router id"
        return f"lower {what} {_router_ip(win)} < {_router_ip(lose)}"
    if reason is R.CLUSTER_LIST:
        return (
            f"shorter CLUSTER_LIST {len(win.attrs.cluster_list)} < {len(lose.attrs.cluster_list)}"
        )
    if reason is R.PEER_ADDRESS:
        return f"lower peer address {win.peer.address} < {lose.peer.address}"
    if reason is R.PATH_ID:
        return f"lower path id {win.path_id or 0} < {lose.path_id or 0}"
    return str(reason.value)


def compare(a: Path, b: Path, policy: SelectionPolicy = DEFAULT_POLICY) -> Decision:
    """Which of two paths is better, and why (selection over just these two)."""
    return decide((a, b), policy)


# ---------------------------------------------------------------------------- ECMP


def merge_obstacle(best: Path, other: Path, policy: SelectionPolicy = DEFAULT_POLICY) -> str | None:
    """Why ``other`` cannot share the best path's ECMP route, or None if it can.

    BIRD's ``bgp_rte_mergable`` (proto/bgp/attrs.c) plus ``rte_mergable`` (nest/rt-table.c:
    same preference and protocol).  Next-hop distinctness is a property of the whole set;
    see :func:`ecmp_set`.
    """
    if best.source is not SourceKind.BGP or other.source is not SourceKind.BGP:
        return "only BGP paths merge"
    if policy.preference(best) != policy.preference(other):
        return "different preference"
    if best.stale != other.stale:
        return "stale and non-stale paths do not merge"
    if policy.local_pref(best) != policy.local_pref(other):
        return f"different LOCAL_PREF {policy.local_pref(best)} != {policy.local_pref(other)}"
    if best.attrs.as_path_length != other.attrs.as_path_length:
        return (
            f"different AS_PATH length {best.attrs.as_path_length} != {other.attrs.as_path_length}"
        )
    if _origin(best) != _origin(other):
        return "different ORIGIN"
    same_group = policy.always_compare_med or policy.neighbor_as(best) == policy.neighbor_as(other)
    if same_group and policy.med(best) != policy.med(other):
        return f"different MED {policy.med(best)} != {policy.med(other)}"
    if best.peer.internal != other.peer.internal:
        return "iBGP and eBGP paths do not merge"
    if other.next_hop is None:
        return "no next hop"
    return None


def _mergeable(best: Path, other: Path, policy: SelectionPolicy) -> bool:
    """:func:`merge_obstacle` is None, without building the explanation (hot path)."""
    if other.source is not SourceKind.BGP or best.source is not SourceKind.BGP:
        return False
    if best.stale != other.stale or best.peer.internal != other.peer.internal:
        return False
    ba, oa = best.attrs, other.attrs
    if ba is oa:
        return True
    if policy.local_pref(best) != policy.local_pref(other):
        return False
    if ba.as_path_length != oa.as_path_length or _origin(best) != _origin(other):
        return False
    if policy.always_compare_med or policy.neighbor_as(best) == policy.neighbor_as(other):
        return policy.med(best) == policy.med(other)
    return True


def _tie_order(p: Path) -> tuple[int, int, tuple[int, int], int]:
    return (_router_id(p), len(p.attrs.cluster_list), _address(p), p.path_id or 0)


def ecmp_set(
    best: Path | None,
    paths: Sequence[Path],
    policy: SelectionPolicy = DEFAULT_POLICY,
    limit: int = DEFAULT_MERGE_LIMIT,
) -> tuple[Path, ...]:
    """The best path followed by the paths that merge with it, one per distinct next hop.

    The set is what BIRD's kernel protocol with ``merge paths on limit N`` installs as one
    multipath route; for a non-BGP best path it is the best path alone.
    """
    if best is None:
        return ()
    if len(paths) == 1 or best.source is not SourceKind.BGP or limit <= 1:
        return (best,)
    if len(paths) == 2:
        other = paths[1] if paths[0] is best else paths[0]
        if other.next_hop == best.next_hop or not _mergeable(best, other, policy):
            return (best,)
        return (best, other)
    members = [best]
    hops = {best.next_hop}
    for p in sorted((p for p in paths if p is not best), key=_tie_order):
        if len(members) >= limit:
            break
        if p.next_hop in hops or p.next_hop is None or not _mergeable(best, p, policy):
            continue
        members.append(p)
        hops.add(p.next_hop)
    return tuple(members)


def explain_ecmp(
    best: Path, paths: Sequence[Path], policy: SelectionPolicy = DEFAULT_POLICY
) -> list[tuple[Path, str | None]]:
    """For each non-best path: None if it may join the ECMP set, else why not."""
    out: list[tuple[Path, str | None]] = []
    hops = {best.next_hop}
    for p in sorted((p for p in paths if p is not best), key=_tie_order):
        why = merge_obstacle(best, p, policy)
        if why is None and p.next_hop in hops:
            why = f"next hop {p.next_hop} already in the set"
        if why is None:
            hops.add(p.next_hop)
        out.append((p, why))
    return out


@dataclass(frozen=True)
class StepTrace:
    """One step of selection as :func:`eliminate` ran it (``speaker explain``): each path's
    value at this step (None: already out), and the paths this step eliminated."""

    reason: BestPathReason
    values: tuple[str | None, ...]
    eliminated: tuple[int, ...]


def _shown(reason: BestPathReason, p: Path, policy: SelectionPolicy) -> str:
    """A path's value at a step, as a reader compares them."""
    R = BestPathReason
    if reason is R.PREFERENCE:
        return str(policy.preference(p))
    if reason is R.SOURCE_KIND:
        return p.source.value
    if reason is R.SOURCE_NAME:
        return p.peer.name
    if reason is R.STALE:
        return "stale" if p.stale else "fresh"
    if reason is R.LOCAL_PREF:
        return str(policy.local_pref(p))
    if reason is R.AS_PATH_LENGTH:
        return str(p.attrs.as_path_length)
    if reason is R.ORIGIN:
        return Origin(_origin(p)).name
    if reason is R.MED:
        return f"{policy.med(p)} (AS {policy.neighbor_as(p)})"
    if reason is R.EXTERNAL:
        return "iBGP" if p.peer.internal else "eBGP"
    if reason is R.IGP_COST:
        return "0"
    if reason is R.ROUTER_ID:
        return str(_router_ip(p))
    if reason is R.CLUSTER_LIST:
        return str(len(p.attrs.cluster_list))
    if reason is R.PEER_ADDRESS:
        return str(p.peer.address)
    return str(p.path_id or 0)


def trace_steps(paths: Sequence[Path], policy: SelectionPolicy = DEFAULT_POLICY) -> list[StepTrace]:
    """Every step selection takes over ``paths``, in order, until one path is left: what
    ``speaker explain`` prints (the same driver as :func:`eliminate`, so it cannot disagree)."""
    index = {id(p): i for i, p in enumerate(paths)}
    out: list[StepTrace] = []

    def seen(reason: BestPathReason, looked: list[Path], dropped: list[Path],
             _key: Key | None) -> None:
        values: list[str | None] = [None] * len(paths)
        for p in looked:
            values[index[id(p)]] = _shown(reason, p, policy)
        out.append(StepTrace(reason, tuple(values), tuple(index[id(p)] for p in dropped)))

    if paths:
        _select(paths, policy, seen)
    return out
