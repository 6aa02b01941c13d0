#!/usr/bin/env bash
# The one command that sets up everything the test suite needs and runs it.
#
#   bash scripts/test.sh [pytest args...]
#
# Steps: install PostgreSQL, Redis, Chromium, PHP (CLI) and Noto fonts with apt (only what is
# missing; also python3-pip if python3 has no pip),
# pip install -e '.[test]', ruff check, start a throwaway PostgreSQL server
# (exports LOYALTY_TEST_POSTGRES_URL) and a throwaway Redis server (exports
# LOYALTY_TEST_REDIS_URL), run pytest, stop both servers and delete their data
# whatever happens. Exits with ruff's code if ruff fails, else pytest's code.
#
# Written for a fresh Debian bookworm machine running as root; also works as a
# normal user when PostgreSQL and Redis are already installed.
#
# Environment knobs:
#   FORCE_APT=1      run apt-get update/install even if PostgreSQL and Redis are present
#   SKIP_INSTALL=1   skip the apt and pip steps (fast local re-runs)
#   PG_TEST_PORT     fixed port for the test server (default: first free from 55432)
#   PG_BINDIR        PostgreSQL bin directory (default: newest /usr/lib/postgresql/*/bin)
#   REDIS_TEST_PORT  fixed port for the Redis test server (default: first free from 56379)
#   REDIS_SERVER     redis-server binary (default: redis-server on PATH)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

# shellcheck source-path=SCRIPTDIR source=python_setup.sh
source "$REPO_ROOT/scripts/python_setup.sh"
# shellcheck source-path=SCRIPTDIR source=pg_test_server.sh
source "$REPO_ROOT/scripts/pg_test_server.sh"
# shellcheck source-path=SCRIPTDIR source=redis_test_server.sh
source "$REPO_ROOT/scripts/redis_test_server.sh"

export DEBIAN_FRONTEND=noninteractive
export PIP_ROOT_USER_ACTION="${PIP_ROOT_USER_ACTION:-ignore}"

section() {
    printf '\n==================== %s ====================\n' "$*"
}

# shellcheck disable=SC2329  # invoked by the EXIT trap
cleanup() {
    local rc=$?
    set +e
    if [[ -n "${PG_TEST_TMPDIR:-}" || -n "${REDIS_TEST_TMPDIR:-}" ]]; then
        section "Teardown"
        redis_test_server_stop
        pg_test_server_stop
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

as_root() {
    if [[ $EUID -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "need root (or sudo) to run: $*" >&2
        return 1
    fi
}

# ---------------------------------------------------------------------------
section "System packages"
apt_pkgs=()
if ! pg_find_bindir >/dev/null; then
    apt_pkgs+=(postgresql)
fi
if ! redis_find_server >/dev/null; then
    apt_pkgs+=(redis-server)
fi
if ! command -v chromium >/dev/null 2>&1; then
    apt_pkgs+=(chromium)      # the widget's real-browser tests drive Debian's chromium
fi
if ! command -v php >/dev/null 2>&1; then
    apt_pkgs+=(php-cli)       # the WordPress plugin's tests lint and run its PHP
fi
# Fonts for the twelve languages, so the browser tests' screenshots are legible.
if ! { command -v fc-list >/dev/null && fc-list :lang=te | grep -q .; }; then
    apt_pkgs+=(fonts-noto-core)
fi
if ! { command -v fc-list >/dev/null && fc-list :lang=ja | grep -q .; }; then
    apt_pkgs+=(fonts-noto-cjk)
fi
if ! python3 -m pip --version >/dev/null 2>&1; then
    apt_pkgs+=(python3-pip)   # Debian's own python3 comes without pip
fi
if [[ "${FORCE_APT:-0}" == 1 && ${#apt_pkgs[@]} -eq 0 ]]; then
    apt_pkgs+=(postgresql redis-server chromium php-cli fonts-noto-core fonts-noto-cjk)
fi
if [[ "${SKIP_INSTALL:-0}" == 1 ]]; then
    echo "SKIP_INSTALL=1: skipping apt"
elif [[ ${#apt_pkgs[@]} -gt 0 ]]; then
    t0=$SECONDS
    echo "+ apt-get install ${apt_pkgs[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        -o Dpkg::Use-Pty=0 "${apt_pkgs[@]}"
    echo "apt took $((SECONDS - t0))s"
else
    echo "PostgreSQL already installed in $(pg_find_bindir), Redis as" \
         "$(redis_find_server) and chromium; skipping apt (FORCE_APT=1 to force)"
fi
if ! PG_BINDIR_FOUND="$(pg_find_bindir)"; then
    echo "PostgreSQL server binaries not found after install" >&2
    exit 1
fi
"$PG_BINDIR_FOUND/postgres" --version
if ! REDIS_SERVER_FOUND="$(redis_find_server)"; then
    echo "redis-server not found (install the redis-server package, or drop SKIP_INSTALL=1)" >&2
    exit 1
fi
"$REDIS_SERVER_FOUND" --version

# ---------------------------------------------------------------------------
section "Python packages"
python3 --version
if [[ "${SKIP_INSTALL:-0}" == 1 ]]; then
    echo "SKIP_INSTALL=1: skipping pip install"
else
    python_setup_pip
    t0=$SECONDS
    echo "+ python3 -m pip install -e '.[test]'"
    python3 -m pip install --progress-bar off -e '.[test]'
    echo "pip took $((SECONDS - t0))s"
fi

# ---------------------------------------------------------------------------
section "Lint (ruff)"
lint_dirs=()
for d in plugin_server integrations tests bench scripts; do
    [[ -d "$d" ]] && lint_dirs+=("$d")
done
if [[ ${#lint_dirs[@]} -gt 0 ]]; then
    echo "+ python3 -m ruff check ${lint_dirs[*]}"
    python3 -m ruff check "${lint_dirs[@]}"
else
    echo "nothing to lint"
fi

# ---------------------------------------------------------------------------
section "Test PostgreSQL server"
pg_test_server_start

section "Test Redis server"
redis_test_server_start

# ---------------------------------------------------------------------------
section "pytest"
echo "+ python3 -m pytest $*"
set +e
python3 -m pytest "$@"
rc=$?
set -e

section "Result"
echo "pytest exit code: $rc"
exit "$rc"
