"""The project stands alone: no tracked file names a path of the machine it was written on.

A clone anywhere must work, so code, configs and docs may not point at the developers' folder
layout (the folder holding this checkout, a sibling ``shared/`` folder, a home directory).
Test data lives in ``tests/data/`` (see tests/data/captures/README.md).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def tracked_files() -> list[Path]:
    """Files under version control (every file but caches and the venv without git)."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
        ).stdout
        names = [n for n in out.decode().split("\0") if n]
    except (OSError, subprocess.CalledProcessError):
        skip = {".git", ".venv", "__pycache__", ".mypy_cache", ".ruff_cache", ".hypothesis"}
        names = [
            str(p.relative_to(REPO))
            for p in REPO.rglob("*")
            if p.is_file() and not skip.intersection(p.relative_to(REPO).parts)
        ]
    return [REPO / n for n in names]


GENERIC = {"/", "/tmp", "/root", "/home", "/srv", "/opt", "/var", "/usr", "/mnt", "/run"}
"""Folders too common to mean "this machine" (a clone in /tmp/main may mention /tmp/x.json)."""


def forbidden_paths() -> list[str]:
    """Absolute paths of this machine's layout that a tracked file must not name."""
    found = {str(REPO) + "/", "../shared/", "shared/testdata", "shared/design", "shared/seed"}
    if str(REPO.parent) not in GENERIC:
        found.add(str(REPO.parent) + "/")
    home = os.environ.get("HOME", "/")
    if home.rstrip("/") not in GENERIC:
        found.add(home.rstrip("/") + "/")
    return sorted(found)


def offending_lines(files: list[Path], needles: list[str]) -> list[str]:
    """``path:line: text`` for each line of a text file that names one of ``needles``."""
    hits = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # binary (captures) or gone
        for number, line in enumerate(text.splitlines(), 1):
            if any(n in line for n in needles):
                hits.append(f"{path}:{number}: {line.strip()[:120]}")
    return hits


def test_no_tracked_file_names_a_machine_path() -> None:
    files = [f for f in tracked_files() if f != Path(__file__).resolve()]
    assert len(files) > 50, "the file listing found too few files to mean anything"
    assert offending_lines(files, forbidden_paths()) == []


def test_the_check_finds_a_machine_path(tmp_path: Path) -> None:
    """The scan itself can fail: a file naming this checkout's parent folder is reported."""
    bad = tmp_path / "bad.md"
    bad.write_text(f"see {REPO.parent}/shared/seed for details\n")
    hits = offending_lines([bad], forbidden_paths())
    assert len(hits) == 1 and "shared/seed" in hits[0]


@pytest.mark.parametrize("name", ["lifecycle.pcap", "mesh-restart.pcap", "README.md"])
def test_test_data_is_in_the_repository(name: str) -> None:
    assert (REPO / "tests" / "data" / "captures" / name).is_file()
