#!/usr/bin/env bash
# cachefaults.sh - the node cache of topowire-webhook under API server faults, against the
# kube-apiserver stand-in: no request storms (a 410 on every WATCH, watches that end at
# once), watches cut after each event still catch up, long continue tokens and
# resourceVersions are followed or refused (never a partial cache that says ready),
# cache misses against a hanging API server do not hold up other reviews, legacy
# failure-domain labels give the topology keys, and a cache that stops hearing from the
# API server stops saying ready. Judged by request counts at the stand-in and by whether
# answers come within generous deadlines, never by fine timing.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../standin.sh"

HOOK=$TW_BIN_DIR/topowire-webhook
FIX=$TW_FIXTURES/admission
NAME=topowire-webhook.topowire-system.svc
CERTS=$TW_TMP/certs
NODE=ip-10-0-41-17.ec2.internal
mkdir -p "$CERTS"
"$HOOK" certgen --service topowire-webhook --namespace topowire-system --out-dir "$CERTS" 2>/dev/null
tap $? "certgen makes the serving certificate"
start_kube

# start_hook (tests/lib.sh) gives every start these.
HOOK_ARGS=(--tls-cert-file "$CERTS/tls.crt" --tls-key-file "$CERTS/tls.key" --kubeconfig "$KUBECONFIG_FILE")
kinds() { standin_stats "$KUBE_URL" | jq -r ".kinds.$1"; }
post() { # post PATH FILE: the response review
    curl -sS --max-time 10 --cacert "$CERTS/ca.crt" --resolve "$NAME:$PORT:127.0.0.1" \
        -H 'Content-Type: application/json' --data-binary @"$2" "https://$NAME:$PORT$1"
}
# timed PATH FILE: milliseconds until the answer (a failed request counts as 99999).
timed() {
    local t
    t=$(curl -s -o /dev/null -w '%{time_total}' --max-time 10 --cacert "$CERTS/ca.crt" \
        --resolve "$NAME:$PORT:127.0.0.1" -H 'Content-Type: application/json' \
        --data-binary @"$2" "https://$NAME:$PORT$1") || { echo 99999; return; }
    awk -v t="$t" 'BEGIN { printf "%d\n", t * 1000 }'
}
binding_for() { # binding_for NODE FILE: the binding fixture retargeted at NODE
    jq --arg n "$1" '.request.object.target.name = $n | .request.uid = "u-\($n)"' \
        "$FIX/binding-create.json" >"$2"
}
zone_now() {
    binding_for "$1" "$TW_TMP/zone.json"
    local resp patch
    resp=$(post /mutate/binding "$TW_TMP/zone.json")
    patch=$(jq -r '.response.patch // empty' <<<"$resp" | base64 -d 2>/dev/null)
    jq -r '[.[] | select(.path == "/metadata/annotations") | .value["topology.kubernetes.io/zone"]]
           + [.[] | select(.path == "/metadata/annotations/topology.kubernetes.io~1zone") | .value]
           | .[0] // "none"' <<<"${patch:-[]}"
}
wait_zone() { # wait_zone NODE ZONE SECONDS
    local i=0 limit=$(( $3 * 10 ))
    until [ "$(zone_now "$1")" = "$2" ]; do
        i=$((i + 1)); [ $i -gt $limit ] && return 1; sleep 0.1
    done
}

# A cluster of some size: every LIST takes several pages.
standin_ctl "$KUBE_URL" POST "/_control/nodes/generate?count=5000&zones=3" >/dev/null
TOTAL=$(standin_stats "$KUBE_URL" | jq -r .nodes)

# --- a 410 on every WATCH: re-LISTs back off --------------------------------------------
standin_fault "$KUBE_URL" watch-gone
standin_ctl "$KUBE_URL" POST /_control/reset >/dev/null
start_hook "$TW_TMP/gone.log"
sleep 6
w=$(kinds watch); l=$(kinds list)
stop_hook
[ "$w" -ge 2 ] && [ "$w" -le 5 ]
tap $? "a 410 on every WATCH: $w WATCHes and $w full LISTs in 6 s (backoff; was hundreds)"
[ "$l" -le $(( 5 * (TOTAL / 500 + 1) )) ]
tap $? "... $l LIST pages of $TOTAL nodes"

# --- WATCHes that end at once with nothing: backoff -----------------------------------------
standin_fault "$KUBE_URL" watch-end
standin_ctl "$KUBE_URL" POST /_control/reset >/dev/null
start_hook "$TW_TMP/end.log"
sleep 5
w=$(kinds watch)
errors=$(metric topowire_node_cache_errors_total)
stop_hook
[ "$w" -ge 2 ] && [ "$w" -le 5 ]
tap $? "WATCHes ending at once with nothing: $w in 5 s (a failure each; was thousands)"
expect_eq "... and the LIST was made once" 1 "$(kinds list | awk -v p=$((TOTAL / 500 + 1)) '{print ($1 <= p) ? 1 : $1}')"

# --- WATCHes cut after every event still catch up -----------------------------------------
standin_fault "$KUBE_URL" ""
start_hook "$TW_TMP/cut.log"
wait_ready 20
tap $? "the cache is ready"
standin_fault "$KUBE_URL" watch-cut:1
standin_ctl "$KUBE_URL" POST /_control/drop-watches >/dev/null
for i in $(seq 1 12); do
    standin_ctl "$KUBE_URL" POST "/_control/node/label?name=$NODE&key=topology.kubernetes.io/zone&value=cut-$i" >/dev/null
done
t0=$(date +%s%N)
wait_zone "$NODE" cut-12 8
tap $? "watches cut after each event: 12 relabels are all seen ($(( ($(date +%s%N) - t0) / 1000000 )) ms after the last; a productive watch resets the backoff)"
standin_fault "$KUBE_URL" ""

# --- a legacy-labelled node --------------------------------------------------------------------
jq '.metadata.name = "ip-10-0-77-7.ec2.internal" | .metadata.resourceVersion = "1" |
    .metadata.labels = {"failure-domain.beta.kubernetes.io/zone": "us-east-1c",
                        "failure-domain.beta.kubernetes.io/region": "us-east-1"}' \
    "$TW_FIXTURES/nodes/eks-node-partial-metadata.json" >"$TW_TMP/legacy.json"
standin_ctl "$KUBE_URL" POST /_control/node --data-binary @"$TW_TMP/legacy.json" >/dev/null
wait_zone ip-10-0-77-7.ec2.internal us-east-1c 5
tap $? "a node with only failure-domain.beta.kubernetes.io labels gives topology.kubernetes.io/zone"
binding_for ip-10-0-77-7.ec2.internal "$TW_TMP/legacy-b.json"
expect_eq "... and the region under topology.kubernetes.io/region" us-east-1 \
    "$(post /mutate/binding "$TW_TMP/legacy-b.json" | jq -r '.response.patch' | base64 -d |
       jq -r '.[] | select(.path == "/metadata/annotations") | .value["topology.kubernetes.io/region"]')"

# --- misses against a hanging API server ---------------------------------------------------------
standin_fault "$KUBE_URL" get-hang
standin_ctl "$KUBE_URL" POST /_control/reset >/dev/null
binding_for "$NODE" "$TW_TMP/cached.json"
miss_pids=()
for i in 1 2 3 4 5 6; do
    binding_for "ip-10-200-0-$i.ec2.internal" "$TW_TMP/miss-$i.json"
    ( timed /mutate/binding "$TW_TMP/miss-$i.json" >"$TW_TMP/miss-$i.ms" ) &
    miss_pids+=($!)
done
binding_for ip-10-200-9-9.ec2.internal "$TW_TMP/again.json"
( for i in $(seq 20); do timed /mutate/binding "$TW_TMP/again.json"; sleep 0.1; done >"$TW_TMP/again.ms" ) &
miss_pids+=($!)
sleep 0.2
slow=0; worst=0
for i in $(seq 10); do
    for f in "$TW_TMP/cached.json" "$FIX/pod-create-spark-executor.json"; do
        route=/mutate/binding; [ "$f" = "$TW_TMP/cached.json" ] || route=/mutate/pods
        ms=$(timed "$route" "$f")
        [ "$ms" -gt "$worst" ] && worst=$ms
        [ "$ms" -ge 1000 ] && slow=$((slow + 1))
    done
    sleep 0.1
done
wait "${miss_pids[@]}"
expect_eq "while 6+ misses hang at the API server, 20 cached-node bindings and pod reviews all answer within 1 s (worst $worst ms)" 0 "$slow"
misses_worst=$(cat "$TW_TMP"/miss-*.ms "$TW_TMP/again.ms" | sort -n | tail -1)
[ "$misses_worst" -lt 3000 ]
tap $? "... the misses themselves are answered within --timeout (worst $misses_worst ms)"
gets=$(standin_stats "$KUBE_URL" | jq -r '.paths["/api/v1/nodes/ip-10-200-9-9.ec2.internal"] // 0')
[ "$gets" -le 2 ]
tap $? "20 misses of one node in 3 s made $gets GETs (single flight, failures remembered)"
gets=$(kinds get)
[ "$gets" -le 10 ]
tap $? "... all misses together: $gets GETs"
standin_fault "$KUBE_URL" ""
stop_hook

# --- long continue tokens and resourceVersions ----------------------------------------------
TOTAL=$(standin_stats "$KUBE_URL" | jq -r .nodes)
standin_fault "$KUBE_URL" long-continue:9000
start_hook "$TW_TMP/cont.log"
wait_ready 20
tap $? "9,000-byte continue tokens: the cache gets ready"
expect_eq "... holding every node, not only the first page" "$TOTAL" "$(metric topowire_node_cache_nodes)"
stop_hook
standin_fault "$KUBE_URL" long-continue:20000
start_hook "$TW_TMP/cont2.log"
sleep 3
expect_eq "a 20,000-byte continue token (over the 16 KiB bound): never ready" 503 "$(ready_code)"
expect_eq "... and no partial cache" 0 "$(metric topowire_node_cache_nodes)"
grep -q 'continue token is 20000 bytes' "$TW_TMP/cont2.log"
tap $? "... the log says why"
stop_hook
standin_fault "$KUBE_URL" long-rv:200
start_hook "$TW_TMP/rv.log"
wait_ready 20
tap $? "200-byte resourceVersions are followed"
standin_ctl "$KUBE_URL" POST "/_control/node/label?name=$NODE&key=topology.kubernetes.io/zone&value=rv-200" >/dev/null
wait_zone "$NODE" rv-200 5
tap $? "... and the watch resumes from them"
stop_hook
standin_fault "$KUBE_URL" long-rv:300
start_hook "$TW_TMP/rv2.log"
sleep 3
expect_eq "a 300-byte resourceVersion (over the 256-byte bound): never ready" 503 "$(ready_code)"
stop_hook
standin_fault "$KUBE_URL" ""

# --- a cache that stops hearing from the API server ------------------------------------------
if "$HOOK" serve --help 2>&1 | grep -q -- --cache-max-age; then
    start_hook "$TW_TMP/stale.log" --cache-max-age 2s
    wait_ready 20
    tap $? "--cache-max-age 2s: ready"
    standin_fault "$KUBE_URL" list-hang
    standin_ctl "$KUBE_URL" POST "/_control/node/label?name=$NODE&key=topology.kubernetes.io/zone&value=fresh" >/dev/null
    standin_ctl "$KUBE_URL" POST /_control/expire >/dev/null
    i=0; until [ "$(ready_code)" = 503 ] || [ $i -gt 100 ]; do i=$((i + 1)); sleep 0.05; done
    expect_eq "a hung re-LIST: /readyz turns 503 once the cache is older than the bound" 503 "$(ready_code)"
    [ "$(metric topowire_node_cache_age_seconds | cut -d. -f1)" -ge 2 ]
    tap $? "... topowire_node_cache_age_seconds says how old ($(metric topowire_node_cache_age_seconds) s)"
    expect_eq "... and a binding gets the node's zone from a direct GET, not the stale one" fresh "$(zone_now "$NODE")"
    standin_fault "$KUBE_URL" ""
    stop_hook
else
    tap 0 "a cache older than --cache-max-age stops saying ready # SKIP serve has no --cache-max-age (test_binding covers it)"
fi
done_testing
