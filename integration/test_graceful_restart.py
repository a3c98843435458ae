"""Graceful restart (RFC 4724) against BIRD 1.6.8, in both roles, with pod traffic flowing.

The lab is the seed mix: BIRD on .80 and .82, our speaker on .81.  Every test keeps a continuous
pod-to-pod ping running across the speaker node (20 echo requests a second per direction, from
the lab's ICMP client, ``integration/lab/icmp.py --continuous``, inside the pod namespaces) and
counts what was sent and lost.

* BIRD on .82 killed (SIGKILL) and restarted with ``bird -R``: we are the helper.  Nothing is
  lost; the route BIRD stopped announcing meanwhile leaves our RIB and kernel only after BIRD's
  End-of-RIB; BIRD's recovery ends once it has our End-of-RIB.
* Our speaker killed (SIGKILL) and restarted: we are the restarting side.  Nothing is lost in
  either direction; BIRD on .80 and .82 helps ("Neighbor graceful restart active") and keeps our
  block until our End-of-RIB.  A capture shows our OPENs carry R and F during recovery only,
  and our routes leave only after every peer's End-of-RIB.
* A planned restart (``speaker restart --graceful``, then start again): nothing is lost.
* BIRD on .82 away for longer than its restart time (15 s here): its routes leave our kernel
  when the timer fires, and come back with BIRD.
* BGP packets between .82 and us dropped (nftables inside .82's namespace): the session goes
  down within the hold time (9 s here), routes are withdrawn, it comes back once traffic flows;
  the .80 session never blinks.
* A TCP reset (``ss -K`` inside .82's namespace): the session recovers.

After every test the speaker's log must hold no traceback.

Set ``SPEAKER_GR_REPORT=/path/file.json`` to get the measured figures (pings, timings) of each
scenario written there (docs/graceful-restart.md has a table of them).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from integration.conftest import LabFactory
from integration.lab import Lab, wait_until
from integration.lab.capture import Capture
from integration.lab.core import ICMP_SCRIPT
from integration.lab.netns import netns_exec_argv
from integration.lab.spec import Family
from speaker.wire.capabilities import FamilyFlags, GracefulRestartCapability
from speaker.wire.context import DEFAULT_CONTEXT
from speaker.wire.messages import Open, decode_message

SPEAKER = "node81"
BIRD80 = "node80"
BIRD82 = "node82"
ADDR = {BIRD80: "192.168.0.80", SPEAKER: "192.168.0.81", BIRD82: "192.168.0.82"}
BLOCK = {BIRD80: "10.244.152.128/26", SPEAKER: "10.244.42.64/26", BIRD82: "10.244.103.64/26"}
POD = {BIRD80: "10.244.152.129", SPEAKER: "10.244.42.65", BIRD82: "10.244.103.65"}
MESH = {name: "Mesh_" + addr.replace(".", "_") for name, addr in ADDR.items()}
"""BIRD's protocol name for the session toward a node."""

EXTRA = "10.244.200.0/26"
"""A static route BIRD on .82 announces in the first test, then stops announcing."""
BIRD_RESTART_TIME = 15
"""Restart time BIRD on .82 advertises in the restart-timer test (BIRD's default: 120 s)."""
HOLD_TIME = 9
"""Hold time of the .81-.82 session in the packet-drop test (default 240 s)."""

PING_INTERVAL = 0.05
"""Seconds between echo requests: 20 a second per pinger."""
CONVERGE = 60.0
KERNEL_SYNC = 20.0

_RESULTS: dict[str, dict[str, Any]] = {}


# ---------------------------------------------------------------------- traffic


@dataclass
class PingStats:
    """What one pinger saw."""

    name: str
    sent: int
    received: int
    lost_at: list[float] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return self.sent - self.received

    def describe(self) -> str:
        return f"{self.name}: {self.sent} sent, {self.lost} lost"


class Pinger:
    """A continuous pod-to-pod ping (``family=6``: ping6) in the background (a process we
    started, ended by PID)."""

    def __init__(self, lab: Lab, src: str, dst: str, family: Family = 4) -> None:
        self.name = f"pod {src} -> pod {dst}" + ("" if family == 4 else " (IPv6)")
        target = lab.node(dst).pod_of(family)
        argv = [
            sys.executable,
            str(ICMP_SCRIPT),
            "--continuous",
            "--interval",
            str(PING_INTERVAL),
            "--timeout",
            "1",
            target,
        ]
        self.proc = subprocess.Popen(
            netns_exec_argv(lab.pod_netns(src), argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline().strip()
        assert first == "ready", f"{self.name}: pinger did not start: {first!r}"
        self.stats: PingStats | None = None

    def stop(self) -> PingStats:
        if self.stats is not None:
            return self.stats
        try:  # closing stdin (an empty input) tells the pinger to finish
            out, err = self.proc.communicate(input="", timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        if self.proc.returncode != 0:
            raise AssertionError(f"{self.name}: pinger failed: {err.strip()}")
        data = json.loads(out.strip().splitlines()[-1])
        self.stats = PingStats(self.name, data["sent"], data["received"], data["lost_at"])
        return self.stats

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@contextlib.contextmanager
def pinging(lab: Lab, *pairs: tuple[str, str], family: Family = 4) -> Iterator[list[Pinger]]:
    """Continuous pings (``family=6``: ping6) for the given (source node, destination node)
    pod pairs."""
    pingers: list[Pinger] = []
    try:
        for src, dst in pairs:
            pingers.append(Pinger(lab, src, dst, family))
        yield pingers
    finally:
        for pinger in pingers:
            if pinger.stats is None:
                pinger.kill()


def stop_all(pingers: list[Pinger]) -> list[PingStats]:
    """Stop the pingers; every one must have sent at least 10 requests a second."""
    stats = [p.stop() for p in pingers]
    for s in stats:
        assert s.sent >= 10, f"{s.name}: only {s.sent} echo requests sent"
    return stats


def assert_no_loss(stats: list[PingStats]) -> None:
    lossy = [s for s in stats if s.lost]
    assert not lossy, "pings lost: " + "; ".join(s.describe() for s in lossy)


# ---------------------------------------------------------------------- lab helpers


def start_lab(
    lab: LabFactory,
    *,
    bird82: Callable[[str], str] | None = None,
    speaker: Callable[[str], str] | None = None,
) -> Lab:
    """The seed mix with optional edits of .82's bird.cfg and our TOML; everything converged."""
    mesh = lab("seed", start_daemons=False)
    if bird82 is not None:
        path = mesh.config_path(BIRD82)
        path.write_text(bird82(path.read_text()))
    if speaker is not None:
        path = mesh.config_path(SPEAKER)
        path.write_text(speaker(path.read_text()))
    for node in mesh.nodes:
        mesh.start_node(node)
    mesh.wait_established(CONVERGE)
    assert wait_until(lambda: not kernel_problems(mesh), KERNEL_SYNC), kernel_problems(mesh)
    return mesh


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"{old!r} is not in the config exactly once"
    return text.replace(old, new)


def route(mesh: Lab, node: str, dst: str) -> dict[str, Any] | None:
    """The node's kernel route to ``dst`` (a prefix), or None."""
    for entry in mesh.routes(node):
        if entry["dst"] == dst:
            return entry
    return None


def routes_via(mesh: Lab, node: str, dst: str, gateway: str) -> bool:
    entry = route(mesh, node, dst)
    return entry is not None and entry.get("gateway") == gateway


def kernel_problems(mesh: Lab) -> list[str]:
    """The pod routes every node needs: each remote block via its node."""
    problems = []
    for node in (BIRD80, SPEAKER, BIRD82):
        for peer in (BIRD80, SPEAKER, BIRD82):
            if peer != node and not routes_via(mesh, node, BLOCK[peer], ADDR[peer]):
                problems.append(
                    f"{node}: {BLOCK[peer]} via {ADDR[peer]}: {route(mesh, node, BLOCK[peer])}"
                )
    return problems


def show(mesh: Lab, node: str, command: str) -> str:
    return mesh.birdc(node, command)


def helping(mesh: Lab, node: str, peer: str) -> bool:
    """``node`` keeps ``peer``'s routes stale: "Neighbor graceful restart active"."""
    return "Neighbor graceful restart active" in show(
        mesh, node, f"show protocols all {MESH[peer]}"
    )


def established(mesh: Lab, node: str, peer: str) -> bool:
    try:
        return mesh.protocols(node)[MESH[peer]].established
    except KeyError:
        return False


def assert_birds_helping(mesh: Lab) -> None:
    """BIRD on .80 and .82 keep our routes: "Neighbor graceful restart active"."""
    for bird in (BIRD80, BIRD82):
        assert wait_until(functools.partial(helping, mesh, bird, SPEAKER), 5), show(
            mesh, bird, f"show protocols all {MESH[SPEAKER]}"
        )


def bird_recovering(mesh: Lab, node: str) -> bool:
    return "Graceful restart recovery in progress" in show(mesh, node, "show status")


def log_text(mesh: Lab) -> str:
    return mesh.log_path(SPEAKER).read_text(errors="replace")


def assert_log_clean(mesh: Lab) -> None:
    """No traceback in the speaker's log, ever."""
    text = log_text(mesh)
    for bad in ("Traceback", "Exception in callback", "exception was never retrieved"):
        assert bad not in text, f"speaker log holds {bad!r}:\n{text[-4000:]}"


def since(mark: float) -> float:
    return round(time.monotonic() - mark, 2)


def record(name: str, stats: list[PingStats], **figures: Any) -> None:
    """Keep a scenario's figures for the report (SPEAKER_GR_REPORT)."""
    _RESULTS[name] = {
        "pings_sent": sum(s.sent for s in stats),
        "pings_lost": sum(s.lost for s in stats),
        "pingers": [s.describe() for s in stats],
        **figures,
    }


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    target = os.environ.get("SPEAKER_GR_REPORT")
    if target and _RESULTS:
        Path(target).write_text(json.dumps(_RESULTS, indent=2) + "\n")


def gr_capability(data: bytes) -> GracefulRestartCapability | None:
    message = decode_message(data, DEFAULT_CONTEXT)
    assert isinstance(message, Open)
    cap = message.capability(GracefulRestartCapability.CODE)
    return cap if isinstance(cap, GracefulRestartCapability) else None


def is_open(data: bytes) -> bool:
    return data[18] == 1


def is_update(data: bytes) -> bool:
    return data[18] == 2


def is_eor(data: bytes) -> bool:
    """IPv4 End-of-RIB: an UPDATE with nothing in it (RFC 4724 2)."""
    return is_update(data) and len(data) == 23


class RouteWatch:
    """Samples, in a thread, whether BIRD nodes keep our block in their table and kernel."""

    def __init__(self, mesh: Lab, nodes: tuple[str, ...]) -> None:
        self.mesh = mesh
        self.nodes = nodes
        self.samples = 0
        self.missing: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for node in self.nodes:
                when = time.strftime("%H:%M:%S")
                if not routes_via(self.mesh, node, BLOCK[SPEAKER], ADDR[SPEAKER]):
                    self.missing.append(f"{when} {node}: kernel lost {BLOCK[SPEAKER]}")
                table = show(self.mesh, node, f"show route for {POD[SPEAKER]}")
                if BLOCK[SPEAKER] not in table:
                    self.missing.append(f"{when} {node}: BIRD table lost {BLOCK[SPEAKER]}")
                self.samples += 1
            self._stop.wait(0.1)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


# ---------------------------------------------------------------------- tests


def test_bird_killed_then_restarted_with_R(lab: LabFactory) -> None:
    """We are the helper: BIRD's routes stay while it is away; what it dropped goes at its EoR."""
    mesh = start_lab(
        lab,
        bird82=lambda cfg: replace_once(
            cfg,
            f"   route {BLOCK[BIRD82]} blackhole;\n",
            f"   route {BLOCK[BIRD82]} blackhole;\n   route {EXTRA} blackhole;\n",
        ),
    )
    assert wait_until(lambda: routes_via(mesh, SPEAKER, EXTRA, ADDR[BIRD82]), KERNEL_SYNC)

    with pinging(mesh, (SPEAKER, BIRD82), (BIRD82, SPEAKER)) as pingers:
        time.sleep(1)
        log_mark = len(log_text(mesh))
        killed = time.monotonic()
        mesh.kill_bird(BIRD82)  # SIGKILL: the TCP connection closes without NOTIFICATION
        assert wait_until(lambda: helping(mesh, SPEAKER, BIRD82), 5), show(
            mesh, SPEAKER, f"show protocols all {MESH[BIRD82]}"
        )
        # BIRD leaves the extra route out of its next run; until its End-of-RIB we keep it
        cfg = mesh.config_path(BIRD82)
        cfg.write_text(replace_once(cfg.read_text(), f"   route {EXTRA} blackhole;\n", ""))
        time.sleep(3)  # more than a kernel scan: nothing may be flushed meanwhile
        assert routes_via(mesh, SPEAKER, BLOCK[BIRD82], ADDR[BIRD82])
        assert routes_via(mesh, SPEAKER, EXTRA, ADDR[BIRD82])
        assert EXTRA in show(mesh, SPEAKER, "show route")

        restarted = time.monotonic()
        mesh.start_bird(BIRD82, graceful=True)  # bird -R
        assert bird_recovering(mesh, BIRD82), show(mesh, BIRD82, "show status")
        assert wait_until(lambda: not bird_recovering(mesh, BIRD82), 30, interval=0.2), show(
            mesh, BIRD82, "show status"
        )
        bird_recovered = since(restarted)
        assert wait_until(lambda: route(mesh, SPEAKER, EXTRA) is None, 10, interval=0.2), (
            mesh.route_text(SPEAKER)
        )
        stale_gone = since(restarted)
        assert EXTRA not in show(mesh, SPEAKER, "show route")
        assert wait_until(lambda: not helping(mesh, SPEAKER, BIRD82), 5)
        mesh.wait_established(CONVERGE)
        assert kernel_problems(mesh) == []
        time.sleep(1)
        stats = stop_all(pingers)

    # The extra route left our kernel only after BIRD's End-of-RIB (RFC 4724 4.2).
    new_log = log_text(mesh)[log_mark:]
    graceful_down = new_log.find("192.168.0.82: session down")
    eor = new_log.find("192.168.0.82: End-of-RIB for IPv4/unicast received")
    deleted = new_log.find(f"kernel deleted {EXTRA}")
    assert 0 <= graceful_down < eor < deleted, new_log[-5000:]
    assert "keeping its routes stale for 120 s" in new_log[graceful_down:eor]
    # the state change carries its reason
    down_lines = [line for line in state_lines(new_log, ADDR[BIRD82]) if "Established ->" in line]
    assert down_lines and "connection lost without NOTIFICATION" in down_lines[0], down_lines
    assert_no_loss(stats)
    record(
        "BIRD .82 SIGKILL, restart with bird -R",
        stats,
        outage_s=round(restarted - killed, 2),
        bird_recovery_done_s=bird_recovered,
        stale_route_swept_s=stale_gone,
    )
    assert_log_clean(mesh)


def test_speaker_killed_and_restarted(lab: LabFactory) -> None:
    """We restart: BIRD helps and keeps our block until our End-of-RIB; OPEN flags R and F only
    while we recover."""
    mesh = start_lab(lab)
    capture = Capture(mesh, SPEAKER)
    watch: RouteWatch | None = None
    pairs = ((SPEAKER, BIRD82), (BIRD82, SPEAKER), (SPEAKER, BIRD80), (BIRD80, SPEAKER))
    try:
        with pinging(mesh, *pairs) as pingers:
            watch = RouteWatch(mesh, (BIRD80, BIRD82))
            time.sleep(1)
            killed = time.monotonic()
            mesh.kill_speaker(SPEAKER)
            assert_birds_helping(mesh)
            time.sleep(3)  # more than a BIRD kernel scan: our block stays everywhere
            assert kernel_problems(mesh) == []
            restarted = time.monotonic()
            mesh.start_speaker(SPEAKER)

            def recovered() -> bool:
                return all(
                    established(mesh, bird, SPEAKER) and not helping(mesh, bird, SPEAKER)
                    for bird in (BIRD80, BIRD82)
                )

            assert wait_until(recovered, 30, interval=0.2), mesh.diagnostics()
            recovery = since(restarted)
            assert "Graceful restart recovery" not in show(mesh, SPEAKER, "show status")
            assert kernel_problems(mesh) == []
            time.sleep(1)
            watch.stop()
            stats = stop_all(pingers)
        assert watch.samples > 20
        assert watch.missing == [], watch.missing[:10]
        assert_no_loss(stats)
        log = log_text(mesh)
        assert "graceful restart recovery started" in log
        assert "graceful restart recovery ended: End-of-RIB received from every" in log

        # A later flap (BIRD resets the session with a NOTIFICATION): our recovery is over, so
        # the new OPEN carries neither R nor F (as BIRD: both only while recovering).
        ups = log_text(mesh).count(f"{ADDR[BIRD80]}: session Established")
        flap = time.monotonic()
        show(mesh, BIRD80, f"restart {MESH[SPEAKER]}")
        assert wait_until(
            lambda: log_text(mesh).count(f"{ADDR[BIRD80]}: session Established") > ups,
            30,
            interval=0.2,
        )
        assert wait_until(lambda: not kernel_problems(mesh), KERNEL_SYNC)
        flap_recovery = since(flap)
    finally:
        if watch is not None:
            watch.stop()
        messages = capture.stop()

    ours = ADDR[SPEAKER]
    birds = (ADDR[BIRD80], ADDR[BIRD82])
    opens = [
        (t, dst, gr_capability(d)) for t, src, dst, d in messages if src == ours and is_open(d)
    ]
    # the capture started before the kill: the first OPEN to each BIRD is the restart's
    for peer in birds:
        to_peer = [(t, cap) for t, dst, cap in opens if dst == peer]
        assert len(to_peer) >= 1, f"no OPEN to {peer} captured"
        first = to_peer[0][1]
        assert first is not None and first.restarting, f"OPEN to {peer} after the restart: {first}"
        assert all(flags & FamilyFlags.FORWARDING for _, _, flags in first.families), first
    after_flap = [(t, cap) for t, dst, cap in opens if dst == ADDR[BIRD80]][-1][1]
    summary = [(round(t, 3), src, dst, d[18], len(d)) for t, src, dst, d in messages]
    assert len([1 for _, dst, _ in opens if dst == ADDR[BIRD80]]) >= 2, summary
    assert after_flap is not None and not after_flap.restarting, after_flap
    assert not any(flags & FamilyFlags.FORWARDING for _, _, flags in after_flap.families)
    # deferral (RFC 4724 4.1): our first UPDATE after the restart follows every peer's EoR
    eors_in = [t for t, src, dst, d in messages if dst == ours and src in birds and is_eor(d)]
    ours_out = [(t, dst, d) for t, src, dst, d in messages if src == ours and is_update(d)]
    assert len(eors_in) >= 2 and ours_out
    first_eor_each = {
        peer: min(t for t, src, dst, d in messages if src == peer and dst == ours and is_eor(d))
        for peer in birds
    }
    assert ours_out[0][0] >= max(first_eor_each.values()), (ours_out[0], first_eor_each)
    for peer in birds:
        assert any(dst == peer and is_eor(d) for _, dst, d in ours_out), f"no EoR sent to {peer}"

    record(
        "speaker SIGKILL, restart",
        stats,
        outage_s=round(restarted - killed, 2),
        recovery_after_start_s=recovery,
        flap_recovery_s=flap_recovery,
    )
    assert_log_clean(mesh)


def test_planned_graceful_restart(lab: LabFactory) -> None:
    """``speaker restart --graceful``: sessions close without NOTIFICATION, kernel routes stay."""
    mesh = start_lab(lab)
    pairs = ((SPEAKER, BIRD82), (BIRD82, SPEAKER), (SPEAKER, BIRD80), (BIRD80, SPEAKER))
    with pinging(mesh, *pairs) as pingers:
        time.sleep(1)
        stopped = time.monotonic()
        argv = [
            sys.executable,
            "-m",
            "speaker",
            "restart",
            "--graceful",
            "--socket",
            str(mesh.control_socket(SPEAKER)),
        ]
        answer = mesh.exec(SPEAKER, argv)
        assert "graceful restart" in answer.stdout.lower(), answer.stdout
        assert wait_until(lambda: not mesh.daemon_running(SPEAKER), 10, interval=0.1)
        assert mesh.daemon_exit_code(SPEAKER) == 0
        assert_birds_helping(mesh)
        time.sleep(2)
        assert kernel_problems(mesh) == []
        restarted = time.monotonic()
        mesh.start_speaker(SPEAKER)

        def recovered() -> bool:
            return all(
                established(mesh, bird, SPEAKER) and not helping(mesh, bird, SPEAKER)
                for bird in (BIRD80, BIRD82)
            )

        assert wait_until(recovered, 30, interval=0.2), mesh.diagnostics()
        recovery = since(restarted)
        assert kernel_problems(mesh) == []
        time.sleep(1)
        stats = stop_all(pingers)
    log = log_text(mesh)
    assert "planned graceful restart: sessions closed without NOTIFICATION" in log
    assert "graceful restart recovery ended" in log
    assert_no_loss(stats)
    record(
        "planned restart (speaker restart --graceful)",
        stats,
        outage_s=round(restarted - stopped, 2),
        recovery_after_start_s=recovery,
    )
    assert_log_clean(mesh)


def test_bird_away_longer_than_its_restart_time(lab: LabFactory) -> None:
    """The peer's advertised restart time runs out: its routes go, and return with it."""
    mesh = start_lab(
        lab,
        bird82=lambda cfg: replace_once(
            cfg,
            f"  neighbor {ADDR[SPEAKER]} as 64512;\n",
            f"  neighbor {ADDR[SPEAKER]} as 64512;\n  graceful restart time {BIRD_RESTART_TIME};\n",
        ),
    )
    assert f"restart {BIRD_RESTART_TIME} s (IPv4/unicast)" in log_text(mesh)
    with pinging(mesh, (SPEAKER, BIRD82), (SPEAKER, BIRD80)) as pingers:
        time.sleep(1)
        killed = time.monotonic()
        mesh.kill_bird(BIRD82)
        assert wait_until(lambda: helping(mesh, SPEAKER, BIRD82), 5)
        assert wait_until(
            lambda: "Restart timer" in show(mesh, SPEAKER, f"show protocols all {MESH[BIRD82]}"), 5
        )
        time.sleep(BIRD_RESTART_TIME - 4 - (time.monotonic() - killed))
        assert routes_via(mesh, SPEAKER, BLOCK[BIRD82], ADDR[BIRD82]), "flushed before the timer"
        assert wait_until(lambda: route(mesh, SPEAKER, BLOCK[BIRD82]) is None, 10, interval=0.1)
        flushed = since(killed)
        assert BIRD_RESTART_TIME - 1 <= flushed <= BIRD_RESTART_TIME + 3, flushed
        assert BLOCK[BIRD82] not in show(mesh, SPEAKER, "show route")
        assert not helping(mesh, SPEAKER, BIRD82)
        time.sleep(1)

        restarted = time.monotonic()
        mesh.start_bird(BIRD82, graceful=True)
        assert wait_until(
            lambda: routes_via(mesh, SPEAKER, BLOCK[BIRD82], ADDR[BIRD82]), 30, interval=0.2
        )
        back = since(restarted)
        mesh.wait_established(CONVERGE)
        assert wait_until(lambda: not kernel_problems(mesh), KERNEL_SYNC)
        time.sleep(1)
        stats = stop_all(pingers)
    to82, to80 = stats
    assert "did not come back within its Restart Time" in log_text(mesh)
    # pings toward .82 were lost only while its routes were gone; .80 never lost any
    assert to82.lost > 0, "the ping never noticed the missing route"
    assert all(killed + flushed - 1 <= t <= restarted + back + 1 for t in to82.lost_at), (
        to82.lost_at[:5],
        killed,
        flushed,
    )
    assert_no_loss([to80])
    record(
        f"BIRD .82 down > restart time ({BIRD_RESTART_TIME} s)",
        stats,
        routes_flushed_after_s=flushed,
        routes_back_after_start_s=back,
    )
    assert_log_clean(mesh)


NFT_DROP = """table inet spk {{
  chain input {{
    type filter hook input priority 0; policy accept;
    ip saddr {peer} tcp sport 179 drop
    ip saddr {peer} tcp dport 179 drop
  }}
  chain output {{
    type filter hook output priority 0; policy accept;
    ip daddr {peer} tcp sport 179 drop
    ip daddr {peer} tcp dport 179 drop
  }}
}}
"""


def nft(mesh: Lab, node: str, *args: str, stdin: str | None = None) -> None:
    """nft inside the node's namespace only (never the root namespace)."""
    argv = ["nft", *args]
    proc = subprocess.run(
        netns_exec_argv(mesh.netns(node), argv),
        input=stdin,
        text=True,
        capture_output=True,
        check=False,
        timeout=10,
    )
    assert proc.returncode == 0, f"nft {' '.join(args)} in {node}: {proc.stderr}"


def same_second(a: str, b: str) -> bool:
    """Two HH:MM:SS times at most a second apart."""

    def seconds(text: str) -> int:
        h, m, s = (int(x) for x in text.split(":"))
        return h * 3600 + m * 60 + s

    return abs(seconds(a) - seconds(b)) <= 1


def state_lines(text: str, peer: str) -> list[str]:
    return [line for line in text.splitlines() if f"speaker.state: {peer}:" in line]


def test_bgp_packets_dropped_hold_timer(lab: LabFactory) -> None:
    """Silence from .82: down within the hold time, routes withdrawn, back when packets flow;
    the .80 session is untouched."""
    mesh = start_lab(
        lab,
        speaker=lambda toml: replace_once(
            toml,
            f'address = "{ADDR[BIRD82]}"\n',
            f'address = "{ADDR[BIRD82]}"\nhold_time = {HOLD_TIME}\n',
        ),
        bird82=lambda cfg: replace_once(
            cfg,
            f"  neighbor {ADDR[SPEAKER]} as 64512;\n",
            f"  neighbor {ADDR[SPEAKER]} as 64512;\n  hold time {HOLD_TIME};\n",
        ),
    )
    assert (
        f"{ADDR[BIRD82]}: session Established (AS 64512 id {ADDR[BIRD82]}, internal, "
        f"hold {HOLD_TIME} s, keepalive {HOLD_TIME // 3} s" in log_text(mesh)
    )
    before_80 = mesh.protocols(SPEAKER)[MESH[BIRD80]].since
    bird80_before = mesh.protocols(BIRD80)[MESH[SPEAKER]].since
    log_mark = len(log_text(mesh))
    bird80_log_mark = len(mesh.bird_log_path(BIRD80).read_text())

    with pinging(mesh, (SPEAKER, BIRD82), (SPEAKER, BIRD80), (BIRD80, SPEAKER)) as pingers:
        time.sleep(1)
        blocked = time.monotonic()
        nft(mesh, BIRD82, "-f", "-", stdin=NFT_DROP.format(peer=ADDR[SPEAKER]))
        try:
            assert wait_until(
                lambda: not established(mesh, SPEAKER, BIRD82), HOLD_TIME + 5, interval=0.2
            )
            down = since(blocked)
            assert down <= HOLD_TIME + 1.5, down
            assert wait_until(lambda: route(mesh, SPEAKER, BLOCK[BIRD82]) is None, 5, interval=0.1)
            withdrawn = since(blocked)
            assert BLOCK[BIRD82] not in show(mesh, SPEAKER, "show route")
            time.sleep(2)
        finally:
            unblocked = time.monotonic()
            nft(mesh, BIRD82, "delete", "table", "inet", "spk")
        assert wait_until(lambda: established(mesh, SPEAKER, BIRD82), 60, interval=0.2), (
            mesh.diagnostics()
        )
        assert wait_until(
            lambda: routes_via(mesh, SPEAKER, BLOCK[BIRD82], ADDR[BIRD82]), 10, interval=0.2
        )
        back = since(unblocked)
        mesh.wait_established(CONVERGE)
        assert wait_until(lambda: not kernel_problems(mesh), KERNEL_SYNC)
        time.sleep(1)
        stats = stop_all(pingers)

    new_log = log_text(mesh)[log_mark:]
    down_lines = [line for line in state_lines(new_log, ADDR[BIRD82]) if "Established ->" in line]
    assert down_lines, new_log[-3000:]
    assert "HoldTimer_Expires" in down_lines[0], down_lines  # the state change says why
    assert "withdrawing its routes now" in new_log
    # the .80 session never blinked: no state change, same 'since' on both ends
    assert state_lines(new_log, ADDR[BIRD80]) == []
    assert mesh.protocols(SPEAKER)[MESH[BIRD80]].since == before_80
    # BIRD 1.6 prints 'since' by converting its coarse monotonic clock to wall time at each
    # call, so one and the same instant may print a second apart
    assert same_second(mesh.protocols(BIRD80)[MESH[SPEAKER]].since, bird80_before)
    bird80_log = mesh.bird_log_path(BIRD80).read_text()[bird80_log_mark:]
    assert f"{MESH[SPEAKER]}: State changed" not in bird80_log, bird80_log
    to82, to80, from80 = stats
    assert to82.lost > 0, "the ping toward .82 never noticed the withdrawal"
    assert_no_loss([to80, from80])
    record(
        f"BGP to .82 dropped (nft), hold time {HOLD_TIME} s",
        stats,
        session_down_after_s=down,
        routes_withdrawn_after_s=withdrawn,
        blocked_for_s=round(unblocked - blocked, 2),
        back_after_unblock_s=back,
    )
    assert_log_clean(mesh)


def test_tcp_reset_recovers(lab: LabFactory) -> None:
    """``ss -K`` aborts BIRD's connection (RST to us): a graceful down, then a new session."""
    mesh = start_lab(lab)
    with pinging(mesh, (SPEAKER, BIRD82), (BIRD82, SPEAKER), (SPEAKER, BIRD80)) as pingers:
        time.sleep(1)
        log_mark = len(log_text(mesh))
        reset = time.monotonic()
        killed = mesh.exec(
            BIRD82, ["ss", "-K", "dst", ADDR[SPEAKER], "dport", "=", ":179"], check=False
        )
        assert re.search(rf"{re.escape(ADDR[SPEAKER])}:(179|bgp)", killed.stdout), killed.stdout
        assert wait_until(
            lambda: (
                "Reset by peer" in log_text(mesh)[log_mark:]
                or "reset by peer" in log_text(mesh)[log_mark:]
            ),
            5,
            interval=0.1,
        )
        assert wait_until(
            lambda: established(mesh, SPEAKER, BIRD82) and established(mesh, BIRD82, SPEAKER),
            30,
            interval=0.2,
        )
        back = since(reset)
        assert wait_until(lambda: not kernel_problems(mesh), KERNEL_SYNC)
        assert wait_until(lambda: not helping(mesh, SPEAKER, BIRD82), 5)
        time.sleep(1)
        stats = stop_all(pingers)
    new_log = log_text(mesh)[log_mark:]
    assert "the peer may be restarting (RFC 4724 4.2)" in new_log
    assert "keeping its routes stale" in new_log
    to82, from82, to80 = stats
    assert_no_loss([to80])
    # BIRD reconnects without the F bit (it did not restart), so both sides flush the stale
    # routes on the new OPEN and re-learn them a moment later (RFC 4724 4.2): a gap of about
    # a millisecond, at most a ping or two at 20 a second.
    assert to82.lost + from82.lost <= 4, (to82.describe(), from82.describe())
    record("TCP reset (ss -K in .82)", stats, session_back_after_s=back)
    assert_log_clean(mesh)
