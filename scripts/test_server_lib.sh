# Shared by pg_test_server.sh and redis_test_server.sh (sourced, not run).

# Print the first port >= $1 on which 127.0.0.1 can be bound.
test_server_free_port() {
    python3 - "$1" <<'PY'
import socket, sys
start = int(sys.argv[1])
for port in range(start, start + 500):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # Like the servers themselves, ignore TIME_WAIT leftovers from earlier runs.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
    print(port)
    sys.exit(0)
sys.exit("no free port found")
PY
}

# True if process $1 exists and is not a zombie.
test_server_pid_running() {
    local state
    state="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" || return 1
    [[ -n "$state" && "$state" != Z && "$state" != X ]]
}

# Wait up to $2 seconds for process $1 to exit, then kill it outright.
test_server_reap() {
    local pid="$1" deadline=$((SECONDS + $2))
    while test_server_pid_running "$pid" && [[ $SECONDS -lt $deadline ]]; do
        sleep 0.05
    done
    if test_server_pid_running "$pid"; then
        kill -KILL "$pid" 2>/dev/null || true
    fi
}

# The stand-alone use of a server script: start it, then run "$@" with it up (or wait for
# Ctrl-C), and always stop it. $1 and $2 are the start and stop functions, $3 the name.
test_server_main() {
    local start="$1" stop="$2" name="$3"
    shift 3
    set -euo pipefail
    # shellcheck disable=SC2064  # the stop function's name is fixed now, on purpose
    trap "rc=\$?; set +e; $stop; exit \$rc" EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    "$start"
    if [[ $# -gt 0 ]]; then
        set +e
        "$@"
        exit $?
    fi
    echo "$name: press Ctrl-C to stop"
    while true; do sleep 3600 & wait $!; done
}
