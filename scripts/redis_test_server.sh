#!/usr/bin/env bash
# Throwaway Redis server for the test suite (the Celery broker of the distributed job mode).
#
# Normally sourced by scripts/test.sh, which calls:
#   redis_test_server_start   # start redis-server; exports LOYALTY_TEST_REDIS_URL
#   redis_test_server_stop    # stop the server and delete its temp dir (idempotent)
#
# It can also be run directly, for local development:
#   bash scripts/redis_test_server.sh                      # start, print the URL, wait for Ctrl-C
#   bash scripts/redis_test_server.sh python3 -m pytest   # run a command with the server up
#
# Settings (environment):
#   REDIS_SERVER      the redis-server binary (default: redis-server on PATH)
#   REDIS_TEST_PORT   port to listen on (default: first free port from 56379 up)
#
# The server listens on 127.0.0.1 only, keeps nothing on disk (no RDB snapshots, no AOF)
# and runs in the foreground as a child of this shell, so stopping it is a plain kill of
# the pid we started.

# shellcheck source-path=SCRIPTDIR source=test_server_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/test_server_lib.sh"

REDIS_TEST_TMPDIR=""
REDIS_TEST_PID=""
REDIS_TEST_LOG=""

# Print the redis-server binary to use, or return 1 if there is none.
redis_find_server() {
    local server="${REDIS_SERVER:-redis-server}"
    command -v "$server" 2>/dev/null || return 1
}

# True if the Redis server listening on 127.0.0.1:$1 is process $2 (so an answer from some
# other server that already had the port does not count).
_redis_is_ours() {
    python3 - "$1" "$2" <<'EOF' 2>/dev/null
import socket, sys
port, pid = int(sys.argv[1]), sys.argv[2]
with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
    s.sendall(b"INFO server\r\n")
    data = b""
    while b"process_id:" not in data or not data.endswith(b"\r\n"):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
sys.exit(0 if f"process_id:{pid}\r\n" in data.decode(errors="replace") else 1)
EOF
}

redis_test_server_start() {
    local server
    if ! server="$(redis_find_server)"; then
        echo "redis_test_server: no redis-server found; install the 'redis-server' package" \
             "or set REDIS_SERVER" >&2
        return 1
    fi
    REDIS_TEST_TMPDIR="$(mktemp -d "${TMPDIR:-/tmp}/redis_test.XXXXXX")"
    REDIS_TEST_LOG="$REDIS_TEST_TMPDIR/redis.log"

    local port="${REDIS_TEST_PORT:-56379}" attempt started=0 _
    for attempt in 1 2 3 4 5; do
        if [[ -z "${REDIS_TEST_PORT:-}" ]]; then
            port="$(test_server_free_port "$port")"
        fi
        # No config file: everything on the command line. save "" and appendonly no mean
        # nothing is ever written to disk; dir points at our temp dir all the same.
        "$server" --bind 127.0.0.1 --port "$port" --protected-mode yes \
            --save "" --appendonly no --dir "$REDIS_TEST_TMPDIR" \
            --daemonize no --loglevel warning --databases 16 \
            >"$REDIS_TEST_LOG" 2>&1 </dev/null &
        REDIS_TEST_PID=$!
        for _ in $(seq 100); do
            if _redis_is_ours "$port" "$REDIS_TEST_PID"; then
                started=1
                break
            fi
            test_server_pid_running "$REDIS_TEST_PID" || break
            sleep 0.05
        done
        [[ $started -eq 1 ]] && break
        # Not up within 5 s: make sure it is gone before trying again or giving up.
        if test_server_pid_running "$REDIS_TEST_PID"; then
            kill -KILL "$REDIS_TEST_PID" 2>/dev/null || true
        fi
        wait "$REDIS_TEST_PID" 2>/dev/null || true
        # Lost a race for the port to another process? Try the next one.
        if [[ -z "${REDIS_TEST_PORT:-}" ]] &&
                grep -qi "address already in use\|could not create server tcp" \
                "$REDIS_TEST_LOG" 2>/dev/null; then
            echo "redis_test_server: port $port taken, retrying (attempt $attempt)" >&2
            REDIS_TEST_PID=""
            port=$((port + 1))
            continue
        fi
        break
    done
    if [[ $started -ne 1 ]]; then
        cat "$REDIS_TEST_LOG" >&2 2>/dev/null || true
        REDIS_TEST_PID=""
        echo "redis_test_server: failed to start Redis on 127.0.0.1:$port" >&2
        return 1
    fi
    REDIS_TEST_PORT="$port"
    export LOYALTY_TEST_REDIS_URL="redis://127.0.0.1:$port/0"
    echo "redis_test_server: Redis $("$server" --version | awk '{print $3}' | sed 's/^v=//')" \
         "up on 127.0.0.1:$port (pid $REDIS_TEST_PID)"
    echo "redis_test_server: LOYALTY_TEST_REDIS_URL=$LOYALTY_TEST_REDIS_URL"
}

# Stop the server (SIGTERM, then SIGKILL) and remove its temp dir. Safe to call more than
# once and after a failed start. Never fails.
redis_test_server_stop() {
    [[ -n "$REDIS_TEST_TMPDIR" ]] || return 0
    if [[ -n "$REDIS_TEST_PID" ]]; then
        local pid="$REDIS_TEST_PID"
        if test_server_pid_running "$pid"; then
            kill -TERM "$pid" 2>/dev/null || true
            test_server_reap "$pid" 5
        fi
        wait "$pid" 2>/dev/null || true
        echo "redis_test_server: stopped Redis (pid $pid)"
    fi
    rm -rf "$REDIS_TEST_TMPDIR"
    REDIS_TEST_TMPDIR=""
    REDIS_TEST_PID=""
}

# Executed directly rather than sourced.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    test_server_main redis_test_server_start redis_test_server_stop redis_test_server "$@"
fi
