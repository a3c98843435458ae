"""The dual-stack lab (issue 13): bird6 beside bird on every BIRD node, IPv6 blocks and pods.

Runs on either backend (``--lab-backend docker``: bird and bird6 in containers of their own).

* Three BIRD nodes, dual stack: every IPv4 and every IPv6 session is Established (bird.ctl
  holds only the IPv4 ones, bird6.ctl only the IPv6 ones); each kernel holds the other nodes'
  /122 blocks via their IPv6 addresses (proto bird) and its own /122 as a blackhole, the IPv4
  routes as before; every pod pings every other pod over IPv6 and IPv4, and a ping6 into a
  remote blackhole is lost (so the check can fail).
* bird6 on .82 killed (SIGKILL) and restarted with ``bird6 -R``: its peers' bird6 keep its routes
  meanwhile (graceful-restart helpers), a continuous 20/s ping6 between pods across .82 loses
  nothing, and bird on .82 with its IPv4 sessions is not disturbed.
* The seed mix with our speaker on .81, dual stack: the same, and the speaker's IPv6 kernel
  routes are those bird6 installs on the BIRD nodes.  Skipped (saying why) where
  ``speaker check-config`` refuses an IPv6 peer address (a speaker from before IPv6); any other
  refusal of the rendered config fails it.
"""

from __future__ import annotations

import functools
import ipaddress
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from integration.conftest import LabFactory
from integration.lab import (
    DEFAULT_POOL,
    DEFAULT_POOL6,
    Lab,
    NodeSpec,
    render_speaker_config,
    seed_nodes,
    wait_until,
    with_ipv6,
)
from integration.lab.core import REPO_ROOT
from integration.lab.spec import Family
from integration.test_graceful_restart import assert_no_loss, pinging, stop_all
from integration.test_lab_bird import all_kernel_problems, kernel_problems

CONVERGE = 60.0
KERNEL_SYNC = 20.0
KERNEL_FIELDS = ("type", "gateway", "dev")
"""What a kernel route must agree on between bird6 and the speaker (not protocol, metric)."""


def kernel6_problems(mesh: Lab, node: NodeSpec) -> list[str]:
    """The node's IPv6 table against what Calico's bird6 programs (the IPv6 half of
    :func:`integration.test_lab_bird.kernel_problems`)."""
    return kernel_problems(mesh, node, 6)


def all_kernel6_problems(mesh: Lab) -> list[str]:
    """kernel6_problems for every node."""
    return [p for node in mesh.nodes for p in kernel6_problems(mesh, node)]


def assert_pods_reach_each_other(mesh: Lab) -> None:
    """Every pod pings every other pod, over IPv6 and over IPv4."""
    for src in mesh.nodes:
        for dst in mesh.nodes:
            if dst.name == src.name:
                continue
            for target in (dst.ipv6("pod_address6"), dst.pod_address):
                result = mesh.ping(src, target, count=3, interval=0.1)
                assert result.ok, f"pod of {src.name} -> {target}: {result}"


def sessions_of(mesh: Lab, node: NodeSpec, family: Family) -> set[str]:
    """BGP protocol names in the node's bird.ctl (4) or bird6.ctl (6)."""
    rows = mesh.protocols(node, family)
    return {name for name, row in rows.items() if row.proto == "BGP"}


# ---------------------------------------------------------------------- all BIRD
def test_dual_stack_bird_mesh_routes_and_pods(lab: LabFactory) -> None:
    mesh = lab("bird", dual_stack=True)
    assert mesh.families == (4, 6)
    status = mesh.wait_established(CONVERGE)

    for node in mesh.nodes:
        peers = [p for p in mesh.nodes if p.name != node.name]
        v4, v6 = {p.protocol_name for p in peers}, {p.protocol_name6 for p in peers}
        assert set(status[node.name]) == v4 | v6
        assert all(s.startswith("up Established") for s in status[node.name].values()), status
        assert sessions_of(mesh, node, 4) == v4  # bird.ctl: IPv4 sessions only
        assert sessions_of(mesh, node, 6) == v6  # bird6.ctl: IPv6 sessions only
        bird, bird6 = mesh.daemon_pid(node, 4), mesh.daemon_pid(node, 6)
        assert bird is not None and bird6 is not None and bird != bird6
        assert "BIRD 1.6.8" in mesh.birdc(node, "show status", family=6)
        cfg6 = mesh.config_path(node, 6).read_text()
        assert f"source address {node.address6};" in cfg6

    assert wait_until(lambda: not all_kernel6_problems(mesh), KERNEL_SYNC), all_kernel6_problems(
        mesh
    )
    assert wait_until(lambda: not all_kernel_problems(mesh), KERNEL_SYNC), all_kernel_problems(mesh)
    assert_pods_reach_each_other(mesh)

    # Control: an unused address inside a remote /122 ends in that node's blackhole.
    hole = mesh.nodes[1]
    unused = str(ipaddress.IPv6Address(hole.ipv6("pod_address6")) + 1)
    assert ipaddress.IPv6Address(unused) in ipaddress.IPv6Network(hole.ipv6("block6"))
    lost = mesh.ping(mesh.nodes[0], unused, count=2, interval=0.1, timeout=1.0)
    assert (lost.sent, lost.received) == (2, 0)


def test_bird6_killed_and_restarted_with_R_loses_no_ping6(lab: LabFactory) -> None:
    mesh = lab("bird", dual_stack=True)
    mesh.wait_established(CONVERGE)
    assert wait_until(lambda: not all_kernel6_problems(mesh), KERNEL_SYNC), all_kernel6_problems(
        mesh
    )
    victim, helpers = mesh.node("node82"), (mesh.node("node80"), mesh.node("node81"))
    marks = {(h.name, f): len(mesh.bird_log_path(h, f).read_text())
             for h in helpers for f in mesh.families}
    bird_pid = mesh.daemon_pid(victim, 4)
    pairs = (("node81", "node82"), ("node82", "node81"), ("node80", "node82"))

    with pinging(mesh, *pairs, family=6) as pingers:
        time.sleep(1)
        mesh.kill_bird(victim, family=6)  # SIGKILL: no NOTIFICATION, kernel routes stay
        assert not mesh.daemon_running(victim, 6)
        assert mesh.daemon_pid(victim, 4) == bird_pid  # bird (IPv4) lives on

        show82 = f"show protocols all {victim.protocol_name6}"

        def helping(helper: NodeSpec) -> bool:
            return "Neighbor graceful restart active" in mesh.birdc(helper, show82, family=6)

        for helper in helpers:
            assert wait_until(functools.partial(helping, helper), 15.0), mesh.birdc(
                helper, show82, family=6
            )
        time.sleep(3)  # more than a kernel scan: nothing may be flushed meanwhile
        assert all_kernel6_problems(mesh) == []  # persist on .82, stale routes on the helpers

        mesh.start_bird(victim, graceful=True, family=6)
        status = mesh.birdc(victim, "show status", family=6)
        assert "Graceful restart recovery in progress" in status, status
        mesh.wait_established(CONVERGE)
        assert wait_until(
            lambda: "Graceful restart recovery" not in mesh.birdc(victim, "show status", family=6),
            30.0,
        ), mesh.birdc(victim, "show status", family=6)
        assert wait_until(lambda: not any(helping(h) for h in helpers), 10.0)
        assert wait_until(lambda: not all_kernel6_problems(mesh), KERNEL_SYNC)
        time.sleep(1)
        stats = stop_all(pingers)
    assert_no_loss(stats)
    # the IPv4 side never noticed: same bird, its sessions toward .82 never changed state
    assert mesh.daemon_pid(victim, 4) == bird_pid
    for helper in helpers:
        assert mesh.protocols(helper)[victim.protocol_name].established
        log = mesh.bird_log_path(helper).read_text()[marks[(helper.name, 4)] :]
        assert f"{victim.protocol_name}: State changed" not in log, log
        # while the same look at bird6's log sees its session toward .82 go and come back
        log6 = mesh.bird_log_path(helper, 6).read_text()[marks[(helper.name, 6)] :]
        assert f"{victim.protocol_name6}: State changed to up" in log6, log6


# ---------------------------------------------------------------------- the speaker on .81
def speaker_refuses_ipv6_peers(run_dir: Path) -> str | None:
    """``speaker check-config``'s refusal of the dual-stack config's IPv6 peer address, or None
    when it accepts the file.  Any other refusal fails the caller: it would be a lab bug."""
    nodes = [with_ipv6(n) for n in seed_nodes(("bird", "speaker", "bird"))]
    config = run_dir / "node81.toml"
    config.write_text(
        render_speaker_config(
            nodes[1],
            nodes,
            DEFAULT_POOL,
            control_socket=str(run_dir / "node81.ctl"),
            pool6=DEFAULT_POOL6,
            control_socket6=str(run_dir / "node81-6.ctl"),
        )
    )
    argv = [sys.executable, "-m", "speaker", "check-config", "--config", str(config)]
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=REPO_ROOT, check=False)
    if proc.returncode == 0:
        return None
    text = proc.stderr + proc.stdout
    refusals = [
        line.strip()
        for line in text.splitlines()
        if ".address:" in line and any(str(n.address6) in line for n in nodes)
    ]
    assert refusals, f"speaker check-config refuses the dual-stack config otherwise:\n{text}"
    return refusals[0]


def kernel_entry(mesh: Lab, node: NodeSpec, dst: str) -> dict[str, Any]:
    """The fields of the node's IPv6 route to ``dst`` that bird6 and the speaker share."""
    for entry in mesh.routes(node, family=6):
        if entry["dst"] == dst:
            return {k: entry.get(k) for k in KERNEL_FIELDS}
    return {}


def test_speaker_mix_dual_stack(lab: LabFactory, tmp_path: Path) -> None:
    refusal = speaker_refuses_ipv6_peers(tmp_path)
    if refusal is not None:
        pytest.skip(f"the speaker does not take IPv6 peers yet (speaker check-config: {refusal})")
    mesh = lab("seed", dual_stack=True)
    bird80, speaker81, bird82 = mesh.nodes
    status = mesh.wait_established(CONVERGE)
    for node in mesh.nodes:
        assert all(s.startswith("up Established") for s in status[node.name].values()), status
    assert sessions_of(mesh, speaker81, 6) == {bird80.protocol_name6, bird82.protocol_name6}
    assert wait_until(lambda: not all_kernel6_problems(mesh), KERNEL_SYNC), all_kernel6_problems(
        mesh
    )
    # What the speaker installs for a block is what bird6 installs for it elsewhere.
    for block_owner, bird in ((bird82, bird80), (bird80, bird82)):
        block = block_owner.ipv6("block6")
        assert kernel_entry(mesh, speaker81, block) == kernel_entry(mesh, bird, block)
    ours = kernel_entry(mesh, speaker81, speaker81.ipv6("block6"))
    birds = kernel_entry(mesh, bird80, bird80.ipv6("block6"))
    assert ours["type"] == birds["type"] == "blackhole", (ours, birds)
    assert_pods_reach_each_other(mesh)


def test_speaker_killed_and_restarted_loses_no_ping6(lab: LabFactory, tmp_path: Path) -> None:
    """Our own graceful restart on the IPv6 side: the speaker on .81 is killed (SIGKILL, no
    NOTIFICATION); bird6 on .80 and .82 keeps our /122 stale and its kernel keeps the route,
    our kernel keeps theirs (persist); the restarted speaker adopts its IPv6 routes, recovers
    (R and F flags per family) and no ping6 through .81 is lost, nor any IPv4 ping."""
    refusal = speaker_refuses_ipv6_peers(tmp_path)
    if refusal is not None:
        pytest.skip(f"the speaker does not take IPv6 peers yet (speaker check-config: {refusal})")
    mesh = lab("seed", dual_stack=True)
    bird80, speaker81, bird82 = mesh.nodes
    mesh.wait_established(CONVERGE)
    assert wait_until(lambda: not all_kernel6_problems(mesh), KERNEL_SYNC), all_kernel6_problems(
        mesh
    )
    pairs = (("node81", "node82"), ("node82", "node81"), ("node80", "node81"))
    show = f"show protocols all {speaker81.protocol_name6}"

    def helping(bird: NodeSpec) -> bool:
        return "Neighbor graceful restart active" in mesh.birdc(bird, show, family=6)

    with pinging(mesh, *pairs, family=6) as pingers6, pinging(mesh, *pairs) as pingers4:
        time.sleep(1)
        mesh.kill_speaker(speaker81)
        for bird in (bird80, bird82):
            assert wait_until(functools.partial(helping, bird), 15.0), mesh.birdc(
                bird, show, family=6)
        time.sleep(3)  # more than a kernel scan: nothing flushed on either side
        assert all_kernel6_problems(mesh) == []
        mesh.start_speaker(speaker81)
        assert wait_until(lambda: not any(helping(b) for b in (bird80, bird82)), 30.0)
        status = mesh.wait_established(CONVERGE)
        assert all(s.startswith("up Established") for s in status[speaker81.name].values())
        assert wait_until(lambda: not all_kernel6_problems(mesh), KERNEL_SYNC)
        time.sleep(1)
        stats6 = stop_all(pingers6)
        stats4 = stop_all(pingers4)
    assert_no_loss(stats6)
    assert_no_loss(stats4)
