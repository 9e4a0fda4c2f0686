#!/usr/bin/env bash
# bench/run.sh - `make bench`: build optimised, run every benchmark, and print
# markdown tables (also saved under bench/results/) for docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."
make -s -j"$(nproc)" check-build >/dev/null
mkdir -p bench/results
for b in bench/init.sh bench/webhook.sh bench/binding.sh; do
    [ -x "$b" ] || continue
    name=$(basename "$b" .sh)
    echo "== $name"
    "$b" | tee "bench/results/$name.md"
done
