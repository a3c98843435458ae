"""scripts/bootstrap.sh (sourced by the README's two commands) stops loudly when a step fails.

A stock Debian 12 refuses pip on the system Python (PEP 668) and may lack pip or venv, so the
script installs into .venv/.  These tests run it with stand-in ``python3`` programs on PATH to
check that a broken step ends the script non-zero with one clear ``error:`` line, instead of
going on with a half-installed project.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def fake_python(bindir: Path, body: str) -> None:
    """A ``python3`` shell script on a private PATH entry."""
    bindir.mkdir(parents=True, exist_ok=True)
    path = bindir / "python3"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def run_bootstrap(bindir: Path, venv: Path) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": f"{bindir}:/usr/bin:/bin",
        "SPEAKER_VENV": str(venv),
        "APT_PACKAGES": "",
        "HOME": os.environ.get("HOME", "/"),
    }
    return subprocess.run(
        ["bash", "-c", "set -euo pipefail; source scripts/bootstrap.sh; echo BOOTSTRAPPED $PY"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_an_old_python_stops_the_script(tmp_path: Path) -> None:
    fake_python(
        tmp_path / "bin",
        'case "$*" in *version_info*) exit 1;; -V) echo "Python 3.9.2";; *) exit 0;; esac\n',
    )
    got = run_bootstrap(tmp_path / "bin", tmp_path / "venv")
    assert got.returncode != 0
    assert "BOOTSTRAPPED" not in got.stdout
    assert "error: python3 is Python 3.9.2; speaker needs Python 3.11 or newer" in got.stderr


def test_a_failed_pip_install_stops_the_script(tmp_path: Path) -> None:
    # python3 -m venv DIR makes a venv whose python runs but whose pip install fails.
    venv_python = (
        '#!/bin/sh\\ncase "$*" in *pip*) echo "pip: no network" >&2; exit 1;; esac\\nexit 0\\n'
    )
    fake_python(
        tmp_path / "bin",
        'if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then\n'
        '  mkdir -p "$3/bin"\n'
        f"  printf '{venv_python}' > \"$3/bin/python\"\n"
        '  chmod +x "$3/bin/python"\n'
        "fi\n"
        "exit 0\n",
    )
    got = run_bootstrap(tmp_path / "bin", tmp_path / "venv")
    assert got.returncode != 0
    assert "BOOTSTRAPPED" not in got.stdout
    assert "pip: no network" in got.stderr
    assert f"error: pip install -e '.[test]' into {tmp_path / 'venv'} failed" in got.stderr


def test_a_working_environment_is_used_as_it_is(tmp_path: Path) -> None:
    """The happy path against the real interpreter: the venv is made and $PY points into it."""
    venv = tmp_path / "venv"
    fake_python(tmp_path / "bin", "exit 0\n")  # never asked to do anything real below
    (venv / "bin").mkdir(parents=True)
    # The venv's python: the interpreter running this test, which has the package installed.
    (venv / "bin" / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (venv / "bin" / "python").chmod(0o755)
    digest = subprocess.run(
        ["sha256sum", "pyproject.toml"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()[0]
    (venv / ".speaker-installed").write_text(digest + "\n")
    got = run_bootstrap(tmp_path / "bin", venv)
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip().endswith(f"BOOTSTRAPPED {venv}/bin/python")
    assert "installing" not in got.stdout  # nothing reinstalled when pyproject.toml is unchanged


def run_lab_script(tmp_path: Path, *args: str) -> list[str]:
    """scripts/lab.sh ARGS with a stand-in bootstrap.sh (prints what it would install) and a
    stand-in $PY (prints what it would run), as root (a stand-in ``id``)."""
    (tmp_path / "scripts").mkdir(parents=True)
    (tmp_path / "scripts" / "lab.sh").write_text((REPO / "scripts" / "lab.sh").read_text())
    (tmp_path / "scripts" / "bootstrap.sh").write_text(
        f'echo "APT_PACKAGES=$APT_PACKAGES"\nPY="{tmp_path}/bin/py"\n'
    )
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name, body in (("id", "echo 0\n"), ("py", 'echo "RUN $*"\n')):
        (bindir / name).write_text("#!/bin/sh\n" + body)
        (bindir / name).chmod(0o755)
    got = subprocess.run(
        ["bash", str(tmp_path / "scripts" / "lab.sh"), *args],
        env={"PATH": f"{bindir}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return got.stdout.splitlines()


def test_the_lab_script_installs_etcd_only_for_the_etcd_datastore(tmp_path: Path) -> None:
    plain = run_lab_script(tmp_path / "a", "--mix", "seed")
    assert plain == ["APT_PACKAGES=bird iproute2 procps", "RUN -m integration.lab_up up --mix seed"]
    etcd = "APT_PACKAGES=bird iproute2 procps etcd-server etcd-client openssl"
    for n, args in enumerate((["--datastore", "etcd"], ["--timeout", "9", "--datastore=etcd"])):
        got = run_lab_script(tmp_path / str(n), *args)
        assert got == [etcd, f"RUN -m integration.lab_up up {' '.join(args)}"]
    assert run_lab_script(tmp_path / "n", "--datastore", "none")[0] == plain[0]
    assert run_lab_script(tmp_path / "d", "down") == [plain[0], "RUN -m integration.lab_up down"]
