"""Shared fixtures for the unit tests (no root needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TESTDATA = REPO / "tests" / "data" / "captures"
"""Real BIRD 1.6.8 captures and their tshark dissections (tests/data/captures/README.md)."""


@pytest.fixture(scope="session")
def testdata() -> Path:
    """The directory of real BIRD 1.6.8 captures (tests/data/captures)."""
    if not TESTDATA.is_dir():
        pytest.fail(f"test captures not found at {TESTDATA}")
    return TESTDATA
