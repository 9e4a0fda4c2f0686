#!/usr/bin/env bash
# tests/soak.sh - `make soak`: topowire-webhook in binding mode under keep-alive load over TLS
# for at least SOAK_REQUESTS requests (default 1,000,000), a mix of pod reviews (injection),
# binding reviews (node cache) and malformed bodies, with its RSS sampled every 10 s. Passes
# only if every valid review was answered 200 with "allowed":true, every malformed body got
# 400, and RSS stayed flat after warm-up (growth under SOAK_RSS_SLACK_KB, default 4096).
set -uo pipefail
source "$(dirname "$0")/lib.sh"
source "$TW_ROOT/tests/standin.sh"
PATH=$PATH:/usr/sbin
TOTAL=${SOAK_REQUESTS:-1000000}
SLACK=${SOAK_RSS_SLACK_KB:-4096}
HOOK=$TW_ROOT/bin/topowire-webhook
FIX=$TW_FIXTURES/admission

start_kube
standin_ctl "$KUBE_URL" POST "/_control/nodes/generate?count=5000&zones=3" >/dev/null
"$HOOK" certgen --service soak --namespace soak --out-dir "$TW_TMP" --extra-san 127.0.0.1 --log-level warn
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port); MPORT=$(free_port)
bg "$HOOK" serve --listen "127.0.0.1:$PORT" --metrics-listen "127.0.0.1:$MPORT" \
    --tls-cert-file "$TW_TMP/tls.crt" --tls-key-file "$TW_TMP/tls.key" --log-level error \
    --kubeconfig "$KUBECONFIG_FILE" --init-image registry.example/topowire:soak
HOOK_PID=$BG_PID
for _ in $(seq 600); do curl -sf "http://127.0.0.1:$MPORT/readyz" >/dev/null && break; sleep 0.05; done

jq -c . "$FIX/pod-create-spark-executor.json" >"$TW_TMP/pod.json"
jq -c . "$FIX/binding-create.json" >"$TW_TMP/binding.json"
jq -c . "$FIX/pod-create-with-nodename.json" >"$TW_TMP/nodename.json"
printf '{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":' >"$TW_TMP/bad.json"
cat >"$TW_TMP/soak.lua" <<LUA
local function slurp(p) local f = assert(io.open(p, "rb")); local s = f:read("*a"); f:close(); return s end
local bodies = {
  { "/mutate/pods", slurp("$TW_TMP/pod.json"), 200 },
  { "/mutate/binding", slurp("$TW_TMP/binding.json"), 200 },
  { "/mutate/pods", slurp("$TW_TMP/nodename.json"), 200 },
  { "/mutate/pods", slurp("$TW_TMP/bad.json"), 400 },
}
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
  n, sent_bad, n200, n400, wrong = 0, 0, 0, 0, 0
  reqs = {}
  for i, b in ipairs(bodies) do
    reqs[i] = wrk.format("POST", b[1], { ["Content-Type"] = "application/json" }, b[2])
  end
end
function request()
  n = n + 1
  local i = (n % #bodies) + 1
  if bodies[i][3] == 400 then sent_bad = sent_bad + 1 end
  return reqs[i]
end
-- Answers arrive per connection, not in the thread's request order: judge each by itself
-- (200 must carry "allowed":true; 400 is only for the malformed body), and compare counts.
function response(status, headers, body)
  if status == 200 and string.find(body, '"allowed":true', 1, true) then n200 = n200 + 1
  elseif status == 400 then n400 = n400 + 1
  else wrong = wrong + 1 end
end
function done(summary, latency, requests)
  local sb, a, b, w = 0, 0, 0, 0
  for _, t in ipairs(threads) do
    sb = sb + t:get("sent_bad"); a = a + t:get("n200"); b = b + t:get("n400"); w = w + t:get("wrong")
  end
  -- Requests still in flight when wrk stops are sent but never answered: at most one per connection.
  local unmatched = math.abs(sb - b) > 32 and 1 or 0
  io.write(string.format("SOAK ok=%d bad=%d four=%d sentbad=%d\n", a + b, w + unmatched * math.abs(sb - b), b, sb))
end
LUA
rss() { awk '/^VmRSS/{print $2}' "/proc/$HOOK_PID/status"; }
run() { wrk -t2 -c32 -d"$1s" -s "$TW_TMP/soak.lua" "https://127.0.0.1:$PORT" 2>&1; }

run 10 >/dev/null          # warm-up: pools, arenas, the cache
RSS0=$(rss)
sum_ok=0; sum_bad=0; secs=0; samples="$RSS0"
while [ $((sum_ok + sum_bad)) -lt "$TOTAL" ]; do
    out=$(run 10)
    o=$(sed -n 's/^SOAK ok=\([0-9]*\) bad=.*/\1/p' <<<"$out"); b=$(sed -n 's/^SOAK ok=[0-9]* bad=\([0-9]*\).*/\1/p' <<<"$out")
    sum_ok=$((sum_ok + ${o:-0})); sum_bad=$((sum_bad + ${b:-1})); secs=$((secs + 10))
    samples="$samples $(rss)"
    kill -0 "$HOOK_PID" 2>/dev/null || { echo "not ok - the webhook died"; break; }
done
RSS1=$(rss)
max=$(tr ' ' '\n' <<<"$samples" | sort -n | tail -1)
growth=$((RSS1 - RSS0))
echo "soak: $((sum_ok + sum_bad)) requests in ${secs} s ($(( (sum_ok + sum_bad) / (secs ? secs : 1) ))/s), 32 connections, mix: pod, binding, nodeName pod, malformed"
echo "soak: RSS after warm-up ${RSS0} KiB, at the end ${RSS1} KiB, highest ${max} KiB; samples (KiB): $samples"
tap $(( sum_bad == 0 ? 0 : 1 )) "every valid review got a valid answer and every malformed body a 400 ($sum_ok right, $sum_bad wrong)"
tap $(( growth < SLACK ? 0 : 1 )) "RSS flat after warm-up (grew $growth KiB; allowed $SLACK)"
tap $(( sum_ok + sum_bad >= TOTAL ? 0 : 1 )) "at least $TOTAL requests"
kill "$HOOK_PID"; wait "$HOOK_PID"
tap $? "the webhook exits 0 on SIGTERM after the soak"
done_testing
