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

# done_testing: prints the plan and exits non-zero when a test failed.
done_testing() {
    echo "1..$_tap_n"
    [ "$_tap_failed" -eq 0 ]
}
