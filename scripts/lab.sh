#!/usr/bin/env bash
# The README's first command: bring up the seed's mesh in network namespaces and show it.
#   bash scripts/lab.sh [--mix seed|bird|speaker] [--timeout 60]     (root)
#   bash scripts/lab.sh down                                         (tear it down)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "down" ]; then
    shift
    exec python3 -m integration.lab_up down "$@"
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "scripts/lab.sh: the lab builds network namespaces and needs root" >&2
    exit 2
fi
need_apt=()
for pkg in bird iproute2 procps; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || need_apt+=("$pkg")
done
if [ "${#need_apt[@]}" -gt 0 ]; then
    echo "== installing Debian packages: ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
if command -v systemctl >/dev/null 2>&1; then systemctl stop bird bird6 >/dev/null 2>&1 || true; fi
python3 -m pip install -q --disable-pip-version-check -e '.[test]' 2>&1 | grep -v -i warning || true
exec python3 -m integration.lab_up up "$@"
