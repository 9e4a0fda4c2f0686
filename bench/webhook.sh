#!/usr/bin/env bash
# bench/webhook.sh - throughput and latency of topowire-webhook over TLS with keep-alive, posting
# the Spark-executor AdmissionReview with wrk at 1, 8 and 64 connections; RSS before, during and
# after a run of at least a million reviews; and, in the same run, nginx answering a static reply
# of the same size over TLS with the same certificate as the ceiling.
#
# Environment: BENCH_DURATION (seconds per point, default 10), BENCH_MIN_REVIEWS (the soak run
# lasts until this many reviews were answered in all, default 1000000), BENCH_OUT (a file to
# write the markdown table to, besides stdout).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION=${BENCH_DURATION:-10}
MIN_REVIEWS=${BENCH_MIN_REVIEWS:-1000000}
OUT=${BENCH_OUT:-}
HOOK=$ROOT/bin/topowire-webhook
REVIEW=$ROOT/tests/fixtures/admission/pod-create-spark-executor.json

for tool in wrk nginx curl jq openssl; do
    command -v "$tool" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin
    command -v "$tool" >/dev/null 2>&1 || { echo "bench: $tool is missing (mk/deps.sh bench)" >&2; exit 1; }
done
[ -x "$HOOK" ] || make --no-print-directory programs >/dev/null

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
TMP=$(mktemp -d /tmp/tw-bench-XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss_kb() { awk '/^VmRSS/{print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM/{print $2}' "/proc/$1/status"; }

"$HOOK" certgen --service bench --namespace bench --out-dir "$TMP" --extra-san 127.0.0.1 \
    --log-level warn
PORT=$(free_port)
MPORT=$(free_port)
"$HOOK" serve --binding=false --listen "127.0.0.1:$PORT" --metrics-listen "127.0.0.1:$MPORT" \
    --tls-cert-file "$TMP/tls.crt" --tls-key-file "$TMP/tls.key" --log-level warn \
    2>"$TMP/hook.log" &
HOOK_PID=$!
pids+=("$HOOK_PID")
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$MPORT/readyz" >/dev/null && break; sleep 0.05; done

# The reply the webhook gives, and an nginx serving a static reply of that size.
curl -sS --cacert "$TMP/ca.crt" -H 'Content-Type: application/json' --data-binary @"$REVIEW" \
    "https://127.0.0.1:$PORT/mutate/pods" >"$TMP/reply.json"
[ "$(jq -r .response.patchType "$TMP/reply.json")" = JSONPatch ] ||
    { echo "bench: the webhook did not answer with a patch" >&2; exit 1; }
REPLY_BYTES=$(wc -c <"$TMP/reply.json")
NGINX_PORT=$(free_port)
mkdir -p "$TMP/nginx/logs"
reply=$(sed "s/\\\\/\\\\\\\\/g; s/'/\\\\'/g" "$TMP/reply.json")
cat >"$TMP/nginx/nginx.conf" <<EOF
worker_processes $(nproc);
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/logs/error.log warn;
daemon off;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 60s;
    client_body_buffer_size 64k;
    server {
        listen 127.0.0.1:$NGINX_PORT ssl;
        ssl_certificate $TMP/tls.crt;
        ssl_certificate_key $TMP/tls.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        location / {
            default_type application/json;
            return 200 '$reply';
        }
    }
}
EOF
nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" &
NGINX_PID=$!
pids+=("$NGINX_PID")
for _ in $(seq 100); do
    curl -skf -o /dev/null "https://127.0.0.1:$NGINX_PORT/" -d '{}' && break
    sleep 0.05
done
NGINX_BYTES=$(curl -sk "https://127.0.0.1:$NGINX_PORT/" -H 'Content-Type: application/json' \
    --data-binary @"$REVIEW" | wc -c)

cat >"$TMP/post.lua" <<'EOF'
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
wrk.headers["Content-Type"] = "application/json"
f:close()
EOF
export BENCH_BODY=$REVIEW

# run NAME URL CONNECTIONS SECONDS: one wrk run; prints "rps p50 p99 requests errors".
run() {
    local conns=$3 secs=$4 threads=2
    [ "$conns" -lt 2 ] && threads=1
    wrk -t"$threads" -c"$conns" -d"${secs}s" --latency -s "$TMP/post.lua" "$2" >"$TMP/wrk-$1-$conns.txt" 2>&1
    awk '
        /Requests\/sec/ { rps = $2 }
        /requests in/ { n = $1 }
        /Non-2xx/ { bad = $NF }
        /Socket errors/ { sock = $0 }
        $1 == "50%" { p50 = $2 }
        $1 == "99%" { p99 = $2 }
        END { printf "%s %s %s %s %s\n", rps, p50, p99, n, (bad ? bad : 0) + (sock ? 1 : 0) }
    ' "$TMP/wrk-$1-$conns.txt"
}

reviews() {
    curl -s "http://127.0.0.1:$MPORT/metrics" |
        awk '/^topowire_webhook_reviews_total/ { s += $2 } END { print s + 0 }'
}

# Warm up at every concurrency (connection pools, allocator arenas), then RSS is the baseline.
for c in 1 8 64; do run warm "https://127.0.0.1:$PORT/mutate/pods" "$c" 2 >/dev/null; done
RSS_BEFORE=$(rss_kb "$HOOK_PID")

# CPU ticks (user + system) a process and its children used so far: with other work on the
# machine, CPU per reply says more about cost than replies per second.
ticks() {
    local t=0 p
    for p in "$1" $(pgrep -P "$1"); do
        t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
    done
    echo "$t"
}
# cpu_per_reply TICKS_BEFORE TICKS_AFTER REPLIES: microseconds of CPU per reply.
cpu_per_reply() {
    awk -v a="$1" -v b="$2" -v n="$3" -v hz="$(getconf CLK_TCK)" \
        'BEGIN { if (n > 0) printf "%.0f", (b - a) * 1e6 / hz / n; else print "-" }'
}

declare -A H N HC NC
for c in 1 8 64; do
    t0=$(ticks "$HOOK_PID")
    H[$c]=$(run hook "https://127.0.0.1:$PORT/mutate/pods" "$c" "$DURATION")
    HC[$c]=$(cpu_per_reply "$t0" "$(ticks "$HOOK_PID")" "$(echo "${H[$c]}" | awk '{print $4}')")
    t0=$(ticks "$NGINX_PID")
    N[$c]=$(run nginx "https://127.0.0.1:$NGINX_PORT/mutate/pods" "$c" "$DURATION")
    NC[$c]=$(cpu_per_reply "$t0" "$(ticks "$NGINX_PID")" "$(echo "${N[$c]}" | awk '{print $4}')")
done
RSS_MID=$(rss_kb "$HOOK_PID")

# The soak: 64 connections in 10-second runs until at least MIN_REVIEWS reviews were answered
# in all, sampling RSS after each run.
soak_s=0
soak_total=0
soak_errors=0
rss_samples=()
while [ "$(reviews)" -lt "$MIN_REVIEWS" ]; do
    r=$(run soak "https://127.0.0.1:$PORT/mutate/pods" 64 10)
    soak_s=$((soak_s + 10))
    soak_total=$((soak_total + $(echo "$r" | awk '{print $4}')))
    soak_errors=$((soak_errors + $(echo "$r" | awk '{print $5}')))
    rss_samples+=("$(rss_kb "$HOOK_PID")")
done
RSS_AFTER=$(rss_kb "$HOOK_PID")
HWM=$(hwm_kb "$HOOK_PID")
TOTAL=$(reviews)
ERRORS=$(curl -s "http://127.0.0.1:$MPORT/metrics" |
    awk '/^topowire_webhook_errors_total/ { s += $2 } END { print s + 0 }')

field() { echo "$1" | awk -v i="$2" '{print $i}'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.0f%%", 100 * a / b; else print "-" }'; }

{
    echo "Machine: $(nproc) cores ($(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)), load" \
        "average before the run $LOAD_BEFORE, after it $(cut -d' ' -f1-3 /proc/loadavg); wrk runs on the" \
        "same cores."
    echo "Reply: webhook $REPLY_BYTES bytes (base64 JSONPatch), nginx $NGINX_BYTES bytes (static)."
    echo "Each point: wrk ${DURATION} s, keep-alive, TLS, POST of the Spark-executor review ($(wc -c <"$REVIEW") bytes)."
    echo
    echo "| connections | webhook reviews/s | p50 | p99 | CPU µs/review | nginx replies/s | p50 | p99 | CPU µs/reply | webhook / nginx |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for c in 1 8 64; do
        echo "| $c | $(field "${H[$c]}" 1) | $(field "${H[$c]}" 2) | $(field "${H[$c]}" 3) | ${HC[$c]} |" \
            "$(field "${N[$c]}" 1) | $(field "${N[$c]}" 2) | $(field "${N[$c]}" 3) | ${NC[$c]} |" \
            "$(pct "$(field "${H[$c]}" 1)" "$(field "${N[$c]}" 1)") |"
    done
    echo
    echo "Non-2xx or socket errors: webhook $(for c in 1 8 64; do field "${H[$c]}" 5; done | xargs)," \
        "soak $soak_errors; refused requests counted by the webhook: $ERRORS."
    echo
    echo "| webhook RSS | KiB |"
    echo "|---|---:|"
    echo "| after warm-up | $RSS_BEFORE |"
    echo "| after the 1/8/64 runs | $RSS_MID |"
    echo "| during the soak, after each 10 s run | ${rss_samples[*]} |"
    echo "| after $TOTAL reviews (soak: $soak_total in ${soak_s} s at 64 connections) | $RSS_AFTER |"
    echo "| peak (VmHWM) | $HWM |"
} | tee ${OUT:+"$OUT"}
