"""The installed daemon must not need test-only packages (they are not in the wheel's deps)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

PROBE = """
import importlib, pkgutil, sys
import speaker
for m in pkgutil.walk_packages(speaker.__path__, "speaker."):
    if m.name != "speaker.__main__":
        importlib.import_module(m.name)
print(sorted({k.split(".")[0] for k in sys.modules} & {TEST_ONLY}))
"""


def test_no_speaker_module_imports_a_test_only_package() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    test_only = {r.split("==")[0].replace("-", "_") for r in project["optional-dependencies"]
                 ["test"]}
    runtime = {r.split("==")[0].replace("-", "_") for r in project["dependencies"]}
    assert {"pytest", "hypothesis", "docker"} <= test_only and not test_only & runtime
    probe = PROBE.replace("{TEST_ONLY}", repr(test_only | {"_pytest"}))
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True,
                         text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stdout


def test_wheel_packages_only_the_speaker_package() -> None:
    found = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"]["find"]
    assert found["include"] == ["speaker*"]  # tests/ and integration/ stay out of the wheel
