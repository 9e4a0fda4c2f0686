#!/usr/bin/env bash
# bigpod.sh - the real topowire-webhook against pods as large as a review may be: 30,000
# containers all named in topowire.io/containers (once 17-32 s of CPU a review), and 60,000
# containers (once HTTP 500). Each is answered 200, allowed, within a generous bound, and the
# server stays responsive.
source "$(dirname "$0")/../lib.sh"

HOOK=$TW_BIN_DIR/topowire-webhook
CERTS=$TW_TMP/certs
bash "$TW_ROOT/tests/certs.sh" "$CERTS" >/dev/null 2>&1
tap $? "test certificates" || { done_testing; exit 1; }

LOGF=$TW_TMP/hook.log
bg "$HOOK" serve --binding=false --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
    --tls-cert-file "$CERTS/server.pem" --tls-key-file "$CERTS/server-key.pem" \
    --log-format json >"$LOGF" 2>&1
HOOK_PID=$BG_PID
for _ in $(seq 600); do
    grep -q '"msg":"serving"' "$LOGF" 2>/dev/null && break
    kill -0 "$HOOK_PID" 2>/dev/null || break
    sleep 0.05
done
PORT=$(grep '"msg":"serving"' "$LOGF" | jq -r .port)
[ -n "$PORT" ]; tap $? "the webhook starts" || { sed 's/^/#   /' "$LOGF"; done_testing; exit 1; }

# review N EVERY FILE: an AdmissionReview of a pod with N containers c0..c(N-1); EVERY > 0 names
# every EVERY-th of them in topowire.io/containers, last first.
review() {
    /usr/bin/python3 - "$@" <<'PY'
import json, sys
n, every, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
pod = {"apiVersion": "v1", "kind": "Pod",
       "metadata": {"name": "big", "namespace": "d", "labels": {"topowire.io/inject": "true"},
                    "annotations": {}},
       "spec": {"containers": [{"name": "c%d" % i, "image": "busybox"} for i in range(n)]}}
if every:
    pod["metadata"]["annotations"]["topowire.io/containers"] = ",".join(
        "c%d" % i for i in reversed(range(n)) if i % every == 0)
rev = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
       "request": {"uid": "big-%d-%d" % (n, every), "operation": "CREATE", "namespace": "d",
                   "kind": {"group": "", "version": "v1", "kind": "Pod"},
                   "resource": {"group": "", "version": "v1", "resource": "pods"},
                   "object": pod}}
with open(path, "w") as f:
    json.dump(rev, f, separators=(",", ":"))
PY
}

# post FILE OUT: POSTs a review; prints "HTTP-CODE SECONDS".
post() {
    curl -sS --max-time 30 --cacert "$CERTS/ca.pem" -o "$2" -w '%{http_code} %{time_total}' \
        -H 'Content-Type: application/json' --data-binary @"$1" "https://127.0.0.1:$PORT/mutate/pods"
}

# A 30,000-container pod naming every container: decided well inside the API server's 10 s.
review 30000 1 "$TW_TMP/r30k.json"
read -r code secs < <(post "$TW_TMP/r30k.json" "$TW_TMP/a30k.json")
expect_eq "30,000 containers all named: HTTP 200" 200 "$code"
awk -v s="$secs" 'BEGIN { exit !(s < 5) }'
tap $? "... answered within 5 s (took $secs s; 13 s before the fix)"
expect_eq "... allowed, uid echoed, no patch, the cap named in a warning" \
    "true big-30000-1 null true" \
    "$(jq -r '[.response.allowed, .response.uid, .response.patch,
              (.response.warnings[0] | test("would pass 1048576 bytes; not injecting"))] | join(" ")' \
        "$TW_TMP/a30k.json" 2>/dev/null | sed 's/  / null /')"

# Every 10th named: 3,000 mounts fit under the cap and are patched.
review 30000 10 "$TW_TMP/r30k10.json"
read -r code secs < <(post "$TW_TMP/r30k10.json" "$TW_TMP/a30k10.json")
expect_eq "30,000 containers, 3,000 named: HTTP 200 with a patch of 3,003 operations" "200 3003" \
    "$code $(jq -r .response.patch "$TW_TMP/a30k10.json" | base64 -d | jq length)"
awk -v s="$secs" 'BEGIN { exit !(s < 5) }'
tap $? "... answered within 5 s (took $secs s)"

# 60,000 containers: allowed with a warning, not HTTP 500.
review 60000 0 "$TW_TMP/r60k.json"
read -r code secs < <(post "$TW_TMP/r60k.json" "$TW_TMP/a60k.json")
expect_eq "60,000 containers: HTTP 200 (it was 500)" 200 "$code"
expect_eq "... allowed with the cap's warning and no patch" "true true false" \
    "$(jq -r '[.response.allowed, (.response.warnings[0] | test("60000 containers would pass")),
              has("patch")] | map(tostring) | join(" ")' "$TW_TMP/a60k.json" 2>/dev/null)"

# Four of them at once (both worker threads busy) still leave room for a small review.
review 1 0 "$TW_TMP/r1.json"
pids=()
for i in 1 2 3 4; do
    post "$TW_TMP/r30k.json" "$TW_TMP/par$i.json" >"$TW_TMP/par$i.code" &
    pids+=($!)
done
read -r code secs < <(post "$TW_TMP/r1.json" "$TW_TMP/a1.json")
wait "${pids[@]}"
expect_eq "a small review while four big ones run: HTTP 200 with a patch" "200 true" \
    "$code $(jq -r 'has("response") and (.response | has("patch"))' "$TW_TMP/a1.json")"
awk -v s="$secs" 'BEGIN { exit !(s < 5) }'
tap $? "... answered within 5 s (took $secs s)"
expect_eq "... and the four big ones got 200" "200 200 200 200" \
    "$(for i in 1 2 3 4; do cut -d' ' -f1 "$TW_TMP/par$i.code"; done | xargs)"
kill -0 "$HOOK_PID"; tap $? "the webhook is still running"

done_testing
