"""``speaker explain PREFIX``: every decision the speaker makes about one prefix, with why.

The answers come from the same functions that make the decisions, so they cannot disagree
with what the speaker did: the RIB's selection (:func:`speaker.rib.decision.trace_steps`
runs the steps of :func:`~speaker.rib.decision.eliminate`), its ECMP merge
(``Rib.explain_ecmp``), Calico's kernel filter with the import guard
(``CalicoKernelPolicy.explain``), and each peer's export filter (``AdjRibOut.explain``).
For a prefix we do not hold it says what would happen to one a peer sent.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network

from speaker.control.views import ExplainPath, ExplainStep, ExplainView
from speaker.core.speaker import SpeakerCore
from speaker.kernel.model import KernelSnapshotEntry, RouteState
from speaker.rib.decision import trace_steps
from speaker.rib.path import Path, SourceKind
from speaker.wire.nlri import Prefix


class ExplainError(ValueError):
    """The query is not a prefix or an address."""


def _parse(target: str) -> Prefix:
    try:
        if "/" in target:
            return Prefix.from_network(ip_network(target, strict=False))
        address = ip_address(target)
    except ValueError:
        raise ExplainError(f"{target!r} is neither a prefix nor an address") from None
    return Prefix.from_network(ip_network(f"{address}/{address.max_prefixlen}"))


def _attributes(p: Path) -> str:
    a = p.attrs
    parts = [f"origin {a.origin.name if a.origin is not None else '-'}",
             f"as-path length {a.as_path_length}"]
    if a.local_pref is not None:
        parts.append(f"local-pref {a.local_pref}")
    if a.med is not None:
        parts.append(f"med {a.med}")
    return ", ".join(parts)


def _kernel_now(entry: KernelSnapshotEntry | None) -> str:
    if entry is None:
        return "no route of ours in the kernel"
    if entry.installed is None:
        return f"not installed ({entry.state}{': ' + entry.reason if entry.reason else ''})"
    held = entry.installed
    hops = [str(h) for h in held.nexthops if h is not None]
    how = f"via {', '.join(hops)}" if hops else held.type.name.lower()
    state = "as wanted" if entry.state is RouteState.INSTALLED else str(entry.state)
    return f"installed {how} ({state})"


def explain(
    core: SpeakerCore,
    target: str,
    peer: str | None,
    kernel_entry: Callable[[IPv4Network | IPv6Network], KernelSnapshotEntry | None],
    wall: Callable[[float], datetime],
) -> ExplainView:
    """The whole story of ``target`` (a prefix, or an address: its longest match).

    ``wall`` turns the RIB's path times (its clock's) into datetimes."""
    query = _parse(target)
    rib = core.rib
    held = rib.lookup(query) if query.length == (32 if query.afi == 1 else 128) else None
    prefix = held or (query if rib.paths(query) else None)
    names = {str(p.address): p.name for p in core.config.peers}
    policy = core.intents.policy
    if prefix is None:
        # What would happen to this prefix if a peer sent it (an iBGP mesh peer, one path).
        would = policy.explain(query, SourceKind.BGP)
        export_policy = rib.export_policy
        would_export = tuple(
            (name, "-" if export_policy is None else
             export_policy.explain(query, SourceKind.BGP, internal_peer=True).describe())
            for name in rib.out_peers() if peer in (None, name)
        )
        return ExplainView(
            query=target, prefix=None, paths=(), steps=(), ecmp=(),
            decision=f"{query} is not in our table: no peer sent it and we do not originate it",
            kernel_verdict=f"if a peer sent it: {would.describe()}",
            kernel_now=_kernel_now(kernel_entry(query.network)),
            exports=would_export,
        )
    paths = rib.paths(prefix)
    decision = rib.decision(prefix)
    ecmp_members = set(map(id, rib.ecmp(prefix)))
    index = {id(p): i for i, p in enumerate(paths)}
    views = tuple(
        ExplainPath(
            peer=names.get(p.peer.name, p.peer.name),
            address="" if p.peer.address is None else str(p.peer.address),
            path_id=p.path_id,
            next_hop=p.via,
            since=wall(p.since),
            stale=p.stale,
            attributes=_attributes(p),
            best=p is decision.best,
            ecmp=id(p) in ecmp_members,
        )
        for p in paths
    )
    steps = tuple(
        ExplainStep(t.reason.value, t.reason.rule, t.values, t.eliminated)
        for t in trace_steps(paths, rib.selection)
    )
    ecmp = tuple((index[id(p)], why) for p, why in rib.explain_ecmp(prefix))
    best = decision.best
    verdict = "no best path" if best is None else policy.explain(prefix, best).describe()
    exports: list[tuple[str, str]] = []
    if best is not None:
        for name in rib.out_peers():
            if peer in (None, name):
                exports.append((name, rib.adj_out(name).explain(best).describe()))
    network = prefix.network
    kernel_now = _kernel_now(kernel_entry(network))
    return ExplainView(
        query=target,
        prefix=str(prefix),
        paths=views,
        steps=steps,
        decision=decision.describe(),
        ecmp=ecmp,
        kernel_verdict=verdict,
        kernel_now=kernel_now,
        exports=tuple(exports),
    )


__all__ = ["ExplainError", "explain"]
