"""Shared fixtures for the unit tests (no root needed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SPEAKER_SHARED", REPO.parent / "shared"))
TESTDATA = SHARED / "testdata" / "bird-1.6.8"


@pytest.fixture(scope="session")
def testdata() -> Path:
    """The directory of real BIRD 1.6.8 captures (../shared/testdata/bird-1.6.8)."""
    if not TESTDATA.is_dir():
        pytest.fail(f"test captures not found at {TESTDATA} (set SPEAKER_SHARED)")
    return TESTDATA
