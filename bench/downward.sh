#!/usr/bin/env bash
# bench/downward.sh - what a downward injection (topowire.io/inject: "downward") costs the webhook
# next to an init injection ("true"), in the same run: pod reviews per second and latency over TLS
# with keep-alive (wrk at 8 and 64 connections, the two kinds alternated), for the same Spark
# executor review differing only in the label; and what each adds to the pod (containers, images
# to pull, volumes, patch operations and bytes), counted on the patched pods kubectl gives.
# The webhook runs in binding mode against the kube-apiserver stand-in, as it would in a cluster.
# Environment: BENCH_DURATION (seconds per point, default 10).
set -euo pipefail
source "$(dirname "$0")/../tests/lib.sh"
source "$TW_ROOT/tests/standin.sh"
DURATION=${BENCH_DURATION:-10}
HOOK=$TW_ROOT/bin/topowire-webhook
PATH=$PATH:/usr/sbin
for tool in wrk curl jq kubectl; do
    command -v "$tool" >/dev/null 2>&1 || { echo "bench: $tool is missing (mk/deps.sh bench)" >&2; exit 1; }
done

start_kube
"$HOOK" certgen --service bench --namespace bench --out-dir "$TW_TMP" --extra-san 127.0.0.1 --log-level warn
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port); MPORT=$(free_port)
bg "$HOOK" serve --listen "127.0.0.1:$PORT" --metrics-listen "127.0.0.1:$MPORT" \
    --tls-cert-file "$TW_TMP/tls.crt" --tls-key-file "$TW_TMP/tls.key" --log-level warn \
    --kubeconfig "$KUBECONFIG_FILE" 2>"$TW_TMP/hook.log"
for _ in $(seq 600); do curl -sf "http://127.0.0.1:$MPORT/readyz" >/dev/null && break; sleep 0.05; done

EXEC=$TW_FIXTURES/admission/pod-create-spark-executor.json
cp "$EXEC" "$TW_TMP/init.json"
jq '.request.object.metadata.labels["topowire.io/inject"] = "downward"' "$EXEC" >"$TW_TMP/downward.json"

# adds KIND: "containers images volumes ops bytes" the patch adds to the executor pod.
adds() {
    local resp patch
    resp=$(curl -s --cacert "$TW_TMP/ca.crt" --data-binary @"$TW_TMP/$1.json" \
        -H 'Content-Type: application/json' "https://127.0.0.1:$PORT/mutate/pods")
    patch=$(jq -r '.response.patch // empty' <<<"$resp" | base64 -d)
    [ -n "$patch" ] || { echo "bench: no patch for the $1 pod" >&2; exit 1; }
    jq .request.object "$TW_TMP/$1.json" >"$TW_TMP/$1.pod.json"
    kubectl patch --local --type=json -f "$TW_TMP/$1.pod.json" -p "$patch" -o json >"$TW_TMP/$1.after.json"
    count() { # count FILE: containers images volumes
        jq -r '[((.spec.initContainers // []) + .spec.containers | length),
                ([(.spec.initContainers // [])[].image, .spec.containers[].image] | unique | length),
                (.spec.volumes // [] | length)] | @tsv' "$1"
    }
    paste <(count "$TW_TMP/$1.pod.json") <(count "$TW_TMP/$1.after.json") |
        awk -v ops="$(jq length <<<"$patch")" -v bytes="${#patch}" \
            '{ print $4 - $1, $5 - $2, $6 - $3, ops, bytes }'
}
ADD_INIT=$(adds init)
ADD_DOWN=$(adds downward)

run() { # run KIND CONNECTIONS SECONDS -> "rps p50 p99 requests"
    local t=2; [ "$2" -lt 2 ] && t=1
    cat >"$TW_TMP/post-$1.lua" <<LUA
local f = assert(io.open("$TW_TMP/$1.json", "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
wrk.headers["Content-Type"] = "application/json"
f:close()
LUA
    wrk -t$t -c"$2" -d"$3s" --latency -s "$TW_TMP/post-$1.lua" "https://127.0.0.1:$PORT/mutate/pods" |
        awk '/Requests\/sec/ {r=$2} /requests in/ {n=$1} $1=="50%" {p50=$2} $1=="99%" {p99=$2}
             END {print r, p50, p99, n}'
}
run init 8 2 >/dev/null
run downward 8 2 >/dev/null
declare -A R
for c in 8 64; do
    # Alternated, half the time each, twice: a load change on the machine hits both kinds.
    half=$(( (DURATION + 1) / 2 ))
    for round in 1 2; do
        for k in init downward; do
            R[$k-$c-$round]=$(run "$k" "$c" "$half")
        done
    done
done
sum() { # sum KIND C -> "rps p50 p99" (rps averaged, latencies of the second round)
    awk -v a="${R[$1-$2-1]}" -v b="${R[$1-$2-2]}" 'BEGIN {
        split(a, x, " "); split(b, y, " "); printf "%.0f %s %s\n", (x[1] + y[1]) / 2, y[2], y[3] }'
}
INJ=$(curl -s "http://127.0.0.1:$MPORT/metrics" |
    awk '$1 ~ /outcome="(injected|downward_injected)"/ {printf "%s=%s ", $1, $2}')

echo "### Downward injection next to init injection ($(nproc) cores, wrk on the same cores)"
echo
echo "Same Spark-executor review ($(wc -c <"$EXEC") bytes) but for the label; binding mode on; each point"
echo "${DURATION} s, split in alternating halves."
echo
echo "| connections | init reviews/s | p50 | p99 | downward reviews/s | p50 | p99 |"
echo "|---:|---:|---:|---:|---:|---:|---:|"
for c in 8 64; do
    set -- $(sum init "$c") $(sum downward "$c")
    echo "| $c | $1 | $2 | $3 | $4 | $5 | $6 |"
done
echo
echo "| what the patch adds to the executor pod | init (\`\"true\"\`) | downward (\`\"downward\"\`) |"
echo "|---|---:|---:|"
set -- $ADD_INIT $ADD_DOWN
echo "| containers (init + app) | $1 | $6 |"
echo "| distinct images to pull | $2 | $7 |"
echo "| volumes | $3 | $8 |"
echo "| JSON Patch operations | $4 | $9 |"
echo "| patch bytes | $5 | ${10} |"
echo
echo "Counted by the webhook: $INJ"
