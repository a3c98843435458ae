"""Hardening in the lab: route limits against BIRD 1.6.8, RFC 7606 and the import guard against
the hand-made peer.

* Route limits: BIRD on .80 announces its block and 12 more static routes toward our speaker
  on .81, whose ``receive_limit`` / ``import_limit`` for .80 is 5.  With ``restart`` BIRD sees
  Cease 6/1 ("Received: Maximum number of prefixes reached") and the session comes back after
  the error wait; with ``disable`` ours stays down until ``speaker enable``.
* RFC 7606: ``integration/lab/minipeer.py`` on .80 announces a prefix, then an UPDATE for it
  with ORIGIN 5 (treat-as-withdraw, RFC 7606 7.1): the route leaves our kernel, the session
  stays up (the peer gets no NOTIFICATION), our log has the event with its count.  In an iBGP
  mesh we re-advertise nothing learned over iBGP, so the kernel and our own records are what
  shows the withdrawal.
* Import guard: the same peer announces a default route, a route outside the pools, our own
  address as a /32, our own block and a route via our own address: none reaches our kernel,
  each refusal is logged with its rule, ``show route all`` says why, the session stays up.
"""

from __future__ import annotations

import re
import sys
import time

from integration.conftest import LabFactory
from integration.lab import wait_until
from integration.lab.core import Lab
from integration.lab.netns import netns_exec_argv
from integration.test_kernel_no_eor import MiniPeer
from integration.test_speaker_kernel import (
    KERNEL_SYNC,
    SPEAKER_NODE,
    WITHDRAW_LIMIT,
    log_lines,
    problems,
    speaker_cli,
    table,
)

EXTRA = [f"10.244.200.{i * 4}/30" for i in range(12)]
"""Static routes BIRD on .80 announces besides its block (in the pool, outside every block)."""
LIMIT = 5


def limited_lab(lab: LabFactory, lines: list[str]) -> Lab:
    """The seed mix with .80's BIRD announcing 13 routes and our peer .80 limited by ``lines``."""
    mesh = lab("seed", start_daemons=False)
    n80, sp = mesh.node("node80"), mesh.node(SPEAKER_NODE)
    bird_cfg = mesh.config_path(n80)
    text = bird_cfg.read_text()
    statics = "".join(f"   route {p} blackhole;\n" for p in EXTRA)
    text = text.replace(f"   route {n80.block} blackhole;\n",
                        f"   route {n80.block} blackhole;\n{statics}", 1)
    bird_cfg.write_text(text)
    toml = mesh.config_path(sp)
    ours = toml.read_text()
    anchor = f'address = "{n80.address}"\n'
    assert anchor in ours
    ours = ours.replace(anchor, anchor + "".join(f"{line}\n" for line in lines), 1)
    toml.write_text(ours)
    mesh.start_bird(n80)
    mesh.start_bird("node82")
    mesh.start_speaker(sp)
    return mesh


def bird_view(mesh: Lab, name: str) -> str:
    """BIRD .80's ``show protocols all`` for its session toward our speaker."""
    return mesh.birdc("node80", f"show protocols all {mesh.node(SPEAKER_NODE).protocol_name}")


def ours(mesh: Lab) -> str:
    """Our ``show protocols all`` for .80 ("" while the control socket is not up yet)."""
    if not mesh.control_socket(SPEAKER_NODE).exists():
        return ""
    return speaker_cli(mesh, "show", "protocols", "all", mesh.node("node80").protocol_name)


def test_receive_limit_restart_sends_cease_6_1_and_comes_back(lab: LabFactory) -> None:
    mesh = limited_lab(lab, [f"receive_limit = {LIMIT}", 'receive_limit_action = "restart"'])
    sp = mesh.node(SPEAKER_NODE)
    hit = f"hits route receive limit ({LIMIT}), action: restart"
    wait_until(lambda: any(hit in line for line in log_lines(mesh, sp)), 40.0, interval=0.2)
    assert any(hit in line for line in log_lines(mesh, sp)), log_lines(mesh, sp)[-20:]
    wait_until(
        lambda: "Maximum number of prefixes reached" in bird_view(mesh, "node80"), 10.0,
        interval=0.2,
    )
    view = bird_view(mesh, "node80")
    assert "Last error:       Received: Maximum number of prefixes reached" in view, view
    text = ours(mesh)
    assert f"  Receive limit:  {LIMIT}" in text and "    Action:       restart" in text, text
    # restart: after the error wait the session is re-established (and hits the limit again)
    wait_until(lambda: sum(hit in line for line in log_lines(mesh, sp)) >= 2, 60.0, interval=0.5)
    assert sum(hit in line for line in log_lines(mesh, sp)) >= 2
    assert any("Cease" in line and "Maximum" in line for line in log_lines(mesh, sp))


def test_import_limit_disable_stays_down_until_enable(lab: LabFactory) -> None:
    mesh = limited_lab(lab, [f"import_limit = {LIMIT}", 'import_limit_action = "disable"'])
    sp, n80 = mesh.node(SPEAKER_NODE), mesh.node("node80")
    name = n80.protocol_name
    wait_until(lambda: "Route limit exceeded" in ours(mesh), 40.0, interval=0.2)
    text = ours(mesh)
    assert re.search(rf"^{name}\s+BGP\s+\S+\s+down\b", text, re.M), text
    assert "Automatic shutdown: Route limit exceeded" in text, text
    assert f"  Import limit:   {LIMIT} [HIT]" in text and "    Action:       disable" in text
    wait_until(
        lambda: "Maximum number of prefixes reached" in bird_view(mesh, "node80"), 10.0,
        interval=0.2,
    )
    assert "Received: Maximum number of prefixes reached" in bird_view(mesh, "node80")
    time.sleep(12)  # longer than the error wait and connect delay: no automatic restart
    assert re.search(rf"^{name}\s+BGP\s+\S+\s+down\b", ours(mesh), re.M)
    assert not [p for p in EXTRA if p in table(mesh, sp)]  # the peer's routes went with it
    speaker_cli(mesh, "enable", name)

    def hits_now() -> list[str]:
        return [line for line in log_lines(mesh, sp) if "hits route import limit" in line]

    wait_until(lambda: len(hits_now()) >= 2, 40.0, interval=0.5)
    hits = hits_now()
    assert len(hits) >= 2, hits  # once before the disable, once after enable


# ----------------------------------------------------------------------- the hand-made peer


def minipeer(mesh: Lab) -> MiniPeer:
    sp, n80 = mesh.node(SPEAKER_NODE), mesh.node("node80")
    argv = [sys.executable, "-m", "integration.lab.minipeer", "--listen", n80.address]
    argv += ["--asn", str(n80.asn)]
    peer = MiniPeer(netns_exec_argv(mesh.netns(n80), argv), mesh.run_dir / "minipeer.txt")
    wait_until(lambda: "listening" in peer.lines(), 10.0, interval=0.1)
    assert "listening" in peer.lines(), peer.lines()
    mesh.start_speaker(sp)
    wait_until(lambda: "established" in peer.lines(), 30.0, interval=0.1)
    assert "established" in peer.lines(), peer.lines()
    return peer


def test_treat_as_withdraw_removes_the_route_and_keeps_the_session(lab: LabFactory) -> None:
    mesh = lab("seed", start_daemons=False)
    sp, n80 = mesh.node(SPEAKER_NODE), mesh.node("node80")
    prefix = "10.244.252.0/26"
    peer = minipeer(mesh)
    try:
        peer.command(f"announce {prefix} {n80.address}")
        via80 = {prefix: frozenset({n80.address})}
        wait_until(lambda: not problems(mesh, sp, via80), KERNEL_SYNC, interval=0.05)
        assert problems(mesh, sp, via80) == []
        peer.command(f"announce {prefix} {n80.address} 5")  # ORIGIN 5: RFC 7606 7.1
        wait_until(lambda: prefix not in table(mesh, sp), WITHDRAW_LIMIT + 1, interval=0.05)
        assert prefix not in table(mesh, sp)
        log = log_lines(mesh, sp)
        bad = [line for line in log if "treat-as-withdraw (RFC 7606)" in line]
        assert bad and "its routes are withdrawn, the session stays up (1 such so far)" in bad[-1]
        assert "received type 3" not in peer.lines()  # no NOTIFICATION
        assert "closed by peer" not in peer.lines()
        assert re.search(rf"^{n80.protocol_name}\s+BGP\s+\S+\s+up\b.*Established",
                         speaker_cli(mesh, "show", "protocols"), re.M)
        route = speaker_cli(mesh, "show", "route")  # our Loc-RIB: the route is gone
        assert prefix not in route, route
    finally:
        peer.stop()


def test_import_guard_keeps_bad_routes_out_of_the_kernel(lab: LabFactory) -> None:
    mesh = lab("seed", start_daemons=False)
    sp, n80 = mesh.node(SPEAKER_NODE), mesh.node("node80")
    good = "10.244.252.0/26"
    bad = {
        "0.0.0.0/0": (n80.address, "a default route"),
        "172.30.0.0/24": (n80.address, "outside every IP pool"),
        f"{sp.address}/32": (n80.address, "overlaps a protected network"),
        "10.244.251.0/26": (sp.address, "the next hop is one of this node's own addresses"),
    }
    peer = minipeer(mesh)
    try:
        for prefix, (via, _) in bad.items():
            peer.command(f"announce {prefix} {via}")
        peer.command(f"announce {sp.block} {n80.address}")  # our own block
        peer.command(f"announce {good} {n80.address}")
        via80 = {good: frozenset({n80.address}), sp.block: None}  # ours stays a blackhole
        wait_until(lambda: not problems(mesh, sp, via80), KERNEL_SYNC, interval=0.05)
        assert problems(mesh, sp, via80) == []
        time.sleep(2.5)  # one more scan: nothing else shows up late
        kernel = table(mesh, sp)
        for prefix in bad:
            got = kernel.get(prefix)
            assert got is None or got.get("protocol") != "bgp", (prefix, got)
        log = log_lines(mesh, sp)
        for prefix, (_, rule) in bad.items():
            assert any(
                f"{prefix} from {n80.protocol_name} not installed in the kernel" in line
                and rule in line
                for line in log
            ), (prefix, [line for line in log if "import guard" in line])
        shown = speaker_cli(mesh, "show", "route", "all", "for", "172.30.0.1")
        assert "Kernel: not installed (reject: import guard: outside every IP pool)" in shown
        assert "closed by peer" not in peer.lines() and "received type 3" not in peer.lines()
    finally:
        peer.stop()
