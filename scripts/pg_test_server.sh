#!/usr/bin/env bash
# Throwaway PostgreSQL server for the test suite.
#
# Normally sourced by scripts/test.sh, which calls:
#   pg_test_server_start   # initdb + start + createdb; exports LOYALTY_TEST_POSTGRES_URL
#   pg_test_server_stop    # stop the server and delete its data dir (idempotent)
#
# It can also be run directly, for local development:
#   bash scripts/pg_test_server.sh                      # start, print the URL, wait for Ctrl-C
#   bash scripts/pg_test_server.sh python3 -m pytest   # run a command with the server up
#
# Settings (environment):
#   PG_BINDIR      directory with initdb/pg_ctl (default: newest /usr/lib/postgresql/*/bin)
#   PG_TEST_PORT   port to listen on (default: first free port from 55432 up)
#   PG_TEST_DB     database to create (default: loyalty_test)
#
# The server listens on 127.0.0.1 only (and a Unix socket inside its temp dir),
# uses trust auth, fsync=off and max_connections=300. When run as root, every
# server command runs as the `postgres` OS user, because postgres refuses root.

# shellcheck source-path=SCRIPTDIR source=test_server_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/test_server_lib.sh"

PG_TEST_DB="${PG_TEST_DB:-loyalty_test}"
PG_TEST_TMPDIR=""
PG_TEST_DATADIR=""
PG_TEST_LOG=""

# Print the newest /usr/lib/postgresql/<ver>/bin that has initdb and pg_ctl,
# or PG_BINDIR if set. Returns 1 if none is found.
pg_find_bindir() {
    if [[ -n "${PG_BINDIR:-}" ]]; then
        [[ -x "$PG_BINDIR/initdb" && -x "$PG_BINDIR/pg_ctl" ]] || return 1
        echo "$PG_BINDIR"
        return 0
    fi
    local d best=""
    while IFS= read -r d; do
        [[ -x "$d/initdb" && -x "$d/pg_ctl" && -x "$d/postgres" ]] && best="$d"
    done < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V)
    [[ -n "$best" ]] || return 1
    echo "$best"
}

# Run a command as the server's OS user (postgres when we are root), from a
# directory that user can read, with a locale that always exists.
_pg_as_owner() {
    if [[ $EUID -eq 0 ]]; then
        (cd "$PG_TEST_TMPDIR" && LC_ALL=C LANG=C runuser -u postgres -- "$@")
    else
        (cd "$PG_TEST_TMPDIR" && LC_ALL=C LANG=C "$@")
    fi
}

pg_test_server_start() {
    local bindir
    if ! bindir="$(pg_find_bindir)"; then
        echo "pg_test_server: no PostgreSQL server binaries (initdb, pg_ctl) found;" \
             "install the 'postgresql' package or set PG_BINDIR" >&2
        return 1
    fi
    if [[ $EUID -eq 0 ]] && ! id -u postgres >/dev/null 2>&1; then
        echo "pg_test_server: creating the 'postgres' system user"
        useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
    fi

    PG_TEST_TMPDIR="$(mktemp -d "${TMPDIR:-/tmp}/pg_test.XXXXXX")"
    PG_TEST_DATADIR="$PG_TEST_TMPDIR/data"
    PG_TEST_LOG="$PG_TEST_TMPDIR/postgres.log"
    if [[ $EUID -eq 0 ]]; then
        chown postgres: "$PG_TEST_TMPDIR"
    fi
    chmod 700 "$PG_TEST_TMPDIR"

    echo "pg_test_server: initdb ($bindir) in $PG_TEST_DATADIR"
    if ! _pg_as_owner "$bindir/initdb" -D "$PG_TEST_DATADIR" -U postgres \
            --auth=trust --encoding=UTF8 --no-locale --no-instructions \
            >"$PG_TEST_TMPDIR/initdb.log" 2>&1; then
        cat "$PG_TEST_TMPDIR/initdb.log" >&2
        echo "pg_test_server: initdb failed" >&2
        return 1
    fi

    # Everything else goes on the pg_ctl command line (-o), so postgresql.conf
    # stays as initdb wrote it.
    local opts="-c listen_addresses=127.0.0.1"
    opts+=" -c unix_socket_directories=$PG_TEST_TMPDIR"
    opts+=" -c max_connections=300"
    opts+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    opts+=" -c shared_buffers=128MB"
    opts+=" -c log_min_messages=warning"

    local port="${PG_TEST_PORT:-55432}" attempt started=0
    for attempt in 1 2 3 4 5; do
        if [[ -z "${PG_TEST_PORT:-}" ]]; then
            port="$(test_server_free_port "$port")"
        fi
        if _pg_as_owner "$bindir/pg_ctl" -D "$PG_TEST_DATADIR" -l "$PG_TEST_LOG" \
                -w -t 60 -o "$opts -c port=$port" start >/dev/null; then
            started=1
            break
        fi
        # Lost a race for the port to another process? Try the next one.
        if [[ -z "${PG_TEST_PORT:-}" ]] && grep -q "could not bind\|could not create any TCP/IP sockets" \
                "$PG_TEST_LOG" 2>/dev/null; then
            echo "pg_test_server: port $port taken, retrying (attempt $attempt)" >&2
            port=$((port + 1))
            continue
        fi
        break
    done
    if [[ $started -ne 1 ]]; then
        cat "$PG_TEST_LOG" >&2 2>/dev/null || true
        echo "pg_test_server: failed to start PostgreSQL" >&2
        return 1
    fi
    PG_TEST_PORT="$port"
    PG_TEST_BINDIR="$bindir"

    if ! "$bindir/createdb" -h 127.0.0.1 -p "$port" -U postgres "$PG_TEST_DB"; then
        echo "pg_test_server: createdb $PG_TEST_DB failed" >&2
        return 1
    fi

    export LOYALTY_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:$port/$PG_TEST_DB"
    echo "pg_test_server: PostgreSQL $("$bindir/postgres" --version | awk '{print $3}')" \
         "up on 127.0.0.1:$port (pid $(head -n1 "$PG_TEST_DATADIR/postmaster.pid"))"
    echo "pg_test_server: LOYALTY_TEST_POSTGRES_URL=$LOYALTY_TEST_POSTGRES_URL"
}

# Stop the server (fast, then immediate, then SIGKILL) and remove its temp dir.
# Safe to call more than once and after a failed start. Never fails.
pg_test_server_stop() {
    [[ -n "$PG_TEST_TMPDIR" ]] || return 0
    local bindir="${PG_TEST_BINDIR:-}"
    if [[ -f "$PG_TEST_DATADIR/postmaster.pid" ]]; then
        local pid
        pid="$(head -n1 "$PG_TEST_DATADIR/postmaster.pid" 2>/dev/null || true)"
        if [[ -z "$bindir" ]]; then bindir="$(pg_find_bindir 2>/dev/null || true)"; fi
        if [[ -n "$bindir" ]]; then
            _pg_as_owner "$bindir/pg_ctl" -D "$PG_TEST_DATADIR" -m fast -w -t 20 stop \
                >/dev/null 2>&1 ||
            _pg_as_owner "$bindir/pg_ctl" -D "$PG_TEST_DATADIR" -m immediate -w -t 10 stop \
                >/dev/null 2>&1 || true
        fi
        if [[ "$pid" =~ ^[0-9]+$ ]]; then
            # pg_ctl returns once postmaster.pid is gone; give the process a
            # moment to exit (a zombie awaiting its reaper counts as gone).
            test_server_reap "$pid" 5
        fi
        echo "pg_test_server: stopped PostgreSQL (pid ${pid:-?})"
    fi
    rm -rf "$PG_TEST_TMPDIR"
    PG_TEST_TMPDIR=""
    PG_TEST_DATADIR=""
}

# Executed directly rather than sourced.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    test_server_main pg_test_server_start pg_test_server_stop pg_test_server "$@"
fi
