"""Hardening #1 against a peer that never sends End-of-RIB: a withdrawn route leaves our kernel
at once.

BIRD 1.6.8 sends End-of-RIB to every peer that advertises graceful restart, and our speaker
always does, so the peer here is ``integration/lab/minipeer.py``: a hand-made BGP speaker
without graceful restart that announces and withdraws on command and never sends End-of-RIB.
It runs in .80's namespace (BIRD is not started there); .82 is not started either.  With such
a peer our bridge never converges before ``convergence_wait`` (240 s); before the fix every
withdrawal waited that long.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from integration.conftest import LabFactory
from integration.lab import wait_until
from integration.lab.core import REPO_ROOT
from integration.lab.netns import netns_exec_argv
from integration.test_speaker_kernel import (
    KERNEL_SYNC,
    SPEAKER_NODE,
    WITHDRAW_LIMIT,
    log_lines,
    problems,
    speaker_cli,
    table,
)

PREFIX = "10.244.252.0/26"


class MiniPeer:
    """The minimal peer running in a lab namespace; commands on stdin, lines on stdout."""

    def __init__(self, argv: list[str], out: Path) -> None:
        self.out = out
        with out.open("wb") as sink:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=sink, stderr=subprocess.STDOUT, cwd=REPO_ROOT
            )

    def lines(self) -> list[str]:
        return self.out.read_text(errors="replace").splitlines()

    def command(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode() + b"\n")
        self.proc.stdin.flush()

    def stop(self) -> None:
        """End it by its PID (ip netns exec execs in place: it is the peer itself)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def test_peer_without_eor_withdrawn_route_leaves_kernel_at_once(lab: LabFactory) -> None:
    mesh = lab("seed", start_daemons=False)
    sp, n80 = mesh.node(SPEAKER_NODE), mesh.node("node80")
    argv = [sys.executable, "-m", "integration.lab.minipeer", "--listen", n80.address]
    argv += ["--asn", str(n80.asn)]
    peer = MiniPeer(netns_exec_argv(mesh.netns(n80), argv), mesh.run_dir / "minipeer.txt")
    try:
        wait_until(lambda: "listening" in peer.lines(), 10.0, interval=0.1)
        assert "listening" in peer.lines(), peer.lines()
        mesh.start_speaker(sp)  # .81 dials .80 (Calico's rule: .80 is passive toward .81)
        wait_until(lambda: "established" in peer.lines(), 30.0, interval=0.1)
        assert "established" in peer.lines(), peer.lines()
        via80 = {PREFIX: frozenset({n80.address})}
        peer.command(f"announce {PREFIX} {n80.address}")
        wait_until(lambda: not problems(mesh, sp, via80), KERNEL_SYNC, interval=0.05)
        assert problems(mesh, sp, via80) == []
        peer.command(f"withdraw {PREFIX}")
        started = time.monotonic()
        wait_until(lambda: PREFIX not in table(mesh, sp), WITHDRAW_LIMIT, interval=0.05)
        took = time.monotonic() - started
        assert PREFIX not in table(mesh, sp), f"withdrawn route still there after {took:.1f} s"
        # No End-of-RIB came, so the bridge had not converged: the delete did not wait for it.
        kernel = speaker_cli(mesh, "show", "kernel")
        assert "waiting before first sync" in kernel, kernel
        log = log_lines(mesh, sp)
        assert not any("End-of-RIB" in line and "received" in line.lower() for line in log)
        assert any(f"kernel deleted {PREFIX}" in line and "withdrawn" in line for line in log)
        assert "closed by peer" not in peer.lines()  # the session stayed up throughout
    finally:
        peer.stop()
