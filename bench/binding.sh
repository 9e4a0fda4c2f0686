#!/usr/bin/env bash
# bench/binding.sh - binding mode with a warm cache of 5,000 nodes: binding reviews per second
# and latency over TLS with keep-alive (wrk at 8 and 64 connections), the API requests the
# kube-apiserver stand-in saw per 1,000 bindings after the initial sync, and the cache's memory.
# Environment: BENCH_DURATION (seconds per point, default 10), BENCH_NODES (default 5000),
# BENCH_HOOK (the topowire-webhook binary, default bin/topowire-webhook: another build's binary
# measures that build under the same script).
set -euo pipefail
source "$(dirname "$0")/../tests/lib.sh"
source "$TW_ROOT/tests/standin.sh"
DURATION=${BENCH_DURATION:-10}
NODES=${BENCH_NODES:-5000}
HOOK=${BENCH_HOOK:-$TW_ROOT/bin/topowire-webhook}
PATH=$PATH:/usr/sbin

start_kube
standin_ctl "$KUBE_URL" POST "/_control/nodes/generate?count=$NODES&zones=3" >/dev/null
# The first node in name order with a zone (the stand-in does not filter by label).
NODE=$(curl -s --cacert "$KUBE_CA" -H "Authorization: Bearer $(cat "$KUBE_TOKEN_FILE")" \
    -H 'Accept: application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1' "$KUBE_URL/api/v1/nodes" |
    jq -r '[.items[] | select(.metadata.labels["topology.kubernetes.io/zone"])][0].metadata.name')
"$HOOK" certgen --service bench --namespace bench --out-dir "$TW_TMP" --extra-san 127.0.0.1 --log-level warn
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port); MPORT=$(free_port)
bg "$HOOK" serve --listen "127.0.0.1:$PORT" --metrics-listen "127.0.0.1:$MPORT" \
    --tls-cert-file "$TW_TMP/tls.crt" --tls-key-file "$TW_TMP/tls.key" --log-level warn \
    --kubeconfig "$KUBECONFIG_FILE"
HOOK_PID=$BG_PID
t0=$(date +%s%N)
for _ in $(seq 600); do curl -sf "http://127.0.0.1:$MPORT/readyz" >/dev/null && break; sleep 0.05; done
SYNC_MS=$(( ($(date +%s%N) - t0) / 1000000 ))
metric() { curl -s "http://127.0.0.1:$MPORT/metrics" | awk -v n="$1" '$1 == n {print $2}'; }
CACHED=$(metric topowire_node_cache_nodes)
CACHE_BYTES=$(metric topowire_node_cache_bytes)
RSS_SYNCED=$(awk '/^VmRSS/{print $2}' "/proc/$HOOK_PID/status")

jq --arg n "$NODE" '.request.object.target.name = $n' "$TW_FIXTURES/admission/binding-create.json" >"$TW_TMP/binding.json"
curl -s --cacert "$TW_TMP/ca.crt" --data-binary @"$TW_TMP/binding.json" -H 'Content-Type: application/json' \
    "https://127.0.0.1:$PORT/mutate/binding" | jq -e '.response.patchType == "JSONPatch"' >/dev/null ||
    { echo "bench: no patch for the binding" >&2; exit 1; }
cat >"$TW_TMP/post.lua" <<LUA
local f = assert(io.open("$TW_TMP/binding.json", "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
wrk.headers["Content-Type"] = "application/json"
f:close()
LUA
run() { # run CONNECTIONS SECONDS -> "rps p50 p99 requests"
    local t=2; [ "$1" -lt 2 ] && t=1
    wrk -t$t -c"$1" -d"$2s" --latency -s "$TW_TMP/post.lua" "https://127.0.0.1:$PORT/mutate/binding" |
        awk '/Requests\/sec/ {r=$2} /requests in/ {n=$1} $1=="50%" {p50=$2} $1=="99%" {p99=$2}
             END {print r, p50, p99, n}'
}
# CPU ticks (user + system) the webhook used so far: CPU per binding says more about cost than
# bindings per second when wrk shares the cores.
ticks() { awk '{print $14 + $15}' "/proc/$HOOK_PID/stat"; }
cpu_per() { # TICKS_BEFORE TICKS_AFTER REQUESTS -> microseconds of CPU per request
    awk -v a="$1" -v b="$2" -v n="$3" -v hz="$(getconf CLK_TCK)" \
        'BEGIN { if (n > 0) printf "%.0f", (b - a) * 1e6 / hz / n; else print "-" }'
}
run 8 2 >/dev/null
standin_ctl "$KUBE_URL" POST /_control/reset >/dev/null
declare -A R C
total=0
for c in 8 64; do
    t0=$(ticks)
    R[$c]=$(run "$c" "$DURATION")
    C[$c]=$(cpu_per "$t0" "$(ticks)" "$(echo "${R[$c]}" | awk '{print $4}')")
    total=$((total + $(echo "${R[$c]}" | awk '{print $4}')))
done
API=$(standin_stats "$KUBE_URL" | jq '[.paths | to_entries[] | select(.key | test("watch") | not) | .value] | add // 0')
PER_K=$(awk -v a="$API" -v n="$total" 'BEGIN { printf "%.3f", n ? a * 1000 / n : 0 }')
RSS_AFTER=$(awk '/^VmRSS/{print $2}' "/proc/$HOOK_PID/status")

echo "### Binding mode: warm cache of $CACHED nodes ($(nproc) cores, wrk on the same cores)"
echo
echo "| connections | bindings/s | p50 | p99 | webhook CPU µs/binding |"
echo "|---:|---:|---:|---:|---:|"
for c in 8 64; do
    set -- ${R[$c]}
    echo "| $c | $1 | $2 | $3 | ${C[$c]} |"
done
echo
echo "| measure | value | target |"
echo "|---|---:|---:|"
echo "| API requests seen by the API server per 1,000 bindings after sync ($total bindings) | $PER_K | 0 |"
echo "| node cache entries for $CACHED nodes (topowire_node_cache_bytes) | $((CACHE_BYTES / 1024)) KiB | ≤ 10 MiB |"
echo "| webhook RSS after the sync / after the runs | $((RSS_SYNCED / 1024)) / $((RSS_AFTER / 1024)) MiB | |"
echo "| first LIST of $CACHED nodes until /readyz | ${SYNC_MS} ms | |"
