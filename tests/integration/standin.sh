#!/usr/bin/env bash
# tests/integration/standin.sh - the loopback stand-ins answer like the kube-apiserver and the
# cloud metadata services: TLS, bearer tokens, Status bodies, partial metadata, watches, faults,
# the control API and a clean shutdown. Uses curl, jq and kubectl.
. "$(dirname "$0")/../lib.sh"
. "$TW_ROOT/tests/standin.sh"

NODE=ip-10-0-41-17.ec2.internal
B=$TW_TMP/body
H=$TW_TMP/headers
PARTIAL='application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1'

# wait_until SECONDS COMMAND...: polls COMMAND every 50 ms until it succeeds.
wait_until() {
    local limit=$(($1 * 20)) i=0; shift
    until "$@"; do
        i=$((i + 1))
        [ $i -gt $limit ] && return 1
        sleep 0.05
    done
}

# kreq [CURL-ARGS...] URL: a request with the CA and the current token; the body
# goes to $B, the headers to $H, the status code to stdout.
kreq() {
    curl -sS --max-time 20 --cacert "$KUBE_CA" -H "Authorization: Bearer $TOKEN" -D "$H" -o "$B" \
        -w '%{http_code}' "$@"
}

# hdr NAME: the value of a response header in $H.
hdr() {
    tr -d '\r' <"$H" | awk -v n="$(printf '%s' "$1" | tr '[:upper:]' '[:lower:]')" \
        'index(tolower($0), n ": ") == 1 { print substr($0, length(n) + 3) }' | tail -1
}

# same_json FILE FILE: equal as JSON, whatever the key order and layout.
same_json() {
    diff <(jq -S . "$1") <(jq -S . "$2") >/dev/null
}

# stop_within SECONDS PID: SIGTERM, then the exit status, or 124 if it did not stop in time.
stop_within() {
    kill -TERM "$2" 2>/dev/null
    if ! wait_until "$1" bash -c "! kill -0 $2 2>/dev/null"; then
        kill -KILL "$2" 2>/dev/null
        wait "$2" 2>/dev/null
        return 124
    fi
    wait "$2"
}

watches() { standin_stats "$KUBE_URL" | jq -r .watches; }
has_watches() { [ "$(watches)" -ge "$1" ]; }
lines_at_least() { [ -f "$1" ] && [ "$(grep -c . "$1")" -ge "$2" ]; }

# A webhook configuration in a List, after an object of another kind.
cat >"$TW_TMP/webhook.json" <<'EOF'
{"apiVersion": "v1", "kind": "List", "items": [
 {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "topowire-webhook", "namespace": "topowire"}},
 {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
  "metadata": {"name": "topowire"},
  "webhooks": [
   {"name": "pods.topowire.io", "admissionReviewVersions": ["v1"], "sideEffects": "None",
    "failurePolicy": "Ignore", "timeoutSeconds": 5,
    "clientConfig": {"caBundle": "", "service": {"name": "topowire-webhook", "namespace": "topowire",
                                                  "path": "/mutate", "port": 443}}},
   {"name": "bindings.topowire.io", "admissionReviewVersions": ["v1"], "sideEffects": "None",
    "clientConfig": {"service": {"name": "topowire-webhook", "namespace": "topowire", "path": "/bind"}}}]}]}
EOF

if ! start_kube --bookmark-interval 1 --webhook-config "$TW_TMP/webhook.json"; then
    tap 1 "kube stand-in starts"
    done_testing
    exit 1
fi
tap 0 "kube stand-in starts and writes its port file"
TOKEN=$(head -n1 "$KUBE_TOKEN_FILE")
MAIN_PID=$KUBE_PID

# ---- TLS ----
code=$(kreq "$KUBE_URL/version")
expect_eq "TLS with the stand-in CA: /version answers 200" 200 "$code"
curl -sS -o /dev/null --max-time 10 "$KUBE_URL/version" 2>/dev/null
expect_eq "TLS without the CA fails certificate verification (curl 60)" 60 "$?"
code=$(kreq "https://localhost:$KUBE_PORT/version")
expect_eq "the certificate also names localhost" 200 "$code"
curl -s -o /dev/null --max-time 5 "http://127.0.0.1:$KUBE_PORT/version"
rc=$?
check "plain HTTP on the TLS port gets no answer (curl $rc)" -- test "$rc" -ne 0

# ---- authentication ----
curl -sS --cacert "$KUBE_CA" -o "$B" -w '%{http_code}' "$KUBE_URL/api/v1/nodes/$NODE" >"$TW_TMP/code"
expect_eq "no token: 401" 401 "$(cat "$TW_TMP/code")"
check "no token: the Status body is the fixture's" -- same_json "$B" "$TW_FIXTURES/status/401-unauthorized.json"
code=$(curl -sS --cacert "$KUBE_CA" -H "Authorization: Bearer wrong-$TOKEN" -o "$B" -w '%{http_code}' \
    "$KUBE_URL/api/v1/nodes/$NODE")
expect_eq "wrong token: 401 Unauthorized" "401 Unauthorized" "$code $(jq -r .reason "$B")"
code=$(curl -sS --cacert "$KUBE_CA" -H "Authorization: Basic dXNlcjpwdw==" -o /dev/null \
    -w '%{http_code}' "$KUBE_URL/api/v1/nodes/$NODE")
expect_eq "basic credentials: 401" 401 "$code"

# ---- nodes: partial metadata, full objects, not found ----
code=$(kreq -H "Accept: $PARTIAL" "$KUBE_URL/api/v1/nodes/$NODE")
expect_eq "partial metadata: 200" 200 "$code"
expect_eq "partial metadata: Content-Type names PartialObjectMetadata" "$PARTIAL" "$(hdr content-type)"
check "partial metadata: body equals the PartialObjectMetadata fixture" -- \
    same_json "$B" "$TW_FIXTURES/nodes/eks-node-partial-metadata.json"
code=$(kreq -H 'Accept: application/json; as=PartialObjectMetadata; v=v1; g=meta.k8s.io, application/json' \
    "$KUBE_URL/api/v1/nodes/$NODE")
expect_eq "partial metadata: parameters in any order, among other media ranges" \
    "200 PartialObjectMetadata" "$code $(jq -r .kind "$B")"
code=$(kreq -H 'Accept: application/json' "$KUBE_URL/api/v1/nodes/$NODE")
expect_eq "full node: 200 application/json" "200 application/json" "$code $(hdr content-type)"
check "full node: body equals the Node fixture" -- same_json "$B" "$TW_FIXTURES/nodes/eks-node-full.json"
code=$(kreq "$KUBE_URL/api/v1/nodes/ip-10-9-9-9.ec2.internal")
expect_eq "unknown node: 404" 404 "$code"
expect_eq "unknown node: Status with reason NotFound and details" \
    'Status|NotFound|nodes "ip-10-9-9-9.ec2.internal" not found|ip-10-9-9-9.ec2.internal|nodes|404' \
    "$(jq -r '[.kind, .reason, .message, .details.name, .details.kind, .code] | join("|")' "$B")"
code=$(kreq -X DELETE "$KUBE_URL/api/v1/nodes/$NODE")
expect_eq "DELETE on a node: 405 MethodNotAllowed" "405 MethodNotAllowed" "$code $(jq -r .reason "$B")"

# ---- discovery and kubectl ----
kreq "$KUBE_URL/api" >/dev/null
expect_eq "/api lists v1" '["v1"]' "$(jq -c .versions "$B")"
kreq "$KUBE_URL/apis" >/dev/null
expect_eq "/apis is an empty APIGroupList" 'APIGroupList []' "$(jq -r '"\(.kind) \(.groups | tojson)"' "$B")"
kreq "$KUBE_URL/api/v1" >/dev/null
expect_eq "/api/v1 lists nodes (cluster-scoped), pods and pods/binding" "nodes:false pods:true pods/binding:true" \
    "$(jq -r '[.resources[] | select(.name == "nodes" or .name == "pods" or .name == "pods/binding") | "\(.name):\(.namespaced)"] | join(" ")' "$B")"
curl -sS --cacert "$KUBE_CA" "$KUBE_URL/version" -o "$B"
expect_eq "/version parses and needs no token" "1 31" "$(jq -r '"\(.major) \(.minor)"' "$B")"
zone=$(kubectl --kubeconfig "$KUBECONFIG_FILE" --cache-dir "$TW_TMP/kubecache" get node "$NODE" \
    -o jsonpath='{.metadata.labels.topology\.kubernetes\.io/zone}' 2>"$TW_TMP/kubectl.err")
expect_eq "kubectl get node through the kubeconfig prints the zone" us-east-1b "$zone"
[ "$zone" = us-east-1b ] || sed 's/^/# /' "$TW_TMP/kubectl.err"

# ---- faults ----
fault_code() { # NAME: sets the fault, answers one node GET, prints the status
    standin_fault "$KUBE_URL" "$1"
    kreq "$KUBE_URL/api/v1/nodes/$NODE"
}
expect_eq "fault 401 beats a good token" 401 "$(fault_code 401)"
expect_eq "fault 403: Forbidden Status" "403 Forbidden" "$(fault_code 403) $(jq -r .reason "$B")"
expect_eq "fault 404 on a known node: NotFound Status" "404 NotFound" "$(fault_code 404) $(jq -r .reason "$B")"
expect_eq "fault 429: 429 with Retry-After: 1" "429 1" "$(fault_code 429) $(hdr retry-after)"
check "fault 429: the Status body is the fixture's" -- same_json "$B" "$TW_FIXTURES/status/429-too-many-requests.json"
expect_eq "fault 500: InternalError Status" "500 InternalError" "$(fault_code 500) $(jq -r .reason "$B")"
expect_eq "fault 503: ServiceUnavailable Status" "503 ServiceUnavailable" "$(fault_code 503) $(jq -r .reason "$B")"
code=$(standin_stats "$KUBE_URL" >/dev/null && echo reachable)
expect_eq "faults never touch the control API" reachable "$code"
expect_eq "fault garbage: 200 application/json" "200 application/json" "$(fault_code garbage) $(hdr content-type)"
check "fault garbage: the body is not JSON" -- bash -c "! jq . '$B' >/dev/null 2>&1"
standin_fault "$KUBE_URL" stall
out=$(curl -sS --cacert "$KUBE_CA" -H "Authorization: Bearer $TOKEN" -m 1 -o "$B" \
    -w '%{http_code} %{size_download}' "$KUBE_URL/api/v1/nodes/$NODE" 2>/dev/null)
rc=$?
expect_eq "fault stall: headers and part of a body, then curl -m 1 times out" "28 200 yes" \
    "$rc ${out% *} $([ "${out#* }" -gt 0 ] && echo yes)"
standin_fault "$KUBE_URL" hang
out=$(curl -sS --cacert "$KUBE_CA" -m 1 -o /dev/null -w '%{http_code}' "$KUBE_URL/api/v1/nodes/$NODE" 2>/dev/null)
expect_eq "fault hang: no answer at all, curl -m 1 times out" "28 000" "$? $out"
standin_fault "$KUBE_URL" drop
curl -sS --cacert "$KUBE_CA" -m 5 -o /dev/null "$KUBE_URL/api/v1/nodes/$NODE" 2>/dev/null
rc=$?
check "fault drop: the connection closes without an answer (curl $rc)" -- test "$rc" = 52 -o "$rc" = 56
standin_fault "$KUBE_URL" slow:400
out=$(curl -sS --cacert "$KUBE_CA" -H "Authorization: Bearer $TOKEN" -o /dev/null \
    -w '%{http_code} %{time_total}' "$KUBE_URL/api/v1/nodes/$NODE")
expect_eq "fault slow:400: answers 200 after at least 0.4 s" "200 yes" \
    "${out% *} $(awk -v t="${out#* }" 'BEGIN { print (t >= 0.4 ? "yes" : "no") }')"
standin_ctl "$KUBE_URL" POST /_control/reset >/dev/null
expect_eq "fault redirect: 302 to the redirect target" "302 /_control/redirect-target" \
    "$(fault_code redirect) $(hdr location)"
code=$(curl -sS -L --cacert "$KUBE_CA" -o /dev/null -w '%{http_code}' "$KUBE_URL/api/v1/nodes/$NODE")
expect_eq "fault redirect: the target answers and counts its hits" "200 1" \
    "$code $(standin_stats "$KUBE_URL" | jq -r .redirectHits)"
standin_fault "$KUBE_URL" huge
out=$(curl -sS --cacert "$KUBE_CA" -o "$B" -w '%{http_code} %{size_download}' "$KUBE_URL/api/v1/nodes/$NODE")
expect_eq "fault huge: 200 with more than 20 MB of JSON" "200 yes huge" \
    "${out% *} $([ "${out#* }" -gt 20000000 ] && echo yes) $(jq -r .metadata.name "$B")"
standin_fault "$KUBE_URL" flaky:2:503
codes=""
for _ in 1 2 3; do codes="$codes $(kreq "$KUBE_URL/api/v1/nodes/$NODE")"; done
expect_eq "fault flaky:2:503: 503, 503, then 200" " 503 503 200" "$codes"
standin_fault "$KUBE_URL" ""
out=$(standin_ctl "$KUBE_URL" POST "/_control/fault?set=no-such-fault" 2>/dev/null)
expect_eq "an unknown fault is refused with 400 and changes nothing" \
    "unknown fault 'no-such-fault' []" "$(jq -r .error <<<"$out") $(standin_stats "$KUBE_URL" | jq -c .faults)"
standin_fault "$KUBE_URL" 429
standin_ctl "$KUBE_URL" POST "/_control/fault?add=slow:10" >/dev/null
expect_eq "add= extends the fault set" '["429","slow:10"]' "$(standin_stats "$KUBE_URL" | jq -c .faults)"
standin_fault "$KUBE_URL" ""
expect_eq "set= with nothing clears every fault" "[] 200" \
    "$(standin_stats "$KUBE_URL" | jq -c .faults) $(kreq "$KUBE_URL/api/v1/nodes/$NODE")"

# ---- token rotation ----
OLD=$TOKEN
printf 'tw-test-token-rotated-%s\n' "$RANDOM" >"$KUBE_TOKEN_FILE"
expect_eq "after rotation the old token gets 401" 401 "$(kreq "$KUBE_URL/api/v1/nodes/$NODE")"
TOKEN=$(head -n1 "$KUBE_TOKEN_FILE")
expect_eq "after rotation the new token gets 200" 200 "$(kreq "$KUBE_URL/api/v1/nodes/$NODE")"

# ---- LIST ----
kreq "$KUBE_URL/api/v1/nodes" >/dev/null
RV=$(jq -r .metadata.resourceVersion "$B")
expect_eq "LIST: a NodeList of the five fixture nodes at the current resourceVersion" \
    "NodeList 5 $(standin_stats "$KUBE_URL" | jq -r .resourceVersion)" "$(jq -r '"\(.kind) \(.items | length)"' "$B") $RV"
expect_eq "LIST: items carry no kind, as the API server sends them" null "$(jq -r '.items[0].kind' "$B")"
kreq -H "Accept: application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1" "$KUBE_URL/api/v1/nodes" >/dev/null
expect_eq "LIST partial: a PartialObjectMetadataList of metadata only" \
    'PartialObjectMetadataList meta.k8s.io/v1 ["metadata"]' \
    "$(jq -r '"\(.kind) \(.apiVersion) \([.items[] | keys] | unique | .[0] | tojson)"' "$B")"
kreq "$KUBE_URL/api/v1/nodes?limit=2" >/dev/null
page1=$(jq -r '.items[].metadata.name' "$B")
cont=$(jq -r .metadata.continue "$B")
expect_eq "LIST limit=2: two items, a continue token, three remaining" "2 3" \
    "$(jq -r '"\(.items | length) \(.metadata.remainingItemCount)"' "$B")"
kreq "$KUBE_URL/api/v1/nodes?limit=10&continue=$cont" >/dev/null
expect_eq "LIST continue: the pages hold every node once" 5 \
    "$( (echo "$page1"; jq -r '.items[].metadata.name' "$B") | sort -u | wc -l)"
code=$(kreq "$KUBE_URL/api/v1/nodes?labelSelector=topology.kubernetes.io%2Fzone%3Dus-east-1b")
expect_eq "LIST with a label selector: 400 (the stand-in does not filter)" "400 BadRequest" "$code $(jq -r .reason "$B")"
code=$(kreq "$KUBE_URL/api/v1/nodes?watch=1&fieldSelector=metadata.name%3Drack7-blade3")
expect_eq "WATCH with a field selector: 400" "400 BadRequest" "$code $(jq -r .reason "$B")"

# ---- WATCH ----
WURL="$KUBE_URL/api/v1/nodes?watch=1&resourceVersion=$RV"
bg curl -sS -N --cacert "$KUBE_CA" -H "Authorization: Bearer $TOKEN" "$WURL&timeoutSeconds=20" -o "$TW_TMP/w1"
W1=$BG_PID
check "watch: the stream opens" -- wait_until 5 has_watches 1
jq '.metadata.name = "ip-10-0-77-7.ec2.internal"' "$TW_FIXTURES/nodes/eks-node-full.json" >"$TW_TMP/new-node.json"
standin_ctl "$KUBE_URL" POST "/_control/node/label?name=rack7-blade3&key=topology.kubernetes.io/zone&value=rack7" >/dev/null
standin_ctl "$KUBE_URL" POST /_control/node --data-binary @"$TW_TMP/new-node.json" >/dev/null
standin_ctl "$KUBE_URL" DELETE "/_control/node?name=ip-10-0-77-7.ec2.internal" >/dev/null
wait_until 5 lines_at_least "$TW_TMP/w1" 3
kill "$W1" 2>/dev/null
wait "$W1" 2>/dev/null
expect_eq "watch: MODIFIED, ADDED, DELETED after the control calls" \
    "MODIFIED rack7-blade3|ADDED ip-10-0-77-7.ec2.internal|DELETED ip-10-0-77-7.ec2.internal" \
    "$(jq -rs '[.[] | "\(.type) \(.object.metadata.name)"] | join("|")' "$TW_TMP/w1")"
expect_eq "watch: the MODIFIED object carries the new label" rack7 \
    "$(jq -r 'select(.type == "MODIFIED") | .object.metadata.labels["topology.kubernetes.io/zone"]' "$TW_TMP/w1")"
expect_eq "watch: resourceVersions rise past the LIST's" "$((RV + 1)) $((RV + 2)) $((RV + 3))" \
    "$(jq -r .object.metadata.resourceVersion "$TW_TMP/w1" | tr '\n' ' ' | sed 's/ $//')"
timeout 10 curl -sS -N --cacert "$KUBE_CA" -H "Authorization: Bearer $TOKEN" -H "Accept: $PARTIAL" \
    "$WURL&timeoutSeconds=1" -o "$TW_TMP/w2"
expect_eq "watch again from the LIST RV: history replayed, partial objects, ends at timeoutSeconds" \
    "0 MODIFIED:PartialObjectMetadata ADDED:PartialObjectMetadata DELETED:PartialObjectMetadata" \
    "$? $(jq -r '"\(.type):\(.object.kind)"' "$TW_TMP/w2" | tr '\n' ' ' | sed 's/ $//')"
timeout 10 curl -sS -N --cacert "$KUBE_CA" -H "Authorization: Bearer $TOKEN" \
    "$KUBE_URL/api/v1/nodes?watch=true&timeoutSeconds=1" -o "$TW_TMP/w3"
expect_eq "watch without a resourceVersion starts with ADDED for every node" "5 ADDED" \
    "$(grep -c . "$TW_TMP/w3") $(jq -r .type "$TW_TMP/w3" | sort -u | tr '\n' ' ' | sed 's/ $//')"

# bookmarks: asked for, every second; not asked for, none.
bg curl -sS -N --cacert "$KUBE_CA" -H "Authorization: Bearer $TOKEN" \
    "$KUBE_URL/api/v1/nodes?watch=1&resourceVersion=$((RV + 3))&timeoutSeconds=3" -o "$TW_TMP/nobm"
NOBM=$BG_PID
timeout 10 curl -sS -N --cacert "$KUBE_CA" -H "Authorization: Bearer $TOKEN" \
    "$KUBE_URL/api/v1/nodes?watch=1&resourceVersion=$((RV + 3))&allowWatchBookmarks=true&timeoutSeconds=3" \
    -o "$TW_TMP/bm"
wait "$NOBM"
bm_count=$(grep -c BOOKMARK "$TW_TMP/bm")
bm_rvs=$(jq -r 'select(.type == "BOOKMARK") | .object.metadata | select(keys == ["resourceVersion"]) |
    .resourceVersion' "$TW_TMP/bm" | sort -u | tr '\n' ' ')
expect_eq "bookmarks arrive every second, with only metadata.resourceVersion" "yes $((RV + 3)) " \
    "$([ "$bm_count" -ge 2 ] && echo yes) $bm_rvs"
expect_eq "no bookmarks unless allowWatchBookmarks=true" 0 "$(grep -c BOOKMARK "$TW_TMP/nobm")"

# expire: open watches end with 410, and an old RV is refused.
bg curl -sS -N --cacert "$KUBE_CA" -H "Authorization: Bearer $TOKEN" \
    "$KUBE_URL/api/v1/nodes?watch=1&resourceVersion=$((RV + 3))&timeoutSeconds=20" -o "$TW_TMP/w4"
W4=$BG_PID
wait_until 5 has_watches 1
standin_ctl "$KUBE_URL" POST /_control/expire >/dev/null
wait_until 5 bash -c "! kill -0 $W4 2>/dev/null"
wait "$W4"
expect_eq "expire: the open watch gets a 410 ERROR event and ends" "0 ERROR 410 Expired" \
    "$? $(tail -n1 "$TW_TMP/w4" | jq -r '"\(.type) \(.object.code) \(.object.reason)"')"
timeout 10 curl -sS -N --cacert "$KUBE_CA" -H "Authorization: Bearer $TOKEN" "$WURL" -o "$TW_TMP/w5"
expect_eq "expire: a watch from the old RV gets only the 410 ERROR" \
    "1 ERROR Status Failure 410 Expired too old resource version: $RV" \
    "$(grep -c . "$TW_TMP/w5") $(jq -r '"\(.type) \(.object.kind) \(.object.status) \(.object.code) \(.object.reason) \(.object.message)"' "$TW_TMP/w5" | sed 's/ ([0-9]*)$//')"

# drop-watches and clients that hang up.
bg curl -sS -N --cacert "$KUBE_CA" -H "Authorization: Bearer $TOKEN" \
    "$KUBE_URL/api/v1/nodes?watch=1&timeoutSeconds=20" -o "$TW_TMP/w6" 2>/dev/null
W6=$BG_PID
wait_until 5 has_watches 1
standin_ctl "$KUBE_URL" POST /_control/drop-watches >/dev/null
wait_until 5 bash -c "! kill -0 $W6 2>/dev/null"
wait "$W6" 2>/dev/null
rc=$?
check "drop-watches: the stream breaks off without its final chunk (curl $rc)" -- test "$rc" = 18 -o "$rc" = 56
bg curl -sS -N --cacert "$KUBE_CA" -H "Authorization: Bearer $TOKEN" \
    "$KUBE_URL/api/v1/nodes?watch=1&allowWatchBookmarks=true" -o /dev/null
W7=$BG_PID
wait_until 5 has_watches 1
kill -TERM "$W7"
wait "$W7" 2>/dev/null
standin_fault "$KUBE_URL" huge
curl -sS --cacert "$KUBE_CA" --limit-rate 1M -m 0.5 -o /dev/null "$KUBE_URL/api/v1/nodes/$NODE" 2>/dev/null
standin_fault "$KUBE_URL" ""
check "a client that hangs up on a watch or a huge body leaves the server serving" -- \
    wait_until 5 bash -c "[ \"\$(curl -sS --cacert '$KUBE_CA' '$KUBE_URL/_control/stats' | jq -r .watches)\" = 0 ]"
expect_eq "... and answering" 200 "$(kreq "$KUBE_URL/api/v1/nodes/$NODE")"

# ---- the nodes directory is live ----
jq '.metadata.labels["topology.kubernetes.io/zone"] = "rack9"' "$TW_FIXTURES/nodes/bare-metal-no-topology.json" \
    >"$KUBE_NODES_DIR/.tmp" && mv "$KUBE_NODES_DIR/.tmp" "$KUBE_NODES_DIR/bare-metal-no-topology.json"
kreq "$KUBE_URL/api/v1/nodes/rack7-blade3" >/dev/null
expect_eq "an edited file in the nodes directory changes the node" rack9 \
    "$(jq -r '.metadata.labels["topology.kubernetes.io/zone"]' "$B")"

# ---- synthetic nodes ----
out=$(standin_ctl "$KUBE_URL" POST "/_control/nodes/generate?count=300&zones=3")
expect_eq "generate: 300 nodes" 300 "$(jq -r .generated <<<"$out")"
kreq "$KUBE_URL/api/v1/nodes" >/dev/null
expect_eq "generate: a third of them in us-east-1a, with EKS labels" "100 use1-az2 us-east-1" \
    "$(jq -r '[.items[].metadata.labels | select(.["topology.kubernetes.io/zone"] == "us-east-1a")] |
        "\(length) \(.[0]["topology.k8s.aws/zone-id"]) \(.[0]["topology.kubernetes.io/region"])"' "$B")"
kreq -H "Accept: application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1" "$KUBE_URL/api/v1/nodes" >/dev/null
expect_eq "generate: LIST holds 305 nodes" 305 "$(jq '.items | length' "$B")"

# ---- webhook configurations ----
WH="$KUBE_URL/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"
code=$(kreq "$WH/topowire")
expect_eq "webhook config preloaded from a List" "200 MutatingWebhookConfiguration 2" \
    "$code $(jq -r '"\(.kind) \(.webhooks | length)"' "$B")"
CA_B64=$(base64 -w0 <"$KUBE_CA")
code=$(kreq -X PATCH -H 'Content-Type: application/json-patch+json' \
    --data "[{\"op\":\"replace\",\"path\":\"/webhooks/0/clientConfig/caBundle\",\"value\":\"$CA_B64\"}]" "$WH/topowire")
expect_eq "webhook JSON patch of caBundle: 200 with the new bundle" "200 yes" \
    "$code $([ "$(jq -r '.webhooks[0].clientConfig.caBundle' "$B")" = "$CA_B64" ] && echo yes)"
kreq "$WH/topowire" >/dev/null
expect_eq "webhook GET returns the stored bundle" yes \
    "$([ "$(jq -r '.webhooks[0].clientConfig.caBundle' "$B")" = "$CA_B64" ] && echo yes)"
code=$(kreq -X PATCH -H 'Content-Type: application/json-patch+json' \
    --data '[{"op":"test","path":"/webhooks/1/name","value":"bindings.topowire.io"},
             {"op":"add","path":"/webhooks/1/clientConfig/caBundle","value":"Qk9USAo="}]' "$WH/topowire")
expect_eq "webhook JSON patch with test and add (what certgen sends)" "200 yes Qk9USAo= /bind" \
    "$code $([ "$(jq -r '.webhooks[0].clientConfig.caBundle' "$B")" = "$CA_B64" ] && echo yes) $(jq -r '.webhooks[1].clientConfig | "\(.caBundle) \(.service.path)"' "$B")"
code=$(kreq -X PATCH -H 'Content-Type: application/json-patch+json' \
    --data '[{"op":"test","path":"/webhooks/1/name","value":"pods.topowire.io"},
             {"op":"remove","path":"/webhooks/1"}]' "$WH/topowire")
expect_eq "webhook JSON patch whose test fails: 422" "422 Invalid" "$code $(jq -r .reason "$B")"
kreq "$WH/topowire" >/dev/null
expect_eq "... and the configuration is unchanged" 2 "$(jq '.webhooks | length' "$B")"
code=$(kreq -X PATCH -H 'Content-Type: application/merge-patch+json' \
    --data '{"metadata":{"labels":{"app.kubernetes.io/part-of":"topowire"}}}' "$WH/topowire")
expect_eq "webhook merge patch: 415 (only JSON patch is taken)" 415 "$code"
code=$(kreq -X PATCH -H 'Content-Type: application/json-patch+json' --data '[]' "$WH/not-there")
expect_eq "webhook PATCH of an unknown name: 404 NotFound" "404 NotFound" "$code $(jq -r .reason "$B")"
code=$(kreq -X PATCH -H 'Content-Type: application/json-patch+json' \
    --data '[{"op":"replace","path":"/webhooks/0/clientConfig/caBundle","value":"not base64!"}]' "$WH/topowire")
expect_eq "webhook caBundle that is not base64: 400" 400 "$code"
code=$(kreq -X PATCH -H 'Content-Type: application/json' --data '{}' "$WH/topowire")
expect_eq "webhook PATCH with a plain JSON body: 415" 415 "$code"

# ---- stats and the request log ----
standin_ctl "$KUBE_URL" POST /_control/reset >/dev/null
kreq -A "topowire-test/1.0" -H "Accept: $PARTIAL" "$KUBE_URL/api/v1/nodes/$NODE" >/dev/null
kreq "$KUBE_URL/api/v1/nodes/$NODE" >/dev/null
kreq "$KUBE_URL/api/v1" >/dev/null
standin_stats "$KUBE_URL" >/dev/null
standin_stats "$KUBE_URL" >"$B"
expect_eq "stats: data requests counted, control requests not" "3 2 1" \
    "$(jq -r --arg p "/api/v1/nodes/$NODE" '"\(.requests) \(.paths[$p]) \(.paths["/api/v1"])"' "$B")"
expect_eq "standin_requests prints the count" 3 "$(standin_requests "$KUBE_URL")"
curl -sS --cacert "$KUBE_CA" -A "anonymous/0" -H "Accept: application/json" -o /dev/null "$KUBE_URL/api/v1/nodes/$NODE"
expect_eq "stats: last Accept, User-Agent and auth" "application/json|anonymous/0|none" \
    "$(standin_stats "$KUBE_URL" | jq -r '[.lastAccept, .lastUserAgent, .lastAuth] | join("|")')"
kreq -A "topowire-test/1.0" "$KUBE_URL/api/v1/nodes/$NODE" >/dev/null
expect_eq "stats: lastAuth bearer" "bearer topowire-test/1.0" \
    "$(standin_stats "$KUBE_URL" | jq -r '"\(.lastAuth) \(.lastUserAgent)"')"
check "log: one line per request with method, path, status, auth and header names" -- \
    grep -q " GET /api/v1/nodes/$NODE 200 auth=bearer headers=.*authorization" "$KUBE_LOG"
check "log: the query is kept" -- grep -q " GET /api/v1/nodes?limit=2 200 " "$KUBE_LOG"
check "log: a refused request says auth=none" -- grep -q " GET /api/v1/nodes/$NODE 401 auth=none " "$KUBE_LOG"
check "log: never a token" -- bash -c "! grep -qF -e '$OLD' -e '$TOKEN' '$KUBE_LOG'"

# ---- RBAC denial ----
standin_fault "$KUBE_URL" 403
code=$(kreq "$KUBE_URL/api/v1/nodes/$NODE")
expect_eq "fault 403: GET node is 403" 403 "$code"
check "fault 403: the Status body is the fixture's" -- same_json "$B" "$TW_FIXTURES/status/403-forbidden.json"
standin_fault "$KUBE_URL" ""

# ---- IPv6 ----
if ! grep -q '^0\{31\}1 ' /proc/net/if_inet6 2>/dev/null; then
    tap 0 "IPv6 listener # SKIP no ::1 here"
else
    start_kube --listen '[::1]:0'
    code=$(curl -sS --cacert "$KUBE_CA" -o /dev/null -w '%{http_code}' "https://[::1]:$KUBE_PORT/version")
    expect_eq "--listen [::1]:0 serves TLS on ::1 (the certificate names it)" 200 "$code"
    stop_within 10 "$KUBE_PID"
fi

# ---- clean shutdown with work in flight ----
KUBE_URL=https://127.0.0.1:$(cat "$TW_TMP/kube-1.port")
standin_fault "$KUBE_URL" hang
bg curl -sS --cacert "$KUBE_CA" -o /dev/null "$KUBE_URL/api/v1/nodes/$NODE" 2>/dev/null
bg curl -sS -N --cacert "$KUBE_CA" -H "Authorization: Bearer $TOKEN" -o /dev/null "$KUBE_URL/api/v1/nodes?watch=1" 2>/dev/null
sleep 0.3
stop_within 10 "$MAIN_PID"
expect_eq "SIGTERM with a hung request and an open watch: exits 0, promptly, no sanitizer report" \
    "0 ok" "$? $(grep -q -e ERROR: -e 'runtime error' "$TW_TMP/kube-1.err" && echo report || echo ok)"

# ---- command line ----
"$TW_STANDIN" kube --port-file "$TW_TMP/x.port" 2>"$TW_TMP/x.err"
expect_eq "kube mode without TLS files: exit 2" "2 yes" "$? $(grep -q 'tls-cert' "$TW_TMP/x.err" && echo yes)"
"$TW_STANDIN" imds --fault no-such-fault 2>/dev/null
expect_eq "an unknown --fault: exit 2" 2 "$?"
"$TW_STANDIN" kube --cloud aws --tls-cert "$TW_TMP/certs/server.pem" --tls-key "$TW_TMP/certs/server-key.pem" 2>/dev/null
expect_eq "an imds option in kube mode: exit 2" 2 "$?"
"$TW_STANDIN" kube --tls-cert "$TW_TMP/certs/server.pem" --tls-key "$TW_TMP/certs/server-key.pem" \
    --nodes-dir "$TW_TMP/no-such-dir" 2>/dev/null
expect_eq "a missing nodes directory: exit 1" 1 "$?"

# ---- IMDS: AWS ----
start_imds aws
AWS=$IMDS_URL
AWS_PID=$IMDS_PID
tok=$(curl -sS -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' -D "$H" "$AWS/latest/api/token")
expect_eq "AWS: PUT /latest/api/token gives a 56-character token and echoes the TTL" "56 60" \
    "${#tok} $(hdr x-aws-ec2-metadata-token-ttl-seconds)"
expect_eq "AWS v2: the zone with the token" us-east-1b \
    "$(curl -sS -H "X-aws-ec2-metadata-token: $tok" "$AWS/latest/meta-data/placement/availability-zone")"
expect_eq "AWS v2: the zone ID with the token" use1-az4 \
    "$(curl -sS -H "X-aws-ec2-metadata-token: $tok" "$AWS/latest/meta-data/placement/availability-zone-id")"
expect_eq "AWS: an invalid token gets 401" 401 \
    "$(curl -sS -o /dev/null -w '%{http_code}' -H 'X-aws-ec2-metadata-token: AQAEAbogus' "$AWS/latest/meta-data/placement/availability-zone")"
codes=""
for ttl in "" 0 21601 abc; do
    codes="$codes $(curl -sS -o /dev/null -w '%{http_code}' -X PUT ${ttl:+-H "X-aws-ec2-metadata-token-ttl-seconds: $ttl"} "$AWS/latest/api/token")"
done
expect_eq "AWS: PUT without a TTL in 1..21600 gets 400" " 400 400 400 400" "$codes"
expect_eq "AWS: a proxied PUT (X-Forwarded-For) gets 403" 403 \
    "$(curl -sS -o /dev/null -w '%{http_code}' -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' -H 'X-Forwarded-For: 10.0.0.9' "$AWS/latest/api/token")"
expect_eq "AWS v1: the zone without a token" us-east-1b \
    "$(curl -sS "$AWS/latest/meta-data/placement/availability-zone")"
expect_eq "AWS: stats count v1 and v2 reads" "1 2" "$(standin_stats "$AWS" | jq -r '"\(.imdsV1) \(.imdsV2)"')"
expect_eq "AWS: a category lists its entries" "availability-zone availability-zone-id region" \
    "$(curl -sS "$AWS/latest/meta-data/placement/" | tr '\n' ' ')"
expect_eq "AWS: an unknown path is 404" 404 \
    "$(curl -sS -o /dev/null -w '%{http_code}' "$AWS/latest/meta-data/placement/partition-number")"
expect_eq "AWS: no way out of the fixtures" 404 \
    "$(curl -sS --path-as-is -o /dev/null -w '%{http_code}' "$AWS/latest/meta-data/placement/../../../../../etc/passwd")"
standin_fault "$AWS" v2-only
expect_eq "AWS v2-only: a v1 read gets 401, a v2 read works" "401 us-east-1b" \
    "$(curl -sS -o /dev/null -w '%{http_code}' "$AWS/latest/meta-data/placement/availability-zone") $(curl -sS -H "X-aws-ec2-metadata-token: $tok" "$AWS/latest/meta-data/placement/availability-zone")"
standin_fault "$AWS" put-403
expect_eq "AWS put-403: the token PUT is refused, v1 still answers" "403 us-east-1b" \
    "$(curl -sS -o /dev/null -w '%{http_code}' -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' "$AWS/latest/api/token") $(curl -sS "$AWS/latest/meta-data/placement/availability-zone")"
standin_fault "$AWS" put-hang
curl -sS -m 1 -o /dev/null -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' "$AWS/latest/api/token" 2>/dev/null
expect_eq "AWS put-hang: the token PUT never answers (curl -m 1 times out), GETs still do" "28 us-east-1b" \
    "$? $(curl -sS -m 5 "$AWS/latest/meta-data/placement/availability-zone")"
standin_fault "$AWS" no-zone-id
expect_eq "AWS no-zone-id: 404 on availability-zone-id only" "404 200" \
    "$(curl -sS -o /dev/null -w '%{http_code}' "$AWS/latest/meta-data/placement/availability-zone-id") $(curl -sS -o /dev/null -w '%{http_code}' "$AWS/latest/meta-data/placement/availability-zone")"
standin_fault "$AWS" bad-zone
expect_eq "AWS bad-zone: the zone carries a shell command" "us-east-1b; rm -rf /" \
    "$(curl -sS "$AWS/latest/meta-data/placement/availability-zone")"
standin_fault "$AWS" 503
expect_eq "AWS: common faults apply too (503)" 503 \
    "$(curl -sS -o /dev/null -w '%{http_code}' "$AWS/latest/meta-data/placement/availability-zone")"
standin_fault "$AWS" ""
check "AWS log: the token PUT is logged with its headers, never the token" -- \
    bash -c "grep -q ' PUT /latest/api/token 200 auth=none headers=.*x-aws-ec2-metadata-token-ttl-seconds' '$IMDS_LOG' && ! grep -qF '$tok' '$IMDS_LOG'"
stop_within 10 "$AWS_PID"
expect_eq "AWS: SIGTERM with the hung token PUT still held: exits 0" 0 "$?"

# ---- IMDS: GCP ----
start_imds gcp
GCP=$IMDS_URL
code=$(curl -sS -o "$B" -w '%{http_code}' "$GCP/computeMetadata/v1/instance/zone")
expect_eq "GCP: without Metadata-Flavor: Google the answer is 403" "403 yes" \
    "$code $(grep -q 'Missing Metadata-Flavor:Google' "$B" && echo yes)"
expect_eq "GCP: a wrong flavor is 403 too" 403 \
    "$(curl -sS -o /dev/null -w '%{http_code}' -H 'Metadata-Flavor: Amazon' "$GCP/computeMetadata/v1/instance/zone")"
body=$(curl -sS -D "$H" -H 'Metadata-Flavor: Google' "$GCP/computeMetadata/v1/instance/zone")
expect_eq "GCP: the zone, with Metadata-Flavor: Google on the answer" \
    "projects/412345678901/zones/europe-west1-d Google" "$body $(hdr metadata-flavor)"

# ---- IMDS: Azure, started with a fault ----
start_imds azure --fault flaky:1:500
AZ=$IMDS_URL
expect_eq "--fault at start-up: flaky:1:500 fails the first request" 500 \
    "$(curl -sS -o /dev/null -w '%{http_code}' -H 'Metadata: true' "$AZ/metadata/instance?api-version=2021-02-01")"
code=$(curl -sS -o "$B" -w '%{http_code}' "$AZ/metadata/instance?api-version=2021-02-01")
expect_eq "Azure: without Metadata: true, 400 with a JSON error" "400 Bad request. Required metadata header not specified" \
    "$code $(jq -r .error "$B")"
code=$(curl -sS -o "$B" -w '%{http_code}' -H 'Metadata: true' "$AZ/metadata/instance")
expect_eq "Azure: without api-version, 400" "400 yes" "$code $(jq -r '.error | test("api-version")' "$B" | sed 's/true/yes/')"
code=$(curl -sS -o "$B" -w '%{http_code}' -H 'Metadata: true' "$AZ/metadata/instance?api-version=2021-02-01")
expect_eq "Azure: the instance document" "200 eastus 2" "$code $(jq -r '"\(.compute.location) \(.compute.zone)"' "$B")"
expect_eq "Azure: a leaf as text" 2 \
    "$(curl -sS -H 'Metadata: true' "$AZ/metadata/instance/compute/zone?api-version=2021-02-01&format=text")"

done_testing
