#!/usr/bin/env bash
# tests/run-all.sh - what `make test` runs: build and run every suite plainly,
# then again under ASan+UBSan, then the static checks; print one summary line
# "N passed, N failed" at the end and exit non-zero when anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT
export TW_RESULTS="$results"

build_failed=0
run_variant() { # name, make args...
    local name=$1; shift
    echo "== build ($name)"
    if ! make --no-print-directory -j"$jobs" WERROR=-Werror "$@" check-build >"$results/build-$name.log" 2>&1; then
        cat "$results/build-$name.log"
        echo "not ok - build ($name)"
        echo "0 1" >"$results/count-build-$name"
        build_failed=1
        return
    fi
    echo "ok - build ($name)"
    echo "1 0" >"$results/count-build-$name"
    tests/run-suite.sh "$name" "$@"
}

run_variant plain
run_variant asan SAN=1
# ThreadSanitizer: the tests that use one object from several threads (make tsan counts them).
echo "== tsan"
make --no-print-directory -j"$jobs" WERROR=-Werror tsan >"$results/tsan.log" 2>&1
if ! ls "$results"/count-tsan-* >/dev/null 2>&1; then
    cat "$results/tsan.log"
    echo "not ok - build (tsan)"
    echo "0 1" >"$results/count-build-tsan"
    echo "tsan: build failed" >>"$results/failures-tsan"
else
    grep -E '^tsan/|^# tsan/' "$results/tsan.log"
fi
# Static checks and a short run of every fuzz target (make fuzz runs them longer).
echo "== lint"
tests/lint.sh
echo "== fuzz (${TW_FUZZ_SECONDS:-3} s a target)"
if make --no-print-directory -j"$jobs" WERROR=-Werror fuzz-build >"$results/build-fuzz.log" 2>&1; then
    tests/fuzz.sh "${TW_FUZZ_SECONDS:-3}" >"$results/fuzz.log" 2>&1
    cat "$results/fuzz.log" | grep -v '^#'
    p=$(grep -c '^ok ' "$results/fuzz.log"); f=$(grep -c '^not ok ' "$results/fuzz.log")
    grep '^not ok ' "$results/fuzz.log" | sed 's/^/fuzz: /' >>"$results/failures-fuzz"
else
    cat "$results/build-fuzz.log"
    p=0; f=1; echo "fuzz: build failed" >>"$results/failures-fuzz"
fi
echo "$p $f" >"$results/count-fuzz"

passed=0; failed=0; skipped=0
for f in "$results"/count-*; do
    read -r p fl sk <"$f"
    passed=$((passed + p)); failed=$((failed + fl)); skipped=$((skipped + ${sk:-0}))
done
if [ "$skipped" -gt 0 ]; then
    echo "skipped, each with its reason:"
    cat "$results"/skips-* 2>/dev/null | sed 's/^/  /'
fi
if [ "$failed" -gt 0 ]; then
    echo "failures:"
    cat "$results"/failures-* 2>/dev/null | sed 's/^/  /'
fi
if [ "$skipped" -gt 0 ]; then
    echo "$passed passed, $failed failed, $skipped skipped"
else
    echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ] && [ "$build_failed" -eq 0 ]
