# tests/lib.sh - sourced by the integration tests: TAP output, temp dirs,
# background processes that are always cleaned up.
# Environment from tests/run-suite.sh: TW_BIN_DIR (programs), TW_TEST_DIR
# (test binaries, the stand-in), TW_VARIANT (plain or asan).

set -u
TW_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
: "${TW_BIN_DIR:=$TW_ROOT/bin}"
: "${TW_TEST_DIR:=$TW_ROOT/build/obj/tests}"
: "${TW_VARIANT:=plain}"
TW_FIXTURES=$TW_ROOT/tests/fixtures
export TW_FIXTURES
# The pinned tools (mk/kubectl.sh, mk/promtool.sh) come before the machine's own.
[ -d "$TW_ROOT/build/tools/bin" ] && PATH=$TW_ROOT/build/tools/bin:$PATH

_tap_n=0
_tap_failed=0
_tw_pids=()
TW_TMP=$(mktemp -d /tmp/tw-it-XXXXXX)

_tw_cleanup() {
    local p
    # "|| true": a caller under set -e must not take a process already gone for a failure.
    for p in "${_tw_pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${_tw_pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$TW_TMP"
}
trap _tw_cleanup EXIT

# ok CONDITION-EXIT-CODE DESCRIPTION: prints one TAP line.
tap() {
    local rc=$1; shift
    _tap_n=$((_tap_n + 1))
    if [ "$rc" -eq 0 ]; then
        echo "ok $_tap_n - $*"
    else
        echo "not ok $_tap_n - $*"
        _tap_failed=$((_tap_failed + 1))
    fi
}

# check DESCRIPTION -- COMMAND...: runs COMMAND and records a TAP line.
check() {
    local desc=$1; shift
    [ "${1:-}" = "--" ] && shift
    "$@"
    tap $? "$desc"
}

# expect_eq DESCRIPTION EXPECTED ACTUAL
expect_eq() {
    if [ "$2" = "$3" ]; then
        tap 0 "$1"
    else
        tap 1 "$1"
        echo "#   expected: $(printf '%q' "$2")"
        echo "#   actual:   $(printf '%q' "$3")"
    fi
}

# bg COMMAND...: starts COMMAND in the background, killed at exit. Sets BG_PID.
bg() {
    "$@" &
    BG_PID=$!
    _tw_pids+=("$BG_PID")
}

# wait_file PATH [SECONDS]: waits until PATH exists and is non-empty.
wait_file() {
    local i=0 limit=$(( ${2:-10} * 20 ))
    while [ ! -s "$1" ]; do
        i=$((i + 1))
        [ $i -gt $limit ] && return 1
        sleep 0.05
    done
}

# ---- topowire-webhook serve, for the suites that drive it ----
#
#   start_hook LOG [ARGS...]    starts `topowire-webhook serve --listen 127.0.0.1:0
#                               --metrics-listen 127.0.0.1:0 --log-format json HOOK_ARGS... ARGS...`
#                               (output into LOG) behind the command HOOK_PREFIX (an array: env,
#                               valgrind, ...), waits up to 30 s for its "serving" line and sets
#                               PORT, MPORT (null without a metrics listener) and HOOK_PID;
#                               prints LOG as TAP comments and returns 1 when it does not start
#   stop_hook                   SIGTERM, wait, return the exit status
#   ready_code                  the HTTP status of /readyz
#   wait_ready [SECONDS]        waits (10 s) until /readyz answers 200
#   metric NAME                 the value of NAME (with its {labels}, if any) from /metrics
#
# HOOK_ARGS (an array) holds what a suite gives every start, e.g. its certificate and kubeconfig.
start_hook() {
    local log=$1 i=0; shift
    bg ${HOOK_PREFIX[@]+"${HOOK_PREFIX[@]}"} "$TW_BIN_DIR/topowire-webhook" serve \
        --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --log-format json \
        ${HOOK_ARGS[@]+"${HOOK_ARGS[@]}"} "$@" >"$log" 2>&1
    HOOK_PID=$BG_PID
    until grep -q '"msg":"serving"' "$log" 2>/dev/null; do
        i=$((i + 1))
        if [ $i -gt 600 ] || ! kill -0 "$HOOK_PID" 2>/dev/null; then
            echo "# the server did not start:"; sed 's/^/#   /' "$log"; return 1
        fi
        sleep 0.05
    done
    PORT=$(grep -m1 '"msg":"serving"' "$log" | jq -r .port)
    MPORT=$(grep -m1 '"msg":"serving"' "$log" | jq -r .metrics_port)
}

stop_hook() {
    kill -TERM "$HOOK_PID" 2>/dev/null
    wait "$HOOK_PID" 2>/dev/null
}

ready_code() { curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/readyz"; }

wait_ready() {
    local i=0 limit=$(( ${1:-10} * 20 ))
    until [ "$(ready_code)" = 200 ]; do
        i=$((i + 1)); [ $i -gt $limit ] && return 1; sleep 0.05
    done
}

metric() {
    curl -s --max-time 10 "http://127.0.0.1:$MPORT/metrics" | awk -v n="$1" '$1 == n {print $2}'
}

# done_testing: prints the plan and exits non-zero when a test failed.
done_testing() {
    echo "1..$_tap_n"
    [ "$_tap_failed" -eq 0 ]
}
