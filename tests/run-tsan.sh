#!/usr/bin/env bash
# tests/run-tsan.sh TEST... - run unit tests built under ThreadSanitizer (`make tsan` builds them
# into build/tsan/tests) with TAP output. A data race stops the program with exit code 66, which
# counts as a failure even without a "not ok" line. With $TW_RESULTS set the results are counted
# into $TW_RESULTS/count-tsan-TEST for run-all.sh, as run-suite.sh does for the other suites.
set -uo pipefail
cd "$(dirname "$0")/.."
export TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1 ${TSAN_OPTIONS:-}"
status=0
for t in "$@"; do
    bin=build/tsan/tests/$t
    log=$(mktemp)
    CMOCKA_MESSAGE_OUTPUT=TAP timeout 300 "$bin" >"$log" 2>&1
    rc=$?
    cat "$log"
    p=$(grep -c '^ok ' "$log")
    f=$(grep -c '^not ok ' "$log")
    why=""
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1; why="exited $rc without a failing test (a ThreadSanitizer report or a crash)"
    fi
    if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
        f=1; why="ran no test"
    fi
    if [ -n "${TW_RESULTS:-}" ]; then
        echo "$p $f" >"$TW_RESULTS/count-tsan-$t"
        grep '^not ok ' "$log" | sed "s|^|tsan/$t: |" >>"$TW_RESULTS/failures-tsan"
        [ -n "$why" ] && echo "tsan/$t: $why" >>"$TW_RESULTS/failures-tsan"
    fi
    printf '%-40s %3d passed, %d failed\n' "tsan/$t" "$p" "$f"
    [ -n "$why" ] && echo "# tsan/$t: $why"
    [ "$f" -gt 0 ] && status=1
    rm -f "$log"
done
exit $status
