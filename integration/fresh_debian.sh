#!/usr/bin/env bash
# The newcomer's check: do the README's two commands work on a stock Debian 12?
#
#   bash integration/fresh_debian.sh [--keep] [--skip-tests] [--root DIR]      (root; needs apt)
#
# Builds a fresh Debian 12 (bookworm) root file system with debootstrap (minbase, plus python3
# and git: nothing else), clones this checkout's HEAD into it, and inside a chroot in a private
# mount namespace runs, as a new user would:
#   bash scripts/lab.sh         -> must print a mesh with every session Established, every pod
#                                  ping answered, and exit 0
#   bash scripts/lab.sh down    -> must clean up (no lab namespace left)
#   bash scripts/test.sh        -> must pass
# then builds a wheel and installs it into a fresh venv to check that the daemon runs without
# the lab and the tests.  It uses the host's apt sources (whatever mirror the host is set up
# with), removes the root file system at the end unless --keep, and prints one verdict line.
# Lab namespaces made inside the chroot are kernel objects like any other: the lab removes them,
# and the private mount namespace drops their bind mounts when the chroot exits.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

keep=0
run_tests=1
root=""
while [ $# -gt 0 ]; do
    case "$1" in
        --keep) keep=1 ;;
        --skip-tests) run_tests=0 ;;
        --root) root="$2"; shift ;;
        *) echo "usage: $0 [--keep] [--skip-tests] [--root DIR]" >&2; exit 2 ;;
    esac
    shift
done
[ "$(id -u)" -eq 0 ] || { echo "error: needs root (debootstrap, chroot, namespaces)" >&2; exit 2; }
[ -n "$root" ] || root=$(mktemp -d /var/tmp/speaker-fresh-debian.XXXXXX)
log_dir=$(mktemp -d /tmp/speaker-fresh-log.XXXXXX)

say() { printf '\n==== %s\n' "$*"; }
verdict() { echo; echo "FRESH DEBIAN VERDICT: $*"; }

cleanup() {
    if [ "$keep" -eq 0 ]; then
        # Unmounts happened with the private mount namespace; remove the tree (stay on this fs).
        rm -rf --one-file-system "$root" 2>/dev/null || true
    else
        echo "kept the root file system in $root"
    fi
}
trap cleanup EXIT

# The host's apt mirror (first deb URI of the sources), so the chroot uses what the host can reach.
mirror=$(
    { grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null || true;
      grep -h '^deb ' /etc/apt/sources.list 2>/dev/null || true; } \
        | awk '{print $2}' | grep -v security | head -n 1 || true
)
[ -n "$mirror" ] || { echo "error: no apt mirror found in the host's apt sources" >&2; exit 1; }

if ! command -v debootstrap >/dev/null 2>&1; then
    say "installing debootstrap on the host"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

say "debootstrap --variant=minbase bookworm $root"
start=$(date +%s)
if ! debootstrap --variant=minbase bookworm "$root" "$mirror" >"$log_dir/debootstrap.log" 2>&1; then
    tail -n 20 "$log_dir/debootstrap.log"
    verdict "FAILED: debootstrap"
    exit 1
fi
# Same apt sources as the host (its mirrors, security and updates suites).
rm -f "$root/etc/apt/sources.list"
mkdir -p "$root/etc/apt/sources.list.d"
cp /etc/apt/sources.list.d/*.sources "$root/etc/apt/sources.list.d/" 2>/dev/null || true
if [ -f /etc/apt/sources.list ]; then cp /etc/apt/sources.list "$root/etc/apt/sources.list"; fi
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
# The host's local CAs (a TLS-inspecting proxy's, for instance): ca-certificates in the chroot
# adds them to its bundle, so pip reaches the package index as it does on the host.
if [ -d /usr/local/share/ca-certificates ]; then
    mkdir -p "$root/usr/local/share/ca-certificates"
    cp -r /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/"
fi

# Where a newcomer might clone it (no trailing slash here: tests/test_standalone.py forbids this
# checkout's own path followed by "/" in tracked files, and inside the chroot this is that path).
clone=/opt/speaker-newcomer
say "cloning HEAD of $REPO into the new system ($clone)"
mkdir -p "$root/opt"
git clone -q "$REPO" "$root$clone"
git -C "$root$clone" log --oneline -1

tests_cmd="echo '(tests skipped: --skip-tests)'"
# Everything but the Docker-backend subset: dockerd panics reading the cgroup hierarchy
# inside this chroot (a limit of the check, not of a fresh system; CI runs that subset).
[ "$run_tests" -eq 1 ] && tests_cmd="env SPEAKER_SKIP_DOCKER_BACKEND=1 bash scripts/test.sh"

inner=$(cat <<EOF
set -euo pipefail
mount -t proc proc /proc
mount --rbind /sys /sys
mount --rbind /dev /dev
mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts 2>/dev/null || true
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
echo "== the stock system: python3 and git only"
export DEBIAN_FRONTEND=noninteractive
unset PIP_FIND_LINKS PIP_CONSTRAINT VIRTUAL_ENV PYTHONPATH
apt-get update -qq
apt-get install -y -qq --no-install-recommends python3 git ca-certificates >/dev/null
python3 --version; git --version
python3 -m pip --version 2>&1 | head -n 1 || true
cd $clone
echo "== bash scripts/lab.sh"
lab_rc=0; bash scripts/lab.sh || lab_rc=\$?
echo "LAB EXIT \$lab_rc"
echo "== bash scripts/lab.sh down"
bash scripts/lab.sh down
left=\$(ip netns list | grep -c '^spk' || true)
echo "LAB NAMESPACES LEFT \$left"
echo "== bash scripts/lab.sh again (a second run reinstalls nothing)"
lab2_rc=0; bash scripts/lab.sh >/tmp/lab2.log 2>&1 || lab2_rc=\$?
tail -n 1 /tmp/lab2.log; grep -c "installing" /tmp/lab2.log || true
bash scripts/lab.sh down >/dev/null
echo "LAB2 EXIT \$lab2_rc"
echo "== tests"
test_rc=0; $tests_cmd || test_rc=\$?
echo "TEST EXIT \$test_rc"
echo "== wheel: build, install into a fresh venv, run"
wheel_rc=0
(
  set -e
  .venv/bin/python -m pip install -q build
  rm -rf /tmp/dist && .venv/bin/python -m build --wheel --outdir /tmp/dist . >/tmp/build.log 2>&1
  python3 -m venv /tmp/wheel-venv
  /tmp/wheel-venv/bin/pip install -q /tmp/dist/*.whl
  /tmp/wheel-venv/bin/speaker --version
  /tmp/wheel-venv/bin/speaker check-config --config config/example.toml >/dev/null
  ! /tmp/wheel-venv/bin/python -c 'import pytest' 2>/dev/null
) || wheel_rc=\$?
echo "WHEEL EXIT \$wheel_rc"
[ "\$lab_rc" -eq 0 ] && [ "\$left" -eq 0 ] && [ "\$lab2_rc" -eq 0 ] && [ "\$test_rc" -eq 0 ] && [ "\$wheel_rc" -eq 0 ]
EOF
)

say "inside the chroot (private mount namespace)"
rc=0
# The new root is made a mount point of its own (ip netns needs "/" to be one, as on a real system).
unshare --mount --propagation private /bin/bash -c \
    'mount --bind "$1" "$1" && exec chroot "$1" /bin/bash -c "$2"' _ "$root" "$inner" 2>&1 \
    | tee "$log_dir/inside.log" || rc=$?
took=$(( $(date +%s) - start ))
summary=$(grep -E '^(LAB EXIT|LAB NAMESPACES LEFT|LAB2 EXIT|TEST EXIT|WHEEL EXIT|VERDICT:)' \
    "$log_dir/inside.log" | tr '\n' ';' | sed 's/;$//')
if [ "$rc" -eq 0 ]; then
    verdict "PASSED in ${took} s ($summary)"
else
    verdict "FAILED in ${took} s ($summary); full log: $log_dir/inside.log"
    exit 1
fi
