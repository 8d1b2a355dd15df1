# Helpers for the CLI acceptance scripts: start and stop a ferrostack, run the
# real `openstack` CLI, and check what it prints. Source it.
# Needs FERRO_BIN (the binary), FERRO_VENV (the venv), FERRO_WORK (scratch).

set -uo pipefail
trap "exit 130" INT TERM
export PATH="$FERRO_VENV/bin:$PATH"
CHECKS=0
FAILS=0
FERRO_PID=

log() { printf '  %s\n' "$*" >&2; }

check() { # check DESCRIPTION COMMAND...: the command must succeed
    local what=$1; shift
    CHECKS=$((CHECKS + 1))
    if out=$("$@" 2>&1); then log "ok   $what"; else FAILS=$((FAILS + 1)); log "FAIL $what"; printf '%s\n' "$out" | sed 's/^/       /' >&2; fi
}

check_fails() { # check_fails DESCRIPTION PATTERN COMMAND...: must fail, saying PATTERN
    local what=$1 pattern=$2; shift 2
    CHECKS=$((CHECKS + 1))
    if out=$("$@" 2>&1); then
        FAILS=$((FAILS + 1)); log "FAIL $what (it succeeded)"; printf '%s\n' "$out" | sed 's/^/       /' >&2
    elif grep -q -- "$pattern" <<<"$out"; then
        # (a here-string, not a pipe: under pipefail a writer that outlives
        # `grep -q` would turn a match into a failure)
        log "ok   $what"
    else
        FAILS=$((FAILS + 1)); log "FAIL $what (no '$pattern')"; printf '%s\n' "$out" | sed 's/^/       /' >&2
    fi
}

check_eq() { # check_eq DESCRIPTION EXPECTED ACTUAL
    CHECKS=$((CHECKS + 1))
    if [ "$2" = "$3" ]; then log "ok   $1"; else FAILS=$((FAILS + 1)); log "FAIL $1: expected '$2', got '$3'"; fi
}

# ferro_start STATE_DIR [ARGS...]: starts `ferrostack up`, waits for openrc.
ferro_start() {
    local state=$1; shift
    rm -f "$state/openrc"
    # FERRO_WRAP: a command to run it under, e.g. nsenter into a sandbox.
    ${FERRO_WRAP:-} "$FERRO_BIN" up --state-dir "$state" --ephemeral-ports --bcrypt-cost 4 "$@" >>"$state.log" 2>&1 &
    FERRO_PID=$!
    FERRO_LOGS="${FERRO_LOGS:-} $state.log"
    for _ in $(seq 1 200); do
        [ -f "$state/openrc" ] && return 0
        kill -0 "$FERRO_PID" 2>/dev/null || { cat "$state.log" >&2; return 1; }
        sleep 0.05
    done
    echo "ferrostack did not write $state/openrc in 10 s" >&2
    return 1
}

ferro_stop() {
    [ -n "$FERRO_PID" ] || return 0
    kill -TERM "$FERRO_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$FERRO_PID" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$FERRO_PID" 2>/dev/null || true
    wait "$FERRO_PID" 2>/dev/null || true
    FERRO_PID=
}

finish() {
    ferro_stop
    # A failure shows what the clouds warned of, for a run that can't be
    # looked at again (CI's).
    if [ "$FAILS" -ne 0 ]; then
        local f
        for f in ${FERRO_LOGS:-}; do
            [ -f "$f" ] || continue
            echo "  the last warnings and errors of $f:" >&2
            grep -aE 'WARN|ERROR' "$f" | tail -25 | cut -c1-400 | sed 's/^/       /' >&2
        done
    fi
    echo "$(basename "$0"): $((CHECKS - FAILS)) passed, $FAILS failed" >&2
    [ "$FAILS" -eq 0 ]
}

# Kills the qemu processes of a state directory, by the pids in its pid
# files (never by pattern), and removes their sockets.
ferro_kill_vms() {
    local state=$1 pidfile pid
    for pidfile in "$state"/instances/*/qemu.pid; do
        [ -f "$pidfile" ] || continue
        pid=$(cat "$pidfile")
        if [ -n "$pid" ] && grep -q "$(basename "$(dirname "$pidfile")")" "/proc/$pid/cmdline" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
}

# Removes what a cloud's Linux dataplane made, by the names its ledger and
# pid files record (never by pattern): dnsmasq and HAProxy processes, router,
# DHCP and load-balancer namespaces, and their run directory.
ferro_cleanup_dataplane() {
    local state=$1 pidfile pid ns run_dir
    run_dir=$(cat "$state/dataplane/run-dir" 2>/dev/null)
    for pidfile in ${run_dir:-/nonexistent}/dhcp/*/pid; do
        [ -f "$pidfile" ] || continue
        pid=$(cat "$pidfile")
        if [ -n "$pid" ] && grep -q "$pidfile" "/proc/$pid/cmdline" 2>/dev/null; then kill "$pid" 2>/dev/null || true; fi
    done
    for pidfile in ${run_dir:-/nonexistent}/lb/*/pid; do
        [ -f "$pidfile" ] || continue
        pid=$(cat "$pidfile")
        if [ -n "$pid" ] && grep -q "$pidfile" "/proc/$pid/cmdline" 2>/dev/null; then kill "$pid" 2>/dev/null || true; fi
    done
    if [ -f "$state/dataplane/ledger.json" ]; then
        for ns in $(python3 -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))["namespaces"]))' "$state/dataplane/ledger.json" 2>/dev/null); do
            ip netns del "$ns" 2>/dev/null || true
        done
    fi
    [ -n "$run_dir" ] && rm -rf "$run_dir"
    return 0
}

# wait_for DESCRIPTION SECONDS COMMAND...: retries until the command succeeds.
wait_for() {
    local what=$1 secs=$2; shift 2
    CHECKS=$((CHECKS + 1))
    local end=$((SECONDS + secs))
    while [ $SECONDS -lt $end ]; do
        if "$@" >/dev/null 2>&1; then log "ok   $what"; return 0; fi
        sleep 1
    done
    FAILS=$((FAILS + 1))
    log "FAIL $what (not within ${secs}s)"
    "$@" 2>&1 | tail -5 | sed 's/^/       /' >&2
    return 1
}
