#!/usr/bin/env bash
# tests/fuzz.sh [SECONDS] - run every libFuzzer target in build/fuzz/bin for
# SECONDS each (default 60: `make fuzz`; `make test` runs a few seconds each),
# starting from the committed corpus in fuzz/corpus/TARGET (read-only: new
# inputs go to a scratch directory). One TAP line per target; a crash leaves
# its input in fuzz/crash-TARGET-* for a regression unit test.
set -uo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
n=0; failed=0
for bin in build/fuzz/bin/fuzz_*; do
    [ -x "$bin" ] || continue
    name=${bin##*/fuzz_}
    n=$((n + 1))
    scratch=$(mktemp -d)
    log=$scratch/log
    mkdir -p "$scratch/corpus"
    [ -d "fuzz/corpus/$name" ] && cp -r "fuzz/corpus/$name/." "$scratch/corpus/"
    dict=""
    [ -f "fuzz/$name.dict" ] && dict="-dict=fuzz/$name.dict"
    # shellcheck disable=SC2086
    ASAN_OPTIONS=detect_leaks=1 "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=1024 \
        -max_len=65536 -artifact_prefix="fuzz/crash-$name-" $dict "$scratch/corpus" >"$log" 2>&1
    rc=$?
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
    [ -z "$runs" ] && runs=$(grep -Eo '^#[0-9]+' "$log" | tail -1 | tr -d '#')
    if [ $rc -eq 0 ]; then
        echo "ok $n - fuzz $name: ${secs}s, ${runs:-?} inputs, no crash"
    else
        echo "not ok $n - fuzz $name: crashed (exit $rc), input saved as fuzz/crash-$name-*"
        grep -A15 'ERROR\|runtime error\|deadly signal' "$log" | head -25 | sed 's/^/#   /'
        failed=$((failed + 1))
    fi
    rm -rf "$scratch"
done
echo "1..$n"
[ "$failed" -eq 0 ]
