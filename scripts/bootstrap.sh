# Sourced by scripts/lab.sh and scripts/test.sh: install what the project needs on a stock
# Debian 12 (as root) and set $PY to the project's virtual environment's interpreter.
#
# Debian's Python is "externally managed" (PEP 668): pip refuses to install into it, and a
# stock system may have no pip at all.  So the package and its test extras go into a project
# virtual environment, .venv/ (python3-venv from apt where `python3 -m venv` cannot work), and
# every later command uses .venv/bin/python.  Running it again reinstalls only when
# pyproject.toml changed.  Every step that fails stops the caller with one clear line.
#
#   APT_PACKAGES="bird iproute2" source scripts/bootstrap.sh

die() {
    echo "error: $*" >&2
    exit 1
}

_apt_install() {
    # apt-get install "$@", updating the package lists first (a fresh system has none).
    [ "$(id -u)" -eq 0 ] || die "missing Debian packages ($*); run as root to install them"
    echo "== installing Debian packages: $*"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get update -qq >/tmp/speaker-apt.log 2>&1; then
        cat /tmp/speaker-apt.log >&2
        die "apt-get update failed (see above)"
    fi
    if ! apt-get install -y -qq --no-install-recommends "$@" >/tmp/speaker-apt.log 2>&1; then
        tail -n 20 /tmp/speaker-apt.log >&2
        die "apt-get install $* failed (see above)"
    fi
}

_missing_packages() {
    local pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || echo "$pkg"
    done
}

command -v python3 >/dev/null 2>&1 || _apt_install python3
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "python3 is $(python3 -V 2>&1); speaker needs Python 3.11 or newer"

# System packages: what the caller asks for, plus python3-venv when venv/ensurepip is missing.
need=()
if [ -n "${APT_PACKAGES:-}" ]; then
    # shellcheck disable=SC2086
    mapfile -t need < <(_missing_packages $APT_PACKAGES)
fi
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    need+=("python3-venv")
fi
if [ "${#need[@]}" -gt 0 ]; then
    _apt_install "${need[@]}"
fi
# BIRD's and etcd-server's Debian packages start system-wide daemons (etcd on 127.0.0.1:2379);
# the lab runs its own, so stop and disable those.
if command -v systemctl >/dev/null 2>&1; then
    systemctl stop bird bird6 >/dev/null 2>&1 || true
    systemctl disable --now etcd >/dev/null 2>&1 || true
fi

VENV="${SPEAKER_VENV:-$PWD/.venv}"
PY="$VENV/bin/python"
if [ ! -x "$PY" ] || ! "$PY" -c 'import sys' >/dev/null 2>&1; then
    echo "== creating the project virtual environment $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV" || die "python3 -m venv $VENV failed"
fi
stamp="$VENV/.speaker-installed"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || ! "$PY" -c 'import speaker, pyroute2, pytest' >/dev/null 2>&1; then
    echo "== installing speaker and its test extras into $VENV"
    if ! "$PY" -m pip install -q --disable-pip-version-check -e '.[test]' >/tmp/speaker-pip.log 2>&1; then
        tail -n 30 /tmp/speaker-pip.log >&2
        die "pip install -e '.[test]' into $VENV failed (see above)"
    fi
    echo "$want" >"$stamp"
fi
"$PY" -c 'import speaker, pyroute2' || die "the speaker package does not import from $VENV"
export PATH="$VENV/bin:$PATH"
