"""The README's lab command tells the truth: a mesh that is not all up is a failure.

``scripts/lab.sh`` ends its report with a one-line verdict and exits non-zero when a node's
daemon is not running, a session is not Established or a pod does not answer
(integration/lab_up.py).  These tests break a running lab on purpose and read the verdict.
"""

from __future__ import annotations

import signal

import pytest

from integration import lab_up
from integration.conftest import LabFactory


def test_a_mesh_that_is_all_up_gets_an_all_up_verdict(
    lab: LabFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    mesh = lab("seed")
    mesh.wait_established(60)
    problems = lab_up.report(mesh, timeout=20)
    assert problems == []
    assert lab_up.verdict(problems, 3).startswith("VERDICT: all up: 3 nodes")
    out = capsys.readouterr().out
    assert "all sessions Established" in out and "LOST" not in out


def test_a_dead_speaker_makes_the_verdict_fail(lab: LabFactory) -> None:
    mesh = lab("seed")
    mesh.wait_established(60)
    (speaker,) = mesh.speaker_nodes()
    mesh.kill_speaker(speaker, signal.SIGKILL)
    problems = lab_up.report(mesh, timeout=3)
    text = lab_up.verdict(problems, 3)
    assert text.startswith("VERDICT: NOT all up")
    assert f"speaker on {speaker.name} not running" in text
    assert "sessions not Established" in text


def test_dual_stack_verdict_covers_both_families(
    lab: LabFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    mesh = lab("bird", dual_stack=True)
    mesh.wait_established(60)
    problems = lab_up.report(mesh, timeout=20)
    assert problems == []
    assert lab_up.verdict(problems, 3, dual_stack=True).startswith(
        "VERDICT: all up: 3 nodes, dual stack: every IPv4 and IPv6 session Established"
    )
    out = capsys.readouterr().out
    assert "all IPv4 and IPv6 sessions Established" in out and "LOST" not in out
    assert out.count("IPv6 BGP status") == 3 and "No IPv6 peers found" not in out
    assert "| fd00:192:168::81 | node-to-node mesh | up" in out
    assert "==== pod to pod ping6" in out
    assert "from fd00:10:244::9881 -> fd00:10:244::2a41 ok" in out

    # bird6 alone dies on .82: IPv4 is all up, and still the verdict fails, naming IPv6
    victim = mesh.node("node82")
    mesh.kill_bird(victim, signal.SIGKILL, family=6)
    mesh.exec(victim, ["ip", "-6", "route", "del", str(victim.pod_address6)])
    problems = lab_up.report(mesh, timeout=3)
    text = lab_up.verdict(problems, 3, dual_stack=True)
    assert text.startswith("VERDICT: NOT all up"), text
    assert "bird6 on node82 not running" in text
    assert "node80->Mesh_fd00_192_168__82" in text and "Mesh_192_168_0_82" not in text
    assert "pods not answering over IPv6: fd00:10:244::9881->fd00:10:244::6741" in text
    assert "pods not answering:" not in text  # IPv4 pods all answer
