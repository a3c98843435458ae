#!/usr/bin/env bash
# The project's one test command (README): installs what it needs on a fresh Debian 12 machine
# as root (Debian packages, then the package and its test extras in .venv/), then runs lint,
# type checks, unit tests and (as root) the BIRD lab tests.  Any failure stops it non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
APT_PACKAGES="bird iproute2 nftables procps tcpdump etcd-server etcd-client openssl chromium gobgpd" \
    source scripts/bootstrap.sh

echo "== ruff"
"$PY" -m ruff check speaker tests integration
echo "== mypy --strict"
"$PY" -m mypy
echo "== import-linter (layers, no I/O below the adapters, no cycles: pyproject.toml)"
"$(dirname "$PY")/lint-imports"

echo "== unit tests"
"$PY" -m pytest -q tests

if [ "$(id -u)" -eq 0 ]; then
    echo "== integration tests (network namespaces, BIRD 1.6.8)"
    "$PY" -m pytest -q integration
    if [ "${SPEAKER_SKIP_DOCKER_BACKEND:-0}" = 1 ]; then
        # Set only by integration/fresh_debian.sh: dockerd cannot start inside its chroot
        # (it panics reading the cgroup hierarchy); CI and a real machine run these.
        echo "== Docker backend tests skipped: SPEAKER_SKIP_DOCKER_BACKEND=1"
    else
        echo "== integration tests, BIRD nodes as Docker containers (--lab-backend docker)"
        "$PY" -m pytest -q integration --lab-backend docker \
            -k "test_lab_bird or test_lab_dual_stack or test_docker_lab or test_seed_mix_joins_the_mesh"
    fi
else
    echo "== integration tests skipped: they need root"
fi
