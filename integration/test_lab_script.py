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
