#!/usr/bin/env bash
# binding.sh - binding mode end to end: topowire-webhook with its node cache fed by the
# kube-apiserver stand-in (LIST + WATCH). Bindings get the target node's topology as
# annotations (patches applied with kubectl), node relabels reach the next binding, an
# unknown node is allowed unchanged within the deadline, the watch survives a dropped
# connection and a 410, and a warm cache makes no API requests.
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

start_kube --bookmark-interval 1
# start_hook (tests/lib.sh) gives every start these.
HOOK_ARGS=(--tls-cert-file "$CERTS/tls.crt" --tls-key-file "$CERTS/tls.key" --kubeconfig "$KUBECONFIG_FILE")
post() { # post PATH FILE: the response review
    curl -sS --max-time 10 --cacert "$CERTS/ca.crt" --resolve "$NAME:$PORT:127.0.0.1" \
        -H 'Content-Type: application/json' --data-binary @"$2" "https://$NAME:$PORT$1"
}
# patched REVIEW-FILE RESPONSE: the review's object with the response's patch applied by kubectl.
patched() {
    local obj=$TW_TMP/obj.json patch
    jq '.request.object' "$1" >"$obj"
    patch=$(jq -r '.response.patch // empty' <<<"$2" | base64 -d)
    if [ -z "$patch" ]; then cat "$obj"; return; fi
    kubectl patch --local --type=json -f "$obj" -p "$patch" -o json 2>&1
}
binding_for() { # binding_for NODE FILE: the binding fixture retargeted at NODE
    jq --arg n "$1" '.request.object.target.name = $n | .request.uid = "u-\($n)"' \
        "$FIX/binding-create.json" >"$2"
}

# --- readiness waits for the first LIST -----------------------------------------
standin_fault "$KUBE_URL" 503
start_hook "$TW_TMP/hook.log"
tap $? "serve starts in binding mode with a kubeconfig"
sleep 0.5
expect_eq "/readyz is 503 while the node LIST fails" 503 "$(ready_code)"
standin_fault "$KUBE_URL" ""
wait_ready
tap $? "/readyz turns 200 once the node LIST succeeds"
NODES=$(jq -r .metadata.name "$TW_FIXTURES"/nodes/*.json | sort -u | wc -l)
expect_eq "the cache holds every fixture node" "$NODES" \
    "$(metric topowire_node_cache_nodes)"

# --- a binding gets its node's topology --------------------------------------------
resp=$(post /mutate/binding "$FIX/binding-create.json")
expect_eq "the review is allowed with a JSONPatch" "true JSONPatch 5d6e7f80-9a1b-4c2d-8e3f-4a5b6c7d8e9f" \
    "$(jq -r '"\(.response.allowed) \(.response.patchType) \(.response.uid)"' <<<"$resp")"
out=$(patched "$FIX/binding-create.json" "$resp")
expect_eq "kubectl applies the patch: zone, region and zone ID as annotations" \
    "us-east-1b us-east-1 use1-az4" \
    "$(jq -r '.metadata.annotations | "\(.["topology.kubernetes.io/zone"]) \(.["topology.kubernetes.io/region"]) \(.["topology.k8s.aws/zone-id"])"' <<<"$out")"
expect_eq "... and the binding is otherwise untouched" \
    "$(jq -S -c '.request.object | del(.metadata.annotations)' "$FIX/binding-create.json")" \
    "$(jq -S -c 'del(.metadata.annotations)' <<<"$out")"
expect_eq "no labels by default (--copy-as annotations)" "null" "$(jq -c '.metadata.labels' <<<"$out")"

jq '.request.object.metadata.annotations = {"topology.kubernetes.io/zone": "keep-me"}' \
    "$FIX/binding-create.json" >"$TW_TMP/has-zone.json"
out=$(patched "$TW_TMP/has-zone.json" "$(post /mutate/binding "$TW_TMP/has-zone.json")")
expect_eq "an annotation already on the binding is left as it is; the rest are added" \
    "keep-me use1-az4" \
    "$(jq -r '.metadata.annotations | "\(.["topology.kubernetes.io/zone"]) \(.["topology.k8s.aws/zone-id"])"' <<<"$out")"

jq '.request.object.target.kind = "Pod"' "$FIX/binding-create.json" >"$TW_TMP/not-node.json"
resp=$(post /mutate/binding "$TW_TMP/not-node.json")
expect_eq "a binding whose target is not a Node is allowed unchanged" "true null" \
    "$(jq -r '"\(.response.allowed) \(.response.patch)"' <<<"$resp")"

resp=$(post /mutate/binding "$FIX/pod-create-spark-executor.json")
expect_eq "a pod review sent to /mutate/binding is allowed unchanged" "true null" \
    "$(jq -r '"\(.response.allowed) \(.response.patch)"' <<<"$resp")"

# --- pods created with spec.nodeName ----------------------------------------------
resp=$(post /mutate/pods "$FIX/pod-create-with-nodename.json")
out=$(patched "$FIX/pod-create-with-nodename.json" "$resp")
expect_eq "a pod created with spec.nodeName gets the topology annotations" "us-east-1b use1-az4" \
    "$(jq -r '.metadata.annotations | "\(.["topology.kubernetes.io/zone"]) \(.["topology.k8s.aws/zone-id"])"' <<<"$out")"
expect_eq "... and, opted in, the init container too (one patch, applied in order)" "topowire-init" \
    "$(jq -r '.spec.initContainers[0].name' <<<"$out")"
jq '.request.object.metadata.labels["topowire.io/inject"] = "false"' \
    "$FIX/pod-create-with-nodename.json" >"$TW_TMP/nodename-only.json"
out=$(patched "$TW_TMP/nodename-only.json" "$(post /mutate/pods "$TW_TMP/nodename-only.json")")
expect_eq "a pod with spec.nodeName that opted out of injection still gets the annotations" \
    "us-east-1b null" \
    "$(jq -r '"\(.metadata.annotations["topology.kubernetes.io/zone"]) \(.spec.initContainers)"' <<<"$out")"
resp=$(post /mutate/pods "$FIX/pod-create-generatename-restricted.json")
expect_eq "a pod without spec.nodeName gets no topology" "null" \
    "$(patched "$FIX/pod-create-generatename-restricted.json" "$resp" | jq -c '.metadata.annotations["topology.kubernetes.io/zone"]')"

# --- the cache follows the nodes ----------------------------------------------------
standin_ctl "$KUBE_URL" POST "/_control/node/label?name=$NODE&key=topology.kubernetes.io/zone&value=us-east-1f" >/dev/null
zone_now() {
    binding_for "$1" "$TW_TMP/b.json"
    patched "$TW_TMP/b.json" "$(post /mutate/binding "$TW_TMP/b.json")" |
        jq -r '.metadata.annotations["topology.kubernetes.io/zone"] // "none"'
}
wait_zone() { # wait_zone NODE ZONE: until a binding to NODE gets ZONE (5 s at most)
    local i=0
    until [ "$(zone_now "$1")" = "$2" ]; do
        i=$((i + 1)); [ $i -gt 50 ] && return 1; sleep 0.1
    done
}
wait_zone "$NODE" us-east-1f
tap $? "a node relabelled during the test is seen by the next binding (watch MODIFIED)"

jq '.metadata.name = "ip-10-0-99-1.ec2.internal" | .metadata.resourceVersion = "1" |
    .metadata.labels["topology.kubernetes.io/zone"] = "us-east-1c"' \
    "$TW_FIXTURES/nodes/eks-node-partial-metadata.json" >"$TW_TMP/newnode.json"
curl -s -X POST --data-binary @"$TW_TMP/newnode.json" "$KUBE_URL/_control/node" --cacert "$KUBE_CA" >/dev/null
wait_zone ip-10-0-99-1.ec2.internal us-east-1c
tap $? "a node added during the test is seen (watch ADDED)"

standin_ctl "$KUBE_URL" DELETE "/_control/node?name=ip-10-0-99-1.ec2.internal" >/dev/null
i=0; until [ "$(metric topowire_node_cache_nodes)" = "$NODES" ] || [ $i -gt 50 ]; do i=$((i+1)); sleep 0.1; done
expect_eq "a deleted node leaves the cache (watch DELETED)" "$NODES" "$(metric topowire_node_cache_nodes)"

# --- a binding to a node nobody knows -------------------------------------------------
t0=$(date +%s%N)
resp=$(post /mutate/binding <(binding_for ip-10-9-9-9.ec2.internal /dev/stdout))
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
expect_eq "a binding to an unknown node is allowed unchanged" "true null" \
    "$(jq -r '"\(.response.allowed) \(.response.patch)"' <<<"$resp")"
jq -r '.response.warnings[0]' <<<"$resp" | grep -q 'ip-10-9-9-9'
tap $? "... with a warning naming the node"
# Bounds: --timeout (2 s) plus room for a loaded machine, under the webhook
# configuration's timeoutSeconds (5 s); a deadline not kept would hang far longer.
[ "$ms" -lt 4000 ]; tap $? "... within the deadline (took $ms ms)"
expect_eq "... and the metric counts it" 1 "$(metric 'topowire_webhook_reviews_total{route="binding",outcome="node_unknown"}')"

standin_fault "$KUBE_URL" hang
t0=$(date +%s%N)
resp=$(post /mutate/binding <(binding_for ip-10-8-8-8.ec2.internal /dev/stdout))
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
expect_eq "with the API server hanging, an unknown node's binding is still allowed" true "$(jq -r .response.allowed <<<"$resp")"
[ "$ms" -lt 4000 ]; tap $? "... within --timeout 2s and before the API server's 5 s (took $ms ms)"
standin_fault "$KUBE_URL" ""

# --- the watch survives drops and expiry ---------------------------------------------
standin_ctl "$KUBE_URL" POST /_control/drop-watches >/dev/null
standin_ctl "$KUBE_URL" POST "/_control/node/label?name=$NODE&key=topology.kubernetes.io/zone&value=us-east-1d" >/dev/null
wait_zone "$NODE" us-east-1d
tap $? "the watch resumes after the connection drops, and sees the relabel"
relists=$(metric topowire_node_cache_relists_total)
standin_ctl "$KUBE_URL" POST /_control/expire >/dev/null
standin_ctl "$KUBE_URL" POST "/_control/node/label?name=$NODE&key=topology.kubernetes.io/zone&value=us-east-1e" >/dev/null
wait_zone "$NODE" us-east-1e
tap $? "after 410 Gone the cache lists again and sees the relabel"
[ "$(metric topowire_node_cache_relists_total)" -gt "${relists:-0}" ]
tap $? "... and counts the re-LIST"

# --- a warm cache asks the API server nothing ------------------------------------------
standin_ctl "$KUBE_URL" POST /_control/reset >/dev/null
binding_for "$NODE" "$TW_TMP/warm.json"
for i in $(seq 100); do post /mutate/binding "$TW_TMP/warm.json" >/dev/null; done
# (WATCHes are counted apart: the cache renews its watch every 30 s.)
expect_eq "100 bindings with a warm cache: no node GET or LIST (watch aside)" "0 0" \
    "$(standin_stats "$KUBE_URL" | jq -r '"\(.kinds.get) \(.kinds.list)"')"

# --- labels too, and the metrics ---------------------------------------------------------
stop_hook
tap $? "SIGTERM stops the server with its node cache (exit 0)"
start_hook "$TW_TMP/hook2.log" --copy-as annotations,labels --copy-labels topology.k8s.aws/zone-id
wait_ready
out=$(patched "$FIX/binding-create.json" "$(post /mutate/binding "$FIX/binding-create.json")")
expect_eq "--copy-as annotations,labels --copy-labels zone-id: both maps, one key" \
    '{"topology.k8s.aws/zone-id":"use1-az4"} {"topology.k8s.aws/zone-id":"use1-az4"}' \
    "$(jq -c '"\(.metadata.annotations | tojson) \(.metadata.labels | tojson)"' -r <<<"$out")"
metric topowire_node_cache_ready | grep -qx 1
tap $? "/metrics reports the cache"
stop_hook

"$HOOK" serve --listen 127.0.0.1:0 --metrics-listen "" --tls-cert-file "$CERTS/tls.crt" \
    --tls-key-file "$CERTS/tls.key" --copy-as nothing >/dev/null 2>&1
expect_eq "a bad --copy-as is a usage error (exit 2)" 2 $?
env -u KUBERNETES_SERVICE_HOST -u KUBECONFIG "$HOOK" serve --listen 127.0.0.1:0 --metrics-listen "" \
    --tls-cert-file "$CERTS/tls.crt" --tls-key-file "$CERTS/tls.key" >"$TW_TMP/nokube.log" 2>&1
expect_eq "binding mode without any Kubernetes configuration: exit 2" 2 $?
grep -q 'binding=false' "$TW_TMP/nokube.log"
tap $? "... and the log says how to run without it"

# --- leaks: the server with its cache under valgrind (plain build only) ------------------
if [ "$TW_VARIANT" = plain ] && command -v valgrind >/dev/null; then
    HOOK_PREFIX=(valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=99)
    start_hook "$TW_TMP/vg.log"
    wait_ready
    post /mutate/binding "$FIX/binding-create.json" >/dev/null
    post /mutate/binding <(binding_for ip-10-7-7-7.ec2.internal /dev/stdout) >/dev/null
    post /mutate/pods "$FIX/pod-create-with-nodename.json" >/dev/null
    standin_ctl "$KUBE_URL" POST /_control/expire >/dev/null
    sleep 1
    stop_hook
    rc=$?
    expect_eq "valgrind: no leak or memory error in binding mode (LIST, WATCH, 410, GET, reviews)" 0 "$rc"
    [ "$rc" -ne 0 ] && grep -v '^{' "$TW_TMP/vg.log" | head -30 | sed 's/^/#   /'
fi
done_testing
