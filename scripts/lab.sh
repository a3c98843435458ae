#!/usr/bin/env bash
# The README's first command: bring up the seed's mesh in network namespaces and show it.
#   bash scripts/lab.sh [--mix seed|bird|speaker] [--timeout 60] [--backend netns|docker]  (root)
#                       [--datastore etcd]     (the mesh from Calico's etcd: docs/datastore.md)
#                       [--dual-stack]   (IPv4 and IPv6: bird6 beside bird; docs/lab.md)
#   bash scripts/lab.sh down                                                   (tear it down)
# Installs what it needs (Debian packages; the package in .venv/; etcd-server, etcd-client and
# openssl only with --datastore etcd), then exits non-zero with the reason when anything fails:
# an install, a node that does not come up, a session that is not Established or a pod that
# does not answer (in either family with --dual-stack).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
    echo "error: scripts/lab.sh builds network namespaces and needs root" >&2
    exit 2
fi
packages="bird iproute2 procps"
datastore=""
previous=""
for arg in "$@"; do
    case "$arg" in
        --datastore=*) datastore="${arg#--datastore=}" ;;
        *) [ "$previous" = "--datastore" ] && datastore="$arg" ;;
    esac
    previous="$arg"
done
if [ "$datastore" = "etcd" ]; then
    # etcd 3.4 and etcdctl for the datastore, openssl for its TLS certificates
    packages="$packages etcd-server etcd-client openssl"
fi
APT_PACKAGES="$packages" source scripts/bootstrap.sh
if [ "${1:-}" = "down" ]; then
    shift
    exec "$PY" -m integration.lab_up down "$@"
fi
exec "$PY" -m integration.lab_up up "$@"
