"""The fuzz harness (integration/fuzz.py): its checks pass on real traffic, catch a bug when
there is one, and a short coverage-guided slice of each target runs clean (CI's slice; the
long run's command and result are in docs/security.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from integration import fuzz
from speaker.wire import BgpError

REPO = Path(__file__).resolve().parents[1]


def test_every_seed_input_passes_both_checks() -> None:
    seeds = list(fuzz.seed_inputs())
    assert len(seeds) > 100
    for data in seeds:
        fuzz.check_codec(data)
        fuzz.check_session(data)


def test_the_codec_check_reports_an_exception_that_is_not_a_bgp_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(data: bytes, ctx: object) -> object:
        raise IndexError("a decoder bug")

    monkeypatch.setattr(fuzz, "decode_message", broken)
    with pytest.raises(IndexError):
        fuzz.check_codec(b"\x01" + b"\xff" * 16 + b"\x00\x13\x04")


def test_the_codec_check_rejects_a_notification_that_does_not_exist(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def wrong(data: bytes, ctx: object) -> object:
        raise BgpError(3, 99, b"", "made-up subcode")

    monkeypatch.setattr(fuzz, "decode_message", wrong)
    with pytest.raises(ValueError):
        fuzz.check_codec(b"\x01whatever")


def test_the_session_check_reports_an_escaping_exception(monkeypatch: pytest.MonkeyPatch) -> None:
    real = fuzz.session_at

    def session_at(established: bool) -> tuple[object, int]:
        session, conn = real(established)

        def explode(conn_id: int, data: bytes, now: float) -> None:
            raise KeyError("a state machine bug")

        monkeypatch.setattr(session, "receive_data", explode)
        return session, conn

    monkeypatch.setattr(fuzz, "session_at", session_at)
    with pytest.raises(KeyError):
        fuzz.check_session(b"\x07" + b"\xff" * 19)


def test_context_octet_bits() -> None:
    ctx = fuzz.context_of(0x01 | 0x02 | 0x10 | 0x20)
    assert ctx.asn4 and ctx.max_message_size == 65535
    assert ctx.addpath_receive == frozenset({fuzz.IPV4_UNICAST})
    assert ctx.addpath_send == frozenset({fuzz.IPV6_UNICAST})


@pytest.mark.parametrize("target", ["codec", "session"])
def test_a_short_coverage_guided_slice_runs_clean(target: str, tmp_path: Path) -> None:
    pytest.importorskip("atheris")
    runs = 20_000 if target == "codec" else 3_000
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "integration.fuzz",
            "--target",
            target,
            "--runs",
            str(runs),
            "--corpus",
            str(tmp_path / "corpus"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert f"stat::number_of_executed_units: {runs}" in done.stderr
