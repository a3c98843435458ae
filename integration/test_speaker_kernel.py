"""The speaker's kernel bridge in the seed mesh (issue 4): real BIRD 1.6.8 on .80 and .82, our
daemon on .81, real kernel tables, checked from the outside with ``ip`` and the control socket.

* Seed mix: .81's kernel holds both remote blocks via their node (proto 186) and its own block
  as a blackhole; the pods ping each other both ways.
* ECMP: the same prefix from .80 and .82 becomes one multipath route; a peer's session
  going down shrinks it (and removes that peer's block) until it is back; withdrawing one
  path leaves a single-path route (replaced in place, never deleted meanwhile), withdrawing
  both removes it; ``ip monitor`` shows no other state.
* Scan: routes of ours deleted or altered by hand are back within one scan; an alien static
  route inside the pool is left alone, learned and announced (BIRD on .80 has it via .81);
  one outside the pools never leaves the node.
* kill -9 and restart: routes persist; during the restart ``ip monitor`` on .81 sees no event
  on a wanted route; a fake route of ours that nobody announces is adopted, kept until
  convergence, then swept.
* ``speaker show kernel`` and ``show route [all]``: wanted against installed, learned aliens,
  a route blocked by an alien shown as not installed (``!`` in BIRD's plain format, a
  ``Kernel:`` line in ``show route all``), and installed once the alien is gone.
* ``protocol = 12`` (BIRD's) is refused: the daemon does not start.
"""

from __future__ import annotations

import ipaddress
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from integration.conftest import LabFactory
from integration.lab import (
    DEFAULT_POOL,
    KERNEL_PROTOCOL,
    Lab,
    LabError,
    NodeSpec,
    render_speaker_config,
    seed_nodes,
    wait_until,
)
from integration.lab.core import REPO_ROOT
from integration.lab.netns import netns_exec_argv

CONVERGE = 60.0
"""Seconds allowed for the mesh to come up (BIRD: connect delay 2 s, retry 5 s)."""
SCAN = 2.0
"""The speaker's ``scan_time`` (the lab config's, like Calico's BIRD ``scan time 2``)."""
KERNEL_SYNC = 20.0
"""Seconds allowed for routes to reach the kernels."""
SLACK = 1.0
"""Tolerance on top of one scan for "back within one scan" (process start-up, polling)."""
ECMP_PREFIX = "10.244.250.0/26"
"""Inside the pool, outside every node's block: BIRD's ``net ~ pool`` lets it out."""
INSIDE_POOL = "10.244.9.9/32"
OUTSIDE_POOLS = "172.30.0.0/24"
FAKE = "10.244.77.0/26"
"""A route of ours nobody announces (left by a previous run, say)."""
SENTINEL = "198.51.100.0/24"
"""Written to table 100 to learn when ``ip monitor`` is listening (no daemon reads table 100)."""

SPEAKER_NODE = "node81"


# ---------------------------------------------------------------------------------- helpers


def canonical(dst: str) -> str:
    """``ip -j`` prints host routes without ``/32`` and ``default`` for /0."""
    return "0.0.0.0/0" if dst == "default" else str(ipaddress.ip_network(dst))


def table(mesh: Lab, node: NodeSpec | str) -> dict[str, dict[str, Any]]:
    """The node's main table keyed by canonical prefix."""
    return {canonical(r["dst"]): r for r in mesh.routes(node)}


def gateways(route: dict[str, Any]) -> frozenset[str]:
    """The gateways of an ``ip -j route`` entry, single-path or multipath."""
    if "nexthops" in route:
        return frozenset(h["gateway"] for h in route["nexthops"] if "gateway" in h)
    return frozenset({route["gateway"]}) if "gateway" in route else frozenset()


Want = frozenset[str] | None
"""What we expect for a prefix of ours: the set of gateways, or None for a blackhole."""


def route_problem(prefix: str, got: dict[str, Any] | None, want: Want) -> str | None:
    """Why ``got`` is not our route ``want`` for ``prefix`` (None: it is)."""
    if got is None:
        return f"{prefix}: missing, want {_describe(want)}"
    if got.get("protocol") != "bgp":
        return f"{prefix}: protocol {got.get('protocol')}, want bgp (186): {got}"
    if want is None:
        if got.get("type") != "blackhole":
            return f"{prefix}: want blackhole, got {got}"
        return None
    if got.get("type") != "unicast" or gateways(got) != want:
        return f"{prefix}: want {_describe(want)}, got {got}"
    devs = {h.get("dev") for h in got.get("nexthops", [got])}
    if devs != {"eth0"}:
        return f"{prefix}: want dev eth0, got {got}"
    return None


def _describe(want: Want) -> str:
    return "blackhole" if want is None else "via " + ", ".join(sorted(want))


def seed_wants(mesh: Lab, node: NodeSpec | str) -> dict[str, Want]:
    """Calico's kernel on ``node``: each other block via its node, its own as a blackhole."""
    me = mesh.node(node)
    wants: dict[str, Want] = {me.block: None}
    for peer in mesh.nodes:
        if peer.name != me.name:
            wants[peer.block] = frozenset({peer.address})
    return wants


def problems(mesh: Lab, node: NodeSpec | str, wants: dict[str, Want]) -> list[str]:
    """Differences between the node's kernel and ``wants`` (routes of protocol 186)."""
    got = table(mesh, node)
    out = [route_problem(p, got.get(p), w) for p, w in wants.items()]
    return [p for p in out if p is not None]


def bird_wants(mesh: Lab, node: NodeSpec) -> list[str]:
    """A BIRD node's kernel: every other block via its node (proto bird)."""
    got = table(mesh, node)
    out: list[str] = []
    for peer in mesh.nodes:
        if peer.name == node.name:
            continue
        r = got.get(peer.block)
        if r is None or r.get("protocol") != "bird" or r.get("gateway") != peer.address:
            out.append(f"{node.name}: {peer.block} want via {peer.address} proto bird, got {r}")
    return out


def converge(mesh: Lab) -> None:
    """Wait for the mesh and every kernel; fail with what is still wrong."""
    mesh.wait_established(CONVERGE)
    sp = mesh.node(SPEAKER_NODE)

    def wrong() -> list[str]:
        out = problems(mesh, sp, seed_wants(mesh, sp))
        for node in mesh.bird_nodes():
            out += bird_wants(mesh, node)
        return out

    wait_until(lambda: not wrong(), KERNEL_SYNC, interval=0.2)
    assert wrong() == []


def sh(mesh: Lab, node: NodeSpec | str, *argv: str) -> str:
    """Run a command in the node's namespace; return its stdout."""
    return mesh.exec(node, list(argv)).stdout


def speaker_cli(mesh: Lab, *args: str) -> str:
    """``python3 -m speaker ARGS --socket SOCK`` against the speaker node; its stdout."""
    sock = mesh.control_socket(SPEAKER_NODE)
    proc = subprocess.run(
        [sys.executable, "-m", "speaker", *args, "--socket", str(sock)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, f"speaker {' '.join(args)}: {proc.returncode} {proc.stderr}"
    return proc.stdout


def add_ecmp_static(mesh: Lab, node: NodeSpec) -> None:
    """Make a BIRD node announce ECMP_PREFIX (a blackhole static) and reload its config."""
    path = mesh.config_path(node)
    text = path.read_text()
    # The rendered export filter must let the prefix out: `net ~ pool` after calico_aggr.
    assert f"if ( net ~ {mesh.pool} ) then {{" in text
    assert not ipaddress.ip_network(ECMP_PREFIX).overlaps(ipaddress.ip_network(node.block))
    path.write_text(text + f"\nprotocol static st_e {{ route {ECMP_PREFIX} blackhole; }}\n")
    out = mesh.birdc(node, "configure")
    assert "Reconfigured" in out, out


@dataclass(frozen=True)
class RouteEvent:
    """One line of ``ip -o monitor route``."""

    deleted: bool
    type: str
    prefix: str
    gateways: frozenset[str]
    protocol: str
    table: str
    line: str

    def matches(self, want: Want) -> bool:
        """An add/replace of exactly our wanted route."""
        if self.deleted or self.protocol != "bgp" or self.table != "main":
            return False
        if want is None:
            return self.type == "blackhole"
        return self.type == "unicast" and self.gateways == want


_TYPES = ("blackhole", "unreachable", "prohibit", "local", "broadcast", "multicast", "throw")


def parse_monitor_line(line: str) -> RouteEvent | None:
    """Parse ``ip -o monitor route`` output (``Deleted`` prefix, multipath on one line)."""
    words = line.replace("\\", " ").split()
    if not words:
        return None
    deleted = words[0] == "Deleted"
    if deleted:
        words = words[1:]
    rtype = "unicast"
    if words and words[0] in _TYPES:
        rtype = words.pop(0)
    if not words:
        return None
    try:
        prefix = canonical(words[0])
    except ValueError:
        return None

    def after(word: str, default: str) -> str:
        return words[words.index(word) + 1] if word in words[:-1] else default

    gws = frozenset(words[i + 1] for i, w in enumerate(words[:-1]) if w == "via")
    return RouteEvent(
        deleted,
        rtype,
        prefix,
        gws,
        after("proto", "boot"),
        after("table", "main"),
        line.rstrip(),
    )


class RouteMonitor:
    """``ip -o monitor route`` running inside a node's namespace, output in the run dir."""

    def __init__(self, mesh: Lab, node: NodeSpec | str, tag: str) -> None:
        self.mesh = mesh
        self.node = mesh.node(node)
        self.path: Path = mesh.run_dir / f"{self.node.name}.monitor-{tag}.txt"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.path.open("wb") as out:
            self.proc = subprocess.Popen(
                netns_exec_argv(self.mesh.netns(self.node), ["ip", "-o", "monitor", "route"]),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        # Listening once it reports a change we make in a table nobody else reads (toggled
        # until seen: changes made before it subscribed are not reported).
        deadline = time.monotonic() + 10.0
        verb = "add"
        while SENTINEL not in self.path.read_text():
            assert time.monotonic() < deadline, f"ip monitor in {self.node.name} reports nothing"
            sh(self.mesh, self.node, "ip", "route", verb, "blackhole", SENTINEL, "table", "100")
            verb = "del" if verb == "add" else "add"
            time.sleep(0.1)

    def stop(self) -> None:
        """End the monitor by its PID (ip netns exec execs in place: it is ip itself)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def events(self, prefix: str | None = None) -> list[RouteEvent]:
        """Parsed events (of one prefix), in order."""
        out = []
        for line in self.path.read_text().splitlines():
            event = parse_monitor_line(line)
            if event is not None and (prefix is None or event.prefix == prefix):
                out.append(event)
        return out


@contextmanager
def monitoring(mesh: Lab, node: NodeSpec | str, tag: str) -> Iterator[RouteMonitor]:
    """A RouteMonitor, stopped (by PID) however the block ends."""
    mon = RouteMonitor(mesh, node, tag)
    try:
        mon.start()
        yield mon
    finally:
        mon.stop()


def log_lines(mesh: Lab, node: NodeSpec | str) -> list[str]:
    return mesh.log_path(node).read_text(errors="replace").splitlines()


_KERNEL_ROW = re.compile(
    r"^(?P<prefix>\S+)\s+(?P<owner>ours|alien)\s+(?P<proto>\d+)\s+(?P<state>\S+)\s+(?P<rest>.*)$"
)


def kernel_rows(text: str) -> dict[tuple[str, str], dict[str, str]]:
    """``speaker show kernel`` rows keyed by (prefix, ``ours``/``alien``); ``rest`` is the
    destination and what follows it."""
    rows: dict[tuple[str, str], dict[str, str]] = {}
    for line in text.splitlines():
        m = _KERNEL_ROW.match(line.strip())
        if m is not None and "/" in m["prefix"]:
            rows[canonical(m["prefix"]), m["owner"]] = m.groupdict()
    return rows


def route_blocks(text: str) -> dict[str, list[list[str]]]:
    """``show route [all]`` text as prefix -> list of routes, each its lines (first = route)."""
    out: dict[str, list[list[str]]] = {}
    current = ""
    for line in text.splitlines():
        if not line.strip() or line.startswith("BIRD "):
            continue
        if line.startswith("\t"):
            out[current][-1].append(line.strip())
            continue
        first = line.split()[0]
        if line.startswith(" ") and first in ("via", "blackhole", "dev", "unreachable"):
            out[current].append([line.strip()])  # another route of the same prefix
            continue
        try:
            current = canonical(first)
        except ValueError:
            out[current].append([line.strip()])
            continue
        out.setdefault(current, []).append([line.strip()])
    return out


# ------------------------------------------------------------------------------------ tests


def test_seed_kernel_routes_and_pods(lab: LabFactory) -> None:
    mesh = lab("seed")
    converge(mesh)
    sp = mesh.node(SPEAKER_NODE)
    got = table(mesh, sp)
    for prefix in seed_wants(mesh, sp):
        # protocol 186 as a number too (iproute2 prints it as "bgp")
        shown = sh(mesh, sp, "ip", "route", "show", prefix, "proto", str(KERNEL_PROTOCOL))
        assert shown.strip(), f"{prefix} not found with proto {KERNEL_PROTOCOL}: {got}"
    assert got["10.244.152.128/26"]["gateway"] == "192.168.0.80"
    assert got["10.244.103.64/26"]["gateway"] == "192.168.0.82"
    assert got["10.244.42.64/26"]["type"] == "blackhole"
    # Nothing else of ours: exactly the three routes.
    ours = sorted(p for p, r in got.items() if r["protocol"] == "bgp")
    assert ours == sorted(seed_wants(mesh, sp)), ours

    for peer in mesh.bird_nodes():
        there = mesh.ping(sp, peer.pod_address, count=3, interval=0.1)
        assert there.ok, f"pod {sp.pod_address} -> pod {peer.pod_address}: {there}"
        back = mesh.ping(peer, sp.pod_address, count=3, interval=0.1)
        assert back.ok, f"pod {peer.pod_address} -> pod {sp.pod_address}: {back}"
    # Control: an unused address in our own block hits our blackhole, so loss is reported.
    unused = str(ipaddress.IPv4Address(sp.pod_address) + 1)
    lost = mesh.ping(mesh.node("node80"), unused, count=2, interval=0.1, timeout=1.0)
    assert (lost.sent, lost.received) == (2, 0)


def test_ecmp_merge_then_withdraw(lab: LabFactory) -> None:
    mesh = lab("seed")
    converge(mesh)
    sp = mesh.node(SPEAKER_NODE)
    n80, n82 = mesh.node("node80"), mesh.node("node82")
    both = frozenset({n80.address, n82.address})

    for node in (n80, n82):
        add_ecmp_static(mesh, node)
    wait_until(lambda: not problems(mesh, sp, {ECMP_PREFIX: both}), KERNEL_SYNC, interval=0.2)
    assert problems(mesh, sp, {ECMP_PREFIX: both}) == []
    multipath = table(mesh, sp)[ECMP_PREFIX]
    assert len(multipath["nexthops"]) == 2, multipath
    # The speaker's RIB: two paths, one primary; both are next hops of the kernel route.
    paths = route_blocks(speaker_cli(mesh, "show", "route", "all", "for", ECMP_PREFIX))
    assert len(paths[ECMP_PREFIX]) == 2, paths
    assert [" * " in f"{p[0]} " for p in paths[ECMP_PREFIX]] == [True, False], paths
    assert all("Kernel: installed" in p for p in paths[ECMP_PREFIX]), paths
    row = kernel_rows(speaker_cli(mesh, "show", "kernel"))[ECMP_PREFIX, "ours"]
    assert row["state"] == "installed", row
    assert row["rest"] == f"via {n80.address} dev eth0, via {n82.address} dev eth0", row

    # .82 ends its session (Cease): its paths go at once, the multipath shrinks, .82's block
    # goes; back up, both come back.
    only80: Want = frozenset({n80.address})
    mesh.birdc(n82, f"disable {sp.protocol_name}")
    gone = {ECMP_PREFIX: only80}

    def shrunk() -> list[str]:
        return problems(mesh, sp, gone) + (
            [f"{n82.block} still there"] if n82.block in table(mesh, sp) else []
        )

    wait_until(lambda: not shrunk(), 10.0, interval=0.1)
    assert shrunk() == []
    mesh.birdc(n82, f"enable {sp.protocol_name}")
    mesh.wait_established(CONVERGE)
    back = {**seed_wants(mesh, sp), ECMP_PREFIX: both}
    wait_until(lambda: not problems(mesh, sp, back), KERNEL_SYNC, interval=0.2)
    assert problems(mesh, sp, back) == []

    with monitoring(mesh, sp, "ecmp") as mon:
        mesh.birdc(n82, "disable st_e")
        wait_until(lambda: not problems(mesh, sp, {ECMP_PREFIX: only80}), 10.0, interval=0.1)
        assert problems(mesh, sp, {ECMP_PREFIX: only80}) == []
        time.sleep(SCAN + 0.5)  # a scan later: still single-path, nothing came back
        assert problems(mesh, sp, {ECMP_PREFIX: only80}) == []

        mesh.birdc(n80, "disable st_e")
        wait_until(lambda: ECMP_PREFIX not in table(mesh, sp), 10.0, interval=0.1)
        assert ECMP_PREFIX not in table(mesh, sp)
        time.sleep(SCAN + 0.5)
        assert ECMP_PREFIX not in table(mesh, sp), table(mesh, sp)[ECMP_PREFIX]
        assert problems(mesh, sp, seed_wants(mesh, sp)) == []

    # Exactly two kernel changes: multipath replaced in place by the single path (never a
    # moment without the route while it is still wanted), then deleted once unwanted.
    events = [(e.deleted, e.gateways, e.protocol) for e in mon.events(ECMP_PREFIX)]
    assert events == [(False, only80, "bgp"), (True, only80, "bgp")], events


def test_scan_restores_ours_and_learns_aliens(lab: LabFactory) -> None:
    mesh = lab("seed")
    converge(mesh)
    sp, n80, n82 = mesh.node(SPEAKER_NODE), mesh.node("node80"), mesh.node("node82")
    wants = seed_wants(mesh, sp)

    # Routes of ours deleted by hand come back within one scan; one altered by hand is put
    # back as it was (at once from the monitor, or at the next scan).
    changes = [
        (n80.block, ["del", n80.block]),
        (sp.block, ["del", sp.block]),
        (n82.block, ["replace", n82.block, "via", n80.address, "dev", "eth0"]),
    ]
    with monitoring(mesh, sp, "hand") as mon:
        for prefix, change in changes:
            start = time.monotonic()
            sh(mesh, sp, "ip", "route", *change, "proto", str(KERNEL_PROTOCOL))
            back = wait_until(lambda: not problems(mesh, sp, wants), SCAN + SLACK, interval=0.05)
            took = time.monotonic() - start
            assert back, f"{prefix}: {took:.1f}s after {change}: {problems(mesh, sp, wants)}"
        time.sleep(0.5)  # let the monitor print the last restore
    # The kernel really lost them, and we wrote them back: exactly one restore each.
    for prefix, change in changes:
        seen = mon.events(prefix)
        if change[0] == "del":
            assert [e.deleted for e in seen] == [True, False], [e.line for e in seen]
        else:
            assert [e.gateways for e in seen] == [
                frozenset({n80.address}), frozenset({n82.address})
            ], [e.line for e in seen]
        assert seen[-1].matches(wants[prefix]), [e.line for e in seen]
    log = "\n".join(log_lines(mesh, sp))
    for prefix, _ in changes:
        assert f"kernel reinstalled {prefix}" in log, log[-3000:]

    # Alien routes: one inside the pool (outside every block), one outside the pools.
    sh(mesh, sp, "ip", "route", "add", INSIDE_POOL, "dev", "eth0", "proto", "static")
    sh(mesh, sp, "ip", "route", "add", OUTSIDE_POOLS, "dev", "eth0", "proto", "static")

    def at_80() -> str:
        return mesh.birdc(n80, f"show route {INSIDE_POOL}")

    wait_until(lambda: f"via {sp.address}" in at_80(), KERNEL_SYNC, interval=0.2)
    assert f"via {sp.address} on eth0 [{sp.protocol_name}" in at_80(), at_80()
    wait_until(lambda: INSIDE_POOL in table(mesh, n80), KERNEL_SYNC, interval=0.2)
    r80 = table(mesh, n80)[INSIDE_POOL]
    assert (r80.get("gateway"), r80["protocol"]) == (sp.address, "bird"), r80
    # The speaker learned both (kernel-sourced routes in its table)...
    learned = route_blocks(speaker_cli(mesh, "show", "route"))
    assert INSIDE_POOL in learned and OUTSIDE_POOLS in learned, sorted(learned)
    time.sleep(SCAN + SLACK)  # more scans and BGP updates: nothing more may happen
    # ...exported the pool one only...
    for bird in (n80, n82):
        shown = mesh.birdc(bird, "show route")
        assert OUTSIDE_POOLS not in shown, f"{bird.name} got {OUTSIDE_POOLS}:\n{shown}"
        assert OUTSIDE_POOLS not in table(mesh, bird)
    assert INSIDE_POOL in mesh.birdc(n82, "show route")
    # ...and left both alone: still proto static, nothing of ours written for them.
    got = table(mesh, sp)
    for prefix in (INSIDE_POOL, OUTSIDE_POOLS):
        assert got[prefix]["protocol"] == "static", got[prefix]
        assert got[prefix]["dev"] == "eth0" and "gateway" not in got[prefix], got[prefix]
    assert problems(mesh, sp, wants) == []
    ours = sorted(p for p, r in got.items() if r["protocol"] == "bgp")
    assert ours == sorted(wants), ours

    # The alien goes away: the speaker withdraws it, BIRD drops it.
    sh(mesh, sp, "ip", "route", "del", INSIDE_POOL, "proto", "static")
    wait_until(lambda: INSIDE_POOL not in table(mesh, n80), KERNEL_SYNC, interval=0.2)
    assert INSIDE_POOL not in table(mesh, n80)
    assert "Network not in table" in at_80() or INSIDE_POOL not in at_80()


def test_kill9_restart_keeps_wanted_and_sweeps_stale(lab: LabFactory) -> None:
    mesh = lab("seed")
    converge(mesh)
    sp, n80, n82 = mesh.node(SPEAKER_NODE), mesh.node("node80"), mesh.node("node82")
    # An ECMP route too: after the restart its two paths come back one peer at a time.
    for node in (n80, n82):
        add_ecmp_static(mesh, node)
    wants = {**seed_wants(mesh, sp), ECMP_PREFIX: frozenset({n80.address, n82.address})}
    wait_until(lambda: not problems(mesh, sp, wants), KERNEL_SYNC, interval=0.2)
    assert problems(mesh, sp, wants) == []
    before = len(log_lines(mesh, sp))

    with monitoring(mesh, sp, "restart") as mon, monitoring(mesh, n80, "restart") as mon80:
        mesh.kill_speaker(sp)  # SIGKILL: no NOTIFICATION, no clean-up
        assert not mesh.daemon_running(sp)
        time.sleep(SCAN + 0.5)  # longer than a scan: nobody may remove anything meanwhile
        assert problems(mesh, sp, wants) == []  # persist
        assert bird_wants(mesh, n80) == []  # .80 keeps our block (graceful-restart helper)
        sh(mesh, sp, "ip", "route", "add", FAKE, "via", n80.address, "dev", "eth0",
           "proto", str(KERNEL_PROTOCOL))

        mesh.start_speaker(sp)

        def converged() -> bool:
            try:
                status = mesh.birdc(sp, "show status")
                kernel = speaker_cli(mesh, "show", "kernel")
            except (LabError, AssertionError):
                return False
            return (
                "Graceful restart recovery" not in status
                and "; in sync;" in kernel
                and FAKE not in table(mesh, sp)
            )

        assert wait_until(converged, CONVERGE, interval=0.2), mesh.diagnostics()
        mesh.wait_established(CONVERGE)
        time.sleep(SCAN + 0.5)  # a scan after convergence: still all there
        assert problems(mesh, sp, wants) == []
        assert FAKE not in table(mesh, sp)

    # No event at all on a wanted route: adopted as found, never deleted nor rewritten.
    for prefix, want in wants.items():
        seen = mon.events(prefix)
        assert [e for e in seen if e.deleted] == [], [e.line for e in seen]
        assert [e for e in seen if not e.matches(want)] == [], [e.line for e in seen]
        assert seen == [], f"{prefix} rewritten during the restart: {[e.line for e in seen]}"
    # .80 (BIRD, graceful-restart helper) kept our block throughout: no change at all there.
    seen80 = mon80.events(sp.block)
    assert seen80 == [], [e.line for e in seen80]
    fake = [(e.deleted, e.protocol) for e in mon.events(FAKE)]
    assert fake == [(False, "bgp"), (True, "bgp")], fake

    # The daemon knew it was recovering, adopted the fake, swept it only after convergence.
    log = log_lines(mesh, sp)[before:]
    text = "\n".join(log)
    assert "graceful restart recovery started" in text, text[-2000:]
    assert f"kernel adopted {FAKE}" in text
    for prefix in wants:
        assert f"kernel adopted {prefix}" in text
        assert f"kernel installed {prefix}" not in text
    converged_at = next(i for i, line in enumerate(log) if "kernel converged" in line)
    swept_at = next(i for i, line in enumerate(log) if f"kernel swept {FAKE}" in line)
    assert converged_at < swept_at
    assert bird_wants(mesh, n80) == [] and bird_wants(mesh, n82) == []


def test_show_kernel_and_show_route_all(lab: LabFactory) -> None:
    mesh = lab("seed")
    converge(mesh)
    sp, n80 = mesh.node(SPEAKER_NODE), mesh.node("node80")
    wants = seed_wants(mesh, sp)

    text = speaker_cli(mesh, "show", "kernel")
    head = text.splitlines()[0]
    assert head.startswith(f"Kernel bridge: protocol {KERNEL_PROTOCOL}, table 254"), text
    assert "; in sync; 3 routes installed, 1 learned" in text, text
    assert "Last scan: never" not in text, text
    rows = kernel_rows(text)
    for prefix, want in wants.items():
        row = rows[prefix, "ours"]
        assert (row["proto"], row["state"]) == ("186", "installed"), row
        dest = "blackhole" if want is None else f"via {min(want)} dev eth0"
        assert row["rest"] == dest, row
    assert sorted(p for p, owner in rows if owner == "ours") == sorted(wants), rows
    pod = rows[sp.pod_address + "/32", "alien"]  # the pod's route (proto boot): learned
    assert (pod["proto"], pod["state"]) == ("3", "learned"), pod
    assert pod["rest"] == f"dev {mesh.cali_name(sp)}", pod

    # An alien route holds the key we would write; then .80 announces that prefix.
    sh(mesh, sp, "ip", "route", "add", ECMP_PREFIX, "dev", "eth0", "proto", "static")
    add_ecmp_static(mesh, n80)

    def blocked() -> dict[tuple[str, str], dict[str, str]]:
        rows = kernel_rows(speaker_cli(mesh, "show", "kernel"))
        mine = rows.get((ECMP_PREFIX, "ours"))
        return rows if mine is not None and mine["state"] != "pending" else {}

    rows = wait_until(blocked, KERNEL_SYNC, interval=0.2) or {}
    assert (ECMP_PREFIX, "ours") in rows, speaker_cli(mesh, "show", "kernel")
    # wanted: via .80; the kernel: no route of ours there, the static holds the key
    row = rows[ECMP_PREFIX, "ours"]
    assert "3 routes installed, 1 not in sync, 2 learned" in speaker_cli(mesh, "show", "kernel")
    assert row["state"] == "missing", row
    assert row["rest"].startswith(f"via {n80.address} dev eth0  [kernel: none]"), row
    assert "proto static" in row["rest"], row
    alien = rows[ECMP_PREFIX, "alien"]
    assert (alien["proto"], alien["state"], alien["rest"]) == ("4", "learned", "dev eth0"), alien
    assert table(mesh, sp)[ECMP_PREFIX]["protocol"] == "static"  # never overwritten

    plain = route_blocks(speaker_cli(mesh, "show", "route"))
    verbose = route_blocks(speaker_cli(mesh, "show", "route", "all"))
    for prefix in wants:
        (best,) = [r for r in plain[prefix] if " * " in f"{r[0]} "]
        assert len(best) == 1, best  # plain show route: BIRD's one line, no extra
        (best_all,) = [r for r in verbose[prefix] if " * " in f"{r[0]} "]
        assert "Kernel: installed" in best_all, best_all
        assert best_all[1].startswith("Type: "), best_all  # BIRD's order kept
    # The blocked prefix: BGP path primary but refused (BIRD's `!`), the alien learned.
    bgp_line, kernel_line = (r[0] for r in plain[ECMP_PREFIX])
    assert n80.protocol_name in bgp_line and " ! (100/0) [i]" in bgp_line, plain[ECMP_PREFIX]
    assert kernel_line.startswith("dev eth0 [kernel1 "), plain[ECMP_PREFIX]
    (blocked_all,) = [r for r in verbose[ECMP_PREFIX] if n80.protocol_name in r[0]]
    assert blocked_all[1:3] == ["Type: BGP unicast univ", "Kernel: not installed"], blocked_all
    assert "Kernel:" not in speaker_cli(mesh, "show", "route")
    # BIRD's own client takes the extra line like any other 1008 line.
    via_birdc = route_blocks(mesh.birdc(sp, "show route all"))
    assert via_birdc == verbose, (via_birdc, verbose)

    # The alien goes: our route is written at once (monitor) or at the next scan.
    sh(mesh, sp, "ip", "route", "del", ECMP_PREFIX, "proto", "static")
    only80: Want = frozenset({n80.address})
    wait_until(lambda: not problems(mesh, sp, {ECMP_PREFIX: only80}), SCAN + SLACK,
               interval=0.05)
    assert problems(mesh, sp, {ECMP_PREFIX: only80}) == []
    rows = kernel_rows(speaker_cli(mesh, "show", "kernel"))
    assert rows[ECMP_PREFIX, "ours"]["state"] == "installed", rows[ECMP_PREFIX, "ours"]
    assert rows[ECMP_PREFIX, "ours"]["rest"] == f"via {n80.address} dev eth0"
    assert (ECMP_PREFIX, "alien") not in rows, rows
    verbose = route_blocks(speaker_cli(mesh, "show", "route", "all", "for", ECMP_PREFIX))
    (best_all,) = [r for r in verbose[ECMP_PREFIX] if " * " in f"{r[0]} "]
    assert "Kernel: installed" in best_all, best_all


def test_protocol_12_is_refused(tmp_path: Path) -> None:
    # BIRD's number: a BIRD on the same host would take our routes for its own and delete
    # them (and we would restore them: the two would fight).  The daemon must not start.
    nodes = seed_nodes(("bird", "speaker", "bird"))
    text = render_speaker_config(
        nodes[1], nodes, DEFAULT_POOL, control_socket=str(tmp_path / "x.ctl")
    )
    assert f"protocol = {KERNEL_PROTOCOL}\n" in text
    cfg = tmp_path / "p12.toml"
    cfg.write_text(text.replace(f"protocol = {KERNEL_PROTOCOL}\n", "protocol = 12\n"))
    for command in (["check-config"], ["run"]):
        proc = subprocess.run(
            [sys.executable, "-m", "speaker", *command, "--config", str(cfg)],
            capture_output=True, text=True, cwd=REPO_ROOT, timeout=30, check=False,
        )
        assert proc.returncode == 2, (command, proc.returncode, proc.stdout, proc.stderr)
        assert "kernel.protocol: 12 is BIRD's" in proc.stderr, proc.stderr
    assert not (tmp_path / "x.ctl").exists()  # never got as far as the control socket


QUICK = "10.244.251.0/26"
"""Inside the pool, outside every block: announced and withdrawn by .80 in the quick test."""
WITHDRAW_LIMIT = 2.0
"""Seconds a withdrawn route may stay in our kernel (BIRD removes it at once)."""


def session_up(mesh: Lab, bird: NodeSpec, speaker: NodeSpec) -> bool:
    """BIRD's session toward the speaker is Established."""
    row = mesh.protocols(bird).get(speaker.protocol_name)
    return row is not None and row.info.startswith("Established")


def test_quick_withdraw_after_start_leaves_kernel(lab: LabFactory) -> None:
    """Hardening #1: a route .80 announces and withdraws right after our start leaves our
    kernel at once, not after the convergence wait.  .82 is never started, so no End-of-RIB
    comes from it and the bridge stays unconverged (``convergence_wait`` is 240 s): before the
    fix every delete waited for that."""
    mesh = lab("seed", start_daemons=False)
    sp, n80 = mesh.node(SPEAKER_NODE), mesh.node("node80")
    path = mesh.config_path(n80)
    path.write_text(
        path.read_text() + f"\nprotocol static st_q {{ disabled; route {QUICK} blackhole; }}\n"
    )
    mesh.start_bird(n80)
    mesh.start_speaker(sp)
    wait_until(lambda: session_up(mesh, n80, sp), CONVERGE, interval=0.2)
    assert session_up(mesh, n80, sp), mesh.protocols(n80)
    n80_block = {n80.block: frozenset({n80.address})}
    wait_until(lambda: not problems(mesh, sp, n80_block), KERNEL_SYNC, interval=0.2)
    assert problems(mesh, sp, n80_block) == []
    header = speaker_cli(mesh, "show", "kernel").splitlines()
    assert any("waiting before first sync" in line for line in header), header

    # Announced and withdrawn 0.25 s later, right after the start.
    mesh.birdc(n80, "enable st_q")
    time.sleep(0.25)
    mesh.birdc(n80, "disable st_q")
    wait_until(lambda: QUICK not in table(mesh, sp), WITHDRAW_LIMIT, interval=0.05)
    assert QUICK not in table(mesh, sp), table(mesh, sp).get(QUICK)

    # Announced until it is surely in our kernel, then withdrawn: gone within the limit.
    mesh.birdc(n80, "enable st_q")
    wait_until(lambda: QUICK in table(mesh, sp), KERNEL_SYNC, interval=0.05)
    assert problems(mesh, sp, {QUICK: frozenset({n80.address})}) == []
    mesh.birdc(n80, "disable st_q")
    started = time.monotonic()
    wait_until(lambda: QUICK not in table(mesh, sp), WITHDRAW_LIMIT, interval=0.05)
    took = time.monotonic() - started
    assert QUICK not in table(mesh, sp), f"withdrawn route still in the kernel: {took:.1f} s"
    header = speaker_cli(mesh, "show", "kernel").splitlines()
    assert any("waiting before first sync" in line for line in header), header
    log = log_lines(mesh, sp)
    assert any(f"kernel deleted {QUICK}" in line and "withdrawn" in line for line in log)
    assert not any("kernel converged" in line for line in log)
    assert problems(mesh, sp, n80_block) == []  # the rest is untouched
