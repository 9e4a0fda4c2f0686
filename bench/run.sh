#!/usr/bin/env bash
# bench/run.sh - `make bench`: build optimised, run every benchmark, and print
# markdown tables (also saved under bench/results/) for docs/performance.md.
#
# BENCH_BASELINE=REV (`make bench BASELINE=REV`) also builds commit REV in
# build/baseline/ (from `git archive`, so uncommitted files stay out) and runs
# each benchmark against it just before the same benchmark against the working
# tree: the two sets of figures come from the same run on the same machine.
# BENCH_ONLY="init webhook" (`make bench ONLY=...`) runs only those benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."
make -s -j"$(nproc)" check-build >/dev/null
mkdir -p bench/results
base=""
if [ -n "${BENCH_BASELINE:-}" ]; then
    rev=$(git rev-parse --short "$BENCH_BASELINE")
    base=build/baseline
    rm -rf "$base"
    mkdir -p "$base"
    git archive "$rev" | tar -x -C "$base"
    echo "== building the baseline $rev in $base"
    make -s -C "$base" -j"$(nproc)" check-build >/dev/null
fi
for b in bench/init.sh bench/webhook.sh bench/binding.sh bench/downward.sh bench/sizing.sh; do
    [ -x "$b" ] || continue
    name=$(basename "$b" .sh)
    if [ -n "${BENCH_ONLY:-}" ] && [[ " $BENCH_ONLY " != *" $name "* ]]; then continue; fi
    if [ -n "$base" ] && [ -x "$base/$b" ]; then
        echo "== $name (baseline $rev)"
        "$base/$b" | tee "bench/results/$name-baseline.md"
    fi
    echo "== $name"
    "$b" | tee "bench/results/$name.md"
done
