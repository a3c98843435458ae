"""Views rendered as BIRD 1.6.8 prints them, column for column.

The formats are BIRD's own (nest/proto.c proto_cmd_show, proto_show_basic_info,
proto/bgp/bgp.c bgp_show_proto_info, nest/rt-table.c rt_show_rte, nest/cmds.c
cmd_show_status) and were checked byte for byte against a running BIRD 1.6.8
(tests/test_control_format.py holds the captures).  Times follow BIRD's default
``timeformat``: ``%T`` when less than 20 hours ago, else ``%F``; ``show status`` uses
``%F %T``.  All in local time, like BIRD.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, tzinfo

from speaker.control.protocol import ReplyCode, ReplyLine
from speaker.control.views import (
    BgpAttrs,
    DatastoreView,
    EventView,
    ExplainView,
    KernelView,
    NextHop,
    ProtocolStatus,
    ProtoState,
    RouteKind,
    RouteView,
    StatusView,
    TimerView,
)

__all__ = ["BirdRenderer", "group_routes"]

_RECENT = timedelta(hours=20)
_HEADING = "name     proto    table    state  since       info"
_ORIGIN_CHAR = {"IGP": "i", "EGP": "e", "Incomplete": "?"}


class BirdRenderer:
    """Formats views at one moment ``now``, in time zone ``tz`` (None: local time)."""

    def __init__(self, now: datetime, tz: tzinfo | None = None) -> None:
        self.now = now
        self.tz = tz

    # ------------------------------------------------------------------ times

    def _local(self, t: datetime) -> datetime:
        if t.tzinfo is None:  # naive datetimes are taken as local time already
            return t
        return t.astimezone(self.tz)

    def short_time(self, t: datetime) -> str:
        """BIRD's ``timeformat protocol|route`` default: ``%T``, or ``%F`` past 20 hours."""
        delta = _aware(self.now) - _aware(t)
        fmt = "%H:%M:%S" if delta < _RECENT else "%Y-%m-%d"
        return self._local(t).strftime(fmt)

    def long_time(self, t: datetime) -> str:
        """BIRD's ``timeformat base`` default: ``%F %T``."""
        return self._local(t).strftime("%Y-%m-%d %H:%M:%S")

    # ------------------------------------------------------------------ protocols

    @staticmethod
    def protocol_info(p: ProtocolStatus) -> str:
        """The info column: for BGP ``%-14s`` state then the last error (bgp_get_status)."""
        if p.proto != "BGP":
            return p.info
        if p.state == ProtoState.DOWN:
            return p.last_error
        return f"{p.info:<14}{p.last_error}"

    def protocol_row(self, p: ProtocolStatus) -> str:
        return (f"{p.name:<8} {p.proto:<8} {p.table:<8} {p.state.value:<5}  "
                f"{self.short_time(p.since):<10}  {self.protocol_info(p)}")

    def protocols(self, protos: Sequence[ProtocolStatus], verbose: bool) -> list[ReplyLine]:
        """``show protocols [all]``: heading, rows, details; the caller adds the end line."""
        out = [ReplyLine(ReplyCode.TABLE_HEADING, _HEADING)]
        for p in protos:
            out.append(ReplyLine(ReplyCode.PROTOCOL_LIST, self.protocol_row(p)))
            if verbose:
                out.extend(ReplyLine(ReplyCode.PROTOCOL_DETAILS, t) for t in self.details(p))
        return out

    def details(self, p: ProtocolStatus) -> list[str]:
        out: list[str] = []
        if p.description:
            out.append(f"  Description:    {p.description}")
        out.append(f"  Preference:     {p.preference}")
        out.append(f"  Input filter:   {p.input_filter}")
        out.append(f"  Output filter:  {p.output_filter}")
        for lim in p.limits:  # BIRD 1.6 proto_show_limit: "  %-16s%d%s", then the action
            out.append(f"  {lim.label:<16}{lim.limit}{' [HIT]' if lim.hit else ''}")
            out.append(f"    Action:       {lim.action}")
        if p.gr_recovery:
            out.append("  GR recovery:   " + "".join(f" {w}" for w in p.gr_recovery))
        if p.state != ProtoState.DOWN:
            r, s = p.routes, p.change_stats
            out.append(f"  Routes:         {r.imported} imported, {r.exported} exported, "
                       f"{r.preferred} preferred")
            out.append("  Route change stats:     received   rejected   filtered    ignored"
                       "   accepted")
            iu, iw, eu, ew = (s.import_updates, s.import_withdraws, s.export_updates,
                              s.export_withdraws)
            out.append(f"    Import updates:     {iu.received:10} {iu.rejected:10} "
                       f"{iu.filtered:10} {iu.ignored:10} {iu.accepted:10}")
            out.append(f"    Import withdraws:   {iw.received:10} {iw.rejected:10}        --- "
                       f"{iw.ignored:10} {iw.accepted:10}")
            out.append(f"    Export updates:     {eu.received:10} {eu.rejected:10} "
                       f"{eu.filtered:10}        --- {eu.accepted:10}")
            out.append(f"    Export withdraws:   {ew.received:10}        ---        ---"
                       f"        --- {ew.accepted:10}")
        if p.bgp is not None:
            out.extend(self._bgp_details(p))
        out.append("")
        return out

    def _bgp_details(self, p: ProtocolStatus) -> list[str]:
        b = p.bgp
        assert b is not None
        state = "Down" if p.state == ProtoState.DOWN else p.info
        out = [
            f"  BGP state:          {state}",
            f"    Neighbor address: {b.neighbor_address}",
            f"    Neighbor AS:      {b.neighbor_as}",
        ]
        if b.graceful_restart_active:
            out.append("    Neighbor graceful restart active")
        if p.state == ProtoState.START:
            # Order as BIRD 1.6.8 prints it (measured: restart timer before connect delay).
            if b.graceful_restart_active and b.restart_timer is not None:
                out.append(f"    Restart timer:    {_timer(b.restart_timer)}")
            if b.error_wait is not None:
                out.append(f"    Error wait:       {_timer(b.error_wait)}")
            if b.connect_delay is not None:
                out.append(f"    Connect delay:    {_timer(b.connect_delay)}")
        elif p.state in (ProtoState.UP, ProtoState.WAIT, ProtoState.FEED):
            if b.neighbor_id is not None:
                out.append(f"    Neighbor ID:      {b.neighbor_id}")
            out.append("    Neighbor caps:   " + "".join(f" {c}" for c in b.neighbor_caps))
            out.append("    Session:          " + " ".join(b.session_flags))
            if b.source_address is not None:
                out.append(f"    Source address:   {b.source_address}")
            if b.hold_timer is not None:
                out.append(f"    Hold timer:       {_timer(b.hold_timer)}")
            if b.keepalive_timer is not None:
                out.append(f"    Keepalive timer:  {_timer(b.keepalive_timer)}")
        if p.last_error:
            out.append(f"    Last error:       {p.last_error}")
        return out

    # ------------------------------------------------------------------ routes

    def route_lines(self, routes: Sequence[RouteView], verbose: bool) -> list[ReplyLine]:
        """``show route [all]`` lines for routes already grouped by prefix, best first."""
        out: list[ReplyLine] = []
        previous = None
        for r in routes:
            label = "" if r.prefix == previous else str(r.prefix)
            previous = r.prefix
            out.append(ReplyLine(ReplyCode.ROUTE_LIST, self.route_line(r, label)))
            if r.kind == RouteKind.MULTIPATH:
                out.extend(ReplyLine(ReplyCode.ROUTE_LIST,
                                     f"\tvia {nh.gateway} on {nh.iface} weight {nh.weight}")
                           for nh in r.nexthops)
            if verbose:
                out.append(ReplyLine(ReplyCode.ROUTE_DETAILS,
                                     f"\tType: {r.source} unicast univ"))
                if r.in_kernel is not None:
                    # Our extension, only in `show route all` (plain `show route` keeps
                    # BIRD's one line, where a refused route is marked `!`): one more
                    # 1008 line, after BIRD's Type line, for routes the bridge programs.
                    word = "installed" if r.in_kernel else "not installed"
                    if not r.in_kernel and r.kernel_reason:
                        word += f" ({r.kernel_reason})"
                    out.append(ReplyLine(ReplyCode.ROUTE_DETAILS, f"\tKernel: {word}"))
                if r.bgp is not None:
                    out.extend(ReplyLine(ReplyCode.ROUTE_ATTRS, f"\t{a}")
                               for a in bgp_attr_lines(r.bgp))
        return out

    def route_line(self, r: RouteView, label: str) -> str:
        via = _via(r)
        gw = r.nexthops[0].gateway if r.kind == RouteKind.ROUTER and r.nexthops else None
        src = (f" from {r.from_address}"
               if r.from_address is not None and r.from_address != gw else "")
        mark = (" !" if r.sync_error else " *") if r.primary else ""
        return (f"{label:<18} {via} [{r.protocol} {self.short_time(r.since)}{src}]"
                f"{mark}{route_info(r)}")

    # ------------------------------------------------------------------ status

    def status(self, s: StatusView, version: str) -> list[ReplyLine]:
        out = [
            ReplyLine(ReplyCode.VERSION, f"BIRD {version}"),
            ReplyLine(ReplyCode.UPTIME, f"Router ID is {s.router_id}"),
            ReplyLine(ReplyCode.UPTIME, f"Current server time is {self.long_time(s.server_time)}"),
            ReplyLine(ReplyCode.UPTIME, f"Last reboot on {self.long_time(s.last_reboot)}"),
            ReplyLine(ReplyCode.UPTIME,
                      f"Last reconfiguration on {self.long_time(s.last_reconfiguration)}"),
        ]
        gr = s.graceful_restart
        if gr is not None:
            out.append(ReplyLine(ReplyCode.GR_STATUS, "Graceful restart recovery in progress"))
            out.append(ReplyLine(ReplyCode.GR_STATUS,
                                 f"  Waiting for {gr.waiting_for} protocols to recover"))
            out.append(ReplyLine(ReplyCode.GR_STATUS,
                                 f"  Wait timer is {gr.wait_remaining}/{gr.wait_total}"))
        final = "Shutdown in progress" if s.shutting_down else "Daemon is up and running"
        out.append(ReplyLine(ReplyCode.STATUS, final))
        return out

    # ------------------------------------------------------------------ kernel (ours)

    def kernel(self, k: KernelView) -> list[ReplyLine]:
        onoff = {True: "on", False: "off"}
        head = (f"Kernel bridge: protocol {k.protocol}, table {k.table}, learn {onoff[k.learn]}, "
                f"persist {onoff[k.persist]}, scan time {k.scan_time}, merge paths "
                f"{onoff[k.merge_paths]} (limit {k.merge_limit})")
        scan = "never" if k.last_scan is None else self.long_time(k.last_scan)
        sync = "in sync" if k.synced else "waiting before first sync"
        ours = sum(1 for r in k.routes if r.ours)
        installed = sum(1 for r in k.routes if r.ours and r.state == "installed")
        # routes of ours not as wanted (pending, differs, missing) are counted apart
        other = f", {ours - installed} not in sync" if ours > installed else ""
        lines = [head, f"Last scan: {scan}; {sync}; {installed} routes installed{other}, "
                       f"{len(k.routes) - ours} learned",
                 f"{'Prefix':<18} {'Owner':<7} {'Proto':>5}  {'State':<10} Destination"]
        for r in k.routes:
            owner = "ours" if r.ours else "alien"
            dest = (f"dev {r.iface}" if r.kind == RouteKind.DEVICE and r.iface
                    else _kernel_dest(r.kind, r.nexthops))
            held = f"  [kernel: {r.kernel}]" if r.kernel else ""
            err = f"  ({r.error})" if r.error else ""
            lines.append(f"{r.prefix!s:<18} {owner:<7} {r.protocol:>5}  {r.state:<10} "
                         f"{dest}{held}{err}")
        return [ReplyLine(ReplyCode.KERNEL_TABLE, t) for t in lines]

    # ------------------------------------------------------------------ explain (ours)

    def explain(self, x: ExplainView, peer: str | None) -> list[ReplyLine]:
        lines: list[str] = []
        if x.prefix is None:
            lines += [f"{x.query}: {x.decision}", f"Kernel: {x.kernel_verdict}",
                      f"Kernel now: {x.kernel_now}"]
        else:
            head = x.prefix if x.prefix == x.query else f"{x.prefix} (longest match of {x.query})"
            lines.append(f"{head}: {len(x.paths)} path{'s' if len(x.paths) != 1 else ''}")
            for i, p in enumerate(x.paths, 1):
                marks = ("best" if p.best else "") + (" ecmp" if p.ecmp and not p.best else "")
                pid = "" if p.path_id is None else f" path-id {p.path_id}"
                stale = " STALE" if p.stale else ""
                mine = "  <-" if peer is not None and p.peer == peer else ""
                lines.append(f"  #{i} {p.peer} ({p.address or 'local'}){pid} via {p.next_hop}"
                             f"{stale}  since {self.long_time(p.since)}  {marks.strip()}{mine}")
                lines.append(f"     {p.attributes}")
            if x.steps:
                lines.append("Best path (RFC 4271 9.1.2.2, in BIRD's order):")
                for st in x.steps:
                    values = "  ".join(f"#{i}={v}" for i, v in enumerate(st.values, 1)
                                       if v is not None)
                    out = ", ".join(f"#{i + 1}" for i in st.eliminated)
                    verdict = f"  -> eliminates {out}" if out else "  (no difference)"
                    lines.append(f"  {st.step:<15} {values}{verdict}   [{st.rule}]")
            lines.append(f"Decision: {x.decision}")
            for i, why in x.ecmp:
                lines.append(f"ECMP: #{i + 1} " + ("joins the set" if why is None
                                                   else f"stays out: {why}"))
            lines.append(f"Kernel: {x.kernel_verdict}; now {x.kernel_now}")
        for name, verdict in x.exports:
            lines.append(f"Export to {name}: {verdict}")
        return [ReplyLine(ReplyCode.EXPLAIN, t) for t in lines]

    # ------------------------------------------------------------------ events (ours)

    def event_line(self, e: EventView) -> str:
        """``2026-12-03 06:58:30.123  Mesh_192_168_0_80  state  Active -> Connect: ...``"""
        when = self._local(e.time).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        return f"{when}  {e.peer or '(speaker)':<20} {e.kind:<14} {e.text}"

    def events(self, events: Sequence[EventView]) -> list[ReplyLine]:
        if not events:
            return [ReplyLine(ReplyCode.EVENTS, "No events")]
        return [ReplyLine(ReplyCode.EVENTS, self.event_line(e)) for e in events]

    # ------------------------------------------------------------------ datastore (ours)

    def datastore(self, d: DatastoreView) -> list[ReplyLine]:
        state = "connected" if d.connected else "disconnected"
        changed = "never" if d.last_change is None else self.long_time(d.last_change)
        lines = [
            f"Datastore: {d.type} {d.endpoint}, node {d.node_name}, {state}",
            f"Read: revision {d.revision}, {d.keys} keys, {d.reads} full reads; configuration "
            f"in force from revision {d.applied_revision}, changed {changed}",
        ]
        if d.last_error:
            lines.append(f"Last error: {d.last_error}")
        if d.feed_error:
            lines.append(f"Feed error: {d.feed_error}")
        lines.append(f"Problems: {len(d.problems)}")
        lines += [f"  {p}" for p in d.problems]
        router = "-" if d.router_id is None else str(d.router_id)
        ipv6 = "" if d.address6 is None else f", IPv6 address {d.address6}"
        lines.append(f"Derived: router id {router}, AS {d.asn}{ipv6}")
        lines.append("  blocks: " + (", ".join(str(b) for b in d.blocks) or "none"))
        lines.append("  pools: " + (", ".join(str(p) for p in d.pools) or "none"))
        lines.append(f"  peers: {len(d.peers)}")
        # IPv4-only keeps its columns; longer IPv6 names and addresses widen them
        name_width = max([22, *(len(p.name) for p in d.peers)])
        address_width = max([15, *(len(str(p.address)) for p in d.peers)])
        for p in d.peers:
            way = "passive" if p.passive else "active"
            lines.append(f"    {p.name:<{name_width}} {p.address!s:<{address_width}} "
                         f"AS {p.asn:<10} {way}")
        return [ReplyLine(ReplyCode.DATASTORE, t) for t in lines]


def group_routes(routes: Sequence[RouteView]) -> list[RouteView]:
    """Routes of one prefix together, in first-seen prefix order, the primary first."""
    order: dict[object, list[RouteView]] = {}
    for r in routes:
        order.setdefault(r.prefix, []).append(r)
    out: list[RouteView] = []
    for group in order.values():
        out.extend(sorted(group, key=lambda r: not r.primary))
    return out


def route_info(r: RouteView) -> str:
    """``(pref[/igp]) [ASni]`` for BGP (bgp_get_route_info), `` (pref)`` otherwise."""
    if r.bgp is None:
        return f" ({r.preference})"
    metric = "" if r.igp_metric is None else f"/{r.igp_metric}"
    last_as = f"AS{r.bgp.as_path[-1]}" if r.bgp.as_path else ""
    return f" ({r.preference}{metric}) [{last_as}{_ORIGIN_CHAR.get(r.bgp.origin, '?')}]"


def bgp_attr_lines(a: BgpAttrs) -> list[str]:
    """``BGP.x: value`` lines in attribute-code order, formatted like BIRD 1.6.8."""
    out = [f"BGP.origin: {a.origin}", "BGP.as_path: " + " ".join(str(x) for x in a.as_path)]
    if a.next_hop is not None:
        out.append(f"BGP.next_hop: {a.next_hop}")
    if a.med is not None:
        out.append(f"BGP.med: {a.med}")
    if a.local_pref is not None:
        out.append(f"BGP.local_pref: {a.local_pref}")
    if a.atomic_aggregate:
        out.append("BGP.atomic_aggr: ")
    if a.aggregator is not None:
        out.append(f"BGP.aggregator: {a.aggregator[1]} AS{a.aggregator[0]}")
    if a.communities:
        out.append("BGP.community: " + " ".join(f"({x},{y})" for x, y in a.communities))
    if a.originator_id is not None:
        out.append(f"BGP.originator_id: {a.originator_id}")
    if a.cluster_list:
        out.append("BGP.cluster_list: " + " ".join(str(c) for c in a.cluster_list))
    if a.large_communities:
        out.append("BGP.large_community: "
                   + " ".join(f"({x}, {y}, {z})" for x, y, z in a.large_communities))
    return out


def _via(r: RouteView) -> str:
    if r.kind == RouteKind.ROUTER:
        if not r.nexthops:
            return "???"
        nh = r.nexthops[0]
        return f"via {nh.gateway} on {nh.iface}"
    if r.kind == RouteKind.DEVICE:
        return f"dev {r.iface}"
    return r.kind.value


def _kernel_dest(kind: RouteKind, nexthops: tuple[NextHop, ...]) -> str:
    if kind in (RouteKind.ROUTER, RouteKind.MULTIPATH):
        return ", ".join(f"via {nh.gateway} dev {nh.iface}" for nh in nexthops) or "???"
    return kind.value


def _timer(t: TimerView) -> str:
    return f"{t.remaining}/{'-' if t.configured is None else t.configured}"


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.astimezone()
