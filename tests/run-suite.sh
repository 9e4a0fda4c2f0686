#!/usr/bin/env bash
# tests/run-suite.sh NAME [SAN=1] [SUITE...] - run the unit and integration tests of one
# build variant; with SUITEs (test_buf, binding, ...) only those. Each test program or script
# prints TAP ("ok"/"not ok" lines); this counts them into $TW_RESULTS/count-NAME-* for
# run-all.sh.
set -uo pipefail
cd "$(dirname "$0")/.."
name=$1; shift
if [ "${1:-}" = SAN=1 ]; then
    shift
    objdir=build/asan; bindir=build/asan/bin
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=86
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:exitcode=87
else
    objdir=build/obj; bindir=bin
fi
export TW_BIN_DIR="$PWD/$bindir" TW_TEST_DIR="$PWD/$objdir/tests" TW_VARIANT="$name"
results=${TW_RESULTS:?}
only=" $* "
# wanted SUITE: 0 when SUITE is to run (every suite when none was named).
wanted() { [ "$only" = "  " ] || [[ "$only" == *" $1 "* ]]; }

# count_tap SUITE LOGFILE EXITCODE: tally ok/not ok; a non-zero exit with no
# "not ok" line (a crash, a sanitizer report) counts as one more failure.
count_tap() {
    local suite=$1 log=$2 rc=$3 p f s
    # "ok N - ... # SKIP reason" is a skip: counted apart, its reason shown.
    s=$(grep -c '^ok .*# SKIP' "$log")
    p=$(($(grep -c '^ok ' "$log") - s))
    f=$(grep -c '^not ok ' "$log")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
        echo "$name/$suite: exited $rc without a failing test (crash or sanitizer report)" >>"$results/failures-$name"
    fi
    if [ "$p" -eq 0 ] && [ "$f" -eq 0 ] && [ "$s" -eq 0 ]; then
        f=1
        echo "$name/$suite: ran no test" >>"$results/failures-$name"
    fi
    grep '^not ok ' "$log" | sed "s|^|$name/$suite: |" >>"$results/failures-$name"
    grep '^ok .*# SKIP' "$log" | sed "s|^|$name/$suite: |" >>"$results/skips-$name"
    echo "$p $f $s" >"$results/count-$name-$suite"
    if [ "$s" -gt 0 ]; then
        printf '%-40s %3d passed, %d failed, %d skipped\n' "$name/$suite" "$p" "$f" "$s"
    else
        printf '%-40s %3d passed, %d failed\n' "$name/$suite" "$p" "$f"
    fi
}

for t in "$objdir"/tests/test_*; do
    [ -x "$t" ] || continue
    suite=$(basename "$t")
    wanted "$suite" || continue
    log="$results/$name-$suite.log"
    CMOCKA_MESSAGE_OUTPUT=TAP timeout 300 "$t" >"$log" 2>&1
    rc=$?
    count_tap "$suite" "$log" "$rc"
    [ "$rc" -ne 0 ] && sed 's/^/    /' "$log" | tail -40
done

for t in tests/integration/*.sh; do
    [ -f "$t" ] || continue
    suite=$(basename "$t" .sh)
    wanted "$suite" || continue
    # A script that checks no C code says "# tw-variants: plain" and runs once.
    if grep -q '^# tw-variants: plain' "$t" && [ "$name" != plain ]; then
        continue
    fi
    log="$results/$name-$suite.log"
    timeout 600 bash "$t" >"$log" 2>&1
    rc=$?
    count_tap "$suite" "$log" "$rc"
    [ "$rc" -ne 0 ] && sed 's/^/    /' "$log" | tail -60
done
exit 0
