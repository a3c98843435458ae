#!/usr/bin/env bash
# The project's one test command (README): installs what it needs on a fresh Debian 12
# machine as root, then runs lint, type checks, unit tests and (as root) the BIRD lab tests.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
for pkg in bird iproute2 nftables procps; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || need_apt+=("$pkg")
done
if [ "${#need_apt[@]}" -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then
        echo "== installing Debian packages: ${need_apt[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
    else
        echo "== missing Debian packages (need root to install): ${need_apt[*]}"
    fi
fi
# BIRD's Debian package starts a system-wide daemon; the lab runs its own, so stop that one.
if command -v systemctl >/dev/null 2>&1; then systemctl stop bird bird6 >/dev/null 2>&1 || true; fi

echo "== installing speaker with its test extras"
python3 -m pip install -q --disable-pip-version-check -e '.[test]' 2>&1 | grep -v -i "warning" || true

echo "== ruff"
python3 -m ruff check speaker tests integration
echo "== mypy --strict"
python3 -m mypy

echo "== unit tests"
python3 -m pytest -q tests

if [ "$(id -u)" -eq 0 ]; then
    echo "== integration tests (network namespaces, BIRD 1.6.8)"
    python3 -m pytest -q integration
    echo "== integration tests, BIRD nodes as Docker containers (--lab-backend docker)"
    python3 -m pytest -q integration --lab-backend docker \
        -k "test_lab_bird or test_docker_lab or test_seed_mix_joins_the_mesh"
else
    echo "== integration tests skipped: they need root"
fi
